//! The check-run job (app and hybrid modes): after a head is analysed, post its verdict as a
//! completed, `neutral` Check Run — created once per head, updated afterwards — and, when a
//! maintainer turned them on, the `triage:possible-duplicate` label and one comment per
//! SAME_CHANGE pair. Safe to run twice: the check run id is stored per head under a lock, and
//! labels and comments are claimed per pair before they are posted.

use std::time::Duration;

use apalis::prelude::*;

use super::{CheckRunJob, into_apalis_error};
use crate::github::checks::CheckOutput;
use crate::github::{CallStats, GithubError};
use crate::state::AppState;
use crate::store::analysis::{self, Versions};
use crate::store::results::CandidateRow;
use crate::store::{StoreError, app as app_store, results};
use crate::triage::TriageConfig;

/// The opt-in label.
pub const DUPLICATE_LABEL: &str = "triage:possible-duplicate";
/// Candidates shown in a check run.
pub const SHOWN_CANDIDATES: i64 = 5;
/// Evidence lines shown per candidate.
const REASONS_PER_CANDIDATE: usize = 6;
/// Check-run posts of one head within this window are merged into one (the job runs after the
/// window closes and reads the state as it is then).
pub const DEBOUNCE: Duration = Duration::from_secs(3);

/// Why a check-run post failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckRunError {
    /// GitHub failed.
    #[error(transparent)]
    Github(#[from] GithubError),
    /// Postgres failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<deadpool_postgres::PoolError> for CheckRunError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        CheckRunError::Store(e.into())
    }
}

impl From<tokio_postgres::Error> for CheckRunError {
    fn from(e: tokio_postgres::Error) -> Self {
        CheckRunError::Store(e.into())
    }
}

impl CheckRunError {
    fn is_permanent(&self) -> bool {
        match self {
            CheckRunError::Github(e) => !e.is_transient(),
            CheckRunError::Store(e) => !e.is_transient(),
        }
    }
}

/// The score from which a candidate is worth a maintainer's look: REVIEW_SCORE_THRESHOLD, else
/// the repository's engine configuration.
fn review_threshold(state: &AppState, cfg: &TriageConfig) -> f64 {
    state
        .config
        .review_score_threshold
        .unwrap_or(cfg.review_threshold)
}

/// Called when analyses end well: in app and hybrid modes, for a repository with an
/// installation, queues the check runs of the analysed heads and of the open PRs they now link to
/// (their check runs mention them). Errors make the analysis job retry, which lands here again.
pub async fn after_analysis(
    state: &AppState,
    repo: &super::analyse::RepoRef,
    heads: &[(i64, String)],
    cfg: &TriageConfig,
) -> anyhow::Result<()> {
    if !state.config.github_mode.uses_app() {
        return Ok(());
    }
    if app_store::repo_installation(&state.pool, repo.repo_id)
        .await?
        .is_none()
    {
        return Ok(());
    }
    let v = Versions::current(cfg);
    let mut targets: Vec<(i64, String)> = Vec::new();
    for (number, head_sha) in heads {
        targets.push((*number, head_sha.clone()));
        targets.extend(
            app_store::linked_open_prs(
                &state.pool,
                repo.repo_id,
                *number,
                head_sha,
                &["SAME_CHANGE", "SAME_FEATURE", "COMPETING_IMPLEMENTATION"],
                review_threshold(state, cfg),
                v,
            )
            .await?,
        );
    }
    targets.sort_unstable();
    targets.dedup();
    for (number, head_sha) in targets {
        state
            .queues
            .push_check_run(&CheckRunJob {
                repo_id: repo.repo_id,
                owner: repo.owner.clone(),
                repo: repo.repo.clone(),
                number,
                head_sha,
                slot: 0,
            })
            .await?;
    }
    Ok(())
}

/// apalis entry point.
pub async fn handle(
    job: CheckRunJob,
    state: Data<AppState>,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    match run(&state, &job).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let permanent = e.is_permanent();
            tracing::warn!(job = %job.job_id(), attempt = attempt.current(), permanent, error = %e, "check run failed");
            Err(into_apalis_error(e.into(), &attempt, permanent))
        }
    }
}

