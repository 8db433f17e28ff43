//! What the maintainer API reads: the triage queue, one PR with its channels and analysis, its
//! ranked candidates, the inputs of duplicate sets, and feedback.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::Serialize;
use utoipa::ToSchema;

use super::{StoreError, StoreResult};
use crate::triage::Category;
use crate::triage::sets::{MemberInfo, SetEdge};

/// Fails with NotFound unless the repository exists.
pub async fn require_repo(pool: &Pool, repo_id: i64) -> StoreResult<(String, String)> {
    let c = pool.get().await?;
    let r = c
        .query_opt(
            "SELECT owner, name FROM repositories WHERE repo_id = $1",
            &[&repo_id],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok((r.get(0), r.get(1)))
}

/// The best suggestion of a PR.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopSuggestion {
    /// SAME_CHANGE, SAME_FEATURE, COMPETING_IMPLEMENTATION or RELATED.
    pub category: String,
    /// The other PR.
    pub candidate_pr_number: i64,
    /// Its URL.
    pub candidate_url: String,
    /// Final score.
    pub final_score: f64,
}

/// A row of the triage queue.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueItem {
    /// PR number.
    pub number: i64,
    /// Title.
    pub title: String,
    /// URL.
    pub url: String,
    /// Author.
    pub author: String,
    /// open | closed | merged.
    pub state: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Updated.
    pub updated_at: DateTime<Utc>,
    /// Strongest suggestion, if any.
    pub top_suggestion: Option<TopSuggestion>,
    /// True when the top suggestion is at or above the review threshold and no maintainer has
    /// given a verdict on that pair yet.
    pub needs_review: bool,
}

/// Sort orders of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueOrder {
    /// Top score, strongest first (PRs without a suggestion last).
    Score,
    /// Most recently updated first.
    Updated,
    /// Highest number first.
    Number,
}

/// Keyset position: the sort key and the PR number of the last row seen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueCursor {
    /// Sort key (score, or microseconds, or number).
    pub key: f64,
    /// Tie-breaker.
    pub number: i64,
}

/// One page of the triage queue, ordered deterministically; `limit + 1` rows are read to know
/// whether another page follows.
#[allow(clippy::too_many_arguments)]
pub async fn triage_queue(
    pool: &Pool,
    repo_id: i64,
    state: Option<&str>,
    needs_review: Option<bool>,
    order: QueueOrder,
    after: Option<QueueCursor>,
    limit: i64,
    review_threshold: f64,
) -> StoreResult<(Vec<QueueItem>, Option<QueueCursor>)> {
    let c = pool.get().await?;
    let sort_key = match order {
        QueueOrder::Score => "COALESCE(t.final_score, -1.0)",
        QueueOrder::Updated => "(extract(epoch FROM p.updated_at) * 1000000)::float8",
        QueueOrder::Number => "p.number::float8",
    };
    let sql = format!(
        "SELECT * FROM (
           SELECT p.number, p.title, p.html_url, p.author, p.state, p.created_at, p.updated_at,
                  t.other_number, t.category, t.final_score, o.html_url AS other_url,
                  (t.final_score >= $4 AND NOT EXISTS (
                     SELECT 1 FROM feedback f WHERE f.repo_id = p.repo_id AND f.target = 'pair'
                       AND f.a_number = LEAST(p.number, t.other_number)
                       AND f.b_number = GREATEST(p.number, t.other_number))) AS needs_review,
                  {sort_key} AS sort_key
           FROM pull_requests p
           LEFT JOIN LATERAL (
             SELECT e.other_number, e.category, e.final_score FROM candidate_edges e
             JOIN pull_requests op ON op.repo_id = e.repo_id AND op.number = e.other_number
                                  AND op.head_sha = e.other_head_sha
             WHERE e.repo_id = p.repo_id AND e.number = p.number AND e.head_sha = p.head_sha
               AND e.category <> 'NOT_RELATED'
               AND NOT EXISTS (SELECT 1 FROM feedback f WHERE f.repo_id = e.repo_id
                     AND f.target = 'pair' AND f.verdict = 'not_duplicate'
                     AND f.a_number = LEAST(e.number, e.other_number)
                     AND f.b_number = GREATEST(e.number, e.other_number))
             ORDER BY e.final_score DESC, e.other_number ASC LIMIT 1) t ON TRUE
           LEFT JOIN pull_requests o ON o.repo_id = p.repo_id AND o.number = t.other_number
           WHERE p.repo_id = $1 AND ($2::text IS NULL OR p.state = $2::text)
         ) q
         WHERE ($3::bool IS NULL OR COALESCE(q.needs_review, FALSE) = $3::bool)
           AND ($5::float8 IS NULL OR (q.sort_key, q.number) < ($5::float8, $6::int8))
         ORDER BY q.sort_key DESC, q.number DESC
         LIMIT $7"
    );
    let (k, n) = match after {
        Some(cur) => (Some(cur.key), Some(cur.number)),
        None => (None, None),
    };
    let rows = c
        .query(
            &sql,
            &[
                &repo_id,
                &state,
                &needs_review,
                &review_threshold,
                &k,
                &n,
                &(limit + 1),
            ],
        )
        .await?;
    let mut items = Vec::new();
    let mut keys = Vec::new();
    for r in &rows {
        let other: Option<i64> = r.get(7);
        let top = other.map(|o| TopSuggestion {
            candidate_pr_number: o,
            category: r.get(8),
            final_score: r.get(9),
            candidate_url: r.get::<_, Option<String>>(10).unwrap_or_default(),
        });
        items.push(QueueItem {
            number: r.get(0),
            title: r.get(1),
            url: r.get(2),
            author: r.get(3),
            state: r.get(4),
            created_at: r.get(5),
            updated_at: r.get(6),
            top_suggestion: top,
            needs_review: r.get::<_, Option<bool>>(11).unwrap_or(false),
        });
        keys.push(QueueCursor {
            key: r.get(12),
            number: r.get(0),
        });
    }
    let next = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        keys.get(limit as usize - 1).copied()
    } else {
        None
    };
    Ok((items, next))
}

