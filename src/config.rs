//! Configuration: environment variables with command-line flags overriding them, validated once
//! at start-up into a typed [`Config`]. Every problem is reported, one line each, instead of
//! stopping at the first; secrets are held in [`SecretString`] so they never reach `Debug` output
//! or logs.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

/// How the appliance talks to GitHub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GithubMode {
    /// Public REST API only (optionally with a personal token); scans start from the ops trigger
    /// or the schedule.
    Public,
    /// Installed as a GitHub App: webhooks, installation tokens, check runs.
    App,
    /// Both: webhooks for installed repos and ops-triggered public scans share one state.
    Hybrid,
}

impl GithubMode {
    /// Whether webhooks and App authentication are enabled.
    pub fn uses_app(self) -> bool {
        matches!(self, GithubMode::App | GithubMode::Hybrid)
    }
}

/// When the dashboard API asks for `Authorization: Bearer <DASHBOARD_TOKEN>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DashboardAuthMode {
    /// Required when a token is configured, open otherwise.
    Auto,
    /// Always required (start-up fails without a token).
    Required,
    /// Never required (for a dashboard behind another auth proxy).
    Disabled,
}

/// What one `serve` process does (`ROLE`). Any number of processes may share one Postgres and
/// one Redis; each role's work is safe to run in several of them at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything in one process: the single-machine appliance.
    All,
    /// The API, dashboard, webhooks, ops trigger and `/metrics`; runs no workers, no schedule
    /// and no housekeeping (it only queues work).
    Web,
    /// The workers (scans, batches, analyses, check runs), the schedule and housekeeping;
    /// serves only `/api/health` and `/metrics`.
    Worker,
}

impl Role {
    /// Whether this process serves the API, dashboard and webhooks.
    pub fn serves_api(self) -> bool {
        matches!(self, Role::All | Role::Web)
    }

    /// Whether this process runs the workers, the schedule and housekeeping.
    pub fn runs_workers(self) -> bool {
        matches!(self, Role::All | Role::Worker)
    }

    /// `all`, `web` or `worker`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Web => "web",
            Role::Worker => "worker",
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// An `owner/name` pair as GitHub spells it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName {
    /// Account or organisation.
    pub owner: String,
    /// Repository name.
    pub name: String,
}

impl RepoName {
    /// Parses `owner/name`, checking both parts against GitHub's naming rules.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (owner, name) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not of the form owner/name"))?;
        validate_owner(owner)?;
        validate_repo(name)?;
        Ok(RepoName {
            owner: owner.to_string(),
            name: name.to_string(),
        })
    }

    /// Case-insensitive comparison key (GitHub names are case-insensitive).
    pub fn key(&self) -> String {
        format!(
            "{}/{}",
            self.owner.to_ascii_lowercase(),
            self.name.to_ascii_lowercase()
        )
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// GitHub login rules: 1–39 characters, ASCII letters, digits and single inner hyphens.
pub fn validate_owner(owner: &str) -> Result<(), String> {
    let ok = !owner.is_empty()
        && owner.len() <= 39
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !owner.starts_with('-')
        && !owner.ends_with('-')
        && !owner.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "owner `{}` is not a valid GitHub account name (1-39 letters, digits or inner hyphens)",
            owner.escape_debug()
        ))
    }
}

/// GitHub repository name rules: 1–100 characters of ASCII letters, digits, `-`, `_`, `.`, and
/// not `.` or `..`.
pub fn validate_repo(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(format!(
            "repo `{}` is not a valid GitHub repository name (1-100 letters, digits, `-`, `_`, `.`)",
            name.escape_debug()
        ))
    }
}

/// A URL as written, with any `user:password@` part replaced by `***@` (for Debug and logs).
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

/// A base URL from the settings. It is used as a plain string (it derefs to `str` and displays
/// as written), but its `Debug` form hides credentials (`https://user:token@host` → `https://***@host`).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ConfigUrl(String);

impl ConfigUrl {
    /// The URL as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for ConfigUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<&str> for ConfigUrl {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for ConfigUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ConfigUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redact_url(&self.0), f)
    }
}

