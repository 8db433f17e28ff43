//! The maintainer API: repositories, the triage queue, one PR, its candidates, duplicate sets
//! and feedback. Every list is bounded, keyset-paginated with an opaque cursor and ordered
//! deterministically.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, ApiResult, require_dashboard};
use crate::state::AppState;
use crate::store::repos::{self, Repo};
use crate::store::results::{
    self, CandidateRow, FeedbackRow, NewFeedback, PrBrief, PrDetail, QueueCursor, QueueItem,
    QueueOrder,
};
use crate::store::{StoreError, search};
use crate::triage::Category;
use crate::triage::sets::{DuplicateSet, SetParams};

/// `{"repos": [...]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReposResponse {
    /// Active repositories.
    pub repos: Vec<Repo>,
}

/// `GET /api/repos`.
#[utoipa::path(get, path = "/repos", tag = "results",
    responses((status = 200, body = ReposResponse), (status = 401, description = "token required")))]
pub async fn list_repos(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<ReposResponse>> {
    require_dashboard(&state, &headers)?;
    Ok(Json(ReposResponse {
        repos: repos::list_repos(&state.pool).await?,
    }))
}

pub(super) fn encode_cursor<T: Serialize>(v: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default())
}

pub(super) fn decode_cursor<T: for<'de> Deserialize<'de>>(s: &str) -> ApiResult<T> {
    URL_SAFE_NO_PAD
        .decode(s.as_bytes())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| ApiError::bad_request("cursor: not a cursor this API handed out"))
}

pub(super) fn check_limit(limit: Option<i64>, default: i64, max: i64) -> ApiResult<i64> {
    let l = limit.unwrap_or(default);
    if (1..=max).contains(&l) {
        Ok(l)
    } else {
        Err(ApiError::bad_request(format!(
            "limit: must be from 1 to {max}"
        )))
    }
}

pub(super) fn check_state(state: Option<&str>) -> ApiResult<Option<String>> {
    match state {
        None | Some("all") => Ok(None),
        Some(s @ ("open" | "closed" | "merged")) => Ok(Some(s.to_string())),
        Some(other) => Err(ApiError::bad_request(format!(
            "state: `{}` is not one of open, closed, merged, all",
            other.escape_debug()
        ))),
    }
}

pub(super) fn repo_path(p: Result<Path<i64>, PathRejection>) -> ApiResult<i64> {
    match p {
        Ok(Path(id)) => Ok(id),
        Err(_) => Err(ApiError::bad_request("repoId: must be a number")),
    }
}

fn pr_path(p: Result<Path<(i64, i64)>, PathRejection>) -> ApiResult<(i64, i64)> {
    match p {
        Ok(Path(ids)) => Ok(ids),
        Err(_) => Err(ApiError::bad_request("repoId and number: must be numbers")),
    }
}

pub(super) async fn known_repo(state: &AppState, repo_id: i64) -> ApiResult<(String, String)> {
    results::require_repo(&state.pool, repo_id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found(format!("no repository with id {repo_id}")),
            other => other.into(),
        })
}

/// Query of the triage queue.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// open (default) | closed | merged | all.
    pub state: Option<String>,
    /// true: only PRs whose top suggestion awaits a verdict; false: only the others.
    pub needs_review: Option<bool>,
    /// 1–200, default 50.
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// score (default) | updated | number.
    pub order_by: Option<String>,
}

/// A page of the triage queue.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueResponse {
    /// PRs with their top suggestion.
    pub items: Vec<QueueItem>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct QueueCursorWire {
    o: String,
    k: f64,
    n: i64,
}

/// `GET /api/repos/{repoId}/triage-queue`.
#[utoipa::path(get, path = "/repos/{repo_id}/triage-queue", tag = "results",
    params(("repo_id" = i64, Path, description = "repository id"), QueueQuery),
    responses((status = 200, body = QueueResponse), (status = 400), (status = 401), (status = 404)))]
