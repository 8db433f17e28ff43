//! Prometheus metrics: every metric name, its labels and the helpers that record it live here, so
//! the rest of the code records with one-line calls and the README's panels have one source.
//!
//! Events (HTTP requests, GitHub calls, analyses, webhook → check run) are recorded where they
//! happen; levels (queue depth and age, disk, Postgres pool, finished scans) are read when
//! `/metrics` is scraped. The text is rendered by `metrics-exporter-prometheus` from our own axum
//! route ([`crate::api::metrics_route`]), so there is no second listener.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

/// Counter: HTTP requests answered. Labels: `route` (the matched route template, e.g.
/// `/api/repos/{repo_id}/prs/{number}`; `dashboard` for static files, `unmatched` for unknown
/// paths), `method`, `status`.
pub const HTTP_REQUESTS: &str = "clawtriage_http_requests_total";
/// Histogram (seconds): HTTP request latency. Labels as [`HTTP_REQUESTS`].
pub const HTTP_DURATION: &str = "clawtriage_http_request_duration_seconds";
/// Gauge: jobs in a queue. Labels: `queue` (every queue of `Queues::all`), `state` (`waiting`:
/// may run now; `scheduled`: set to run later; `running`: held by a worker; `dead`: given up).
pub const QUEUE_JOBS: &str = "clawtriage_queue_jobs";
/// Gauge (seconds): how long the oldest waiting job of a queue has waited. Label: `queue`.
pub const QUEUE_OLDEST_AGE: &str = "clawtriage_queue_oldest_waiting_seconds";
/// Counter: heads whose analysis ended. Label: `outcome` (`analyzed`: the engine ran and results
/// were stored; `unchanged`: nothing to do — already analysed, superseded head, PR gone;
/// `failed`: failed for good; `deferred`: put off until GitHub's rate limit resets; `retry`:
/// failed, its job runs again).
pub const ANALYSES: &str = "clawtriage_analyses_total";
/// Histogram (seconds): duration of one analysis job. Label: `queue` (`batch`: a scan's batch of
/// heads; `analyse`: one webhook's head).
pub const ANALYSIS_JOB_DURATION: &str = "clawtriage_analysis_job_duration_seconds";
/// Counter: scans finished. Label: `outcome` (`done`, `failed`).
pub const SCANS: &str = "clawtriage_scans_total";
/// Histogram (seconds): scan duration, from queued to done or failed. Label: `outcome`.
pub const SCAN_DURATION: &str = "clawtriage_scan_duration_seconds";
/// Counter: requests sent to GitHub. Labels: `method`, `status` (the HTTP status, or `error`
/// when no answer came).
pub const GITHUB_REQUESTS: &str = "clawtriage_github_requests_total";
/// Gauge: the last `x-ratelimit-remaining` GitHub sent. Label: `credential` (`token`,
/// `installation`, `anonymous`).
pub const GITHUB_REMAINING: &str = "clawtriage_github_rate_limit_remaining";
/// Histogram (seconds): from a `pull_request` webhook's arrival to the first check run posted
/// for that head.
pub const WEBHOOK_TO_CHECK_RUN: &str = "clawtriage_webhook_to_check_run_seconds";
/// Gauge (bytes): free space on the data disk (what an unprivileged writer may use).
pub const DISK_FREE: &str = "clawtriage_disk_free_bytes";
/// Gauge (bytes): size of the data disk.
pub const DISK_TOTAL: &str = "clawtriage_disk_total_bytes";
/// Gauge: Postgres pool connections. Label: `state` (`in_use`, `idle`).
pub const PG_POOL: &str = "clawtriage_postgres_pool_connections";
/// Gauge: the Postgres pool's size limit.
pub const PG_POOL_MAX: &str = "clawtriage_postgres_pool_max_connections";
/// Gauge: tasks waiting for a Postgres connection.
pub const PG_POOL_WAITING: &str = "clawtriage_postgres_pool_waiting";
/// Gauge (seconds): since the most silent kind of job worker last reported a heartbeat (-1 until
/// every kind has reported once).
pub const WORKER_HEARTBEAT_AGE: &str = "clawtriage_worker_heartbeat_age_seconds";
/// Gauge: 1 when the last scrape could read the queues from Redis, else 0.
pub const QUEUE_READ_OK: &str = "clawtriage_queue_read_ok";

