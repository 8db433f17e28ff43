//! The maintainer API with real Postgres: every endpoint, every auth mode, pagination under
//! inserts, the mega-cluster case, feedback suppression, base/keep choices, the OpenAPI
//! description, and an end-to-end run over a slice of the shared dataset.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{App, FakeGithub, Services, settings};
use serde_json::{Value, json};

/// Seeds a repository with PRs and symmetric edges straight into Postgres.
async fn seed(
    c: &tokio_postgres::Client,
    prs: &[(i64, &str, &str, Option<&str>, i32)],
    edges: &[(i64, i64, &str, f64)],
) -> i64 {
    let repo_id: i64 = c
        .query_one(
            "INSERT INTO repositories (owner, name) VALUES ('o', 'r') RETURNING repo_id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    for (n, state, created, ci, approvals) in prs {
        c.execute(
            "INSERT INTO pull_requests (repo_id, number, title, author, html_url, state, head_sha,
                 created_at, updated_at, ci_state, approvals)
             VALUES ($1, $2, $3, 'dev', $4, $5, $6, $7::text::timestamptz, $7::text::timestamptz, $8, $9)",
            &[
                &repo_id,
                n,
                &format!("PR {n}"),
                &format!("https://github.com/o/r/pull/{n}"),
                state,
                &format!("sha{n}"),
                created,
                ci,
                approvals,
            ],
        )
        .await
        .unwrap();
    }
    for (a, b, cat, score) in edges {
        for (x, y) in [(*a, *b), (*b, *a)] {
            c.execute(
                "INSERT INTO candidate_edges (repo_id, number, head_sha, other_number, other_head_sha,
                     category, final_score, scores, evidence, signature_version, algorithm_version, config_version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, '{}', $8, 1, 1, 1)",
                &[
                    &repo_id,
                    &x,
                    &format!("sha{x}"),
                    &y,
                    &format!("sha{y}"),
                    cat,
                    score,
                    &json!({"reasons": [format!("{x} and {y} share production lines")]}),
                ],
            )
            .await
            .unwrap();
        }
    }
    repo_id
}

async fn get(app: &App, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut r = app.http.get(app.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn day(d: u32) -> String {
    format!("2026-03-{d:02}T10:00:00Z")
}

#[tokio::test]
async fn a_chain_of_300_weakly_linked_prs_is_not_one_set() {
    let svc = Services::new().await;
    svc.migrate().await;
    let c = svc.client().await;
    let days: Vec<String> = (0..300).map(|i| day(1 + (i % 28) as u32)).collect();
    let prs: Vec<(i64, &str, &str, Option<&str>, i32)> = (0..300)
        .map(|i| (i as i64 + 1, "open", days[i].as_str(), None, 0))
        .collect();
    let edges: Vec<(i64, i64, &str, f64)> =
        (1..300).map(|i| (i, i + 1, "SAME_FEATURE", 0.72)).collect();
    let repo_id = seed(&c, &prs, &edges).await;
    let gh = FakeGithub::start().await;
    let mut s = settings(&svc, &gh.url());
    s.review_score_threshold = Some("0.7".into());
    let app = App::start(s).await;
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    let mut largest = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/repos/{repo_id}/duplicate-sets?limit=100&cursor={c}"),
            None => format!("/api/repos/{repo_id}/duplicate-sets?limit=100"),
        };
        let (st, b) = get(&app, &path, None).await;
        assert_eq!(st, 200, "{b}");
        for set in b["sets"].as_array().unwrap() {
            largest = largest.max(set["size"].as_u64().unwrap());
            seen += 1;
        }
        match b["nextCursor"].as_str() {
            Some(n) => cursor = Some(n.to_string()),
            None => break,
        }
    }
    assert!(largest <= 3, "a set of {largest} grew from a chain");
    assert!(seen >= 75, "{seen} sets");
    app.stop().await;
}

