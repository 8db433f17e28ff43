//! `GET /api/health`: 200 only when Postgres, Redis and the workers answer and the data disk has
//! room, else 503 naming what is down (`postgres`, `redis`, `workers`, `disk`). It needs no
//! token, so it says only what is up and down; the data disk's path and sizes are shown to
//! callers with the dashboard or ops token. A `web` process runs no workers: it reports the
//! other processes' workers but is not down without them.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// Seconds without a worker heartbeat after which health reports the workers down.
pub const WORKER_SILENCE_SECS: i64 = 60;

/// The health check.
#[utoipa::path(get, path = "/health", tag = "ops", security(()),
    responses((status = 200, description = "Postgres, Redis and the workers answer; the data disk has room"),
              (status = 503, description = "something is down; `down` names it")))]
pub async fn get_health(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let detailed = super::require_dashboard(&state, &headers).is_ok()
        || state
            .config
            .ops_trigger_token
            .as_ref()
            .is_some_and(|t| super::token_matches(&headers, t));
    let (db, redis) = tokio::join!(crate::store::ping(&state.pool), state.queues.ping());
    let mut down = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let db_status = match &db {
        Ok(()) => "ok".to_string(),
        Err(e) => {
            down.push("postgres");
            tracing::warn!(error = %e, "health: postgres down");
            "down".to_string()
        }
    };
    let redis_status = match &redis {
        Ok(()) => "ok".to_string(),
        Err(e) => {
            down.push("redis");
            tracing::warn!(error = %e, "health: redis down");
            "down".to_string()
        }
    };
    // Workers heartbeat every few seconds; silence means they are gone (Redis trouble that a
    // restart did not fix) and nothing would be processed while the API looks fine. A process
    // that runs workers judges its own; a `web` process runs none and judges the workers of every
    // process through their heartbeats in Redis, reporting silence without failing its own
    // health (restarting a web machine would not bring a worker back).
    let role = state.config.role;
    let heartbeat_age = state.worker_heartbeat_age().await;
    let workers_status = match heartbeat_age {
        Some(age) if age > WORKER_SILENCE_SECS => {
            if role.runs_workers() {
                down.push("workers");
            } else {
                problems.push(format!(
                    "no worker process has reported a heartbeat for {age} s: queued work waits"
                ));
            }
            "down"
        }
        Some(_) => "ok",
        None if role.runs_workers() => "starting",
        None => "none",
    };
    // A nearly full data disk: Postgres and Redis still answer, but writes are about to fail.
    let disk = match state.disk.check() {
        Ok(r) => {
            let status = if r.is_low() {
                down.push("disk");
                problems.push(if detailed {
                    r.problem()
                } else {
                    "data disk nearly full (send the dashboard or ops token for details)".into()
                });
                "low"
            } else {
                "ok"
            };
            if detailed {
                serde_json::json!({
                    "status": status,
                    "path": r.path.display().to_string(),
                    "freeMiB": r.free_bytes / (1024 * 1024),
                    "totalMiB": r.total_bytes / (1024 * 1024),
                    "minFreeMiB": r.min_free_bytes / (1024 * 1024),
                })
            } else {
                serde_json::json!({ "status": status })
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "health: disk check failed");
            serde_json::json!({"status": "unknown"})
        }
    };
    let ok = down.is_empty();
    let body = serde_json::json!({
        "ok": ok,
        "version": env!("CARGO_PKG_VERSION"),
        "postgres": db_status,
        "redis": redis_status,
        "down": down,
        "githubMode": format!("{:?}", state.config.github_mode).to_lowercase(),
        "role": role.as_str(),
        "workers": workers_status,
        "workerHeartbeatAgeSecs": heartbeat_age,
        "disk": disk,
        "problems": problems,
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
