//! Search bench (a bench binary that prints figures; not a timed test): PR search and set
//! filters through the real appliance's HTTP API over a repository of 20,000 PRs.
//!
//! The PRs are the 5k set replicated (renumbered, four copies) with their real titles, authors,
//! base branches and changed files, plus labels, coding-agent branches and three scored edges per
//! PR, written straight into Postgres (analysing 20k PRs would measure the engine, not search).
//! Each query kind is asked `ROUNDS` times in turn, one request at a time, on loopback; the
//! latency is the client's (routing, SQL, JSON). Prints p50 / p99 per kind and over all.
//!
//! `cargo bench --bench search -- [SET_DIR] [PRS]` (defaults `../shared/datasets/playwright-5k`
//! and 20000); under `cargo test` it runs over the committed slice (500 PRs, 3 rounds) as a
//! smoke test. Uses DATABASE_URL / REDIS_URL when set, else starts throwaway servers.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{App, FakeGithub, Services, percentile, settings};
use serde_json::Value;

const LABELS: [&str; 8] = [
    "bug",
    "feature",
    "docs",
    "needs-review",
    "flaky",
    "P1",
    "browser:firefox",
    "browser:webkit",
];
const AGENT_BRANCHES: [&str; 3] = ["copilot/", "codex/", "devin/"];

struct Row {
    number: i64,
    title: String,
    author: String,
    state: &'static str,
    head_sha: String,
    head_ref: String,
    base_ref: String,
    labels: Vec<String>,
    created: String,
    files: Vec<(String, String, i32, i32)>,
}