pub async fn triage_queue(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<i64>, PathRejection>,
    query: Result<Query<QueueQuery>, QueryRejection>,
) -> ApiResult<Json<QueueResponse>> {
    require_dashboard(&state, &headers)?;
    let repo_id = repo_path(path)?;
    let Query(q) = query?;
    let limit = check_limit(q.limit, 50, 200)?;
    let st = match q.state.as_deref() {
        None => Some("open".to_string()),
        s => check_state(s)?,
    };
    let order_name = q.order_by.clone().unwrap_or_else(|| "score".into());
    let order = match order_name.as_str() {
        "score" => QueueOrder::Score,
        "updated" => QueueOrder::Updated,
        "number" => QueueOrder::Number,
        other => {
            return Err(ApiError::bad_request(format!(
                "orderBy: `{}` is not one of score, updated, number",
                other.escape_debug()
            )));
        }
    };
    let after = match &q.cursor {
        Some(c) => {
            let w: QueueCursorWire = decode_cursor(c)?;
            if w.o != order_name || !w.k.is_finite() {
                return Err(ApiError::bad_request(
                    "cursor: it belongs to another orderBy",
                ));
            }
            Some(QueueCursor {
                key: w.k,
                number: w.n,
            })
        }
        None => None,
    };
    known_repo(&state, repo_id).await?;
    let (items, next) = results::triage_queue(
        &state.pool,
        repo_id,
        st.as_deref(),
        q.needs_review,
        order,
        after,
        limit,
        crate::workflow::review_threshold(&state, repo_id).await?,
    )
    .await?;
    Ok(Json(QueueResponse {
        items,
        next_cursor: next.map(|c| {
            encode_cursor(&QueueCursorWire {
                o: order_name.clone(),
                k: c.key,
                n: c.number,
            })
        }),
    }))
}

/// `GET /api/repos/{repoId}/prs/{number}`.
#[utoipa::path(get, path = "/repos/{repo_id}/prs/{number}", tag = "results",
    params(("repo_id" = i64, Path, description = "repository id"), ("number" = i64, Path, description = "PR number")),
    responses((status = 200, body = PrDetail), (status = 400), (status = 401), (status = 404)))]
pub async fn get_pr(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(i64, i64)>, PathRejection>,
) -> ApiResult<Json<PrDetail>> {
    require_dashboard(&state, &headers)?;
    let (repo_id, number) = pr_path(path)?;
    known_repo(&state, repo_id).await?;
    match results::pr_detail(&state.pool, repo_id, number).await {
        Ok(d) => Ok(Json(d)),
        Err(StoreError::NotFound) => Err(ApiError::not_found(format!("no PR #{number} here"))),
        Err(e) => Err(e.into()),
    }
}

/// Query of the candidates.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CandidatesQuery {
    /// 1–50, default 10.
    pub limit: Option<i64>,
    /// Lowest final score shown (default 0).
    pub min_score: Option<f64>,
    /// A head other than the current one.
    pub head_sha: Option<String>,
}

/// Ranked candidates.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CandidatesResponse {
    /// PR number.
    pub number: i64,
    /// Strongest first.
    pub candidates: Vec<CandidateRow>,
}

fn check_score(name: &str, v: Option<f64>, default: f64) -> ApiResult<f64> {
    let s = v.unwrap_or(default);
    if s.is_finite() && (0.0..=1.0).contains(&s) {
        Ok(s)
    } else {
        Err(ApiError::bad_request(format!(
            "{name}: must be a number from 0 to 1"
        )))
    }
}

/// `GET /api/repos/{repoId}/prs/{number}/candidates`.
#[utoipa::path(get, path = "/repos/{repo_id}/prs/{number}/candidates", tag = "results",
    params(("repo_id" = i64, Path, description = "repository id"), ("number" = i64, Path, description = "PR number"), CandidatesQuery),
    responses((status = 200, body = CandidatesResponse), (status = 400), (status = 401), (status = 404)))]
pub async fn get_candidates(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(i64, i64)>, PathRejection>,
    query: Result<Query<CandidatesQuery>, QueryRejection>,
) -> ApiResult<Json<CandidatesResponse>> {
    require_dashboard(&state, &headers)?;
    let (repo_id, number) = pr_path(path)?;
    let Query(q) = query?;
    let limit = check_limit(q.limit, 10, 50)?;
    let min_score = check_score("minScore", q.min_score, 0.0)?;
    if let Some(h) = &q.head_sha
        && !(h.len() >= 7 && h.len() <= 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(ApiError::bad_request("headSha: must be a hex commit sha"));
    }
    known_repo(&state, repo_id).await?;
    match results::candidates(
        &state.pool,
        repo_id,
        number,
        q.head_sha.as_deref(),
        min_score,
        limit,
    )
    .await
    {
        Ok(c) => Ok(Json(CandidatesResponse {
            number,
            candidates: c,
        })),
        Err(StoreError::NotFound) => Err(ApiError::not_found(format!("no PR #{number} here"))),
        Err(e) => Err(e.into()),
    }
}

