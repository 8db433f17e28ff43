//! Analyses of PR heads, a batch at a time: signatures, files with channels, index keys and
//! candidate edges. Every function takes all heads of a batch and costs one statement per table,
//! whatever the batch size.
//!
//! A batch is written in two transactions. [`save_index`] stores the heads' files, signatures and
//! index keys (document frequencies follow by trigger); only then are candidates looked up, so two
//! batches running at the same moment always see each other's heads from at least one side.
//! [`save_results`] then stores the scored edges, finishes the analyses and settles the scans.
//! Both lock the PRs' rows and write only heads that are still their PR's current head, so a slow
//! analysis of an old head can never overwrite what a newer head stored.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool, Transaction};

use super::{StoreError, StoreResult};
use crate::triage::{self, Analysis, Edge, Signature};

fn to_json<T: serde::Serialize>(x: &T) -> StoreResult<serde_json::Value> {
    serde_json::to_value(x).map_err(|e| StoreError::Decode(e.to_string()))
}

/// GitHub's word for a file status.
fn status_word(s: triage::FileStatus) -> &'static str {
    use triage::FileStatus::*;
    match s {
        Added => "added",
        Removed => "removed",
        Modified => "modified",
        Renamed => "renamed",
        Copied => "copied",
        Changed => "changed",
        Unchanged => "unchanged",
    }
}

/// The versions every derived row carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    /// Signature format.
    pub signature: i32,
    /// Scoring algorithm.
    pub algorithm: i32,
    /// Triage config.
    pub config: i32,
}

impl Versions {
    /// The versions of this build with the given triage config.
    pub fn current(cfg: &triage::TriageConfig) -> Self {
        Versions {
            signature: triage::SIGNATURE_VERSION,
            algorithm: triage::ALGORITHM_VERSION,
            config: cfg.config_version,
        }
    }
}

/// The stored id of an index key: a 64-bit hash of its string (an integer B-tree is smaller and
/// faster than text). A collision would merge two keys' postings and document frequencies, which
/// can only add a candidate or soften a rarity weight; scoring compares the signatures themselves.
pub fn key_id(key: &str) -> i64 {
    triage::index::key_hash_str(key) as i64
}

/// The binary form of a signature as stored (postcard: compact, and decoded straight into the
/// Rust type).
pub fn encode_signature(sig: &Signature) -> StoreResult<Vec<u8>> {
    postcard::to_stdvec(sig).map_err(|e| StoreError::Decode(format!("signature encoding: {e}")))
}

/// Reads a stored signature back.
pub fn decode_signature(bytes: &[u8]) -> StoreResult<Signature> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Decode(format!("stored signature: {e}")))
}

/// One head a batch was asked to analyse, as Postgres knows it.
#[derive(Debug, Clone)]
pub struct HeadRow {
    /// PR number.
    pub number: i64,
    /// The head asked for.
    pub head_sha: String,
    /// The PR as stored (None when the row is gone).
    pub pr: Option<PrRow>,
    /// Status of this head's analysis with the current versions (`done`, `failed`, `running`).
    pub status: Option<String>,
    /// Times an analysis of this head was started.
    pub attempts: i32,
}

/// What an analysis needs of a PR row.
#[derive(Debug, Clone)]
pub struct PrRow {
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Author login.
    pub author: String,
    /// Current head.
    pub head_sha: String,
    /// open | closed | merged.
    pub state: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Base branch.
    pub base_ref: String,
}

