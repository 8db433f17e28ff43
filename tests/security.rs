//! No secret reaches the logs: the real binary runs with every secret configured and debug
//! logging, is driven through its auth paths and a scan that sends the GitHub token, and its
//! whole output is searched for each secret.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::fake_github::FakeRepo;
use common::{FakeGithub, Services};
use serde_json::json;

#[tokio::test]
async fn no_configured_secret_appears_in_the_logs() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    let mut repo = FakeRepo {
        default_branch: "main".into(),
        ..Default::default()
    };
    let (pr, files) = common::fake_github::simple_pr(
        1,
        &"a".repeat(40),
        "a change",
        vec![
            json!({"filename": "src/a.ts", "status": "modified", "additions": 1, "deletions": 0,
                    "patch": "@@ -1 +1,2 @@\n x\n+y = 1;"}),
        ],
    );
    repo.files.insert(1, files);
    repo.pulls.push(pr);
    gh.add_repo("o", "r", repo);

    let secrets = [
        ("GITHUB_TOKEN", "ghp_secretGithubToken0123456789"),
        ("DASHBOARD_TOKEN", "dash-secret-token-987-0123456789abcdef"),
        ("OPS_TRIGGER_TOKEN", "ops-secret-token-654-0123456789abcdef"),
        ("GITHUB_WEBHOOK_SECRET", "webhook-secret-321"),
    ];
    // Trust auth ignores the password, so it can be a secret that must not leak either.
    let db_url = svc.database_url.replacen(
        "postgres://postgres@",
        "postgres://postgres:pg-password-secret-111@",
        1,
    );
    let port = common::services::free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clawtriage"));
    cmd.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("DATABASE_URL", &db_url)
        .env("REDIS_URL", &svc.redis_url)
        .env("QUEUE_PREFIX", &svc.queue_prefix)
        .env("GITHUB_API_URL", gh.url())
        .env("GIT_MIRROR", "off")
        .env("PUBLIC_SCAN_ALLOWED_REPOS", "o/r")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in secrets {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    // Drain both pipes while the app runs (debug logs fill a pipe buffer in seconds).
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut out_pipe, &mut s).unwrap();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut err_pipe, &mut s).unwrap();
        s
    });
    common::services::wait_for_port(port, Duration::from_secs(60));
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    // Auth paths with right and wrong tokens.
    for token in [
        "ops-secret-token-654-0123456789abcdef",
        "wrong-token",
        "dash-secret-token-987-0123456789abcdef",
    ] {
        let _ = http
            .post(format!("{base}/api/ops/public-scan"))
            .bearer_auth(token)
            .json(&json!({"owner": "o", "repo": "r", "snapshot": format!("s-{}", token.len())}))
            .send()
            .await
            .unwrap();
        let _ = http
            .get(format!("{base}/api/repos"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
    }
    let status = common::wait_scan_with(
        &http,
        &base,
        &format!(
            "scan:o/r:s-{}",
            "ops-secret-token-654-0123456789abcdef".len()
        ),
        "ops-secret-token-654-0123456789abcdef",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(status["state"], "done", "{status}");
    // The scan really sent the GitHub token.
    assert!(
        gh.log()
            .iter()
            .any(|l| l.auth.as_deref() == Some("Bearer ghp_secretGithubToken0123456789")),
        "the fake GitHub never saw the token"
    );

    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&out_reader.join().unwrap()),
        String::from_utf8_lossy(&err_reader.join().unwrap())
    );
    assert!(
        logs.len() > 1000,
        "debug logs were produced: {} bytes",
        logs.len()
    );
    for (name, value) in secrets
        .iter()
        .copied()
        .chain([("DATABASE_URL password", "pg-password-secret-111")])
    {
        assert!(!logs.contains(value), "{name} leaked into the logs");
    }
}
