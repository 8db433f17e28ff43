//! Per-repository settings as last read from `.github/clawtriage.toml`, and the engine
//! configuration they make: [`effective_triage_config`] is what the analysis path calls.

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::StoreResult;
use crate::triage::TriageConfig;
use crate::workflow::settings::{self, RepoSettings, SettingsProblem};

/// What reading the file found.
#[derive(Debug, Clone)]
pub struct SettingsRead<'a> {
    /// absent | valid | invalid | unreadable.
    pub status: &'a str,
    /// Branch read.
    pub git_ref: Option<&'a str>,
    /// Blob sha of the file.
    pub blob_sha: Option<&'a str>,
    /// The file's text (bounded by the reader).
    pub text: Option<&'a str>,
    /// The validated settings (valid only).
    pub settings: Option<&'a RepoSettings>,
    /// Problems with line numbers (invalid, unreadable).
    pub errors: &'a [SettingsProblem],
}

/// The stored state of a repository's file.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredSettings {
    /// absent | valid | invalid | unreadable.
    pub status: String,
    /// Branch read.
    pub git_ref: Option<String>,
    /// Blob sha of the file read.
    pub blob_sha: Option<String>,
    /// The file's text.
    pub text: Option<String>,
    /// Problems with line numbers.
    pub errors: Vec<SettingsProblem>,
    /// When GitHub was last asked.
    pub fetched_at: DateTime<Utc>,
    /// When what was read last changed.
    pub changed_at: DateTime<Utc>,
    /// Validated settings (valid only).
    #[serde(skip)]
    pub settings: Option<RepoSettings>,
}

/// Stores what a read found. `changed_at` moves only when the status or the text changed.
pub async fn save_settings(pool: &Pool, repo_id: i64, r: &SettingsRead<'_>) -> StoreResult<()> {
    let c = pool.get().await?;
    let settings = r
        .settings
        .map(serde_json::to_value)
        .transpose()
        .ok()
        .flatten();
    let errors = serde_json::to_value(r.errors).unwrap_or(serde_json::Value::Null);
    c.execute(
        "INSERT INTO repo_settings (repo_id, status, git_ref, blob_sha, text, settings, errors)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (repo_id) DO UPDATE SET
             changed_at = CASE WHEN repo_settings.status IS DISTINCT FROM EXCLUDED.status
                                 OR repo_settings.text IS DISTINCT FROM EXCLUDED.text
                               THEN now() ELSE repo_settings.changed_at END,
             status = EXCLUDED.status, git_ref = EXCLUDED.git_ref, blob_sha = EXCLUDED.blob_sha,
             text = EXCLUDED.text, settings = EXCLUDED.settings, errors = EXCLUDED.errors,
             fetched_at = now()",
        &[
            &repo_id,
            &r.status,
            &r.git_ref,
            &r.blob_sha,
            &r.text,
            &settings,
            &errors,
        ],
    )
    .await?;
    Ok(())
}

/// Marks the stored read as current without changing it (GitHub answered 304).
pub async fn touch_settings(pool: &Pool, repo_id: i64) -> StoreResult<()> {
    let c = pool.get().await?;
    c.execute(
        "UPDATE repo_settings SET fetched_at = now() WHERE repo_id = $1",
        &[&repo_id],
    )
    .await?;
    Ok(())
}

/// The stored read, if the file was ever read.
pub async fn load_settings(pool: &Pool, repo_id: i64) -> StoreResult<Option<StoredSettings>> {
    load_settings_on(&pool.get().await?, repo_id).await
}

/// [`load_settings`] on a connection or transaction the caller holds.
pub async fn load_settings_on(
    c: &impl GenericClient,
    repo_id: i64,
) -> StoreResult<Option<StoredSettings>> {
    let row = c
        .query_opt(
            "SELECT status, git_ref, blob_sha, text, errors, fetched_at, changed_at, settings
             FROM repo_settings WHERE repo_id = $1",
            &[&repo_id],
        )
        .await?;
    Ok(row.map(|r| {
        let errors: serde_json::Value = r.get(4);
        let stored: Option<serde_json::Value> = r.get(7);
        StoredSettings {
            status: r.get(0),
            git_ref: r.get(1),
            blob_sha: r.get(2),
            text: r.get(3),
            errors: serde_json::from_value(errors).unwrap_or_default(),
            fetched_at: r.get(5),
            changed_at: r.get(6),
            settings: stored.and_then(|v| serde_json::from_value(v).ok()),
        }
    }))
}