/// Raw settings as given by environment variables and flags. Everything is a string here so that
/// validation can report every problem at once; see [`Settings::validate`].
#[derive(Args, Clone, Default)]
pub struct Settings {
    /// Address the HTTP server binds to.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: String,
    /// Port of the HTTP server (API, dashboard, webhooks).
    #[arg(long, env = "PORT", default_value = "8080")]
    pub port: String,
    /// Folder for the appliance's own state (git mirrors under `repos/`).
    #[arg(long, env = "DATA_ROOT", default_value = "./.data")]
    pub data_root: String,
    /// Free space (MiB) below which the data disk counts as nearly full: health answers 503
    /// and scans pause (default 100).
    #[arg(long, env = "DISK_MIN_FREE_MB")]
    pub disk_min_free_mb: Option<String>,
    /// Days to keep webhook delivery ids, finished scans and unused GitHub response cache
    /// entries (default 30; results and feedback are kept for good).
    #[arg(long, env = "RETENTION_DAYS")]
    pub retention_days: Option<String>,
    /// Heads a scan analyses per batch job (default 100: one page of listed PRs).
    #[arg(long, env = "SCAN_BATCH_SIZE")]
    pub scan_batch_size: Option<String>,
    /// Batches analysed at once per process (default 2: one fetching while one computes).
    #[arg(long, env = "BATCH_CONCURRENCY")]
    pub batch_concurrency: Option<String>,
    /// Scan a repository's open PRs when the GitHub App is installed on it (on | off, default
    /// on; app and hybrid modes).
    #[arg(long, env = "SCAN_ON_INSTALL")]
    pub scan_on_install: Option<String>,
    /// Postgres connection URL (postgres://user:password@host:port/db).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Redis connection URL (redis://[:password@]host:port/[db]).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// How many jobs each worker runs at once.
    #[arg(long, env = "WORKER_CONCURRENCY", default_value = "4")]
    pub worker_concurrency: String,
    /// public | app | hybrid.
    #[arg(long, env = "GITHUB_MODE", default_value = "public")]
    pub github_mode: String,
    /// Optional GitHub token for public mode (5,000 requests/h instead of 60).
    #[arg(long, env = "GITHUB_TOKEN", hide_env_values = true)]
    pub github_token: Option<String>,
    /// GitHub REST API base URL (GitHub Enterprise Server: https://HOST/api/v3).
    #[arg(long, env = "GITHUB_API_URL", default_value = "https://api.github.com")]
    pub github_api_url: String,
    /// Base URL that git mirrors fetch from (`<url>/<owner>/<repo>.git`).
    #[arg(long, env = "GITHUB_GIT_URL", default_value = "https://github.com")]
    pub github_git_url: String,
    /// Bearer token for the dashboard API.
    #[arg(long, env = "DASHBOARD_TOKEN", hide_env_values = true)]
    pub dashboard_token: Option<String>,
    /// auto | required | disabled.
    #[arg(long, env = "DASHBOARD_AUTH_MODE", default_value = "auto")]
    pub dashboard_auth_mode: String,
    /// Bearer token for `POST /api/ops/public-scan`; unset disables the route.
    #[arg(long, env = "OPS_TRIGGER_TOKEN", hide_env_values = true)]
    pub ops_trigger_token: Option<String>,
    /// Read-only bearer token for `GET /metrics` (the ops and dashboard tokens work too).
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Comma-separated owner/repo list that public scans may target (empty denies all).
    #[arg(long, env = "PUBLIC_SCAN_ALLOWED_REPOS", default_value = "")]
    pub public_scan_allowed_repos: String,
    /// GitHub App id (app and hybrid modes).
    #[arg(long, env = "GITHUB_APP_ID")]
    pub github_app_id: Option<String>,
    /// GitHub App private key, PEM (app and hybrid modes).
    #[arg(long, env = "GITHUB_PRIVATE_KEY_PEM", hide_env_values = true)]
    pub github_private_key_pem: Option<String>,
    /// Secret that signs GitHub webhook deliveries (app and hybrid modes).
    #[arg(long, env = "GITHUB_WEBHOOK_SECRET", hide_env_values = true)]
    pub github_webhook_secret: Option<String>,
    /// Seconds that a graceful shutdown waits for running requests and jobs.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECS", default_value = "25")]
    pub shutdown_timeout_secs: String,
    /// Apply pending migrations when `serve` starts (true | false).
    #[arg(long, env = "MIGRATE_ON_START", default_value = "true")]
    pub migrate_on_start: String,
    /// text | json.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// Largest accepted request body in bytes (webhooks get GitHub's 25 MB on their own route).
    #[arg(long, env = "MAX_BODY_BYTES", default_value = "1048576")]
    pub max_body_bytes: String,
    /// Seconds before an API request is answered 503 with a timeout error.
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value = "30")]
    pub request_timeout_secs: String,
    /// Optional TOML file overriding the triage engine's built-in rules and weights.
    #[arg(long, env = "TRIAGE_CONFIG")]
    pub triage_config: Option<String>,
    /// Fetch PR heads into a local git mirror and diff locally (on | off); off uses the REST
    /// files endpoint for every PR.
    #[arg(long, env = "GIT_MIRROR", default_value = "on")]
    pub git_mirror: String,
    /// Lowest edge score shown as a suggestion and used to link duplicate sets (default: the
    /// triage config's review threshold).
    #[arg(long, env = "REVIEW_SCORE_THRESHOLD")]
    pub review_score_threshold: Option<String>,
    /// Largest duplicate set.
    #[arg(long, env = "MAX_SET_SIZE", default_value = "40")]
    pub max_set_size: String,
    /// Name of the Check Run posted on analysed PR heads (app and hybrid modes).
    #[arg(long, env = "CHECK_RUN_NAME", default_value = "ClawTriage")]
    pub check_run_name: String,
    /// Add the `triage:possible-duplicate` label to PRs with a SAME_CHANGE match (on | off).
    #[arg(long, env = "CHECK_RUN_LABEL", default_value = "off")]
    pub check_run_label: String,
    /// Post one comment per SAME_CHANGE pair (on | off).
    #[arg(long, env = "CHECK_RUN_COMMENT", default_value = "off")]
    pub check_run_comment: String,
    /// Public base URL of this appliance, for links from check runs (e.g. https://x.fly.dev).
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    /// In-process scan schedule: a cron expression (5 fields, or 6-7 with seconds first).
    #[arg(long, env = "SCAN_SCHEDULE")]
    pub scan_schedule: Option<String>,
    /// Comma-separated owner/repo list the schedule scans.
    #[arg(long, env = "SCAN_REPOS", default_value = "")]
    pub scan_repos: String,
    /// Prefix of the Redis queue names (two appliances may share one Redis with different ones).
    #[arg(long, env = "QUEUE_PREFIX", default_value = "clawtriage")]
    pub queue_prefix: String,
    /// Comma-separated GitHub accounts (users or organisations) whose App installations are
    /// served (app and hybrid modes); webhooks about other accounts are skipped. Empty: any
    /// account that installs the App (a warning is logged at start-up).
    #[arg(long, env = "GITHUB_ALLOWED_ACCOUNTS", default_value = "")]
    pub github_allowed_accounts: String,
    /// App and hybrid modes: every this many hours, scan each installed repository once to catch
    /// up events GitHub never delivered (cheap: unchanged listings answer 304). 0 turns it off
    /// (default 6).
    #[arg(long, env = "RECONCILE_HOURS")]
    pub reconcile_hours: Option<String>,
    /// URL that new and grown duplicate sets are posted to (Slack-compatible JSON, signed).
    #[arg(long, env = "NOTIFY_WEBHOOK_URL", hide_env_values = true)]
    pub notify_webhook_url: Option<String>,
    /// Secret that signs outgoing webhooks (`X-ClawTriage-Signature-256`); required with the URL.
    #[arg(long, env = "NOTIFY_WEBHOOK_SECRET", hide_env_values = true)]
    pub notify_webhook_secret: Option<String>,
    /// When repositories with `[digest] enabled = true` get their digest issue updated: a cron
    /// expression (5 fields, or 6-7 with seconds first); unset, no digest is written.
    #[arg(long, env = "DIGEST_SCHEDULE")]
    pub digest_schedule: Option<String>,
    /// Seconds between re-reads of each repository's `.github/clawtriage.toml` (default 600;
    /// 0 = only when a plan, a digest or the dashboard asks).
    #[arg(long, env = "REPO_SETTINGS_REFRESH_SECS")]
    pub repo_settings_refresh_secs: Option<String>,
    /// all | web | worker (default all): `web` serves the API, dashboard and webhooks and runs
    /// no workers; `worker` runs the workers, schedule and housekeeping and serves only
    /// `/api/health` and `/metrics`. Several processes of any role may share one Postgres and
    /// one Redis.
    #[arg(long, env = "ROLE")]
    pub role: Option<String>,
    /// Seconds between housekeeping passes (retention and settling abandoned work; default
    /// 3600). One pass runs per period however many worker processes there are.
    #[arg(long, env = "HOUSEKEEPING_PERIOD_SECS")]
    pub housekeeping_period_secs: Option<String>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("data_root", &self.data_root)
            .field("github_mode", &self.github_mode)
            .field("github_api_url", &redact_url(&self.github_api_url))
            .finish_non_exhaustive()
    }
}

