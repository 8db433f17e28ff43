//! Duplicate sets as the API, the digest and the webhook see them: built by the pure engine
//! from stored edges, given stable ids from the registry, with maintainers' "base is" verdicts
//! applied; and the refresh that records them and says which sets are new or grew.

use std::collections::HashMap;

use crate::state::AppState;
use crate::store::sets::{self as registry, ActiveRepo, RegistrySet};
use crate::store::{StoreError, StoreResult, results};
use crate::triage::set_ids::{self, KnownSet};
use crate::triage::sets::{self, DuplicateSet, SetParams};

/// The parameters of a repository's default view (open PRs, its review threshold, the usual
/// categories): the view the registry records.
pub async fn default_params(state: &AppState, repo_id: i64) -> StoreResult<SetParams> {
    Ok(SetParams {
        min_score: super::review_threshold(state, repo_id).await?,
        max_size: state.config.max_set_size,
        ..SetParams::default()
    })
}

/// The sets of a repository among PRs in `states`, with hash ids (before the registry).
async fn raw_sets(
    state: &AppState,
    repo_id: i64,
    states: &[String],
    params: &SetParams,
) -> StoreResult<(Vec<DuplicateSet>, results::SetInputs)> {
    let inputs = results::set_inputs(&state.pool, repo_id, states, params.min_score).await?;
    let scope = repo_id.to_string();
    let params = params.clone();
    tokio::task::spawn_blocking(move || {
        let s = sets::build_sets(
            &scope,
            &inputs.edges,
            &inputs.members,
            &inputs.not_duplicate,
            &params,
        );
        (s, inputs)
    })
    .await
    .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// Gives `sets` their stable ids against `known`, applies "base is" verdicts (by set id, or by
/// the exact members for verdicts given before ids were stable) and sorts them in API order.
fn settle(
    repo_id: i64,
    mut out: Vec<DuplicateSet>,
    known: &[KnownSet],
    inputs: &results::SetInputs,
) -> Vec<DuplicateSet> {
    let groups: Vec<Vec<u64>> = out.iter().map(|s| s.members.clone()).collect();
    let ids = set_ids::assign_ids(&repo_id.to_string(), &groups, known);
    for (set, id) in out.iter_mut().zip(ids) {
        set.set_id = id;
        if let Some((_, _, b)) = inputs.base_overrides.iter().find(|(sid, m, b)| {
            set.members.contains(b)
                && (sid.as_deref() == Some(set.set_id.as_str()) || *m == set.members)
        }) {
            set.base = sets::Pick {
                number: *b,
                reason: format!("a maintainer marked #{b} as the base"),
            };
        }
    }
    sets::sort_sets(&mut out);
    out
}

/// The sets of a repository among PRs in `states`, with stable ids.
pub async fn compute_sets(
    state: &AppState,
    repo_id: i64,
    states: &[String],
    params: &SetParams,
) -> StoreResult<Vec<DuplicateSet>> {
    let (raw, inputs) = raw_sets(state, repo_id, states, params).await?;
    let known = {
        let c = state.pool.get().await?;
        registry::known_sets(&c, repo_id).await?
    };
    Ok(settle(repo_id, raw, &known, &inputs))
}

/// The default view's sets of a repository.
pub async fn current_sets(state: &AppState, repo_id: i64) -> StoreResult<Vec<DuplicateSet>> {
    let params = default_params(state, repo_id).await?;
    compute_sets(state, repo_id, &["open".to_string()], &params).await
}

/// A set that is new or grew since the previous refresh.
#[derive(Debug, Clone)]
pub struct SetChange {
    /// The set now.
    pub set: DuplicateSet,
    /// Its size before (None: it is new, or came back).
    pub previous_size: Option<usize>,
}

/// An outgoing delivery to record with a refresh: (delivery id, event, JSON body).
pub type NewDelivery = (String, String, serde_json::Value);

/// Recomputes the default view's sets, records them under their stable ids (one refresh of a
/// repository at a time) and returns the sets that are new or grew, with the ids of the
/// deliveries `announce` asked for (recorded in the same transaction as the registry, so a
/// change is announced once, or not at all when the refresh fails).
pub async fn refresh(
    state: &AppState,
    repo: &ActiveRepo,
    watermark: &str,
    announce: impl FnOnce(&[SetChange]) -> Vec<NewDelivery>,
) -> Result<(Vec<SetChange>, Vec<String>), super::WorkflowError> {
    let params = default_params(state, repo.repo_id).await?;
    let (raw, inputs) = raw_sets(state, repo.repo_id, &["open".to_string()], &params).await?;
    let mut c = state.pool.get().await?;
    let tx = c.transaction().await?;
    registry::lock_registry(&tx, repo.repo_id).await?;
    let known = registry::known_sets(&tx, repo.repo_id).await?;
    let sets = settle(repo.repo_id, raw, &known, &inputs);
    let before: HashMap<&str, usize> = known
        .iter()
        .filter(|k| k.active)
        .map(|k| (k.set_id.as_str(), k.members.len()))
        .collect();
    let mut changes = Vec::new();
    for s in &sets {
        match before.get(s.set_id.as_str()) {
            None => changes.push(SetChange {
                set: s.clone(),
                previous_size: None,
            }),
            Some(&n) if s.members.len() > n => changes.push(SetChange {
                set: s.clone(),
                previous_size: Some(n),
            }),
            _ => {}
        }
    }
    let rows: Vec<RegistrySet> = sets
        .iter()
        .map(|s| RegistrySet {
            set_id: s.set_id.clone(),
            members: s.members.iter().map(|m| *m as i64).collect(),
            tier: s.tier.to_string(),
            max_score: s.max_score,
        })
        .collect();
    registry::save_refresh(&tx, repo.repo_id, &rows, watermark).await?;
    let mut delivered = Vec::new();
    for (id, event, payload) in announce(&changes) {
        if crate::store::actions::insert_delivery(&tx, &id, repo.repo_id, &event, &payload).await? {
            delivered.push(id);
        }
    }
    tx.commit().await?;
    if !changes.is_empty() {
        state.cache.bump().await;
    }
    Ok((changes, delivered))
}
