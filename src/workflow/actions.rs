//! Acting on GitHub from the dashboard, in two steps. A *plan* says exactly what would be written
//! to which PRs (comments with their text, closes, labels); nothing is written until the plan is
//! *applied*, which runs as a job. Writes need App mode, an installation on the repository and
//! the repository's own opt-in (`[actions]` in `.github/clawtriage.toml`, off by default); only
//! "not duplicate", which writes nothing to GitHub, works without them.
//!
//! Right before every write the live state is read from GitHub again, and the write is refused
//! when the kept PR is closed without being merged, when the PR is already closed, or when
//! either changed head since the analysis. A close comes with a comment carrying a hidden
//! marker; a PR whose comments already hold a marker from another plan is never acted on again,
//! so a lost database cannot repeat a comment, and a maintainer who reopens a closed PR has the
//! last word. Every step, done or refused, is recorded with who asked and GitHub's answer.

use chrono::{Duration as ChronoDuration, Utc};
use secrecy::SecretString;

use super::WorkflowError;
use crate::github::{CallStats, GithubError, PullSummary};
use crate::jobs::check_run::DUPLICATE_LABEL;
use crate::state::AppState;
use crate::store::actions::{self, NewAction, NewPlan, Plan, PlanStep};
use crate::store::results::{self, NewFeedback};
use crate::store::sets::ActiveRepo;
use crate::triage::sets::DuplicateSet;

/// How long a plan may wait to be applied.
pub const PLAN_TTL_MINUTES: i64 = 15;
/// Start of the hidden marker in ClawTriage's comments.
pub const MARKER: &str = "<!-- clawtriage:action";
/// Pause between two writes of one apply (GitHub asks for at least a second between mutating
/// requests, against its secondary rate limits).
pub const WRITE_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// What a maintainer asks to plan.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    /// close_duplicates | add_label | remove_label | not_duplicate.
    pub kind: String,
    /// The set acted on.
    pub set_id: String,
    /// The PR to keep (close_duplicates; default: the set's suggested keep).
    pub keep: Option<i64>,
    /// The PRs written to (default: every member but the kept one, or every member).
    pub targets: Option<Vec<i64>>,
    /// The label (add_label, remove_label).
    pub label: Option<String>,
    /// Who.
    pub actor: String,
}

/// The marker of a close-as-duplicate comment.
pub fn marker(number: i64, keep: i64, set_id: &str, plan_id: &str) -> String {
    format!("{MARKER} close-duplicate pr={number} keep={keep} set={set_id} plan={plan_id} -->")
}

/// The plan id inside a marker, if `body` has one for PR `number`.
pub fn marker_plan(body: &str, number: i64) -> Option<&str> {
    let start = body.find(MARKER)?;
    let rest = &body[start..];
    let end = rest.find("-->")?;
    let m = &rest[..end];
    if !m.split_whitespace().any(|w| w == format!("pr={number}")) {
        return None;
    }
    m.split_whitespace().find_map(|w| w.strip_prefix("plan="))
}

fn check_label(label: Option<&str>) -> Result<String, WorkflowError> {
    let l = label.map(str::trim).unwrap_or("");
    if l.is_empty() || l.chars().count() > 50 || l.chars().any(char::is_control) {
        return Err(WorkflowError::Refused(
            "label: name a label of 1-50 characters".into(),
        ));
    }
    Ok(l.to_string())
}

/// The comment posted on a PR closed as a duplicate of `keep`.
pub fn close_comment(
    number: i64,
    keep: i64,
    set: &DuplicateSet,
    actor: &str,
    plan_id: &str,
    public_url: Option<&str>,
    repo_id: i64,
) -> String {
    let why = set
        .edges
        .iter()
        .find(|(a, b, _, _)| (*a as i64, *b as i64) == (number.min(keep), number.max(keep)))
        .map(|(_, _, c, s)| {
            format!(
                "the {} (score {s:.2})",
                crate::jobs::check_run::category_words(c.as_str())
            )
        })
        .unwrap_or_else(|| format!("in one duplicate set ({} confidence)", set.tier));
    let mut s = format!(
        "Closing this pull request as a duplicate of #{keep}, which is the one kept: {why}.\n\n"
    );
    if let Some(link) = super::set_link(public_url, repo_id, &set.set_id) {
        s.push_str(&format!(
            "The evidence: [duplicate set {}]({link}).\n\n",
            set.set_id
        ));
    }
    s.push_str(&format!(
        "Closed by {} with ClawTriage. If this is wrong, reopen the pull request: ClawTriage will not close it again.\n\n{}\n",
        super::one_line(actor, 100),
        marker(number, keep, &set.set_id, plan_id)
    ));
    s
}

