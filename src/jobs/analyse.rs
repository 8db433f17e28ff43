//! The analyse job: one PR head → files (REST) → triage signature → index keys → candidates →
//! scored edges in both directions. Running it twice for the same head changes nothing.

use apalis::prelude::*;

use super::{AnalyseJob, into_apalis_error};
use crate::github::{CallStats, GithubError};
use crate::state::AppState;
use crate::store::analysis::{self, EdgeRow, Versions};
use crate::store::{StoreError, scans};
use crate::triage::{self, Category, FileChange, FileStatus, PrInput};

/// Edges stored per analysed head, strongest first.
pub const TOP_EDGES: usize = 10;

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

/// apalis entry point.
pub async fn handle(
    job: AnalyseJob,
    state: Data<AppState>,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    let v = Versions::current(&state.triage);
    match run(&state, &job, v).await {
        // App and hybrid modes: the verdict goes to the PR's Checks tab (its own job).
        Ok(()) => super::check_run::after_analysis(&state, &job)
            .await
            .map_err(|e| into_apalis_error(e, &attempt, false)),
        Err(e) => {
            let permanent = e.is_permanent();
            let last = permanent || attempt.current() >= super::MAX_ATTEMPTS;
            tracing::warn!(job = %job.job_id(), attempt = attempt.current(), permanent, error = %e, "analysis failed");
            if last {
                let msg = e.to_string();
                let _ = analysis::finish_analysis(
                    &state.pool,
                    job.repo_id,
                    job.number,
                    &job.head_sha,
                    v,
                    "failed",
                    None,
                    &[],
                    0,
                    Some(&msg),
                )
                .await;
                let _ = scans::settle_head(
                    &state.pool,
                    job.repo_id,
                    job.number,
                    &job.head_sha,
                    "failed",
                    None,
                    0,
                )
                .await;
            }
            Err(into_apalis_error(e.into(), &attempt, permanent))
        }
    }
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
        })
        .collect()
}

