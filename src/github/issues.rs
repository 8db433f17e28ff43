//! Issues, comments, labels, PR state and file contents: what acting from the dashboard, the
//! digest issue and per-repository settings read and write. Every write returns GitHub's status
//! and the parts of its answer worth keeping in the audit (ids and URLs).

use secrecy::SecretString;
use serde::Deserialize;

use super::checks::{MAX_SUMMARY, truncate_to};
use super::{CallStats, GithubClient, GithubError, PullSummary};

/// Comments read per issue at most (a marker older than this many comments is not seen).
pub const MAX_COMMENTS: usize = 3000;

/// Characters escaped in a path segment (everything but RFC 3986's unreserved characters).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `s` escaped for one path segment.
pub fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// A comment on an issue or PR.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct IssueComment {
    /// Id.
    pub id: i64,
    /// Markdown.
    #[serde(default)]
    pub body: Option<String>,
    /// Web URL.
    #[serde(default)]
    pub html_url: String,
}

/// An issue (the digest).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Issue {
    /// Number.
    pub number: i64,
    /// open | closed.
    #[serde(default)]
    pub state: String,
    /// Markdown.
    #[serde(default)]
    pub body: Option<String>,
    /// Web URL.
    #[serde(default)]
    pub html_url: String,
}

/// A file from the contents API.
#[derive(Debug, Clone, Deserialize)]
pub struct Contents {
    /// file | dir | symlink | submodule.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Blob sha.
    #[serde(default)]
    pub sha: String,
    /// base64 (with line breaks), for files up to 1 MB.
    #[serde(default)]
    pub encoding: Option<String>,
    /// The encoded content.
    #[serde(default)]
    pub content: Option<String>,
}

/// What a write returned: GitHub's status and the decoded body.
#[derive(Debug, Clone)]
pub struct Written<T> {
    /// HTTP status.
    pub status: u16,
    /// The answer.
    pub value: T,
}

impl GithubClient {
    /// A write's answer: its status and decoded body.
    fn written<T: serde::de::DeserializeOwned>(
        page: &super::Page,
    ) -> Result<Written<T>, GithubError> {
        Ok(Written {
            status: page.status,
            value: Self::decode(page)?,
        })
    }

    /// `GET /repos/{owner}/{repo}/pulls/{number}`: one PR, whatever its state, never from the
    /// ETag cache (the live state: right before a write, or to confirm a PR missing from a
    /// listing is closed). `token` overrides the client's choice.
    pub async fn get_pull(
        &self,
        owner: &str,
        repo: &str,
        number: i64,
        token: Option<&SecretString>,
        stats: &CallStats,
    ) -> Result<PullSummary, GithubError> {
        let page = self
            .get(
                &format!("/repos/{owner}/{repo}/pulls/{number}"),
                false,
                token,
                stats,
            )
            .await?;
        Self::decode(&page)
    }

    /// Every comment of an issue or PR (at most [`MAX_COMMENTS`]), oldest first.
    pub async fn list_comments(
        &self,
        owner: &str,
        repo: &str,
        number: i64,
        token: Option<&SecretString>,
        stats: &CallStats,
    ) -> Result<Vec<IssueComment>, GithubError> {
        self.all_pages(
            &format!("/repos/{owner}/{repo}/issues/{number}/comments?per_page=100"),
            false,
            Some(MAX_COMMENTS),
            token,
            stats,
        )
        .await
        .map(|(items, _)| items)
    }

    /// `POST /repos/{owner}/{repo}/issues/{number}/comments`.
    pub async fn create_comment(
        &self,
        owner: &str,
        repo: &str,
        number: i64,
        body: &str,
        token: Option<&SecretString>,
        stats: &CallStats,
    ) -> Result<Written<IssueComment>, GithubError> {
        let page = self
            .post_json(
                &format!("/repos/{owner}/{repo}/issues/{number}/comments"),
                &serde_json::json!({ "body": truncate_to(body, MAX_SUMMARY) }),
                token,
                stats,
            )
            .await?;
        Self::written(&page)
    }

    /// `PATCH /repos/{owner}/{repo}/pulls/{number}` with `state: closed`.
    pub async fn close_pull(
        &self,
        owner: &str,
        repo: &str,
        number: i64,
        token: Option<&SecretString>,
        stats: &CallStats,
    ) -> Result<Written<PullSummary>, GithubError> {
        let page = self
            .patch_json(
                &format!("/repos/{owner}/{repo}/pulls/{number}"),
                &serde_json::json!({ "state": "closed" }),
                token,
                stats,
            )
            .await?;
        Self::written(&page)
    }

