//! Scans analyse their heads in batches: whatever the batch size, whatever order the batches run
//! in, and however many appliance processes share the queue, the appliance suggests what the
//! engine run in memory suggests, and every head is analysed exactly once.

mod common;

use std::time::Duration;

use clawtriage::github::PullSummary;
use clawtriage::jobs::analyse::{RepoRef, analyse_heads};
use common::{App, FakeGithub, KillOnDrop, Services, settings};
use serde_json::json;

/// Scans the committed slice with `batch` heads per batch job; returns the app and repo id.
async fn scan_with_batch_size(batch: &str) -> (App, Services, FakeGithub, i64) {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("bench", "playwright", common::fixture_repo(None));
    let mut s = settings(&svc, &gh.url());
    s.scan_batch_size = Some(batch.into());
    let app = App::start(s).await;
    let (code, b) = app
        .trigger(json!({"owner": "bench", "repo": "playwright", "snapshot": "b"}))
        .await;
    assert_eq!(code, 202, "{b}");
    let st = app
        .wait_scan("scan:bench/playwright:b", Duration::from_secs(180))
        .await;
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["prsAnalyzed"], st["prsListed"], "{st}");
    let (_, repos) = common::get_json(&app.http, &app.base, "/api/repos").await;
    let repo_id = repos["repos"][0]["repoId"].as_i64().unwrap();
    (app, svc, gh, repo_id)
}

/// How many batch jobs a scan queued (the batch queue's job ids are in Redis).
async fn batches_queued(svc: &Services) -> usize {
    let client = redis::Client::open(svc.redis_url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("HKEYS")
        .arg(format!("{}:batch:data", svc.queue_prefix))
        .query_async(&mut c)
        .await
        .unwrap_or_default();
    keys.iter().filter(|k| k.starts_with("batch:")).count()
}

#[tokio::test]
async fn scans_in_batches_of_any_size_agree_with_the_engine() {
    let mut members = Vec::new();
    for (size, batches) in [("1", 72), ("7", 11), ("1000", 1)] {
        let (app, svc, _gh, repo_id) = scan_with_batch_size(size).await;
        assert_eq!(batches_queued(&svc).await, batches, "batch size {size}");
        let what = format!("batch size {size}");
        common::assert_agrees_with_engine(&app.http, &app.base, repo_id, &what).await;
        members.push(common::set_members(&app.http, &app.base, repo_id).await);
        app.stop().await;
    }
    assert!(!members[0].is_empty());
}

/// Writes the slice's PRs as a scan listing would, without queueing anything.
async fn list_slice(app: &App) -> (RepoRef, Vec<(i64, String)>) {
    let repo = common::fixture_repo(None);
    let pulls: Vec<PullSummary> = repo
        .pulls
        .iter()
        .map(|p| serde_json::from_value(p.clone()).unwrap())
        .collect();
    let mut c = app.state.pool.get().await.unwrap();
    let tx = c.transaction().await.unwrap();
    let repo_id = clawtriage::store::repos::upsert_repo(&tx, "bench", "playwright", Some("main"))
        .await
        .unwrap();
    let refs: Vec<&PullSummary> = pulls.iter().collect();
    clawtriage::store::repos::upsert_listed_pulls(&tx, repo_id, &refs)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut heads: Vec<(i64, String)> = pulls
        .iter()
        .map(|p| (p.number, p.head.sha.clone()))
        .collect();
    heads.sort();
    let r = RepoRef {
        repo_id,
        owner: "bench".into(),
        repo: "playwright".into(),
    };
    (r, heads)
}

#[tokio::test]
async fn batches_analysed_in_any_order_agree_with_the_engine() {
    // Reversed batches of 9; then batches of 5 in a shuffled order (fixed seed), twice (the
    // second pass finds everything analysed and changes nothing).
    for (size, shuffle) in [(9usize, false), (5, true)] {
        let svc = Services::new().await;
        let gh = FakeGithub::start().await;
        gh.add_repo("bench", "playwright", common::fixture_repo(None));
        let app = App::start(settings(&svc, &gh.url())).await;
        let (repo, heads) = list_slice(&app).await;
        let cfg = clawtriage::jobs::triage_config(&app.state, repo.repo_id)
            .await
            .unwrap();
        let mut batches: Vec<Vec<(i64, String)>> = heads.chunks(size).map(|c| c.to_vec()).collect();
        if shuffle {
            let mut rng = fastrand::Rng::with_seed(13);
            rng.shuffle(&mut batches);
        } else {
            batches.reverse();
        }
        for pass in 0..if shuffle { 2 } else { 1 } {
            for b in &batches {
                let refs: Vec<(i64, &str)> = b.iter().map(|(n, h)| (*n, h.as_str())).collect();
                let report = analyse_heads(&app.state, &repo, &refs, &cfg, "test", false)
                    .await
                    .unwrap();
                assert!(report.retry.is_empty(), "{report:?}");
                assert_eq!(report.done.len(), b.len(), "pass {pass}: {report:?}");
            }
        }
        let c = svc.client().await;
        let row = c
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE status = 'done' AND attempts = 1)
                 FROM analysis_runs WHERE repo_id = $1",
                &[&repo.repo_id],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), heads.len() as i64);
        assert_eq!(
            row.get::<_, i64>(1),
            heads.len() as i64,
            "each head analysed once"
        );
        let what = format!("batches of {size}, shuffled {shuffle}");
        let found =
            common::assert_agrees_with_engine(&app.http, &app.base, repo.repo_id, &what).await;
        assert!(found > 0, "{what}: nothing suggested");
        app.stop().await;
    }
}