/// Text a PR author controls (a title, a path or symbol in the evidence), fit for one line of
/// Markdown: control characters become spaces, Markdown and HTML syntax is escaped so it shows
/// as written (no links, images, raw HTML or table breaks), `@` mentions ping nobody, and the
/// line is cut at `max` characters.
pub fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.trim();
    let cut = if flat.chars().count() <= max {
        flat.to_string()
    } else {
        let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    };
    let mut out = String::with_capacity(cut.len() + 8);
    for c in cut.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '@' => out.push_str("@\u{200b}"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '#' | '!' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A category in words.
pub fn category_words(category: &str) -> &'static str {
    match category {
        "SAME_CHANGE" => "same change",
        "SAME_FEATURE" => "same feature",
        "COMPETING_IMPLEMENTATION" => "competing implementation",
        "RELATED" => "related",
        _ => "not related",
    }
}

/// The dashboard's view of a PR (`#/pr?repo=&n=`), when the appliance's public URL is known.
pub fn dashboard_link(public_url: Option<&str>, repo_id: i64, number: i64) -> Option<String> {
    public_url.map(|u| format!("{}/#/pr?repo={repo_id}&n={number}", u.trim_end_matches('/')))
}

/// The dashboard's evidence of a pair (`#/pair?repo=&a=&b=`).
pub fn pair_link(public_url: Option<&str>, repo_id: i64, x: i64, y: i64) -> Option<String> {
    public_url.map(|u| {
        format!(
            "{}/#/pair?repo={repo_id}&a={}&b={}",
            u.trim_end_matches('/'),
            x.min(y),
            x.max(y)
        )
    })
}

/// The verdict in a few words and a summary of the top candidates (pure; within GitHub's limits
/// once posted, see [`crate::github::checks`]).
pub fn render(
    number: i64,
    head_sha: &str,
    candidates: &[CandidateRow],
    public_url: Option<&str>,
    repo_id: i64,
) -> CheckOutput {
    let short = &head_sha[..head_sha.len().min(7)];
    let title = match candidates.first() {
        None => "No likely duplicates found".to_string(),
        Some(top) => {
            let n = top.candidate_pr_number;
            let head = match top.category.as_str() {
                "SAME_CHANGE" => format!("Likely duplicate of #{n} (same change)"),
                "SAME_FEATURE" => format!("Possibly the same feature as #{n}"),
                "COMPETING_IMPLEMENTATION" => format!("Competing implementation with #{n}"),
                _ => format!("Related to #{n}"),
            };
            if candidates.len() > 1 {
                format!("{head}, +{} more", candidates.len() - 1)
            } else {
                head
            }
        }
    };
    let mut s = String::new();
    if candidates.is_empty() {
        s.push_str(&format!(
            "ClawTriage compared #{number} at `{short}` with the other open pull requests and found none that looks like the same work.\n"
        ));
    } else {
        s.push_str(&format!(
            "ClawTriage compared #{number} at `{short}` with the other open pull requests. The closest ones:\n\n"
        ));
        s.push_str("| PR | category | score |\n| --- | --- | --- |\n");
        for c in candidates {
            s.push_str(&format!(
                "| #{} {} | {} | {:.2} |\n",
                c.candidate_pr_number,
                one_line(&c.candidate_title, 80),
                category_words(&c.category),
                c.final_score
            ));
        }
        for c in candidates {
            s.push_str(&format!(
                "\n### #{} · {} · {:.2}\n\n",
                c.candidate_pr_number, c.category, c.final_score
            ));
            let reasons: Vec<&str> = c.evidence["reasons"]
                .as_array()
                .map(|a| a.iter().filter_map(|r| r.as_str()).collect())
                .unwrap_or_default();
            for r in reasons.iter().take(REASONS_PER_CANDIDATE) {
                s.push_str(&format!("- {}\n", one_line(r, 300)));
            }
            if let Some(link) = pair_link(public_url, repo_id, number, c.candidate_pr_number) {
                s.push_str(&format!("- [evidence in the dashboard]({link})\n"));
            }
        }
    }
    if let Some(link) = dashboard_link(public_url, repo_id, number) {
        s.push_str(&format!(
            "\n[Open #{number} in the ClawTriage dashboard]({link})\n"
        ));
    }
    s.push_str(
        "\nThis check is informational: its conclusion is always neutral and it never blocks a merge.\n",
    );
    CheckOutput { title, summary: s }
}

