//! Analyses: PR heads → files (git mirror or REST) → triage signatures → index keys → candidates
//! → scored edges in both directions. A scan's heads are analysed in batches ([`BatchJob`]s on the
//! batch queue); a webhook's head is a batch of one ([`AnalyseJob`] on its own queue, so it never
//! waits behind a scan). Both run [`analyse_heads`]:
//!
//! 1. one query reads the heads' PR rows and analysis states; heads already analysed, superseded
//!    by a newer head, or started too often without finishing (a PR that crashes the process) are
//!    settled at once;
//! 2. the diffs are fetched concurrently (bounded);
//! 3. the engine runs on the blocking pool, spread over the cores;
//! 4. files, signatures and index keys are written in one transaction (a statement per table);
//! 5. the candidates of the whole batch are looked up in one query (heads of the batch are
//!    candidates of each other: they are indexed by now), their signatures loaded in one query
//!    in a binary encoding, their features' document frequencies in one more;
//! 6. pairs are scored on the blocking pool;
//! 7. edges, the analyses' ends and the scans' progress are written in one transaction.
//!
//! Running a batch twice changes nothing: heads analysed already are skipped, every write
//! replaces what the same head wrote before.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use apalis::prelude::*;
use futures::StreamExt;

use super::{AnalyseJob, BatchJob, into_apalis_error};
use crate::github::{CallStats, GithubError};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::analysis::{self, EdgeRow, Finished, IndexRow, Outcome, Versions};
use crate::triage::{
    self, Analysis, Category, Edge, FileChange, FileStatus, PrInput, Signature, TriageConfig,
};

/// Edges stored per analysed head, strongest first.
pub const TOP_EDGES: usize = 10;
/// Diffs of one batch fetched at once.
pub const FETCH_CONCURRENCY: usize = 8;
/// Longest wait for GitHub's rate limit inside an analysis job (well inside the jobs'
/// timeouts); heads that would wait longer are put off to a job scheduled after the reset.
pub const MAX_RATE_LIMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

/// Why an analysis failed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyseError {
    /// GitHub failed.
    #[error(transparent)]
    Github(#[from] GithubError),
    /// Postgres failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine task panicked or was cancelled.
    #[error("engine: {0}")]
    Engine(String),
    /// The data disk is nearly full (the sentence says how full).
    #[error("{0}")]
    DiskLow(String),
}

impl AnalyseError {
    fn is_permanent(&self) -> bool {
        match self {
            AnalyseError::Github(e) => !e.is_transient(),
            AnalyseError::Store(e) => !e.is_transient(),
            AnalyseError::Engine(_) => true,
            AnalyseError::DiskLow(_) => false,
        }
    }
}

/// The repository a batch belongs to.
#[derive(Debug, Clone)]
pub struct RepoRef {
    /// Repository row id.
    pub repo_id: i64,
    /// Owner.
    pub owner: String,
    /// Name.
    pub repo: String,
}

/// What a run of [`analyse_heads`] did.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Heads analysed now, or found analysed already: their check runs may need posting.
    pub done: Vec<(i64, String)>,
    /// Heads that failed for a reason retrying may fix (GitHub or mirror trouble), with the
    /// error; still `running`, for the job's next attempt.
    pub retry: Vec<(i64, String, String)>,
    /// Heads settled as failed for good.
    pub failed: usize,
    /// Heads put off until GitHub's rate limit resets, and when that is (unix seconds).
    pub deferred: Vec<(i64, String)>,
    /// The latest reset among the deferred heads.
    pub resume_at: i64,
}

/// Heads one webhook analysis job takes along (its own and others queued for the repository).
/// Small enough that a burst's first check runs go out while the rest is analysed (a burst of
/// 99: p50 0.76 s with 16, 1.17 s with 50; `cargo bench --bench checkrun`).
pub const WEBHOOK_BATCH: i64 = 16;
/// A head claimed by a job that has not finished it after this long is claimed again (the
/// claimer died); well above a webhook batch's duration.
pub const CLAIM_STALE: std::time::Duration = std::time::Duration::from_secs(120);

