//! Webhook-to-check-run latency bench (a bench binary that prints figures; not a timed test).
//!
//! Runs the appliance in hybrid mode (in process, real Postgres and Redis) against the fake
//! GitHub. The repository is first indexed through the ops trigger (the set less one PR in ten),
//! then signed `pull_request` deliveries arrive: `opened` for the PRs held out of the index and
//! `synchronize` with a new head (one more file) for indexed PRs. A steady run sends them at a
//! fixed rate, open loop; a burst sends a batch at once. A delivery's latency runs from the
//! moment its POST is sent to the moment the fake GitHub receives the first write that
//! completes a check run for that head. Prints p50 / p90 / p99 / max per run, where the time
//! went (queue wait, analysis, wait for the check-run post), GitHub writes by kind, and whether
//! the targets are met. A third run sends a steady stream again while another repository's
//! full scan runs (`bench/big`, served from BIG_SET, default `../shared/datasets/playwright-5k`,
//! through the REST files endpoint): a webhook must not wait behind a scan's batches.
//!
//! `cargo bench --bench checkrun -- [SET_DIR]` (default `../shared/datasets/playwright-1k`);
//! under `cargo test` it runs once over the committed slice as a smoke test (the slice is then
//! the big repository too).
//! Uses DATABASE_URL / REDIS_URL when set, else starts throwaway servers.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::fake_github::{FakeRepo, Write};
use common::{App, FakeGithub, Services, settings};
use serde_json::{Value, json};

const SECRET: &str = "checkrun-bench-webhook-secret";
const OWNER: &str = "bench";
const REPO: &str = "playwright";
const INSTALLATION: i64 = 77;
/// Steady delivery rate (deliveries a second).
const RATE: f64 = 8.0;

/// One `pull_request` delivery to send.
struct Delivery {
    id: String,
    action: &'static str,
    number: i64,
    head: String,
    body: Vec<u8>,
    /// PR item and files the fake GitHub must serve before the delivery is sent.
    pull: Value,
    files: Vec<Value>,
}

/// What happened to one delivery.
struct Sent {
    number: i64,
    head: String,
    action: &'static str,
    status: u16,
    answer: Value,
    sent: Instant,
    sent_wall: DateTime<Utc>,
    answered: Duration,
}

/// GitHub's example delivery, made about `pull` of `bench/playwright`.
fn payload(template: &Value, action: &str, pull: &Value, before: Option<&str>) -> Value {
    let mut v = template.clone();
    v["action"] = json!(action);
    v["number"] = pull["number"].clone();
    v["pull_request"] = pull.clone();
    let repo = &mut v["repository"];
    repo["name"] = json!(REPO);
    repo["full_name"] = json!(format!("{OWNER}/{REPO}"));
    repo["owner"]["login"] = json!(OWNER);
    repo["default_branch"] = json!("main");
    v["installation"]["id"] = json!(INSTALLATION);
    if let Some(b) = before {
        v["before"] = json!(b);
        v["after"] = pull["head"]["sha"].clone();
    }
    v
}

fn delivery(
    template: &Value,
    id: String,
    action: &'static str,
    pull: Value,
    files: Vec<Value>,
    before: Option<&str>,
) -> Delivery {
    let body = serde_json::to_vec(&payload(template, action, &pull, before)).unwrap();
    Delivery {
        id,
        action,
        number: pull["number"].as_i64().unwrap(),
        head: pull["head"]["sha"].as_str().unwrap().to_string(),
        body,
        pull,
        files,
    }
}

