//! The outgoing webhook: when a refresh finds a new set of at least the repository's
//! `notify.min_tier` (high confidence by default), or such a set grows, one delivery is recorded
//! with the refresh and sent by its own job to `NOTIFY_WEBHOOK_URL`.
//!
//! The body is Slack-compatible (`text` plus `blocks` of `mrkdwn`; an incoming-webhook URL of
//! Slack, Mattermost or Discord's `/slack` endpoint takes it as is) and carries the same facts
//! machine-readably under `clawtriage`. It is signed like GitHub's webhooks:
//! `X-ClawTriage-Signature-256: sha256=<hex HMAC-SHA256 of the body under NOTIFY_WEBHOOK_SECRET>`,
//! with `X-ClawTriage-Event` and `X-ClawTriage-Delivery` (stable across retries, for
//! de-duplication). A 2xx answer delivers; a 408, 429, 5xx or transport error is retried with
//! exponential backoff (1 s, 2 s, 4 s ... at most 5 min apart) up to [`MAX_ATTEMPTS`] attempts;
//! any other answer fails the delivery at once. Failures are in the audit.

use std::sync::OnceLock;
use std::time::Duration;

use hmac::{KeyInit, Mac};
use secrecy::ExposeSecret;

use super::sets::{NewDelivery, SetChange};
use super::settings::{RepoSettings, tier_at_least};
use crate::jobs::check_run::category_words;
use crate::state::AppState;
use crate::store::actions::{self, NewAction};
use crate::store::sets::ActiveRepo;

/// Attempts of one delivery, first included.
pub const MAX_ATTEMPTS: u32 = 8;
/// Sets listed in one delivery at most (the rest are counted).
pub const MAX_SETS_PER_DELIVERY: usize = 20;
/// The event name.
pub const EVENT: &str = "duplicate_sets.changed";

/// Wait before attempt `next` (2, 3, ...): 1 s, 2 s, 4 s, ... at most 5 min.
pub fn backoff(next: u32) -> Duration {
    Duration::from_secs((1u64 << next.saturating_sub(2).min(9)).min(300))
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length; this cannot happen.
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The delivery announcing `changes` (None when none is of a tier worth announcing).
pub fn delivery_for(
    repo: &ActiveRepo,
    settings: &RepoSettings,
    changes: &[SetChange],
    public_url: Option<&str>,
    watermark: &str,
) -> Option<NewDelivery> {
    if !settings.notify.webhook {
        return None;
    }
    let shown: Vec<&SetChange> = changes
        .iter()
        .filter(|c| tier_at_least(c.set.tier, &settings.notify.min_tier))
        .collect();
    if shown.is_empty() {
        return None;
    }
    let full = format!("{}/{}", repo.owner, repo.name);
    let new = shown.iter().filter(|c| c.previous_size.is_none()).count();
    let grew = shown.len() - new;
    let mut parts = Vec::new();
    if new > 0 {
        parts.push(format!(
            "{new} new duplicate set{}",
            if new == 1 { "" } else { "s" }
        ));
    }
    if grew > 0 {
        parts.push(format!(
            "{grew} set{} grew",
            if grew == 1 { "" } else { "s" }
        ));
    }
    let text = format!("{full}: {}", parts.join(", "));
    let mut lines = Vec::new();
    let mut sets = Vec::new();
    for c in shown.iter().take(MAX_SETS_PER_DELIVERY) {
        let s = &c.set;
        let members: Vec<String> = s.members.iter().map(|m| format!("#{m}")).collect();
        let what = match c.previous_size {
            None => "new".to_string(),
            Some(n) => format!("grew from {n} to {}", s.members.len()),
        };
        let cat = s
            .categories
            .first()
            .map(|c| category_words(c.as_str()))
            .unwrap_or("duplicates");
        let link = super::set_link(public_url, repo.repo_id, &s.set_id);
        let label = match &link {
            Some(l) => format!("<{l}|{}>", s.set_id),
            None => format!("`{}`", s.set_id),
        };
        lines.push(format!(
            "• {label} ({what}, {} confidence, {cat}): {} — keep #{}",
            s.tier,
            members.join(" "),
            s.keep.number
        ));
        sets.push(serde_json::json!({
            "setId": s.set_id,
            "change": if c.previous_size.is_none() { "new" } else { "grew" },
            "previousSize": c.previous_size,
            "size": s.members.len(),
            "members": s.members,
            "tier": s.tier,
            "maxScore": s.max_score,
            "categories": s.categories.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            "base": s.base.number,
            "keep": s.keep.number,
            "url": link,
        }));
    }
    if shown.len() > MAX_SETS_PER_DELIVERY {
        lines.push(format!(
            "… and {} more",
            shown.len() - MAX_SETS_PER_DELIVERY
        ));
    }
    let id = format!("d-{}-{watermark}", repo.repo_id);
    let body = serde_json::json!({
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("*{text}*")}},
            {"type": "section", "text": {"type": "mrkdwn", "text": lines.join("\n")}},
        ],
        "clawtriage": {
            "event": EVENT,
            "deliveryId": id,
            "repository": full,
            "repoId": repo.repo_id,
            "sets": sets,
            "more": shown.len().saturating_sub(MAX_SETS_PER_DELIVERY),
        },
    });
    Some((id, EVENT.to_string(), body))
}