/// The PR rows and analysis states of `heads` (number, head), in one query, in input order.
pub async fn load_heads(
    c: &impl GenericClient,
    repo_id: i64,
    heads: &[(i64, &str)],
    v: Versions,
) -> StoreResult<Vec<HeadRow>> {
    let numbers: Vec<i64> = heads.iter().map(|h| h.0).collect();
    let shas: Vec<&str> = heads.iter().map(|h| h.1).collect();
    let rows = c
        .query(
            "SELECT h.number, h.head_sha, p.number IS NOT NULL, p.title, p.body, p.author,
                    p.head_sha, p.state, p.created_at, p.base_ref, a.status, COALESCE(a.attempts, 0)
             FROM unnest($2::int8[], $3::text[]) WITH ORDINALITY AS h(number, head_sha, i)
             LEFT JOIN pull_requests p ON p.repo_id = $1 AND p.number = h.number
             LEFT JOIN analysis_runs a ON a.repo_id = $1 AND a.number = h.number
                  AND a.head_sha = h.head_sha AND a.signature_version = $4
                  AND a.algorithm_version = $5 AND a.config_version = $6
             ORDER BY h.i",
            &[
                &repo_id,
                &numbers,
                &shas,
                &v.signature,
                &v.algorithm,
                &v.config,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| HeadRow {
            number: r.get(0),
            head_sha: r.get(1),
            pr: r.get::<_, bool>(2).then(|| PrRow {
                title: r.get(3),
                body: r.get(4),
                author: r.get(5),
                head_sha: r.get(6),
                state: r.get(7),
                created_at: r.get(8),
                base_ref: r.get(9),
            }),
            status: r.get(10),
            attempts: r.get(11),
        })
        .collect())
}

/// The status of one head's analysis with these versions (`done`, `failed`, `running`), if any.
pub async fn analysis_status(
    c: &impl GenericClient,
    repo_id: i64,
    number: i64,
    head_sha: &str,
    v: Versions,
) -> StoreResult<Option<String>> {
    let rows = load_heads(c, repo_id, &[(number, head_sha)], v).await?;
    Ok(rows.into_iter().next().and_then(|r| r.status))
}

/// Records that the analyses of `heads` started (or started again), by `worker`, in one
/// statement. A head already `done` stays done; `attempts` counts the starts since the head last
/// failed for good, so a head that keeps ending its process can be told apart.
pub async fn begin_analyses(
    pool: &Pool,
    repo_id: i64,
    heads: &[(i64, &str)],
    v: Versions,
    worker: &str,
    job: &str,
) -> StoreResult<()> {
    let c = pool.get().await?;
    let numbers: Vec<i64> = heads.iter().map(|h| h.0).collect();
    let shas: Vec<&str> = heads.iter().map(|h| h.1).collect();
    c.execute(
        "INSERT INTO analysis_runs AS a (repo_id, number, head_sha, signature_version,
             algorithm_version, config_version, status, attempts, worker, claimed_by)
         SELECT $1, h.number, h.head_sha, $4, $5, $6, 'running', 1, $7, $8
         FROM unnest($2::int8[], $3::text[]) AS h(number, head_sha)
         ORDER BY h.number
         ON CONFLICT (repo_id, number, head_sha, signature_version, algorithm_version, config_version)
         DO UPDATE SET status = CASE WHEN a.status = 'done' THEN 'done' ELSE 'running' END,
                       attempts = CASE WHEN a.status = 'failed' THEN 1 ELSE a.attempts + 1 END,
                       error = NULL, started_at = now(),
                       worker = EXCLUDED.worker, claimed_by = EXCLUDED.claimed_by",
        &[
            &repo_id,
            &numbers,
            &shas,
            &v.signature,
            &v.algorithm,
            &v.config,
            &worker,
            &job,
        ],
    )
    .await?;
    Ok(())
}

/// Marks a webhook's head `queued` once its analysis job is in the queue (unless it is being
/// analysed or done already): the first analysis job of the repository to run takes it along.
pub async fn mark_queued(
    c: &impl GenericClient,
    repo_id: i64,
    number: i64,
    head_sha: &str,
    v: Versions,
) -> StoreResult<()> {
    c.execute(
        "INSERT INTO analysis_runs AS a (repo_id, number, head_sha, signature_version,
             algorithm_version, config_version, status, attempts)
         VALUES ($1, $2, $3, $4, $5, $6, 'queued', 0)
         ON CONFLICT (repo_id, number, head_sha, signature_version, algorithm_version, config_version)
         DO UPDATE SET status = 'queued', attempts = 0, started_at = now(), error = NULL
         WHERE a.status = 'failed'",
        &[&repo_id, &number, &head_sha, &v.signature, &v.algorithm, &v.config],
    )
    .await?;
    Ok(())
}

