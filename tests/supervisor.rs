//! The real supervisor (`scripts/start-fly.sh`) around the real binary, with
//! real Postgres and Redis: start until healthy, write data, SIGTERM, check that
//! both servers shut down cleanly, start again and find the data, then kill the
//! app and check that the supervisor stops everything and fails.
//!
//! Needs Debian's Postgres server binaries (`/usr/lib/postgresql/*/bin` or
//! `PG_BINDIR`) and `redis-server`; without them the test prints why and skips.
//! Works as root (Postgres then runs as `postgres`) and as a normal user.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// From spawning the supervisor to `/api/health` answering 200.
const START_BOUND: Duration = Duration::from_secs(60);
/// From SIGTERM (or the app's death) to the supervisor's exit: the app's own
/// drain bound (25 s) plus a clean Postgres and Redis stop.
const STOP_BOUND: Duration = Duration::from_secs(45);

const PG_CLEAN_STOP: &str = "database system is shut down";
const REDIS_CLEAN_STOP: &str = "ready to exit";

#[derive(Clone, Copy)]
struct Ports {
    app: u16,
    postgres: u16,
    redis: u16,
}

impl Ports {
    fn pick() -> Ports {
        // Hold all three listeners at once so the three ports differ.
        let listeners: Vec<TcpListener> = (0..3)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
            .collect();
        let port = |i: usize| listeners[i].local_addr().unwrap().port();
        Ports {
            app: port(0),
            postgres: port(1),
            redis: port(2),
        }
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Postgres server binaries the supervisor will find, if any.
fn pg_bindir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BINDIR").map(PathBuf::from)
        && dir.join("postgres").is_file()
    {
        return Some(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").is_file().then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// True while `pid` names a process that has not exited (zombies count as exited).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

/// Command lines of live processes that belong to this data root or ports.
fn leftover_processes(data_root: &Path, ports: Ports) -> Vec<String> {
    let root = data_root.to_string_lossy().into_owned();
    let redis_addr = format!(":{}", ports.redis);
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        let ours = cmdline.contains(&root)
            || (cmdline.contains("redis-server") && cmdline.contains(&redis_addr));
        if ours && process_alive(pid) {
            found.push(format!("{pid}: {}", cmdline.trim()));
        }
    }
    found
}

fn read_pid_file(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// `GET /api/health` over plain HTTP/1.0; the status code, or None when
/// nothing answers.
fn health_status(port: u16) -> Option<u16> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /api/health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// One run of `scripts/start-fly.sh`, with stdout and stderr merged into one
/// log (in order) that the test can search.
struct Supervisor {
    child: Child,
    data_root: PathBuf,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Supervisor {
    fn start(data_root: &Path, ports: Ports) -> Supervisor {
        Self::start_with(data_root, ports, &[])
    }

    /// [`Supervisor::start`] with extra environment (e.g. another PATH).
    fn start_with(data_root: &Path, ports: Ports, env: &[(&str, String)]) -> Supervisor {
        let (pipe_reader, pipe_writer) = std::io::pipe().expect("create a pipe");
        let child = Command::new("bash")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .arg(repo_root().join("scripts/start-fly.sh"))
            .current_dir(repo_root())
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .env_remove("FLY_APP_NAME")
            .env("DATA_ROOT", data_root)
            .env("PORT", ports.app.to_string())
            .env("POSTGRES_PORT", ports.postgres.to_string())
            .env("REDIS_PORT", ports.redis.to_string())
            .env("HOST", "127.0.0.1")
            .env("CLAWTRIAGE_BIN", env!("CARGO_BIN_EXE_clawtriage"))
            // As on Fly, where every secret of the app is in the supervisor's environment.
            .env("GITHUB_TOKEN", APP_SECRET)
            .stdin(Stdio::null())
            .stdout(pipe_writer.try_clone().expect("clone the pipe"))
            .stderr(pipe_writer)
            .spawn()
            .expect("spawn scripts/start-fly.sh");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        let reader = thread::spawn(move || {
            for line in BufReader::new(pipe_reader).lines() {
                let Ok(line) = line else { break };
                // Shown by the test harness only when the test fails.
                eprintln!("  | {line}");
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Supervisor {
            child,
            data_root: data_root.to_path_buf(),
            log,
            reader: Some(reader),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Polls until `/api/health` answers 200; panics (with the log) when the
    /// supervisor exits first or the bound passes.
    fn wait_healthy(&mut self, port: u16) -> Duration {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the supervisor") {
                self.finish_log();
                panic!(
                    "supervisor exited ({status}) before /api/health answered; log:\n{}",
                    self.log()
                );
            }
            if health_status(port) == Some(200) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < START_BOUND,
                "/api/health did not answer 200 within {START_BOUND:?}; log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits for the supervisor to exit within `bound`, then for its output to end.
    fn wait_exit(&mut self, bound: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the supervisor") {
                self.finish_log();
                return status;
            }
            assert!(
                started.elapsed() < bound,
                "supervisor still running {bound:?} after being told to stop; log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The prefixers may flush a moment after the supervisor exits.
    fn finish_log(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.reader.as_ref().is_some_and(|r| !r.is_finished()) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        if let Some(reader) = self.reader.take_if(|r| r.is_finished()) {
            let _ = reader.join();
        }
    }

    fn pid_of(&self, name: &str) -> Option<u32> {
        read_pid_file(&self.data_root.join("run").join(format!("{name}.pid")))
    }
}

impl Drop for Supervisor {
    /// After a failed assertion: stop everything so no server outlives the test.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let pids: Vec<u32> = ["app", "postgres", "redis"]
                .iter()
                .filter_map(|name| self.pid_of(name))
                .collect();
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + STOP_BOUND;
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
            for pid in pids.into_iter().filter(|pid| process_alive(*pid)) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// Runs SQL as the app's role, with the password the supervisor generated.
fn psql_as_app(bindir: &Path, data_root: &Path, port: u16, sql: &str) -> String {
    let password = std::fs::read_to_string(data_root.join("postgres-app-password"))
        .expect("the supervisor writes $DATA_ROOT/postgres-app-password");
    let output = Command::new(bindir.join("psql"))
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-U", "clawtriage", "-d", "clawtriage", "-c", sql])
        .env("PGPASSWORD", password.trim())
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .expect("run psql");
    assert!(
        output.status.success(),
        "psql {sql:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Runs a Redis command with the password the supervisor generated.
fn redis_cli(data_root: &Path, port: u16, args: &[&str]) -> String {
    let password = std::fs::read_to_string(data_root.join("redis-password"))
        .expect("the supervisor writes $DATA_ROOT/redis-password");
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .env("REDISCLI_AUTH", password.trim())
        .output()
        .expect("run redis-cli");
    assert!(output.status.success(), "redis-cli {args:?} failed");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn assert_all_stopped(sup: &Supervisor, pids: &[(&str, u32)], ports: Ports) {
    for (name, pid) in pids {
        assert!(
            !process_alive(*pid),
            "{name} (pid {pid}) still runs after the supervisor exited; log:\n{}",
            sup.log()
        );
    }
    let left = leftover_processes(&sup.data_root, ports);
    assert!(
        left.is_empty(),
        "processes left behind: {left:#?}\nlog:\n{}",
        sup.log()
    );
}

/// A secret only the app may see.
const APP_SECRET: &str = "ghp_supervisorTestSecret0123456789";

/// The environment of a running process (`NAME=value` entries).
fn environ(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .collect()
}

fn child_pids(sup: &Supervisor) -> Vec<(&'static str, u32)> {
    ["app", "postgres", "redis"]
        .into_iter()
        .map(|name| {
            let pid = sup
                .pid_of(name)
                .unwrap_or_else(|| panic!("no run/{name}.pid; log:\n{}", sup.log()));
            (name, pid)
        })
        .collect()
}

#[test]
fn supervisor_starts_stops_cleanly_keeps_data_and_fails_when_the_app_dies() {
    let Some(bindir) = pg_bindir() else {
        eprintln!(
            "SKIPPED supervisor test: no Postgres server binaries in /usr/lib/postgresql/*/bin \
             and PG_BINDIR is not set (Debian: apt-get install postgresql)"
        );
        return;
    };
    if !on_path("redis-server") || !on_path("redis-cli") {
        eprintln!(
            "SKIPPED supervisor test: redis-server/redis-cli not on PATH (Debian: apt-get install redis-server)"
        );
        return;
    }

    let tmp = tempfile::Builder::new()
        .prefix("clawtriage-supervisor-")
        .tempdir()
        .expect("create a temp dir");
    // Postgres runs as `postgres` when we are root: it must be able to enter.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data_root = tmp.path().join("data");
    let ports = Ports::pick();

    // --- First start: initialise, become healthy, write data, SIGTERM. ---
    let mut sup = Supervisor::start(&data_root, ports);
    let cold = sup.wait_healthy(ports.app);
    eprintln!("cold start (initdb + migrate) to healthy: {cold:?}");
    let pids = child_pids(&sup);
    // Only the app gets the app's secrets; Postgres and Redis run with a cleared environment.
    for (name, pid) in &pids {
        let env = environ(*pid);
        assert!(!env.is_empty(), "{name}: /proc/{pid}/environ is readable");
        let has_secret = env.iter().any(|e| e.contains(APP_SECRET));
        assert_eq!(has_secret, *name == "app", "{name}: {env:?}");
    }

    psql_as_app(
        &bindir,
        &data_root,
        ports.postgres,
        "CREATE TABLE supervisor_probe (note text); \
         INSERT INTO supervisor_probe VALUES ('written before SIGTERM')",
    );
    assert_eq!(
        redis_cli(
            &data_root,
            ports.redis,
            &["SET", "supervisor:probe", "kept"]
        ),
        "OK"
    );

    let signalled = Instant::now();
    send_signal(sup.pid(), "TERM");
    let status = sup.wait_exit(STOP_BOUND);
    eprintln!("SIGTERM to exit: {:?}", signalled.elapsed());
    let log = sup.log();
    assert!(
        status.success(),
        "SIGTERM must end in exit 0, got {status}; log:\n{log}"
    );
    assert_all_stopped(&sup, &pids, ports);
    assert!(
        log.contains(PG_CLEAN_STOP),
        "no clean Postgres shutdown in the log:\n{log}"
    );
    assert!(
        log.contains(REDIS_CLEAN_STOP),
        "no clean Redis shutdown in the log:\n{log}"
    );
    // The app is stopped before Postgres is asked to shut down.
    let app_stopped = log
        .find("[supervisor] app stopped")
        .expect("app stop logged");
    let pg_asked = log
        .find("received fast shutdown request")
        .expect("fast shutdown logged");
    assert!(
        app_stopped < pg_asked,
        "Postgres was stopped before the app:\n{log}"
    );
    drop(sup);

    // --- Second start: the data is still there; then the app dies. ---
    let mut sup = Supervisor::start(&data_root, ports);
    let warm = sup.wait_healthy(ports.app);
    eprintln!("warm start to healthy: {warm:?}");
    let pids = child_pids(&sup);
    assert_eq!(
        psql_as_app(
            &bindir,
            &data_root,
            ports.postgres,
            "SELECT note FROM supervisor_probe"
        ),
        "written before SIGTERM"
    );
    assert_eq!(
        redis_cli(&data_root, ports.redis, &["GET", "supervisor:probe"]),
        "kept"
    );

    let app_pid = sup.pid_of("app").expect("run/app.pid");
    send_signal(app_pid, "KILL");
    let status = sup.wait_exit(STOP_BOUND);
    let log = sup.log();
    assert!(
        !status.success(),
        "the app's death must make the supervisor fail, got {status}; log:\n{log}"
    );
    assert_all_stopped(&sup, &pids, ports);
    assert!(
        log.contains("exited unexpectedly"),
        "the app's death is not reported:\n{log}"
    );
    assert!(
        log.contains(PG_CLEAN_STOP),
        "no clean Postgres shutdown in the log:\n{log}"
    );
    assert!(
        log.contains(REDIS_CLEAN_STOP),
        "no clean Redis shutdown in the log:\n{log}"
    );
}

#[test]
fn second_supervisor_on_the_same_data_root_is_refused() {
    if pg_bindir().is_none() || !on_path("redis-server") {
        eprintln!("SKIPPED: no Postgres server binaries or redis-server on this machine");
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("clawtriage-supervisor-lock-")
        .tempdir()
        .expect("create a temp dir");
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data_root = tmp.path().join("data");
    std::fs::create_dir_all(&data_root).unwrap();

    // Hold the lock the way a running supervisor does.
    let _lock_holder = KillOnDrop(
        Command::new("flock")
            .arg(data_root.join("supervisor.lock"))
            .args(["sleep", "30"])
            .spawn()
            .expect("run flock"),
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while Command::new("flock")
        .args(["-n"])
        .arg(data_root.join("supervisor.lock"))
        .arg("true")
        .status()
        .unwrap()
        .success()
    {
        assert!(Instant::now() < deadline, "flock never took the lock");
        thread::sleep(Duration::from_millis(20));
    }

    let mut sup = Supervisor::start(&data_root, Ports::pick());
    let status = sup.wait_exit(Duration::from_secs(20));
    let log = sup.log();
    assert!(
        !status.success(),
        "a second supervisor must refuse to start; log:\n{log}"
    );
    assert!(
        log.contains("another supervisor"),
        "unclear refusal:\n{log}"
    );
    assert!(
        !data_root.join("postgres").exists(),
        "the refused supervisor touched Postgres; log:\n{log}"
    );
}

/// Kills the wrapped child when dropped (also on a failed assertion).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// --- The image provides what the supervisor needs ---------------------------------

/// The runtime stage of the Dockerfile (after its last `FROM`).
#[derive(Debug, Default)]
struct RuntimeStage {
    /// `apt-get install` packages.
    packages: Vec<String>,
    /// `ENV` values.
    env: std::collections::HashMap<String, String>,
    /// `COPY` lines: (sources, destination).
    copies: Vec<(Vec<String>, String)>,
    /// Users made with `useradd`.
    users: Vec<String>,
    /// `ENTRYPOINT` in exec form.
    entrypoint: Vec<String>,
}

fn runtime_stage() -> RuntimeStage {
    let text = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    let joined = text.replace("\\\n", " ");
    let lines: Vec<&str> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let last_from = lines
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .expect("a FROM line");
    let mut st = RuntimeStage::default();
    for line in &lines[last_from + 1..] {
        let (instr, rest) = line.split_once(' ').unwrap_or((line, ""));
        match instr {
            "RUN" => {
                for cmd in rest.split("&&").map(str::trim) {
                    let words: Vec<&str> = cmd.split_whitespace().collect();
                    if let Some(i) = words.iter().position(|w| *w == "install")
                        && words[..i].contains(&"apt-get")
                    {
                        st.packages.extend(
                            words[i + 1..]
                                .iter()
                                .filter(|w| !w.starts_with('-'))
                                .map(|w| w.to_string()),
                        );
                    }
                    if words.first() == Some(&"useradd") {
                        st.users.push(words.last().unwrap().to_string());
                    }
                }
            }
            "ENV" => {
                for pair in rest.split_whitespace() {
                    if let Some((k, v)) = pair.split_once('=') {
                        st.env
                            .insert(k.to_string(), v.trim_matches('"').to_string());
                    }
                }
            }
            "COPY" => {
                let words: Vec<String> = rest
                    .split_whitespace()
                    .filter(|w| !w.starts_with("--"))
                    .map(str::to_string)
                    .collect();
                let (dest, srcs) = words.split_last().expect("COPY has a destination");
                st.copies.push((srcs.to_vec(), dest.clone()));
            }
            "ENTRYPOINT" => {
                st.entrypoint = serde_json::from_str(rest).expect("ENTRYPOINT in exec form");
            }
            _ => {}
        }
    }
    st
}

/// Where a `COPY` puts `source` (None when no COPY takes it).
fn copied_to(st: &RuntimeStage, source: &str) -> Option<String> {
    st.copies.iter().find_map(|(srcs, dest)| {
        srcs.iter().any(|s| s == source).then(|| {
            if dest.ends_with('/') {
                format!(
                    "{dest}{}",
                    Path::new(source).file_name().unwrap().to_string_lossy()
                )
            } else {
                dest.clone()
            }
        })
    })
}

/// An installed Debian package: its priority, its dependencies and pre-dependencies (each a
/// list of alternatives), and the virtual packages it provides.
type Package = (String, Vec<Vec<String>>, Vec<String>);

/// Installed Debian packages by name.
fn installed_packages() -> std::collections::HashMap<String, Package> {
    let out = Command::new("dpkg-query")
        .args([
            "-W",
            "-f=${db:Status-Abbrev}\t${Package}\t${Priority}\t${Depends}, ${Pre-Depends}\t${Provides}\n",
        ])
        .output()
        .expect("dpkg-query (a Debian machine)");
    let name = |s: &str| {
        s.split_whitespace()
            .next()
            .unwrap_or("")
            .split(':')
            .next()
            .unwrap()
            .to_string()
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("ii"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let deps = f
                .get(3)?
                .split(',')
                .map(|d| {
                    d.split('|')
                        .map(name)
                        .filter(|n| !n.is_empty())
                        .collect::<Vec<_>>()
                })
                .filter(|alts| !alts.is_empty())
                .collect();
            let provides = f
                .get(4)
                .map(|p| p.split(',').map(name).filter(|n| !n.is_empty()).collect())
                .unwrap_or_default();
            Some((f[1].to_string(), (f[2].to_string(), deps, provides)))
        })
        .collect()
}

/// A folder of links to exactly the programs that the runtime image has on its PATH: those of
/// Debian's `required` packages (what every debian:*-slim image holds), of the packages the
/// Dockerfile installs, and of everything those depend on. Err(package) when a package the
/// Dockerfile installs is not installed on this machine, so cannot be looked at.
fn image_path(st: &RuntimeStage, dir: &Path) -> Result<usize, String> {
    let installed = installed_packages();
    let mut provided: std::collections::HashMap<&str, Vec<&str>> = Default::default();
    for (pkg, (_, _, provides)) in &installed {
        for p in provides {
            provided.entry(p.as_str()).or_default().push(pkg.as_str());
        }
    }
    let mut todo: Vec<String> = installed
        .iter()
        .filter(|(_, (prio, _, _))| prio == "required")
        .map(|(p, _)| p.clone())
        .collect();
    for p in &st.packages {
        if !installed.contains_key(p) {
            return Err(p.clone());
        }
        todo.push(p.clone());
    }
    let mut seen = std::collections::BTreeSet::new();
    while let Some(p) = todo.pop() {
        if !seen.insert(p.clone()) {
            continue;
        }
        let Some((_, deps, _)) = installed.get(&p) else {
            continue;
        };
        for alts in deps {
            for a in alts {
                if installed.contains_key(a) {
                    todo.push(a.clone());
                }
                for prov in provided.get(a.as_str()).into_iter().flatten() {
                    todo.push(prov.to_string());
                }
            }
        }
    }
    let out = Command::new("dpkg-query")
        .arg("-L")
        .args(&seen)
        .output()
        .expect("dpkg-query -L");
    let bins: std::collections::HashSet<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|f| {
            ["/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/"]
                .iter()
                .any(|d| f.starts_with(d))
        })
        .filter_map(|f| std::fs::canonicalize(f).ok())
        .collect();
    std::fs::create_dir_all(dir).unwrap();
    let mut linked = 0;
    for d in ["/usr/bin", "/usr/sbin", "/bin", "/sbin"] {
        let Ok(entries) = std::fs::read_dir(d) else {
            continue;
        };
        for e in entries.flatten() {
            let link = dir.join(e.file_name());
            if link.exists() {
                continue;
            }
            // Alternatives (awk → mawk) resolve to a file of a package.
            if std::fs::canonicalize(e.path()).is_ok_and(|c| bins.contains(&c)) {
                std::os::unix::fs::symlink(e.path(), &link).unwrap();
                linked += 1;
            }
        }
    }
    Ok(linked)
}

#[test]
fn the_runtime_image_provides_what_the_supervisor_needs() {
    let st = runtime_stage();
    // Static: the entry point, its library, the binary, the users and the Postgres version.
    assert_eq!(
        st.entrypoint.first().map(String::as_str),
        Some("bash"),
        "{st:?}"
    );
    let script = st
        .entrypoint
        .get(1)
        .expect("ENTRYPOINT names the supervisor");
    assert_eq!(
        copied_to(&st, "scripts/start-fly.sh").as_deref(),
        Some(script.as_str()),
        "ENTRYPOINT runs what COPY put there"
    );
    let script_dir = Path::new(script).parent().unwrap();
    assert_eq!(
        copied_to(&st, "scripts/lib.sh").map(PathBuf::from),
        Some(script_dir.join("lib.sh")),
        "start-fly.sh sources lib.sh from its own folder"
    );
    assert_eq!(
        copied_to(&st, "/src/target/release/clawtriage").as_deref(),
        st.env.get("CLAWTRIAGE_BIN").map(String::as_str),
        "CLAWTRIAGE_BIN is where the binary is copied"
    );
    let app_user = st.env.get("APP_USER").expect("ENV APP_USER");
    assert!(
        st.users.contains(app_user),
        "APP_USER={app_user} is created: {st:?}"
    );
    let pg_bindir = st.env.get("PG_BINDIR").expect("ENV PG_BINDIR").clone();
    let major = pg_bindir
        .strip_prefix("/usr/lib/postgresql/")
        .and_then(|r| r.strip_suffix("/bin"))
        .expect("PG_BINDIR is /usr/lib/postgresql/N/bin");
    assert!(
        st.packages.contains(&format!("postgresql-{major}")),
        "PG_BINDIR={pg_bindir} needs postgresql-{major} installed: {:?}",
        st.packages
    );
    // The volume is where fly.toml mounts it.
    let fly: toml::Value =
        toml::from_str(&std::fs::read_to_string(repo_root().join("fly.toml")).unwrap()).unwrap();
    assert_eq!(
        st.env.get("DATA_ROOT").map(String::as_str),
        fly["mounts"][0]["destination"].as_str()
    );

    // Dynamic: the supervisor starts, becomes healthy and stops cleanly with nothing on its
    // PATH but the image's programs, and Postgres from the image's PG_BINDIR.
    let skip = |why: String| {
        if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0") {
            panic!("{why}");
        }
        eprintln!("SKIPPED the run with the image's PATH: {why}");
    };
    if !Path::new(&pg_bindir).join("postgres").is_file() {
        return skip(format!(
            "{pg_bindir} is not installed here (apt-get install postgresql-{major})"
        ));
    }
    let tmp = tempfile::Builder::new()
        .prefix("clawtriage-image-path-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = tmp.path().join("bin");
    let linked = match image_path(&st, &bin) {
        Ok(n) => n,
        Err(pkg) => {
            return skip(format!(
                "{pkg} (installed by the Dockerfile) is not installed here"
            ));
        }
    };
    eprintln!("the image's PATH: {linked} programs");
    for (needed, why) in [("bash", "the entry point"), ("git", "the mirrors")] {
        assert!(
            bin.join(needed).exists(),
            "{needed} ({why}) is not in the image"
        );
    }
    let data_root = tmp.path().join("data");
    let ports = Ports::pick();
    let mut sup = Supervisor::start_with(
        &data_root,
        ports,
        &[
            ("PATH", bin.display().to_string()),
            ("PG_BINDIR", pg_bindir.clone()),
        ],
    );
    sup.wait_healthy(ports.app);
    let pids = child_pids(&sup);
    send_signal(sup.pid(), "TERM");
    let status = sup.wait_exit(STOP_BOUND);
    let log = sup.log();
    assert!(
        status.success(),
        "SIGTERM must end in exit 0, got {status}; log:\n{log}"
    );
    assert!(
        !log.contains("command not found") && !log.contains("No such file"),
        "the supervisor missed a program:\n{log}"
    );
    assert_all_stopped(&sup, &pids, ports);
}
