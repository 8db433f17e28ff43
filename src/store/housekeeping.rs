//! Retention: an appliance left running for months must not grow without bound. Old webhook
//! delivery ids (kept only to refuse replays), finished scans with their per-PR rows, and
//! conditional-request cache entries nobody refreshed are removed after `RETENTION_DAYS`, and
//! the document-frequency rows of keys no open PR carries any more.
//! Results (PRs, analyses, edges, feedback) are never pruned here.

use deadpool_postgres::Pool;

use super::StoreResult;

/// Rows removed by one [`prune`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Webhook delivery ids older than the retention.
    pub deliveries: u64,
    /// Finished scans (and their per-PR rows) older than the retention; the latest finished
    /// scan of each repository is always kept.
    pub scans: u64,
    /// Conditional-request cache entries not refreshed within the retention.
    pub http_cache: u64,
    /// Document-frequency rows of keys no current head carries any more.
    pub key_counts: u64,
}

impl Pruned {
    /// Total rows removed.
    pub fn total(&self) -> u64 {
        self.deliveries + self.scans + self.http_cache + self.key_counts
    }
}

/// Removes what is older than `keep_days`, and zero document-frequency rows, in four short
/// statements.
pub async fn prune(pool: &Pool, keep_days: i32) -> StoreResult<Pruned> {
    let c = pool.get().await?;
    let deliveries = c
        .execute(
            "DELETE FROM webhook_deliveries
             WHERE received_at < now() - make_interval(days => $1)",
            &[&keep_days],
        )
        .await?;
    let scans = c
        .execute(
            "DELETE FROM scan_jobs j
             WHERE j.state IN ('done', 'failed')
               AND COALESCE(j.finished_at, j.created_at) < now() - make_interval(days => $1)
               AND j.job_id IS DISTINCT FROM (
                   SELECT k.job_id FROM scan_jobs k
                   WHERE k.repo_id IS NOT DISTINCT FROM j.repo_id AND k.owner = j.owner
                     AND k.repo = j.repo AND k.state = 'done'
                   ORDER BY k.finished_at DESC NULLS LAST, k.job_id DESC LIMIT 1)",
            &[&keep_days],
        )
        .await?;
    let http_cache = c
        .execute(
            "DELETE FROM http_cache WHERE updated_at < now() - make_interval(days => $1)",
            &[&keep_days],
        )
        .await?;
    let key_counts = c.execute("DELETE FROM key_counts WHERE n = 0", &[]).await?;
    Ok(Pruned {
        deliveries,
        scans,
        http_cache,
        key_counts,
    })
}