/// Query of the duplicate sets.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SetsQuery {
    /// Lowest link score (default: the review threshold; lower values are raised to it).
    pub min_score: Option<f64>,
    /// Comma-separated categories (default SAME_CHANGE,SAME_FEATURE,COMPETING_IMPLEMENTATION).
    pub include_categories: Option<String>,
    /// open (default) | closed | merged | all.
    pub state: Option<String>,
    /// 1–100, default 20.
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Only sets with a member matching: a PR number (`123` or `#123`) or title words.
    pub q: Option<String>,
    /// Only sets with a member by this author.
    pub author: Option<String>,
    /// Only sets with a member carrying this label.
    pub label: Option<String>,
    /// Only sets touching this path: a member's current head changes a file whose path contains it.
    pub path: Option<String>,
    /// Only sets with a member targeting this base branch.
    pub base: Option<String>,
    /// true: only sets with a member by a coding agent.
    pub agent: Option<bool>,
}

/// A member of a set.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetMember {
    /// PR facts.
    #[serde(flatten)]
    pub pr: PrBrief,
    /// base | keep | base+keep | member.
    pub role: String,
}

/// A linking edge with its evidence.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetEdgeOut {
    /// Lower PR number.
    pub a: i64,
    /// Higher PR number.
    pub b: i64,
    /// Category.
    pub category: String,
    /// Final score.
    pub final_score: f64,
    /// Every signal's score.
    #[schema(value_type = Object)]
    pub scores: serde_json::Value,
    /// The facts behind it.
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
}

/// A suggestion with its reason.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PickOut {
    /// PR number.
    pub number: i64,
    /// Why.
    pub reason: String,
}

/// A duplicate set.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetOut {
    /// Stable while its core members stay (see `triage::set_ids`).
    pub set_id: String,
    /// When this set was first seen (null until the registry recorded it, seconds after it
    /// appears).
    pub first_seen_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Members.
    pub size: usize,
    /// Strongest link.
    pub max_score: f64,
    /// Weakest link that holds the set together.
    pub min_link_score: f64,
    /// high | medium | review (from the weakest link).
    pub tier: String,
    /// Categories of its links, strongest first.
    pub categories: Vec<String>,
    /// Members with roles.
    pub members: Vec<SetMember>,
    /// The strongest links (at most 5) with evidence.
    pub edges: Vec<SetEdgeOut>,
    /// Suggested original.
    pub base: PickOut,
    /// Suggested PR to merge.
    pub keep: PickOut,
}

/// A page of sets.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetsResponse {
    /// Sets in order: strongest evidence, size, recency.
    pub sets: Vec<SetOut>,
    /// Sets across all pages.
    pub total: usize,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct SetCursorWire {
    s: f64,
    z: usize,
    t: i64,
    i: String,
}

fn after_cursor(set: &DuplicateSet, c: &SetCursorWire) -> bool {
    // True when `set` comes after the cursor in the API's order.
    let ord =
        c.s.total_cmp(&set.max_score)
            .then(c.z.cmp(&set.members.len()))
            .then(c.t.cmp(&set.newest_created_at))
            .then(set.set_id.cmp(&c.i));
    ord == std::cmp::Ordering::Greater
}

/// `GET /api/repos/{repoId}/duplicate-sets`.
#[utoipa::path(get, path = "/repos/{repo_id}/duplicate-sets", tag = "results",
    params(("repo_id" = i64, Path, description = "repository id"), SetsQuery),
    responses((status = 200, body = SetsResponse), (status = 400), (status = 401), (status = 404)))]