async fn run(state: &AppState, job: &AnalyseJob, v: Versions) -> Result<(), AnalyseError> {
    let pool = &state.pool;
    state.disk.ensure_room().map_err(AnalyseError::DiskLow)?;
    let pr = match analysis::load_pr(pool, job.repo_id, job.number).await {
        Ok(pr) => pr,
        Err(StoreError::NotFound) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if pr.head_sha != job.head_sha {
        // Superseded: the newer head has its own job.
        scans::settle_head(
            pool,
            job.repo_id,
            job.number,
            &job.head_sha,
            "unchanged",
            None,
            0,
        )
        .await?;
        return Ok(());
    }
    {
        let c = pool.get().await.map_err(StoreError::from)?;
        if analysis::analysis_status(&c, job.repo_id, job.number, &job.head_sha, v)
            .await?
            .as_deref()
            == Some("done")
        {
            drop(c);
            scans::settle_head(
                pool,
                job.repo_id,
                job.number,
                &job.head_sha,
                "analyzed",
                None,
                0,
            )
            .await?;
            return Ok(());
        }
    }
    analysis::begin_analysis(pool, job.repo_id, job.number, &job.head_sha, v).await?;

    let stats = CallStats::new();
    let mirrored = match &state.mirror {
        Some(m) => match m
            .diff(&job.owner, &job.repo, &job.head_sha, &pr.base_ref)
            .await
        {
            Ok(diff) => Some(diff),
            Err(e) => {
                tracing::debug!(job = %job.job_id(), error = %e, "mirror diff unavailable; using REST");
                None
            }
        },
        None => None,
    };
    let source = if mirrored.is_some() { "mirror" } else { "rest" };
    // What the mirror left out (files over the blob limit, a diff cut at the cap) is recorded
    // with the analysis, which then counts as done: a hostile PR is never retried for it.
    let (files, mirror_notes) = match mirrored {
        Some(d) => (d.files, d.degraded),
        None => match state
            .github
            .list_files(&job.owner, &job.repo, job.number, &stats)
            .await
        {
            Ok(f) => (f, Vec::new()),
            Err(GithubError::NotFound(_)) => {
                let msg = "the PR is gone from GitHub (404)";
                analysis::finish_analysis(
                    pool,
                    job.repo_id,
                    job.number,
                    &job.head_sha,
                    v,
                    "failed",
                    Some("rest"),
                    &[],
                    0,
                    Some(msg),
                )
                .await?;
                scans::settle_head(
                    pool,
                    job.repo_id,
                    job.number,
                    &job.head_sha,
                    "failed",
                    Some("rest"),
                    stats.calls.load(std::sync::atomic::Ordering::Relaxed) as i32,
                )
                .await?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        },
    };
    let input = PrInput {
        number: job.number as u64,
        title: pr.title.clone(),
        body: pr.body.clone(),
        author: pr.author.clone(),
        created_at: pr.created_at.timestamp(),
        head_sha: job.head_sha.clone(),
        files: file_changes(files),
    };
    let cfg = state.triage.clone();
    let span = tracing::Span::current();
    let (mut result, keys) = tokio::task::spawn_blocking(move || {
        let _g = span.enter();
        let a = triage::analyse(&input, &cfg);
        let keys = triage::index_keys(&a.signature, &cfg);
        (a, keys)
    })
    .await
    .map_err(|e| AnalyseError::Engine(e.to_string()))?;
    result.degraded.extend(mirror_notes);
    let matchable = !result.is_bot && pr.state == "open";
    let keys = if matchable { keys } else { Vec::new() };
    analysis::save_signature(
        pool,
        job.repo_id,
        job.number,
        &job.head_sha,
        v,
        &result,
        &keys,
    )
    .await?;

    let mut stored = 0;
    if matchable {
        let postings = analysis::postings(
            pool,
            job.repo_id,
            v,
            &keys,
            state.triage.candidates.max_posting as i64,
        )
        .await?;
        let cands = triage::rank_candidates(job.number as u64, &postings, &state.triage);
        let numbers: Vec<i64> = cands.iter().map(|&n| n as i64).collect();
        let others = analysis::load_signatures(pool, job.repo_id, v, &numbers).await?;
        // Document frequencies of every feature of both sides of every pair to score.
        let mut feature_keys: Vec<String> = triage::feature_keys(&result.signature, &state.triage);
        for (_, _, sig) in &others {
            feature_keys.extend(triage::feature_keys(sig, &state.triage));
        }
        feature_keys.sort_unstable();
        feature_keys.dedup();
        let counts = analysis::key_counts(pool, job.repo_id, v, &feature_keys).await?;
        let cfg = state.triage.clone();
        let me = result.signature.clone();
        let scored = tokio::task::spawn_blocking(move || {
            let ctx = triage::ScoreContext::from_counts(counts);
            let mut out = Vec::new();
            for (n, head, sig) in others {
                let e = triage::score(&me, &sig, &ctx, &cfg);
                if e.category == Category::NotRelated {
                    continue;
                }
                let r = triage::score(&sig, &me, &ctx, &cfg);
                out.push((n, head, e, r));
            }
            out.sort_by(|a, b| {
                b.2.final_score
                    .total_cmp(&a.2.final_score)
                    .then(a.0.cmp(&b.0))
            });
            out.truncate(TOP_EDGES);
            out
        })
        .await
        .map_err(|e| AnalyseError::Engine(e.to_string()))?;
        let rows: Vec<EdgeRow<'_>> = scored
            .iter()
            .map(|(n, head, e, r)| EdgeRow {
                other_number: *n,
                other_head_sha: head,
                edge: e,
                reverse: r,
            })
            .collect();
        stored = rows.len() as i32;
        analysis::save_edges(pool, job.repo_id, job.number, &job.head_sha, v, &rows).await?;
    }
    state.cache.bump();
    analysis::finish_analysis(
        pool,
        job.repo_id,
        job.number,
        &job.head_sha,
        v,
        "done",
        Some(source),
        &result.degraded,
        stored,
        None,
    )
    .await?;
    scans::settle_head(
        pool,
        job.repo_id,
        job.number,
        &job.head_sha,
        "analyzed",
        Some(source),
        stats.calls.load(std::sync::atomic::Ordering::Relaxed) as i32,
    )
    .await?;
    Ok(())
}
