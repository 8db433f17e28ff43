//! End-to-end scan benchmark (a bench binary that prints figures; not a timed test).
//!
//! Serves a shared PR set from the fake GitHub, scans it through the real appliance (the release
//! `clawtriage serve` binary as a child process, real Postgres and Redis), once through the REST
//! files endpoint and once through a local git mirror, then re-scans the unchanged repository.
//! Prints wall time, API calls by kind, per-PR latency percentiles and peak memory (PSS) of the
//! appliance (with its git subprocesses), of its Postgres and Redis, and of the three together.
//! The fake GitHub stays in this process and is not counted. SCAN_BATCH_SIZE,
//! BATCH_CONCURRENCY and WORKER_CONCURRENCY are passed on to the appliance when set.
//!
//! `cargo bench --bench scan -- [SET_DIR]` (default `../shared/datasets/playwright-1k`); under
//! `cargo test` it runs once over the committed slice as a smoke test.
//! Uses DATABASE_URL / REDIS_URL when set, else starts throwaway servers.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::fake_github::FakeRepo;
use common::{FakeGithub, KillOnDrop, Services};
use serde_json::json;

fn status_kb(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Proportional set size (KiB) of `roots` and all their descendants: shared memory (Postgres's
/// buffers) is divided among the processes that map it, so the sum is not inflated by sharing.
fn tree_pss_kb(roots: &[u32]) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut parent = std::collections::HashMap::new();
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let ppid = status_kb(&pid.to_string(), "PPid:") as u32;
        parent.insert(pid, ppid);
    }
    let in_tree = |mut pid: u32| {
        for _ in 0..64 {
            if roots.contains(&pid) {
                return true;
            }
            match parent.get(&pid) {
                Some(&p) if p > 1 => pid = p,
                _ => return false,
            }
        }
        false
    };
    parent
        .keys()
        .filter(|&&pid| in_tree(pid))
        .map(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("Pss:"))
                        .and_then(|l| l.split_whitespace().nth(1))
                        .and_then(|v| v.parse::<u64>().ok())
                })
                .unwrap_or(0)
        })
        .sum()
}

/// Builds a bare git repository with one `refs/pull/N/head` per PR whose diff against `main`
/// adds the PR's added lines to the PR's paths (a synthetic history shaped like the set), and
/// points each PR's head sha at its commit.
fn build_git_remote(root: &Path, repo: &mut FakeRepo) -> PathBuf {
    let bare = root.join("bench/playwright.git");
    std::fs::create_dir_all(&bare).unwrap();
    let ok = Command::new("git")
        .args(["init", "-q", "--bare"])
        .arg(&bare)
        .status()
        .unwrap();
    assert!(ok.success());
    let mut stream = Vec::new();
    let ident = "bench <bench@example.com> 1700000000 +0000";
    writeln!(stream, "commit refs/heads/main\nmark :1\ncommitter {ident}\ndata 4\nbase\nM 644 inline README.md\ndata 5\nbase\n").unwrap();
    let mut mark = 2;
    let mut marks = Vec::new();
    for pr in &repo.pulls {
        let n = pr["number"].as_i64().unwrap();
        writeln!(
            stream,
            "commit refs/pull/{n}/head\nmark :{mark}\ncommitter {ident}\ndata 3\npr\nfrom :1"
        )
        .unwrap();
        for f in repo.files.get(&n).into_iter().flatten() {
            let (Some(path), Some(patch)) = (f["filename"].as_str(), f["patch"].as_str()) else {
                continue;
            };
            if path.contains('"') || path.contains('\n') || path == "README.md" {
                continue;
            }
            let content: String = patch
                .lines()
                .filter(|l| l.starts_with('+'))
                .map(|l| format!("{}\n", &l[1..]))
                .collect();
            writeln!(
                stream,
                "M 644 inline {path}\ndata {}\n{content}",
                content.len()
            )
            .unwrap();
        }
        writeln!(stream).unwrap();
        marks.push((n, mark));
        mark += 1;
    }
    let mut child = Command::new("git")
        .arg("-C")
        .arg(&bare)
        .args(["fast-import", "--quiet", "--export-marks=marks"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&stream).unwrap();
    assert!(child.wait().unwrap().success());
    let marks_text = std::fs::read_to_string(bare.join("marks")).unwrap();
    let by_mark: std::collections::HashMap<String, String> = marks_text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(m, sha)| (m.trim_start_matches(':').to_string(), sha.to_string()))
        .collect();
    for (n, m) in marks {
        let sha = by_mark[&m.to_string()].clone();
        let pr = repo.pulls.iter_mut().find(|p| p["number"] == n).unwrap();
        pr["head"]["sha"] = json!(sha);
        pr["base"]["ref"] = json!("main");
    }
    root.to_path_buf()
}

