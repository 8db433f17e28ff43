//! Shared test harness: real Postgres and Redis, a fake GitHub, and the appliance running
//! in-process (or as a child process for crash tests).

#![allow(dead_code, unused_imports)] // each test binary uses part of the harness

pub mod fake_github;
pub mod services;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clawtriage::config::Settings;
use tokio::sync::oneshot;

pub use fake_github::FakeGithub;
pub use services::Services;

/// Settings for an appliance on port 0 against these services and this GitHub.
pub fn settings(svc: &Services, github_url: &str) -> Settings {
    Settings {
        host: "127.0.0.1".into(),
        port: "0".into(),
        data_root: std::env::temp_dir()
            .join(&svc.queue_prefix)
            .display()
            .to_string(),
        database_url: Some(svc.database_url.clone()),
        redis_url: Some(svc.redis_url.clone()),
        worker_concurrency: "4".into(),
        github_mode: "public".into(),
        github_token: None,
        github_api_url: github_url.into(),
        github_git_url: "http://127.0.0.1:9".into(),
        dashboard_token: None,
        dashboard_auth_mode: "auto".into(),
        ops_trigger_token: Some("ops-token-for-tests-0123456789abcdef".into()),
        public_scan_allowed_repos: "bench/playwright,o/r".into(),
        shutdown_timeout_secs: "10".into(),
        migrate_on_start: "true".into(),
        log_format: "text".into(),
        max_body_bytes: "65536".into(),
        request_timeout_secs: "30".into(),
        queue_prefix: svc.queue_prefix.clone(),
        git_mirror: "off".into(),
        max_set_size: "40".into(),
        check_run_name: "ClawTriage".into(),
        check_run_label: "off".into(),
        check_run_comment: "off".into(),
        ..Default::default()
    }
}

/// An appliance running in this test process.
pub struct App {
    pub addr: SocketAddr,
    pub base: String,
    pub state: clawtriage::state::AppState,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub http: reqwest::Client,
}

impl App {
    pub async fn start(settings: Settings) -> App {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn,clawtriage=info".into()),
            )
            .with_test_writer()
            .try_init();
        // Port 0 is refused by validation (1..=65535); bind to a free port instead.
        let mut settings = settings;
        if settings.port == "0" {
            settings.port = services::free_port().to_string();
        }
        let config = settings.validate().expect("valid test settings");
        let state = clawtriage::server::build_state(config)
            .await
            .expect("state");
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = oneshot::channel();
        let st = state.clone();
        let handle = tokio::spawn(async move {
            clawtriage::server::run(
                st,
                async move {
                    let _ = stop_rx.await;
                },
                Some(ready_tx),
            )
            .await
        });
        let addr = tokio::time::timeout(Duration::from_secs(60), ready_rx)
            .await
            .expect("app did not start in time")
            .expect("app failed to start");
        App {
            addr,
            base: format!("http://{addr}"),
            state,
            stop: Some(stop_tx),
            handle: Some(handle),
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Graceful shutdown; returns how long it took.
    pub async fn stop(mut self) -> Duration {
        let t = Instant::now();
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("join").expect("clean shutdown");
        }
        t.elapsed()
    }

    /// POST the ops trigger.
    pub async fn trigger(&self, body: serde_json::Value) -> (u16, serde_json::Value) {
        let r = self
            .http
            .post(self.url("/api/ops/public-scan"))
            .bearer_auth("ops-token-for-tests-0123456789abcdef")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or_default())
    }

    /// Polls a scan until it is done or failed.
    pub async fn wait_scan(&self, job_id: &str, within: Duration) -> serde_json::Value {
        wait_scan_at(&self.http, &self.base, job_id, within).await
    }
}

/// Polls `GET /api/ops/scans/{id}` on any appliance until the scan is done or failed.
pub async fn wait_scan_at(
    http: &reqwest::Client,
    base: &str,
    job_id: &str,
    within: Duration,
) -> serde_json::Value {
    wait_scan_with(
        http,
        base,
        job_id,
        "ops-token-for-tests-0123456789abcdef",
        within,
    )
    .await
}

