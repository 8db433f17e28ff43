//! Analyses of PR heads: signatures, files with channels, index keys and candidate edges.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};

use super::{StoreError, StoreResult};
use crate::triage::{self, Analysis, Edge, Signature};

/// GitHub's word for a file status.
fn to_json<T: serde::Serialize>(x: &T) -> StoreResult<serde_json::Value> {
    serde_json::to_value(x).map_err(|e| StoreError::Decode(e.to_string()))
}

fn status_word(s: triage::FileStatus) -> &'static str {
    use triage::FileStatus::*;
    match s {
        Added => "added",
        Removed => "removed",
        Modified => "modified",
        Renamed => "renamed",
        Copied => "copied",
        Changed => "changed",
        Unchanged => "unchanged",
    }
}

/// The versions every derived row carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    /// Signature format.
    pub signature: i32,
    /// Scoring algorithm.
    pub algorithm: i32,
    /// Triage config.
    pub config: i32,
}

impl Versions {
    /// The versions of this build with the given triage config.
    pub fn current(cfg: &triage::TriageConfig) -> Self {
        Versions {
            signature: triage::SIGNATURE_VERSION,
            algorithm: triage::ALGORITHM_VERSION,
            config: cfg.config_version,
        }
    }
}

/// What the analyse job needs of a PR row.
#[derive(Debug, Clone)]
pub struct PrRow {
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Author login.
    pub author: String,
    /// Current head.
    pub head_sha: String,
    /// open | closed | merged.
    pub state: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Base branch.
    pub base_ref: String,
}

