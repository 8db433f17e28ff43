//! The appliance skeleton against real Postgres and Redis: health, migrations, the queue's
//! once-only and crash-recovery guarantees, graceful shutdown, config errors, JSON errors.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fake_github::{FakeRepo, simple_pr};
use common::services::RedisServer;
use common::{App, FakeGithub, Services, settings};
use serde_json::json;

fn small_repo() -> FakeRepo {
    let mut repo = FakeRepo {
        default_branch: "main".into(),
        ..Default::default()
    };
    for n in 1..=3 {
        let patch =
            format!("@@ -1,2 +1,3 @@\n line one\n+let value_{n} = compute({n});\n line two\n");
        let (pr, files) = simple_pr(
            n,
            &format!("{n:040x}"),
            &format!("change {n}"),
            vec![
                json!({"filename": format!("src/mod{n}.ts"), "status": "modified",
                "additions": 1, "deletions": 0, "changes": 1, "patch": patch}),
            ],
        );
        repo.files.insert(n, files);
        repo.pulls.push(pr);
    }
    repo
}

#[tokio::test]
async fn health_is_200_with_both_up_and_503_naming_redis_when_it_stops() {
    let svc = Services::new().await;
    let mut redis = RedisServer::start();
    let gh = FakeGithub::start().await;
    let mut s = settings(&svc, &gh.url());
    s.redis_url = Some(redis.url());
    let app = App::start(s).await;

    let r = app.http.get(app.url("/api/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["ok"], true);
    assert_eq!(body["postgres"], "ok");
    assert_eq!(body["redis"], "ok");

    redis.stop();
    let r = app.http.get(app.url("/api/health")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["ok"], false);
    assert_eq!(body["redis"], "down");
    assert_eq!(body["postgres"], "ok");
    assert_eq!(body["down"], json!(["redis"]));

    // It recovers by itself when Redis is back.
    redis.restart();
    let start = Instant::now();
    loop {
        let r = app.http.get(app.url("/api/health")).send().await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "health did not recover"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn migrations_apply_to_an_empty_database_and_are_idempotent() {
    let svc = Services::new().await;
    let pool = clawtriage::store::connect(&svc.database_url, 2).unwrap();
    let first = clawtriage::store::migrate(&pool).await.unwrap();
    // Every file of migrations/, in version order.
    let mut files: Vec<(u32, String)> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|f| {
                let name = f.strip_suffix(".sql")?;
                let version = name.strip_prefix('V')?.split("__").next()?.parse().ok()?;
                Some((version, name.to_string()))
            })
            .collect();
    files.sort();
    let expected: Vec<String> = files.into_iter().map(|(_, n)| n).collect();
    assert!(expected.len() >= 5, "{expected:?}");
    assert_eq!(first, expected);
    let second = clawtriage::store::migrate(&pool).await.unwrap();
    assert!(second.is_empty(), "second run applied {second:?}");
    let c = svc.client().await;
    let tables: Vec<String> = c
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for t in [
        "analysis_runs",
        "candidate_edges",
        "feedback",
        "index_keys",
        "pr_files",
        "pr_signatures",
        "pull_requests",
        "repositories",
        "scan_jobs",
        "scan_prs",
        "webhook_deliveries",
        "duplicate_sets",
        "repo_settings",
        "triage_configs",
        "action_plans",
        "action_log",
        "digest_state",
        "outbound_deliveries",
    ] {
        assert!(
            tables.iter().any(|x| x == t),
            "missing table {t} in {tables:?}"
        );
    }
}

#[tokio::test]
async fn a_job_enqueued_twice_runs_once() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("o", "r", small_repo());
    let app = App::start(settings(&svc, &gh.url())).await;

    let body = json!({"owner": "o", "repo": "r", "snapshot": "twice"});
    let (s1, b1) = app.trigger(body.clone()).await;
    let (s2, b2) = app.trigger(body).await;
    assert_eq!(s1, 202, "{b1}");
    assert_eq!(b1["enqueued"], true);
    assert_eq!(s2, 200, "{b2}");
    assert_eq!(b2["enqueued"], false);
    assert_eq!(b2["duplicate"], true);
    assert_eq!(b1["jobId"], b2["jobId"]);
    let job_id = b1["jobId"].as_str().unwrap().to_string();

    // Pushing the same job straight into the queue again is a no-op too.
    let job = clawtriage::jobs::ScanJob {
        owner: "o".into(),
        repo: "r".into(),
        snapshot: "twice".into(),
        max_open_prs: None,
    };
    assert_eq!(
        app.state.queues.push_scan(&job).await.unwrap(),
        clawtriage::jobs::PushOutcome::Duplicate
    );

    let status = app.wait_scan(&job_id, Duration::from_secs(60)).await;
    assert_eq!(status["state"], "done", "{status}");
    assert_eq!(status["prsListed"], 3);
    assert_eq!(status["prsAnalyzed"], 3);
    // Give a duplicate run the time it would need to show up, then count.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        gh.count(|l| l.path.starts_with("/repos/o/r/pulls?")),
        1,
        "the list endpoint was called more than once: {:?}",
        gh.log()
    );
    let c = svc.client().await;
    let runs: i64 = c
        .query_one("SELECT count(*) FROM analysis_runs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(runs, 3);
    app.stop().await;
}

/// Starts the real binary as a child process.
fn spawn_binary(svc: &Services, gh: &str, port: u16) -> std::process::Child {
    common::appliance_command(svc, gh, port)
        .env("PUBLIC_SCAN_ALLOWED_REPOS", "o/r")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn clawtriage")
}

#[tokio::test]
async fn a_job_whose_worker_is_killed_mid_run_is_completed_after_restart() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("o", "r", small_repo());
    // PR 2's files hang: its analysis is in flight when the process dies.
    gh.with(|g| g.faults.hang_on = Some("/pulls/2/files".into()));
    let port = common::services::free_port();
    let mut child = spawn_binary(&svc, &gh.url(), port);
    common::services::wait_for_port(port, Duration::from_secs(60));
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let r = http
        .post(format!("{base}/api/ops/public-scan"))
        .bearer_auth("ops-token-for-tests-0123456789abcdef")
        .json(&json!({"owner": "o", "repo": "r", "snapshot": "crash"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let job_id = "scan:o/r:crash";

    let start = Instant::now();
    while gh.count(|l| l.path.contains("/pulls/2/files")) == 0 {
        // The hanging request is logged only when it is answered; look at the DB instead.
        let c = svc.client().await;
        let running: i64 = c
            .query_one(
                "SELECT count(*) FROM analysis_runs WHERE number = 2 AND status = 'running'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if running == 1 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "analysis of #2 never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap(); // SIGKILL: no graceful anything.
    child.wait().unwrap();
    gh.with(|g| g.faults.hang_on = None);

    let port2 = common::services::free_port();
    let mut child2 = spawn_binary(&svc, &gh.url(), port2);
    common::services::wait_for_port(port2, Duration::from_secs(60));
    let status = common::wait_scan_at(
        &http,
        &format!("http://127.0.0.1:{port2}"),
        job_id,
        Duration::from_secs(90),
    )
    .await;
    assert_eq!(status["state"], "done", "{status}");
    assert_eq!(status["prsAnalyzed"], 3, "{status}");
    let c = svc.client().await;
    let rows: Vec<(i64, String)> = c
        .query(
            "SELECT number, status FROM analysis_runs ORDER BY number",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        rows,
        vec![(1, "done".into()), (2, "done".into()), (3, "done".into())],
        "each PR analysed exactly once, no duplicate rows"
    );
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child2.id().to_string())
        .status();
    let st = child2.wait().unwrap();
    assert!(st.success(), "graceful exit after SIGTERM: {st:?}");
}

#[tokio::test]
async fn sigterm_stops_the_server_within_the_bound_and_exits_zero() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    let port = common::services::free_port();
    let mut child = spawn_binary(&svc, &gh.url(), port);
    common::services::wait_for_port(port, Duration::from_secs(60));
    let t = Instant::now();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let st = child.wait().unwrap();
    assert!(st.success(), "{st:?}");
    assert!(
        t.elapsed() < Duration::from_secs(27),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn config_errors_are_reported_one_per_line_with_exit_code_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_clawtriage"))
        .arg("serve")
        .env_clear()
        .env("PORT", "not-a-port")
        .env("GITHUB_MODE", "sideways")
        .env("REDIS_URL", "http://wrong")
        .env("DASHBOARD_AUTH_MODE", "required")
        .env("GITHUB_TOKEN", "ghp_should_never_be_printed")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "PORT: `not-a-port` is not a whole number",
        "GITHUB_MODE: `sideways` is not one of public, app, hybrid",
        "DATABASE_URL: required",
        "REDIS_URL: must start with redis://",
        "DASHBOARD_TOKEN: required when DASHBOARD_AUTH_MODE=required",
    ] {
        assert!(err.contains(needle), "missing `{needle}` in:\n{err}");
    }
    assert!(!err.contains("ghp_should_never_be_printed"));
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn help_explains_every_setting() {
    let out = Command::new(env!("CARGO_BIN_EXE_clawtriage"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    // Collapse the wrapping so that `[env: NAME` is found wherever the line broke.
    let help = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for env in [
        "PORT",
        "DATA_ROOT",
        "DATABASE_URL",
        "REDIS_URL",
        "WORKER_CONCURRENCY",
        "SCAN_BATCH_SIZE",
        "BATCH_CONCURRENCY",
        "GITHUB_MODE",
        "GITHUB_TOKEN",
        "GITHUB_API_URL",
        "DASHBOARD_TOKEN",
        "DASHBOARD_AUTH_MODE",
        "OPS_TRIGGER_TOKEN",
        "PUBLIC_SCAN_ALLOWED_REPOS",
        "GITHUB_APP_ID",
        "GITHUB_PRIVATE_KEY_PEM",
        "GITHUB_WEBHOOK_SECRET",
    ] {
        assert!(
            help.contains(&format!("[env: {env}")),
            "--help does not mention {env}"
        );
    }
}

#[tokio::test]
async fn errors_are_json_and_unknown_api_routes_are_json_404s() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    let app = App::start(settings(&svc, &gh.url())).await;

    let r = app
        .http
        .get(app.url("/api/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "not_found");

    // The SPA fallback serves index.html for client-side routes.
    let r = app.http.get(app.url("/sets/123")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.headers().contains_key("content-security-policy"));
    assert!(r.text().await.unwrap().contains("ClawTriage"));

    // Request ids come back.
    let r = app.http.get(app.url("/api/health")).send().await.unwrap();
    assert!(r.headers().contains_key("x-request-id"));

    // Bodies over the limit are refused with a JSON error.
    let big = "x".repeat(100_000);
    let r = app
        .http
        .post(app.url("/api/ops/public-scan"))
        .bearer_auth("ops-token-for-tests-0123456789abcdef")
        .header("content-type", "application/json")
        .body(format!(r#"{{"owner":"o","repo":"r","snapshot":"{big}"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "payload_too_large");
    app.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_lets_a_running_job_finish() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("o", "r", small_repo());
    gh.with(|g| g.faults.hang_on = Some("/pulls/1/files".into()));
    let app = App::start(settings(&svc, &gh.url())).await;
    let (s, _) = app
        .trigger(json!({"owner": "o", "repo": "r", "snapshot": "drain"}))
        .await;
    assert_eq!(s, 202);
    let c = svc.client().await;
    let start = Instant::now();
    loop {
        let n: i64 = c
            .query_one("SELECT count(*) FROM analysis_runs WHERE number = 1", &[])
            .await
            .unwrap()
            .get(0);
        if n == 1 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Release the request shortly after the shutdown starts.
    let gh2 = gh.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        gh2.with(|g| g.faults.hang_on = None);
    });
    let took = app.stop().await;
    assert!(took < Duration::from_secs(12), "shutdown took {took:?}");
    let status: String = c
        .query_one("SELECT status FROM analysis_runs WHERE number = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "done", "the running job finished before exit");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    let app = App::start(settings(&svc, &gh.url())).await;
    let requests = [
        app.http.get(app.url("/api/health")),
        app.http.get(app.url("/api/nope")),
        app.http
            .post(app.url("/api/ops/public-scan"))
            .json(&json!({})),
        app.http.get(app.url("/")),
        app.http.get(app.url("/no/such/page")),
        app.http.delete(app.url("/api/health")),
    ];
    for req in requests {
        let r = req.send().await.unwrap();
        let h = r.headers();
        for name in [
            "x-content-type-options",
            "x-frame-options",
            "referrer-policy",
            "content-security-policy",
            "strict-transport-security",
            "x-request-id",
        ] {
            assert!(
                h.contains_key(name),
                "{} {} lacks {name}",
                r.url(),
                r.status()
            );
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn the_appliances_connections_run_without_jit_and_keep_the_urls_options() {
    let svc = Services::new().await;
    // Options given in the URL are kept beside `jit=off`.
    let sep = if svc.database_url.contains('?') {
        '&'
    } else {
        '?'
    };
    let url = format!(
        "{}{sep}options=-c%20statement_timeout%3D12345",
        svc.database_url
    );
    for (url, timeout) in [(svc.database_url.clone(), None), (url, Some("12345ms"))] {
        let pool = clawtriage::store::connect(&url, 1).unwrap();
        let c = pool.get().await.unwrap();
        let jit: String = c.query_one("SHOW jit", &[]).await.unwrap().get(0);
        assert_eq!(jit, "off", "{url}");
        if let Some(t) = timeout {
            let got: String = c
                .query_one("SHOW statement_timeout", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(got, t);
        }
    }
}
