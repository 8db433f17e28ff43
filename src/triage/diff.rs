//! Parser for the per-file unified diff text GitHub returns in a file's `patch` field.
//!
//! The input is untrusted: anything may appear, including text that is not a diff. The parser
//! never panics, borrows from the input, respects a hunk budget and reports what it skipped.
//! File headers (`diff --git`, `---`, `+++`) are tolerated and ignored, so `git diff` output for
//! a single file parses too.

/// Kind of one diff line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// Present on both sides.
    Context,
    /// Added by the change.
    Added,
    /// Removed by the change.
    Removed,
}

/// One hunk of a file diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk<'a> {
    /// First line number on the old side.
    pub old_start: u32,
    /// First line number on the new side.
    pub new_start: u32,
    /// Text after the closing `@@` (GitHub shows the enclosing declaration there).
    pub header: &'a str,
    /// The hunk body, without the leading marker character.
    pub lines: Vec<(LineKind, &'a str)>,
}

/// A parsed file patch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedPatch<'a> {
    /// Hunks in input order.
    pub hunks: Vec<Hunk<'a>>,
    /// Hunks dropped because of the hunk budget.
    pub skipped_hunks: usize,
    /// Lines that belonged to no hunk or had no valid marker.
    pub stray_lines: usize,
}

impl ParsedPatch<'_> {
    /// Number of added lines.
    pub fn added(&self) -> usize {
        self.count(LineKind::Added)
    }
    /// Number of removed lines.
    pub fn removed(&self) -> usize {
        self.count(LineKind::Removed)
    }
    fn count(&self, k: LineKind) -> usize {
        self.hunks
            .iter()
            .map(|h| h.lines.iter().filter(|(lk, _)| *lk == k).count())
            .sum()
    }
}

/// Parses `patch`, keeping at most `max_hunks` hunks.
pub fn parse_patch(patch: &str, max_hunks: usize) -> ParsedPatch<'_> {
    let mut out = ParsedPatch::default();
    let mut current: Option<Hunk<'_>> = None;
    for raw in patch.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.starts_with("@@") {
            if let Some(h) = current.take() {
                out.hunks.push(h);
            }
            match parse_hunk_header(line) {
                Some((old_start, new_start, header)) => {
                    if out.hunks.len() >= max_hunks {
                        out.skipped_hunks += 1;
                    } else {
                        current = Some(Hunk {
                            old_start,
                            new_start,
                            header,
                            lines: Vec::new(),
                        });
                    }
                }
                None => out.stray_lines += 1,
            }
            continue;
        }
        let Some(h) = current.as_mut() else {
            if !line.is_empty() && !is_file_header(line) {
                out.stray_lines += 1;
            }
            continue;
        };
        let mut chars = line.char_indices();
        match chars.next() {
            Some((_, '+')) => h.lines.push((LineKind::Added, &line[1..])),
            Some((_, '-')) => h.lines.push((LineKind::Removed, &line[1..])),
            Some((_, ' ')) => h.lines.push((LineKind::Context, &line[1..])),
            Some((_, '\\')) => {} // "\ No newline at end of file"
            None => {}            // trailing newline of the patch text
            Some(_) => out.stray_lines += 1,
        }
    }
    if let Some(h) = current.take() {
        out.hunks.push(h);
    }
    out
}

fn is_file_header(line: &str) -> bool {
    line.starts_with("diff ")
        || line.starts_with("--- ")
        || line.starts_with("+++ ")
        || line.starts_with("index ")
        || line.starts_with("new file")
        || line.starts_with("deleted file")
        || line.starts_with("similarity ")
        || line.starts_with("rename ")
        || line.starts_with("old mode")
        || line.starts_with("new mode")
        || line.starts_with("Binary files")
}

/// Parses `@@ -a[,b] +c[,d] @@ header`.
fn parse_hunk_header(line: &str) -> Option<(u32, u32, &str)> {
    let rest = line.strip_prefix("@@ ")?;
    let end = rest.find(" @@")?;
    let ranges = &rest[..end];
    let header = rest[end + 3..].trim();
    let mut it = ranges.split(' ');
    let old = it.next()?.strip_prefix('-')?;
    let new = it.next()?.strip_prefix('+')?;
    let start = |r: &str| r.split(',').next().and_then(|n| n.parse::<u32>().ok());
    Some((start(old)?, start(new)?, header))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_github_patch() {
        let p = "@@ -1,3 +1,4 @@ fn main() {\n a\n-b\n+c\n+d\n\\ No newline at end of file\n@@ -10 +11 @@\n-x\n+y";
        let d = parse_patch(p, 100);
        assert_eq!(d.hunks.len(), 2);
        assert_eq!(d.hunks[0].header, "fn main() {");
        assert_eq!(d.hunks[0].old_start, 1);
        assert_eq!(d.hunks[1].new_start, 11);
        assert_eq!(d.added(), 3);
        assert_eq!(d.removed(), 2);
        assert_eq!(d.stray_lines, 0);
    }

    #[test]
    fn budget_and_garbage() {
        let p = "garbage\n@@ -1 +1 @@\n+a\n@@ -2 +2 @@\n+b\n@@ bad header\n";
        let d = parse_patch(p, 1);
        assert_eq!(d.hunks.len(), 1);
        assert_eq!(d.skipped_hunks, 1);
        assert!(d.stray_lines >= 2);
        assert_eq!(parse_patch("", 10).hunks.len(), 0);
    }

    #[test]
    fn crlf_and_file_headers() {
        let p = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\r\n-a\r\n+b\r\n";
        let d = parse_patch(p, 10);
        assert_eq!(d.stray_lines, 0);
        assert_eq!(
            d.hunks[0].lines,
            vec![(LineKind::Removed, "a"), (LineKind::Added, "b")]
        );
    }

    fn arb_line() -> impl Strategy<Value = (u8, String)> {
        (0u8..3, "[a-zA-Z0-9 =+(){};.-]{0,20}")
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,400}") {
            let d = parse_patch(&s, 50);
            prop_assert!(d.hunks.len() <= 50);
        }

        #[test]
        fn counts_round_trip(hunks in proptest::collection::vec(proptest::collection::vec(arb_line(), 0..20), 0..8)) {
            let mut text = String::new();
            let (mut adds, mut rems) = (0, 0);
            for (i, h) in hunks.iter().enumerate() {
                text.push_str(&format!("@@ -{0},3 +{0},3 @@ ctx\n", i * 10 + 1));
                for (k, body) in h {
                    let m = match k { 0 => { adds += 1; '+' }, 1 => { rems += 1; '-' }, _ => ' ' };
                    text.push(m);
                    text.push_str(body);
                    text.push('\n');
                }
            }
            let d = parse_patch(&text, 100);
            prop_assert_eq!(d.hunks.len(), hunks.len());
            prop_assert_eq!(d.added(), adds);
            prop_assert_eq!(d.removed(), rems);
            prop_assert_eq!(d.stray_lines, 0);
        }
    }
}
