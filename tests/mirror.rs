//! The local git mirror against hostile PRs (issue 14, H1 and H2): a PR author controls what
//! the mirror fetches and what `git diff` prints, so both are bounded while they happen. A file
//! too big to diff is listed without a patch, a diff over the cap is cut there, a closed PR's
//! big ref is never fetched, a fetch stops when the disk runs low, two scans of one repository
//! never fetch into it at once, and git never sees the appliance's secrets. Every hostile input
//! is generated here.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clawtriage::git::{GitError, MAX_DIFF_BYTES, Mirror};
use common::fake_github::{FakeRepo, simple_pr};
use common::{App, FakeGithub, KillOnDrop, Services, git, settings};
use serde_json::json;

/// A "GitHub" git server made here: a work tree and a bare repository at `<root>/o/r.git` with
/// `main` and `refs/pull/N/head` refs. `filters`: whether it serves partial clones (GitHub does).
struct Remote {
    _tmp: tempfile::TempDir,
    work: PathBuf,
    bare: PathBuf,
    root: PathBuf,
}

impl Remote {
    fn new(filters: bool) -> Remote {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().join("work");
        let root = tmp.path().join("remote");
        let bare = root.join("o/r.git");
        std::fs::create_dir_all(work.join("src")).unwrap();
        std::fs::create_dir_all(&bare).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        std::fs::write(work.join("src/lib.ts"), "export const a = 1;\n").unwrap();
        git(&work, &["add", "."]);
        git(&work, &["commit", "-q", "-m", "base"]);
        git(&bare, &["init", "-q", "--bare"]);
        if filters {
            git(&bare, &["config", "uploadpack.allowFilter", "true"]);
        }
        git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
        Remote {
            _tmp: tmp,
            work,
            bare,
            root,
        }
    }

    /// Commits `files` on a branch off main and publishes it as PR `n`'s head.
    fn pr(&self, n: i64, files: &[(&str, Vec<u8>)]) -> String {
        self.pr_edit(n, |work| {
            for (path, content) in files {
                let p = work.join(path);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, content).unwrap();
            }
        })
    }

    /// Commits what `edit` does to the work tree on a branch off main and publishes it as PR
    /// `n`'s head.
    fn pr_edit(&self, n: i64, edit: impl FnOnce(&Path)) -> String {
        git(
            &self.work,
            &["checkout", "-q", "-B", &format!("pr{n}"), "main"],
        );
        edit(&self.work);
        git(&self.work, &["add", "-A"]);
        git(
            &self.work,
            &["commit", "-q", "--allow-empty", "-m", &format!("pr {n}")],
        );
        git(
            &self.work,
            &[
                "push",
                "-q",
                self.bare.to_str().unwrap(),
                &format!("HEAD:refs/pull/{n}/head"),
            ],
        );
        git(&self.work, &["rev-parse", "HEAD"])
    }

    /// Another PR ref to a commit the remote has already.
    fn publish(&self, n: i64, sha: &str) {
        git(
            &self.bare,
            &["update-ref", &format!("refs/pull/{n}/head"), sha],
        );
    }

    fn url(&self) -> String {
        format!("file://{}", self.root.display())
    }
}

/// The appliance with its git mirror on, after a finished scan of `o/r` listing `heads` (PRs
/// whose heads `remote` published).
struct MirrorScan {
    svc: Services,
    _gh: FakeGithub,
    data: tempfile::TempDir,
    app: App,
    status: serde_json::Value,
}

impl MirrorScan {
    async fn run(remote: &Remote, heads: &[(i64, &String)], snapshot: &str) -> MirrorScan {
        let mut repo = FakeRepo {
            default_branch: "main".into(),
            ..Default::default()
        };
        for (n, sha) in heads {
            let (pr, _) = simple_pr(*n, sha, &format!("pr {n}"), vec![]);
            repo.pulls.push(pr);
        }
        let svc = Services::new().await;
        let gh = FakeGithub::start().await;
        gh.add_repo("o", "r", repo);
        let data = tempfile::tempdir().unwrap();
        let mut s = settings(&svc, &gh.url());
        s.git_mirror = "on".into();
        s.github_git_url = remote.url();
        s.data_root = data.path().display().to_string();
        let app = App::start(s).await;
        let (st, _) = app
            .trigger(json!({"owner":"o","repo":"r","snapshot": snapshot}))
            .await;
        assert_eq!(st, 202);
        let status = app
            .wait_scan(&format!("scan:o/r:{snapshot}"), Duration::from_secs(120))
            .await;
        assert_eq!(status["state"], "done", "{status}");
        MirrorScan {
            svc,
            _gh: gh,
            data,
            app,
            status,
        }
    }
}

