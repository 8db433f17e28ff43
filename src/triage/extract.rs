//! Name extraction from changed lines: declared symbols, imports, test names and matchers,
//! documentation headings and code-fence languages, and issue/PR references in prose.
//!
//! Line-oriented, hand-written recognisers for TS/JS, Python, Go, Rust (plus the obvious Java and
//! Ruby forms). They aim at the declarations a hunk touches, not at full parsing: a missed name
//! only weakens one signal.

use crate::triage::channel::Lang;

const MODIFIERS: &[&str] = &[
    "export",
    "default",
    "async",
    "public",
    "private",
    "protected",
    "static",
    "readonly",
    "abstract",
    "pub",
    "pub(crate)",
    "pub(super)",
    "unsafe",
    "override",
    "declare",
    "final",
    "extern",
    "inline",
];

const DECL_KEYWORDS: &[&str] = &[
    "function",
    "function*",
    "class",
    "interface",
    "type",
    "enum",
    "def",
    "fn",
    "struct",
    "trait",
    "mod",
    "namespace",
    "const",
    "let",
    "var",
    "macro_rules!",
    "module",
];

const NOT_METHODS: &[&str] = &[
    "if",
    "for",
    "while",
    "switch",
    "catch",
    "return",
    "function",
    "else",
    "do",
    "try",
    "with",
    "match",
    "loop",
    "await",
    "new",
    "typeof",
    "super",
    "this",
    "constructor",
    "elif",
    "case",
];

fn ident_prefix(s: &str) -> &str {
    let end = s
        .char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    &s[..end]
}

fn valid_ident(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
        && s.len() <= 80
}