/// [`wait_scan_at`] with another ops token.
pub async fn wait_scan_with(
    http: &reqwest::Client,
    base: &str,
    job_id: &str,
    token: &str,
    within: Duration,
) -> serde_json::Value {
    let start = Instant::now();
    let mut last = serde_json::Value::Null;
    while start.elapsed() < within {
        if let Ok(r) = http
            .get(format!(
                "{base}/api/ops/scans/{}",
                job_id.replace('/', "%2F")
            ))
            .bearer_auth(token)
            .send()
            .await
        {
            if r.status().is_success() {
                last = r.json().await.unwrap_or_default();
                if matches!(last["state"].as_str(), Some("done") | Some("failed")) {
                    return last;
                }
            } else {
                let code = r.status().as_u16();
                last = serde_json::json!({"httpStatus": code, "body": r.text().await.unwrap_or_default()});
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("scan {job_id} not finished after {within:?}; last status: {last}");
}

/// A small PR set from the committed fixtures (a slice of the shared dataset).
pub fn fixture_repo(limit: Option<usize>) -> fake_github::FakeRepo {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/datasets/playwright-slice");
    fake_github::load_dataset(&dir, limit)
}

/// The PR set a bench binary runs on: under `cargo bench` (which passes `--bench`) the first
/// non-flag argument or `../shared/datasets/playwright-1k`; under `cargo test --all-targets` the
/// committed slice, as a quick smoke test. `None` (after saying so) when the set is missing.
pub fn bench_set(bench: &str) -> Option<std::path::PathBuf> {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let default = if bench_mode {
        std::path::PathBuf::from("../shared/datasets/playwright-1k")
    } else {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/datasets/playwright-slice")
    };
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(std::path::PathBuf::from)
        .unwrap_or(default);
    if dir.join("prs.jsonl.gz").exists() {
        Some(dir)
    } else {
        println!("{bench} bench skipped: no PR set at {}", dir.display());
        None
    }
}

/// `X-Hub-Signature-256` of a webhook body under `secret`.
pub fn sign_webhook(secret: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A committed fixture file (`tests/fixtures/{path}`) as text.
pub fn fixture_text(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The `p` quantile (0..=1) of sorted values, nearest rank; NaN when there are none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// `clawtriage serve` as a child process on `port`, against these services and this GitHub, in a
/// clean environment; callers add their own settings and output handling, then spawn it.
pub fn appliance_command(svc: &Services, gh: &str, port: u16) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_clawtriage"));
    cmd.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("DATABASE_URL", &svc.database_url)
        .env("REDIS_URL", &svc.redis_url)
        .env("QUEUE_PREFIX", &svc.queue_prefix)
        .env("GITHUB_API_URL", gh)
        .env("OPS_TRIGGER_TOKEN", "ops-token-for-tests-0123456789abcdef");
    cmd
}

/// A child process killed (and reaped) on drop if still running, so a failed assertion leaves
/// no appliance behind.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `f` every 100 ms until it returns something, failing the test after `within`.
pub async fn wait_for<T>(what: &str, within: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if start.elapsed() > within {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /metrics` with a bearer token: the Prometheus text.
pub async fn scrape(http: &reqwest::Client, base: &str, token: &str) -> String {
    let r = http
        .get(format!("{base}/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "GET /metrics");
    r.text().await.unwrap()
}

/// The value of the sample `name` whose labels include every one of `labels`, summed over the
/// samples that match (Prometheus text format); 0 when none does.
pub fn prom_value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    prom_samples(text, name)
        .into_iter()
        .filter(|(l, _)| {
            labels
                .iter()
                .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, v)| v)
        .sum()
}

/// Every sample of metric `name`: its labels and value.
pub fn prom_samples(text: &str, name: &str) -> Vec<(Vec<(String, String)>, f64)> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, labels) = match series.split_once('{') {
            Some((m, rest)) => (m, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            continue;
        }
        let labels = labels
            .split("\",")
            .filter(|p| !p.is_empty())
            .filter_map(|p| {
                let (k, v) = p.split_once("=\"")?;
                Some((k.to_string(), v.trim_end_matches('"').to_string()))
            })
            .collect();
        if let Ok(v) = value.parse::<f64>() {
            out.push((labels, v));
        }
    }
    out
}

/// Runs git in `dir` (with a fixed author) and returns its trimmed output; panics on failure.
pub fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// GET `path` on an appliance (dashboard API, no token): status and JSON body.
pub async fn get_json(http: &reqwest::Client, base: &str, path: &str) -> (u16, serde_json::Value) {
    let r = http.get(format!("{base}{path}")).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// The committed dataset slice's directory.
pub fn slice_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/datasets/playwright-slice")
}

/// Checks that the appliance at `base` suggests, for every labelled pair of the committed slice,
/// exactly what the engine run in memory over the same PRs suggests (same category, or nothing),
/// and that no duplicate set holds a hard-negative pair. Returns how many labelled pairs were
/// suggested.
pub async fn assert_agrees_with_engine(
    http: &reqwest::Client,
    base: &str,
    repo_id: i64,
    what: &str,
) -> usize {
    let labels: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(slice_dir().join("labels.json")).unwrap())
            .unwrap();
    let cfg = clawtriage::triage::TriageConfig::default();
    let engine =
        clawtriage::eval::run_engine(&clawtriage::eval::load_prs(&slice_dir()).unwrap(), &cfg);
    let mut found = 0;
    for p in labels["pairs"].as_array().unwrap() {
        let (a, b) = (p["a"].as_i64().unwrap(), p["b"].as_i64().unwrap());
        let expected = engine
            .edges
            .get(&(a as u64, b as u64))
            .filter(|e| e.category.is_suggestion() && e.final_score >= cfg.review_threshold)
            .map(|e| e.category.as_str().to_string());
        let url = format!(
            "/api/repos/{repo_id}/prs/{a}/candidates?minScore={}",
            cfg.review_threshold
        );
        let (_, c) = get_json(http, base, &url).await;
        let got = c["candidates"]
            .as_array()
            .unwrap_or_else(|| panic!("{what}: candidates of {a}: {c}"))
            .iter()
            .find(|x| x["candidatePrNumber"] == b)
            .map(|x| x["category"].as_str().unwrap().to_string());
        assert_eq!(got, expected, "{what}: pair {a}/{b} ({})", p["kind"]);
        found += got.is_some() as usize;
    }
    let (_, sets) = get_json(
        http,
        base,
        &format!("/api/repos/{repo_id}/duplicate-sets?limit=100"),
    )
    .await;
    for hn in labels["hard_negative_pairs"].as_array().unwrap() {
        let (a, b) = (hn[0].as_i64().unwrap(), hn[1].as_i64().unwrap());
        for s in sets["sets"].as_array().unwrap() {
            let m: Vec<i64> = s["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["number"].as_i64().unwrap())
                .collect();
            assert!(
                !(m.contains(&a) && m.contains(&b)),
                "{what}: hard negative {a}/{b} ({}) in {s}",
                hn[2]
            );
        }
    }
    found
}

/// The duplicate sets of a repository as sorted member lists (what two runs are compared by).
pub async fn set_members(http: &reqwest::Client, base: &str, repo_id: i64) -> Vec<Vec<i64>> {
    let (st, sets) = get_json(
        http,
        base,
        &format!("/api/repos/{repo_id}/duplicate-sets?limit=100"),
    )
    .await;
    assert_eq!(st, 200, "{sets}");
    let mut out: Vec<Vec<i64>> = sets["sets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let mut m: Vec<i64> = s["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["number"].as_i64().unwrap())
                .collect();
            m.sort_unstable();
            m
        })
        .collect();
    out.sort();
    out
}