    /// `POST /repos/{owner}/{repo}/issues/{number}/labels`: adds labels; returns every label
    /// the issue has now.
    pub async fn add_labels(
        &self,
        owner: &str,
        repo: &str,
        number: i64,
        labels: &[&str],
        token: Option<&SecretString>,
        stats: &CallStats,
    ) -> Result<Written<Vec<super::types::Label>>, GithubError> {
        let page = self
            .post_json(
                &format!("/repos/{owner}/{repo}/issues/{number}/labels"),
                &serde_json::json!({ "labels": labels }),
                token,
                stats,
            )
            .await?;
        Self::written(&page)
    }

    /// `DELETE /repos/{owner}/{repo}/issues/{number}/labels/{name}`; returns the labels left.
    pub async fn remove_label(
        &self,
        owner: &str,
        repo: &str,
        number: i64,
        label: &str,
        token: Option<&SecretString>,
        stats: &CallStats,
    ) -> Result<Written<Vec<super::types::Label>>, GithubError> {
        let page = self
            .delete(
                &format!(
                    "/repos/{owner}/{repo}/issues/{number}/labels/{}",
                    segment(label)
                ),
                token,
                stats,
            )
            .await?;
        Self::written(&page)
    }

    /// `GET /repos/{owner}/{repo}/issues/{number}`.
    pub async fn get_issue(
        &self,
        owner: &str,
        repo: &str,
        number: i64,
        token: Option<&SecretString>,
        stats: &CallStats,
    ) -> Result<Issue, GithubError> {
        let page = self
            .get(
                &format!("/repos/{owner}/{repo}/issues/{number}"),
                false,
                token,
                stats,
            )
            .await?;
        Self::decode(&page)
    }

    /// Issues (open and closed, PRs included, as GitHub lists them) carrying `label`, newest
    /// first, at most 300.
    pub async fn issues_with_label(
        &self,
        owner: &str,
        repo: &str,
        label: &str,
        token: Option<&SecretString>,
        stats: &CallStats,
    ) -> Result<Vec<Issue>, GithubError> {
        self.all_pages(
            &format!(
                "/repos/{owner}/{repo}/issues?state=all&labels={}&per_page=100",
                segment(label)
            ),
            false,
            Some(300),
            token,
            stats,
        )
        .await
        .map(|(items, _)| items)
    }

    /// `POST /repos/{owner}/{repo}/issues`.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_issue(
        &self,
        owner: &str,
        repo: &str,
        title: &str,
        body: &str,
        labels: &[&str],
        token: Option<&SecretString>,
        stats: &CallStats,
    ) -> Result<Written<Issue>, GithubError> {
        let page = self
            .post_json(
                &format!("/repos/{owner}/{repo}/issues"),
                &serde_json::json!({
                    "title": title,
                    "body": truncate_to(body, MAX_SUMMARY),
                    "labels": labels,
                }),
                token,
                stats,
            )
            .await?;
        Self::written(&page)
    }

    /// `PATCH /repos/{owner}/{repo}/issues/{number}`: replaces the body.
    pub async fn update_issue_body(
        &self,
        owner: &str,
        repo: &str,
        number: i64,
        body: &str,
        token: Option<&SecretString>,
        stats: &CallStats,
    ) -> Result<Written<Issue>, GithubError> {
        let page = self
            .patch_json(
                &format!("/repos/{owner}/{repo}/issues/{number}"),
                &serde_json::json!({ "body": truncate_to(body, MAX_SUMMARY) }),
                token,
                stats,
            )
            .await?;
        Self::written(&page)
    }

    /// `GET /repos/{owner}/{repo}/contents/{path}?ref={git_ref}`, revalidated with its ETag
    /// (a 304 costs no rate limit). Returns the file and whether it is unchanged since the
    /// last read.
    pub async fn get_contents(
        &self,
        owner: &str,
        repo: &str,
        path: &str,
        git_ref: &str,
        stats: &CallStats,
    ) -> Result<(Contents, bool), GithubError> {
        let path: Vec<String> = path.split('/').map(segment).collect();
        let page = self
            .get(
                &format!(
                    "/repos/{owner}/{repo}/contents/{}?ref={}",
                    path.join("/"),
                    segment(git_ref)
                ),
                true,
                None,
                stats,
            )
            .await?;
        Ok((Self::decode(&page)?, page.not_modified()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(
            segment("triage:possible-duplicate"),
            "triage%3Apossible-duplicate"
        );
        assert_eq!(segment("needs review/ui"), "needs%20review%2Fui");
        assert_eq!(segment("a.b_c~d"), "a.b_c~d");
    }
}
