//! GitHub ingestion against a fake GitHub on loopback: the trigger's auth matrix, pagination,
//! conditional re-scans, rate limits, 5xx, deleted PRs, the PR cap, closed PRs, and the local
//! git mirror.

mod common;

use std::time::Duration;

use common::fake_github::{FakeRepo, simple_pr, synthetic_repo};
use common::{App, FakeGithub, Services, git, settings};
use serde_json::{Value, json};

async fn post(app: &App, token: Option<&str>, body: String) -> (u16, Value) {
    let mut req = app
        .http
        .post(app.url("/api/ops/public-scan"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_trigger_answers_the_auth_matrix_with_exact_codes() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    let app = App::start(settings(&svc, &gh.url())).await;
    let ok = r#"{"owner":"o","repo":"r","snapshot":"m1"}"#.to_string();
    let t = Some("ops-token-for-tests-0123456789abcdef");

    let (s, b) = post(&app, None, ok.clone()).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (s, _) = post(&app, Some("wrong-token"), ok.clone()).await;
    assert_eq!(s, 401);
    let (s, b) = post(&app, t, r#"{"owner":"o","repo":"not-allowed"}"#.into()).await;
    assert_eq!((s, b["error"]["code"].as_str()), (403, Some("forbidden")));
    let (s, b) = post(&app, t, r#"{"owner":"o","repo":"#.into()).await;
    assert_eq!((s, b["error"]["code"].as_str()), (400, Some("bad_request")));
    let (s, b) = post(&app, t, r#"{"owner":"o; DROP TABLE x","repo":"r"}"#.into()).await;
    assert_eq!(s, 400);
    assert!(
        b["error"]["message"].as_str().unwrap().contains("owner"),
        "{b}"
    );
    let (s, b) = post(&app, t, r#"{"owner":"o","repo":"../../etc"}"#.into()).await;
    assert_eq!(s, 400);
    assert!(
        b["error"]["message"].as_str().unwrap().contains("repo"),
        "{b}"
    );
    let (s, _) = post(
        &app,
        t,
        r#"{"owner":"o","repo":"r","maxOpenPrs":"ten"}"#.into(),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = post(&app, t, r#"{"owner":"o","repo":"r","extra":1}"#.into()).await;
    assert_eq!(s, 400, "unknown fields are refused");
    let (s, b) = post(
        &app,
        t,
        format!(
            r#"{{"owner":"o","repo":"r","pad":"{}"}}"#,
            "x".repeat(200_000)
        ),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    let (s, b) = post(&app, t, ok.clone()).await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["jobId"], "scan:o/r:m1");
    assert_eq!(b["snapshot"], "m1");
    // Nothing was stored for the refused requests.
    let c = svc.client().await;
    let n: i64 = c
        .query_one("SELECT count(*) FROM scan_jobs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    app.stop().await;

    // Without OPS_TRIGGER_TOKEN the route refuses every call.
    let svc2 = Services::new().await;
    let mut s2 = settings(&svc2, &gh.url());
    s2.ops_trigger_token = None;
    let app2 = App::start(s2).await;
    let (s, b) = post(&app2, Some("anything"), ok).await;
    assert_eq!(s, 401);
    assert!(b["error"]["message"].as_str().unwrap().contains("disabled"));
    app2.stop().await;
}

#[tokio::test]
async fn a_paginated_scan_then_an_unchanged_rescan_costs_only_conditional_list_calls() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("o", "r", synthetic_repo(250));
    let app = App::start(settings(&svc, &gh.url())).await;

    let (s, b) = app
        .trigger(json!({"owner":"o","repo":"r","snapshot":"first"}))
        .await;
    assert_eq!(s, 202, "{b}");
    let st = app
        .wait_scan("scan:o/r:first", Duration::from_secs(120))
        .await;
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["prsListed"], 250);
    assert_eq!(st["prsAnalyzed"], 250);
    assert_eq!(st["auth"], "anonymous", "{st}");
    assert!(
        st["notes"][0]
            .as_str()
            .unwrap_or_default()
            .contains("60 requests per hour"),
        "{st}"
    );
    assert_eq!(st["sourceRest"], 250);
    // 3 list pages of 100, 1 repo call, 250 files calls.
    assert_eq!(gh.count(|l| l.path.starts_with("/repos/o/r/pulls?")), 3);
    assert_eq!(gh.count(|l| l.path.contains("/files")), 250);
    assert!(st["rateLimitRemaining"].as_i64().unwrap() < 5000);
    assert_eq!(
        st["apiCalls"], 254,
        "repo + 3 pages + 250 files calls: {st}"
    );

    gh.clear_log();
    let (s, _) = app
        .trigger(json!({"owner":"o","repo":"r","snapshot":"second"}))
        .await;
    assert_eq!(s, 202);
    let st = app
        .wait_scan("scan:o/r:second", Duration::from_secs(60))
        .await;
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["prsUnchanged"], 250);
    assert_eq!(st["prsAnalyzed"], 0);
    let log = gh.log();
    assert!(
        log.iter().all(|l| l.conditional && l.status == 304),
        "{log:?}"
    );
    assert_eq!(log.len(), 4, "repo + 3 list pages, all 304: {log:?}");
    app.stop().await;
}

#[tokio::test]
async fn rate_limits_5xx_and_deleted_prs_are_survived() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("o", "r", synthetic_repo(12));
    gh.with(|g| {
        // Budget of 8 requests, resetting 2 s after it runs out.
        g.rate_limit = 8;
        g.remaining = 8;
        g.reset_after_secs = 2;
        g.reset_at = now() + 2;
        g.faults.fail_every = 5;
        g.faults.secondary_limit_next = 1;
        g.faults.too_many_next = 2;
        g.faults.deleted.insert(7);
    });
    let app = App::start(settings(&svc, &gh.url())).await;
    let (s, _) = app
        .trigger(json!({"owner":"o","repo":"r","snapshot":"faults"}))
        .await;
    assert_eq!(s, 202);
    let st = app
        .wait_scan("scan:o/r:faults", Duration::from_secs(120))
        .await;
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["prsListed"], 12);
    assert_eq!(st["prsAnalyzed"], 11, "{st}");
    assert_eq!(
        st["prsFailed"], 1,
        "the deleted PR fails, the rest go on: {st}"
    );
    let log = gh.log();
    assert!(log.iter().any(|l| l.status == 502), "502s were injected");
    assert!(log.iter().any(|l| l.status == 403), "limits were hit");
    assert_eq!(
        log.iter().filter(|l| l.status == 429).count(),
        2,
        "429s with retry-after were waited out"
    );
    let c = svc.client().await;
    let err: String = c
        .query_one("SELECT error FROM analysis_runs WHERE number = 7", &[])
        .await
        .unwrap()
        .get(0);
    assert!(err.contains("404"), "{err}");
    app.stop().await;
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn the_cap_lists_only_the_newest_and_closed_prs_leave_the_open_list() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("o", "r", synthetic_repo(150));
    let app = App::start(settings(&svc, &gh.url())).await;
    let (s, _) = app
        .trigger(json!({"owner":"o","repo":"r","snapshot":"cap","maxOpenPrs":30}))
        .await;
    assert_eq!(s, 202);
    let st = app.wait_scan("scan:o/r:cap", Duration::from_secs(60)).await;
    assert_eq!(st["prsListed"], 30);
    assert_eq!(
        gh.count(|l| l.path.starts_with("/repos/o/r/pulls?")),
        1,
        "one page is enough"
    );

    // A full scan, then PR 5 is closed on GitHub: the next scan marks it closed.
    let (s, _) = app
        .trigger(json!({"owner":"o","repo":"r","snapshot":"full"}))
        .await;
    assert_eq!(s, 202);
    app.wait_scan("scan:o/r:full", Duration::from_secs(90))
        .await;
    gh.with(|g| {
        let repo = g.repos.get_mut("o/r").unwrap();
        repo.pulls.iter_mut().find(|p| p["number"] == 5).unwrap()["state"] = json!("closed");
        // PR 6 gets a new head: its keys are deleted and inserted again.
        let pr6 = repo.pulls.iter_mut().find(|p| p["number"] == 6).unwrap();
        pr6["head"]["sha"] = json!("6".repeat(40));
        pr6["updated_at"] = json!("2030-01-01T00:00:00Z");
    });
    let (s, _) = app
        .trigger(json!({"owner":"o","repo":"r","snapshot":"after-close"}))
        .await;
    assert_eq!(s, 202);
    let st = app
        .wait_scan("scan:o/r:after-close", Duration::from_secs(60))
        .await;
    assert_eq!(st["prsListed"], 149);
    let c = svc.client().await;
    let state: String = c
        .query_one("SELECT state FROM pull_requests WHERE number = 5", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(state, "closed");
    let keys: i64 = c
        .query_one("SELECT count(*) FROM index_keys WHERE number = 5", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(keys, 0, "a closed PR no longer matches");
    assert_eq!(st["prsAnalyzed"], 1, "PR 6's new head: {st}");
    // The document frequencies kept by triggers equal a recount of the index, after inserts,
    // a re-analysis and a close.
    let row = c
        .query_one(
            "SELECT count(*) FILTER (WHERE a.n IS DISTINCT FROM b.n),
                    count(*) FILTER (WHERE a.n > 1)
             FROM (SELECT repo_id, signature_version, config_version, key, count(*)::int AS n
                   FROM index_keys GROUP BY 1, 2, 3, 4) a
             FULL JOIN (SELECT * FROM key_counts WHERE n > 0) b
                  USING (repo_id, signature_version, config_version, key)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, i64>(0),
        0,
        "key_counts drifted from index_keys"
    );
    assert!(row.get::<_, i64>(1) > 10, "shared keys were counted");
    app.stop().await;
}

#[tokio::test]
async fn heads_come_from_the_local_git_mirror_with_one_api_call_per_list_page() {
    // A "GitHub" git server: a bare repo with refs/pull/N/head, made here.
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(work.join("src")).unwrap();
    std::fs::write(
        work.join("src/lib.ts"),
        "export const a = 1;\nexport const b = 2;\n",
    )
    .unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "base"]);
    let remote_root = tmp.path().join("remote");
    let bare = remote_root.join("o/r.git");
    std::fs::create_dir_all(&bare).unwrap();
    git(&bare, &["init", "-q", "--bare"]);
    git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    let mut repo = FakeRepo {
        default_branch: "main".into(),
        ..Default::default()
    };
    for n in 1..=3i64 {
        git(&work, &["checkout", "-q", "-B", &format!("pr{n}"), "main"]);
        std::fs::write(
            work.join("src/lib.ts"),
            format!("export const a = 1;\nexport const b = {n}0;\nexport function f{n}() {{ return {n}; }}\n"),
        )
        .unwrap();
        git(&work, &["commit", "-q", "-am", &format!("pr {n}")]);
        let sha = git(&work, &["rev-parse", "HEAD"]);
        git(
            &work,
            &[
                "push",
                "-q",
                bare.to_str().unwrap(),
                &format!("HEAD:refs/pull/{n}/head"),
            ],
        );
        // The REST files endpoint would answer too, but must not be needed.
        let (pr, _) = simple_pr(n, &sha, &format!("pr {n}"), vec![]);
        repo.pulls.push(pr);
    }
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("o", "r", repo);
    let mut s = settings(&svc, &gh.url());
    s.git_mirror = "on".into();
    s.github_git_url = format!("file://{}", remote_root.display());
    s.data_root = tmp.path().join("data").display().to_string();
    let app = App::start(s).await;
    let (st, _) = app
        .trigger(json!({"owner":"o","repo":"r","snapshot":"mirror"}))
        .await;
    assert_eq!(st, 202);
    let st = app
        .wait_scan("scan:o/r:mirror", Duration::from_secs(60))
        .await;
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["sourceMirror"], 3, "{st}");
    assert_eq!(gh.count(|l| l.path.contains("/files")), 0, "{:?}", gh.log());
    // ceil(3/100) list pages + the repo call.
    assert!(st["apiCalls"].as_i64().unwrap() <= 3, "{st}");
    let c = svc.client().await;
    let rows = c
        .query(
            "SELECT number, path, additions, deletions, channel FROM pr_files ORDER BY number",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    for r in &rows {
        let path: String = r.get(1);
        let (add, del): (i32, i32) = (r.get(2), r.get(3));
        assert_eq!(path, "src/lib.ts");
        assert_eq!((add, del), (2, 1));
        assert_eq!(r.get::<_, String>(4), "production");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_trigger_is_rate_limited_per_client_before_the_token_is_checked() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    let app = App::start(settings(&svc, &gh.url())).await;
    let mut codes = Vec::new();
    for i in 0..12 {
        // Wrong tokens count too: guessing tokens is rate limited.
        let token = if i % 2 == 0 {
            "wrong"
        } else {
            "ops-token-for-tests-0123456789abcdef"
        };
        let (s, b) = post(
            &app,
            Some(token),
            format!(r#"{{"owner":"o","repo":"r","snapshot":"rl{i}"}}"#),
        )
        .await;
        if s == 429 {
            assert_eq!(b["error"]["code"], "rate_limited");
        }
        codes.push(s);
    }
    assert!(codes[..10].iter().all(|c| *c != 429), "{codes:?}");
    assert_eq!(&codes[10..], &[429, 429], "{codes:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_public_mode_scan_writes_nothing_to_github() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("o", "r", common::fixture_repo(None));
    let mut s = settings(&svc, &gh.url());
    // Every write-related setting on, and a token that could write: public mode still only reads.
    s.github_token = Some("ghp_public_mode_token".into());
    s.check_run_label = "on".into();
    s.check_run_comment = "on".into();
    s.public_url = Some("https://triage.example".into());
    let app = App::start(s).await;
    let (code, b) = app.trigger(json!({"owner": "o", "repo": "r"})).await;
    assert_eq!(code, 202, "{b}");
    let st = app
        .wait_scan(b["jobId"].as_str().unwrap(), Duration::from_secs(60))
        .await;
    assert_eq!(st["state"], "done", "{st}");
    // The scan found duplicates (so a writing appliance would have had something to write).
    let sets: Value = app
        .http
        .get(app.url("/api/repos/1/duplicate-sets"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(sets["total"].as_u64().unwrap() > 0, "{sets}");
    // Give any stray background job time to act before looking.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(gh.requests_seen() > 70, "the fake saw the scan's requests");
    assert_eq!(gh.non_reads(), Vec::<(String, String)>::new());
    app.stop().await;
}
