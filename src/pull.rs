//! A pull request as GitHub describes it (`GET /pulls`, the `pull_request` of webhooks): the
//! vocabulary the GitHub client reads and the store keeps. It lives outside both so that neither
//! imports the other.

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// `user` objects.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct User {
    /// Login name.
    #[serde(default)]
    pub login: String,
    /// `User` or `Bot`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// `head` / `base` of a PR.
#[derive(Debug, Clone, Deserialize)]
pub struct GitRef {
    /// Commit sha.
    pub sha: String,
    /// Branch name.
    #[serde(default, rename = "ref")]
    pub branch: String,
}

/// An item of `GET /repos/{owner}/{repo}/pulls` (also the `pull_request` of webhooks).
#[derive(Debug, Clone, Deserialize)]
pub struct PullSummary {
    /// PR number.
    pub number: i64,
    /// open | closed.
    #[serde(default)]
    pub state: String,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Body (null when empty).
    #[serde(default)]
    pub body: Option<String>,
    /// Author.
    #[serde(default)]
    pub user: Option<User>,
    /// Web URL.
    #[serde(default)]
    pub html_url: String,
    /// Draft flag.
    #[serde(default)]
    pub draft: bool,
    /// Head commit.
    pub head: GitRef,
    /// Base branch.
    pub base: GitRef,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Updated.
    pub updated_at: DateTime<Utc>,
    /// Closed.
    #[serde(default)]
    pub closed_at: Option<DateTime<Utc>>,
    /// Merged.
    #[serde(default)]
    pub merged_at: Option<DateTime<Utc>>,
    /// Labels.
    #[serde(default)]
    pub labels: Vec<Label>,
}

/// A label on an issue or PR.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Label {
    /// Its name.
    #[serde(default)]
    pub name: String,
}

impl PullSummary {
    /// The author's login ("ghost" when GitHub deleted the account).
    pub fn author(&self) -> &str {
        self.user
            .as_ref()
            .map(|u| u.login.as_str())
            .filter(|l| !l.is_empty())
            .unwrap_or("ghost")
    }

    /// Label names.
    pub fn label_names(&self) -> Vec<String> {
        self.labels.iter().map(|l| l.name.clone()).collect()
    }

    /// open | closed | merged.
    pub fn state_word(&self) -> &'static str {
        if self.state == "open" {
            "open"
        } else if self.merged_at.is_some() {
            "merged"
        } else {
            "closed"
        }
    }
}
