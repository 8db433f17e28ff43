//! A fake GitHub REST API on loopback, faithful to what the appliance relies on: `Link`
//! pagination with `per_page` whose next links point at `/repositories/{id}/...` (as GitHub's
//! do), private repositories that answer 404 to any request without their installation token,
//! `x-ratelimit-*` headers and a primary budget that resets,
//! `ETag` / `If-None-Match` → 304 (free of budget), secondary limits (403 or 429 + `retry-after`),
//! injected 5xx, 404 for deleted PRs, and requests that hang until released. Every request is
//! logged so tests can count API calls by kind.
//!
//! Writes need an installation token and change the fake's state as they change GitHub's:
//! comments are kept and listed, labels are added and removed (404 "Label does not exist" for
//! one the issue lacks), `PATCH /pulls/{n}` closes a PR (422 for an unknown state), issues are
//! created and edited from the number sequence PRs share, and `/contents/{path}` serves files of
//! the default branch in base64 with an ETag.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, patch, post};
use serde_json::Value;

/// One repository's data.
#[derive(Default, Clone)]
pub struct FakeRepo {
    pub default_branch: String,
    /// `/pulls` items, in creation order (the fake sorts as asked). Closing a PR or changing its
    /// labels through the API changes its item here.
    pub pulls: Vec<Value>,
    /// `/pulls/{n}/files` per PR.
    pub files: BTreeMap<i64, Vec<Value>>,
    /// A private repository: every request about it needs an installation token (`ghs_`);
    /// without one GitHub answers 404.
    pub private: bool,
    /// Issues that are not PRs (the digest), by number.
    pub issues: BTreeMap<i64, Value>,
    /// Comments of issues and PRs, by number, oldest first.
    pub comments: BTreeMap<i64, Vec<Value>>,
    /// Files of the default branch (`/contents/{path}`), by path.
    pub contents: BTreeMap<String, String>,
}

impl FakeRepo {
    fn pull_mut(&mut self, number: i64) -> Option<&mut Value> {
        self.pulls.iter_mut().find(|p| p["number"] == number)
    }

    fn pull(&self, number: i64) -> Option<&Value> {
        self.pulls.iter().find(|p| p["number"] == number)
    }

    /// GitHub numbers issues and PRs from one sequence.
    fn next_number(&self) -> i64 {
        let pulls = self.pulls.iter().filter_map(|p| p["number"].as_i64()).max();
        let issues = self.issues.keys().next_back().copied();
        pulls.max(issues).unwrap_or(0) + 1
    }
}

/// What the fake does besides answering.
#[derive(Default)]
pub struct Faults {
    /// Every Nth request (counted over all requests) answers 502. 0 = never.
    pub fail_every: u64,
    /// The next N requests answer 403 with `retry-after: 1`.
    pub secondary_limit_next: u32,
    /// After those, the next N requests answer 429 with `retry-after: 1` (GitHub's other way
    /// of saying "too many requests").
    pub too_many_next: u32,
    /// PR numbers whose files answer 404 (deleted between list and fetch).
    pub deleted: HashSet<i64>,
    /// Requests whose path contains this hang until `hang` is cleared.
    pub hang_on: Option<String>,
    /// When the primary budget is about to run out, move its reset this many seconds ahead
    /// (once; the budget then refills to `rate_limit` with the usual `reset_after_secs`).
    pub reset_soon_when_exhausted: Option<i64>,
    /// After answering this page of an open-PR listing, close these PRs (in every repository):
    /// later pages then shift, as GitHub's do when PRs close during a listing.
    pub close_after_list_page: Option<(usize, Vec<i64>)>,
    /// `Link` headers point at this origin instead of the fake's own (a hostile or broken
    /// proxy): the client must not follow them, nor send its token there.
    pub link_origin: Option<String>,
}

/// Logged request.
#[derive(Debug, Clone)]
pub struct Logged {
    pub path: String,
    pub status: u16,
    pub conditional: bool,
    /// The `Authorization` header sent, if any.
    pub auth: Option<String>,
}

/// A write (POST/PATCH/DELETE) the appliance sent: App tokens, check runs, labels, comments,
/// closes, issues.
#[derive(Debug, Clone)]
pub struct Write {
    pub method: String,
    pub path: String,
    /// The `Authorization` header sent, if any.
    pub auth: Option<String>,
    pub body: Value,
    pub status: u16,
    /// When the fake received it (for latency benches).
    pub at: Instant,
}

/// GitHub App state of the fake.
#[derive(Debug, Default)]
pub struct AppFake {
    /// Lifetime of issued installation tokens (GitHub: 3600 s).
    pub token_ttl_secs: i64,
    /// Tokens issued so far.
    pub tokens_issued: u64,
    /// Check runs by id (the latest body sent for each).
    pub check_runs: BTreeMap<i64, Value>,
    pub next_check_run_id: i64,
    pub next_comment_id: i64,
    pub writes: Vec<Write>,
}

pub struct Inner {
    pub repos: BTreeMap<String, FakeRepo>,
    pub faults: Faults,
    pub log: Vec<Logged>,
    pub rate_limit: i64,
    pub remaining: i64,
    /// Seconds from exhaustion to reset.
    pub reset_after_secs: i64,
    pub reset_at: i64,
    pub requests: u64,
    pub base: String,
    pub app: AppFake,
    /// Every request received, answered or not: (method, path).
    pub seen: Vec<(String, String)>,
    /// GitHub's numeric repository ids (`/repositories/{id}/...`), to `owner/name` as added.
    pub repo_ids: BTreeMap<i64, String>,
}

