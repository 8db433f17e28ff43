//! `/metrics`: protected by a token, and after a real scan (real Postgres, Redis, the fake
//! GitHub) the counters, histograms and levels it shows have moved by what the scan did; HTTP
//! requests are labelled by route template, never by raw path. Queue depth and age come from
//! the queue's own Redis keys.

mod common;

use std::time::{Duration, Instant};

use clawtriage::jobs::{CheckRunJob, Queues, ScanJob};
use common::{App, FakeGithub, Services, prom_samples, prom_value, scrape, settings};
use serde_json::json;

const PROM: &str = "prom-token-for-tests-0123456789abcdef";

#[tokio::test]
async fn a_scan_moves_the_metrics_and_routes_are_templates() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("o", "r", common::fixture_repo(Some(12)));
    let mut s = settings(&svc, &gh.url());
    s.dashboard_token = Some("dash-token-for-tests-0123456789abcdef".into());
    s.metrics_token = Some(PROM.into());
    let app = App::start(s).await;

    // Protected: no token or a wrong one is a 401; each accepted token works.
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    for token in [
        "dash-token-for-tests-0123456789abcdef",
        "ops-token-for-tests-0123456789abcdef",
    ] {
        scrape(&app.http, &app.base, token).await;
    }

    let before = scrape(&app.http, &app.base, PROM).await;
    let (code, body) = app.trigger(json!({"owner": "o", "repo": "r"})).await;
    assert_eq!(code, 202, "{body}");
    let job_id = body["jobId"].as_str().unwrap().to_string();
    let st = app.wait_scan(&job_id, Duration::from_secs(60)).await;
    assert_eq!(st["state"], "done", "{st}");
    let listed = st["prsListed"].as_f64().unwrap();
    assert_eq!(listed, 12.0, "{st}");
    // Unknown and parameterised paths.
    let r = app
        .http
        .get(app.url("/api/nope/12345"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = app
        .http
        .get(app.url("/api/repos/987654/prs/4242"))
        .bearer_auth("dash-token-for-tests-0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // The last analysis records its outcome a moment after the scan reads done.
    let analyzed = [("outcome", "analyzed")];
    let start = Instant::now();
    let after = loop {
        let text = scrape(&app.http, &app.base, PROM).await;
        let moved = prom_value(&text, "clawtriage_analyses_total", &analyzed)
            - prom_value(&before, "clawtriage_analyses_total", &analyzed);
        if moved >= listed || start.elapsed() > Duration::from_secs(10) {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let delta = |name: &str, labels: &[(&str, &str)]| {
        prom_value(&after, name, labels) - prom_value(&before, name, labels)
    };

    // Analyses and scans by outcome, with durations.
    assert_eq!(delta("clawtriage_analyses_total", &analyzed), listed);
    let batches = delta(
        "clawtriage_analysis_job_duration_seconds_count",
        &[("queue", "batch")],
    );
    assert!((1.0..=listed).contains(&batches), "{batches} batch jobs");
    assert_eq!(
        delta("clawtriage_analyses_total", &[("outcome", "failed")]),
        0.0
    );
    assert_eq!(
        delta("clawtriage_scans_total", &[("outcome", "done")]),
        1.0,
        "{after}"
    );
    assert_eq!(
        delta(
            "clawtriage_scan_duration_seconds_count",
            &[("outcome", "done")]
        ),
        1.0
    );
    assert!(
        delta(
            "clawtriage_scan_duration_seconds_sum",
            &[("outcome", "done")]
        ) > 0.0
    );

    // HTTP by route template and status.
    assert_eq!(
        delta(
            "clawtriage_http_requests_total",
            &[
                ("route", "/api/ops/public-scan"),
                ("method", "POST"),
                ("status", "202")
            ]
        ),
        1.0
    );
    assert!(
        delta(
            "clawtriage_http_requests_total",
            &[("route", "/api/ops/scans/{job_id}"), ("status", "200")]
        ) >= 1.0
    );
    assert!(
        delta(
            "clawtriage_http_request_duration_seconds_count",
            &[("route", "/api/ops/scans/{job_id}")]
        ) >= 1.0
    );
    assert_eq!(
        delta(
            "clawtriage_http_requests_total",
            &[
                ("route", "/api/repos/{repo_id}/prs/{number}"),
                ("status", "404")
            ]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "clawtriage_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    // /metrics counts itself under its own route, and 401s are counted.
    assert!(
        prom_value(
            &after,
            "clawtriage_http_requests_total",
            &[("route", "/metrics"), ("status", "401")]
        ) >= 2.0
    );
    for raw in ["12345", "987654", "4242", "scan:o/r"] {
        assert!(!after.contains(raw), "a raw path reached the labels: {raw}");
    }

    // GitHub calls by status, and the budget GitHub reported.
    let gh_ok = delta(
        "clawtriage_github_requests_total",
        &[("method", "GET"), ("status", "200")],
    );
    let fake_calls = gh.count(|l| l.status == 200) as f64;
    assert_eq!(gh_ok, fake_calls, "every 200 the fake sent is counted");
    let remaining = prom_value(
        &after,
        "clawtriage_github_rate_limit_remaining",
        &[("credential", "anonymous")],
    );
    let fake_remaining = gh.with(|g| g.remaining) as f64;
    assert!(
        remaining >= fake_remaining && remaining < 5000.0,
        "remaining {remaining}, fake {fake_remaining}"
    );

    // Levels: every queue, the disk, the pool, the workers.
    for (name, _) in app.state.queues.all() {
        for state in ["waiting", "scheduled", "running", "dead"] {
            let samples = prom_samples(&after, "clawtriage_queue_jobs");
            assert!(
                samples
                    .iter()
                    .any(|(l, _)| l.iter().any(|(k, v)| k == "queue" && v == name)
                        && l.iter().any(|(k, v)| k == "state" && v == state)),
                "no {state} gauge for queue {name}"
            );
        }
        assert!(
            prom_samples(&after, "clawtriage_queue_oldest_waiting_seconds")
                .iter()
                .any(|(l, _)| l.iter().any(|(k, v)| k == "queue" && v == name)),
            "no age gauge for queue {name}"
        );
    }
    assert_eq!(prom_value(&after, "clawtriage_queue_read_ok", &[]), 1.0);
    let free = prom_value(&after, "clawtriage_disk_free_bytes", &[]);
    let total = prom_value(&after, "clawtriage_disk_total_bytes", &[]);
    assert!(free > 0.0 && total >= free, "free {free}, total {total}");
    assert_eq!(
        prom_value(&after, "clawtriage_postgres_pool_max_connections", &[]),
        16.0
    );
    assert!(
        prom_value(
            &after,
            "clawtriage_postgres_pool_connections",
            &[("state", "idle")]
        ) + prom_value(
            &after,
            "clawtriage_postgres_pool_connections",
            &[("state", "in_use")]
        ) >= 1.0
    );
    let heartbeat = prom_value(&after, "clawtriage_worker_heartbeat_age_seconds", &[]);
    assert!((0.0..60.0).contains(&heartbeat), "{heartbeat}");
    app.stop().await;
}

#[tokio::test]
async fn queue_depth_and_age_are_read_from_redis() {
    let svc = Services::new().await;
    // No workers: what is pushed stays queued.
    let q = Queues::connect(&svc.redis_url, &svc.queue_prefix)
        .await
        .unwrap();
    let stats = q.stats().await.unwrap();
    let names: Vec<&str> = stats.iter().map(|s| s.name).collect();
    assert_eq!(names, ["scan", "batch", "analyse", "check", "workflow"]);
    assert!(
        stats
            .iter()
            .all(|s| s.waiting + s.scheduled + s.running + s.dead == 0)
    );

    let scan = ScanJob {
        owner: "o".into(),
        repo: "r".into(),
        snapshot: "s1".into(),
        max_open_prs: None,
    };
    q.push_scan(&scan).await.unwrap();
    // The first check-run ask runs now, the second waits for the end of its window.
    let check = CheckRunJob {
        repo_id: 1,
        owner: "o".into(),
        repo: "r".into(),
        number: 7,
        head_sha: "abc1234".into(),
        slot: 0,
    };
    q.push_check_run(&check).await.unwrap();
    q.push_check_run(&check).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let stats = q.stats().await.unwrap();
    let scan_q = &stats[0];
    assert_eq!((scan_q.waiting, scan_q.scheduled), (1, 0), "{scan_q:?}");
    assert!(scan_q.oldest_waiting_secs >= 2, "{scan_q:?}");
    let check_q = &stats[3];
    assert_eq!(check_q.waiting + check_q.scheduled, 2, "{check_q:?}");
    assert_eq!(stats[1].waiting + stats[2].waiting, 0);

    // A job a worker moved to the active list (as a fetch does) is aged by its push time.
    let mut conn = redis::Client::open(svc.redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = |k: &str| format!("{}:scan:{k}", svc.queue_prefix);
    let id = scan.job_id();
    let _: () = redis::pipe()
        .cmd("ZREM")
        .arg(key("scheduled"))
        .arg(&id)
        .cmd("RPUSH")
        .arg(key("active"))
        .arg(&id)
        .cmd("HSET")
        .arg(key(&format!("meta:{id}")))
        .arg(clawtriage::jobs::stats::PUSHED_AT)
        .arg(chrono::Utc::now().timestamp() - 90)
        .query_async(&mut conn)
        .await
        .unwrap();
    let stats = q.stats().await.unwrap();
    assert_eq!(stats[0].waiting, 1, "{:?}", stats[0]);
    assert!(
        (90..100).contains(&stats[0].oldest_waiting_secs),
        "{:?}",
        stats[0]
    );
}
