//! Faults mid-scan: Redis and Postgres restarted while analyses are in flight. Each scan must
//! end done, with every PR analysed exactly once and no duplicate rows, and health must report
//! the outage while it lasts.

mod common;

use std::time::{Duration, Instant};

use common::fake_github::{FakeRepo, simple_pr};
use common::services::RedisServer;
use common::{App, FakeGithub, Services, settings};
use serde_json::json;

fn repo(n: i64) -> FakeRepo {
    let mut repo = FakeRepo {
        default_branch: "main".into(),
        ..Default::default()
    };
    for i in 1..=n {
        let patch = format!("@@ -1,2 +1,3 @@\n a\n+let v{i} = f({i});\n b\n");
        let (pr, files) = simple_pr(
            i,
            &format!("{i:040x}"),
            &format!("change {i}"),
            vec![
                json!({"filename": format!("src/m{i}.ts"), "status": "modified",
                "additions": 1, "deletions": 0, "patch": patch}),
            ],
        );
        repo.files.insert(i, files);
        repo.pulls.push(pr);
    }
    repo
}

async fn wait_running(svc: &Services, number: i64) {
    let c = svc.client().await;
    let start = Instant::now();
    loop {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM analysis_runs WHERE number = $1 AND status = 'running'",
                &[&number],
            )
            .await
            .unwrap()
            .get(0);
        if n == 1 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "#{number} never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn assert_each_analysed_once(svc: &Services, n: i64) {
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
    let expected: Vec<(i64, String)> = (1..=n).map(|i| (i, "done".to_string())).collect();
    assert_eq!(rows, expected);
    let sigs: i64 = c
        .query_one("SELECT count(*) FROM pr_signatures", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sigs, n);
}

#[tokio::test]
async fn a_redis_restart_mid_scan_is_survived() {
    let svc = Services::new().await;
    let mut redis = RedisServer::start_persistent();
    let gh = FakeGithub::start().await;
    gh.add_repo("o", "r", repo(6));
    gh.with(|g| g.faults.hang_on = Some("/pulls/3/files".into()));
    let mut s = settings(&svc, &gh.url());
    s.redis_url = Some(redis.url());
    let app = App::start(s).await;
    let (code, _) = app
        .trigger(json!({"owner": "o", "repo": "r", "snapshot": "redis"}))
        .await;
    assert_eq!(code, 202);
    wait_running(&svc, 3).await;

    redis.stop();
    let r = app.http.get(app.url("/api/health")).send().await.unwrap();
    assert_eq!(r.status(), 503, "health reports the outage");
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.restart();
    gh.with(|g| g.faults.hang_on = None);

    let st = app
        .wait_scan("scan:o/r:redis", Duration::from_secs(120))
        .await;
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["prsAnalyzed"], 6, "{st}");
    assert_each_analysed_once(&svc, 6).await;
    // The workers are alive: another scan still runs to the end.
    let r = app.http.get(app.url("/api/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (code, _) = app
        .trigger(json!({"owner": "o", "repo": "r", "snapshot": "after"}))
        .await;
    assert_eq!(code, 202);
    let st = app
        .wait_scan("scan:o/r:after", Duration::from_secs(60))
        .await;
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["prsUnchanged"], 6, "{st}");
    app.stop().await;
}

#[tokio::test]
async fn a_postgres_restart_mid_scan_is_survived_and_health_reports_it() {
    let svc = Services::with_own_postgres().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("o", "r", repo(6));
    gh.with(|g| g.faults.hang_on = Some("/pulls/3/files".into()));
    let app = App::start(settings(&svc, &gh.url())).await;
    let (code, _) = app
        .trigger(json!({"owner": "o", "repo": "r", "snapshot": "pg"}))
        .await;
    assert_eq!(code, 202);
    wait_running(&svc, 3).await;

    svc.own_postgres().stop("fast");
    let r = app.http.get(app.url("/api/health")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["down"], json!(["postgres"]), "{body}");
    // The API answers a clear 503, not a 500, while the database is down.
    let r = app.http.get(app.url("/api/repos")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    tokio::time::sleep(Duration::from_secs(1)).await;
    svc.own_postgres().restart();
    gh.with(|g| g.faults.hang_on = None);

    let st = app.wait_scan("scan:o/r:pg", Duration::from_secs(180)).await;
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["prsAnalyzed"], 6, "{st}");
    assert_each_analysed_once(&svc, 6).await;
    let r = app.http.get(app.url("/api/health")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the pool reconnected by itself");
    app.stop().await;
}