impl Inner {
    /// GitHub's numeric id of the repository `owner/name` (lowercase key).
    pub fn id_of(&self, key: &str) -> Option<i64> {
        self.repo_ids
            .iter()
            .find(|(_, name)| name.to_lowercase() == key)
            .map(|(id, _)| *id)
    }
}

/// Handle to a running fake.
#[derive(Clone)]
pub struct FakeGithub {
    pub addr: SocketAddr,
    pub inner: Arc<Mutex<Inner>>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl FakeGithub {
    /// Starts the fake on a free loopback port.
    pub async fn start() -> FakeGithub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Mutex::new(Inner {
            repos: BTreeMap::new(),
            faults: Faults::default(),
            log: Vec::new(),
            rate_limit: 5000,
            remaining: 5000,
            reset_after_secs: 3600,
            reset_at: now() + 3600,
            requests: 0,
            base: format!("http://{addr}"),
            seen: Vec::new(),
            app: AppFake {
                token_ttl_secs: 3600,
                next_check_run_id: 1000,
                ..Default::default()
            },
            repo_ids: BTreeMap::new(),
        }));
        let app = Router::new()
            .route("/repos/{owner}/{repo}", get(get_repo))
            .route("/repos/{owner}/{repo}/pulls", get(list_pulls))
            .route(
                "/repos/{owner}/{repo}/pulls/{number}/files",
                get(list_files),
            )
            .route("/repositories/{id}/pulls", get(list_pulls_by_id))
            .route(
                "/repositories/{id}/pulls/{number}/files",
                get(list_files_by_id),
            )
            .route("/rate_limit", get(rate_limit))
            .route(
                "/app/installations/{id}/access_tokens",
                post(issue_installation_token),
            )
            .route("/repos/{owner}/{repo}/check-runs", post(create_check_run))
            .route(
                "/repos/{owner}/{repo}/check-runs/{id}",
                patch(update_check_run),
            )
            .route(
                "/repos/{owner}/{repo}/issues/{number}/labels",
                post(add_labels),
            )
            .route(
                "/repos/{owner}/{repo}/issues/{number}/labels/{name}",
                delete(remove_label),
            )
            .route(
                "/repos/{owner}/{repo}/issues/{number}/comments",
                post(add_comment).get(list_comments),
            )
            .route(
                "/repos/{owner}/{repo}/pulls/{number}",
                get(get_pull).patch(update_pull),
            )
            .route(
                "/repos/{owner}/{repo}/issues",
                get(list_issues).post(create_issue),
            )
            .route(
                "/repos/{owner}/{repo}/issues/{number}",
                get(get_issue).patch(update_issue),
            )
            .route("/repos/{owner}/{repo}/contents/{*path}", get(get_contents))
            .fallback(|| async {
                json_response(
                    StatusCode::NOT_FOUND,
                    &serde_json::json!({"message": "Not Found"}),
                    &HeaderMap::new(),
                )
            })
            .with_state(inner.clone())
            .layer(axum::middleware::from_fn_with_state(
                inner.clone(),
                record_request,
            ));
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeGithub { addr, inner }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn add_repo(&self, owner: &str, name: &str, repo: FakeRepo) {
        let key = format!("{}/{}", owner.to_lowercase(), name.to_lowercase());
        let mut g = self.inner.lock().unwrap();
        if g.id_of(&key).is_none() {
            let id = 100_000 + g.repo_ids.len() as i64 + 1;
            g.repo_ids.insert(id, format!("{owner}/{name}"));
        }
        g.repos.insert(key, repo);
    }

    /// GitHub's numeric id of a repository added with [`FakeGithub::add_repo`].
    pub fn repo_id(&self, owner: &str, name: &str) -> i64 {
        let key = format!("{}/{}", owner.to_lowercase(), name.to_lowercase());
        self.inner
            .lock()
            .unwrap()
            .id_of(&key)
            .expect("a repository added to the fake")
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().unwrap())
    }

    pub fn log(&self) -> Vec<Logged> {
        self.inner.lock().unwrap().log.clone()
    }

    pub fn count(&self, pred: impl Fn(&Logged) -> bool) -> usize {
        self.inner
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|l| pred(l))
            .count()
    }

    /// Every request received that was not a GET or HEAD: (method, path).
    pub fn non_reads(&self) -> Vec<(String, String)> {
        self.inner
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|(m, _)| m != "GET" && m != "HEAD")
            .cloned()
            .collect()
    }

    /// How many requests were received in all.
    pub fn requests_seen(&self) -> usize {
        self.inner.lock().unwrap().seen.len()
    }

    pub fn clear_log(&self) {
        self.inner.lock().unwrap().log.clear();
    }
}

/// A PR set in the shared dataset format (`prs.jsonl.gz` or `prs.jsonl`): each line a `/pulls`
/// item plus its `files`. Returns the repo with at most `limit` PRs.
pub fn load_dataset(dir: &Path, limit: Option<usize>) -> FakeRepo {
    let gz = dir.join("prs.jsonl.gz");
    let mut text = String::new();
    if gz.exists() {
        flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap())
            .read_to_string(&mut text)
            .unwrap();
    } else {
        text = std::fs::read_to_string(dir.join("prs.jsonl")).unwrap();
    }
    let mut repo = FakeRepo {
        default_branch: "main".into(),
        ..Default::default()
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if limit.is_some_and(|l| repo.pulls.len() >= l) {
            break;
        }
        let mut v: Value = serde_json::from_str(line).unwrap();
        let files = v
            .as_object_mut()
            .unwrap()
            .remove("files")
            .unwrap_or(Value::Array(vec![]));
        let number = v["number"].as_i64().unwrap();
        repo.files
            .insert(number, files.as_array().cloned().unwrap_or_default());
        repo.pulls.push(v);
    }
    repo
}

