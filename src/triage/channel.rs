//! Channels: every changed file goes to exactly one of production, tests, docs or meta.
//!
//! Path rules come from the configuration (meta first, then tests, then docs, otherwise
//! production). Content refines the result: a production source file whose changed lines call a
//! test framework is tests, and a file that announces itself as generated is meta.

use crate::triage::attributes::PathAttributes;
use crate::triage::config::TriageConfig;
use crate::triage::diff::{Hunk, LineKind};
use crate::triage::glob::PathPattern;
use serde::{Deserialize, Serialize};

/// The channel of a changed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// Product code: what the PR really changes. Carries most of the score.
    Production,
    /// Tests, fixtures, snapshots. Can raise a score up to a cap.
    Tests,
    /// Documentation. Can raise a score up to a cap.
    Docs,
    /// Agent notes, lockfiles, generated and vendored files. Never scored.
    Meta,
}

impl Channel {
    /// Lowercase name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Production => "production",
            Channel::Tests => "tests",
            Channel::Docs => "docs",
            Channel::Meta => "meta",
        }
    }
}

/// Compiled path rules.
#[derive(Debug, Clone)]
pub struct Classifier {
    meta: Vec<PathPattern>,
    generated: Vec<PathPattern>,
    vendored_dirs: Vec<String>,
    vendored_anywhere: Vec<String>,
    source_dirs: Vec<String>,
    tests: Vec<PathPattern>,
    docs: Vec<PathPattern>,
    refine: bool,
    generated_markers: Vec<String>,
}

impl Classifier {
    /// Compiles the rules of `cfg`.
    pub fn new(cfg: &TriageConfig) -> Self {
        let c = |v: &[String]| v.iter().map(|p| PathPattern::new(p)).collect();
        let ch = &cfg.channels;
        Classifier {
            meta: c(&ch.meta),
            generated: c(&ch.generated),
            vendored_dirs: ch.vendored_dirs.clone(),
            vendored_anywhere: ch.vendored_anywhere.clone(),
            source_dirs: ch.source_dirs.clone(),
            tests: c(&ch.tests),
            docs: c(&ch.docs),
            refine: ch.refine_by_content,
            generated_markers: ch.generated_markers.clone(),
        }
    }

    /// Channel of a path from the path rules alone.
    pub fn by_path(&self, path: &str) -> Channel {
        self.classify(path, &[], PathAttributes::default())
    }

