//! Postgres: the connection pool, embedded migrations, and one file per table group. All SQL of
//! the appliance lives under this module; transactions start and end here.

pub mod actions;
pub mod analysis;
pub mod app;
pub mod backup;
pub mod housekeeping;
pub mod metrics;
pub mod repos;
pub mod results;
pub mod scans;
pub mod search;
pub mod sets;
pub mod settings;
pub mod tls;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::config::SslMode;

refinery::embed_migrations!("migrations");

/// Errors at the store's edge. Callers map `NotFound` to 404 and `Unavailable` to 503; anything
/// else is an internal error whose details are logged, never sent to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// Postgres cannot be reached or the pool is exhausted.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A query failed.
    #[error("database error: {}", db_message(.0))]
    Db(#[from] tokio_postgres::Error),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migration(#[from] refinery::Error),
    /// A stored JSON value did not decode.
    #[error("stored data did not decode: {0}")]
    Decode(String),
}

/// What Postgres said (SQLSTATE and message), which the driver's own `Display` ("db error")
/// leaves out.
fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} ({})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => StoreError::Db(e),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

impl StoreError {
    /// True when retrying later may succeed (connection trouble rather than a bad query).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Db(e) => {
                use tokio_postgres::error::SqlState;
                e.is_closed()
                    || e.code().is_none()
                    || [
                        SqlState::T_R_DEADLOCK_DETECTED,
                        SqlState::T_R_SERIALIZATION_FAILURE,
                        SqlState::ADMIN_SHUTDOWN,
                        SqlState::CRASH_SHUTDOWN,
                        SqlState::CANNOT_CONNECT_NOW,
                        SqlState::TOO_MANY_CONNECTIONS,
                        // ENOSPC: the transaction rolled back; it may succeed once there is room.
                        SqlState::DISK_FULL,
                    ]
                    .iter()
                    .any(|c| e.code() == Some(c))
            }
            _ => false,
        }
    }
}

impl StoreError {
    /// True when Postgres could not write for lack of disk space (SQLSTATE 53100).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::Db(e) if e.code() == Some(&tokio_postgres::error::SqlState::DISK_FULL))
    }
}

/// Result alias for the store.
pub type StoreResult<T> = Result<T, StoreError>;

/// Builds the connection pool. Connections are made lazily; a database that is down makes
/// requests fail with [`StoreError::Unavailable`] until it is back, and the pool reconnects
/// by itself.
pub fn connect(database_url: &str, max_size: usize) -> Result<Pool, String> {
    let pg: tokio_postgres::Config = database_url
        .parse()
        .map_err(|e| format!("DATABASE_URL is not a valid Postgres URL: {e}"))?;
    let mut pg = pg;
    pg.connect_timeout(Duration::from_secs(5));
    pg.application_name("clawtriage");
    // No JIT: the appliance's statements are short, and a JIT-compiled one pays tens of
    // milliseconds to compile and maps LLVM (~25 MB per backend) for nothing. Appended to
    // whatever `options` the URL gives.
    let options = match pg.get_options() {
        Some(o) if !o.trim().is_empty() => format!("{o} -c jit=off"),
        _ => "-c jit=off".to_string(),
    };
    pg.options(&options);
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Verified,
    };
    // `sslmode=require` (a managed Postgres): encrypted; otherwise plain, as on the machine itself.
    let manager = if pg.get_ssl_mode() == SslMode::Require {
        Manager::from_config(pg, tls::require_connector()?, manager_config)
    } else {
        Manager::from_config(pg, NoTls, manager_config)
    };
    Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| format!("could not build the Postgres pool: {e}"))
}

/// Applies pending migrations under an advisory lock, so two processes starting at once do not
/// race. Returns the names of the migrations applied now.
pub async fn migrate(pool: &Pool) -> StoreResult<Vec<String>> {
    let mut obj = pool.get().await?;
    // An arbitrary constant that names "clawtriage migrations" among advisory locks.
    const LOCK: i64 = 0x0063_6c61_7774_7269;
    obj.execute("SELECT pg_advisory_lock($1)", &[&LOCK]).await?;
    let client: &mut tokio_postgres::Client = &mut obj;
    let result = migrations::runner()
        .set_abort_divergent(true)
        .run_async(client)
        .await;
    obj.execute("SELECT pg_advisory_unlock($1)", &[&LOCK])
        .await?;
    let report = result?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(|m| format!("V{}__{}", m.version(), m.name()))
        .collect())
}

/// `SELECT 1`, bounded in time: the health check.
pub async fn ping(pool: &Pool) -> StoreResult<()> {
    let fut = async {
        let c = pool.get().await?;
        c.query_one("SELECT 1", &[]).await?;
        Ok::<_, StoreError>(())
    };
    match tokio::time::timeout(Duration::from_secs(2), fut).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::Unavailable("timed out".into())),
    }
}