/// apalis entry point of a webhook's analysis (its own queue, never behind a scan). The job
/// claims its head and every other head of the repository whose delivery queued it, and
/// analyses them as one batch: a burst of deliveries becomes a few batches. A job whose head
/// another job claimed waits for that job to finish it (or to go stale, then claims it).
pub async fn handle(
    job: AnalyseJob,
    state: Data<AppState>,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    let repo = RepoRef {
        repo_id: job.repo_id,
        owner: job.owner.clone(),
        repo: job.repo.clone(),
    };
    let cfg = super::triage_config(&state, job.repo_id)
        .await
        .map_err(|e| into_apalis_error(e.into(), &attempt, false))?;
    let v = Versions::current(&cfg);
    let job_id = job.job_id();
    let waited_since = std::time::Instant::now();
    loop {
        let claimed = analysis::claim_webhook_heads(
            &state.pool,
            job.repo_id,
            (job.number, &job.head_sha),
            v,
            &state.worker,
            &job_id,
            CLAIM_STALE,
            WEBHOOK_BATCH,
        )
        .await
        .map_err(|e| into_apalis_error(e.into(), &attempt, false))?;
        if !claimed.is_empty() {
            let mine = claimed
                .iter()
                .any(|(n, h)| *n == job.number && *h == job.head_sha);
            run_job(
                &state, &repo, &claimed, &cfg, true, "webhook", &job_id, &attempt,
            )
            .await?;
            if mine {
                return Ok(());
            }
            continue;
        }
        // Done, or another job is on it: wait for that one (bounded: a claim goes stale).
        let status = {
            let c = state
                .pool
                .get()
                .await
                .map_err(|e| into_apalis_error(StoreError::from(e).into(), &attempt, false))?;
            analysis::analysis_status(&c, job.repo_id, job.number, &job.head_sha, v)
                .await
                .map_err(|e| into_apalis_error(e.into(), &attempt, false))?
        };
        if status.as_deref() != Some("running") || waited_since.elapsed() > 2 * CLAIM_STALE {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// apalis entry point of a scan's batch.
pub async fn handle_batch(
    job: BatchJob,
    state: Data<AppState>,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    let repo = RepoRef {
        repo_id: job.repo_id,
        owner: job.owner.clone(),
        repo: job.repo.clone(),
    };
    let heads: Vec<(i64, String)> = job
        .heads
        .iter()
        .map(|h| (h.number, h.head_sha.clone()))
        .collect();
    let job_id = job.job_id();
    let cfg = super::triage_config(&state, job.repo_id)
        .await
        .map_err(|e| into_apalis_error(e.into(), &attempt, false))?;
    run_job(
        &state,
        &repo,
        &heads,
        &cfg,
        false,
        &job.snapshot,
        &job_id,
        &attempt,
    )
    .await
}

/// Runs the heads of one job and turns the result into what apalis should do: done, retry (the
/// next attempt skips heads that finished), or give up after [`super::MAX_ATTEMPTS`], recording
/// every head still unfinished as failed so that no scan waits for it forever. An attempt beyond
/// the cap (the previous one was cut off, e.g. by the job timeout) only records. `cfg`: the
/// repository's engine settings, read once by the job (the versions its heads were claimed
/// under).
#[allow(clippy::too_many_arguments)]
async fn run_job(
    state: &AppState,
    repo: &RepoRef,
    heads: &[(i64, String)],
    cfg: &Arc<TriageConfig>,
    claimed: bool,
    snapshot: &str,
    job_id: &str,
    attempt: &Attempt,
) -> Result<(), BoxDynError> {
    let v = Versions::current(cfg);
    let refs: Vec<(i64, &str)> = heads.iter().map(|(n, h)| (*n, h.as_str())).collect();
    if attempt.current() > super::MAX_ATTEMPTS {
        let msg = format!("gave up after {} attempts", super::MAX_ATTEMPTS);
        let res = analysis::fail_heads(&state.pool, repo.repo_id, v, &refs, &msg).await;
        tracing::warn!(job = %job_id, error = ?res.err(), "analysis job over its attempts; heads recorded as failed");
        return Err(into_apalis_error(anyhow::anyhow!(msg), attempt, true));
    }
    let started = std::time::Instant::now();
    let result = analyse_heads(state, repo, &refs, cfg, job_id, claimed).await;
    crate::metrics::analysis_job_finished(
        snapshot == "webhook",
        started,
        result.as_ref().map_or(refs.len(), |r| r.retry.len()),
    );
    let last = |permanent: bool| permanent || attempt.current() >= super::MAX_ATTEMPTS;
    match result {
        Ok(report) => {
            if !report.deferred.is_empty() {
                defer(state, repo, snapshot, &report)
                    .await
                    .map_err(|e| into_apalis_error(e.into(), attempt, false))?;
            }
            if !report.done.is_empty()
                && let Err(e) =
                    super::check_run::after_analysis(state, repo, &report.done, cfg).await
            {
                return Err(into_apalis_error(e, attempt, false));
            }
            if report.retry.is_empty() {
                return Ok(());
            }
            let first = report.retry[0].2.clone();
            tracing::warn!(job = %job_id, attempt = attempt.current(), heads = report.retry.len(), error = %first, "heads of the batch failed; retrying them");
            if last(false) {
                let left: Vec<(i64, &str)> = report
                    .retry
                    .iter()
                    .map(|(n, h, _)| (*n, h.as_str()))
                    .collect();
                analysis::fail_heads(&state.pool, repo.repo_id, v, &left, &first)
                    .await
                    .map_err(|e| into_apalis_error(e.into(), attempt, false))?;
            }
            Err(into_apalis_error(anyhow::anyhow!(first), attempt, false))
        }
        Err(e) => {
            let permanent = e.is_permanent();
            tracing::warn!(job = %job_id, attempt = attempt.current(), permanent, error = %e, "analysis failed");
            if last(permanent) {
                let _ =
                    analysis::fail_heads(&state.pool, repo.repo_id, v, &refs, &e.to_string()).await;
            }
            Err(into_apalis_error(e.into(), attempt, permanent))
        }
    }
}

/// Queues the heads GitHub's rate limit put off as a batch that runs after the reset.
async fn defer(
    state: &AppState,
    repo: &RepoRef,
    snapshot: &str,
    report: &BatchReport,
) -> Result<(), super::JobError> {
    let wait = (report.resume_at - chrono::Utc::now().timestamp()).max(0) as u64 + 1;
    let job = BatchJob {
        repo_id: repo.repo_id,
        owner: repo.owner.clone(),
        repo: repo.repo.clone(),
        snapshot: format!("{snapshot}-after{}", report.resume_at),
        heads: report
            .deferred
            .iter()
            .map(|(number, head_sha)| super::BatchHead {
                number: *number,
                head_sha: head_sha.clone(),
            })
            .collect(),
    };
    tracing::warn!(
        heads = job.heads.len(),
        wait_secs = wait,
        "GitHub's rate limit is spent; heads put off until it resets"
    );
    state
        .queues
        .push_batch_after(&job, std::time::Duration::from_secs(wait))
        .await?;
    Ok(())
}

/// Maps GitHub's file entries to engine input.
pub fn file_changes(files: Vec<crate::github::FileEntry>) -> Vec<FileChange> {
    files
        .into_iter()
        .map(|f| FileChange {
            status: FileStatus::from_github(&f.status),
            path: f.filename,
            previous_path: f.previous_filename,
            additions: f.additions,
            deletions: f.deletions,
            patch: f.patch,
            // The blob id: the same binary file in two PRs is evidence.
            sha: f.sha,
        })
        .collect()
}

/// Runs `f` over `items` on the blocking pool, spread over the machine's cores, keeping the
/// input order.
async fn on_cores<T, R>(
    items: Vec<T>,
    f: impl Fn(T) -> R + Send + Sync + 'static,
) -> Result<Vec<R>, AnalyseError>
where
    T: Send + 'static,
    R: Send + 'static,
{
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = items.len().div_ceil(cores).max(1);
    let f = Arc::new(f);
    let span = tracing::Span::current();
    let mut tasks = Vec::new();
    let mut items = items.into_iter();
    loop {
        let chunk: Vec<T> = items.by_ref().take(per).collect();
        if chunk.is_empty() {
            break;
        }
        let f = f.clone();
        let span = span.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            let _g = span.enter();
            chunk.into_iter().map(|x| f(x)).collect::<Vec<R>>()
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.extend(t.await.map_err(|e| AnalyseError::Engine(e.to_string()))?);
    }
    Ok(out)
}

/// A head whose diff was read.
struct Fetched {
    number: i64,
    head_sha: String,
    source: &'static str,
    input: PrInput,
    /// What the mirror left out (files over its blob limit, a diff cut at its cap): recorded
    /// with the analysis, which then counts as done, so a hostile PR is never retried for it.
    notes: Vec<String>,
    /// The base branch (whose `.gitattributes` applies).
    base_ref: String,
}

/// The repository's `.gitattributes` (its linguist rules: vendored, generated, documentation) on
/// each base branch of the batch, read from the mirror once per batch and base branch. Without
/// a mirror the built-in path rules alone apply.
async fn repo_attributes(
    state: &AppState,
    repo: &RepoRef,
    inputs: &[Fetched],
) -> HashMap<String, triage::Attributes> {
    let mut out = HashMap::new();
    let Some(mirror) = &state.mirror else {
        return out;
    };
    let bases: BTreeSet<&str> = inputs.iter().map(|f| f.base_ref.as_str()).collect();
    for base in bases {
        let text = mirror
            .file_on_branch(
                &repo.owner,
                &repo.repo,
                base,
                ".gitattributes",
                triage::attributes::MAX_ATTRIBUTES_BYTES + 1,
            )
            .await;
        if let Some(text) = text {
            out.insert(base.to_string(), triage::Attributes::parse(&text));
        }
    }
    out
}

/// One head through the engine.
struct Analysed {
    number: i64,
    head_sha: String,
    source: &'static str,
    analysis: Analysis,
    keys: Vec<String>,
    encoded: Result<Vec<u8>, String>,
}

/// A head's files, where they came from, and what the mirror left out.
type Diff = (Vec<crate::github::FileEntry>, &'static str, Vec<String>);

/// Reads one head's files from the REST files endpoint. `Ok(None)` when the PR is gone from
/// GitHub.
async fn rest_diff(
    state: &AppState,
    repo: &RepoRef,
    number: i64,
    stats: &CallStats,
) -> Result<Option<Diff>, GithubError> {
    match state
        .github
        .list_files(&repo.owner, &repo.repo, number, stats)
        .await
    {
        Ok(files) => Ok(Some((files, "rest", Vec::new()))),
        Err(GithubError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Analyses `heads` of one repository for job `job` (see the module documentation); `claimed`
/// when the job marked them `running` already. Errors are returned only for trouble that
/// concerns the whole batch (Postgres, the disk); a head whose diff cannot be read is reported in
/// [`BatchReport::retry`] or settled as failed, and the others go on.
pub async fn analyse_heads(
    state: &AppState,
    repo: &RepoRef,
    heads: &[(i64, &str)],
    cfg: &Arc<TriageConfig>,
    job: &str,
    claimed: bool,
) -> Result<BatchReport, AnalyseError> {
    let v = Versions::current(cfg);
    state.disk.ensure_room().map_err(AnalyseError::DiskLow)?;
    let pool = &state.pool;
    let repo_id = repo.repo_id;
    let mut report = BatchReport::default();
    let mut clock = StageClock::start();
    let rows = {
        let c = pool.get().await.map_err(StoreError::from)?;
        analysis::load_heads(&c, repo_id, heads, v).await?
    };

    // 1. What needs doing.
    let mut settled: Vec<(i64, String, Outcome, Option<String>, bool)> = Vec::new();
    let mut work = Vec::new();
    for r in rows {
        match &r.pr {
            // The PR row is gone, or a newer head has its own analysis.
            None => settled.push((r.number, r.head_sha, Outcome::Unchanged, None, false)),
            Some(pr) if pr.head_sha != r.head_sha => {
                settled.push((r.number, r.head_sha, Outcome::Unchanged, None, false))
            }
            Some(_) if r.status.as_deref() == Some("done") => {
                report.done.push((r.number, r.head_sha.clone()));
                settled.push((r.number, r.head_sha, Outcome::Analyzed, None, false));
            }
            // Started this often and never finished: something about this head ends the process
            // (memory, a hang past the timeout). Give up on it instead of taking its batch down
            // again and again.
            Some(_)
                if r.status.as_deref() == Some("running")
                    && r.attempts as usize >= super::MAX_ATTEMPTS =>
            {
                let msg = format!(
                    "gave up: the analysis was started {} times and never finished",
                    r.attempts
                );
                settled.push((r.number, r.head_sha, Outcome::Failed, Some(msg), true));
            }
            Some(pr) => work.push((r.number, r.head_sha.clone(), pr.clone())),
        }
    }
    let begun: Vec<(i64, &str)> = work.iter().map(|(n, h, _)| (*n, h.as_str())).collect();
    if !begun.is_empty() && !claimed {
        analysis::begin_analyses(pool, repo_id, &begun, v, &state.worker, job).await?;
    }
    clock.lap("claim");

    // The scan fetched its heads into the mirror of the machine it ran on; a scan batch that
    // runs on another machine (or after this one was replaced) fetches what its mirror lacks,
    // once, rather than asking the REST API for every head. Heads still missing then come from
    // REST as usual.
    if let Some(m) = &state.mirror
        && job.starts_with("batch:")
        && !work.is_empty()
    {
        let heads: Vec<(i64, &str)> = work.iter().map(|(n, h, _)| (*n, h.as_str())).collect();
        let mut bases: Vec<&str> = work.iter().map(|(_, _, pr)| pr.base_ref.as_str()).collect();
        bases.sort_unstable();
        bases.dedup();
        let room = || state.disk.ensure_room();
        match m
            .ensure(&repo.owner, &repo.repo, &heads, &bases, &room)
            .await
        {
            Ok(0) => {}
            Ok(fetched) => {
                tracing::info!(
                    job,
                    fetched,
                    "fetched the batch's heads into this machine's mirror"
                )
            }
            Err(e) => {
                tracing::warn!(job, error = %e, "git mirror fetch failed; using the REST files endpoint")
            }
        }
        clock.lap("mirror");
    }

    // 2. Diffs: the mirror's for the whole batch at once (a few git commands for all heads),
    // then the REST files endpoint for the heads it lacks, a few at a time.
    let mut mirrored: Vec<Option<Diff>> = work.iter().map(|_| None).collect();
    if let Some(m) = &state.mirror {
        let heads: Vec<(&str, &str)> = work
            .iter()
            .map(|(_, h, pr)| (h.as_str(), pr.base_ref.as_str()))
            .collect();
        let diffs = m.diffs(&repo.owner, &repo.repo, &heads).await;
        for ((slot, d), (number, _, _)) in mirrored.iter_mut().zip(diffs).zip(&work) {
            match d {
                Ok(d) => *slot = Some((d.files, "mirror", d.degraded)),
                Err(e) => {
                    tracing::debug!(number, error = %e, "mirror diff unavailable; using REST")
                }
            }
        }
    }
    let stats = CallStats::bounded(MAX_RATE_LIMIT_WAIT);
    let reads: Vec<_> = work
        .into_iter()
        .zip(mirrored)
        .map(|((number, head_sha, pr), mirrored)| {
            let stats = &stats;
            async move {
                let r = match mirrored {
                    Some(d) => Ok(Some(d)),
                    None => rest_diff(state, repo, number, stats).await,
                };
                (number, head_sha, pr, r)
            }
        })
        .collect();
    let fetched: Vec<_> = futures::stream::iter(reads)
        .buffered(FETCH_CONCURRENCY)
        .collect()
        .await;
    let mut inputs = Vec::new();
    for (number, head_sha, pr, r) in fetched {
        match r {
            Ok(Some((files, source, notes))) => inputs.push(Fetched {
                number,
                input: PrInput {
                    number: number as u64,
                    title: pr.title,
                    body: pr.body,
                    author: pr.author,
                    created_at: pr.created_at.timestamp(),
                    head_sha: head_sha.clone(),
                    files: file_changes(files),
                },
                head_sha,
                source,
                notes,
                base_ref: pr.base_ref.clone(),
            }),
            Ok(None) => settled.push((
                number,
                head_sha,
                Outcome::Failed,
                Some("the PR is gone from GitHub (404)".into()),
                true,
            )),
            Err(GithubError::RateLimited { reset_at }) => {
                report.resume_at = report.resume_at.max(reset_at);
                let when = chrono::DateTime::from_timestamp(reset_at, 0)
                    .map_or_else(|| reset_at.to_string(), |t| t.to_rfc3339());
                settled.push((
                    number,
                    head_sha.clone(),
                    Outcome::Deferred,
                    Some(format!(
                        "GitHub's rate limit is spent; tried again after {when}"
                    )),
                    true,
                ));
                report.deferred.push((number, head_sha));
            }
            Err(e) if e.is_transient() => report.retry.push((number, head_sha, e.to_string())),
            Err(e) => settled.push((number, head_sha, Outcome::Failed, Some(e.to_string()), true)),
        }
    }

    let attributes = Arc::new(repo_attributes(state, repo, &inputs).await);
    clock.lap("fetch");

    // 3. The engine, on every core.
    let engine_cfg = cfg.clone();
    let none = Arc::new(triage::Attributes::none());
    let analysed: Vec<Analysed> = on_cores(inputs, move |f: Fetched| {
        let attrs = attributes.get(&f.base_ref).unwrap_or(none.as_ref());
        let mut analysis = triage::analyse_with(&f.input, &engine_cfg, attrs);
        analysis.degraded.extend(f.notes);
        let keys = triage::index_keys(&analysis.signature, &engine_cfg);
        let encoded = analysis::encode_signature(&analysis.signature).map_err(|e| e.to_string());
        Analysed {
            number: f.number,
            head_sha: f.head_sha,
            source: f.source,
            analysis,
            keys,
            encoded,
        }
    })
    .await?;
    let mut ok = Vec::new();
    for a in analysed {
        match &a.encoded {
            Ok(_) => ok.push(a),
            Err(e) => {
                let msg = e.clone();
                settled.push((a.number, a.head_sha, Outcome::Failed, Some(msg), true));
            }
        }
    }
    let analysed = ok;
    clock.lap("engine");

    // 4. Files, signatures and index keys.
    let index_rows: Vec<IndexRow<'_>> = analysed
        .iter()
        .map(|a| IndexRow {
            number: a.number,
            head_sha: &a.head_sha,
            analysis: &a.analysis,
            encoded: a.encoded.clone().unwrap_or_default(),
            keys: &a.keys,
            // Bot PRs pair like any other unless `[bots] scope = "all"`.
            matchable: !(a.analysis.is_bot && cfg.excludes_bots_entirely()),
        })
        .collect();
    let written = if index_rows.is_empty() {
        BTreeMap::new()
    } else {
        analysis::save_index(pool, repo_id, v, &index_rows).await?
    };
    drop(index_rows);
    clock.lap("index");

    // 5–6. Candidates and scores of every indexed head.
    let indexed: Vec<&Analysed> = analysed
        .iter()
        .filter(|a| written.get(&a.number) == Some(&true))
        .collect();
    let scored = if indexed.is_empty() {
        Vec::new()
    } else {
        score_batch(state, repo_id, cfg, &indexed, &mut clock).await?
    };

    // 7. Edges, the analyses' ends and the scans' progress.
    let mut edge_count: HashMap<i64, i32> = HashMap::new();
    for s in &scored {
        *edge_count.entry(s.number).or_default() += 1;
    }
    let edge_rows: Vec<EdgeRow<'_>> = scored
        .iter()
        .map(|s| EdgeRow {
            number: s.number,
            head_sha: &s.head_sha,
            other_number: s.other,
            other_head_sha: &s.other_head,
            edge: &s.edge,
            reverse: &s.reverse,
        })
        .collect();
    let mut finished: Vec<Finished<'_>> = Vec::new();
    for a in &analysed {
        let current = written.contains_key(&a.number);
        finished.push(Finished {
            number: a.number,
            head_sha: &a.head_sha,
            outcome: if current {
                Outcome::Analyzed
            } else {
                Outcome::Unchanged
            },
            source: Some(a.source),
            degraded: &a.analysis.degraded,
            candidates: edge_count.get(&a.number).copied().unwrap_or(0),
            error: (!current).then_some("superseded: the PR's head changed before it was stored"),
            record: true,
        });
    }
    for (number, head_sha, outcome, error, record) in &settled {
        finished.push(Finished {
            number: *number,
            head_sha,
            outcome: *outcome,
            source: None,
            degraded: &[],
            candidates: 0,
            error: error.as_deref(),
            record: *record,
        });
    }
    let calls = stats.calls.load(Ordering::Relaxed) as i32;
    let outcomes = analysis::save_results(pool, repo_id, v, &finished, &edge_rows, calls).await?;
    crate::metrics::analyses_settled(&outcomes);
    clock.lap("results");
    tracing::info!(
        repo = %format!("{}/{}", repo.owner, repo.repo),
        heads = heads.len(),
        analysed = analysed.len(),
        edges = scored.len(),
        api_calls = calls,
        ms = %clock,
        "batch analysed"
    );
    for (f, o) in finished.iter().zip(&outcomes) {
        match o {
            Outcome::Analyzed if f.record => report.done.push((f.number, f.head_sha.to_string())),
            Outcome::Failed => report.failed += 1,
            _ => {}
        }
    }
    if !analysed.is_empty() {
        state.cache.bump().await;
    }
    Ok(report)
}

/// One scored pair, from `number`'s side (the reverse is kept for the other direction).
struct Scored {
    number: i64,
    head_sha: String,
    other: i64,
    other_head: String,
    edge: Edge,
    reverse: Edge,
}

/// Looks up the candidates of every indexed head of the batch in one query, loads the
/// candidates' signatures and their features' document frequencies, and scores every pair on
/// every core. Keeps the [`TOP_EDGES`] strongest edges of each head.
async fn score_batch(
    state: &AppState,
    repo_id: i64,
    cfg: &Arc<TriageConfig>,
    indexed: &[&Analysed],
    clock: &mut StageClock,
) -> Result<Vec<Scored>, AnalyseError> {
    let v = Versions::current(cfg);
    let cfg = cfg.clone();
    let c = state.pool.get().await.map_err(StoreError::from)?;
    // Postings and document frequencies of every key of the batch, in one query.
    let mut keys: Vec<&str> = indexed
        .iter()
        .flat_map(|a| a.keys.iter().map(String::as_str))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let postings =
        analysis::postings(&c, repo_id, v, &keys, cfg.candidates.max_posting as i64).await?;
    clock.lap("postings");
    let by_key: HashMap<&str, &analysis::Posting> =
        postings.iter().map(|p| (p.key.as_str(), p)).collect();
    let candidates: Vec<Vec<u64>> = indexed
        .iter()
        .map(|a| {
            let mine: Vec<(String, Vec<u64>)> = a
                .keys
                .iter()
                .filter_map(|k| by_key.get(k.as_str()))
                .map(|p| (p.key.clone(), p.numbers.clone()))
                .collect();
            triage::rank_candidates(a.number as u64, &mine, &cfg)
        })
        .collect();

    // Signatures: the batch's own from memory, the others in one query.
    let mut sigs: HashMap<u64, (String, Arc<Signature>)> = indexed
        .iter()
        .map(|a| {
            (
                a.number as u64,
                (a.head_sha.clone(), Arc::new(a.analysis.signature.clone())),
            )
        })
        .collect();
    let wanted: BTreeSet<i64> = candidates
        .iter()
        .flatten()
        .filter(|n| !sigs.contains_key(n))
        .map(|&n| n as i64)
        .collect();
    let wanted: Vec<i64> = wanted.into_iter().collect();
    let stored = if wanted.is_empty() {
        Vec::new()
    } else {
        analysis::load_signatures(&c, repo_id, v, &wanted).await?
    };
    clock.lap("candidates");
    let decoded = on_cores(stored, |(n, h, bytes): (i64, String, Vec<u8>)| {
        analysis::decode_signature(&bytes).map(|s| (n, h, s))
    })
    .await?;
    for d in decoded {
        let (n, h, s) = d?;
        sigs.insert(n as u64, (h, Arc::new(s)));
    }

    // Document frequencies of the common keys (at least three carriers; the engine counts any
    // rarer feature as two).
    let df = analysis::common_keys(&c, repo_id, v).await?;
    drop(c);
    clock.lap("frequencies");

    // Every pair of every head, on every core.
    let ctx = Arc::new(triage::ScoreContext::from_fn(move |k| {
        df.get(&analysis::key_id(k)).copied().unwrap_or(0)
    }));
    type Job = (
        i64,
        String,
        Arc<Signature>,
        Vec<(u64, String, Arc<Signature>)>,
    );
    let jobs: Vec<Job> = indexed
        .iter()
        .zip(candidates)
        .map(|(a, cands)| {
            let list = cands
                .into_iter()
                .filter_map(|n| sigs.get(&n).map(|(h, s)| (n, h.clone(), s.clone())))
                .collect();
            let me = sigs[&(a.number as u64)].1.clone();
            (a.number, a.head_sha.clone(), me, list)
        })
        .collect();
    let per_head: Vec<Vec<Scored>> = on_cores(jobs, move |(number, head_sha, me, list): Job| {
        let mut out: Vec<Scored> = Vec::new();
        for (n, other_head, sig) in list {
            let e = triage::score(&me, &sig, &ctx, &cfg);
            if e.category == Category::NotRelated {
                continue;
            }
            let r = triage::score(&sig, &me, &ctx, &cfg);
            out.push(Scored {
                number,
                head_sha: head_sha.clone(),
                other: n as i64,
                other_head,
                edge: e,
                reverse: r,
            });
        }
        out.sort_by(|a, b| {
            b.edge
                .final_score
                .total_cmp(&a.edge.final_score)
                .then(a.other.cmp(&b.other))
        });
        out.truncate(TOP_EDGES);
        out
    })
    .await?;
    clock.lap("score");
    Ok(per_head.into_iter().flatten().collect())
}

/// Wall time of each stage of a batch, for its log line (`claim=3 fetch=120 ...`, in ms).
struct StageClock {
    last: std::time::Instant,
    laps: Vec<(&'static str, u128)>,
}

impl StageClock {
    fn start() -> Self {
        StageClock {
            last: std::time::Instant::now(),
            laps: Vec::new(),
        }
    }

    fn lap(&mut self, stage: &'static str) {
        let now = std::time::Instant::now();
        self.laps.push((stage, (now - self.last).as_millis()));
        self.last = now;
    }
}

impl std::fmt::Display for StageClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (stage, ms)) in self.laps.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{stage}={ms}")?;
        }
        Ok(())
    }
}