/// `n` bytes of short lines: the shape that made git diff use ~435 MB for 20 MB.
fn short_lines(n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 8);
    let mut i = 0u64;
    while v.len() < n {
        v.extend_from_slice(format!("x{}\n", i % 10).as_bytes());
        i += 1;
    }
    v
}

/// 24 files under the blob limit, each with a patch under the per-file limit: each is diffed
/// and kept, together they print ~22 MB, more than the cap.
fn wide_files() -> Vec<(String, Vec<u8>)> {
    (0..24)
        .map(|i| (format!("gen/f{i:02}.txt"), short_lines(700 << 10)))
        .collect()
}

/// `n` incompressible bytes.
fn random(n: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(n as u64);
    (0..n).map(|_| rng.u8(..)).collect()
}

/// Bytes under `dir`.
fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let m = e.metadata().unwrap();
        total += if m.is_dir() {
            dir_size(&e.path())
        } else {
            m.len()
        };
    }
    total
}

fn ok() -> Result<(), String> {
    Ok(())
}

fn refs(dir: &Path) -> Vec<String> {
    let out = git(dir, &["for-each-ref", "--format=%(refname)", "refs/pull/"]);
    out.lines().map(str::to_string).collect()
}

#[tokio::test]
async fn a_big_file_is_listed_without_a_patch_and_never_diffed_line_by_line() {
    // A remote without partial-clone support: the 20 MB blob does reach the mirror.
    let remote = Remote::new(false);
    let head = remote.pr(
        1,
        &[
            ("data/big.txt", short_lines(20 << 20)),
            ("src/lib.ts", b"export const a = 2;\n".to_vec()),
        ],
    );
    let data = tempfile::tempdir().unwrap();
    let m = Mirror::new(data.path(), &remote.url());
    m.sync("o", "r", &["main"], &[1], &[1], &ok).await.unwrap();
    let d = m.diff("o", "r", &head, "main").await.unwrap();
    let big = d
        .files
        .iter()
        .find(|f| f.filename == "data/big.txt")
        .expect("the big file is listed");
    assert!(
        big.patch.is_none(),
        "no patch for a file over the blob limit"
    );
    assert_eq!(
        (big.additions, big.deletions),
        (0, 0),
        "its lines were never diffed"
    );
    assert_eq!(big.status, "added");
    assert!(
        d.degraded
            .contains(&"file_over_blob_limit: data/big.txt".to_string()),
        "{:?}",
        d.degraded
    );
    let lib = d.files.iter().find(|f| f.filename == "src/lib.ts").unwrap();
    assert_eq!(
        lib.patch.as_deref(),
        Some("@@ -1 +1 @@\n-export const a = 1;\n+export const a = 2;")
    );
}

#[tokio::test]
async fn a_diff_over_the_cap_is_cut_there_and_marked() {
    let remote = Remote::new(true);
    let files = wide_files();
    let head = remote.pr(
        2,
        &files
            .iter()
            .map(|(p, c)| (p.as_str(), c.clone()))
            .collect::<Vec<_>>(),
    );
    let data = tempfile::tempdir().unwrap();
    let m = Mirror::new(data.path(), &remote.url());
    m.sync("o", "r", &["main"], &[2], &[2], &ok).await.unwrap();
    let d = m.diff("o", "r", &head, "main").await.unwrap();
    assert!(
        d.degraded.iter().any(|n| n.starts_with("diff_capped: ")),
        "{:?}",
        d.degraded
    );
    assert!(
        !d.files.is_empty() && d.files.len() < 24,
        "cut part-way: {} files",
        d.files.len()
    );
    let kept: usize = d
        .files
        .iter()
        .map(|f| f.patch.as_ref().map_or(0, String::len))
        .sum();
    assert!(
        kept > MAX_DIFF_BYTES / 2 && kept <= MAX_DIFF_BYTES,
        "{kept} bytes of patches kept"
    );
}