/// The deliveries of one run: `opened` for `held` (PRs absent from the index) and `synchronize`
/// for `pushed` (indexed PRs, each given a new head with one more file), interleaved.
fn plan(
    template: &Value,
    label: &str,
    held: &[(Value, Vec<Value>)],
    pushed: &[(Value, Vec<Value>)],
) -> Vec<Delivery> {
    let mut opened: Vec<Delivery> = held
        .iter()
        .enumerate()
        .map(|(i, (pull, files))| {
            let mut pull = pull.clone();
            pull["state"] = json!("open");
            delivery(
                template,
                format!("{label}-open-{i}"),
                "opened",
                pull,
                files.clone(),
                None,
            )
        })
        .collect();
    let mut synced: Vec<Delivery> = pushed
        .iter()
        .enumerate()
        .map(|(i, (pull, files))| {
            let mut pull = pull.clone();
            let number = pull["number"].as_i64().unwrap();
            let before = pull["head"]["sha"].as_str().unwrap().to_string();
            let head = format!("5eed{:08x}{:028x}", number as u32, i);
            pull["head"]["sha"] = json!(head);
            let updated: DateTime<Utc> = pull["updated_at"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(Utc::now);
            pull["updated_at"] = json!(
                (updated + chrono::Duration::days(1))
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
            let mut files = files.clone();
            let note = format!("+Follow-up {i} for #{number}: handle the review comments.");
            files.push(json!({
                "sha": head,
                "filename": format!("docs/notes/pr-{number}.md"),
                "status": "added",
                "additions": 1, "deletions": 0, "changes": 1,
                "patch": format!("@@ -0,0 +1 @@\n{note}"),
            }));
            delivery(
                template,
                format!("{label}-sync-{i}"),
                "synchronize",
                pull,
                files,
                Some(&before),
            )
        })
        .collect();
    // Interleave proportionally: a mix all along the run.
    let total = opened.len() + synced.len();
    let mut out = Vec::with_capacity(total);
    let (mut o, mut s) = (opened.drain(..), synced.drain(..));
    let (no, ns) = (held.len(), pushed.len());
    let (mut taken_o, mut taken_s) = (0usize, 0usize);
    while taken_o + taken_s < total {
        // Take an `opened` while its share so far is behind.
        if taken_o < no && (taken_s >= ns || taken_o * total <= (taken_o + taken_s) * no) {
            out.push(o.next().unwrap());
            taken_o += 1;
        } else {
            out.push(s.next().unwrap());
            taken_s += 1;
        }
    }
    out
}

/// Makes the fake GitHub serve `d`'s head (the PR listed, its files served), then sends it.
async fn send(app_url: String, http: reqwest::Client, gh: FakeGithub, d: Delivery) -> Sent {
    gh.with(|g| {
        let repo = g.repos.get_mut(&format!("{OWNER}/{REPO}")).unwrap();
        repo.files.insert(d.number, d.files.clone());
        match repo.pulls.iter_mut().find(|p| p["number"] == d.number) {
            Some(p) => *p = d.pull.clone(),
            None => repo.pulls.push(d.pull.clone()),
        }
    });
    let sig = common::sign_webhook(SECRET, &d.body);
    let sent_wall = Utc::now();
    let sent = Instant::now();
    let r = http
        .post(format!("{app_url}/webhooks/github"))
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/bench")
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", &d.id)
        .header("x-hub-signature-256", sig)
        .body(d.body)
        .send()
        .await;
    let answered = sent.elapsed();
    let (status, answer) = match r {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.json().await.unwrap_or(Value::Null))
        }
        Err(e) => (0, json!({"error": e.to_string()})),
    };
    Sent {
        number: d.number,
        head: d.head,
        action: d.action,
        status,
        answer,
        sent,
        sent_wall,
        answered,
    }
}

fn is_check_run(w: &Write) -> bool {
    w.path.contains("/check-runs")
}

fn completes(w: &Write) -> bool {
    (200..300).contains(&w.status)
        && (w.body["status"] == "completed" || !w.body["conclusion"].is_null())
}

/// For each head, the first write that completed a check run for it. A POST names its head; a
/// PATCH names the check run, whose head the fake's record of that run holds.
fn completions(writes: &[Write], runs: &BTreeMap<i64, Value>) -> HashMap<String, Instant> {
    let mut by_head = HashMap::new();
    for w in writes.iter().filter(|w| is_check_run(w) && completes(w)) {
        let head = if w.method == "POST" {
            w.body["head_sha"].as_str()
        } else {
            w.path
                .rsplit('/')
                .next()
                .and_then(|s| s.parse::<i64>().ok())
                .and_then(|id| runs.get(&id))
                .and_then(|r| r["head_sha"].as_str())
        };
        if let Some(h) = head {
            by_head.entry(h.to_string()).or_insert(w.at);
        }
    }
    by_head
}

struct Report {
    label: String,
    deliveries: usize,
    non_2xx: usize,
    completed: usize,
    wall: Duration,
    latency_ms: Vec<f64>,
    answer_ms: Vec<f64>,
    queue_ms: Vec<f64>,
    analysis_ms: Vec<f64>,
    post_wait_ms: Vec<f64>,
    check_posts: usize,
    check_patches: usize,
    token_writes: usize,
    reads: usize,
}