/// Loads a PR.
pub async fn load_pr(pool: &Pool, repo_id: i64, number: i64) -> StoreResult<PrRow> {
    let c = pool.get().await?;
    let r = c
        .query_opt(
            "SELECT title, body, author, head_sha, state, created_at, base_ref FROM pull_requests
             WHERE repo_id = $1 AND number = $2",
            &[&repo_id, &number],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(PrRow {
        title: r.get(0),
        body: r.get(1),
        author: r.get(2),
        head_sha: r.get(3),
        state: r.get(4),
        created_at: r.get(5),
        base_ref: r.get(6),
    })
}

/// The status of a head's analysis with these versions (`done`, `failed`, `running`), if any,
/// and the number of failed attempts so far.
pub async fn analysis_status(
    c: &impl GenericClient,
    repo_id: i64,
    number: i64,
    head_sha: &str,
    v: Versions,
) -> StoreResult<Option<String>> {
    let row = c
        .query_opt(
            "SELECT status FROM analysis_runs WHERE repo_id = $1 AND number = $2 AND head_sha = $3
               AND signature_version = $4 AND algorithm_version = $5 AND config_version = $6",
            &[
                &repo_id,
                &number,
                &head_sha,
                &v.signature,
                &v.algorithm,
                &v.config,
            ],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Records that an analysis started (or started again); returns the attempt number.
pub async fn begin_analysis(
    pool: &Pool,
    repo_id: i64,
    number: i64,
    head_sha: &str,
    v: Versions,
) -> StoreResult<i32> {
    let c = pool.get().await?;
    let row = c
        .query_one(
            "INSERT INTO analysis_runs (repo_id, number, head_sha, signature_version, algorithm_version,
                 config_version, status, attempts)
             VALUES ($1, $2, $3, $4, $5, $6, 'running', 1)
             ON CONFLICT (repo_id, number, head_sha, signature_version, algorithm_version, config_version)
             DO UPDATE SET status = CASE WHEN analysis_runs.status = 'done' THEN 'done' ELSE 'running' END,
                           attempts = analysis_runs.attempts + 1, error = NULL, started_at = now()
             RETURNING attempts",
            &[&repo_id, &number, &head_sha, &v.signature, &v.algorithm, &v.config],
        )
        .await?;
    Ok(row.get(0))
}

/// Marks an analysis finished.
#[allow(clippy::too_many_arguments)]
pub async fn finish_analysis(
    pool: &Pool,
    repo_id: i64,
    number: i64,
    head_sha: &str,
    v: Versions,
    status: &str,
    source: Option<&str>,
    degraded: &[String],
    candidates: i32,
    error: Option<&str>,
) -> StoreResult<()> {
    let c = pool.get().await?;
    let degraded = serde_json::to_value(degraded).map_err(|e| StoreError::Decode(e.to_string()))?;
    c.execute(
        "UPDATE analysis_runs SET status = $7, source = COALESCE($8, source), degraded = $9,
             candidates = $10, error = $11, finished_at = now()
         WHERE repo_id = $1 AND number = $2 AND head_sha = $3 AND signature_version = $4
           AND algorithm_version = $5 AND config_version = $6",
        &[
            &repo_id,
            &number,
            &head_sha,
            &v.signature,
            &v.algorithm,
            &v.config,
            &status,
            &source,
            &degraded,
            &candidates,
            &error,
        ],
    )
    .await?;
    Ok(())
}

/// Stores a head's files, signature and index keys in one transaction, replacing what an older
/// head of the same PR had. `keys` is empty for PRs that must not be matched (bots, closed).
pub async fn save_signature(
    pool: &Pool,
    repo_id: i64,
    number: i64,
    head_sha: &str,
    v: Versions,
    analysis: &Analysis,
    keys: &[String],
) -> StoreResult<()> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    tx.execute(
        "DELETE FROM pr_files WHERE repo_id = $1 AND number = $2",
        &[&repo_id, &number],
    )
    .await?;
    let files = &analysis.files;
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let previous: Vec<Option<&str>> = files.iter().map(|f| f.previous_path.as_deref()).collect();
    let statuses: Vec<&str> = files.iter().map(|f| status_word(f.status)).collect();
    let additions: Vec<i32> = files.iter().map(|f| f.additions as i32).collect();
    let deletions: Vec<i32> = files.iter().map(|f| f.deletions as i32).collect();
    let channels: Vec<&str> = files.iter().map(|f| f.channel.as_str()).collect();
    let binary: Vec<bool> = files.iter().map(|f| f.binary).collect();
    let truncated: Vec<bool> = files.iter().map(|f| f.truncated).collect();
    tx.execute(
        "INSERT INTO pr_files (repo_id, number, head_sha, path, previous_path, status, additions,
             deletions, channel, is_binary, truncated, signature_version, config_version)
         SELECT $1, $2, $3, f.path, f.previous_path, f.status, f.additions, f.deletions,
                f.channel, f.is_binary, f.truncated, $12, $13
         FROM unnest($4::text[], $5::text[], $6::text[], $7::int4[], $8::int4[], $9::text[],
                     $10::bool[], $11::bool[])
              AS f(path, previous_path, status, additions, deletions, channel, is_binary, truncated)
         ON CONFLICT DO NOTHING",
        &[
            &repo_id,
            &number,
            &head_sha,
            &paths,
            &previous,
            &statuses,
            &additions,
            &deletions,
            &channels,
            &binary,
            &truncated,
            &v.signature,
            &v.config,
        ],
    )
    .await?;
    let sig = to_json(&analysis.signature)?;
    let sizes = to_json(&analysis.channel_sizes)?;
    let canonical =
        Some(analysis.signature.prod.change.canonical_hash.as_str()).filter(|h| !h.is_empty());
    let p = &analysis.channel_sizes.production;
    let production_lines = (p.additions + p.deletions) as i32;
    tx.execute(
        "DELETE FROM pr_signatures WHERE repo_id = $1 AND number = $2 AND head_sha <> $3",
        &[&repo_id, &number, &head_sha],
    )
    .await?;
    tx.execute(
        "INSERT INTO pr_signatures (repo_id, number, head_sha, signature_version, config_version,
             signature, channel_sizes, is_bot, canonical_hash, production_lines)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (repo_id, number, head_sha, signature_version, config_version)
         DO UPDATE SET signature = $6, channel_sizes = $7, is_bot = $8, canonical_hash = $9,
                       production_lines = $10",
        &[
            &repo_id,
            &number,
            &head_sha,
            &v.signature,
            &v.config,
            &sig,
            &sizes,
            &analysis.is_bot,
            &canonical,
            &production_lines,
        ],
    )
    .await?;
    tx.execute(
        "DELETE FROM index_keys WHERE repo_id = $1 AND number = $2",
        &[&repo_id, &number],
    )
    .await?;
    if !keys.is_empty() {
        tx.execute(
            "INSERT INTO index_keys (repo_id, key, number, head_sha, signature_version, config_version)
             SELECT $1, k, $2, $3, $4, $5 FROM unnest($6::text[]) AS k
             ON CONFLICT DO NOTHING",
            &[&repo_id, &number, &head_sha, &v.signature, &v.config, &keys],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// For each key, the open PRs (current heads) that carry it. Keys carried by more than
/// `max_postings` PRs return no numbers: they are too common to pick candidates by.
pub async fn postings(
    pool: &Pool,
    repo_id: i64,
    v: Versions,
    keys: &[String],
    max_postings: i64,
) -> StoreResult<Vec<(String, Vec<u64>)>> {
    let c = pool.get().await?;
    // Document frequencies come from `key_counts` (kept by triggers); only the short posting
    // lists are read. Each key is one primary-key probe (LATERAL with LIMIT 1, which the planner
    // cannot flatten into a join, fixes that plan whatever the statistics say: with `key = ANY($4)` or a plain join, stale statistics during a first scan
    // made the planner walk the repository's whole key range, up to seconds per analysis).
    let rows = c
        .query(
            "SELECT c.key, c.n,
                    CASE WHEN c.n <= $5 THEN
                      (SELECT array_agg(k.number ORDER BY k.number) FROM index_keys k
                       WHERE k.repo_id = $1 AND k.signature_version = $2 AND k.config_version = $3
                         AND k.key = c.key)
                    END
             FROM unnest($4::text[]) AS q(key)
             CROSS JOIN LATERAL (
                 SELECT k.key, k.n FROM key_counts k
                 WHERE k.repo_id = $1 AND k.signature_version = $2 AND k.config_version = $3
                   AND k.key = q.key AND k.n > 0 LIMIT 1) c
             ORDER BY c.key",
            &[
                &repo_id,
                &v.signature,
                &v.config,
                &keys,
                &(max_postings as i32),
            ],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let key: String = r.get(0);
        let numbers: Option<Vec<i64>> = r.get(2);
        out.push((
            key,
            numbers
                .unwrap_or_default()
                .into_iter()
                .map(|n| n as u64)
                .collect(),
        ));
    }
    Ok(out)
}

/// Current-head signatures (with these versions) of open PRs among `numbers`.
pub async fn load_signatures(
    pool: &Pool,
    repo_id: i64,
    v: Versions,
    numbers: &[i64],
) -> StoreResult<Vec<(i64, String, Signature)>> {
    let c = pool.get().await?;
    let rows = c
        .query(
            "SELECT s.number, s.head_sha, s.signature FROM pr_signatures s
             JOIN pull_requests p ON p.repo_id = s.repo_id AND p.number = s.number AND p.head_sha = s.head_sha
             WHERE s.repo_id = $1 AND s.signature_version = $2 AND s.config_version = $3
               AND s.number = ANY($4) AND p.state = 'open'
             ORDER BY s.number",
            &[&repo_id, &v.signature, &v.config, &numbers],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let value: serde_json::Value = r.get(2);
        let sig: Signature =
            serde_json::from_value(value).map_err(|e| StoreError::Decode(e.to_string()))?;
        out.push((r.get(0), r.get(1), sig));
    }
    Ok(out)
}

/// One scored pair to store.
pub struct EdgeRow<'a> {
    /// The other PR.
    pub other_number: i64,
    /// Its head.
    pub other_head_sha: &'a str,
    /// Score and evidence from `number`'s side.
    pub edge: &'a Edge,
    /// Score and evidence from the other side.
    pub reverse: &'a Edge,
}

/// Stores the edges a head found, both directions of each pair, and removes edges of older heads
/// of this PR. Edges of this head that another PR's analysis stored are kept: when two PRs are
/// analysed at the same moment only the later one may see the other, and the earlier one must
/// not delete what the later one found (that would leave the pair pointing one way only).
pub async fn save_edges(
    pool: &Pool,
    repo_id: i64,
    number: i64,
    head_sha: &str,
    v: Versions,
    edges: &[EdgeRow<'_>],
) -> StoreResult<()> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    // Both directions of a pair are written by whichever head is analysed; serialise edge
    // writes per repository so that two analyses never lock the same pair in opposite orders.
    tx.execute(
        "SELECT pg_advisory_xact_lock(7, $1::int4)",
        &[&((repo_id % i64::from(i32::MAX)) as i32)],
    )
    .await?;
    tx.execute(
        "DELETE FROM candidate_edges WHERE repo_id = $1 AND
           ((number = $2 AND head_sha <> $3) OR (other_number = $2 AND other_head_sha <> $3))",
        &[&repo_id, &number, &head_sha],
    )
    .await?;
    // Both directions of every pair, in one statement.
    let n = edges.len() * 2;
    let mut numbers = Vec::with_capacity(n);
    let mut heads = Vec::with_capacity(n);
    let mut others = Vec::with_capacity(n);
    let mut other_heads = Vec::with_capacity(n);
    let mut categories = Vec::with_capacity(n);
    let mut finals = Vec::with_capacity(n);
    let mut scores = Vec::with_capacity(n);
    let mut evidence = Vec::with_capacity(n);
    for e in edges {
        for (from, from_head, to, to_head, edge) in [
            (number, head_sha, e.other_number, e.other_head_sha, e.edge),
            (
                e.other_number,
                e.other_head_sha,
                number,
                head_sha,
                e.reverse,
            ),
        ] {
            numbers.push(from);
            heads.push(from_head);
            others.push(to);
            other_heads.push(to_head);
            categories.push(edge.category.as_str());
            finals.push(edge.final_score);
            scores.push(to_json(&edge.scores)?);
            evidence.push(to_json(&edge.evidence)?);
        }
    }
    tx.execute(
        "INSERT INTO candidate_edges (repo_id, number, head_sha, other_number, other_head_sha,
             category, final_score, scores, evidence, signature_version, algorithm_version, config_version)
         SELECT $1, e.number, e.head_sha, e.other_number, e.other_head_sha, e.category,
                e.final_score, e.scores, e.evidence, $10, $11, $12
         FROM unnest($2::int8[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::float8[],
                     $8::jsonb[], $9::jsonb[])
              AS e(number, head_sha, other_number, other_head_sha, category, final_score, scores, evidence)
         ON CONFLICT (repo_id, number, head_sha, other_number, other_head_sha) DO UPDATE SET
             category = EXCLUDED.category, final_score = EXCLUDED.final_score,
             scores = EXCLUDED.scores, evidence = EXCLUDED.evidence,
             signature_version = EXCLUDED.signature_version,
             algorithm_version = EXCLUDED.algorithm_version,
             config_version = EXCLUDED.config_version, created_at = now()",
        &[
            &repo_id,
            &numbers,
            &heads,
            &others,
            &other_heads,
            &categories,
            &finals,
            &scores,
            &evidence,
            &v.signature,
            &v.algorithm,
            &v.config,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// How many current heads carry each of `keys` (the document frequencies scoring discounts by).
pub async fn key_counts(
    pool: &Pool,
    repo_id: i64,
    v: Versions,
    keys: &[String],
) -> StoreResult<BTreeMap<String, u32>> {
    let c = pool.get().await?;
    let rows = c
        .query(
            "SELECT c.key, c.n FROM unnest($4::text[]) AS q(key)
             CROSS JOIN LATERAL (
                 SELECT k.key, k.n FROM key_counts k
                 WHERE k.repo_id = $1 AND k.signature_version = $2 AND k.config_version = $3
                   AND k.key = q.key AND k.n > 0 LIMIT 1) c",
            &[&repo_id, &v.signature, &v.config, &keys],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i32>(1) as u32))
        .collect())
}
