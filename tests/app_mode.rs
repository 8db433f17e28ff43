//! GitHub App mode against real Postgres and Redis and a fake GitHub on loopback: signed
//! webhook deliveries (GitHub's own example payloads, signed here), replays, stale events,
//! installation changes, installation tokens and their refresh, the App JWT, and check runs
//! created once per head and updated afterwards, with the opt-in label and comment.

mod common;

use std::time::Duration;

use clawtriage::config::Settings;
use common::fake_github::FakeRepo;
use common::{App, FakeGithub, Services, settings, wait_for};
use serde_json::{Value, json};

const SECRET: &str = "webhook-secret-for-tests";
const APP_ID: u64 = 4242;
const OWNER: &str = "Codertocat";
const REPO: &str = "Hello-World";

fn fixture_path(rel: &str) -> String {
    format!("{}/tests/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"))
}

fn payload(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture_path(&format!("webhooks/{name}"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn test_key() -> String {
    std::fs::read_to_string(fixture_path("app/test-app-key.pem")).unwrap()
}

fn app_settings(svc: &Services, gh: &FakeGithub, mode: &str) -> Settings {
    let mut s = settings(svc, &gh.url());
    s.github_mode = mode.into();
    s.github_app_id = Some(APP_ID.to_string());
    s.github_private_key_pem = Some(test_key());
    s.github_webhook_secret = Some(SECRET.into());
    s.public_url = Some("https://triage.example".into());
    s.public_scan_allowed_repos = format!("{OWNER}/{REPO},o/r");
    s
}

async fn deliver_raw(
    app: &App,
    event: &str,
    delivery: &str,
    body: Vec<u8>,
    signature: Option<String>,
) -> (u16, Value) {
    let mut req = app
        .http
        .post(app.url("/webhooks/github"))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("user-agent", "GitHub-Hookshot/test");
    if let Some(s) = signature {
        req = req.header("x-hub-signature-256", s);
    }
    let r = req.body(body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn deliver(app: &App, event: &str, delivery: &str, body: &Value) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let sig = common::sign_webhook(SECRET, &bytes);
    deliver_raw(app, event, delivery, bytes, Some(sig)).await
}

fn created_at(number: i64) -> String {
    format!("2026-01-01T{:02}:{:02}:00Z", number / 60, number % 60)
}

/// A `pull_request` delivery from GitHub's own example, about PR `number` at `head`.
fn pr_event(action: &str, number: i64, head: &str, updated_at: &str, title: &str) -> Value {
    let mut v = payload("pull_request.opened.2.json");
    v["action"] = json!(action);
    v["number"] = json!(number);
    let pr = &mut v["pull_request"];
    pr["number"] = json!(number);
    pr["title"] = json!(title);
    pr["body"] = json!("");
    pr["draft"] = json!(false);
    pr["head"]["sha"] = json!(head);
    pr["created_at"] = json!(created_at(number));
    pr["updated_at"] = json!(updated_at);
    pr["html_url"] = json!(format!("https://github.com/{OWNER}/{REPO}/pull/{number}"));
    if action == "closed" {
        pr["state"] = json!("closed");
        pr["closed_at"] = json!(updated_at);
    } else {
        pr["state"] = json!("open");
        pr["closed_at"] = Value::Null;
    }
    pr["merged_at"] = Value::Null;
    v
}

fn prod_files(name: &str, body: &str) -> Vec<Value> {
    let patch = format!(
        "@@ -1,4 +1,9 @@\n import {{ Page }} from './page';\n+export function {name}(page: Page, timeout: number) {{\n+  const deadline = Date.now() + timeout;\n+  {body}\n+  return page.waitForDeadline(deadline);\n+}}\n const a = 1;\n const b = 2;\n const c = 3;\n"
    );
    vec![
        json!({"filename": format!("packages/core/src/{name}.ts"), "status": "modified",
        "additions": 5, "deletions": 0, "changes": 5, "patch": patch}),
    ]
}

fn fake_repo(files: &[(i64, Vec<Value>)]) -> FakeRepo {
    let mut repo = FakeRepo {
        default_branch: "main".into(),
        ..Default::default()
    };
    for (n, f) in files {
        repo.files.insert(*n, f.clone());
    }
    repo
}

/// How many rows of the index PR `number` has under `key` (0 or 1).
async fn index_key_count(c: &tokio_postgres::Client, number: i64, key: &str) -> i64 {
    c.query_one(
        "SELECT count(*) FROM index_keys WHERE number = $1 AND key = $2",
        &[&number, &clawtriage::store::analysis::key_id(key)],
    )
    .await
    .unwrap()
    .get(0)
}

/// The first column of a query's rows, as text.
async fn texts(c: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    c.query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn wait_analysed(c: &tokio_postgres::Client, number: i64, head: &str) {
    wait_for(
        &format!("analysis of #{number} at {head}"),
        Duration::from_secs(60),
        async || {
            let r = c
                .query_opt(
                    "SELECT status FROM analysis_runs WHERE number = $1 AND head_sha = $2",
                    &[&number, &head],
                )
                .await
                .unwrap();
            (r.map(|r| r.get::<_, String>(0)).as_deref() == Some("done")).then_some(())
        },
    )
    .await
}

fn runs_for(gh: &FakeGithub, head: &str) -> Vec<(i64, Value)> {
    gh.check_runs()
        .into_iter()
        .filter(|(_, r)| r["head_sha"] == head)
        .collect()
}

fn check_posts(gh: &FakeGithub) -> usize {
    gh.writes()
        .iter()
        .filter(|w| w.method == "POST" && w.path.ends_with("/check-runs"))
        .count()
}

fn check_patches(gh: &FakeGithub) -> usize {
    gh.writes()
        .iter()
        .filter(|w| w.method == "PATCH" && w.path.contains("/check-runs/"))
        .count()
}

async fn get(app: &App, path: &str) -> (u16, Value) {
    let r = app.http.get(app.url(path)).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn repo_names(app: &App) -> Vec<String> {
    let (s, b) = get(app, "/api/repos").await;
    assert_eq!(s, 200, "{b}");
    b["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["owner"].as_str().unwrap(),
                r["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn the_app_jwt_has_githubs_claims_and_verifies_with_the_public_key() {
    use clawtriage::github::AppAuth;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
    let pem = secrecy::SecretString::from(test_key());
    let auth = AppAuth::new(APP_ID, &pem, None).unwrap();
    let now = chrono::Utc::now().timestamp();
    let jwt = auth.jwt_at(now).unwrap();
    use secrecy::ExposeSecret;
    let public = std::fs::read(fixture_path("app/test-app-key.pub.pem")).unwrap();
    let mut v = Validation::new(Algorithm::RS256);
    v.set_issuer(&[APP_ID.to_string()]);
    v.set_required_spec_claims(&["exp", "iat", "iss"]);
    let data = decode::<clawtriage::github::app::Claims>(
        jwt.expose_secret(),
        &DecodingKey::from_rsa_pem(&public).unwrap(),
        &v,
    )
    .unwrap();
    assert_eq!(data.header.alg, Algorithm::RS256);
    assert_eq!(data.claims.iss, "4242");
    assert_eq!(data.claims.iat, now - 60, "backdated for clock skew");
    assert_eq!(data.claims.exp, now + 540);
    assert!(
        data.claims.exp - data.claims.iat <= 600,
        "GitHub refuses over 10 minutes"
    );
    // A token whose claims were altered no longer verifies.
    let parts: Vec<&str> = jwt.expose_secret().split('.').collect();
    let forged_claims = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        format!(r#"{{"iat":{},"exp":{},"iss":"9999"}}"#, now - 60, now + 540),
    );
    let forged = format!("{}.{forged_claims}.{}", parts[0], parts[2]);
    let mut any_iss = Validation::new(Algorithm::RS256);
    any_iss.set_required_spec_claims(&["exp"]);
    let err = decode::<clawtriage::github::app::Claims>(
        &forged,
        &DecodingKey::from_rsa_pem(&public).unwrap(),
        &any_iss,
    )
    .unwrap_err();
    assert_eq!(
        err.kind(),
        &jsonwebtoken::errors::ErrorKind::InvalidSignature
    );
    // A key with literal \n (as env files carry it) works; garbage is refused.
    let escaped = secrecy::SecretString::from(test_key().replace('\n', "\\n"));
    assert!(AppAuth::new(APP_ID, &escaped, None).is_ok());
    let bad = secrecy::SecretString::from("-----BEGIN RSA PRIVATE KEY-----\nnope\n".to_string());
    assert!(AppAuth::new(APP_ID, &bad, None).is_err());
}

#[test]
fn a_bad_private_key_stops_start_up_with_a_clear_message() {
    let mut s = Settings {
        github_mode: "app".into(),
        github_app_id: Some("1".into()),
        github_private_key_pem: Some("not a key".into()),
        github_webhook_secret: Some("s".into()),
        database_url: Some("postgres://u@127.0.0.1/db".into()),
        redis_url: Some("redis://127.0.0.1/".into()),
        ..Default::default()
    };
    s.host = "127.0.0.1".into();
    s.port = "8080".into();
    let err = s.validate().unwrap_err().to_string();
    assert!(err.contains("GITHUB_PRIVATE_KEY_PEM"), "{err}");
}

#[tokio::test]
async fn the_webhook_route_is_a_json_404_in_public_mode() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    let app = App::start(settings(&svc, &gh.url())).await;
    let body = serde_json::to_vec(&payload("ping.1.json")).unwrap();
    let sig = common::sign_webhook(SECRET, &body);
    let (s, b) = deliver_raw(&app, "ping", "d-public", body, Some(sig)).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{b}"
    );
    app.stop().await;
}

#[tokio::test]
async fn signatures_are_checked_before_parsing_and_the_body_limit_is_the_routes_own() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    let app = App::start(app_settings(&svc, &gh, "app")).await;
    let ping = serde_json::to_vec(&payload("ping.1.json")).unwrap();

    let (s, b) = deliver_raw(&app, "ping", "d1", ping.clone(), None).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{b}"
    );
    let wrong = common::sign_webhook(SECRET, b"another body");
    let (s, _) = deliver_raw(&app, "ping", "d1", ping.clone(), Some(wrong)).await;
    assert_eq!(s, 401);
    // A signature over the right body with another secret.
    let other = common::sign_webhook("other secret", &ping);
    let (s, _) = deliver_raw(&app, "ping", "d1", ping.clone(), Some(other)).await;
    assert_eq!(s, 401);
    // Not even parsed when unsigned: garbage gets 401, not 400.
    let (s, _) = deliver_raw(&app, "ping", "d1", b"{not json".to_vec(), None).await;
    assert_eq!(s, 401);
    // Signed garbage is a 400.
    let junk = b"{not json".to_vec();
    let sig = common::sign_webhook(SECRET, &junk);
    let (s, _) = deliver_raw(&app, "ping", "d-junk", junk, Some(sig)).await;
    assert_eq!(s, 400);

    let (s, b) = deliver(&app, "ping", "d1", &payload("ping.1.json")).await;
    assert_eq!((s, &b["pong"]), (200, &json!(true)), "{b}");
    let (s, b) = deliver(&app, "ping", "d1", &payload("ping.1.json")).await;
    assert_eq!((s, &b["duplicate"]), (200, &json!(true)), "{b}");

    // Events the appliance does not handle, and unhandled actions of handled ones.
    let mut star = payload("ping.1.json");
    star["action"] = json!("created");
    let (s, b) = deliver(&app, "star", "d2", &star).await;
    assert_eq!((s, &b["skipped"]), (202, &json!(true)), "{b}");
    let mut labeled = pr_event("labeled", 5, "abc", "2026-01-02T00:00:00Z", "t");
    labeled["label"] = json!({"name": "x"});
    let (s, b) = deliver(&app, "pull_request", "d3", &labeled).await;
    assert_eq!((s, &b["skipped"]), (202, &json!(true)), "{b}");

    // 2 MB is over the API's limit (64 KB in tests) but fine for webhooks...
    let mut big = payload("ping.1.json");
    big["padding"] = json!("x".repeat(2 * 1024 * 1024));
    let (s, b) = deliver(&app, "ping", "d-big", &big).await;
    assert_eq!(s, 200, "{b}");
    // ...while the API keeps its own.
    let r = app
        .http
        .post(app.url("/api/ops/public-scan"))
        .bearer_auth("ops-token-for-tests-0123456789abcdef")
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"owner":"o","repo":"r","snapshot":"{}"}}"#,
            "x".repeat(70_000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    // Over GitHub's 25 MB: 413, whatever the signature.
    let huge = vec![b' '; 25 * 1024 * 1024 + 10];
    let sig = common::sign_webhook(SECRET, &huge);
    let (s, b) = deliver_raw(&app, "ping", "d-huge", huge, Some(sig)).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (413, Some("payload_too_large")),
        "{b}"
    );
    app.stop().await;
}

#[tokio::test]
async fn pr_events_queue_one_analysis_per_head_replays_do_nothing_and_edits_tell_the_truth() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo(
        OWNER,
        REPO,
        fake_repo(&[(10, prod_files("waitForSelectorX", "return 1;"))]),
    );
    let app = App::start(app_settings(&svc, &gh, "app")).await;
    let c = svc.client().await;
    let head = "a".repeat(40);
    let ev = pr_event(
        "opened",
        10,
        &head,
        "2026-02-01T10:00:00Z",
        "Add waitForSelectorX",
    );
    let (s, b) = deliver(&app, "pull_request", "pr-1", &ev).await;
    assert_eq!((s, &b["enqueued"]), (202, &json!(true)), "{b}");
    assert_eq!(
        b["jobId"],
        format!("analyse:codertocat/hello-world:10:{head}")
    );
    // Redelivery: nothing happens.
    let (s, b) = deliver(&app, "pull_request", "pr-1", &ev).await;
    assert_eq!((s, &b["duplicate"]), (200, &json!(true)), "{b}");
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM webhook_deliveries WHERE delivery_id = 'pr-1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    wait_analysed(&c, 10, &head).await;

    // An edit of the title with the same head: stored, nothing queued, and the answer says so.
    let edited = pr_event(
        "edited",
        10,
        &head,
        "2026-02-01T11:00:00Z",
        "Add waitForSelectorX (v2)",
    );
    let (s, b) = deliver(&app, "pull_request", "pr-2", &edited).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["enqueued"], json!(false), "{b}");
    assert_eq!(b["headChanged"], json!(false), "{b}");
    let title: String = c
        .query_one("SELECT title FROM pull_requests WHERE number = 10", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(title, "Add waitForSelectorX (v2)");
    // ready_for_review with the same head: nothing to analyse either.
    let ready = pr_event(
        "ready_for_review",
        10,
        &head,
        "2026-02-01T12:00:00Z",
        "Add waitForSelectorX (v2)",
    );
    let (s, b) = deliver(&app, "pull_request", "pr-3", &ready).await;
    assert_eq!((s, &b["enqueued"]), (200, &json!(false)), "{b}");
    let runs: i64 = c
        .query_one("SELECT count(*) FROM analysis_runs WHERE number = 10", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(runs, 1);

    // The files were fetched with the installation token, the token with the App JWT.
    let files: Vec<_> = gh
        .log()
        .into_iter()
        .filter(|l| l.path.contains("/pulls/10/files"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].auth.as_deref(), Some("Bearer ghs_fake_1_1"));
    let tokens: Vec<_> = gh
        .writes()
        .into_iter()
        .filter(|w| w.path == "/app/installations/1/access_tokens")
        .collect();
    assert_eq!(tokens.len(), 1);
    assert!(
        tokens[0].auth.as_deref().unwrap().starts_with("Bearer ey"),
        "a JWT"
    );

    // One neutral check run for the head, within GitHub's limits.
    let run = wait_for("the check run", Duration::from_secs(30), async || {
        runs_for(&gh, &head).into_iter().next()
    })
    .await
    .1;
    assert_eq!(run["name"], "ClawTriage");
    assert_eq!(run["conclusion"], "neutral");
    assert_eq!(run["status"], "completed");
    assert_eq!(run["output"]["title"], "No likely duplicates found");
    assert!(run["output"]["summary"].as_str().unwrap().len() <= 65_535);
    assert_eq!(
        run["details_url"],
        "https://triage.example/#/pr?repo=1&n=10"
    );
    let stored: i64 = c
        .query_one("SELECT count(*) FROM check_runs WHERE number = 10", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1);
    app.stop().await;
}

#[tokio::test]
async fn an_older_head_arriving_after_a_newer_one_is_ignored() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo(
        OWNER,
        REPO,
        fake_repo(&[(20, prod_files("retryLater", "return 2;"))]),
    );
    let app = App::start(app_settings(&svc, &gh, "app")).await;
    let c = svc.client().await;
    let (a, b_sha, c_sha) = ("1".repeat(40), "2".repeat(40), "3".repeat(40));
    let (s, _) = deliver(
        &app,
        "pull_request",
        "s-1",
        &pr_event("opened", 20, &a, "2026-03-01T10:00:00Z", "Retry later"),
    )
    .await;
    assert_eq!(s, 202);
    // The newest push arrives first...
    let (s, r) = deliver(
        &app,
        "pull_request",
        "s-3",
        &pr_event(
            "synchronize",
            20,
            &c_sha,
            "2026-03-01T10:02:00Z",
            "Retry later",
        ),
    )
    .await;
    assert_eq!((s, &r["headChanged"]), (202, &json!(true)), "{r}");
    // ...then the older one.
    let (s, r) = deliver(
        &app,
        "pull_request",
        "s-2",
        &pr_event(
            "synchronize",
            20,
            &b_sha,
            "2026-03-01T10:01:00Z",
            "Retry later",
        ),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["stale"], json!(true), "{r}");
    assert_eq!(r["enqueued"], json!(false), "{r}");
    let head: String = c
        .query_one("SELECT head_sha FROM pull_requests WHERE number = 20", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(head, c_sha);
    let outcome: String = c
        .query_one(
            "SELECT outcome FROM webhook_deliveries WHERE delivery_id = 's-2'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(outcome, "stale");
    wait_analysed(&c, 20, &c_sha).await;
    let stale_runs: i64 = c
        .query_one(
            "SELECT count(*) FROM analysis_runs WHERE number = 20 AND head_sha = $1",
            &[&b_sha],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stale_runs, 0, "the stale head is never analysed");
    app.stop().await;
}

#[tokio::test]
async fn check_runs_are_updated_not_duplicated_and_a_closed_pr_leaves_the_sets() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    let same = prod_files(
        "clickWithRetry",
        "await page.click('#submit', { retries: 3 });",
    );
    gh.add_repo(OWNER, REPO, fake_repo(&[(30, same.clone()), (31, same)]));
    let app = App::start(app_settings(&svc, &gh, "app")).await;
    let c = svc.client().await;
    let (h30, h31) = ("c".repeat(40), "d".repeat(40));
    deliver(
        &app,
        "pull_request",
        "c-1",
        &pr_event(
            "opened",
            30,
            &h30,
            "2026-04-01T10:00:00Z",
            "Click with retry",
        ),
    )
    .await;
    wait_analysed(&c, 30, &h30).await;
    let (id30, first) = wait_for("check run of #30", Duration::from_secs(30), async || {
        runs_for(&gh, &h30).into_iter().next()
    })
    .await;
    assert_eq!(first["output"]["title"], "No likely duplicates found");
    // /metrics times the webhook → check run path (nothing else records that histogram).
    let text = common::scrape(&app.http, &app.base, "ops-token-for-tests-0123456789abcdef").await;
    assert!(
        common::prom_value(&text, "clawtriage_webhook_to_check_run_seconds_count", &[]) >= 1.0,
        "{text}"
    );
    // Asked again with nothing changed (an immediate and a trailing post): nothing is written.
    let again = clawtriage::jobs::CheckRunJob {
        repo_id: 1,
        owner: OWNER.into(),
        repo: REPO.into(),
        number: 30,
        head_sha: h30.clone(),
        slot: 0,
    };
    for _ in 0..3 {
        app.state.queues.push_check_run(&again).await.unwrap();
    }
    // Past the end of the debounce window, when the trailing post has run.
    tokio::time::sleep(clawtriage::jobs::check_run::DEBOUNCE + Duration::from_secs(3)).await;
    assert_eq!(
        (check_posts(&gh), check_patches(&gh)),
        (1, 0),
        "an unchanged check run is not written again"
    );

    deliver(
        &app,
        "pull_request",
        "c-2",
        &pr_event("opened", 31, &h31, "2026-04-01T11:00:00Z", "Retry clicks"),
    )
    .await;
    wait_analysed(&c, 31, &h31).await;
    let run31 = wait_for("check run of #31", Duration::from_secs(30), async || {
        runs_for(&gh, &h31).into_iter().next()
    })
    .await
    .1;
    assert_eq!(
        run31["output"]["title"],
        "Likely duplicate of #30 (same change)"
    );
    let summary = run31["output"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("| #30 Click with retry | same change |"),
        "{summary}"
    );
    assert!(summary.contains("#/pair?repo=1&a=30&b=31"), "{summary}");
    // #30's check run now names #31: the same check run, updated.
    let updated = wait_for(
        "#30's check run to be updated",
        Duration::from_secs(30),
        async || {
            let r = gh.check_runs().get(&id30).cloned()?;
            (r["output"]["title"] != "No likely duplicates found").then_some(r)
        },
    )
    .await;
    assert_eq!(
        updated["output"]["title"],
        "Likely duplicate of #31 (same change)"
    );
    assert_eq!(updated["conclusion"], "neutral");
    assert_eq!(runs_for(&gh, &h30).len(), 1);
    assert_eq!(check_posts(&gh), 2, "one check run per head");
    assert!(check_patches(&gh) >= 1);
    // Opt-ins are off by default.
    assert!(
        !gh.writes()
            .iter()
            .any(|w| w.path.contains("/labels") || w.path.contains("/comments")),
        "no label or comment unless turned on"
    );

    let (_, sets) = get(&app, "/api/repos/1/duplicate-sets").await;
    let members: Vec<i64> = sets["sets"][0]["members"]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .map(|m| m["number"].as_i64().unwrap())
        .collect();
    assert_eq!(members.len(), 2, "{sets}");

    // #31 closes: it leaves the sets and the index.
    let (s, b) = deliver(
        &app,
        "pull_request",
        "c-3",
        &pr_event("closed", 31, &h31, "2026-04-01T12:00:00Z", "Retry clicks"),
    )
    .await;
    assert_eq!((s, &b["enqueued"]), (200, &json!(false)), "{b}");
    let (_, sets) = get(&app, "/api/repos/1/duplicate-sets").await;
    assert_eq!(sets["sets"], json!([]), "{sets}");
    let keys: i64 = c
        .query_one("SELECT count(*) FROM index_keys WHERE number = 31", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(keys, 0);
    let state: String = c
        .query_one("SELECT state FROM pull_requests WHERE number = 31", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(state, "closed");

    // #30's body is edited to name an issue: the head is analysed again and the reference
    // enters its signature (an edit of anything else changes nothing).
    assert_eq!(index_key_count(&c, 30, "ref:4242").await, 0);
    let mut edited = pr_event(
        "edited",
        30,
        &h30,
        "2026-04-01T12:30:00Z",
        "Click with retry",
    );
    edited["pull_request"]["body"] = json!("Fixes #4242");
    edited["changes"] = json!({"body": {"from": ""}});
    let (s, b) = deliver(&app, "pull_request", "c-edit", &edited).await;
    assert_eq!((s, &b["enqueued"]), (202, &json!(true)), "{b}");
    wait_for(
        "#30 re-analysed with its new reference",
        Duration::from_secs(30),
        async || (index_key_count(&c, 30, "ref:4242").await == 1).then_some(()),
    )
    .await;
    let mut relabelled = pr_event(
        "edited",
        30,
        &h30,
        "2026-04-01T12:40:00Z",
        "Click with retry",
    );
    relabelled["pull_request"]["body"] = json!("Fixes #4242");
    relabelled["changes"] = json!({"base": {"ref": {"from": "main"}}});
    let (s, b) = deliver(&app, "pull_request", "c-edit-2", &relabelled).await;
    assert_eq!((s, &b["enqueued"]), (200, &json!(false)), "{b}");

    // Reopened under a new title: the same head is analysed again; no second check run is
    // created, and #30's check run, which lists #31 by title, is updated.
    let (s, b) = deliver(
        &app,
        "pull_request",
        "c-4",
        &pr_event(
            "reopened",
            31,
            &h31,
            "2026-04-01T13:00:00Z",
            "Retry clicks again",
        ),
    )
    .await;
    assert_eq!((s, &b["enqueued"]), (202, &json!(true)), "{b}");
    wait_analysed(&c, 31, &h31).await;
    wait_for(
        "#30's check run to name #31's new title",
        Duration::from_secs(30),
        async || {
            let r = gh.check_runs().get(&id30).cloned()?;
            r["output"]["summary"]
                .as_str()?
                .contains("| #31 Retry clicks again |")
                .then_some(())
        },
    )
    .await;
    assert_eq!(runs_for(&gh, &h31).len(), 1);
    assert_eq!(check_posts(&gh), 2);
    let (_, sets) = get(&app, "/api/repos/1/duplicate-sets").await;
    assert_eq!(
        sets["sets"].as_array().map(|a| a.len()),
        Some(1),
        "back in the sets: {sets}"
    );
    app.stop().await;
}

#[tokio::test]
async fn label_and_comment_are_opt_in_and_posted_once_per_pair() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    let same = prod_files(
        "fillSlowly",
        "await page.fill('#name', 'x', { delay: 10 });",
    );
    gh.add_repo(OWNER, REPO, fake_repo(&[(50, same.clone()), (51, same)]));
    let mut s = app_settings(&svc, &gh, "app");
    s.check_run_label = "on".into();
    s.check_run_comment = "on".into();
    let app = App::start(s).await;
    let c = svc.client().await;
    let (h50, h51) = ("e".repeat(40), "f".repeat(40));
    deliver(
        &app,
        "pull_request",
        "l-1",
        &pr_event("opened", 50, &h50, "2026-05-01T10:00:00Z", "Fill slowly"),
    )
    .await;
    wait_analysed(&c, 50, &h50).await;
    deliver(
        &app,
        "pull_request",
        "l-2",
        &pr_event("opened", 51, &h51, "2026-05-01T11:00:00Z", "Slow fill"),
    )
    .await;
    wait_analysed(&c, 51, &h51).await;
    let notices = async || {
        let w = gh.writes();
        let labels: Vec<_> = w
            .iter()
            .filter(|w| w.path.ends_with("/labels"))
            .cloned()
            .collect();
        let comments: Vec<_> = w
            .iter()
            .filter(|w| w.path.ends_with("/comments"))
            .cloned()
            .collect();
        (labels, comments)
    };
    wait_for("label and comment", Duration::from_secs(30), async || {
        let (l, c) = notices().await;
        (!l.is_empty() && !c.is_empty()).then_some(())
    })
    .await;
    // Re-analysis of the later PR (close, reopen) must not post them again.
    deliver(
        &app,
        "pull_request",
        "l-3",
        &pr_event("closed", 51, &h51, "2026-05-01T12:00:00Z", "Slow fill"),
    )
    .await;
    let patches = check_patches(&gh);
    deliver(
        &app,
        "pull_request",
        "l-4",
        &pr_event("reopened", 51, &h51, "2026-05-01T13:00:00Z", "Slow fill"),
    )
    .await;
    wait_analysed(&c, 51, &h51).await;
    wait_for(
        "the check run update after reopening",
        Duration::from_secs(30),
        async || (check_patches(&gh) > patches).then_some(()),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (labels, comments) = notices().await;
    assert_eq!(labels.len(), 1, "{labels:?}");
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert_eq!(
        labels[0].path,
        format!("/repos/{OWNER}/{REPO}/issues/51/labels")
    );
    assert_eq!(
        labels[0].body,
        json!({"labels": ["triage:possible-duplicate"]})
    );
    assert!(
        labels[0]
            .auth
            .as_deref()
            .unwrap()
            .starts_with("Bearer ghs_")
    );
    let text = comments[0].body["body"].as_str().unwrap();
    assert!(text.contains("same change as #50"), "{text}");
    let rows: i64 = c
        .query_one("SELECT count(*) FROM pair_notices", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 2);
    app.stop().await;
}

#[tokio::test]
async fn installation_tokens_are_cached_and_refreshed_at_expiry() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    // Tokens that live 302 s: with the 5-minute refresh margin they are reused for 2 s.
    gh.with(|g| g.app.token_ttl_secs = 302);
    let app = App::start(app_settings(&svc, &gh, "app")).await;
    let github = &app.state.github;
    let t1 = github.installation_token(957387).await.unwrap();
    let t2 = github.installation_token(957387).await.unwrap();
    use secrecy::ExposeSecret;
    assert_eq!(t1.expose_secret(), t2.expose_secret());
    assert_eq!(gh.with(|g| g.app.tokens_issued), 1);
    // Another installation has its own token.
    let other = github.installation_token(2).await.unwrap();
    assert_ne!(other.expose_secret(), t1.expose_secret());
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let t3 = github.installation_token(957387).await.unwrap();
    assert_ne!(
        t3.expose_secret(),
        t1.expose_secret(),
        "refreshed at expiry"
    );
    assert_eq!(gh.with(|g| g.app.tokens_issued), 3);
    // A long-lived token is reused.
    gh.with(|g| g.app.token_ttl_secs = 3600);
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let t4 = github.installation_token(957387).await.unwrap();
    for _ in 0..5 {
        let t = github.installation_token(957387).await.unwrap();
        assert_eq!(t.expose_secret(), t4.expose_secret());
    }
    assert_eq!(gh.with(|g| g.app.tokens_issued), 4);
    for w in gh.writes() {
        assert!(w.auth.as_deref().unwrap().starts_with("Bearer ey"), "{w:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn installation_events_attach_and_deactivate_repositories() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    // The repositories of the payloads, with open PRs that predate the installation.
    let with_open_prs = |prs: &[(i64, &str)]| {
        let mut repo = fake_repo(&[]);
        for (n, name) in prs {
            let (pr, files) = common::fake_github::simple_pr(
                *n,
                &format!("{n}").repeat(40)[..40],
                name,
                prod_files(name, "return 1;"),
            );
            repo.pulls.push(pr);
            repo.files.insert(*n, files);
        }
        repo
    };
    gh.add_repo(
        "Codertocat",
        "Hello-World",
        with_open_prs(&[(1, "helloOne"), (2, "helloTwo")]),
    );
    gh.add_repo("Codertocat", "Space", with_open_prs(&[(5, "spaceFive")]));
    let app = App::start(app_settings(&svc, &gh, "app")).await;
    let c = svc.client().await;
    let (s, b) = deliver(
        &app,
        "installation",
        "i-1",
        &payload("installation.created.1.json"),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(repo_names(&app).await, vec!["Codertocat/Hello-World"]);
    // Installing queued a scan of the repository's open PRs, run with the installation's token.
    assert_eq!(
        b["scansQueued"],
        json!(["scan:codertocat/hello-world:installed-i-1"]),
        "{b}"
    );
    let scan = app
        .wait_scan(
            "scan:codertocat/hello-world:installed-i-1",
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(
        (&scan["state"], &scan["prsAnalyzed"], &scan["auth"]),
        (&json!("done"), &json!(2), &json!("installation")),
        "{scan}"
    );
    let (s, b) = deliver(
        &app,
        "installation_repositories",
        "i-2",
        &payload("installation_repositories.added.1.json"),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        repo_names(&app).await,
        vec!["Codertocat/Hello-World", "Codertocat/Space"]
    );
    assert_eq!(
        b["scansQueued"],
        json!(["scan:codertocat/space:installed-i-2"]),
        "{b}"
    );
    let scan = app
        .wait_scan(
            "scan:codertocat/space:installed-i-2",
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(
        (&scan["state"], &scan["prsAnalyzed"]),
        (&json!("done"), &json!(1)),
        "{scan}"
    );
    // Space leaves the installation.
    let mut removed = payload("installation_repositories.removed.1.json");
    removed["installation"]["id"] = json!(957387);
    removed["repositories_removed"] =
        payload("installation_repositories.added.1.json")["repositories_added"].clone();
    let (s, b) = deliver(&app, "installation_repositories", "i-3", &removed).await;
    assert_eq!((s, &b["repositoriesDeactivated"]), (200, &json!(1)), "{b}");
    assert_eq!(repo_names(&app).await, vec!["Codertocat/Hello-World"]);
    // Suspended, then back.
    let mut suspend = payload("installation.suspend.1.json");
    suspend["installation"]["id"] = json!(957387);
    deliver(&app, "installation", "i-4", &suspend).await;
    assert!(repo_names(&app).await.is_empty());
    let mut unsuspend = payload("installation.unsuspend.1.json");
    unsuspend["installation"]["id"] = json!(957387);
    deliver(&app, "installation", "i-5", &unsuspend).await;
    assert_eq!(repo_names(&app).await, vec!["Codertocat/Hello-World"]);
    // The App is uninstalled: the repository is deactivated and loses its installation.
    let mut deleted = payload("installation.deleted.1.json");
    deleted["installation"]["id"] = json!(957387);
    let (s, b) = deliver(&app, "installation", "i-6", &deleted).await;
    assert_eq!(s, 200, "{b}");
    assert!(repo_names(&app).await.is_empty());
    let row = c
        .query_one(
            "SELECT active, installation_id FROM repositories WHERE name = 'Hello-World'",
            &[],
        )
        .await
        .unwrap();
    assert!(!row.get::<_, bool>(0));
    assert_eq!(row.get::<_, Option<i64>>(1), None);
    // Replayed: nothing changes.
    let (s, b) = deliver(
        &app,
        "installation",
        "i-1",
        &payload("installation.created.1.json"),
    )
    .await;
    assert_eq!((s, &b["duplicate"]), (200, &json!(true)));
    assert!(repo_names(&app).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_delivery_whose_jobs_were_not_queued_is_queued_by_the_sweeper_or_a_redelivery() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo(
        OWNER,
        REPO,
        fake_repo(&[(70, prod_files("pressTwice", "return 7;"))]),
    );
    // A Redis of its own, to stop it.
    let mut redis = common::services::RedisServer::start();
    let mut s = app_settings(&svc, &gh, "app");
    s.redis_url = Some(redis.url());
    let app = App::start(s).await;
    let c = svc.client().await;
    let head = "7".repeat(40);
    let ev = pr_event("opened", 70, &head, "2026-06-01T10:00:00Z", "Press twice");
    redis.stop();
    let (s, b) = deliver(&app, "pull_request", "r-1", &ev).await;
    assert_eq!(s, 503, "{b}");
    // Installing while Redis is down: the install scan cannot be queued either.
    let (s, b) = deliver(
        &app,
        "installation",
        "r-i",
        &payload("installation.created.1.json"),
    )
    .await;
    assert_eq!(s, 503, "{b}");
    // GitHub does not redeliver by itself: both stay `pending` with the jobs they call for.
    let rows = c
        .query(
            "SELECT delivery_id, outcome, jobs FROM webhook_deliveries
             WHERE delivery_id IN ('r-1', 'r-i') ORDER BY delivery_id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "kept, not forgotten");
    for r in &rows {
        assert_eq!(r.get::<_, String>(1), "pending");
    }
    let pr_jobs: Value = rows[0].get(2);
    assert_eq!(pr_jobs["analyse"][0]["headSha"], json!(head), "{pr_jobs}");
    let scan_jobs: Value = rows[1].get(2);
    assert_eq!(scan_jobs["scans"][0]["repo"], "Hello-World", "{scan_jobs}");
    // While Redis is down the sweeper queues nothing and keeps them.
    assert!(
        clawtriage::api::webhooks::requeue_pending(&app.state, 0)
            .await
            .is_err()
    );
    redis.restart();
    let queued = wait_for("Redis back", Duration::from_secs(30), async || {
        clawtriage::api::webhooks::requeue_pending(&app.state, 0)
            .await
            .ok()
    })
    .await;
    assert_eq!(queued, 2);
    wait_analysed(&c, 70, &head).await;
    let outcomes = texts(
        &c,
        "SELECT outcome || ':' || (jobs IS NULL)::text FROM webhook_deliveries
         WHERE delivery_id IN ('r-1', 'r-i') ORDER BY delivery_id",
    )
    .await;
    assert_eq!(outcomes, ["queued:true", "done:true"]);
    let scan: i64 = c
        .query_one(
            "SELECT count(*) FROM scan_jobs WHERE job_id = 'scan:codertocat/hello-world:installed-r-i'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(scan, 1, "the install scan was queued");
    assert_eq!(
        clawtriage::api::webhooks::requeue_pending(&app.state, 0)
            .await
            .unwrap(),
        0,
        "nothing left"
    );
    // A redelivery of a processed delivery changes nothing.
    let (s, b) = deliver(&app, "pull_request", "r-1", &ev).await;
    assert_eq!((s, &b["duplicate"]), (200, &json!(true)), "{b}");

    // A delivery left `pending` (the process died between commit and push) is processed again
    // when GitHub redelivers it.
    c.execute(
        "INSERT INTO webhook_deliveries (delivery_id, event, outcome) VALUES ('r-2', 'pull_request', 'pending')",
        &[],
    )
    .await
    .unwrap();
    let head2 = "8".repeat(40);
    let ev2 = pr_event(
        "synchronize",
        70,
        &head2,
        "2026-06-01T11:00:00Z",
        "Press twice",
    );
    let (s, b) = deliver(&app, "pull_request", "r-2", &ev2).await;
    assert_eq!((s, &b["enqueued"]), (202, &json!(true)), "{b}");
    let outcome: String = c
        .query_one(
            "SELECT outcome FROM webhook_deliveries WHERE delivery_id = 'r-2'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(outcome, "queued");
    let (s, b) = deliver(&app, "pull_request", "r-2", &ev2).await;
    assert_eq!((s, &b["duplicate"]), (200, &json!(true)), "{b}");
    app.stop().await;
}

#[tokio::test]
async fn installed_repositories_get_one_reconciliation_scan_per_period() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo(OWNER, REPO, fake_repo(&[]));
    let mut s = app_settings(&svc, &gh, "app");
    s.scan_on_install = Some("off".into());
    let app = App::start(s).await;
    let (st, b) = deliver(
        &app,
        "installation",
        "rc-1",
        &payload("installation.created.1.json"),
    )
    .await;
    assert_eq!((st, &b["scansQueued"]), (200, &json!([])), "{b}");
    let t = chrono::DateTime::parse_from_rfc3339("2026-11-22T14:37:12Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let queued = clawtriage::jobs::cron::reconcile(&app.state, t).await;
    assert_eq!(
        queued,
        ["scan:codertocat/hello-world:reconcile-20261122T12"],
        "one scan of the installed repository"
    );
    let st = app.wait_scan(&queued[0], Duration::from_secs(60)).await;
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["trigger"], "reconcile", "{st}");
    // Later in the same period: nothing more; the next period: one more.
    let later = t + chrono::Duration::hours(3);
    assert!(
        clawtriage::jobs::cron::reconcile(&app.state, later)
            .await
            .is_empty()
    );
    let next = t + chrono::Duration::hours(6);
    assert_eq!(
        clawtriage::jobs::cron::reconcile(&app.state, next)
            .await
            .len(),
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn installations_and_pr_events_of_accounts_not_allowed_are_skipped() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo(OWNER, REPO, fake_repo(&[]));
    let mut s = app_settings(&svc, &gh, "app");
    s.github_allowed_accounts = "our-org".into();
    let app = App::start(s).await;
    let c = svc.client().await;
    // A stranger installs the (public) App: nothing is attached, mirrored or scanned.
    let (st, b) = deliver(
        &app,
        "installation",
        "al-1",
        &payload("installation.created.1.json"),
    )
    .await;
    assert_eq!((st, &b["skipped"]), (202, &json!(true)), "{b}");
    let (st, b) = deliver(
        &app,
        "installation_repositories",
        "al-2",
        &payload("installation_repositories.added.1.json"),
    )
    .await;
    assert_eq!((st, &b["skipped"]), (202, &json!(true)), "{b}");
    let ev = pr_event(
        "opened",
        5,
        &"5".repeat(40),
        "2026-06-01T10:00:00Z",
        "Stranger",
    );
    let (st, b) = deliver(&app, "pull_request", "al-3", &ev).await;
    assert_eq!((st, &b["skipped"]), (202, &json!(true)), "{b}");
    for table in [
        "repositories",
        "pull_requests",
        "scan_jobs",
        "webhook_deliveries",
    ] {
        let n: i64 = c
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "{table} untouched");
    }
    app.stop().await;

    // The same events from an allowed account are served.
    let mut s = app_settings(&svc, &gh, "app");
    s.github_allowed_accounts = format!("our-org, {OWNER}");
    let app = App::start(s).await;
    let (st, b) = deliver(
        &app,
        "installation",
        "al-4",
        &payload("installation.created.1.json"),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["scansQueued"].as_array().map(Vec::len), Some(1), "{b}");
    app.stop().await;
}

#[tokio::test]
async fn a_captured_delivery_replayed_under_fresh_ids_changes_nothing() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo(OWNER, REPO, fake_repo(&[]));
    let app = App::start(app_settings(&svc, &gh, "app")).await;
    let c = svc.client().await;
    let install = payload("installation.created.1.json");
    let (st, b) = deliver(&app, "installation", "cap-1", &install).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["scansQueued"].as_array().map(Vec::len), Some(1), "{b}");
    // The signed body, captured and sent again under fresh delivery ids (which are unsigned).
    for id in ["cap-2", "cap-3"] {
        let (st, b) = deliver(&app, "installation", id, &install).await;
        assert_eq!(
            (st, &b["duplicate"], &b["replay"]),
            (200, &json!(true), &json!(true)),
            "{b}"
        );
    }
    let ev = pr_event(
        "opened",
        9,
        &"9".repeat(40),
        "2026-06-01T10:00:00Z",
        "Replayed",
    );
    let (st, b) = deliver(&app, "pull_request", "cap-4", &ev).await;
    assert_eq!((st, &b["enqueued"]), (202, &json!(true)), "{b}");
    let (st, b) = deliver(&app, "pull_request", "cap-5", &ev).await;
    assert_eq!((st, &b["replay"]), (200, &json!(true)), "{b}");
    // GitHub's own redelivery keeps the id: still a plain duplicate.
    let (st, b) = deliver(&app, "pull_request", "cap-4", &ev).await;
    assert_eq!(
        (st, &b["duplicate"], &b["replay"]),
        (200, &json!(true), &json!(false)),
        "{b}"
    );
    let scans: i64 = c
        .query_one("SELECT count(*) FROM scan_jobs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(scans, 1, "one install scan, not three");
    let ids = texts(
        &c,
        "SELECT delivery_id FROM webhook_deliveries ORDER BY delivery_id",
    )
    .await;
    assert_eq!(ids, ["cap-1", "cap-4"]);
    app.stop().await;
}

#[tokio::test]
async fn webhook_bodies_are_bounded_in_size_and_in_number_before_the_signature_is_checked() {
    use clawtriage::api::webhooks::{MAX_PAYLOAD_BYTES, MAX_UNVERIFIED_BODIES};
    use tokio::io::AsyncWriteExt;
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    let app = App::start(app_settings(&svc, &gh, "app")).await;
    // What GitHub sends is far below 25 MB: a signed 6 MiB body is refused, by its declared
    // length, before it is read.
    let mut big = payload("ping.1.json");
    big["padding"] = json!("x".repeat(6 << 20));
    let (st, b) = deliver(&app, "ping", "b-big", &big).await;
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (413, Some("payload_too_large")),
        "{b}"
    );
    // ...and so is a stream without a length that runs past the limit.
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    s.write_all(
        b"POST /webhooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\nx-github-event: ping\r\n\
          x-github-delivery: b-stream\r\ntransfer-encoding: chunked\r\n\r\n",
    )
    .await
    .unwrap();
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..7 {
        // The server may answer and close before the last chunk: stop writing then.
        if s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .is_err()
            || s.write_all(&chunk).await.is_err()
            || s.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut answer = vec![0u8; 64];
    let n = tokio::io::AsyncReadExt::read(&mut s, &mut answer)
        .await
        .unwrap_or(0);
    let answer = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    const { assert!(MAX_PAYLOAD_BYTES < 6 << 20) };

    // Strangers holding every body slot with bodies that never finish...
    let mut stalled = Vec::new();
    for _ in 0..MAX_UNVERIFIED_BODIES {
        let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        s.write_all(
            b"POST /webhooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n\
              x-github-event: ping\r\nx-github-delivery: slow\r\ncontent-length: 1000000\r\n\r\n{\"zen\":",
        )
        .await
        .unwrap();
        stalled.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...make the next delivery wait at most a second, then shed it: 503 with Retry-After.
    let bytes = serde_json::to_vec(&payload("ping.1.json")).unwrap();
    let r = app
        .http
        .post(app.url("/webhooks/github"))
        .header("content-type", "application/json")
        .header("x-github-event", "ping")
        .header("x-github-delivery", "b-shed")
        .header("x-hub-signature-256", common::sign_webhook(SECRET, &bytes))
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "busy", "{b}");
    // Once they go, deliveries are read again.
    drop(stalled);
    let (st, b) = wait_for("free body slots", Duration::from_secs(10), async || {
        let (st, b) = deliver(&app, "ping", "b-after", &payload("ping.1.json")).await;
        (st != 503).then_some((st, b))
    })
    .await;
    assert_eq!((st, &b["pong"]), (200, &json!(true)), "{b}");
    app.stop().await;
}

#[tokio::test]
async fn a_private_repository_is_listed_page_by_page_with_its_installation_token() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    // 250 open PRs (three pages); PR 1 has 150 files (two pages).
    let mut repo = common::fake_github::synthetic_repo(250);
    repo.private = true;
    let many: Vec<Value> = (0..150)
        .map(|i| {
            json!({"filename": format!("src/many/f{i}.ts"), "status": "added", "additions": 1,
                "deletions": 0, "changes": 1, "patch": format!("@@ -0,0 +1 @@\n+export const v{i} = {i};")})
        })
        .collect();
    repo.files.insert(1, many);
    gh.add_repo(OWNER, REPO, repo);
    let app = App::start(app_settings(&svc, &gh, "app")).await;
    let (st, b) = deliver(
        &app,
        "installation",
        "pv-1",
        &payload("installation.created.1.json"),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    let scan = b["scansQueued"][0].as_str().unwrap().to_string();
    let st = app.wait_scan(&scan, Duration::from_secs(120)).await;
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["prsListed"], 250, "{st}");
    let c = svc.client().await;
    wait_analysed(&c, 1, &format!("{:040x}", 1)).await;
    let files: i64 = c
        .query_one("SELECT count(*) FROM pr_files WHERE number = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(files, 150, "both pages of files");
    // GitHub's next links name the repository by id; every page carried the token.
    let log = gh.log();
    let list_pages = log
        .iter()
        .filter(|l| l.path.starts_with(&format!("/repos/{OWNER}/{REPO}/pulls?")))
        .count();
    assert_eq!(list_pages, 3, "{:?}", &log[..log.len().min(5)]);
    let file_pages = log
        .iter()
        .filter(|l| {
            l.path
                .starts_with(&format!("/repos/{OWNER}/{REPO}/pulls/1/files?"))
        })
        .count();
    assert_eq!(file_pages, 2);
    let refused: Vec<_> = log.iter().filter(|l| l.status == 404).collect();
    assert!(
        refused.is_empty(),
        "requests without the token: {refused:?}"
    );
    let without: Vec<_> = log
        .iter()
        .filter(|l| {
            !l.auth
                .as_deref()
                .is_some_and(|a| a.starts_with("Bearer ghs_"))
        })
        .collect();
    assert!(without.is_empty(), "{without:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_burst_of_deliveries_larger_than_the_connection_pool_is_all_queued_and_analysed_together()
{
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    // Three times the appliance's 16 Postgres connections, all at once.
    let numbers: Vec<i64> = (300..348).collect();
    let files: Vec<(i64, Vec<Value>)> = numbers
        .iter()
        .map(|n| {
            (
                *n,
                prod_files(&format!("burst{n}"), &format!("return {n};")),
            )
        })
        .collect();
    gh.add_repo(OWNER, REPO, fake_repo(&files));
    let app = App::start(app_settings(&svc, &gh, "app")).await;
    let c = svc.client().await;
    let answers = futures::future::join_all(numbers.iter().map(|&n| {
        let ev = pr_event(
            "opened",
            n,
            &format!("{n:040x}"),
            "2026-08-01T10:00:00Z",
            "Burst",
        );
        let app = &app;
        async move { deliver(app, "pull_request", &format!("burst-{n}"), &ev).await }
    }))
    .await;
    for (n, (s, b)) in numbers.iter().zip(&answers) {
        assert_eq!((*s, &b["enqueued"]), (202, &json!(true)), "#{n}: {b}");
    }
    let queued: i64 = c
        .query_one(
            "SELECT count(*) FROM webhook_deliveries
             WHERE delivery_id LIKE 'burst-%' AND outcome = 'queued'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(queued, numbers.len() as i64);
    // The heads' analyses coalesce: the first jobs to run take the other queued heads along,
    // so far fewer jobs than deliveries analyse them, each head once.
    wait_for(
        "every burst head analysed",
        Duration::from_secs(90),
        async || {
            let done: i64 = c
                .query_one(
                    "SELECT count(*) FROM analysis_runs WHERE number BETWEEN 300 AND 347
                   AND status = 'done'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            (done == numbers.len() as i64).then_some(())
        },
    )
    .await;
    let row = c
        .query_one(
            "SELECT count(DISTINCT claimed_by), max(attempts) FROM analysis_runs
             WHERE number BETWEEN 300 AND 347",
            &[],
        )
        .await
        .unwrap();
    let (jobs, attempts): (i64, i32) = (row.get(0), row.get(1));
    assert!(
        jobs * 2 <= numbers.len() as i64,
        "{jobs} jobs analysed {} heads",
        numbers.len()
    );
    assert_eq!(attempts, 1, "each head analysed once");
    // Every head's check run was posted.
    wait_for(
        "a check run per head",
        Duration::from_secs(30),
        async || {
            let runs: i64 = c
                .query_one(
                    "SELECT count(*) FROM check_runs WHERE number BETWEEN 300 AND 347",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            (runs == numbers.len() as i64).then_some(())
        },
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn in_hybrid_mode_scans_and_webhooks_share_one_state() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    let head = "9".repeat(40);
    let mut repo = fake_repo(&[(60, prod_files("hoverThenClick", "return 6;"))]);
    let mut listed = pr_event(
        "opened",
        60,
        &head,
        "2026-07-01T10:00:00Z",
        "Hover then click",
    )["pull_request"]
        .clone();
    listed["state"] = json!("open");
    repo.pulls.push(listed);
    gh.add_repo(OWNER, REPO, repo);
    let app = App::start(app_settings(&svc, &gh, "hybrid")).await;
    let c = svc.client().await;
    let ev = pr_event(
        "opened",
        60,
        &head,
        "2026-07-01T10:00:00Z",
        "Hover then click",
    );
    let (s, b) = deliver(&app, "pull_request", "h-1", &ev).await;
    assert_eq!(s, 202, "{b}");
    wait_analysed(&c, 60, &head).await;
    let (s, b) = app
        .trigger(json!({"owner": OWNER, "repo": REPO, "snapshot": "h1"}))
        .await;
    assert_eq!(s, 202, "{b}");
    let scan = app
        .wait_scan(b["jobId"].as_str().unwrap(), Duration::from_secs(60))
        .await;
    assert_eq!(scan["state"], "done", "{scan}");
    assert_eq!(scan["prsListed"], 1);
    assert_eq!(
        scan["prsUnchanged"], 1,
        "the webhook's analysis counts: {scan}"
    );
    assert_eq!(scan["prsAnalyzed"], 0);
    assert_eq!(scan["auth"], "installation", "{scan}");
    assert_eq!(
        scan["notes"],
        json!([]),
        "no anonymous-rate warning: {scan}"
    );
    let files = gh.count(|l| l.path.contains("/pulls/60/files"));
    assert_eq!(files, 1, "the head was fetched once");
    let runs: i64 = c
        .query_one("SELECT count(*) FROM analysis_runs WHERE number = 60", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(runs, 1);
    // The scan of an installed repository used the installation token.
    let listing: Vec<_> = gh
        .log()
        .into_iter()
        .filter(|l| l.path.starts_with(&format!("/repos/{OWNER}/{REPO}/pulls?")))
        .collect();
    assert!(!listing.is_empty());
    assert!(
        listing.iter().all(|l| l
            .auth
            .as_deref()
            .is_some_and(|a| a.starts_with("Bearer ghs_"))),
        "{listing:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn every_example_delivery_from_github_is_understood() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    let app = App::start(app_settings(&svc, &gh, "hybrid")).await;
    let dir = fixture_path("webhooks");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() >= 20);
    for (i, name) in names.iter().enumerate() {
        let event = name.split('.').next().unwrap();
        let body = payload(name);
        let (s, b) = deliver(&app, event, &format!("example-{i}"), &body).await;
        assert!(s == 200 || s == 202, "{name}: {s} {b}");
        assert!(b.get("skipped").is_none(), "{name} was skipped: {b}");
        assert!(b["ok"] == json!(true), "{name}: {b}");
    }
    app.stop().await;
}
