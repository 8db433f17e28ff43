//! The maintainer's workflow end to end, through the real appliance, Postgres, Redis and the
//! fake GitHub: search and filters, per-repository settings from `.github/clawtriage.toml`,
//! closing duplicates with a plan and an apply (refusals on the live state, the marker that
//! survives a lost database, the audit), labels and "not duplicate", the digest issue edited in
//! place, the signed outgoing webhook with its retries, and set ids that survive re-scans.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clawtriage::config::Settings;
use common::fake_github::FakeRepo;
use common::{App, FakeGithub, Services, settings, wait_for};
use serde_json::{Value, json};

const OWNER: &str = "o";
const REPO: &str = "r";
const INSTALLATION: i64 = 77;
const SETTINGS_FILE: &str = ".github/clawtriage.toml";

fn fixture_path(rel: &str) -> String {
    format!("{}/tests/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"))
}

/// One production file whose five added lines are the change (identical across duplicates).
fn change(path: &str, name: &str, body: &str) -> Vec<Value> {
    let patch = format!(
        "@@ -1,4 +1,9 @@\n import {{ Page }} from './page';\n+export function {name}(page: Page, timeout: number) {{\n+  const deadline = Date.now() + timeout;\n+  {body}\n+  return page.waitForDeadline(deadline);\n+}}\n const a = 1;\n const b = 2;\n const c = 3;\n"
    );
    vec![
        json!({"filename": path, "status": "modified", "additions": 5, "deletions": 0,
        "changes": 5, "patch": patch}),
    ]
}

fn retry_change() -> Vec<Value> {
    change(
        "packages/net/src/retry.ts",
        "retryNetworkCall",
        "while (!page.isOnline()) await page.backoffAndRetryTheRequest(3);",
    )
}

fn theme_change() -> Vec<Value> {
    change(
        "packages/ui/src/theme.ts",
        "toggleDarkMode",
        "page.setColorScheme(page.colorScheme() === 'dark' ? 'light' : 'dark');",
    )
}

#[allow(clippy::too_many_arguments)]
fn pr(
    repo: &mut FakeRepo,
    number: i64,
    title: &str,
    author: &str,
    base: &str,
    head_ref: &str,
    labels: &[&str],
    files: Vec<Value>,
) {
    let (mut p, files) = common::fake_github::simple_pr(
        number,
        &format!("{number:03}aaaa{number:04}"),
        title,
        files,
    );
    p["user"]["login"] = json!(author);
    p["base"]["ref"] = json!(base);
    p["head"]["ref"] = json!(head_ref);
    p["html_url"] = json!(format!("https://github.com/{OWNER}/{REPO}/pull/{number}"));
    p["labels"] = json!(
        labels
            .iter()
            .map(|l| json!({"name": l, "color": "ededed"}))
            .collect::<Vec<_>>()
    );
    repo.pulls.push(p);
    repo.files.insert(number, files);
}

/// Six PRs: #1-#3 the same retry change, #4-#5 the same dark-mode change, #6 unrelated docs.
fn fake_repo() -> FakeRepo {
    let mut r = FakeRepo {
        default_branch: "main".into(),
        ..Default::default()
    };
    pr(
        &mut r,
        1,
        "Retry flaky network calls in the loader",
        "alice",
        "main",
        "alice/retry",
        &["bug"],
        retry_change(),
    );
    pr(
        &mut r,
        2,
        "fix: retry network calls",
        "Copilot",
        "main",
        "copilot/retry-network",
        &[],
        retry_change(),
    );
    pr(
        &mut r,
        3,
        "Retry loader requests on failure",
        "carol",
        "main",
        "carol/retry",
        &["Bug", "needs-review"],
        retry_change(),
    );
    pr(
        &mut r,
        4,
        "Add a dark mode toggle",
        "dave",
        "release-1.0",
        "dave/dark",
        &[],
        theme_change(),
    );
    pr(
        &mut r,
        5,
        "Dark mode switch",
        "erin",
        "release-1.0",
        "codex/dark-mode",
        &["ui"],
        theme_change(),
    );
    pr(
        &mut r,
        6,
        "Document the config file",
        "frank",
        "main",
        "frank/docs",
        &[],
        vec![
            json!({"filename": "docs/config.md", "status": "modified", "additions": 2, "deletions": 0,
            "changes": 2, "patch": "@@ -1,2 +1,4 @@\n # Config\n+Set `timeout` to change how long a page waits.\n+Set `retries` for network calls.\n text\n"}),
        ],
    );
    r
}

