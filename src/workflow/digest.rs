//! The digest: one issue per repository, edited in place on `DIGEST_SCHEDULE`, listing the top
//! duplicate sets that appeared since the previous run. Opt-in per repository
//! (`[digest] enabled = true`), App mode only. The issue carries a label and a hidden marker, so
//! it is found again (never duplicated) even when the database is lost.

use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};

use super::WorkflowError;
use crate::github::{CallStats, GithubError};
use crate::state::AppState;
use crate::store::actions::{self, NewAction};
use crate::store::sets::ActiveRepo;
use crate::triage::sets::DuplicateSet;

/// The label of the digest issue.
pub const DIGEST_LABEL: &str = "clawtriage:digest";
/// The hidden marker in its body.
pub const DIGEST_MARKER: &str = "<!-- clawtriage:digest -->";
/// Its title.
pub const DIGEST_TITLE: &str = "ClawTriage: new duplicate pull requests";

/// The issue body (pure).
pub fn render(
    repo: &ActiveRepo,
    sets: &[&DuplicateSet],
    titles: &std::collections::BTreeMap<i64, String>,
    since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    max_members: usize,
    public_url: Option<&str>,
) -> String {
    let mut s = format!("{DIGEST_MARKER}\n");
    let when = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    match since {
        Some(t) => s.push_str(&format!(
            "Duplicate sets that appeared between {} and {}.\n\n",
            when(t),
            when(now)
        )),
        None => s.push_str(&format!("Duplicate sets open on {}.\n\n", when(now))),
    }
    if sets.is_empty() {
        s.push_str("No new duplicate set since the last digest.\n");
    }
    for set in sets {
        let title = titles
            .get(&(set.base.number as i64))
            .map(|t| super::one_line(t, 80))
            .unwrap_or_default();
        let head = match super::set_link(public_url, repo.repo_id, &set.set_id) {
            Some(l) => format!("[#{} {}]({l})", set.base.number, title),
            None => format!("#{} {}", set.base.number, title),
        };
        s.push_str(&format!(
            "### {head}\n\n{} PRs · {} confidence · score {:.2} · `{}`\n\n",
            set.members.len(),
            set.tier,
            set.max_score,
            set.set_id
        ));
        for m in set.members.iter().take(max_members) {
            let role = match (m == &set.base.number, m == &set.keep.number) {
                (true, true) => " — base, keep",
                (true, false) => " — base",
                (false, true) => " — keep",
                _ => "",
            };
            let t = titles
                .get(&(*m as i64))
                .map(|t| super::one_line(t, 80))
                .unwrap_or_default();
            s.push_str(&format!("- #{m} {t}{role}\n"));
        }
        if set.members.len() > max_members {
            s.push_str(&format!(
                "- … and {} more\n",
                set.members.len() - max_members
            ));
        }
        s.push('\n');
    }
    s.push_str(
        "\nThis issue is edited in place by ClawTriage on each run; it never opens another one.\n",
    );
    s
}

