//! Retention (`RETENTION_DAYS`): what an appliance left running for months prunes, and what it
//! must keep.

mod common;

use clawtriage::store::housekeeping::{Pruned, prune};
use common::Services;

async fn ids(c: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    c.query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn old_deliveries_scans_and_cache_entries_go_and_the_rest_stays() {
    let svc = Services::new().await;
    svc.migrate().await;
    let c = svc.client().await;
    let pool = clawtriage::store::connect(&svc.database_url, 2).unwrap();
    let (busy, quiet) = {
        let pc = pool.get().await.unwrap();
        let busy = clawtriage::store::repos::upsert_repo(&pc, "o", "busy", Some("main"))
            .await
            .unwrap();
        let quiet = clawtriage::store::repos::upsert_repo(&pc, "o", "quiet", Some("main"))
            .await
            .unwrap();
        (busy, quiet)
    };
    let scan = "INSERT INTO scan_jobs (job_id, repo_id, owner, repo, snapshot, state, created_at, finished_at)
                VALUES ($1, $2, 'o', $3, $1, $4, now() - make_interval(days => $5),
                        CASE WHEN $4 IN ('done', 'failed') THEN now() - make_interval(days => $5) END)";
    for (id, repo, name, state, age) in [
        ("busy-old-done", busy, "busy", "done", 45),
        ("busy-older-done", busy, "busy", "done", 60),
        ("busy-old-failed", busy, "busy", "failed", 40),
        ("busy-old-running", busy, "busy", "running", 40),
        ("busy-fresh-done", busy, "busy", "done", 2),
        ("quiet-old-done", quiet, "quiet", "done", 90),
        ("quiet-older-done", quiet, "quiet", "done", 120),
    ] {
        c.execute(scan, &[&id, &repo, &name, &state, &age])
            .await
            .unwrap();
    }
    c.execute(
        "INSERT INTO scan_prs (job_id, number, head_sha, outcome)
         VALUES ('busy-old-done', 1, 'a', 'analyzed'), ('busy-fresh-done', 1, 'a', 'unchanged')",
        &[],
    )
    .await
    .unwrap();
    c.batch_execute(
        "INSERT INTO webhook_deliveries (delivery_id, event, received_at) VALUES
             ('d-old', 'pull_request', now() - interval '31 days'),
             ('d-older', 'ping', now() - interval '200 days'),
             ('d-fresh', 'pull_request', now() - interval '29 days');
         INSERT INTO http_cache (url, etag, body, updated_at) VALUES
             ('https://gh/old', 'W/\"1\"', '\\x00', now() - interval '40 days'),
             ('https://gh/fresh', 'W/\"2\"', '\\x00', now());",
    )
    .await
    .unwrap();
    let key = clawtriage::store::analysis::key_id;
    c.execute(
        "INSERT INTO key_counts (repo_id, signature_version, config_version, key, n) VALUES
             (1, 1, 1, $1, 0), (1, 1, 1, $2, 3)",
        &[&key("path:gone.ts"), &key("path:kept.ts")],
    )
    .await
    .unwrap();

    let pruned = prune(&pool, 30).await.unwrap();
    assert_eq!(
        pruned,
        Pruned {
            deliveries: 2,
            scans: 4,
            http_cache: 1,
            key_counts: 1,
        }
    );
    assert_eq!(
        ids(&c, "SELECT job_id FROM scan_jobs ORDER BY job_id").await,
        ["busy-fresh-done", "busy-old-running", "quiet-old-done"],
        "unfinished scans and each repository's latest finished scan stay"
    );
    assert_eq!(
        ids(&c, "SELECT job_id FROM scan_prs").await,
        ["busy-fresh-done"],
        "a pruned scan's per-PR rows go with it"
    );
    assert_eq!(
        ids(&c, "SELECT delivery_id FROM webhook_deliveries").await,
        ["d-fresh"]
    );
    assert_eq!(
        ids(&c, "SELECT url FROM http_cache").await,
        ["https://gh/fresh"]
    );
    assert_eq!(
        ids(&c, "SELECT key::text FROM key_counts").await,
        [key("path:kept.ts").to_string()],
        "zero document frequencies go"
    );
    // Nothing left to prune: a second pass removes nothing.
    assert_eq!(prune(&pool, 30).await.unwrap().total(), 0);
    // A shorter retention reaches further.
    assert_eq!(prune(&pool, 1).await.unwrap().deliveries, 1);
}
