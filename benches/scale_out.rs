//! Scale-out benchmark (a bench binary that prints figures; not a timed test).
//!
//! Scans a shared PR set through one `web` process and 1, then 2, `worker` processes of the
//! release binary over one Postgres and one Redis (REST files endpoint, fake GitHub in this
//! process). Prints each scan's wall time, the CPU time each process used during it (user +
//! system, from /proc), and how the analyses were split between the workers. On a 2-core
//! machine shared with Postgres, Redis and the fake GitHub the ratio shows the overhead of a
//! second process, not a speed-up; on separate machines each worker brings its own cores.
//!
//! `cargo bench --bench scale_out -- [SET_DIR]` (default `../shared/datasets/playwright-1k`);
//! under `cargo test` it runs once over the committed slice as a smoke test. SCALE_OUT_WORKERS
//! (default `1,2`) lists the worker counts to run.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{FakeGithub, KillOnDrop, Services};
use serde_json::json;

/// User + system CPU seconds a process has used so far (`/proc/PID/stat`, fields 14 and 15).
fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name may hold spaces: count fields after its closing parenthesis.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds used so far by `roots` and every process below them (Postgres's backends are
/// children of its postmaster).
fn tree_cpu_secs(roots: &[u32]) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let pids: Vec<u32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
        .collect();
    let parent = |pid: u32| -> u32 {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.to_string()))
            .and_then(|r| r.split_whitespace().nth(1).and_then(|p| p.parse().ok()))
            .unwrap_or(0)
    };
    pids.into_iter()
        .filter(|&pid| {
            let mut p = pid;
            for _ in 0..64 {
                if roots.contains(&p) {
                    return true;
                }
                p = parent(p);
                if p <= 1 {
                    return false;
                }
            }
            false
        })
        .map(cpu_secs)
        .sum()
}

struct Proc {
    role: &'static str,
    child: KillOnDrop,
}

fn spawn(
    svc: &Services,
    gh: &str,
    role: &'static str,
    i: usize,
    tmp: &std::path::Path,
) -> (Proc, u16) {
    let port = common::services::free_port();
    let mut cmd = common::appliance_command(svc, gh, port);
    cmd.args(["--role", role])
        .env("DATA_ROOT", tmp.join(format!("{role}-{i}")))
        .env("PUBLIC_SCAN_ALLOWED_REPOS", "bench/playwright")
        .env("GIT_MIRROR", "off")
        .env("MIGRATE_ON_START", "false")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for name in ["SCAN_BATCH_SIZE", "BATCH_CONCURRENCY", "WORKER_CONCURRENCY"] {
        if let Ok(v) = std::env::var(name) {
            cmd.env(name, v);
        }
    }
    let child = KillOnDrop(cmd.spawn().expect("spawn clawtriage"));
    common::services::wait_for_port(port, Duration::from_secs(60));
    (Proc { role, child }, port)
}

async fn run(dir: &std::path::Path, workers: usize) {
    let svc = Services::new().await;
    svc.migrate().await;
    let gh = FakeGithub::start().await;
    let repo = common::fake_github::load_dataset(dir, None);
    let n = repo.pulls.len();
    if n + 100 > 5000 {
        // One files call per PR: give the fake an App installation's 15,000 an hour (as in the
        // scan bench), so no run waits for the hourly reset.
        gh.with(|g| {
            g.rate_limit = 15_000;
            g.remaining = 15_000;
        });
    }
    gh.add_repo("bench", "playwright", repo);
    let tmp = tempfile::tempdir().unwrap();
    let (web, web_port) = spawn(&svc, &gh.url(), "web", 0, tmp.path());
    let mut procs = vec![web];
    for i in 0..workers {
        procs.push(spawn(&svc, &gh.url(), "worker", i, tmp.path()).0);
    }
    let base = format!("http://127.0.0.1:{web_port}");
    let before: Vec<f64> = procs.iter().map(|p| cpu_secs(p.child.0.id())).collect();
    let servers = svc.own_server_pids();
    let servers_before = tree_cpu_secs(&servers);
    let http = reqwest::Client::new();
    let t = Instant::now();
    let r = http
        .post(format!("{base}/api/ops/public-scan"))
        .bearer_auth("ops-token-for-tests-0123456789abcdef")
        .json(&json!({"owner": "bench", "repo": "playwright", "snapshot": "scale"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let st = common::wait_scan_at(
        &http,
        &base,
        "scan:bench/playwright:scale",
        Duration::from_secs(3600),
    )
    .await;
    let wall = t.elapsed();
    let cpu: Vec<f64> = procs
        .iter()
        .zip(&before)
        .map(|(p, b)| cpu_secs(p.child.0.id()) - b)
        .collect();
    let servers_cpu = tree_cpu_secs(&servers) - servers_before;
    // Analyses by process id (worker names are `app-{host}-{pid}-{random}`).
    let c = svc.client().await;
    let rows = c
        .query(
            "SELECT worker, count(*) FROM analysis_runs WHERE status = 'done' GROUP BY 1",
            &[],
        )
        .await
        .unwrap();
    let mut split: BTreeMap<u32, i64> = BTreeMap::new();
    for r in rows {
        let w: String = r.get(0);
        let pid = w
            .rsplit('-')
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        *split.entry(pid).or_default() += r.get::<_, i64>(1);
    }
    println!(
        "{n:>5} PRs, {workers} worker process(es): wall {:>7.2}s  listed {} analysed {} failed {}",
        wall.as_secs_f64(),
        st["prsListed"],
        st["prsAnalyzed"],
        st["prsFailed"]
    );
    for (p, used) in procs.iter().zip(&cpu) {
        let pid = p.child.0.id();
        let heads = split.get(&pid).copied().unwrap_or(0);
        println!(
            "    {:<6} pid {pid:>7}: CPU {used:>7.2}s ({:>5.1}% of the wall){}",
            p.role,
            100.0 * used / wall.as_secs_f64().max(1e-9),
            if p.role == "worker" {
                format!(", analysed {heads} heads")
            } else {
                String::new()
            }
        );
    }
    println!(
        "    Postgres and Redis: CPU {servers_cpu:.2}s{}",
        if servers.is_empty() {
            " (servers of DATABASE_URL/REDIS_URL: not measured)"
        } else {
            ""
        }
    );
    println!(
        "    appliance processes: CPU {:.2}s; the machine has {} cores",
        cpu.iter().sum::<f64>(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // What the processes ask of Redis while idle (a managed Redis may bill per command).
    let idle = Duration::from_secs(10);
    let before = redis_commands(&svc).await;
    tokio::time::sleep(idle).await;
    let per_sec = (redis_commands(&svc).await - before) as f64 / idle.as_secs_f64();
    println!(
        "    idle: {per_sec:.0} Redis commands/s from 1 web + {workers} worker process(es) (about {:.0} million a month)",
        per_sec * 30.0 * 86_400.0 / 1e6
    );
}

/// Commands the Redis server has processed so far (`INFO stats`).
async fn redis_commands(svc: &Services) -> u64 {
    let mut c = redis::Client::open(svc.redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(&mut c)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let Some(dir) = common::bench_set("scale_out") else {
        return;
    };
    let workers: Vec<usize> = std::env::var("SCALE_OUT_WORKERS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .filter_map(|w| w.trim().parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("set: {}", dir.display());
    rt.block_on(async move {
        for w in workers {
            run(&dir, w).await;
        }
    });
}
