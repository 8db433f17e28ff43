//! Scans and their per-PR progress. A scan's counters are counted from `scan_prs`, never
//! incremented, so a job that runs twice cannot double-count; a scan is `done` only when its
//! listing finished and no listed PR is still pending.

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use serde::Serialize;

use super::{StoreError, StoreResult};

/// What a client sees of a scan.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanStatus {
    /// `scan:{owner}/{repo}:{snapshot}`.
    pub job_id: String,
    /// Owner.
    pub owner: String,
    /// Repository.
    pub repo: String,
    /// Snapshot id.
    pub snapshot: String,
    /// queued | running | done | failed.
    pub state: String,
    /// What started it: ops | cron | webhook | cli.
    pub trigger: String,
    /// `X-Trigger-Actor` of the request that started it.
    pub actor: Option<String>,
    /// Open PRs listed.
    pub prs_listed: i64,
    /// Listed PRs analysed in this scan.
    pub prs_analyzed: i64,
    /// Listed PRs whose head was already analysed with the current versions.
    pub prs_unchanged: i64,
    /// Listed PRs whose analysis failed.
    pub prs_failed: i64,
    /// Listed PRs still waiting for their analysis.
    pub prs_pending: i64,
    /// PRs whose diff came from the local git mirror.
    pub source_mirror: i64,
    /// PRs whose diff came from the REST files endpoint.
    pub source_rest: i64,
    /// GitHub requests made (304s included).
    pub api_calls: i32,
    /// Last known remaining rate-limit budget.
    pub rate_limit_remaining: Option<i32>,
    /// When the rate-limit budget resets.
    pub rate_limit_reset_at: Option<DateTime<Utc>>,
    /// anonymous | token | installation.
    pub auth: Option<String>,
    /// Plain-language remarks (e.g. "no token: 60 requests per hour").
    #[schema(value_type = Vec<String>)]
    pub notes: serde_json::Value,
    /// Error of a failed scan.
    pub error: Option<String>,
    /// Queued at.
    pub created_at: DateTime<Utc>,
    /// Started at.
    pub started_at: Option<DateTime<Utc>>,
    /// Finished at.
    pub finished_at: Option<DateTime<Utc>>,
}

/// Parameters of a new scan row.
pub struct NewScan<'a> {
    /// Job id.
    pub job_id: &'a str,
    /// Owner.
    pub owner: &'a str,
    /// Repository.
    pub repo: &'a str,
    /// Snapshot.
    pub snapshot: &'a str,
    /// Trigger kind.
    pub trigger: &'a str,
    /// Actor header.
    pub actor: Option<&'a str>,
    /// PR cap.
    pub max_open_prs: Option<i32>,
}

/// Records a scan; returns false when a scan with this id exists already.
pub async fn create_scan(pool: &Pool, s: &NewScan<'_>) -> StoreResult<bool> {
    let c = pool.get().await?;
    let n = c
        .execute(
            "INSERT INTO scan_jobs (job_id, owner, repo, snapshot, trigger, actor, max_open_prs)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (job_id) DO NOTHING",
            &[
                &s.job_id,
                &s.owner,
                &s.repo,
                &s.snapshot,
                &s.trigger,
                &s.actor,
                &s.max_open_prs,
            ],
        )
        .await?;
    Ok(n == 1)
}

const STATUS_SQL: &str = "
    SELECT j.job_id, j.owner, j.repo, j.snapshot, j.state, j.trigger, j.actor,
           count(p.number),
           count(p.number) FILTER (WHERE p.outcome = 'analyzed'),
           count(p.number) FILTER (WHERE p.outcome = 'unchanged'),
           count(p.number) FILTER (WHERE p.outcome = 'failed'),
           count(p.number) FILTER (WHERE p.outcome = 'pending'),
           count(p.number) FILTER (WHERE p.source = 'mirror'),
           count(p.number) FILTER (WHERE p.source = 'rest'),
           j.api_calls, j.rate_limit_remaining, j.rate_limit_reset_at, j.auth, j.notes, j.error,
           j.created_at, j.started_at, j.finished_at
    FROM scan_jobs j LEFT JOIN scan_prs p ON p.job_id = j.job_id";

fn status_from_row(r: &tokio_postgres::Row) -> ScanStatus {
    ScanStatus {
        job_id: r.get(0),
        owner: r.get(1),
        repo: r.get(2),
        snapshot: r.get(3),
        state: r.get(4),
        trigger: r.get(5),
        actor: r.get(6),
        prs_listed: r.get(7),
        prs_analyzed: r.get(8),
        prs_unchanged: r.get(9),
        prs_failed: r.get(10),
        prs_pending: r.get(11),
        source_mirror: r.get(12),
        source_rest: r.get(13),
        api_calls: r.get(14),
        rate_limit_remaining: r.get(15),
        rate_limit_reset_at: r.get(16),
        auth: r.get(17),
        notes: r.get(18),
        error: r.get(19),
        created_at: r.get(20),
        started_at: r.get(21),
        finished_at: r.get(22),
    }
}