/// Validated configuration. Secrets are [`SecretString`]s: `Debug` prints `[REDACTED]`.
#[derive(Debug, Clone)]
pub struct Config {
    /// Bind address.
    pub host: IpAddr,
    /// HTTP port.
    pub port: u16,
    /// State folder.
    pub data_root: PathBuf,
    /// Postgres URL (may hold a password).
    pub database_url: SecretString,
    /// Redis URL (may hold a password).
    pub redis_url: SecretString,
    /// Jobs per worker at once.
    pub worker_concurrency: usize,
    /// GitHub mode.
    pub github_mode: GithubMode,
    /// Optional token for public mode.
    pub github_token: Option<SecretString>,
    /// REST base URL, without a trailing slash.
    pub github_api_url: ConfigUrl,
    /// Git base URL, without a trailing slash.
    pub github_git_url: ConfigUrl,
    /// Dashboard token.
    pub dashboard_token: Option<SecretString>,
    /// Dashboard auth mode.
    pub dashboard_auth_mode: DashboardAuthMode,
    /// Ops trigger token.
    pub ops_trigger_token: Option<SecretString>,
    /// Read-only token of `/metrics`.
    pub metrics_token: Option<SecretString>,
    /// Repositories public scans may target.
    pub public_scan_allowed_repos: Vec<RepoName>,
    /// GitHub App id.
    pub github_app_id: Option<u64>,
    /// GitHub App private key.
    pub github_private_key_pem: Option<SecretString>,
    /// Webhook secret.
    pub github_webhook_secret: Option<SecretString>,
    /// Graceful shutdown bound.
    pub shutdown_timeout: Duration,
    /// Apply migrations at start.
    pub migrate_on_start: bool,
    /// Log format.
    pub log_format: LogFormat,
    /// Request body limit.
    pub max_body_bytes: usize,
    /// Request timeout.
    pub request_timeout: Duration,
    /// Triage config file.
    pub triage_config: Option<PathBuf>,
    /// Redis queue name prefix.
    pub queue_prefix: String,
    /// Use local git mirrors.
    pub git_mirror: bool,
    /// Review threshold override.
    pub review_score_threshold: Option<f64>,
    /// Largest duplicate set.
    pub max_set_size: usize,
    /// Free MiB below which the data disk counts as nearly full.
    pub disk_min_free_mb: u64,
    /// Days of webhook ids, finished scans and unused cache entries to keep.
    pub retention_days: i32,
    /// Heads per scan batch.
    pub scan_batch_size: usize,
    /// Batches analysed at once per process.
    pub batch_concurrency: usize,
    /// Scan the open PRs of repositories the App is installed on.
    pub scan_on_install: bool,
    /// Check Run name.
    pub check_run_name: String,
    /// Opt-in label.
    pub check_run_label: bool,
    /// Opt-in comment.
    pub check_run_comment: bool,
    /// Public base URL (no trailing slash).
    pub public_url: Option<ConfigUrl>,
    /// In-process scan schedule (normalised to apalis-cron's seconds-first form).
    pub scan_schedule: Option<String>,
    /// Repositories the schedule scans.
    pub scan_repos: Vec<RepoName>,
    /// Accounts whose App installations are served (lowercase; empty: any).
    pub github_allowed_accounts: Vec<String>,
    /// Hours between reconciliation scans of installed repositories (0: off).
    pub reconcile_hours: u32,
    /// Where new and grown sets are announced (a Slack webhook URL is itself a secret).
    pub notify_webhook_url: Option<SecretString>,
    /// Signs the announcements.
    pub notify_webhook_secret: Option<SecretString>,
    /// Digest schedule (normalised to apalis-cron's seconds-first form).
    pub digest_schedule: Option<String>,
    /// How often each repository's settings file is read again (None: never on its own).
    pub repo_settings_refresh: Option<Duration>,
    /// What this process does.
    pub role: Role,
    /// Seconds between housekeeping passes.
    pub housekeeping_period: Duration,
}