#[tokio::test]
async fn sets_choose_base_and_keep_and_feedback_suppresses_pairs() {
    let svc = Services::new().await;
    svc.migrate().await;
    let c = svc.client().await;
    let (d1, d2, d3, d5, d6) = (day(1), day(2), day(3), day(5), day(6));
    let repo_id = seed(
        &c,
        &[
            (10, "open", &d1, Some("failure"), 0),
            (11, "open", &d2, Some("success"), 2),
            (12, "open", &d3, None, 0),
            (20, "open", &d5, None, 0),
            (21, "open", &d6, None, 0),
        ],
        &[
            (10, 11, "SAME_CHANGE", 0.98),
            (10, 12, "SAME_CHANGE", 0.95),
            (11, 12, "SAME_CHANGE", 0.96),
            (20, 21, "COMPETING_IMPLEMENTATION", 0.81),
        ],
    )
    .await;
    let gh = FakeGithub::start().await;
    let mut s = settings(&svc, &gh.url());
    s.review_score_threshold = Some("0.7".into());
    let app = App::start(s).await;
    let (st, b) = get(&app, &format!("/api/repos/{repo_id}/duplicate-sets"), None).await;
    assert_eq!(st, 200, "{b}");
    let sets = b["sets"].as_array().unwrap();
    assert_eq!(sets.len(), 2, "{b}");
    let first = &sets[0];
    assert_eq!(first["size"], 3);
    assert_eq!(first["maxScore"], 0.98);
    assert_eq!(first["minLinkScore"], 0.96);
    assert_eq!(first["tier"], "high");
    assert_eq!(first["base"]["number"], 10, "the earliest is the base");
    assert_eq!(
        first["keep"]["number"], 11,
        "green CI with approvals is kept over failing CI"
    );
    assert!(
        first["keep"]["reason"]
            .as_str()
            .unwrap()
            .contains("CI green")
    );
    let roles: Vec<(i64, String)> = first["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["number"].as_i64().unwrap(),
                m["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        vec![
            (10, "base".into()),
            (11, "keep".into()),
            (12, "member".into())
        ]
    );
    assert!(first["edges"][0]["evidence"]["reasons"].is_array());
    assert_eq!(sets[1]["categories"], json!(["COMPETING_IMPLEMENTATION"]));
    let set_id = first["setId"].as_str().unwrap().to_string();

    // The same membership gives the same id.
    let (_, again) = get(&app, &format!("/api/repos/{repo_id}/duplicate-sets"), None).await;
    assert_eq!(again["sets"][0]["setId"], set_id.as_str());

    // A "not duplicate" verdict on 20/21 removes that set and never lets the pair back.
    let r = app
        .http
        .post(app.url(&format!("/api/repos/{repo_id}/feedback")))
        .header("x-actor", "maintainer-a")
        .json(&json!({"target": "pair", "a": 21, "b": 20, "verdict": "not_duplicate"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let fb: Value = r.json().await.unwrap();
    assert_eq!(
        (fb["aNumber"].as_i64(), fb["bNumber"].as_i64()),
        (Some(20), Some(21))
    );
    assert_eq!(fb["actor"], "maintainer-a");
    let (_, b) = get(&app, &format!("/api/repos/{repo_id}/duplicate-sets"), None).await;
    assert_eq!(b["sets"].as_array().unwrap().len(), 1, "{b}");
    let (_, cands) = get(
        &app,
        &format!("/api/repos/{repo_id}/prs/20/candidates"),
        None,
    )
    .await;
    assert_eq!(cands["candidates"][0]["feedback"], "not_duplicate");

    // "Base is #12" overrides the suggestion for exactly that set.
    let r = app
        .http
        .post(app.url(&format!("/api/repos/{repo_id}/feedback")))
        .json(
            &json!({"target": "set", "setId": set_id, "members": [10, 11, 12],
                      "verdict": "base_is", "baseNumber": 12}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (_, b) = get(&app, &format!("/api/repos/{repo_id}/duplicate-sets"), None).await;
    assert_eq!(b["sets"][0]["base"]["number"], 12);
    assert!(
        b["sets"][0]["base"]["reason"]
            .as_str()
            .unwrap()
            .contains("maintainer")
    );

    // Feedback lists newest first and exports as JSON lines.
    let (st, list) = get(&app, &format!("/api/repos/{repo_id}/feedback"), None).await;
    assert_eq!(st, 200);
    assert_eq!(list["feedback"].as_array().unwrap().len(), 2);
    assert_eq!(list["feedback"][0]["verdict"], "base_is");

    // A "not duplicate" verdict on the whole set rejects every pair in it: the set is gone.
    let r = app
        .http
        .post(app.url(&format!("/api/repos/{repo_id}/feedback")))
        .json(
            &json!({"target": "set", "setId": set_id, "members": [10, 11, 12],
                      "verdict": "not_duplicate"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (_, b) = get(&app, &format!("/api/repos/{repo_id}/duplicate-sets"), None).await;
    assert_eq!(b["sets"], json!([]), "{b}");
    let text = app
        .http
        .get(app.url(&format!("/api/repos/{repo_id}/feedback?format=jsonl")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        text.lines().count(),
        6,
        "the set verdict and the 3 pair verdicts it implies"
    );
    for line in text.lines() {
        serde_json::from_str::<Value>(line).unwrap();
    }

    // Bad verdicts and unknown repos get exact codes.
    let r = app
        .http
        .post(app.url(&format!("/api/repos/{repo_id}/feedback")))
        .json(&json!({"target": "pair", "a": 1, "b": 1, "verdict": "duplicate"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = app
        .http
        .post(app.url("/api/repos/999999/feedback"))
        .json(&json!({"target": "pair", "a": 1, "b": 2, "verdict": "duplicate"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn the_queue_pages_visit_every_row_exactly_once_while_rows_are_inserted() {
    let svc = Services::new().await;
    svc.migrate().await;
    let c = svc.client().await;
    let days: Vec<String> = (0..120).map(|i| day(1 + (i % 28) as u32)).collect();
    let prs: Vec<(i64, &str, &str, Option<&str>, i32)> = (0..120)
        .map(|i| (i as i64 + 1, "open", days[i].as_str(), None, 0))
        .collect();
    let edges: Vec<(i64, i64, &str, f64)> = (1..60)
        .map(|i| (i * 2 - 1, i * 2, "SAME_CHANGE", 0.5 + (i as f64) / 200.0))
        .collect();
    let repo_id = seed(&c, &prs, &edges).await;
    let gh = FakeGithub::start().await;
    let app = App::start(settings(&svc, &gh.url())).await;
    for order in ["score", "number", "updated"] {
        let mut seen = BTreeSet::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut path = format!("/api/repos/{repo_id}/triage-queue?limit=25&orderBy={order}");
            if let Some(cur) = &cursor {
                path.push_str(&format!("&cursor={cur}"));
            }
            let (st, b) = get(&app, &path, None).await;
            assert_eq!(st, 200, "{b}");
            for item in b["items"].as_array().unwrap() {
                let n = item["number"].as_i64().unwrap();
                assert!(seen.insert(n), "#{n} seen twice ordering by {order}");
            }
            pages += 1;
            // Rows inserted meanwhile, at the very top of every order, never shift the pages.
            let n = 1000 + pages * 10 + order.len() as i64;
            c.execute(
                "INSERT INTO pull_requests (repo_id, number, title, author, html_url, state, head_sha,
                     created_at, updated_at) VALUES ($1, $2, 'new', 'dev', '', 'open', 'x', now(), now())",
                &[&repo_id, &n],
            )
            .await
            .unwrap();
            match b["nextCursor"].as_str() {
                Some(n) => cursor = Some(n.to_string()),
                None => break,
            }
        }
        let original: BTreeSet<i64> = (1..=120).collect();
        assert!(original.is_subset(&seen), "ordering by {order} missed rows");
        assert!(pages >= 5);
    }
    // A PR with a suggestion shows it.
    let (_, b) = get(
        &app,
        &format!("/api/repos/{repo_id}/triage-queue?limit=1"),
        None,
    )
    .await;
    let top = &b["items"][0];
    assert_eq!(top["topSuggestion"]["category"], "SAME_CHANGE");
    assert!(
        top["topSuggestion"]["candidateUrl"]
            .as_str()
            .unwrap()
            .contains("/pull/")
    );
    // Tampered and foreign cursors are refused.
    for bad in ["garbage!!", "eyJvIjoic2NvcmUifQ"] {
        let (st, b) = get(
            &app,
            &format!("/api/repos/{repo_id}/triage-queue?cursor={bad}"),
            None,
        )
        .await;
        assert_eq!(st, 400, "{b}");
        assert!(b["error"]["message"].as_str().unwrap().contains("cursor"));
    }
    for (q, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("state=weird", "state"),
        ("orderBy=rand", "orderBy"),
        ("needsReview=maybe", "needsReview"),
    ] {
        let (st, b) = get(
            &app,
            &format!("/api/repos/{repo_id}/triage-queue?{q}"),
            None,
        )
        .await;
        assert_eq!(st, 400, "{q}: {b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains(field),
            "{q}: {b}"
        );
    }
    let (st, _) = get(&app, "/api/repos/424242/triage-queue", None).await;
    assert_eq!(st, 404);
    let (st, _) = get(&app, "/api/repos/abc/triage-queue", None).await;
    assert_eq!(st, 400);
    app.stop().await;
}

#[tokio::test]
async fn every_auth_mode_is_enforced() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    // required: always needs the token.
    let mut s = settings(&svc, &gh.url());
    s.dashboard_auth_mode = "required".into();
    s.dashboard_token = Some("dash-secret-0123456789abcdef0123456789".into());
    let app = App::start(s).await;
    assert_eq!(get(&app, "/api/repos", None).await.0, 401);
    assert_eq!(get(&app, "/api/repos", Some("wrong")).await.0, 401);
    assert_eq!(
        get(
            &app,
            "/api/repos",
            Some("dash-secret-0123456789abcdef0123456789")
        )
        .await
        .0,
        200
    );
    assert_eq!(
        get(&app, "/api/health", None).await.0,
        200,
        "health is open"
    );
    app.stop().await;
    // auto with a token behaves like required; auto without one is open.
    let mut s = settings(&svc, &gh.url());
    s.dashboard_token = Some("dash-secret-0123456789abcdef0123456789".into());
    let app = App::start(s).await;
    assert_eq!(get(&app, "/api/repos", None).await.0, 401);
    assert_eq!(
        get(
            &app,
            "/api/repos",
            Some("dash-secret-0123456789abcdef0123456789")
        )
        .await
        .0,
        200
    );
    app.stop().await;
    let app = App::start(settings(&svc, &gh.url())).await;
    assert_eq!(get(&app, "/api/repos", None).await.0, 200);
    app.stop().await;
    // disabled: open even with a token configured.
    let mut s = settings(&svc, &gh.url());
    s.dashboard_auth_mode = "disabled".into();
    s.dashboard_token = Some("dash-secret-0123456789abcdef0123456789".into());
    let app = App::start(s).await;
    assert_eq!(get(&app, "/api/repos", None).await.0, 200);
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_description_lists_every_route_and_every_route_answers() {
    let svc = Services::new().await;
    svc.migrate().await;
    let c = svc.client().await;
    let d1 = day(1);
    let repo_id = seed(
        &c,
        &[(1, "open", &d1, None, 0), (2, "open", &d1, None, 0)],
        &[(1, 2, "SAME_CHANGE", 0.99)],
    )
    .await;
    let gh = FakeGithub::start().await;
    let app = App::start(settings(&svc, &gh.url())).await;
    let (st, doc) = get(&app, "/api/openapi.json", None).await;
    assert_eq!(st, 200);
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/health", "get"),
        ("/ops/public-scan", "post"),
        ("/ops/scans", "get"),
        ("/ops/scans/{job_id}", "get"),
        ("/repos", "get"),
        ("/repos/{repo_id}/triage-queue", "get"),
        ("/repos/{repo_id}/prs/{number}", "get"),
        ("/repos/{repo_id}/prs/{number}/candidates", "get"),
        ("/repos/{repo_id}/duplicate-sets", "get"),
        ("/repos/{repo_id}/feedback", "get"),
        ("/repos/{repo_id}/feedback", "post"),
        ("/repos/{repo_id}/prs", "get"),
        ("/repos/{repo_id}/duplicate-sets/{set_id}", "get"),
        ("/repos/{repo_id}/settings", "get"),
        ("/repos/{repo_id}/settings/reload", "post"),
        ("/repos/{repo_id}/plans", "post"),
        ("/repos/{repo_id}/plans/{plan_id}", "get"),
        ("/repos/{repo_id}/plans/{plan_id}/apply", "post"),
        ("/repos/{repo_id}/actions", "get"),
        ("/repos/{repo_id}/digest", "post"),
        ("/feedback/export", "get"),
        ("/feedback/import", "post"),
    ];
    for (p, m) in expected {
        assert!(
            paths.get(p).and_then(|x| x.get(m)).is_some(),
            "{m} {p} missing from the spec"
        );
    }
    let documented: usize = paths.values().map(|v| v.as_object().unwrap().len()).sum();
    assert_eq!(
        documented,
        expected.len(),
        "the spec documents routes this test does not know"
    );
    // Every documented route exists: none answers the router's own 404 or 405.
    for (p, m) in expected {
        let url = app.url(&format!(
            "/api{}",
            p.replace("{repo_id}", &repo_id.to_string())
                .replace("{number}", "1")
                .replace("{job_id}", "scan:o%2Fr:x")
                .replace("{set_id}", "set-0000000000000000")
                .replace("{plan_id}", "plan-0000000000000000")
        ));
        let r = match m {
            "get" => app.http.get(url),
            _ => app.http.post(url).json(&json!({})),
        }
        .bearer_auth("ops-token-for-tests-0123456789abcdef")
        .send()
        .await
        .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_ne!(status, 405, "{m} {p}");
        assert!(
            !(status == 404 && body["error"]["message"] == "no such API route"),
            "{m} {p} is not routed"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_scan_of_a_dataset_slice_finds_its_labelled_duplicates_end_to_end() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("bench", "playwright", common::fixture_repo(None));
    let app = App::start(settings(&svc, &gh.url())).await;
    let (s, _) = app
        .trigger(json!({"owner": "bench", "repo": "playwright", "snapshot": "e2e"}))
        .await;
    assert_eq!(s, 202);
    let st = app
        .wait_scan("scan:bench/playwright:e2e", Duration::from_secs(180))
        .await;
    assert_eq!(st["state"], "done", "{st}");
    let (_, repos) = get(&app, "/api/repos", None).await;
    let repo_id = repos["repos"][0]["repoId"].as_i64().unwrap();
    assert_eq!(repos["repos"][0]["openPrs"], st["prsListed"]);

    // The appliance (incremental, through Postgres, in batches) suggests exactly the labelled
    // pairs that the engine run in memory over the same PRs suggests, with the same category.
    let found = common::assert_agrees_with_engine(&app.http, &app.base, repo_id, "one scan").await;
    let labels: Value = serde_json::from_str(
        &std::fs::read_to_string(common::slice_dir().join("labels.json")).unwrap(),
    )
    .unwrap();
    let pairs = labels["pairs"].as_array().unwrap();
    assert!(
        found * 10 >= pairs.len() * 8,
        "found {found} of {} labelled pairs",
        pairs.len()
    );
    // The PR view shows channels and the analysis.
    let a = labels["pairs"][0]["a"].as_i64().unwrap();
    let (st, pr) = get(&app, &format!("/api/repos/{repo_id}/prs/{a}"), None).await;
    assert_eq!(st, 200);
    assert_eq!(pr["analysis"]["status"], "done");
    assert!(pr["channelSizes"]["production"].is_object(), "{pr}");
    assert!(!pr["files"].as_array().unwrap().is_empty());
    let (st, _) = get(&app, &format!("/api/repos/{repo_id}/prs/99999999"), None).await;
    assert_eq!(st, 404);
    app.stop().await;
}
