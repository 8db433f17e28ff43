//! Verdicts out and in, for backup and restore (see [`crate::backup`]).

use deadpool_postgres::Pool;

use super::StoreResult;
use crate::backup::{SCHEMA_VERSION, VerdictRecord};

/// Verdicts of every repository in the order they were given (by id), after `after_id`, at most
/// `limit`; each with its id (the export's cursor).
pub async fn export_page(
    pool: &Pool,
    after_id: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<(i64, VerdictRecord)>> {
    let c = pool.get().await?;
    let rows = c
        .query(
            "SELECT f.feedback_id, f.verdict_key, r.owner || '/' || r.name, f.target, f.a_number,
                    f.b_number, f.set_id, f.members, f.verdict, f.base_number, f.actor, f.note,
                    f.created_at
             FROM feedback f JOIN repositories r ON r.repo_id = f.repo_id
             WHERE $1::int8 IS NULL OR f.feedback_id > $1::int8
             ORDER BY f.feedback_id LIMIT $2",
            &[&after_id, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get(0),
                VerdictRecord {
                    schema_version: SCHEMA_VERSION,
                    verdict_key: r.get(1),
                    repo: r.get(2),
                    target: r.get(3),
                    a_number: r.get(4),
                    b_number: r.get(5),
                    set_id: r.get(6),
                    members: r.get(7),
                    verdict: r.get(8),
                    base_number: r.get(9),
                    actor: r.get(10),
                    note: r.get(11),
                    created_at: r.get(12),
                },
            )
        })
        .collect())
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportOutcome {
    /// Verdicts stored now.
    pub imported: u64,
    /// Verdicts whose key was stored already (left as they are).
    pub already_present: u64,
}

/// Stores checked verdicts in one transaction, each exactly as exported (a set verdict's implied
/// pair verdicts are records of their own), creating the repositories they name; a verdict whose
/// key exists already is skipped.
pub async fn import(pool: &Pool, records: &[VerdictRecord]) -> StoreResult<ImportOutcome> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    let insert = tx
        .prepare(
            "INSERT INTO feedback (repo_id, verdict_key, target, a_number, b_number, set_id,
                 members, verdict, base_number, actor, note, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (verdict_key) DO NOTHING",
        )
        .await?;
    let mut repo_ids = std::collections::HashMap::new();
    let mut out = ImportOutcome::default();
    for r in records {
        let (owner, name) = r.repo.split_once('/').unwrap_or((&r.repo, ""));
        let key = r.repo.to_ascii_lowercase();
        let repo_id = match repo_ids.get(&key) {
            Some(id) => *id,
            None => {
                let id = super::repos::upsert_repo(&tx, owner, name, None).await?;
                repo_ids.insert(key, id);
                id
            }
        };
        let n = tx
            .execute(
                &insert,
                &[
                    &repo_id,
                    &r.verdict_key,
                    &r.target,
                    &r.a_number,
                    &r.b_number,
                    &r.set_id,
                    &r.members,
                    &r.verdict,
                    &r.base_number,
                    &r.actor,
                    &r.note,
                    &r.created_at,
                ],
            )
            .await?;
        if n == 1 {
            out.imported += 1;
        } else {
            out.already_present += 1;
        }
    }
    tx.commit().await?;
    Ok(out)
}
