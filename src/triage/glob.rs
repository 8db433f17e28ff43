//! Minimal path patterns for channel rules (no dependency on a glob crate).
//!
//! Syntax: `*` matches any run of characters except `/`, `?` one character except `/`, `**` any
//! number of whole directories. A pattern ending in `/` matches a directory with that name (itself
//! a pattern) anywhere in the path; a pattern without `/` matches the file name; any other pattern
//! matches the whole path. Matching is case-sensitive, like Git on Linux.

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPattern {
    /// Matches any directory component (not the file name).
    Dir(String),
    /// Matches the file name.
    Name(String),
    /// Matches the whole path, `/`-separated segments, `**` allowed.
    Full(Vec<String>),
}

impl PathPattern {
    /// Compiles a pattern string.
    pub fn new(p: &str) -> Self {
        if let Some(d) = p.strip_suffix('/') {
            if !d.contains('/') {
                return PathPattern::Dir(d.to_string());
            }
            let mut segs: Vec<String> = d.split('/').map(str::to_string).collect();
            segs.push("**".to_string());
            if segs[0] != "**" {
                // Anchored directory path such as `docs/plans/`: match it anywhere.
                segs.insert(0, "**".to_string());
            }
            return PathPattern::Full(segs);
        }
        if !p.contains('/') {
            return PathPattern::Name(p.to_string());
        }
        PathPattern::Full(p.split('/').map(str::to_string).collect())
    }

    /// True when `path` (a repository-relative `/`-separated path) matches.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathPattern::Dir(d) => {
                let mut segs: Vec<&str> = path.split('/').collect();
                segs.pop();
                segs.iter().any(|s| seg_match(d.as_bytes(), s.as_bytes()))
            }
            PathPattern::Name(n) => {
                let name = path.rsplit('/').next().unwrap_or(path);
                seg_match(n.as_bytes(), name.as_bytes())
            }
            PathPattern::Full(pat) => {
                let segs: Vec<&str> = path.split('/').collect();
                full_match(pat, &segs)
            }
        }
    }
}

fn full_match(pat: &[String], segs: &[&str]) -> bool {
    match pat.first() {
        None => segs.is_empty(),
        Some(p) if p == "**" => (0..=segs.len()).any(|i| full_match(&pat[1..], &segs[i..])),
        Some(p) => {
            !segs.is_empty()
                && seg_match(p.as_bytes(), segs[0].as_bytes())
                && full_match(&pat[1..], &segs[1..])
        }
    }
}

/// Wildcard match of one segment (`*`, `?`), iterative with single backtrack point.
fn seg_match(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, path: &str) -> bool {
        PathPattern::new(p).matches(path)
    }

    #[test]
    fn names_dirs_and_full_paths() {
        assert!(m("*.test.*", "src/a/foo.test.ts"));
        assert!(!m("*.test.*", "src/a/footest.ts"));
        assert!(m("test_*.py", "pkg/test_io.py"));
        assert!(m("tests/", "a/tests/b.rs"));
        assert!(!m("tests/", "a/tests"));
        assert!(m("docs/plans/", "docs/plans/x.md"));
        assert!(m("docs/plans/", "site/docs/plans/a/b.md"));
        assert!(!m("docs/plans/", "docs/planner.md"));
        assert!(m("src/**/*.ts", "src/a/b/c.ts"));
        assert!(m("src/**/*.ts", "src/c.ts"));
        assert!(!m("src/**/*.ts", "lib/c.ts"));
        assert!(m(".cursor/", ".cursor/plans/p.md"));
        assert!(m("*Test.java", "src/test/java/FooTest.java"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "abbc"));
        assert!(m("*", ""));
    }
}
