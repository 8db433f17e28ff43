//! What each queue holds right now, read from apalis's own Redis keys (for `/metrics`).
//!
//! apalis-redis keeps a queue `Q` in these keys: `Q:scheduled` (a sorted set of task ids by the
//! time they may run; every push lands here), `Q:active` (a list of due ids, oldest first, moved
//! there by a worker's fetch), `Q:inflight:<worker>` (ids a worker is running), `Q:dead` (ids
//! given up) and `Q:meta:<id>` (a hash per task, where [`super::Queues`] stores `pushed_at`).

use std::time::Duration;

use super::{JobError, Queues};

/// The meta field holding a task's push time (unix seconds), written by [`Queues`] on push.
pub const PUSHED_AT: &str = "pushed_at";

/// One queue's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    /// The queue's short name (`scan`, `analyse`, ...).
    pub name: &'static str,
    /// Jobs that may run now and wait for a worker.
    pub waiting: u64,
    /// Jobs set to run later (retries, debounced check runs).
    pub scheduled: u64,
    /// Jobs a worker holds (running, or orphaned until recovered).
    pub running: u64,
    /// Jobs given up after their last attempt.
    pub dead: u64,
    /// Seconds the oldest waiting job has waited (0 when none waits).
    pub oldest_waiting_secs: u64,
}

/// Task metadata recording the push time, so the age of the oldest waiting job can be told.
pub fn pushed_now() -> apalis::prelude::MetadataStore {
    let mut meta = apalis::prelude::MetadataStore::new();
    let _ = meta.insert(PUSHED_AT, chrono::Utc::now().timestamp().to_string());
    meta
}

fn redis_err(e: redis::RedisError) -> JobError {
    JobError::Redis(e.to_string())
}

impl Queues {
    /// Reads every queue of [`Queues::all`], bounded in time.
    pub async fn stats(&self) -> Result<Vec<QueueStats>, JobError> {
        let read = async {
            let mut out = Vec::new();
            for (name, cfg) in self.all() {
                out.push(self.queue_stats(name, cfg).await?);
            }
            Ok(out)
        };
        tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .map_err(|_| JobError::Redis("reading queue sizes timed out".into()))?
    }

    async fn queue_stats(
        &self,
        name: &'static str,
        q: &super::QueueConfig,
    ) -> Result<QueueStats, JobError> {
        let mut conn = self.conn.clone();
        let (active_list, scheduled) = (q.active_jobs_list(), q.scheduled_jobs_set());
        let now = chrono::Utc::now().timestamp();
        #[allow(clippy::type_complexity)]
        let (active, due, later, dead, head, oldest_due, workers): (
            u64,
            u64,
            u64,
            u64,
            Option<String>,
            Vec<(String, f64)>,
            Vec<String>,
        ) = redis::pipe()
            .cmd("LLEN")
            .arg(&active_list)
            .cmd("ZCOUNT")
            .arg(&scheduled)
            .arg("-inf")
            .arg(now)
            .cmd("ZCOUNT")
            .arg(&scheduled)
            .arg(format!("({now}"))
            .arg("+inf")
            .cmd("ZCARD")
            .arg(q.dead_jobs_set())
            .cmd("LINDEX")
            .arg(&active_list)
            .arg(0)
            .cmd("ZRANGE")
            .arg(&scheduled)
            .arg(0)
            .arg(0)
            .arg("WITHSCORES")
            .cmd("ZRANGE")
            .arg(q.workers_set())
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        let mut running = 0u64;
        if !workers.is_empty() {
            let mut p = redis::pipe();
            for w in &workers {
                p.cmd("SCARD").arg(format!("{}:{w}", q.inflight_jobs_set()));
            }
            let sizes: Vec<u64> = p.query_async(&mut conn).await.map_err(redis_err)?;
            running = sizes.iter().sum();
        }
        // The head of the active list waited longest; without one, the earliest due task.
        let mut since: Option<i64> = None;
        if let Some(id) = head {
            let pushed: Option<i64> = redis::cmd("HGET")
                .arg(format!("{}:{id}", q.job_meta_hash()))
                .arg(PUSHED_AT)
                .query_async(&mut conn)
                .await
                .map_err(redis_err)?;
            since = pushed;
        }
        if since.is_none()
            && let Some((_, score)) = oldest_due.first()
            && (*score as i64) <= now
        {
            since = Some(*score as i64);
        }
        Ok(QueueStats {
            name,
            waiting: active + due,
            scheduled: later,
            running,
            dead,
            oldest_waiting_secs: since.map(|t| (now - t).max(0) as u64).unwrap_or(0),
        })
    }
}