/// Runs the digest of a repository for `period` (a no-op unless it is on for the repository).
/// Returns the issue number written, if any.
pub async fn run(
    state: &AppState,
    repo: &ActiveRepo,
    period: &str,
) -> Result<Option<i64>, WorkflowError> {
    let Ok(installation) = super::writes_possible(state, repo.installation_id) else {
        return Ok(None);
    };
    super::repo_file::refresh(state, repo).await?;
    let settings = crate::store::settings::repo_settings(&state.pool, repo.repo_id).await?;
    if !settings.digest.enabled {
        return Ok(None);
    }
    let now = Utc::now();
    let prev = actions::digest_state(&state.pool, repo.repo_id).await?;
    // The registry must know every current set (with when it was first seen).
    let wm = crate::store::sets::watermark(&state.pool, repo.repo_id).await?;
    let public_url = state.config.public_url.clone();
    let s2 = settings.clone();
    let repo2 = repo.clone();
    let wm2 = wm.clone();
    let (_, deliveries) = super::sets::refresh(state, repo, &wm, move |c| {
        super::notify::delivery_for(&repo2, &s2, c, public_url.as_deref(), &wm2)
            .into_iter()
            .collect()
    })
    .await?;
    crate::jobs::workflow::push_deliveries(state, &deliveries).await?;
    let sets = super::sets::current_sets(state, repo.repo_id).await?;
    let ids: Vec<String> = sets.iter().map(|s| s.set_id.clone()).collect();
    let first = crate::store::sets::first_seen(&state.pool, repo.repo_id, &ids).await?;
    let fresh: Vec<&DuplicateSet> = sets
        .iter()
        .filter(|s| match (prev.last_run_at, first.get(&s.set_id)) {
            (Some(since), Some(t)) => *t > since,
            _ => true,
        })
        .take(settings.digest.max_sets as usize)
        .collect();
    let numbers: Vec<i64> = fresh
        .iter()
        .flat_map(|s| s.members.iter().map(|m| *m as i64))
        .collect();
    let titles = crate::store::results::pr_briefs(&state.pool, repo.repo_id, &numbers)
        .await?
        .into_iter()
        .map(|(n, b)| (n, b.title))
        .collect();
    let body = render(
        repo,
        &fresh,
        &titles,
        prev.last_run_at,
        now,
        settings.digest.max_members as usize,
        state.config.public_url.as_deref(),
    );
    let body_sha = hex::encode(Sha256::digest(body.as_bytes()));
    let gh = &state.github;
    let token = gh.installation_token(installation).await?;
    let stats = CallStats::new();
    let (o, r) = (repo.owner.as_str(), repo.name.as_str());
    // The issue: the one recorded, else the one carrying the label and marker, else a new one.
    let mut issue = None;
    if let Some(n) = prev.issue_number {
        match gh.get_issue(o, r, n, Some(&token), &stats).await {
            Ok(i) => issue = Some(i.number),
            Err(GithubError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if issue.is_none() {
        let found = gh
            .issues_with_label(o, r, DIGEST_LABEL, Some(&token), &stats)
            .await?;
        issue = found
            .iter()
            .filter(|i| i.body.as_deref().is_some_and(|b| b.contains(DIGEST_MARKER)))
            .map(|i| i.number)
            .min();
    }
    let (kind, result) = match issue {
        Some(n) => (
            "digest_update",
            gh.update_issue_body(o, r, n, &body, Some(&token), &stats)
                .await,
        ),
        None => (
            "digest_create",
            gh.create_issue(
                o,
                r,
                DIGEST_TITLE,
                &body,
                &[DIGEST_LABEL],
                Some(&token),
                &stats,
            )
            .await,
        ),
    };
    let verb = if issue.is_some() { "updated" } else { "opened" };
    let (outcome, detail, status, answer, number) = match &result {
        Ok(w) => (
            "done",
            format!(
                "digest issue #{} {verb}: {} new set(s)",
                w.value.number,
                fresh.len()
            ),
            Some(w.status as i32),
            Some(serde_json::json!({"number": w.value.number, "url": w.value.html_url})),
            Some(w.value.number),
        ),
        Err(e) => (
            "failed",
            format!("digest issue not {verb}: {e}"),
            None,
            None,
            issue,
        ),
    };
    actions::log_action(
        &state.pool,
        repo.repo_id,
        &NewAction {
            number,
            kind,
            actor: "clawtriage",
            outcome,
            detail,
            github_status: status,
            github_answer: answer,
            ..Default::default()
        },
    )
    .await?;
    let number = result?.value.number;
    actions::save_digest_state(&state.pool, repo.repo_id, number, now, period, &body_sha).await?;
    tracing::info!(repo = %format!("{o}/{r}"), issue = number, sets = fresh.len(), "digest written");
    Ok(Some(number))
}
