//! `GET /api/health`: 200 only when Postgres and Redis both answer, else 503 naming what is down.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// Seconds without a worker heartbeat after which health reports the workers down.
pub const WORKER_SILENCE_SECS: i64 = 60;

/// The health check.
#[utoipa::path(get, path = "/health", tag = "ops", security(()),
    responses((status = 200, description = "Postgres and Redis answer"),
              (status = 503, description = "something is down; `down` names it")))]
pub async fn get_health(State(state): State<AppState>) -> Response {
    let (db, redis) = tokio::join!(crate::store::ping(&state.pool), state.queues.ping());
    let mut down = Vec::new();
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
    // restart did not fix) and nothing would be processed while the API looks fine.
    let heartbeat_age = state.queues.worker_heartbeat_age();
    let workers_status = match heartbeat_age {
        Some(age) if age > WORKER_SILENCE_SECS => {
            down.push("workers");
            "down"
        }
        Some(_) => "ok",
        None => "starting",
    };
    let ok = down.is_empty();
    let body = serde_json::json!({
        "ok": ok,
        "version": env!("CARGO_PKG_VERSION"),
        "postgres": db_status,
        "redis": redis_status,
        "down": down,
        "githubMode": format!("{:?}", state.config.github_mode).to_lowercase(),
        "workers": workers_status,
        "workerHeartbeatAgeSecs": heartbeat_age,
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
