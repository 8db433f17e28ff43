//! `POST /webhooks/github` (app and hybrid modes): GitHub App webhook deliveries.
//!
//! Order of work, and why:
//! 1. Nobody is authenticated before the signature is checked, so the bodies read before it are
//!    bounded twice: at most [`MAX_UNVERIFIED_BODIES`] are read at once (a request waits up to a
//!    second for a slot, then gets 503 with `Retry-After`), each at most [`MAX_PAYLOAD_BYTES`]
//!    (413 beyond, refused from `Content-Length` before a byte is read). Then the body's
//!    `X-Hub-Signature-256` is checked in constant time before anything is parsed (401 when
//!    wrong or missing), and the slot is released.
//! 2. In one Postgres transaction: the delivery id is claimed (`webhook_deliveries`, as
//!    `pending`), the state change is applied (PR upsert, installation changes) and the jobs it
//!    calls for are stored with the delivery. A delivery seen before answers 200
//!    `{"duplicate":true}` and changes nothing; so does the same signed body under another
//!    delivery id (the id is not signed: that is a replay), found by the body's SHA-256.
//! 3. After the commit the jobs are pushed to Redis, then the delivery is marked `queued` (PR
//!    events) or `done`. If a push fails the answer is 503 and the delivery stays `pending`
//!    with its jobs, as it does when the process dies between commit and push: GitHub does not
//!    redeliver by itself, so [`requeue_pending`] (run every minute) pushes them once the queue
//!    answers again; a manual redelivery is processed again too. Pushes de-duplicate by job id,
//!    so queueing twice queues once.
//!
//! Installing the App on repositories (`installation.created`, `installation_repositories.added`)
//! queues one scan of each, so their open PRs are triaged without waiting for new pushes
//! (`SCAN_ON_INSTALL=off` turns that off). With `GITHUB_ALLOWED_ACCOUNTS` set, events from
//! installations on other accounts, and PR events of their repositories, are skipped: a public
//! App installed by a stranger mirrors nothing.
//!
//! Events about one PR may arrive out of order (GitHub does not promise order): a payload whose
//! `pull_request.updated_at` is older than the stored one is ignored (answer `"stale":true`).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header as http_header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use futures::StreamExt;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::{ApiError, ApiResult};
use crate::config::RepoName;
use crate::github::PullSummary;
use crate::jobs::{AnalyseJob, PushOutcome, ScanJob};
use crate::state::AppState;
use crate::store::analysis::{self, Versions};
use crate::store::app::{self as app_store, Claim, Delivery, PullChange};
use crate::store::{StoreError, repos};

/// The route.
pub const PATH: &str = "/webhooks/github";
/// Largest body read. GitHub caps payloads at 25 MB, but the events handled here are far
/// smaller: a `pull_request` payload is tens of KB plus the PR body (at most 65,536 characters,
/// under 400 KB however escaped), and installation events list repositories at about 120 bytes
/// each (5 MiB is some 40,000 of them).
pub const MAX_PAYLOAD_BYTES: usize = 5 * 1024 * 1024;
/// Bodies read at once before their signature is checked (at most 40 MiB in memory).
pub const MAX_UNVERIFIED_BODIES: usize = 8;
/// How long a request waits for a free body slot before it is shed with 503.
pub const BODY_SLOT_WAIT: Duration = Duration::from_secs(1);
/// A `pending` delivery younger than this is left to the request that is queueing it.
pub const SWEEP_AFTER_SECS: i64 = 60;

/// Slots for bodies being read before their signature is checked.
#[derive(Clone)]
struct BodySlots(Arc<Semaphore>);

/// The webhook route: the receiver in app and hybrid modes, a JSON 404 in public mode. It reads
/// bodies itself, within its own limits (see the module documentation).
pub fn routes(enabled: bool) -> Router<AppState> {
    if enabled {
        Router::new()
            .route(PATH, post(receive).fallback(wrong_method))
            .layer(Extension(BodySlots(Arc::new(Semaphore::new(
                MAX_UNVERIFIED_BODIES,
            )))))
    } else {
        Router::new().route(PATH, any(disabled))
    }
}

async fn disabled() -> ApiError {
    ApiError::not_found("webhooks are received only when GITHUB_MODE is app or hybrid")
}

async fn wrong_method() -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: "GitHub webhooks are POSTed".into(),
    }
}

