//! Hardening of the API edge and the scan (issue 14): listings that shift while they run, links
//! that lead elsewhere, loopback installs reached under another host name, dashboards left open
//! on public addresses, odd request ids, what unauthenticated health tells, the CLI's token,
//! the per-client limiters. Every hostile input is generated here.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::fake_github::synthetic_repo;
use common::{App, FakeGithub, Services, settings};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const OPS: &str = "ops-token-for-tests-0123456789abcdef";
const DASH: &str = "dashboard-token-for-hardening-0123456789";

async fn state_of(c: &tokio_postgres::Client, number: i64) -> String {
    c.query_one(
        "SELECT state FROM pull_requests WHERE number = $1",
        &[&number],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test]
async fn prs_missing_from_a_shifted_listing_are_checked_before_they_are_closed() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    // Three pages, newest first: #250-#151, #150-#51, #50-#1.
    gh.add_repo("o", "r", synthetic_repo(250));
    let app = App::start(settings(&svc, &gh.url())).await;
    let (st, _) = app
        .trigger(json!({"owner":"o","repo":"r","snapshot":"s1"}))
        .await;
    assert_eq!(st, 202);
    let s1 = app.wait_scan("scan:o/r:s1", Duration::from_secs(120)).await;
    assert_eq!(
        (s1["state"].as_str(), s1["prsListed"].as_i64()),
        (Some("done"), Some(250))
    );
    let c = svc.client().await;

    // Before the next scan, #7 really closes.
    gh.with(|g| {
        let pr = g
            .repos
            .get_mut("o/r")
            .unwrap()
            .pulls
            .iter_mut()
            .find(|p| p["number"] == 7)
            .unwrap();
        pr["state"] = json!("closed");
        pr["closed_at"] = json!("2026-02-03T10:00:00Z");
        pr["updated_at"] = json!("2026-02-03T10:00:00Z");
    });
    // During the listing, #200 and #201 close right after page 1 is read: page 2 then starts
    // two PRs later, so the open #150 and #149 fall between the pages. The listing waits at
    // page 2 while a webhook stores a PR opened meanwhile (#999), which no page shows.
    gh.with(|g| {
        g.faults.close_after_list_page = Some((1, vec![200, 201]));
        g.faults.hang_on = Some("/pulls?page=2".into());
    });
    gh.clear_log();
    let (st, _) = app
        .trigger(json!({"owner":"o","repo":"r","snapshot":"s2"}))
        .await;
    assert_eq!(st, 202);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while gh.count(|l| l.path.contains("/pulls?page=1")) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the listing never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.execute(
        "INSERT INTO pull_requests (repo_id, number, title, state, head_sha, created_at, updated_at)
         SELECT repo_id, 999, 'opened during the listing', 'open', repeat('9', 40), now(), now()
         FROM repositories WHERE owner = 'o' AND name = 'r'",
        &[],
    )
    .await
    .unwrap();
    gh.with(|g| g.faults.hang_on = None);
    let s2 = app.wait_scan("scan:o/r:s2", Duration::from_secs(120)).await;
    assert_eq!(s2["state"], "done", "{s2}");

    assert_eq!(
        state_of(&c, 150).await,
        "open",
        "skipped by the shifted listing"
    );
    assert_eq!(
        state_of(&c, 149).await,
        "open",
        "skipped by the shifted listing"
    );
    assert_eq!(
        state_of(&c, 999).await,
        "open",
        "stored while the listing ran"
    );
    assert_eq!(state_of(&c, 7).await, "closed", "GitHub says it closed");
    // One `GET /pulls/{n}` per PR the listing missed (#7, #149, #150), none for #999.
    let checks: Vec<String> = gh
        .log()
        .iter()
        .filter(|l| l.path.starts_with("/repos/o/r/pulls/") && !l.path.contains("/files"))
        .map(|l| l.path.clone())
        .collect();
    assert_eq!(checks.len(), 3, "{checks:?}");
    // The two confirmed open joined the scan, so their heads are analysed like the others.
    let joined: i64 = c
        .query_one(
            "SELECT count(*) FROM scan_prs WHERE job_id = 'scan:o/r:s2' AND number IN (149, 150)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(joined, 2);
    app.stop().await;
}

#[tokio::test]
async fn a_next_link_to_another_origin_is_not_followed_and_gets_no_token() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    let elsewhere = FakeGithub::start().await;
    gh.add_repo("o", "r", synthetic_repo(150));
    elsewhere.add_repo("o", "r", synthetic_repo(150));
    gh.with(|g| g.faults.link_origin = Some(elsewhere.url()));
    let mut s = settings(&svc, &gh.url());
    s.github_token = Some("ghp_mustStayWithGithub0123456789".into());
    let app = App::start(s).await;
    let (st, _) = app
        .trigger(json!({"owner":"o","repo":"r","snapshot":"x"}))
        .await;
    assert_eq!(st, 202);
    let scan = app.wait_scan("scan:o/r:x", Duration::from_secs(60)).await;
    assert_eq!(scan["state"], "failed", "{scan}");
    assert!(
        scan["error"]
            .as_str()
            .is_some_and(|e| e.contains("refusing to follow a link outside")),
        "{scan}"
    );
    assert!(elsewhere.log().is_empty(), "{:?}", elsewhere.log());
    app.stop().await;
}

