//! GitHub App mode: webhook deliveries, installations, PR state from webhook payloads (with
//! stale-event protection), check runs and the once-per-pair label and comment records.

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};

use super::{StoreError, StoreResult};
use crate::pull::PullSummary;

/// Outcome of claiming a webhook delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First time seen (or a previous attempt never got its jobs queued): process it.
    New,
    /// Processed before: answer "duplicate" and do nothing.
    Duplicate,
    /// The same signed body arrived before under another delivery id: a replay of a captured
    /// delivery (the id is not covered by the signature). Answer "duplicate", do nothing.
    Replay,
}

/// Who the webhook a delivery is: its id, what it is about, and the SHA-256 of its signed body.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// `X-GitHub-Delivery` (kept on redelivery).
    pub id: &'a str,
    /// `X-GitHub-Event`.
    pub event: &'a str,
    /// The payload's `action`.
    pub action: Option<&'a str>,
    /// `owner/name`, when the event is about one repository.
    pub repo_full: Option<&'a str>,
    /// Hex SHA-256 of the body (the signed bytes).
    pub body_sha256: &'a str,
}

/// Records a delivery as `pending` inside the caller's transaction. A delivery seen before is a
/// duplicate unless it is still `pending`, which means the earlier attempt committed its state
/// change but its jobs were not queued; then it is processed again (the job pushes
/// de-duplicate by id, so a concurrent double is harmless). A body seen before under another
/// delivery id is a replay. After `Duplicate` or `Replay` the transaction must be dropped.
pub async fn claim_delivery(c: &impl GenericClient, d: &Delivery<'_>) -> StoreResult<Claim> {
    let replayed = c
        .query_opt(
            "SELECT 1 FROM webhook_deliveries WHERE body_sha256 = $1 AND delivery_id <> $2",
            &[&d.body_sha256, &d.id],
        )
        .await?;
    if replayed.is_some() {
        return Ok(Claim::Replay);
    }
    let row = c
        .query_opt(
            "INSERT INTO webhook_deliveries (delivery_id, event, action, repo_full, outcome, body_sha256)
             VALUES ($1, $2, $3, $4, 'pending', $5)
             ON CONFLICT (delivery_id) DO UPDATE SET received_at = now()
               WHERE webhook_deliveries.outcome = 'pending'
             RETURNING delivery_id",
            &[&d.id, &d.event, &d.action, &d.repo_full, &d.body_sha256],
        )
        .await;
    match row {
        Ok(Some(_)) => Ok(Claim::New),
        Ok(None) => Ok(Claim::Duplicate),
        // Two copies of one body under different ids at the same moment: the second loses here.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            Ok(Claim::Replay)
        }
        Err(e) => Err(e.into()),
    }
}

/// Sets a delivery's outcome (`queued`, `done`, `stale`) and forgets its jobs.
pub async fn set_delivery_outcome(
    c: &impl GenericClient,
    delivery_id: &str,
    outcome: &str,
) -> StoreResult<()> {
    c.execute(
        "UPDATE webhook_deliveries SET outcome = $2, jobs = NULL WHERE delivery_id = $1",
        &[&delivery_id, &outcome],
    )
    .await?;
    Ok(())
}

/// Keeps a delivery `pending` with the jobs it has to queue (in the transaction of its state
/// change, so the jobs can never be lost: the sweeper queues what was not).
pub async fn set_delivery_jobs(
    c: &impl GenericClient,
    delivery_id: &str,
    jobs: &serde_json::Value,
) -> StoreResult<()> {
    c.execute(
        "UPDATE webhook_deliveries SET outcome = 'pending', jobs = $2 WHERE delivery_id = $1",
        &[&delivery_id, &jobs],
    )
    .await?;
    Ok(())
}