/// One scan's status.
pub async fn get_scan(pool: &Pool, job_id: &str) -> StoreResult<ScanStatus> {
    let c = pool.get().await?;
    let sql = format!("{STATUS_SQL} WHERE j.job_id = $1 GROUP BY j.job_id");
    let row = c
        .query_opt(&sql, &[&job_id])
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(status_from_row(&row))
}

/// The most recent scans, newest first.
pub async fn recent_scans(pool: &Pool, limit: i64) -> StoreResult<Vec<ScanStatus>> {
    let c = pool.get().await?;
    let sql = format!(
        "{STATUS_SQL} WHERE j.job_id IN (SELECT job_id FROM scan_jobs ORDER BY created_at DESC, job_id LIMIT $1)
         GROUP BY j.job_id ORDER BY j.created_at DESC, j.job_id"
    );
    let rows = c.query(&sql, &[&limit]).await?;
    Ok(rows.iter().map(status_from_row).collect())
}

/// Marks a scan running (again, after a crash) and records its repository and auth.
pub async fn start_scan(
    pool: &Pool,
    job_id: &str,
    repo_id: i64,
    auth: &str,
    notes: &serde_json::Value,
) -> StoreResult<()> {
    let c = pool.get().await?;
    c.execute(
        "UPDATE scan_jobs SET state = CASE WHEN state = 'done' THEN state ELSE 'running' END,
             repo_id = $2, auth = $3, notes = $4, started_at = COALESCE(started_at, now()), error = NULL
         WHERE job_id = $1",
        &[&job_id, &repo_id, &auth, notes],
    )
    .await?;
    Ok(())
}

/// Adds the GitHub requests a scan made to its count and stores the budget figures.
pub async fn record_calls(
    pool: &Pool,
    job_id: &str,
    calls: i32,
    remaining: Option<i32>,
    reset_at: Option<DateTime<Utc>>,
) -> StoreResult<()> {
    let c = pool.get().await?;
    c.execute(
        "UPDATE scan_jobs SET api_calls = api_calls + $2, rate_limit_remaining = $3, rate_limit_reset_at = $4
         WHERE job_id = $1",
        &[&job_id, &calls, &remaining, &reset_at],
    )
    .await?;
    Ok(())
}

/// Adds the listed PRs (numbers and heads, in step) to the scan in one statement (idempotent).
/// A head already analysed with these versions is settled at once as `unchanged`; the others are
/// `pending` until their analysis settles them.
pub async fn add_scan_prs(
    c: &impl GenericClient,
    job_id: &str,
    repo_id: i64,
    v: super::analysis::Versions,
    numbers: &[i64],
    heads: &[&str],
) -> StoreResult<()> {
    c.execute(
        "INSERT INTO scan_prs (job_id, number, head_sha, outcome)
         SELECT $1, l.number, l.head_sha,
                CASE WHEN EXISTS (SELECT 1 FROM analysis_runs a
                                  WHERE a.repo_id = $2 AND a.number = l.number
                                    AND a.head_sha = l.head_sha AND a.signature_version = $5
                                    AND a.algorithm_version = $6 AND a.config_version = $7
                                    AND a.status = 'done')
                     THEN 'unchanged' ELSE 'pending' END
         FROM unnest($3::int8[], $4::text[]) AS l(number, head_sha)
         ON CONFLICT (job_id, number) DO NOTHING",
        &[
            &job_id,
            &repo_id,
            &numbers,
            &heads,
            &v.signature,
            &v.algorithm,
            &v.config,
        ],
    )
    .await?;
    Ok(())
}

