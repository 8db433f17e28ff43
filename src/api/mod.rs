//! The HTTP edge: every route in [`router`], one `ApiError` envelope
//! (`{"error":{"code","message"}}`), bearer-token checks in constant time, request ids,
//! tracing, body limits and timeouts. Handlers extract, call the store or the queue, respond.

pub mod backup;
pub mod dashboard;
pub mod health;
pub mod ops;
pub mod results;
pub mod webhooks;

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::DashboardAuthMode;
use crate::state::AppState;
use crate::store::StoreError;

/// An error answer: status, stable machine code, human message.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code, e.g. `bad_request`.
    pub code: &'static str,
    /// Human-readable message (never internal details).
    pub message: String,
}

impl ApiError {
    /// 400 with a message naming the bad field.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
        }
    }
    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.into(),
        }
    }
    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: message.into(),
        }
    }
    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: message.into(),
        }
    }
    /// 503.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: message.into(),
        }
    }
    /// 500, logging the detail once and sending only a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "internal error; see the appliance's logs".into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found("not found"),
            StoreError::Unavailable(m) => {
                tracing::warn!(error = %m, "database unavailable");
                ApiError::unavailable("the database is unavailable; try again shortly")
            }
            other if other.is_disk_full() => {
                tracing::error!(error = %other, "the database's disk is full");
                ApiError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "disk_full",
                    message: "the database's disk is full; nothing was changed. Free space on the data volume and try again".into(),
                }
            }
            other if other.is_transient() => {
                tracing::warn!(error = %other, "database unavailable");
                ApiError::unavailable("the database is unavailable; try again shortly")
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::jobs::JobError> for ApiError {
    fn from(e: crate::jobs::JobError) -> Self {
        match e {
            crate::jobs::JobError::Redis(m) => {
                tracing::warn!(error = %m, "queue unavailable");
                ApiError::unavailable("the job queue is unavailable; try again shortly")
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::jobs::scan::EnqueueError> for ApiError {
    fn from(e: crate::jobs::scan::EnqueueError) -> Self {
        use crate::jobs::scan::EnqueueError;
        match e {
            EnqueueError::DiskLow(problem) => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "disk_low",
                message: problem,
            },
            EnqueueError::Store(e) => e.into(),
            EnqueueError::Queue(e) => e.into(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => ApiError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: "unsupported_media_type",
                message: "send the body as application/json".into(),
            },
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    code: "payload_too_large",
                    message: "the request body is too large".into(),
                }
            }
            other => ApiError::bad_request(format!("invalid JSON body: {}", other.body_text())),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_request(format!("invalid query parameter: {}", r.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::bad_request(format!("invalid path parameter: {}", r.body_text()))
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

/// Compares a presented bearer token with the expected one in constant time.
pub fn token_matches(headers: &HeaderMap, expected: &SecretString) -> bool {
    let Some(presented) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
    else {
        return false;
    };
    let a = presented.trim().as_bytes();
    let b = expected.expose_secret().as_bytes();
    // ct_eq on slices of different lengths returns false without early exit on content.
    a.ct_eq(b).into()
}

/// Checks the dashboard token per `DASHBOARD_AUTH_MODE`.
pub fn require_dashboard(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    let cfg = &state.config;
    match (cfg.dashboard_auth_mode, &cfg.dashboard_token) {
        (DashboardAuthMode::Disabled, _) | (DashboardAuthMode::Auto, None) => Ok(()),
        (_, Some(token)) if token_matches(headers, token) => Ok(()),
        _ => Err(ApiError::unauthorized(
            "missing or wrong dashboard token (Authorization: Bearer <DASHBOARD_TOKEN>)",
        )),
    }
}

/// `GET /metrics`: Prometheus text format. Answers to `METRICS_TOKEN` (read-only, meant for
/// Prometheus), the ops token, or whatever the dashboard accepts.
pub async fn metrics_route(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let by_token = [&state.config.metrics_token, &state.config.ops_trigger_token]
        .into_iter()
        .flatten()
        .any(|t| token_matches(&headers, t));
    if !by_token {
        require_dashboard(&state, &headers).map_err(|_| {
            ApiError::unauthorized(
                "missing or wrong token (Authorization: Bearer <METRICS_TOKEN>; the ops and dashboard tokens work too)",
            )
        })?;
    }
    let text = crate::metrics::render(&state).await;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response())
}

async fn api_not_found() -> ApiError {
    ApiError::not_found("no such API route")
}

async fn worker_not_found() -> ApiError {
    ApiError::not_found(
        "this is a worker process (ROLE=worker): it serves only /api/health and /metrics",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: "this route does not take that method".into(),
    }
}

/// The OpenAPI description's frame; paths are added by the routes themselves.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "ClawTriage API", description = "Duplicate pull-request triage. Errors are {\"error\":{\"code\",\"message\"}}."),
    servers((url = "/api")),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

/// The API routes and the OpenAPI description generated from them (so the two cannot drift).
pub fn api_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi;
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::get_health))
        .routes(routes!(ops::trigger_public_scan))
        .routes(routes!(ops::list_scans))
        .routes(routes!(ops::get_scan))
        .routes(routes!(results::list_repos))
        .routes(routes!(results::triage_queue))
        .routes(routes!(results::get_pr))
        .routes(routes!(results::get_candidates))
        .routes(routes!(results::duplicate_sets))
        .routes(routes!(results::post_feedback, results::list_feedback))
        .routes(routes!(backup::export_feedback))
        .routes(routes!(backup::import_feedback))
        .split_for_parts()
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let cfg = state.config.clone();
    let (routes, openapi) = api_routes();
    let openapi = std::sync::Arc::new(openapi);
    let api = routes
        .route(
            "/openapi.json",
            get(move || {
                let doc = openapi.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(api_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Limits what extractors read; an oversized body becomes our JSON 413.
        .layer(DefaultBodyLimit::max(cfg.max_body_bytes));

    let x_request_id = HeaderName::from_static("x-request-id");
    let routes = if cfg.role.serves_api() {
        Router::new()
            .nest("/api", api)
            // Outside /api, with GitHub's 25 MB body limit on this route only.
            .merge(webhooks::routes(cfg.github_mode.uses_app()))
            .route("/metrics", get(metrics_route))
            .fallback(dashboard::serve_dashboard)
    } else {
        // A worker process: health for the platform's checks, metrics for the scraper.
        Router::new()
            .route("/api/health", get(health::get_health))
            .route("/metrics", get(metrics_route))
            .fallback(worker_not_found)
    };
    routes
        .with_state(state)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            cfg.request_timeout,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("a request handler panicked").into_response()
        }))
        // Outside the timeout and panic layers, so their 503s and 500s are counted too.
        .layer(axum::middleware::from_fn(crate::metrics::track_http))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        // API answers are data, never documents: nothing in them may load or run anything.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
        ))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
}

/// Graceful-shutdown bound for in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