fn new_plan_id() -> String {
    format!("plan-{:016x}", fastrand::u64(..))
}

/// Makes a plan (and stores it). Reads the repository's settings from GitHub first, so the
/// opt-in checked is the one on the default branch now.
pub async fn plan(
    state: &AppState,
    repo: &ActiveRepo,
    req: &PlanRequest,
) -> Result<Plan, WorkflowError> {
    let writes = !matches!(req.kind.as_str(), "not_duplicate");
    if !matches!(
        req.kind.as_str(),
        "close_duplicates" | "add_label" | "remove_label" | "not_duplicate"
    ) {
        return Err(WorkflowError::Refused(format!(
            "kind: `{}` is not one of close_duplicates, add_label, remove_label, not_duplicate",
            req.kind.escape_debug()
        )));
    }
    let app = super::writes_possible(state, repo.installation_id);
    if writes {
        app.clone().map_err(WorkflowError::Refused)?;
    }
    if app.is_ok() {
        super::repo_file::refresh(state, repo).await?;
    }
    let settings = crate::store::settings::repo_settings(&state.pool, repo.repo_id).await?;
    let allowed = match req.kind.as_str() {
        "close_duplicates" => settings.actions.close_duplicates,
        "add_label" | "remove_label" => settings.actions.labels,
        _ => true,
    };
    if !allowed {
        let key = if req.kind == "close_duplicates" {
            "close_duplicates"
        } else {
            "labels"
        };
        return Err(WorkflowError::Refused(format!(
            "this repository does not allow it: set `{key} = true` under [actions] in {} on its default branch",
            super::settings::SETTINGS_PATH
        )));
    }
    let sets = super::sets::current_sets(state, repo.repo_id).await?;
    let set = sets
        .into_iter()
        .find(|s| s.set_id == req.set_id)
        .ok_or_else(|| {
            WorkflowError::Missing(format!(
                "no duplicate set {} now (it may have dissolved); reload the sets",
                req.set_id
            ))
        })?;
    let members: Vec<i64> = set.members.iter().map(|m| *m as i64).collect();
    let briefs = results::pr_briefs(&state.pool, repo.repo_id, &members).await?;
    let head_of = |n: &i64| briefs.get(n).map(|b| b.head_sha.clone());
    let plan_id = new_plan_id();
    let mut warnings: Vec<String> = Vec::new();
    let mut steps: Vec<PlanStep> = Vec::new();
    let keep = req.keep.unwrap_or(set.keep.number as i64);
    if req.kind == "close_duplicates" && !members.contains(&keep) {
        return Err(WorkflowError::Refused(format!(
            "keep: #{keep} is not a member of {}",
            set.set_id
        )));
    }
    let targets: Vec<i64> = match &req.targets {
        Some(t) => {
            let mut t = t.clone();
            t.sort_unstable();
            t.dedup();
            if let Some(bad) = t.iter().find(|n| !members.contains(n)) {
                return Err(WorkflowError::Refused(format!(
                    "targets: #{bad} is not a member of {}",
                    set.set_id
                )));
            }
            t
        }
        None => members.clone(),
    };
    let mut push = |number: i64, kind: &str, summary: String, extra: PlanStep| {
        steps.push(PlanStep {
            step: steps.len() as i32 + 1,
            number,
            kind: kind.to_string(),
            summary,
            head_sha: head_of(&number),
            ..extra
        });
    };
    let blank = PlanStep::default();
    match req.kind.as_str() {
        "close_duplicates" => {
            for n in targets.iter().copied().filter(|n| *n != keep) {
                if briefs.get(&n).is_some_and(|b| b.state != "open") {
                    warnings.push(format!("#{n} is not open; it is left out"));
                    continue;
                }
                let body = close_comment(
                    n,
                    keep,
                    &set,
                    &req.actor,
                    &plan_id,
                    state.config.public_url.as_deref(),
                    repo.repo_id,
                );
                let with_keep = PlanStep {
                    keep: Some(keep),
                    keep_head_sha: head_of(&keep),
                    ..blank.clone()
                };
                push(
                    n,
                    "comment",
                    format!("comment on #{n}: duplicate of #{keep}"),
                    PlanStep {
                        body: Some(body),
                        ..with_keep.clone()
                    },
                );
                push(
                    n,
                    "close",
                    format!("close #{n} as a duplicate of #{keep}"),
                    with_keep,
                );
            }
        }
        "add_label" | "remove_label" => {
            let label = check_label(req.label.as_deref())?;
            let (kind, verb) = if req.kind == "add_label" {
                ("label_add", "add")
            } else {
                ("label_remove", "remove")
            };
            for n in &targets {
                push(
                    *n,
                    kind,
                    format!("{verb} label `{label}` on #{n}"),
                    PlanStep {
                        label: Some(label.clone()),
                        ..blank.clone()
                    },
                );
            }
        }
        _ => {
            push(
                members[0],
                "feedback",
                format!(
                    "record that {} is not a duplicate set (its PRs are never grouped again)",
                    set.set_id
                ),
                blank.clone(),
            );
            if app.is_ok() && settings.actions.labels {
                let labelled =
                    results::labelled(&state.pool, repo.repo_id, &members, DUPLICATE_LABEL).await?;
                for n in labelled {
                    push(
                        n,
                        "label_remove",
                        format!("remove label `{DUPLICATE_LABEL}` from #{n}"),
                        PlanStep {
                            label: Some(DUPLICATE_LABEL.to_string()),
                            ..blank.clone()
                        },
                    );
                }
            }
        }
    }
    if steps.is_empty() {
        return Err(WorkflowError::Refused(format!(
            "nothing to do: {}",
            if warnings.is_empty() {
                "no PR to write to".to_string()
            } else {
                warnings.join("; ")
            }
        )));
    }
    let params = serde_json::json!({
        "keep": (req.kind == "close_duplicates").then_some(keep),
        "label": req.label,
        "targets": targets,
        "members": members,
        "warnings": warnings,
    });
    Ok(actions::create_plan(
        &state.pool,
        &NewPlan {
            plan_id: &plan_id,
            repo_id: repo.repo_id,
            set_id: Some(&set.set_id),
            kind: &req.kind,
            params: &params,
            steps: &steps,
            actor: &req.actor,
            expires_at: Utc::now() + ChronoDuration::minutes(PLAN_TTL_MINUTES),
        },
    )
    .await?)
}