/// Listed PRs of the scan still waiting for an analysis: (number, head, whether an analysis of
/// that head with these versions failed before), in one query.
pub async fn pending_prs(
    pool: &Pool,
    job_id: &str,
    repo_id: i64,
    v: super::analysis::Versions,
) -> StoreResult<Vec<(i64, String, bool)>> {
    let c = pool.get().await?;
    let rows = c
        .query(
            "SELECT p.number, p.head_sha, COALESCE(a.status = 'failed', FALSE)
             FROM scan_prs p
             LEFT JOIN analysis_runs a ON a.repo_id = $2 AND a.number = p.number
                  AND a.head_sha = p.head_sha AND a.signature_version = $3
                  AND a.algorithm_version = $4 AND a.config_version = $5
             WHERE p.job_id = $1 AND p.outcome = 'pending' ORDER BY p.number",
            &[&job_id, &repo_id, &v.signature, &v.algorithm, &v.config],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Marks the listing finished and the scan done if nothing is pending.
pub async fn finish_listing(pool: &Pool, job_id: &str) -> StoreResult<()> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    // The row lock serialises this with analyses settling PRs of the same scan.
    tx.execute(
        "UPDATE scan_jobs SET listing_done = TRUE WHERE job_id = $1",
        &[&job_id],
    )
    .await?;
    settle_scans(&tx, &[job_id.to_string()]).await?;
    tx.commit().await?;
    Ok(())
}

/// Marks every scan whose listing is finished and that has no pending PR as done.
pub async fn settle_scans(c: &impl GenericClient, job_ids: &[String]) -> StoreResult<()> {
    c.execute(
        "UPDATE scan_jobs j SET state = 'done', finished_at = now()
         WHERE j.job_id = ANY($1) AND j.listing_done AND j.state = 'running'
           AND NOT EXISTS (SELECT 1 FROM scan_prs p WHERE p.job_id = j.job_id AND p.outcome = 'pending')",
        &[&job_ids],
    )
    .await?;
    c.execute(
        "UPDATE repositories r SET last_scan_at = now()
         FROM scan_jobs j WHERE j.job_id = ANY($1) AND j.state = 'done' AND j.repo_id = r.repo_id",
        &[&job_ids],
    )
    .await?;
    Ok(())
}

/// One head's end, as a scan records it.
pub struct Settled<'a> {
    /// PR number.
    pub number: i64,
    /// Head.
    pub head_sha: &'a str,
    /// analyzed | unchanged | failed.
    pub outcome: &'a str,
    /// Where the diff came from (`mirror` | `rest`), when it was read.
    pub source: Option<&'a str>,
}

/// Settles the heads' pending entries in every scan that listed them, adds `api_calls` to those
/// scans, then marks finished scans done. Runs inside the caller's transaction.
pub async fn settle_heads(
    c: &impl GenericClient,
    repo_id: i64,
    heads: &[Settled<'_>],
    api_calls: i32,
) -> StoreResult<()> {
    if heads.is_empty() {
        return Ok(());
    }
    let numbers: Vec<i64> = heads.iter().map(|h| h.number).collect();
    let shas: Vec<&str> = heads.iter().map(|h| h.head_sha).collect();
    let outcomes: Vec<&str> = heads.iter().map(|h| h.outcome).collect();
    let sources: Vec<Option<&str>> = heads.iter().map(|h| h.source).collect();
    // Lock the scans first (in a fixed order), so that concurrent batches of one scan settle one
    // after the other and the last one always sees every other PR settled.
    let rows = c
        .query(
            "SELECT j.job_id FROM scan_jobs j
             WHERE j.repo_id = $1 AND EXISTS (
                 SELECT 1 FROM scan_prs p JOIN unnest($2::int8[], $3::text[]) AS h(number, head_sha)
                          ON p.number = h.number AND p.head_sha = h.head_sha
                 WHERE p.job_id = j.job_id AND p.outcome = 'pending')
             ORDER BY j.job_id FOR UPDATE",
            &[&repo_id, &numbers, &shas],
        )
        .await?;
    let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    if ids.is_empty() {
        return Ok(());
    }
    c.execute(
        "UPDATE scan_prs p SET outcome = h.outcome, source = COALESCE(h.source, p.source)
         FROM unnest($2::int8[], $3::text[], $4::text[], $5::text[]) AS h(number, head_sha, outcome, source)
         WHERE p.job_id = ANY($1) AND p.number = h.number AND p.head_sha = h.head_sha
           AND p.outcome = 'pending'",
        &[&ids, &numbers, &shas, &outcomes, &sources],
    )
    .await?;
    if api_calls > 0 {
        c.execute(
            "UPDATE scan_jobs SET api_calls = api_calls + $2 WHERE job_id = ANY($1)",
            &[&ids, &api_calls],
        )
        .await?;
    }
    settle_scans(c, &ids).await?;
    Ok(())
}

/// Marks a scan failed with an error message (a failed scan is final).
pub async fn fail_scan(pool: &Pool, job_id: &str, error: &str) -> StoreResult<()> {
    let c = pool.get().await?;
    c.execute(
        "UPDATE scan_jobs SET state = 'failed', error = $2, finished_at = now() WHERE job_id = $1",
        &[&job_id, &error],
    )
    .await?;
    Ok(())
}

/// Removes a scan row that was never queued (the queue push failed).
pub async fn delete_queued_scan(pool: &Pool, job_id: &str) -> StoreResult<()> {
    let c = pool.get().await?;
    c.execute(
        "DELETE FROM scan_jobs WHERE job_id = $1 AND state = 'queued' AND started_at IS NULL",
        &[&job_id],
    )
    .await?;
    Ok(())
}

/// Appends a plain-language remark to a scan (shown with its status).
pub async fn add_note(pool: &Pool, job_id: &str, note: &str) -> StoreResult<()> {
    let c = pool.get().await?;
    c.execute(
        "UPDATE scan_jobs SET notes = notes || to_jsonb($2::text) WHERE job_id = $1
           AND NOT notes @> jsonb_build_array($2::text)",
        &[&job_id, &note],
    )
    .await?;
    Ok(())
}
