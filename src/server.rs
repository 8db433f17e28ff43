//! `serve`: the HTTP server and the job workers in one process, sharing one state, with a
//! graceful shutdown on SIGTERM/SIGINT (stop accepting, let running requests and jobs finish
//! within the bound, close the pools).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::future::BoxFuture;
use secrecy::ExposeSecret;
use tokio::sync::watch;

use crate::config::Config;
use crate::github::{CachedBody, ClientMemory, GithubClient, RetryPolicy};
use crate::jobs::{self, Queues};
use crate::state::AppState;
use crate::triage::TriageConfig;

/// Loads the triage configuration: the file named by TRIAGE_CONFIG, or the built-in defaults.
pub fn load_triage_config(config: &Config) -> anyhow::Result<TriageConfig> {
    match &config.triage_config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("TRIAGE_CONFIG: cannot read {}", path.display()))?;
            TriageConfig::from_toml_str(&text)
                .with_context(|| format!("TRIAGE_CONFIG: {} is invalid", path.display()))
        }
        None => Ok(TriageConfig::default()),
    }
}

/// The GitHub client's memory kept in Postgres: the `http_cache` table and the repositories'
/// recorded installations (the glue that keeps `github/` and `store/` apart).
struct PgClientMemory(deadpool_postgres::Pool);