/// A minimal PR item with one production file, for tests that make their own data.
pub fn simple_pr(
    number: i64,
    head_sha: &str,
    title: &str,
    files: Vec<Value>,
) -> (Value, Vec<Value>) {
    let pr = serde_json::json!({
        "number": number,
        "state": "open",
        "title": title,
        "body": "",
        "user": {"login": format!("dev{number}"), "type": "User"},
        "html_url": format!("https://github.com/o/r/pull/{number}"),
        "draft": false,
        "head": {"sha": head_sha, "ref": format!("branch-{number}")},
        "base": {"sha": "base000", "ref": "main"},
        "created_at": format!("2026-01-{:02}T10:00:00Z", (number % 28) + 1),
        "updated_at": "2026-02-01T10:00:00Z",
        "closed_at": null,
        "merged_at": null,
        "labels": []
    });
    (pr, files)
}

/// Records every request, whatever route (or none) answers it.
async fn record_request(
    State(inner): State<Arc<Mutex<Inner>>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    inner
        .lock()
        .unwrap()
        .seen
        .push((req.method().to_string(), req.uri().path().to_string()));
    next.run(req).await
}

/// `n` open PRs #1..=n, each changing one production file of its own.
pub fn synthetic_repo(n: i64) -> FakeRepo {
    let mut repo = FakeRepo {
        default_branch: "main".into(),
        ..Default::default()
    };
    for i in 1..=n {
        let patch = format!(
            "@@ -1,3 +1,4 @@\n import {{ thing }} from './thing';\n+export function feature{i}(x: number) {{ return thing(x) * {i}; }}\n const a = 1;\n const b = 2;\n"
        );
        let (pr, files) = simple_pr(
            i,
            &format!("{i:040x}"),
            &format!("feature {i}"),
            vec![
                serde_json::json!({"filename": format!("src/feature{i}.ts"), "status": "modified",
                "additions": 1, "deletions": 0, "changes": 1, "patch": patch}),
            ],
        );
        repo.files.insert(i, files);
        repo.pulls.push(pr);
    }
    repo
}

fn json_response(status: StatusCode, body: &Value, extra: &HeaderMap) -> Response {
    let bytes = serde_json::to_vec(body).unwrap();
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    for (k, v) in extra {
        resp.headers_mut().insert(k.clone(), v.clone());
    }
    resp
}

fn etag_of(body: &[u8]) -> String {
    // FNV-1a: stable, dependency-free.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in body {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("W/\"{h:016x}\"")
}

/// Common request handling: faults, budget, conditional requests, logging.
async fn answer(
    inner: &Arc<Mutex<Inner>>,
    path: String,
    headers: &HeaderMap,
    produce: impl FnOnce(&Inner, Option<&str>) -> Result<(Value, Option<String>), StatusCode>,
) -> Response {
    // Hanging requests wait outside the lock.
    loop {
        let hang = inner
            .lock()
            .unwrap()
            .faults
            .hang_on
            .as_ref()
            .is_some_and(|h| path.contains(h.as_str()));
        if !hang {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut g = inner.lock().unwrap();
    g.requests += 1;
    let conditional = headers.contains_key("if-none-match");
    let t = now();
    if t >= g.reset_at {
        g.remaining = g.rate_limit;
        g.reset_at = t + g.reset_after_secs;
    }
    if g.remaining <= 1
        && let Some(secs) = g.faults.reset_soon_when_exhausted.take()
    {
        g.reset_at = t + secs;
    }
    let mut rl = HeaderMap::new();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let log = |g: &mut Inner, status: u16| {
        g.log.push(Logged {
            path: path.clone(),
            status,
            conditional,
            auth: auth.clone(),
        })
    };
    if g.faults.fail_every > 0 && g.requests.is_multiple_of(g.faults.fail_every) {
        log(&mut g, 502);
        return json_response(
            StatusCode::BAD_GATEWAY,
            &serde_json::json!({"message": "Bad Gateway"}),
            &rl,
        );
    }
    if g.faults.secondary_limit_next > 0 {
        g.faults.secondary_limit_next -= 1;
        rl.insert("retry-after", HeaderValue::from_static("1"));
        log(&mut g, 403);
        return json_response(
            StatusCode::FORBIDDEN,
            &serde_json::json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}),
            &rl,
        );
    }
    if g.faults.too_many_next > 0 {
        g.faults.too_many_next -= 1;
        rl.insert("retry-after", HeaderValue::from_static("1"));
        log(&mut g, 429);
        return json_response(
            StatusCode::TOO_MANY_REQUESTS,
            &serde_json::json!({"message": "Too many requests"}),
            &rl,
        );
    }
    let set_rl = |g: &Inner, rl: &mut HeaderMap| {
        rl.insert(
            "x-ratelimit-limit",
            g.rate_limit.to_string().parse().unwrap(),
        );
        rl.insert(
            "x-ratelimit-remaining",
            g.remaining.to_string().parse().unwrap(),
        );
        rl.insert("x-ratelimit-reset", g.reset_at.to_string().parse().unwrap());
        rl.insert(
            "x-ratelimit-used",
            (g.rate_limit - g.remaining).to_string().parse().unwrap(),
        );
        rl.insert("x-ratelimit-resource", HeaderValue::from_static("core"));
    };
    let produced = produce(&g, auth.as_deref());
    // A 304 costs no budget; everything else does.
    if let Ok((body, _)) = &produced {
        let etag = etag_of(&serde_json::to_vec(body).unwrap());
        if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
            set_rl(&g, &mut rl);
            rl.insert("etag", etag.parse().unwrap());
            log(&mut g, 304);
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
            resp.headers_mut().extend(rl);
            return resp;
        }
    }
    if g.remaining <= 0 {
        set_rl(&g, &mut rl);
        log(&mut g, 403);
        return json_response(
            StatusCode::FORBIDDEN,
            &serde_json::json!({"message": "API rate limit exceeded for 127.0.0.1."}),
            &rl,
        );
    }
    g.remaining -= 1;
    set_rl(&g, &mut rl);
    match produced {
        Ok((body, link)) => {
            rl.insert(
                "etag",
                etag_of(&serde_json::to_vec(&body).unwrap())
                    .parse()
                    .unwrap(),
            );
            if let Some(l) = link {
                rl.insert("link", l.parse().unwrap());
            }
            log(&mut g, 200);
            json_response(StatusCode::OK, &body, &rl)
        }
        Err(status) => {
            log(&mut g, status.as_u16());
            json_response(status, &serde_json::json!({"message": "Not Found"}), &rl)
        }
    }
}