/// Histogram buckets (seconds) of every `*_seconds` metric: from a fast API answer to a long
/// scan.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0,
    3600.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use. If another recorder was installed first
/// (only possible in tests embedding the library), the handle renders a recorder of our own
/// that nothing records into.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = || {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .expect("non-empty buckets")
        };
        match builder().install_recorder() {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "a metrics recorder was installed already");
                builder().build_recorder().handle()
            }
        }
    })
}

/// Per-appliance state of the metrics: finished scans already counted, and webhook arrivals
/// waiting for their check run.
pub struct Metrics {
    /// (finished_at, job_id) of the last finished scan counted.
    scans_seen: tokio::sync::Mutex<(DateTime<Utc>, String)>,
    /// `owner/repo#number@head` → when its webhook arrived.
    webhooks: Mutex<HashMap<String, Instant>>,
}

/// Webhook arrivals remembered at most (older ones are dropped first).
const MAX_PENDING_WEBHOOKS: usize = 10_000;
/// A webhook whose check run did not come within this time is forgotten.
const WEBHOOK_MEMORY: Duration = Duration::from_secs(3600);

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Counts scans that finish from now on; installs the recorder.
    pub fn new() -> Self {
        let _ = handle();
        Metrics {
            scans_seen: tokio::sync::Mutex::new((Utc::now(), String::new())),
            webhooks: Mutex::new(HashMap::new()),
        }
    }

    /// A `pull_request` webhook for this head arrived (starts the webhook → check run clock).
    pub fn webhook_received(&self, owner: &str, repo: &str, number: i64, head_sha: &str) {
        let mut m = self.webhooks.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= MAX_PENDING_WEBHOOKS {
            m.retain(|_, t| t.elapsed() < WEBHOOK_MEMORY);
            if m.len() >= MAX_PENDING_WEBHOOKS {
                m.clear();
            }
        }
        m.entry(head_key(owner, repo, number, head_sha))
            .or_insert_with(Instant::now);
    }

    /// A check run for this head was posted: records the latency from its webhook, once.
    pub fn check_run_posted(&self, owner: &str, repo: &str, number: i64, head_sha: &str) {
        let started = self
            .webhooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&head_key(owner, repo, number, head_sha));
        if let Some(t) = started {
            histogram!(WEBHOOK_TO_CHECK_RUN).record(t.elapsed().as_secs_f64());
        }
    }
}

fn head_key(owner: &str, repo: &str, number: i64, head_sha: &str) -> String {
    format!(
        "{}/{}#{number}@{head_sha}",
        owner.to_ascii_lowercase(),
        repo.to_ascii_lowercase()
    )
}

/// Heads of a batch were settled with these outcomes (see [`ANALYSES`]).
pub fn analyses_settled(outcomes: &[crate::store::analysis::Outcome]) {
    use crate::store::analysis::Outcome;
    for o in outcomes {
        let outcome = match o {
            Outcome::Analyzed => "analyzed",
            Outcome::Unchanged => "unchanged",
            Outcome::Failed => "failed",
            Outcome::Deferred => "deferred",
        };
        counter!(ANALYSES, "outcome" => outcome).increment(1);
    }
}

/// An analysis job (a webhook's, or a scan's batch) ran from `started`; `retried` of its heads
/// failed in a way its next attempt may fix.
pub fn analysis_job_finished(webhook: bool, started: Instant, retried: usize) {
    let queue = if webhook { "analyse" } else { "batch" };
    histogram!(ANALYSIS_JOB_DURATION, "queue" => queue).record(started.elapsed().as_secs_f64());
    if retried > 0 {
        counter!(ANALYSES, "outcome" => "retry").increment(retried as u64);
    }
}

