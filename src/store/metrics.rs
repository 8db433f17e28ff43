//! Reads behind `/metrics` that need Postgres.

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

use super::StoreResult;

/// A scan that reached `done` or `failed`.
#[derive(Debug, Clone)]
pub struct FinishedScan {
    /// Job id.
    pub job_id: String,
    /// done | failed.
    pub state: String,
    /// When it finished.
    pub finished_at: DateTime<Utc>,
    /// From queued to finished.
    pub duration_secs: f64,
}

/// Scans finished after (`finished_at`, `job_id`), oldest first, at most `limit`.
pub async fn scans_finished_after(
    pool: &Pool,
    after: DateTime<Utc>,
    after_job: &str,
    limit: i64,
) -> StoreResult<Vec<FinishedScan>> {
    let c = pool.get().await?;
    let rows = c
        .query(
            "SELECT job_id, state, finished_at,
                    extract(epoch FROM finished_at - created_at)::float8
             FROM scan_jobs
             WHERE state IN ('done', 'failed') AND finished_at IS NOT NULL
               AND (finished_at, job_id) > ($1, $2)
             ORDER BY finished_at, job_id LIMIT $3",
            &[&after, &after_job, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| FinishedScan {
            job_id: r.get(0),
            state: r.get(1),
            finished_at: r.get(2),
            duration_secs: r.get(3),
        })
        .collect())
}