/// The name declared by `line`, if it declares one.
pub fn declared_symbol(line: &str, lang: Lang) -> Option<&str> {
    let mut rest = line.trim();
    if rest.starts_with("//")
        || rest.starts_with('#')
        || rest.starts_with('*')
        || rest.starts_with("/*")
    {
        // Comments (and Python decorators are `@`, Rust attributes `#[` — neither declares).
        return None;
    }
    // Go methods: `func (r *T) Name(`.
    if lang == Lang::Go
        && let Some(r) = rest.strip_prefix("func ")
    {
        let r = r.trim_start();
        let r = if r.starts_with('(') {
            r.split_once(')').map(|(_, b)| b.trim_start())?
        } else {
            r
        };
        let name = ident_prefix(r);
        return valid_ident(name).then_some(name);
    }
    loop {
        let mut changed = false;
        for m in MODIFIERS {
            if let Some(r) = rest.strip_prefix(m)
                && r.starts_with(' ')
            {
                rest = r.trim_start();
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    if lang == Lang::Rust
        && let Some(r) = rest.strip_prefix("impl")
    {
        // `impl<T> Trait for Type` -> Type; `impl Type` -> Type.
        let r = r.trim_start_matches(|c: char| c != ' ').trim_start();
        let r = r.rsplit(" for ").next().unwrap_or(r).trim_start();
        let name = ident_prefix(r);
        return valid_ident(name).then_some(name);
    }
    for kw in DECL_KEYWORDS {
        if let Some(r) = rest.strip_prefix(kw)
            && (r.starts_with(' ') || r.starts_with('*'))
        {
            let r = r.trim_start_matches(['*', ' ']);
            let name = ident_prefix(r);
            if !valid_ident(name) {
                return None;
            }
            if matches!(*kw, "const" | "let" | "var") {
                // Only top-level-looking bindings (`const x = ` / `const x: T =`).
                let after = r[name.len()..].trim_start();
                if !(after.starts_with('=') || after.starts_with(':')) {
                    return None;
                }
            }
            return Some(name);
        }
    }
    // Methods in class bodies (JS/TS, Java): `name(args) {` / `get name() {`.
    if matches!(lang, Lang::Js | Lang::Java) {
        let r = rest
            .strip_prefix("get ")
            .or_else(|| rest.strip_prefix("set "))
            .unwrap_or(rest);
        let name = ident_prefix(r);
        let after = &r[name.len()..];
        if valid_ident(name)
            && !NOT_METHODS.contains(&name)
            && (after.starts_with('(') || after.starts_with('<'))
            && rest.trim_end().ends_with('{')
            && !rest.contains(" = ")
        {
            return Some(name);
        }
    }
    None
}

/// Module imported by `line`, if it is an import.
pub fn imported_module(line: &str, lang: Lang) -> Option<&str> {
    let t = line.trim();
    match lang {
        Lang::Js => {
            if t.starts_with("import ") || t.starts_with("export ") && t.contains(" from ") {
                let q = t.rfind(['\'', '"'])?;
                let open = t[..q].rfind(['\'', '"'])?;
                return Some(&t[open + 1..q]).filter(|m| !m.is_empty());
            }
            let i = t.find("require(")?;
            let r = &t[i + 8..];
            let q = r.chars().next().filter(|c| *c == '\'' || *c == '"')?;
            let end = r[1..].find(q)?;
            Some(&r[1..1 + end]).filter(|m| !m.is_empty())
        }
        Lang::Python => {
            let r = t
                .strip_prefix("from ")
                .or_else(|| t.strip_prefix("import "))?;
            let m = r.split([' ', ',']).next()?;
            (!m.is_empty()).then_some(m)
        }
        Lang::Go => {
            let r = t.strip_prefix("import ").unwrap_or(t);
            let r = r.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_' || c == ' ');
            let inner = r.strip_prefix('"')?.strip_suffix('"')?;
            (!inner.is_empty() && !inner.contains('"') && !inner.contains(' ')).then_some(inner)
        }
        Lang::Rust => {
            let r = t.strip_prefix("pub ").unwrap_or(t).strip_prefix("use ")?;
            let m = r.trim_end_matches(';').split("::{").next()?;
            (!m.is_empty()).then_some(m)
        }
        _ => None,
    }
}

/// First string literal in `s` (quotes `'`, `"` or backtick).
fn first_string(s: &str) -> Option<&str> {
    let start = s.find(['\'', '"', '`'])?;
    let q = s[start..].chars().next()?;
    let body = &s[start + 1..];
    let end = body.find(q)?;
    Some(&body[..end]).filter(|b| !b.trim().is_empty())
}

const JS_TEST_FNS: &[&str] = &[
    "describe",
    "it",
    "test",
    "context",
    "suite",
    "specify",
    "test.describe",
    "it.only",
    "it.skip",
    "test.only",
    "test.skip",
    "test.fixme",
    "test.fail",
    "test.slow",
    "describe.only",
    "describe.skip",
    "test.describe.serial",
    "test.describe.parallel",
    "test.describe.only",
    "it.fail",
    "it.fixme",
    "Deno.test",
    "Deno.test.only",
    "Deno.test.ignore",
];

/// Suite or test name declared by `line` in a test file.
pub fn test_name(line: &str, lang: Lang) -> Option<String> {
    let t = line.trim_start();
    match lang {
        Lang::Js | Lang::Ruby | Lang::Other => {
            for f in JS_TEST_FNS {
                if let Some(r) = t.strip_prefix(f)
                    && (r.starts_with('(') || (lang == Lang::Ruby && r.starts_with(' ')))
                {
                    return first_string(r).map(|s| s.trim().to_string());
                }
            }
            None
        }
        Lang::Python => {
            let r = t.strip_prefix("async ").unwrap_or(t);
            let r = r
                .strip_prefix("def ")
                .or_else(|| r.strip_prefix("class "))?;
            let n = ident_prefix(r);
            (n.starts_with("test") || n.starts_with("Test")).then(|| n.to_string())
        }
        Lang::Go => {
            let n = ident_prefix(t.strip_prefix("func ")?);
            (n.starts_with("Test") || n.starts_with("Benchmark") || n.starts_with("Fuzz"))
                .then(|| n.to_string())
        }
        Lang::Rust => {
            let r = t.strip_prefix("async ").unwrap_or(t);
            let n = ident_prefix(r.strip_prefix("fn ")?);
            valid_ident(n).then(|| n.to_string())
        }
        Lang::Java | Lang::CSharp => {
            let r = t.strip_prefix("public ").unwrap_or(t);
            let r = r
                .strip_prefix("async Task ")
                .or_else(|| r.strip_prefix("void "))?;
            let n = ident_prefix(r);
            valid_ident(n).then(|| n.to_string())
        }
        Lang::C => {
            // gtest / Catch2: `TEST(Suite, Name)`, `TEST_F(Fixture, Name)`, `TEST_CASE("name")`.
            let (_, r) = ["TEST(", "TEST_F(", "TEST_P(", "TYPED_TEST("]
                .iter()
                .find_map(|m| t.strip_prefix(m).map(|r| (m, r)))
                .or_else(|| t.strip_prefix("TEST_CASE(").map(|r| (&"TEST_CASE(", r)))?;
            if let Some(name) = first_string(r) {
                return Some(name.trim().to_string());
            }
            let inner = r.split(')').next()?;
            let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
            (parts.len() == 2 && parts.iter().all(|p| valid_ident(p)))
                .then(|| format!("{}.{}", parts[0], parts[1]))
        }
        Lang::Swift | Lang::Php => {
            let r = t.strip_prefix("public ").unwrap_or(t);
            let n = ident_prefix(
                r.strip_prefix("func ")
                    .or_else(|| r.strip_prefix("function "))?,
            );
            n.starts_with("test").then(|| n.to_string())
        }
        Lang::Markup => None,
    }
}

/// Matcher and assertion names used by `line` (`toBe`, `toHaveURL`, `assertEqual`, `assert_eq`).
pub fn matchers<'a>(line: &'a str, out: &mut Vec<&'a str>) {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let prev_ok = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if prev_ok && (b[i..].starts_with(b"to") || b[i..].starts_with(b"assert")) {
            let name = ident_prefix(&line[i..]);
            let dotted = i > 0 && b[i - 1] == b'.';
            let is_to =
                name.len() > 2 && name.starts_with("to") && name.as_bytes()[2].is_ascii_uppercase();
            if (is_to && dotted) || name.starts_with("assert") {
                out.push(name);
            }
            i += name.len().max(1);
        } else {
            i += 1;
        }
    }
}

