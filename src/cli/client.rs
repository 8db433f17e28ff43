//! The CLI's HTTP side: one client for a running appliance, the token from the environment, and
//! every failure mapped to an exit code that says what went wrong.

use std::process::ExitCode;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

/// Exit codes of every `clawtriage` command that talks to an appliance (README: "Exit codes").
pub mod exit {
    /// Done.
    pub const OK: u8 = 0;
    /// Anything not listed below (including an invalid import file).
    pub const ERROR: u8 = 1;
    /// The command line, or the request it made, was invalid (clap's code; the appliance's 400).
    pub const USAGE: u8 = 2;
    /// The appliance could not be reached (connection refused, DNS, timeout).
    pub const UNREACHABLE: u8 = 3;
    /// Missing or wrong token (401, 403).
    pub const AUTH: u8 = 4;
    /// No such repository, PR or scan (404).
    pub const NOT_FOUND: u8 = 5;
    /// The appliance is up but cannot serve now: database, queue or disk trouble, or a rate
    /// limit (503, 429). Try again later.
    pub const UNAVAILABLE: u8 = 6;
    /// `trigger --wait`: the scan failed.
    pub const SCAN_FAILED: u8 = 7;
    /// `trigger --wait`: gave up waiting.
    pub const TIMED_OUT: u8 = 8;
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// No answer from the appliance.
    #[error("cannot reach the appliance at {url}: {reason}")]
    Unreachable {
        /// Base URL tried.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The appliance answered with an error.
    #[error("the appliance answered {status}: {message}")]
    Http {
        /// HTTP status.
        status: StatusCode,
        /// Its `error.message`.
        message: String,
    },
    /// Bad input given to the command.
    #[error("{0}")]
    Invalid(String),
    /// A usage problem found after parsing (e.g. `--repo` needed).
    #[error("{0}")]
    Usage(String),
    /// A waited-for scan failed.
    #[error("scan failed: {0}")]
    ScanFailed(String),
    /// Gave up waiting.
    #[error("{0}")]
    TimedOut(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// The process exit code for this failure.
    pub fn code(&self) -> u8 {
        match self {
            CliError::Unreachable { .. } => exit::UNREACHABLE,
            CliError::Http { status, .. } => match status.as_u16() {
                400 | 413 | 422 => exit::USAGE,
                401 | 403 => exit::AUTH,
                404 => exit::NOT_FOUND,
                429 | 502 | 503 | 504 => exit::UNAVAILABLE,
                _ => exit::ERROR,
            },
            CliError::Usage(_) => exit::USAGE,
            CliError::ScanFailed(_) => exit::SCAN_FAILED,
            CliError::TimedOut(_) => exit::TIMED_OUT,
            CliError::Invalid(_) | CliError::Other(_) => exit::ERROR,
        }
    }
}

/// Prints `clawtriage <cmd>: <error>` and returns its exit code.
pub fn fail(cmd: &str, e: &CliError) -> ExitCode {
    eprintln!("clawtriage {cmd}: {e}");
    if let CliError::Http { status, .. } = e
        && (*status == StatusCode::UNAUTHORIZED || *status == StatusCode::FORBIDDEN)
    {
        eprintln!(
            "hint: set CLAWTRIAGE_TOKEN (or DASHBOARD_TOKEN) to the appliance's dashboard token"
        );
    }
    ExitCode::from(e.code())
}

/// The bearer token: `CLAWTRIAGE_TOKEN`, else `DASHBOARD_TOKEN`, else `OPS_TRIGGER_TOKEN` (which
/// the scan routes accept). Never taken from the command line.
pub fn token_from_env() -> Option<String> {
    ["CLAWTRIAGE_TOKEN", "DASHBOARD_TOKEN", "OPS_TRIGGER_TOKEN"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty())
}

/// A client of one appliance.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client of the appliance at `url`, with `token` when given.
    pub fn new(url: &str, token: Option<String>) -> Result<Client, CliError> {
        let base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(CliError::Usage(format!("--url {url}: not an http(s) URL")));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| CliError::Other(format!("cannot build an HTTP client: {e}")))?;
        Ok(Client { http, base, token })
    }

    fn unreachable(&self, e: &reqwest::Error) -> CliError {
        CliError::Unreachable {
            url: self.base.clone(),
            reason: e.without_url_text(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, CliError> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body: Value = resp.json().await.unwrap_or_default();
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or("no message")
            .to_string();
        Err(CliError::Http { status, message })
    }

    /// GET `segments` (e.g. `["api", "repos"]`) with `query`, as JSON.
    pub async fn get_json(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Value, CliError> {
        let resp = self.send(self.http.get(self.url(segments, query)?)).await?;
        resp.json()
            .await
            .map_err(|e| CliError::Other(format!("the appliance sent no JSON: {e}")))
    }

    /// GET `segments` with `query` as text, with the response headers.
    pub async fn get_text(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<(String, reqwest::header::HeaderMap), CliError> {
        let resp = self.send(self.http.get(self.url(segments, query)?)).await?;
        let headers = resp.headers().clone();
        let text = resp.text().await.map_err(|e| self.unreachable(&e))?;
        Ok((text, headers))
    }

    /// POST a body to `segments`; the JSON answer.
    pub async fn post(
        &self,
        segments: &[&str],
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Result<Value, CliError> {
        let mut req = self
            .http
            .post(self.url(segments, &[])?)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self.send(req).await?;
        resp.json()
            .await
            .map_err(|e| CliError::Other(format!("the appliance sent no JSON: {e}")))
    }

    /// The base URL with `segments` appended (each percent-encoded) and `query` set.
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Result<reqwest::Url, CliError> {
        let bad = || CliError::Usage(format!("--url {}: not a base URL", self.base));
        let mut url = reqwest::Url::parse(&self.base).map_err(|_| bad())?;
        url.path_segments_mut()
            .map_err(|_| bad())?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }
}

/// Small text helper on reqwest errors (their Display may carry the URL).
trait WithoutUrlText {
    fn without_url_text(&self) -> String;
}

impl WithoutUrlText for reqwest::Error {
    fn without_url_text(&self) -> String {
        let mut s = if self.is_timeout() {
            "timed out".to_string()
        } else if self.is_connect() {
            "connection failed".to_string()
        } else {
            "request failed".to_string()
        };
        let mut source = std::error::Error::source(self);
        while let Some(e) = source {
            s.push_str(": ");
            s.push_str(&e.to_string());
            source = e.source();
        }
        s
    }
}

/// Runs a command's future on a small runtime and turns its result into an exit code.
pub fn run<F>(cmd: &str, fut: F) -> ExitCode
where
    F: std::future::Future<Output = Result<(), CliError>>,
{
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("clawtriage {cmd}: cannot start the runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    match rt.block_on(fut) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => fail(cmd, &e),
    }
}