async fn run(
    label: &str,
    app: &App,
    gh: &FakeGithub,
    db: &tokio_postgres::Client,
    deliveries: Vec<Delivery>,
    rate: Option<f64>,
    within: Duration,
) -> Report {
    let writes_before = gh.writes().len();
    let reads_before = gh.log().len();
    let n = deliveries.len();
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for (i, d) in deliveries.into_iter().enumerate() {
        if let Some(r) = rate {
            tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / r)).await;
        }
        tasks.push(tokio::spawn(send(
            app.base.clone(),
            app.http.clone(),
            gh.clone(),
            d,
        )));
    }
    let mut sent = Vec::with_capacity(n);
    for t in tasks {
        sent.push(t.await.unwrap());
    }
    let heads: HashSet<String> = sent.iter().map(|s| s.head.clone()).collect();
    assert_eq!(
        heads.len(),
        n,
        "{label}: every delivery is about a head of its own"
    );
    // Wait until every delivered head has a completed check run, or give up.
    let deadline = Instant::now() + within;
    let done = loop {
        let writes = gh.writes();
        let done = completions(&writes[writes_before..], &gh.check_runs());
        if heads.iter().all(|h| done.contains_key(h)) || Instant::now() > deadline {
            break done;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let wall = start.elapsed();
    // Where the time went, from the analyses' own timestamps (same clock: this machine's).
    let mut queue_ms = Vec::new();
    let mut analysis_ms = Vec::new();
    let mut post_wait_ms = Vec::new();
    let mut latency_ms = Vec::new();
    let now_wall = Utc::now();
    let now = Instant::now();
    for s in &sent {
        let Some(at) = done.get(&s.head) else {
            continue;
        };
        latency_ms.push(at.duration_since(s.sent).as_secs_f64() * 1000.0);
        let row = db
            .query_opt(
                "SELECT a.started_at, a.finished_at FROM analysis_runs a
                 JOIN repositories r ON r.repo_id = a.repo_id AND r.name = $3
                 WHERE a.number = $1 AND a.head_sha = $2 AND a.status = 'done'",
                &[&s.number, &s.head, &REPO],
            )
            .await
            .unwrap();
        if let Some(r) = row {
            let started: DateTime<Utc> = r.get(0);
            let finished: DateTime<Utc> = r.get(1);
            let ms = |d: chrono::TimeDelta| d.num_microseconds().unwrap_or(0) as f64 / 1000.0;
            queue_ms.push(ms(started - s.sent_wall));
            analysis_ms.push(ms(finished - started));
            // The completion instant, on the wall clock.
            let completed_wall = now_wall - chrono::TimeDelta::from_std(now - *at).unwrap();
            // The first check-run post of a head in a debounce window runs at once
            // (`Queues::push_check_run`): this is the check queue and the GitHub calls.
            post_wait_ms.push(ms(completed_wall - finished));
        }
    }
    for v in [
        &mut latency_ms,
        &mut queue_ms,
        &mut analysis_ms,
        &mut post_wait_ms,
    ] {
        v.sort_by(f64::total_cmp);
    }
    let mut answer_ms: Vec<f64> = sent
        .iter()
        .map(|s| s.answered.as_secs_f64() * 1000.0)
        .collect();
    answer_ms.sort_by(f64::total_cmp);
    let writes = gh.writes();
    let new = &writes[writes_before..];
    let bad: Vec<String> = sent
        .iter()
        .filter(|s| !(200..300).contains(&s.status))
        .map(|s| format!("#{} {} -> {} {}", s.number, s.action, s.status, s.answer))
        .collect();
    let missing: Vec<String> = sent
        .iter()
        .filter(|s| !done.contains_key(&s.head))
        .map(|s| format!("#{} {} ({})", s.number, s.action, s.answer))
        .collect();
    if !missing.is_empty() {
        println!(
            "{label}: no completed check run within {within:?} for {} deliveries, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
    }
    Report {
        label: label.to_string(),
        deliveries: n,
        non_2xx: bad.len(),
        completed: sent.iter().filter(|s| done.contains_key(&s.head)).count(),
        wall,
        latency_ms,
        answer_ms,
        queue_ms,
        analysis_ms,
        post_wait_ms,
        check_posts: new
            .iter()
            .filter(|w| is_check_run(w) && w.method == "POST")
            .count(),
        check_patches: new
            .iter()
            .filter(|w| is_check_run(w) && w.method == "PATCH")
            .count(),
        token_writes: new
            .iter()
            .filter(|w| w.path.contains("/access_tokens"))
            .count(),
        reads: gh.log().len() - reads_before,
    }
}

fn line(name: &str, v: &[f64]) -> String {
    format!(
        "  {name:<34} p50 {:>7.0}  p90 {:>7.0}  p99 {:>7.0}  max {:>7.0}  (ms, n={})",
        common::percentile(v, 0.5),
        common::percentile(v, 0.9),
        common::percentile(v, 0.99),
        v.last().copied().unwrap_or(f64::NAN),
        v.len()
    )
}

fn print(r: &Report, p50_target_ms: f64, p99_target_ms: f64) {
    println!(
        "{}: {} deliveries, {} non-2xx, {} completed check runs for them, {:.1}s from first send to last completion",
        r.label,
        r.deliveries,
        r.non_2xx,
        r.completed,
        r.wall.as_secs_f64()
    );
    println!("{}", line("webhook -> check run completed", &r.latency_ms));
    println!("{}", line("webhook answered (HTTP)", &r.answer_ms));
    println!("{}", line("  webhook -> analysis started", &r.queue_ms));
    println!("{}", line("  analysis started -> done", &r.analysis_ms));
    println!(
        "{}",
        line("  analysis done -> check run posted", &r.post_wait_ms)
    );
    println!(
        "  GitHub: check-run POST {} PATCH {} (linked PRs' check runs included), installation tokens {}, reads {}",
        r.check_posts, r.check_patches, r.token_writes, r.reads
    );
    let p50 = common::percentile(&r.latency_ms, 0.5);
    let p99 = common::percentile(&r.latency_ms, 0.99);
    println!(
        "  target p50 < {:.1} s: {} ({:.2} s); target p99 < {:.1} s: {} ({:.2} s)",
        p50_target_ms / 1000.0,
        if p50 < p50_target_ms { "met" } else { "MISSED" },
        p50 / 1000.0,
        p99_target_ms / 1000.0,
        if p99 < p99_target_ms { "met" } else { "MISSED" },
        p99 / 1000.0
    );
}

/// A scan's settled and listed PRs, and its state.
async fn scan_progress(db: &tokio_postgres::Client, job: &str) -> (i64, i64, String) {
    let r = db
        .query_one(
            "SELECT count(*) FILTER (WHERE outcome <> 'pending'), count(*),
                    (SELECT state FROM scan_jobs WHERE job_id = $1)
             FROM scan_prs WHERE job_id = $1",
            &[&job],
        )
        .await
        .unwrap();
    (
        r.get::<_, i64>(0),
        r.get::<_, i64>(1),
        r.get::<_, Option<String>>(2).unwrap_or_default(),
    )
}

fn main() {
    let Some(dir) = common::bench_set("checkrun") else {
        return;
    };
    // Warnings only, unless RUST_LOG says otherwise (the app logs every delivery at info).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let svc = Services::new().await;
        let gh = FakeGithub::start().await;
        let full = common::fake_github::load_dataset(&dir, None);
        // One PR in ten stays out of the index: those arrive as `opened`.
        let mut indexed = FakeRepo {
            default_branch: "main".into(),
            ..Default::default()
        };
        let mut held = Vec::new();
        let mut kept = Vec::new();
        for (i, pr) in full.pulls.iter().enumerate() {
            let n = pr["number"].as_i64().unwrap();
            let files = full.files.get(&n).cloned().unwrap_or_default();
            if i % 10 == 9 {
                held.push((pr.clone(), files));
            } else {
                indexed.pulls.push(pr.clone());
                indexed.files.insert(n, files.clone());
                kept.push((pr.clone(), files));
            }
        }
        gh.add_repo(OWNER, REPO, indexed);
        let mut s = settings(&svc, &gh.url());
        s.github_mode = "hybrid".into();
        s.github_app_id = Some("4242".into());
        s.github_private_key_pem = Some(common::fixture_text("app/test-app-key.pem"));
        s.github_webhook_secret = Some(SECRET.into());
        s.public_url = Some("https://triage.example".into());
        s.worker_concurrency = "4".into();
        s.public_scan_allowed_repos = format!("{OWNER}/{REPO},{OWNER}/big");
        let app = App::start(s).await;
        println!("set: {} ({} PRs)", dir.display(), full.pulls.len());

        let t = Instant::now();
        let (code, b) = app
            .trigger(json!({"owner": OWNER, "repo": REPO, "snapshot": "index"}))
            .await;
        assert_eq!(code, 202, "{b}");
        let st = app
            .wait_scan(
                &format!("scan:{OWNER}/{REPO}:index"),
                Duration::from_secs(1800),
            )
            .await;
        assert_eq!(st["state"], "done", "{st}");
        let db = svc.client().await;
        let in_index: i64 = db
            .query_one(
                "SELECT count(*) FROM analysis_runs WHERE status = 'done'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        println!(
            "index: {} PRs analysed by the scan in {:.1}s ({} held out to arrive as `opened`)",
            in_index,
            t.elapsed().as_secs_f64(),
            held.len()
        );
        assert!(
            gh.writes().iter().all(|w| !is_check_run(w)),
            "no check run before the installation's first delivery"
        );

        // Steady: a third of the held-out PRs opened, two synchronizes per opened; burst: a
        // third opened, two synchronizes per opened (about 100 deliveries at once for the 1k
        // set); during a scan: the last third, one synchronize per opened. Every synchronized
        // PR is a different one.
        let template: Value =
            serde_json::from_str(&common::fixture_text("webhooks/pull_request.opened.2.json"))
                .unwrap();
        let third = held.len() / 3;
        let (held_steady, rest) = held.split_at(third);
        let (held_burst, held_scan) = rest.split_at(third);
        let step = (kept.len() / (held.len() * 2).max(1)).max(1);
        let mut pick = kept.iter().step_by(step).cloned();
        let sync_steady: Vec<_> = pick.by_ref().take(held_steady.len() * 2).collect();
        let sync_burst: Vec<_> = pick.by_ref().take(held_burst.len() * 2).collect();
        let sync_scan: Vec<_> = pick.by_ref().take(held_scan.len()).collect();
        assert_eq!(
            sync_scan.len(),
            held_scan.len(),
            "enough indexed PRs to synchronize"
        );
        let steady = plan(&template, "steady", held_steady, &sync_steady);
        let burst = plan(&template, "burst", held_burst, &sync_burst);
        let during = plan(&template, "during-scan", held_scan, &sync_scan);
        let within = Duration::from_secs(120);

        println!("steady: {} deliveries at {RATE}/s", steady.len());
        let a = run("steady", &app, &gh, &db, steady, Some(RATE), within).await;
        print(&a, 1000.0, 5000.0);
        // Let the linked PRs' trailing updates land before the burst.
        tokio::time::sleep(clawtriage::jobs::check_run::DEBOUNCE + Duration::from_secs(1)).await;
        println!("burst: {} deliveries at once", burst.len());
        let b = run("burst", &app, &gh, &db, burst, None, within).await;
        print(&b, 1000.0, 5000.0);
        tokio::time::sleep(clawtriage::jobs::check_run::DEBOUNCE + Duration::from_secs(1)).await;

        // A full scan of another, bigger repository, and webhooks while it runs.
        let big_dir = if std::env::args().any(|a| a == "--bench") {
            std::env::var("BIG_SET")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|_| "../shared/datasets/playwright-5k".into())
        } else {
            dir.clone()
        };
        let big = common::fake_github::load_dataset(&big_dir, None);
        let big_prs = big.pulls.len();
        gh.with(|g| {
            // One files call per PR: give the fake an Enterprise Cloud budget.
            g.rate_limit = 15_000;
            g.remaining = 15_000;
        });
        gh.add_repo(OWNER, "big", big);
        let t = Instant::now();
        let (code, body) = app
            .trigger(json!({"owner": OWNER, "repo": "big", "snapshot": "load"}))
            .await;
        assert_eq!(code, 202, "{body}");
        // Let the scan list and its batches start.
        let big_job = format!("scan:{OWNER}/big:load");
        let progress = |db| scan_progress(db, &big_job);
        while progress(&db).await.0 == 0 && t.elapsed() < Duration::from_secs(300) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let before = progress(&db).await;
        println!(
            "during-scan: {} deliveries at {RATE}/s while {OWNER}/big ({big_prs} PRs, REST files) is scanned: {}/{} settled when they start",
            during.len(),
            before.0,
            before.1
        );
        let c = run("during-scan", &app, &gh, &db, during, Some(RATE), within).await;
        let after = progress(&db).await;
        println!(
            "  the scan was {} when the last check run completed: {}/{} settled",
            after.2, after.0, after.1
        );
        print(&c, 500.0, 2000.0);
        let st = app.wait_scan(&big_job, Duration::from_secs(1800)).await;
        println!(
            "  {OWNER}/big scan {} after {:.1}s",
            st["state"],
            t.elapsed().as_secs_f64()
        );
        app.stop().await;

        for r in [&a, &b, &c] {
            assert_eq!(r.non_2xx, 0, "{}: every delivery is answered 2xx", r.label);
            assert_eq!(
                r.completed, r.deliveries,
                "{}: one completed check run per delivery",
                r.label
            );
        }
    });
}
