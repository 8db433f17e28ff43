//! The Redis-backed job queue (apalis): job types, their ids, pushing with de-duplication, and
//! the workers. Jobs carry ids only, never diffs; every handler is idempotent because delivery
//! is at-least-once (a worker that dies mid-job has its job re-run by another worker).

pub mod analyse;
pub mod check_run;
pub mod cron;
pub mod scan;
pub mod stats;
pub mod workflow;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use apalis::layers::retry::HasherRng;
use apalis::layers::retry::backoff::{ExponentialBackoffMaker, MakeBackoff};
use apalis::prelude::*;
use apalis_redis::{Config as QueueConfig, ConnectionManager, RedisStorage};
use serde::{Deserialize, Serialize};

use crate::state::AppState;

/// The engine configuration of a repository: the appliance's, with the valid `[triage]` overrides
/// of its `.github/clawtriage.toml` merged over it (see
/// [`crate::store::settings::effective_triage_config`]). Every path that analyses, queues or
/// reads an analysis of the repository takes its versions from this.
pub async fn triage_config(
    state: &AppState,
    repo_id: i64,
) -> Result<Arc<crate::triage::TriageConfig>, crate::store::StoreError> {
    let c = state.pool.get().await?;
    triage_config_on(state, &c, repo_id).await
}

/// [`triage_config`] on a connection or transaction the caller holds.
pub async fn triage_config_on(
    state: &AppState,
    c: &impl deadpool_postgres::GenericClient,
    repo_id: i64,
) -> Result<Arc<crate::triage::TriageConfig>, crate::store::StoreError> {
    let e = crate::store::settings::effective_triage_config_on(c, repo_id, &state.triage).await?;
    Ok(if e.overridden {
        Arc::new(e.config)
    } else {
        state.triage.clone()
    })
}

/// Attempts (in-process retries included) after which a job is given up and marked failed.
pub const MAX_ATTEMPTS: usize = 5;
/// How long an idempotency key blocks a re-push of the same job id.
const IDEMPOTENCY_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Worker heartbeat; an orphaned job is re-enqueued after `HEARTBEAT * MISSED_HEARTBEATS`.
const HEARTBEAT: Duration = Duration::from_secs(5);
const MISSED_HEARTBEATS: usize = 3;
/// How often a worker looks for new jobs. apalis fetches on this tick only (up to a batch of
/// ten), so it bounds throughput: 250 ms capped a scan at about 16 analyses a second.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Bound of a webhook's single-head analysis.
pub const ANALYSE_TIMEOUT: Duration = Duration::from_secs(600);
/// Bound of one scan batch (up to `SCAN_BATCH_SIZE` diffs, fetched a few at a time).
pub const BATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// Errors at the queue's edge.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Redis cannot be reached.
    #[error("redis unavailable: {0}")]
    Redis(String),
    /// A job id would not read back identically from apalis (it would poison the worker).
    #[error("job id `{0}` does not round-trip through apalis TaskId")]
    BadId(String),
    /// The payload did not serialise.
    #[error("job payload: {0}")]
    Payload(#[from] serde_json::Error),
}

/// Whether a push created a job or found the same id already queued or done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// A new job was queued.
    Enqueued,
    /// A job with this id exists already; nothing was queued.
    Duplicate,
}

/// Scan one repository's open PRs (`public-pr-scan`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ScanJob {
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// Snapshot id: the same snapshot scans once.
    pub snapshot: String,
    /// Cap on the open PRs listed (newest first).
    pub max_open_prs: Option<u32>,
}

impl ScanJob {
    /// `scan:{owner}/{repo}:{snapshot}`.
    pub fn job_id(&self) -> String {
        format!(
            "scan:{}/{}:{}",
            self.owner.to_ascii_lowercase(),
            self.repo.to_ascii_lowercase(),
            self.snapshot
        )
    }
}

