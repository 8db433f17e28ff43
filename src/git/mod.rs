//! The local bare mirror of a repository: each scan fetches the heads of the PRs it listed (in
//! batches of refspecs, as a partial clone without blobs over 1 MiB) and the base branches, and
//! each head's diff is computed locally against its merge base — no API call per PR. Uses the
//! `git` command line.
//!
//! Everything a PR author controls is bounded while it is read: git's output streams through a
//! capped reader that stops git at the cap ([`stream::DiffStream`]); big files are never diffed
//! line by line (`core.bigFileThreshold`, and blobs over the limit are not even fetched); a fetch
//! stops when the data disk runs low; git runs with an environment cleared of the appliance's
//! secrets, in its own process group, killed whole on a timeout.

mod batch;
pub mod stream;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::github::FileEntry;
pub use stream::{DiffStream, MAX_FILE_PATCH_BYTES, ParsedDiff, parse_git_diff};

/// Largest `git diff` output read for one head: git is stopped there and the analysis is marked
/// degraded (`diff_capped`).
pub const MAX_DIFF_BYTES: usize = 16 << 20;
/// Blobs larger than this are neither fetched (partial clone filter) nor diffed line by line:
/// their files are listed without a patch, as GitHub omits patches of very large files.
pub const BLOB_LIMIT_BYTES: u64 = 1 << 20;
/// Refspecs per `git fetch`.
pub const FETCH_BATCH: usize = 256;
/// How often free space is measured while a fetch runs.
const DISK_POLL: Duration = Duration::from_millis(250);
/// The tree-level listing of a diff (no blob is read); the two commits, or `--stdin`, follow.
const RAW_ARGS: &[&str] = &[
    "diff-tree",
    "-r",
    "-z",
    "--raw",
    "--no-renames",
    "--no-abbrev",
];
/// The patches of a diff, as GitHub shows them (renames found, three lines of context); the two
/// commits, or `--stdin`, follow. Plumbing, so no user setting changes the format.
const PATCH_ARGS: &[&str] = &[
    "diff-tree",
    "-r",
    "-p",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--find-renames",
    "--unified=3",
];
/// Largest tree-level listing (`git diff --raw`) read for one head.
const RAW_CAP: usize = 8 << 20;
/// Files over the blob limit that one diff can leave out by name; beyond that the head is listed
/// without any patch.
const MAX_LARGE_FILES: usize = 1000;
/// Large files named one by one in the degraded notes.
const NAMED_LARGE_FILES: usize = 20;

/// Settings every git command runs with, bounding its memory: files over the blob limit count as
/// binary (no line-by-line diff, which made git use ~435 MB on a 20 MB file of short lines), pack
/// windows and the delta cache are bounded, rename detection is limited, and automatic
/// housekeeping runs inside the command (and so inside its time limit), not detached.
const GIT_LIMITS: &[&str] = &[
    "-c",
    "core.bigFileThreshold=1m",
    "-c",
    "core.packedGitLimit=256m",
    "-c",
    "core.packedGitWindowSize=32m",
    "-c",
    "core.deltaBaseCacheLimit=32m",
    "-c",
    "diff.renameLimit=1000",
    "-c",
    "gc.autoDetach=false",
    "-c",
    "maintenance.autoDetach=false",
];
/// The partial-clone filter of every fetch (matches [`BLOB_LIMIT_BYTES`]).
const BLOB_FILTER: &str = "blob:limit=1m";
/// The only environment variables git gets: what finding programs, locale, user config, proxies
/// and certificates need. Everything else — the appliance's tokens, keys and database URLs — is
/// cleared.
pub const GIT_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "XDG_CONFIG_HOME",
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "no_proxy",
    "NO_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH",
];

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
    /// A command printed more than we read.
    #[error("git output larger than {0} bytes")]
    TooLarge(usize),
    /// The data disk ran low: the fetch was stopped and its partial files removed.
    #[error("fetch stopped: {0}")]
    DiskLow(String),
}

