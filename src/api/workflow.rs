//! The maintainer's workflow API: search, one set by its stable id, per-repository settings,
//! plans and their apply, the audit of actions, and the digest on demand.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::results::{
    SetOut, check_limit, check_state, decode_cursor, encode_cursor, known_repo, render_sets,
    repo_path,
};
use super::{ApiError, ApiResult, require_dashboard};
use crate::jobs::workflow::WorkflowJob;
use crate::state::AppState;
use crate::store::actions::{self, ActionRow, Plan, StartApply};
use crate::store::search::{self, PrFilter, PrHit, SearchCursor, SearchOrder};
use crate::store::sets::ActiveRepo;
use crate::store::settings::StoredSettings;
use crate::workflow::settings::RepoSettings;
use crate::workflow::{self, WorkflowError};

impl From<WorkflowError> for ApiError {
    fn from(e: WorkflowError) -> Self {
        match e {
            WorkflowError::Store(s) => s.into(),
            WorkflowError::Queue(q) => q.into(),
            WorkflowError::Refused(m) => ApiError {
                status: StatusCode::CONFLICT,
                code: "refused",
                message: m,
            },
            WorkflowError::Missing(m) => ApiError::not_found(m),
            WorkflowError::Github(g) => {
                tracing::warn!(error = %g, "GitHub failed during a workflow request");
                ApiError {
                    status: StatusCode::BAD_GATEWAY,
                    code: "github",
                    message: format!("GitHub did not answer as expected: {g}"),
                }
            }
        }
    }
}

/// The search filters, as query parameters.
#[derive(Debug, Clone, Default)]
pub struct FilterParams {
    /// A PR number (`123`, `#123`) or title words.
    pub q: Option<String>,
    /// Author login.
    pub author: Option<String>,
    /// Label.
    pub label: Option<String>,
    /// Part of a changed path.
    pub path: Option<String>,
    /// Base branch.
    pub base: Option<String>,
    /// Coding agents only (true) or none (false).
    pub agent: Option<bool>,
}

fn bounded(name: &str, v: &Option<String>, max: usize) -> ApiResult<Option<String>> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.chars().count() > max || s.chars().any(char::is_control) => {
            Err(ApiError::bad_request(format!(
                "{name}: at most {max} characters, no control characters"
            )))
        }
        Some(s) => Ok(Some(s.to_string())),
    }
}

/// Checks the filters and turns them into a [`PrFilter`].
pub fn pr_filter(p: &FilterParams) -> ApiResult<PrFilter> {
    let mut f = PrFilter {
        author: bounded("author", &p.author, 100)?,
        label: bounded("label", &p.label, 50)?,
        path: bounded("path", &p.path, 300)?,
        base: bounded("base", &p.base, 255)?,
        agent: p.agent,
        ..PrFilter::default()
    };
    if let Some(q) = bounded("q", &p.q, 200)? {
        let digits = q.strip_prefix('#').unwrap_or(&q);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            f.number = Some(
                digits
                    .parse()
                    .map_err(|_| ApiError::bad_request("q: that PR number is too large"))?,
            );
        } else {
            f.words = q.split_whitespace().map(str::to_string).collect();
            if f.words.len() > 10 {
                return Err(ApiError::bad_request("q: at most 10 words"));
            }
        }
    }
    Ok(f)
}

/// Query of the PR search.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// A PR number (`123` or `#123`), or words that must all appear in the title.
    pub q: Option<String>,
    /// Author login (case-insensitive).
    pub author: Option<String>,
    /// Label (case-insensitive).
    pub label: Option<String>,
    /// Part of a path the PR's current head changes (case-insensitive).
    pub path: Option<String>,
    /// Base branch.
    pub base: Option<String>,
    /// true: only PRs by coding agents (the repository's `[agents]` rules); false: no agents.
    pub agent: Option<bool>,
    /// open (default) | closed | merged | all.
    pub state: Option<String>,
    /// updated (default) | number.
    pub order_by: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of PRs found.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchResponse {
    /// PRs, in the order asked.
    pub items: Vec<PrHit>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct SearchCursorWire {
    o: String,
    k: i64,
    n: i64,
}

/// `GET /api/repos/{repoId}/prs`: search and filters.
#[utoipa::path(get, path = "/repos/{repo_id}/prs", tag = "workflow",
    params(("repo_id" = i64, Path, description = "repository id"), SearchQuery),
    responses((status = 200, body = SearchResponse), (status = 400), (status = 401), (status = 404)))]