#[tokio::test]
async fn two_processes_share_a_scan_and_analyse_each_head_once() {
    // The same scan by one in-process appliance, for comparison.
    let (one, _svc1, _gh1, one_repo) = scan_with_batch_size("4").await;
    let expected = common::set_members(&one.http, &one.base, one_repo).await;
    one.stop().await;

    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("bench", "playwright", common::fixture_repo(None));
    let ports = [common::services::free_port(), common::services::free_port()];
    let mut procs = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let mut cmd = common::appliance_command(&svc, &gh.url(), *port);
        cmd.env("SCAN_BATCH_SIZE", "4")
            .env("BATCH_CONCURRENCY", "1")
            .env("PUBLIC_SCAN_ALLOWED_REPOS", "bench/playwright")
            .env("GIT_MIRROR", "off")
            .env(
                "DATA_ROOT",
                std::env::temp_dir().join(format!("{}-{i}", svc.queue_prefix)),
            )
            .env("MIGRATE_ON_START", if i == 0 { "true" } else { "false" })
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        procs.push(KillOnDrop(cmd.spawn().unwrap()));
        common::services::wait_for_port(*port, Duration::from_secs(60));
    }
    let http = reqwest::Client::new();
    let bases: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let r = http
        .post(format!("{}/api/ops/public-scan", bases[0]))
        .bearer_auth("ops-token-for-tests-0123456789abcdef")
        .json(&json!({"owner": "bench", "repo": "playwright", "snapshot": "two"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let st = common::wait_scan_at(
        &http,
        &bases[1],
        "scan:bench/playwright:two",
        Duration::from_secs(180),
    )
    .await;
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["prsAnalyzed"], st["prsListed"], "{st}");

    let c = svc.client().await;
    let rows = c
        .query(
            "SELECT worker, count(*), max(attempts), min(attempts)
             FROM analysis_runs WHERE status = 'done' GROUP BY 1 ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let per_process: Vec<(String, i64, i32, i32)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        per_process.len(),
        2,
        "both processes analysed: {per_process:?}"
    );
    let total: i64 = per_process.iter().map(|p| p.1).sum();
    assert_eq!(total, 72, "{per_process:?}");
    assert!(
        per_process.iter().all(|p| p.2 == 1 && p.3 == 1),
        "each head analysed once: {per_process:?}"
    );
    let (_, repos) = common::get_json(&http, &bases[1], "/api/repos").await;
    let repo_id = repos["repos"][0]["repoId"].as_i64().unwrap();
    for base in &bases {
        common::assert_agrees_with_engine(&http, base, repo_id, "two processes").await;
        assert_eq!(
            common::set_members(&http, base, repo_id).await,
            expected,
            "sets differ from one process's"
        );
    }
    drop(procs);
}

#[tokio::test]
async fn heads_githubs_rate_limit_puts_off_run_after_the_reset_without_timing_out() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("bench", "playwright", common::fixture_repo(Some(12)));
    // The repository, one list page and five files calls; then the budget is spent and resets
    // in ten minutes: longer than an analysis job may wait.
    gh.with(|g| {
        g.remaining = 7;
        g.reset_after_secs = 600;
        g.reset_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 600;
    });
    let app = App::start(settings(&svc, &gh.url())).await;
    let (code, b) = app
        .trigger(json!({"owner": "bench", "repo": "playwright", "snapshot": "rl"}))
        .await;
    assert_eq!(code, 202, "{b}");
    // The batch ends at once: the heads it could not fetch are put off, not waited for.
    let c = svc.client().await;
    let key = format!("{}:batch:scheduled", svc.queue_prefix);
    let redis = redis::Client::open(svc.redis_url.as_str()).unwrap();
    let mut r = redis.get_multiplexed_async_connection().await.unwrap();
    let start = std::time::Instant::now();
    // Every push passes through the scheduled set (due at once): wait for the put-off batch.
    let scheduled: Vec<(String, f64)> = loop {
        let s: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(&key)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut r)
            .await
            .unwrap();
        let s: Vec<(String, f64)> = s
            .into_iter()
            .filter(|(id, _)| id.contains(":rl-after"))
            .collect();
        if !s.is_empty() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "nothing was put off"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(scheduled.len(), 1, "{scheduled:?}");
    let reset = gh.with(|g| g.reset_at) as f64;
    let errors: Vec<String> = c
        .query(
            "SELECT DISTINCT COALESCE(error, status) FROM analysis_runs",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        (scheduled[0].1 - reset).abs() <= 5.0,
        "runs at {} but the budget resets at {reset}: {errors:?}",
        scheduled[0].1
    );
    let row = c
        .query_one(
            "SELECT count(*) FILTER (WHERE status = 'failed' AND error LIKE '%rate limit%'),
                    count(*) FILTER (WHERE status = 'running')
             FROM analysis_runs",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, i64>(0) > 0, "no head recorded as put off");
    assert_eq!(row.get::<_, i64>(1), 0, "heads left running");
    let (_, st) = common::get_json(
        &app.http,
        &app.base,
        "/api/ops/scans/scan%3Abench%2Fplaywright%3Arl",
    )
    .await;
    assert_ne!(st["state"], "done", "{st}");

    // The reset comes (moved to now here): the put-off batch runs and the scan completes.
    gh.with(|g| g.remaining = 5000);
    let _: i64 = redis::cmd("ZADD")
        .arg(&key)
        .arg(0)
        .arg(&scheduled[0].0)
        .query_async(&mut r)
        .await
        .unwrap();
    let st = app
        .wait_scan("scan:bench/playwright:rl", Duration::from_secs(60))
        .await;
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["prsAnalyzed"], 12, "{st}");
    app.stop().await;
}