/// Analyse one PR head.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AnalyseJob {
    /// Repository row id.
    pub repo_id: i64,
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// PR number.
    pub number: i64,
    /// Head commit.
    pub head_sha: String,
    /// Retry generation: bumped when a head whose analysis failed is queued again by a later scan.
    #[serde(default)]
    pub generation: u32,
}

impl AnalyseJob {
    /// `analyse:{owner}/{repo}:{number}:{head_sha}` (with `:g{n}` for re-tries of a failed head).
    pub fn job_id(&self) -> String {
        let base = format!(
            "analyse:{}/{}:{}:{}",
            self.owner.to_ascii_lowercase(),
            self.repo.to_ascii_lowercase(),
            self.number,
            self.head_sha
        );
        if self.generation == 0 {
            base
        } else {
            format!("{base}:g{}", self.generation)
        }
    }
}

/// One head of a [`BatchJob`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BatchHead {
    /// PR number.
    pub number: i64,
    /// Head commit.
    pub head_sha: String,
}

/// Analyse a batch of a scan's heads (the scan queue's analyses; webhooks use [`AnalyseJob`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BatchJob {
    /// Repository row id.
    pub repo_id: i64,
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// Snapshot of the scan that queued it.
    pub snapshot: String,
    /// The heads, ascending by number.
    pub heads: Vec<BatchHead>,
}

impl BatchJob {
    /// `batch:{owner}/{repo}:{snapshot}:{first}-{last}:{digest}`: named after its content, so a
    /// scan that runs again (after a crash) queues the same batches again as no-ops, and a later
    /// scan with other heads queues new ones.
    pub fn job_id(&self) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for head in &self.heads {
            h.update(head.number.to_le_bytes());
            h.update(head.head_sha.as_bytes());
            h.update([0]);
        }
        let digest = hex::encode(&h.finalize()[..8]);
        let first = self.heads.first().map_or(0, |h| h.number);
        let last = self.heads.last().map_or(0, |h| h.number);
        format!(
            "batch:{}/{}:{}:{first}-{last}:{digest}",
            self.owner.to_ascii_lowercase(),
            self.repo.to_ascii_lowercase(),
            self.snapshot,
        )
    }
}

/// Post (create or update) one PR head's Check Run (app and hybrid modes).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CheckRunJob {
    /// Repository row id.
    pub repo_id: i64,
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// PR number.
    pub number: i64,
    /// Head commit.
    pub head_sha: String,
    /// Debounce slot (set by [`Queues::push_check_run`]): twice the window index for the
    /// immediate post of a window, plus one for its trailing post.
    #[serde(default)]
    pub slot: i64,
}

impl CheckRunJob {
    /// `check:{owner}/{repo}:{number}:{head_sha}:{slot}`.
    pub fn job_id(&self) -> String {
        format!(
            "check:{}/{}:{}:{}:{}",
            self.owner.to_ascii_lowercase(),
            self.repo.to_ascii_lowercase(),
            self.number,
            self.head_sha,
            self.slot
        )
    }
}

/// Checks that apalis reads the id back exactly as written (see rust-stack.md: ids like `0042`
/// come back as `42` and kill the worker).
pub fn checked_task_id(id: &str) -> Result<TaskId, JobError> {
    match TaskId::from_str(id) {
        Ok(t) if t.to_string() == id => Ok(t),
        _ => Err(JobError::BadId(id.to_string())),
    }
}

/// Both queues and a raw connection for health checks.
#[derive(Clone)]
pub struct Queues {
    conn: ConnectionManager,
    /// Storage of scan jobs.
    pub scan: RedisStorage<ScanJob>,
    /// Storage of webhook analyses (one head each; never behind a scan's batches).
    pub analyse: RedisStorage<AnalyseJob>,
    /// Storage of scan batches.
    pub batch: RedisStorage<BatchJob>,
    /// Storage of check-run jobs.
    pub check: RedisStorage<CheckRunJob>,
    /// Storage of workflow jobs (set refreshes, plan applies, webhooks, digests).
    pub workflow: RedisStorage<workflow::WorkflowJob>,
    /// Unix time of the last heartbeat of each Redis-backed worker kind (0 = none yet), in the
    /// order of [`WORKER_KINDS`]: one silent kind is a stalled queue even while the others beat.
    last_heartbeat: Arc<[AtomicI64; WORKER_KINDS.len()]>,
}

