//! Search and filters over a repository's PRs: number, title words, author, label, changed path
//! (of the current head), base branch, and "written by a coding agent". Title words and paths
//! go through trigram indexes (`pg_trgm`, migration V9), labels through a GIN index, authors and
//! base branches through b-trees, so a search stays fast however many PRs a repository has.
//! Keyset-paginated like every list.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::Serialize;
use tokio_postgres::types::ToSql;
use utoipa::ToSchema;

use super::StoreResult;
use super::results::TopSuggestion;

/// Who counts as a coding agent, ready for SQL.
#[derive(Debug, Clone, Default)]
pub struct AgentMatch {
    /// Author logins, lower-cased.
    pub logins: Vec<String>,
    /// Head branch prefixes.
    pub branch_prefixes: Vec<String>,
}

impl AgentMatch {
    /// From the repository's rules.
    pub fn new(logins: &[String], branch_prefixes: &[String]) -> Self {
        AgentMatch {
            logins: logins.iter().map(|l| l.to_lowercase()).collect(),
            branch_prefixes: branch_prefixes
                .iter()
                .filter(|p| !p.is_empty())
                .map(|p| format!("{}%", like_escape(p)))
                .collect(),
        }
    }
}

/// What to look for; every given part must match.
#[derive(Debug, Clone, Default)]
pub struct PrFilter {
    /// open | closed | merged (None: any).
    pub state: Option<String>,
    /// One PR number.
    pub number: Option<i64>,
    /// Words that must all appear in the title (case-insensitive, anywhere in a word).
    pub words: Vec<String>,
    /// Author login (case-insensitive).
    pub author: Option<String>,
    /// Label name (case-insensitive).
    pub label: Option<String>,
    /// Part of a path changed by the current head (case-insensitive).
    pub path: Option<String>,
    /// Base branch (exact).
    pub base: Option<String>,
    /// true: only PRs by coding agents; false: only the others.
    pub agent: Option<bool>,
}

impl PrFilter {
    /// True when nothing narrows the search beyond the state.
    pub fn is_empty(&self) -> bool {
        self.number.is_none()
            && self.words.is_empty()
            && self.author.is_none()
            && self.label.is_none()
            && self.path.is_none()
            && self.base.is_none()
            && self.agent.is_none()
    }
}

/// Escapes `%`, `_` and `\` for LIKE.
pub fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Sort orders of a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchOrder {
    /// Most recently updated first.
    Updated,
    /// Highest number first.
    Number,
}

/// Keyset position after the last row of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchCursor {
    /// Microseconds of `updated_at` (Updated) or the number (Number).
    pub key: i64,
    /// PR number.
    pub number: i64,
}

/// A PR found.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrHit {
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
    /// Draft.
    pub draft: bool,
    /// Base branch.
    pub base_ref: String,
    /// Labels.
    pub labels: Vec<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Updated.
    pub updated_at: DateTime<Utc>,
    /// Written by a coding agent (the repository's `[agents]` rules).
    pub agent: bool,
    /// Strongest suggestion, if any.
    pub top_suggestion: Option<TopSuggestion>,
}

type Param = Box<dyn ToSql + Sync + Send>;

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// SQL conditions on `p` (pull_requests) for `f`, appending their parameters.
fn conditions(f: &PrFilter, agents: &AgentMatch, params: &mut Vec<Param>) -> Vec<String> {
    let next = |v: Param, params: &mut Vec<Param>| {
        params.push(v);
        format!("${}", params.len())
    };
    let mut out = Vec::new();
    if let Some(s) = &f.state {
        let p = next(Box::new(s.clone()), params);
        out.push(format!("p.state = {p}"));
    }
    if let Some(n) = f.number {
        let p = next(Box::new(n), params);
        out.push(format!("p.number = {p}"));
    }
    for w in &f.words {
        let p = next(Box::new(format!("%{}%", like_escape(w))), params);
        out.push(format!("p.title ILIKE {p}"));
    }
    if let Some(a) = &f.author {
        let p = next(Box::new(a.to_lowercase()), params);
        out.push(format!("lower(p.author) = {p}"));
    }
    if let Some(l) = &f.label {
        let p = next(Box::new(vec![l.to_lowercase()]), params);
        out.push(format!("ct_lower_labels(p.labels) @> {p}::text[]"));
    }
    if let Some(path) = &f.path {
        let p = next(Box::new(format!("%{}%", like_escape(path))), params);
        out.push(format!(
            "EXISTS (SELECT 1 FROM pr_files f WHERE f.repo_id = p.repo_id AND f.number = p.number
                       AND f.head_sha = p.head_sha AND f.path ILIKE {p})"
        ));
    }
    if let Some(b) = &f.base {
        let p = next(Box::new(b.clone()), params);
        out.push(format!("p.base_ref = {p}"));
    }
    if let Some(want) = f.agent {
        let e = agent_expr(agents, params);
        out.push(if want { e } else { format!("NOT {e}") });
    }
    out
}

fn agent_expr(agents: &AgentMatch, params: &mut Vec<Param>) -> String {
    params.push(Box::new(agents.logins.clone()));
    let logins = params.len();
    params.push(Box::new(agents.branch_prefixes.clone()));
    let prefixes = params.len();
    format!(
        "(lower(p.author) = ANY(${logins}::text[]) OR p.head_ref LIKE ANY(${prefixes}::text[]))"
    )
}

