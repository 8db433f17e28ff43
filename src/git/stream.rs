//! Reading `git diff` output as it streams: [`DiffStream`] takes chunks of any size, cuts them
//! into lines and builds GitHub-shaped file entries on the fly, and stops taking bytes once the
//! cap is reached, so the memory a diff costs is bounded by the cap however much git would print.

use crate::github::FileEntry;

/// Largest patch text kept for one file (GitHub also omits patches of very large diffs).
pub const MAX_FILE_PATCH_BYTES: usize = 1 << 20;

/// The file being read: its entry, its patch so far, and whether git called it binary.
struct Current {
    entry: FileEntry,
    patch: String,
    binary: bool,
}

/// What a finished stream holds.
#[derive(Debug, Default)]
pub struct ParsedDiff {
    /// Files in git's order. When the stream was capped, the file cut by the cap is kept without
    /// its patch and the files after it are missing.
    pub files: Vec<FileEntry>,
    /// True when more bytes came than the cap allowed.
    pub capped: bool,
    /// Bytes taken (at most the cap).
    pub bytes: usize,
}

/// An incremental parser of `git diff` output with a cap on the bytes it accepts.
pub struct DiffStream {
    cap: usize,
    seen: usize,
    capped: bool,
    line: Vec<u8>,
    files: Vec<FileEntry>,
    cur: Option<Current>,
}

impl DiffStream {
    /// A parser that accepts at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        DiffStream {
            cap,
            seen: 0,
            capped: false,
            line: Vec::new(),
            files: Vec::new(),
            cur: None,
        }
    }

    /// Feeds the next bytes. Returns false once the cap is exceeded: the bytes past it are
    /// dropped and the caller should stop reading (and stop the producer).
    pub fn push(&mut self, chunk: &[u8]) -> bool {
        if self.capped {
            return false;
        }
        let room = self.cap - self.seen;
        let mut chunk = if chunk.len() > room {
            self.capped = true;
            &chunk[..room]
        } else {
            chunk
        };
        self.seen += chunk.len();
        while let Some(i) = chunk.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&chunk[..=i]);
            let line = std::mem::take(&mut self.line);
            self.feed(&String::from_utf8_lossy(&line));
            chunk = &chunk[i + 1..];
        }
        self.line.extend_from_slice(chunk);
        !self.capped
    }

    /// Ends the stream. A capped stream drops its last, partial line and the patch of the file
    /// the cap cut (an incomplete patch would mislead).
    pub fn finish(mut self) -> ParsedDiff {
        if self.capped {
            if let Some(mut c) = self.cur.take() {
                c.patch.clear();
                self.cur = Some(c);
            }
        } else if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.feed(&String::from_utf8_lossy(&line));
        }
        self.close_file();
        ParsedDiff {
            files: self.files,
            capped: self.capped,
            bytes: self.seen,
        }
    }

    fn close_file(&mut self) {
        if let Some(Current {
            mut entry,
            patch,
            binary,
        }) = self.cur.take()
        {
            if !binary && !patch.is_empty() && patch.len() <= MAX_FILE_PATCH_BYTES {
                entry.patch = Some(patch.trim_end_matches('\n').to_string());
            }
            self.files.push(entry);
        }
    }

    /// One line of git's output, with its newline (the last line may lack it).
    fn feed(&mut self, line: &str) {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            self.close_file();
            // `a/x b/x`; the real names come from the ---/+++ or rename lines when they differ.
            self.cur = Some(Current {
                entry: FileEntry {
                    filename: b_side(rest.trim_end()),
                    status: "modified".into(),
                    additions: 0,
                    deletions: 0,
                    patch: None,
                    previous_filename: None,
                    sha: None,
                },
                patch: String::new(),
                binary: false,
            });
            return;
        }
        let Some(Current {
            entry: f,
            patch,
            binary,
        }) = self.cur.as_mut()
        else {
            return;
        };
        if !patch.is_empty() {
            if line.starts_with('+') {
                f.additions += 1;
            } else if line.starts_with('-') {
                f.deletions += 1;
            }
            if patch.len() <= MAX_FILE_PATCH_BYTES {
                patch.push_str(line);
            }
            return;
        }
        if line.starts_with("@@") {
            patch.push_str(line);
        } else if line.starts_with("new file mode") {
            f.status = "added".into();
        } else if line.starts_with("deleted file mode") {
            f.status = "removed".into();
        } else if let Some(from) = line.strip_prefix("rename from ") {
            f.status = "renamed".into();
            f.previous_filename = Some(unquote(from));
        } else if let Some(to) = line.strip_prefix("rename to ") {
            f.filename = unquote(to);
        } else if line.starts_with("Binary files ") || line.starts_with("GIT binary patch") {
            *binary = true;
        } else if let Some(p) = line.strip_prefix("+++ ") {
            let p = p.trim_end();
            if p != "/dev/null" {
                f.filename = after_side(unquote(p));
            }
        }
    }
}

/// Splits a whole `git diff` output into per-file entries like GitHub's: `patch` holds the hunks
/// (from the first `@@`), absent for binary files, pure renames and patches over the size limit.
pub fn parse_git_diff(text: &str) -> Vec<FileEntry> {
    let mut s = DiffStream::new(usize::MAX);
    s.push(text.as_bytes());
    s.finish().files
}