/// The Redis-backed workers every process runs (their names start with the kind).
pub const WORKER_KINDS: [&str; 5] = ["scan", "analyse", "batch", "check", "workflow"];

/// A queue of long jobs (scans, scan batches): a worker takes one job per fetch, so the jobs of a
/// scan spread over every worker process that has room instead of being taken ten at a time by
/// the first to poll (apalis fetches up to `batch_size` at once, 10 by default, and holds what it
/// cannot start yet).
fn long_jobs(cfg: QueueConfig) -> QueueConfig {
    cfg.batch_size(1)
}

fn queue_config(name: &str) -> QueueConfig {
    QueueConfig::default()
        .queue(name)
        .idempotency_ttl(Some(IDEMPOTENCY_TTL))
        .heartbeat_interval(HEARTBEAT)
        .missed_heartbeats(MISSED_HEARTBEATS)
}

impl Queues {
    /// Connects to Redis. `prefix` namespaces the queues (tests use a unique one each).
    pub async fn connect(redis_url: &str, prefix: &str) -> Result<Self, JobError> {
        let conn = tokio::time::timeout(Duration::from_secs(10), apalis_redis::connect(redis_url))
            .await
            .map_err(|_| JobError::Redis("connect timed out".into()))?
            .map_err(|e| JobError::Redis(e.to_string()))?;
        let scan = RedisStorage::new(conn.clone())
            .with_config(long_jobs(queue_config(&format!("{prefix}:scan"))));
        let analyse =
            RedisStorage::new(conn.clone()).with_config(queue_config(&format!("{prefix}:analyse")));
        let check =
            RedisStorage::new(conn.clone()).with_config(queue_config(&format!("{prefix}:check")));
        let batch = RedisStorage::new(conn.clone())
            .with_config(long_jobs(queue_config(&format!("{prefix}:batch"))));
        let workflow = RedisStorage::new(conn.clone())
            .with_config(queue_config(&format!("{prefix}:workflow")));
        Ok(Queues {
            conn,
            scan,
            analyse,
            batch,
            check,
            workflow,
            last_heartbeat: Arc::new(std::array::from_fn(|_| AtomicI64::new(0))),
        })
    }

    /// Every queue by its short name. `/metrics` reports the depth and age of each queue
    /// listed here: a new queue shows up there by being added to this list.
    pub fn all(&self) -> Vec<(&'static str, &QueueConfig)> {
        vec![
            ("scan", self.scan.get_config()),
            ("batch", self.batch.get_config()),
            ("analyse", self.analyse.get_config()),
            ("check", self.check.get_config()),
            ("workflow", self.workflow.get_config()),
        ]
    }