/// Markdown heading text (`## Title`), normalised to lowercase words.
pub fn heading(line: &str) -> Option<String> {
    let t = line.trim_start();
    let r = t.trim_start_matches('#');
    let level = t.len() - r.len();
    if level == 0 || level > 6 || !r.starts_with(' ') {
        return None;
    }
    let h = r.trim().to_lowercase();
    (!h.is_empty()).then_some(h)
}

/// Code-fence language (```` ```ts ```` -> `ts`).
pub fn fence_lang(line: &str) -> Option<&str> {
    let r = line.trim_start().strip_prefix("```")?;
    let l = ident_prefix(r.trim());
    (!l.is_empty()).then_some(l)
}

/// References found in prose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refs {
    /// Issues/PRs the text says it closes (`fixes #12`).
    pub closing: Vec<String>,
    /// Every other reference.
    pub mentions: Vec<String>,
}

const CLOSING: &[&str] = &[
    "close", "closes", "closed", "fix", "fixes", "fixed", "resolve", "resolves", "resolved",
];

/// References in `text`: `#N`, `owner/repo#N` and GitHub issue/PR URLs. Same-repository
/// references are the bare number (`"123"`), others `owner/repo#N`.
pub fn references(text: &str, out: &mut Refs) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let found = if b[i] == b'#' {
            let digits = count_digits(&b[i + 1..]);
            if digits > 0 && digits <= 10 && !is_word_byte(b.get(i + 1 + digits)) {
                let num = trim_zeros(&text[i + 1..i + 1 + digits]);
                // owner/repo#N: walk back over the repo slug.
                let slug_start = text[..i]
                    .rfind(|c: char| {
                        !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
                    })
                    .map(|p| after_char(text, p))
                    .unwrap_or(0);
                let slug = &text[slug_start..i];
                let cross_repo =
                    slug.contains('/') && !slug.starts_with('/') && !slug.ends_with('/');
                let prev_ok = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'&');
                if cross_repo {
                    Some((
                        slug_start,
                        i + 1 + digits,
                        format!("{}#{num}", slug.to_ascii_lowercase()),
                    ))
                } else if prev_ok {
                    Some((i, i + 1 + digits, num.to_string()))
                } else {
                    None
                }
            } else {
                None
            }
        } else if b[i..].starts_with(b"https://github.com/") {
            parse_url(&text[i..]).map(|(len, key)| (i, i + len, key))
        } else {
            None
        };
        match found {
            Some((begin, end, key)) => {
                let closing =
                    preceding_word(&text[..begin]).is_some_and(|w| CLOSING.contains(&w.as_str()));
                if closing {
                    out.closing.push(key);
                } else {
                    out.mentions.push(key);
                }
                i = end;
            }
            None => i += 1,
        }
    }
}

