//! The HTTP edge: every route in [`router`], one `ApiError` envelope
//! (`{"error":{"code","message"}}`), bearer-token checks in constant time, request ids,
//! tracing, body limits and timeouts. Handlers extract, call the store or the queue, respond.

pub mod backup;
pub mod dashboard;
pub mod health;
pub mod ops;
pub mod results;
pub mod webhooks;
pub mod workflow;

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

/// A per-client limit whose counts live in Redis: the same budget whichever process a client's
/// requests reach, and nothing to forget (a client's count expires with its window).
pub type ClientLimiter = crate::limits::SharedLimiter;

/// A limiter named `name` of `per_minute` calls per client within any minute.
pub fn client_limiter(
    queues: &crate::jobs::Queues,
    prefix: &str,
    name: &str,
    per_minute: u32,
) -> ClientLimiter {
    crate::limits::SharedLimiter::new(
        queues.connection(),
        format!("{prefix}:limit:{name}"),
        per_minute,
        Duration::from_secs(60),
    )
}

/// Whether `ip` is an address Fly's proxy reaches a Machine from: its private IPv4 network.
/// Requests over the organisation's private IPv6 network (6PN, `fdaa::/16`) come straight from
/// other Machines, which may set any header they like.
fn from_fly_proxy(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_private(),
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some_and(|v4| v4.is_private()),
    }
}

/// The client a request comes from: on Fly (`on_fly`), `Fly-Client-IP` when the connection comes
/// from Fly's proxy (which always overwrites the header); otherwise the TCP peer.
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<std::net::SocketAddr>,
    on_fly: bool,
) -> std::net::IpAddr {
    let peer_ip = peer.map(|p| p.ip());
    let via_proxy = on_fly && peer_ip.is_some_and(from_fly_proxy);
    headers
        .get("fly-client-ip")
        .filter(|_| via_proxy)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .or(peer_ip)
        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]))
}

/// Refuses a client over its budget in `limiter` (429 `rate_limited`).
pub async fn check_client_rate(
    limiter: &ClientLimiter,
    headers: &HeaderMap,
    peer: Option<std::net::SocketAddr>,
    what: &str,
) -> ApiResult<()> {
    let on_fly = std::env::var_os("FLY_APP_NAME").is_some();
    let ip = client_ip(headers, peer, on_fly);
    match limiter.check(&ip.to_string()).await {
        Ok(crate::limits::Verdict::Allowed) => Ok(()),
        // Redis is down: what the limit protects (the queue, the shared cache) is down with it.
        Err(e) => {
            tracing::warn!(error = %e, what, "per-client rate limit not checked: redis unavailable");
            Ok(())
        }
        Ok(crate::limits::Verdict::Limited) => {
            tracing::warn!(client = %ip, what, "per-client rate limit hit");
            Err(ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "rate_limited",
                message: format!(
                    "at most {} {what} per minute per client; try again shortly",
                    limiter.budget()
                ),
            })
        }
    }
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
        .routes(routes!(workflow::search_prs))
        .routes(routes!(workflow::get_set))
        .routes(routes!(workflow::get_settings))
        .routes(routes!(workflow::reload_settings))
        .routes(routes!(workflow::create_plan))
        .routes(routes!(workflow::get_plan))
        .routes(routes!(workflow::apply_plan))
        .routes(routes!(workflow::list_actions))
        .routes(routes!(workflow::run_digest))
        .routes(routes!(backup::export_feedback))
        .routes(routes!(backup::import_feedback))
        .split_for_parts()
}

/// The host names a loopback install answers to: `localhost`, loopback addresses and the host of
/// PUBLIC_URL. None when the appliance listens beyond loopback (no check then).
pub fn allowed_hosts(cfg: &crate::config::Config) -> Option<Vec<String>> {
    if !cfg.host.is_loopback() {
        return None;
    }
    let mut hosts = vec!["localhost".to_string(), "[::1]".to_string()];
    if let Some(h) = cfg
        .public_url
        .as_deref()
        .and_then(|u| reqwest::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
    {
        hosts.push(h);
    }
    Some(hosts)
}

/// The host name of a `Host` header value (port and trailing dot removed, lowercase).
fn host_name(value: &str) -> String {
    let v = value.trim().to_ascii_lowercase();
    let name = if v.starts_with('[') {
        v.split_inclusive(']').next().unwrap_or("").to_string()
    } else {
        v.rsplit_once(':').map(|(h, _)| h).unwrap_or(&v).to_string()
    };
    name.trim_end_matches('.').to_string()
}

/// Whether a request's host is one a loopback install answers to.
pub fn host_allowed(allowed: &[String], value: &str) -> bool {
    let name = host_name(value);
    name.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.is_loopback())
        || allowed.contains(&name)
}

