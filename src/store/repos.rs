//! Repositories, pull requests and the GitHub conditional-request cache.

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use serde::Serialize;

use super::StoreResult;
use crate::pull::PullSummary;

/// A repository row.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Repo {
    /// Row id.
    pub repo_id: i64,
    /// Owner.
    pub owner: String,
    /// Name.
    pub name: String,
    /// Default branch.
    pub default_branch: String,
    /// Open PRs known.
    pub open_prs: i64,
    /// Last finished scan.
    pub last_scan_at: Option<DateTime<Utc>>,
}

/// The repository row's id, default branch, installation and whether it is active.
pub async fn find_repo(
    c: &impl GenericClient,
    owner: &str,
    name: &str,
) -> StoreResult<Option<(i64, String, Option<i64>, bool)>> {
    let row = c
        .query_opt(
            "SELECT repo_id, default_branch, installation_id, active FROM repositories
             WHERE lower(owner) = lower($1) AND lower(name) = lower($2)",
            &[&owner, &name],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))))
}

/// Finds or creates the repository row (case-insensitively) and returns its id. A row that
/// needs no change is only read: every webhook delivery of a repository calls this inside its
/// transaction, and writing the row would make them all wait for each other's commit.
pub async fn upsert_repo(
    c: &impl GenericClient,
    owner: &str,
    name: &str,
    default_branch: Option<&str>,
) -> StoreResult<i64> {
    if let Some((id, branch, _, _)) = find_repo(c, owner, name).await?
        && default_branch.is_none_or(|b| b == branch)
    {
        return Ok(id);
    }
    let row = c
        .query_one(
            "INSERT INTO repositories (owner, name, default_branch)
             VALUES ($1, $2, COALESCE($3, 'main'))
             ON CONFLICT (lower(owner), lower(name)) DO UPDATE
               SET default_branch = COALESCE($3, repositories.default_branch),
                   updated_at = now()
             RETURNING repo_id",
            &[&owner, &name, &default_branch],
        )
        .await?;
    Ok(row.get(0))
}

/// Every active repository with its open PR count.
pub async fn list_repos(pool: &Pool) -> StoreResult<Vec<Repo>> {
    let c = pool.get().await?;
    let rows = c
        .query(
            "SELECT r.repo_id, r.owner, r.name, r.default_branch, r.last_scan_at,
                    (SELECT count(*) FROM pull_requests p WHERE p.repo_id = r.repo_id AND p.state = 'open')
             FROM repositories r WHERE r.active ORDER BY lower(r.owner), lower(r.name) LIMIT 1000",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Repo {
            repo_id: r.get(0),
            owner: r.get(1),
            name: r.get(2),
            default_branch: r.get(3),
            last_scan_at: r.get(4),
            open_prs: r.get(5),
        })
        .collect())
}

/// Inserts or updates a PR from GitHub's list item. Returns the head sha stored before (None for
/// a new PR).
pub async fn upsert_pull(
    c: &impl GenericClient,
    repo_id: i64,
    pr: &PullSummary,
) -> StoreResult<Option<String>> {
    let body = pr.body.clone().unwrap_or_default();
    let row = c
        .query_one(
            "WITH old AS (SELECT head_sha FROM pull_requests WHERE repo_id = $1 AND number = $2)
             INSERT INTO pull_requests (repo_id, number, title, body, author, html_url, state, draft,
                 head_sha, head_ref, base_ref, base_sha, created_at, updated_at, closed_at, merged_at,
                 labels)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
             ON CONFLICT (repo_id, number) DO UPDATE SET
                 title = EXCLUDED.title, body = EXCLUDED.body, author = EXCLUDED.author,
                 html_url = EXCLUDED.html_url, state = EXCLUDED.state, draft = EXCLUDED.draft,
                 head_sha = EXCLUDED.head_sha, head_ref = EXCLUDED.head_ref,
                 base_ref = EXCLUDED.base_ref, base_sha = EXCLUDED.base_sha,
                 updated_at = EXCLUDED.updated_at, closed_at = EXCLUDED.closed_at,
                 merged_at = EXCLUDED.merged_at, labels = EXCLUDED.labels, last_seen_at = now()
             RETURNING (SELECT head_sha FROM old)",
            &[
                &repo_id,
                &pr.number,
                &pr.title,
                &body,
                &pr.author(),
                &pr.html_url,
                &pr.state_word(),
                &pr.draft,
                &pr.head.sha,
                &pr.head.branch,
                &pr.base.branch,
                &pr.base.sha,
                &pr.created_at,
                &pr.updated_at,
                &pr.closed_at,
                &pr.merged_at,
                &pr.label_names(),
            ],
        )
        .await?;
    Ok(row.get(0))
}

