//! Writes to GitHub made on behalf of maintainers: plans (what would be written, to which PRs),
//! the audit of everything done or refused, the digest issue of each repository, and outgoing
//! webhook deliveries.

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{StoreError, StoreResult};

/// One write a plan will make.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanStep {
    /// Position in the plan (from 1).
    pub step: i32,
    /// The PR written to.
    pub number: i64,
    /// comment | close | label_add | label_remove | feedback.
    pub kind: String,
    /// What it does, in words.
    pub summary: String,
    /// The comment's text (comment).
    pub body: Option<String>,
    /// The label (label_add, label_remove).
    pub label: Option<String>,
    /// The head of `number` the decision was made on; a different live head refuses the step.
    pub head_sha: Option<String>,
    /// The PR kept (close_duplicates).
    pub keep: Option<i64>,
    /// The kept PR's head the decision was made on.
    pub keep_head_sha: Option<String>,
}

/// A plan: what applying it will write, to which PRs.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Id (`plan-…`).
    pub plan_id: String,
    /// Repository.
    pub repo_id: i64,
    /// The set it acts on.
    pub set_id: Option<String>,
    /// close_duplicates | add_label | remove_label | not_duplicate.
    pub kind: String,
    /// What was asked (keep, label, targets) and warnings found while planning.
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    /// The writes, in order.
    pub steps: Vec<PlanStep>,
    /// Who planned it.
    pub actor: String,
    /// planned | applying | done | failed.
    pub status: String,
    /// Planned at.
    pub created_at: DateTime<Utc>,
    /// A plan not applied by then must be made again.
    pub expires_at: DateTime<Utc>,
    /// Apply asked at.
    pub applied_at: Option<DateTime<Utc>>,
    /// Apply finished at.
    pub finished_at: Option<DateTime<Utc>>,
}

/// A plan to store.
pub struct NewPlan<'a> {
    /// Id.
    pub plan_id: &'a str,
    /// Repository.
    pub repo_id: i64,
    /// Set.
    pub set_id: Option<&'a str>,
    /// Kind.
    pub kind: &'a str,
    /// Parameters and warnings.
    pub params: &'a serde_json::Value,
    /// Steps.
    pub steps: &'a [PlanStep],
    /// Who.
    pub actor: &'a str,
    /// Validity.
    pub expires_at: DateTime<Utc>,
}

const PLAN_COLUMNS: &str = "plan_id, repo_id, set_id, kind, params, steps, actor, status,
    created_at, expires_at, applied_at, finished_at";

fn plan_row(r: &tokio_postgres::Row) -> StoreResult<Plan> {
    let steps: serde_json::Value = r.get(5);
    Ok(Plan {
        plan_id: r.get(0),
        repo_id: r.get(1),
        set_id: r.get(2),
        kind: r.get(3),
        params: r.get(4),
        steps: serde_json::from_value(steps).map_err(|e| StoreError::Decode(e.to_string()))?,
        actor: r.get(6),
        status: r.get(7),
        created_at: r.get(8),
        expires_at: r.get(9),
        applied_at: r.get(10),
        finished_at: r.get(11),
    })
}

/// Stores a plan.
pub async fn create_plan(pool: &Pool, p: &NewPlan<'_>) -> StoreResult<Plan> {
    let c = pool.get().await?;
    let steps = serde_json::to_value(p.steps).map_err(|e| StoreError::Decode(e.to_string()))?;
    let sql = format!(
        "INSERT INTO action_plans (plan_id, repo_id, set_id, kind, params, steps, actor, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {PLAN_COLUMNS}"
    );
    let r = c
        .query_one(
            &sql,
            &[
                &p.plan_id,
                &p.repo_id,
                &p.set_id,
                &p.kind,
                p.params,
                &steps,
                &p.actor,
                &p.expires_at,
            ],
        )
        .await?;
    plan_row(&r)
}

/// One plan of a repository.
pub async fn get_plan(pool: &Pool, repo_id: i64, plan_id: &str) -> StoreResult<Plan> {
    let c = pool.get().await?;
    let sql =
        format!("SELECT {PLAN_COLUMNS} FROM action_plans WHERE repo_id = $1 AND plan_id = $2");
    let r = c
        .query_opt(&sql, &[&repo_id, &plan_id])
        .await?
        .ok_or(StoreError::NotFound)?;
    plan_row(&r)
}

/// Why a plan could not start applying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartApply {
    /// It is now `applying`.
    Started,
    /// It was applied (or is being applied) already: its status.
    AlreadyApplied(String),
    /// It expired unapplied.
    Expired,
}

