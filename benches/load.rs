//! Load bench on loopback (a bench binary that prints figures; not a timed test): webhook
//! ingest (signed `ping` deliveries, each with its own delivery id, every one recorded) and
//! cached duplicate-set reads, driven by `wrk` (Debian package) for a bounded time each.
//!
//! `cargo bench --bench load -- [SECONDS]` (default 10). Needs `wrk` on PATH; under
//! `cargo test` it prints that it was skipped (a load test is not a unit test).

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::Duration;

use common::{App, FakeGithub, Services, settings};
use serde_json::json;

const SECRET: &str = "load-bench-webhook-secret";

struct WrkResult {
    requests: u64,
    rps: f64,
    p50: String,
    p99: String,
    non_2xx: u64,
}

fn run_wrk(url: &str, script: Option<&std::path::Path>, secs: u64) -> WrkResult {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t2",
        "-c32",
        &format!("-d{secs}s"),
        "--latency",
        "--timeout",
        "5s",
    ]);
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    let out = cmd.arg(url).output().expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |prefix: &str| -> Option<String> {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
    };
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    WrkResult {
        requests,
        rps: field("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0),
        p50: field("50%").unwrap_or_default(),
        p99: field("99%").unwrap_or_default(),
        non_2xx: field("Non-2xx or 3xx responses:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    }
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let secs: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    if !bench_mode {
        println!("load bench: skipped under cargo test (run `cargo bench --bench load`)");
        return;
    }
    if Command::new("wrk").arg("--version").output().is_err() {
        println!("load bench skipped: wrk is not installed (apt-get install wrk)");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let svc = Services::new().await;
        let gh = FakeGithub::start().await;
        gh.add_repo("bench", "playwright", common::fixture_repo(None));
        let mut s = settings(&svc, &gh.url());
        s.github_mode = "hybrid".into();
        s.github_app_id = Some("4242".into());
        s.github_private_key_pem = Some(common::fixture_text("app/test-app-key.pem"));
        s.github_webhook_secret = Some(SECRET.into());
        s.request_timeout_secs = "30".into();
        let app = App::start(s).await;
        let (code, _) = app
            .trigger(json!({"owner": "bench", "repo": "playwright", "snapshot": "seed"}))
            .await;
        assert_eq!(code, 202);
        app.wait_scan("scan:bench/playwright:seed", Duration::from_secs(300))
            .await;

        // Webhook ingest: signed ping deliveries, a fresh delivery id per request.
        let dir = tempfile::tempdir().unwrap();
        let body = common::fixture_text("webhooks/ping.1.json");
        let body_path = dir.path().join("body.json");
        std::fs::write(&body_path, &body).unwrap();
        let script = dir.path().join("webhook.lua");
        std::fs::write(
            &script,
            format!(
                r#"local f = io.open("{}", "rb")
local body = f:read("*a")
f:close()
local n = 0
local threads = 0
function setup(thread)
  -- Sets the global `thread_id` in that thread's own Lua state.
  thread:set("thread_id", threads)
  threads = threads + 1
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-GitHub-Event"] = "ping"
wrk.headers["X-Hub-Signature-256"] = "{}"
request = function()
  n = n + 1
  wrk.headers["X-GitHub-Delivery"] = "load-" .. tostring(thread_id) .. "-" .. tostring(n)
  return wrk.format(nil, "/webhooks/github", nil, body)
end
"#,
                body_path.display(),
                common::sign_webhook(SECRET, body.as_bytes())
            ),
        )
        .unwrap();
        let c = svc.client().await;
        let before: i64 = c
            .query_one("SELECT count(*) FROM webhook_deliveries", &[])
            .await
            .unwrap()
            .get(0);
        let url = app.base.clone();
        let hook = tokio::task::spawn_blocking(move || run_wrk(&url, Some(&script), secs))
            .await
            .unwrap();
        let after: i64 = c
            .query_one("SELECT count(*) FROM webhook_deliveries", &[])
            .await
            .unwrap()
            .get(0);
        println!(
            "webhook ingest  {:>8.0} deliveries/s  p50 {:>8}  p99 {:>8}  requests {:>7}  non-2xx {:>5}  recorded {:>7}",
            hook.rps,
            hook.p50,
            hook.p99,
            hook.requests,
            hook.non_2xx,
            after - before
        );

        // Cached duplicate-set reads.
        let (_, repos) = {
            let r = app.http.get(app.url("/api/repos")).send().await.unwrap();
            (r.status(), r.json::<serde_json::Value>().await.unwrap())
        };
        let repo_id = repos["repos"][0]["repoId"].as_i64().unwrap();
        let url = app.url(&format!("/api/repos/{repo_id}/duplicate-sets"));
        let sets = tokio::task::spawn_blocking(move || run_wrk(&url, None, secs))
            .await
            .unwrap();
        println!(
            "set list reads  {:>8.0} requests/s    p50 {:>8}  p99 {:>8}  requests {:>7}  non-2xx {:>5}",
            sets.rps, sets.p50, sets.p99, sets.requests, sets.non_2xx
        );
        app.stop().await;
    });
}