#[tokio::test]
async fn only_the_asked_heads_are_fetched_in_batches_without_big_blobs() {
    let remote = Remote::new(true);
    let open = remote.pr(
        1,
        &[
            ("src/lib.ts", b"export const a = 3;\n".to_vec()),
            ("assets/blob.bin", random(3 << 20)),
        ],
    );
    // A closed PR nobody lists, with 5 MB of incompressible data.
    remote.pr(2, &[("dump.bin", random(5 << 20))]);
    let data = tempfile::tempdir().unwrap();
    let m = Mirror::new(data.path(), &remote.url());
    let dir = m.path("o", "r").unwrap();
    let r = m.sync("o", "r", &["main"], &[1], &[1], &ok).await.unwrap();
    assert_eq!((r.fetched, r.batches), (1, 1));
    assert_eq!(
        refs(&dir),
        vec!["refs/pull/1/head"],
        "the closed PR's ref stays away"
    );
    let size = dir_size(&dir.join("objects"));
    assert!(
        size < 512 << 10,
        "neither the closed PR's 5 MB nor the 3 MB blob came: {size} bytes"
    );
    // The filtered blob's file is listed without a patch, and git did not fetch it lazily.
    let d = m.diff("o", "r", &open, "main").await.unwrap();
    let bin = d
        .files
        .iter()
        .find(|f| f.filename == "assets/blob.bin")
        .unwrap();
    assert!(bin.patch.is_none());
    assert!(
        d.files
            .iter()
            .any(|f| f.filename == "src/lib.ts" && f.patch.is_some())
    );
    assert!(dir_size(&dir.join("objects")) < 512 << 10, "no lazy fetch");

    // 300 heads go in two batches; refs of heads no longer listed are removed.
    for n in 10..310 {
        remote.publish(n, &open);
    }
    let many: Vec<i64> = (10..310).collect();
    let r = m.sync("o", "r", &["main"], &many, &[1], &ok).await.unwrap();
    assert_eq!((r.fetched, r.batches, r.pruned), (300, 2, 0));
    assert_eq!(refs(&dir).len(), 301);
    let r = m.sync("o", "r", &["main"], &[], &[1], &ok).await.unwrap();
    assert_eq!((r.batches, r.pruned), (1, 300));
    assert_eq!(refs(&dir), vec!["refs/pull/1/head"]);
}

/// Makes the remote slow to serve: `git upload-pack` behind a wrapper that first writes
/// `start` to `log`, sleeps `secs`, and writes `end` when done.
fn slow_upload_pack(mirror_dir: &Path, tools: &Path, secs: u32, log: &Path) {
    let wrapper = tools.join("slow-upload-pack");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho start >> '{log}'\nsleep {secs}\ngit upload-pack \"$@\"\nrc=$?\necho end >> '{log}'\nexit $rc\n",
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    git(
        mirror_dir,
        &[
            "config",
            "remote.origin.uploadpack",
            wrapper.to_str().unwrap(),
        ],
    );
}