/// A repository as the caller may see it: 404 for a private one without an installation token.
fn visible<'a>(g: &'a Inner, key: &str, auth: Option<&str>) -> Result<&'a FakeRepo, StatusCode> {
    let r = g.repos.get(key).ok_or(StatusCode::NOT_FOUND)?;
    if r.private && !is_installation_token(auth) {
        return Err(StatusCode::NOT_FOUND);
    }
    Ok(r)
}

fn repo_key(owner: &str, repo: &str) -> String {
    format!("{}/{}", owner.to_lowercase(), repo.to_lowercase())
}

/// `owner` and `repo` of a repository id, as GitHub resolves `/repositories/{id}`.
fn by_id(inner: &Arc<Mutex<Inner>>, id: i64) -> Option<(String, String)> {
    let g = inner.lock().unwrap();
    let (o, r) = g.repo_ids.get(&id)?.split_once('/')?;
    Some((o.to_string(), r.to_string()))
}

async fn get_repo(
    State(inner): State<Arc<Mutex<Inner>>>,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/repos/{owner}/{repo}");
    let key = repo_key(&owner, &repo);
    answer(&inner, path, &headers, |g, auth| {
        let r = visible(g, &key, auth)?;
        Ok((
            serde_json::json!({"name": repo, "full_name": format!("{owner}/{repo}"),
                "default_branch": r.default_branch, "private": r.private,
                "owner": {"login": owner, "type": "Organization"}}),
            None,
        ))
    })
    .await
}

/// One page of `items`, with GitHub's `Link` header: its URLs name the repository by id
/// (`{base}/repositories/{id}{rest}?...`), whatever URL the first page was asked by.
fn paginate(
    base: &str,
    link_path: &str,
    extra_query: &str,
    items: &[&Value],
    page: usize,
    per_page: usize,
) -> (Value, Option<String>) {
    let per_page = per_page.clamp(1, 100);
    let pages = items.len().div_ceil(per_page).max(1);
    let page = page.max(1);
    let start = (page - 1) * per_page;
    // Only the page's items are copied (a 5,000-PR repository is listed in 50 requests).
    let slice: Vec<Value> = items
        .iter()
        .skip(start)
        .take(per_page)
        .map(|v| (*v).clone())
        .collect();
    let mut links = Vec::new();
    let url = |p: usize| format!("<{base}{link_path}?{extra_query}per_page={per_page}&page={p}>");
    if page < pages {
        links.push(format!("{}; rel=\"next\"", url(page + 1)));
        links.push(format!("{}; rel=\"last\"", url(pages)));
    }
    if page > 1 {
        links.push(format!("{}; rel=\"first\"", url(1)));
        links.push(format!("{}; rel=\"prev\"", url(page - 1)));
    }
    (
        Value::Array(slice),
        (!links.is_empty()).then(|| links.join(", ")),
    )
}

fn page_query(q: &BTreeMap<String, String>) -> (usize, usize) {
    let page = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let per_page = q.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(30);
    (page, per_page)
}

async fn list_pulls(
    State(inner): State<Arc<Mutex<Inner>>>,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    pulls_page(&inner, &owner, &repo, &q, &headers).await
}

async fn list_pulls_by_id(
    State(inner): State<Arc<Mutex<Inner>>>,
    UrlPath(id): UrlPath<i64>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    match by_id(&inner, id) {
        Some((owner, repo)) => pulls_page(&inner, &owner, &repo, &q, &headers).await,
        None => not_found(),
    }
}

/// A page of open PRs. Logged as `/repos/{owner}/{repo}/pulls?page=N` whichever URL asked.
async fn pulls_page(
    inner: &Arc<Mutex<Inner>>,
    owner: &str,
    repo: &str,
    q: &BTreeMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/pulls");
    let key = repo_key(owner, repo);
    let (page, per_page) = page_query(q);
    let desc = q.get("direction").map(|d| d == "desc").unwrap_or(true);
    let log_path = format!("{path}?page={page}");
    let resp = answer(inner, log_path, headers, |g, auth| {
        let r = visible(g, &key, auth)?;
        let mut items: Vec<&Value> = r.pulls.iter().filter(|p| p["state"] == "open").collect();
        items.sort_by(|a, b| {
            fn k(v: &Value) -> (&str, i64) {
                (
                    v["created_at"].as_str().unwrap_or(""),
                    v["number"].as_i64().unwrap_or(0),
                )
            }
            if desc {
                k(b).cmp(&k(a))
            } else {
                k(a).cmp(&k(b))
            }
        });
        let extra = format!(
            "state=open&sort=created&direction={}&",
            if desc { "desc" } else { "asc" }
        );
        let id = g.id_of(&key).unwrap_or(0);
        Ok(paginate(
            g.faults.link_origin.as_deref().unwrap_or(&g.base),
            &format!("/repositories/{id}/pulls"),
            &extra,
            &items,
            page,
            per_page,
        ))
    })
    .await;
    let mut g = inner.lock().unwrap();
    if g.faults
        .close_after_list_page
        .as_ref()
        .is_some_and(|(p, _)| *p == page)
        && let Some((_, numbers)) = g.faults.close_after_list_page.take()
    {
        for r in g.repos.values_mut() {
            for pr in r.pulls.iter_mut() {
                if numbers.contains(&pr["number"].as_i64().unwrap_or(0)) {
                    pr["state"] = "closed".into();
                    pr["closed_at"] = "2026-02-02T10:00:00Z".into();
                    pr["updated_at"] = "2026-02-02T10:00:00Z".into();
                }
            }
        }
    }
    resp
}