/// Channel sizes of a head.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileRow {
    /// Path.
    pub path: String,
    /// Path before a rename.
    pub previous_path: Option<String>,
    /// GitHub status.
    pub status: String,
    /// production | tests | docs | meta.
    pub channel: String,
    /// Lines added.
    pub additions: i32,
    /// Lines removed.
    pub deletions: i32,
    /// Binary file.
    pub binary: bool,
    /// GitHub sent no patch (too large) or it was cut.
    pub truncated: bool,
}

/// The latest analysis of a head.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisInfo {
    /// running | done | failed.
    pub status: String,
    /// Head analysed.
    pub head_sha: String,
    /// Signature version.
    pub signature_version: i32,
    /// Algorithm version.
    pub algorithm_version: i32,
    /// Config version.
    pub config_version: i32,
    /// mirror | rest.
    pub source: Option<String>,
    /// Why the analysis is partial, if it is.
    #[schema(value_type = Vec<String>)]
    pub degraded: serde_json::Value,
    /// Error of a failed analysis.
    pub error: Option<String>,
    /// Candidate edges stored.
    pub candidates: i32,
    /// Started.
    pub started_at: DateTime<Utc>,
    /// Finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// One PR with its channels and latest analysis.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrDetail {
    /// Number.
    pub number: i64,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// URL.
    pub url: String,
    /// Author.
    pub author: String,
    /// open | closed | merged.
    pub state: String,
    /// Draft.
    pub draft: bool,
    /// Current head.
    pub head_sha: String,
    /// Base branch.
    pub base_ref: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Updated.
    pub updated_at: DateTime<Utc>,
    /// Sizes per channel of the current head (files, additions, deletions).
    #[schema(value_type = Object)]
    pub channel_sizes: Option<serde_json::Value>,
    /// Files of the current head, at most 500.
    pub files: Vec<FileRow>,
    /// Latest analysis of the current head.
    pub analysis: Option<AnalysisInfo>,
}