    /// Channel of a file from the repository's attributes for it, its path and, when available,
    /// its parsed hunks.
    pub fn classify(&self, path: &str, hunks: &[Hunk<'_>], attrs: PathAttributes) -> Channel {
        if attrs.vendored == Some(true) || attrs.generated == Some(true) {
            return Channel::Meta;
        }
        if self.meta.iter().any(|p| p.matches(path)) {
            return Channel::Meta;
        }
        if attrs.generated != Some(false)
            && (self.generated.iter().any(|p| p.matches(path)) || self.is_generated(hunks))
        {
            return Channel::Meta;
        }
        if attrs.vendored != Some(false) && self.is_vendored(path) {
            return Channel::Meta;
        }
        if attrs.documentation == Some(true) {
            return Channel::Docs;
        }
        if self.tests.iter().any(|p| p.matches(path)) {
            return Channel::Tests;
        }
        if attrs.documentation != Some(false) && self.docs.iter().any(|p| p.matches(path)) {
            return Channel::Docs;
        }
        if self.refine && defines_tests(path, hunks) {
            return Channel::Tests;
        }
        Channel::Production
    }

    /// True when `path` lies in a vendored tree (see `channels.vendored_dirs`).
    fn is_vendored(&self, path: &str) -> bool {
        let segs: Vec<&str> = path.split('/').collect();
        let dirs = &segs[..segs.len().saturating_sub(1)];
        for (i, d) in dirs.iter().enumerate() {
            if self.vendored_anywhere.iter().any(|v| v == d) {
                return true;
            }
            if !self.vendored_dirs.iter().any(|v| v == d) {
                continue;
            }
            let below = &segs[i + 1..];
            // `vendor/github.com/x/y.go`, `vendor/modules.txt`: a package tree, wherever it is.
            let package_tree =
                (below.len() >= 2 && below[0].contains('.') && !below[0].starts_with('.'))
                    || below == ["modules.txt"];
            let in_source = dirs[..i]
                .iter()
                .any(|s| self.source_dirs.iter().any(|x| x == s));
            if package_tree || !in_source {
                return true;
            }
        }
        false
    }

    /// True when the first lines of the file (visible only when a hunk starts at line 1) carry a
    /// generated-file marker.
    fn is_generated(&self, hunks: &[Hunk<'_>]) -> bool {
        let Some(first) = hunks.first() else {
            return false;
        };
        if first.new_start > 1 {
            return false;
        }
        first
            .lines
            .iter()
            .filter(|(k, _)| *k != LineKind::Removed)
            .take(5)
            .any(|(_, l)| {
                self.generated_markers
                    .iter()
                    .any(|m| l.contains(m.as_str()))
            })
    }
}

/// Language of a path by extension, for content rules and symbol extraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// JavaScript / TypeScript.
    Js,
    /// Python.
    Python,
    /// Go.
    Go,
    /// Rust.
    Rust,
    /// Java / Kotlin.
    Java,
    /// Ruby.
    Ruby,
    /// C / C++ / Objective-C.
    C,
    /// C#.
    CSharp,
    /// Swift.
    Swift,
    /// PHP.
    Php,
    /// Markdown / reStructuredText.
    Markup,
    /// Anything else.
    Other,
}

/// Language of `path`.
pub fn lang_of(path: &str) -> Lang {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext {
        "js" | "jsx" | "ts" | "tsx" | "mjs" | "cjs" | "mts" | "cts" | "vue" | "svelte" => Lang::Js,
        "py" | "pyi" => Lang::Python,
        "go" => Lang::Go,
        "rs" => Lang::Rust,
        "java" | "kt" | "kts" | "scala" => Lang::Java,
        "rb" => Lang::Ruby,
        "c" | "cc" | "cpp" | "cxx" | "h" | "hh" | "hpp" | "hxx" | "m" | "mm" => Lang::C,
        "cs" => Lang::CSharp,
        "swift" => Lang::Swift,
        "php" => Lang::Php,
        "md" | "mdx" | "rst" | "adoc" => Lang::Markup,
        _ => Lang::Other,
    }
}

const JS_TEST_CALLS: &[&str] = &[
    "describe(",
    "describe.only(",
    "describe.skip(",
    "describe.each",
    "it(",
    "it.only(",
    "it.skip(",
    "it.each",
    "it.todo(",
    "test(",
    "test.describe",
    "test.skip(",
    "test.only(",
    "test.fixme(",
    "test.each",
    "beforeEach(",
    "afterEach(",
    "Deno.test(",
    "Deno.test.",
];
/// JS test frameworks, matched as the whole module name (a version after `@` allowed):
/// `@playwright/test/lib/x` is the framework's own code, not a test.
const JS_TEST_MODULES: &[&str] = &[
    "vitest",
    "@jest/globals",
    "@playwright/test",
    "mocha",
    "chai",
    "node:test",
    "bun:test",
    "ava",
    "uvu",
];
/// JS test helpers matched anywhere in the module name (Deno's standard assertions and testing
/// modules in their jsr, npm and URL forms, Testing Library).
const JS_TEST_MODULE_PARTS: &[&str] = &[
    "@testing-library/",
    "@std/assert",
    "@std/testing",
    "/std/assert/",
    "/std/testing/",
    "/testing/asserts.ts",
];
const RUST_TEST_ATTRS: &[&str] = &[
    "#[test]",
    "#[cfg(test)]",
    "#[tokio::test",
    "#[async_std::test",
    "#[rstest",
    "#[test_case",
    "#[wasm_bindgen_test",
    "#[bench]",
    "proptest!",
];

/// The module named by a JS import or require line, without its quotes (type-only imports
/// excluded: a reporter importing the framework's types is not a test).
fn js_module(l: &str) -> Option<&str> {
    if l.starts_with("import type ") || l.starts_with("export type ") {
        return None;
    }
    if !(l.starts_with("import ") || l.contains("require(") || l.starts_with("export ")) {
        return None;
    }
    let q = l.rfind(['\'', '"'])?;
    let open = l[..q].rfind(['\'', '"'])?;
    Some(&l[open + 1..q])
}

/// True when `m` names a known JS test module (see `JS_TEST_MODULES`).
fn is_js_test_module(m: &str) -> bool {
    let bare = m
        .strip_prefix("jsr:")
        .or_else(|| m.strip_prefix("npm:"))
        .unwrap_or(m);
    let unversioned = match bare.rfind('@') {
        Some(i) if i > 0 => &bare[..i],
        _ => bare,
    };
    JS_TEST_MODULES.contains(&unversioned)
        || JS_TEST_MODULE_PARTS.iter().any(|t| m.contains(t))
        || (m.contains("deno.land/std") && (m.contains("/assert") || m.contains("/testing/")))
}

/// True when the changed lines of `hunks` define tests with the test API of `path`'s language
/// (see `channels.refine_by_content`).
fn defines_tests(path: &str, hunks: &[Hunk<'_>]) -> bool {
    let lang = lang_of(path);
    let added = || {
        hunks
            .iter()
            .flat_map(|h| h.lines.iter())
            .filter(|(k, _)| *k == LineKind::Added)
            .map(|(_, l)| l.trim())
    };
    match lang {
        Lang::Js => added().any(|l| {
            JS_TEST_CALLS.iter().any(|c| l.starts_with(c))
                || js_module(l).is_some_and(is_js_test_module)
        }),
        Lang::Python => {
            let imports = added().any(|l| {
                l.starts_with("import pytest")
                    || l.starts_with("import unittest")
                    || l.starts_with("from unittest")
                    || l.starts_with("from pytest")
            });
            let defines = added().any(|l| {
                l.strip_prefix("async ")
                    .unwrap_or(l)
                    .starts_with("def test_")
            });
            let asserts = added().any(|l| l.starts_with("assert ") || l.starts_with("self.assert"));
            imports || (defines && asserts)
        }
        Lang::Go => added().any(|l| {
            l == "\"testing\""
                || l == "import \"testing\""
                || (l.starts_with("func ")
                    && ["*testing.T)", "*testing.B)", "*testing.F)"]
                        .iter()
                        .any(|t| l.contains(t)))
        }),
        Lang::Rust => {
            // Unit tests live beside the code: the file is tests only when every hunk is test
            // code (under `mod tests`, or adding test functions), never when it also changes the
            // program.
            !hunks.is_empty()
                && hunks.iter().all(|h| {
                    h.header.starts_with("mod test")
                        || h.header.contains("#[cfg(test)]")
                        || h.lines
                            .iter()
                            .filter(|(k, _)| *k != LineKind::Removed)
                            .any(|(_, l)| {
                                let l = l.trim();
                                RUST_TEST_ATTRS.iter().any(|a| l.starts_with(a))
                            })
                })
        }
        Lang::Java => added().any(|l| {
            l.starts_with("@Test")
                || l.starts_with("@ParameterizedTest")
                || l.starts_with("import org.junit")
                || l.starts_with("import kotlin.test")
                || l.starts_with("import static org.junit")
        }),
        Lang::Ruby => added().any(|l| {
            l.starts_with("RSpec.describe")
                || ((l.starts_with("describe ")
                    || l.starts_with("it ")
                    || l.starts_with("context "))
                    && l.ends_with(" do"))
                || l.contains("Minitest::Test")
                || l.starts_with("require \"minitest")
                || l.starts_with("require 'minitest")
        }),
        Lang::C => added().any(|l| {
            [
                "TEST(",
                "TEST_F(",
                "TEST_P(",
                "TYPED_TEST(",
                "TEST_CASE(",
                "BOOST_AUTO_TEST_CASE(",
            ]
            .iter()
            .any(|t| l.starts_with(t))
                || l.contains("gtest/gtest.h")
                || l.contains("catch2/")
        }),
        Lang::CSharp => added().any(|l| {
            ["[Fact", "[Theory", "[Test]", "[TestMethod", "[TestCase("]
                .iter()
                .any(|t| l.starts_with(t))
        }),
        Lang::Swift => added().any(|l| l == "import XCTest" || l == "import Testing"),
        Lang::Php => added().any(|l| l.contains("extends TestCase") || l.contains("PHPUnit\\")),
        Lang::Markup | Lang::Other => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triage::diff::parse_patch;

    fn ch(path: &str) -> Channel {
        Classifier::new(&TriageConfig::default()).by_path(path)
    }

    #[test]
    fn real_code_is_not_meta() {
        for p in [
            "src/logger.ts",
            "src/ui/Dialog.tsx",
            "src/planner.ts",
            "src/agent/run.ts",
            "agent/loop.py",
            "pkg/agent/plans.go",
            "src/prompts/system.ts",
            "CMakeLists.txt",
            "requirements.txt",
        ] {
            assert_eq!(ch(p), Channel::Production, "{p}");
        }
    }

    #[test]
    fn test_files_in_many_languages() {
        for p in [
            "src/__tests__/a.ts",
            "test/page.spec.js",
            "tests/page/page-goto.spec.ts",
            "src/foo.test.tsx",
            "pkg/http/server_test.go",
            "app/test_views.py",
            "app/views_test.py",
            "tests/integration.rs",
            "src/test/java/org/x/FooTest.java",
            "spec/models/user_spec.rb",
            "test/assets/input/button.html",
            "src/__snapshots__/a.snap",
            "lib/fixtures/data.json",
            "conftest.py",
            "std/fs/copy_test.ts",
            "ext/web/timers_test.js",
            "src/parser_test.mjs",
            "cli/lsp/diagnostics_tests.rs",
            "base/strings/string_util_unittest.cc",
            "app/src/test/kotlin/FooTest.kt",
            "Tests/App.Tests/ParserTests.cs",
        ] {
            assert_eq!(ch(p), Channel::Tests, "{p}");
        }
    }

    #[test]
    fn docs_and_meta() {
        assert_eq!(ch("docs/src/api/class-page.md"), Channel::Docs);
        assert_eq!(ch("README.md"), Channel::Docs);
        assert_eq!(ch("guide/intro.rst"), Channel::Docs);
        assert_eq!(ch(".cursor/plans/implementation-plan.md"), Channel::Meta);
        assert_eq!(ch("docs/plans/agent-plan.md"), Channel::Meta);
        assert_eq!(ch("package-lock.json"), Channel::Meta);
        assert_eq!(ch("web/yarn.lock"), Channel::Meta);
        assert_eq!(ch("go.sum"), Channel::Meta);
        assert_eq!(ch("CLAUDE.md"), Channel::Meta);
        assert_eq!(ch("vendor/github.com/x/y.go"), Channel::Meta);
        assert_eq!(ch("deno.lock"), Channel::Meta);
    }

    #[test]
    fn vendored_trees_are_anchored_where_ecosystems_put_them() {
        for p in [
            "vendor/github.com/spf13/cobra/command.go",
            "vendor/modules.txt",
            "third_party/zlib/inflate.c",
            "packages/web/vendor/jquery.js",
            "services/api/vendor/golang.org/x/net/http2/frame.go",
            "src/cmd/vendor/golang.org/x/tools/go/analysis/analysis.go",
            "web/node_modules/left-pad/index.js",
            "src/app/node_modules/x/index.js",
            "dist/app.min.js",
            "api/v1/service.pb.go",
        ] {
            assert_eq!(ch(p), Channel::Meta, "{p}");
        }
        // A CLI's `vendor` subcommand, a Go command package, a Rust module: real code.
        for p in [
            "cli/tools/vendor/mod.rs",
            "cli/tools/vendor/build.rs",
            "cli/tools/vendor/import_map.rs",
            "internal/cmd/vendor/vendor.go",
            "cmd/vendor/run.go",
            "src/vendor/mod.rs",
            "src/third_party_licenses.rs",
            "lib/third_party/registry.ts",
        ] {
            assert_eq!(ch(p), Channel::Production, "{p}");
        }
    }

    #[test]
    fn repository_attributes_come_first() {
        let c = Classifier::new(&TriageConfig::default());
        let attrs = crate::triage::attributes::Attributes::parse(
            "cli/tools/vendor/** linguist-vendored\nvendor/** -linguist-vendored\n\
             src/gen/** linguist-generated\n*.pb.go -linguist-generated\n\
             guide/** linguist-documentation\nREADME.md -linguist-documentation\n",
        );
        let cl = |p: &str| c.classify(p, &[], attrs.lookup(p));
        assert_eq!(cl("cli/tools/vendor/mod.rs"), Channel::Meta);
        assert_eq!(cl("vendor/github.com/x/y.go"), Channel::Production);
        assert_eq!(cl("src/gen/api.ts"), Channel::Meta);
        assert_eq!(cl("api/v1/service.pb.go"), Channel::Production);
        assert_eq!(cl("guide/start.txt"), Channel::Docs);
        assert_eq!(cl("README.md"), Channel::Production);
        assert_eq!(cl("package-lock.json"), Channel::Meta);
    }

    #[test]
    fn tests_by_content_in_every_language() {
        let c = Classifier::new(&TriageConfig::default());
        let none = PathAttributes::default();
        let t = |path: &str, added: &[&str]| {
            let mut p = format!("@@ -0,0 +1,{} @@\n", added.len());
            for l in added {
                p.push('+');
                p.push_str(l);
                p.push('\n');
            }
            let parsed = parse_patch(&p, 10);
            c.classify(path, &parsed.hunks, none)
        };
        for (path, lines) in [
            (
                "cli/js/timers.ts",
                &["Deno.test(\"timers fire\", async () => {"][..],
            ),
            (
                "src/util.ts",
                &["import { assertEquals } from \"jsr:@std/assert\";"][..],
            ),
            (
                "src/util.ts",
                &["import { assertEquals } from \"@std/assert\";"][..],
            ),
            ("pkg/io/helpers.go", &["func TestCopy(t *testing.T) {"][..]),
            (
                "app/checks.py",
                &["def test_parse():", "    assert parse('1') == 1"][..],
            ),
            ("src/Main.java", &["    @Test", "    void parses() {"][..]),
            ("lib/parser.rb", &["RSpec.describe Parser do"][..]),
            ("base/strings.cc", &["TEST(StringsTest, Split) {"][..]),
            (
                "src/Parser.cs",
                &["    [Fact]", "    public void Parses() {"][..],
            ),
            ("Sources/App/Checks.swift", &["import XCTest"][..]),
        ] {
            assert_eq!(t(path, lines), Channel::Tests, "{path}");
        }
        for (path, lines) in [
            (
                "src/client.py",
                &["def test_connection(self):", "    return self.ping()"][..],
            ),
            ("src/check.ts", &["if (re.test(s)) {"][..]),
            (
                "src/assert.ts",
                &["import { format } from \"./assertion_error.ts\";"][..],
            ),
            (
                "pkg/io/copy.go",
                &["func Copy(dst Writer, src Reader) error {"][..],
            ),
        ] {
            assert_eq!(t(path, lines), Channel::Production, "{path}");
        }
        // Rust: tests only when every hunk is test code.
        let only_tests = parse_patch(
            "@@ -40,3 +40,8 @@ mod tests {\n+    #[test]\n+    fn splits() {\n+        assert_eq!(split(\"a b\"), [\"a\", \"b\"]);\n+    }\n",
            10,
        );
        assert_eq!(
            c.classify("src/split.rs", &only_tests.hunks, none),
            Channel::Tests
        );
        let mixed = parse_patch(
            "@@ -3,3 +3,3 @@ pub fn split(s: &str) -> Vec<&str> {\n-    s.split(' ').collect()\n+    s.split_whitespace().collect()\n@@ -40,3 +40,5 @@ mod tests {\n+    #[test]\n+    fn splits() {}\n",
            10,
        );
        assert_eq!(
            c.classify("src/split.rs", &mixed.hunks, none),
            Channel::Production
        );
    }

    #[test]
    fn content_refinement() {
        let c = Classifier::new(&TriageConfig::default());
        let none = PathAttributes::default();
        let p = parse_patch(
            "@@ -0,0 +1,3 @@\n+import { test } from '@playwright/test';\n+test('x', () => {});\n",
            10,
        );
        assert_eq!(c.classify("src/check.ts", &p.hunks, none), Channel::Tests);
        let p = parse_patch(
            "@@ -1,2 +1,2 @@\n-if (re.test(s)) {\n+if (re.test(t)) {\n",
            10,
        );
        assert_eq!(
            c.classify("src/check.ts", &p.hunks, none),
            Channel::Production
        );
        let p = parse_patch(
            "@@ -0,0 +1,2 @@\n+// Code generated by gen v1. DO NOT EDIT.\n+package x\n",
            10,
        );
        assert_eq!(c.classify("pkg/x/types.go", &p.hunks, none), Channel::Meta);
        let p = parse_patch("@@ -0,0 +1,2 @@\n+package x\n+import \"testing\"\n", 10);
        assert_eq!(
            c.classify("pkg/x/helpers.go", &p.hunks, none),
            Channel::Tests
        );
    }
}
