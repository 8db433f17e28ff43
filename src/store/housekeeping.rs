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

/// Claims the housekeeping pass of `period` for `worker`: true for exactly one caller per
/// period, however many processes ask (the others skip it). Claims older than a week go.
pub async fn claim_period(pool: &Pool, period: &str, worker: &str) -> StoreResult<bool> {
    let c = pool.get().await?;
    let won = c
        .execute(
            "INSERT INTO housekeeping_runs (period, worker) VALUES ($1, $2)
             ON CONFLICT (period) DO NOTHING",
            &[&period, &worker],
        )
        .await?
        == 1;
    if won {
        c.execute(
            "DELETE FROM housekeeping_runs WHERE started_at < now() - interval '7 days'",
            &[],
        )
        .await?;
    }
    Ok(won)
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

/// What one [`reap`] settled.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    /// Analyses `running` for longer than any job may run: marked failed.
    pub analyses: u64,
    /// Scans given up: never listed after a day, or listed long ago with heads nothing works on.
    pub scans: u64,
}

/// Settles work that no job will finish any more: a job cut off by its timeout or lost with
/// Redis skips its own bookkeeping, which would leave analyses `running` (and webhooks waiting
/// for them) and scans `running` forever. Analyses started more than `stale` ago and still
/// running become failed (the next scan or webhook tries them again); their scans' pending heads
/// are settled as failed; scans still unlisted a day after they were created fail.
pub async fn reap(pool: &Pool, stale: std::time::Duration) -> StoreResult<Reaped> {
    let mut c = pool.get().await?;
    let secs = stale.as_secs_f64();
    let tx = c.transaction().await?;
    let rows = tx
        .query(
            "UPDATE analysis_runs SET status = 'failed', finished_at = now(),
                 error = 'abandoned: still running (or queued) long after any job could have ended'
             WHERE status IN ('running', 'queued')
               AND started_at < now() - make_interval(secs => $1)
             RETURNING repo_id, number, head_sha",
            &[&secs],
        )
        .await?;
    let analyses = rows.len() as u64;
    // Their heads' pending entries in running scans, then the scans that have nothing left.
    let mut scans = 0;
    if analyses > 0 {
        let repo: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        let number: Vec<i64> = rows.iter().map(|r| r.get(1)).collect();
        let head: Vec<String> = rows.iter().map(|r| r.get(2)).collect();
        let ids: Vec<String> = tx
            .query(
                "UPDATE scan_prs p SET outcome = 'failed'
                 FROM scan_jobs j, unnest($1::int8[], $2::int8[], $3::text[]) AS h(repo_id, number, head_sha)
                 WHERE p.job_id = j.job_id AND j.repo_id = h.repo_id AND p.number = h.number
                   AND p.head_sha = h.head_sha AND p.outcome = 'pending'
                 RETURNING p.job_id",
                &[&repo, &number, &head],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        super::scans::settle_scans(&tx, &ids).await?;
    }
    scans += tx
        .execute(
            "UPDATE scan_jobs SET state = 'failed', finished_at = now(),
                 error = 'abandoned: the listing never finished'
             WHERE state IN ('queued', 'running') AND NOT listing_done
               AND created_at < now() - interval '1 day'",
            &[],
        )
        .await?;
    tx.commit().await?;
    Ok(Reaped { analyses, scans })
}