/// All problems found in the settings, one per line when displayed.
#[derive(Debug, thiserror::Error)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problems):", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn secret(v: &Option<String>) -> Option<SecretString> {
    non_empty(v).map(SecretString::from)
}

fn parse_base_url(
    name: &str,
    value: &str,
    allow_file: bool,
    errors: &mut Vec<String>,
) -> ConfigUrl {
    let trimmed = value.trim().trim_end_matches('/').to_string();
    match reqwest::Url::parse(&trimmed) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
        Ok(u) if allow_file && u.scheme() == "file" => {}
        Ok(u) => errors.push(format!(
            "{name}: scheme `{}` is not supported (use http or https)",
            u.scheme()
        )),
        Err(e) => errors.push(format!(
            "{name}: `{}` is not a URL ({e})",
            redact_url(&trimmed)
        )),
    }
    ConfigUrl(trimmed)
}

fn parse_num<T>(
    name: &str,
    value: &str,
    range: std::ops::RangeInclusive<T>,
    errors: &mut Vec<String>,
) -> T
where
    T: std::str::FromStr + PartialOrd + Copy + fmt::Display,
{
    match value.trim().parse::<T>() {
        Ok(v) if range.contains(&v) => v,
        _ => {
            errors.push(format!(
                "{name}: `{}` is not a whole number from {} to {}",
                value.escape_debug(),
                range.start(),
                range.end()
            ));
            *range.start()
        }
    }
}

fn on_off(name: &str, value: &str, errors: &mut Vec<String>) -> bool {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => true,
        "off" | "false" | "0" | "no" | "" => false,
        other => {
            errors.push(format!(
                "{name}: `{}` is not on or off",
                other.escape_debug()
            ));
            false
        }
    }
}

/// Accepts the usual 5-field crontab form (minute first) or apalis-cron's 6-7 field form
/// (seconds first) and returns the latter, checked.
pub fn normalise_cron(expr: &str) -> Result<String, String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let six = match fields.len() {
        5 => format!("0 {}", fields.join(" ")),
        6 | 7 => fields.join(" "),
        n => {
            return Err(format!(
                "`{}` has {n} fields; use 5 (min hour day month weekday) or 6-7 (seconds first)",
                expr.escape_debug()
            ));
        }
    };
    <cron::Schedule as std::str::FromStr>::from_str(&six)
        .map(|_| six)
        .map_err(|e| format!("`{}` is not a cron expression ({e})", expr.escape_debug()))
}

impl Settings {
    /// Checks every setting and returns the typed configuration, or every problem found.
    pub fn validate(&self) -> Result<Config, ConfigErrors> {
        let mut errors = Vec::new();

        let host = self.host.trim().parse::<IpAddr>().unwrap_or_else(|_| {
            errors.push(format!(
                "HOST: `{}` is not an IP address (e.g. 0.0.0.0 or 127.0.0.1)",
                self.host.escape_debug()
            ));
            IpAddr::from([0, 0, 0, 0])
        });
        let port = parse_num::<u16>("PORT", &self.port, 1..=65535, &mut errors);
        let worker_concurrency = parse_num::<usize>(
            "WORKER_CONCURRENCY",
            &self.worker_concurrency,
            1..=64,
            &mut errors,
        );
        let shutdown_secs = parse_num::<u64>(
            "SHUTDOWN_TIMEOUT_SECS",
            &self.shutdown_timeout_secs,
            1..=600,
            &mut errors,
        );
        let request_secs = parse_num::<u64>(
            "REQUEST_TIMEOUT_SECS",
            &self.request_timeout_secs,
            1..=600,
            &mut errors,
        );
        let max_body_bytes = parse_num::<usize>(
            "MAX_BODY_BYTES",
            &self.max_body_bytes,
            1024..=(64 << 20),
            &mut errors,
        );

        let database_url = match non_empty(&self.database_url) {
            Some(url) => {
                if let Err(e) = url.parse::<tokio_postgres::Config>() {
                    errors.push(format!("DATABASE_URL: not a valid Postgres URL ({e})"));
                }
                url
            }
            None => {
                errors
                    .push("DATABASE_URL: required (postgres://user:password@host:port/db)".into());
                String::new()
            }
        };
        let redis_url = match non_empty(&self.redis_url) {
            Some(url) => {
                if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                    errors.push("REDIS_URL: must start with redis:// or rediss://".into());
                }
                url
            }
            None => {
                errors.push("REDIS_URL: required (redis://host:port/)".into());
                String::new()
            }
        };

