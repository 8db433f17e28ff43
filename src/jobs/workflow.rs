//! The workflow queue: set refreshes (stable ids, new and grown sets), plan applies, outgoing
//! webhook deliveries and digests. A queue and a worker of their own, so none of them ever
//! waits behind, or holds up, an analysis.
//!
//! Ids follow the design's pattern and read back identically from apalis:
//! `sets:{owner}/{repo}:{watermark}`, `apply:{plan_id}`, `hook:{delivery_id}:{attempt}`,
//! `digest:{owner}/{repo}:{period}`. Webhook retries are new jobs with a delay (our backoff and
//! our cap, see [`crate::workflow::notify`]); other jobs give up after [`super::MAX_ATTEMPTS`].
//!
//! [`upkeep`] runs beside the workers: every few seconds it queues a refresh for each repository
//! whose results changed (by watermark), queues digests when `DIGEST_SCHEDULE` ticks, and now
//! and then re-reads each repository's settings file.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use apalis::prelude::*;
use serde::{Deserialize, Serialize};

use super::{PushOutcome, into_apalis_error};
use crate::state::AppState;
use crate::store::sets::{self as registry, ActiveRepo};
use crate::workflow::{self, WorkflowError};

/// How often [`upkeep`] looks for changed results.
pub const REFRESH_POLL: Duration = Duration::from_secs(2);

/// One unit of workflow work.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum WorkflowJob {
    /// Recompute and record a repository's sets.
    #[serde(rename_all = "camelCase")]
    RefreshSets {
        /// Repository.
        repo_id: i64,
        /// Owner.
        owner: String,
        /// Name.
        repo: String,
        /// What the results looked like when it was queued.
        watermark: String,
    },
    /// Apply a plan.
    #[serde(rename_all = "camelCase")]
    ApplyPlan {
        /// Repository.
        repo_id: i64,
        /// The plan.
        plan_id: String,
    },
    /// Attempt an outgoing webhook delivery.
    #[serde(rename_all = "camelCase")]
    Deliver {
        /// The delivery.
        delivery_id: String,
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// Write a repository's digest.
    #[serde(rename_all = "camelCase")]
    Digest {
        /// Repository.
        repo_id: i64,
        /// Owner.
        owner: String,
        /// Name.
        repo: String,
        /// The schedule's period (or `manual-…`).
        period: String,
    },
}

impl WorkflowJob {
    /// The job id.
    pub fn job_id(&self) -> String {
        let lower =
            |o: &str, r: &str| format!("{}/{}", o.to_ascii_lowercase(), r.to_ascii_lowercase());
        match self {
            WorkflowJob::RefreshSets {
                owner,
                repo,
                watermark,
                ..
            } => format!("sets:{}:{watermark}", lower(owner, repo)),
            WorkflowJob::ApplyPlan { plan_id, .. } => format!("apply:{plan_id}"),
            WorkflowJob::Deliver {
                delivery_id,
                attempt,
            } => format!("hook:{delivery_id}:{attempt}"),
            WorkflowJob::Digest {
                owner,
                repo,
                period,
                ..
            } => format!("digest:{}:{period}", lower(owner, repo)),
        }
    }
}

/// Queues the first attempt of each delivery.
pub async fn push_deliveries(state: &AppState, ids: &[String]) -> Result<(), WorkflowError> {
    for id in ids {
        state
            .queues
            .push_workflow(
                &WorkflowJob::Deliver {
                    delivery_id: id.clone(),
                    attempt: 1,
                },
                None,
            )
            .await?;
    }
    Ok(())
}

async fn repo_of(state: &AppState, repo_id: i64) -> Result<Option<ActiveRepo>, WorkflowError> {
    Ok(registry::repo(&state.pool, repo_id).await?)
}

/// Refreshes a repository's sets and queues what they announce.
pub async fn refresh_sets(
    state: &AppState,
    repo: &ActiveRepo,
    watermark: &str,
) -> Result<usize, WorkflowError> {
    let settings = crate::store::settings::repo_settings(&state.pool, repo.repo_id).await?;
    let notify = state.config.notify_webhook_url.is_some();
    let public_url = state.config.public_url.clone();
    let r2 = repo.clone();
    let wm = watermark.to_string();
    let (changes, deliveries) = workflow::sets::refresh(state, repo, watermark, move |c| {
        if !notify {
            return Vec::new();
        }
        workflow::notify::delivery_for(&r2, &settings, c, public_url.as_deref(), &wm)
            .into_iter()
            .collect()
    })
    .await?;
    push_deliveries(state, &deliveries).await?;
    Ok(changes.len())
}

async fn run(state: &AppState, job: &WorkflowJob) -> Result<(), WorkflowError> {
    match job {
        WorkflowJob::RefreshSets {
            repo_id, watermark, ..
        } => {
            let Some(repo) = repo_of(state, *repo_id).await? else {
                return Ok(());
            };
            let changed = refresh_sets(state, &repo, watermark).await?;
            tracing::debug!(repo_id, changed, "sets refreshed");
        }
        WorkflowJob::ApplyPlan { repo_id, plan_id } => {
            let Some(repo) = repo_of(state, *repo_id).await? else {
                return Ok(());
            };
            let status = workflow::actions::apply(state, &repo, plan_id).await?;
            tracing::info!(plan = %plan_id, status = %status, "plan applied");
        }
        WorkflowJob::Deliver {
            delivery_id,
            attempt,
        } => {
            if let workflow::notify::Attempted::Retry(wait) =
                workflow::notify::attempt(state, delivery_id, *attempt).await?
            {
                state
                    .queues
                    .push_workflow(
                        &WorkflowJob::Deliver {
                            delivery_id: delivery_id.clone(),
                            attempt: attempt + 1,
                        },
                        Some(wait),
                    )
                    .await?;
            }
        }
        WorkflowJob::Digest {
            repo_id, period, ..
        } => {
            let Some(repo) = repo_of(state, *repo_id).await? else {
                return Ok(());
            };
            registry::with_repo_lock(&state.pool, "digest", repo.repo_id, async || {
                workflow::digest::run(state, &repo, period).await
            })
            .await?;
        }
    }
    Ok(())
}