/// DNS rebinding guard of loopback installs: a web page on another site can make a browser send
/// requests to 127.0.0.1 under the page's own host name; those carry that name in `Host` and
/// are refused (403 `host_not_allowed`).
async fn check_host(
    axum::extract::State(allowed): axum::extract::State<std::sync::Arc<Vec<String>>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    match host {
        Some(h) if !host_allowed(&allowed, &h) => {
            tracing::warn!(host = %h.escape_debug(), "request for another host name refused (DNS rebinding guard)");
            ApiError {
                status: StatusCode::FORBIDDEN,
                code: "host_not_allowed",
                message: "this appliance listens on a loopback address and answers only to localhost, loopback addresses and the host of PUBLIC_URL".into(),
            }
            .into_response()
        }
        _ => next.run(req).await,
    }
}

/// Whether a client's `X-Request-Id` is kept: 1-64 letters, digits, `.`, `_`, `-`, `:`.
/// Anything else (long, or carrying characters a log reader would trip on) is replaced by a
/// generated id.
pub fn request_id_acceptable(id: &[u8]) -> bool {
    (1..=64).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

async fn sanitize_request_id(mut req: axum::extract::Request) -> axum::extract::Request {
    if req
        .headers()
        .get("x-request-id")
        .is_some_and(|v| !request_id_acceptable(v.as_bytes()))
    {
        req.headers_mut().remove("x-request-id");
    }
    req
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
            // Outside /api, with its own body limits.
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
    let router = routes.with_state(state);
    let router = match allowed_hosts(&cfg) {
        Some(hosts) => router.layer(axum::middleware::from_fn_with_state(
            std::sync::Arc::new(hosts),
            check_host,
        )),
        None => router,
    };
    router
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
        // Outermost: a client's unacceptable X-Request-Id is dropped before an id is set.
        .layer(axum::middleware::map_request(sanitize_request_id))
}

/// Graceful-shutdown bound for in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_installs_answer_only_to_their_own_host_names() {
        let allowed = vec![
            "localhost".to_string(),
            "[::1]".to_string(),
            "triage.example".to_string(),
        ];
        for ok in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:8080",
            "127.0.0.2",
            "[::1]:8080",
            "LOCALHOST.",
            "triage.example",
        ] {
            assert!(host_allowed(&allowed, ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "[::2]:80",
            "",
        ] {
            assert!(!host_allowed(&allowed, bad), "{bad}");
        }
    }

    #[test]
    fn fly_client_ip_is_trusted_only_from_flys_proxy() {
        let mut h = HeaderMap::new();
        h.insert("fly-client-ip", HeaderValue::from_static("203.0.113.7"));
        let proxy: std::net::SocketAddr = "172.16.3.2:4000".parse().unwrap();
        let sixpn: std::net::SocketAddr = "[fdaa:0:1::3]:4000".parse().unwrap();
        assert_eq!(client_ip(&h, Some(proxy), true).to_string(), "203.0.113.7");
        assert_eq!(
            client_ip(&h, Some(sixpn), true),
            sixpn.ip(),
            "6PN peers set any header"
        );
        assert_eq!(client_ip(&h, Some(proxy), false), proxy.ip(), "not on Fly");
    }

    #[test]
    fn odd_request_ids_are_not_kept() {
        assert!(request_id_acceptable(b"abc-123_x.y:z"));
        assert!(!request_id_acceptable(b""));
        assert!(!request_id_acceptable("a".repeat(65).as_bytes()));
        assert!(!request_id_acceptable(b"a b"));
        assert!(!request_id_acceptable(b"a\x1b[31m"));
    }
}