fn too_large() -> ApiError {
    ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "payload_too_large",
        message: format!(
            "webhook payloads are at most {} MiB here",
            MAX_PAYLOAD_BYTES >> 20
        ),
    }
}

/// Reads a body of at most [`MAX_PAYLOAD_BYTES`], refusing a larger `Content-Length` before
/// reading anything and a longer stream as soon as it passes the limit.
async fn read_bounded(headers: &HeaderMap, body: Body) -> ApiResult<Bytes> {
    let declared = headers
        .get(http_header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_PAYLOAD_BYTES as u64) {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(1 << 20) as usize);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("unreadable body: {e}")))?;
        if buf.len() + chunk.len() > MAX_PAYLOAD_BYTES {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// Checks `sha256=<hex HMAC-SHA256 of body>` in constant time.
pub fn signature_matches(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

#[derive(Debug, Deserialize)]
struct Installation {
    id: i64,
    /// The account the App is installed on (absent from PR events' short form).
    #[serde(default)]
    account: Option<Account>,
}

#[derive(Debug, Deserialize)]
struct Account {
    #[serde(default)]
    login: String,
}

#[derive(Debug, Deserialize)]
struct RepoRef {
    full_name: String,
    #[serde(default)]
    default_branch: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PullRequestEvent {
    action: String,
    pull_request: PullSummary,
    repository: RepoRef,
    #[serde(default)]
    installation: Option<Installation>,
    /// What an `edited` action changed.
    #[serde(default)]
    changes: Option<EditChanges>,
}

/// The parts of an `edited` action's `changes` that matter: the title and body feed the PR's
/// references (`Fixes #123`, mentions), so changing them re-analyses the head.
#[derive(Debug, Default, Deserialize)]
struct EditChanges {
    #[serde(default)]
    title: Option<serde_json::Value>,
    #[serde(default)]
    body: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct InstallationEvent {
    action: String,
    installation: Installation,
    #[serde(default)]
    repositories: Option<Vec<RepoRef>>,
}

#[derive(Debug, Deserialize)]
struct InstallationReposEvent {
    action: String,
    installation: Installation,
    #[serde(default)]
    repositories_added: Vec<RepoRef>,
    #[serde(default)]
    repositories_removed: Vec<RepoRef>,
}

#[derive(Debug, Deserialize)]
struct ActionOnly {
    #[serde(default)]
    action: Option<String>,
}

const PR_ACTIONS: &[&str] = &[
    "opened",
    "reopened",
    "synchronize",
    "edited",
    "closed",
    "ready_for_review",
];
const INSTALLATION_ACTIONS: &[&str] = &[
    "created",
    "deleted",
    "suspend",
    "unsuspend",
    "new_permissions_accepted",
];

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("payload does not match the event: {e}")))
}

fn repo_name(r: &RepoRef) -> ApiResult<RepoName> {
    RepoName::parse(&r.full_name).map_err(ApiError::bad_request)
}

fn skipped(event: &str, action: Option<&str>) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(json!({"skipped": true, "event": event, "action": action})),
    )
        .into_response()
}

fn duplicate(delivery: &str, claim: Claim) -> Response {
    let replay = claim == Claim::Replay;
    if replay {
        tracing::warn!(
            delivery,
            "webhook body seen before under another delivery id; replay ignored"
        );
    } else {
        tracing::info!(delivery, "webhook redelivered; already processed");
    }
    (
        StatusCode::OK,
        Json(json!({"duplicate": true, "replay": replay, "delivery": delivery})),
    )
        .into_response()
}

/// A delivery about an account that `GITHUB_ALLOWED_ACCOUNTS` leaves out: nothing is stored,
/// nothing queued.
fn refused(event: &str, account: &str) -> Response {
    tracing::warn!(
        event,
        account,
        "webhook from an account not in GITHUB_ALLOWED_ACCOUNTS; skipped"
    );
    (
        StatusCode::ACCEPTED,
        Json(json!({"skipped": true, "event": event,
            "reason": format!("account `{account}` is not in GITHUB_ALLOWED_ACCOUNTS")})),
    )
        .into_response()
}

fn busy() -> Response {
    let mut r = ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "busy",
        message: format!(
            "{MAX_UNVERIFIED_BODIES} webhook bodies are being read already; try again shortly"
        ),
    }
    .into_response();
    r.headers_mut()
        .insert(http_header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// The jobs a delivery calls for, stored with it until they are queued.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct DeliveryJobs {
    /// Analyses to queue.
    #[serde(default)]
    pub analyse: Vec<AnalyseJob>,
    /// Scans to queue.
    #[serde(default)]
    pub scans: Vec<ScanJob>,
    /// The delivery's outcome once they are queued (`queued` or `done`).
    pub then: String,
}