        let github_mode = match self.github_mode.trim().to_ascii_lowercase().as_str() {
            "public" => GithubMode::Public,
            "app" => GithubMode::App,
            "hybrid" => GithubMode::Hybrid,
            other => {
                errors.push(format!(
                    "GITHUB_MODE: `{}` is not one of public, app, hybrid",
                    other.escape_debug()
                ));
                GithubMode::Public
            }
        };
        let dashboard_auth_mode = match self
            .dashboard_auth_mode
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "auto" => DashboardAuthMode::Auto,
            "required" => DashboardAuthMode::Required,
            "disabled" => DashboardAuthMode::Disabled,
            other => {
                errors.push(format!(
                    "DASHBOARD_AUTH_MODE: `{}` is not one of auto, required, disabled",
                    other.escape_debug()
                ));
                DashboardAuthMode::Auto
            }
        };
        let log_format = match self.log_format.trim().to_ascii_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                errors.push(format!(
                    "LOG_FORMAT: `{}` is not one of text, json",
                    other.escape_debug()
                ));
                LogFormat::Text
            }
        };
        let migrate_on_start = match self.migrate_on_start.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            other => {
                errors.push(format!(
                    "MIGRATE_ON_START: `{}` is not true or false",
                    other.escape_debug()
                ));
                true
            }
        };

        let github_api_url =
            parse_base_url("GITHUB_API_URL", &self.github_api_url, false, &mut errors);
        let github_git_url =
            parse_base_url("GITHUB_GIT_URL", &self.github_git_url, true, &mut errors);
        let git_mirror = match self.git_mirror.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "1" | "yes" => true,
            "off" | "false" | "0" | "no" => false,
            other => {
                errors.push(format!(
                    "GIT_MIRROR: `{}` is not on or off",
                    other.escape_debug()
                ));
                true
            }
        };

        let mut public_scan_allowed_repos = Vec::new();
        for item in self
            .public_scan_allowed_repos
            .split([',', ' ', '\n'])
            .filter(|s| !s.trim().is_empty())
        {
            match RepoName::parse(item) {
                Ok(r) => public_scan_allowed_repos.push(r),
                Err(e) => errors.push(format!("PUBLIC_SCAN_ALLOWED_REPOS: {e}")),
            }
        }

        let dashboard_token = secret(&self.dashboard_token);
        if dashboard_auth_mode == DashboardAuthMode::Required && dashboard_token.is_none() {
            errors.push("DASHBOARD_TOKEN: required when DASHBOARD_AUTH_MODE=required".into());
        }
        // Safe by default: an open dashboard (every page, feedback writes, the scan list) only
        // on a loopback address, or when asked for by name.
        if dashboard_auth_mode == DashboardAuthMode::Auto
            && dashboard_token.is_none()
            && !host.is_loopback()
        {
            errors.push(format!(
                "DASHBOARD_TOKEN: not set, so the dashboard and its API would be open to anyone who reaches {host}; \
                 set a token of at least {MIN_TOKEN_CHARS} characters, bind HOST=127.0.0.1, \
                 or set DASHBOARD_AUTH_MODE=disabled if something in front of the appliance checks who comes in"
            ));
        }
        for (name, value) in [
            ("DASHBOARD_TOKEN", &dashboard_token),
            ("OPS_TRIGGER_TOKEN", &secret(&self.ops_trigger_token)),
        ] {
            if let Some(t) = value {
                let n = t.expose_secret().chars().count();
                if n < MIN_TOKEN_CHARS {
                    errors.push(format!(
                        "{name}: at least {MIN_TOKEN_CHARS} characters (this one has {n}); e.g. `openssl rand -hex 32`"
                    ));
                }
            }
        }

        let github_app_id = non_empty(&self.github_app_id).and_then(|v| match v.parse::<u64>() {
            Ok(id) if id > 0 => Some(id),
            _ => {
                errors.push(format!(
                    "GITHUB_APP_ID: `{}` is not a positive number",
                    v.escape_debug()
                ));
                None
            }
        });
        let github_private_key_pem = secret(&self.github_private_key_pem);
        let github_webhook_secret = secret(&self.github_webhook_secret);
        if github_mode.uses_app() {
            if non_empty(&self.github_app_id).is_none() {
                errors.push("GITHUB_APP_ID: required when GITHUB_MODE is app or hybrid".into());
            }
            match &github_private_key_pem {
                None => errors.push(
                    "GITHUB_PRIVATE_KEY_PEM: required when GITHUB_MODE is app or hybrid".into(),
                ),
                Some(pem) => {
                    let pem = pem.expose_secret().replace("\\n", "\n");
                    if jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).is_err() {
                        errors.push(
                            "GITHUB_PRIVATE_KEY_PEM: not an RSA private key in PEM form (download it again from the App's settings)"
                                .into(),
                        );
                    }
                }
            }
            if github_webhook_secret.is_none() {
                errors.push(
                    "GITHUB_WEBHOOK_SECRET: required when GITHUB_MODE is app or hybrid".into(),
                );
            }
        }

        let triage_config = non_empty(&self.triage_config).map(PathBuf::from);
        if let Some(path) = &triage_config
            && !path.is_file()
        {
            errors.push(format!(
                "TRIAGE_CONFIG: `{}` is not a readable file",
                path.display()
            ));
        }

        let review_score_threshold =
            non_empty(&self.review_score_threshold).and_then(|v| match v.parse::<f64>() {
                Ok(x) if (0.0..=1.0).contains(&x) => Some(x),
                _ => {
                    errors.push(format!(
                        "REVIEW_SCORE_THRESHOLD: `{}` is not a number from 0 to 1",
                        v.escape_debug()
                    ));
                    None
                }
            });
        let max_set_size =
            parse_num::<usize>("MAX_SET_SIZE", &self.max_set_size, 2..=500, &mut errors);
        let disk_min_free_mb = parse_num::<u64>(
            "DISK_MIN_FREE_MB",
            self.disk_min_free_mb.as_deref().unwrap_or("100"),
            0..=1_048_576,
            &mut errors,
        );
        let retention_days = parse_num::<i32>(
            "RETENTION_DAYS",
            self.retention_days.as_deref().unwrap_or("30"),
            1..=3650,
            &mut errors,
        );
        let scan_batch_size = parse_num::<usize>(
            "SCAN_BATCH_SIZE",
            self.scan_batch_size.as_deref().unwrap_or("100"),
            1..=1000,
            &mut errors,
        );
        let batch_concurrency = parse_num::<usize>(
            "BATCH_CONCURRENCY",
            self.batch_concurrency.as_deref().unwrap_or("2"),
            1..=16,
            &mut errors,
        );
        let scan_on_install = on_off(
            "SCAN_ON_INSTALL",
            self.scan_on_install.as_deref().unwrap_or("on"),
            &mut errors,
        );
        let check_run_name = self.check_run_name.trim().to_string();
        if check_run_name.is_empty() || check_run_name.len() > 100 {
            errors.push("CHECK_RUN_NAME: 1-100 characters".into());
        }
        let check_run_label = on_off("CHECK_RUN_LABEL", &self.check_run_label, &mut errors);
        let check_run_comment = on_off("CHECK_RUN_COMMENT", &self.check_run_comment, &mut errors);
        let public_url = non_empty(&self.public_url)
            .map(|u| parse_base_url("PUBLIC_URL", &u, false, &mut errors));
        let scan_schedule = non_empty(&self.scan_schedule).and_then(|s| match normalise_cron(&s) {
            Ok(n) => Some(n),
            Err(e) => {
                errors.push(format!("SCAN_SCHEDULE: {e}"));
                None
            }
        });
        let mut scan_repos = Vec::new();
        for item in self
            .scan_repos
            .split([',', ' ', '\n'])
            .filter(|s| !s.trim().is_empty())
        {
            match RepoName::parse(item) {
                Ok(r) => scan_repos.push(r),
                Err(e) => errors.push(format!("SCAN_REPOS: {e}")),
            }
        }
        if scan_schedule.is_some() && scan_repos.is_empty() {
            errors.push("SCAN_REPOS: name the repositories SCAN_SCHEDULE scans".into());
        }
        let mut github_allowed_accounts = Vec::new();
        for item in self
            .github_allowed_accounts
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match validate_owner(item) {
                Ok(()) => github_allowed_accounts.push(item.to_ascii_lowercase()),
                Err(e) => errors.push(format!("GITHUB_ALLOWED_ACCOUNTS: {e}")),
            }
        }
        let reconcile_hours = parse_num::<u32>(
            "RECONCILE_HOURS",
            self.reconcile_hours.as_deref().unwrap_or("6"),
            0..=168,
            &mut errors,
        );
        let notify_webhook_url = non_empty(&self.notify_webhook_url).map(|u| {
            // Checked like the other URLs, but never echoed: the path is the credential.
            let mut problems = Vec::new();
            let url = parse_base_url("NOTIFY_WEBHOOK_URL", &u, false, &mut problems);
            if !problems.is_empty() {
                errors.push(
                    "NOTIFY_WEBHOOK_URL: not an http(s) URL (its value is not shown: it is a secret)"
                        .into(),
                );
            }
            SecretString::from(url.as_str().to_string())
        });
        let notify_webhook_secret = secret(&self.notify_webhook_secret);
        if notify_webhook_url.is_some() && notify_webhook_secret.is_none() {
            errors.push(
                "NOTIFY_WEBHOOK_SECRET: required with NOTIFY_WEBHOOK_URL (receivers check the signature)"
                    .into(),
            );
        }
        let digest_schedule =
            non_empty(&self.digest_schedule).and_then(|s| match normalise_cron(&s) {
                Ok(n) => Some(n),
                Err(e) => {
                    errors.push(format!("DIGEST_SCHEDULE: {e}"));
                    None
                }
            });
        let repo_settings_refresh = match parse_num::<u64>(
            "REPO_SETTINGS_REFRESH_SECS",
            self.repo_settings_refresh_secs.as_deref().unwrap_or("600"),
            0..=86_400,
            &mut errors,
        ) {
            0 => None,
            n => Some(Duration::from_secs(n)),
        };
        let queue_prefix = self.queue_prefix.trim().to_string();
        if queue_prefix.is_empty()
            || queue_prefix.len() > 64
            || !queue_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        {
            errors.push("QUEUE_PREFIX: 1-64 letters, digits, `-`, `_`, `.`, `:`".into());
        }

        let role = match self
            .role
            .as_deref()
            .map(|r| r.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("") | Some("all") => Role::All,
            Some("web") => Role::Web,
            Some("worker") => Role::Worker,
            Some(other) => {
                errors.push(format!(
                    "ROLE: `{}` is not one of all, web, worker",
                    other.escape_debug()
                ));
                Role::All
            }
        };
        let housekeeping_period = Duration::from_secs(parse_num::<u64>(
            "HOUSEKEEPING_PERIOD_SECS",
            self.housekeeping_period_secs.as_deref().unwrap_or("3600"),
            1..=604_800,
            &mut errors,
        ));

        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(Config {
            host,
            port,
            data_root: PathBuf::from(self.data_root.trim()),
            database_url: SecretString::from(database_url),
            redis_url: SecretString::from(redis_url),
            worker_concurrency,
            github_mode,
            github_token: secret(&self.github_token),
            github_api_url,
            github_git_url,
            dashboard_token,
            dashboard_auth_mode,
            ops_trigger_token: secret(&self.ops_trigger_token),
            metrics_token: secret(&self.metrics_token),
            public_scan_allowed_repos,
            github_app_id,
            github_private_key_pem,
            github_webhook_secret,
            shutdown_timeout: Duration::from_secs(shutdown_secs),
            migrate_on_start,
            log_format,
            max_body_bytes,
            request_timeout: Duration::from_secs(request_secs),
            triage_config,
            queue_prefix,
            git_mirror,
            review_score_threshold,
            max_set_size,
            disk_min_free_mb,
            retention_days,
            scan_batch_size,
            batch_concurrency,
            scan_on_install,
            check_run_name,
            check_run_label,
            check_run_comment,
            public_url,
            scan_schedule,
            scan_repos,
            github_allowed_accounts,
            reconcile_hours,
            notify_webhook_url,
            notify_webhook_secret,
            digest_schedule,
            repo_settings_refresh,
            role,
            housekeeping_period,
        })
    }
}

