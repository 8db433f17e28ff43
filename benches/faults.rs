//! Fault-injection benchmark at full size (a bench binary that prints figures; not a timed
//! test).
//!
//! Scans a shared PR set from the fake GitHub four times, each on fresh Postgres and Redis
//! databases and each with one fault injected mid-scan:
//!
//! 1. GitHub faults: 502 on every 10th request, secondary rate limits (403 and 429 + `retry-after`),
//!    the primary budget exhausted mid-scan with a reset 3 s ahead, one PR deleted between the
//!    listing and its files fetch;
//! 2. the appliance (a child process) killed with SIGKILL at ~40% and started again;
//! 3. Redis restarted at ~40% (append-only file, as in production);
//! 4. Postgres restarted at ~40%.
//!
//! After each run it checks in SQL that the scan is done, every listed PR was analysed exactly
//! once for its head (a trigger installed by the bench logs every start and end of an analysis),
//! the counters add up and no table holds two rows for one PR, head or edge. It prints one row
//! per run and exits non-zero if any check failed.
//!
//! `cargo bench --bench faults -- [SET_DIR]` (default `../shared/datasets/playwright-1k`);
//! under `cargo test` it runs once over the committed slice as a smoke test.
//! Uses DATABASE_URL / REDIS_URL when set, else starts throwaway servers.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::services::{RedisServer, free_port};
use common::{App, FakeGithub, KillOnDrop, Services, settings};
use serde_json::{Value, json};

const SNAPSHOT: &str = "faults";
const JOB_ID: &str = "scan:bench/playwright:faults";
/// Longest a scan may take before the run counts as hung.
const SCAN_LIMIT: Duration = Duration::from_secs(1200);

/// Logs every start (`begin`: a new row or a new attempt) and every end (`done` / `failed`: a
/// new `finished_at`) of an analysis, so a head analysed twice is visible afterwards.
const AUDIT_SQL: &str = "
CREATE TABLE bench_analysis_events (
    id       BIGSERIAL PRIMARY KEY,
    number   BIGINT NOT NULL,
    head_sha TEXT NOT NULL,
    kind     TEXT NOT NULL,
    at       TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE FUNCTION bench_log_analysis() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.attempts IS DISTINCT FROM OLD.attempts THEN
        INSERT INTO bench_analysis_events (number, head_sha, kind)
        VALUES (NEW.number, NEW.head_sha, 'begin');
    END IF;
    IF NEW.finished_at IS NOT NULL
       AND (TG_OP = 'INSERT' OR NEW.finished_at IS DISTINCT FROM OLD.finished_at) THEN
        INSERT INTO bench_analysis_events (number, head_sha, kind)
        VALUES (NEW.number, NEW.head_sha, NEW.status);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER bench_log_analysis AFTER INSERT OR UPDATE ON analysis_runs
    FOR EACH ROW EXECUTE FUNCTION bench_log_analysis();
";

/// Fresh schema plus the audit trigger, before any appliance starts.
async fn prepare(svc: &Services) {
    svc.migrate().await;
    svc.client().await.batch_execute(AUDIT_SQL).await.unwrap();
}

/// A client, or None while Postgres is down.
async fn try_client(svc: &Services) -> Option<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(&svc.database_url, tokio_postgres::NoTls)
        .await
        .ok()?;
    tokio::spawn(conn);
    Some(client)
}

/// PRs of the scan settled as analysed so far (None while Postgres is down).
async fn analysed_so_far(svc: &Services) -> Option<i64> {
    let c = try_client(svc).await?;
    c.query_one(
        "SELECT count(*) FROM scan_prs WHERE job_id = $1 AND outcome = 'analyzed'",
        &[&JOB_ID],
    )
    .await
    .ok()
    .map(|r| r.get(0))
}