impl DeliveryJobs {
    fn is_empty(&self) -> bool {
        self.analyse.is_empty() && self.scans.is_empty()
    }

    /// Stores the jobs with the delivery, or, when there are none, its final outcome.
    async fn record(
        &self,
        c: &impl deadpool_postgres::GenericClient,
        delivery: &str,
        outcome_without_jobs: &str,
    ) -> ApiResult<()> {
        if self.is_empty() {
            app_store::set_delivery_outcome(c, delivery, outcome_without_jobs).await?;
        } else {
            let v = serde_json::to_value(self).map_err(ApiError::internal)?;
            app_store::set_delivery_jobs(c, delivery, &v).await?;
        }
        Ok(())
    }
}

/// What queueing a delivery's jobs did.
#[derive(Debug, Default)]
struct Queued {
    /// Analyses newly queued (0 when their job ids were queued before).
    analyses: usize,
    /// Scans newly queued, by job id.
    scans: Vec<String>,
}

/// Pushes a delivery's jobs, then marks it with their `then` outcome. When a push fails the
/// error is returned (503) and the delivery stays `pending` with its jobs: the sweeper or a
/// redelivery queues them later (pushes de-duplicate by job id).
async fn queue_jobs(state: &AppState, delivery: &str, jobs: &DeliveryJobs) -> ApiResult<Queued> {
    let mut queued = Queued::default();
    if jobs.is_empty() {
        return Ok(queued);
    }
    for job in &jobs.analyse {
        if state.queues.push_analyse(job).await? == PushOutcome::Enqueued {
            queued.analyses += 1;
        }
        // The head is queued: the first analysis job of the repository to run takes it along
        // (a burst of deliveries becomes a few batches).
        let cfg = crate::jobs::triage_config(state, job.repo_id).await;
        match (state.pool.get().await, cfg) {
            (Ok(c), Ok(cfg)) => {
                let v = Versions::current(&cfg);
                if let Err(e) =
                    analysis::mark_queued(&c, job.repo_id, job.number, &job.head_sha, v).await
                {
                    tracing::warn!(delivery, error = %e, "could not mark the head queued");
                }
            }
            (Err(e), _) => tracing::warn!(delivery, error = %e, "could not mark the head queued"),
            (_, Err(e)) => tracing::warn!(delivery, error = %e, "could not mark the head queued"),
        }
    }
    for job in &jobs.scans {
        if crate::jobs::scan::enqueue(state, job, "install", None).await? == PushOutcome::Enqueued {
            queued.scans.push(job.job_id());
        }
    }
    match state.pool.get().await {
        Ok(c) => {
            if let Err(e) = app_store::set_delivery_outcome(&c, delivery, &jobs.then).await {
                // Still `pending`: the sweeper pushes again, which de-duplicates.
                tracing::warn!(delivery, error = %e, "could not mark the delivery queued");
            }
        }
        Err(e) => tracing::warn!(delivery, error = %e, "could not mark the delivery queued"),
    }
    Ok(queued)
}

/// The sweeper: pushes the jobs of deliveries left `pending` for more than `older_than_secs`
/// (Redis was down when they came, or the process died between commit and push). GitHub does not
/// redeliver failed deliveries by itself, so without this their work would wait for the next
/// push to the PR. Stops at the first push that fails (the queue is still down). Returns how
/// many deliveries were queued.
pub async fn requeue_pending(state: &AppState, older_than_secs: i64) -> ApiResult<usize> {
    let mut n = 0;
    for (delivery, jobs) in app_store::pending_deliveries(&state.pool, older_than_secs, 100).await?
    {
        let jobs: DeliveryJobs = match serde_json::from_value(jobs) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(delivery, error = %e, "stored jobs of a delivery are unreadable; dropped");
                let c = state.pool.get().await.map_err(StoreError::from)?;
                app_store::set_delivery_outcome(&c, &delivery, "failed").await?;
                continue;
            }
        };
        queue_jobs(state, &delivery, &jobs).await?;
        tracing::info!(
            delivery,
            analyses = jobs.analyse.len(),
            scans = jobs.scans.len(),
            "queued the jobs of a pending delivery"
        );
        n += 1;
    }
    Ok(n)
}