async fn list_files(
    State(inner): State<Arc<Mutex<Inner>>>,
    UrlPath((owner, repo, number)): UrlPath<(String, String, i64)>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    files_page(&inner, &owner, &repo, number, &q, &headers).await
}

async fn list_files_by_id(
    State(inner): State<Arc<Mutex<Inner>>>,
    UrlPath((id, number)): UrlPath<(i64, i64)>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    match by_id(&inner, id) {
        Some((owner, repo)) => files_page(&inner, &owner, &repo, number, &q, &headers).await,
        None => not_found(),
    }
}

/// A page of a PR's files. Logged as `/repos/{owner}/{repo}/pulls/{n}/files?page=N`.
async fn files_page(
    inner: &Arc<Mutex<Inner>>,
    owner: &str,
    repo: &str,
    number: i64,
    q: &BTreeMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/pulls/{number}/files");
    let key = repo_key(owner, repo);
    let (page, per_page) = page_query(q);
    let log_path = format!("{path}?page={page}");
    answer(inner, log_path, headers, |g, auth| {
        if g.faults.deleted.contains(&number) {
            return Err(StatusCode::NOT_FOUND);
        }
        let r = visible(g, &key, auth)?;
        let files: Vec<&Value> = r
            .files
            .get(&number)
            .ok_or(StatusCode::NOT_FOUND)?
            .iter()
            .collect();
        let id = g.id_of(&key).unwrap_or(0);
        Ok(paginate(
            g.faults.link_origin.as_deref().unwrap_or(&g.base),
            &format!("/repositories/{id}/pulls/{number}/files"),
            "",
            &files,
            page,
            per_page,
        ))
    })
    .await
}

fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &serde_json::json!({"message": "Not Found"}),
        &HeaderMap::new(),
    )
}

async fn rate_limit(State(inner): State<Arc<Mutex<Inner>>>) -> Response {
    let g = inner.lock().unwrap();
    json_response(
        StatusCode::OK,
        &serde_json::json!({"resources": {"core": {"limit": g.rate_limit, "remaining": g.remaining, "reset": g.reset_at}}}),
        &HeaderMap::new(),
    )
}

fn auth_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Records a write and answers it; `produce` sees the state and the auth header.
fn write(
    inner: &Arc<Mutex<Inner>>,
    method: &str,
    path: String,
    headers: &HeaderMap,
    body: Value,
    produce: impl FnOnce(&mut Inner, Option<&str>, &Value) -> (StatusCode, Value),
) -> Response {
    let at = Instant::now();
    let auth = auth_of(headers);
    let mut g = inner.lock().unwrap();
    g.requests += 1;
    let (status, answer) = produce(&mut g, auth.as_deref(), &body);
    g.app.writes.push(Write {
        method: method.into(),
        path,
        auth,
        body,
        status: status.as_u16(),
        at,
    });
    json_response(status, &answer, &HeaderMap::new())
}

fn is_installation_token(auth: Option<&str>) -> bool {
    auth.is_some_and(|a| a.starts_with("Bearer ghs_"))
}

fn not_app() -> (StatusCode, Value) {
    (
        StatusCode::FORBIDDEN,
        serde_json::json!({"message": "You must authenticate via a GitHub App."}),
    )
}

/// `POST /app/installations/{id}/access_tokens`: needs the App JWT (three dot-separated parts).
async fn issue_installation_token(
    State(inner): State<Arc<Mutex<Inner>>>,
    UrlPath(id): UrlPath<i64>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = format!("/app/installations/{id}/access_tokens");
    write(&inner, "POST", path, &headers, body, |g, auth, _| {
        let jwt = auth.and_then(|a| a.strip_prefix("Bearer ")).unwrap_or("");
        if jwt.split('.').count() != 3 {
            return (
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"message": "A JSON web token could not be decoded"}),
            );
        }
        g.app.tokens_issued += 1;
        let expires = chrono::Utc::now() + chrono::Duration::seconds(g.app.token_ttl_secs);
        (
            StatusCode::CREATED,
            serde_json::json!({
                "token": format!("ghs_fake_{id}_{}", g.app.tokens_issued),
                "expires_at": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "permissions": {"checks": "write", "pull_requests": "read"},
                "repository_selection": "selected"
            }),
        )
    })
}

async fn create_check_run(
    State(inner): State<Arc<Mutex<Inner>>>,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/check-runs");
    write(&inner, "POST", path, &headers, body, |g, auth, body| {
        if !is_installation_token(auth) {
            return not_app();
        }
        let id = g.app.next_check_run_id;
        g.app.next_check_run_id += 1;
        let mut run = body.clone();
        run["id"] = serde_json::json!(id);
        g.app.check_runs.insert(id, run.clone());
        (StatusCode::CREATED, run)
    })
}

