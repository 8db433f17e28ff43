//! GitHub App authentication: the App's RS256 JWT and per-installation access tokens, cached
//! until shortly before they expire. Requests about an installed repository pick its
//! installation token automatically (see [`GithubClient::installation_token_for_url`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{CallStats, ClientMemory, GithubClient, GithubError};

/// The JWT's `iat` lies this far in the past (clock skew between us and GitHub).
pub const JWT_BACKDATE_SECS: i64 = 60;
/// The JWT's lifetime from now (GitHub refuses more than 10 minutes).
pub const JWT_LIFETIME_SECS: i64 = 9 * 60;
/// A cached installation token is replaced this long before it expires.
pub const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Claims of the App JWT.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Issued at (unix seconds, backdated for clock skew).
    pub iat: i64,
    /// Expires at (unix seconds).
    pub exp: i64,
    /// The numeric App id (what GitHub Enterprise Server accepts too).
    pub iss: String,
}

#[derive(Clone)]
struct CachedToken {
    token: SecretString,
    expires_at: DateTime<Utc>,
}

type Slot = Arc<tokio::sync::Mutex<Option<CachedToken>>>;

/// The App's credentials and its installation-token cache.
pub struct AppAuth {
    app_id: u64,
    key: EncodingKey,
    /// Where repositories' installations are recorded (None: never use installation tokens
    /// implicitly).
    memory: Option<Arc<dyn ClientMemory>>,
    /// One slot per installation; its lock makes concurrent callers share one refresh.
    tokens: Mutex<HashMap<i64, Slot>>,
    refresh_margin: Duration,
}

impl std::fmt::Debug for AppAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppAuth")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

/// The response of `POST /app/installations/{id}/access_tokens`.
#[derive(Deserialize)]
struct AccessToken {
    token: String,
    expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl AppAuth {
    /// Reads the PEM key (literal `\n` sequences, as env files often carry them, are accepted).
    pub fn new(
        app_id: u64,
        pem: &SecretString,
        memory: Option<Arc<dyn ClientMemory>>,
    ) -> Result<Self, String> {
        let pem = pem.expose_secret().replace("\\n", "\n");
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| {
            "GITHUB_PRIVATE_KEY_PEM: not an RSA private key in PEM form".to_string()
        })?;
        Ok(AppAuth {
            app_id,
            key,
            memory,
            tokens: Mutex::new(HashMap::new()),
            refresh_margin: TOKEN_REFRESH_MARGIN,
        })
    }

    /// The App id.
    pub fn app_id(&self) -> u64 {
        self.app_id
    }

    /// The claims of a JWT made at `now` (unix seconds).
    pub fn claims_at(&self, now: i64) -> Claims {
        Claims {
            iat: now - JWT_BACKDATE_SECS,
            exp: now + JWT_LIFETIME_SECS,
            iss: self.app_id.to_string(),
        }
    }

    /// A signed App JWT made at `now` (unix seconds).
    pub fn jwt_at(&self, now: i64) -> Result<SecretString, GithubError> {
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &self.claims_at(now),
            &self.key,
        )
        .map_err(|e| GithubError::Auth(format!("signing the App JWT failed: {e}")))?;
        Ok(SecretString::from(token))
    }

    /// A signed App JWT made now.
    pub fn jwt(&self) -> Result<SecretString, GithubError> {
        self.jwt_at(Utc::now().timestamp())
    }

    fn slot(&self, installation_id: i64) -> Slot {
        let mut map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(installation_id).or_default().clone()
    }

    fn forget(&self, installation_id: i64) {
        let mut map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&installation_id);
    }
}

/// The `owner` and `repo` of an API URL under `/repos/{owner}/{repo}`.
fn repo_of_url<'a>(api_url: &str, url: &'a str) -> Option<(&'a str, &'a str)> {
    let rest = url.strip_prefix(api_url)?;
    let rest = rest.split(['?', '#']).next()?;
    let rest = rest.strip_prefix("/repos/")?;
    let mut parts = rest.split('/');
    let owner = parts.next().filter(|s| !s.is_empty())?;
    let repo = parts.next().filter(|s| !s.is_empty())?;
    Some((owner, repo))
}

