//! A fake GitHub REST API on loopback, faithful to what the appliance relies on: `Link`
//! pagination with `per_page` whose next links point at `/repositories/{id}/...` (as GitHub's
//! do), private repositories that answer 404 to any request without their installation token,
//! `x-ratelimit-*` headers and a primary budget that resets,
//! `ETag` / `If-None-Match` → 304 (free of budget), secondary limits (403 or 429 + `retry-after`),
//! injected 5xx, 404 for deleted PRs, and requests that hang until released. Every request is
//! logged so tests can count API calls by kind.

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
use axum::routing::{get, patch, post};
use serde_json::Value;

/// One repository's data.
#[derive(Default, Clone)]
pub struct FakeRepo {
    pub default_branch: String,
    /// `/pulls` items, in creation order (the fake sorts as asked).
    pub pulls: Vec<Value>,
    /// `/pulls/{n}/files` per PR.
    pub files: BTreeMap<i64, Vec<Value>>,
    /// A private repository: every request about it needs an installation token (`ghs_`);
    /// without one GitHub answers 404.
    pub private: bool,
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

/// A write (POST/PATCH) the appliance sent: App tokens, check runs, labels, comments.
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
            .route("/repos/{owner}/{repo}/pulls/{number}", get(get_pull))
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
                "/repos/{owner}/{repo}/issues/{number}/comments",
                post(add_comment),
            )
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
        "merged_at": null
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

/// `GET /repos/{owner}/{repo}/pulls/{number}`: the PR in any state.
async fn get_pull(
    State(inner): State<Arc<Mutex<Inner>>>,
    UrlPath((owner, repo, number)): UrlPath<(String, String, i64)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/pulls/{number}");
    let key = repo_key(&owner, &repo);
    answer(&inner, path, &headers, |g, auth| {
        let r = visible(g, &key, auth)?;
        let pr = r
            .pulls
            .iter()
            .find(|p| p["number"].as_i64() == Some(number))
            .ok_or(StatusCode::NOT_FOUND)?;
        Ok((pr.clone(), None))
    })
    .await
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

async fn add_labels(
    State(inner): State<Arc<Mutex<Inner>>>,
    UrlPath((owner, repo, number)): UrlPath<(String, String, i64)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/issues/{number}/labels");
    write(&inner, "POST", path, &headers, body, |_, auth, body| {
        if !is_installation_token(auth) {
            return not_app();
        }
        let labels: Vec<Value> = body["labels"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|l| serde_json::json!({"name": l}))
            .collect();
        (StatusCode::OK, Value::Array(labels))
    })
}

async fn add_comment(
    State(inner): State<Arc<Mutex<Inner>>>,
    UrlPath((owner, repo, number)): UrlPath<(String, String, i64)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/issues/{number}/comments");
    write(&inner, "POST", path, &headers, body, |_, auth, body| {
        if !is_installation_token(auth) {
            return not_app();
        }
        (
            StatusCode::CREATED,
            serde_json::json!({"id": 1, "body": body["body"]}),
        )
    })
}

impl FakeGithub {
    /// Writes (POST/PATCH) sent so far.
    pub fn writes(&self) -> Vec<Write> {
        self.inner.lock().unwrap().app.writes.clone()
    }

    /// Check runs as they stand (id → latest body).
    pub fn check_runs(&self) -> BTreeMap<i64, Value> {
        self.inner.lock().unwrap().app.check_runs.clone()
    }
}