async fn update_check_run(
    State(inner): State<Arc<Mutex<Inner>>>,
    UrlPath((owner, repo, id)): UrlPath<(String, String, i64)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/check-runs/{id}");
    write(&inner, "PATCH", path, &headers, body, |g, auth, body| {
        if !is_installation_token(auth) {
            return not_app();
        }
        let Some(run) = g.app.check_runs.get_mut(&id) else {
            return (
                StatusCode::NOT_FOUND,
                serde_json::json!({"message": "Not Found"}),
            );
        };
        if let (Some(r), Some(b)) = (run.as_object_mut(), body.as_object()) {
            for (k, v) in b {
                r.insert(k.clone(), v.clone());
            }
        }
        (StatusCode::OK, run.clone())
    })
}

fn not_found_answer() -> (StatusCode, Value) {
    (
        StatusCode::NOT_FOUND,
        serde_json::json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}),
    )
}

fn iso_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A label object as GitHub returns it.
fn label_object(name: &str) -> Value {
    serde_json::json!({
        "id": etag_of(name.as_bytes()).len() as i64 * 1000 + name.len() as i64,
        "node_id": format!("LA_{name}"),
        "url": format!("https://api.github.com/labels/{name}"),
        "name": name,
        "color": "ededed",
        "default": false,
        "description": null
    })
}

fn label_names(v: &Value) -> Vec<String> {
    v["labels"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The labels of PR or issue `number`, mutably, when the fake knows it.
fn labels_of(r: &mut FakeRepo, number: i64) -> Option<&mut Value> {
    if r.pull(number).is_some() {
        return r.pull_mut(number);
    }
    r.issues.get_mut(&number)
}

/// `POST /repos/{owner}/{repo}/issues/{number}/labels`: adds labels and answers 200 with every
/// label the issue has now. (For a PR the fake does not know, it answers with the labels sent.)
async fn add_labels(
    State(inner): State<Arc<Mutex<Inner>>>,
    UrlPath((owner, repo, number)): UrlPath<(String, String, i64)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/issues/{number}/labels");
    let key = repo_key(&owner, &repo);
    write(&inner, "POST", path, &headers, body, |g, auth, body| {
        if !is_installation_token(auth) {
            return not_app();
        }
        let wanted: Vec<String> = body["labels"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|l| l.as_str().map(str::to_string))
            .collect();
        let Some(item) = g.repos.get_mut(&key).and_then(|r| labels_of(r, number)) else {
            return (
                StatusCode::OK,
                Value::Array(wanted.iter().map(|l| label_object(l)).collect()),
            );
        };
        let mut names = label_names(item);
        for w in wanted {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(&w)) {
                names.push(w);
            }
        }
        let objects: Vec<Value> = names.iter().map(|l| label_object(l)).collect();
        item["labels"] = Value::Array(objects.clone());
        item["updated_at"] = Value::String(iso_now());
        (StatusCode::OK, Value::Array(objects))
    })
}

/// `DELETE /repos/{owner}/{repo}/issues/{number}/labels/{name}`: 200 with the labels left, or
/// 404 "Label does not exist" when the issue does not carry it.
async fn remove_label(
    State(inner): State<Arc<Mutex<Inner>>>,
    UrlPath((owner, repo, number, name)): UrlPath<(String, String, i64, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/issues/{number}/labels/{name}");
    let key = repo_key(&owner, &repo);
    write(
        &inner,
        "DELETE",
        path,
        &headers,
        Value::Null,
        |g, auth, _| {
            if !is_installation_token(auth) {
                return not_app();
            }
            let Some(item) = g.repos.get_mut(&key).and_then(|r| labels_of(r, number)) else {
                return not_found_answer();
            };
            let names = label_names(item);
            if !names.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
                return (
                    StatusCode::NOT_FOUND,
                    serde_json::json!({"message": "Label does not exist", "documentation_url": "https://docs.github.com/rest/issues/labels#remove-a-label-from-an-issue", "status": "404"}),
                );
            }
            let objects: Vec<Value> = names
                .iter()
                .filter(|n| !n.eq_ignore_ascii_case(&name))
                .map(|l| label_object(l))
                .collect();
            item["labels"] = Value::Array(objects.clone());
            item["updated_at"] = Value::String(iso_now());
            (StatusCode::OK, Value::Array(objects))
        },
    )
}

/// `POST /repos/{owner}/{repo}/issues/{number}/comments`: 201 with the comment. Comments are
/// kept, so a later listing shows them.
async fn add_comment(
    State(inner): State<Arc<Mutex<Inner>>>,
    UrlPath((owner, repo, number)): UrlPath<(String, String, i64)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/issues/{number}/comments");
    let key = repo_key(&owner, &repo);
    write(&inner, "POST", path, &headers, body, |g, auth, body| {
        if !is_installation_token(auth) {
            return not_app();
        }
        if body["body"].as_str().is_none_or(str::is_empty) {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                serde_json::json!({"message": "Validation Failed", "errors": [{"resource": "IssueComment", "code": "missing_field", "field": "body"}]}),
            );
        }
        g.app.next_comment_id += 1;
        let id = g.app.next_comment_id;
        let comment = serde_json::json!({
            "id": id,
            "node_id": format!("IC_{id}"),
            "url": format!("https://api.github.com/repos/{owner}/{repo}/issues/comments/{id}"),
            "html_url": format!("https://github.com/{owner}/{repo}/pull/{number}#issuecomment-{id}"),
            "body": body["body"],
            "user": {"login": "clawtriage[bot]", "type": "Bot"},
            "created_at": iso_now(),
            "updated_at": iso_now(),
            "author_association": "NONE"
        });
        let r = g.repos.entry(key.clone()).or_default();
        r.comments.entry(number).or_default().push(comment.clone());
        (StatusCode::CREATED, comment)
    })
}

