//! Golden tests of the triage engine: real outcomes for the cases the product must get right.
//!
//! Uses only `clawtriage::triage` and the fixtures under `tests/fixtures/triage/` (small slices of
//! the shared PR set) plus synthetic PRs built here.

use clawtriage::triage::{
    self, Category, Edge, FileChange, FileStatus, Index, PrInput, ScoreContext, Signature,
    TriageConfig,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;

fn file(path: &str, status: FileStatus, patch: Option<String>) -> FileChange {
    let (mut add, mut del) = (0, 0);
    if let Some(p) = &patch {
        for l in p.lines() {
            if l.starts_with('+') {
                add += 1;
            } else if l.starts_with('-') {
                del += 1;
            }
        }
    }
    FileChange {
        path: path.to_string(),
        previous_path: None,
        status,
        additions: add,
        deletions: del,
        patch,
        sha: None,
    }
}

fn pr(number: u64, author: &str, title: &str, body: &str, files: Vec<FileChange>) -> PrInput {
    PrInput {
        number,
        title: title.to_string(),
        body: body.to_string(),
        author: author.to_string(),
        created_at: 1_700_000_000 + number as i64,
        head_sha: format!("{number:040x}"),
        files,
    }
}

/// A new file's patch from its lines.
fn added_file(lines: &[String]) -> String {
    let mut p = format!("@@ -0,0 +1,{} @@\n", lines.len());
    for l in lines {
        p.push('+');
        p.push_str(l);
        p.push('\n');
    }
    p
}

/// A modification hunk: `removed` replaced by `added` at `line`, with one context line around.
fn hunk(line: u32, header: &str, removed: &[&str], added: &[&str]) -> String {
    let mut p = format!(
        "@@ -{line},{} +{line},{} @@ {header}\n   // before\n",
        removed.len() + 2,
        added.len() + 2
    );
    for r in removed {
        let _ = writeln!(p, "-{r}");
    }
    for a in added {
        let _ = writeln!(p, "+{a}");
    }
    p.push_str("   // after\n");
    p
}

/// Analyses all PRs, indexes them together and scores the pair (a, b) with corpus rarity.
struct Corpus {
    cfg: TriageConfig,
    sigs: BTreeMap<u64, Signature>,
    index: Index,
}

impl Corpus {
    fn new(prs: &[PrInput]) -> Self {
        let cfg = TriageConfig::default();
        let mut sigs = BTreeMap::new();
        let mut index = Index::new();
        for p in prs {
            let a = triage::analyse(p, &cfg);
            index.insert(p.number, &a.signature, &cfg);
            sigs.insert(p.number, a.signature);
        }
        Corpus { cfg, sigs, index }
    }

    fn edge(&self, a: u64, b: u64) -> Edge {
        let ctx = ScoreContext::from_index(&self.index);
        let e1 = triage::score(&self.sigs[&a], &self.sigs[&b], &ctx, &self.cfg);
        let e2 = triage::score(&self.sigs[&b], &self.sigs[&a], &ctx, &self.cfg);
        assert_eq!(e1.category, e2.category, "category must be symmetric");
        assert_eq!(e1.final_score, e2.final_score, "score must be symmetric");
        e1
    }

    fn is_candidate(&self, a: u64, b: u64) -> bool {
        self.index
            .candidates(&self.sigs[&a], &self.cfg)
            .contains(&b)
    }
}

fn load_fixture(name: &str) -> Vec<PrInput> {
    let path = format!(
        "{}/tests/fixtures/triage/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn page_change() -> Vec<FileChange> {
    vec![file(
        "src/server/page.ts",
        FileStatus::Modified,
        Some(hunk(
            120,
            "export class Page {",
            &["    const timeout = this._timeoutSettings.navigationTimeout(options);"],
            &[
                "    const timeout = this._timeoutSettings.navigationTimeout(options);",
                "    if (options.waitUntil === 'commit')",
                "      return this._frameManager.mainFrame().waitForCommit(timeout);",
            ],
        )),
    )]
}

fn test_lines(name: &str, n: usize) -> Vec<String> {
    let mut v = vec!["import { test, expect } from './fixtures';".to_string()];
    for i in 0..n {
        v.push(format!("test('{name} case {i}', async ({{ page }}) => {{"));
        v.push(format!(
            "  await page.goto(server.PREFIX + '/{name}/{i}.html');"
        ));
        v.push(format!(
            "  expect(await page.evaluate(() => window.{name}{i})).toBe({i});"
        ));
        v.push("});".to_string());
    }
    v
}

#[test]
fn same_patch_with_different_tests_is_same_change() {
    let mut a_files = page_change();
    a_files.push(file(
        "tests/page/goto.spec.ts",
        FileStatus::Added,
        Some(added_file(&test_lines("goto", 3))),
    ));
    let mut b_files = page_change();
    // Rebased: same lines, shifted line numbers.
    b_files[0].patch = b_files[0]
        .patch
        .as_ref()
        .map(|p| p.replace("@@ -120,3 +120,5 @@", "@@ -131,3 +131,5 @@"));
    b_files.push(file(
        "tests/page/commit.spec.ts",
        FileStatus::Added,
        Some(added_file(&test_lines("commit", 4))),
    ));
    let c = Corpus::new(&[
        pr(
            1,
            "alice",
            "feat(goto): support waitUntil commit",
            "",
            a_files,
        ),
        pr(
            2,
            "coding-agent",
            "Fix navigation",
            "Opening a fresh PR.",
            b_files,
        ),
    ]);
    assert!(c.is_candidate(1, 2) && c.is_candidate(2, 1));
    let e = c.edge(1, 2);
    assert_eq!(e.category, Category::SameChange, "{:?}", e.scores);
    assert!(e.final_score >= c.cfg.review_threshold);
    assert!(
        e.evidence.reasons.iter().any(|r| r.contains("canonical")),
        "{:?}",
        e.evidence.reasons
    );
    assert_eq!(
        e.evidence.shared_paths,
        vec!["src/server/page.ts".to_string()]
    );
}

#[test]
fn same_feature_with_different_implementation_is_same_feature() {
    // Both add the same option plumbing (identical lines) and both fix #4242, but implement the
    // core differently.
    let plumbing = hunk(
        40,
        "export type NavigateOptions = {",
        &[],
        &[
            "  /** Stop waiting once the response is committed. */",
            "  commitOnly?: boolean,",
            "  commitTimeout?: number,",
        ],
    );
    let a_core = hunk(
        300,
        "async goto(url: string, options: NavigateOptions) {",
        &["    await this._waitForLoadState(options);"],
        &[
            "    if (options.commitOnly)",
            "      return await this._frameManager.waitForCommit(options.commitTimeout ?? 0);",
            "    await this._waitForLoadState(options);",
        ],
    );
    let b_core = hunk(
        300,
        "async goto(url: string, options: NavigateOptions) {",
        &["    await this._waitForLoadState(options);"],
        &[
            "    const state = options.commitOnly ? 'commit' : options.waitUntil;",
            "    await this._waitForLoadState({ ...options, waitUntil: state, timeout: options.commitTimeout });",
        ],
    );
    let a = pr(
        10,
        "alice",
        "feat(goto): commit-only navigation",
        "Fixes #4242",
        vec![file(
            "src/server/frames.ts",
            FileStatus::Modified,
            Some(format!("{plumbing}{a_core}")),
        )],
    );
    let b = pr(
        11,
        "bob",
        "Add commitOnly option to goto",
        "This closes #4242.",
        vec![file(
            "src/server/frames.ts",
            FileStatus::Modified,
            Some(format!("{plumbing}{b_core}")),
        )],
    );
    let c = Corpus::new(&[a, b]);
    let e = c.edge(10, 11);
    assert_eq!(
        e.category,
        Category::SameFeature,
        "{:?} {:?}",
        e.scores,
        e.evidence.reasons
    );
    assert!(
        e.evidence
            .reasons
            .iter()
            .any(|r| r.contains("both close #4242")),
        "{:?}",
        e.evidence.reasons
    );
}

#[test]
fn same_tests_different_implementation_is_competing() {
    let tests = file(
        "tests/page/click.spec.ts",
        FileStatus::Modified,
        Some(hunk(
            80,
            "describe('click', () => {",
            &[],
            &[
                "it('should retry when the element is detached during the action', async ({ page }) => {",
                "  await page.setContent('<button onclick=\"window.clicked=true\">Click</button>');",
                "  await page.$eval('button', b => setTimeout(() => b.replaceWith(b.cloneNode(true)), 10));",
                "  await page.click('button');",
                "  expect(await page.evaluate('window.clicked')).toBe(true);",
                "});",
            ],
        )),
    );
    let a = pr(
        20,
        "alice",
        "fix(click): requery detached elements",
        "",
        vec![
            file(
                "src/server/dom.ts",
                FileStatus::Modified,
                Some(hunk(
                    210,
                    "async _retryPointerAction(progress: Progress) {",
                    &["      const result = await this._performPointerAction(progress);"],
                    &[
                        "      if (!this.isConnected())",
                        "        return 'error:notconnected';",
                        "      const result = await this._performPointerAction(progress);",
                    ],
                )),
            ),
            tests.clone(),
        ],
    );
    let b = pr(
        21,
        "bob",
        "Retry click on detach",
        "A different approach.",
        vec![
            file(
                "src/server/frames.ts",
                FileStatus::Modified,
                Some(hunk(
                    90,
                    "async click(selector: string, options: ClickOptions) {",
                    &["    return handle.click(options);"],
                    &[
                        "    for (let attempt = 0; ; attempt++) {",
                        "      const handle = await this._resolveFresh(selector);",
                        "      const outcome = await handle.click(options).catch(e => e);",
                        "      if (!isDetachedError(outcome) || attempt > 3) return outcome;",
                        "    }",
                    ],
                )),
            ),
            tests,
        ],
    );
    let c = Corpus::new(&[a, b]);
    assert!(c.is_candidate(20, 21));
    let e = c.edge(20, 21);
    assert_eq!(
        e.category,
        Category::CompetingImplementation,
        "{:?} {:?}",
        e.scores,
        e.evidence.reasons
    );
    assert!(e.final_score >= c.cfg.review_threshold);
    assert!(
        e.evidence
            .shared_tests
            .iter()
            .any(|t| t.contains("detached")),
        "{:?}",
        e.evidence.shared_tests
    );
}

fn harness_lines(marker: bool) -> Vec<String> {
    let mut v = Vec::new();
    if marker {
        v.push("// Code generated by harness-gen. DO NOT EDIT.".to_string());
    }
    v.push("import { test, expect } from '@playwright/test';".to_string());
    let mut i = 0;
    while v.len() < 800 {
        v.push(format!("test('contract case {i:04}', async () => {{"));
        v.push(format!(
            "  expect(normalize(makeInput({i}))).toEqual(EXPECTED[{i}]);"
        ));
        v.push("});".to_string());
        v.push(String::new());
        i += 1;
    }
    v.truncate(800);
    v
}

/// A small unrelated production change in its own area.
fn unrelated_change(n: u64) -> FileChange {
    let area = [
        "network", "tracing", "video", "android", "electron", "clock", "keyboard", "storage",
    ];
    let a = area[(n as usize) % area.len()];
    file(
        &format!("src/server/{a}/{a}Manager{n}.ts"),
        FileStatus::Modified,
        Some(hunk(
            10 + n as u32,
            &format!("class {a}Manager{n} {{"),
            &[&format!("    this._{a}Limit = {n};")],
            &[
                &format!("    this._{a}Limit = {};", n * 7 + 3),
                &format!("    this._{a}Enabled{n} = options.{a}{n} ?? true;"),
            ],
        )),
    )
}

#[test]
fn unrelated_prs_sharing_a_test_harness_are_not_related() {
    // The harness is boilerplate: it rides along in many PRs of the corpus. Once without the
    // generated-file marker (rarity must do the work), once with it (meta by content).
    for marker in [false, true] {
        let harness = added_file(&harness_lines(marker));
        let prs: Vec<PrInput> = (0..16)
            .map(|n| {
                pr(
                    100 + n,
                    &format!("dev{n}"),
                    &format!("change {n}"),
                    "",
                    vec![
                        unrelated_change(n),
                        file(
                            "tests/generated/contract-harness.spec.ts",
                            FileStatus::Added,
                            Some(harness.clone()),
                        ),
                    ],
                )
            })
            .collect();
        let c = Corpus::new(&prs);
        for a in 100..116 {
            for b in (a + 1)..116 {
                let e = c.edge(a, b);
                assert_eq!(
                    e.category,
                    Category::NotRelated,
                    "marker {marker} #{a} #{b}: {:?}",
                    e.scores
                );
                assert!(e.final_score < c.cfg.related_threshold);
            }
        }
    }
}

#[test]
fn unrelated_prs_sharing_agent_notes_or_lockfile_churn_are_not_related() {
    let plan: Vec<String> = (0..420)
        .map(|i| format!("- [x] Step {i}: keep the diff small and run the suite"))
        .collect();
    let mut lock = String::from("@@ -118,5 +118,5 @@ {\n");
    for i in 0..40 {
        let _ = write!(
            lock,
            "     \"node_modules/dep{i}\": {{\n-      \"version\": \"1.0.{i}\",\n+      \"version\": \"1.0.{}\",\n       \"dev\": true,\n",
            i + 1
        );
    }
    // Two PRs only: no corpus rarity to lean on, the channel rules must keep these out.
    for (path, patch) in [
        (".cursor/plans/implementation-plan.md", added_file(&plan)),
        ("docs/plans/agent-plan.md", added_file(&plan)),
        ("package-lock.json", lock.clone()),
        ("web/pnpm-lock.yaml", lock.clone()),
    ] {
        let a = pr(
            200,
            "alice",
            "fix tracing",
            "",
            vec![
                unrelated_change(1),
                file(path, FileStatus::Added, Some(patch.clone())),
            ],
        );
        let b = pr(
            201,
            "bob",
            "fix video",
            "",
            vec![
                unrelated_change(2),
                file(path, FileStatus::Added, Some(patch)),
            ],
        );
        let c = Corpus::new(&[a, b]);
        let e = c.edge(200, 201);
        assert_eq!(e.category, Category::NotRelated, "{path}: {:?}", e.scores);
        assert!(
            e.evidence.shared_meta_paths.contains(&path.to_string()),
            "{path}: meta shown as explanation"
        );
    }
}

#[test]
fn revert_is_not_same_change_of_its_original() {
    let original = hunk(
        50,
        "async connect() {",
        &["    await browser.waitForTarget(t => t.type() === 'page');"],
        &[
            "    await connection.send('Target.enable');",
            "    this._firstPage = browser.waitForFirstPage();",
        ],
    );
    let revert = hunk(
        50,
        "async connect() {",
        &[
            "    await connection.send('Target.enable');",
            "    this._firstPage = browser.waitForFirstPage();",
        ],
        &["    await browser.waitForTarget(t => t.type() === 'page');"],
    );
    let a = pr(
        300,
        "alice",
        "feat: do not wait for first page",
        "",
        vec![file("src/browser.ts", FileStatus::Modified, Some(original))],
    );
    let b = pr(
        301,
        "bob",
        "Revert \"feat: do not wait for first page (#300)\"",
        "This reverts commit abc.",
        vec![file("src/browser.ts", FileStatus::Modified, Some(revert))],
    );
    let c = Corpus::new(&[a, b]);
    let e = c.edge(300, 301);
    assert_ne!(e.category, Category::SameChange);
    assert!(!e.category.is_suggestion(), "{:?}", e.scores);
    assert!(e.evidence.revert_like);
    assert!(e.evidence.direct_mention);
}

#[test]
fn fixture_resubmission_is_same_change() {
    let prs = load_fixture("resubmission.json");
    let c = Corpus::new(&prs);
    assert!(c.is_candidate(100008, 100026));
    let e = c.edge(100008, 100026);
    assert_eq!(e.category, Category::SameChange, "{:?}", e.scores);
    assert!(
        e.evidence.shared_hunk_lines > 0
            || e.evidence.reasons.iter().any(|r| r.contains("canonical"))
    );
}

#[test]
fn fixture_revert_and_reland() {
    let prs = load_fixture("revert_reland.json");
    let c = Corpus::new(&prs);
    // Original vs its revert, and revert vs reland: never SAME_CHANGE, never suggested.
    for (a, b) in [(100014, 100017), (100017, 100018)] {
        let e = c.edge(a, b);
        assert!(
            !e.category.is_suggestion(),
            "#{a} #{b}: {:?} {:?}",
            e.category,
            e.scores
        );
        assert!(e.evidence.revert_like, "#{a} #{b}");
    }
    // The reland re-applies the original.
    assert_eq!(c.edge(100014, 100018).category, Category::SameChange);
}

#[test]
fn fixture_competing_implementations() {
    let prs = load_fixture("competing.json");
    let c = Corpus::new(&prs);
    let e = c.edge(100062, 100064);
    assert_eq!(
        e.category,
        Category::CompetingImplementation,
        "{:?}",
        e.scores
    );
}

#[test]
fn hostile_inputs_are_handled_without_panic() {
    let cfg = TriageConfig::default();
    // Binary file: no patch, no counts.
    let binary = FileChange {
        path: "assets/logo.png".to_string(),
        previous_path: None,
        status: FileStatus::Modified,
        additions: 0,
        deletions: 0,
        patch: None,
        sha: None,
    };
    // A patch GitHub truncated: counts but no text.
    let truncated = FileChange {
        path: "src/huge.ts".to_string(),
        previous_path: None,
        status: FileStatus::Modified,
        additions: 12_000,
        deletions: 9_000,
        patch: None,
        sha: None,
    };
    // A 50,000-line generated file.
    let big: Vec<String> = (0..50_000)
        .map(|i| format!("export const TABLE_{i} = {};", i * 31 % 977))
        .collect();
    let generated = file(
        "src/generated/table.ts",
        FileStatus::Added,
        Some(added_file(&big)),
    );
    // Invalid UTF-8, lossy-decoded as the caller must do.
    let raw: Vec<u8> = b"@@ -1,2 +1,2 @@\n-let a = \"\xff\xfe\";\n+let a = \"\xc3\x28 ok\";\n garbage \xf0\x28\x8c\n".to_vec();
    let lossy = file(
        "src/enc.ts",
        FileStatus::Modified,
        Some(String::from_utf8_lossy(&raw).into_owned()),
    );
    // A long but parseable file: exercises the shingle budget.
    let long: Vec<String> = (0..20_000).map(|i| format!("v{i} = {};", i % 97)).collect();
    let long = file("src/long.py", FileStatus::Added, Some(added_file(&long)));
    // Not a diff at all, and an absurd hunk header.
    let junk = file(
        "src/junk.ts",
        FileStatus::Modified,
        Some("@@ -99999999999 +x @@\n\u{0}\u{7f}\n+\n".to_string()),
    );
    let input = pr(
        400,
        "mallory",
        "t\u{0}itle #",
        "body #99999999999999999999 fixes #",
        vec![binary, truncated, generated, lossy, long, junk],
    );
    let analysis = triage::analyse(&input, &cfg);
    let sig = &analysis.signature;
    let f = |p: &str| analysis.files.iter().find(|x| x.path == p).unwrap();
    assert!(f("assets/logo.png").binary);
    assert!(f("src/huge.ts").truncated);
    assert!(
        analysis
            .degraded
            .iter()
            .any(|d| d.contains("patch_missing: src/huge.ts")),
        "{:?}",
        analysis.degraded
    );
    assert!(
        analysis
            .degraded
            .iter()
            .any(|d| d.contains("invalid_utf8: src/enc.ts")),
        "{:?}",
        analysis.degraded
    );
    assert!(
        analysis
            .degraded
            .iter()
            .any(|d| d.contains("malformed_patch")),
        "{:?}",
        analysis.degraded
    );
    // The 50,000-line file (1.7 MB of patch) is over the per-file patch limit: kept by path and
    // counts, content skipped, and said so.
    assert!(f("src/generated/table.ts").truncated);
    assert!(
        analysis
            .degraded
            .iter()
            .any(|d| d == "patch_too_large: src/generated/table.ts"),
        "{:?}",
        analysis.degraded
    );
    assert!(
        sig.prod.change.added_lines >= 20_000,
        "the long file is parsed"
    );
    // The shingle budget bounds the work on the long file and says so.
    assert!(
        analysis
            .degraded
            .iter()
            .any(|d| d.starts_with("shingle_limit")),
        "{:?}",
        analysis.degraded
    );
    // Going over the per-file patch limit degrades instead of failing.
    let small_limits =
        TriageConfig::from_toml_str("[limits]\nmax_patch_bytes = 1000\nmax_files = 4").unwrap();
    let limited = triage::analyse(&input, &small_limits);
    assert!(
        limited.degraded.iter().any(|d| d.starts_with("file_limit")),
        "{:?}",
        limited.degraded
    );
    assert!(
        limited
            .degraded
            .iter()
            .any(|d| d.starts_with("patch_too_large")),
        "{:?}",
        limited.degraded
    );
    // The signature round-trips through JSON (stored as JSONB) and scores against itself and an
    // empty PR without panicking; empty vs anything is no evidence.
    let json = serde_json::to_string(sig).unwrap();
    let back: Signature = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, sig);
    let empty = triage::analyse(&pr(401, "eve", "", "", vec![]), &cfg).signature;
    let ctx = ScoreContext::empty();
    let e = triage::score(sig, &empty, &ctx, &cfg);
    assert_eq!(e.category, Category::NotRelated);
    let e = triage::score(&empty, &empty, &ctx, &cfg);
    assert_eq!(e.category, Category::NotRelated);
    assert_eq!(e.final_score, 0.0, "empty vs empty is no evidence");
    assert!(triage::index_keys(&empty, &cfg).len() <= 1);
}

#[test]
fn only_dependency_bots_are_kept_apart_and_same_author_is_flagged() {
    let cfg = TriageConfig::default();
    let a = pr(500, "dependabot[bot]", "bump x", "", page_change());
    let b = pr(501, "renovate", "bump x", "", page_change());
    let h1 = pr(502, "carol", "goto commit", "", page_change());
    let h2 = pr(503, "carol", "goto commit again", "", page_change());
    let agent = pr(
        504,
        "copilot-swe-agent[bot]",
        "Fix navigation",
        "",
        page_change(),
    );
    let c = Corpus::new(&[a, b, h1, h2, agent]);
    assert!(c.sigs[&500].is_bot && c.sigs[&501].is_bot && c.sigs[&504].is_bot);
    // Two dependency bots: left out, with the reason.
    let e = c.edge(500, 501);
    assert_eq!(e.category, Category::NotRelated);
    assert!(e.evidence.reasons.iter().any(|r| r.contains("bot")));
    // A dependency bot's bump still pairs with a person's identical change, and an agent's PR
    // is an ordinary PR: indexed, a candidate, scored.
    assert_eq!(c.edge(500, 502).category, Category::SameChange);
    assert!(!triage::index_keys(&c.sigs[&504], &cfg).is_empty());
    assert!(c.is_candidate(502, 504));
    let e = c.edge(502, 504);
    assert_eq!(e.category, Category::SameChange);
    assert!(e.evidence.bot);
    let e = c.edge(502, 503);
    assert_eq!(e.category, Category::SameChange);
    assert!(e.evidence.same_author);
    // `scope = "all"` restores leaving every bot PR out.
    let all = TriageConfig::from_toml_str("[bots]\nscope = \"all\"").unwrap();
    assert!(triage::index_keys(&c.sigs[&504], &all).is_empty());
    let ctx = ScoreContext::from_index(&c.index);
    let e = triage::score(&c.sigs[&502], &c.sigs[&504], &ctx, &all);
    assert_eq!(e.category, Category::NotRelated);
}

#[test]
fn repository_gitattributes_decide_vendored_and_generated_files() {
    let cfg = TriageConfig::default();
    // The repository says its `vendor` subcommand is vendored code (unusual, but its word), that
    // its root `vendor/` tree is its own code, and that `ops/gen/` is generated.
    let attrs = triage::Attributes::parse(
        "# linguist overrides\n\
         cli/tools/vendor/** linguist-vendored\n\
         vendor/** -linguist-vendored\n\
         ops/gen/*.rs linguist-generated=true\n",
    );
    let change = |path: &str| {
        file(
            path,
            FileStatus::Modified,
            Some(hunk(
                10,
                "fn run() {",
                &["    let out = build(&graph)?;"],
                &["    let out = build(&graph, &options)?;"],
            )),
        )
    };
    let input = pr(
        600,
        "dev",
        "t",
        "",
        vec![
            change("cli/tools/vendor/build.rs"),
            change("vendor/acme/lib.rs"),
            change("ops/gen/ops.rs"),
            change("cli/main.rs"),
        ],
    );
    let with = triage::analyse_with(&input, &cfg, &attrs);
    let without = triage::analyse(&input, &cfg);
    let ch = |a: &triage::Analysis, p: &str| a.files.iter().find(|f| f.path == p).unwrap().channel;
    use clawtriage::triage::Channel;
    assert_eq!(
        ch(&without, "cli/tools/vendor/build.rs"),
        Channel::Production
    );
    assert_eq!(ch(&with, "cli/tools/vendor/build.rs"), Channel::Meta);
    assert_eq!(ch(&without, "vendor/acme/lib.rs"), Channel::Meta);
    assert_eq!(ch(&with, "vendor/acme/lib.rs"), Channel::Production);
    assert_eq!(ch(&without, "ops/gen/ops.rs"), Channel::Production);
    assert_eq!(ch(&with, "ops/gen/ops.rs"), Channel::Meta);
    assert_eq!(ch(&with, "cli/main.rs"), Channel::Production);
    assert!(triage::Attributes::none().is_empty());
}