/// Moves a plan from `planned` to `applying`, once.
pub async fn start_apply(pool: &Pool, repo_id: i64, plan_id: &str) -> StoreResult<StartApply> {
    let c = pool.get().await?;
    let row = c
        .query_opt(
            "UPDATE action_plans SET status = 'applying', applied_at = now()
             WHERE repo_id = $1 AND plan_id = $2 AND status = 'planned' AND expires_at > now()
             RETURNING plan_id",
            &[&repo_id, &plan_id],
        )
        .await?;
    if row.is_some() {
        return Ok(StartApply::Started);
    }
    let r = c
        .query_opt(
            "SELECT status, expires_at <= now() FROM action_plans WHERE repo_id = $1 AND plan_id = $2",
            &[&repo_id, &plan_id],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    let status: String = r.get(0);
    Ok(if status == "planned" && r.get::<_, bool>(1) {
        StartApply::Expired
    } else {
        StartApply::AlreadyApplied(status)
    })
}

/// Puts a plan whose apply could not be queued back to `planned`.
pub async fn undo_start_apply(pool: &Pool, plan_id: &str) -> StoreResult<()> {
    let c = pool.get().await?;
    c.execute(
        "UPDATE action_plans SET status = 'planned', applied_at = NULL WHERE plan_id = $1 AND status = 'applying'",
        &[&plan_id],
    )
    .await?;
    Ok(())
}

/// Marks an applying plan finished (`done` or `failed`).
pub async fn finish_plan(pool: &Pool, plan_id: &str, status: &str) -> StoreResult<()> {
    let c = pool.get().await?;
    c.execute(
        "UPDATE action_plans SET status = $2, finished_at = now() WHERE plan_id = $1",
        &[&plan_id, &status],
    )
    .await?;
    Ok(())
}

/// One audited action.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionRow {
    /// Id.
    pub action_id: i64,
    /// The plan it belongs to.
    pub plan_id: Option<String>,
    /// Its step in the plan.
    pub step: Option<i32>,
    /// The set it concerned.
    pub set_id: Option<String>,
    /// The PR or issue written to.
    pub number: Option<i64>,
    /// comment | close | label_add | label_remove | feedback | digest_create | digest_update | webhook.
    pub kind: String,
    /// Who asked (the appliance itself for the digest and webhooks).
    pub actor: String,
    /// done | skipped | refused | failed.
    pub outcome: String,
    /// What, in words (and why, when refused or skipped).
    pub detail: String,
    /// GitHub's HTTP status, when GitHub was written to.
    pub github_status: Option<i32>,
    /// GitHub's answer: ids and URLs of what it made, or its message.
    #[schema(value_type = Object)]
    pub github_answer: Option<serde_json::Value>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// An action to record.
#[derive(Debug, Clone, Default)]
pub struct NewAction<'a> {
    /// Plan.
    pub plan_id: Option<&'a str>,
    /// Step.
    pub step: Option<i32>,
    /// Set.
    pub set_id: Option<&'a str>,
    /// PR or issue.
    pub number: Option<i64>,
    /// Kind.
    pub kind: &'a str,
    /// Who.
    pub actor: &'a str,
    /// Outcome.
    pub outcome: &'a str,
    /// In words.
    pub detail: String,
    /// GitHub's status.
    pub github_status: Option<i32>,
    /// GitHub's answer.
    pub github_answer: Option<serde_json::Value>,
}

const ACTION_COLUMNS: &str = "action_id, plan_id, step, set_id, number, kind, actor, outcome,
    detail, github_status, github_answer, created_at";

fn action_row(r: &tokio_postgres::Row) -> ActionRow {
    ActionRow {
        action_id: r.get(0),
        plan_id: r.get(1),
        step: r.get(2),
        set_id: r.get(3),
        number: r.get(4),
        kind: r.get(5),
        actor: r.get(6),
        outcome: r.get(7),
        detail: r.get(8),
        github_status: r.get(9),
        github_answer: r.get(10),
        created_at: r.get(11),
    }
}

/// Records an action. A plan step is recorded once: a second record of the same step is
/// dropped (returns false).
pub async fn log_action(pool: &Pool, repo_id: i64, a: &NewAction<'_>) -> StoreResult<bool> {
    let c = pool.get().await?;
    let n = c
        .execute(
            "INSERT INTO action_log (repo_id, plan_id, step, set_id, number, kind, actor, outcome,
                 detail, github_status, github_answer)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (plan_id, step) WHERE plan_id IS NOT NULL DO NOTHING",
            &[
                &repo_id,
                &a.plan_id,
                &a.step,
                &a.set_id,
                &a.number,
                &a.kind,
                &a.actor,
                &a.outcome,
                &a.detail,
                &a.github_status,
                &a.github_answer,
            ],
        )
        .await?;
    Ok(n == 1)
}