/// `GET /repos/{owner}/{repo}/issues/{number}/comments`, oldest first, paginated.
async fn list_comments(
    State(inner): State<Arc<Mutex<Inner>>>,
    UrlPath((owner, repo, number)): UrlPath<(String, String, i64)>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/issues/{number}/comments");
    let key = repo_key(&owner, &repo);
    let (page, per_page) = page_query(&q);
    answer(
        &inner,
        format!("{path}?page={page}"),
        &headers,
        |g, auth| {
            let r = visible(g, &key, auth)?;
            let items: Vec<&Value> = r.comments.get(&number).into_iter().flatten().collect();
            Ok(paginate(&g.base, &path, "", &items, page, per_page))
        },
    )
    .await
}

/// The full PR object: the list item plus `merged`.
fn full_pull(p: &Value) -> Value {
    let mut v = p.clone();
    v["merged"] = Value::Bool(!p["merged_at"].is_null());
    v
}

/// `GET /repos/{owner}/{repo}/pulls/{number}`.
async fn get_pull(
    State(inner): State<Arc<Mutex<Inner>>>,
    UrlPath((owner, repo, number)): UrlPath<(String, String, i64)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/pulls/{number}");
    let key = repo_key(&owner, &repo);
    answer(&inner, path, &headers, |g, auth| {
        let r = visible(g, &key, auth)?;
        let p = r.pull(number).ok_or(StatusCode::NOT_FOUND)?;
        Ok((full_pull(p), None))
    })
    .await
}

/// `PATCH /repos/{owner}/{repo}/pulls/{number}`: `state` open | closed (422 otherwise), title,
/// body.
async fn update_pull(
    State(inner): State<Arc<Mutex<Inner>>>,
    UrlPath((owner, repo, number)): UrlPath<(String, String, i64)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/pulls/{number}");
    let key = repo_key(&owner, &repo);
    write(&inner, "PATCH", path, &headers, body, |g, auth, body| {
        if !is_installation_token(auth) {
            return not_app();
        }
        let Some(p) = g.repos.get_mut(&key).and_then(|r| r.pull_mut(number)) else {
            return not_found_answer();
        };
        if let Some(st) = body.get("state") {
            match st.as_str() {
                Some("closed") => {
                    if p["state"] == "open" {
                        p["closed_at"] = Value::String(iso_now());
                    }
                    p["state"] = Value::String("closed".into());
                }
                Some("open") => {
                    p["state"] = Value::String("open".into());
                    p["closed_at"] = Value::Null;
                }
                _ => {
                    return (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        serde_json::json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "invalid", "field": "state"}]}),
                    );
                }
            }
        }
        for f in ["title", "body"] {
            if let Some(v) = body.get(f) {
                p[f] = v.clone();
            }
        }
        p["updated_at"] = Value::String(iso_now());
        (StatusCode::OK, full_pull(p))
    })
}

/// An issue as GitHub lists it; PRs carry a `pull_request` key.
fn pull_as_issue(p: &Value) -> Value {
    serde_json::json!({
        "number": p["number"], "title": p["title"], "body": p["body"], "state": p["state"],
        "labels": p["labels"], "html_url": p["html_url"], "user": p["user"],
        "created_at": p["created_at"], "updated_at": p["updated_at"],
        "pull_request": {"url": p["url"], "html_url": p["html_url"]}
    })
}

