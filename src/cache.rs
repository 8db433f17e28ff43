//! A small in-process cache of rendered API answers (duplicate-set pages are the expensive
//! ones). Writers that change what those answers show bump a generation number; an entry is
//! served only while its generation is current and it is younger than the TTL (the TTL bounds
//! staleness from writers this process does not see).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Entries kept at most; when full, the cache starts over.
const MAX_ENTRIES: usize = 512;

/// The cache.
#[derive(Debug)]
pub struct ResultsCache {
    generation: AtomicU64,
    ttl: Duration,
    entries: Mutex<HashMap<String, (u64, Instant, Bytes)>>,
}

impl ResultsCache {
    /// An empty cache whose entries live at most `ttl`.
    pub fn new(ttl: Duration) -> Self {
        ResultsCache {
            generation: AtomicU64::new(0),
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The current generation (read it before computing an answer, store the answer with it).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Something the answers show changed: every entry is stale now.
    pub fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// A fresh answer for `key`, if there is one.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        let g = self.generation();
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(eg, at, _)| *eg == g && at.elapsed() < self.ttl)
            .map(|(_, _, b)| b.clone())
    }

    /// Stores an answer computed at generation `generation`.
    pub fn put(&self, key: String, generation: u64, value: Bytes) {
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

    #[test]
    fn entries_expire_on_bump_and_on_ttl() {
        let c = ResultsCache::new(Duration::from_millis(50));
        let g = c.generation();
        c.put("k".into(), g, Bytes::from_static(b"v"));
        assert_eq!(c.get("k").as_deref(), Some(&b"v"[..]));
        c.bump();
        assert_eq!(c.get("k"), None, "a write makes it stale");
        c.put("k".into(), c.generation(), Bytes::from_static(b"w"));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.get("k"), None, "the TTL bounds staleness");
        // An answer computed before a bump is never served after it.
        let before = c.generation();
        c.bump();
        c.put("k".into(), before, Bytes::from_static(b"old"));
        assert_eq!(c.get("k"), None);
    }
}