fn rows(dir: &std::path::Path, target: usize) -> Vec<Row> {
    let repo = common::fake_github::load_dataset(dir, None);
    let n = repo.pulls.len();
    let copies = target.div_ceil(n.max(1));
    let mut out = Vec::with_capacity(target);
    'outer: for k in 0..copies {
        for (i, p) in repo.pulls.iter().enumerate() {
            if out.len() >= target {
                break 'outer;
            }
            let orig = p["number"].as_i64().unwrap();
            let number = orig + (k as i64) * 1_000_000;
            let h = (i * 7 + k * 13) % 100;
            let labels: Vec<String> = (0..(h % 4))
                .map(|j| LABELS[(i + j * 3 + k) % LABELS.len()].to_string())
                .collect();
            let head_ref = if h < 6 {
                format!("{}{}", AGENT_BRANCHES[h % 3], number)
            } else {
                p["head"]["ref"].as_str().unwrap_or("").to_string()
            };
            let files = repo
                .files
                .get(&orig)
                .map(|fs| {
                    fs.iter()
                        .map(|f| {
                            (
                                f["filename"].as_str().unwrap_or("").to_string(),
                                f["status"].as_str().unwrap_or("modified").to_string(),
                                f["additions"].as_i64().unwrap_or(0) as i32,
                                f["deletions"].as_i64().unwrap_or(0) as i32,
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(Row {
                number,
                title: p["title"].as_str().unwrap_or("").to_string(),
                author: p["user"]["login"].as_str().unwrap_or("ghost").to_string(),
                state: if h < 85 {
                    "open"
                } else if h < 95 {
                    "closed"
                } else {
                    "merged"
                },
                head_sha: format!("{}{k}", p["head"]["sha"].as_str().unwrap_or("0")),
                head_ref,
                base_ref: p["base"]["ref"].as_str().unwrap_or("main").to_string(),
                labels,
                created: p["created_at"]
                    .as_str()
                    .unwrap_or("2026-01-01T00:00:00Z")
                    .to_string(),
                files,
            });
        }
    }
    out
}

async fn seed(c: &tokio_postgres::Client, rows: &[Row]) -> i64 {
    let repo_id: i64 = c
        .query_one(
            "INSERT INTO repositories (owner, name) VALUES ('bench', 'search') RETURNING repo_id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    for chunk in rows.chunks(2000) {
        let num: Vec<i64> = chunk.iter().map(|r| r.number).collect();
        let title: Vec<&str> = chunk.iter().map(|r| r.title.as_str()).collect();
        let author: Vec<&str> = chunk.iter().map(|r| r.author.as_str()).collect();
        let state: Vec<&str> = chunk.iter().map(|r| r.state).collect();
        let head: Vec<&str> = chunk.iter().map(|r| r.head_sha.as_str()).collect();
        let head_ref: Vec<&str> = chunk.iter().map(|r| r.head_ref.as_str()).collect();
        let base: Vec<&str> = chunk.iter().map(|r| r.base_ref.as_str()).collect();
        // Arrays of arrays must be rectangular: labels travel as one joined string each.
        let labels: Vec<String> = chunk.iter().map(|r| r.labels.join("\u{1f}")).collect();
        let created: Vec<&str> = chunk.iter().map(|r| r.created.as_str()).collect();
        c.execute(
            "INSERT INTO pull_requests (repo_id, number, title, author, html_url, state, head_sha,
                 head_ref, base_ref, labels, created_at, updated_at)
             SELECT $1, n, t, a, 'https://github.com/bench/search/pull/' || n, s, h, hr, b,
                    CASE WHEN l = '' THEN '{}'::text[] ELSE string_to_array(l, chr(31)) END,
                    ct::timestamptz, ct::timestamptz + (n % 1000) * interval '1 minute'
             FROM unnest($2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::text[], $9::text[], $10::text[]) AS x(n, t, a, s, h, hr, b, l, ct)",
            &[
                &repo_id, &num, &title, &author, &state, &head, &head_ref, &base, &labels, &created,
            ],
        )
        .await
        .unwrap();
        let mut fnum = Vec::new();
        let mut fhead = Vec::new();
        let mut fpath = Vec::new();
        let mut fstatus = Vec::new();
        let mut fadd = Vec::new();
        let mut fdel = Vec::new();
        for r in chunk {
            let mut seen = std::collections::HashSet::new();
            for (p, s, a, d) in &r.files {
                if !seen.insert(p.as_str()) {
                    continue;
                }
                fnum.push(r.number);
                fhead.push(r.head_sha.as_str());
                fpath.push(p.as_str());
                fstatus.push(s.as_str());
                fadd.push(*a);
                fdel.push(*d);
            }
        }
        c.execute(
            "INSERT INTO pr_files (repo_id, number, head_sha, path, status, additions, deletions,
                 channel, signature_version, config_version)
             SELECT $1, n, h, p, s, a, d, 'production', 1, 1
             FROM unnest($2::int8[], $3::text[], $4::text[], $5::text[], $6::int4[], $7::int4[])
                  AS x(n, h, p, s, a, d)",
            &[&repo_id, &fnum, &fhead, &fpath, &fstatus, &fadd, &fdel],
        )
        .await
        .unwrap();
    }
    // Three scored edges per PR (both directions), so every hit has a top suggestion to read:
    // mostly RELATED (below the review threshold), about one PR in eight with a suggestion, as in
    // a busy repository with a few percent of duplicates.
    let n = rows.len();
    let mut a = Vec::new();
    let mut ah = Vec::new();
    let mut b = Vec::new();
    let mut bh = Vec::new();
    let mut score = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        for step in [1usize, 17, 331] {
            let o = &rows[(i + step) % n];
            if o.number == r.number {
                continue;
            }
            let s = if step == 1 && i % 8 == 0 {
                0.6 + ((i / 8) % 40) as f64 / 100.0
            } else {
                0.3 + ((i * 31 + step) % 30) as f64 / 100.0
            };
            for (x, y) in [(r, o), (o, r)] {
                a.push(x.number);
                ah.push(x.head_sha.as_str());
                b.push(y.number);
                bh.push(y.head_sha.as_str());
                score.push(s);
            }
        }
    }
    for start in (0..a.len()).step_by(20_000) {
        let end = (start + 20_000).min(a.len());
        c.execute(
            "INSERT INTO candidate_edges (repo_id, number, head_sha, other_number, other_head_sha,
                 category, final_score, signature_version, algorithm_version, config_version)
             SELECT $1, n, h, o, oh, CASE WHEN s >= 0.9 THEN 'SAME_CHANGE' WHEN s >= 0.6
                    THEN 'SAME_FEATURE' ELSE 'RELATED' END, s, 1, 1, 1
             FROM unnest($2::int8[], $3::text[], $4::int8[], $5::text[], $6::float8[])
                  AS x(n, h, o, oh, s)
             ON CONFLICT DO NOTHING",
            &[
                &repo_id,
                &a[start..end].to_vec(),
                &ah[start..end].to_vec(),
                &b[start..end].to_vec(),
                &bh[start..end].to_vec(),
                &score[start..end].to_vec(),
            ],
        )
        .await
        .unwrap();
    }
    // What autovacuum does on a running appliance: statistics, and the GIN indexes' pending
    // lists merged (a bulk load leaves them long, which makes the planner avoid the indexes).
    c.batch_execute("VACUUM ANALYZE").await.unwrap();
    repo_id
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let dir = args.first().map(PathBuf::from).unwrap_or_else(|| {
        if bench_mode {
            PathBuf::from("../shared/datasets/playwright-5k")
        } else {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/datasets/playwright-slice")
        }
    });
    if !dir.join("prs.jsonl.gz").exists() {
        println!("search bench skipped: no PR set at {}", dir.display());
        return;
    }
    let target: usize = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(if bench_mode { 20_000 } else { 500 });
    let rounds = if bench_mode { 60 } else { 3 };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(dir, target, rounds));
}