#[tokio::test]
async fn work_a_lost_job_left_running_is_settled_by_the_reaper() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("bench", "playwright", common::fixture_repo(Some(6)));
    let app = App::start(settings(&svc, &gh.url())).await;
    let (code, _) = app
        .trigger(json!({"owner": "bench", "repo": "playwright", "snapshot": "reap"}))
        .await;
    assert_eq!(code, 202);
    let st = app
        .wait_scan("scan:bench/playwright:reap", Duration::from_secs(60))
        .await;
    assert_eq!(st["state"], "done");
    // As a job cut off by its timeout (or lost with Redis) leaves it: one head still running
    // in a scan that waits for it, and a scan whose listing never finished.
    let c = svc.client().await;
    c.batch_execute(
        "UPDATE analysis_runs SET status = 'running', finished_at = NULL,
             started_at = now() - interval '2 hours'
         WHERE number = (SELECT min(number) FROM analysis_runs);
         UPDATE scan_jobs SET state = 'running', finished_at = NULL;
         UPDATE scan_prs SET outcome = 'pending'
         WHERE number = (SELECT min(number) FROM analysis_runs);
         INSERT INTO scan_jobs (job_id, owner, repo, snapshot, state, created_at)
         VALUES ('scan:bench/playwright:lost', 'bench', 'playwright', 'lost', 'running',
                 now() - interval '2 days');",
    )
    .await
    .unwrap();
    // A fresh head is not touched.
    let untouched =
        clawtriage::store::housekeeping::reap(&app.state.pool, Duration::from_secs(3 * 3600))
            .await
            .unwrap();
    assert_eq!(untouched.analyses, 0);
    let r = clawtriage::store::housekeeping::reap(&app.state.pool, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(r.analyses, 1, "{r:?}");
    let rows = c
        .query("SELECT job_id, state FROM scan_jobs ORDER BY job_id", &[])
        .await
        .unwrap();
    let states: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        states,
        vec![
            (
                "scan:bench/playwright:lost".to_string(),
                "failed".to_string()
            ),
            ("scan:bench/playwright:reap".to_string(), "done".to_string()),
        ]
    );
    let failed: i64 = c
        .query_one(
            "SELECT count(*) FROM scan_prs WHERE outcome = 'failed'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(failed, 1);
    app.stop().await;
}