async fn run(state: &AppState, job: &CheckRunJob) -> Result<(), CheckRunError> {
    let pool = &state.pool;
    let Some(target) = app_store::check_target(pool, job.repo_id, job.number).await? else {
        return Ok(());
    };
    let Some(installation) = target.installation_id.filter(|_| target.active) else {
        return Ok(());
    };
    if target.head_sha != job.head_sha || target.state != "open" {
        // Superseded by a newer head (which has its own job), or closed.
        return Ok(());
    }
    let cfg = super::triage_config(state, job.repo_id).await?;
    let v = Versions::current(&cfg);
    {
        let c = pool.get().await?;
        let status =
            analysis::analysis_status(&c, job.repo_id, job.number, &job.head_sha, v).await?;
        if status.as_deref() != Some("done") {
            return Ok(());
        }
    }
    let threshold = review_threshold(state, &cfg);
    let candidates = results::candidates(
        pool,
        job.repo_id,
        job.number,
        Some(&job.head_sha),
        threshold,
        SHOWN_CANDIDATES,
    )
    .await?;
    let public_url = state.config.public_url.as_deref();
    let output = render(
        job.number,
        &job.head_sha,
        &candidates,
        public_url,
        job.repo_id,
    );
    let details = dashboard_link(public_url, job.repo_id, job.number);
    let output_sha = {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for part in [
            output.title.as_str(),
            output.summary.as_str(),
            details.as_deref().unwrap_or(""),
        ] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        hex::encode(h.finalize())
    };
    let gh = &state.github;
    let token = gh.installation_token(installation).await?;
    let stats = CallStats::new();
    let name = &state.config.check_run_name;
    {
        let mut c = pool.get().await?;
        let tx = c.transaction().await?;
        app_store::lock_check_run(&tx, job.repo_id, job.number, &job.head_sha).await?;
        let existing = app_store::check_run_id(&tx, job.repo_id, job.number, &job.head_sha).await?;
        let id = match existing {
            // Already showing exactly this: nothing to write.
            Some((_, Some(shown))) if shown == output_sha => {
                tracing::debug!(job = %job.job_id(), "check run unchanged");
                None
            }
            Some((id, _)) => Some({
                match gh
                    .update_check_run(
                        &job.owner,
                        &job.repo,
                        id,
                        name,
                        &output,
                        details.as_deref(),
                        Some(&token),
                        &stats,
                    )
                    .await
                {
                    Ok(()) => id,
                    // Deleted on GitHub's side: create it again.
                    Err(GithubError::NotFound(_)) => {
                        gh.create_check_run(
                            &job.owner,
                            &job.repo,
                            name,
                            &job.head_sha,
                            &output,
                            details.as_deref(),
                            Some(&token),
                            &stats,
                        )
                        .await?
                    }
                    Err(e) => return Err(e.into()),
                }
            }),
            None => Some(
                gh.create_check_run(
                    &job.owner,
                    &job.repo,
                    name,
                    &job.head_sha,
                    &output,
                    details.as_deref(),
                    Some(&token),
                    &stats,
                )
                .await?,
            ),
        };
        if let Some(id) = id {
            app_store::save_check_run(
                &tx,
                job.repo_id,
                job.number,
                &job.head_sha,
                id,
                &output.title,
                &output_sha,
            )
            .await?;
            tracing::info!(job = %job.job_id(), title = %output.title, "check run posted");
            state
                .metrics
                .check_run_posted(&job.owner, &job.repo, job.number, &job.head_sha);
        }
        tx.commit().await?;
    }

    let cfg = &state.config;
    if !cfg.check_run_label && !cfg.check_run_comment {
        return Ok(());
    }
    for cand in candidates.iter().filter(|c| c.category == "SAME_CHANGE") {
        let other = cand.candidate_pr_number;
        // The later PR of a pair is the possible duplicate; act only from its side.
        let other_created = app_store::pr_created_at(pool, job.repo_id, other).await?;
        let later = match other_created {
            Some(o) => (target.created_at, job.number) > (o, other),
            None => true,
        };
        if !later {
            continue;
        }
        let pair = (job.number, other);
        if cfg.check_run_label
            && app_store::claim_pair_notice(pool, job.repo_id, pair, "label", job.number).await?
            && let Err(e) = gh
                .add_label(
                    &job.owner,
                    &job.repo,
                    job.number,
                    DUPLICATE_LABEL,
                    Some(&token),
                    &stats,
                )
                .await
        {
            app_store::release_pair_notice(pool, job.repo_id, pair, "label").await?;
            return Err(e.into());
        }
        if cfg.check_run_comment
            && app_store::claim_pair_notice(pool, job.repo_id, pair, "comment", job.number).await?
        {
            let body = comment_body(job.number, other, cand, public_url, job.repo_id);
            if let Err(e) = gh
                .add_comment(
                    &job.owner,
                    &job.repo,
                    job.number,
                    &body,
                    Some(&token),
                    &stats,
                )
                .await
            {
                app_store::release_pair_notice(pool, job.repo_id, pair, "comment").await?;
                return Err(e.into());
            }
        }
    }
    Ok(())
}