fn app_settings(svc: &Services, gh: &FakeGithub) -> Settings {
    let mut s = settings(svc, &gh.url());
    s.github_mode = "hybrid".into();
    s.github_app_id = Some("4242".into());
    s.github_private_key_pem =
        Some(std::fs::read_to_string(fixture_path("app/test-app-key.pem")).unwrap());
    s.github_webhook_secret = Some("webhook-secret-for-tests".into());
    s.public_url = Some("https://triage.example".into());
    s
}

async fn get(app: &App, path: &str) -> (u16, Value) {
    common::get_json(&app.http, &app.base, path).await
}

async fn post(app: &App, path: &str, body: Value) -> (u16, Value) {
    let r = app
        .http
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn scan(app: &App, snapshot: &str) -> i64 {
    let (s, b) = app
        .trigger(json!({"owner": OWNER, "repo": REPO, "snapshot": snapshot}))
        .await;
    assert_eq!(s, 202, "{b}");
    let st = app
        .wait_scan(
            &format!("scan:{OWNER}/{REPO}:{snapshot}"),
            Duration::from_secs(120),
        )
        .await;
    assert_eq!(st["state"], "done", "{st}");
    let (_, repos) = get(app, "/api/repos").await;
    repos["repos"][0]["repoId"].as_i64().unwrap()
}

/// Makes the repository an App installation's (as the `installation` webhook would).
async fn install(svc: &Services, repo_id: i64) {
    svc.client()
        .await
        .execute(
            "UPDATE repositories SET installation_id = $2 WHERE repo_id = $1",
            &[&repo_id, &INSTALLATION],
        )
        .await
        .unwrap();
}

fn members(set: &Value) -> Vec<i64> {
    set["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["number"].as_i64().unwrap())
        .collect()
}

async fn sets(app: &App, repo_id: i64, query: &str) -> Vec<Value> {
    let (s, b) = get(app, &format!("/api/repos/{repo_id}/duplicate-sets?{query}")).await;
    assert_eq!(s, 200, "{b}");
    b["sets"].as_array().unwrap().clone()
}

async fn set_with(app: &App, repo_id: i64, number: i64) -> Value {
    sets(app, repo_id, "")
        .await
        .into_iter()
        .find(|s| members(s).contains(&number))
        .unwrap_or_else(|| panic!("no set holds #{number}"))
}

/// Writes to GitHub other than installation tokens and check runs.
fn repo_writes(gh: &FakeGithub) -> Vec<common::fake_github::Write> {
    gh.writes()
        .into_iter()
        .filter(|w| w.path.starts_with("/repos/") && !w.path.contains("/check-runs"))
        .collect()
}

async fn apply_and_wait(app: &App, repo_id: i64, plan_id: &str) -> Value {
    let (s, b) = post(
        app,
        &format!("/api/repos/{repo_id}/plans/{plan_id}/apply"),
        json!({}),
    )
    .await;
    assert_eq!(s, 202, "{b}");
    wait_for("the plan to finish", Duration::from_secs(60), async || {
        let (_, p) = get(app, &format!("/api/repos/{repo_id}/plans/{plan_id}")).await;
        matches!(p["status"].as_str(), Some("done" | "failed")).then_some(p)
    })
    .await
}

fn search_numbers(b: &Value) -> Vec<i64> {
    b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["number"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn search_and_filters_find_prs_and_sets_and_page_through_them() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo(OWNER, REPO, fake_repo());
    let app = App::start(settings(&svc, &gh.url())).await;
    let repo_id = scan(&app, "search").await;
    let q = |query: &str| format!("/api/repos/{repo_id}/prs?{query}");
    let find = async |query: &str| {
        let (s, b) = get(&app, &q(query)).await;
        assert_eq!(s, 200, "{query}: {b}");
        search_numbers(&b)
    };
    assert_eq!(
        find("").await,
        [6, 5, 4, 3, 2, 1],
        "open PRs, newest update first (ties by number)"
    );
    assert_eq!(find("q=%234").await, [4], "#4 is PR 4");
    assert_eq!(find("q=5").await, [5]);
    assert_eq!(
        find("q=retry+NETWORK").await,
        [2, 1],
        "every word, any case"
    );
    assert_eq!(find("q=dark").await, [5, 4]);
    assert_eq!(find("author=CAROL").await, [3]);
    assert_eq!(
        find("label=bug").await,
        [3, 1],
        "labels compare without case"
    );
    assert_eq!(find("label=needs-review").await, [3]);
    assert_eq!(
        find("path=packages%2Fui%2F").await,
        [5, 4],
        "changed paths of the current head"
    );
    assert_eq!(find("path=RETRY.ts").await, [3, 2, 1]);
    assert_eq!(find("base=release-1.0").await, [5, 4]);
    assert_eq!(
        find("agent=true").await,
        [5, 2],
        "Copilot by login, codex/ by branch"
    );
    assert_eq!(find("agent=false&base=main").await, [6, 3, 1]);
    assert_eq!(
        find("q=100%25&path=_").await,
        Vec::<i64>::new(),
        "LIKE wildcards are literal"
    );
    assert_eq!(find("orderBy=number&label=bug").await, [3, 1]);
    let (_, b) = get(&app, &q("author=Copilot")).await;
    assert_eq!(b["items"][0]["agent"], true);
    assert_eq!(
        b["items"][0]["topSuggestion"]["category"], "SAME_CHANGE",
        "{b}"
    );
    assert_eq!(b["items"][0]["labels"], json!([]));

    // Pages visit every PR once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => q(&format!("limit=2&cursor={c}")),
            None => q("limit=2"),
        };
        let (s, b) = get(&app, &path).await;
        assert_eq!(s, 200, "{b}");
        seen.extend(search_numbers(&b));
        match b["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, [6, 5, 4, 3, 2, 1]);
    for (bad, what) in [
        ("orderBy=stars", "orderBy"),
        ("cursor=nope", "cursor"),
        ("state=draft", "state"),
        ("limit=0", "limit"),
        ("agent=maybe", "agent"),
        ("colour=red", "colour"),
    ] {
        let (s, b) = get(&app, &q(bad)).await;
        assert_eq!(s, 400, "{bad}: {b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains(what),
            "{bad}: {b}"
        );
    }

    // Sets touching a path, sets with an agent's PR, sets by label.
    let all = sets(&app, repo_id, "").await;
    assert_eq!(all.len(), 2, "{all:?}");
    let ui = sets(&app, repo_id, "path=src%2Ftheme").await;
    assert_eq!(ui.len(), 1);
    assert_eq!(members(&ui[0]), [4, 5]);
    assert_eq!(
        members(&sets(&app, repo_id, "label=needs-review").await[0]),
        [1, 2, 3]
    );
    assert_eq!(sets(&app, repo_id, "agent=true").await.len(), 2);
    assert!(sets(&app, repo_id, "author=frank").await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn repository_settings_are_read_validated_shown_and_fall_back_to_the_defaults() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo(OWNER, REPO, fake_repo());
    let app = App::start(settings(&svc, &gh.url())).await;
    let repo_id = scan(&app, "settings").await;
    let reload = async || {
        let (s, b) = post(
            &app,
            &format!("/api/repos/{repo_id}/settings/reload"),
            json!({}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        b
    };
    // No file: the appliance's defaults, every write off.
    let b = reload().await;
    assert_eq!(b["file"]["status"], "absent", "{b}");
    assert_eq!(
        b["effective"]["actions"],
        json!({"closeDuplicates": false, "labels": false})
    );
    assert_eq!(b["effective"]["digest"]["enabled"], false);
    assert_eq!(b["reviewThreshold"], 0.6);
    let builtin = clawtriage::triage::TriageConfig::default().config_version as i64;
    assert_eq!(b["configVersion"], builtin);
    assert_eq!(b["writes"]["possible"], false, "public mode");

    // A bad file: every problem with its line; the defaults stay in force and triage goes on.
    gh.set_file(
        OWNER,
        REPO,
        SETTINGS_FILE,
        Some("[actions]\nclose_duplicates = \"yes\"\n\n[triage]\nreview_treshold = 0.7\n"),
    );
    let b = reload().await;
    assert_eq!(b["file"]["status"], "invalid", "{b}");
    let errors = b["file"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{b}");
    assert_eq!(
        (errors[0]["line"].as_i64(), errors[0]["column"].as_i64()),
        (Some(2), Some(20))
    );
    assert_eq!(errors[1]["line"], 5);
    assert!(
        errors[1]["message"]
            .as_str()
            .unwrap()
            .contains("review_treshold"),
        "{b}"
    );
    assert_eq!(b["effective"]["actions"]["closeDuplicates"], false);
    assert_eq!(b["reviewThreshold"], 0.6);
    gh.edit_pull(OWNER, REPO, 6, |p| {
        p["updated_at"] = json!("2026-03-01T10:00:00Z")
    });
    let _ = scan(&app, "settings-2").await;
    let (_, got) = get(&app, &format!("/api/repos/{repo_id}/settings")).await;
    assert_eq!(
        got["file"]["status"], "invalid",
        "a scan does not need the file"
    );

    // Values are checked together with the appliance's configuration they change.
    gh.set_file(
        OWNER,
        REPO,
        SETTINGS_FILE,
        Some("[triage]\nreview_threshold = 0.95\n"),
    );
    let b = reload().await;
    assert_eq!(b["file"]["status"], "invalid", "{b}");
    assert!(
        b["file"]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("feature_ceiling"),
        "{b}"
    );
    // A good file changes the sets' threshold and the engine configuration's version.
    gh.set_file(
        OWNER,
        REPO,
        SETTINGS_FILE,
        Some("[triage]\nreview_threshold = 0.85\n[triage.bots]\nlogins = [\"frank\"]\n\n[agents]\nlogins = [\"dave\"]\nbranch_prefixes = []\n"),
    );
    let b = reload().await;
    assert_eq!(b["file"]["status"], "valid", "{b}");
    assert_eq!(b["reviewThreshold"], 0.85);
    let version = b["configVersion"].as_i64().unwrap();
    assert!(version >= 1_000_000, "{b}");
    // Reading it again costs a conditional request and changes nothing.
    let before = gh.count(|l| l.path.contains("/contents/") && l.status == 304);
    let b = reload().await;
    assert_eq!(
        b["configVersion"].as_i64(),
        Some(version),
        "same settings, same version"
    );
    assert_eq!(
        gh.count(|l| l.path.contains("/contents/") && l.status == 304),
        before + 1
    );
    // The agents filter follows the file.
    let (_, found) = get(&app, &format!("/api/repos/{repo_id}/prs?agent=true")).await;
    assert_eq!(search_numbers(&found), [4]);

    // The store function the analysis path uses sees the same configuration.
    let pool = clawtriage::store::connect(&svc.database_url, 2).unwrap();
    let base = clawtriage::triage::TriageConfig::default();
    let eff = clawtriage::store::settings::effective_triage_config(&pool, repo_id, &base)
        .await
        .unwrap();
    assert_eq!(eff.config_version, version as i32);
    assert_eq!(eff.config.config_version, version as i32);
    assert_eq!(eff.config.review_threshold, 0.85);
    assert!(eff.config.is_bot("frank"));
    assert_eq!(
        eff.config.channels, base.channels,
        "keys the file leaves out keep the appliance's"
    );
    // And so does the analysis: the next scan analyses every open head again under the
    // repository's configuration (its version on every run, its bot list in the signatures).
    let _ = scan(&app, "settings-3").await;
    let c = pool.get().await.unwrap();
    let row = c
        .query_one(
            "SELECT count(*) FILTER (WHERE a.config_version = $2), count(DISTINCT p.number)
             FROM pull_requests p
             LEFT JOIN analysis_runs a ON a.repo_id = p.repo_id AND a.number = p.number
              AND a.head_sha = p.head_sha AND a.status = 'done'
             WHERE p.repo_id = $1 AND p.state = 'open'",
            &[&repo_id, &(version as i32)],
        )
        .await
        .unwrap();
    let (under_file, open): (i64, i64) = (row.get(0), row.get(1));
    assert!(open > 0);
    assert_eq!(
        under_file, open,
        "every open head analysed under the file's configuration"
    );
    drop(c);
    // A removed file brings the defaults back.
    gh.set_file(OWNER, REPO, SETTINGS_FILE, None);
    let b = reload().await;
    assert_eq!(
        (b["file"]["status"].as_str(), b["configVersion"].as_i64()),
        (Some("absent"), Some(builtin))
    );
    let eff = clawtriage::store::settings::effective_triage_config(&pool, repo_id, &base)
        .await
        .unwrap();
    assert_eq!(
        (eff.config_version as i64, eff.overridden),
        (builtin, false)
    );
    pool.close();
    app.stop().await;
}

#[tokio::test]
async fn closing_duplicates_is_planned_then_applied_rechecked_live_and_never_repeated() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo(OWNER, REPO, fake_repo());
    let app = App::start(app_settings(&svc, &gh)).await;
    let repo_id = scan(&app, "act").await;
    let retry = set_with(&app, repo_id, 1).await;
    let set_id = retry["setId"].as_str().unwrap().to_string();
    assert_eq!(members(&retry), [1, 2, 3]);
    let plan_body =
        |kind: &str, set: &str| json!({"kind": kind, "setId": set, "actor": "maintainer-a"});
    let plans = format!("/api/repos/{repo_id}/plans");

    // Not installed: nothing can be written.
    let (s, b) = post(&app, &plans, plan_body("close_duplicates", &set_id)).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("refused")),
        "{b}"
    );
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not installed"),
        "{b}"
    );
    install(&svc, repo_id).await;
    // Installed, but the repository did not opt in: still nothing.
    let (s, b) = post(&app, &plans, plan_body("close_duplicates", &set_id)).await;
    assert_eq!(s, 409, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("close_duplicates = true"),
        "{b}"
    );
    assert!(repo_writes(&gh).is_empty(), "{:?}", repo_writes(&gh));

    gh.set_file(
        OWNER,
        REPO,
        SETTINGS_FILE,
        Some("[actions]\nclose_duplicates = true\nlabels = true\n"),
    );
    let (s, plan) = post(&app, &plans, plan_body("close_duplicates", &set_id)).await;
    assert_eq!(s, 201, "{plan}");
    let plan_id = plan["planId"].as_str().unwrap().to_string();
    let steps = plan["steps"].as_array().unwrap();
    let shape: Vec<(i64, &str)> = steps
        .iter()
        .map(|s| (s["number"].as_i64().unwrap(), s["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        shape,
        [(2, "comment"), (2, "close"), (3, "comment"), (3, "close")],
        "{plan}"
    );
    assert!(
        steps[0]["body"]
            .as_str()
            .unwrap()
            .contains("duplicate of #1"),
        "{plan}"
    );
    assert!(steps[0]["body"].as_str().unwrap().contains(&set_id));
    assert!(repo_writes(&gh).is_empty(), "a plan writes nothing");

    let done = apply_and_wait(&app, repo_id, &plan_id).await;
    assert_eq!(done["status"], "done", "{done}");
    let results = done["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert!(
        results
            .iter()
            .all(|r| r["outcome"] == "done" && r["actor"] == "maintainer-a"),
        "{done}"
    );
    assert_eq!(results[0]["githubStatus"], 201);
    assert_eq!(results[1]["githubStatus"], 200);
    for n in [2, 3] {
        assert_eq!(gh.pull(OWNER, REPO, n).unwrap()["state"], "closed");
        let c = gh.comments(OWNER, REPO, n);
        assert_eq!(c.len(), 1);
        assert!(
            c[0]["body"]
                .as_str()
                .unwrap()
                .contains("<!-- clawtriage:action close-duplicate pr=")
        );
    }
    assert_eq!(
        gh.pull(OWNER, REPO, 1).unwrap()["state"],
        "open",
        "the kept PR stays"
    );
    let (s, b) = post(
        &app,
        &format!("/api/repos/{repo_id}/plans/{plan_id}/apply"),
        json!({}),
    )
    .await;
    assert_eq!(s, 409, "a plan is applied once: {b}");

    // The appliance has not seen the closes yet, so the set is still there: a second plan is
    // refused on GitHub's live state, and nothing is written twice.
    let writes_before = repo_writes(&gh).len();
    let (_, again) = post(&app, &plans, plan_body("close_duplicates", &set_id)).await;
    let again = apply_and_wait(&app, repo_id, again["planId"].as_str().unwrap()).await;
    assert_eq!(again["status"], "failed");
    let r = again["results"].as_array().unwrap();
    assert!(
        r[0]["detail"]
            .as_str()
            .unwrap()
            .contains("#2 is already closed"),
        "{again}"
    );
    assert!(r.iter().all(|x| x["outcome"] == "refused"), "{again}");
    assert_eq!(repo_writes(&gh).len(), writes_before);

    // A maintainer reopens #2 (a veto), and the database is lost: the marker in #2's comments
    // still stops a second comment and a second close.
    gh.edit_pull(OWNER, REPO, 2, |p| {
        p["state"] = json!("open");
        p["closed_at"] = Value::Null;
    });
    let c = svc.client().await;
    c.batch_execute("TRUNCATE action_log, action_plans")
        .await
        .unwrap();
    let (_, p3) = post(
        &app,
        &plans,
        json!({"kind": "close_duplicates", "setId": set_id, "targets": [2]}),
    )
    .await;
    let p3 = apply_and_wait(&app, repo_id, p3["planId"].as_str().unwrap()).await;
    assert_eq!(p3["status"], "failed");
    assert!(
        p3["results"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("acted on #2 before"),
        "{p3}"
    );
    assert_eq!(gh.comments(OWNER, REPO, 2).len(), 1);
    assert_eq!(gh.pull(OWNER, REPO, 2).unwrap()["state"], "open");
    assert_eq!(repo_writes(&gh).len(), writes_before);

    // The kept PR closed without merge, or a head that moved since the analysis: refused.
    let dark = set_with(&app, repo_id, 4).await;
    let dark_id = dark["setId"].as_str().unwrap();
    let (_, p4) = post(
        &app,
        &plans,
        json!({"kind": "close_duplicates", "setId": dark_id, "keep": 4}),
    )
    .await;
    gh.edit_pull(OWNER, REPO, 4, |p| {
        p["state"] = json!("closed");
        p["closed_at"] = json!("2026-03-01T00:00:00Z");
    });
    let p4 = apply_and_wait(&app, repo_id, p4["planId"].as_str().unwrap()).await;
    assert!(
        p4["results"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("kept PR #4 is closed without being merged"),
        "{p4}"
    );
    gh.edit_pull(OWNER, REPO, 4, |p| {
        p["state"] = json!("open");
        p["closed_at"] = Value::Null;
    });
    let (_, p5) = post(
        &app,
        &plans,
        json!({"kind": "close_duplicates", "setId": dark_id, "keep": 4}),
    )
    .await;
    gh.edit_pull(OWNER, REPO, 5, |p| {
        p["head"]["sha"] = json!("f00dbabe00000000")
    });
    let p5 = apply_and_wait(&app, repo_id, p5["planId"].as_str().unwrap()).await;
    assert!(
        p5["results"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("#5 changed head since the analysis"),
        "{p5}"
    );
    assert!(gh.comments(OWNER, REPO, 5).is_empty());
    assert_eq!(repo_writes(&gh).len(), writes_before);

    // Labels, added and removed; one already there is skipped.
    let (s, p6) = post(
        &app,
        &plans,
        json!({"kind": "add_label", "setId": set_id, "label": "duplicate", "targets": [1, 3]}),
    )
    .await;
    assert_eq!(s, 201, "{p6}");
    gh.edit_pull(OWNER, REPO, 3, |p| {
        p["labels"] = json!([{"name": "Duplicate"}])
    });
    let p6 = apply_and_wait(&app, repo_id, p6["planId"].as_str().unwrap()).await;
    let outcomes: Vec<&str> = p6["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["done", "skipped"], "{p6}");
    let names = |n: i64| -> Vec<String> {
        gh.pull(OWNER, REPO, n).unwrap()["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(1), ["bug", "duplicate"]);
    let (_, p7) = post(
        &app,
        &plans,
        json!({"kind": "remove_label", "setId": set_id, "label": "duplicate", "targets": [1]}),
    )
    .await;
    let p7 = apply_and_wait(&app, repo_id, p7["planId"].as_str().unwrap()).await;
    assert_eq!(p7["status"], "done", "{p7}");
    assert_eq!(names(1), ["bug"]);

    // Everything is in the audit, newest first, with GitHub's answers.
    let (s, audit) = get(&app, &format!("/api/repos/{repo_id}/actions?limit=100")).await;
    assert_eq!(s, 200);
    let rows = audit["actions"].as_array().unwrap();
    assert!(
        rows.iter().any(|r| r["kind"] == "label_remove"
            && r["outcome"] == "done"
            && r["githubStatus"] == 200),
        "{audit}"
    );
    assert!(
        rows.iter()
            .any(|r| r["outcome"] == "refused"
                && r["detail"].as_str().unwrap().contains("kept PR #4"))
    );
    let ids: Vec<i64> = rows
        .iter()
        .map(|r| r["actionId"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]));
    app.stop().await;
}

#[tokio::test]
async fn not_duplicate_needs_no_app_and_dissolves_the_set() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo(OWNER, REPO, fake_repo());
    let app = App::start(settings(&svc, &gh.url())).await;
    let repo_id = scan(&app, "nd").await;
    let dark = set_with(&app, repo_id, 4).await;
    let (s, plan) = post(
        &app,
        &format!("/api/repos/{repo_id}/plans"),
        json!({"kind": "not_duplicate", "setId": dark["setId"], "actor": "m"}),
    )
    .await;
    assert_eq!(s, 201, "{plan}");
    assert_eq!(
        plan["steps"].as_array().unwrap().len(),
        1,
        "only the verdict: no App, no labels"
    );
    let done = apply_and_wait(&app, repo_id, plan["planId"].as_str().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    let left = sets(&app, repo_id, "").await;
    assert!(left.iter().all(|s| !members(s).contains(&4)), "{left:?}");
    let (s, b) = get(
        &app,
        &format!(
            "/api/repos/{repo_id}/duplicate-sets/{}",
            dark["setId"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(s, 404, "{b}");
    assert!(repo_writes(&gh).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn set_ids_survive_rescans_reanalyses_growth_and_a_closed_member() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo(OWNER, REPO, fake_repo());
    let app = App::start(settings(&svc, &gh.url())).await;
    let repo_id = scan(&app, "ids-1").await;
    let first = set_with(&app, repo_id, 1).await;
    let id = first["setId"].as_str().unwrap().to_string();
    // A maintainer's "base is #3" verdict on the set.
    let (s, b) = post(
        &app,
        &format!("/api/repos/{repo_id}/feedback"),
        json!({"target": "set", "setId": id, "members": [1, 2, 3], "verdict": "base_is", "baseNumber": 3}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    // The registry records the set (the refresh runs on its own queue, seconds later).
    let first_at = first_seen(&app, repo_id, &id).await;

    // A new duplicate arrives, #3 gets a new head (re-analysed), and nothing else changes.
    gh.with(|g| {
        let r = g.repos.get_mut("o/r").unwrap();
        let mut r2 = FakeRepo::default();
        pr(
            &mut r2,
            7,
            "Retry network calls (resubmitted)",
            "grace",
            "main",
            "grace/retry",
            &[],
            retry_change(),
        );
        r.pulls.push(r2.pulls.remove(0));
        r.files.insert(7, retry_change());
    });
    gh.edit_pull(OWNER, REPO, 3, |p| {
        p["head"]["sha"] = json!("0033bbbb0003");
        p["updated_at"] = json!("2026-03-02T10:00:00Z");
    });
    let _ = scan(&app, "ids-2").await;
    let grown = set_with(&app, repo_id, 1).await;
    assert_eq!(members(&grown), [1, 2, 3, 7]);
    assert_eq!(grown["setId"], id.as_str(), "it grew and kept its id");
    let base: Vec<i64> = grown["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"].as_str().unwrap().starts_with("base"))
        .map(|m| m["number"].as_i64().unwrap())
        .collect();
    assert_eq!(base, [3], "the verdict still points at it");
    assert_eq!(
        grown["firstSeenAt"], first_at,
        "the same set, first seen before"
    );

    // #1 is closed: the rest keeps the id.
    gh.edit_pull(OWNER, REPO, 1, |p| {
        p["state"] = json!("closed");
        p["closed_at"] = json!("2026-03-03T10:00:00Z");
    });
    let _ = scan(&app, "ids-3").await;
    let smaller = set_with(&app, repo_id, 2).await;
    assert_eq!(members(&smaller), [2, 3, 7]);
    assert_eq!(smaller["setId"], id.as_str());
    let (s, one) = get(&app, &format!("/api/repos/{repo_id}/duplicate-sets/{id}")).await;
    assert_eq!(s, 200, "{one}");
    assert_eq!(members(&one), [2, 3, 7]);
    let ids: BTreeSet<String> = sets(&app, repo_id, "")
        .await
        .iter()
        .map(|s| s["setId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    app.stop().await;
}

async fn first_seen(app: &App, repo_id: i64, id: &str) -> Value {
    wait_for(
        "the set's first sight",
        Duration::from_secs(30),
        async || {
            let (_, s) = get(app, &format!("/api/repos/{repo_id}/duplicate-sets/{id}")).await;
            s["firstSeenAt"]
                .is_string()
                .then(|| s["firstSeenAt"].clone())
        },
    )
    .await
}

#[tokio::test]
async fn the_digest_is_one_issue_edited_in_place_on_its_schedule() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo(OWNER, REPO, fake_repo());
    let mut s = app_settings(&svc, &gh);
    s.digest_schedule = Some("*/2 * * * * *".into());
    let app = App::start(s).await;
    let repo_id = scan(&app, "digest").await;
    install(&svc, repo_id).await;
    // Off by default: ticks pass, nothing is written.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(repo_writes(&gh).is_empty(), "{:?}", repo_writes(&gh));
    let (s, b) = post(&app, &format!("/api/repos/{repo_id}/digest"), json!({})).await;
    assert_eq!(s, 409, "{b}");

    gh.set_file(
        OWNER,
        REPO,
        SETTINGS_FILE,
        Some("[digest]\nenabled = true\nmax_sets = 5\n"),
    );
    let issue = wait_for("the digest issue", Duration::from_secs(30), async || {
        gh.issues(OWNER, REPO).first().cloned()
    })
    .await;
    let body = issue["body"].as_str().unwrap();
    assert!(body.contains("<!-- clawtriage:digest -->"));
    assert!(
        body.contains("Retry") && body.contains("dark mode"),
        "{body}"
    );
    assert_eq!(issue["labels"][0]["name"], "clawtriage:digest");
    let number = issue["number"].as_i64().unwrap();
    assert_eq!(number, 7, "issues and PRs share numbers");
    // Later runs edit that issue; with nothing new it says so.
    let edits = |gh: &FakeGithub| {
        gh.writes()
            .iter()
            .filter(|w| w.method == "PATCH" && w.path == format!("/repos/o/r/issues/{number}"))
            .count()
    };
    wait_for("two edits", Duration::from_secs(30), async || {
        (edits(&gh) >= 2).then_some(())
    })
    .await;
    let now = gh.issues(OWNER, REPO);
    assert_eq!(now.len(), 1, "never a new issue per run");
    assert!(
        now[0]["body"]
            .as_str()
            .unwrap()
            .contains("No new duplicate set"),
        "{}",
        now[0]["body"]
    );
    // A lost database: the issue is found again by its label and marker.
    svc.client()
        .await
        .batch_execute("DELETE FROM digest_state")
        .await
        .unwrap();
    let before = edits(&gh);
    wait_for(
        "an edit after the loss",
        Duration::from_secs(30),
        async || (edits(&gh) > before).then_some(()),
    )
    .await;
    assert_eq!(gh.issues(OWNER, REPO).len(), 1);
    let (_, audit) = get(&app, &format!("/api/repos/{repo_id}/actions")).await;
    let kinds: BTreeSet<&str> = audit["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains("digest_create") && kinds.contains("digest_update"),
        "{audit}"
    );
    app.stop().await;
}

/// Deliveries a receiver got: headers and body of each.
type Received = Arc<Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;

/// A receiver on loopback that records deliveries and answers 503 to the first `fail` of them.
async fn receiver(fail: usize) -> (String, Received) {
    let got: Received = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let g = g.clone();
                async move {
                    let mut v = g.lock().unwrap();
                    v.push((headers, body.to_vec()));
                    if v.len() <= fail {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        axum::http::StatusCode::OK
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

#[tokio::test]
async fn new_and_grown_sets_are_posted_signed_and_retried_with_backoff() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo(OWNER, REPO, fake_repo());
    let (url, got) = receiver(2).await;
    let mut s = settings(&svc, &gh.url());
    s.notify_webhook_url = Some(url);
    s.notify_webhook_secret = Some("hook-secret".into());
    s.public_url = Some("https://triage.example".into());
    let app = App::start(s).await;
    let repo_id = scan(&app, "hook-1").await;
    // The scan finished before anything was delivered: two 503s, then a 200, the same delivery.
    let deliveries = wait_for("three attempts", Duration::from_secs(60), async || {
        let v = got.lock().unwrap().clone();
        (v.len() >= 3).then_some(v)
    })
    .await;
    let ids: BTreeSet<&str> = deliveries
        .iter()
        .map(|(h, _)| h["x-clawtriage-delivery"].to_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "retries carry the same delivery id");
    let (headers, body) = &deliveries[2];
    assert_eq!(headers["x-clawtriage-event"], "duplicate_sets.changed");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        headers["x-clawtriage-signature-256"].to_str().unwrap(),
        common::sign_webhook("hook-secret", body),
        "signed like GitHub's deliveries"
    );
    let v: Value = serde_json::from_slice(body).unwrap();
    assert!(
        v["text"]
            .as_str()
            .unwrap()
            .starts_with("o/r: 2 new duplicate sets"),
        "{v}"
    );
    assert_eq!(v["blocks"][0]["type"], "section", "Slack-compatible");
    let announced: BTreeSet<String> = v["clawtriage"]["sets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["setId"].as_str().unwrap().to_string())
        .collect();
    let current: BTreeSet<String> = sets(&app, repo_id, "")
        .await
        .iter()
        .map(|s| s["setId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(announced, current);
    assert!(
        v["blocks"][1]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("https://triage.example/#/sets?repo=")
    );

    // A set grows: one more delivery saying so.
    gh.with(|g| {
        let r = g.repos.get_mut("o/r").unwrap();
        let mut r2 = FakeRepo::default();
        pr(
            &mut r2,
            8,
            "Dark mode (again)",
            "heidi",
            "release-1.0",
            "heidi/dark",
            &[],
            theme_change(),
        );
        r.pulls.push(r2.pulls.remove(0));
        r.files.insert(8, theme_change());
    });
    let _ = scan(&app, "hook-2").await;
    let grew = wait_for("the growth delivery", Duration::from_secs(60), async || {
        let v = got.lock().unwrap().clone();
        (v.len() >= 4).then(|| serde_json::from_slice::<Value>(&v[3].1).unwrap())
    })
    .await;
    let sets = grew["clawtriage"]["sets"].as_array().unwrap();
    assert_eq!(sets.len(), 1, "{grew}");
    assert_eq!(
        (
            sets[0]["change"].as_str(),
            sets[0]["previousSize"].as_i64(),
            sets[0]["size"].as_i64()
        ),
        (Some("grew"), Some(2), Some(3))
    );
    let c = svc.client().await;
    let rows = c
        .query(
            "SELECT status, attempts FROM outbound_deliveries ORDER BY created_at",
            &[],
        )
        .await
        .unwrap();
    let st: Vec<(String, i32)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        st,
        [("delivered".to_string(), 3), ("delivered".to_string(), 1)]
    );
    let (_, audit) = get(&app, &format!("/api/repos/{repo_id}/actions")).await;
    assert!(
        audit["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "webhook" && a["outcome"] == "done"),
        "{audit}"
    );
    app.stop().await;
}