/// Claims heads for the webhook analysis job `job`, in one statement: its own head (unless it
/// is done, or being analysed by another job that started less than `stale` ago), and up to
/// `limit - 1` other heads of the repository marked `queued`, oldest first (skipping rows
/// another claimer holds). Claimed heads are `running` with their attempt counted. Returns the
/// claimed heads, ascending.
#[allow(clippy::too_many_arguments)]
pub async fn claim_webhook_heads(
    pool: &Pool,
    repo_id: i64,
    own: (i64, &str),
    v: Versions,
    worker: &str,
    job: &str,
    stale: std::time::Duration,
    limit: i64,
) -> StoreResult<Vec<(i64, String)>> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    let secs = stale.as_secs_f64();
    // The own head first: it may have no row yet (its delivery could not mark it).
    let own_claimed = tx
        .query_opt(
            "INSERT INTO analysis_runs AS a (repo_id, number, head_sha, signature_version,
                 algorithm_version, config_version, status, attempts, worker, claimed_by)
             VALUES ($1, $2, $3, $4, $5, $6, 'running', 1, $7, $8)
             ON CONFLICT (repo_id, number, head_sha, signature_version, algorithm_version, config_version)
             DO UPDATE SET status = 'running',
                 attempts = CASE WHEN a.status = 'failed' THEN 1 ELSE a.attempts + 1 END,
                 worker = EXCLUDED.worker, claimed_by = EXCLUDED.claimed_by,
                 started_at = now(), error = NULL
             WHERE a.status IN ('queued', 'failed')
                OR (a.status = 'running' AND (a.claimed_by = $8
                                              OR a.started_at < now() - make_interval(secs => $9)))
             RETURNING number",
            &[
                &repo_id,
                &own.0,
                &own.1,
                &v.signature,
                &v.algorithm,
                &v.config,
                &worker,
                &job,
                &secs,
            ],
        )
        .await?
        .is_some();
    let others = tx
        .query(
            "UPDATE analysis_runs a SET status = 'running', attempts = a.attempts + 1,
                 worker = $5, claimed_by = $6, started_at = now(), error = NULL
             WHERE a.analysis_id IN (
                 SELECT q.analysis_id FROM analysis_runs q
                 WHERE q.repo_id = $1 AND q.status = 'queued' AND q.signature_version = $2
                   AND q.algorithm_version = $3 AND q.config_version = $4
                 ORDER BY q.started_at, q.analysis_id LIMIT $7 FOR UPDATE SKIP LOCKED)
             RETURNING a.number, a.head_sha",
            &[
                &repo_id,
                &v.signature,
                &v.algorithm,
                &v.config,
                &worker,
                &job,
                &(limit - 1).max(0),
            ],
        )
        .await?;
    tx.commit().await?;
    let mut out: Vec<(i64, String)> = others.iter().map(|r| (r.get(0), r.get(1))).collect();
    if own_claimed {
        out.push((own.0, own.1.to_string()));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// One analysed head to index.
pub struct IndexRow<'a> {
    /// PR number.
    pub number: i64,
    /// Head analysed.
    pub head_sha: &'a str,
    /// The engine's output.
    pub analysis: &'a Analysis,
    /// The signature, encoded ([`encode_signature`]).
    pub encoded: Vec<u8>,
    /// Index keys; written only when the PR is open at write time and `matchable`.
    pub keys: &'a [String],
    /// Whether the head may be matched at all (not a bot the config leaves out).
    pub matchable: bool,
}

/// Locks the rows of `numbers` (in number order, so concurrent writers wait instead of
/// deadlocking) and returns their current head and state.
async fn lock_prs(
    tx: &Transaction<'_>,
    repo_id: i64,
    numbers: &[i64],
) -> StoreResult<HashMap<i64, (String, String)>> {
    let rows = tx
        .query(
            "SELECT number, head_sha, state FROM pull_requests
             WHERE repo_id = $1 AND number = ANY($2) ORDER BY number FOR UPDATE",
            &[&repo_id, &numbers],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect())
}

/// Makes the transaction the repository's only index writer until it ends. Take it before any
/// PR row lock. Each index write deletes old keys and inserts new ones, and the
/// document-frequency triggers update `key_counts` rows in key order per statement, so two
/// writers each holding keys the other's next statement needs would deadlock (seen with a burst
/// of webhook batches replacing heads).
pub async fn lock_index(c: &impl GenericClient, repo_id: i64) -> StoreResult<()> {
    c.execute(
        "SELECT pg_advisory_xact_lock(8, $1::int4)",
        &[&((repo_id % i64::from(i32::MAX)) as i32)],
    )
    .await?;
    Ok(())
}

