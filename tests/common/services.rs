//! Real Postgres and Redis servers for tests. `scripts/test.sh` starts one of each on free
//! loopback ports and exports DATABASE_URL / REDIS_URL; each test then gets its own database and
//! queue prefix. Tests that need to stop a server start their own with [`RedisServer`] or
//! [`PgServer`] (stopped on drop).

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A free loopback port (released before the server binds it: a small race that tests accept).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// A unique short name for databases and queue prefixes.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}_{:06x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        fastrand::u32(..0xffffff)
    )
}

fn is_root() -> bool {
    // SAFETY-free check: `id -u` avoids a libc dependency.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The folder of Debian's Postgres binaries.
pub fn pg_bindir() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("PG_BINDIR") {
        return Some(PathBuf::from(d));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn as_pg_user(bin: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

/// A throwaway Postgres cluster.
pub struct PgServer {
    pub port: u16,
    dir: tempfile::TempDir,
    bindir: PathBuf,
}

impl PgServer {
    pub fn start() -> PgServer {
        Self::start_in(&std::env::temp_dir())
    }

    /// A cluster whose files live under `parent` (a small file system, in the disk-full test).
    pub fn start_in(parent: &Path) -> PgServer {
        let bindir = pg_bindir().expect("Postgres binaries not found (apt-get install postgresql)");
        let dir = tempfile::Builder::new()
            .prefix("ct-pg")
            .tempdir_in(parent)
            .unwrap();
        if is_root() {
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
        }
        let data = dir.path().join("data");
        let st = as_pg_user(&bindir.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "initdb failed");
        let port = free_port();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            dir.path().display()
        );
        let st = as_pg_user(&bindir.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("server.log"))
            .args(["-w", "-o", &opts, "start"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "pg_ctl start failed");
        PgServer { port, dir, bindir }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The server's own log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The postmaster's process id (its backends are its children).
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.path().join("data/postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    pub fn stop(&self, mode: &str) {
        let _ = as_pg_user(&self.bindir.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", mode, "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    pub fn restart(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let st = as_pg_user(&self.bindir.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-o", &opts, "start"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop("immediate");
    }
}

/// A throwaway Redis server.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    persistent: bool,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_with(false)
    }

    /// A server with an append-only file, as in production: a restart keeps the queue.
    pub fn start_persistent() -> RedisServer {
        Self::start_with(true)
    }

    fn start_with(persistent: bool) -> RedisServer {
        let dir = tempfile::Builder::new()
            .prefix("ct-redis")
            .tempdir()
            .unwrap();
        let port = free_port();
        let mut s = RedisServer {
            port,
            child: None,
            dir,
            persistent,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", if self.persistent { "yes" } else { "no" }])
            .args(["--appendfsync", "always", "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server not found (apt-get install redis-server)");
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(10));
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM: Redis flushes its append-only file and exits.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until something listens on the port.
pub fn wait_for_port(port: u16, within: Duration) {
    let start = Instant::now();
    while start.elapsed() < within {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on port {port} after {within:?}");
}

/// Where a test's Postgres and Redis are.
pub struct Services {
    pub database_url: String,
    pub redis_url: String,
    pub queue_prefix: String,
    pub db_name: String,
    admin_url: String,
    _pg: Option<PgServer>,
    _redis: Option<RedisServer>,
}

impl Services {
    /// A fresh database (on the shared server, or a server of its own) and a unique queue prefix.
    pub async fn new() -> Services {
        Self::make(false).await
    }

    /// Like [`Services::new`], but always on a Postgres server of its own (tests that stop it).
    pub async fn with_own_postgres() -> Services {
        Self::make(true).await
    }

    /// Process ids of the servers these services started themselves (none when they use the
    /// servers of DATABASE_URL / REDIS_URL).
    pub fn own_server_pids(&self) -> Vec<u32> {
        let pg = self._pg.as_ref().and_then(|p| p.pid());
        let redis = self._redis.as_ref().and_then(|r| r.pid());
        pg.into_iter().chain(redis).collect()
    }

    /// The Postgres server of a [`Services::with_own_postgres`].
    pub fn own_postgres(&self) -> &PgServer {
        self._pg.as_ref().expect("started with_own_postgres")
    }

    /// Like [`Services::new`], on this Postgres server.
    pub async fn on_postgres(pg: PgServer) -> Services {
        Self::make_with(Some(pg)).await
    }

    async fn make(own_pg: bool) -> Services {
        let shared_pg = std::env::var("DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty() && !own_pg);
        match shared_pg {
            Some(_) => Self::make_with(None).await,
            None => Self::make_with(Some(PgServer::start())).await,
        }
    }

    async fn make_with(own: Option<PgServer>) -> Services {
        let (admin_url, pg) = match own {
            Some(s) => (s.url(), Some(s)),
            None => (
                std::env::var("DATABASE_URL").expect("DATABASE_URL is set"),
                None,
            ),
        };
        let (redis_url, redis) = match std::env::var("REDIS_URL") {
            Ok(u) if !u.is_empty() => (u, None),
            _ => {
                let s = RedisServer::start();
                (s.url(), Some(s))
            }
        };
        let db_name = unique("t");
        let (client, conn) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
            .await
            .expect("connect to the test Postgres");
        tokio::spawn(conn);
        client
            .execute(&format!("CREATE DATABASE {db_name}"), &[])
            .await
            .unwrap();
        let mut cfg: tokio_postgres::Config = admin_url.parse().unwrap();
        cfg.dbname(&db_name);
        let database_url = pg_url(&cfg);
        Services {
            database_url,
            redis_url,
            queue_prefix: unique("q"),
            db_name,
            admin_url,
            _pg: pg,
            _redis: redis,
        }
    }

    /// Applies the migrations (for tests that seed rows before starting the app).
    pub async fn migrate(&self) {
        let pool = clawtriage::store::connect(&self.database_url, 1).unwrap();
        clawtriage::store::migrate(&pool).await.unwrap();
        pool.close();
    }

    /// A plain client on the test's database.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }
}

fn pg_url(cfg: &tokio_postgres::Config) -> String {
    let host = match cfg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let user = cfg.get_user().unwrap_or("postgres");
    let auth = match cfg.get_password() {
        Some(p) => format!("{user}:{}", String::from_utf8_lossy(p)),
        None => user.to_string(),
    };
    format!(
        "postgres://{auth}@{host}:{port}/{}",
        cfg.get_dbname().unwrap_or("postgres")
    )
}
