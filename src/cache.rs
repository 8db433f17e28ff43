//! A small in-process cache of rendered API answers (duplicate-set pages are the expensive
//! ones), correct with any number of processes. Writers that change what those answers show
//! bump a generation number kept in Redis (`INCR`), so a verdict recorded through one process
//! makes every process's entries stale; each read checks the shared generation (one `GET`, far
//! cheaper than the answer). An entry is served only while the shared generation and this
//! process's own are the ones it was computed at and it is younger than the TTL. When Redis
//! does not answer nothing is served from or stored in the cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::aio::ConnectionManager;

/// Entries kept at most; when full, the cache starts over.
const MAX_ENTRIES: usize = 512;
/// Bound of one Redis round trip of the cache.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// The generation an answer was computed at: the shared one (Redis) and this process's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation {
    shared: u64,
    local: u64,
}

/// The cache.
pub struct ResultsCache {
    shared: Option<(ConnectionManager, String)>,
    local: AtomicU64,
    ttl: Duration,
    entries: Mutex<HashMap<String, (Generation, Instant, Bytes)>>,
}

impl std::fmt::Debug for ResultsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultsCache")
            .field("shared_key", &self.shared.as_ref().map(|(_, k)| k))
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl ResultsCache {
    /// A cache for one process alone (no shared generation).
    pub fn new(ttl: Duration) -> Self {
        ResultsCache {
            shared: None,
            local: AtomicU64::new(0),
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// A cache whose generation is shared through the Redis counter `key`.
    pub fn shared(ttl: Duration, conn: ConnectionManager, key: String) -> Self {
        ResultsCache {
            shared: Some((conn, key)),
            ..Self::new(ttl)
        }
    }

    /// The current generation (read it before computing an answer, store the answer with it);
    /// None when Redis does not answer.
    pub async fn generation(&self) -> Option<Generation> {
        let local = self.local.load(Ordering::Acquire);
        let shared = match &self.shared {
            None => 0,
            Some((conn, key)) => {
                let mut conn = conn.clone();
                let mut cmd = redis::cmd("GET");
                cmd.arg(key);
                let get = cmd.query_async::<Option<u64>>(&mut conn);
                match tokio::time::timeout(REDIS_TIMEOUT, get).await {
                    Ok(Ok(v)) => v.unwrap_or(0),
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "results cache: redis unavailable");
                        return None;
                    }
                    Err(_) => return None,
                }
            }
        };
        Some(Generation { shared, local })
    }

    /// Something the answers show changed: every entry of every process is stale now.
    pub async fn bump(&self) {
        self.local.fetch_add(1, Ordering::AcqRel);
        if let Some((conn, key)) = &self.shared {
            let mut conn = conn.clone();
            let mut cmd = redis::cmd("INCR");
            cmd.arg(key);
            let incr = cmd.query_async::<u64>(&mut conn);
            match tokio::time::timeout(REDIS_TIMEOUT, incr).await {
                Ok(Ok(_)) => {}
                // Other processes then serve what they have for at most the TTL.
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "results cache: cannot bump the shared generation")
                }
                Err(_) => tracing::warn!("results cache: bumping the shared generation timed out"),
            }
        }
    }

    /// The current generation and, if there is one, a fresh answer for `key`.
    pub async fn lookup(&self, key: &str) -> (Option<Generation>, Option<Bytes>) {
        let Some(g) = self.generation().await else {
            return (None, None);
        };
        let hit = self.entries.lock().ok().and_then(|entries| {
            entries
                .get(key)
                .filter(|(eg, at, _)| *eg == g && at.elapsed() < self.ttl)
                .map(|(_, _, b)| b.clone())
        });
        (Some(g), hit)
    }

    /// Stores an answer computed at `generation` (nothing when that is unknown).
    pub fn put(&self, key: String, generation: Option<Generation>, value: Bytes) {
        let Some(generation) = generation else {
            return;
        };
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(key, (generation, Instant::now(), value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_expire_on_bump_and_on_ttl() {
        let c = ResultsCache::new(Duration::from_millis(50));
        let (g, hit) = c.lookup("k").await;
        assert_eq!(hit, None);
        c.put("k".into(), g, Bytes::from_static(b"v"));
        assert_eq!(c.lookup("k").await.1.as_deref(), Some(&b"v"[..]));
        c.bump().await;
        assert_eq!(c.lookup("k").await.1, None, "a write makes it stale");
        c.put("k".into(), c.generation().await, Bytes::from_static(b"w"));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.lookup("k").await.1, None, "the TTL bounds staleness");
        // An answer computed before a bump is never served after it.
        let before = c.generation().await;
        c.bump().await;
        c.put("k".into(), before, Bytes::from_static(b"old"));
        assert_eq!(c.lookup("k").await.1, None);
        // Nothing is kept when the generation is unknown.
        c.put("k".into(), None, Bytes::from_static(b"x"));
        assert_eq!(c.lookup("k").await.1, None);
    }
}
