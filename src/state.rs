//! The state shared by HTTP handlers and job handlers.

use std::sync::Arc;

use deadpool_postgres::Pool;

use crate::config::Config;
use crate::git::Mirror;
use crate::github::GithubClient;
use crate::jobs::Queues;
use crate::triage::TriageConfig;

/// Cheap to clone: everything inside is shared.
#[derive(Clone)]
pub struct AppState {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Postgres pool.
    pub pool: Pool,
    /// Redis queues.
    pub queues: Queues,
    /// GitHub REST client.
    pub github: GithubClient,
    /// Triage engine configuration.
    pub triage: Arc<TriageConfig>,
    /// Local git mirrors (None when GIT_MIRROR=off).
    pub mirror: Option<Mirror>,
    /// Rendered API answers (duplicate-set pages); bump it when results change.
    pub cache: Arc<crate::cache::ResultsCache>,
    /// Free space on the data disk.
    pub disk: Arc<crate::disk::DiskWatch>,
    /// Metrics kept per appliance (the recorder itself is per process).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// This process's name in the work it records (`app-{host}-{pid}-{random}`).
    pub worker: Arc<str>,
    /// Per-client rate limit of the ops trigger.
    pub trigger_limiter: Arc<crate::api::ClientLimiter>,
    /// Per-client rate limit of feedback writes.
    pub feedback_limiter: Arc<crate::api::ClientLimiter>,
}

impl AppState {
    /// Seconds since the most silent worker kind last beat: this process's own workers when it
    /// runs them, else (a `web` process) every process's, through their heartbeats in Redis.
    /// None until every kind has beaten once (or while Redis does not answer).
    pub async fn worker_heartbeat_age(&self) -> Option<i64> {
        if self.config.role.runs_workers() {
            self.queues.worker_heartbeat_age()
        } else {
            self.queues
                .shared_worker_heartbeat_age()
                .await
                .ok()
                .flatten()
        }
    }
}
