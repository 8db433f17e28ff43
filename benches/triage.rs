//! Criterion benches of the triage engine.
//!
//! - `analyse/*`: signature computation for a small, a median and a huge synthetic PR (and the
//!   median PR of the shared set when it is available).
//! - `candidates/*`: one candidate lookup against an index of 1k, 10k and 100k synthetic PRs; the
//!   time per lookup must stay flat (within 1.5x) across the range.
//! - `engine/full-pass`: analyse + index + candidates + score over the 5,000-PR shared set, read
//!   from `CLAWTRIAGE_DATASET_DIR` (default `../shared/datasets/playwright-5k`); skipped with a
//!   message when the set is missing.

use clawtriage::triage::{self, FileChange, FileStatus, Index, PrInput, TriageConfig};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

/// Small deterministic PRNG (SplitMix64) so synthetic corpora are identical on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// Skewed pick in `0..n`: small values are much more likely (hot files, common words).
    fn skewed(&mut self, n: u64) -> u64 {
        let a = self.below(n);
        let b = self.below(n);
        a.min(b).min(self.below(n))
    }
}

const WORDS: &[&str] = &[
    "const", "let", "return", "await", "this", "page", "frame", "options", "timeout", "selector",
    "context", "browser", "request", "response", "handle", "element", "progress", "result",
    "error", "value", "state", "if", "else", "for", "of", "new", "async", "function", "=", "===",
    "=>", "(", ")", "{", "}", ";", ".", ",",
];

fn synthetic_line(rng: &mut Rng) -> String {
    let n = 3 + rng.below(9);
    let mut s = String::from("    ");
    for _ in 0..n {
        let w = WORDS[rng.skewed(WORDS.len() as u64) as usize];
        s.push_str(w);
        // Rare identifiers make each PR's content its own (as real changes are).
        if rng.below(4) == 0 {
            s.push_str(&format!("_{}", rng.below(1_000_000)));
        }
        s.push(' ');
    }
    s
}

fn synthetic_patch(rng: &mut Rng, hunks: usize, lines_per_hunk: usize) -> String {
    let mut p = String::new();
    for h in 0..hunks {
        let start = 10 + h * 40;
        p.push_str(&format!(
            "@@ -{start},{} +{start},{} @@ function f{h}() {{\n",
            lines_per_hunk + 2,
            lines_per_hunk + 2
        ));
        p.push_str("   context line\n");
        for i in 0..lines_per_hunk {
            let sign = if i % 3 == 0 { '-' } else { '+' };
            p.push(sign);
            p.push_str(&synthetic_line(rng));
            p.push('\n');
        }
        p.push_str("   context line\n");
    }
    p
}

fn synthetic_pr(
    number: u64,
    files: usize,
    hunks: usize,
    lines: usize,
    path_pool: u64,
    rng: &mut Rng,
) -> PrInput {
    let mut fs = Vec::new();
    for i in 0..files {
        let dir = rng.skewed(40);
        let path = match i % 5 {
            4 => format!("tests/area{dir}/case{}.spec.ts", rng.skewed(path_pool)),
            _ => format!("src/area{dir}/module{}.ts", rng.skewed(path_pool)),
        };
        let patch = synthetic_patch(rng, hunks, lines);
        fs.push(FileChange {
            path,
            previous_path: None,
            status: FileStatus::Modified,
            additions: (hunks * lines * 2 / 3) as u32,
            deletions: (hunks * lines / 3) as u32,
            patch: Some(patch),
            sha: None,
        });
    }
    PrInput {
        number,
        title: format!("change {number}"),
        body: format!("Fixes #{}", rng.below(number.max(2) * 3)),
        author: format!("dev{}", rng.below(500)),
        created_at: 1_700_000_000 + number as i64,
        head_sha: format!("{number:040x}"),
        files: fs,
    }
}

fn dataset_dir() -> PathBuf {
    std::env::var_os("CLAWTRIAGE_DATASET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/datasets/playwright-5k"))
}