fn sha256_hex(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// `POST /webhooks/github`.
async fn receive(
    State(state): State<AppState>,
    Extension(slots): Extension<BodySlots>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let Some(secret) = &state.config.github_webhook_secret else {
        return Err(ApiError::unauthorized(
            "no GITHUB_WEBHOOK_SECRET is configured",
        ));
    };
    // Unauthenticated bytes: a bounded number of bounded bodies at once.
    let Ok(Ok(slot)) = tokio::time::timeout(BODY_SLOT_WAIT, slots.0.acquire_owned()).await else {
        tracing::warn!("webhook body slots all taken; shedding a delivery with 503");
        return Ok(busy());
    };
    let body = read_bounded(&headers, body).await?;
    if !signature_matches(
        secret.expose_secret().as_bytes(),
        &body,
        header(&headers, "x-hub-signature-256"),
    ) {
        return Err(ApiError::unauthorized(
            "missing or wrong X-Hub-Signature-256",
        ));
    }
    drop(slot);
    let event = header(&headers, "x-github-event")
        .ok_or_else(|| ApiError::bad_request("missing X-GitHub-Event"))?
        .to_string();
    let delivery = header(&headers, "x-github-delivery")
        .filter(|d| !d.is_empty() && d.len() <= 100)
        .ok_or_else(|| ApiError::bad_request("missing or overlong X-GitHub-Delivery"))?
        .to_string();
    let action = parse::<ActionOnly>(&body)?.action;
    let action_ref = action.as_deref();
    let body_sha256 = sha256_hex(&body);
    let d = Delivery {
        id: &delivery,
        event: &event,
        action: action_ref,
        repo_full: None,
        body_sha256: &body_sha256,
    };
    match event.as_str() {
        "ping" => ping(&state, &d).await,
        "pull_request" if action_ref.is_some_and(|a| PR_ACTIONS.contains(&a)) => {
            pull_request(&state, &d, parse(&body)?).await
        }
        "installation" if action_ref.is_some_and(|a| INSTALLATION_ACTIONS.contains(&a)) => {
            installation(&state, &d, parse(&body)?).await
        }
        "installation_repositories"
            if action_ref.is_some_and(|a| a == "added" || a == "removed") =>
        {
            installation_repositories(&state, &d, parse(&body)?).await
        }
        _ => Ok(skipped(&event, action_ref)),
    }
}

async fn ping(state: &AppState, d: &Delivery<'_>) -> ApiResult<Response> {
    let mut c = state.pool.get().await.map_err(StoreError::from)?;
    let tx = c.transaction().await.map_err(StoreError::from)?;
    let claim = app_store::claim_delivery(&tx, d).await?;
    if claim != Claim::New {
        return Ok(duplicate(d.id, claim));
    }
    app_store::set_delivery_outcome(&tx, d.id, "done").await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok((StatusCode::OK, Json(json!({"ok": true, "pong": true}))).into_response())
}

async fn pull_request(
    state: &AppState,
    d: &Delivery<'_>,
    ev: PullRequestEvent,
) -> ApiResult<Response> {
    let name = repo_name(&ev.repository)?;
    if !state.config.account_allowed(&name.owner) {
        return Ok(refused(d.event, &name.owner));
    }
    let pr = &ev.pull_request;
    let full = name.to_string();
    let mut c = state.pool.get().await.map_err(StoreError::from)?;
    let tx = c.transaction().await.map_err(StoreError::from)?;
    let claim = app_store::claim_delivery(
        &tx,
        &Delivery {
            repo_full: Some(&full),
            ..*d
        },
    )
    .await?;
    if claim != Claim::New {
        return Ok(duplicate(d.id, claim));
    }
    let default_branch = ev.repository.default_branch.as_deref();
    let repo_id = match &ev.installation {
        Some(i) => {
            app_store::attach_installation(&tx, &name.owner, &name.name, default_branch, i.id)
                .await?
        }
        None => repos::upsert_repo(&tx, &name.owner, &name.name, default_branch).await?,
    };
    let change = app_store::upsert_pull_if_newer(&tx, repo_id, pr).await?;
    let mut job = None;
    let mut head_changed = false;
    if let PullChange::Applied { previous_head } = &change {
        head_changed = previous_head.as_deref() != Some(pr.head.sha.as_str());
        if pr.state_word() == "open" {
            let v = Versions::current(
                crate::jobs::triage_config_on(state, &tx, repo_id)
                    .await?
                    .as_ref(),
            );
            let prior = analysis::analysis_status(&tx, repo_id, pr.number, &pr.head.sha, v).await?;
            // A reopened PR left the index when it closed: analyse its head again in full. So
            // does a finished head whose title or body was edited (its references changed).
            let text_edited = ev.action == "edited"
                && ev
                    .changes
                    .as_ref()
                    .is_some_and(|c| c.title.is_some() || c.body.is_some());
            let again = (ev.action == "reopened" && prior.is_some())
                || (text_edited && matches!(prior.as_deref(), Some("done") | Some("failed")));
            if again {
                app_store::reset_analysis(&tx, repo_id, pr.number, &pr.head.sha).await?;
            }
            let generation = if again || prior.as_deref() == Some("failed") {
                // A new job id: the old one is still remembered by the queue.
                (chrono::Utc::now().timestamp() / 60) as u32
            } else {
                0
            };
            // `queued`: a job for this head is in the queue already.
            let needed = again || !matches!(prior.as_deref(), Some("done" | "running" | "queued"));
            if needed {
                job = Some(AnalyseJob {
                    repo_id,
                    owner: name.owner.clone(),
                    repo: name.name.clone(),
                    number: pr.number,
                    head_sha: pr.head.sha.clone(),
                    generation,
                });
            }
        }
    }
    let stale = change == PullChange::Stale;
    let jobs = DeliveryJobs {
        analyse: job.clone().into_iter().collect(),
        scans: Vec::new(),
        then: "queued".into(),
    };
    jobs.record(&tx, d.id, if stale { "stale" } else { "done" })
        .await?;
    tx.commit().await.map_err(StoreError::from)?;
    // Back to the pool before the steps below check out a connection again: a handler holding
    // one while waiting for another deadlocks the pool when a burst of deliveries fills it.
    drop(c);
    if !stale {
        // Titles, states and set membership may have changed.
        state.cache.bump().await;
    }
    if let Some(job) = &job {
        state
            .metrics
            .webhook_received(&job.owner, &job.repo, job.number, &job.head_sha);
    }
    let queued = queue_jobs(state, d.id, &jobs).await?;
    let enqueued = queued.analyses > 0;
    let job_id = job.as_ref().map(AnalyseJob::job_id);
    tracing::info!(delivery = d.id, repo = %name, number = pr.number, action = %ev.action, stale,
        head_changed, enqueued, "pull_request webhook");
    let status = if enqueued {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({
            "ok": true,
            "event": "pull_request",
            "action": ev.action,
            "repoId": repo_id,
            "number": pr.number,
            "headSha": pr.head.sha,
            "stale": stale,
            "headChanged": head_changed && !stale,
            "enqueued": enqueued,
            "jobId": job_id,
        })),
    )
        .into_response())
}