/// Why a step was refused, in words, or None when the live state allows it.
pub fn refusal(step: &PlanStep, pr: &PullSummary, keep: Option<&PullSummary>) -> Option<String> {
    let short = |s: &str| s.chars().take(7).collect::<String>();
    if let (Some(k), Some(number)) = (keep, step.keep) {
        if k.state_word() == "closed" {
            return Some(format!(
                "the kept PR #{number} is closed without being merged"
            ));
        }
        if let Some(h) = &step.keep_head_sha
            && k.state_word() == "open"
            && &k.head.sha != h
        {
            return Some(format!(
                "the kept PR #{number} changed head since the analysis ({} → {})",
                short(h),
                short(&k.head.sha)
            ));
        }
    }
    if matches!(step.kind.as_str(), "comment" | "close") && pr.state_word() != "open" {
        return Some(format!("#{} is already {}", step.number, pr.state_word()));
    }
    if let Some(h) = &step.head_sha
        && &pr.head.sha != h
    {
        return Some(format!(
            "#{} changed head since the analysis ({} → {})",
            step.number,
            short(h),
            short(&pr.head.sha)
        ));
    }
    None
}

/// What a step did: outcome, words, GitHub's status and answer.
struct Done {
    outcome: &'static str,
    detail: String,
    status: Option<i32>,
    answer: Option<serde_json::Value>,
}

fn refused(detail: String) -> Done {
    Done {
        outcome: "refused",
        detail,
        status: None,
        answer: None,
    }
}