/// The recorded steps of a plan, in step order.
pub async fn plan_actions(pool: &Pool, plan_id: &str) -> StoreResult<Vec<ActionRow>> {
    let c = pool.get().await?;
    let sql = format!("SELECT {ACTION_COLUMNS} FROM action_log WHERE plan_id = $1 ORDER BY step");
    Ok(c.query(&sql, &[&plan_id])
        .await?
        .iter()
        .map(action_row)
        .collect())
}

/// The audit of a repository, newest first, keyset-paginated by id.
pub async fn list_actions(
    pool: &Pool,
    repo_id: i64,
    before_id: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<ActionRow>> {
    let c = pool.get().await?;
    let sql = format!(
        "SELECT {ACTION_COLUMNS} FROM action_log WHERE repo_id = $1
           AND ($2::int8 IS NULL OR action_id < $2::int8)
         ORDER BY action_id DESC LIMIT $3"
    );
    Ok(c.query(&sql, &[&repo_id, &before_id, &limit])
        .await?
        .iter()
        .map(action_row)
        .collect())
}

/// The digest of a repository.
#[derive(Debug, Clone, Default)]
pub struct DigestState {
    /// The issue edited in place.
    pub issue_number: Option<i64>,
    /// When the last digest ran (sets first seen after it are new).
    pub last_run_at: Option<DateTime<Utc>>,
}

/// The digest state of a repository.
pub async fn digest_state(pool: &Pool, repo_id: i64) -> StoreResult<DigestState> {
    let c = pool.get().await?;
    Ok(c.query_opt(
        "SELECT issue_number, last_run_at FROM digest_state WHERE repo_id = $1",
        &[&repo_id],
    )
    .await?
    .map(|r| DigestState {
        issue_number: r.get(0),
        last_run_at: r.get(1),
    })
    .unwrap_or_default())
}

/// Records a digest run.
pub async fn save_digest_state(
    pool: &Pool,
    repo_id: i64,
    issue_number: i64,
    run_at: DateTime<Utc>,
    period: &str,
    body_sha: &str,
) -> StoreResult<()> {
    let c = pool.get().await?;
    c.execute(
        "INSERT INTO digest_state (repo_id, issue_number, last_run_at, last_period, body_sha)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (repo_id) DO UPDATE SET issue_number = EXCLUDED.issue_number,
             last_run_at = EXCLUDED.last_run_at, last_period = EXCLUDED.last_period,
             body_sha = EXCLUDED.body_sha",
        &[&repo_id, &issue_number, &run_at, &period, &body_sha],
    )
    .await?;
    Ok(())
}

/// An outgoing webhook delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Id (sent as `X-ClawTriage-Delivery`).
    pub delivery_id: String,
    /// Repository.
    pub repo_id: i64,
    /// Event name.
    pub event: String,
    /// The JSON body.
    pub payload: serde_json::Value,
    /// pending | delivered | failed.
    pub status: String,
}

/// Records a delivery (once per id); returns false when it existed.
pub async fn insert_delivery(
    c: &impl GenericClient,
    delivery_id: &str,
    repo_id: i64,
    event: &str,
    payload: &serde_json::Value,
) -> StoreResult<bool> {
    Ok(c.execute(
        "INSERT INTO outbound_deliveries (delivery_id, repo_id, event, payload)
         VALUES ($1, $2, $3, $4) ON CONFLICT (delivery_id) DO NOTHING",
        &[&delivery_id, &repo_id, &event, payload],
    )
    .await?
        == 1)
}

/// One delivery.
pub async fn get_delivery(pool: &Pool, delivery_id: &str) -> StoreResult<Option<Delivery>> {
    let c = pool.get().await?;
    Ok(c.query_opt(
        "SELECT delivery_id, repo_id, event, payload, status FROM outbound_deliveries
         WHERE delivery_id = $1",
        &[&delivery_id],
    )
    .await?
    .map(|r| Delivery {
        delivery_id: r.get(0),
        repo_id: r.get(1),
        event: r.get(2),
        payload: r.get(3),
        status: r.get(4),
    }))
}

/// Records one attempt of a delivery and its new status.
pub async fn record_attempt(
    pool: &Pool,
    delivery_id: &str,
    status: &str,
    http_status: Option<i32>,
    error: Option<&str>,
) -> StoreResult<()> {
    let c = pool.get().await?;
    c.execute(
        "UPDATE outbound_deliveries SET attempts = attempts + 1, status = $2, last_status = $3,
             last_error = $4,
             delivered_at = CASE WHEN $2 = 'delivered' THEN now() ELSE delivered_at END
         WHERE delivery_id = $1",
        &[&delivery_id, &status, &http_status, &error],
    )
    .await?;
    Ok(())
}