/// Shortest DASHBOARD_TOKEN and OPS_TRIGGER_TOKEN accepted.
pub const MIN_TOKEN_CHARS: usize = 32;

impl Config {
    /// Whether webhooks about `account` are served (GITHUB_ALLOWED_ACCOUNTS; empty allows all).
    pub fn account_allowed(&self, account: &str) -> bool {
        self.github_allowed_accounts.is_empty()
            || self
                .github_allowed_accounts
                .iter()
                .any(|a| a.eq_ignore_ascii_case(account))
    }

    /// Whether `owner/name` may be scanned through the public trigger.
    pub fn is_allowed(&self, repo: &RepoName) -> bool {
        let key = repo.key();
        self.public_scan_allowed_repos
            .iter()
            .any(|r| r.key() == key)
    }

    /// Every secret value configured, for tests that grep logs for leaks.
    pub fn secret_values(&self) -> Vec<String> {
        [
            &self.github_token,
            &self.dashboard_token,
            &self.ops_trigger_token,
            &self.metrics_token,
            &self.github_private_key_pem,
            &self.github_webhook_secret,
            &self.notify_webhook_secret,
            &self.notify_webhook_url,
        ]
        .into_iter()
        .flatten()
        .map(|s| s.expose_secret().to_string())
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Settings {
        Settings {
            host: "127.0.0.1".into(),
            port: "8080".into(),
            data_root: "/tmp/x".into(),
            database_url: Some("postgres://u:pw@127.0.0.1:5432/db".into()),
            redis_url: Some("redis://127.0.0.1:6379/".into()),
            worker_concurrency: "2".into(),
            github_mode: "public".into(),
            github_api_url: "https://api.github.com/".into(),
            github_git_url: "https://github.com".into(),
            dashboard_auth_mode: "auto".into(),
            shutdown_timeout_secs: "25".into(),
            migrate_on_start: "true".into(),
            log_format: "text".into(),
            max_body_bytes: "1048576".into(),
            request_timeout_secs: "30".into(),
            queue_prefix: "clawtriage".into(),
            git_mirror: "on".into(),
            max_set_size: "40".into(),
            check_run_name: "ClawTriage".into(),
            check_run_label: "off".into(),
            check_run_comment: "off".into(),
            ..Default::default()
        }
    }

    #[test]
    fn valid_settings_become_a_config_with_trimmed_urls() {
        let c = base().validate().expect("valid");
        assert_eq!(c.port, 8080);
        assert_eq!(c.github_api_url, "https://api.github.com");
        assert_eq!(c.github_mode, GithubMode::Public);
    }

    #[test]
    fn every_problem_is_reported_not_just_the_first() {
        let mut s = base();
        s.port = "99999".into();
        s.github_mode = "bogus".into();
        s.database_url = None;
        s.public_scan_allowed_repos = "ok/repo, bad name/x, -bad/x".into();
        let errs = s.validate().unwrap_err();
        let text = errs.to_string();
        assert!(text.contains("PORT"), "{text}");
        assert!(text.contains("GITHUB_MODE"), "{text}");
        assert!(text.contains("DATABASE_URL"), "{text}");
        assert_eq!(
            errs.0
                .iter()
                .filter(|e| e.starts_with("PUBLIC_SCAN_ALLOWED_REPOS"))
                .count(),
            2,
            "{text}"
        );
    }

    #[test]
    fn app_mode_needs_app_credentials_and_a_real_key() {
        let mut s = base();
        s.github_mode = "app".into();
        s.github_app_id = Some("123".into());
        s.github_private_key_pem = Some("not a key".into());
        let text = s.validate().unwrap_err().to_string();
        assert!(
            text.contains("GITHUB_PRIVATE_KEY_PEM: not an RSA private key"),
            "{text}"
        );
        assert!(text.contains("GITHUB_WEBHOOK_SECRET: required"), "{text}");
    }

    #[test]
    fn required_dashboard_auth_needs_a_token() {
        let mut s = base();
        s.dashboard_auth_mode = "required".into();
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("DASHBOARD_TOKEN")
        );
    }