/// Stores the heads' files, signatures and index keys in one transaction (one statement per
/// table), replacing what older heads of the same PRs had. Heads that are no longer their PR's
/// current head (checked under the row lock) are not written. Returns, per written head, whether
/// its index keys were written (its PR is open and it is matchable).
pub async fn save_index(
    pool: &Pool,
    repo_id: i64,
    v: Versions,
    rows: &[IndexRow<'_>],
) -> StoreResult<BTreeMap<i64, bool>> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    lock_index(&tx, repo_id).await?;
    let numbers: Vec<i64> = rows.iter().map(|r| r.number).collect();
    let current = lock_prs(&tx, repo_id, &numbers).await?;
    let rows: Vec<&IndexRow<'_>> = rows
        .iter()
        .filter(|r| current.get(&r.number).is_some_and(|(h, _)| h == r.head_sha))
        .collect();
    let mut written = BTreeMap::new();
    if rows.is_empty() {
        tx.commit().await?;
        return Ok(written);
    }
    let numbers: Vec<i64> = rows.iter().map(|r| r.number).collect();

    // Files.
    let mut f_number = Vec::new();
    let mut f_head = Vec::new();
    let mut f_path = Vec::new();
    let mut f_prev = Vec::new();
    let mut f_status = Vec::new();
    let mut f_add = Vec::new();
    let mut f_del = Vec::new();
    let mut f_channel = Vec::new();
    let mut f_binary = Vec::new();
    let mut f_trunc = Vec::new();
    for r in &rows {
        for f in &r.analysis.files {
            f_number.push(r.number);
            f_head.push(r.head_sha);
            f_path.push(f.path.as_str());
            f_prev.push(f.previous_path.as_deref());
            f_status.push(status_word(f.status));
            f_add.push(f.additions as i32);
            f_del.push(f.deletions as i32);
            f_channel.push(f.channel.as_str());
            f_binary.push(f.binary);
            f_trunc.push(f.truncated);
        }
    }
    tx.execute(
        "DELETE FROM pr_files WHERE repo_id = $1 AND number = ANY($2)",
        &[&repo_id, &numbers],
    )
    .await?;
    tx.execute(
        "INSERT INTO pr_files (repo_id, number, head_sha, path, previous_path, status, additions,
             deletions, channel, is_binary, truncated, signature_version, config_version)
         SELECT $1, f.number, f.head_sha, f.path, f.previous_path, f.status, f.additions,
                f.deletions, f.channel, f.is_binary, f.truncated, $12, $13
         FROM unnest($2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int4[],
                     $8::int4[], $9::text[], $10::bool[], $11::bool[])
              AS f(number, head_sha, path, previous_path, status, additions, deletions, channel,
                   is_binary, truncated)
         ON CONFLICT DO NOTHING",
        &[
            &repo_id,
            &f_number,
            &f_head,
            &f_path,
            &f_prev,
            &f_status,
            &f_add,
            &f_del,
            &f_channel,
            &f_binary,
            &f_trunc,
            &v.signature,
            &v.config,
        ],
    )
    .await?;

    // Signatures.
    let heads: Vec<&str> = rows.iter().map(|r| r.head_sha).collect();
    let encoded: Vec<&[u8]> = rows.iter().map(|r| r.encoded.as_slice()).collect();
    let sizes: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| to_json(&r.analysis.channel_sizes))
        .collect::<StoreResult<_>>()?;
    let is_bot: Vec<bool> = rows.iter().map(|r| r.analysis.is_bot).collect();
    let canonical: Vec<Option<&str>> = rows
        .iter()
        .map(|r| {
            Some(r.analysis.signature.prod.change.canonical_hash.as_str()).filter(|h| !h.is_empty())
        })
        .collect();
    let production_lines: Vec<i32> = rows
        .iter()
        .map(|r| {
            let p = &r.analysis.channel_sizes.production;
            (p.additions + p.deletions) as i32
        })
        .collect();
    tx.execute(
        "DELETE FROM pr_signatures WHERE repo_id = $1 AND number = ANY($2)",
        &[&repo_id, &numbers],
    )
    .await?;
    tx.execute(
        "INSERT INTO pr_signatures (repo_id, number, head_sha, signature_version, config_version,
             signature, channel_sizes, is_bot, canonical_hash, production_lines)
         SELECT $1, s.number, s.head_sha, $9, $10, s.signature, s.channel_sizes, s.is_bot,
                s.canonical_hash, s.production_lines
         FROM unnest($2::int8[], $3::text[], $4::bytea[], $5::jsonb[], $6::bool[], $7::text[],
                     $8::int4[])
              AS s(number, head_sha, signature, channel_sizes, is_bot, canonical_hash, production_lines)",
        &[
            &repo_id,
            &numbers,
            &heads,
            &encoded,
            &sizes,
            &is_bot,
            &canonical,
            &production_lines,
            &v.signature,
            &v.config,
        ],
    )
    .await?;

    // Index keys, sorted so that the document-frequency trigger locks keys in one order.
    let mut keyed: Vec<(i64, i64)> = Vec::new();
    for r in &rows {
        let open = current.get(&r.number).is_some_and(|(_, s)| s == "open");
        let indexed = open && r.matchable;
        written.insert(r.number, indexed);
        if indexed {
            keyed.extend(r.keys.iter().map(|k| (key_id(k), r.number)));
        }
    }
    keyed.sort_unstable();
    keyed.dedup();
    tx.execute(
        "DELETE FROM index_keys WHERE repo_id = $1 AND number = ANY($2)",
        &[&repo_id, &numbers],
    )
    .await?;
    if !keyed.is_empty() {
        let k_key: Vec<i64> = keyed.iter().map(|k| k.0).collect();
        let k_number: Vec<i64> = keyed.iter().map(|k| k.1).collect();
        tx.execute(
            // No conflict is possible (the PRs' rows went above, under their row locks, and the
            // pairs are distinct): a plain insert skips the speculative-insertion work.
            "INSERT INTO index_keys (repo_id, signature_version, config_version, key, number)
             SELECT $1, $4, $5, k.key, k.number
             FROM unnest($2::int8[], $3::int8[]) AS k(key, number)",
            &[&repo_id, &k_key, &k_number, &v.signature, &v.config],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(written)
}

/// One key of the index and the PRs carrying it (ascending), when at most `max_postings` do:
/// more common keys say nothing about which PRs are alike and come back with no numbers.
#[derive(Debug, Clone)]
pub struct Posting {
    /// The key.
    pub key: String,
    /// The PRs carrying it, ascending (empty for keys over the limit).
    pub numbers: Vec<u64>,
}

/// The postings of `keys` that any current head carries, in one query: one index range per key,
/// read no further than one past `max_postings`.
pub async fn postings(
    c: &impl GenericClient,
    repo_id: i64,
    v: Versions,
    keys: &[&str],
    max_postings: i64,
) -> StoreResult<Vec<Posting>> {
    let by_id: HashMap<i64, &str> = keys.iter().map(|k| (key_id(k), *k)).collect();
    let ids: Vec<i64> = by_id.keys().copied().collect();
    let rows = c
        .query(
            "SELECT q.key, p.numbers FROM unnest($4::int8[]) AS q(key)
             CROSS JOIN LATERAL (
                 SELECT array_agg(s.number) AS numbers FROM (
                     SELECT k.number FROM index_keys k
                     WHERE k.repo_id = $1 AND k.signature_version = $2
                       AND k.config_version = $3 AND k.key = q.key
                     ORDER BY k.number LIMIT $5) s) p
             WHERE p.numbers IS NOT NULL",
            &[&repo_id, &v.signature, &v.config, &ids, &(max_postings + 1)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let numbers: Vec<i64> = r.get(1);
            Posting {
                key: by_id[&r.get::<_, i64>(0)].to_string(),
                numbers: if numbers.len() as i64 > max_postings {
                    Vec::new()
                } else {
                    numbers.into_iter().map(|n| n as u64).collect()
                },
            }
        })
        .collect())
}