fn github_failure(what: &str, e: &GithubError) -> Done {
    let status = match e {
        GithubError::NotFound(_) => Some(404),
        GithubError::Forbidden { status, .. } | GithubError::Status { status, .. } => {
            Some(*status as i32)
        }
        _ => None,
    };
    Done {
        outcome: "failed",
        detail: format!("{what}: {e}"),
        status,
        answer: Some(serde_json::json!({"message": e.to_string()})),
    }
}

/// A write's outcome: done with GitHub's status and what `describe` keeps of its answer; a
/// transient failure is returned (the job is retried and the marker check finds a write that
/// went through); any other failure is recorded.
fn written<T>(
    result: Result<crate::github::issues::Written<T>, GithubError>,
    what: &str,
    describe: impl FnOnce(&T) -> (String, serde_json::Value),
) -> Result<Done, WorkflowError> {
    match result {
        Ok(w) => {
            let (detail, answer) = describe(&w.value);
            Ok(Done {
                outcome: "done",
                detail,
                status: Some(w.status as i32),
                answer: Some(answer),
            })
        }
        Err(e) if e.is_transient() => Err(e.into()),
        Err(e) => Ok(github_failure(what, &e)),
    }
}

/// Runs one step against GitHub.
async fn run_step(
    state: &AppState,
    repo: &ActiveRepo,
    plan: &Plan,
    step: &PlanStep,
    token: Option<&SecretString>,
) -> Result<Done, WorkflowError> {
    let gh = &state.github;
    let stats = CallStats::new();
    let (o, r) = (repo.owner.as_str(), repo.name.as_str());
    if step.kind == "feedback" {
        let members: Vec<i64> = plan.params["members"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_i64()).collect())
            .unwrap_or_default();
        let row = results::add_feedback(
            &state.pool,
            repo.repo_id,
            &NewFeedback {
                target: "set",
                a_number: None,
                b_number: None,
                set_id: plan.set_id.as_deref(),
                members: Some(members),
                verdict: "not_duplicate",
                base_number: None,
                actor: &plan.actor,
                note: Some("from an applied plan"),
            },
        )
        .await?;
        state.cache.bump().await;
        return Ok(Done {
            outcome: "done",
            detail: format!(
                "recorded that {} is not a duplicate set",
                plan.set_id.as_deref().unwrap_or("the set")
            ),
            status: None,
            answer: Some(serde_json::json!({"feedbackId": row.feedback_id})),
        });
    }
    // The live state, right before the write.
    let pr = match gh.get_pull(o, r, step.number, token, &stats).await {
        Ok(p) => p,
        Err(GithubError::NotFound(_)) => {
            return Ok(refused(format!("#{} is gone from GitHub", step.number)));
        }
        Err(e) if e.is_transient() => return Err(e.into()),
        Err(e) => return Ok(github_failure("reading the PR", &e)),
    };
    let keep = match step.keep {
        Some(k) => match gh.get_pull(o, r, k, token, &stats).await {
            Ok(p) => Some(p),
            Err(GithubError::NotFound(_)) => {
                return Ok(refused(format!("the kept PR #{k} is gone from GitHub")));
            }
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => return Ok(github_failure("reading the kept PR", &e)),
        },
        None => None,
    };
    if let Some(why) = refusal(step, &pr, keep.as_ref()) {
        return Ok(refused(why));
    }
    match step.kind.as_str() {
        "comment" | "close" => {
            let comments = match gh.list_comments(o, r, step.number, token, &stats).await {
                Ok(c) => c,
                Err(e) if e.is_transient() => return Err(e.into()),
                Err(e) => return Ok(github_failure("reading the comments", &e)),
            };
            let ours = comments.iter().find_map(|c| {
                c.body
                    .as_deref()
                    .and_then(|b| marker_plan(b, step.number))
                    .map(|p| (p.to_string(), c))
            });
            match (&ours, step.kind.as_str()) {
                (Some((p, c)), _) if *p != plan.plan_id => {
                    return Ok(refused(format!(
                        "ClawTriage acted on #{} before ({}); it never acts on a PR twice",
                        step.number, c.html_url
                    )));
                }
                (Some((_, c)), "comment") => {
                    return Ok(Done {
                        outcome: "done",
                        detail: format!("comment on #{} was already posted", step.number),
                        status: None,
                        answer: Some(serde_json::json!({"id": c.id, "url": c.html_url})),
                    });
                }
                (None, "close") => {
                    return Ok(refused(format!(
                        "#{} has no ClawTriage comment, so it is not closed",
                        step.number
                    )));
                }
                _ => {}
            }
            if step.kind == "comment" {
                let body = step.body.as_deref().unwrap_or("");
                let r = gh
                    .create_comment(o, r, step.number, body, token, &stats)
                    .await;
                return written(r, "commenting", |c| {
                    (
                        format!(
                            "commented on #{}: duplicate of #{}",
                            step.number,
                            step.keep.unwrap_or_default()
                        ),
                        serde_json::json!({"id": c.id, "url": c.html_url}),
                    )
                });
            }
            let r = gh.close_pull(o, r, step.number, token, &stats).await;
            written(r, "closing", |p| {
                (
                    format!(
                        "closed #{} as a duplicate of #{}",
                        step.number,
                        step.keep.unwrap_or_default()
                    ),
                    serde_json::json!({"state": p.state, "url": p.html_url}),
                )
            })
        }
        "label_add" | "label_remove" => {
            let label = step.label.clone().unwrap_or_default();
            let has = pr
                .labels
                .iter()
                .any(|l| l.name.eq_ignore_ascii_case(&label));
            let adding = step.kind == "label_add";
            if has == adding {
                return Ok(Done {
                    outcome: "skipped",
                    detail: format!(
                        "#{} {} label `{label}`",
                        step.number,
                        if adding {
                            "already has"
                        } else {
                            "does not have"
                        }
                    ),
                    status: None,
                    answer: None,
                });
            }
            let result = if adding {
                gh.add_labels(o, r, step.number, &[&label], token, &stats)
                    .await
            } else {
                gh.remove_label(o, r, step.number, &label, token, &stats)
                    .await
            };
            written(result, "labelling", |labels| {
                (
                    format!(
                        "{} label `{label}` {} #{}",
                        if adding { "added" } else { "removed" },
                        if adding { "to" } else { "from" },
                        step.number
                    ),
                    serde_json::json!({
                        "labels": labels.iter().map(|l| l.name.clone()).collect::<Vec<_>>()
                    }),
                )
            })
        }
        other => Ok(refused(format!("unknown step kind `{other}`"))),
    }
}