/// Loads one PR.
pub async fn pr_detail(pool: &Pool, repo_id: i64, number: i64) -> StoreResult<PrDetail> {
    let c = pool.get().await?;
    let r = c
        .query_opt(
            "SELECT p.number, p.title, p.body, p.html_url, p.author, p.state, p.draft, p.head_sha,
                    p.base_ref, p.created_at, p.updated_at,
                    (SELECT s.channel_sizes FROM pr_signatures s WHERE s.repo_id = p.repo_id
                       AND s.number = p.number AND s.head_sha = p.head_sha
                     ORDER BY s.created_at DESC LIMIT 1)
             FROM pull_requests p WHERE p.repo_id = $1 AND p.number = $2",
            &[&repo_id, &number],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    let head: String = r.get(7);
    let files = c
        .query(
            "SELECT path, previous_path, status, channel, additions, deletions, is_binary, truncated
             FROM pr_files WHERE repo_id = $1 AND number = $2 AND head_sha = $3
             ORDER BY path LIMIT 500",
            &[&repo_id, &number, &head],
        )
        .await?
        .iter()
        .map(|f| FileRow {
            path: f.get(0),
            previous_path: f.get(1),
            status: f.get(2),
            channel: f.get(3),
            additions: f.get(4),
            deletions: f.get(5),
            binary: f.get(6),
            truncated: f.get(7),
        })
        .collect();
    let analysis = c
        .query_opt(
            "SELECT status, head_sha, signature_version, algorithm_version, config_version, source,
                    degraded, error, candidates, started_at, finished_at
             FROM analysis_runs WHERE repo_id = $1 AND number = $2 AND head_sha = $3
             ORDER BY started_at DESC, analysis_id DESC LIMIT 1",
            &[&repo_id, &number, &head],
        )
        .await?
        .map(|a| AnalysisInfo {
            status: a.get(0),
            head_sha: a.get(1),
            signature_version: a.get(2),
            algorithm_version: a.get(3),
            config_version: a.get(4),
            source: a.get(5),
            degraded: a.get(6),
            error: a.get(7),
            candidates: a.get(8),
            started_at: a.get(9),
            finished_at: a.get(10),
        });
    Ok(PrDetail {
        number: r.get(0),
        title: r.get(1),
        body: r.get(2),
        url: r.get(3),
        author: r.get(4),
        state: r.get(5),
        draft: r.get(6),
        head_sha: head,
        base_ref: r.get(8),
        created_at: r.get(9),
        updated_at: r.get(10),
        channel_sizes: r.get(11),
        files,
        analysis,
    })
}

/// A ranked candidate of a PR.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CandidateRow {
    /// 1 = strongest.
    pub rank: i64,
    /// The other PR.
    pub candidate_pr_number: i64,
    /// Its URL.
    pub candidate_url: String,
    /// Its title.
    pub candidate_title: String,
    /// Its author.
    pub candidate_author: String,
    /// Its state.
    pub candidate_state: String,
    /// Category.
    pub category: String,
    /// Final score.
    pub final_score: f64,
    /// Every signal's score.
    #[schema(value_type = Object)]
    pub scores: serde_json::Value,
    /// The facts behind the score.
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
    /// The latest maintainer verdict on this pair, if any.
    pub feedback: Option<String>,
    /// Versions the edge was computed with.
    pub algorithm_version: i32,
}