/// The path after the change in a `diff --git a/x b/x` line, whose names git quotes (both, with
/// their `a/` and `b/` inside the quotes) when they hold unusual characters.
fn b_side(rest: &str) -> String {
    if rest.ends_with('"')
        && let Some(i) = rest.rfind(" \"b/")
    {
        return after_side(unquote(&rest[i + 1..]));
    }
    rest.rsplit_once(" b/")
        .map_or_else(|| unquote(rest), |(_, b)| unquote(b))
}

/// An unquoted name without its `b/` side prefix.
fn after_side(name: String) -> String {
    match name.strip_prefix("b/") {
        Some(p) => p.to_string(),
        None => name,
    }
}

/// Unquotes a path as git prints it (`"a\tb"` style quoting for unusual names).
pub fn unquote(p: &str) -> String {
    let p = p.trim();
    if let Some(inner) = p.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        let mut out = Vec::new();
        let b = inner.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\\' && i + 1 < b.len() {
                let c = b[i + 1];
                if c.is_ascii_digit()
                    && i + 3 < b.len()
                    && let Some(v) = inner
                        .get(i + 1..i + 4)
                        .and_then(|oct| u8::from_str_radix(oct, 8).ok())
                {
                    out.push(v);
                    i += 4;
                    continue;
                }
                out.push(match c {
                    b'n' => b'\n',
                    b't' => b'\t',
                    other => other,
                });
                i += 2;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    } else {
        p.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "diff --git a/src/a.ts b/src/a.ts\nindex 1..2 100644\n--- a/src/a.ts\n+++ b/src/a.ts\n@@ -1,2 +1,3 @@\n x\n+y\n-z\n+w\ndiff --git a/img.png b/img.png\nnew file mode 100644\nindex 0..1\nBinary files /dev/null and b/img.png differ\ndiff --git a/old.rs b/new.rs\nsimilarity index 100%\nrename from old.rs\nrename to new.rs\ndiff --git a/gone.txt b/gone.txt\ndeleted file mode 100644\n--- a/gone.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n";

    #[test]
    fn git_diff_output_becomes_github_shaped_files() {
        let files = parse_git_diff(SAMPLE);
        assert_eq!(files.len(), 4);
        assert_eq!(files[0].filename, "src/a.ts");
        assert_eq!((files[0].additions, files[0].deletions), (2, 1));
        assert_eq!(
            files[0].patch.as_deref(),
            Some("@@ -1,2 +1,3 @@\n x\n+y\n-z\n+w")
        );
        assert_eq!(files[1].status, "added");
        assert!(files[1].patch.is_none(), "binary files have no patch");
        assert_eq!(files[2].status, "renamed");
        assert_eq!(files[2].previous_filename.as_deref(), Some("old.rs"));
        assert_eq!(files[2].filename, "new.rs");
        assert!(files[2].patch.is_none());
        assert_eq!(files[3].status, "removed");
        assert_eq!(files[3].deletions, 1);
    }

    #[test]
    fn quoted_names_lose_their_side_prefix_too() {
        let text = "diff --git \"a/odd dir/\\\"q\\\" \\303\\251.txt\" \"b/odd dir/\\\"q\\\" \\303\\251.txt\"\nnew file mode 100644\nindex 0..1\n--- /dev/null\n+++ \"b/odd dir/\\\"q\\\" \\303\\251.txt\"\n@@ -0,0 +1 @@\n+x\ndiff --git \"a/t\\tab.bin\" \"b/t\\tab.bin\"\nnew file mode 100644\nBinary files /dev/null and \"b/t\\tab.bin\" differ\n";
        let files = parse_git_diff(text);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].filename, "odd dir/\"q\" \u{e9}.txt");
        assert_eq!(files[0].patch.as_deref(), Some("@@ -0,0 +1 @@\n+x"));
        assert_eq!(
            files[1].filename, "t\tab.bin",
            "named by the diff --git line alone"
        );
    }

    #[test]
    fn chunking_does_not_change_the_result() {
        let whole = format!("{:?}", parse_git_diff(SAMPLE));
        for size in [1, 2, 3, 7, 64] {
            let mut s = DiffStream::new(usize::MAX);
            for chunk in SAMPLE.as_bytes().chunks(size) {
                assert!(s.push(chunk));
            }
            assert_eq!(format!("{:?}", s.finish().files), whole, "chunks of {size}");
        }
    }

    #[test]
    fn the_cap_stops_the_stream_and_drops_the_cut_patch() {
        let cut = SAMPLE.find("diff --git a/img.png").unwrap() - 3;
        let mut s = DiffStream::new(cut);
        assert!(!s.push(SAMPLE.as_bytes()), "over the cap");
        assert!(!s.push(b"more"), "stays closed");
        let p = s.finish();
        assert!(p.capped);
        assert_eq!(p.bytes, cut);
        assert_eq!(p.files.len(), 1, "only the file the cap cut");
        assert!(p.files[0].patch.is_none(), "its partial patch is dropped");
    }

    #[test]
    fn quoted_paths_are_unquoted() {
        assert_eq!(unquote("\"a\\tb\""), "a\tb");
        assert_eq!(unquote("\"caf\\303\\251.txt\""), "café.txt");
        // A backslash before a multi-byte character must not split it.
        assert_eq!(unquote("\"\\1é\""), "1é");
    }
}