/// Waits until at least `n` PRs of the scan are analysed; returns the count then.
async fn wait_analysed(svc: &Services, n: i64) -> i64 {
    let start = Instant::now();
    loop {
        if let Some(k) = analysed_so_far(svc).await
            && k >= n
        {
            return k;
        }
        assert!(
            start.elapsed() < SCAN_LIMIT,
            "the scan never reached {n} analysed PRs"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Health, sampled in the background for the whole run.

#[derive(Debug, Clone, PartialEq)]
enum Sample {
    Ok,
    /// 503 with the names in `down`.
    Down(Vec<String>),
    /// Nothing answered (the process is gone).
    Unreachable,
    Other(u16),
}

async fn health_once(http: &reqwest::Client, base: &str) -> Sample {
    match http.get(format!("{base}/api/health")).send().await {
        Ok(r) => {
            let code = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or_default();
            match code {
                200 => Sample::Ok,
                503 => Sample::Down(
                    body["down"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect(),
                ),
                c => Sample::Other(c),
            }
        }
        Err(_) => Sample::Unreachable,
    }
}

struct HealthWatch {
    base: Arc<Mutex<String>>,
    samples: Arc<Mutex<Vec<(Instant, Sample)>>>,
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<()>,
}

/// How an outage looked from /api/health.
#[derive(Default)]
struct Outage {
    /// Total time health answered 503.
    reported: Duration,
    names: BTreeSet<String>,
    /// Total time nothing answered.
    unreachable: Duration,
    samples: usize,
}

impl HealthWatch {
    fn start(base: &str) -> HealthWatch {
        let base = Arc::new(Mutex::new(base.to_string()));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, s, st) = (base.clone(), samples.clone(), stop.clone());
        let handle = tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            while !st.load(Ordering::Relaxed) {
                let url = b.lock().unwrap().clone();
                let sample = health_once(&http, &url).await;
                s.lock().unwrap().push((Instant::now(), sample));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        HealthWatch {
            base,
            samples,
            stop,
            handle,
        }
    }

    fn set_base(&self, base: &str) {
        *self.base.lock().unwrap() = base.to_string();
    }

    async fn finish(self) -> Outage {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.handle.await;
        let samples = self.samples.lock().unwrap().clone();
        let mut out = Outage {
            samples: samples.len(),
            ..Default::default()
        };
        // Each sample stands for the time until the next one.
        for w in samples.windows(2) {
            let span = w[1].0 - w[0].0;
            match &w[0].1 {
                Sample::Down(names) => {
                    out.reported += span;
                    out.names.extend(names.iter().cloned());
                }
                Sample::Unreachable => out.unreachable += span,
                _ => {}
            }
        }
        out
    }
}

/// Polls health until it answers 503 naming `service`; returns how long that took.
async fn wait_reported(base: &str, service: &str, within: Duration) -> Option<Duration> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < within {
        if let Sample::Down(names) = health_once(&http, base).await
            && names.iter().any(|n| n == service)
        {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

async fn wait_healthy(base: &str, within: Duration) -> bool {
    let http = reqwest::Client::new();
    let start = Instant::now();
    while start.elapsed() < within {
        if health_once(&http, base).await == Sample::Ok {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

// ---------------------------------------------------------------------------------------------
// Invariants.

/// What the SQL checks found.
#[derive(Default)]
struct Checked {
    state: String,
    listed: i64,
    analysed: i64,
    unchanged: i64,
    failed: i64,
    pending: i64,
    /// `done` events in the audit log (completed analyses).
    completions: i64,
    /// `begin` events: analyses started, first attempts and re-starts.
    begins: i64,
    /// Heads whose analysis was started at least once.
    heads_begun: i64,
    /// GitHub requests the appliance counted for the scan.
    app_calls: i32,
    violations: Vec<String>,
}

async fn count(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// Checks the run's rows. `open` is the number of open PRs served, `deleted` the PRs whose files
/// answer 404 (they must end `failed`, every other PR `analyzed`).
async fn check(svc: &Services, open: i64, deleted: &[i64]) -> Checked {
    let c = svc.client().await;
    let mut k = Checked::default();
    let row = c
        .query_one(
            "SELECT j.state, j.api_calls,
                    count(p.number),
                    count(p.number) FILTER (WHERE p.outcome = 'analyzed'),
                    count(p.number) FILTER (WHERE p.outcome = 'unchanged'),
                    count(p.number) FILTER (WHERE p.outcome = 'failed'),
                    count(p.number) FILTER (WHERE p.outcome = 'pending')
             FROM scan_jobs j LEFT JOIN scan_prs p ON p.job_id = j.job_id
             WHERE j.job_id = $1 GROUP BY j.job_id",
            &[&JOB_ID],
        )
        .await
        .unwrap();
    k.state = row.get(0);
    k.app_calls = row.get(1);
    k.listed = row.get(2);
    k.analysed = row.get(3);
    k.unchanged = row.get(4);
    k.failed = row.get(5);
    k.pending = row.get(6);
    let mut v = Vec::new();
    if k.state != "done" {
        v.push(format!("scan state is `{}`, not done", k.state));
    }
    if k.listed != open {
        v.push(format!("{} PRs listed, {open} open on GitHub", k.listed));
    }
    if k.analysed + k.unchanged + k.failed + k.pending != k.listed {
        v.push(format!(
            "listed {} != analysed {} + unchanged {} + failed {} + pending {}",
            k.listed, k.analysed, k.unchanged, k.failed, k.pending
        ));
    }
    if k.pending != 0 {
        v.push(format!("{} PRs still pending", k.pending));
    }
    // Fresh databases: nothing can be unchanged; only the deleted PRs may fail.
    let want_failed = deleted.len() as i64;
    if k.unchanged != 0 || k.failed != want_failed || k.analysed != open - want_failed {
        v.push(format!(
            "expected analysed {} / unchanged 0 / failed {want_failed}, got {} / {} / {}",
            open - want_failed,
            k.analysed,
            k.unchanged,
            k.failed
        ));
    }

    // Per listed head: its analysis row, completions and starts after completion.
    let rows = c
        .query(
            "SELECT p.number, p.outcome,
                (SELECT count(*) FROM analysis_runs a
                  WHERE a.number = p.number AND a.head_sha = p.head_sha),
                (SELECT count(*) FROM analysis_runs a
                  WHERE a.number = p.number AND a.head_sha = p.head_sha AND a.status = 'done'),
                (SELECT count(*) FROM bench_analysis_events e
                  WHERE e.number = p.number AND e.head_sha = p.head_sha AND e.kind = 'done'),
                (SELECT count(*) FROM bench_analysis_events e
                  WHERE e.number = p.number AND e.head_sha = p.head_sha AND e.kind = 'begin'
                    AND e.at > (SELECT min(d.at) FROM bench_analysis_events d
                                WHERE d.number = p.number AND d.head_sha = p.head_sha
                                  AND d.kind = 'done'))
             FROM scan_prs p WHERE p.job_id = $1 ORDER BY p.number",
            &[&JOB_ID],
        )
        .await
        .unwrap();
    let (mut twice, mut never, mut restarted_after_done, mut wrong_rows) =
        (vec![], vec![], vec![], vec![]);
    for r in &rows {
        let (n, outcome): (i64, String) = (r.get(0), r.get(1));
        let (runs, runs_done, completions, late_begins): (i64, i64, i64, i64) =
            (r.get(2), r.get(3), r.get(4), r.get(5));
        let want_done = if deleted.contains(&n) { 0 } else { 1 };
        if runs != 1 || runs_done != want_done {
            wrong_rows.push(format!("#{n} ({outcome}): {runs} rows, {runs_done} done"));
        }
        if completions > want_done {
            twice.push(format!("#{n}: {completions}x"));
        } else if completions < want_done {
            never.push(format!("#{n}"));
        }
        if late_begins > 0 {
            restarted_after_done.push(format!("#{n}"));
        }
    }
    for (what, list) in [
        (
            "heads completed more often than once (or at all, if deleted)",
            &twice,
        ),
        ("heads never analysed", &never),
        (
            "heads re-started after their analysis was done",
            &restarted_after_done,
        ),
        ("heads whose analysis_runs rows are wrong", &wrong_rows),
    ] {
        if !list.is_empty() {
            let shown: Vec<&str> = list.iter().take(10).map(String::as_str).collect();
            v.push(format!("{} {what}: {}", list.len(), shown.join(", ")));
        }
    }
    for n in deleted {
        let err: Option<String> = c
            .query_opt("SELECT error FROM analysis_runs WHERE number = $1", &[n])
            .await
            .unwrap()
            .and_then(|r| r.get(0));
        if !err.as_deref().is_some_and(|e| e.contains("404")) {
            v.push(format!("deleted #{n}: error {err:?} does not say 404"));
        }
    }
    k.completions = count(
        &c,
        "SELECT count(*) FROM bench_analysis_events WHERE kind = 'done'",
    )
    .await;
    k.begins = count(
        &c,
        "SELECT count(*) FROM bench_analysis_events WHERE kind = 'begin'",
    )
    .await;
    k.heads_begun = count(
        &c,
        "SELECT count(*) FROM (SELECT DISTINCT number, head_sha FROM bench_analysis_events
           WHERE kind = 'begin') h",
    )
    .await;

    // Tables that hold one row per PR, head, file, key or edge: no key twice, whatever the
    // head or versions (the primary keys include them, so these groupings can catch what the
    // keys cannot).
    let dup_checks: [(&str, &str); 6] = [
        (
            "pull_requests per PR",
            "SELECT count(*) FROM (SELECT 1 FROM pull_requests GROUP BY repo_id, number HAVING count(*) > 1) d",
        ),
        (
            "analysis_runs per PR head",
            "SELECT count(*) FROM (SELECT 1 FROM analysis_runs GROUP BY repo_id, number, head_sha HAVING count(*) > 1) d",
        ),
        (
            "pr_signatures per PR",
            "SELECT count(*) FROM (SELECT 1 FROM pr_signatures GROUP BY repo_id, number HAVING count(*) > 1) d",
        ),
        (
            "pr_files per PR and path",
            "SELECT count(*) FROM (SELECT 1 FROM pr_files GROUP BY repo_id, number, path HAVING count(*) > 1) d",
        ),
        (
            "index_keys per key and PR",
            "SELECT count(*) FROM (SELECT 1 FROM index_keys GROUP BY repo_id, key, number HAVING count(*) > 1) d",
        ),
        (
            "candidate_edges per PR pair",
            "SELECT count(*) FROM (SELECT 1 FROM candidate_edges GROUP BY repo_id, number, other_number HAVING count(*) > 1) d",
        ),
    ];
    for (what, sql) in dup_checks {
        let d = count(&c, sql).await;
        if d != 0 {
            v.push(format!("{d} duplicated keys in {what}"));
        }
    }
    let prs = count(&c, "SELECT count(*) FROM pull_requests").await;
    if prs != open {
        v.push(format!("{prs} pull_requests rows for {open} open PRs"));
    }
    let sigs = count(&c, "SELECT count(*) FROM pr_signatures").await;
    if sigs != open - want_failed {
        v.push(format!(
            "{sigs} signatures for {} analysed PRs",
            open - want_failed
        ));
    }
    // Derived rows belong to the head that was analysed, never to a stale one.
    let stale = count(
        &c,
        "SELECT (SELECT count(*) FROM pr_signatures s JOIN pull_requests p USING (repo_id, number)
                  WHERE s.head_sha <> p.head_sha)
              + (SELECT count(*) FROM pr_files f JOIN pull_requests p USING (repo_id, number)
                  WHERE f.head_sha <> p.head_sha)
              + (SELECT count(*) FROM candidate_edges e JOIN pull_requests p USING (repo_id, number)
                  WHERE e.head_sha <> p.head_sha)",
    )
    .await;
    if stale != 0 {
        v.push(format!(
            "{stale} derived rows for a head that is not the PR's"
        ));
    }
    k.violations = v;
    k
}

// ---------------------------------------------------------------------------------------------
// Runs.

struct Row {
    label: &'static str,
    wall: Duration,
    calls: usize,
    s502: usize,
    s403: usize,
    s429: usize,
    s404: usize,
    outage: String,
    fault: String,
    k: Checked,
}

fn tally(gh: &FakeGithub) -> (usize, usize, usize, usize, usize) {
    let log = gh.log();
    let by = |s: u16| log.iter().filter(|l| l.status == s).count();
    (log.len(), by(502), by(403), by(429), by(404))
}

fn open_count(repo: &common::fake_github::FakeRepo) -> i64 {
    repo.pulls.iter().filter(|p| p["state"] == "open").count() as i64
}

fn load(dir: &Path) -> common::fake_github::FakeRepo {
    common::fake_github::load_dataset(dir, None)
}

async fn trigger(http: &reqwest::Client, base: &str) {
    let r = http
        .post(format!("{base}/api/ops/public-scan"))
        .bearer_auth("ops-token-for-tests-0123456789abcdef")
        .json(&json!({"owner": "bench", "repo": "playwright", "snapshot": SNAPSHOT}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "trigger refused");
}

async fn github_faults(dir: PathBuf) -> Row {
    let dir = dir.as_path();
    let svc = Services::new().await;
    prepare(&svc).await;
    let gh = FakeGithub::start().await;
    let repo = load(dir);
    let open = open_count(&repo);
    let open_numbers: Vec<i64> = repo
        .pulls
        .iter()
        .filter(|p| p["state"] == "open")
        .filter_map(|p| p["number"].as_i64())
        .collect();
    let deleted = open_numbers[open_numbers.len() / 2];
    gh.add_repo("bench", "playwright", repo);
    // The budget runs out after the repo call, the list pages and ~40% of the files calls.
    let budget = 1 + (open + 99) / 100 + open * 2 / 5;
    gh.with(|g| {
        g.faults.fail_every = 10;
        g.faults.secondary_limit_next = 2;
        g.faults.deleted.insert(deleted);
        g.rate_limit = 5000;
        g.remaining = budget;
        g.faults.reset_soon_when_exhausted = Some(3);
    });
    let mut s = settings(&svc, &gh.url());
    s.scan_batch_size = Some(batch_size().into());
    let app = App::start(s).await;
    let watch = HealthWatch::start(&app.base);
    let t = Instant::now();
    trigger(&app.http, &app.base).await;
    // More secondary limits at 25% and 60% of the analyses: 403s, then 429s.
    let mut secondary = 2;
    for pct in [25, 60] {
        wait_analysed(&svc, open * pct / 100).await;
        gh.with(|g| {
            g.faults.secondary_limit_next += 2;
            g.faults.too_many_next += 2;
        });
        secondary += 4;
    }
    app.wait_scan(JOB_ID, SCAN_LIMIT).await;
    let wall = t.elapsed();
    let outage = watch.finish().await;
    let (calls, s502, s403, s429, s404) = tally(&gh);
    let (exhausted, secondary_left) = gh.with(|g| {
        (
            g.faults.reset_soon_when_exhausted.is_none(),
            g.faults.secondary_limit_next + g.faults.too_many_next,
        )
    });
    let mut k = check(&svc, open, &[deleted]).await;
    // The faults themselves must have happened, or the run proves nothing.
    if s502 == 0 {
        k.violations.push("no 502 was answered".into());
    }
    if secondary_left != 0 {
        k.violations
            .push(format!("{secondary_left} secondary limits never answered"));
    }
    if !exhausted {
        k.violations.push("the primary budget never ran out".into());
    }
    if s429 == 0 {
        k.violations.push("no 429 was answered".into());
    }
    if s404 == 0 {
        k.violations
            .push(format!("deleted #{deleted} never answered 404"));
    }
    if outage.reported > Duration::ZERO {
        k.violations.push(format!(
            "health reported an outage ({:?}) during GitHub faults",
            outage.names
        ));
    }
    app.stop().await;
    Row {
        label: "GitHub faults",
        wall,
        calls,
        s502,
        s403,
        s429,
        s404,
        outage: format!("none ({} samples)", outage.samples),
        fault: format!(
            "budget {budget} then reset +3s; {secondary} secondary limits (403 and 429); #{deleted} deleted"
        ),
        k,
    }
}

/// Heads per batch: the appliance's default at full size; under `cargo test` (the 72-PR slice)
/// small batches, so that the faults land while the scan still has work to do.
fn batch_size() -> &'static str {
    if std::env::args().any(|a| a == "--bench") {
        "100"
    } else {
        "8"
    }
}

fn spawn_app(svc: &Services, gh: &str, port: u16, data: &Path) -> KillOnDrop {
    let child = common::appliance_command(svc, gh, port)
        .env("DATA_ROOT", data)
        .env("WORKER_CONCURRENCY", "4")
        .env("SCAN_BATCH_SIZE", batch_size())
        .env("GIT_MIRROR", "off")
        .env("PUBLIC_SCAN_ALLOWED_REPOS", "bench/playwright")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn clawtriage");
    KillOnDrop(child)
}

async fn kill_mid_scan(dir: PathBuf) -> Row {
    let dir = dir.as_path();
    let svc = Services::new().await;
    prepare(&svc).await;
    let gh = FakeGithub::start().await;
    let repo = load(dir);
    let open = open_count(&repo);
    gh.add_repo("bench", "playwright", repo);
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = spawn_app(&svc, &gh.url(), port, data.path());
    assert!(
        wait_healthy(&base, Duration::from_secs(60)).await,
        "the appliance did not start"
    );
    let watch = HealthWatch::start(&base);
    let t = Instant::now();
    trigger(&http, &base).await;
    let at = wait_analysed(&svc, open * 2 / 5).await;
    let in_flight = count(
        &svc.client().await,
        "SELECT count(*) FROM analysis_runs WHERE status = 'running'",
    )
    .await;
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();
    let killed = Instant::now();
    let port2 = free_port();
    let base2 = format!("http://127.0.0.1:{port2}");
    let _child2 = spawn_app(&svc, &gh.url(), port2, data.path());
    watch.set_base(&base2);
    assert!(
        wait_healthy(&base2, Duration::from_secs(60)).await,
        "the appliance did not start again"
    );
    let back = killed.elapsed();
    common::wait_scan_at(&http, &base2, JOB_ID, SCAN_LIMIT).await;
    let wall = t.elapsed();
    let outage = watch.finish().await;
    let (calls, s502, s403, s429, s404) = tally(&gh);
    let k = check(&svc, open, &[]).await;
    // _child2 is killed on drop; its state is all in Postgres and Redis.
    Row {
        label: "kill -9 mid-scan",
        wall,
        calls,
        s502,
        s403,
        s429,
        s404,
        outage: format!(
            "process gone {:.1}s (health unreachable {:.1}s)",
            back.as_secs_f64(),
            outage.unreachable.as_secs_f64()
        ),
        fault: format!("SIGKILL at {at}/{open} analysed, {in_flight} in flight"),
        k,
    }
}

/// Which server a restart scenario stops and starts again.
#[derive(Clone, Copy)]
enum Server {
    Redis,
    Postgres,
}

async fn redis_restart(dir: PathBuf) -> Row {
    server_restart(dir, Server::Redis).await
}

async fn postgres_restart(dir: PathBuf) -> Row {
    server_restart(dir, Server::Postgres).await
}

/// A full scan during which `which` is stopped at 40 % analysed, reported by health, and
/// started again after 2 s.
async fn server_restart(dir: PathBuf, which: Server) -> Row {
    let dir = dir.as_path();
    let svc = match which {
        Server::Redis => Services::new().await,
        Server::Postgres => Services::with_own_postgres().await,
    };
    prepare(&svc).await;
    // Redis with an append-only file, as in production: a restart keeps the queue.
    let mut redis = matches!(which, Server::Redis).then(RedisServer::start_persistent);
    let gh = FakeGithub::start().await;
    let repo = load(dir);
    let open = open_count(&repo);
    gh.add_repo("bench", "playwright", repo);
    let mut s = settings(&svc, &gh.url());
    s.scan_batch_size = Some(batch_size().into());
    if let Some(r) = &redis {
        s.redis_url = Some(r.url());
    }
    let app = App::start(s).await;
    let watch = HealthWatch::start(&app.base);
    let t = Instant::now();
    trigger(&app.http, &app.base).await;
    let at = wait_analysed(&svc, open * 2 / 5).await;
    let down = Instant::now();
    let name = match which {
        Server::Redis => "redis",
        Server::Postgres => "postgres",
    };
    tokio::task::block_in_place(|| match &mut redis {
        Some(r) => r.stop(),
        None => svc.own_postgres().stop("fast"),
    });
    let seen = wait_reported(&app.base, name, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| match &mut redis {
        Some(r) => r.restart(),
        None => svc.own_postgres().restart(),
    });
    let down_for = down.elapsed();
    app.wait_scan(JOB_ID, SCAN_LIMIT).await;
    let wall = t.elapsed();
    let outage = watch.finish().await;
    let (calls, s502, s403, s429, s404) = tally(&gh);
    let mut k = check(&svc, open, &[]).await;
    outage_checks(&mut k, seen, &outage, name, &app.base).await;
    app.stop().await;
    Row {
        label: match which {
            Server::Redis => "Redis restart mid-scan",
            Server::Postgres => "Postgres restart mid-scan",
        },
        wall,
        calls,
        s502,
        s403,
        s429,
        s404,
        outage: outage_text(seen, &outage),
        fault: format!(
            "stopped at {at}/{open} analysed, down {:.1}s",
            down_for.as_secs_f64()
        ),
        k,
    }
}

async fn outage_checks(
    k: &mut Checked,
    seen: Option<Duration>,
    outage: &Outage,
    service: &str,
    base: &str,
) {
    if seen.is_none() {
        k.violations
            .push(format!("health never answered 503 naming {service}"));
    }
    if outage.names.iter().any(|n| n != service) {
        k.violations.push(format!(
            "health named {:?} during a {service} outage",
            outage.names
        ));
    }
    if !wait_healthy(base, Duration::from_secs(30)).await {
        k.violations
            .push("health did not come back to 200 after the restart".into());
    }
}

fn outage_text(seen: Option<Duration>, o: &Outage) -> String {
    match seen {
        Some(after) => format!(
            "yes: 503 {:?} after {:.2}s, for {:.1}s",
            o.names,
            after.as_secs_f64(),
            o.reported.as_secs_f64()
        ),
        None => "NO 503 seen".into(),
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<26} {:>8} {:>27} {:>9} {:>8} {:>11} {:>6}  {:<46} invariants",
        "scenario",
        "wall",
        "API calls (502/403/429/404)",
        "app calls",
        "analyses",
        "starts",
        "failed",
        "outage seen by /api/health",
    );
    for r in rows {
        let k = &r.k;
        println!(
            "{:<26} {:>7.1}s {:>9} ({:>3}/{:>3}/{:>3}/{:>3}) {:>9} {:>8} {:>4} (+{:>4}) {:>6}  {:<46} {}",
            r.label,
            r.wall.as_secs_f64(),
            r.calls,
            r.s502,
            r.s403,
            r.s429,
            r.s404,
            k.app_calls,
            k.completions,
            k.heads_begun,
            k.begins - k.heads_begun,
            k.failed,
            r.outage,
            if k.violations.is_empty() {
                "ok".to_string()
            } else {
                format!("{} VIOLATED", k.violations.len())
            }
        );
    }
    println!();
    for r in rows {
        let k = &r.k;
        println!(
            "{}: {}; scan {} | listed {} = analysed {} + unchanged {} + failed {} + pending {}",
            r.label, r.fault, k.state, k.listed, k.analysed, k.unchanged, k.failed, k.pending
        );
        for m in &k.violations {
            println!("  VIOLATION: {m}");
        }
    }
}

fn main() {
    let Some(dir) = common::bench_set("faults") else {
        return;
    };
    // Under `cargo test` the four scenarios run at once, to stay quick.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    // The appliance logs every retried request and every 503 of an outage: quiet unless
    // RUST_LOG asks, and on stderr, to keep the table readable.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let rows = rt.block_on(async move {
        println!("set: {}", dir.display());
        let total = Instant::now();
        let rows = if bench_mode {
            // One after the other, so that each run's figures are its own.
            let mut rows = Vec::new();
            rows.push(github_faults(dir.clone()).await);
            println!("  (GitHub faults run done)");
            rows.push(kill_mid_scan(dir.clone()).await);
            println!("  (kill -9 run done)");
            rows.push(redis_restart(dir.clone()).await);
            println!("  (Redis restart run done)");
            rows.push(postgres_restart(dir.clone()).await);
            println!("  (Postgres restart run done)");
            rows
        } else {
            // Smoke test: the four runs at once (each has its own servers and fake GitHub), to
            // stay well under a minute; the times are then not comparable.
            let (a, b, c, d) = tokio::join!(
                tokio::spawn(github_faults(dir.clone())),
                tokio::spawn(kill_mid_scan(dir.clone())),
                tokio::spawn(redis_restart(dir.clone())),
                tokio::spawn(postgres_restart(dir.clone())),
            );
            vec![a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()]
        };
        println!(
            "all four runs ({}): {:.1}s; columns: API calls = requests the fake GitHub answered (of which 502/403/429/404); app calls = what the scan recorded; analyses = completed analyses (audit trigger); starts = heads started (+ re-starts: retries, resumed runs); failed = PRs settled failed",
            if bench_mode { "one after the other" } else { "at once" },
            total.elapsed().as_secs_f64()
        );
        rows
    });
    print_table(&rows);
    let violated: usize = rows.iter().map(|r| r.k.violations.len()).sum();
    assert!(
        violated == 0,
        "{violated} invariant(s) violated; see the table above"
    );
}
