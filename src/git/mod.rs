//! The local bare mirror of a repository: one incremental `git fetch` of `refs/pull/*/head` and
//! the default branch per scan brings every PR head at once, and each head's diff is computed
//! locally against its merge base — no API call per PR. Uses the `git` command line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::process::Command;

use crate::github::FileEntry;

/// Largest patch text kept for one file (GitHub also omits patches of very large diffs).
pub const MAX_FILE_PATCH_BYTES: usize = 1 << 20;
/// Largest whole diff read for one head.
pub const MAX_DIFF_BYTES: usize = 64 << 20;

/// Errors of the mirror. Every one of them means "fall back to the REST files endpoint".
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// `git` could not be run.
    #[error("git could not be started: {0}")]
    Spawn(String),
    /// A git command failed.
    #[error("git {command} failed: {stderr}")]
    Failed {
        /// The subcommand.
        command: String,
        /// What git said (trimmed).
        stderr: String,
    },
    /// A git command ran too long.
    #[error("git {0} timed out")]
    Timeout(String),
    /// The head commit is not in the mirror.
    #[error("commit {0} is not in the mirror")]
    MissingCommit(String),
    /// The diff is larger than we read.
    #[error("diff larger than {MAX_DIFF_BYTES} bytes")]
    TooLarge,
}

/// Mirrors under `<data_root>/repos/<owner>/<repo>.git`, fetched from `<git_url>/<owner>/<repo>.git`.
/// A mirror is a cache of one machine: a worker process whose mirror lacks heads (a new machine,
/// or one that did not run the scan) fetches them itself ([`Mirror::ensure`]).
#[derive(Debug, Clone)]
pub struct Mirror {
    root: PathBuf,
    git_url: String,
    /// One fetch at a time per repository in this process (git locks refs while fetching).
    fetching: Arc<std::sync::Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>>,
}