/// The settings in force for a repository: the file's when it was valid, else the appliance's
/// defaults (a missing, unreadable or invalid file changes nothing and turns nothing on).
pub async fn repo_settings(pool: &Pool, repo_id: i64) -> StoreResult<RepoSettings> {
    repo_settings_on(&pool.get().await?, repo_id).await
}

/// [`repo_settings`] on a connection or transaction the caller holds (only the settings column
/// of a valid file is read: this runs for every analysis job).
pub async fn repo_settings_on(c: &impl GenericClient, repo_id: i64) -> StoreResult<RepoSettings> {
    let row = c
        .query_opt(
            "SELECT settings FROM repo_settings WHERE repo_id = $1 AND status = 'valid'",
            &[&repo_id],
        )
        .await?;
    let stored: Option<serde_json::Value> = row.and_then(|r| r.get(0));
    Ok(stored
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default())
}

impl StoredSettings {
    /// The settings in force by this read of the file: its own when it was valid, else the
    /// defaults (what [`repo_settings`] returns).
    pub fn in_force(&self) -> RepoSettings {
        match (&self.settings, self.status.as_str()) {
            (Some(s), "valid") => s.clone(),
            _ => RepoSettings::default(),
        }
    }
}

/// The engine configuration of a repository and its version.
#[derive(Debug, Clone)]
pub struct EffectiveTriage {
    /// The configuration to analyse with; its `config_version` is [`Self::config_version`].
    pub config: TriageConfig,
    /// The version derived rows must carry: the appliance's own when the repository changes
    /// nothing, else one registered for exactly this configuration.
    pub config_version: i32,
    /// True when the repository's file changed something.
    pub overridden: bool,
}

/// The engine configuration of `repo_id`: `base` (the appliance's, from `TRIAGE_CONFIG` or the
/// built-in) with the repository's valid `[triage]` overrides merged over it. The same
/// configuration always gets the same `config_version` (registered in `triage_configs`), so a
/// head analysed twice with unchanged settings is not analysed again, and a change of settings
/// makes old rows visibly stale. Cost: one or two indexed queries.
pub async fn effective_triage_config(
    pool: &Pool,
    repo_id: i64,
    base: &TriageConfig,
) -> StoreResult<EffectiveTriage> {
    effective_triage_config_on(&pool.get().await?, repo_id, base).await
}

/// [`effective_triage_config`] on a connection or transaction the caller holds (a handler that
/// holds one must not wait for a second from the pool).
pub async fn effective_triage_config_on(
    c: &impl GenericClient,
    repo_id: i64,
    base: &TriageConfig,
) -> StoreResult<EffectiveTriage> {
    let s = repo_settings_on(c, repo_id).await?;
    effective_triage_of(c, repo_id, &s, base).await
}

/// [`effective_triage_config_on`] for settings the caller read already.
pub async fn effective_triage_of(
    c: &impl GenericClient,
    repo_id: i64,
    s: &RepoSettings,
    base: &TriageConfig,
) -> StoreResult<EffectiveTriage> {
    if s.triage.is_empty() {
        return Ok(EffectiveTriage {
            config: base.clone(),
            config_version: base.config_version,
            overridden: false,
        });
    }
    let mut cfg = match settings::apply_json_overrides(base, &s.triage) {
        Ok(c) => c,
        Err(e) => {
            // Valid when read, invalid against today's appliance configuration: the appliance's
            // configuration applies until the file is fixed or read again.
            tracing::warn!(repo_id, error = %e, "repository engine settings no longer apply; using the appliance's");
            return Ok(EffectiveTriage {
                config: base.clone(),
                config_version: base.config_version,
                overridden: false,
            });
        }
    };
    let json = serde_json::to_value(&cfg).unwrap_or(serde_json::Value::Null);
    let digest = hex::encode(Sha256::digest(json.to_string().as_bytes()));
    let version = register_config(c, &digest, &json).await?;
    cfg.config_version = version;
    Ok(EffectiveTriage {
        config: cfg,
        config_version: version,
        overridden: true,
    })
}

/// The version registered for a configuration digest, registering it the first time.
async fn register_config(
    c: &impl GenericClient,
    digest: &str,
    config: &serde_json::Value,
) -> StoreResult<i32> {
    if let Some(r) = c
        .query_opt(
            "SELECT config_version FROM triage_configs WHERE digest = $1",
            &[&digest],
        )
        .await?
    {
        return Ok(r.get(0));
    }
    c.execute(
        "INSERT INTO triage_configs (digest, config) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING",
        &[&digest, config],
    )
    .await?;
    let r = c
        .query_one(
            "SELECT config_version FROM triage_configs WHERE digest = $1",
            &[&digest],
        )
        .await?;
    Ok(r.get(0))
}