pub async fn duplicate_sets(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<i64>, PathRejection>,
    raw: axum::extract::RawQuery,
    query: Result<Query<SetsQuery>, QueryRejection>,
) -> ApiResult<Response> {
    require_dashboard(&state, &headers)?;
    let repo_id = repo_path(path)?;
    let Query(q) = query?;
    // Answers are cached until results change (see crate::cache).
    let cache_key = format!("sets:{repo_id}?{}", raw.0.unwrap_or_default());
    let (generation, hit) = state.cache.lookup(&cache_key).await;
    if let Some(body) = hit {
        return Ok(json_bytes(body));
    }
    let limit = check_limit(q.limit, 20, 100)? as usize;
    let filter = super::workflow::pr_filter(&super::workflow::FilterParams {
        q: q.q.clone(),
        author: q.author.clone(),
        label: q.label.clone(),
        path: q.path.clone(),
        base: q.base.clone(),
        agent: q.agent,
    })?;
    let threshold = crate::workflow::review_threshold(&state, repo_id).await?;
    // Sets never chain through links weaker than the review threshold.
    let min_score = check_score("minScore", q.min_score, threshold)?.max(threshold);
    let categories: BTreeSet<Category> = match &q.include_categories {
        None => SetParams::default().categories,
        Some(list) => {
            let mut out = BTreeSet::new();
            for c in list.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                match Category::parse(c) {
                    Some(Category::NotRelated) | None => {
                        return Err(ApiError::bad_request(format!(
                            "includeCategories: `{}` is not one of SAME_CHANGE, SAME_FEATURE, COMPETING_IMPLEMENTATION, RELATED",
                            c.escape_debug()
                        )));
                    }
                    Some(cat) => {
                        out.insert(cat);
                    }
                }
            }
            if out.is_empty() {
                return Err(ApiError::bad_request(
                    "includeCategories: name at least one category",
                ));
            }
            out
        }
    };
    let states: Vec<String> = match q.state.as_deref() {
        None => vec!["open".into()],
        s => match check_state(s)? {
            Some(one) => vec![one],
            None => vec!["open".into(), "closed".into(), "merged".into()],
        },
    };
    let cursor: Option<SetCursorWire> = match &q.cursor {
        Some(c) => {
            let w: SetCursorWire = decode_cursor(c)?;
            if !w.s.is_finite() {
                return Err(ApiError::bad_request(
                    "cursor: not a cursor this API handed out",
                ));
            }
            Some(w)
        }
        None => None,
    };
    known_repo(&state, repo_id).await?;
    let params = SetParams {
        min_score,
        max_size: state.config.max_set_size,
        categories,
        ..SetParams::default()
    };
    let mut all = crate::workflow::sets::compute_sets(&state, repo_id, &states, &params).await?;
    if !filter.is_empty() {
        let numbers: Vec<i64> = all
            .iter()
            .flat_map(|s| s.members.iter().map(|m| *m as i64))
            .collect();
        let agents = crate::workflow::agent_match(&state, repo_id).await?;
        let hits =
            search::matching_numbers(&state.pool, repo_id, &filter, &agents, &numbers).await?;
        all.retain(|s| s.members.iter().any(|m| hits.contains(&(*m as i64))));
    }
    let total = all.len();
    let page: Vec<&DuplicateSet> = all
        .iter()
        .filter(|s| cursor.as_ref().is_none_or(|c| after_cursor(s, c)))
        .take(limit + 1)
        .collect();
    let more = page.len() > limit;
    let page = &page[..page.len().min(limit)];
    let sets_out = render_sets(&state, repo_id, page).await?;
    let next_cursor = if more {
        page.last().map(|s| {
            encode_cursor(&SetCursorWire {
                s: s.max_score,
                z: s.members.len(),
                t: s.newest_created_at,
                i: s.set_id.clone(),
            })
        })
    } else {
        None
    };
    let body = serde_json::to_vec(&SetsResponse {
        sets: sets_out,
        total,
        next_cursor,
    })
    .map_err(ApiError::internal)?;
    let body = bytes::Bytes::from(body);
    state.cache.put(cache_key, generation, body.clone());
    Ok(json_bytes(body))
}

/// Sets as the API shows them: members with their roles, the strongest links with evidence.
pub(super) async fn render_sets(
    state: &AppState,
    repo_id: i64,
    page: &[&DuplicateSet],
) -> ApiResult<Vec<SetOut>> {
    let numbers: Vec<i64> = page
        .iter()
        .flat_map(|s| s.members.iter().map(|m| *m as i64))
        .collect();
    let briefs = results::pr_briefs(&state.pool, repo_id, &numbers).await?;
    let pairs: Vec<(i64, i64)> = page
        .iter()
        .flat_map(|s| s.edges.iter().take(5).map(|e| (e.0 as i64, e.1 as i64)))
        .collect();
    let evidence = results::edge_evidence(&state.pool, repo_id, &pairs).await?;
    let ids: Vec<String> = page.iter().map(|s| s.set_id.clone()).collect();
    let first_seen = crate::store::sets::first_seen(&state.pool, repo_id, &ids).await?;
    Ok(page
        .iter()
        .map(|s| SetOut {
            set_id: s.set_id.clone(),
            first_seen_at: first_seen.get(&s.set_id).copied(),
            size: s.members.len(),
            max_score: s.max_score,
            min_link_score: s.min_link_score,
            tier: s.tier.to_string(),
            categories: s
                .categories
                .iter()
                .map(|c| c.as_str().to_string())
                .collect(),
            members: s
                .members
                .iter()
                .filter_map(|m| briefs.get(&(*m as i64)))
                .map(|b| SetMember {
                    role: match (
                        b.number as u64 == s.base.number,
                        b.number as u64 == s.keep.number,
                    ) {
                        (true, true) => "base+keep",
                        (true, false) => "base",
                        (false, true) => "keep",
                        _ => "member",
                    }
                    .to_string(),
                    pr: b.clone(),
                })
                .collect(),
            edges: s
                .edges
                .iter()
                .take(5)
                .map(|(a, b, c, score)| {
                    let (sc, ev) = evidence
                        .get(&(*a as i64, *b as i64))
                        .cloned()
                        .unwrap_or((serde_json::Value::Null, serde_json::Value::Null));
                    SetEdgeOut {
                        a: *a as i64,
                        b: *b as i64,
                        category: c.as_str().to_string(),
                        final_score: *score,
                        scores: sc,
                        evidence: ev,
                    }
                })
                .collect(),
            base: PickOut {
                number: s.base.number as i64,
                reason: s.base.reason.clone(),
            },
            keep: PickOut {
                number: s.keep.number as i64,
                reason: s.keep.reason.clone(),
            },
        })
        .collect())
}

