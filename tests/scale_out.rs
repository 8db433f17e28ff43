//! Past one machine: `web` and `worker` processes of the real binary over one Postgres and one
//! Redis. Web processes only queue work; worker processes share it, each head analysed once;
//! the schedule and housekeeping run once per period however many workers there are; a verdict
//! recorded through one web process is what the other shows next; a worker killed mid-scan
//! loses nothing.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::fake_github::FakeRepo;
use common::{App, FakeGithub, KillOnDrop, Services, settings};
use serde_json::{Value, json};

/// One `serve` child process with its role, port and log file.
struct Proc {
    child: KillOnDrop,
    base: String,
    log: PathBuf,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// SIGKILL, and reap.
    fn kill(&mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Starts `clawtriage serve --role {role}` against these services; `env` adds settings.
fn spawn(svc: &Services, gh: &str, role: &str, name: &str, env: &[(&str, &str)]) -> Proc {
    let port = common::services::free_port();
    let dir = std::env::temp_dir().join(format!("{}-{name}", svc.queue_prefix));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("serve.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut cmd = common::appliance_command(svc, gh, port);
    cmd.args(["--role", role])
        .env("PUBLIC_SCAN_ALLOWED_REPOS", "bench/playwright,o/r")
        .env("GIT_MIRROR", "off")
        .env("DATA_ROOT", dir.join("data"))
        .env("RUST_LOG", "info")
        .env("METRICS_TOKEN", "metrics-token-for-tests-0123456789abcdef")
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = KillOnDrop(cmd.spawn().unwrap());
    common::services::wait_for_port(port, Duration::from_secs(60));
    Proc {
        child,
        base: format!("http://127.0.0.1:{port}"),
        log,
    }
}

/// Triggers a scan of `owner/repo` through the web process at `base` (202 expected).
async fn trigger(http: &reqwest::Client, base: &str, owner: &str, repo: &str, snapshot: &str) {
    let r = http
        .post(format!("{base}/api/ops/public-scan"))
        .bearer_auth("ops-token-for-tests-0123456789abcdef")
        .json(&json!({"owner": owner, "repo": repo, "snapshot": snapshot}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        202,
        "{}",
        r.text().await.unwrap_or_default()
    );
}

/// `GET /api/health` of a process: status and body.
async fn health(http: &reqwest::Client, p: &Proc) -> (u16, Value) {
    common::get_json(http, &p.base, "/api/health").await
}

/// Waits until `pred` holds for the health of `p`.
async fn wait_health(http: &reqwest::Client, p: &Proc, pred: impl Fn(u16, &Value) -> bool) {
    let start = Instant::now();
    loop {
        let (s, b) = health(http, p).await;
        if pred(s, &b) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "health never as expected: {s} {b}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The worker names registered with the queues in Redis (every process's).
async fn registered_workers(svc: &Services) -> Vec<String> {
    let mut c = redis::Client::open(svc.redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut out = Vec::new();
    for q in ["scan", "batch", "analyse", "check"] {
        let names: Vec<String> = redis::cmd("ZRANGE")
            .arg(format!("{}:{q}:workers", svc.queue_prefix))
            .arg(0)
            .arg(-1)
            .query_async(&mut c)
            .await
            .unwrap();
        out.extend(names);
    }
    out
}

/// The process id inside a worker name (`{kind}-{host}-{pid}-{random}`, with `-r{restarts}`
/// on the queues' workers).
fn pid_of(worker: &str) -> Option<u32> {
    let name = match worker.rsplit_once("-r") {
        Some((head, n)) if n.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => worker,
    };
    let mut parts = name.rsplit('-');
    parts.next()?;
    parts.next()?.parse().ok()
}

#[tokio::test]
async fn web_runs_no_workers_and_a_worker_serves_only_health() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("o", "r", common::fixture_repo(Some(6)));
    let http = reqwest::Client::new();

    // A web process alone: healthy for itself, saying that no worker runs anywhere.
    let web = spawn(&svc, &gh.url(), "web", "web", &[]);
    wait_health(&http, &web, |s, b| s == 200 && b["role"] == "web").await;
    let (_, b) = health(&http, &web).await;
    assert_eq!(b["workers"], "none", "{b}");
    assert_eq!(b["down"], json!([]), "{b}");
    // It queues a scan that nobody runs yet.
    trigger(&http, &web.base, "o", "r", "roles").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(gh.count(|l| l.path.starts_with("/repos/o/r/pulls")), 0);
    assert!(registered_workers(&svc).await.is_empty());

    // A worker process comes: it runs the scan; the web process now sees its heartbeats.
    let worker = spawn(
        &svc,
        &gh.url(),
        "worker",
        "worker",
        &[("MIGRATE_ON_START", "false")],
    );
    let st =
        common::wait_scan_at(&http, &web.base, "scan:o/r:roles", Duration::from_secs(60)).await;
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["prsAnalyzed"], 6, "{st}");
    wait_health(&http, &web, |s, b| s == 200 && b["workers"] == "ok").await;
    wait_health(&http, &worker, |s, b| {
        s == 200 && b["role"] == "worker" && b["workers"] == "ok"
    })
    .await;
    let workers = registered_workers(&svc).await;
    assert!(!workers.is_empty());
    assert!(
        workers.iter().all(|w| pid_of(w) == Some(worker.pid())),
        "only the worker process runs workers (web is {}): {workers:?}",
        web.pid()
    );

    // The worker serves health and metrics only.
    for path in ["/api/repos", "/", "/api/repos/1/duplicate-sets"] {
        let (s, b) = common::get_json(&http, &worker.base, path).await;
        assert_eq!(s, 404, "{path}: {b}");
        assert_eq!(b["error"]["code"], "not_found", "{path}: {b}");
    }
    let r = http
        .post(format!("{}/api/ops/public-scan", worker.base))
        .bearer_auth("ops-token-for-tests-0123456789abcdef")
        .json(&json!({"owner": "o", "repo": "r"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let text = common::scrape(
        &http,
        &worker.base,
        "metrics-token-for-tests-0123456789abcdef",
    )
    .await;
    assert!(text.contains("clawtriage_worker_heartbeat_age_seconds"));
    let text = common::scrape(&http, &web.base, "metrics-token-for-tests-0123456789abcdef").await;
    let age = common::prom_value(&text, "clawtriage_worker_heartbeat_age_seconds", &[]);
    assert!(
        (0.0..=30.0).contains(&age),
        "web sees the workers' beats: {age}"
    );
    // The web process serves the results.
    let (s, repos) = common::get_json(&http, &web.base, "/api/repos").await;
    assert_eq!(s, 200);
    assert_eq!(repos["repos"][0]["name"], "r", "{repos}");

    // Without the worker, the web process reports the silence but stays up (it is not what
    // is broken); the check needs a minute of silence, so look at the body only.
    drop(worker);
    let (s, b) = health(&http, &web).await;
    assert_eq!(s, 200, "{b}");
}

/// The `period` of every `housekeeping pass` line in a JSON log.
fn housekeeping_periods(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "housekeeping pass")
        .filter_map(|v| v["fields"]["period"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn schedule_and_housekeeping_run_once_per_period_across_two_workers() {
    let svc = Services::new().await;
    svc.migrate().await;
    let gh = FakeGithub::start().await;
    gh.add_repo(
        "o",
        "r",
        FakeRepo {
            default_branch: "main".into(),
            ..Default::default()
        },
    );
    let env = [
        ("SCAN_SCHEDULE", "*/2 * * * * *"),
        ("SCAN_REPOS", "o/r"),
        ("HOUSEKEEPING_PERIOD_SECS", "2"),
        ("LOG_FORMAT", "json"),
        ("MIGRATE_ON_START", "false"),
    ];
    let mut a = spawn(&svc, &gh.url(), "worker", "wa", &env);
    let mut b = spawn(&svc, &gh.url(), "worker", "wb", &env);
    tokio::time::sleep(Duration::from_secs(9)).await;
    a.kill();
    b.kill();

    // Housekeeping: every period that ran was run by exactly one of the two processes.
    let (la, lb) = (
        housekeeping_periods(&a.log_text()),
        housekeeping_periods(&b.log_text()),
    );
    let mut per_period: BTreeMap<String, usize> = BTreeMap::new();
    for p in la.iter().chain(&lb) {
        *per_period.entry(p.clone()).or_default() += 1;
    }
    assert!(
        per_period.len() >= 3,
        "too few housekeeping periods ran: {per_period:?}"
    );
    assert!(
        per_period.values().all(|n| *n == 1),
        "a period's pass ran more than once: a {la:?} b {lb:?}"
    );
    let c = svc.client().await;
    let rows: i64 = c
        .query_one("SELECT count(*) FROM housekeeping_runs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows as usize, per_period.len());

    // The schedule: one scan per period, however many worker processes tick.
    let mut conn = redis::Client::open(svc.redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let pushed: Vec<String> = redis::cmd("HKEYS")
        .arg(format!("{}:scan:data", svc.queue_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(pushed.len() >= 3, "{pushed:?}");
    let listings = gh.count(|l| l.path.starts_with("/repos/o/r/pulls"));
    assert_eq!(listings, pushed.len(), "each period's scan listed once");
    let scans: i64 = c
        .query_one("SELECT count(*) FROM scan_jobs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(scans as usize, pushed.len());
}

/// The slice scanned by one in-process `all` appliance: its duplicate sets.
async fn sets_of_one_process() -> Vec<Vec<i64>> {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("bench", "playwright", common::fixture_repo(None));
    let mut s = settings(&svc, &gh.url());
    s.scan_batch_size = Some("4".into());
    let app = App::start(s).await;
    let (code, b) = app
        .trigger(json!({"owner": "bench", "repo": "playwright", "snapshot": "one"}))
        .await;
    assert_eq!(code, 202, "{b}");
    let st = app
        .wait_scan("scan:bench/playwright:one", Duration::from_secs(180))
        .await;
    assert_eq!(st["state"], "done", "{st}");
    let (_, repos) = common::get_json(&app.http, &app.base, "/api/repos").await;
    let repo_id = repos["repos"][0]["repoId"].as_i64().unwrap();
    let sets = common::set_members(&app.http, &app.base, repo_id).await;
    app.stop().await;
    sets
}

const WORKER_ENV: [(&str, &str); 3] = [
    ("SCAN_BATCH_SIZE", "4"),
    ("BATCH_CONCURRENCY", "1"),
    ("MIGRATE_ON_START", "false"),
];

/// Done analyses per worker process: (pid, heads, max attempts).
async fn analyses_per_process(svc: &Services) -> Vec<(u32, i64, i32)> {
    let c = svc.client().await;
    c.query(
        "SELECT worker, count(*), max(attempts) FROM analysis_runs WHERE status = 'done'
         GROUP BY 1 ORDER BY 1",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| {
        let w: String = r.get(0);
        (pid_of(&w).unwrap_or(0), r.get(1), r.get(2))
    })
    .collect()
}

#[tokio::test]
async fn two_web_and_two_worker_processes_share_one_database_and_queue() {
    let expected = sets_of_one_process().await;
    assert!(!expected.is_empty());

    let svc = Services::new().await;
    svc.migrate().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("bench", "playwright", common::fixture_repo(None));
    let http = reqwest::Client::new();
    let no_migrate = [("MIGRATE_ON_START", "false")];
    let webs = [
        spawn(&svc, &gh.url(), "web", "web-a", &no_migrate),
        spawn(&svc, &gh.url(), "web", "web-b", &no_migrate),
    ];
    let workers = [
        spawn(&svc, &gh.url(), "worker", "worker-a", &WORKER_ENV),
        spawn(&svc, &gh.url(), "worker", "worker-b", &WORKER_ENV),
    ];
    trigger(&http, &webs[0].base, "bench", "playwright", "four").await;
    let st = common::wait_scan_at(
        &http,
        &webs[1].base,
        "scan:bench/playwright:four",
        Duration::from_secs(180),
    )
    .await;
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["prsAnalyzed"], 72, "{st}");

    // Spread over both workers, none by a web process, each head analysed once.
    let per = analyses_per_process(&svc).await;
    let worker_pids: Vec<u32> = workers.iter().map(Proc::pid).collect();
    assert_eq!(per.len(), 2, "both workers analysed: {per:?}");
    assert!(
        per.iter().all(|(pid, _, _)| worker_pids.contains(pid)),
        "only worker processes analyse ({worker_pids:?}): {per:?}"
    );
    assert_eq!(per.iter().map(|p| p.1).sum::<i64>(), 72, "{per:?}");
    assert!(per.iter().all(|p| p.2 == 1), "each head once: {per:?}");

    let (_, repos) = common::get_json(&http, &webs[1].base, "/api/repos").await;
    let repo_id = repos["repos"][0]["repoId"].as_i64().unwrap();
    for w in &webs {
        assert_eq!(
            common::set_members(&http, &w.base, repo_id).await,
            expected,
            "sets differ from one process's"
        );
    }

    // A verdict through web A is what web B shows next (B has the page cached).
    let url = format!("/api/repos/{repo_id}/duplicate-sets?limit=100");
    let (_, before) = common::get_json(&http, &webs[1].base, &url).await;
    let set = before["sets"][0].clone();
    let members: Vec<i64> = set["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["number"].as_i64().unwrap())
        .collect();
    let r = http
        .post(format!("{}/api/repos/{repo_id}/feedback", webs[0].base))
        .json(
            &json!({"target": "set", "setId": set["setId"], "members": members,
                      "verdict": "not_duplicate"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (_, after) = common::get_json(&http, &webs[1].base, &url).await;
    assert!(
        after["sets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["setId"] != set["setId"]),
        "web B still shows the set rejected through web A: {}",
        set["setId"]
    );
    assert_eq!(
        after["total"].as_u64().unwrap() + 1,
        before["total"].as_u64().unwrap()
    );

    // One trigger budget per client across both web processes: calls alternating between A and
    // B (a wrong token: counted before the token is checked) are refused once the client's ten
    // a minute are spent (the scan above used one), not after ten on each.
    let mut codes = Vec::new();
    for i in 0..12 {
        let r = http
            .post(format!("{}/api/ops/public-scan", webs[i % 2].base))
            .bearer_auth("wrong-token")
            .json(&json!({"owner": "bench", "repo": "playwright"}))
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
    }
    let allowed = codes.iter().take_while(|c| **c == 401).count();
    assert!(
        allowed == 9 || allowed == 10,
        "9 calls allowed (10 once the scan's call is a minute old): {codes:?}"
    );
    assert!(codes[allowed..].iter().all(|c| *c == 429), "{codes:?}");
}

#[tokio::test]
async fn a_worker_killed_mid_scan_loses_nothing() {
    let expected = sets_of_one_process().await;
    let svc = Services::new().await;
    svc.migrate().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("bench", "playwright", common::fixture_repo(None));
    // One head's diff hangs: whichever worker takes its batch is the one killed.
    let repo = common::fixture_repo(None);
    let mut numbers: Vec<i64> = repo
        .pulls
        .iter()
        .map(|p| p["number"].as_i64().unwrap())
        .collect();
    numbers.sort_unstable();
    let hung = numbers[numbers.len() / 2];
    gh.with(|g| g.faults.hang_on = Some(format!("/pulls/{hung}/files")));
    let http = reqwest::Client::new();
    let web = spawn(
        &svc,
        &gh.url(),
        "web",
        "web",
        &[("MIGRATE_ON_START", "false")],
    );
    let mut workers = vec![
        spawn(&svc, &gh.url(), "worker", "worker-a", &WORKER_ENV),
        spawn(&svc, &gh.url(), "worker", "worker-b", &WORKER_ENV),
    ];
    trigger(&http, &web.base, "bench", "playwright", "kill").await;

    // Wait for the hung head to be running, then SIGKILL the process running it.
    let c = svc.client().await;
    let start = Instant::now();
    let holder: u32 = loop {
        let row = c
            .query_opt(
                "SELECT worker FROM analysis_runs WHERE number = $1 AND status = 'running'",
                &[&hung],
            )
            .await
            .unwrap();
        if let Some(row) = row {
            break pid_of(&row.get::<_, String>(0)).unwrap();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "#{hung} never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let i = workers.iter().position(|w| w.pid() == holder).unwrap();
    workers.remove(i).kill();
    gh.with(|g| g.faults.hang_on = None);

    // The survivor picks up the dead worker's batch (orphaned after its missed heartbeats).
    let st = common::wait_scan_at(
        &http,
        &web.base,
        "scan:bench/playwright:kill",
        Duration::from_secs(180),
    )
    .await;
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["prsAnalyzed"], 72, "{st}");
    let rows = c
        .query(
            "SELECT count(*), count(DISTINCT number), count(*) FILTER (WHERE status = 'done')
             FROM analysis_runs",
            &[],
        )
        .await
        .unwrap();
    let (n, distinct, done): (i64, i64, i64) = (rows[0].get(0), rows[0].get(1), rows[0].get(2));
    assert_eq!((n, distinct, done), (72, 72, 72));
    let sigs: i64 = c
        .query_one("SELECT count(DISTINCT number) FROM pr_signatures", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sigs, 72);
    let per = analyses_per_process(&svc).await;
    assert!(
        per.iter().any(|(pid, _, _)| *pid == workers[0].pid()),
        "the survivor finished the work: {per:?}"
    );
    let (_, repos) = common::get_json(&http, &web.base, "/api/repos").await;
    let repo_id = repos["repos"][0]["repoId"].as_i64().unwrap();
    assert_eq!(
        common::set_members(&http, &web.base, repo_id).await,
        expected,
        "sets differ from one process's"
    );
}

#[tokio::test]
async fn two_processes_migrating_at_once_apply_each_migration_once() {
    let svc = Services::new().await;
    let runs: Vec<std::process::Child> = (0..2)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_clawtriage"))
                .arg("migrate")
                .env_clear()
                .env("DATABASE_URL", &svc.database_url)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for run in runs {
        let out = run.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count() as i64;
    let c = svc.client().await;
    let row = c
        .query_one(
            "SELECT count(*), count(DISTINCT version) FROM refinery_schema_history",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, i64>(1)),
        (migrations, migrations)
    );
}

#[tokio::test]
async fn the_supervisor_starts_no_servers_when_they_are_elsewhere() {
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    let data_root = tempfile::tempdir().unwrap();
    let port = common::services::free_port();
    let out = std::fs::File::create(data_root.path().join("supervisor.log")).unwrap();
    let mut child = KillOnDrop(
        std::process::Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/start-fly.sh"))
            .env_remove("FLY_APP_NAME")
            .env("DATA_ROOT", data_root.path())
            .env("PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .env("ROLE", "worker")
            // The defaults name 127.0.0.1:5432 and :6379; these servers are elsewhere.
            .env("DATABASE_URL", &svc.database_url)
            .env("REDIS_URL", &svc.redis_url)
            .env("QUEUE_PREFIX", &svc.queue_prefix)
            .env("GITHUB_API_URL", gh.url())
            .env("CLAWTRIAGE_BIN", env!("CARGO_BIN_EXE_clawtriage"))
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap(),
    );
    let log = || std::fs::read_to_string(data_root.path().join("supervisor.log")).unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{base}/api/health")).send().await
            && r.status() == 200
        {
            let b: Value = r.json().await.unwrap();
            assert_eq!(b["role"], "worker", "{b}");
            break;
        }
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "supervisor exited:\n{}",
            log()
        );
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not healthy:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = log();
    assert!(text.contains("Postgres elsewhere"), "{text}");
    assert!(text.contains("Redis elsewhere"), "{text}");
    assert!(!text.contains("Postgres started"), "{text}");
    assert!(!text.contains("Redis started"), "{text}");
    for gone in ["postgres", "redis", "run/postgres.pid", "run/redis.pid"] {
        assert!(!data_root.path().join(gone).exists(), "{gone} exists");
    }
    // Migrations ran against the database elsewhere.
    let c = svc.client().await;
    let n: i64 = c
        .query_one("SELECT count(*) FROM refinery_schema_history", &[])
        .await
        .unwrap()
        .get(0);
    assert!(n > 0);
    // SIGTERM: only the app to stop; a clean exit.
    std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(45), "{}", log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{}", log());
}

/// A "GitHub" git server (a bare repository with `refs/pull/N/head`) and the matching REST
/// side, for `n` PRs that each change one file.
fn git_remote(root: &std::path::Path, n: i64) -> FakeRepo {
    let work = root.join("work");
    std::fs::create_dir_all(work.join("src")).unwrap();
    common::git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("src/lib.ts"), "export const a = 1;\n").unwrap();
    common::git(&work, &["add", "."]);
    common::git(&work, &["commit", "-q", "-m", "base"]);
    let bare = root.join("remote/o/r.git");
    std::fs::create_dir_all(&bare).unwrap();
    common::git(&bare, &["init", "-q", "--bare"]);
    common::git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    let mut repo = FakeRepo {
        default_branch: "main".into(),
        ..Default::default()
    };
    for i in 1..=n {
        common::git(&work, &["checkout", "-q", "-B", &format!("pr{i}"), "main"]);
        std::fs::write(
            work.join(format!("src/m{i}.ts")),
            format!("export function f{i}() {{ return {i}; }}\n"),
        )
        .unwrap();
        common::git(&work, &["add", "."]);
        common::git(&work, &["commit", "-q", "-m", &format!("pr {i}")]);
        let sha = common::git(&work, &["rev-parse", "HEAD"]);
        let dest = format!("HEAD:refs/pull/{i}/head");
        common::git(&work, &["push", "-q", bare.to_str().unwrap(), &dest]);
        let (pr, _) = common::fake_github::simple_pr(i, &sha, &format!("pr {i}"), vec![]);
        repo.pulls.push(pr);
    }
    repo
}

#[tokio::test]
async fn a_worker_without_the_mirror_fetches_what_its_batches_need() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 12;
    let svc = Services::new().await;
    svc.migrate().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("o", "r", git_remote(tmp.path(), n));
    let git_url = format!("file://{}", tmp.path().join("remote").display());
    let env = [
        ("SCAN_BATCH_SIZE", "1"),
        ("BATCH_CONCURRENCY", "1"),
        ("MIGRATE_ON_START", "false"),
        ("GIT_MIRROR", "on"),
        ("GITHUB_GIT_URL", git_url.as_str()),
    ];
    let http = reqwest::Client::new();
    let web = spawn(
        &svc,
        &gh.url(),
        "web",
        "web",
        &[("MIGRATE_ON_START", "false")],
    );
    // Two worker machines, each with its own (empty) data disk.
    let workers = [
        spawn(&svc, &gh.url(), "worker", "worker-a", &env),
        spawn(&svc, &gh.url(), "worker", "worker-b", &env),
    ];
    trigger(&http, &web.base, "o", "r", "mirrors").await;
    let st = common::wait_scan_at(
        &http,
        &web.base,
        "scan:o/r:mirrors",
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["prsAnalyzed"], n, "{st}");
    // Every diff came from a mirror: none from the REST files endpoint.
    assert_eq!(st["sourceMirror"], n, "{st}");
    assert_eq!(gh.count(|l| l.path.contains("/files")), 0, "{:?}", gh.log());
    let per = analyses_per_process(&svc).await;
    assert_eq!(per.len(), 2, "both workers analysed: {per:?}");
    for w in &workers {
        let mirror = w.log.parent().unwrap().join("data/repos/o/r.git/HEAD");
        assert!(mirror.exists(), "no mirror at {}", mirror.display());
    }
}