impl GithubClient {
    /// Adds GitHub App credentials: installation tokens are fetched with the App JWT and used
    /// for requests about installed repositories.
    pub fn with_app(mut self, app: AppAuth) -> Self {
        self.app = Some(Arc::new(app));
        self
    }

    /// The App credentials, in app and hybrid modes.
    pub fn app(&self) -> Option<&AppAuth> {
        self.app.as_deref()
    }

    /// An installation access token, from the cache while it has more than the refresh margin
    /// left, else fetched anew with the App JWT.
    pub async fn installation_token(
        &self,
        installation_id: i64,
    ) -> Result<SecretString, GithubError> {
        let app = self
            .app
            .as_ref()
            .ok_or_else(|| GithubError::Auth("the GitHub App is not configured".into()))?;
        let slot = app.slot(installation_id);
        let mut guard = slot.lock().await;
        if let Some(c) = guard.as_ref() {
            let left = (c.expires_at - Utc::now()).to_std().unwrap_or_default();
            if left > app.refresh_margin {
                return Ok(c.token.clone());
            }
        }
        let jwt = app.jwt()?;
        let stats = CallStats::new();
        let page = self
            .post_json(
                &format!("/app/installations/{installation_id}/access_tokens"),
                &serde_json::json!({}),
                Some(&jwt),
                &stats,
            )
            .await?;
        let t: AccessToken = Self::decode(&page)?;
        tracing::info!(installation_id, expires_at = %t.expires_at, "installation token issued");
        let token = SecretString::from(t.token);
        *guard = Some(CachedToken {
            token: token.clone(),
            expires_at: t.expires_at,
        });
        Ok(token)
    }

    /// Drops a cached installation token (revoked, or the installation was removed).
    pub fn forget_installation_token(&self, installation_id: i64) {
        if let Some(app) = &self.app {
            app.forget(installation_id);
        }
    }

    /// The installation and its token for a request URL about an installed, active repository
    /// (None outside app mode, for other URLs and for repositories without an installation).
    /// How requests about `owner/repo` authenticate: `installation` (an App installation token),
    /// `token` (GITHUB_TOKEN) or `anonymous` (60 requests per hour).
    pub async fn auth_kind(&self, owner: &str, repo: &str) -> &'static str {
        if let Some(memory) = self.app.as_ref().and_then(|a| a.memory.as_ref())
            && let Ok(Some(_)) = memory.installation_of(owner, repo).await
        {
            return "installation";
        }
        if self.has_token() {
            "token"
        } else {
            "anonymous"
        }
    }

    pub(crate) async fn installation_token_for_url(
        &self,
        url: &str,
    ) -> Result<Option<(i64, SecretString)>, GithubError> {
        let Some(app) = &self.app else {
            return Ok(None);
        };
        let Some(memory) = &app.memory else {
            return Ok(None);
        };
        let Some((owner, repo)) = repo_of_url(&self.api_url, url) else {
            return Ok(None);
        };
        let installation = memory
            .installation_of(owner, repo)
            .await
            .map_err(|e| GithubError::Cache(format!("installation lookup: {e}")))?;
        match installation {
            Some(id) => Ok(Some((id, self.installation_token(id).await?))),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installation_tokens_stay_out_of_debug_output() {
        let t: AccessToken = serde_json::from_str(
            r#"{"token":"ghs_topsecret","expires_at":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        let d = format!("{t:?}");
        assert!(!d.contains("ghs_topsecret"), "{d}");
        let cached = CachedToken {
            token: SecretString::from(t.token),
            expires_at: t.expires_at,
        };
        let d = format!("{:?}", cached.token);
        assert!(!d.contains("ghs_topsecret"), "{d}");
    }

    #[test]
    fn repo_urls_are_recognised() {
        let base = "https://api.github.com";
        assert_eq!(
            repo_of_url(base, "https://api.github.com/repos/o/r/pulls?state=open"),
            Some(("o", "r"))
        );
        assert_eq!(
            repo_of_url(base, "https://api.github.com/repos/o/r"),
            Some(("o", "r"))
        );
        assert_eq!(
            repo_of_url(
                base,
                "https://api.github.com/app/installations/1/access_tokens"
            ),
            None
        );
        assert_eq!(
            repo_of_url(base, "https://elsewhere.example/repos/o/r"),
            None
        );
    }
}