/// Document frequencies of the repository's common keys: those at least three current heads
/// carry, by key id. Scoring counts any rarer feature as carried by two (the pair itself), so
/// these are all the counts it needs; they are a small share of the index (read through a partial
/// index).
pub async fn common_keys(
    c: &impl GenericClient,
    repo_id: i64,
    v: Versions,
) -> StoreResult<HashMap<i64, u32>> {
    let rows = c
        .query(
            "SELECT key, n FROM key_counts
             WHERE repo_id = $1 AND signature_version = $2 AND config_version = $3 AND n >= 3",
            &[&repo_id, &v.signature, &v.config],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, i64>(0), r.get::<_, i32>(1) as u32))
        .collect())
}

/// Current-head signatures (with these versions) of open, non-bot PRs among `numbers`, still
/// encoded: (number, head, bytes). Decode them with [`decode_signature`] off the async runtime.
pub async fn load_signatures(
    c: &impl GenericClient,
    repo_id: i64,
    v: Versions,
    numbers: &[i64],
) -> StoreResult<Vec<(i64, String, Vec<u8>)>> {
    // One primary-key probe per number (LATERAL ... LIMIT 1): during a repository's first scan
    // the statistics lag far behind the tables, and the planner's join for `number = ANY(...)`
    // then read a hundred pages per signature.
    let rows = c
        .query(
            "SELECT q.number, s.head_sha, s.signature FROM unnest($4::int8[]) AS q(number)
             CROSS JOIN LATERAL (
                 SELECT p.head_sha FROM pull_requests p
                 WHERE p.repo_id = $1 AND p.number = q.number AND p.state = 'open' LIMIT 1) p
             CROSS JOIN LATERAL (
                 SELECT s.head_sha, s.signature FROM pr_signatures s
                 WHERE s.repo_id = $1 AND s.number = q.number AND s.head_sha = p.head_sha
                   AND s.signature_version = $2 AND s.config_version = $3
                 LIMIT 1) s
             ORDER BY q.number",
            &[&repo_id, &v.signature, &v.config, &numbers],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// One scored pair to store: both directions of it.
pub struct EdgeRow<'a> {
    /// One PR.
    pub number: i64,
    /// Its head.
    pub head_sha: &'a str,
    /// The other PR.
    pub other_number: i64,
    /// Its head.
    pub other_head_sha: &'a str,
    /// Score and evidence from `number`'s side.
    pub edge: &'a Edge,
    /// Score and evidence from the other side.
    pub reverse: &'a Edge,
}

/// How one head of a batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Analysed now (its files, signature, keys and edges are stored).
    Analyzed,
    /// Nothing to do: already analysed, superseded by a newer head, or its PR is gone.
    Unchanged,
    /// The analysis failed for good (the error says why).
    Failed,
    /// Put off (GitHub's rate limit): recorded as failed with the reason, not settled in its
    /// scans, which wait for the job that tries it again.
    Deferred,
}