fn account_of(i: &Installation) -> &str {
    i.account.as_ref().map(|a| a.login.as_str()).unwrap_or("")
}

async fn installation(
    state: &AppState,
    d: &Delivery<'_>,
    ev: InstallationEvent,
) -> ApiResult<Response> {
    let account = account_of(&ev.installation);
    if !state.config.account_allowed(account) {
        return Ok(refused(d.event, account));
    }
    let names: Vec<RepoName> = ev
        .repositories
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(repo_name)
        .collect::<ApiResult<_>>()?;
    let id = ev.installation.id;
    let mut c = state.pool.get().await.map_err(StoreError::from)?;
    let tx = c.transaction().await.map_err(StoreError::from)?;
    let claim = app_store::claim_delivery(&tx, d).await?;
    if claim != Claim::New {
        return Ok(duplicate(d.id, claim));
    }
    let (mut attached, mut detached) = (0u64, 0u64);
    match ev.action.as_str() {
        "created" | "new_permissions_accepted" | "unsuspend" => {
            for n in &names {
                app_store::attach_installation(&tx, &n.owner, &n.name, None, id).await?;
                attached += 1;
            }
            if ev.action == "unsuspend" {
                attached += app_store::set_installation_active(&tx, id, true).await?;
            }
        }
        "suspend" => {
            detached = app_store::set_installation_active(&tx, id, false).await?;
        }
        "deleted" => {
            let listed: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            detached = app_store::detach_installation(&tx, id, Some(&listed)).await?;
            detached += app_store::detach_installation(&tx, id, None).await?;
        }
        _ => {}
    }
    let to_scan: &[RepoName] = if ev.action == "created" { &names } else { &[] };
    let jobs = install_scans(state, d.id, to_scan);
    jobs.record(&tx, d.id, "done").await?;
    tx.commit().await.map_err(StoreError::from)?;
    // Back to the pool before queueing scans checks out connections (see `pull_request`).
    drop(c);
    state.cache.bump().await;
    if matches!(ev.action.as_str(), "deleted" | "suspend") {
        state.github.forget_installation_token(id);
    }
    let scans = queue_jobs(state, d.id, &jobs).await?.scans;
    tracing::info!(delivery = d.id, installation = id, action = %ev.action, attached, detached, scans = scans.len(), "installation webhook");
    Ok((
        StatusCode::OK,
        Json(json!({"ok": true, "event": "installation", "action": ev.action,
            "installationId": id, "repositoriesActivated": attached, "repositoriesDeactivated": detached,
            "scansQueued": scans})),
    )
        .into_response())
}