/// Ranked candidates of a PR head (the current head unless `head_sha` is given).
pub async fn candidates(
    pool: &Pool,
    repo_id: i64,
    number: i64,
    head_sha: Option<&str>,
    min_score: f64,
    limit: i64,
) -> StoreResult<Vec<CandidateRow>> {
    let c = pool.get().await?;
    let exists = c
        .query_opt(
            "SELECT head_sha FROM pull_requests WHERE repo_id = $1 AND number = $2",
            &[&repo_id, &number],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    let current: String = exists.get(0);
    let head = head_sha.unwrap_or(&current);
    let rows = c
        .query(
            "SELECT e.other_number, COALESCE(o.html_url, ''), COALESCE(o.title, ''),
                    COALESCE(o.author, ''), COALESCE(o.state, 'closed'), e.category, e.final_score,
                    e.scores, e.evidence, e.algorithm_version,
                    (SELECT f.verdict FROM feedback f WHERE f.repo_id = e.repo_id AND f.target = 'pair'
                       AND f.a_number = LEAST(e.number, e.other_number)
                       AND f.b_number = GREATEST(e.number, e.other_number)
                     ORDER BY f.created_at DESC, f.feedback_id DESC LIMIT 1)
             FROM candidate_edges e
             LEFT JOIN pull_requests o ON o.repo_id = e.repo_id AND o.number = e.other_number
             WHERE e.repo_id = $1 AND e.number = $2 AND e.head_sha = $3 AND e.final_score >= $4
               AND (o.head_sha IS NULL OR o.head_sha = e.other_head_sha)
             ORDER BY e.final_score DESC, e.other_number ASC
             LIMIT $5",
            &[&repo_id, &number, &head, &min_score, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .enumerate()
        .map(|(i, r)| CandidateRow {
            rank: i as i64 + 1,
            candidate_pr_number: r.get(0),
            candidate_url: r.get(1),
            candidate_title: r.get(2),
            candidate_author: r.get(3),
            candidate_state: r.get(4),
            category: r.get(5),
            final_score: r.get(6),
            scores: r.get(7),
            evidence: r.get(8),
            algorithm_version: r.get(9),
            feedback: r.get(10),
        })
        .collect())
}

/// Everything set building needs: edges among PRs in `states` (current heads only), member
/// facts, pairs rejected by maintainers, and "base is #N" verdicts by set member list.
pub struct SetInputs {
    /// Scored pairs (one row per stored direction).
    pub edges: Vec<SetEdge>,
    /// Facts per PR.
    pub members: BTreeMap<u64, MemberInfo>,
    /// Pairs whose latest verdict is "not duplicate".
    pub not_duplicate: HashSet<(u64, u64)>,
    /// "Base is" verdicts, newest first: (set id, set members, base number).
    pub base_overrides: Vec<(Option<String>, Vec<u64>, u64)>,
}

/// Loads the inputs of set building.
pub async fn set_inputs(
    pool: &Pool,
    repo_id: i64,
    states: &[String],
    min_score: f64,
) -> StoreResult<SetInputs> {
    let c = pool.get().await?;
    let rows = c
        .query(
            "SELECT e.number, e.other_number, e.category, e.final_score
             FROM candidate_edges e
             JOIN pull_requests a ON a.repo_id = e.repo_id AND a.number = e.number AND a.head_sha = e.head_sha
             JOIN pull_requests b ON b.repo_id = e.repo_id AND b.number = e.other_number
                                 AND b.head_sha = e.other_head_sha
             WHERE e.repo_id = $1 AND e.final_score >= $2 AND a.state = ANY($3) AND b.state = ANY($3)
             ORDER BY e.number, e.other_number
             LIMIT 500000",
            &[&repo_id, &min_score, &states],
        )
        .await?;
    let mut edges = Vec::with_capacity(rows.len());
    let mut numbers: Vec<i64> = Vec::new();
    for r in &rows {
        let cat: String = r.get(2);
        let Some(category) = Category::parse(&cat) else {
            continue;
        };
        let (a, b): (i64, i64) = (r.get(0), r.get(1));
        numbers.push(a);
        numbers.push(b);
        edges.push(SetEdge {
            a: a as u64,
            b: b as u64,
            category,
            score: r.get(3),
        });
    }
    numbers.sort_unstable();
    numbers.dedup();
    let member_rows = c
        .query(
            "SELECT p.number, p.created_at, p.state, p.ci_state, p.approvals, s.canonical_hash,
                    COALESCE(s.production_lines, 0)
             FROM pull_requests p
             LEFT JOIN LATERAL (SELECT canonical_hash, production_lines FROM pr_signatures s
                 WHERE s.repo_id = p.repo_id AND s.number = p.number AND s.head_sha = p.head_sha
                 ORDER BY s.created_at DESC LIMIT 1) s ON TRUE
             WHERE p.repo_id = $1 AND p.number = ANY($2)",
            &[&repo_id, &numbers],
        )
        .await?;
    let mut members = BTreeMap::new();
    for r in &member_rows {
        let n: i64 = r.get(0);
        let created: DateTime<Utc> = r.get(1);
        let approvals: i32 = r.get(4);
        let lines: i32 = r.get(6);
        members.insert(
            n as u64,
            MemberInfo {
                number: n as u64,
                created_at: created.timestamp(),
                state: r.get(2),
                ci_state: r.get(3),
                approvals: approvals.max(0) as u32,
                canonical_hash: r.get(5),
                production_lines: lines.max(0) as u32,
            },
        );
    }
    let fb = c
        .query(
            "SELECT DISTINCT ON (a_number, b_number) a_number, b_number, verdict
             FROM feedback WHERE repo_id = $1 AND target = 'pair'
             ORDER BY a_number, b_number, created_at DESC, feedback_id DESC",
            &[&repo_id],
        )
        .await?;
    let not_duplicate = fb
        .iter()
        .filter(|r| r.get::<_, String>(2) == "not_duplicate")
        .map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as u64))
        .collect();
    let bases = c
        .query(
            "SELECT set_id, members, base_number FROM feedback
             WHERE repo_id = $1 AND verdict = 'base_is' AND base_number IS NOT NULL
             ORDER BY created_at DESC, feedback_id DESC LIMIT 1000",
            &[&repo_id],
        )
        .await?;
    let base_overrides = bases
        .iter()
        .map(|r| {
            let m: Option<Vec<i64>> = r.get(1);
            let b: i64 = r.get(2);
            (
                r.get(0),
                m.unwrap_or_default()
                    .into_iter()
                    .map(|x| x as u64)
                    .collect(),
                b as u64,
            )
        })
        .collect();
    Ok(SetInputs {
        edges,
        members,
        not_duplicate,
        base_overrides,
    })
}

