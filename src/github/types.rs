//! The parts of GitHub's REST shapes the appliance reads. Unknown fields are ignored, missing
//! optional fields default, so GitHub adding fields never breaks a scan.

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

/// An item of `GET /repos/{owner}/{repo}/pulls/{number}/files`.
#[derive(Debug, Clone, Deserialize)]
pub struct FileEntry {
    /// Path after the change.
    pub filename: String,
    /// added | removed | modified | renamed | copied | changed | unchanged.
    #[serde(default)]
    pub status: String,
    /// Lines added.
    #[serde(default)]
    pub additions: u32,
    /// Lines removed.
    #[serde(default)]
    pub deletions: u32,
    /// Unified diff hunks; absent for binary files and diffs over GitHub's size limit.
    #[serde(default)]
    pub patch: Option<String>,
    /// Path before a rename.
    #[serde(default)]
    pub previous_filename: Option<String>,
}

/// `GET /repos/{owner}/{repo}`.
#[derive(Debug, Clone, Deserialize)]
pub struct RepoInfo {
    /// Repository name.
    pub name: String,
    /// Default branch.
    #[serde(default = "default_branch")]
    pub default_branch: String,
    /// Owner.
    pub owner: User,
}

fn default_branch() -> String {
    "main".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/github/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn real_rest_examples_parse() {
        let pulls: Vec<PullSummary> =
            serde_json::from_str(&example("pulls-list.default.json")).unwrap();
        assert!(!pulls.is_empty());
        assert_eq!(pulls[0].state_word(), "open");
        let one: PullSummary = serde_json::from_str(&example("pulls-get.default.json")).unwrap();
        assert!(one.number > 0);
        let files: Vec<FileEntry> =
            serde_json::from_str(&example("pulls-list-files.default.json")).unwrap();
        assert!(files.iter().any(|f| f.patch.is_some()));
        let repo: RepoInfo =
            serde_json::from_str(&example("repos-get.default-response.json")).unwrap();
        assert!(!repo.default_branch.is_empty());
    }
}
