//! A repository's own word on which files are vendored, generated or documentation: the
//! `linguist-vendored`, `linguist-generated` and `linguist-documentation` attributes of its
//! `.gitattributes`, the convention GitHub's language statistics use.
//!
//! [`Attributes::parse`] reads the text of a root `.gitattributes` (pure: the caller fetches it),
//! and [`crate::triage::analyse_with`] takes the parsed rules. A path marked vendored or generated
//! goes to the meta channel, one marked documentation to docs; an attribute explicitly unset
//! (`-linguist-vendored`, `linguist-vendored=false`) overrides the built-in rule of that kind, so a
//! repository can say that its `vendor/` directory is real code.
//!
//! Patterns follow gitattributes(5): a pattern without a `/` matches the file name at any depth;
//! one with a leading or inner `/` is anchored at the repository root; `*` and `?` stay inside a
//! path segment, `**` spans segments; a pattern ending in `/` matches directories only, which
//! never match a file (as in Git); negative patterns are not allowed and are skipped. Among the
//! lines matching a path, the last one that mentions an attribute decides it (`!attr` returns it
//! to the built-in rules). Matching uses `globset`.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// Largest `.gitattributes` text read (bytes); the rest is ignored and said so.
pub const MAX_ATTRIBUTES_BYTES: usize = 256 * 1024;
/// Most rules kept (lines mentioning a linguist attribute); later ones are ignored and said so.
pub const MAX_ATTRIBUTE_RULES: usize = 2000;
/// Longest pattern kept (bytes).
const MAX_PATTERN_BYTES: usize = 1024;

/// The value one line gives an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `attr`, `attr=true` or any value but `false`: set.
    Set,
    /// `-attr` or `attr=false`: explicitly not.
    Unset,
    /// `!attr`: back to the built-in rules.
    Unspecified,
}

/// One attribute line, reduced to the three attributes the engine reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Rule {
    vendored: Option<State>,
    generated: Option<State>,
    documentation: Option<State>,
}

/// What the repository says about one path; `None` = nothing (the built-in rules decide).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathAttributes {
    /// `linguist-vendored`.
    pub vendored: Option<bool>,
    /// `linguist-generated`.
    pub generated: Option<bool>,
    /// `linguist-documentation`.
    pub documentation: Option<bool>,
}

/// Parsed linguist rules of a `.gitattributes` file.
#[derive(Debug, Clone)]
pub struct Attributes {
    set: GlobSet,
    rules: Vec<Rule>,
    warnings: Vec<String>,
}