/// Applies a plan whose status is `applying`: each step not recorded yet, in order. A step
/// whose PR had an earlier step refused or failed is refused too (a PR is never closed without
/// its comment). Safe to run again after a crash: recorded steps are skipped, and the marker
/// check finds a comment posted but not recorded.
pub async fn apply(
    state: &AppState,
    repo: &ActiveRepo,
    plan_id: &str,
) -> Result<String, WorkflowError> {
    let plan = actions::get_plan(&state.pool, repo.repo_id, plan_id).await?;
    if plan.status != "applying" {
        return Ok(plan.status);
    }
    let needs_github = plan.steps.iter().any(|s| s.kind != "feedback");
    let token = if needs_github {
        let installation =
            super::writes_possible(state, repo.installation_id).map_err(WorkflowError::Refused);
        match installation {
            Ok(id) => Some(state.github.installation_token(id).await?),
            Err(e) => {
                for s in plan.steps.iter().filter(|s| s.kind != "feedback") {
                    record(state, repo, &plan, s, refused(e.to_string())).await?;
                }
                None
            }
        }
    } else {
        None
    };
    let done = actions::plan_actions(&state.pool, plan_id).await?;
    let mut blocked: Vec<i64> = done
        .iter()
        .filter(|a| matches!(a.outcome.as_str(), "refused" | "failed"))
        .filter_map(|a| a.number)
        .collect();
    let mut all_ok = true;
    let mut last_write: Option<tokio::time::Instant> = None;
    for step in &plan.steps {
        if let Some(a) = done.iter().find(|a| a.step == Some(step.step)) {
            all_ok &= matches!(a.outcome.as_str(), "done" | "skipped");
            continue;
        }
        let outcome = if blocked.contains(&step.number) && step.kind != "feedback" {
            refused(format!(
                "an earlier step on #{} did not succeed, so this one is not made",
                step.number
            ))
        } else if step.kind != "feedback" && token.is_none() {
            continue;
        } else {
            if let Some(t) = last_write
                && step.kind != "feedback"
            {
                tokio::time::sleep_until(t + WRITE_PAUSE).await;
            }
            let d = run_step(state, repo, &plan, step, token.as_ref()).await?;
            if d.status.is_some() {
                last_write = Some(tokio::time::Instant::now());
            }
            d
        };
        if matches!(outcome.outcome, "refused" | "failed") {
            blocked.push(step.number);
            all_ok = false;
        }
        tracing::info!(plan = %plan_id, step = step.step, number = step.number, kind = %step.kind, outcome = outcome.outcome, detail = %outcome.detail, "plan step");
        record(state, repo, &plan, step, outcome).await?;
    }
    let status = if all_ok { "done" } else { "failed" };
    actions::finish_plan(&state.pool, plan_id, status).await?;
    Ok(status.to_string())
}