/// A head's files as the mirror computed them, and what was left out.
#[derive(Debug, Default)]
pub struct MirrorDiff {
    /// GitHub-shaped file entries.
    pub files: Vec<FileEntry>,
    /// Notes for the analysis' `degraded` list: files over the blob limit (listed without a
    /// patch), and a diff cut at [`MAX_DIFF_BYTES`].
    pub degraded: Vec<String>,
}

/// What a fetch did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// PR heads asked for.
    pub fetched: usize,
    /// `git fetch` commands run.
    pub batches: usize,
    /// Local PR refs removed (PRs no longer listed).
    pub pruned: usize,
}

type RepoLocks = Arc<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>>;

/// Mirrors under `<data_root>/repos/<owner>/<repo>.git`, fetched from `<git_url>/<owner>/<repo>.git`.
/// A mirror is a cache of one machine: a worker process whose mirror lacks heads (a new machine,
/// or one that did not run the scan) fetches them itself ([`Mirror::ensure`]).
#[derive(Clone)]
pub struct Mirror {
    root: PathBuf,
    git_url: String,
    /// One lock per repository: two scans of one repository never fetch into it at once.
    locks: RepoLocks,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("root", &self.root)
            .field("git_url", &crate::config::redact_url(&self.git_url))
            .finish_non_exhaustive()
    }
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

fn safe_ref(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
}

/// Why a running command was stopped.
enum Stop {
    Eof,
    Sink,
    Timeout,
    Disk(String),
    Read(std::io::Error),
}

/// Kills git and whatever it started (index-pack, remote helpers): they share its process group.
fn kill_group(child: &mut tokio::process::Child) {
    if let Some(pid) = child
        .id()
        .and_then(|p| rustix::process::Pid::from_raw(p as i32))
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.start_kill();
}

/// A room check polled while a fetch runs: `Err(problem)` stops it.
pub type RoomCheck<'a> = &'a (dyn Fn() -> Result<(), String> + Sync);

impl Mirror {
    /// A mirror set rooted at `data_root`.
    pub fn new(data_root: &Path, git_url: &str) -> Self {
        Mirror {
            root: data_root.join("repos"),
            git_url: git_url.trim_end_matches('/').to_string(),
            locks: RepoLocks::default(),
        }
    }

    /// The bare repository of `owner/repo`.
    pub fn path(&self, owner: &str, repo: &str) -> Option<PathBuf> {
        (safe(owner) && safe(repo)).then(|| {
            self.root
                .join(owner.to_ascii_lowercase())
                .join(format!("{}.git", repo.to_ascii_lowercase()))
        })
    }

    fn lock_for(&self, dir: &Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(dir.to_path_buf()).or_default().clone()
    }

    /// The command line of one git call: the memory bounds, a cleared environment, no prompts,
    /// no lazy fetches of filtered-out blobs, its own process group.
    pub fn command(dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        cmd.arg("-C")
            .arg(dir)
            .args(GIT_LIMITS)
            .args(args)
            .env_clear()
            .envs(
                GIT_ENV
                    .iter()
                    .filter_map(|k| std::env::var_os(k).map(|v| (k, v))),
            )
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "true")
            .env("GIT_NO_LAZY_FETCH", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        cmd
    }