impl Outcome {
    /// The word `scan_prs.outcome` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Analyzed => "analyzed",
            Outcome::Unchanged => "unchanged",
            Outcome::Failed | Outcome::Deferred => "failed",
        }
    }
}

/// How one head of a batch ended, to record.
pub struct Finished<'a> {
    /// PR number.
    pub number: i64,
    /// Head.
    pub head_sha: &'a str,
    /// Outcome.
    pub outcome: Outcome,
    /// Where the diff came from (`mirror` | `rest`), when it was read.
    pub source: Option<&'a str>,
    /// Why the analysis is partial.
    pub degraded: &'a [String],
    /// Edges stored from this head's side.
    pub candidates: i32,
    /// Error of a failed analysis.
    pub error: Option<&'a str>,
    /// Whether an `analysis_runs` row is to be finished (false for heads that were never begun:
    /// superseded, gone, or finished by another analysis).
    pub record: bool,
}

/// Stores a batch's results in one transaction: the edges of analysed heads (both directions,
/// one statement), removal of edges of older heads of the same PRs, the end of each analysis and
/// the settling of every scan that listed the heads. Heads that stopped being their PR's current
/// head since they were indexed (checked under the row lock) store no edges and are recorded as
/// failed ("superseded"); edges to another PR's head are stored only while that head is current.
/// `api_calls` are added to the scans that listed any of the heads. Returns the outcomes as
/// recorded (superseded heads turned to failed).
pub async fn save_results(
    pool: &Pool,
    repo_id: i64,
    v: Versions,
    finished: &[Finished<'_>],
    edges: &[EdgeRow<'_>],
    api_calls: i32,
) -> StoreResult<Vec<Outcome>> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    // Both directions of a pair are written by whichever head is analysed; serialise edge writes
    // per repository so that two writers never lock the same pair in opposite orders.
    tx.execute(
        "SELECT pg_advisory_xact_lock(7, $1::int4)",
        &[&((repo_id % i64::from(i32::MAX)) as i32)],
    )
    .await?;
    // Heads analysed by this call (not those found analysed already).
    let analysed_now = |f: &Finished<'_>| f.outcome == Outcome::Analyzed && f.record;
    let analysed: Vec<i64> = finished
        .iter()
        .filter(|f| analysed_now(f))
        .map(|f| f.number)
        .collect();
    let current = lock_prs(&tx, repo_id, &analysed).await?;
    let is_current =
        |n: i64, h: &str| -> bool { current.get(&n).is_some_and(|(head, _)| head == h) };
    let outcomes: Vec<Outcome> = finished
        .iter()
        .map(|f| match f.outcome {
            Outcome::Analyzed if analysed_now(f) && !is_current(f.number, f.head_sha) => {
                Outcome::Failed
            }
            o => o,
        })
        .collect();

    // Edges of older heads of the analysed PRs go, from both sides.
    let kept: Vec<(i64, &str)> = finished
        .iter()
        .zip(&outcomes)
        .filter(|(f, o)| **o == Outcome::Analyzed && f.record)
        .map(|(f, _)| (f.number, f.head_sha))
        .collect();
    let kept_numbers: Vec<i64> = kept.iter().map(|k| k.0).collect();
    let kept_heads: Vec<&str> = kept.iter().map(|k| k.1).collect();
    if !kept.is_empty() {
        tx.execute(
            "DELETE FROM candidate_edges e USING unnest($2::int8[], $3::text[]) AS k(number, head_sha)
             WHERE e.repo_id = $1 AND e.number = k.number AND e.head_sha <> k.head_sha",
            &[&repo_id, &kept_numbers, &kept_heads],
        )
        .await?;
        tx.execute(
            "DELETE FROM candidate_edges e USING unnest($2::int8[], $3::text[]) AS k(number, head_sha)
             WHERE e.repo_id = $1 AND e.other_number = k.number AND e.other_head_sha <> k.head_sha",
            &[&repo_id, &kept_numbers, &kept_heads],
        )
        .await?;
    }

    // Both directions of every pair whose analysed side is still current, once each.
    let mut directed: BTreeMap<(i64, &str, i64, &str), &Edge> = BTreeMap::new();
    for e in edges {
        let from_ok = kept.iter().any(|k| {
            (k.0 == e.number && k.1 == e.head_sha)
                || (k.0 == e.other_number && k.1 == e.other_head_sha)
        });
        if !from_ok {
            continue;
        }
        directed.insert(
            (e.number, e.head_sha, e.other_number, e.other_head_sha),
            e.edge,
        );
        directed.insert(
            (e.other_number, e.other_head_sha, e.number, e.head_sha),
            e.reverse,
        );
    }
    if !directed.is_empty() {
        let n = directed.len();
        let mut numbers = Vec::with_capacity(n);
        let mut heads = Vec::with_capacity(n);
        let mut others = Vec::with_capacity(n);
        let mut other_heads = Vec::with_capacity(n);
        let mut categories = Vec::with_capacity(n);
        let mut finals = Vec::with_capacity(n);
        let mut scores = Vec::with_capacity(n);
        let mut evidence = Vec::with_capacity(n);
        for ((a, ah, b, bh), edge) in &directed {
            numbers.push(*a);
            heads.push(*ah);
            others.push(*b);
            other_heads.push(*bh);
            categories.push(edge.category.as_str());
            finals.push(edge.final_score);
            scores.push(to_json(&edge.scores)?);
            evidence.push(to_json(&edge.evidence)?);
        }
        // Both ends must still be their PR's current head: an edge to a head replaced meanwhile
        // would outlive the deletion above.
        tx.execute(
            "INSERT INTO candidate_edges (repo_id, number, head_sha, other_number, other_head_sha,
                 category, final_score, scores, evidence, signature_version, algorithm_version, config_version)
             SELECT $1, e.number, e.head_sha, e.other_number, e.other_head_sha, e.category,
                    e.final_score, e.scores, e.evidence, $10, $11, $12
             FROM unnest($2::int8[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::float8[],
                         $8::jsonb[], $9::jsonb[])
                  AS e(number, head_sha, other_number, other_head_sha, category, final_score, scores, evidence)
             JOIN pull_requests p ON p.repo_id = $1 AND p.number = e.number AND p.head_sha = e.head_sha
             JOIN pull_requests q ON q.repo_id = $1 AND q.number = e.other_number
                                 AND q.head_sha = e.other_head_sha
             ON CONFLICT (repo_id, number, head_sha, other_number, other_head_sha) DO UPDATE SET
                 category = EXCLUDED.category, final_score = EXCLUDED.final_score,
                 scores = EXCLUDED.scores, evidence = EXCLUDED.evidence,
                 signature_version = EXCLUDED.signature_version,
                 algorithm_version = EXCLUDED.algorithm_version,
                 config_version = EXCLUDED.config_version, created_at = now()",
            &[
                &repo_id,
                &numbers,
                &heads,
                &others,
                &other_heads,
                &categories,
                &finals,
                &scores,
                &evidence,
                &v.signature,
                &v.algorithm,
                &v.config,
            ],
        )
        .await?;
    }

    // The analyses end.
    let mut r_number = Vec::new();
    let mut r_head = Vec::new();
    let mut r_status = Vec::new();
    let mut r_source = Vec::new();
    let mut r_degraded = Vec::new();
    let mut r_candidates = Vec::new();
    let mut r_error = Vec::new();
    for (f, o) in finished.iter().zip(&outcomes) {
        if !f.record {
            continue;
        }
        r_number.push(f.number);
        r_head.push(f.head_sha);
        r_status.push(if *o == Outcome::Analyzed {
            "done"
        } else {
            "failed"
        });
        r_source.push(f.source);
        r_degraded.push(to_json(&f.degraded)?);
        r_candidates.push(if *o == Outcome::Analyzed {
            f.candidates
        } else {
            0
        });
        r_error.push(match (f.outcome, o) {
            (Outcome::Analyzed, Outcome::Failed) => {
                Some("superseded: the PR's head changed while it was analysed")
            }
            _ => f.error,
        });
    }
    if !r_number.is_empty() {
        tx.execute(
            "UPDATE analysis_runs a SET status = r.status, source = COALESCE(r.source, a.source),
                 degraded = r.degraded, candidates = r.candidates, error = r.error,
                 finished_at = now()
             FROM unnest($2::int8[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::int4[],
                         $8::text[]) AS r(number, head_sha, status, source, degraded, candidates, error)
             WHERE a.repo_id = $1 AND a.number = r.number AND a.head_sha = r.head_sha
               AND a.signature_version = $9 AND a.algorithm_version = $10 AND a.config_version = $11
               AND (r.status = 'done' OR a.status <> 'done')",
            &[
                &repo_id,
                &r_number,
                &r_head,
                &r_status,
                &r_source,
                &r_degraded,
                &r_candidates,
                &r_error,
                &v.signature,
                &v.algorithm,
                &v.config,
            ],
        )
        .await?;
    }

    let settle: Vec<super::scans::Settled<'_>> = finished
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| **o != Outcome::Deferred)
        .map(|(f, o)| super::scans::Settled {
            number: f.number,
            head_sha: f.head_sha,
            outcome: o.as_str(),
            source: f.source,
        })
        .collect();
    super::scans::settle_heads(&tx, repo_id, &settle, api_calls).await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// Marks analyses of `heads` failed with `error` and settles them in their scans (the last
/// attempt of a batch that could not finish).
pub async fn fail_heads(
    pool: &Pool,
    repo_id: i64,
    v: Versions,
    heads: &[(i64, &str)],
    error: &str,
) -> StoreResult<()> {
    let finished: Vec<Finished<'_>> = heads
        .iter()
        .map(|(n, h)| Finished {
            number: *n,
            head_sha: h,
            outcome: Outcome::Failed,
            source: None,
            degraded: &[],
            candidates: 0,
            error: Some(error),
            record: true,
        })
        .collect();
    save_results(pool, repo_id, v, &finished, &[], 0).await?;
    Ok(())
}