pub async fn search_prs(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<i64>, PathRejection>,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> ApiResult<Json<SearchResponse>> {
    require_dashboard(&state, &headers)?;
    let repo_id = repo_path(path)?;
    let Query(q) = query?;
    let limit = check_limit(q.limit, 50, 200)?;
    let mut filter = pr_filter(&FilterParams {
        q: q.q,
        author: q.author,
        label: q.label,
        path: q.path,
        base: q.base,
        agent: q.agent,
    })?;
    filter.state = match q.state.as_deref() {
        None => Some("open".into()),
        s => check_state(s)?,
    };
    let order_name = q.order_by.unwrap_or_else(|| "updated".into());
    let order = match order_name.as_str() {
        "updated" => SearchOrder::Updated,
        "number" => SearchOrder::Number,
        other => {
            return Err(ApiError::bad_request(format!(
                "orderBy: `{}` is not one of updated, number",
                other.escape_debug()
            )));
        }
    };
    let after = match &q.cursor {
        Some(c) => {
            let w: SearchCursorWire = decode_cursor(c)?;
            if w.o != order_name {
                return Err(ApiError::bad_request(
                    "cursor: it belongs to another orderBy",
                ));
            }
            Some(SearchCursor {
                key: w.k,
                number: w.n,
            })
        }
        None => None,
    };
    known_repo(&state, repo_id).await?;
    let agents = workflow::agent_match(&state, repo_id).await?;
    let (items, next) =
        search::search_prs(&state.pool, repo_id, &filter, &agents, order, after, limit).await?;
    Ok(Json(SearchResponse {
        items,
        next_cursor: next.map(|c| {
            encode_cursor(&SearchCursorWire {
                o: order_name.clone(),
                k: c.key,
                n: c.number,
            })
        }),
    }))
}

fn set_path(p: Result<Path<(i64, String)>, PathRejection>) -> ApiResult<(i64, String)> {
    match p {
        Ok(Path((r, s))) if super::results::is_set_id(&s) => Ok((r, s)),
        _ => Err(ApiError::bad_request(
            "repoId and setId: a number and a set id (set-…)",
        )),
    }
}

/// `GET /api/repos/{repoId}/duplicate-sets/{setId}`: one set of the default view, by its
/// stable id.
#[utoipa::path(get, path = "/repos/{repo_id}/duplicate-sets/{set_id}", tag = "workflow",
    params(("repo_id" = i64, Path, description = "repository id"), ("set_id" = String, Path, description = "set id")),
    responses((status = 200, body = SetOut), (status = 400), (status = 401), (status = 404)))]
pub async fn get_set(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(i64, String)>, PathRejection>,
) -> ApiResult<Json<SetOut>> {
    require_dashboard(&state, &headers)?;
    let (repo_id, set_id) = set_path(path)?;
    known_repo(&state, repo_id).await?;
    let sets = workflow::sets::current_sets(&state, repo_id).await?;
    let Some(set) = sets.iter().find(|s| s.set_id == set_id) else {
        return Err(ApiError::not_found(format!(
            "no duplicate set {set_id} now: its PRs were closed, merged, re-analysed apart or marked not duplicate"
        )));
    };
    let mut out = render_sets(&state, repo_id, &[set]).await?;
    Ok(Json(out.remove(0)))
}

async fn active_repo(state: &AppState, repo_id: i64) -> ApiResult<ActiveRepo> {
    crate::store::sets::repo(&state.pool, repo_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no repository with id {repo_id}")))
}

/// What the dashboard shows of a repository's settings.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsResponse {
    /// Where the file is read from.
    pub path: String,
    /// The last read (null: never read).
    pub file: Option<StoredSettings>,
    /// The settings in force (the file's when valid, else the appliance's defaults).
    pub effective: RepoSettings,
    /// The review threshold in force.
    pub review_threshold: f64,
    /// The engine configuration version analyses of this repository carry.
    pub config_version: i32,
    /// Whether writes to GitHub are possible at all, and if not why.
    pub writes: WritesInfo,
}

/// Whether writes are possible.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WritesInfo {
    /// App mode with an installation on the repository.
    pub possible: bool,
    /// Why not, when not.
    pub reason: Option<String>,
    /// The digest is written on this schedule (null: never).
    pub digest_schedule: Option<String>,
    /// New and grown sets are posted to a webhook.
    pub webhook: bool,
}

