//! `POST /webhooks/github` (app and hybrid modes): GitHub App webhook deliveries.
//!
//! Order of work, and why:
//! 1. The body is read raw, at most GitHub's 25 MB (413 beyond), and its `X-Hub-Signature-256`
//!    is checked in constant time before anything is parsed (401 when wrong or missing).
//! 2. In one Postgres transaction: the delivery id is claimed (`webhook_deliveries`, as
//!    `pending`) and the state change is applied (PR upsert, installation changes). A delivery
//!    seen before answers 200 `{"duplicate":true}` and changes nothing.
//! 3. After the commit the job is pushed to Redis, then the delivery is marked `queued`. If the
//!    push fails the delivery row is deleted and the answer is 503, so GitHub's redelivery is
//!    processed again; if the process dies between commit and push, the row stays `pending`,
//!    and a `pending` delivery is processed again when it is redelivered (pushes de-duplicate
//!    by job id, so processing twice queues nothing twice).
//!
//! Installing the App on repositories (`installation.created`, `installation_repositories.added`)
//! queues one scan of each, so their open PRs are triaged without waiting for new pushes
//! (`SCAN_ON_INSTALL=off` turns that off); the delivery is marked `done` only once the scans are
//! queued, and forgotten (503) when they could not be, as above.
//!
//! Events about one PR may arrive out of order (GitHub does not promise order): a payload whose
//! `pull_request.updated_at` is older than the stored one is ignored (answer `"stale":true`).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;

use super::{ApiError, ApiResult};
use crate::config::RepoName;
use crate::github::PullSummary;
use crate::jobs::{AnalyseJob, PushOutcome};
use crate::state::AppState;
use crate::store::analysis::{self, Versions};
use crate::store::app::{self as app_store, Claim, PullChange};
use crate::store::{StoreError, repos};

/// The route.
pub const PATH: &str = "/webhooks/github";
/// GitHub does not deliver payloads over 25 MB.
pub const MAX_PAYLOAD_BYTES: usize = 25 * 1024 * 1024;

/// The webhook route: the receiver in app and hybrid modes, a JSON 404 in public mode. The
/// body limit applies to this route only.
pub fn routes(enabled: bool) -> Router<AppState> {
    if enabled {
        Router::new()
            .route(PATH, post(receive).fallback(wrong_method))
            .layer(DefaultBodyLimit::max(MAX_PAYLOAD_BYTES))
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

fn duplicate(delivery: &str) -> Response {
    tracing::info!(delivery, "webhook redelivered; already processed");
    (
        StatusCode::OK,
        Json(json!({"duplicate": true, "delivery": delivery})),
    )
        .into_response()
}

/// `POST /webhooks/github`.
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "payload_too_large",
                message: "webhook payloads are at most 25 MB".into(),
            }
        } else {
            ApiError::bad_request(format!("unreadable body: {}", r.body_text()))
        }
    })?;
    let Some(secret) = &state.config.github_webhook_secret else {
        return Err(ApiError::unauthorized(
            "no GITHUB_WEBHOOK_SECRET is configured",
        ));
    };
    if !signature_matches(
        secret.expose_secret().as_bytes(),
        &body,
        header(&headers, "x-hub-signature-256"),
    ) {
        return Err(ApiError::unauthorized(
            "missing or wrong X-Hub-Signature-256",
        ));
    }
    let event = header(&headers, "x-github-event")
        .ok_or_else(|| ApiError::bad_request("missing X-GitHub-Event"))?
        .to_string();
    let delivery = header(&headers, "x-github-delivery")
        .filter(|d| !d.is_empty() && d.len() <= 100)
        .ok_or_else(|| ApiError::bad_request("missing or overlong X-GitHub-Delivery"))?
        .to_string();
    let action = parse::<ActionOnly>(&body)?.action;
    let action_ref = action.as_deref();
    match event.as_str() {
        "ping" => ping(&state, &delivery).await,
        "pull_request" if action_ref.is_some_and(|a| PR_ACTIONS.contains(&a)) => {
            pull_request(&state, &delivery, parse(&body)?).await
        }
        "installation" if action_ref.is_some_and(|a| INSTALLATION_ACTIONS.contains(&a)) => {
            installation(&state, &delivery, parse(&body)?).await
        }
        "installation_repositories"
            if action_ref.is_some_and(|a| a == "added" || a == "removed") =>
        {
            installation_repositories(&state, &delivery, parse(&body)?).await
        }
        _ => Ok(skipped(&event, action_ref)),
    }
}

async fn ping(state: &AppState, delivery: &str) -> ApiResult<Response> {
    let mut c = state.pool.get().await.map_err(StoreError::from)?;
    let tx = c.transaction().await.map_err(StoreError::from)?;
    if app_store::claim_delivery(&tx, delivery, "ping", None, None).await? == Claim::Duplicate {
        return Ok(duplicate(delivery));
    }
    app_store::set_delivery_outcome(&tx, delivery, "done").await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok((StatusCode::OK, Json(json!({"ok": true, "pong": true}))).into_response())
}