/// One page of PRs matching `f`, in `order`, after `after`; `limit + 1` rows are read to know
/// whether another page follows.
pub async fn search_prs(
    pool: &Pool,
    repo_id: i64,
    f: &PrFilter,
    agents: &AgentMatch,
    order: SearchOrder,
    after: Option<SearchCursor>,
    limit: i64,
) -> StoreResult<(Vec<PrHit>, Option<SearchCursor>)> {
    let mut params: Vec<Param> = vec![Box::new(repo_id)];
    let mut conds = vec!["p.repo_id = $1".to_string()];
    conds.extend(conditions(f, agents, &mut params));
    let agent = agent_expr(agents, &mut params);
    let (order_sql, outer_order) = match order {
        SearchOrder::Updated => (
            "p.updated_at DESC, p.number DESC",
            "h.updated_at DESC, h.number DESC",
        ),
        SearchOrder::Number => ("p.number DESC", "h.number DESC"),
    };
    if let Some(c) = after {
        match order {
            SearchOrder::Updated => {
                let t = DateTime::<Utc>::from_timestamp_micros(c.key).unwrap_or_default();
                params.push(Box::new(t));
                params.push(Box::new(c.number));
                conds.push(format!(
                    "(p.updated_at, p.number) < (${}, ${})",
                    params.len() - 1,
                    params.len()
                ));
            }
            SearchOrder::Number => {
                params.push(Box::new(c.number));
                conds.push(format!("p.number < ${}", params.len()));
            }
        }
    }
    params.push(Box::new(limit + 1));
    let lim = params.len();
    let sql = format!(
        "WITH h AS (
           SELECT p.number, p.title, p.html_url, p.author, p.state, p.draft, p.base_ref, p.labels,
                  p.created_at, p.updated_at, p.head_sha, {agent} AS agent
           FROM pull_requests p WHERE {} ORDER BY {order_sql} LIMIT ${lim})
         SELECT h.number, h.title, h.html_url, h.author, h.state, h.draft, h.base_ref, h.labels,
                h.created_at, h.updated_at, h.agent, t.other_number, t.category, t.final_score,
                o.html_url
         FROM h
         LEFT JOIN LATERAL (
           SELECT e.other_number, e.category, e.final_score FROM candidate_edges e
           JOIN pull_requests op ON op.repo_id = e.repo_id AND op.number = e.other_number
                                AND op.head_sha = e.other_head_sha
           WHERE e.repo_id = $1 AND e.number = h.number AND e.head_sha = h.head_sha
             AND e.category <> 'NOT_RELATED'
           ORDER BY e.final_score DESC, e.other_number ASC LIMIT 1) t ON TRUE
         LEFT JOIN pull_requests o ON o.repo_id = $1 AND o.number = t.other_number
         ORDER BY {outer_order}",
        conds.join(" AND ")
    );
    let c = pool.get().await?;
    let rows = c.query(&sql, &refs(&params)).await?;
    let mut hits: Vec<PrHit> = rows
        .iter()
        .map(|r| {
            let other: Option<i64> = r.get(11);
            PrHit {
                number: r.get(0),
                title: r.get(1),
                url: r.get(2),
                author: r.get(3),
                state: r.get(4),
                draft: r.get(5),
                base_ref: r.get(6),
                labels: r.get(7),
                created_at: r.get(8),
                updated_at: r.get(9),
                agent: r.get(10),
                top_suggestion: other.map(|o| TopSuggestion {
                    candidate_pr_number: o,
                    category: r.get(12),
                    final_score: r.get(13),
                    candidate_url: r.get::<_, Option<String>>(14).unwrap_or_default(),
                }),
            }
        })
        .collect();
    let next = if hits.len() as i64 > limit {
        hits.truncate(limit as usize);
        hits.last().map(|h| SearchCursor {
            key: match order {
                SearchOrder::Updated => h.updated_at.timestamp_micros(),
                SearchOrder::Number => h.number,
            },
            number: h.number,
        })
    } else {
        None
    };
    Ok((hits, next))
}

/// Which of `numbers` match `f` (for filtering duplicate sets by their members).
pub async fn matching_numbers(
    pool: &Pool,
    repo_id: i64,
    f: &PrFilter,
    agents: &AgentMatch,
    numbers: &[i64],
) -> StoreResult<HashSet<i64>> {
    let mut params: Vec<Param> = vec![Box::new(repo_id), Box::new(numbers.to_vec())];
    let mut conds = vec![
        "p.repo_id = $1".to_string(),
        "p.number = ANY($2)".to_string(),
    ];
    conds.extend(conditions(f, agents, &mut params));
    let sql = format!(
        "SELECT p.number FROM pull_requests p WHERE {}",
        conds.join(" AND ")
    );
    let c = pool.get().await?;
    let rows = c.query(&sql, &refs(&params)).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(like_escape("a_b%c\\d"), "a\\_b\\%c\\\\d");
        let m = AgentMatch::new(&["Copilot".into()], &["copilot/".into(), String::new()]);
        assert_eq!(m.logins, ["copilot"]);
        assert_eq!(m.branch_prefixes, ["copilot/%"]);
    }

    #[test]
    fn every_filter_becomes_one_condition_with_its_own_parameter() {
        let f = PrFilter {
            state: Some("open".into()),
            number: None,
            words: vec!["flaky".into(), "timeout".into()],
            author: Some("Dev".into()),
            label: Some("Bug".into()),
            path: Some("src/".into()),
            base: Some("main".into()),
            agent: Some(false),
        };
        let mut params: Vec<Param> = vec![Box::new(1i64)];
        let conds = conditions(&f, &AgentMatch::default(), &mut params);
        assert_eq!(conds.len(), 8);
        assert_eq!(
            params.len(),
            1 + 8 + 1,
            "the agent test takes two parameters"
        );
        assert!(conds[6].contains("p.base_ref"));
        assert!(conds[7].starts_with("NOT ("));
        assert!(PrFilter::default().is_empty());
        assert!(!f.is_empty());
    }
}