async fn settings_response(state: &AppState, repo: &ActiveRepo) -> ApiResult<SettingsResponse> {
    // One read of the stored file; everything shown is derived from it.
    let c = state
        .pool
        .get()
        .await
        .map_err(crate::store::StoreError::from)?;
    let file = crate::store::settings::load_settings_on(&c, repo.repo_id).await?;
    let effective = file.as_ref().map(|f| f.in_force()).unwrap_or_default();
    let engine =
        crate::store::settings::effective_triage_of(&c, repo.repo_id, &effective, &state.triage)
            .await?;
    let writes = workflow::writes_possible(state, repo.installation_id);
    Ok(SettingsResponse {
        path: workflow::settings::SETTINGS_PATH.into(),
        review_threshold: workflow::review_threshold_of(state, &effective),
        file,
        effective,
        config_version: engine.config_version,
        writes: WritesInfo {
            possible: writes.is_ok(),
            reason: writes.err(),
            digest_schedule: state.config.digest_schedule.clone(),
            webhook: state.config.notify_webhook_url.is_some(),
        },
    })
}

/// `GET /api/repos/{repoId}/settings` (the file is read from GitHub the first time it is asked
/// for; later reads come from `REPO_SETTINGS_REFRESH_SECS`, plans, digests and reloads).
#[utoipa::path(get, path = "/repos/{repo_id}/settings", tag = "workflow",
    params(("repo_id" = i64, Path, description = "repository id")),
    responses((status = 200, body = SettingsResponse), (status = 400), (status = 401), (status = 404)))]
pub async fn get_settings(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<SettingsResponse>> {
    require_dashboard(&state, &headers)?;
    let repo = active_repo(&state, repo_path(path)?).await?;
    if crate::store::settings::load_settings(&state.pool, repo.repo_id)
        .await?
        .is_none()
        && let Err(e) = workflow::repo_file::refresh(&state, &repo).await
    {
        tracing::warn!(repo_id = repo.repo_id, error = %e, "settings file not read");
    }
    Ok(Json(settings_response(&state, &repo).await?))
}

/// `POST /api/repos/{repoId}/settings/reload`: reads the file from GitHub now.
#[utoipa::path(post, path = "/repos/{repo_id}/settings/reload", tag = "workflow",
    params(("repo_id" = i64, Path, description = "repository id")),
    responses((status = 200, body = SettingsResponse), (status = 401), (status = 404), (status = 502)))]
pub async fn reload_settings(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<SettingsResponse>> {
    require_dashboard(&state, &headers)?;
    let repo = active_repo(&state, repo_path(path)?).await?;
    workflow::repo_file::refresh(&state, &repo).await?;
    Ok(Json(settings_response(&state, &repo).await?))
}

/// A plan to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanBody {
    /// close_duplicates | add_label | remove_label | not_duplicate.
    pub kind: String,
    /// The set acted on.
    pub set_id: String,
    /// close_duplicates: the PR kept (default: the set's suggested keep).
    pub keep: Option<i64>,
    /// The PRs written to (default: every member, but the kept one).
    pub targets: Option<Vec<i64>>,
    /// add_label, remove_label: the label.
    pub label: Option<String>,
    /// Who (default: the `X-Actor` header, else "anonymous").
    pub actor: Option<String>,
}

fn actor_of(given: Option<&str>, headers: &HeaderMap) -> ApiResult<String> {
    let actor = super::results::requested_actor(given, headers)
        .trim()
        .to_string();
    if actor.is_empty() || actor.chars().count() > 100 || actor.chars().any(char::is_control) {
        return Err(ApiError::bad_request("actor: 1-100 characters"));
    }
    Ok(actor)
}

/// A plan with what its apply did so far.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanResponse {
    /// The plan.
    #[serde(flatten)]
    pub plan: Plan,
    /// Recorded outcomes of its steps (done, skipped, refused, failed), in step order.
    pub results: Vec<ActionRow>,
}

/// `POST /api/repos/{repoId}/plans`: says what would be written; writes nothing.
#[utoipa::path(post, path = "/repos/{repo_id}/plans", tag = "workflow",
    params(("repo_id" = i64, Path, description = "repository id")),
    request_body = PlanBody,
    responses((status = 201, body = PlanResponse), (status = 400), (status = 401), (status = 404),
        (status = 409, description = "writes are off for this repository, or nothing to do")))]