    #[test]
    fn an_open_dashboard_on_a_public_address_refuses_to_start() {
        // Auto mode without a token (or with an empty one) on 0.0.0.0: refused.
        for token in [None, Some(""), Some("   ")] {
            let mut s = base();
            s.host = "0.0.0.0".into();
            s.dashboard_token = token.map(str::to_string);
            let text = s.validate().unwrap_err().to_string();
            assert!(
                text.contains("DASHBOARD_TOKEN: not set")
                    && text.contains("DASHBOARD_AUTH_MODE=disabled"),
                "{token:?}: {text}"
            );
        }
        // On loopback it may stay open; elsewhere only when asked for by name, or with a token.
        let mut s = base();
        s.host = "127.0.0.1".into();
        assert!(s.validate().is_ok());
        s.host = "::1".into();
        assert!(s.validate().is_ok());
        s.host = "0.0.0.0".into();
        s.dashboard_auth_mode = "disabled".into();
        assert!(s.validate().is_ok());
        s.dashboard_auth_mode = "auto".into();
        s.dashboard_token = Some("d".repeat(MIN_TOKEN_CHARS));
        assert!(s.validate().is_ok());
    }

    #[test]
    fn tokens_shorter_than_32_characters_are_refused() {
        let mut s = base();
        s.dashboard_token = Some("short-dashboard-token".into());
        s.ops_trigger_token = Some("o".repeat(MIN_TOKEN_CHARS - 1));
        let errs = s.validate().unwrap_err().0;
        assert!(
            errs.iter()
                .any(|e| e.starts_with("DASHBOARD_TOKEN: at least 32 characters (this one has 21)")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("OPS_TRIGGER_TOKEN: at least 32 characters")),
            "{errs:?}"
        );
        assert!(
            errs.iter().all(|e| !e.contains("short-dashboard-token")),
            "the token itself is never shown: {errs:?}"
        );
    }