/// Who a request says acts: the body's actor, else the `X-Actor` header, else `anonymous`.
pub(super) fn requested_actor(given: Option<&str>, headers: &HeaderMap) -> String {
    given
        .map(str::to_string)
        .or_else(|| {
            headers
                .get("x-actor")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "anonymous".into())
}

/// The shape of a set id (`set-` and a short hash).
pub(super) fn is_set_id(id: &str) -> bool {
    id.starts_with("set-") && id.len() <= 40
}

/// One JSON line per item (`application/x-ndjson`), the cursor of the next page, if any, in
/// `x-next-cursor`.
pub(super) fn ndjson<T: Serialize>(
    items: impl IntoIterator<Item = T>,
    next: Option<String>,
) -> ApiResult<Response> {
    let mut text = String::new();
    for item in items {
        text.push_str(&serde_json::to_string(&item).map_err(ApiError::internal)?);
        text.push('\n');
    }
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/x-ndjson"),
    );
    if let Some(n) = next
        && let Ok(v) = header::HeaderValue::from_str(&n)
    {
        resp.headers_mut().insert("x-next-cursor", v);
    }
    Ok(resp)
}

pub(super) fn json_bytes(body: bytes::Bytes) -> Response {
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// A maintainer's verdict.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeedbackBody {
    /// pair | set.
    pub target: String,
    /// For a pair: one PR.
    pub a: Option<i64>,
    /// For a pair: the other PR.
    pub b: Option<i64>,
    /// For a set: its id.
    pub set_id: Option<String>,
    /// For a set: its members as shown.
    pub members: Option<Vec<i64>>,
    /// duplicate | not_duplicate | competing | related | base_is.
    pub verdict: String,
    /// For base_is: the base.
    pub base_number: Option<i64>,
    /// Who (default: the `X-Actor` header, else "anonymous").
    pub actor: Option<String>,
    /// Free text (at most 2,000 characters).
    pub note: Option<String>,
}

/// Feedback writes allowed per client and minute (a set verdict writes up to 19,900 pair rows).
pub const FEEDBACK_WRITES_PER_MINUTE: u32 = 60;

/// The feedback limiter the appliance starts with.
pub fn feedback_limiter(queues: &crate::jobs::Queues, prefix: &str) -> super::ClientLimiter {
    super::client_limiter(queues, prefix, "feedback", FEEDBACK_WRITES_PER_MINUTE)
}

/// `POST /api/repos/{repoId}/feedback`.
#[utoipa::path(post, path = "/repos/{repo_id}/feedback", tag = "results",
    params(("repo_id" = i64, Path, description = "repository id")),
    request_body = FeedbackBody,
    responses((status = 201, body = FeedbackRow), (status = 400), (status = 401), (status = 404),
              (status = 429, description = "over the per-client rate limit")))]