    /// The Redis connection (multiplexed; cheap to clone), for state shared by processes.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// `PING`, bounded in time: the health check.
    pub async fn ping(&self) -> Result<(), JobError> {
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("PING");
        let fut = cmd.query_async::<String>(&mut conn);
        match tokio::time::timeout(Duration::from_secs(2), fut).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(JobError::Redis(e.to_string())),
            Err(_) => Err(JobError::Redis("timed out".into())),
        }
    }

    /// Seconds since the most silent worker kind last reported a heartbeat (None until every
    /// kind has reported once).
    pub fn worker_heartbeat_age(&self) -> Option<i64> {
        let oldest = self
            .last_heartbeat
            .iter()
            .map(|t| t.load(Ordering::Relaxed))
            .min()?;
        (oldest > 0).then(|| chrono::Utc::now().timestamp() - oldest)
    }

    /// Seconds since the most silent queue last had a heartbeat from any worker of any process
    /// (apalis keeps each queue's workers and their last beat in Redis), None while some queue
    /// has never had a worker. This is how a `web` process, which runs no workers, judges them.
    pub async fn shared_worker_heartbeat_age(&self) -> Result<Option<i64>, JobError> {
        let mut pipe = redis::pipe();
        for (_, cfg) in self.all() {
            pipe.cmd("ZRANGE")
                .arg(cfg.workers_set())
                .arg(-1)
                .arg(-1)
                .arg("WITHSCORES");
        }
        let mut conn = self.conn.clone();
        let newest: Vec<Vec<(String, f64)>> =
            tokio::time::timeout(Duration::from_secs(2), pipe.query_async(&mut conn))
                .await
                .map_err(|_| JobError::Redis("timed out".into()))?
                .map_err(|e| JobError::Redis(e.to_string()))?;
        let mut oldest: Option<i64> = None;
        for q in newest {
            let Some((_, beat)) = q.first() else {
                return Ok(None);
            };
            let beat = *beat as i64;
            oldest = Some(oldest.map_or(beat, |o| o.min(beat)));
        }
        Ok(oldest.map(|o| (chrono::Utc::now().timestamp() - o).max(0)))
    }

    /// Records a heartbeat of the worker named `name` (`{kind}-...`).
    fn heartbeat(&self, name: &str) {
        let kind = name.split('-').next().unwrap_or("");
        if let Some(i) = WORKER_KINDS.iter().position(|k| *k == kind) {
            self.last_heartbeat[i].store(chrono::Utc::now().timestamp(), Ordering::Relaxed);
        }
    }

    async fn push<T: Serialize>(
        &self,
        cfg: &QueueConfig,
        id: &str,
        payload: &T,
        delay: Option<Duration>,
    ) -> Result<PushOutcome, JobError> {
        let queued = self
            .push_many(cfg, &[(id.to_string(), payload)], delay)
            .await?;
        Ok(if queued > 0 {
            PushOutcome::Enqueued
        } else {
            PushOutcome::Duplicate
        })
    }

    /// Pushes jobs `(id, payload)` in one round trip; returns how many were new (the others
    /// had an id queued or done already).
    async fn push_many<T: Serialize>(
        &self,
        cfg: &QueueConfig,
        jobs: &[(String, &T)],
        delay: Option<Duration>,
    ) -> Result<usize, JobError> {
        let mut tasks = Vec::with_capacity(jobs.len());
        for (id, payload) in jobs {
            let task_id = checked_task_id(id)?;
            let bytes = serde_json::to_vec(payload)?;
            let mut builder = TaskBuilder::new(bytes)
                .task_id(task_id)
                .idempotency_key(id.as_str())
                .with_metadata(stats::pushed_now());
            if let Some(d) = delay {
                builder = builder.run_after(d);
            }
            tasks.push(builder.build());
        }
        if tasks.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn.clone();
        let (queued, scheduled) = apalis_redis::queries::push_tasks(&mut conn, cfg, &tasks)
            .await
            .map_err(|e| JobError::Redis(e.to_string()))?;
        Ok((queued + scheduled) as usize)
    }

    /// Queues one batch to run after `delay` (heads put off by GitHub's rate limit).
    pub async fn push_batch_after(&self, job: &BatchJob, delay: Duration) -> Result<(), JobError> {
        self.push_many(self.batch.get_config(), &[(job.job_id(), job)], Some(delay))
            .await?;
        Ok(())
    }

    /// Queues a scan's batches in one round trip; batches queued before (same content) are
    /// no-ops. Returns how many were new.
    pub async fn push_batches(&self, jobs: &[BatchJob]) -> Result<usize, JobError> {
        let jobs: Vec<(String, &BatchJob)> = jobs.iter().map(|j| (j.job_id(), j)).collect();
        self.push_many(self.batch.get_config(), &jobs, None).await
    }

    /// Queues a scan; a second push of the same snapshot is a no-op.
    pub async fn push_scan(&self, job: &ScanJob) -> Result<PushOutcome, JobError> {
        self.push(self.scan.get_config(), &job.job_id(), job, None)
            .await
    }

    /// Queues an analysis; a second push of the same head is a no-op.
    pub async fn push_analyse(&self, job: &AnalyseJob) -> Result<PushOutcome, JobError> {
        self.push(self.analyse.get_config(), &job.job_id(), job, None)
            .await
    }

    /// Queues a workflow job (after `delay`); a second push of the same id is a no-op.
    pub async fn push_workflow(
        &self,
        job: &workflow::WorkflowJob,
        delay: Option<Duration>,
    ) -> Result<PushOutcome, JobError> {
        self.push(self.workflow.get_config(), &job.job_id(), job, delay)
            .await
    }

    /// Queues a check-run post, at most two per head per debounce window: the first ask in a
    /// window runs at once (a new PR gets its verdict in about a second), a later ask in the
    /// same window runs once when the window closes (so the last state is always shown), and
    /// further asks in that window are no-ops. Each job reads the state when it runs.
    pub async fn push_check_run(&self, job: &CheckRunJob) -> Result<PushOutcome, JobError> {
        let window = check_run::DEBOUNCE.as_millis().max(1) as i64;
        let now = chrono::Utc::now().timestamp_millis();
        let w = now / window;
        let leading = CheckRunJob {
            slot: 2 * w,
            ..job.clone()
        };
        let cfg = self.check.get_config();
        if self.push(cfg, &leading.job_id(), &leading, None).await? == PushOutcome::Enqueued {
            return Ok(PushOutcome::Enqueued);
        }
        let trailing = CheckRunJob {
            slot: 2 * w + 1,
            ..job.clone()
        };
        // apalis schedules in whole seconds: round up so the job never runs before the window
        // has closed.
        let delay = Duration::from_secs((((w + 1) * window - now) as u64).div_ceil(1000));
        self.push(cfg, &trailing.job_id(), &trailing, Some(delay))
            .await
    }
}

