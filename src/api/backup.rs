//! `GET /api/feedback/export` and `POST /api/feedback/import`: every maintainer verdict of every
//! repository as JSONL (see [`crate::backup`]), for `clawtriage feedback export|import`.

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::results::{check_limit, decode_cursor, encode_cursor};
use super::{ApiError, ApiResult, require_dashboard};
use crate::backup::VerdictRecord;
use crate::state::AppState;
use crate::store::backup::{self, ImportOutcome};

/// Largest import body: its own bound, above the API's MAX_BODY_BYTES, so that the CLI's batches
/// (at most half of it) fit whatever that is set to.
pub const IMPORT_MAX_BYTES: usize = 2 * 1024 * 1024;

/// Query of the export.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Verdicts per page: 1–5000, default 1000.
    pub limit: Option<i64>,
    /// The `x-next-cursor` header of the previous page.
    pub cursor: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ExportCursor {
    after: i64,
}

/// `GET /api/feedback/export`: verdicts in the order they were given, one JSON object per line;
/// `x-next-cursor` names the next page while there is one.
#[utoipa::path(get, path = "/feedback/export", tag = "results", params(ExportQuery),
    responses((status = 200, description = "application/x-ndjson: one VerdictRecord per line", body = VerdictRecord),
              (status = 400), (status = 401)))]
pub async fn export_feedback(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> ApiResult<Response> {
    require_dashboard(&state, &headers)?;
    let Query(q) = query?;
    let limit = check_limit(q.limit, 1000, 5000)?;
    let after = match &q.cursor {
        Some(c) => Some(decode_cursor::<ExportCursor>(c)?.after),
        None => None,
    };
    let mut rows = backup::export_page(&state.pool, after, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = rows
        .last()
        .filter(|_| more)
        .map(|(id, _)| encode_cursor(&ExportCursor { after: *id }));
    super::results::ndjson(rows.iter().map(|(_, r)| r), next)
}

/// `POST /api/feedback/import`: a JSONL body of exported verdicts (at most [`IMPORT_MAX_BYTES`]).
/// Every line is checked first;
/// one bad line rejects the whole body (400 naming the line) and stores nothing. Verdicts whose
/// key is stored already are left alone, so sending the same lines twice changes nothing.
#[utoipa::path(post, path = "/feedback/import", tag = "results",
    request_body(content = String, content_type = "application/x-ndjson", description = "one VerdictRecord per line"),
    responses((status = 200, body = ImportOutcome), (status = 400), (status = 401), (status = 413)))]
pub async fn import_feedback(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    require_dashboard(&state, &headers)?;
    // The route's own bound (not MAX_BODY_BYTES), read no further than it.
    let body = axum::body::to_bytes(body, IMPORT_MAX_BYTES)
        .await
        .map_err(|_| ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
            message: format!(
                "the request body is over {IMPORT_MAX_BYTES} bytes: send fewer lines per request"
            ),
        })?;
    let text =
        std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("body: not UTF-8 text"))?;
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let r = VerdictRecord::parse_line(line)
            .map_err(|e| ApiError::bad_request(format!("line {}: {e}", i + 1)))?;
        records.push(r);
    }
    let outcome = backup::import(&state.pool, &records).await?;
    if outcome.imported > 0 {
        state.cache.bump().await;
    }
    tracing::info!(
        imported = outcome.imported,
        already_present = outcome.already_present,
        "verdicts imported"
    );
    Ok(axum::Json(outcome).into_response())
}
