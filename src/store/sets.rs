//! The registry of duplicate sets: which sets a repository had at its last refresh, under which
//! stable ids (see [`crate::triage::set_ids`]), since when, and what changed.

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use sha2::{Digest, Sha256};

use super::StoreResult;
use crate::triage::set_ids::KnownSet;

/// A repository the appliance works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveRepo {
    /// Row id.
    pub repo_id: i64,
    /// Owner.
    pub owner: String,
    /// Name.
    pub name: String,
    /// Default branch.
    pub default_branch: String,
    /// GitHub App installation, if any.
    pub installation_id: Option<i64>,
}

/// Every active repository.
pub async fn active_repos(pool: &Pool) -> StoreResult<Vec<ActiveRepo>> {
    let c = pool.get().await?;
    let rows = c
        .query(
            "SELECT repo_id, owner, name, default_branch, installation_id FROM repositories
             WHERE active ORDER BY repo_id LIMIT 10000",
            &[],
        )
        .await?;
    Ok(rows.iter().map(active_repo).collect())
}

fn active_repo(r: &tokio_postgres::Row) -> ActiveRepo {
    ActiveRepo {
        repo_id: r.get(0),
        owner: r.get(1),
        name: r.get(2),
        default_branch: r.get(3),
        installation_id: r.get(4),
    }
}

/// One repository (active or not).
pub async fn repo(pool: &Pool, repo_id: i64) -> StoreResult<Option<ActiveRepo>> {
    let c = pool.get().await?;
    let row = c
        .query_opt(
            "SELECT repo_id, owner, name, default_branch, installation_id FROM repositories
             WHERE repo_id = $1",
            &[&repo_id],
        )
        .await?;
    Ok(row.as_ref().map(active_repo))
}

/// A short fingerprint of everything the sets of a repository depend on: the newest finished
/// analysis (new edges), the newest verdict, the number of open PRs and the newest close. When
/// it is unchanged, so are the sets.
pub async fn watermark(pool: &Pool, repo_id: i64) -> StoreResult<String> {
    let c = pool.get().await?;
    let r = c
        .query_one(
            &format!("SELECT {WATERMARK_PARTS} FROM (SELECT $1::int8 AS repo_id) r"),
            &[&repo_id],
        )
        .await?;
    Ok(watermark_of(&r, 0))
}

/// The four columns of a watermark, for a query over `repositories r`.
const WATERMARK_PARTS: &str =
    "(SELECT max(finished_at) FROM analysis_runs a WHERE a.repo_id = r.repo_id)::text,
     (SELECT max(feedback_id) FROM feedback f WHERE f.repo_id = r.repo_id),
     (SELECT count(*) FROM pull_requests p WHERE p.repo_id = r.repo_id AND p.state = 'open'),
     (SELECT max(closed_at) FROM pull_requests p WHERE p.repo_id = r.repo_id)::text";

/// The watermark of the [`WATERMARK_PARTS`] columns starting at `at`.
fn watermark_of(r: &tokio_postgres::Row, at: usize) -> String {
    let parts = format!(
        "{}|{}|{}|{}",
        r.get::<_, Option<String>>(at).unwrap_or_default(),
        r.get::<_, Option<i64>>(at + 1).unwrap_or_default(),
        r.get::<_, i64>(at + 2),
        r.get::<_, Option<String>>(at + 3).unwrap_or_default()
    );
    hex::encode(&Sha256::digest(parts.as_bytes())[..8])
}

/// The active repositories whose sets need a refresh, with their watermark: the watermark moved
/// since their last refresh, and no scan of theirs is queued or running (started within the
/// last 6 hours, the scan job's own time bound: its sets are recorded once it is over, so that
/// one scan makes one announcement). One query for all repositories.
pub async fn refresh_due(pool: &Pool) -> StoreResult<Vec<(ActiveRepo, String)>> {
    let c = pool.get().await?;
    let rows = c
        .query(
            &format!(
                "SELECT r.repo_id, r.owner, r.name, r.default_branch, r.installation_id,
                        {WATERMARK_PARTS},
                        (SELECT watermark FROM set_refreshes s WHERE s.repo_id = r.repo_id)
                 FROM repositories r
                 WHERE r.active
                   AND NOT EXISTS (SELECT 1 FROM scan_jobs j WHERE j.repo_id = r.repo_id
                                     AND j.state IN ('queued', 'running')
                                     AND j.created_at > now() - interval '6 hours')
                 ORDER BY r.repo_id LIMIT 10000"
            ),
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let wm = watermark_of(r, 5);
            let last: Option<String> = r.get(9);
            (last.as_deref() != Some(wm.as_str())).then(|| (active_repo(r), wm))
        })
        .collect())
}