/// A unique worker name per process (apalis refuses a name that heartbeated recently, and a
/// restarted process would otherwise kill its own worker).
pub fn worker_name(kind: &str) -> String {
    let host = std::env::var("HOSTNAME")
        .or_else(|_| std::fs::read_to_string("/etc/hostname").map(|s| s.trim().to_string()))
        .unwrap_or_else(|_| "local".into());
    format!(
        "{kind}-{host}-{}-{:08x}",
        std::process::id(),
        fastrand::u32(..)
    )
}

/// Pause before a stopped worker is restarted, so a Redis outage does not spin.
const RESTART_PAUSE: Duration = Duration::from_millis(250);

/// Waits `pause` inside apalis' restart callback, which is synchronous and runs on a runtime
/// thread. On a multi-thread runtime (`serve`) the thread is handed over first, so every other
/// task (HTTP requests, other workers) keeps running meanwhile; a current-thread runtime (the
/// in-process test harness) has no other thread to hand over to and simply waits.
pub fn pause_before_restart(pause: Duration) {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
            tokio::task::block_in_place(|| std::thread::sleep(pause))
        }
        _ => std::thread::sleep(pause),
    }
}

/// Turns a handler error into what apalis should do with it: retry (with backoff, then again
/// from Redis) while attempts remain, give up (`AbortError`) after [`MAX_ATTEMPTS`] or for
/// errors that retrying cannot fix.
pub fn into_apalis_error(err: anyhow::Error, attempt: &Attempt, permanent: bool) -> BoxDynError {
    if permanent || attempt.current() >= MAX_ATTEMPTS {
        Box::new(AbortError::new(std::io::Error::other(format!("{err:#}"))))
    } else {
        err.into()
    }
}