/// The one comment of a SAME_CHANGE pair (no PR titles or user names: nobody is pinged).
pub fn comment_body(
    number: i64,
    other: i64,
    cand: &CandidateRow,
    public_url: Option<&str>,
    repo_id: i64,
) -> String {
    let mut s = format!(
        "This pull request looks like the same change as #{other} (score {:.2}).\n\n",
        cand.final_score
    );
    let reasons: Vec<&str> = cand.evidence["reasons"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r.as_str()).collect())
        .unwrap_or_default();
    for r in reasons.iter().take(REASONS_PER_CANDIDATE) {
        s.push_str(&format!("- {}\n", one_line(r, 300)));
    }
    if let Some(link) = pair_link(public_url, repo_id, number, other) {
        s.push_str(&format!("\nEvidence in the dashboard: {link}\n"));
    }
    s.push_str("\n<sub>Posted once per pair by ClawTriage; the check run has the details.</sub>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(n: i64, cat: &str, score: f64, title: &str) -> CandidateRow {
        CandidateRow {
            rank: 1,
            candidate_pr_number: n,
            candidate_url: String::new(),
            candidate_title: title.into(),
            candidate_author: "dev".into(),
            candidate_state: "open".into(),
            category: cat.into(),
            final_score: score,
            scores: serde_json::json!({}),
            evidence: serde_json::json!({"reasons": ["both change src/a.ts", "identical hunks"]}),
            feedback: None,
            algorithm_version: 1,
        }
    }

    #[test]
    fn the_title_says_the_verdict_and_the_summary_has_evidence_and_links() {
        let o = render(
            7,
            "abcdef0123",
            &[
                cand(3, "SAME_CHANGE", 0.97, "Fix | the\nthing"),
                cand(4, "RELATED", 0.6, "x"),
            ],
            Some("https://triage.example/"),
            2,
        );
        assert_eq!(o.title, "Likely duplicate of #3 (same change), +1 more");
        assert!(
            o.summary
                .contains("| #3 Fix \\| the thing | same change | 0.97 |"),
            "{}",
            o.summary
        );
        assert!(o.summary.contains("- identical hunks"));
        assert!(
            o.summary
                .contains("https://triage.example/#/pair?repo=2&a=3&b=7")
        );
        assert!(o.summary.contains("https://triage.example/#/pr?repo=2&n=7"));
        let none = render(7, "abc", &[], None, 2);
        assert_eq!(none.title, "No likely duplicates found");
        assert!(!none.summary.contains("dashboard]("));
    }

    #[test]
    fn pr_titles_and_evidence_cannot_inject_markdown_html_or_mentions() {
        let hostile = "<img src=x onerror=alert(1)> [click](https://evil.example) ![i](https://evil.example/i.png) @octocat **bold** `code` | x";
        let mut c = cand(3, "SAME_CHANGE", 0.97, hostile);
        c.evidence = serde_json::json!({"reasons": [format!("both change {hostile}")]});
        let o = render(7, "abcdef0123", &[c.clone()], None, 2);
        let comment = comment_body(7, 3, &c, None, 2);
        for text in [&o.summary, &comment] {
            for raw in [
                "<img",
                "](https://",
                "![i]",
                "@octocat",
                "**bold**",
                "`code`",
            ] {
                assert!(!text.contains(raw), "{raw} unescaped in {text}");
            }
        }
        assert!(
            o.summary.contains("&lt;img src=x onerror=alert\\(1\\)&gt;"),
            "{}",
            o.summary
        );
        assert!(
            o.summary.contains("\\[click\\]\\(https://evil.example\\)"),
            "{}",
            o.summary
        );
        // Every table row still has its four cell borders.
        let row = o.summary.lines().find(|l| l.starts_with("| #3")).unwrap();
        assert_eq!(row.matches(" | ").count() + 2, 4, "{row}");
    }

    #[test]
    fn a_huge_candidate_list_stays_within_limits_once_posted() {
        let long = "x".repeat(70_000);
        let o = render(1, "abc", &[cand(2, "SAME_CHANGE", 0.9, &long)], None, 1);
        let posted =
            crate::github::checks::truncate_to(&o.summary, crate::github::checks::MAX_SUMMARY);
        assert!(posted.len() <= crate::github::checks::MAX_SUMMARY);
    }
}