/// GitHub answered `status` (None: no answer) to a `method` request; `remaining` is its
/// `x-ratelimit-remaining`, when sent.
pub fn github_call(
    method: &str,
    status: Option<u16>,
    credential: &'static str,
    remaining: Option<i64>,
) {
    let status = status.map_or_else(|| "error".to_string(), |s| s.to_string());
    counter!(GITHUB_REQUESTS, "method" => method.to_string(), "status" => status).increment(1);
    if let Some(r) = remaining {
        gauge!(GITHUB_REMAINING, "credential" => credential).set(r as f64);
    }
}

/// axum middleware: counts and times every request by matched route template and status.
pub async fn track_http(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = match req.extensions().get::<MatchedPath>() {
        Some(m) => m.as_str().to_string(),
        None => {
            let p = req.uri().path();
            if p.starts_with("/api") || p.starts_with("/webhooks") || p.starts_with("/metrics") {
                "unmatched".to_string()
            } else {
                "dashboard".to_string()
            }
        }
    };
    let method = req.method().as_str().to_string();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    counter!(HTTP_REQUESTS, &labels).increment(1);
    histogram!(HTTP_DURATION, &labels).record(started.elapsed().as_secs_f64());
    resp
}

/// Reads the levels (queues, disk, pool, workers, newly finished scans) and renders every
/// metric in Prometheus's text format.
pub async fn render(state: &AppState) -> String {
    match state.queues.stats().await {
        Ok(queues) => {
            gauge!(QUEUE_READ_OK).set(1.0);
            for q in queues {
                for (s, v) in [
                    ("waiting", q.waiting),
                    ("scheduled", q.scheduled),
                    ("running", q.running),
                    ("dead", q.dead),
                ] {
                    gauge!(QUEUE_JOBS, "queue" => q.name, "state" => s).set(v as f64);
                }
                gauge!(QUEUE_OLDEST_AGE, "queue" => q.name).set(q.oldest_waiting_secs as f64);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read the queues");
            gauge!(QUEUE_READ_OK).set(0.0);
        }
    }
    match state.disk.check() {
        Ok(r) => {
            gauge!(DISK_FREE).set(r.free_bytes as f64);
            gauge!(DISK_TOTAL).set(r.total_bytes as f64);
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot measure the data disk"),
    }
    let pool = state.pool.status();
    gauge!(PG_POOL, "state" => "in_use").set(pool.size.saturating_sub(pool.available) as f64);
    gauge!(PG_POOL, "state" => "idle").set(pool.available as f64);
    gauge!(PG_POOL_MAX).set(pool.max_size as f64);
    gauge!(PG_POOL_WAITING).set(pool.waiting as f64);
    gauge!(WORKER_HEARTBEAT_AGE).set(state.worker_heartbeat_age().await.unwrap_or(-1) as f64);
    count_finished_scans(state).await;
    let h = handle();
    h.run_upkeep();
    h.render()
}

/// Counts the scans that finished since the last scrape (they finish in whichever analysis
/// settles last, so they are read from Postgres rather than recorded in one place).
async fn count_finished_scans(state: &AppState) {
    let mut seen = state.metrics.scans_seen.lock().await;
    loop {
        let rows =
            match crate::store::metrics::scans_finished_after(&state.pool, seen.0, &seen.1, 500)
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: cannot read finished scans");
                    return;
                }
            };
        let more = rows.len() == 500;
        for s in rows {
            let outcome = if s.state == "done" { "done" } else { "failed" };
            counter!(SCANS, "outcome" => outcome).increment(1);
            histogram!(SCAN_DURATION, "outcome" => outcome).record(s.duration_secs.max(0.0));
            *seen = (s.finished_at, s.job_id);
        }
        if !more {
            return;
        }
    }
}
