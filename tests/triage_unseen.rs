//! Golden cases of issue 15 on the `unseen-layouts` labelled set (tests/fixtures/datasets/
//! unseen-layouts, written by its `make.py`): a repository shaped like a TypeScript/Rust runtime
//! monorepo, unlike the Playwright history the engine was first measured on. One test per class:
//! coding agents' `[bot]` PRs, a `vendor` module inside the source tree, renames and binary files,
//! release PRs of different versions, tests by convention and content, lockfile-only and tiny
//! backports, and agent rewrites. The engine runs as the appliance does: analyse every PR, index
//! all, candidates, score.

use clawtriage::eval::{EngineRun, load_prs, run_engine};
use clawtriage::triage::{self, Category, Channel, TriageConfig};
use std::path::PathBuf;

fn set_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datasets/unseen-layouts")
}

fn run() -> EngineRun {
    run_engine(&load_prs(&set_dir()).unwrap(), &TriageConfig::default())
}

/// Category of the pair, `None` when it was never a candidate.
fn category(r: &EngineRun, a: u64, b: u64) -> Option<Category> {
    r.edges.get(&(a.min(b), a.max(b))).map(|e| e.category)
}

/// `a`'s best suggestion (highest final score, then lowest number).
fn top(r: &EngineRun, a: u64) -> Option<u64> {
    let mut best: Option<(f64, u64)> = None;
    for (&(x, y), e) in &r.edges {
        if !e.category.is_suggestion() || (x != a && y != a) {
            continue;
        }
        let other = if x == a { y } else { x };
        let better = match best {
            None => true,
            Some((s, n)) => e.final_score > s || (e.final_score == s && other < n),
        };
        if better {
            best = Some((e.final_score, other));
        }
    }
    best.map(|b| b.1)
}

fn assert_pair(r: &EngineRun, a: u64, b: u64, want: Category) {
    assert_eq!(category(r, a, b), Some(want), "#{a} #{b}");
    assert!(
        top(r, a) == Some(b) || top(r, b) == Some(a),
        "#{a} #{b} ranks first for neither: tops {:?} {:?}",
        top(r, a),
        top(r, b)
    );
}

fn assert_not_suggested(r: &EngineRun, a: u64, b: u64) {
    let c = category(r, a, b);
    assert!(
        c.is_none_or(|c| !c.is_suggestion()),
        "#{a} #{b} suggested as {c:?}"
    );
}

fn channel_of(number: u64, path: &str) -> Channel {
    let prs = load_prs(&set_dir()).unwrap();
    let pr = prs.iter().find(|p| p.number == number).unwrap();
    let a = triage::analyse(pr, &TriageConfig::default());
    a.files.iter().find(|f| f.path == path).unwrap().channel
}

#[test]
fn coding_agent_prs_pair_like_any_pr() {
    let r = run();
    // A person's fix and copilot-swe-agent[bot]'s resubmission of it.
    assert_pair(&r, 1, 2, Category::SameChange);
    // devin-ai-integration[bot] and chatgpt-codex-connector[bot] implementing one issue.
    assert_pair(&r, 3, 4, Category::CompetingImplementation);
    // Two dependabot bumps of different packages are kept apart...
    assert_not_suggested(&r, 5, 6);
    // ...but dependabot's bump pairs with a person's PR making the same bump.
    assert_pair(&r, 6, 7, Category::SameChange);
}

#[test]
fn vendor_module_inside_the_source_tree_is_code() {
    let r = run();
    assert_eq!(
        channel_of(10, "cli/tools/vendor/build.rs"),
        Channel::Production
    );
    assert_pair(&r, 10, 11, Category::SameChange);
    assert_eq!(
        channel_of(12, "internal/cmd/vendor/vendor.go"),
        Channel::Production
    );
    assert_pair(&r, 12, 13, Category::SameChange);
}

#[test]
fn renames_and_binary_files_are_evidence() {
    let r = run();
    // The same pure rename (no patch text) in a change and its backport.
    assert_pair(&r, 20, 21, Category::SameChange);
    // The same binary file with the same blob id...
    assert_pair(&r, 22, 23, Category::SameChange);
    // ...but another content of that file is not the same change.
    assert_not_suggested(&r, 22, 24);
}

#[test]
fn release_prs_of_different_versions_are_at_most_related() {
    let r = run();
    for (a, b) in [(30, 31), (31, 33), (30, 33), (31, 32)] {
        assert_not_suggested(&r, a, b);
    }
    // The same bump twice is the same change.
    assert_pair(&r, 30, 32, Category::SameChange);
}

#[test]
fn tests_by_convention_and_content() {
    let r = run();
    // Deno/Go-style `foo_test.ts` is a test file; the shared tests make a competing pair.
    assert_eq!(
        channel_of(40, "ext/web/text_decoder_test.ts"),
        Channel::Tests
    );
    assert_pair(&r, 40, 41, Category::CompetingImplementation);
    // Rust unit tests beside the code: a file whose every hunk is `#[test]` code is tests.
    assert_eq!(channel_of(42, "cli/util/fs.rs"), Channel::Tests);
    assert_pair(&r, 42, 43, Category::CompetingImplementation);
}

#[test]
fn lockfile_only_one_line_and_tiny_build_file_backports() {
    let r = run();
    // Only Cargo.lock changes: whole-diff identity.
    assert_pair(&r, 50, 51, Category::SameChange);
    // One line removed; four lines of a BUILD.gn.
    assert_pair(&r, 52, 53, Category::SameChange);
    assert_pair(&r, 54, 55, Category::SameChange);
    // Each removes a lone `}` in the same file: no evidence.
    assert_not_suggested(&r, 56, 57);
}

#[test]
fn agent_rewrites_rank_first() {
    let r = run();
    let group = [60, 61, 62, 63];
    // Renamed identifiers (61); a hunk left out and a comment added (62); helpers moved above
    // their callers and a line added (63): each is suggested with the original, as the same
    // change or feature, and its best suggestion is a member of the group.
    for rewrite in [61, 62, 63] {
        let c = category(&r, 60, rewrite);
        assert!(
            matches!(c, Some(Category::SameChange | Category::SameFeature)),
            "#60 #{rewrite}: {c:?}"
        );
        let t = top(&r, rewrite);
        assert!(
            t.is_some_and(|t| group.contains(&t)),
            "#{rewrite}: top {t:?}"
        );
    }
    assert!(top(&r, 60).is_some_and(|t| group.contains(&t)));
}