impl ClientMemory for PgClientMemory {
    fn cached<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<Option<CachedBody>, String>> {
        Box::pin(async move {
            crate::store::repos::http_cache_get(&self.0, url)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn remember<'a>(
        &'a self,
        url: &'a str,
        etag: &'a str,
        body: &'a [u8],
        link: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            crate::store::repos::http_cache_put(&self.0, url, etag, body, link)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn installation_of<'a>(
        &'a self,
        owner: &'a str,
        repo: &'a str,
    ) -> BoxFuture<'a, Result<Option<i64>, String>> {
        Box::pin(async move {
            crate::store::app::installation_of(&self.0, owner, repo)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Connects everything the appliance needs. Postgres and Redis may still be starting: the pools
/// connect lazily and reconnect by themselves.
pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
    let pool = crate::store::connect(config.database_url.expose_secret(), 16)
        .map_err(anyhow::Error::msg)?;
    let queues = Queues::connect(config.redis_url.expose_secret(), &config.queue_prefix)
        .await
        .context("cannot connect to Redis (REDIS_URL)")?;
    let memory: Arc<dyn ClientMemory> = Arc::new(PgClientMemory(pool.clone()));
    let github = GithubClient::new(
        &config.github_api_url,
        config.github_token.clone(),
        Some(memory.clone()),
        RetryPolicy::default(),
    )
    .map_err(anyhow::Error::msg)?;
    let github = match (
        config.github_mode.uses_app(),
        config.github_app_id,
        &config.github_private_key_pem,
    ) {
        (true, Some(app_id), Some(pem)) => github.with_app(
            crate::github::AppAuth::new(app_id, pem, Some(memory)).map_err(anyhow::Error::msg)?,
        ),
        _ => github,
    };
    let triage = load_triage_config(&config)?;
    let mirror = config
        .git_mirror
        .then(|| crate::git::Mirror::new(&config.data_root, &config.github_git_url));
    Ok(AppState {
        mirror,
        cache: Arc::new(crate::cache::ResultsCache::shared(
            Duration::from_secs(30),
            queues.connection(),
            format!("{}:results:generation", config.queue_prefix),
        )),
        trigger_limiter: Arc::new(crate::api::ops::trigger_limiter(
            &queues,
            &config.queue_prefix,
        )),
        metrics: Arc::new(crate::metrics::Metrics::new()),
        feedback_limiter: Arc::new(crate::api::results::feedback_limiter(
            &queues,
            &config.queue_prefix,
        )),
        worker: Arc::from(jobs::worker_name("app")),
        disk: Arc::new(crate::disk::DiskWatch::new(
            &config.data_root,
            config.disk_min_free_mb,
        )),
        config: Arc::new(config),
        pool,
        queues,
        github,
        triage: Arc::new(triage),
    })
}

/// One retention pass (see [`crate::store::housekeeping`]); failures are logged and retried at
/// the next pass.
async fn prune(state: &AppState) {
    let days = state.config.retention_days;
    match crate::store::housekeeping::prune(&state.pool, days).await {
        Ok(p) if p.total() > 0 => tracing::info!(
            deliveries = p.deliveries,
            scans = p.scans,
            http_cache = p.http_cache,
            retention_days = days,
            "pruned old rows"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "pruning old rows failed"),
    }
    // No job runs longer than its timeout (times the attempts' backoff): older `running` rows
    // belong to jobs that were cut off or lost.
    match crate::store::housekeeping::reap(&state.pool, 2 * jobs::BATCH_TIMEOUT).await {
        Ok(r) if r.analyses + r.scans > 0 => tracing::warn!(
            analyses = r.analyses,
            scans = r.scans,
            "settled abandoned work"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "settling abandoned work failed"),
    }
}

/// The name of the housekeeping period `t` falls in: the period's start, e.g.
/// `2026-11-22T14:00:00Z` for hourly passes.
pub fn housekeeping_period(t: chrono::DateTime<chrono::Utc>, every: Duration) -> String {
    let secs = every.as_secs().max(1) as i64;
    let start = t.timestamp().div_euclid(secs) * secs;
    chrono::DateTime::from_timestamp(start, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Housekeeping in a worker process: one pass per period (`HOUSEKEEPING_PERIOD_SECS`) across
/// every worker process sharing the database (the first to claim the period runs it). The first
/// pass waits a minute after start (or one period, if shorter) so start-up is not slowed.
async fn housekeeping(state: AppState, mut stop: watch::Receiver<bool>) {
    let every = state.config.housekeeping_period;
    let first = every.min(Duration::from_secs(60));
    tokio::select! {
        _ = tokio::time::sleep(first) => {}
        _ = stop.wait_for(|v| *v) => return,
    }
    let mut tick = tokio::time::interval(
        (every / 4).clamp(Duration::from_millis(250), Duration::from_secs(30)),
    );
    let mut last: Option<String> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|v| *v) => return,
        }
        let period = housekeeping_period(chrono::Utc::now(), every);
        if last.as_ref() == Some(&period) {
            continue;
        }
        match crate::store::housekeeping::claim_period(&state.pool, &period, &state.worker).await {
            Ok(true) => {
                tracing::info!(%period, "housekeeping pass");
                prune(&state).await;
                last = Some(period);
            }
            Ok(false) => last = Some(period),
            Err(e) => tracing::warn!(error = %e, "housekeeping: cannot claim the period; retrying"),
        }
    }
}

/// Period of the upkeep loop.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(30);

/// One pass of the upkeep loop (tick `tick`, one every [`UPKEEP_EVERY`]). Every tick: the data
/// disk is measured, so a filling volume is logged even when nobody asks for health (the watch
/// logs only when its state changes). In processes that run workers, every minute in app and
/// hybrid modes: webhook deliveries whose jobs never reached the queue are queued (pushes are
/// idempotent, so several worker processes may sweep); every 10 minutes in those modes:
/// installed repositories get their reconciliation scan once per RECONCILE_HOURS. Retention runs
/// in [`housekeeping`], once per period across processes. (The per-client limiters keep their
/// counts in Redis, where they expire by themselves.)
pub async fn upkeep(state: &AppState, tick: u64) {
    if let Err(e) = state.disk.check() {
        tracing::warn!(error = %e, "disk check failed");
    }
    if state.config.role.runs_workers() && state.config.github_mode.uses_app() {
        if tick % 2 == 1
            && let Err(e) =
                crate::api::webhooks::requeue_pending(state, crate::api::webhooks::SWEEP_AFTER_SECS)
                    .await
        {
            tracing::warn!(error = %e.message, "pending webhook deliveries not queued yet");
        }
        if tick % 20 == 3 {
            jobs::cron::reconcile(state, chrono::Utc::now()).await;
        }
    }
}

/// Applies migrations, retrying for a bounded time while Postgres starts.
pub async fn migrate_with_retry(
    pool: &deadpool_postgres::Pool,
    within: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match crate::store::migrate(pool).await {
            Ok(applied) => {
                if applied.is_empty() {
                    tracing::info!("database schema is up to date");
                } else {
                    tracing::info!(?applied, "applied migrations");
                }
                return Ok(());
            }
            Err(e) if e.is_transient() && tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "database not ready; retrying migrations");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e).context("applying migrations failed"),
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received; shutting down"),
        _ = term => tracing::info!("SIGTERM received; shutting down"),
    }
}

/// Runs the server and the workers until `shutdown` resolves, then drains both within the
/// configured bound. `ready` receives the bound address (tests bind port 0).
pub async fn run(
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
) -> anyhow::Result<()> {
    let config = state.config.clone();
    if config.migrate_on_start {
        migrate_with_retry(&state.pool, Duration::from_secs(30)).await?;
    }
    if config.ops_trigger_token.is_none() {
        tracing::warn!(
            "OPS_TRIGGER_TOKEN is not set: POST /api/ops/public-scan answers 401 to every call"
        );
    }
    let listener = tokio::net::TcpListener::bind((config.host, config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.host, config.port))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, mode = ?config.github_mode, role = config.role.as_str(), "clawtriage listening");
    if let Some(tx) = ready {
        let _ = tx.send(addr);
    }

    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let wait = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };

    let role = config.role;
    if role.runs_workers() {
        // A scheduled scan missed while the appliance was down is queued once now.
        let catch_up_state = state.clone();
        tokio::spawn(async move { jobs::cron::catch_up(&catch_up_state).await });
        tokio::spawn(housekeeping(state.clone(), rx.clone()));
    }

    if config.github_mode.uses_app() && config.github_allowed_accounts.is_empty() {
        tracing::warn!(
            "GITHUB_ALLOWED_ACCOUNTS is not set: whoever installs the GitHub App gets their repositories mirrored and scanned; list the accounts to serve"
        );
    }

    // Upkeep (see `upkeep`).
    let upkeep_state = state.clone();
    let mut upkeep_stop = rx.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_EVERY);
        let mut ticks: u64 = 0;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = upkeep_stop.wait_for(|v| *v) => break,
            }
            upkeep(&upkeep_state, ticks).await;
            ticks += 1;
        }
    });

    // Duplicate-set refreshes, digests on their schedule, settings re-reads (the work itself
    // runs on the workflow queue): queued by the processes that run workers.
    if role.runs_workers() {
        tokio::spawn(jobs::workflow::upkeep(state.clone(), wait(rx.clone())));
    }

    let app = crate::api::router(state.clone());
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(wait(rx.clone()));
    let server = tokio::spawn(async move { server.await });
    let workers = if role.runs_workers() {
        tokio::spawn(jobs::run_workers(state.clone(), wait(rx.clone())))
    } else {
        // A web process only queues work; the worker processes run it.
        let stop = wait(rx.clone());
        tokio::spawn(async move {
            stop.await;
            Ok(())
        })
    };

    // After the signal, everything must be done within the bound (plus a little for closing).
    let bound = config.shutdown_timeout + Duration::from_secs(2);
    let mut rx2 = rx.clone();
    let drained = async {
        let (s, w) = tokio::join!(server, workers);
        (s, w)
    };
    tokio::pin!(drained);
    let (s, w) = tokio::select! {
        r = &mut drained => r,
        _ = async {
            let _ = rx2.wait_for(|v| *v).await;
            tokio::time::sleep(bound).await;
        } => {
            tracing::warn!(bound_secs = bound.as_secs(), "shutdown bound reached; exiting with work unfinished (it will be re-run)");
            state.pool.close();
            return Ok(());
        }
    };
    state.pool.close();
    match s {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e).context("HTTP server failed"),
        Err(e) => return Err(e).context("HTTP server task failed"),
    }
    match w {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "workers stopped with an error"),
        Err(e) => tracing::error!(error = %e, "worker task failed"),
    }
    tracing::info!("shutdown complete");
    Ok(())
}
