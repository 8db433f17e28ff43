//! The dashboard in a real browser: the appliance runs in-process (real Postgres and Redis, a
//! fake GitHub serving the committed dataset slice, a dashboard token set, hybrid mode with the
//! App installed on the repository and `.github/clawtriage.toml` allowing writes), then
//! `dashboard/tests/e2e.mjs` drives Debian's Chromium through playwright-core: the 401 and the
//! token entry, the sets view, a set's evidence, feedback applied and still there after a
//! reload, search and filters kept in the URL, planning and applying "close duplicates" (checked
//! here against the fake GitHub's state afterwards), the activity and settings views, no
//! horizontal scrolling at 390 px, and screenshots at desktop and phone widths.
//!
//! Needs `node`, `dashboard/node_modules/playwright-core` (`npm ci --prefix dashboard`) and
//! `/usr/bin/chromium`. Without them the test prints `SKIPPED: <reason>` and passes, except when
//! `CI` is set, where it fails. Screenshots go to `DASHBOARD_SCREENSHOT_DIR` (default
//! `target/dashboard-e2e`); the script prints the folder. `DASHBOARD_E2E_HOLD_SECS=N` keeps the
//! seeded appliance up for N seconds first, to look at the dashboard by hand.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{App, FakeGithub, Services, settings};
use serde_json::json;

const TOKEN: &str = "dash-e2e-token-0123456789abcdef0123456789";
const CHROMIUM: &str = "/usr/bin/chromium";

fn missing_tools(root: &Path) -> Option<String> {
    let node_ok = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !node_ok {
        return Some("`node` is not installed (apt-get install nodejs npm)".into());
    }
    if !root
        .join("dashboard/node_modules/playwright-core/package.json")
        .exists()
    {
        return Some(
            "dashboard/node_modules/playwright-core is missing (run `npm ci --prefix dashboard`)"
                .into(),
        );
    }
    if !Path::new(CHROMIUM).exists() {
        return Some(format!("{CHROMIUM} is missing (apt-get install chromium)"));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if let Some(reason) = missing_tools(&root) {
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!("the browser test cannot run in CI: {reason}");
        }
        println!("SKIPPED: {reason}");
        return;
    }

    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("bench", "playwright", common::fixture_repo(None));
    gh.set_file(
        "bench",
        "playwright",
        ".github/clawtriage.toml",
        Some("[actions]\nclose_duplicates = true\nlabels = true\n"),
    );
    // A second repository whose settings file has a problem, for the settings view.
    let mut broken = common::fake_github::FakeRepo {
        default_branch: "main".into(),
        ..Default::default()
    };
    for n in [1, 2] {
        let (pr, files) = common::fake_github::simple_pr(
            n,
            &format!("abc{n}"),
            "Retry flaky requests",
            vec![
                json!({"filename": "src/retry.ts", "status": "added", "additions": 3, "deletions": 0,
                "patch": "@@ -0,0 +1,3 @@\n+export function retry(times: number) {\n+  return backoff(times * 2, 'exponential');\n+}\n"}),
            ],
        );
        broken.pulls.push(pr);
        broken.files.insert(n, files);
    }
    gh.add_repo("o", "r", broken);
    gh.set_file(
        "o",
        "r",
        ".github/clawtriage.toml",
        Some("# ClawTriage settings\n[actions]\nclose_duplicates = \"yes\"\nlabel = true\n"),
    );
    let mut s = settings(&svc, &gh.url());
    s.dashboard_token = Some(TOKEN.into());
    s.dashboard_auth_mode = "required".into();
    s.github_mode = "hybrid".into();
    s.github_app_id = Some("4242".into());
    s.github_private_key_pem =
        Some(std::fs::read_to_string(root.join("tests/fixtures/app/test-app-key.pem")).unwrap());
    s.github_webhook_secret = Some("webhook-secret-for-tests".into());
    let app = App::start(s).await;
    let (status, body) = app
        .trigger(json!({"owner": "bench", "repo": "playwright", "snapshot": "dashboard-e2e"}))
        .await;
    assert_eq!(status, 202, "{body}");
    let scan = app
        .wait_scan(
            "scan:bench/playwright:dashboard-e2e",
            Duration::from_secs(180),
        )
        .await;
    assert_eq!(scan["state"], "done", "{scan}");
    let (status, body) = app
        .trigger(json!({"owner": "o", "repo": "r", "snapshot": "dashboard-e2e"}))
        .await;
    assert_eq!(status, 202, "{body}");
    let scan = app
        .wait_scan("scan:o/r:dashboard-e2e", Duration::from_secs(60))
        .await;
    assert_eq!(scan["state"], "done", "{scan}");
    // The App is installed on the repository (as the `installation` webhook would record it).
    svc.client()
        .await
        .execute(
            "UPDATE repositories SET installation_id = 5 WHERE owner = 'bench'",
            &[],
        )
        .await
        .unwrap();

    // The API really wants the token, so the browser meets the 401 first.
    let r = app.http.get(app.url("/api/repos")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    let shots = std::env::var("DASHBOARD_SCREENSHOT_DIR")
        .ok()
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/dashboard-e2e"));
    let shots = if shots.is_absolute() {
        shots
    } else {
        root.join(shots)
    };
    std::fs::create_dir_all(&shots).unwrap();

    // For working on the dashboard: keep the seeded appliance up for a while before the browser
    // test (`DASHBOARD_E2E_HOLD_SECS=600 cargo test --test dashboard_e2e -- --nocapture`).
    if let Some(secs) = std::env::var("DASHBOARD_E2E_HOLD_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        println!("dashboard at {} (token {TOKEN}) for {secs} s", app.base);
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }

    let started = Instant::now();
    let mut child = tokio::process::Command::new("node")
        .arg(root.join("dashboard/tests/e2e.mjs"))
        .arg(&app.base)
        .arg(TOKEN)
        .arg(&shots)
        .env("CHROMIUM_PATH", CHROMIUM)
        // Lets the script start a second scan and watch it live on the scans view.
        .env("OPS_TOKEN", "ops-token-for-tests-0123456789abcdef")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let status = match tokio::time::timeout(Duration::from_secs(240), child.wait()).await {
        Ok(s) => s.expect("wait for node"),
        Err(_) => {
            let _ = child.kill().await;
            panic!("the browser test did not finish within 240 s");
        }
    };
    println!(
        "browser test took {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        shots.display()
    );
    assert!(status.success(), "dashboard/tests/e2e.mjs failed: {status}");
    // What the browser applied really reached GitHub: closed PRs, each with its marked comment.
    let closes: Vec<_> = gh
        .writes()
        .into_iter()
        .filter(|w| w.method == "PATCH" && w.path.starts_with("/repos/bench/playwright/pulls/"))
        .collect();
    assert!(
        !closes.is_empty(),
        "the plan applied in the browser closed no PR"
    );
    for w in &closes {
        assert_eq!(w.status, 200, "{w:?}");
        let n: i64 = w.path.rsplit('/').next().unwrap().parse().unwrap();
        assert_eq!(
            gh.pull("bench", "playwright", n).unwrap()["state"],
            "closed"
        );
        let comments = gh.comments("bench", "playwright", n);
        assert_eq!(comments.len(), 1, "#{n}");
        assert!(
            comments[0]["body"]
                .as_str()
                .unwrap()
                .contains("<!-- clawtriage:action close-duplicate")
        );
    }
    app.stop().await;
}