/// What the store holds about PR `n`: its files (head and path), its signature (head and bytes),
/// its index keys and its edges, as text.
async fn rows_of(c: &tokio_postgres::Client, n: i64) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT 'file ' || head_sha || ' ' || path FROM pr_files WHERE number = $1 ORDER BY 1",
        "SELECT 'signature ' || head_sha || ' ' || md5(signature) FROM pr_signatures WHERE number = $1",
        "SELECT 'key ' || key::text FROM index_keys WHERE number = $1 ORDER BY key",
        "SELECT 'edge ' || number || '@' || head_sha || ' ' || other_number || '@' || other_head_sha
           || ' ' || category FROM candidate_edges WHERE number = $1 OR other_number = $1 ORDER BY 1",
    ] {
        for r in c.query(sql, &[&n]).await.unwrap() {
            out.push(r.get(0));
        }
    }
    out
}

#[tokio::test]
async fn a_slow_analysis_of_an_old_head_never_overwrites_the_newer_heads_results() {
    let (app, svc, gh, repo_id) = scan_with_batch_size("100").await;
    let c = svc.client().await;
    // The PR with the most edges: the one whose results a stale write would damage most.
    let (n, newer): (i64, String) = {
        let r = c
            .query_one(
                "SELECT p.number, p.head_sha FROM pull_requests p
                 JOIN candidate_edges e ON e.repo_id = p.repo_id AND e.number = p.number
                 GROUP BY p.number, p.head_sha ORDER BY count(*) DESC, p.number LIMIT 1",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    let before = rows_of(&c, n).await;
    assert!(before.iter().any(|r| r.starts_with("edge ")), "{before:?}");
    // An older head of the PR is being analysed; its files are slow to come.
    let older = "0".repeat(39) + "1";
    c.execute(
        "UPDATE pull_requests SET head_sha = $2 WHERE number = $1",
        &[&n, &older],
    )
    .await
    .unwrap();
    gh.with(|g| g.faults.hang_on = Some(format!("/pulls/{n}/files")));
    let repo = RepoRef {
        repo_id,
        owner: "bench".into(),
        repo: "playwright".into(),
    };
    let cfg = clawtriage::jobs::triage_config(&app.state, repo_id)
        .await
        .unwrap();
    let state = app.state.clone();
    let old = older.clone();
    let slow = tokio::spawn(async move {
        analyse_heads(
            &state,
            &repo,
            &[(n, old.as_str())],
            &cfg,
            "stale-test",
            false,
        )
        .await
    });
    // It has begun (its run is recorded) and waits for GitHub.
    common::wait_for(
        "the old head's analysis to begin",
        Duration::from_secs(30),
        async || {
            c.query_one(
                "SELECT count(*) FROM analysis_runs WHERE number = $1 AND head_sha = $2",
                &[&n, &older],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
            .eq(&1)
            .then_some(())
        },
    )
    .await;
    // Meanwhile the newer head comes back (a push: its results are already stored).
    c.execute(
        "UPDATE pull_requests SET head_sha = $2 WHERE number = $1",
        &[&n, &newer],
    )
    .await
    .unwrap();
    gh.with(|g| g.faults.hang_on = None);
    let report = slow.await.unwrap().unwrap();
    assert!(report.retry.is_empty(), "{report:?}");
    let after = rows_of(&c, n).await;
    assert_eq!(
        after, before,
        "the stale analysis wrote over the newer head's files, signature, keys or edges"
    );
    app.stop().await;
}