#[tokio::test]
async fn a_fetch_is_stopped_when_the_disk_runs_low_and_leaves_nothing_behind() {
    let remote = Remote::new(true);
    remote.pr(1, &[("src/lib.ts", b"export const a = 4;\n".to_vec())]);
    let head2 = remote.pr(2, &[("src/lib.ts", b"export const a = 5;\n".to_vec())]);
    let data = tempfile::tempdir().unwrap();
    let m = Mirror::new(data.path(), &remote.url());
    let dir = m.path("o", "r").unwrap();
    m.sync("o", "r", &["main"], &[1], &[1], &ok).await.unwrap();
    let tools = tempfile::tempdir().unwrap();
    let log = tools.path().join("upload-pack.log");
    slow_upload_pack(&dir, tools.path(), 3, &log);
    // Room at the start; the disk fills while the fetch runs.
    let checks = std::sync::atomic::AtomicU32::new(0);
    let room = || {
        if checks.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 3 {
            Ok(())
        } else {
            Err("data disk nearly full: 3 MiB free".to_string())
        }
    };
    let started = std::time::Instant::now();
    let r = m.sync("o", "r", &["main"], &[2], &[1, 2], &room).await;
    match r {
        Err(GitError::DiskLow(p)) => assert!(p.contains("nearly full"), "{p}"),
        other => panic!("expected DiskLow, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "stopped during the fetch, not after it: {:?}",
        started.elapsed()
    );
    assert!(
        checks.load(std::sync::atomic::Ordering::SeqCst) > 3,
        "polled during the fetch"
    );
    assert_eq!(refs(&dir), vec!["refs/pull/1/head"], "nothing half-fetched");
    let leftovers: Vec<String> = std::fs::read_dir(dir.join("objects/pack"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("tmp_"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The fetch's helpers were stopped with it (its process group).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let lines = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        lines.trim(),
        "start",
        "upload-pack was killed before it ended: {lines}"
    );
    // With room again the same sync completes.
    git(&dir, &["config", "--unset", "remote.origin.uploadpack"]);
    m.sync("o", "r", &["main"], &[2], &[1, 2], &ok)
        .await
        .unwrap();
    assert!(m.diff("o", "r", &head2, "main").await.is_ok());
}

#[tokio::test]
async fn two_syncs_of_one_repository_never_fetch_at_once() {
    let remote = Remote::new(true);
    remote.pr(1, &[("src/lib.ts", b"export const a = 6;\n".to_vec())]);
    remote.pr(2, &[("src/lib.ts", b"export const a = 7;\n".to_vec())]);
    let data = tempfile::tempdir().unwrap();
    let m = Mirror::new(data.path(), &remote.url());
    let dir = m.path("o", "r").unwrap();
    m.sync("o", "r", &["main"], &[], &[], &ok).await.unwrap();
    let tools = tempfile::tempdir().unwrap();
    let log = tools.path().join("upload-pack.log");
    slow_upload_pack(&dir, tools.path(), 1, &log);
    let (a, b) = tokio::join!(
        m.sync("o", "r", &["main"], &[1], &[1, 2], &ok),
        m.sync("o", "r", &["main"], &[2], &[1, 2], &ok)
    );
    a.unwrap();
    b.unwrap();
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        lines,
        ["start", "end", "start", "end"],
        "fetches overlapped"
    );
}

#[tokio::test]
async fn a_hostile_pr_is_analysed_once_as_degraded_and_closed_prs_are_never_fetched() {
    let remote = Remote::new(true);
    let big = remote.pr(
        1,
        &[
            ("data/big.txt", short_lines(20 << 20)),
            ("src/lib.ts", b"export const a = 8;\n".to_vec()),
        ],
    );
    let files = wide_files();
    let wide = remote.pr(
        2,
        &files
            .iter()
            .map(|(p, c)| (p.as_str(), c.clone()))
            .collect::<Vec<_>>(),
    );
    // Closed on GitHub, so not listed: its 5 MB must never reach the mirror.
    remote.pr(3, &[("dump.bin", random(5 << 20))]);

    let m = MirrorScan::run(&remote, &[(1, &big), (2, &wide)], "hostile").await;
    let (svc, data, st) = (&m.svc, &m.data, &m.status);
    assert_eq!(st["sourceMirror"], 2, "{st}");
    assert_eq!(st["prsFailed"], 0, "{st}");
    let c = svc.client().await;
    let rows = c
        .query(
            "SELECT number, status, attempts, degraded::text FROM analysis_runs ORDER BY number",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let degraded: Vec<String> = rows.iter().map(|r| r.get(3)).collect();
    for r in &rows {
        let n: i64 = r.get(0);
        assert_eq!(r.get::<_, String>(1), "done", "#{n} finished, not failed");
        assert_eq!(r.get::<_, i32>(2), 1, "#{n} ran once");
    }
    assert!(
        degraded[0].contains("file_over_blob_limit: data/big.txt"),
        "{}",
        degraded[0]
    );
    assert!(degraded[1].contains("diff_capped: "), "{}", degraded[1]);
    let mirror = data.path().join("repos/o/r.git");
    assert!(refs(&mirror).iter().all(|r| r != "refs/pull/3/head"));
    let size = dir_size(&mirror.join("objects"));
    assert!(size < 2 << 20, "mirror holds {size} bytes");
    m.app.stop().await;
}

#[tokio::test]
async fn git_runs_without_the_appliances_secrets_and_a_few_times_per_batch() {
    let remote = Remote::new(true);
    let mut repo = FakeRepo {
        default_branch: "main".into(),
        ..Default::default()
    };
    for n in 1..=6 {
        let text = format!("export const a = {n};\n");
        let head = remote.pr(n, &[("src/lib.ts", text.into_bytes())]);
        let (pr, _) = simple_pr(n, &head, &format!("pr {n}"), vec![]);
        repo.pulls.push(pr);
    }
    let svc = Services::new().await;
    let gh = FakeGithub::start().await;
    gh.add_repo("o", "r", repo);
    // A `git` first on PATH that records its environment, then runs the real one.
    let tools = tempfile::tempdir().unwrap();
    let real_git = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let dump = tools.path().join("git-env");
    std::fs::write(
        tools.path().join("git"),
        format!(
            "#!/bin/sh\nenv >> '{dump}'\necho \"git-args $*\" >> '{dump}'\nexec '{real_git}' \"$@\"\n",
            dump = dump.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        tools.path().join("git"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        tools.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let data = tempfile::tempdir().unwrap();
    let port = common::services::free_port();
    let secrets = [
        ("GITHUB_TOKEN", "ghp_gitMustNotSeeThis0123456789"),
        ("DASHBOARD_TOKEN", "dashboard-token-git-must-not-see-0123"),
    ];
    let mut cmd = common::appliance_command(&svc, &gh.url(), port);
    cmd.env("PATH", &path)
        .env("GIT_MIRROR", "on")
        .env("GITHUB_GIT_URL", remote.url())
        .env("DATA_ROOT", data.path())
        .env("PUBLIC_SCAN_ALLOWED_REPOS", "o/r")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in secrets {
        cmd.env(k, v);
    }
    let _app = KillOnDrop(cmd.spawn().unwrap());
    common::services::wait_for_port(port, Duration::from_secs(60));
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/api/ops/public-scan"))
        .bearer_auth("ops-token-for-tests-0123456789abcdef")
        .json(&json!({"owner":"o","repo":"r","snapshot":"env"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let st = common::wait_scan_at(&http, &base, "scan:o/r:env", Duration::from_secs(60)).await;
    assert_eq!(st["sourceMirror"], 6, "git ran: {st}");
    let env = std::fs::read_to_string(&dump).unwrap();
    // The six heads of the scan's one batch: five git commands for all of them (which heads
    // are there, their merge bases, listings, blob sizes, patches).
    let calls = |what: &str| {
        env.lines()
            .filter(|l| l.starts_with("git-args ") && l.contains(what))
            .count()
    };
    assert_eq!(calls(" merge-base "), 0, "{env}");
    assert_eq!(calls(" rev-parse refs/heads/main..."), 1, "{env}");
    assert_eq!(calls(" diff-tree "), 2, "{env}");
    assert_eq!(
        calls(" diff-tree -r -z --raw --no-renames --no-abbrev --stdin "),
        1
    );
    assert_eq!(calls(" cat-file --batch-check"), 1, "{env}");
    // Which heads are there: asked by the batch, and once before by its fetch of missing heads.
    assert_eq!(calls(" rev-list --no-walk --ignore-missing "), 2, "{env}");
    assert_eq!(calls(" diff "), 0, "no head diffed alone: {env}");
    assert!(env.contains("GIT_NO_LAZY_FETCH=1"), "{env}");
    for (name, value) in secrets.iter().copied().chain([
        ("DATABASE_URL", svc.database_url.as_str()),
        ("REDIS_URL", svc.redis_url.as_str()),
    ]) {
        assert!(!env.contains(value), "git saw {name}");
    }
}

#[tokio::test]
async fn the_base_branchs_gitattributes_and_blob_ids_reach_the_analysis() {
    let remote = Remote::new(true);
    // The repository marks its generated client as such and keeps a real `vendor` module of its
    // own that it un-marks.
    std::fs::write(
        remote.work.join(".gitattributes"),
        "src/gen/** linguist-generated\nsrc/vendor/** -linguist-vendored\n",
    )
    .unwrap();
    git(&remote.work, &["add", "."]);
    git(&remote.work, &["commit", "-q", "-m", "attributes"]);
    git(
        &remote.work,
        &["push", "-q", remote.bare.to_str().unwrap(), "main"],
    );
    let logo: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
    let head = remote.pr(
        1,
        &[
            (
                "src/gen/client.ts",
                b"export const generated = 1;\n".to_vec(),
            ),
            (
                "src/vendor/cmd.ts",
                b"export const vendorCmd = 1;\n".to_vec(),
            ),
            ("assets/logo.bin", logo.clone()),
        ],
    );
    let m = MirrorScan::run(&remote, &[(1, &head)], "attrs").await;
    let (svc, st) = (&m.svc, &m.status);
    assert_eq!(st["sourceMirror"], 1, "{st}");
    let c = svc.client().await;
    let channels: Vec<(String, String)> = c
        .query("SELECT path, channel FROM pr_files ORDER BY path", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let of = |p: &str| {
        channels
            .iter()
            .find(|(path, _)| path == p)
            .map(|(_, ch)| ch.as_str())
    };
    assert_eq!(of("src/gen/client.ts"), Some("meta"), "{channels:?}");
    assert_eq!(of("src/vendor/cmd.ts"), Some("production"), "{channels:?}");
    // The binary file, added without a patch, is a path operation through its blob id (the same
    // file in two PRs is evidence); without the id it would carry nothing.
    let sig: Vec<u8> = c
        .query_one("SELECT signature FROM pr_signatures WHERE number = 1", &[])
        .await
        .unwrap()
        .get(0);
    let sig = clawtriage::store::analysis::decode_signature(&sig).unwrap();
    let shown = format!("{sig:?}");
    assert!(shown.contains("path_ops: 1"), "{shown}");
    m.app.stop().await;
}

#[tokio::test]
async fn a_batch_of_heads_is_diffed_exactly_as_each_head_alone() {
    let remote = Remote::new(true);
    let w = |p: &Path, path: &str, text: &[u8]| {
        let f = p.join(path);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, text).unwrap();
    };
    std::fs::write(remote.work.join("README.md"), "# r\n\nsome words\n").unwrap();
    std::fs::write(remote.work.join("run.sh"), "echo hi\n").unwrap();
    git(&remote.work, &["add", "."]);
    git(&remote.work, &["commit", "-q", "-m", "more"]);
    git(
        &remote.work,
        &["push", "-q", remote.bare.to_str().unwrap(), "main"],
    );
    let main = git(&remote.work, &["rev-parse", "HEAD"]);
    // The last head first, so an earlier one can name a file after it.
    let last = remote.pr(20, &[("src/lib.ts", b"export const a = 20;\n".to_vec())]);
    let mut heads: Vec<String> = vec![
        remote.pr(1, &[("src/lib.ts", b"export const a = 2;\n".to_vec())]),
        // A rename, a removal, a nested addition.
        remote.pr_edit(2, |p| {
            std::fs::create_dir_all(p.join("src/core")).unwrap();
            std::fs::rename(p.join("src/lib.ts"), p.join("src/core/lib.ts")).unwrap();
            std::fs::remove_file(p.join("README.md")).unwrap();
            w(p, "docs/deep/guide.md", b"# guide\n");
        }),
        // A small binary file and an odd path.
        remote.pr(
            3,
            &[
                ("assets/logo.bin", random(3000)),
                ("odd dir/\"q\" \u{e9}.txt", b"x\n".to_vec()),
            ],
        ),
        // The same tree as main: an empty diff.
        remote.pr_edit(4, |_| {}),
        // A file over the blob limit (filtered out of the fetch) beside a small edit.
        remote.pr(
            5,
            &[
                ("data/big.bin", random(2 << 20)),
                ("src/lib.ts", b"export const a = 5;\n".to_vec()),
            ],
        ),
        // Patches over the cap: the batch stops there and starts again after it.
        remote.pr(
            6,
            &wide_files()
                .iter()
                .map(|(p, c)| (p.as_str(), c.clone()))
                .collect::<Vec<_>>(),
        ),
        // A mode change, and a file named after the next head, whose lines spell it too.
        remote.pr_edit(7, |p| {
            std::fs::set_permissions(
                p.join("run.sh"),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .unwrap();
            w(p, &last, format!("{last}\n{last}\n").as_bytes());
        }),
    ];
    heads.push(last);
    // main moves on after the PRs branched: their merge base is not its tip.
    git(&remote.work, &["checkout", "-q", "main"]);
    std::fs::write(remote.work.join("src/lib.ts"), "export const a = 100;\n").unwrap();
    git(&remote.work, &["commit", "-q", "-am", "main moves"]);
    git(
        &remote.work,
        &["push", "-q", remote.bare.to_str().unwrap(), "main"],
    );
    remote.publish(9, &main);
    // A criss-cross: two merge bases; the batch takes the one `git merge-base` prints.
    let work = &remote.work;
    let commit = |branch: &str, file: &str| {
        git(work, &["checkout", "-q", "-B", branch, "main"]);
        std::fs::write(work.join(file), file).unwrap();
        git(work, &["add", "."]);
        git(work, &["commit", "-q", "-m", file]);
        git(work, &["rev-parse", "HEAD"])
    };
    let a = commit("xa", "xa.txt");
    commit("xb", "xb.txt");
    git(work, &["checkout", "-q", "xa"]);
    git(work, &["merge", "-q", "--no-edit", "xb"]);
    git(work, &["checkout", "-q", "xb"]);
    git(work, &["merge", "-q", "--no-edit", &a]);
    let cross = git(work, &["rev-parse", "HEAD"]);
    let bare = remote.bare.to_str().unwrap();
    git(work, &["push", "-q", bare, "xa:refs/heads/crossbase"]);
    git(work, &["push", "-q", bare, "xb:refs/pull/30/head"]);
    let bases = git(&remote.bare, &["merge-base", "--all", "crossbase", &cross]);
    assert_eq!(bases.lines().count(), 2, "{bases}");
    let numbers: Vec<i64> = vec![1, 2, 3, 4, 5, 6, 7, 20, 9, 30];
    let data = tempfile::tempdir().unwrap();
    let m = Mirror::new(data.path(), &remote.url());
    m.sync("o", "r", &["main", "crossbase"], &numbers, &[], &ok)
        .await
        .unwrap();
    // Also: the tip of main itself (merge base = head), a head the mirror lacks, and a head
    // twice.
    heads.push(main.clone());
    heads.push("0123456789abcdef0123456789abcdef01234567".into());
    heads.push(heads[0].clone());
    heads.push(cross.clone());
    let mut asked: Vec<(&str, &str)> = heads.iter().map(|h| (h.as_str(), "main")).collect();
    asked.last_mut().unwrap().1 = "crossbase";
    let batch = m.diffs("o", "r", &asked).await;
    assert_eq!(batch.len(), asked.len());
    for ((head, base), got) in asked.iter().zip(&batch) {
        let alone = m.diff_alone("o", "r", head, base).await;
        match (got, &alone) {
            (Ok(got), Ok(alone)) => {
                assert_eq!(
                    format!("{:?}", got.files),
                    format!("{:?}", alone.files),
                    "{head}"
                );
                assert_eq!(got.degraded, alone.degraded, "{head}");
            }
            (Err(GitError::MissingCommit(_)), Err(GitError::MissingCommit(_))) => {}
            (got, alone) => panic!("{head}: batch {got:?}, alone {alone:?}"),
        }
    }
    let ok_of = |i: usize| batch[i].as_ref().unwrap();
    // What each case is, so the comparison above covers it.
    let paths = |i: usize| {
        ok_of(i)
            .files
            .iter()
            .map(|f| f.filename.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(paths(0), ["src/lib.ts"]);
    assert_eq!(
        ok_of(0).files[0].patch.as_deref(),
        Some("@@ -1 +1 @@\n-export const a = 1;\n+export const a = 2;"),
        "against the merge base, not main's tip"
    );
    assert!(
        ok_of(1).files.iter().any(|f| f.status == "renamed"),
        "{:?}",
        ok_of(1).files
    );
    assert!(ok_of(1).files.iter().any(|f| f.status == "removed"));
    assert!(
        paths(2).contains(&"odd dir/\"q\" \u{e9}.txt".to_string()),
        "{:?}",
        paths(2)
    );
    assert!(ok_of(3).files.is_empty());
    assert!(
        ok_of(4)
            .degraded
            .contains(&"file_over_blob_limit: data/big.bin".to_string())
    );
    assert!(
        ok_of(4)
            .files
            .iter()
            .any(|f| f.filename == "src/lib.ts" && f.patch.is_some())
    );
    assert!(
        ok_of(5)
            .degraded
            .iter()
            .any(|n| n.starts_with("diff_capped: ")),
        "{:?}",
        ok_of(5).degraded
    );
    assert_eq!(paths(6).len(), 2, "{:?}", paths(6));
    assert_eq!(paths(7), ["src/lib.ts"], "the head after the one naming it");
    assert!(
        ok_of(8).files.is_empty(),
        "an ancestor of main changes nothing"
    );
    assert!(batch[9].is_err());
    assert_eq!(paths(10), paths(0));
    assert_eq!(
        paths(11).len(),
        1,
        "one side of the criss-cross: {:?}",
        paths(11)
    );
}
