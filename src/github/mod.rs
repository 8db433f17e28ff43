//! GitHub REST client: one shared connection pool, `Link` pagination, conditional requests
//! (ETag / 304, remembered through [`ClientMemory`]), primary and secondary rate limits, bounded retries of
//! 5xx and transport errors. Tokens are never logged.

pub mod app;
pub mod checks;
pub mod issues;
pub mod types;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::header::{ACCEPT, AUTHORIZATION, ETAG, HeaderMap, IF_NONE_MATCH, LINK, USER_AGENT};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};

pub use app::AppAuth;
pub use types::{FileEntry, PullSummary, RepoInfo};

/// A response body remembered for conditional requests: its `ETag`, the body and its `Link`.
pub type CachedBody = (String, Vec<u8>, Option<String>);

/// What the client remembers between requests, kept by whoever builds it (the appliance keeps it
/// in Postgres, see `server.rs`): response bodies by URL for `ETag` revalidation, and which App
/// installation serves a repository. Errors are the keeper's, in words.
pub trait ClientMemory: Send + Sync {
    /// The remembered `ETag`, body and `Link` header of `url`.
    fn cached<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<Option<CachedBody>, String>>;
    /// Remembers the `ETag`, body and `Link` header of `url`.
    fn remember<'a>(
        &'a self,
        url: &'a str,
        etag: &'a str,
        body: &'a [u8],
        link: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// The App installation recorded for `owner/repo` (None: not installed, or inactive).
    fn installation_of<'a>(
        &'a self,
        owner: &'a str,
        repo: &'a str,
    ) -> BoxFuture<'a, Result<Option<i64>, String>>;
}

/// GitHub's cap on the files the REST API lists for one PR.
pub const MAX_PR_FILES: usize = 3000;

/// Errors at the GitHub edge.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// 404: the repository or PR is gone (or private).
    #[error("not found on GitHub: {0}")]
    NotFound(String),
    /// 401 or a 403 that is not a rate limit.
    #[error("GitHub refused the request ({status}): {message}")]
    Forbidden {
        /// HTTP status.
        status: u16,
        /// GitHub's message.
        message: String,
    },
    /// Retries ran out on 5xx, secondary limits or transport errors.
    #[error("GitHub unavailable after {attempts} attempts: {last}")]
    Unavailable {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The primary rate limit is exhausted and resets later than we are willing to wait.
    #[error("GitHub rate limit exhausted until {reset_at}")]
    RateLimited {
        /// Unix time of the reset.
        reset_at: i64,
    },
    /// Another 4xx.
    #[error("GitHub answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// GitHub's message.
        message: String,
    },
    /// The body was not the JSON we expected.
    #[error("unexpected response from GitHub: {0}")]
    Decode(String),
    /// The ETag cache could not be read or written.
    #[error("cache: {0}")]
    Cache(String),
    /// GitHub App authentication could not be prepared (JWT signing, installation lookup).
    #[error("GitHub App authentication: {0}")]
    Auth(String),
}

impl GithubError {
    /// True when a later retry of the whole job may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            GithubError::Unavailable { .. }
                | GithubError::RateLimited { .. }
                | GithubError::Cache(_)
        )
    }
}

/// Retry and wait bounds of the client.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request for 5xx, secondary limits and transport errors.
    pub max_attempts: u32,
    /// First backoff delay; doubled each attempt, with jitter.
    pub base_delay: Duration,
    /// Largest single backoff delay.
    pub max_delay: Duration,
    /// Longest wait for a primary rate-limit reset before giving up with `RateLimited`.
    pub max_rate_limit_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            max_rate_limit_wait: Duration::from_secs(3600),
        }
    }
}