struct Run {
    label: &'static str,
    wall: Duration,
    listed: i64,
    analysed: i64,
    unchanged: i64,
    failed: i64,
    calls_repo: usize,
    calls_list: usize,
    calls_files: usize,
    not_modified: usize,
    latency_ms: Vec<f64>,
}

async fn scan(
    base: &str,
    gh: &FakeGithub,
    svc: &Services,
    label: &'static str,
    snapshot: &str,
) -> Run {
    gh.clear_log();
    let http = reqwest::Client::new();
    let t = Instant::now();
    let r = http
        .post(format!("{base}/api/ops/public-scan"))
        .bearer_auth("ops-token-for-tests-0123456789abcdef")
        .json(&json!({"owner": "bench", "repo": "playwright", "snapshot": snapshot}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        202,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let st = common::wait_scan_at(
        &http,
        base,
        &format!("scan:bench/playwright:{snapshot}"),
        Duration::from_secs(1800),
    )
    .await;
    let wall = t.elapsed();
    let log = gh.log();
    let c = svc.client().await;
    // Per-PR latency: from the scan's start to each analysis' end.
    let rows = c
        .query(
            "SELECT (extract(epoch FROM (a.finished_at - j.started_at)) * 1000)::float8
             FROM analysis_runs a JOIN scan_prs p ON p.number = a.number AND p.head_sha = a.head_sha
             JOIN scan_jobs j ON j.job_id = p.job_id
             WHERE j.job_id = $1 AND p.outcome = 'analyzed' AND a.finished_at IS NOT NULL",
            &[&format!("scan:bench/playwright:{snapshot}")],
        )
        .await
        .unwrap();
    let mut latency: Vec<f64> = rows.iter().map(|r| r.get::<_, f64>(0)).collect();
    latency.sort_by(f64::total_cmp);
    Run {
        label,
        wall,
        listed: st["prsListed"].as_i64().unwrap_or(0),
        analysed: st["prsAnalyzed"].as_i64().unwrap_or(0),
        unchanged: st["prsUnchanged"].as_i64().unwrap_or(0),
        failed: st["prsFailed"].as_i64().unwrap_or(0),
        calls_repo: log.iter().filter(|l| !l.path.contains("/pulls")).count(),
        calls_list: log.iter().filter(|l| l.path.contains("/pulls?")).count(),
        calls_files: log.iter().filter(|l| l.path.contains("/files")).count(),
        not_modified: log.iter().filter(|l| l.status == 304).count(),
        latency_ms: latency,
    }
}

fn print(r: &Run) {
    let l = &r.latency_ms;
    println!(
        "{:<26} {:>7.2}s  listed {:>5}  analysed {:>5}  unchanged {:>5}  failed {:>3}  calls: repo {:>2} list {:>3} files {:>5} (304s {:>3})  per-PR ms p50 {:>7.0} p90 {:>7.0} p99 {:>7.0}",
        r.label,
        r.wall.as_secs_f64(),
        r.listed,
        r.analysed,
        r.unchanged,
        r.failed,
        r.calls_repo,
        r.calls_list,
        r.calls_files,
        r.not_modified,
        common::percentile(l, 0.5),
        common::percentile(l, 0.9),
        common::percentile(l, 0.99),
    );
}

fn main() {
    let Some(dir) = common::bench_set("scan") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // Peak memory (PSS) of the appliance's process tree, of the run's own Postgres and Redis
        // servers, and of the two together at one instant.
        let peak_app = Arc::new(AtomicU64::new(0));
        let peak_servers = Arc::new(AtomicU64::new(0));
        let peak_total = Arc::new(AtomicU64::new(0));
        let servers: Arc<std::sync::Mutex<Vec<u32>>> = Arc::default();
        let app_pid: Arc<std::sync::Mutex<Vec<u32>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (pa, ps, pt, sv, ap, s) = (
            peak_app.clone(),
            peak_servers.clone(),
            peak_total.clone(),
            servers.clone(),
            app_pid.clone(),
            stop.clone(),
        );
        let sampler = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let srv = tree_pss_kb(&sv.lock().unwrap().clone());
                let app = tree_pss_kb(&ap.lock().unwrap().clone());
                ps.fetch_max(srv, Ordering::Relaxed);
                pa.fetch_max(app, Ordering::Relaxed);
                pt.fetch_max(srv + app, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(250));
            }
        });
        println!("set: {}", dir.display());
        // SCAN_BENCH_MODES=rest or =mirror runs one of the two (e.g. while profiling).
        let modes = std::env::var("SCAN_BENCH_MODES").unwrap_or_else(|_| "rest,mirror".into());
        for (mirror, label) in [(false, "REST files endpoint"), (true, "git mirror")] {
            if !modes.contains(if mirror { "mirror" } else { "rest" }) {
                continue;
            }
            let svc = Services::new().await;
            svc.migrate().await;
            *servers.lock().unwrap() = svc.own_server_pids();
            let gh = FakeGithub::start().await;
            let mut repo = common::fake_github::load_dataset(&dir, None);
            let tmp = tempfile::tempdir().unwrap();
            let port = common::services::free_port();
            let mut cmd = common::appliance_command(&svc, &gh.url(), port);
            cmd.env("DATA_ROOT", tmp.path().join("data"))
                .env("PUBLIC_SCAN_ALLOWED_REPOS", "bench/playwright")
                // SCAN_BENCH_LOG=info shows each batch's stage timings.
                .env("RUST_LOG", std::env::var("SCAN_BENCH_LOG").unwrap_or_else(|_| "warn".into()))
                .stdout(if std::env::var_os("SCAN_BENCH_LOG").is_some() {
                    Stdio::inherit()
                } else {
                    Stdio::null()
                })
                .stderr(Stdio::inherit());
            for name in ["SCAN_BATCH_SIZE", "BATCH_CONCURRENCY", "WORKER_CONCURRENCY"] {
                if let Ok(v) = std::env::var(name) {
                    cmd.env(name, v);
                }
            }
            if mirror {
                let t = Instant::now();
                let remote = build_git_remote(&tmp.path().join("remote"), &mut repo);
                println!("(synthetic git history for {} PRs built in {:.1}s)", repo.pulls.len(), t.elapsed().as_secs_f64());
                cmd.env("GIT_MIRROR", "on")
                    .env("GITHUB_GIT_URL", format!("file://{}", remote.display()));
            } else {
                cmd.env("GIT_MIRROR", "off");
            }
            if !mirror && repo.pulls.len() + 100 > 5000 {
                // One files call per PR: more than a token's 5,000 requests per hour. Give the
                // fake the 15,000 of a GitHub Enterprise Cloud App installation (with 5,000 the
                // scan would wait for the hourly reset, as it would on GitHub; the mirror needs
                // one call per 100 PRs instead).
                gh.with(|g| {
                    g.rate_limit = 15_000;
                    g.remaining = 15_000;
                });
                println!("(REST: rate-limit budget raised to 15,000/h for {} PRs)", repo.pulls.len());
            }
            gh.add_repo("bench", "playwright", repo);
            let child = KillOnDrop(cmd.spawn().expect("spawn clawtriage"));
            *app_pid.lock().unwrap() = vec![child.0.id()];
            common::services::wait_for_port(port, Duration::from_secs(60));
            let base = format!("http://127.0.0.1:{port}");
            let first = scan(&base, &gh, &svc, if mirror { "full scan, git mirror" } else { "full scan, REST files" }, "first").await;
            print(&first);
            let again = scan(&base, &gh, &svc, "re-scan, unchanged", "second").await;
            print(&again);
            let n = first.listed as f64;
            println!(
                "  {label}: API calls for the full scan {} (target for the mirror: <= ceil(N/100)+2 = {})",
                first.calls_repo + first.calls_list + first.calls_files,
                (n / 100.0).ceil() as usize + 2
            );
            app_pid.lock().unwrap().clear();
            drop(child);
        }
        stop.store(true, Ordering::Relaxed);
        sampler.join().unwrap();
        println!(
            "peak memory (PSS, sampled every 250 ms): appliance with its git subprocesses {:.0} MiB; its Postgres and Redis {:.0} MiB; together {:.0} MiB{}",
            peak_app.load(Ordering::Relaxed) as f64 / 1024.0,
            peak_servers.load(Ordering::Relaxed) as f64 / 1024.0,
            peak_total.load(Ordering::Relaxed) as f64 / 1024.0,
            if std::env::var_os("DATABASE_URL").is_some() { " (servers of DATABASE_URL/REDIS_URL not counted)" } else { "" }
        );
    });
}