pub async fn create_plan(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<i64>, PathRejection>,
    body: Result<Json<PlanBody>, JsonRejection>,
) -> ApiResult<Response> {
    require_dashboard(&state, &headers)?;
    let repo_id = repo_path(path)?;
    let Json(b) = body?;
    let actor = actor_of(b.actor.as_deref(), &headers)?;
    if !super::results::is_set_id(&b.set_id) {
        return Err(ApiError::bad_request("setId: not a set id"));
    }
    if b.targets
        .as_ref()
        .is_some_and(|t| t.is_empty() || t.len() > 200)
    {
        return Err(ApiError::bad_request("targets: 1-200 PR numbers"));
    }
    let repo = active_repo(&state, repo_id).await?;
    let plan = workflow::actions::plan(
        &state,
        &repo,
        &workflow::actions::PlanRequest {
            kind: b.kind,
            set_id: b.set_id,
            keep: b.keep,
            targets: b.targets,
            label: b.label,
            actor,
        },
    )
    .await?;
    tracing::info!(repo_id, plan = %plan.plan_id, kind = %plan.kind, steps = plan.steps.len(), actor = %plan.actor, "plan made");
    Ok((
        StatusCode::CREATED,
        Json(PlanResponse {
            plan,
            results: Vec::new(),
        }),
    )
        .into_response())
}

fn plan_path(p: Result<Path<(i64, String)>, PathRejection>) -> ApiResult<(i64, String)> {
    match p {
        Ok(Path((r, id))) if id.starts_with("plan-") && id.len() <= 40 => Ok((r, id)),
        _ => Err(ApiError::bad_request(
            "repoId and planId: a number and a plan id (plan-…)",
        )),
    }
}

async fn plan_response(state: &AppState, repo_id: i64, plan_id: &str) -> ApiResult<PlanResponse> {
    let plan = match actions::get_plan(&state.pool, repo_id, plan_id).await {
        Ok(p) => p,
        Err(crate::store::StoreError::NotFound) => {
            return Err(ApiError::not_found(format!("no plan {plan_id} here")));
        }
        Err(e) => return Err(e.into()),
    };
    let results = actions::plan_actions(&state.pool, plan_id).await?;
    Ok(PlanResponse { plan, results })
}

/// `GET /api/repos/{repoId}/plans/{planId}`.
#[utoipa::path(get, path = "/repos/{repo_id}/plans/{plan_id}", tag = "workflow",
    params(("repo_id" = i64, Path, description = "repository id"), ("plan_id" = String, Path, description = "plan id")),
    responses((status = 200, body = PlanResponse), (status = 400), (status = 401), (status = 404)))]
pub async fn get_plan(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(i64, String)>, PathRejection>,
) -> ApiResult<Json<PlanResponse>> {
    require_dashboard(&state, &headers)?;
    let (repo_id, plan_id) = plan_path(path)?;
    Ok(Json(plan_response(&state, repo_id, &plan_id).await?))
}

/// `POST /api/repos/{repoId}/plans/{planId}/apply`: queues the writes (202); follow the plan
/// until its status is `done` or `failed`.
#[utoipa::path(post, path = "/repos/{repo_id}/plans/{plan_id}/apply", tag = "workflow",
    params(("repo_id" = i64, Path, description = "repository id"), ("plan_id" = String, Path, description = "plan id")),
    responses((status = 202, body = PlanResponse), (status = 400), (status = 401), (status = 404),
        (status = 409, description = "applied already, or expired")))]
pub async fn apply_plan(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(i64, String)>, PathRejection>,
) -> ApiResult<Response> {
    require_dashboard(&state, &headers)?;
    let (repo_id, plan_id) = plan_path(path)?;
    let started = match actions::start_apply(&state.pool, repo_id, &plan_id).await {
        Ok(s) => s,
        Err(crate::store::StoreError::NotFound) => {
            return Err(ApiError::not_found(format!("no plan {plan_id} here")));
        }
        Err(e) => return Err(e.into()),
    };
    match started {
        StartApply::Started => {}
        StartApply::Expired => {
            return Err(WorkflowError::Refused(format!(
                "plan {plan_id} expired unapplied ({} minutes); make it again",
                workflow::actions::PLAN_TTL_MINUTES
            ))
            .into());
        }
        StartApply::AlreadyApplied(status) => {
            return Err(WorkflowError::Refused(format!(
                "plan {plan_id} was applied already (it is {status}); a plan is applied once"
            ))
            .into());
        }
    }
    let job = WorkflowJob::ApplyPlan {
        repo_id,
        plan_id: plan_id.clone(),
    };
    if let Err(e) = state.queues.push_workflow(&job, None).await {
        let _ = actions::undo_start_apply(&state.pool, &plan_id).await;
        return Err(e.into());
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(plan_response(&state, repo_id, &plan_id).await?),
    )
        .into_response())
}