/// Deliveries still `pending` with jobs, received more than `older_than_secs` ago, oldest
/// first: their jobs never reached the queue.
pub async fn pending_deliveries(
    pool: &Pool,
    older_than_secs: i64,
    limit: i64,
) -> StoreResult<Vec<(String, serde_json::Value)>> {
    let c = pool.get().await?;
    let rows = c
        .query(
            "SELECT delivery_id, jobs FROM webhook_deliveries
             WHERE outcome = 'pending' AND jobs IS NOT NULL
               AND received_at < now() - make_interval(secs => $1::float8)
             ORDER BY received_at LIMIT $2",
            &[&(older_than_secs as f64), &limit],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Active repositories with an App installation (`owner`, `name`).
pub async fn installed_repos(pool: &Pool) -> StoreResult<Vec<(String, String)>> {
    let c = pool.get().await?;
    let rows = c
        .query(
            "SELECT owner, name FROM repositories
             WHERE installation_id IS NOT NULL AND active
             ORDER BY lower(owner), lower(name) LIMIT 10000",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The outcome recorded for a delivery.
pub async fn delivery_outcome(pool: &Pool, delivery_id: &str) -> StoreResult<Option<String>> {
    let c = pool.get().await?;
    let row = c
        .query_opt(
            "SELECT outcome FROM webhook_deliveries WHERE delivery_id = $1",
            &[&delivery_id],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Finds or creates a repository that an installation covers, records the installation and
/// makes it active again. Returns the repository id.
pub async fn attach_installation(
    c: &impl GenericClient,
    owner: &str,
    name: &str,
    default_branch: Option<&str>,
    installation_id: i64,
) -> StoreResult<i64> {
    // Unchanged (the common case, once per delivery): read only, so deliveries of one repository
    // do not queue behind each other's lock on its row.
    if let Some((id, branch, installation, active)) =
        super::repos::find_repo(c, owner, name).await?
        && default_branch.is_none_or(|b| b == branch)
        && installation == Some(installation_id)
        && active
    {
        return Ok(id);
    }
    let repo_id = super::repos::upsert_repo(c, owner, name, default_branch).await?;
    c.execute(
        "UPDATE repositories SET installation_id = $2, active = TRUE, updated_at = now()
         WHERE repo_id = $1",
        &[&repo_id, &installation_id],
    )
    .await?;
    Ok(repo_id)
}

/// Removes repositories from an installation: they lose the installation and become inactive
/// (hidden from the API). `names` are `owner/name`; None means every repository of the
/// installation. Returns how many were deactivated.
pub async fn detach_installation(
    c: &impl GenericClient,
    installation_id: i64,
    names: Option<&[String]>,
) -> StoreResult<u64> {
    let n = match names {
        None => {
            c.execute(
                "UPDATE repositories SET installation_id = NULL, active = FALSE, updated_at = now()
                 WHERE installation_id = $1",
                &[&installation_id],
            )
            .await?
        }
        Some(names) => {
            let lower: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
            c.execute(
                "UPDATE repositories SET installation_id = NULL, active = FALSE, updated_at = now()
                 WHERE installation_id = $1
                   AND lower(owner) || '/' || lower(name) = ANY($2)",
                &[&installation_id, &lower],
            )
            .await?
        }
    };
    Ok(n)
}

/// Suspends (`active = false`) or resumes every repository of an installation.
pub async fn set_installation_active(
    c: &impl GenericClient,
    installation_id: i64,
    active: bool,
) -> StoreResult<u64> {
    Ok(c.execute(
        "UPDATE repositories SET active = $2, updated_at = now() WHERE installation_id = $1",
        &[&installation_id, &active],
    )
    .await?)
}

/// The installation of an active repository, by name (case-insensitive).
pub async fn installation_of(pool: &Pool, owner: &str, name: &str) -> StoreResult<Option<i64>> {
    let c = pool.get().await?;
    let row = c
        .query_opt(
            "SELECT installation_id FROM repositories
             WHERE lower(owner) = lower($1) AND lower(name) = lower($2) AND active",
            &[&owner, &name],
        )
        .await?;
    Ok(row.and_then(|r| r.get(0)))
}

/// What applying a webhook's `pull_request` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullChange {
    /// The payload is older than what is stored (`updated_at`); nothing changed.
    Stale,
    /// Stored. `previous_head` is the head before (None for a new PR).
    Applied {
        /// Head before the event.
        previous_head: Option<String>,
    },
}

/// Upserts a PR from a webhook payload unless the stored row is newer. Events about one PR are
/// serialised by an advisory lock, so an older head arriving after a newer one (GitHub does not
/// guarantee order) never overwrites it. An event with the same `updated_at` is applied
/// (redeliveries and events of one moment carry the same state).
pub async fn upsert_pull_if_newer(
    c: &impl GenericClient,
    repo_id: i64,
    pr: &PullSummary,
) -> StoreResult<PullChange> {
    if pr.state_word() != "open" {
        // Its index keys go below: the repository's index lock first, as every index writer.
        super::analysis::lock_index(c, repo_id).await?;
    }
    c.execute(
        "SELECT pg_advisory_xact_lock(hashtext('pr:' || $1::int8::text || ':' || $2::int8::text)::int8)",
        &[&repo_id, &pr.number],
    )
    .await?;
    let row = c
        .query_opt(
            "SELECT updated_at FROM pull_requests WHERE repo_id = $1 AND number = $2",
            &[&repo_id, &pr.number],
        )
        .await?;
    if let Some(r) = row {
        let stored: DateTime<Utc> = r.get(0);
        if pr.updated_at < stored {
            return Ok(PullChange::Stale);
        }
    }
    let previous_head = super::repos::upsert_pull(c, repo_id, pr).await?;
    if pr.state_word() != "open" {
        // Closed or merged: the PR stops matching (sets only use open PRs).
        c.execute(
            "DELETE FROM index_keys WHERE repo_id = $1 AND number = $2",
            &[&repo_id, &pr.number],
        )
        .await?;
    }
    Ok(PullChange::Applied { previous_head })
}

/// Makes the next analysis of a head run in full (a reopened PR must re-enter the index, which
/// closing emptied): forgets a finished analysis of it.
pub async fn reset_analysis(
    c: &impl GenericClient,
    repo_id: i64,
    number: i64,
    head_sha: &str,
) -> StoreResult<()> {
    c.execute(
        "DELETE FROM analysis_runs WHERE repo_id = $1 AND number = $2 AND head_sha = $3",
        &[&repo_id, &number, &head_sha],
    )
    .await?;
    Ok(())
}

/// What the check-run job needs about a PR.
#[derive(Debug, Clone)]
pub struct CheckTarget {
    /// Current head.
    pub head_sha: String,
    /// open | closed | merged.
    pub state: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// The repository's installation (None: no App access).
    pub installation_id: Option<i64>,
    /// Whether the repository is active.
    pub active: bool,
}

/// Loads a PR with its repository's installation.
pub async fn check_target(
    pool: &Pool,
    repo_id: i64,
    number: i64,
) -> StoreResult<Option<CheckTarget>> {
    let c = pool.get().await?;
    let row = c
        .query_opt(
            "SELECT p.head_sha, p.state, p.created_at, r.installation_id, r.active
             FROM pull_requests p JOIN repositories r ON r.repo_id = p.repo_id
             WHERE p.repo_id = $1 AND p.number = $2",
            &[&repo_id, &number],
        )
        .await?;
    Ok(row.map(|r| CheckTarget {
        head_sha: r.get(0),
        state: r.get(1),
        created_at: r.get(2),
        installation_id: r.get(3),
        active: r.get(4),
    }))
}

/// Whether the repository has an active installation.
pub async fn repo_installation(pool: &Pool, repo_id: i64) -> StoreResult<Option<i64>> {
    let c = pool.get().await?;
    let row = c
        .query_opt(
            "SELECT installation_id FROM repositories WHERE repo_id = $1 AND active",
            &[&repo_id],
        )
        .await?;
    Ok(row.and_then(|r| r.get(0)))
}

/// The open PRs (current heads) that `number`'s head links to with one of `categories` at
/// `min_score` or more, whose own analysis with versions `v` is done: their check runs mention
/// it. A linked PR still being analysed is left out (its own analysis posts its check run; asking
/// for it now would use up the check run's immediate post of the debounce window).
#[allow(clippy::too_many_arguments)]
pub async fn linked_open_prs(
    pool: &Pool,
    repo_id: i64,
    number: i64,
    head_sha: &str,
    categories: &[&str],
    min_score: f64,
    v: super::analysis::Versions,
) -> StoreResult<Vec<(i64, String)>> {
    let c = pool.get().await?;
    let cats: Vec<String> = categories.iter().map(|s| s.to_string()).collect();
    let rows = c
        .query(
            "SELECT DISTINCT o.number, o.head_sha FROM candidate_edges e
             JOIN pull_requests o ON o.repo_id = e.repo_id AND o.number = e.other_number
                                 AND o.head_sha = e.other_head_sha
             JOIN analysis_runs a ON a.repo_id = o.repo_id AND a.number = o.number
                                 AND a.head_sha = o.head_sha AND a.status = 'done'
                                 AND a.signature_version = $6 AND a.algorithm_version = $7
                                 AND a.config_version = $8
             WHERE e.repo_id = $1 AND e.number = $2 AND e.head_sha = $3 AND o.state = 'open'
               AND e.category = ANY($4) AND e.final_score >= $5
             ORDER BY o.number",
            &[
                &repo_id,
                &number,
                &head_sha,
                &cats,
                &min_score,
                &v.signature,
                &v.algorithm,
                &v.config,
            ],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The stored check run of a head.
pub async fn check_run_id(
    c: &impl GenericClient,
    repo_id: i64,
    number: i64,
    head_sha: &str,
) -> StoreResult<Option<(i64, Option<String>)>> {
    let row = c
        .query_opt(
            "SELECT check_run_id, output_sha FROM check_runs
             WHERE repo_id = $1 AND number = $2 AND head_sha = $3",
            &[&repo_id, &number, &head_sha],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Takes the per-head lock that serialises check-run posts (held until the transaction ends),
/// so two jobs of one head never both create a check run.
pub async fn lock_check_run(
    c: &impl GenericClient,
    repo_id: i64,
    number: i64,
    head_sha: &str,
) -> StoreResult<()> {
    c.execute(
        "SELECT pg_advisory_xact_lock(hashtext('check:' || $1::int8::text || ':' || $2::int8::text || ':' || $3::text)::int8)",
        &[&repo_id, &number, &head_sha],
    )
    .await?;
    Ok(())
}

/// Records a head's check run (created or updated) and what it shows.
pub async fn save_check_run(
    c: &impl GenericClient,
    repo_id: i64,
    number: i64,
    head_sha: &str,
    check_run_id: i64,
    title: &str,
    output_sha: &str,
) -> StoreResult<()> {
    c.execute(
        "INSERT INTO check_runs (repo_id, number, head_sha, check_run_id, title, output_sha)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (repo_id, number, head_sha) DO UPDATE SET check_run_id = $4, title = $5,
             output_sha = $6, updated_at = now()",
        &[
            &repo_id,
            &number,
            &head_sha,
            &check_run_id,
            &title,
            &output_sha,
        ],
    )
    .await?;
    Ok(())
}

/// Claims the right to post a label or comment for a pair; false when it was posted (or is
/// being posted) already.
pub async fn claim_pair_notice(
    pool: &Pool,
    repo_id: i64,
    pair: (i64, i64),
    kind: &str,
    target: i64,
) -> StoreResult<bool> {
    let (a, b) = (pair.0.min(pair.1), pair.0.max(pair.1));
    if a == b {
        return Err(StoreError::Decode("a pair needs two PRs".into()));
    }
    let c = pool.get().await?;
    let n = c
        .execute(
            "INSERT INTO pair_notices (repo_id, a_number, b_number, kind, target_number)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[&repo_id, &a, &b, &kind, &target],
        )
        .await?;
    Ok(n == 1)
}

/// Releases a claim whose post failed, so a later run tries again.
pub async fn release_pair_notice(
    pool: &Pool,
    repo_id: i64,
    pair: (i64, i64),
    kind: &str,
) -> StoreResult<()> {
    let (a, b) = (pair.0.min(pair.1), pair.0.max(pair.1));
    let c = pool.get().await?;
    c.execute(
        "DELETE FROM pair_notices WHERE repo_id = $1 AND a_number = $2 AND b_number = $3 AND kind = $4",
        &[&repo_id, &a, &b, &kind],
    )
    .await?;
    Ok(())
}

/// Creation time of a PR (to tell which of a pair came later).
pub async fn pr_created_at(
    pool: &Pool,
    repo_id: i64,
    number: i64,
) -> StoreResult<Option<DateTime<Utc>>> {
    let c = pool.get().await?;
    let row = c
        .query_opt(
            "SELECT created_at FROM pull_requests WHERE repo_id = $1 AND number = $2",
            &[&repo_id, &number],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}
