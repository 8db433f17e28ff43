//! The ops trigger (`POST /api/ops/public-scan`) and scan progress (`GET /api/ops/scans/...`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiError, ApiResult, require_dashboard, token_matches};
use crate::config::{RepoName, validate_owner, validate_repo};
use crate::jobs::{PushOutcome, ScanJob};
use crate::state::AppState;
use crate::store::scans;

/// Body of the trigger.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggerBody {
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// Cap on open PRs listed (newest first).
    #[serde(default)]
    pub max_open_prs: Option<u32>,
    /// Snapshot id; the same snapshot scans once. Default: the current time.
    #[serde(default)]
    pub snapshot: Option<String>,
}

/// Largest `maxOpenPrs` accepted.
pub const MAX_OPEN_PRS_LIMIT: u32 = 100_000;

/// Checks a snapshot id: 1–64 of `A-Z a-z 0-9 . _ - :`.
pub fn validate_snapshot(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
    if ok {
        Ok(())
    } else {
        Err("snapshot: 1-64 characters of letters, digits, `.`, `_`, `-`, `:`".into())
    }
}

/// A default snapshot id: the current UTC time to the millisecond.
pub fn default_snapshot() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ").to_string()
}

fn require_ops(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    match &state.config.ops_trigger_token {
        Some(t) if token_matches(headers, t) => Ok(()),
        Some(_) => Err(ApiError::unauthorized(
            "missing or wrong ops token (Authorization: Bearer <OPS_TRIGGER_TOKEN>)",
        )),
        None => Err(ApiError::unauthorized(
            "the ops trigger is disabled: OPS_TRIGGER_TOKEN is not set",
        )),
    }
}

/// Trigger calls allowed per client within any minute, across every process of the appliance.
pub const TRIGGER_CALLS_PER_MINUTE: u32 = 10;

/// The trigger's limiter (kept in Redis: one budget however many web processes serve a client).
pub fn trigger_limiter(queues: &crate::jobs::Queues, prefix: &str) -> super::ClientLimiter {
    super::client_limiter(queues, prefix, "trigger", TRIGGER_CALLS_PER_MINUTE)
}

/// Refuses a client over its trigger budget (checked before the token, so that guessing tokens
/// is rate limited too).
async fn check_rate(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<std::net::SocketAddr>,
) -> ApiResult<()> {
    super::check_client_rate(&state.trigger_limiter, headers, peer, "trigger calls").await
}

/// `POST /api/ops/public-scan`.
#[utoipa::path(post, path = "/ops/public-scan", tag = "ops", request_body = TriggerBody,
    params(("X-Trigger-Actor" = Option<String>, Header, description = "who asks, recorded for audit")),
    responses((status = 202, description = "queued"), (status = 200, description = "this snapshot was queued before"),
              (status = 400), (status = 401), (status = 403, description = "not in PUBLIC_SCAN_ALLOWED_REPOS"),
              (status = 413), (status = 429, description = "over the per-client rate limit"), (status = 503)))]
pub async fn trigger_public_scan(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    body: Result<Json<TriggerBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    check_rate(&state, &headers, peer.map(|c| (c.0).0)).await?;
    require_ops(&state, &headers)?;
    let Json(body) = body?;
    validate_owner(&body.owner).map_err(ApiError::bad_request)?;
    validate_repo(&body.repo).map_err(ApiError::bad_request)?;
    if let Some(m) = body.max_open_prs
        && (m == 0 || m > MAX_OPEN_PRS_LIMIT)
    {
        return Err(ApiError::bad_request(format!(
            "maxOpenPrs: must be from 1 to {MAX_OPEN_PRS_LIMIT}"
        )));
    }
    let snapshot = match body.snapshot {
        Some(s) => {
            validate_snapshot(&s).map_err(ApiError::bad_request)?;
            s
        }
        None => default_snapshot(),
    };
    let repo = RepoName {
        owner: body.owner,
        name: body.repo,
    };
    if !state.config.is_allowed(&repo) {
        return Err(ApiError::forbidden(format!(
            "{repo} is not in PUBLIC_SCAN_ALLOWED_REPOS"
        )));
    }
    let actor = headers
        .get("x-trigger-actor")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(200).collect::<String>());
    let job = ScanJob {
        owner: repo.owner.clone(),
        repo: repo.name.clone(),
        snapshot: snapshot.clone(),
        max_open_prs: body.max_open_prs,
    };
    let outcome = crate::jobs::scan::enqueue(&state, &job, "ops", actor.as_deref()).await?;
    let job_id = job.job_id();
    tracing::info!(scan = %job_id, actor = actor.as_deref().unwrap_or("-"), ?outcome, "public scan triggered");
    let (status, enqueued) = match outcome {
        PushOutcome::Enqueued => (StatusCode::ACCEPTED, true),
        PushOutcome::Duplicate => (StatusCode::OK, false),
    };
    let mut body = serde_json::json!({
        "enqueued": enqueued,
        "jobId": job_id,
        "owner": repo.owner,
        "repo": repo.name,
        "snapshot": snapshot,
    });
    if !enqueued {
        body["duplicate"] = serde_json::Value::Bool(true);
    }
    Ok((status, Json(body)).into_response())
}

fn require_ops_or_dashboard(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    if let Some(t) = &state.config.ops_trigger_token
        && token_matches(headers, t)
    {
        return Ok(());
    }
    require_dashboard(state, headers)
}

/// `GET /api/ops/scans/{jobId}` (the id's `/` is sent as `%2F`).
#[utoipa::path(get, path = "/ops/scans/{job_id}", tag = "ops",
    params(("job_id" = String, Path, description = "scan:{owner}/{repo}:{snapshot}, URL-encoded")),
    responses((status = 200, body = scans::ScanStatus), (status = 401), (status = 404)))]
pub async fn get_scan(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
) -> ApiResult<Json<scans::ScanStatus>> {
    require_ops_or_dashboard(&state, &headers)?;
    if job_id.len() > 300 {
        return Err(ApiError::bad_request("jobId: too long"));
    }
    match scans::get_scan(&state.pool, &job_id).await {
        Ok(s) => Ok(Json(s)),
        Err(crate::store::StoreError::NotFound) => {
            Err(ApiError::not_found(format!("no scan with id {job_id}")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Query of the scan list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListScansQuery {
    /// At most this many (default 20, max 100).
    pub limit: Option<i64>,
}

/// `GET /api/ops/scans`: recent scans, newest first.
#[utoipa::path(get, path = "/ops/scans", tag = "ops", params(ListScansQuery),
    responses((status = 200, description = "`{\"scans\": [ScanStatus]}`"), (status = 400), (status = 401)))]
pub async fn list_scans(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListScansQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    require_ops_or_dashboard(&state, &headers)?;
    let Query(q) = query?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("limit: must be from 1 to 100"));
    }
    let scans = scans::recent_scans(&state.pool, limit).await?;
    Ok(Json(serde_json::json!({ "scans": scans })))
}
