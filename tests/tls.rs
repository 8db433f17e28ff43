//! TLS to servers elsewhere (issue 16): a Postgres that requires TLS is reached with
//! `sslmode=require` in `DATABASE_URL`, a Redis that speaks only TLS with `rediss://`. Both
//! servers are started here with a certificate made here.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::KillOnDrop;
use common::services::{PgServer, free_port};

/// A self-signed certificate and its key in `dir`, readable by the servers.
fn certificate(dir: &Path) -> (String, String) {
    let (crt, key) = (dir.join("server.crt"), dir.join("server.key"));
    let st = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "openssl req failed");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&crt, std::fs::Permissions::from_mode(0o644)).unwrap();
    (crt.display().to_string(), key.display().to_string())
}

/// Hands the key to the `postgres` user when the tests run as root (Postgres refuses a key
/// others can read, and runs as `postgres`).
fn give_to_postgres(paths: &[&str]) {
    if rustix::process::geteuid().is_root() {
        for p in paths {
            let st = Command::new("chown")
                .args(["postgres:postgres", p])
                .status()
                .unwrap();
            assert!(st.success());
        }
    }
}

#[tokio::test]
async fn a_postgres_that_requires_tls_is_reached_with_sslmode_require() {
    let pg = PgServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (crt, key) = certificate(dir.path());
    give_to_postgres(&[&crt, &key]);
    // Switch TLS on.
    let admin = clawtriage::store::connect(&pg.url(), 1).unwrap();
    {
        let c = admin.get().await.unwrap();
        for sql in [
            "ALTER SYSTEM SET ssl = on".to_string(),
            format!("ALTER SYSTEM SET ssl_cert_file = '{crt}'"),
            format!("ALTER SYSTEM SET ssl_key_file = '{key}'"),
            "SELECT pg_reload_conf()".to_string(),
        ] {
            c.batch_execute(&sql).await.unwrap();
        }
    }
    admin.close();
    // Reloaded: a TLS connection reports itself in pg_stat_ssl.
    let url = format!("{}?sslmode=require", pg.url());
    let mut ssl = None;
    for _ in 0..50 {
        let pool = clawtriage::store::connect(&url, 2).unwrap();
        if let Ok(c) = pool.get().await {
            let r = c
                .query_one(
                    "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                    &[],
                )
                .await
                .unwrap();
            ssl = Some((r.get::<_, bool>(0), r.get::<_, Option<String>>(1)));
            if ssl.as_ref().is_some_and(|s| s.0) {
                // The appliance's own work runs over it: the migrations.
                clawtriage::store::migrate(&pool).await.unwrap();
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (on, version) = ssl.expect("no connection with sslmode=require");
    assert!(on, "the connection is not encrypted");
    assert!(version.unwrap_or_default().starts_with("TLSv1."));
    // Without sslmode the appliance connects as before (plain, on the machine itself).
    let plain = clawtriage::store::connect(&pg.url(), 1).unwrap();
    let c = plain.get().await.unwrap();
    let r = c
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert!(!r.get::<_, bool>(0));
}

#[tokio::test]
async fn a_redis_that_speaks_only_tls_is_reached_with_rediss() {
    let dir = tempfile::tempdir().unwrap();
    let (crt, key) = certificate(dir.path());
    let port = free_port();
    let _redis = KillOnDrop(
        Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--tls-cert-file", &crt, "--tls-key-file", &key])
            .args(["--tls-ca-cert-file", &crt, "--tls-auth-clients", "no"])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The certificate is self-signed: `#insecure` skips its check (a provider's CA would not).
    let url = format!("rediss://127.0.0.1:{port}/#insecure");
    let mut queues = None;
    for _ in 0..50 {
        if let Ok(q) = clawtriage::jobs::Queues::connect(&url, "tls-test").await {
            queues = Some(q);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(queues.is_some(), "the queues did not connect over TLS");
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut c).await.unwrap();
    assert_eq!(pong, "PONG");
    // A plain connection to the TLS port gets nowhere.
    let plain = redis::Client::open(format!("redis://127.0.0.1:{port}/").as_str()).unwrap();
    let res = tokio::time::timeout(Duration::from_secs(3), async {
        let mut c = plain.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut c).await
    })
    .await;
    assert!(!matches!(res, Ok(Ok(_))), "a plain connection was answered");
}
