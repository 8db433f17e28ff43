//! The parts of GitHub's REST shapes the appliance reads. Unknown fields are ignored, missing
//! optional fields default, so GitHub adding fields never breaks a scan.

use serde::Deserialize;

pub use crate::pull::{GitRef, Label, PullSummary, User};

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
    /// Blob id of the file after the change (absent for removed files).
    #[serde(default)]
    pub sha: Option<String>,
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