/// Counters of one unit of work (a scan), shared by the requests it makes.
#[derive(Debug, Default)]
pub struct CallStats {
    /// Requests sent, including retries and 304s.
    pub calls: AtomicU32,
    /// Requests answered 304 Not Modified (they cost no rate limit).
    pub not_modified: AtomicU32,
    /// Last `x-ratelimit-remaining` seen (-1 = unknown).
    pub remaining: AtomicI64,
    /// Last `x-ratelimit-reset` seen (unix seconds, 0 = unknown).
    pub reset: AtomicI64,
    /// Longest rate-limit wait this unit of work accepts, in seconds (0: the client's policy);
    /// a longer one ends the request with [`GithubError::RateLimited`], so that a job never
    /// waits past its own timeout.
    pub max_wait_secs: AtomicU64,
}

impl CallStats {
    /// Fresh counters.
    pub fn new() -> Arc<Self> {
        let s = CallStats::default();
        s.remaining.store(-1, Ordering::Relaxed);
        Arc::new(s)
    }

    /// Fresh counters of work that waits for rate limits at most `max_wait` at a time.
    pub fn bounded(max_wait: Duration) -> Arc<Self> {
        let s = Self::new();
        s.max_wait_secs
            .store(max_wait.as_secs().max(1), Ordering::Relaxed);
        s
    }
}

/// One page of a response.
#[derive(Debug)]
pub struct Page {
    /// JSON body (from the network or, after a 304, from the cache).
    pub body: bytes::Bytes,
    /// URL of the next page, from the `Link` header.
    pub next: Option<String>,
    /// GitHub's HTTP status (304 when the cached body was used).
    pub status: u16,
}

impl Page {
    /// True when GitHub answered 304 and the cached body was used.
    pub fn not_modified(&self) -> bool {
        self.status == 304
    }
}

/// The shared client.
#[derive(Clone)]
pub struct GithubClient {
    http: reqwest::Client,
    api_url: Arc<str>,
    token: Option<SecretString>,
    cache: Option<Arc<dyn ClientMemory>>,
    retry: RetryPolicy,
    /// GitHub App credentials (app and hybrid modes): requests under `/repos/{owner}/{repo}`
    /// of an installed repository use its installation token.
    app: Option<Arc<AppAuth>>,
}

/// How one request authenticates.
#[derive(Clone)]
enum Auth {
    /// An installation token; its id lets a 401 drop it from the cache.
    Installation(i64, SecretString),
    /// A token the caller chose (the App JWT, an explicit installation token).
    Given(SecretString),
    /// GITHUB_TOKEN, or no token at all.
    Client,
}

/// The `rel="next"` URL of a `Link` header.
pub fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let mut pieces = part.split(';');
        let url = pieces.next()?.trim();
        let is_next = pieces.any(|p| {
            let p = p.trim();
            p == "rel=\"next\"" || p == "rel=next"
        });
        (is_next && url.starts_with('<') && url.ends_with('>'))
            .then(|| url[1..url.len() - 1].to_string())
    })
}

fn header_i64(h: &HeaderMap, name: &str) -> Option<i64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