/// Runs the scan and analyse workers until `shutdown` resolves, then lets running jobs finish
/// within `shutdown_timeout`.
pub async fn run_workers(
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let concurrency = state.config.worker_concurrency;
    let scan_name = worker_name("scan");
    let analyse_name = worker_name("analyse");
    let beats = state.queues.clone();
    let backoff = || {
        ExponentialBackoffMaker::new(
            Duration::from_millis(500),
            Duration::from_secs(20),
            0.5,
            HasherRng::default(),
        )
        .map(|mut m| m.make_backoff())
    };
    let scan_backoff = backoff().map_err(|e| anyhow::anyhow!("backoff: {e}"))?;
    let analyse_backoff = backoff().map_err(|e| anyhow::anyhow!("backoff: {e}"))?;
    let batch_backoff = backoff().map_err(|e| anyhow::anyhow!("backoff: {e}"))?;
    let batch_name = worker_name("batch");
    let batch_storage = state.queues.batch.clone();
    let batch_state = state.clone();
    let batch_concurrency = state.config.batch_concurrency;
    let check_backoff = backoff().map_err(|e| anyhow::anyhow!("backoff: {e}"))?;
    let check_name = worker_name("check");
    let check_storage = state.queues.check.clone();
    let check_state = state.clone();
    let workflow_backoff = backoff().map_err(|e| anyhow::anyhow!("backoff: {e}"))?;
    let workflow_name = worker_name("workflow");
    let workflow_storage = state.queues.workflow.clone();
    let workflow_state = state.clone();

    let scan_storage = state.queues.scan.clone();
    let analyse_storage = state.queues.analyse.clone();
    let scan_state = state.clone();
    let analyse_state = state.clone();
    let monitor = Monitor::new()
        .shutdown_timeout(state.config.shutdown_timeout)
        // A worker whose backend fails (Redis restarted or unreachable) ends; restart it, under a
        // new name (apalis refuses a name that heartbeated recently), after a short pause so an
        // outage does not spin. Without this the HTTP side would live on with no workers.
        .should_restart(|ctx, err| {
            tracing::warn!(worker = %ctx.name(), error = %err, "worker stopped; restarting it");
            pause_before_restart(RESTART_PAUSE);
            true
        })
        .on_event(move |ctx, event| match event {
            Event::HeartBeat | Event::Start => beats.heartbeat(ctx.name()),
            Event::Error(e) => tracing::warn!(worker = %ctx.name(), error = %e, "job error"),
            Event::Exit => tracing::info!(worker = %ctx.name(), "worker exited"),
            _ => {}
        })
        .register(move |restarts| {
            WorkerBuilder::new(format!("{scan_name}-r{restarts}"))
                .backend(scan_storage.clone().poll_with_interval(POLL_INTERVAL))
                .concurrency(concurrency.min(2))
                .retry(apalis::prelude::RetryPolicy::retries(2).with_backoff(scan_backoff.clone()))
                .timeout(Duration::from_secs(6 * 3600))
                .catch_panic()
                .enable_tracing()
                .data(scan_state.clone())
                .build(scan::handle)
        })
        .register(move |restarts| {
            WorkerBuilder::new(format!("{analyse_name}-r{restarts}"))
                .backend(analyse_storage.clone().poll_with_interval(POLL_INTERVAL))
                .concurrency(concurrency)
                .retry(
                    apalis::prelude::RetryPolicy::retries(2).with_backoff(analyse_backoff.clone()),
                )
                .timeout(ANALYSE_TIMEOUT)
                .catch_panic()
                .enable_tracing()
                .data(analyse_state.clone())
                .build(analyse::handle)
        })
        .register(move |restarts| {
            // A scan's batches: each spreads its engine work over the cores itself, so a few
            // at once keep the machine busy while webhooks' analyses (above) still get through.
            WorkerBuilder::new(format!("{batch_name}-r{restarts}"))
                .backend(batch_storage.clone().poll_with_interval(POLL_INTERVAL))
                .concurrency(batch_concurrency)
                .retry(apalis::prelude::RetryPolicy::retries(2).with_backoff(batch_backoff.clone()))
                .timeout(BATCH_TIMEOUT)
                .catch_panic()
                .enable_tracing()
                .data(batch_state.clone())
                .build(analyse::handle_batch)
        })
        .register(move |restarts| {
            // Check runs are GitHub writes: few at once (secondary rate limits).
            WorkerBuilder::new(format!("{check_name}-r{restarts}"))
                .backend(check_storage.clone().poll_with_interval(POLL_INTERVAL))
                .concurrency(4)
                .retry(apalis::prelude::RetryPolicy::retries(2).with_backoff(check_backoff.clone()))
                .timeout(Duration::from_secs(300))
                .catch_panic()
                .enable_tracing()
                .data(check_state.clone())
                .build(check_run::handle)
        })
        .register(move |restarts| {
            // Set refreshes, plan applies, outgoing webhooks and digests: never in the way of
            // analyses.
            WorkerBuilder::new(format!("{workflow_name}-r{restarts}"))
                .backend(workflow_storage.clone().poll_with_interval(POLL_INTERVAL))
                .concurrency(2)
                .retry(
                    apalis::prelude::RetryPolicy::retries(2).with_backoff(workflow_backoff.clone()),
                )
                .timeout(Duration::from_secs(600))
                .catch_panic()
                .enable_tracing()
                .data(workflow_state.clone())
                .build(workflow::handle)
        });
    let monitor = match state.config.scan_schedule.as_deref() {
        Some(expr) => {
            let schedule = <::cron::Schedule as FromStr>::from_str(expr)
                .map_err(|e| anyhow::anyhow!("SCAN_SCHEDULE: {e}"))?;
            let cron_name = worker_name("cron");
            let cron_state = state.clone();
            tracing::info!(schedule = %expr, repos = state.config.scan_repos.len(), "in-process scan schedule on");
            monitor.register(move |restarts| {
                WorkerBuilder::new(format!("{cron_name}-r{restarts}"))
                    .backend(apalis_cron::CronScheduler::new(schedule.clone()))
                    .catch_panic()
                    .enable_tracing()
                    .data(cron_state.clone())
                    .build(cron::on_tick)
            })
        }
        None => monitor,
    };
    monitor
        .run_with_signal(async move {
            shutdown.await;
            Ok(())
        })
        .await
        .map_err(|e| anyhow::anyhow!("workers stopped with an error: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_follow_the_design_and_round_trip() {
        let scan = ScanJob {
            owner: "Microsoft".into(),
            repo: "playwright".into(),
            snapshot: "2026-11-22T14".into(),
            max_open_prs: None,
        };
        assert_eq!(scan.job_id(), "scan:microsoft/playwright:2026-11-22T14");
        checked_task_id(&scan.job_id()).unwrap();
        let a = AnalyseJob {
            repo_id: 1,
            owner: "o".into(),
            repo: "r".into(),
            number: 42,
            head_sha: "0123abc".into(),
            generation: 0,
        };
        assert_eq!(a.job_id(), "analyse:o/r:42:0123abc");
        checked_task_id(&a.job_id()).unwrap();
        let c = CheckRunJob {
            repo_id: 1,
            owner: "O".into(),
            repo: "R".into(),
            number: 42,
            head_sha: "0123abc".into(),
            slot: 588_000_123,
        };
        assert_eq!(c.job_id(), "check:o/r:42:0123abc:588000123");
        checked_task_id(&c.job_id()).unwrap();
    }

    #[test]
    fn the_restart_pause_lets_other_tasks_run() {
        // One worker thread: a pause that blocked it would stop the ticker below.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let ticks = Arc::new(AtomicI64::new(0));
        let t = ticks.clone();
        let during = rt.block_on(async move {
            tokio::spawn(async move {
                loop {
                    t.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
            let ticks2 = ticks.clone();
            tokio::spawn(async move {
                let before = ticks2.load(Ordering::Relaxed);
                pause_before_restart(Duration::from_millis(300));
                ticks2.load(Ordering::Relaxed) - before
            })
            .await
            .unwrap()
        });
        assert!(
            during >= 10,
            "other tasks stalled during the pause: {during} ticks"
        );
    }

    #[test]
    fn ids_that_apalis_would_rewrite_are_refused() {
        assert!(checked_task_id("0042").is_err());
        assert!(checked_task_id("42").is_ok());
    }
}