/// apalis entry point.
pub async fn handle(
    job: WorkflowJob,
    state: Data<AppState>,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    match run(&state, &job).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let permanent = !e.is_transient();
            tracing::warn!(job = %job.job_id(), attempt = attempt.current(), permanent, error = %e, "workflow job failed");
            if let WorkflowJob::ApplyPlan { plan_id, .. } = &job
                && (permanent || attempt.current() >= super::MAX_ATTEMPTS)
            {
                let _ = crate::store::actions::finish_plan(&state.pool, plan_id, "failed").await;
            }
            Err(into_apalis_error(e.into(), &attempt, permanent))
        }
    }
}

/// Queues a refresh of every repository whose watermark moved since its last refresh.
pub async fn queue_refreshes(state: &AppState) -> Result<usize, WorkflowError> {
    let mut queued = 0;
    for (repo, wm) in registry::refresh_due(&state.pool).await? {
        let job = WorkflowJob::RefreshSets {
            repo_id: repo.repo_id,
            owner: repo.owner.clone(),
            repo: repo.name.clone(),
            watermark: wm,
        };
        if state.queues.push_workflow(&job, None).await? == PushOutcome::Enqueued {
            queued += 1;
        }
    }
    Ok(queued)
}

/// Queues the digest of every repository with one on, for the period of `tick`.
async fn queue_digests(state: &AppState, period: &str) -> Result<(), WorkflowError> {
    for repo in registry::active_repos(&state.pool).await? {
        if workflow::writes_possible(state, repo.installation_id).is_err() {
            continue;
        }
        let job = WorkflowJob::Digest {
            repo_id: repo.repo_id,
            owner: repo.owner.clone(),
            repo: repo.name.clone(),
            period: period.to_string(),
        };
        state.queues.push_workflow(&job, None).await?;
    }
    Ok(())
}

/// Runs until `stop` resolves: refreshes, digests on their schedule, settings re-reads.
pub async fn upkeep(state: AppState, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    let schedule = state
        .config
        .digest_schedule
        .as_deref()
        .and_then(|s| cron::Schedule::from_str(s).ok());
    let mut last_period: Option<String> = None;
    let every = state.config.repo_settings_refresh;
    let mut settings_read: HashMap<i64, tokio::time::Instant> = HashMap::new();
    let mut tick = tokio::time::interval(REFRESH_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stop => break,
        }
        if let Err(e) = queue_refreshes(&state).await {
            tracing::debug!(error = %e, "set refresh check failed");
        }
        if let Some(s) = &schedule {
            let now = chrono::Utc::now();
            if let Some(t) = super::cron::latest_tick(s, now) {
                let period = super::cron::Granularity::of(s, now).period(t);
                if last_period.as_deref() != Some(period.as_str()) {
                    match queue_digests(&state, &period).await {
                        Ok(()) => last_period = Some(period),
                        Err(e) => tracing::warn!(error = %e, "digests not queued"),
                    }
                }
            }
        }
        if let Some(every) = every
            && let Ok(repos) = registry::active_repos(&state.pool).await
        {
            for repo in repos {
                let due = settings_read
                    .get(&repo.repo_id)
                    .is_none_or(|t| t.elapsed() >= every);
                if !due {
                    continue;
                }
                // The first pass waits a whole period: a new repository's file is read by its
                // first plan, digest or reload, not in the middle of its first scan.
                if settings_read
                    .insert(repo.repo_id, tokio::time::Instant::now())
                    .is_none()
                {
                    continue;
                }
                if let Err(e) = workflow::repo_file::refresh(&state, &repo).await {
                    tracing::warn!(repo = %format!("{}/{}", repo.owner, repo.name), error = %e, "settings file not read");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_payloads_carry_their_kind() {
        let jobs = [
            WorkflowJob::RefreshSets {
                repo_id: 1,
                owner: "O".into(),
                repo: "R".into(),
                watermark: "00ab12cd34ef5678".into(),
            },
            WorkflowJob::ApplyPlan {
                repo_id: 1,
                plan_id: "plan-0123456789abcdef".into(),
            },
            WorkflowJob::Deliver {
                delivery_id: "d-1-00ab12cd34ef5678".into(),
                attempt: 3,
            },
            WorkflowJob::Digest {
                repo_id: 1,
                owner: "O".into(),
                repo: "R".into(),
                period: "2026-11-22".into(),
            },
        ];
        let ids: Vec<String> = jobs.iter().map(|j| j.job_id()).collect();
        assert_eq!(
            ids,
            [
                "sets:o/r:00ab12cd34ef5678",
                "apply:plan-0123456789abcdef",
                "hook:d-1-00ab12cd34ef5678:3",
                "digest:o/r:2026-11-22"
            ]
        );
        for (j, id) in jobs.iter().zip(&ids) {
            super::super::checked_task_id(id).unwrap();
            let back: WorkflowJob =
                serde_json::from_value(serde_json::to_value(j).unwrap()).unwrap();
            assert_eq!(&back, j);
        }
        assert_eq!(serde_json::to_value(&jobs[1]).unwrap()["kind"], "applyPlan");
    }
}