/// Runs `f` while holding a lock named `name` for the repository (one digest, one refresh of a
/// repository at a time, across jobs).
pub async fn with_repo_lock<T, E: From<super::StoreError>>(
    pool: &Pool,
    name: &str,
    repo_id: i64,
    f: impl AsyncFnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let mut c = pool.get().await.map_err(super::StoreError::from)?;
    let tx = c.transaction().await.map_err(super::StoreError::from)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1 || ':' || $2::int8::text)::int8)",
        &[&name, &repo_id],
    )
    .await
    .map_err(super::StoreError::from)?;
    let out = f().await;
    // Commit or roll back, the lock goes with the transaction.
    let _ = tx.commit().await;
    out
}

/// Sets the registry knows: the active ones and those gone within the last 90 days (at most
/// 20,000, newest first).
pub async fn known_sets(c: &impl GenericClient, repo_id: i64) -> StoreResult<Vec<KnownSet>> {
    let rows = c
        .query(
            "SELECT set_id, members, active, first_seen_at FROM duplicate_sets
             WHERE repo_id = $1 AND (active OR updated_at > now() - interval '90 days')
             ORDER BY active DESC, updated_at DESC LIMIT 20000",
            &[&repo_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let m: Vec<i64> = r.get(1);
            let t: DateTime<Utc> = r.get(3);
            KnownSet {
                set_id: r.get(0),
                members: m.into_iter().map(|x| x as u64).collect(),
                active: r.get(2),
                first_seen: t.timestamp(),
            }
        })
        .collect())
}

/// A set as a refresh found it.
#[derive(Debug, Clone)]
pub struct RegistrySet {
    /// Stable id.
    pub set_id: String,
    /// Members, ascending.
    pub members: Vec<i64>,
    /// high | medium | review.
    pub tier: String,
    /// Strongest link.
    pub max_score: f64,
}

/// Takes the repository's registry lock for the transaction (refreshes of one repository run
/// one at a time).
pub async fn lock_registry(c: &impl GenericClient, repo_id: i64) -> StoreResult<()> {
    c.execute(
        "SELECT pg_advisory_xact_lock(hashtext('sets:' || $1::int8::text)::int8)",
        &[&repo_id],
    )
    .await?;
    Ok(())
}

/// Stores the sets of a refresh: each one active with its members, every other known set
/// inactive, and the watermark.
pub async fn save_refresh(
    c: &impl GenericClient,
    repo_id: i64,
    sets: &[RegistrySet],
    watermark: &str,
) -> StoreResult<()> {
    let ids: Vec<&str> = sets.iter().map(|s| s.set_id.as_str()).collect();
    // One statement for every set; arrays of arrays must be rectangular, so members travel
    // joined by commas.
    let members: Vec<String> = sets
        .iter()
        .map(|s| {
            s.members
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    let tiers: Vec<&str> = sets.iter().map(|s| s.tier.as_str()).collect();
    let scores: Vec<f64> = sets.iter().map(|s| s.max_score).collect();
    c.execute(
        "INSERT INTO duplicate_sets (repo_id, set_id, members, tier, max_score)
         SELECT $1, s.id, string_to_array(s.m, ',')::int8[], s.t, s.x
         FROM unnest($2::text[], $3::text[], $4::text[], $5::float8[]) AS s(id, m, t, x)
         ORDER BY s.id
         ON CONFLICT (repo_id, set_id) DO UPDATE SET members = EXCLUDED.members,
             tier = EXCLUDED.tier, max_score = EXCLUDED.max_score, active = TRUE,
             updated_at = CASE WHEN duplicate_sets.members = EXCLUDED.members
                                AND duplicate_sets.active
                               THEN duplicate_sets.updated_at ELSE now() END",
        &[&repo_id, &ids, &members, &tiers, &scores],
    )
    .await?;
    c.execute(
        "UPDATE duplicate_sets SET active = FALSE, updated_at = now()
         WHERE repo_id = $1 AND active AND NOT (set_id = ANY($2))",
        &[&repo_id, &ids],
    )
    .await?;
    c.execute(
        "INSERT INTO set_refreshes (repo_id, watermark) VALUES ($1, $2)
         ON CONFLICT (repo_id) DO UPDATE SET watermark = EXCLUDED.watermark, refreshed_at = now()",
        &[&repo_id, &watermark],
    )
    .await?;
    Ok(())
}

/// When each of these sets was first seen, by id.
pub async fn first_seen(
    pool: &Pool,
    repo_id: i64,
    set_ids: &[String],
) -> StoreResult<std::collections::HashMap<String, DateTime<Utc>>> {
    let c = pool.get().await?;
    let rows = c
        .query(
            "SELECT set_id, first_seen_at FROM duplicate_sets WHERE repo_id = $1 AND set_id = ANY($2)",
            &[&repo_id, &set_ids],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