async fn record(
    state: &AppState,
    repo: &ActiveRepo,
    plan: &Plan,
    step: &PlanStep,
    d: Done,
) -> Result<(), WorkflowError> {
    actions::log_action(
        &state.pool,
        repo.repo_id,
        &NewAction {
            plan_id: Some(&plan.plan_id),
            step: Some(step.step),
            set_id: plan.set_id.as_deref(),
            number: Some(step.number),
            kind: &step.kind,
            actor: &plan.actor,
            outcome: d.outcome,
            detail: d.detail,
            github_status: d.status,
            github_answer: d.answer,
        },
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pull(state: &str, head: &str, merged: bool) -> PullSummary {
        serde_json::from_value(serde_json::json!({
            "number": 1, "state": state, "title": "t",
            "head": {"sha": head, "ref": "b"}, "base": {"sha": "x", "ref": "main"},
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "merged_at": if merged { serde_json::json!("2026-01-02T00:00:00Z") } else { serde_json::Value::Null },
        }))
        .unwrap()
    }

    fn close_step() -> PlanStep {
        PlanStep {
            step: 2,
            number: 12,
            kind: "close".into(),
            head_sha: Some("aaaaaaaaaa".into()),
            keep: Some(10),
            keep_head_sha: Some("kkkkkkkkkk".into()),
            ..PlanStep::default()
        }
    }

    #[test]
    fn writes_are_refused_on_the_live_state() {
        let s = close_step();
        let ok = pull("open", "aaaaaaaaaa", false);
        let keep = pull("open", "kkkkkkkkkk", false);
        assert_eq!(refusal(&s, &ok, Some(&keep)), None);
        let merged_keep = pull("closed", "kkkkkkkkkk", true);
        assert_eq!(
            refusal(&s, &ok, Some(&merged_keep)),
            None,
            "a merged keep is fine"
        );
        let closed_keep = pull("closed", "kkkkkkkkkk", false);
        assert!(
            refusal(&s, &ok, Some(&closed_keep))
                .unwrap()
                .contains("closed without being merged")
        );
        let moved_keep = pull("open", "zzzzzzzzzz", false);
        assert!(
            refusal(&s, &ok, Some(&moved_keep))
                .unwrap()
                .contains("kept PR #10 changed head")
        );
        let closed = pull("closed", "aaaaaaaaaa", false);
        assert!(
            refusal(&s, &closed, Some(&keep))
                .unwrap()
                .contains("already closed")
        );
        let moved = pull("open", "bbbbbbbbbb", false);
        assert_eq!(
            refusal(&s, &moved, Some(&keep)).unwrap(),
            "#12 changed head since the analysis (aaaaaaa → bbbbbbb)"
        );
    }

    #[test]
    fn markers_name_their_pr_and_plan() {
        let body = format!("text\n\n{}\n", marker(12, 10, "set-abc", "plan-1"));
        assert_eq!(marker_plan(&body, 12), Some("plan-1"));
        assert_eq!(marker_plan(&body, 1), None, "pr=1 is not pr=12");
        assert_eq!(marker_plan("no marker here", 12), None);
    }
}