impl Default for Attributes {
    fn default() -> Self {
        Attributes {
            set: GlobSet::empty(),
            rules: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

impl Attributes {
    /// No rules: the built-in path rules alone decide.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses the text of a root `.gitattributes`. Never fails: lines it cannot use (bad
    /// patterns, negative patterns, macro definitions) are skipped, and going over a bound keeps
    /// what came before it; [`Attributes::warnings`] says what was skipped.
    pub fn parse(text: &str) -> Self {
        let mut warnings = Vec::new();
        let text = if text.len() > MAX_ATTRIBUTES_BYTES {
            warnings.push(format!(
                "attributes_too_large: first {MAX_ATTRIBUTES_BYTES} bytes read"
            ));
            crate::triage::tokens::clip(text, MAX_ATTRIBUTES_BYTES)
        } else {
            text
        };
        let mut builder = GlobSetBuilder::new();
        let mut rules = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with("[attr]") {
                continue;
            }
            let Some((pattern, rest)) = split_pattern(line) else {
                warnings.push(format!("line {}: unterminated quoted pattern", i + 1));
                continue;
            };
            let rule = parse_attrs(rest);
            if rule == Rule::default() {
                continue; // no linguist attribute on this line
            }
            if pattern.starts_with('!') {
                warnings.push(format!("line {}: negative patterns are not allowed", i + 1));
                continue;
            }
            if rules.len() >= MAX_ATTRIBUTE_RULES {
                warnings.push(format!(
                    "attribute_rule_limit: first {MAX_ATTRIBUTE_RULES} rules kept"
                ));
                break;
            }
            let Some(glob) = to_glob(&pattern) else {
                // Directory-only pattern (`dir/`): matches no file, as in Git.
                continue;
            };
            match GlobBuilder::new(&glob)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
            {
                Ok(g) => {
                    builder.add(g);
                    rules.push(rule);
                }
                Err(e) => warnings.push(format!("line {}: {e}", i + 1)),
            }
        }
        let set = match builder.build() {
            Ok(s) => s,
            Err(e) => {
                warnings.push(format!("attributes unusable: {e}"));
                rules.clear();
                GlobSet::empty()
            }
        };
        Attributes {
            set,
            rules,
            warnings,
        }
    }

    /// True when no rule was kept.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Number of rules kept.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// What was skipped while parsing, for logs.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The attributes the repository gives `path` (repository-relative, `/`-separated).
    pub fn lookup(&self, path: &str) -> PathAttributes {
        if self.rules.is_empty() {
            return PathAttributes::default();
        }
        let matched = self.set.matches(path);
        let decide = |get: fn(&Rule) -> Option<State>| -> Option<bool> {
            // Last line mentioning the attribute wins.
            matched
                .iter()
                .rev()
                .find_map(|&i| get(&self.rules[i]))
                .and_then(|s| match s {
                    State::Set => Some(true),
                    State::Unset => Some(false),
                    State::Unspecified => None,
                })
        };
        PathAttributes {
            vendored: decide(|r| r.vendored),
            generated: decide(|r| r.generated),
            documentation: decide(|r| r.documentation),
        }
    }
}

/// Splits a line into its pattern (unquoted) and the attribute list.
fn split_pattern(line: &str) -> Option<(String, &str)> {
    if let Some(q) = line.strip_prefix('"') {
        // C-style quoted pattern (how Git writes paths with spaces or special bytes).
        let mut out: Vec<u8> = Vec::new();
        let b = q.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'"' => {
                    let pattern = String::from_utf8_lossy(&out).into_owned();
                    return Some((pattern, &q[i + 1..]));
                }
                b'\\' if i + 1 < b.len() => {
                    let c = b[i + 1];
                    if (b'0'..=b'7').contains(&c) {
                        let digits = b[i + 1..]
                            .iter()
                            .take(3)
                            .take_while(|d| (b'0'..=b'7').contains(d))
                            .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                        let n = b[i + 1..]
                            .iter()
                            .take(3)
                            .take_while(|d| (b'0'..=b'7').contains(d))
                            .count();
                        out.push(u8::try_from(digits & 0xff).unwrap_or(b'?'));
                        i += 1 + n;
                        continue;
                    }
                    out.push(match c {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        b'a' => 7,
                        b'b' => 8,
                        b'f' => 12,
                        b'v' => 11,
                        other => other,
                    });
                    i += 2;
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
            if out.len() > MAX_PATTERN_BYTES {
                return None;
            }
        }
        return None;
    }
    let end = line.find([' ', '\t']).unwrap_or(line.len());
    if end > MAX_PATTERN_BYTES {
        return None;
    }
    Some((line[..end].to_string(), &line[end..]))
}

/// The three linguist attributes named in an attribute list (others are ignored).
fn parse_attrs(list: &str) -> Rule {
    let mut rule = Rule::default();
    for tok in list.split_whitespace() {
        let (name, state) = if let Some(n) = tok.strip_prefix('-') {
            (n, State::Unset)
        } else if let Some(n) = tok.strip_prefix('!') {
            (n, State::Unspecified)
        } else if let Some((n, v)) = tok.split_once('=') {
            (
                n,
                if v.eq_ignore_ascii_case("false") {
                    State::Unset
                } else {
                    State::Set
                },
            )
        } else {
            (tok, State::Set)
        };
        match name {
            "linguist-vendored" => rule.vendored = Some(state),
            "linguist-generated" => rule.generated = Some(state),
            "linguist-documentation" => rule.documentation = Some(state),
            _ => {}
        }
    }
    rule
}

/// gitattributes pattern -> glob over repository-relative paths; `None` for directory-only
/// patterns (which match no file).
fn to_glob(pattern: &str) -> Option<String> {
    if pattern.ends_with('/') || pattern.is_empty() {
        return None;
    }
    // Git has no brace alternation: keep braces literal.
    let escaped = pattern.replace('{', "[{]").replace('}', "[}]");
    if let Some(anchored) = escaped.strip_prefix('/') {
        return Some(anchored.to_string());
    }
    if escaped.contains('/') {
        Some(escaped)
    } else {
        Some(format!("**/{escaped}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GITATTRIBUTES: &str = r#"
# Real-world shapes
* text=auto eol=lf
*.png binary
[attr]ours -diff
third_party/** linguist-vendored
third_party/first_party/** -linguist-vendored
src/generated/* linguist-generated=true
*.pb.ts linguist-generated
gen/parser.rs linguist-generated -linguist-vendored
docs/** linguist-documentation
docs/api/reference.md !linguist-documentation
vendor/ linguist-vendored
!excluded linguist-vendored
"odd name.txt" linguist-generated
cli/tools/vendor/** linguist-vendored=false
"#;

    #[test]
    fn linguist_rules_resolve_like_git() {
        let a = Attributes::parse(GITATTRIBUTES);
        let v = |p: &str| a.lookup(p).vendored;
        let g = |p: &str| a.lookup(p).generated;
        let d = |p: &str| a.lookup(p).documentation;
        assert_eq!(v("third_party/zlib/inflate.c"), Some(true));
        assert_eq!(v("third_party/first_party/lib.rs"), Some(false));
        assert_eq!(v("src/third_party/x.c"), None, "anchored at the root");
        assert_eq!(g("src/generated/api.ts"), Some(true));
        assert_eq!(
            g("src/generated/deeper/api.ts"),
            None,
            "`*` stays in its segment"
        );
        assert_eq!(
            g("web/proto/msg.pb.ts"),
            Some(true),
            "a name matches at any depth"
        );
        assert_eq!(g("gen/parser.rs"), Some(true));
        assert_eq!(v("gen/parser.rs"), Some(false));
        assert_eq!(d("docs/guide/intro.md"), Some(true));
        assert_eq!(
            d("docs/api/reference.md"),
            None,
            "`!attr` returns to the defaults"
        );
        assert_eq!(v("vendor/x.go"), None, "directory patterns match no file");
        assert_eq!(g("odd name.txt"), Some(true));
        assert_eq!(v("cli/tools/vendor/mod.rs"), Some(false));
        assert_eq!(a.lookup("src/main.rs"), PathAttributes::default());
        assert!(a.warnings().iter().any(|w| w.contains("negative")));
        assert_eq!(a.len(), 9);
    }

    #[test]
    fn bounded_and_never_failing() {
        assert!(Attributes::parse("").is_empty());
        assert!(Attributes::none().lookup("a").vendored.is_none());
        let bad = Attributes::parse("a[ linguist-vendored\n\"unterminated linguist-vendored\n");
        assert!(bad.is_empty());
        assert_eq!(bad.warnings().len(), 2, "{:?}", bad.warnings());
        let many: String = (0..MAX_ATTRIBUTE_RULES + 10)
            .map(|i| format!("dir{i}/** linguist-vendored\n"))
            .collect();
        let a = Attributes::parse(&many);
        assert_eq!(a.len(), MAX_ATTRIBUTE_RULES);
        assert!(
            a.warnings()
                .iter()
                .any(|w| w.starts_with("attribute_rule_limit"))
        );
        let huge = "x".repeat(MAX_ATTRIBUTES_BYTES + 10);
        let a = Attributes::parse(&huge);
        assert!(
            a.warnings()
                .iter()
                .any(|w| w.starts_with("attributes_too_large"))
        );
    }
}