impl GithubClient {
    /// A client for `api_url`; `token` is optional in public mode; `cache` remembers ETags
    /// (None disables conditional requests).
    pub fn new(
        api_url: &str,
        token: Option<SecretString>,
        cache: Option<Arc<dyn ClientMemory>>,
        retry: RetryPolicy,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| format!("could not build the HTTP client: {e}"))?;
        Ok(GithubClient {
            http,
            api_url: Arc::from(api_url.trim_end_matches('/')),
            token,
            cache,
            retry,
            app: None,
        })
    }

    /// Whether requests are authenticated (60 requests/hour without a token).
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The API base URL.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    async fn cached(&self, url: &str) -> Result<Option<CachedBody>, GithubError> {
        let Some(memory) = &self.cache else {
            return Ok(None);
        };
        memory.cached(url).await.map_err(GithubError::Cache)
    }

    /// GET one URL (absolute, or a path under the API base) with retries, rate-limit handling
    /// and, when `conditional`, ETag revalidation. `token` overrides the client's token (App
    /// installation tokens).
    pub async fn get(
        &self,
        url: &str,
        conditional: bool,
        token: Option<&SecretString>,
        stats: &CallStats,
    ) -> Result<Page, GithubError> {
        self.send(Method::GET, url, None, conditional, token, stats)
            .await
    }

    /// POST a JSON body, with the retry and rate-limit handling of [`GithubClient::get`].
    pub async fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
        token: Option<&SecretString>,
        stats: &CallStats,
    ) -> Result<Page, GithubError> {
        self.send(Method::POST, url, Some(body), false, token, stats)
            .await
    }

    /// PATCH a JSON body, with the retry and rate-limit handling of [`GithubClient::get`].
    pub async fn patch_json(
        &self,
        url: &str,
        body: &serde_json::Value,
        token: Option<&SecretString>,
        stats: &CallStats,
    ) -> Result<Page, GithubError> {
        self.send(Method::PATCH, url, Some(body), false, token, stats)
            .await
    }

    /// The absolute form of `url` (a path under the API base, or an absolute URL), refused when
    /// it leaves the API base: tokens are only ever sent there (a `Link: next` pointing at
    /// another host, or at `http://` while the API is `https://`, must not receive them).
    pub fn absolute(&self, url: &str) -> Result<String, GithubError> {
        // A path must start with `/`: `@host/x` appended to the base would name another host.
        if url.starts_with('/') {
            return Ok(format!("{}{}", self.api_url, url));
        }
        if url.starts_with(&format!("{}/", self.api_url)) {
            Ok(url.to_string())
        } else {
            Err(GithubError::Decode(format!(
                "refusing to follow a link outside {} ({})",
                self.api_url,
                url.split(['?', '#']).next().unwrap_or_default()
            )))
        }
    }

    /// How a request to `url` authenticates: the given token; else, for a repository with an
    /// installation, its installation token; else the client's.
    async fn resolve_auth(
        &self,
        url: &str,
        token: Option<&SecretString>,
    ) -> Result<Auth, GithubError> {
        if let Some(t) = token {
            return Ok(Auth::Given(t.clone()));
        }
        // Boxed: fetching an installation token is itself a request through here.
        Ok(
            match Box::pin(self.installation_token_for_url(url)).await? {
                Some((id, t)) => Auth::Installation(id, t),
                None => Auth::Client,
            },
        )
    }

    /// DELETE, with the retry and rate-limit handling of [`GithubClient::get`].
    pub async fn delete(
        &self,
        url: &str,
        token: Option<&SecretString>,
        stats: &CallStats,
    ) -> Result<Page, GithubError> {
        self.send(Method::DELETE, url, None, false, token, stats)
            .await
    }

    /// One request with retries (5xx, transport errors, secondary limits), primary rate-limit
    /// waits and, for a conditional GET, ETag revalidation. Without an explicit `token`, a
    /// request about an installed repository uses its installation token, else the client's.
    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
        conditional: bool,
        token: Option<&SecretString>,
        stats: &CallStats,
    ) -> Result<Page, GithubError> {
        let url = self.absolute(url)?;
        let auth = self.resolve_auth(&url, token).await?;
        self.send_as(method, &url, body, conditional, &auth, stats)
            .await
    }

    /// [`GithubClient::send`] with the authentication decided (a paginated listing decides it
    /// once, from its first URL, and keeps it for every page).
    async fn send_as(
        &self,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
        conditional: bool,
        auth: &Auth,
        stats: &CallStats,
    ) -> Result<Page, GithubError> {
        let url = self.absolute(url)?;
        let conditional = conditional && method == Method::GET;
        let cached = if conditional {
            self.cached(&url).await?
        } else {
            None
        };
        let installation = match auth {
            Auth::Installation(id, _) => Some(*id),
            _ => None,
        };
        let token = match auth {
            Auth::Installation(_, t) | Auth::Given(t) => Some(t),
            Auth::Client => self.token.as_ref(),
        };
        let credential = match auth {
            Auth::Installation(..) => "installation",
            Auth::Given(_) => "token",
            Auth::Client if self.token.is_some() => "token",
            Auth::Client => "anonymous",
        };
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header(ACCEPT, "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28")
                .header(USER_AGENT, "clawtriage");
            if let Some(t) = token {
                req = req.header(AUTHORIZATION, format!("Bearer {}", t.expose_secret()));
            }
            if let Some((etag, _, _)) = &cached {
                req = req.header(IF_NONE_MATCH, etag.as_str());
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            stats.calls.fetch_add(1, Ordering::Relaxed);
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    crate::metrics::github_call(method.as_str(), None, credential, None);
                    let msg = format!("transport error: {}", e.without_url());
                    self.backoff_or_fail(attempt, &msg, None).await?;
                    continue;
                }
            };
            let status = resp.status();
            let headers = resp.headers().clone();
            let remaining = header_i64(&headers, "x-ratelimit-remaining");
            crate::metrics::github_call(
                method.as_str(),
                Some(status.as_u16()),
                credential,
                remaining,
            );
            if let Some(rem) = remaining {
                stats.remaining.store(rem, Ordering::Relaxed);
            }
            if let Some(reset) = header_i64(&headers, "x-ratelimit-reset") {
                stats.reset.store(reset, Ordering::Relaxed);
            }
            let path = reqwest::Url::parse(&url)
                .map(|u| u.path().to_string())
                .unwrap_or_default();
            tracing::debug!(method = %method, path = %path, status = status.as_u16(),
                remaining = stats.remaining.load(Ordering::Relaxed), "github request");

            if status == StatusCode::NOT_MODIFIED {
                if let Some((_, body, link)) = cached {
                    stats.not_modified.fetch_add(1, Ordering::Relaxed);
                    return Ok(Page {
                        body: body.into(),
                        next: link.as_deref().and_then(next_link),
                        status: 304,
                    });
                }
                return Err(GithubError::Decode("304 without a cached body".into()));
            }
            if status.is_success() {
                let link = headers
                    .get(LINK)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let etag = headers
                    .get(ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let body = match resp.bytes().await {
                    Ok(b) => b,
                    Err(e) => {
                        let msg = format!("body read failed: {}", e.without_url());
                        self.backoff_or_fail(attempt, &msg, None).await?;
                        continue;
                    }
                };
                if let (Some(memory), Some(etag), true) = (&self.cache, etag, conditional) {
                    memory
                        .remember(&url, &etag, &body, link.as_deref())
                        .await
                        .map_err(GithubError::Cache)?;
                }
                self.pace(stats).await?;
                return Ok(Page {
                    next: link.as_deref().and_then(next_link),
                    body,
                    status: status.as_u16(),
                });
            }
            let message = resp
                .text()
                .await
                .ok()
                .and_then(|t| {
                    serde_json::from_str::<serde_json::Value>(&t)
                        .ok()
                        .and_then(|v| {
                            v.get("message")
                                .and_then(|m| m.as_str())
                                .map(str::to_string)
                        })
                        .or(Some(t.chars().take(200).collect()))
                })
                .unwrap_or_default();
            let retry_after = header_i64(&headers, "retry-after");
            let remaining = header_i64(&headers, "x-ratelimit-remaining");
            match status.as_u16() {
                404 | 410 => return Err(GithubError::NotFound(path)),
                403 | 429 => {
                    if let Some(secs) = retry_after {
                        // Secondary rate limit: GitHub says how long to wait.
                        let wait = Duration::from_secs(secs.clamp(1, 900) as u64);
                        if wait > self.max_wait(stats) {
                            return Err(GithubError::RateLimited {
                                reset_at: chrono::Utc::now().timestamp() + wait.as_secs() as i64,
                            });
                        }
                        tracing::warn!(path = %path, wait_secs = wait.as_secs(), "secondary rate limit");
                        if attempt >= self.retry.max_attempts {
                            return Err(GithubError::Unavailable {
                                attempts: attempt,
                                last: format!("{status}: {message}"),
                            });
                        }
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    if remaining == Some(0) {
                        self.wait_for_reset(stats).await?;
                        continue;
                    }
                    if status.as_u16() == 429 {
                        self.backoff_or_fail(attempt, &format!("429: {message}"), None)
                            .await?;
                        continue;
                    }
                    return Err(GithubError::Forbidden {
                        status: 403,
                        message,
                    });
                }
                401 => {
                    if let Some(id) = installation {
                        // A revoked or expired installation token: a retry of the job fetches
                        // a new one, so this is worth retrying.
                        self.forget_installation_token(id);
                        return Err(GithubError::Unavailable {
                            attempts: attempt,
                            last: format!("installation token refused (401): {message}"),
                        });
                    }
                    return Err(GithubError::Forbidden {
                        status: 401,
                        message,
                    });
                }
                s if s >= 500 => {
                    self.backoff_or_fail(attempt, &format!("{status}: {message}"), retry_after)
                        .await?;
                    continue;
                }
                s => return Err(GithubError::Status { status: s, message }),
            }
        }
    }

    async fn backoff_or_fail(
        &self,
        attempt: u32,
        last: &str,
        retry_after: Option<i64>,
    ) -> Result<(), GithubError> {
        if attempt >= self.retry.max_attempts {
            return Err(GithubError::Unavailable {
                attempts: attempt,
                last: last.to_string(),
            });
        }
        let exp = self
            .retry
            .base_delay
            .saturating_mul(1u32 << (attempt - 1).min(16))
            .min(self.retry.max_delay);
        // Full jitter in [exp/2, exp].
        let jittered = exp / 2 + exp.mul_f64(fastrand::f64() / 2.0);
        let wait = retry_after
            .map(|s| Duration::from_secs(s.clamp(0, 900) as u64))
            .unwrap_or(jittered);
        tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, error = %last, "github request failed; retrying");
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// Sleeps until the primary rate limit resets, if it resets soon enough.
    async fn wait_for_reset(&self, stats: &CallStats) -> Result<(), GithubError> {
        let reset = stats.reset.load(Ordering::Relaxed);
        let now = chrono::Utc::now().timestamp();
        let wait = (reset - now).max(0) as u64 + 1;
        if reset == 0 || Duration::from_secs(wait) > self.max_wait(stats) {
            return Err(GithubError::RateLimited { reset_at: reset });
        }
        tracing::warn!(
            wait_secs = wait,
            "primary rate limit exhausted; waiting for reset"
        );
        tokio::time::sleep(Duration::from_secs(wait)).await;
        Ok(())
    }

    /// The longest rate-limit wait allowed for the work `stats` counts.
    fn max_wait(&self, stats: &CallStats) -> Duration {
        match stats.max_wait_secs.load(Ordering::Relaxed) {
            0 => self.retry.max_rate_limit_wait,
            s => Duration::from_secs(s).min(self.retry.max_rate_limit_wait),
        }
    }

    /// After a success: when the budget is spent, wait for the reset before the next request.
    async fn pace(&self, stats: &CallStats) -> Result<(), GithubError> {
        if stats.remaining.load(Ordering::Relaxed) == 0 {
            self.wait_for_reset(stats).await?;
        }
        Ok(())
    }

    /// Decodes a JSON body.
    pub fn decode<T: serde::de::DeserializeOwned>(page: &Page) -> Result<T, GithubError> {
        serde_json::from_slice(&page.body).map_err(|e| GithubError::Decode(e.to_string()))
    }

    /// `GET /repos/{owner}/{repo}`.
    pub async fn get_repo(
        &self,
        owner: &str,
        repo: &str,
        stats: &CallStats,
    ) -> Result<RepoInfo, GithubError> {
        let page = self
            .get(&format!("/repos/{owner}/{repo}"), true, None, stats)
            .await?;
        Self::decode(&page)
    }

    /// Every item of a paginated listing from `first` on, at most `max`, following `Link: next`
    /// (pages are fetched only while needed). The authentication is decided once from `first`
    /// and used for every page: GitHub's next links point at `/repositories/{id}/...`, which
    /// names no repository, and a private repository answers 404 to a page sent without its
    /// installation token (or `token`, when given). Links are followed only within the API base.
    /// Returns the items and whether every page was a 304.
    async fn all_pages<T: serde::de::DeserializeOwned>(
        &self,
        first: &str,
        conditional: bool,
        max: Option<usize>,
        token: Option<&SecretString>,
        stats: &CallStats,
    ) -> Result<(Vec<T>, bool), GithubError> {
        let first = self.absolute(first)?;
        let auth = self.resolve_auth(&first, token).await?;
        let mut url = Some(first);
        let mut out = Vec::new();
        let mut all_cached = true;
        while let Some(u) = url.take() {
            let page = self
                .send_as(Method::GET, &u, None, conditional, &auth, stats)
                .await?;
            all_cached &= page.not_modified();
            let items: Vec<T> = Self::decode(&page)?;
            let empty = items.is_empty();
            out.extend(items);
            if let Some(m) = max
                && out.len() >= m
            {
                out.truncate(m);
                break;
            }
            if !empty && let Some(next) = page.next {
                url = Some(self.absolute(&next)?);
            }
        }
        Ok((out, all_cached))
    }

    /// Open PRs, newest first, at most `max`. Returns the PRs and whether every page was a 304
    /// (nothing changed since the last scan).
    pub async fn list_open_pulls(
        &self,
        owner: &str,
        repo: &str,
        max: Option<usize>,
        stats: &CallStats,
    ) -> Result<(Vec<PullSummary>, bool), GithubError> {
        self.all_pages(
            &format!(
                "/repos/{owner}/{repo}/pulls?state=open&sort=created&direction=desc&per_page=100"
            ),
            true,
            max,
            None,
            stats,
        )
        .await
    }

    /// `GET /repos/{owner}/{repo}/pulls/{number}/files`, all pages up to GitHub's 3,000 cap.
    pub async fn list_files(
        &self,
        owner: &str,
        repo: &str,
        number: i64,
        stats: &CallStats,
    ) -> Result<Vec<FileEntry>, GithubError> {
        let (files, _) = self
            .all_pages(
                &format!("/repos/{owner}/{repo}/pulls/{number}/files?per_page=100"),
                false,
                Some(MAX_PR_FILES),
                None,
                stats,
            )
            .await?;
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_outside_the_api_base_are_refused() {
        let c = GithubClient::new("https://api.github.com", None, None, RetryPolicy::default())
            .unwrap();
        assert_eq!(
            c.absolute("/repos/o/r").unwrap(),
            "https://api.github.com/repos/o/r"
        );
        assert!(
            c.absolute("https://api.github.com/repositories/1/pulls?page=2")
                .is_ok()
        );
        for bad in [
            "http://api.github.com/repositories/1/pulls?page=2",
            "https://evil.example/repositories/1/pulls?page=2",
            "https://api.github.com.evil.example/x",
            "https://api.github.com@evil.example/x",
            "https://api.github.com",
            "@evil.example/x",
            ".evil.example/x",
            "",
        ] {
            assert!(c.absolute(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn next_link_is_found_among_other_relations() {
        let h = r#"<https://api.github.com/repositories/1/pulls?page=2>; rel="next", <https://api.github.com/repositories/1/pulls?page=5>; rel="last""#;
        assert_eq!(
            next_link(h).as_deref(),
            Some("https://api.github.com/repositories/1/pulls?page=2")
        );
        let last_only = r#"<https://x/y?page=1>; rel="first", <https://x/y?page=4>; rel="prev""#;
        assert_eq!(next_link(last_only), None);
        assert_eq!(next_link(""), None);
    }
}
