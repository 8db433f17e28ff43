//! Reads `.github/clawtriage.toml` from a repository's default branch through the contents API,
//! revalidated with its ETag (an unchanged file costs a free 304), validates it and stores what
//! was found. A missing, unreadable or invalid file is recorded as such and the appliance's
//! defaults apply; nothing here can stop triage.

use base64::Engine;

use super::WorkflowError;
use super::settings::{self, MAX_SETTINGS_BYTES, SETTINGS_PATH, SettingsProblem};
use crate::github::{CallStats, GithubError};
use crate::state::AppState;
use crate::store::sets::ActiveRepo;
use crate::store::settings::{self as stored, SettingsRead};

fn whole_file(message: String) -> Vec<SettingsProblem> {
    vec![SettingsProblem {
        line: 1,
        column: 1,
        message,
    }]
}

/// Reads the file again and stores the outcome. Transient GitHub failures are returned (the
/// previous read stays in force); everything else is stored.
pub async fn refresh(state: &AppState, repo: &ActiveRepo) -> Result<String, WorkflowError> {
    let stats = CallStats::new();
    let git_ref = repo.default_branch.as_str();
    let answer = state
        .github
        .get_contents(&repo.owner, &repo.name, SETTINGS_PATH, git_ref, &stats)
        .await;
    let previous = stored::load_settings(&state.pool, repo.repo_id).await?;
    let (contents, unchanged) = match answer {
        Ok(x) => x,
        Err(GithubError::NotFound(_)) => {
            stored::save_settings(
                &state.pool,
                repo.repo_id,
                &SettingsRead {
                    status: "absent",
                    git_ref: Some(git_ref),
                    blob_sha: None,
                    text: None,
                    settings: None,
                    errors: &[],
                },
            )
            .await?;
            return Ok("absent".into());
        }
        Err(e) if e.is_transient() => return Err(e.into()),
        Err(e) => {
            let errors = whole_file(format!("GitHub did not give the file: {e}"));
            stored::save_settings(
                &state.pool,
                repo.repo_id,
                &SettingsRead {
                    status: "unreadable",
                    git_ref: Some(git_ref),
                    blob_sha: None,
                    text: None,
                    settings: None,
                    errors: &errors,
                },
            )
            .await?;
            return Ok("unreadable".into());
        }
    };
    if unchanged
        && let Some(p) = previous.filter(|p| p.blob_sha.as_deref() == Some(contents.sha.as_str()))
    {
        stored::touch_settings(&state.pool, repo.repo_id).await?;
        return Ok(p.status);
    }
    let text = if contents.kind != "file" {
        Err(format!(
            "{SETTINGS_PATH} is a {}, not a file",
            contents.kind
        ))
    } else if contents.size as usize > MAX_SETTINGS_BYTES {
        Err(format!(
            "the file is {} bytes; at most {MAX_SETTINGS_BYTES} are read",
            contents.size
        ))
    } else {
        let encoded: String = contents
            .content
            .as_deref()
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        match contents.encoding.as_deref() {
            Some("base64") => base64::engine::general_purpose::STANDARD
                .decode(encoded.as_bytes())
                .map_err(|e| format!("GitHub sent content that is not base64: {e}"))
                .and_then(|b| {
                    String::from_utf8(b).map_err(|_| "the file is not UTF-8 text".to_string())
                }),
            other => Err(format!(
                "GitHub sent the file as {}, not base64",
                other.unwrap_or("nothing")
            )),
        }
        .and_then(|t| {
            if t.len() > MAX_SETTINGS_BYTES {
                Err(format!(
                    "the file is {} bytes; at most {MAX_SETTINGS_BYTES} are read",
                    t.len()
                ))
            } else {
                Ok(t)
            }
        })
    };
    let (status, parsed, errors, text) = match text {
        Err(message) => ("unreadable", None, whole_file(message), None),
        Ok(t) => match settings::parse(&t, &state.triage) {
            Ok(s) => ("valid", Some(s), Vec::new(), Some(t)),
            Err(p) => ("invalid", None, p, Some(t)),
        },
    };
    if status != "valid" {
        tracing::warn!(repo = %format!("{}/{}", repo.owner, repo.name), status, problems = errors.len(), "repository settings not used; the appliance's defaults apply");
    }
    stored::save_settings(
        &state.pool,
        repo.repo_id,
        &SettingsRead {
            status,
            git_ref: Some(git_ref),
            blob_sha: Some(&contents.sha),
            text: text.as_deref(),
            settings: parsed.as_ref(),
            errors: &errors,
        },
    )
    .await?;
    state.cache.bump().await;
    Ok(status.to_string())
}