/// `GET /repos/{owner}/{repo}/issues?state=&labels=` (PRs included, as on GitHub), newest first.
async fn list_issues(
    State(inner): State<Arc<Mutex<Inner>>>,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/issues");
    let key = repo_key(&owner, &repo);
    let (page, per_page) = page_query(&q);
    let state = q.get("state").cloned().unwrap_or_else(|| "open".into());
    let labels: Vec<String> = q
        .get("labels")
        .map(|l| {
            l.split(',')
                .map(|x| x.trim().to_lowercase())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    answer(
        &inner,
        format!("{path}?page={page}"),
        &headers,
        |g, auth| {
            let r = visible(g, &key, auth)?;
            let mut items: Vec<Value> = r
                .issues
                .values()
                .cloned()
                .chain(r.pulls.iter().map(pull_as_issue))
                .filter(|i| state == "all" || i["state"] == state.as_str())
                .filter(|i| {
                    let have: Vec<String> =
                        label_names(i).iter().map(|l| l.to_lowercase()).collect();
                    labels.iter().all(|l| have.contains(l))
                })
                .collect();
            items.sort_by_key(|i| std::cmp::Reverse(i["number"].as_i64().unwrap_or(0)));
            let extra = format!("state={state}&");
            let items: Vec<&Value> = items.iter().collect();
            Ok(paginate(&g.base, &path, &extra, &items, page, per_page))
        },
    )
    .await
}

/// `POST /repos/{owner}/{repo}/issues`: 201 with the issue (labels created as needed).
async fn create_issue(
    State(inner): State<Arc<Mutex<Inner>>>,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/issues");
    let key = repo_key(&owner, &repo);
    write(&inner, "POST", path, &headers, body, |g, auth, body| {
        if !is_installation_token(auth) {
            return not_app();
        }
        if body["title"].as_str().is_none_or(str::is_empty) {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                serde_json::json!({"message": "Validation Failed", "errors": [{"resource": "Issue", "code": "missing_field", "field": "title"}]}),
            );
        }
        let Some(r) = g.repos.get_mut(&key) else {
            return not_found_answer();
        };
        let number = r.next_number();
        let labels: Vec<Value> = body["labels"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|l| l.as_str().map(label_object))
            .collect();
        let issue = serde_json::json!({
            "number": number,
            "title": body["title"],
            "body": body["body"],
            "state": "open",
            "labels": labels,
            "html_url": format!("https://github.com/{owner}/{repo}/issues/{number}"),
            "user": {"login": "clawtriage[bot]", "type": "Bot"},
            "created_at": iso_now(),
            "updated_at": iso_now()
        });
        r.issues.insert(number, issue.clone());
        (StatusCode::CREATED, issue)
    })
}

/// `GET /repos/{owner}/{repo}/issues/{number}` (a PR answers as an issue, as on GitHub).
async fn get_issue(
    State(inner): State<Arc<Mutex<Inner>>>,
    UrlPath((owner, repo, number)): UrlPath<(String, String, i64)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/issues/{number}");
    let key = repo_key(&owner, &repo);
    answer(&inner, path, &headers, |g, auth| {
        let r = visible(g, &key, auth)?;
        if let Some(i) = r.issues.get(&number) {
            return Ok((i.clone(), None));
        }
        r.pull(number)
            .map(|p| (pull_as_issue(p), None))
            .ok_or(StatusCode::NOT_FOUND)
    })
    .await
}

/// `PATCH /repos/{owner}/{repo}/issues/{number}`: title, body, state.
async fn update_issue(
    State(inner): State<Arc<Mutex<Inner>>>,
    UrlPath((owner, repo, number)): UrlPath<(String, String, i64)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/issues/{number}");
    let key = repo_key(&owner, &repo);
    write(&inner, "PATCH", path, &headers, body, |g, auth, body| {
        if !is_installation_token(auth) {
            return not_app();
        }
        let Some(i) = g
            .repos
            .get_mut(&key)
            .and_then(|r| r.issues.get_mut(&number))
        else {
            return not_found_answer();
        };
        for f in ["title", "body", "state"] {
            if let Some(v) = body.get(f) {
                i[f] = v.clone();
            }
        }
        i["updated_at"] = Value::String(iso_now());
        (StatusCode::OK, i.clone())
    })
}

/// `GET /repos/{owner}/{repo}/contents/{path}?ref=`: a file of the default branch, base64 in
/// lines of 60 characters as GitHub sends it, with an ETag (304 on revalidation).
async fn get_contents(
    State(inner): State<Arc<Mutex<Inner>>>,
    UrlPath((owner, repo, file)): UrlPath<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    use base64::Engine;
    let path = format!("/repos/{owner}/{repo}/contents/{file}");
    let key = repo_key(&owner, &repo);
    answer(&inner, path, &headers, |g, auth| {
        let r = visible(g, &key, auth)?;
        let text = r.contents.get(&file).ok_or(StatusCode::NOT_FOUND)?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
        let lines: Vec<String> = encoded
            .as_bytes()
            .chunks(60)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        let sha = {
            use sha2::Digest;
            hex::encode(&sha2::Sha256::digest(format!("blob {}\0{text}", text.len()))[..20])
        };
        let name = file.rsplit('/').next().unwrap_or(&file).to_string();
        Ok((
            serde_json::json!({
                "type": "file", "encoding": "base64", "size": text.len(), "name": name,
                "path": file, "content": format!("{}\n", lines.join("\n")), "sha": sha,
                "url": format!("{}/repos/{owner}/{repo}/contents/{file}", g.base),
                "html_url": format!("https://github.com/{owner}/{repo}/blob/{}/{file}", r.default_branch),
                "download_url": format!("https://raw.githubusercontent.com/{owner}/{repo}/{}/{file}", r.default_branch),
            }),
            None,
        ))
    })
    .await
}

impl FakeGithub {
    /// Puts a file on a repository's default branch (None removes it).
    pub fn set_file(&self, owner: &str, repo: &str, path: &str, text: Option<&str>) {
        self.with(|g| {
            let r = g.repos.entry(repo_key(owner, repo)).or_default();
            match text {
                Some(t) => r.contents.insert(path.to_string(), t.to_string()),
                None => r.contents.remove(path),
            };
        });
    }

    /// A PR's item as it stands (after closes and label changes).
    pub fn pull(&self, owner: &str, repo: &str, number: i64) -> Option<Value> {
        self.with(|g| g.repos.get(&repo_key(owner, repo))?.pull(number).cloned())
    }

    /// Changes a PR's item (a new head, a close by hand, ...).
    pub fn edit_pull(&self, owner: &str, repo: &str, number: i64, f: impl FnOnce(&mut Value)) {
        self.with(|g| {
            if let Some(p) = g
                .repos
                .get_mut(&repo_key(owner, repo))
                .and_then(|r| r.pull_mut(number))
            {
                f(p);
            }
        })
    }

    /// Comments of an issue or PR.
    pub fn comments(&self, owner: &str, repo: &str, number: i64) -> Vec<Value> {
        self.with(|g| {
            g.repos
                .get(&repo_key(owner, repo))
                .and_then(|r| r.comments.get(&number).cloned())
                .unwrap_or_default()
        })
    }

    /// Issues that are not PRs.
    pub fn issues(&self, owner: &str, repo: &str) -> Vec<Value> {
        self.with(|g| {
            g.repos
                .get(&repo_key(owner, repo))
                .map(|r| r.issues.values().cloned().collect())
                .unwrap_or_default()
        })
    }

    /// Writes (POST/PATCH/DELETE) sent so far.
    pub fn writes(&self) -> Vec<Write> {
        self.inner.lock().unwrap().app.writes.clone()
    }

    /// Check runs as they stand (id → latest body).
    pub fn check_runs(&self) -> BTreeMap<i64, Value> {
        self.inner.lock().unwrap().app.check_runs.clone()
    }
}
