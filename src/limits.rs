//! Rate limits shared by every process on one Redis: a client's budget is the same whichever
//! process its requests reach. Each limit is a sliding window kept in a Redis sorted set (one
//! member per call allowed), checked and recorded atomically by a short script.

use std::time::Duration;

use redis::aio::ConnectionManager;

/// Bound of one Redis round trip of a limit check.
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// Removes calls older than the window, then records this call if the budget allows it.
/// KEYS[1] the client's set; ARGV: now (ms), window (ms), budget, a unique member. 1 = allowed.
const SLIDING_WINDOW: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// What a limit check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the budget (the call is counted).
    Allowed,
    /// Over the budget.
    Limited,
}

/// At most `budget` calls per client within any `window`, across processes.
pub struct SharedLimiter {
    conn: ConnectionManager,
    prefix: String,
    budget: u32,
    window: Duration,
    script: redis::Script,
}

impl std::fmt::Debug for SharedLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLimiter")
            .field("prefix", &self.prefix)
            .field("budget", &self.budget)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl SharedLimiter {
    /// A limit whose keys are `{prefix}:{client}`.
    pub fn new(conn: ConnectionManager, prefix: String, budget: u32, window: Duration) -> Self {
        SharedLimiter {
            conn,
            prefix,
            budget,
            window,
            script: redis::Script::new(SLIDING_WINDOW),
        }
    }

    /// The calls a client may make within the window.
    pub fn budget(&self) -> u32 {
        self.budget
    }

    /// Checks and counts one call of `client`.
    pub async fn check(&self, client: &str) -> Result<Verdict, String> {
        let now = chrono::Utc::now().timestamp_millis();
        let member = format!("{now}-{:016x}", fastrand::u64(..));
        let mut conn = self.conn.clone();
        let mut inv = self.script.key(format!("{}:{client}", self.prefix));
        inv.arg(now)
            .arg(self.window.as_millis() as u64)
            .arg(self.budget)
            .arg(member);
        match tokio::time::timeout(REDIS_TIMEOUT, inv.invoke_async::<i64>(&mut conn)).await {
            Ok(Ok(1)) => Ok(Verdict::Allowed),
            Ok(Ok(_)) => Ok(Verdict::Limited),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }
}