async fn installation_repositories(
    state: &AppState,
    d: &Delivery<'_>,
    ev: InstallationReposEvent,
) -> ApiResult<Response> {
    let account = account_of(&ev.installation);
    if !state.config.account_allowed(account) {
        return Ok(refused(d.event, account));
    }
    let added: Vec<RepoName> = ev
        .repositories_added
        .iter()
        .map(repo_name)
        .collect::<ApiResult<_>>()?;
    let removed: Vec<String> = ev
        .repositories_removed
        .iter()
        .map(|r| repo_name(r).map(|n| n.to_string()))
        .collect::<ApiResult<_>>()?;
    let id = ev.installation.id;
    let mut c = state.pool.get().await.map_err(StoreError::from)?;
    let tx = c.transaction().await.map_err(StoreError::from)?;
    let claim = app_store::claim_delivery(&tx, d).await?;
    if claim != Claim::New {
        return Ok(duplicate(d.id, claim));
    }
    for n in &added {
        app_store::attach_installation(&tx, &n.owner, &n.name, None, id).await?;
    }
    let detached = if removed.is_empty() {
        0
    } else {
        app_store::detach_installation(&tx, id, Some(&removed)).await?
    };
    let jobs = install_scans(state, d.id, &added);
    jobs.record(&tx, d.id, "done").await?;
    tx.commit().await.map_err(StoreError::from)?;
    // Back to the pool before queueing scans checks out connections (see `pull_request`).
    drop(c);
    state.cache.bump().await;
    let scans = queue_jobs(state, d.id, &jobs).await?.scans;
    tracing::info!(
        delivery = d.id,
        installation = id,
        added = added.len(),
        detached,
        scans = scans.len(),
        "installation_repositories webhook"
    );
    Ok((
        StatusCode::OK,
        Json(json!({"ok": true, "event": "installation_repositories", "action": ev.action,
            "installationId": id, "repositoriesAdded": added.len(), "repositoriesDeactivated": detached,
            "scansQueued": scans})),
    )
        .into_response())
}

/// One scan of each repository the App was just installed on (none when SCAN_ON_INSTALL is
/// off), named after the delivery so that queueing them again queues nothing twice.
fn install_scans(state: &AppState, delivery: &str, repos: &[RepoName]) -> DeliveryJobs {
    let mut jobs = DeliveryJobs {
        then: "done".into(),
        ..Default::default()
    };
    if state.config.scan_on_install {
        let id: String = delivery
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(48)
            .collect();
        let snapshot = format!("installed-{id}");
        jobs.scans = repos
            .iter()
            .map(|r| ScanJob {
                owner: r.owner.clone(),
                repo: r.name.clone(),
                snapshot: snapshot.clone(),
                max_open_prs: None,
            })
            .collect();
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn githubs_documented_test_vector_verifies() {
        let secret = b"It's a Secret to Everybody";
        let body = b"Hello, World!";
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(signature_matches(secret, body, Some(good)));
        assert!(!signature_matches(secret, b"Hello, World?", Some(good)));
        assert!(!signature_matches(b"other", body, Some(good)));
        assert!(!signature_matches(secret, body, None));
        assert!(!signature_matches(secret, body, Some("sha1=757107ea")));
        assert!(!signature_matches(secret, body, Some("sha256=zz")));
        assert!(!signature_matches(secret, body, Some("sha256=757107ea")));
    }
}
