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

#[tokio::test]
async fn each_tick_of_a_fine_schedule_queues_one_scan_per_period() {
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
    s.scan_schedule = Some("*/2 * * * * *".into());
    s.scan_repos = "o/r".into();
    let app = App::start(s).await;
    tokio::time::sleep(Duration::from_millis(6500)).await;
    app.stop().await;
    let all = scans(&svc).await;
    // Three ticks in 6.5 s, plus possibly the start-up catch-up of the latest tick (the same
    // period as the first tick or the one just before it).
    assert!((3..=5).contains(&all.len()), "{all:?}");
    assert!(
        all.iter()
            .all(|(id, trigger)| id.starts_with("scan:o/r:") && trigger == "cron")
    );
    let mut ids: Vec<&String> = all.iter().map(|(id, _)| id).collect();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "one scan per period");
}