/// Only names that passed GitHub's rules reach here, but be strict anyway: no path tricks.
fn safe(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn hex_sha(s: &str) -> bool {
    (7..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Mirror {
    /// A mirror set rooted at `data_root`.
    pub fn new(data_root: &Path, git_url: &str) -> Self {
        Mirror {
            root: data_root.join("repos"),
            git_url: git_url.trim_end_matches('/').to_string(),
            fetching: Arc::default(),
        }
    }

    fn fetch_lock(&self, dir: &Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .fetching
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(dir.to_path_buf()).or_default().clone()
    }

    /// The commits among `shas` that the mirror of `owner/repo` does not have (all of them when
    /// there is no mirror yet).
    pub async fn missing(
        &self,
        owner: &str,
        repo: &str,
        shas: &[&str],
    ) -> Result<Vec<String>, GitError> {
        let Some(dir) = self.path(owner, repo).filter(|d| d.join("HEAD").exists()) else {
            return Ok(shas.iter().map(|s| s.to_string()).collect());
        };
        let wanted: Vec<&str> = shas.iter().copied().filter(|s| hex_sha(s)).collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec!["rev-list", "--no-walk", "--ignore-missing"];
        args.extend(&wanted);
        let out = self
            .git(&dir, &args, Duration::from_secs(60), 1 << 20)
            .await?;
        let have = String::from_utf8_lossy(&out);
        let have: std::collections::HashSet<&str> = have.lines().map(str::trim).collect();
        Ok(wanted
            .into_iter()
            .filter(|s| !have.iter().any(|h| h.starts_with(s)))
            .map(str::to_string)
            .collect())
    }

    /// Makes sure the mirror has the commits `shas`: fetches (once, however many jobs of this
    /// process ask at the same time) when it lacks any. Returns whether it fetched.
    pub async fn ensure(
        &self,
        owner: &str,
        repo: &str,
        shas: &[&str],
        branches: &[&str],
    ) -> Result<bool, GitError> {
        if self.missing(owner, repo, shas).await?.is_empty() {
            return Ok(false);
        }
        let dir = self.path(owner, repo).ok_or_else(|| GitError::Failed {
            command: "fetch".into(),
            stderr: "invalid repository name".into(),
        })?;
        let lock = self.fetch_lock(&dir);
        let _held = lock.lock().await;
        // Another job may have fetched them while this one waited.
        if self.missing(owner, repo, shas).await?.is_empty() {
            return Ok(false);
        }
        self.fetch(owner, repo, branches).await?;
        Ok(true)
    }

    /// The bare repository of `owner/repo`.
    pub fn path(&self, owner: &str, repo: &str) -> Option<PathBuf> {
        (safe(owner) && safe(repo)).then(|| {
            self.root
                .join(owner.to_ascii_lowercase())
                .join(format!("{}.git", repo.to_ascii_lowercase()))
        })
    }

    async fn git(
        &self,
        dir: &Path,
        args: &[&str],
        timeout: Duration,
        limit: usize,
    ) -> Result<Vec<u8>, GitError> {
        let name = args.first().copied().unwrap_or("git").to_string();
        let child = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| GitError::Spawn(e.to_string()))?;
        let out = tokio::time::timeout(timeout, child.wait_with_output())
            .await
            .map_err(|_| GitError::Timeout(name.clone()))?
            .map_err(|e| GitError::Spawn(e.to_string()))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(GitError::Failed {
                command: name,
                stderr: stderr.trim().chars().take(500).collect(),
            });
        }
        if out.stdout.len() > limit {
            return Err(GitError::TooLarge);
        }
        Ok(out.stdout)
    }

    /// Creates the mirror if needed and fetches every PR head and the given base branches (the
    /// default branch and any other branch open PRs target).
    pub async fn sync(&self, owner: &str, repo: &str, branches: &[&str]) -> Result<(), GitError> {
        let lock = self.path(owner, repo).map(|dir| self.fetch_lock(&dir));
        let _held = match &lock {
            Some(l) => Some(l.lock().await),
            None => None,
        };
        self.fetch(owner, repo, branches).await
    }

    async fn fetch(&self, owner: &str, repo: &str, branches: &[&str]) -> Result<(), GitError> {
        let dir = self.path(owner, repo).ok_or_else(|| GitError::Failed {
            command: "init".into(),
            stderr: "invalid repository name".into(),
        })?;
        if branches.iter().any(|b| !safe_ref(b)) {
            return Err(GitError::Failed {
                command: "fetch".into(),
                stderr: "invalid branch name".into(),
            });
        }
        let short = Duration::from_secs(30);
        if !dir.join("HEAD").exists() {
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| GitError::Spawn(e.to_string()))?;
            self.git(&dir, &["init", "--bare", "--quiet"], short, 1 << 20)
                .await?;
        }
        let url = format!("{}/{}/{}.git", self.git_url, owner, repo);
        // Re-point the remote every time: GITHUB_GIT_URL may have changed.
        let _ = self
            .git(&dir, &["remote", "remove", "origin"], short, 1 << 20)
            .await;
        self.git(&dir, &["remote", "add", "origin", &url], short, 1 << 20)
            .await?;
        let specs: Vec<String> = branches
            .iter()
            .map(|b| format!("+refs/heads/{b}:refs/heads/{b}"))
            .collect();
        let mut args = vec![
            "fetch",
            "--quiet",
            "--prune",
            "--no-tags",
            "origin",
            "+refs/pull/*/head:refs/pull/*/head",
        ];
        args.extend(specs.iter().map(String::as_str));
        self.git(&dir, &args, Duration::from_secs(1800), 1 << 20)
            .await?;
        Ok(())
    }

    /// The files of a head's diff against its merge base with `base_branch`, in the shape of
    /// GitHub's `/pulls/{n}/files`.
    pub async fn diff(
        &self,
        owner: &str,
        repo: &str,
        head_sha: &str,
        base_branch: &str,
    ) -> Result<Vec<FileEntry>, GitError> {
        let dir = self
            .path(owner, repo)
            .filter(|d| d.join("HEAD").exists())
            .ok_or_else(|| GitError::MissingCommit(head_sha.to_string()))?;
        if !hex_sha(head_sha) || !safe_ref(base_branch) {
            return Err(GitError::MissingCommit(head_sha.to_string()));
        }
        let t = Duration::from_secs(60);
        let commit = format!("{head_sha}^{{commit}}");
        if self
            .git(&dir, &["cat-file", "-e", &commit], t, 1 << 10)
            .await
            .is_err()
        {
            return Err(GitError::MissingCommit(head_sha.to_string()));
        }
        let base_ref = format!("refs/heads/{base_branch}");
        let base = self
            .git(&dir, &["merge-base", &base_ref, head_sha], t, 1 << 10)
            .await?;
        let base = String::from_utf8_lossy(&base).trim().to_string();
        let out = self
            .git(
                &dir,
                &[
                    "diff",
                    "--no-color",
                    "--no-ext-diff",
                    "--find-renames",
                    "--unified=3",
                    &base,
                    head_sha,
                ],
                Duration::from_secs(120),
                MAX_DIFF_BYTES,
            )
            .await?;
        Ok(parse_git_diff(&String::from_utf8_lossy(&out)))
    }
}