/// Writes the listed PRs in one statement: new ones are inserted, stored ones updated unless the
/// stored row is newer (a webhook may have stored a later state while the listing was read).
/// Rows are written in number order, so concurrent writers wait instead of deadlocking.
pub async fn upsert_listed_pulls(
    c: &impl GenericClient,
    repo_id: i64,
    pulls: &[&PullSummary],
) -> StoreResult<u64> {
    if pulls.is_empty() {
        return Ok(0);
    }
    let mut sorted: Vec<&PullSummary> = pulls.to_vec();
    sorted.sort_by_key(|p| p.number);
    sorted.dedup_by_key(|p| p.number);
    let number: Vec<i64> = sorted.iter().map(|p| p.number).collect();
    let title: Vec<&str> = sorted.iter().map(|p| p.title.as_str()).collect();
    let body: Vec<&str> = sorted
        .iter()
        .map(|p| p.body.as_deref().unwrap_or(""))
        .collect();
    let author: Vec<&str> = sorted.iter().map(|p| p.author()).collect();
    let html_url: Vec<&str> = sorted.iter().map(|p| p.html_url.as_str()).collect();
    let state: Vec<&str> = sorted.iter().map(|p| p.state_word()).collect();
    let draft: Vec<bool> = sorted.iter().map(|p| p.draft).collect();
    let head_sha: Vec<&str> = sorted.iter().map(|p| p.head.sha.as_str()).collect();
    let head_ref: Vec<&str> = sorted.iter().map(|p| p.head.branch.as_str()).collect();
    let base_ref: Vec<&str> = sorted.iter().map(|p| p.base.branch.as_str()).collect();
    let base_sha: Vec<&str> = sorted.iter().map(|p| p.base.sha.as_str()).collect();
    let created: Vec<DateTime<Utc>> = sorted.iter().map(|p| p.created_at).collect();
    let updated: Vec<DateTime<Utc>> = sorted.iter().map(|p| p.updated_at).collect();
    let closed: Vec<Option<DateTime<Utc>>> = sorted.iter().map(|p| p.closed_at).collect();
    let merged: Vec<Option<DateTime<Utc>>> = sorted.iter().map(|p| p.merged_at).collect();
    // Arrays of arrays must be rectangular: each PR's labels travel joined by U+001F.
    let labels: Vec<String> = sorted
        .iter()
        .map(|p| p.label_names().join("\u{1f}"))
        .collect();
    let n = c
        .execute(
            "INSERT INTO pull_requests AS p (repo_id, number, title, body, author, html_url, state,
                 draft, head_sha, head_ref, base_ref, base_sha, created_at, updated_at, closed_at,
                 merged_at, labels)
             SELECT $1, l.number, l.title, l.body, l.author, l.html_url, l.state, l.draft,
                 l.head_sha, l.head_ref, l.base_ref, l.base_sha, l.created_at, l.updated_at,
                 l.closed_at, l.merged_at,
                 CASE WHEN l.labels = '' THEN '{}'::text[] ELSE string_to_array(l.labels, chr(31)) END
             FROM unnest($2::int8[], $3::text[], $4::text[], $5::text[], $6::text[],
                 $7::text[], $8::bool[], $9::text[], $10::text[], $11::text[], $12::text[],
                 $13::timestamptz[], $14::timestamptz[], $15::timestamptz[], $16::timestamptz[],
                 $17::text[])
                 AS l(number, title, body, author, html_url, state, draft, head_sha, head_ref,
                      base_ref, base_sha, created_at, updated_at, closed_at, merged_at, labels)
             ORDER BY l.number
             ON CONFLICT (repo_id, number) DO UPDATE SET
                 title = EXCLUDED.title, body = EXCLUDED.body, author = EXCLUDED.author,
                 html_url = EXCLUDED.html_url, state = EXCLUDED.state, draft = EXCLUDED.draft,
                 head_sha = EXCLUDED.head_sha, head_ref = EXCLUDED.head_ref,
                 base_ref = EXCLUDED.base_ref, base_sha = EXCLUDED.base_sha,
                 updated_at = EXCLUDED.updated_at, closed_at = EXCLUDED.closed_at,
                 merged_at = EXCLUDED.merged_at, labels = EXCLUDED.labels, last_seen_at = now()
             WHERE p.updated_at <= EXCLUDED.updated_at",
            &[
                &repo_id, &number, &title, &body, &author, &html_url, &state, &draft, &head_sha,
                &head_ref, &base_ref, &base_sha, &created, &updated, &closed, &merged, &labels,
            ],
        )
        .await?;
    Ok(n)
}

