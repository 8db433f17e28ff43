//! The in-process scan schedule: ticks queue one scan per period, a restart catches up the
//! missed period once, and a Fly-scheduled trigger of the same period is the same scan.

mod common;

use std::time::Duration;

use common::fake_github::FakeRepo;
use common::{App, FakeGithub, Services, settings};
use serde_json::json;

async fn scans(svc: &Services) -> Vec<(String, String)> {
    let c = svc.client().await;
    c.query("SELECT job_id, trigger FROM scan_jobs ORDER BY job_id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn an_hourly_schedule_catches_up_once_and_dedupes_with_the_fly_trigger() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo(
        "o",
        "r",
        FakeRepo {
            default_branch: "main".into(),
            ..Default::default()
        },
    );
    let mut s = settings(&svc, &gh.url());
    s.scan_schedule = Some("0 * * * *".into());
    s.scan_repos = "o/r".into();
    // Keep clear of an hour boundary so that the test and the app see the same period.
    let now = chrono::Utc::now();
    let into_hour = chrono::Timelike::minute(&now) * 60 + chrono::Timelike::second(&now);
    if into_hour >= 3570 {
        tokio::time::sleep(Duration::from_secs(u64::from(3600 - into_hour) + 2)).await;
    }
    let period = chrono::Utc::now().format("%Y-%m-%dT%H").to_string();
    let job_id = format!("scan:o/r:{period}");

    let app = App::start(s.clone()).await;
    let st = app.wait_scan(&job_id, Duration::from_secs(30)).await;
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["trigger"], "cron");
    // What a Fly scheduled machine sends for the same hour is the same scan.
    let (code, b) = app
        .trigger(json!({"owner": "o", "repo": "r", "snapshot": period}))
        .await;
    assert_eq!(code, 200, "{b}");
    assert_eq!(b["duplicate"], true);
    app.stop().await;

    // A restart within the same hour catches up nothing new.
    let app = App::start(s).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(scans(&svc).await, vec![(job_id, "cron".to_string())]);
    app.stop().await;
}

/// Task ids in the scan queue's Redis data hash: every scan job ever pushed (apalis keeps them
/// until a vacuum), whoever pushed it.
async fn scan_jobs_in_redis(svc: &Services) -> Vec<String> {
    let mut conn = redis::Client::open(svc.redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut ids: Vec<String> = redis::cmd("HKEYS")
        .arg(format!("{}:scan:data", svc.queue_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    ids.sort();
    ids
}

#[tokio::test]
async fn one_scan_per_period_however_many_appliances_and_triggers_fire() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo(
        "o",
        "r",
        FakeRepo {
            default_branch: "main".into(),
            ..Default::default()
        },
    );
    let expr = "*/2 * * * * *";
    let mut s = settings(&svc, &gh.url());
    s.scan_schedule = Some(expr.into());
    s.scan_repos = "o/r".into();
    // Two appliances on one database and one queue, each firing its own ticks.
    let start = chrono::Utc::now();
    let a = App::start(s.clone()).await;
    let b = App::start(s).await;
    tokio::time::sleep(Duration::from_millis(6500)).await;
    // What a Fly scheduled Machine sends for each period that ran: the same scans.
    let pushed = scan_jobs_in_redis(&svc).await;
    for id in &pushed {
        let period = id.strip_prefix("scan:o/r:").expect("a scan of o/r");
        let (code, body) = b
            .trigger(json!({"owner": "o", "repo": "r", "snapshot": period}))
            .await;
        assert_eq!((code, &body["duplicate"]), (200, &json!(true)), "{body}");
    }
    a.stop().await;
    b.stop().await;
    // The window ends when both have stopped: a tick may fire while the triggers above run.
    let end = chrono::Utc::now();

    // Ticks of the schedule in the window, plus the start-up catch-up of the tick before it.
    let schedule = <cron::Schedule as std::str::FromStr>::from_str(expr).unwrap();
    let ticks = schedule
        .after(&(start - chrono::Duration::seconds(2)))
        .take_while(|t| *t <= end)
        .count();
    let pushed = scan_jobs_in_redis(&svc).await;
    assert!(
        (3..=ticks).contains(&pushed.len()),
        "{} scan jobs pushed to Redis for {ticks} ticks (two appliances and a trigger per period): {pushed:?}",
        pushed.len()
    );
    // Each pushed scan ran once: one listing of the open PRs each.
    let listings = gh.count(|l| l.path.starts_with("/repos/o/r/pulls"));
    assert_eq!(listings, pushed.len(), "{:?}", gh.log());
    // And the rows say the same.
    let rows = scans(&svc).await;
    assert_eq!(rows.len(), pushed.len(), "{rows:?}");
    assert!(
        rows.iter().all(|(_, trigger)| trigger == "cron"),
        "{rows:?}"
    );
}