fn bench_analyse(c: &mut Criterion) {
    let cfg = TriageConfig::default();
    let mut rng = Rng(1);
    let small = synthetic_pr(1, 1, 1, 6, 1000, &mut rng);
    let median = synthetic_pr(2, 4, 3, 12, 1000, &mut rng);
    let huge = synthetic_pr(3, 300, 8, 25, 1000, &mut rng);
    let mut g = c.benchmark_group("analyse");
    g.bench_function("small (1 file, 6 lines)", |b| {
        b.iter(|| triage::analyse(black_box(&small), &cfg))
    });
    g.bench_function("median (4 files, 144 lines)", |b| {
        b.iter(|| triage::analyse(black_box(&median), &cfg))
    });
    g.sample_size(10);
    g.bench_function("huge (300 files, 60k lines)", |b| {
        b.iter(|| triage::analyse(black_box(&huge), &cfg))
    });
    // The real median PR of the shared set (by patch bytes), when present.
    if let Ok(prs) = clawtriage::eval::load_prs(&dataset_dir()) {
        let mut by_size: Vec<&PrInput> = prs.iter().collect();
        by_size.sort_by_key(|p| {
            (
                p.files
                    .iter()
                    .map(|f| f.patch.as_ref().map_or(0, String::len))
                    .sum::<usize>(),
                p.number,
            )
        });
        let med = by_size[by_size.len() / 2];
        g.sample_size(100);
        g.bench_function("dataset median PR", |b| {
            b.iter(|| triage::analyse(black_box(med), &cfg))
        });
    }
    g.finish();
}

fn bench_candidates(c: &mut Criterion) {
    let cfg = TriageConfig::default();
    let mut g = c.benchmark_group("candidates");
    g.sample_size(30);
    g.measurement_time(Duration::from_secs(3));
    for size in [1_000u64, 10_000, 100_000] {
        let mut rng = Rng(7);
        let mut index = Index::new();
        // Path pool grows with the corpus like a real repository's file count, slowly.
        let pool = 2_000;
        for n in 1..=size {
            let pr = synthetic_pr(n, 3, 1, 6, pool, &mut rng);
            let sig = triage::analyse(&pr, &cfg).signature;
            index.insert(n, &sig, &cfg);
        }
        // Queries: new PRs not in the index (as in the analyse job), plus near-duplicates of
        // indexed ones so lookups do real ranking work.
        let mut qrng = Rng(99);
        let queries: Vec<_> = (0..64)
            .map(|i| {
                triage::analyse(&synthetic_pr(size + 1 + i, 3, 1, 6, pool, &mut qrng), &cfg)
                    .signature
            })
            .collect();
        let mut i = 0usize;
        g.bench_function(format!("lookup in {size} PRs"), |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                black_box(index.candidates(&queries[i], &cfg))
            })
        });
    }
    g.finish();
}

fn bench_engine(c: &mut Criterion) {
    let dir = dataset_dir();
    let prs = match clawtriage::eval::load_prs(&dir) {
        Ok(p) => p,
        Err(e) => {
            println!(
                "engine/full-pass skipped: no dataset at {} ({e:#}); set CLAWTRIAGE_DATASET_DIR",
                dir.display()
            );
            return;
        }
    };
    let cfg = TriageConfig::default();
    let mut g = c.benchmark_group("engine");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function(format!("full-pass {} PRs", prs.len()), |b| {
        b.iter(|| {
            black_box(
                clawtriage::eval::run_engine(black_box(&prs), &cfg)
                    .edges
                    .len(),
            )
        })
    });
    g.finish();
}

/// Duplicate sets over 5,000 open PRs with ten edges each (the API's set building, without the
/// database read): a mix of tight groups, chains and noise, deterministic.
fn bench_sets(c: &mut Criterion) {
    use clawtriage::triage::Category;
    use clawtriage::triage::sets::{MemberInfo, SetEdge, SetParams, build_sets};
    use std::collections::{BTreeMap, HashSet};
    let n: u64 = 5_000;
    let members: BTreeMap<u64, MemberInfo> = (1..=n)
        .map(|i| {
            (
                i,
                MemberInfo {
                    number: i,
                    created_at: 1_700_000_000 + i as i64 * 60,
                    state: "open".into(),
                    ci_state: None,
                    approvals: 0,
                    canonical_hash: None,
                    production_lines: 10,
                },
            )
        })
        .collect();
    let mut edges = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for a in 1..=n {
        for k in 0..10u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Half the edges stay near (groups and chains), half go anywhere (noise).
            let b = if k < 5 {
                (a + 1 + x % 4).min(n)
            } else {
                1 + x % n
            };
            if b == a {
                continue;
            }
            let score = 0.5 + (x % 500) as f64 / 1000.0;
            let category = if score > 0.9 {
                Category::SameChange
            } else {
                Category::SameFeature
            };
            edges.push(SetEdge {
                a,
                b,
                category,
                score,
            });
        }
    }
    let params = SetParams::default();
    let none = HashSet::new();
    c.bench_function("sets/build 5000 PRs x 10 edges", |bench| {
        bench.iter(|| build_sets("r", &edges, &members, &none, &params))
    });
}

criterion_group!(
    benches,
    bench_analyse,
    bench_candidates,
    bench_engine,
    bench_sets
);
criterion_main!(benches);
