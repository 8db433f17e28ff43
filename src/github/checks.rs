//! Check Runs, labels and comments: the only things the appliance ever writes to GitHub (App
//! mode). Check runs are always completed with conclusion `neutral`, so they never block a merge.

use secrecy::SecretString;
use serde::Deserialize;

use super::{CallStats, GithubClient, GithubError};

/// GitHub's cap on `output.summary` and `output.text` (characters; we count bytes, which is
/// stricter).
pub const MAX_SUMMARY: usize = 65_535;
/// Our cap on `output.title` (GitHub documents none; a title is a few words).
pub const MAX_TITLE: usize = 200;

/// A Check Run's visible output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutput {
    /// A few words: the verdict.
    pub title: String,
    /// Markdown: the top candidates with evidence.
    pub summary: String,
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut.
pub fn truncate_to(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    const MARK: &str = "\n\n…(truncated)";
    let mut end = max.saturating_sub(MARK.len());
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &s[..end])
}

#[derive(Debug, Deserialize)]
struct Created {
    id: i64,
}

impl CheckOutput {
    fn body(
        &self,
        name: &str,
        head_sha: Option<&str>,
        details_url: Option<&str>,
    ) -> serde_json::Value {
        let mut v = serde_json::json!({
            "name": name,
            "status": "completed",
            "conclusion": "neutral",
            "completed_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "output": {
                "title": truncate_to(&self.title, MAX_TITLE),
                "summary": truncate_to(&self.summary, MAX_SUMMARY),
            },
        });
        if let Some(h) = head_sha {
            v["head_sha"] = serde_json::Value::String(h.to_string());
        }
        if let Some(u) = details_url {
            v["details_url"] = serde_json::Value::String(u.to_string());
        }
        v
    }
}

impl GithubClient {
    /// `POST /repos/{owner}/{repo}/check-runs`: a completed, neutral check run. Returns its id.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_check_run(
        &self,
        owner: &str,
        repo: &str,
        name: &str,
        head_sha: &str,
        output: &CheckOutput,
        details_url: Option<&str>,
        token: Option<&SecretString>,
        stats: &CallStats,
    ) -> Result<i64, GithubError> {
        let page = self
            .post_json(
                &format!("/repos/{owner}/{repo}/check-runs"),
                &output.body(name, Some(head_sha), details_url),
                token,
                stats,
            )
            .await?;
        Ok(Self::decode::<Created>(&page)?.id)
    }

    /// `PATCH /repos/{owner}/{repo}/check-runs/{id}`: replaces the output of a check run.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_check_run(
        &self,
        owner: &str,
        repo: &str,
        check_run_id: i64,
        name: &str,
        output: &CheckOutput,
        details_url: Option<&str>,
        token: Option<&SecretString>,
        stats: &CallStats,
    ) -> Result<(), GithubError> {
        self.patch_json(
            &format!("/repos/{owner}/{repo}/check-runs/{check_run_id}"),
            &output.body(name, None, details_url),
            token,
            stats,
        )
        .await?;
        Ok(())
    }

    /// `POST /repos/{owner}/{repo}/issues/{number}/labels`: adds one label.
    pub async fn add_label(
        &self,
        owner: &str,
        repo: &str,
        number: i64,
        label: &str,
        token: Option<&SecretString>,
        stats: &CallStats,
    ) -> Result<(), GithubError> {
        self.add_labels(owner, repo, number, &[label], token, stats)
            .await
            .map(|_| ())
    }

    /// `POST /repos/{owner}/{repo}/issues/{number}/comments`.
    pub async fn add_comment(
        &self,
        owner: &str,
        repo: &str,
        number: i64,
        body: &str,
        token: Option<&SecretString>,
        stats: &CallStats,
    ) -> Result<(), GithubError> {
        self.create_comment(owner, repo, number, body, token, stats)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_limits_and_char_boundaries() {
        let s = "é".repeat(40_000);
        let t = truncate_to(&s, MAX_SUMMARY);
        assert!(t.len() <= MAX_SUMMARY);
        assert!(t.ends_with("(truncated)"));
        assert_eq!(truncate_to("short", 10), "short");
    }

    #[test]
    fn check_run_bodies_are_completed_and_neutral() {
        let o = CheckOutput {
            title: "t".into(),
            summary: "s".into(),
        };
        let b = o.body("ClawTriage", Some("abc"), None);
        assert_eq!(b["conclusion"], "neutral");
        assert_eq!(b["status"], "completed");
        assert_eq!(b["head_sha"], "abc");
        let real: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/github/checks-create.example-of-completed-conclusion.json"
            ))
            .unwrap(),
        )
        .unwrap();
        assert!(real["id"].as_i64().is_some());
        let _: Created = serde_json::from_value(real).unwrap();
    }
}