fn http() -> &'static reqwest::Client {
    static C: OnceLock<reqwest::Client> = OnceLock::new();
    C.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

/// What one attempt gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempted {
    /// Nothing to do (no such delivery, or it is settled).
    Settled,
    /// Delivered (2xx).
    Delivered,
    /// Worth another attempt after the wait.
    Retry(Duration),
    /// Given up.
    Failed,
}

/// Makes attempt `attempt` (from 1) of a delivery and records it.
pub async fn attempt(
    state: &AppState,
    delivery_id: &str,
    attempt: u32,
) -> Result<Attempted, super::WorkflowError> {
    let Some(d) = actions::get_delivery(&state.pool, delivery_id).await? else {
        return Ok(Attempted::Settled);
    };
    if d.status != "pending" {
        return Ok(Attempted::Settled);
    }
    let (Some(url), Some(secret)) = (
        state.config.notify_webhook_url.as_ref(),
        state.config.notify_webhook_secret.as_ref(),
    ) else {
        actions::record_attempt(
            &state.pool,
            delivery_id,
            "failed",
            None,
            Some("NOTIFY_WEBHOOK_URL is no longer set"),
        )
        .await?;
        return Ok(Attempted::Failed);
    };
    let body = serde_json::to_vec(&d.payload).unwrap_or_default();
    let sent = http()
        .post(url.expose_secret())
        .header("content-type", "application/json")
        .header("user-agent", "ClawTriage-Hookshot")
        .header("x-clawtriage-event", &d.event)
        .header("x-clawtriage-delivery", &d.delivery_id)
        .header(
            "x-clawtriage-signature-256",
            signature(secret.expose_secret(), &body),
        )
        .body(body)
        .send()
        .await;
    let (status, error, retryable) = match sent {
        Ok(r) => {
            let s = r.status().as_u16();
            let retry = s == 408 || s == 429 || s >= 500;
            (
                Some(s as i32),
                (!r.status().is_success()).then(|| format!("the receiver answered {s}")),
                retry,
            )
        }
        Err(e) => (
            None,
            Some(format!("transport error: {}", e.without_url())),
            true,
        ),
    };
    let outcome = match (&error, retryable) {
        (None, _) => Attempted::Delivered,
        (Some(_), true) if attempt < MAX_ATTEMPTS => Attempted::Retry(backoff(attempt + 1)),
        _ => Attempted::Failed,
    };
    let row_status = match outcome {
        Attempted::Delivered => "delivered",
        Attempted::Failed => "failed",
        _ => "pending",
    };
    actions::record_attempt(
        &state.pool,
        delivery_id,
        row_status,
        status,
        error.as_deref(),
    )
    .await?;
    match &outcome {
        Attempted::Delivered => {
            tracing::info!(delivery = %delivery_id, attempt, "webhook delivered")
        }
        Attempted::Retry(wait) => {
            tracing::warn!(delivery = %delivery_id, attempt, wait_secs = wait.as_secs(), error = ?error, "webhook not delivered; retrying")
        }
        _ => {
            tracing::warn!(delivery = %delivery_id, attempt, error = ?error, "webhook delivery failed")
        }
    }
    if matches!(outcome, Attempted::Delivered | Attempted::Failed) {
        let detail = match &outcome {
            Attempted::Delivered => format!("webhook `{}` delivered (attempt {attempt})", d.event),
            _ => format!(
                "webhook `{}` not delivered after {attempt} attempt{}: {}",
                d.event,
                if attempt == 1 { "" } else { "s" },
                error.as_deref().unwrap_or("")
            ),
        };
        actions::log_action(
            &state.pool,
            d.repo_id,
            &NewAction {
                kind: "webhook",
                actor: "clawtriage",
                outcome: if outcome == Attempted::Delivered {
                    "done"
                } else {
                    "failed"
                },
                detail,
                github_answer: Some(
                    serde_json::json!({"deliveryId": d.delivery_id, "status": status}),
                ),
                ..Default::default()
            },
        )
        .await?;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_githubs_test_vector() {
        // The same construction as GitHub's X-Hub-Signature-256 (its documented example).
        assert_eq!(
            signature("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(2));
        assert_eq!(backoff(5), Duration::from_secs(8));
        assert_eq!(backoff(30), Duration::from_secs(300));
    }
}
