//! The maintainer's workflow on top of the results: duplicate sets with stable ids and what
//! changed in them ([`sets`]), per-repository settings ([`settings`], read from GitHub by
//! [`repo_file`]), writes to GitHub planned and then applied ([`actions`]), the digest issue
//! ([`digest`]) and the outgoing webhook ([`notify`]). The slow parts run as jobs on their own
//! queue ([`crate::jobs::workflow`]), never in the analysis path.

pub mod actions;
pub mod digest;
pub mod notify;
pub mod repo_file;
pub mod sets;
pub mod settings;

use crate::github::GithubError;
use crate::state::AppState;
use crate::store::search::AgentMatch;
use crate::store::{StoreError, StoreResult};

/// Why a workflow step failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// Postgres failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// GitHub failed.
    #[error(transparent)]
    Github(#[from] GithubError),
    /// The queue failed.
    #[error(transparent)]
    Queue(#[from] crate::jobs::JobError),
    /// The request cannot be done as asked (the message says why, for the maintainer).
    #[error("{0}")]
    Refused(String),
    /// Something named does not exist (the message says what).
    #[error("{0}")]
    Missing(String),
}

impl From<deadpool_postgres::PoolError> for WorkflowError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        WorkflowError::Store(e.into())
    }
}

impl From<tokio_postgres::Error> for WorkflowError {
    fn from(e: tokio_postgres::Error) -> Self {
        WorkflowError::Store(e.into())
    }
}

impl WorkflowError {
    /// True when retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            WorkflowError::Store(e) => e.is_transient(),
            WorkflowError::Github(e) => e.is_transient(),
            WorkflowError::Queue(_) => true,
            WorkflowError::Refused(_) | WorkflowError::Missing(_) => false,
        }
    }
}

/// The review threshold of a repository: its file's `triage.review_threshold`, else
/// `REVIEW_SCORE_THRESHOLD`, else the appliance's triage configuration.
pub async fn review_threshold(state: &AppState, repo_id: i64) -> StoreResult<f64> {
    let s = crate::store::settings::repo_settings(&state.pool, repo_id).await?;
    Ok(review_threshold_of(state, &s))
}

/// [`review_threshold`] for settings the caller read already.
pub fn review_threshold_of(state: &AppState, s: &settings::RepoSettings) -> f64 {
    s.triage
        .get("review_threshold")
        .and_then(|v| v.as_f64())
        .or(state.config.review_score_threshold)
        .unwrap_or(state.triage.review_threshold)
}

/// Who counts as a coding agent in a repository.
pub async fn agent_match(state: &AppState, repo_id: i64) -> StoreResult<AgentMatch> {
    let s = crate::store::settings::repo_settings(&state.pool, repo_id).await?;
    Ok(AgentMatch::new(&s.agents.logins, &s.agents.branch_prefixes))
}

/// Whether the appliance may write to this repository at all (App mode with an installation),
/// and if not, why.
pub fn writes_possible(state: &AppState, installation_id: Option<i64>) -> Result<i64, String> {
    if !state.config.github_mode.uses_app() {
        return Err(
            "writes to GitHub need the GitHub App (GITHUB_MODE=app or hybrid); this appliance reads only"
                .into(),
        );
    }
    installation_id.ok_or_else(|| {
        "the GitHub App is not installed on this repository, so nothing can be written to it"
            .to_string()
    })
}

pub use crate::jobs::check_run::one_line;

/// The dashboard's view of a set, when the appliance's public URL is known.
pub fn set_link(public_url: Option<&str>, repo_id: i64, set_id: &str) -> Option<String> {
    public_url.map(|u| {
        format!(
            "{}/#/sets?repo={repo_id}&open={set_id}",
            u.trim_end_matches('/')
        )
    })
}
