//! The `public-pr-scan` job: list the open PRs (conditional requests, newest first, capped),
//! upsert them, close the ones that left the open list, and queue one analysis per head not yet
//! analysed with the current versions. Safe to run twice: every step is an upsert, counters are
//! counted from rows, and analysis pushes de-duplicate by job id.

use std::sync::atomic::Ordering;

use apalis::prelude::*;
use chrono::{TimeZone, Utc};

use super::{BatchHead, BatchJob, ScanJob, into_apalis_error};
use crate::github::{CallStats, GithubError};
use crate::state::AppState;
use crate::store::analysis::Versions;
use crate::store::{StoreError, repos, scans};

/// Why a scan failed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// GitHub failed.
    #[error(transparent)]
    Github(#[from] GithubError),
    /// Postgres failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Redis failed.
    #[error(transparent)]
    Queue(#[from] super::JobError),
    /// The data disk is nearly full (the sentence says how full).
    #[error("{0}")]
    DiskLow(String),
}

impl ScanError {
    fn is_permanent(&self) -> bool {
        match self {
            ScanError::Github(e) => !e.is_transient(),
            ScanError::Store(e) => !e.is_transient(),
            ScanError::Queue(super::JobError::BadId(_)) => true,
            ScanError::Queue(_) => false,
            ScanError::DiskLow(_) => false,
        }
    }
}

/// Why a scan could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The data disk is nearly full (the sentence says how full).
    #[error("{0}")]
    DiskLow(String),
    /// Postgres failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Redis failed.
    #[error(transparent)]
    Queue(#[from] super::JobError),
}

/// Records a scan and queues it, once per job id. Shared by the trigger, cron and webhooks.
pub async fn enqueue(
    state: &AppState,
    job: &ScanJob,
    trigger: &str,
    actor: Option<&str>,
) -> Result<super::PushOutcome, EnqueueError> {
    let job_id = job.job_id();
    // A scan on a nearly full disk would fail half-way; say so now instead.
    state.disk.ensure_room().map_err(EnqueueError::DiskLow)?;
    let created = scans::create_scan(
        &state.pool,
        &scans::NewScan {
            job_id: &job_id,
            owner: &job.owner,
            repo: &job.repo,
            snapshot: &job.snapshot,
            trigger,
            actor,
            max_open_prs: job.max_open_prs.map(|m| m as i32),
        },
    )
    .await?;
    if !created {
        return Ok(super::PushOutcome::Duplicate);
    }
    match state.queues.push_scan(job).await {
        Ok(_) => Ok(super::PushOutcome::Enqueued),
        Err(e) => {
            // Nothing queued: forget the row so that the same trigger can be sent again.
            let _ = scans::delete_queued_scan(&state.pool, &job_id).await;
            Err(e.into())
        }
    }
}

/// apalis entry point.
pub async fn handle(
    job: ScanJob,
    state: Data<AppState>,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    let job_id = job.job_id();
    if attempt.current() > super::MAX_ATTEMPTS {
        // The last attempt was cut off (the job timeout) before it could record its end.
        let msg = format!("gave up after {} attempts", super::MAX_ATTEMPTS);
        if let Err(e) = scans::fail_scan(&state.pool, &job_id, &msg).await {
            tracing::error!(scan = %job_id, error = %e, "could not record scan failure");
        }
        return Err(into_apalis_error(anyhow::anyhow!(msg), &attempt, true));
    }
    let stats = CallStats::new();
    let result = run(&state, &job, &stats).await;
    save_budget(&state, &job_id, &stats).await;
    match result {
        Ok(()) => Ok(()),
        Err(e) => {
            let permanent = e.is_permanent();
            let last = permanent || attempt.current() >= super::MAX_ATTEMPTS;
            tracing::warn!(scan = %job_id, attempt = attempt.current(), permanent, error = %e, "scan failed");
            if last && let Err(err) = scans::fail_scan(&state.pool, &job_id, &e.to_string()).await {
                tracing::error!(scan = %job_id, error = %err, "could not record scan failure");
            }
            Err(into_apalis_error(e.into(), &attempt, permanent))
        }
    }
}

async fn save_budget(state: &AppState, job_id: &str, stats: &CallStats) {
    let remaining = stats.remaining.load(Ordering::Relaxed);
    let reset = stats.reset.load(Ordering::Relaxed);
    let calls = stats.calls.load(Ordering::Relaxed) as i32;
    let reset_at = (reset > 0)
        .then(|| Utc.timestamp_opt(reset, 0).single())
        .flatten();
    let remaining = (remaining >= 0).then_some(remaining as i32);
    if let Err(e) = scans::record_calls(&state.pool, job_id, calls, remaining, reset_at).await {
        tracing::warn!(scan = %job_id, error = %e, "could not record API budget");
    }
}

/// The scan itself.
pub async fn run(state: &AppState, job: &ScanJob, stats: &CallStats) -> Result<(), ScanError> {
    let job_id = job.job_id();
    state.disk.ensure_room().map_err(ScanError::DiskLow)?;
    // Scans pushed by cron or the CLI have no row yet.
    scans::create_scan(
        &state.pool,
        &scans::NewScan {
            job_id: &job_id,
            owner: &job.owner,
            repo: &job.repo,
            snapshot: &job.snapshot,
            trigger: "queue",
            actor: None,
            max_open_prs: job.max_open_prs.map(|m| m as i32),
        },
    )
    .await?;
    let gh = &state.github;
    let info = gh.get_repo(&job.owner, &job.repo, stats).await?;
    let repo_id = {
        let c = state.pool.get().await.map_err(StoreError::from)?;
        repos::upsert_repo(&c, &job.owner, &job.repo, Some(&info.default_branch)).await?
    };
    let auth = gh.auth_kind(&job.owner, &job.repo).await;
    let notes = if auth == "anonymous" {
        serde_json::json!([
            "No GITHUB_TOKEN and no App installation for this repository: GitHub allows 60 requests per hour without one; large scans will wait for rate-limit resets."
        ])
    } else {
        serde_json::json!([])
    };
    scans::start_scan(&state.pool, &job_id, repo_id, auth, &notes).await?;

    let max = job.max_open_prs.map(|m| m as usize);
    let listing_started = {
        let c = state.pool.get().await.map_err(StoreError::from)?;
        repos::db_now(&c).await?
    };
    let (pulls, _unchanged_list) = gh
        .list_open_pulls(&job.owner, &job.repo, max, stats)
        .await?;
    let v = Versions::current(super::triage_config(state, repo_id).await?.as_ref());

    let numbers: Vec<i64> = pulls.iter().map(|p| p.number).collect();
    let vanished = {
        let mut c = state.pool.get().await.map_err(StoreError::from)?;
        let tx = c.transaction().await.map_err(StoreError::from)?;
        // Only PRs the listing shows changed are written (a re-scan of a quiet repository writes
        // nothing; `last_seen_at` is when a PR's row was last written); never let a slow listing
        // put back an older head than a webhook stored.
        let stored = repos::stored_versions(&tx, repo_id, &numbers).await?;
        let changed: Vec<&crate::github::PullSummary> = pulls
            .iter()
            .filter(|pr| {
                !stored
                    .get(&pr.number)
                    .is_some_and(|(head, state, updated)| {
                        *head == pr.head.sha
                            && state == pr.state_word()
                            && *updated == pr.updated_at
                    })
            })
            .collect();
        repos::upsert_listed_pulls(&tx, repo_id, &changed).await?;
        let heads: Vec<&str> = pulls.iter().map(|p| p.head.sha.as_str()).collect();
        scans::add_scan_prs(&tx, &job_id, repo_id, v, &numbers, &heads).await?;
        // With a cap, PRs beyond it were not listed: only a full listing can tell what closed.
        let vanished = if max.is_none() || pulls.len() < max.unwrap_or(usize::MAX) {
            repos::vanished_candidates(&tx, repo_id, &numbers, listing_started).await?
        } else {
            Vec::new()
        };
        tx.commit().await.map_err(StoreError::from)?;
        vanished
    };
    if !vanished.is_empty() {
        confirm_vanished(state, job, repo_id, v, &vanished, listing_started, stats).await?;
    }

    // Batched fetches bring the heads to analyse into the local mirror; analyses diff locally and
    // fall back to the REST files endpoint for heads the mirror lacks.
    let pending = scans::pending_prs(&state.pool, &job_id, repo_id, v).await?;
    if let Some(mirror) = &state.mirror
        && !pending.is_empty()
    {
        let mut bases: Vec<&str> = pulls.iter().map(|p| p.base.branch.as_str()).collect();
        bases.push(&info.default_branch);
        bases.sort_unstable();
        bases.dedup();
        // Only the heads this scan analyses are fetched; refs of PRs no longer listed go.
        let fetch: Vec<i64> = pending.iter().map(|(n, _, _)| *n).collect();
        let room = || state.disk.ensure_room();
        if let Err(e) = mirror
            .sync(&job.owner, &job.repo, &bases, &fetch, &numbers, &room)
            .await
        {
            tracing::warn!(scan = %job_id, error = %e, "git mirror unavailable; using the REST files endpoint");
            scans::add_note(
                &state.pool,
                &job_id,
                &format!("git mirror unavailable ({e}); diffs come from the REST files endpoint"),
            )
            .await?;
        }
    }
    // Postgres first, then the queue: a crash in between re-runs this job, which pushes the same
    // batches again (no-ops: a batch is named after its heads). A head whose analysis failed
    // before is tried again by each later scan.
    let batches: Vec<BatchJob> = pending
        .chunks(state.config.scan_batch_size)
        .map(|chunk| BatchJob {
            repo_id,
            owner: job.owner.clone(),
            repo: job.repo.clone(),
            snapshot: job.snapshot.clone(),
            heads: chunk
                .iter()
                .map(|(number, head_sha, _)| BatchHead {
                    number: *number,
                    head_sha: head_sha.clone(),
                })
                .collect(),
        })
        .collect();
    let queued = state.queues.push_batches(&batches).await?;
    scans::finish_listing(&state.pool, &job_id).await?;
    // PRs may have closed or changed head: cached result pages are stale.
    state.cache.bump().await;
    tracing::info!(scan = %job_id, listed = pulls.len(), pending = pending.len(),
        batches = batches.len(), batches_queued = queued,
        api_calls = stats.calls.load(Ordering::Relaxed), "scan listed");
    Ok(())
}

/// Most PRs one scan checks with `GET /pulls/{n}` before closing them; the rest stay open until
/// the next scan checks them.
pub const MAX_VANISHED_CHECKS: usize = 200;

/// PRs that a complete listing did not show may still be open: a listing takes time (pages,
/// rate-limit waits), and PRs closing meanwhile shift later pages, so an open PR can fall
/// between two pages. Each is asked for by number: a closed or merged one is stored as GitHub
/// has it, an open one stays open and joins this scan, one GitHub no longer knows (404) is
/// closed.
async fn confirm_vanished(
    state: &AppState,
    job: &ScanJob,
    repo_id: i64,
    v: Versions,
    candidates: &[i64],
    since: chrono::DateTime<Utc>,
    stats: &CallStats,
) -> Result<(), ScanError> {
    let job_id = job.job_id();
    let (mut closed, mut open) = (0u64, 0u64);
    let mut gone = Vec::new();
    for &n in candidates.iter().take(MAX_VANISHED_CHECKS) {
        match state
            .github
            .get_pull(&job.owner, &job.repo, n, None, stats)
            .await
        {
            Ok(pr) => {
                let mut c = state.pool.get().await.map_err(StoreError::from)?;
                let tx = c.transaction().await.map_err(StoreError::from)?;
                crate::store::app::upsert_pull_if_newer(&tx, repo_id, &pr).await?;
                if pr.state_word() == "open" {
                    scans::add_scan_prs(&tx, &job_id, repo_id, v, &[n], &[pr.head.sha.as_str()])
                        .await?;
                    open += 1;
                } else {
                    closed += 1;
                }
                tx.commit().await.map_err(StoreError::from)?;
            }
            Err(GithubError::NotFound(_)) => gone.push(n),
            Err(e) => {
                scans::add_note(
                    &state.pool,
                    &job_id,
                    &format!(
                        "could not check whether PRs missing from the listing closed ({e}); they stay open until the next scan"
                    ),
                )
                .await?;
                break;
            }
        }
    }
    if !gone.is_empty() {
        let mut c = state.pool.get().await.map_err(StoreError::from)?;
        let tx = c.transaction().await.map_err(StoreError::from)?;
        crate::store::analysis::lock_index(&tx, repo_id).await?;
        closed += repos::close_vanished(&tx, repo_id, &gone, since).await?;
        tx.commit().await.map_err(StoreError::from)?;
    }
    if candidates.len() > MAX_VANISHED_CHECKS {
        scans::add_note(
            &state.pool,
            &job_id,
            &format!(
                "{} PRs left the open list; {MAX_VANISHED_CHECKS} were checked, the next scan checks the rest",
                candidates.len()
            ),
        )
        .await?;
    }
    tracing::info!(scan = %job_id, missing = candidates.len(), closed, open, "PRs missing from the listing checked");
    Ok(())
}