/// The database's clock. A scan notes it before listing, and compares it with `last_seen_at`,
/// which the same clock stamps whenever a PR row is written (by a scan or a webhook).
pub async fn db_now(c: &impl GenericClient) -> StoreResult<DateTime<Utc>> {
    Ok(c.query_one("SELECT now()", &[]).await?.get(0))
}

/// Open PRs of the repository that a complete listing did not show and that nothing wrote
/// since `since` (the listing's start): the ones that may have closed. A PR a webhook stored
/// while the listing ran is not among them.
pub async fn vanished_candidates(
    c: &impl GenericClient,
    repo_id: i64,
    listed: &[i64],
    since: DateTime<Utc>,
) -> StoreResult<Vec<i64>> {
    let rows = c
        .query(
            "SELECT number FROM pull_requests
             WHERE repo_id = $1 AND state = 'open' AND NOT (number = ANY($2))
               AND last_seen_at < $3
             ORDER BY number",
            &[&repo_id, &listed, &since],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Marks `numbers` closed (GitHub no longer knows them) unless something wrote them since
/// `since`, and drops their index rows so they stop matching. Returns how many were closed.
pub async fn close_vanished(
    c: &impl GenericClient,
    repo_id: i64,
    numbers: &[i64],
    since: DateTime<Utc>,
) -> StoreResult<u64> {
    let closed = c
        .execute(
            "UPDATE pull_requests SET state = 'closed', closed_at = COALESCE(closed_at, now())
             WHERE repo_id = $1 AND state = 'open' AND number = ANY($2) AND last_seen_at < $3",
            &[&repo_id, &numbers, &since],
        )
        .await?;
    if closed > 0 {
        c.execute(
            "DELETE FROM index_keys k USING pull_requests p
             WHERE k.repo_id = $1 AND p.repo_id = k.repo_id AND p.number = k.number
               AND p.state <> 'open' AND k.number = ANY($2)",
            &[&repo_id, &numbers],
        )
        .await?;
    }
    Ok(closed)
}

/// The cached ETag, body and Link header of a URL.
pub async fn http_cache_get(
    pool: &Pool,
    url: &str,
) -> StoreResult<Option<(String, Vec<u8>, Option<String>)>> {
    let c = pool.get().await?;
    let row = c
        .query_opt(
            "SELECT etag, body, link FROM http_cache WHERE url = $1",
            &[&url],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1), r.get(2))))
}

/// Remembers a URL's ETag and body.
pub async fn http_cache_put(
    pool: &Pool,
    url: &str,
    etag: &str,
    body: &[u8],
    link: Option<&str>,
) -> StoreResult<()> {
    let c = pool.get().await?;
    c.execute(
        "INSERT INTO http_cache (url, etag, body, link) VALUES ($1, $2, $3, $4)
         ON CONFLICT (url) DO UPDATE SET etag = $2, body = $3, link = $4, updated_at = now()",
        &[&url, &etag, &body, &link],
    )
    .await?;
    Ok(())
}

/// Head, state and last update of the stored PRs among `numbers`, by number: lets a scan skip
/// re-writing PRs a listing shows unchanged.
pub async fn stored_versions(
    c: &impl GenericClient,
    repo_id: i64,
    numbers: &[i64],
) -> StoreResult<std::collections::HashMap<i64, (String, String, DateTime<Utc>)>> {
    let rows = c
        .query(
            "SELECT p.number, p.head_sha, p.state, p.updated_at
             FROM unnest($2::int8[]) AS l(number)
             JOIN pull_requests p ON p.repo_id = $1 AND p.number = l.number",
            &[&repo_id, &numbers],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
        .collect())
}