/// Byte index just after the char starting at `p`.
fn after_char(s: &str, p: usize) -> usize {
    p + s[p..].chars().next().map_or(1, char::len_utf8)
}

fn is_word_byte(b: Option<&u8>) -> bool {
    b.is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn count_digits(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

fn trim_zeros(s: &str) -> &str {
    let t = s.trim_start_matches('0');
    if t.is_empty() { "0" } else { t }
}

/// `https://github.com/o/r/(issues|pull)/N` -> (consumed length, "o/r#N").
fn parse_url(s: &str) -> Option<(usize, String)> {
    let rest = s.strip_prefix("https://github.com/")?;
    let mut parts = rest.splitn(5, '/');
    let owner = parts.next()?;
    let repo = parts.next()?;
    let kind = parts.next()?;
    if kind != "issues" && kind != "pull" {
        return None;
    }
    let tail = parts.next().unwrap_or("");
    let d = count_digits(tail.as_bytes());
    if d == 0 || d > 10 || owner.is_empty() || repo.is_empty() {
        return None;
    }
    let consumed = "https://github.com/".len() + owner.len() + repo.len() + kind.len() + 3 + d;
    Some((
        consumed,
        format!(
            "{}/{}#{}",
            owner.to_ascii_lowercase(),
            repo.to_ascii_lowercase(),
            trim_zeros(&tail[..d])
        ),
    ))
}

/// Lowercased word just before a reference, skipping spaces and a colon.
fn preceding_word(s: &str) -> Option<String> {
    let t = s.trim_end().trim_end_matches(':').trim_end();
    let start = t
        .rfind(|c: char| !c.is_alphabetic())
        .map(|p| after_char(t, p))
        .unwrap_or(0);
    let w = &t[start..];
    (!w.is_empty()).then(|| w.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prop_assert;

    #[test]
    fn declarations() {
        assert_eq!(
            declared_symbol("export async function goto(url) {", Lang::Js),
            Some("goto")
        );
        assert_eq!(
            declared_symbol("  private async _doClick(x: number) {", Lang::Js),
            Some("_doClick")
        );
        assert_eq!(
            declared_symbol("export const kMax = 5;", Lang::Js),
            Some("kMax")
        );
        assert_eq!(declared_symbol("  if (x) {", Lang::Js), None);
        assert_eq!(
            declared_symbol("class Page extends EventEmitter {", Lang::Js),
            Some("Page")
        );
        assert_eq!(
            declared_symbol("export type Options = {", Lang::Js),
            Some("Options")
        );
        assert_eq!(
            declared_symbol("    def close(self):", Lang::Python),
            Some("close")
        );
        assert_eq!(
            declared_symbol("func (s *Server) Serve(l net.Listener) error {", Lang::Go),
            Some("Serve")
        );
        assert_eq!(
            declared_symbol("pub(crate) fn parse_patch<'a>(p: &'a str)", Lang::Rust),
            Some("parse_patch")
        );
        assert_eq!(
            declared_symbol("impl<T> Display for Wrapper<T> {", Lang::Rust),
            Some("Wrapper")
        );
        assert_eq!(declared_symbol("// function notReally()", Lang::Js), None);
    }

    #[test]
    fn imports() {
        assert_eq!(
            imported_module("import { Page } from './page';", Lang::Js),
            Some("./page")
        );
        assert_eq!(
            imported_module("const x = require('fs');", Lang::Js),
            Some("fs")
        );
        assert_eq!(
            imported_module("from foo.bar import baz", Lang::Python),
            Some("foo.bar")
        );
        assert_eq!(
            imported_module("\t\"net/http\"", Lang::Go),
            Some("net/http")
        );
        assert_eq!(
            imported_module("use crate::triage::diff::{Hunk};", Lang::Rust),
            Some("crate::triage::diff")
        );
    }

    #[test]
    fn tests_and_matchers() {
        assert_eq!(
            test_name("  it('should click', async () => {", Lang::Js).as_deref(),
            Some("should click")
        );
        assert_eq!(
            test_name("test.describe(\"suite\", () => {", Lang::Js).as_deref(),
            Some("suite")
        );
        assert_eq!(
            test_name("def test_parse(self):", Lang::Python).as_deref(),
            Some("test_parse")
        );
        assert_eq!(
            test_name("func TestServe(t *testing.T) {", Lang::Go).as_deref(),
            Some("TestServe")
        );
        assert_eq!(
            test_name("Deno.test(\"copy keeps modes\", async () => {", Lang::Js).as_deref(),
            Some("copy keeps modes")
        );
        assert_eq!(
            test_name("TEST_F(SplitTest, KeepsEmpty) {", Lang::C).as_deref(),
            Some("SplitTest.KeepsEmpty")
        );
        assert_eq!(
            test_name("func testParsesDates() throws {", Lang::Swift).as_deref(),
            Some("testParsesDates")
        );
        let mut m = Vec::new();
        matchers(
            "expect(await page.title()).toBe('x'); assertEqual(a, b); total(1)",
            &mut m,
        );
        assert_eq!(m, vec!["toBe", "assertEqual"]);
    }

    #[test]
    fn docs() {
        assert_eq!(heading("## Page.goto").as_deref(), Some("page.goto"));
        assert_eq!(heading("#hashtag"), None);
        assert_eq!(fence_lang("```ts"), Some("ts"));
    }

    proptest::proptest! {
        #[test]
        fn extractors_never_panic(s in "\\PC{0,120}") {
            let mut r = Refs::default();
            references(&s, &mut r);
            for lang in [Lang::Js, Lang::Python, Lang::Go, Lang::Rust, Lang::Java, Lang::Ruby, Lang::C, Lang::CSharp, Lang::Swift, Lang::Php, Lang::Other] {
                let _ = declared_symbol(&s, lang);
                let _ = imported_module(&s, lang);
                let _ = test_name(&s, lang);
            }
            let mut m = Vec::new();
            matchers(&s, &mut m);
            let _ = heading(&s);
            let _ = fence_lang(&s);
        }

        #[test]
        fn references_with_unicode(pre in "[a-z’é #0-9]{0,20}", n in 1u32..100000, post in "[’é ][a-z’é ]{0,10}") {
            let mut r = Refs::default();
            references(&format!("{pre} fixes #{n}{post} https://github.com/a/b/pull/{n}"), &mut r);
            prop_assert!(r.closing.contains(&n.to_string()));
            let want = format!("a/b#{}", n);
            prop_assert!(r.mentions.contains(&want));
        }
    }

    #[test]
    fn refs() {
        let mut r = Refs::default();
        references(
            "Fixes #12, closes: #0013 and see #14; a&#15; x#16 foo/bar#17 https://github.com/A/B/issues/18",
            &mut r,
        );
        assert_eq!(r.closing, vec!["12", "13"]);
        assert_eq!(r.mentions, vec!["14", "foo/bar#17", "a/b#18"]);
        let mut r = Refs::default();
        references("cherry-pick(#100786): fix (#?)", &mut r);
        assert_eq!(r.mentions, vec!["100786"]);
    }
}
