//! Channels: every changed file goes to exactly one of production, tests, docs or meta.
//!
//! Path rules come from the configuration (meta first, then tests, then docs, otherwise
//! production). Content refines the result: a production source file whose changed lines call a
//! test framework is tests, and a file that announces itself as generated is meta.

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
    tests: Vec<PathPattern>,
    docs: Vec<PathPattern>,
    refine: bool,
    generated_markers: Vec<String>,
}

impl Classifier {
    /// Compiles the rules of `cfg`.
    pub fn new(cfg: &TriageConfig) -> Self {
        let c = |v: &[String]| v.iter().map(|p| PathPattern::new(p)).collect();
        Classifier {
            meta: c(&cfg.channels.meta),
            tests: c(&cfg.channels.tests),
            docs: c(&cfg.channels.docs),
            refine: cfg.channels.refine_by_content,
            generated_markers: cfg.channels.generated_markers.clone(),
        }
    }

    /// Channel of a path from the path rules alone.
    pub fn by_path(&self, path: &str) -> Channel {
        if self.meta.iter().any(|p| p.matches(path)) {
            Channel::Meta
        } else if self.tests.iter().any(|p| p.matches(path)) {
            Channel::Tests
        } else if self.docs.iter().any(|p| p.matches(path)) {
            Channel::Docs
        } else {
            Channel::Production
        }
    }

    /// Channel of a file from its path and, when available, its parsed hunks.
    pub fn classify(&self, path: &str, hunks: &[Hunk<'_>]) -> Channel {
        let by_path = self.by_path(path);
        if by_path == Channel::Meta {
            return by_path;
        }
        if self.is_generated(hunks) {
            return Channel::Meta;
        }
        if by_path == Channel::Production && self.refine && calls_test_framework(path, hunks) {
            return Channel::Tests;
        }
        by_path
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
        "md" | "mdx" | "rst" | "adoc" => Lang::Markup,
        _ => Lang::Other,
    }
}

const JS_TEST_CALLS: &[&str] = &[
    "describe(",
    "describe.",
    "it(",
    "it.",
    "test(",
    "test.describe",
    "test.skip(",
    "test.only(",
    "test.fixme(",
    "test.each",
    "beforeEach(",
    "afterEach(",
];
const JS_TEST_MODULES: &[&str] = &[
    "'vitest'",
    "\"vitest\"",
    "'@jest/globals'",
    "\"@jest/globals\"",
    "'@playwright/test'",
    "\"@playwright/test\"",
    "'mocha'",
    "\"mocha\"",
    "'chai'",
    "\"chai\"",
    "'node:test'",
    "\"node:test\"",
    "'@testing-library/",
    "\"@testing-library/",
];

/// True when changed lines of a JS/TS, Python or Go file use a test framework.
fn calls_test_framework(path: &str, hunks: &[Hunk<'_>]) -> bool {
    let lang = lang_of(path);
    let lines = hunks
        .iter()
        .flat_map(|h| h.lines.iter())
        .filter(|(k, _)| *k != LineKind::Removed);
    match lang {
        Lang::Js => lines.map(|(_, l)| l.trim_start()).any(|l| {
            JS_TEST_CALLS.iter().any(|c| l.starts_with(c))
                || ((l.starts_with("import ") || l.contains("require("))
                    && JS_TEST_MODULES.iter().any(|m| l.contains(m)))
        }),
        Lang::Python => lines.map(|(_, l)| l.trim_start()).any(|l| {
            l.starts_with("import pytest")
                || l.starts_with("import unittest")
                || l.starts_with("from unittest")
                || l.starts_with("from pytest")
        }),
        Lang::Go => lines
            .map(|(_, l)| l.trim())
            .any(|l| l == "\"testing\"" || l == "import \"testing\""),
        _ => false,
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
    }

    #[test]
    fn content_refinement() {
        let c = Classifier::new(&TriageConfig::default());
        let p = parse_patch(
            "@@ -0,0 +1,3 @@\n+import { test } from '@playwright/test';\n+test('x', () => {});\n",
            10,
        );
        assert_eq!(c.classify("src/check.ts", &p.hunks), Channel::Tests);
        let p = parse_patch(
            "@@ -1,2 +1,2 @@\n-if (re.test(s)) {\n+if (re.test(t)) {\n",
            10,
        );
        assert_eq!(c.classify("src/check.ts", &p.hunks), Channel::Production);
        let p = parse_patch(
            "@@ -0,0 +1,2 @@\n+// Code generated by gen v1. DO NOT EDIT.\n+package x\n",
            10,
        );
        assert_eq!(c.classify("pkg/x/types.go", &p.hunks), Channel::Meta);
        let p = parse_patch("@@ -0,0 +1,2 @@\n+package x\n+import \"testing\"\n", 10);
        assert_eq!(c.classify("pkg/x/helpers.go", &p.hunks), Channel::Tests);
    }
}