async fn run(dir: PathBuf, target: usize, rounds: usize) {
    let t = Instant::now();
    let rows = rows(&dir, target);
    let svc = Services::new().await;
    svc.migrate().await;
    let c = svc.client().await;
    let repo_id = seed(&c, &rows).await;
    let files: i64 = c
        .query_one("SELECT count(*) FROM pr_files", &[])
        .await
        .unwrap()
        .get(0);
    let edges: i64 = c
        .query_one("SELECT count(*) FROM candidate_edges", &[])
        .await
        .unwrap()
        .get(0);
    println!(
        "search bench: {} PRs, {files} file rows, {edges} edge rows seeded in {:.1} s",
        rows.len(),
        t.elapsed().as_secs_f64()
    );
    let gh = FakeGithub::start().await;
    let app = App::start(settings(&svc, &gh.url())).await;

    // Query terms taken from the data: a common and a rare title word, the busiest author, a
    // busy directory and one file name.
    let top_author = c
        .query_one(
            "SELECT author FROM pull_requests GROUP BY author ORDER BY count(*) DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get::<_, String>(0);
    let some = &rows[rows.len() / 2];
    let rare = some
        .title
        .split(|ch: char| !ch.is_alphanumeric())
        .filter(|w| w.len() >= 5)
        .max_by_key(|w| w.len())
        .unwrap_or("page")
        .to_string();
    let file = some
        .files
        .first()
        .map(|f| f.0.rsplit('/').next().unwrap_or("").to_string())
        .unwrap_or_else(|| "page.ts".into());
    let prs = format!("/api/repos/{repo_id}/prs");
    let sets = format!("/api/repos/{repo_id}/duplicate-sets");
    let enc = |s: &str| {
        s.replace('/', "%2F")
            .replace(' ', "%20")
            .replace(':', "%3A")
    };
    let mut kinds: Vec<(String, String)> = vec![
        ("all open, newest first".into(), format!("{prs}?limit=50")),
        (
            "number".into(),
            format!("{prs}?q={}&state=all", some.number),
        ),
        ("title word, common".into(), format!("{prs}?q=fix&limit=50")),
        (
            "title words, rare".into(),
            format!("{prs}?q={}&state=all", enc(&rare)),
        ),
        (
            "author".into(),
            format!("{prs}?author={}&limit=50", enc(&top_author)),
        ),
        ("label".into(), format!("{prs}?label=needs-review&limit=50")),
        (
            "path, a directory".into(),
            format!("{prs}?path=src%2Fserver%2F&limit=50"),
        ),
        (
            "path, one file".into(),
            format!("{prs}?path={}&state=all", enc(&file)),
        ),
        (
            "base branch".into(),
            format!("{prs}?base=release-1.46&state=all&limit=50"),
        ),
        ("coding agents".into(), format!("{prs}?agent=true&limit=50")),
        (
            "words + path + label".into(),
            format!("{prs}?q=fix&path=src%2F&label=bug&state=all&limit=50"),
        ),
        (
            "by number, all states".into(),
            format!("{prs}?orderBy=number&state=all&limit=50"),
        ),
    ];
    // The second page of a busy search, through its cursor.
    let (_, first): (u16, Value) = get(&app, &format!("{prs}?path=src%2F&limit=50")).await;
    if let Some(cursor) = first["nextCursor"].as_str() {
        kinds.push((
            "path, second page".into(),
            format!("{prs}?path=src%2F&limit=50&cursor={cursor}"),
        ));
    }
    // The registry's first refresh of the seeded sets runs on the workflow queue at start; let
    // it finish, and warm each query once, before measuring.
    tokio::time::sleep(Duration::from_secs(if rounds > 3 { 5 } else { 0 })).await;
    for (_, url) in &kinds {
        let _ = get(&app, url).await;
    }
    let mut all = Vec::new();
    let mut table = Vec::new();
    for (name, url) in &kinds {
        let mut lat = Vec::new();
        let mut hits = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            let (status, body) = get(&app, url).await;
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(status, 200, "{name}: {body}");
            hits = body["items"].as_array().map(|a| a.len()).unwrap_or(0);
        }
        lat.sort_by(f64::total_cmp);
        all.extend(lat.iter().copied());
        table.push((
            name.clone(),
            hits,
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
        ));
    }
    // Duplicate sets, all and touching a path. Set pages are cached until results change: every
    // round asks another minScore, so these figures are the uncached ones (every set built).
    let dirs = ["src/", "tests/", "docs/", "packages/", "utils/"];
    let mut sets_lat = Vec::new();
    let mut path_lat = Vec::new();
    let mut touching = 0;
    for i in 0..rounds {
        let min = format!("0.{}", 60 + i % 30);
        for (path, lat) in [("", &mut sets_lat), (dirs[i % dirs.len()], &mut path_lat)] {
            let url = format!("{sets}?limit=20&minScore={min}&path={}", enc(path));
            let t = Instant::now();
            let (status, body) = get(&app, &url).await;
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(status, 200, "{body}");
            if !path.is_empty() {
                touching = body["total"].as_u64().unwrap_or(0);
            }
        }
    }
    sets_lat.sort_by(f64::total_cmp);
    path_lat.sort_by(f64::total_cmp);
    println!("\n| query | hits (first page) | p50 ms | p99 ms |\n| --- | --- | --- | --- |");
    for (name, hits, p50, p99) in &table {
        println!("| {name} | {hits} | {p50:.1} | {p99:.1} |");
    }
    all.sort_by(f64::total_cmp);
    println!(
        "| **every PR search above** ({} requests) | | **{:.1}** | **{:.1}** |",
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.99)
    );
    println!(
        "| duplicate sets, first page (uncached) | 20 | {:.1} | {:.1} |",
        percentile(&sets_lat, 0.5),
        percentile(&sets_lat, 0.99)
    );
    println!(
        "| sets touching a path (uncached) | {touching} in all | {:.1} | {:.1} |",
        percentile(&path_lat, 0.5),
        percentile(&path_lat, 0.99)
    );
    // The plans of the index-backed filters, for the record.
    for (what, sql) in [
        (
            "title word",
            "EXPLAIN SELECT 1 FROM pull_requests p WHERE p.repo_id = 1 AND p.title ILIKE '%chooser%'",
        ),
        (
            "path",
            "EXPLAIN SELECT 1 FROM pr_files f WHERE f.path ILIKE '%src/server/%'",
        ),
        (
            "label",
            "EXPLAIN SELECT 1 FROM pull_requests p WHERE ct_lower_labels(p.labels) @> ARRAY['flaky']",
        ),
    ] {
        let plan: Vec<String> = c
            .query(sql, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        let used = plan
            .iter()
            .find(|l| l.contains("Index"))
            .map(|l| l.trim().to_string())
            .unwrap_or_else(|| "no index (sequential scan)".into());
        println!("plan of a {what} filter: {used}");
    }
    app.stop().await;
}

async fn get(app: &App, path: &str) -> (u16, Value) {
    let r = app.http.get(app.url(path)).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}