fn safe_ref(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
}

/// Unquotes a path as git prints it (`"a\tb"` style quoting for unusual names).
fn unquote(p: &str) -> String {
    let p = p.trim();
    if let Some(inner) = p.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        let mut out = Vec::new();
        let b = inner.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\\' && i + 1 < b.len() {
                let c = b[i + 1];
                if c.is_ascii_digit() && i + 3 < b.len() {
                    let oct = &inner[i + 1..i + 4];
                    if let Ok(v) = u8::from_str_radix(oct, 8) {
                        out.push(v);
                        i += 4;
                        continue;
                    }
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

/// Splits `git diff` output into per-file entries like GitHub's: `patch` holds the hunks (from
/// the first `@@`), absent for binary files, pure renames and patches over the size limit.
pub fn parse_git_diff(text: &str) -> Vec<FileEntry> {
    let mut out = Vec::new();
    let mut cur: Option<(FileEntry, String, bool)> = None;
    let finish = |cur: Option<(FileEntry, String, bool)>, out: &mut Vec<FileEntry>| {
        if let Some((mut f, patch, binary)) = cur {
            if !binary && !patch.is_empty() && patch.len() <= MAX_FILE_PATCH_BYTES {
                f.patch = Some(patch.trim_end_matches('\n').to_string());
            }
            out.push(f);
        }
    };
    for line in text.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            finish(cur.take(), &mut out);
            // `a/x b/x`; the real names come from the ---/+++ or rename lines when they differ.
            let rest = rest.trim_end();
            let b_path = rest
                .rsplit_once(" b/")
                .map(|(_, b)| b.to_string())
                .unwrap_or_else(|| rest.to_string());
            cur = Some((
                FileEntry {
                    filename: unquote(&b_path),
                    status: "modified".into(),
                    additions: 0,
                    deletions: 0,
                    patch: None,
                    previous_filename: None,
                },
                String::new(),
                false,
            ));
            continue;
        }
        let Some((f, patch, binary)) = cur.as_mut() else {
            continue;
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
            continue;
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
                f.filename = unquote(p.strip_prefix("b/").unwrap_or(p));
            }
        }
    }
    finish(cur.take(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_diff_output_becomes_github_shaped_files() {
        let text = "diff --git a/src/a.ts b/src/a.ts\nindex 1..2 100644\n--- a/src/a.ts\n+++ b/src/a.ts\n@@ -1,2 +1,3 @@\n x\n+y\n-z\n+w\ndiff --git a/img.png b/img.png\nnew file mode 100644\nindex 0..1\nBinary files /dev/null and b/img.png differ\ndiff --git a/old.rs b/new.rs\nsimilarity index 100%\nrename from old.rs\nrename to new.rs\ndiff --git a/gone.txt b/gone.txt\ndeleted file mode 100644\n--- a/gone.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n";
        let files = parse_git_diff(text);
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
    fn names_are_checked_before_touching_the_filesystem() {
        let m = Mirror::new(Path::new("/tmp/x"), "https://github.com");
        assert!(m.path("..", "r").is_none());
        assert!(m.path("o", "../../etc").is_none());
        assert!(m.path("Owner", "Repo").unwrap().ends_with("owner/repo.git"));
        assert!(!safe_ref("--upload-pack=evil"));
        assert!(!hex_sha("HEAD"));
    }

    #[test]
    fn quoted_paths_are_unquoted() {
        assert_eq!(unquote("\"a\\tb\""), "a\tb");
        assert_eq!(unquote("\"caf\\303\\251.txt\""), "café.txt");
    }
}