/// Display facts of PRs, by number.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrBrief {
    /// Number.
    pub number: i64,
    /// Title.
    pub title: String,
    /// URL.
    pub url: String,
    /// Author.
    pub author: String,
    /// open | closed | merged.
    pub state: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Its current head (for plans; not shown).
    #[serde(skip)]
    pub head_sha: String,
}

/// Loads display facts of PRs.
pub async fn pr_briefs(
    pool: &Pool,
    repo_id: i64,
    numbers: &[i64],
) -> StoreResult<BTreeMap<i64, PrBrief>> {
    let c = pool.get().await?;
    let rows = c
        .query(
            "SELECT number, title, html_url, author, state, created_at, head_sha FROM pull_requests
             WHERE repo_id = $1 AND number = ANY($2)",
            &[&repo_id, &numbers],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let b = PrBrief {
                number: r.get(0),
                title: r.get(1),
                url: r.get(2),
                author: r.get(3),
                state: r.get(4),
                created_at: r.get(5),
                head_sha: r.get(6),
            };
            (b.number, b)
        })
        .collect())
}

/// Which of `numbers` carry `label` (case-insensitive), as last seen.
pub async fn labelled(
    pool: &Pool,
    repo_id: i64,
    numbers: &[i64],
    label: &str,
) -> StoreResult<Vec<i64>> {
    let c = pool.get().await?;
    let rows = c
        .query(
            "SELECT number FROM pull_requests WHERE repo_id = $1 AND number = ANY($2)
               AND ct_lower_labels(labels) @> ARRAY[lower($3)] ORDER BY number",
            &[&repo_id, &numbers, &label],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Evidence of stored edges for the given pairs (from the lower number's side).
pub async fn edge_evidence(
    pool: &Pool,
    repo_id: i64,
    pairs: &[(i64, i64)],
) -> StoreResult<BTreeMap<(i64, i64), (serde_json::Value, serde_json::Value)>> {
    let c = pool.get().await?;
    let a: Vec<i64> = pairs.iter().map(|p| p.0).collect();
    let b: Vec<i64> = pairs.iter().map(|p| p.1).collect();
    let rows = c
        .query(
            "SELECT e.number, e.other_number, e.scores, e.evidence FROM candidate_edges e
             JOIN unnest($2::int8[], $3::int8[]) AS q(a, b) ON e.number = q.a AND e.other_number = q.b
             JOIN pull_requests p ON p.repo_id = e.repo_id AND p.number = e.number AND p.head_sha = e.head_sha
             WHERE e.repo_id = $1",
            &[&repo_id, &a, &b],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| ((r.get(0), r.get(1)), (r.get(2), r.get(3))))
        .collect())
}

/// A maintainer's verdict to store.
pub struct NewFeedback<'a> {
    /// pair | set.
    pub target: &'a str,
    /// Lower PR number of a pair.
    pub a_number: Option<i64>,
    /// Higher PR number of a pair.
    pub b_number: Option<i64>,
    /// Set id of a set verdict.
    pub set_id: Option<&'a str>,
    /// Members of the set verdict.
    pub members: Option<Vec<i64>>,
    /// duplicate | not_duplicate | competing | related | base_is.
    pub verdict: &'a str,
    /// The base, for base_is.
    pub base_number: Option<i64>,
    /// Who.
    pub actor: &'a str,
    /// Free text.
    pub note: Option<&'a str>,
}

/// A stored verdict.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackRow {
    /// Id.
    pub feedback_id: i64,
    /// pair | set.
    pub target: String,
    /// Lower PR number of a pair.
    pub a_number: Option<i64>,
    /// Higher PR number of a pair.
    pub b_number: Option<i64>,
    /// Set id.
    pub set_id: Option<String>,
    /// Set members.
    pub members: Option<Vec<i64>>,
    /// Verdict.
    pub verdict: String,
    /// Base, for base_is.
    pub base_number: Option<i64>,
    /// Who.
    pub actor: String,
    /// Free text.
    pub note: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

fn feedback_row(r: &tokio_postgres::Row) -> FeedbackRow {
    FeedbackRow {
        feedback_id: r.get(0),
        target: r.get(1),
        a_number: r.get(2),
        b_number: r.get(3),
        set_id: r.get(4),
        members: r.get(5),
        verdict: r.get(6),
        base_number: r.get(7),
        actor: r.get(8),
        note: r.get(9),
        created_at: r.get(10),
    }
}

const FEEDBACK_COLUMNS: &str = "feedback_id, target, a_number, b_number, set_id, members, verdict,
    base_number, actor, note, created_at";

/// Stores a verdict; a set verdict of "not duplicate" also rejects every pair of its members.
pub async fn add_feedback(
    pool: &Pool,
    repo_id: i64,
    f: &NewFeedback<'_>,
) -> StoreResult<FeedbackRow> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    let sql = format!(
        "INSERT INTO feedback (repo_id, target, a_number, b_number, set_id, members, verdict,
             base_number, actor, note)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {FEEDBACK_COLUMNS}"
    );
    let row = tx
        .query_one(
            &sql,
            &[
                &repo_id,
                &f.target,
                &f.a_number,
                &f.b_number,
                &f.set_id,
                &f.members,
                &f.verdict,
                &f.base_number,
                &f.actor,
                &f.note,
            ],
        )
        .await?;
    if f.target == "set"
        && f.verdict == "not_duplicate"
        && let Some(m) = &f.members
    {
        // Every pair of members in one statement (200 members are 19,900 pairs).
        tx.execute(
            "INSERT INTO feedback (repo_id, target, a_number, b_number, set_id, verdict, actor, note)
             SELECT $1, 'pair', a.n, b.n, $3, 'not_duplicate', $4, 'from a set verdict'
             FROM unnest($2::int8[]) AS a(n) JOIN unnest($2::int8[]) AS b(n) ON a.n < b.n",
            &[&repo_id, m, &f.set_id, &f.actor],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(feedback_row(&row))
}

/// Feedback, newest first, keyset-paginated by id.
pub async fn list_feedback(
    pool: &Pool,
    repo_id: i64,
    before_id: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<FeedbackRow>> {
    let c = pool.get().await?;
    let sql = format!(
        "SELECT {FEEDBACK_COLUMNS} FROM feedback WHERE repo_id = $1
           AND ($2::int8 IS NULL OR feedback_id < $2::int8)
         ORDER BY feedback_id DESC LIMIT $3"
    );
    let rows = c.query(&sql, &[&repo_id, &before_id, &limit]).await?;
    Ok(rows.iter().map(feedback_row).collect())
}