/// A raw HTTP/1.1 request with this `Host`; returns the status and the body.
async fn with_host(addr: std::net::SocketAddr, host: &str, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

#[tokio::test]
async fn a_loopback_install_answers_only_to_its_own_host_names() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    let mut s = settings(&svc, &gh.url());
    s.public_url = Some("https://triage.example".into());
    let app = App::start(s).await;
    let port = app.addr.port();
    // DNS rebinding: a page on evil.example made evil.example resolve to 127.0.0.1.
    for host in [format!("evil.example:{port}"), "evil.example".to_string()] {
        for path in ["/api/repos", "/", "/api/health"] {
            let (st, body) = with_host(app.addr, &host, path).await;
            assert_eq!(st, 403, "{host}{path}: {body}");
            assert!(body.contains("host_not_allowed"), "{body}");
        }
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "triage.example".to_string(),
    ] {
        let (st, body) = with_host(app.addr, &host, "/api/repos").await;
        assert_eq!(st, 200, "{host}: {body}");
    }
    app.stop().await;
}

#[tokio::test]
async fn an_open_dashboard_on_a_public_address_does_not_start() {
    let svc = Services::new().await;
    let mut cmd: tokio::process::Command =
        common::appliance_command(&svc, "http://127.0.0.1:9", common::services::free_port()).into();
    cmd.env("HOST", "0.0.0.0")
        .env("DASHBOARD_TOKEN", "")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // One that started would serve until stopped: give up (and kill it) after a while.
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("the appliance started with an open dashboard on 0.0.0.0")
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DASHBOARD_TOKEN: not set"), "{err}");
    assert!(err.contains("DASHBOARD_AUTH_MODE=disabled"), "{err}");
}

#[tokio::test]
async fn odd_request_ids_are_replaced_and_unauthenticated_health_tells_no_paths() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    let mut s = settings(&svc, &gh.url());
    s.dashboard_token = Some(DASH.into());
    let app = App::start(s).await;
    let id_of = |r: &reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().to_string();
    let r = app
        .http
        .get(app.url("/api/health"))
        .header("x-request-id", "trace-42.a_b:c")
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&r), "trace-42.a_b:c", "a plain id is kept");
    for odd in ["x".repeat(300), "a\tb".into(), "\"quoted\" {json}".into()] {
        let r = app
            .http
            .get(app.url("/api/health"))
            .header("x-request-id", odd.as_str())
            .send()
            .await
            .unwrap();
        let id = id_of(&r);
        assert_ne!(id, odd);
        assert_eq!(id.len(), 36, "a generated UUID: {id}");
    }

    let r = app.http.get(app.url("/api/health")).send().await.unwrap();
    let open: Value = r.json().await.unwrap();
    assert_eq!(open["disk"], json!({"status": "ok"}), "{open}");
    for token in [DASH, OPS] {
        let r = app
            .http
            .get(app.url("/api/health"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let detailed: Value = r.json().await.unwrap();
        assert!(detailed["disk"]["path"].is_string(), "{detailed}");
        assert!(detailed["disk"]["freeMiB"].is_number(), "{detailed}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_cli_takes_its_token_from_the_environment_or_stdin_never_from_argv() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("o", "r", synthetic_repo(1));
    let app = App::start(settings(&svc, &gh.url())).await;
    // tokio's Command: the appliance answering runs on this test's runtime.
    let cli = || {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_clawtriage"));
        c.env_clear()
            .args(["trigger", "--owner", "o", "--repo", "r", "--url", &app.base]);
        c
    };
    let out = cli().args(["--token", OPS]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(2), "a token in argv is refused");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--token"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli().args(["--snapshot", "none"]).output().await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no ops token"));
    // From standard input.
    let mut child = cli()
        .args(["--token-stdin", "--snapshot", "stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{OPS}\n").as_bytes())
        .await
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "scan:o/r:stdin"
    );
    // From the environment.
    let out = cli()
        .args(["--snapshot", "env"])
        .env("OPS_TRIGGER_TOKEN", OPS)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.stop().await;
}

#[tokio::test]
async fn limiters_forget_idle_clients_and_feedback_writes_are_limited() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    let app = App::start(settings(&svc, &gh.url())).await;
    let (st, _) = app
        .trigger(json!({"owner":"o","repo":"nope","snapshot":"a"}))
        .await;
    assert_eq!(st, 403);
    // The budget is kept in Redis (shared by every process); the client's count expires with
    // its window, so nothing grows with every address ever seen.
    let mut r = redis::Client::open(svc.redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:limit:trigger:*", svc.queue_prefix))
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "one client seen: {keys:?}");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&keys[0])
        .query_async(&mut r)
        .await
        .unwrap();
    assert!((1..=60_000).contains(&ttl), "expires by itself: {ttl}");

    // A set verdict of 200 members writes its 19,900 pairs in one statement.
    let c = svc.client().await;
    let repo_id: i64 = c
        .query_one(
            "INSERT INTO repositories (owner, name) VALUES ('o', 'r') RETURNING repo_id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let url = app.url(&format!("/api/repos/{repo_id}/feedback"));
    let members: Vec<i64> = (1..=200).collect();
    let r = app
        .http
        .post(&url)
        .json(
            &json!({"target": "set", "setId": "set-big", "members": members,
            "verdict": "not_duplicate"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    let pairs: i64 = c
        .query_one(
            "SELECT count(*) FROM feedback WHERE target = 'pair' AND set_id = 'set-big'
               AND verdict = 'not_duplicate' AND a_number < b_number",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(pairs, 19_900);
    // Then the client's write budget runs out: 429, and nothing more is written.
    let mut codes = Vec::new();
    for i in 0..clawtriage::api::results::FEEDBACK_WRITES_PER_MINUTE {
        let r = app
            .http
            .post(&url)
            .json(&json!({"target": "pair", "a": 1, "b": 2 + i, "verdict": "duplicate"}))
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
    }
    assert!(
        codes[..codes.len() - 1].iter().all(|c| *c == 201),
        "{codes:?}"
    );
    assert_eq!(codes.last(), Some(&429), "{codes:?}");
    app.stop().await;
}