async fn pull_request(
    state: &AppState,
    delivery: &str,
    ev: PullRequestEvent,
) -> ApiResult<Response> {
    let name = repo_name(&ev.repository)?;
    let pr = &ev.pull_request;
    let mut c = state.pool.get().await.map_err(StoreError::from)?;
    let tx = c.transaction().await.map_err(StoreError::from)?;
    let claim = app_store::claim_delivery(
        &tx,
        delivery,
        "pull_request",
        Some(&ev.action),
        Some(&name.to_string()),
    )
    .await?;
    if claim == Claim::Duplicate {
        return Ok(duplicate(delivery));
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
            let v = Versions::current(&state.triage);
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
    let outcome = match (&job, stale) {
        (Some(_), _) => "pending",
        (None, true) => "stale",
        (None, false) => "done",
    };
    app_store::set_delivery_outcome(&tx, delivery, outcome).await?;
    tx.commit().await.map_err(StoreError::from)?;
    // Back to the pool before the steps below check out a connection again: a handler holding
    // one while waiting for another deadlocks the pool when a burst of deliveries fills it.
    drop(c);
    if !stale {
        // Titles, states and set membership may have changed.
        state.cache.bump().await;
    }

    let mut enqueued = false;
    let mut job_id = None;
    if let Some(job) = &job {
        state
            .metrics
            .webhook_received(&job.owner, &job.repo, job.number, &job.head_sha);
        match state.queues.push_analyse(job).await {
            Ok(o) => {
                enqueued = o == PushOutcome::Enqueued;
                job_id = Some(job.job_id());
                if let Ok(c) = state.pool.get().await {
                    // The head is queued: the first analysis job of the repository to run takes
                    // it along (a burst of deliveries becomes a few batches).
                    let v = Versions::current(&state.triage);
                    if let Err(e) =
                        analysis::mark_queued(&c, job.repo_id, job.number, &job.head_sha, v).await
                    {
                        tracing::warn!(delivery, error = %e, "could not mark the head queued");
                    }
                    if let Err(e) = app_store::set_delivery_outcome(&c, delivery, "queued").await {
                        // Still `pending`: a redelivery would queue again, which de-duplicates.
                        tracing::warn!(delivery, error = %e, "could not mark the delivery queued");
                    }
                }
            }
            Err(e) => {
                // Nothing queued: forget the delivery so that GitHub's redelivery works.
                if let Err(err) = app_store::forget_delivery(&state.pool, delivery).await {
                    tracing::warn!(delivery, error = %err, "could not forget the delivery");
                }
                return Err(e.into());
            }
        }
    }
    tracing::info!(delivery, repo = %name, number = pr.number, action = %ev.action, stale,
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

async fn installation(
    state: &AppState,
    delivery: &str,
    ev: InstallationEvent,
) -> ApiResult<Response> {
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
    if app_store::claim_delivery(&tx, delivery, "installation", Some(&ev.action), None).await?
        == Claim::Duplicate
    {
        return Ok(duplicate(delivery));
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
    tx.commit().await.map_err(StoreError::from)?;
    // Back to the pool before queueing scans checks out connections (see `pull_request`).
    drop(c);
    state.cache.bump().await;
    if matches!(ev.action.as_str(), "deleted" | "suspend") {
        state.github.forget_installation_token(id);
    }
    let scans = scan_installed(state, delivery, to_scan).await?;
    tracing::info!(delivery, installation = id, action = %ev.action, attached, detached, scans = scans.len(), "installation webhook");
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
    delivery: &str,
    ev: InstallationReposEvent,
) -> ApiResult<Response> {
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
    if app_store::claim_delivery(
        &tx,
        delivery,
        "installation_repositories",
        Some(&ev.action),
        None,
    )
    .await?
        == Claim::Duplicate
    {
        return Ok(duplicate(delivery));
    }
    for n in &added {
        app_store::attach_installation(&tx, &n.owner, &n.name, None, id).await?;
    }
    let detached = if removed.is_empty() {
        0
    } else {
        app_store::detach_installation(&tx, id, Some(&removed)).await?
    };
    tx.commit().await.map_err(StoreError::from)?;
    // Back to the pool before queueing scans checks out connections (see `pull_request`).
    drop(c);
    state.cache.bump().await;
    let scans = scan_installed(state, delivery, &added).await?;
    tracing::info!(
        delivery,
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

/// Queues one scan of each repository the App was just installed on (unless SCAN_ON_INSTALL is
/// off), then marks the delivery `done`. When a scan cannot be queued the delivery is forgotten
/// and the error returned (503), so that GitHub's redelivery tries again; scans queued before
/// the failure de-duplicate by job id. Returns the job ids queued now.
async fn scan_installed(
    state: &AppState,
    delivery: &str,
    repos: &[RepoName],
) -> ApiResult<Vec<String>> {
    let mut queued = Vec::new();
    if state.config.scan_on_install {
        // Named after the delivery, so a redelivery queues nothing twice.
        let id: String = delivery
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(48)
            .collect();
        let snapshot = format!("installed-{id}");
        for r in repos {
            let job = crate::jobs::ScanJob {
                owner: r.owner.clone(),
                repo: r.name.clone(),
                snapshot: snapshot.clone(),
                max_open_prs: None,
            };
            match crate::jobs::scan::enqueue(state, &job, "install", None).await {
                Ok(PushOutcome::Enqueued) => queued.push(job.job_id()),
                Ok(PushOutcome::Duplicate) => {}
                Err(e) => {
                    if let Err(err) = app_store::forget_delivery(&state.pool, delivery).await {
                        tracing::warn!(delivery, error = %err, "could not forget the delivery");
                    }
                    return Err(e.into());
                }
            }
        }
    }
    let c = state.pool.get().await.map_err(StoreError::from)?;
    app_store::set_delivery_outcome(&c, delivery, "done").await?;
    Ok(queued)
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