/// Query of the audit.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActionsQuery {
    /// 1–500, default 100.
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of the audit.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionsResponse {
    /// Newest first.
    pub actions: Vec<ActionRow>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ActionsCursorWire {
    id: i64,
}

/// `GET /api/repos/{repoId}/actions`: everything written to GitHub (or refused), newest first.
#[utoipa::path(get, path = "/repos/{repo_id}/actions", tag = "workflow",
    params(("repo_id" = i64, Path, description = "repository id"), ActionsQuery),
    responses((status = 200, body = ActionsResponse), (status = 400), (status = 401), (status = 404)))]
pub async fn list_actions(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<i64>, PathRejection>,
    query: Result<Query<ActionsQuery>, QueryRejection>,
) -> ApiResult<Json<ActionsResponse>> {
    require_dashboard(&state, &headers)?;
    let repo_id = repo_path(path)?;
    let Query(q) = query?;
    let limit = check_limit(q.limit, 100, 500)?;
    let before = match &q.cursor {
        Some(c) => Some(decode_cursor::<ActionsCursorWire>(c)?.id),
        None => None,
    };
    known_repo(&state, repo_id).await?;
    let mut rows = actions::list_actions(&state.pool, repo_id, before, limit + 1).await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last()
            .map(|r| encode_cursor(&ActionsCursorWire { id: r.action_id }))
    } else {
        None
    };
    Ok(Json(ActionsResponse {
        actions: rows,
        next_cursor: next,
    }))
}

/// The digest queued.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DigestResponse {
    /// The job.
    pub job_id: String,
    /// False when the same run was queued already.
    pub queued: bool,
}

/// `POST /api/repos/{repoId}/digest`: writes the repository's digest now (when it is on).
#[utoipa::path(post, path = "/repos/{repo_id}/digest", tag = "workflow",
    params(("repo_id" = i64, Path, description = "repository id")),
    responses((status = 202, body = DigestResponse), (status = 401), (status = 404),
        (status = 409, description = "writes are off or the digest is off for this repository")))]
pub async fn run_digest(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<i64>, PathRejection>,
) -> ApiResult<Response> {
    require_dashboard(&state, &headers)?;
    let repo = active_repo(&state, repo_path(path)?).await?;
    workflow::writes_possible(&state, repo.installation_id).map_err(WorkflowError::Refused)?;
    workflow::repo_file::refresh(&state, &repo).await?;
    let s = crate::store::settings::repo_settings(&state.pool, repo.repo_id).await?;
    if !s.digest.enabled {
        return Err(WorkflowError::Refused(format!(
            "the digest is off for this repository: set `enabled = true` under [digest] in {}",
            workflow::settings::SETTINGS_PATH
        ))
        .into());
    }
    let job = WorkflowJob::Digest {
        repo_id: repo.repo_id,
        owner: repo.owner.clone(),
        repo: repo.name.clone(),
        period: format!("manual-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ")),
    };
    let outcome = state.queues.push_workflow(&job, None).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(DigestResponse {
            job_id: job.job_id(),
            queued: outcome == crate::jobs::PushOutcome::Enqueued,
        }),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_is_a_number_or_title_words() {
        let f = |q: &str| {
            pr_filter(&FilterParams {
                q: Some(q.into()),
                ..FilterParams::default()
            })
        };
        assert_eq!(f("#123").unwrap().number, Some(123));
        assert_eq!(f("123").unwrap().number, Some(123));
        assert_eq!(f("flaky  timeout").unwrap().words, ["flaky", "timeout"]);
        assert!(f(&"w ".repeat(11)).is_err());
        assert!(f("#99999999999999999999").is_err());
        assert!(f("   ").unwrap().is_empty());
        assert!(
            pr_filter(&FilterParams {
                label: Some("a\u{7}".into()),
                ..FilterParams::default()
            })
            .is_err()
        );
    }
}