pub async fn post_feedback(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    path: Result<Path<i64>, PathRejection>,
    body: Result<Json<FeedbackBody>, JsonRejection>,
) -> ApiResult<Response> {
    super::check_client_rate(
        &state.feedback_limiter,
        &headers,
        peer.map(|c| (c.0).0),
        "feedback writes",
    )
    .await?;
    require_dashboard(&state, &headers)?;
    let repo_id = repo_path(path)?;
    let Json(b) = body?;
    let actor = requested_actor(b.actor.as_deref(), &headers);
    crate::backup::check_verdict_fields(&b.verdict, &actor, b.note.as_deref())
        .map_err(ApiError::bad_request)?;
    let verdict = b.verdict.as_str();
    let (target, a_number, b_number, set_id, members) = match b.target.as_str() {
        "pair" => {
            let (Some(x), Some(y)) = (b.a, b.b) else {
                return Err(ApiError::bad_request(
                    "a and b: a pair verdict names two PRs",
                ));
            };
            if x == y || x <= 0 || y <= 0 {
                return Err(ApiError::bad_request("a and b: two different PR numbers"));
            }
            ("pair", Some(x.min(y)), Some(x.max(y)), None, None)
        }
        "set" => {
            let Some(id) = b.set_id.as_deref() else {
                return Err(ApiError::bad_request("setId: a set verdict names the set"));
            };
            if !is_set_id(id) {
                return Err(ApiError::bad_request("setId: not a set id"));
            }
            let mut m = b.members.clone().unwrap_or_default();
            m.sort_unstable();
            m.dedup();
            if m.len() < 2 || m.len() > 200 || m.iter().any(|n| *n <= 0) {
                return Err(ApiError::bad_request(
                    "members: a set verdict lists the set's 2-200 members",
                ));
            }
            ("set", None, None, Some(id.to_string()), Some(m))
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "target: `{}` is not pair or set",
                other.escape_debug()
            )));
        }
    };
    if verdict == "base_is" {
        let Some(base) = b.base_number else {
            return Err(ApiError::bad_request("baseNumber: base_is names the base"));
        };
        let in_scope = match (&members, a_number, b_number) {
            (Some(m), _, _) => m.contains(&base),
            (None, Some(x), Some(y)) => base == x || base == y,
            _ => false,
        };
        if !in_scope {
            return Err(ApiError::bad_request(
                "baseNumber: must be one of the PRs the verdict is about",
            ));
        }
    }
    known_repo(&state, repo_id).await?;
    let row = results::add_feedback(
        &state.pool,
        repo_id,
        &NewFeedback {
            target,
            a_number,
            b_number,
            set_id: set_id.as_deref(),
            members,
            verdict,
            base_number: if verdict == "base_is" {
                b.base_number
            } else {
                None
            },
            actor: &actor,
            note: b.note.as_deref(),
        },
    )
    .await?;
    state.cache.bump().await;
    tracing::info!(repo_id, target, verdict, actor = %actor, "feedback recorded");
    Ok((StatusCode::CREATED, Json(row)).into_response())
}

/// Query of the feedback list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedbackQuery {
    /// 1–1000, default 100.
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// json (default) | jsonl (one verdict per line, for the quality harness).
    pub format: Option<String>,
}

/// A page of feedback.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackResponse {
    /// Newest first.
    pub feedback: Vec<FeedbackRow>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct FeedbackCursorWire {
    id: i64,
}

/// `GET /api/repos/{repoId}/feedback`.
#[utoipa::path(get, path = "/repos/{repo_id}/feedback", tag = "results",
    params(("repo_id" = i64, Path, description = "repository id"), FeedbackQuery),
    responses((status = 200, body = FeedbackResponse), (status = 400), (status = 401), (status = 404)))]
pub async fn list_feedback(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<i64>, PathRejection>,
    query: Result<Query<FeedbackQuery>, QueryRejection>,
) -> ApiResult<Response> {
    require_dashboard(&state, &headers)?;
    let repo_id = repo_path(path)?;
    let Query(q) = query?;
    let limit = check_limit(q.limit, 100, 1000)?;
    let before = match &q.cursor {
        Some(c) => Some(decode_cursor::<FeedbackCursorWire>(c)?.id),
        None => None,
    };
    let jsonl = match q.format.as_deref() {
        None | Some("json") => false,
        Some("jsonl") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format: `{}` is not json or jsonl",
                other.escape_debug()
            )));
        }
    };
    known_repo(&state, repo_id).await?;
    let mut rows = results::list_feedback(&state.pool, repo_id, before, limit + 1).await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last()
            .map(|r| encode_cursor(&FeedbackCursorWire { id: r.feedback_id }))
    } else {
        None
    };
    if jsonl {
        return ndjson(&rows, next);
    }
    Ok(Json(FeedbackResponse {
        feedback: rows,
        next_cursor: next,
    })
    .into_response())
}