    #[test]
    fn allowed_accounts_are_checked_case_insensitively() {
        let mut s = base();
        assert!(s.validate().unwrap().account_allowed("anyone"));
        s.github_allowed_accounts = "Octo-Org, me".into();
        let c = s.validate().unwrap();
        assert!(c.account_allowed("octo-org") && c.account_allowed("ME"));
        assert!(!c.account_allowed("stranger") && !c.account_allowed(""));
        s.github_allowed_accounts = "bad name!".into();
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("GITHUB_ALLOWED_ACCOUNTS")
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let mut s = base();
        s.github_token = Some("ghp_supersecret".into());
        s.ops_trigger_token = Some("ops-secret-value-0123456789abcdef0123".into());
        s.database_url = Some("postgres://u:dbpassword@127.0.0.1/db".into());
        let c = s.validate().unwrap();
        let debug = format!("{c:?} {s:?}");
        for leak in ["ghp_supersecret", "ops-secret-value", "dbpassword"] {
            assert!(!debug.contains(leak), "{leak} leaked in {debug}");
        }
    }

    #[test]
    fn credentials_in_urls_stay_out_of_debug_output() {
        let mut s = base();
        s.github_git_url = "https://x-access-token:ghs_gitsecret@github.com".into();
        s.github_api_url = "https://user:apisecret@ghe.example/api/v3".into();
        s.public_url = Some("https://admin:pubsecret@triage.example".into());
        let c = s.validate().unwrap();
        let debug = format!("{c:?} {s:?}");
        for leak in ["ghs_gitsecret", "apisecret", "pubsecret"] {
            assert!(!debug.contains(leak), "{leak} leaked in {debug}");
        }
        assert!(debug.contains("https://***@github.com"), "{debug}");
        // The value itself is intact for use.
        assert_eq!(
            c.github_git_url.as_str(),
            "https://x-access-token:ghs_gitsecret@github.com"
        );
        assert_eq!(redact_url("https://h.example/a@b"), "https://h.example/a@b");
        assert_eq!(redact_url("file:///srv/git"), "file:///srv/git");
    }

    #[test]
    fn workflow_settings_are_checked_and_the_webhook_url_stays_secret() {
        let c = base().validate().unwrap();
        assert!(c.notify_webhook_url.is_none() && c.digest_schedule.is_none());
        assert_eq!(c.repo_settings_refresh, Some(Duration::from_secs(600)));
        let mut s = base();
        s.notify_webhook_url = Some("https://hooks.example/services/T0/B0/sekrit".into());
        s.digest_schedule = Some("every monday".into());
        s.repo_settings_refresh_secs = Some("-1".into());
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("NOTIFY_WEBHOOK_SECRET: required"), "{err}");
        assert!(err.contains("DIGEST_SCHEDULE"), "{err}");
        assert!(err.contains("REPO_SETTINGS_REFRESH_SECS"), "{err}");
        s.notify_webhook_url = Some("ftp://hooks.example/sekrit".into());
        let err = s.validate().unwrap_err().to_string();
        assert!(
            err.contains("NOTIFY_WEBHOOK_URL") && !err.contains("sekrit"),
            "{err}"
        );
        let mut s = base();
        s.notify_webhook_url = Some("https://hooks.example/services/T0/B0/sekrit".into());
        s.notify_webhook_secret = Some("shh".into());
        s.digest_schedule = Some("0 8 * * 1".into());
        s.repo_settings_refresh_secs = Some("0".into());
        let c = s.validate().unwrap();
        assert_eq!(c.digest_schedule.as_deref(), Some("0 0 8 * * 1"));
        assert_eq!(c.repo_settings_refresh, None);
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("sekrit") && !shown.contains("shh"),
            "{shown}"
        );
        assert!(c.secret_values().iter().any(|v| v.contains("sekrit")));
    }

    #[test]
    fn cron_schedules_accept_five_or_six_fields_and_reject_nonsense() {
        assert_eq!(normalise_cron("0 * * * *").unwrap(), "0 0 * * * *");
        assert_eq!(normalise_cron("*/30 * * * * *").unwrap(), "*/30 * * * * *");
        assert!(normalise_cron("every hour").is_err());
        assert!(normalise_cron("61 * * * *").is_err());
        let mut s = base();
        s.scan_schedule = Some("0 * * * *".into());
        assert!(s.validate().unwrap_err().to_string().contains("SCAN_REPOS"));
        s.scan_repos = "o/r".into();
        assert_eq!(
            s.validate().unwrap().scan_schedule.as_deref(),
            Some("0 0 * * * *")
        );
    }

    #[test]
    fn repo_names_follow_github_rules() {
        assert!(RepoName::parse("microsoft/playwright").is_ok());
        assert!(RepoName::parse("a-b/c.d_e").is_ok());
        for bad in [
            "noslash", "a/..", "a--b/c", "-a/c", "a/c d", "a/c;drop", "../x/y", "a/",
        ] {
            assert!(RepoName::parse(bad).is_err(), "{bad}");
        }
        let a = RepoName::parse("Foo/Bar").unwrap();
        assert_eq!(a.key(), "foo/bar");
    }
}