    /// Runs one git command, handing its standard output to `sink` as it comes. `sink` returns
    /// false to stop reading: git is then killed and the call returns `Ok(false)`. `watch` is
    /// polled every 250 ms while git runs (and once at its start); an `Err` stops git with
    /// [`GitError::DiskLow`]. `Ok(true)`: git ran to its end and succeeded.
    async fn run(
        &self,
        dir: &Path,
        args: &[&str],
        timeout: Duration,
        stdin: Option<Vec<u8>>,
        watch: Option<RoomCheck<'_>>,
        sink: &mut (dyn FnMut(&[u8]) -> bool + Send),
    ) -> Result<bool, GitError> {
        let name = args.first().copied().unwrap_or("git").to_string();
        let mut cmd = Self::command(dir, args);
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().map_err(|e| GitError::Spawn(e.to_string()))?;
        if let (Some(input), Some(mut w)) = (stdin, child.stdin.take()) {
            // Written beside the reading below, so a command that answers line by line never
            // blocks on a full pipe.
            tokio::spawn(async move {
                let _ = w.write_all(&input).await;
            });
        }
        let mut out = child
            .stdout
            .take()
            .ok_or_else(|| GitError::Spawn("no stdout".into()))?;
        let err = child.stderr.take();
        let stderr = tokio::spawn(async move {
            // The first 2 KiB for the error message; the rest is drained so git never blocks.
            let mut kept = Vec::new();
            if let Some(mut err) = err {
                let mut buf = [0u8; 4096];
                while let Ok(n) = err.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let room = 2048usize.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
            String::from_utf8_lossy(&kept).trim().to_string()
        });
        let deadline = tokio::time::Instant::now() + timeout;
        let mut buf = vec![0u8; 64 << 10];
        let mut poll = tokio::time::interval(DISK_POLL);
        let stop = loop {
            tokio::select! {
                r = out.read(&mut buf) => match r {
                    Ok(0) => break Stop::Eof,
                    Ok(n) => if !sink(&buf[..n]) { break Stop::Sink },
                    Err(e) => break Stop::Read(e),
                },
                _ = tokio::time::sleep_until(deadline) => break Stop::Timeout,
                _ = poll.tick(), if watch.is_some() => {
                    if let Some(Err(problem)) = watch.map(|w| w()) {
                        break Stop::Disk(problem);
                    }
                }
            }
        };
        let status = match stop {
            Stop::Eof => match tokio::time::timeout_at(deadline, child.wait()).await {
                Ok(Ok(s)) => Some(s),
                Ok(Err(e)) => return Err(GitError::Spawn(e.to_string())),
                Err(_) => None,
            },
            _ => None,
        };
        if status.is_none() {
            kill_group(&mut child);
            let _ = child.wait().await;
        }
        let stderr = stderr.await.unwrap_or_default();
        match (stop, status) {
            (Stop::Eof, Some(s)) if s.success() => Ok(true),
            (Stop::Eof, Some(_)) => Err(GitError::Failed {
                command: name,
                stderr: stderr.chars().take(500).collect(),
            }),
            (Stop::Eof | Stop::Timeout, _) => Err(GitError::Timeout(name)),
            (Stop::Sink, _) => Ok(false),
            (Stop::Disk(problem), _) => Err(GitError::DiskLow(problem)),
            (Stop::Read(e), _) => Err(GitError::Spawn(e.to_string())),
        }
    }

    /// A command whose whole (small) output is wanted: more than `limit` bytes is an error.
    async fn git(
        &self,
        dir: &Path,
        args: &[&str],
        timeout: Duration,
        limit: usize,
        stdin: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, GitError> {
        let mut out = Vec::new();
        let complete = self
            .run(dir, args, timeout, stdin, None, &mut |b: &[u8]| {
                if out.len() + b.len() > limit {
                    return false;
                }
                out.extend_from_slice(b);
                true
            })
            .await?;
        if !complete {
            return Err(GitError::TooLarge(limit));
        }
        Ok(out)
    }

    /// Creates the mirror if needed and fetches the heads of the PRs numbered `fetch` and the
    /// given base branches, in batches of [`FETCH_BATCH`] refspecs, without blobs over the limit.
    /// Local PR refs that are in neither `fetch` nor `keep` (PRs no longer listed) are removed.
    /// `room` is checked before and polled during every fetch: when it fails, git is stopped,
    /// its partial files are removed and [`GitError::DiskLow`] returned. Two syncs of one
    /// repository never run at once.
    pub async fn sync(
        &self,
        owner: &str,
        repo: &str,
        branches: &[&str],
        fetch: &[i64],
        keep: &[i64],
        room: RoomCheck<'_>,
    ) -> Result<SyncReport, GitError> {
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
        let lock = self.lock_for(&dir);
        let _held = lock.lock().await;
        room().map_err(GitError::DiskLow)?;
        let short = Duration::from_secs(30);
        if !dir.join("HEAD").exists() {
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| GitError::Spawn(e.to_string()))?;
            self.git(&dir, &["init", "--bare", "--quiet"], short, 1 << 20, None)
                .await?;
        }
        let url = format!("{}/{}/{}.git", self.git_url, owner, repo);
        // Set every time: GITHUB_GIT_URL may have changed. A promisor remote makes the blob
        // filter legal; GIT_NO_LAZY_FETCH keeps git from ever fetching a filtered blob later.
        for (key, value) in [
            ("remote.origin.url", url.as_str()),
            ("remote.origin.promisor", "true"),
            ("remote.origin.partialclonefilter", BLOB_FILTER),
        ] {
            self.git(&dir, &["config", key, value], short, 1 << 10, None)
                .await?;
        }
        let mut wanted: Vec<i64> = fetch.iter().copied().filter(|n| *n > 0).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut specs: Vec<String> = branches
            .iter()
            .map(|b| format!("+refs/heads/{b}:refs/heads/{b}"))
            .collect();
        specs.extend(
            wanted
                .iter()
                .map(|n| format!("+refs/pull/{n}/head:refs/pull/{n}/head")),
        );
        let mut report = SyncReport {
            fetched: wanted.len(),
            ..Default::default()
        };
        let mut first_error = None;
        for batch in specs.chunks(FETCH_BATCH) {
            let mut args = vec![
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                "--filter",
                BLOB_FILTER,
                "origin",
            ];
            args.extend(batch.iter().map(String::as_str));
            report.batches += 1;
            let r = self
                .run(
                    &dir,
                    &args,
                    Duration::from_secs(1800),
                    None,
                    Some(room),
                    &mut |_| true,
                )
                .await;
            match r {
                Ok(_) => {}
                Err(GitError::DiskLow(problem)) => {
                    remove_partial_fetch(&dir).await;
                    return Err(GitError::DiskLow(problem));
                }
                Err(e) => {
                    remove_partial_fetch(&dir).await;
                    tracing::warn!(repo = %format!("{owner}/{repo}"), error = %e, "a fetch batch failed; its heads come from the REST API");
                    first_error.get_or_insert(e);
                }
            }
        }
        let listed: BTreeSet<i64> = wanted.iter().chain(keep).copied().collect();
        report.pruned = self.prune_pull_refs(&dir, &listed).await?;
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// The commits among `shas` that the mirror of `owner/repo` does not have (all of them when
    /// there is no mirror yet).
    pub async fn missing(
        &self,
        owner: &str,
        repo: &str,
        shas: &[&str],
    ) -> Result<Vec<String>, GitError> {
        match self.existing(owner, repo) {
            Some(dir) => self.missing_in(&dir, shas).await,
            None => Ok(shas.iter().map(|s| s.to_string()).collect()),
        }
    }

    /// The commits among `shas` (hex ids; others are skipped) that the bare repository `dir`
    /// lacks, asked in one `git rev-list`.
    async fn missing_in(&self, dir: &Path, shas: &[&str]) -> Result<Vec<String>, GitError> {
        let wanted: Vec<&str> = shas.iter().copied().filter(|s| hex_sha(s)).collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec!["rev-list", "--no-walk", "--ignore-missing"];
        args.extend(&wanted);
        // One id per line for each commit found.
        let limit = wanted.len() * 80 + 4096;
        let out = self
            .git(dir, &args, Duration::from_secs(60), limit, None)
            .await?;
        let have = String::from_utf8_lossy(&out);
        let have: Vec<&str> = have.lines().map(str::trim).collect();
        Ok(wanted
            .into_iter()
            .filter(|s| !have.iter().any(|h| h.starts_with(s)))
            .map(str::to_string)
            .collect())
    }

    /// Makes sure the mirror has the heads `(number, sha)`: fetches the PRs whose head it lacks
    /// (with the base `branches`), keeping every PR ref it has. Returns how many PRs it fetched.
    pub async fn ensure(
        &self,
        owner: &str,
        repo: &str,
        heads: &[(i64, &str)],
        branches: &[&str],
        room: RoomCheck<'_>,
    ) -> Result<usize, GitError> {
        let shas: Vec<&str> = heads.iter().map(|(_, h)| *h).collect();
        let missing = self.missing(owner, repo, &shas).await?;
        if missing.is_empty() {
            return Ok(0);
        }
        let fetch: Vec<i64> = heads
            .iter()
            .filter(|(_, h)| missing.iter().any(|m| m == h))
            .map(|(n, _)| *n)
            .collect();
        let keep = match self.existing(owner, repo) {
            Some(dir) => self.local_pull_numbers(&dir).await?,
            None => Vec::new(),
        };
        self.sync(owner, repo, branches, &fetch, &keep, room)
            .await
            .map(|r| r.fetched)
    }

    /// The PR numbers the mirror has refs of.
    async fn local_pull_numbers(&self, dir: &Path) -> Result<Vec<i64>, GitError> {
        let refs = self
            .git(
                dir,
                &["for-each-ref", "--format=%(refname)", "refs/pull/"],
                Duration::from_secs(120),
                64 << 20,
                None,
            )
            .await?;
        Ok(String::from_utf8_lossy(&refs)
            .lines()
            .filter_map(|r| {
                r.strip_prefix("refs/pull/")?
                    .split('/')
                    .next()?
                    .parse()
                    .ok()
            })
            .collect())
    }

    /// Removes `refs/pull/N/head` of PRs not in `listed`.
    async fn prune_pull_refs(&self, dir: &Path, listed: &BTreeSet<i64>) -> Result<usize, GitError> {
        let t = Duration::from_secs(120);
        let refs = self
            .git(
                dir,
                &["for-each-ref", "--format=%(refname)", "refs/pull/"],
                t,
                64 << 20,
                None,
            )
            .await?;
        let mut script = String::new();
        let mut n = 0;
        for r in String::from_utf8_lossy(&refs).lines() {
            let number = r
                .strip_prefix("refs/pull/")
                .and_then(|rest| rest.split('/').next())
                .and_then(|x| x.parse::<i64>().ok());
            if number.is_some_and(|x| !listed.contains(&x)) {
                script.push_str(&format!("delete {r}\n"));
                n += 1;
            }
        }
        if n > 0 {
            self.git(
                dir,
                &["update-ref", "--stdin"],
                t,
                1 << 20,
                Some(script.into_bytes()),
            )
            .await?;
        }
        Ok(n)
    }

    /// The files of a head's diff against its merge base with `base_branch`, in the shape of
    /// GitHub's `/pulls/{n}/files`. Files whose blobs are over the limit (or were filtered out of
    /// the fetch) are listed without a patch; the rest is diffed through the capped reader.
    /// One head of [`Mirror::diffs`].
    pub async fn diff(
        &self,
        owner: &str,
        repo: &str,
        head_sha: &str,
        base_branch: &str,
    ) -> Result<MirrorDiff, GitError> {
        self.diffs(owner, repo, &[(head_sha, base_branch)])
            .await
            .pop()
            .unwrap_or_else(|| Err(GitError::MissingCommit(head_sha.to_string())))
    }

    /// The same as [`Mirror::diff`], every step its own git command: what a batch falls back to
    /// for a head it cannot take, and the reference the batch is tested against.
    pub async fn diff_alone(
        &self,
        owner: &str,
        repo: &str,
        head_sha: &str,
        base_branch: &str,
    ) -> Result<MirrorDiff, GitError> {
        let dir = self
            .existing(owner, repo)
            .ok_or_else(|| GitError::MissingCommit(head_sha.to_string()))?;
        let base = self.merge_base(&dir, head_sha, base_branch).await?;
        self.diff_from_base(&dir, &base, head_sha).await
    }

    /// The bare repository of `owner/repo` if the mirror has it.
    fn existing(&self, owner: &str, repo: &str) -> Option<PathBuf> {
        self.path(owner, repo).filter(|d| d.join("HEAD").exists())
    }

    /// The merge base of a head with the tip of its base branch. A head the mirror lacks fails
    /// here (no separate `cat-file -e`): the caller reads the PR's files from the REST API.
    async fn merge_base(
        &self,
        dir: &Path,
        head_sha: &str,
        base_branch: &str,
    ) -> Result<String, GitError> {
        let missing = || GitError::MissingCommit(head_sha.to_string());
        if !hex_sha(head_sha) || !safe_ref(base_branch) {
            return Err(missing());
        }
        let base_ref = format!("refs/heads/{base_branch}");
        let out = self
            .git(
                dir,
                &["merge-base", &base_ref, head_sha],
                Duration::from_secs(60),
                1 << 10,
                None,
            )
            .await
            .map_err(|_| missing())?;
        let base = String::from_utf8_lossy(&out).trim().to_string();
        if hex_sha(&base) {
            Ok(base)
        } else {
            Err(missing())
        }
    }

    /// A head's files against `base` (its merge base), one git command per step.
    async fn diff_from_base(
        &self,
        dir: &Path,
        base: &str,
        head_sha: &str,
    ) -> Result<MirrorDiff, GitError> {
        // 1. What changed, from the trees alone (no blob is read).
        let mut args = RAW_ARGS.to_vec();
        args.extend([base, head_sha]);
        let raw = self
            .git(dir, &args, Duration::from_secs(60), RAW_CAP, None)
            .await?;
        let entries = parse_raw(&raw);
        // 2. Which blobs are over the limit or absent (filtered out of the fetch).
        let sizes = self
            .blob_sizes(dir, entries.iter().flat_map(RawEntry::oids).collect())
            .await?;
        let large = sizes.large_paths(&entries);
        self.patch_alone(dir, base, head_sha, &entries, &large)
            .await
    }

    /// The patches of a head whose listing is known, leaving out the files in `large`, which
    /// are listed without a patch.
    async fn patch_alone(
        &self,
        dir: &Path,
        base: &str,
        head_sha: &str,
        entries: &[RawEntry],
        large: &BTreeSet<String>,
    ) -> Result<MirrorDiff, GitError> {
        let mut degraded = Vec::new();
        let large_entries: Vec<FileEntry> = entries
            .iter()
            .filter(|e| large.contains(e.path.as_str()))
            .map(RawEntry::without_patch)
            .collect();
        for f in large_entries.iter().take(NAMED_LARGE_FILES) {
            degraded.push(format!("file_over_blob_limit: {}", f.filename));
        }
        if large_entries.len() > NAMED_LARGE_FILES {
            degraded.push(format!(
                "files_over_blob_limit: {} (over {} MiB each, listed without a patch)",
                large_entries.len(),
                BLOB_LIMIT_BYTES >> 20
            ));
        }
        if large_entries.len() > MAX_LARGE_FILES {
            // Too many to leave out by name: list every file without a patch.
            degraded.push("diff_skipped: too many files over the blob limit".into());
            let files = entries.iter().map(RawEntry::without_patch).collect();
            return Ok(MirrorDiff { files, degraded });
        }
        // 3. The diff of everything else, streamed through the cap.
        let excludes: Vec<String> = large_entries
            .iter()
            .map(|f| format!(":(exclude,literal){}", f.filename))
            .collect();
        let mut args = PATCH_ARGS.to_vec();
        args.extend([base, head_sha]);
        if !excludes.is_empty() {
            args.push("--");
            args.extend(excludes.iter().map(String::as_str));
        }
        let mut parser = DiffStream::new(MAX_DIFF_BYTES);
        self.run(dir, &args, Duration::from_secs(120), None, None, &mut |b| {
            parser.push(b)
        })
        .await?;
        Ok(assemble(entries, parser.finish(), large_entries, degraded))
    }

    /// The text of `path` at the tip of `branch` in the mirror, at most `cap` bytes (None: no
    /// mirror of the repository, no such branch or file, or a file over the cap).
    pub async fn file_on_branch(
        &self,
        owner: &str,
        repo: &str,
        branch: &str,
        path: &str,
        cap: usize,
    ) -> Option<String> {
        let dir = self.existing(owner, repo)?;
        if !safe_ref(branch) || path.starts_with('-') || path.contains("..") {
            return None;
        }
        let spec = format!("refs/heads/{branch}:{path}");
        let out = self
            .git(
                &dir,
                &["cat-file", "blob", &spec],
                Duration::from_secs(30),
                cap,
                None,
            )
            .await
            .ok()?;
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    /// The sizes of blobs `oids` (all-zero ids skipped): which are over the limit, and which the
    /// mirror has at all. One `cat-file` for any number of blobs.
    async fn blob_sizes(&self, dir: &Path, mut oids: Vec<&str>) -> Result<BlobSizes, GitError> {
        oids.retain(|o| o.bytes().any(|b| b != b'0'));
        oids.sort_unstable();
        oids.dedup();
        let mut sizes = BlobSizes::default();
        if oids.is_empty() {
            return Ok(sizes);
        }
        let input: String = oids.iter().map(|o| format!("{o}\n")).collect();
        // Every answer is one short line per blob asked.
        let limit = oids.len() * 160 + 4096;
        let out = self
            .git(
                dir,
                &["cat-file", "--batch-check=%(objectname) %(objectsize)"],
                Duration::from_secs(60),
                limit,
                Some(input.into_bytes()),
            )
            .await?;
        for line in String::from_utf8_lossy(&out).lines() {
            let mut parts = line.split_whitespace();
            let (Some(oid), Some(what)) = (parts.next(), parts.next()) else {
                continue;
            };
            sizes.answered.insert(oid.to_string());
            let over = what
                .parse::<u64>()
                .map(|size| size > BLOB_LIMIT_BYTES)
                .unwrap_or(true);
            if over {
                sizes.big.insert(oid.to_string());
            }
        }
        Ok(sizes)
    }
}

/// What `cat-file --batch-check` said about the blobs of some listings.
#[derive(Debug, Default)]
struct BlobSizes {
    /// Blobs over the limit (or whose size could not be read).
    big: BTreeSet<String>,
    /// Blobs the mirror has (a blob filtered out of the fetch is "missing").
    answered: BTreeSet<String>,
}

impl BlobSizes {
    /// Paths among `entries` whose old or new blob is over the limit or not in the mirror.
    fn large_paths(&self, entries: &[RawEntry]) -> BTreeSet<String> {
        entries
            .iter()
            .filter(|e| {
                e.oids()
                    .any(|o| self.big.contains(o) || !self.answered.contains(o))
            })
            .map(|e| e.path.clone())
            .collect()
    }
}

/// A head's files: the patches git printed, each with the blob id of the file after the change
/// (as GitHub lists it, `sha`), then the files listed without a patch.
fn assemble(
    entries: &[RawEntry],
    parsed: ParsedDiff,
    mut large_entries: Vec<FileEntry>,
    mut degraded: Vec<String>,
) -> MirrorDiff {
    if parsed.capped {
        degraded.push(format!(
            "diff_capped: git diff output over {} MiB; the first {} files kept",
            MAX_DIFF_BYTES >> 20,
            parsed.files.len()
        ));
    }
    let mut files = parsed.files;
    let blobs: BTreeMap<&str, &str> = entries
        .iter()
        .map(|e| (e.path.as_str(), e.new.as_str()))
        .collect();
    for f in &mut files {
        f.sha = blobs.get(f.filename.as_str()).and_then(|o| blob_id(o));
    }
    files.append(&mut large_entries);
    MirrorDiff { files, degraded }
}

/// Removes what a stopped fetch leaves: temporary packs and quarantine folders.
async fn remove_partial_fetch(dir: &Path) {
    for sub in ["objects/pack", "objects"] {
        let Ok(mut rd) = tokio::fs::read_dir(dir.join(sub)).await else {
            continue;
        };
        while let Ok(Some(e)) = rd.next_entry().await {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("tmp_") || name.starts_with("incoming-") {
                let p = e.path();
                let _ = if p.is_dir() {
                    tokio::fs::remove_dir_all(&p).await
                } else {
                    tokio::fs::remove_file(&p).await
                };
            }
        }
    }
}

/// One line of `git diff --raw -z --no-renames`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// Blob before (all zeros when added).
    pub old: String,
    /// Blob after (all zeros when removed).
    pub new: String,
    /// GitHub's word for the status letter.
    pub status: &'static str,
    /// The path.
    pub path: String,
}

impl RawEntry {
    /// Its blob ids, without the all-zero id of an added or removed side.
    fn oids(&self) -> impl Iterator<Item = &str> {
        [self.old.as_str(), self.new.as_str()]
            .into_iter()
            .filter(|o| o.bytes().any(|b| b != b'0'))
    }

    /// The file as GitHub lists one whose patch it omits: its path and status only.
    pub fn without_patch(&self) -> FileEntry {
        FileEntry {
            filename: self.path.clone(),
            status: self.status.to_string(),
            additions: 0,
            deletions: 0,
            patch: None,
            previous_filename: None,
            sha: blob_id(&self.new),
        }
    }
}

/// A blob id of `git diff --raw`, None for the all-zero id of a removed side.
fn blob_id(oid: &str) -> Option<String> {
    oid.bytes().any(|b| b != b'0').then(|| oid.to_string())
}

/// Parses `:mode mode old new S\0path\0` records.
pub fn parse_raw(raw: &[u8]) -> Vec<RawEntry> {
    let mut out = Vec::new();
    let mut parts = raw.split(|&b| b == 0);
    while let (Some(meta), Some(path)) = (parts.next(), parts.next()) {
        let meta = String::from_utf8_lossy(meta);
        let fields: Vec<&str> = meta.trim_start_matches(':').split(' ').collect();
        if fields.len() < 5 || path.is_empty() {
            continue;
        }
        let status = match fields[4].chars().next() {
            Some('A') => "added",
            Some('D') => "removed",
            Some('T') => "changed",
            _ => "modified",
        };
        out.push(RawEntry {
            old: fields[2].to_string(),
            new: fields[3].to_string(),
            status,
            path: String::from_utf8_lossy(path).into_owned(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn raw_records_are_parsed() {
        let z = "0".repeat(40);
        let a = "a".repeat(40);
        let raw = format!(
            ":000000 100644 {z} {a} A\0new file.txt\0:100644 000000 {a} {z} D\0gone\0:100644 100644 {a} {a} M\0src/x.rs\0"
        );
        let e = parse_raw(raw.as_bytes());
        assert_eq!(e.len(), 3);
        assert_eq!((e[0].status, e[0].path.as_str()), ("added", "new file.txt"));
        assert_eq!(e[1].status, "removed");
        assert_eq!(e[2].status, "modified");
        assert!(parse_raw(b"garbage\0\0:1 2\0x\0").is_empty());
    }

    #[test]
    fn credentials_in_the_git_url_stay_out_of_debug_output() {
        let m = Mirror::new(Path::new("/tmp/x"), "https://user:hunter2@git.example");
        let d = format!("{m:?}");
        assert!(!d.contains("hunter2"), "{d}");
        assert!(d.contains("git.example"), "{d}");
    }
}
