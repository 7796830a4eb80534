//! Credentials and the access-token cache (OAuth2 client-credentials grant).
//!
//! Secrets stay inside [`Secret`], whose `Debug` and `Display` print `***`, so neither a
//! client secret nor an access token can reach a log line through formatting. The cache asks
//! the identity platform for a token only when it has none or the one it has is close to
//! expiry, and lets only one task at a time do so.

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::debug;
use url::Url;

use crate::error::GraphError;
use crate::models::{TokenErrorResponse, TokenResponse};

/// A value that must never be printed: client secrets and access tokens.
///
/// Serde sees the plain string (config files deserialise into it; the simulator serialises
/// tokens with it), but formatting shows `***`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How revokd proves its identity to the identity platform. An enum because certificate and
/// managed-identity credentials are to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An app registration's client secret.
    ClientSecret {
        /// The application (client) id.
        client_id: String,
        /// The client secret (redacted in `Debug`).
        client_secret: Secret,
    },
}

impl Credential {
    /// The application (client) id, for logs and errors.
    pub fn client_id(&self) -> &str {
        match self {
            Self::ClientSecret { client_id, .. } => client_id,
        }
    }

    /// The grant-specific form fields of a token request.
    fn form_fields(&self) -> [(&'static str, &str); 3] {
        match self {
            Self::ClientSecret {
                client_id,
                client_secret,
            } => [
                ("client_id", client_id),
                ("client_secret", client_secret.expose()),
                ("grant_type", "client_credentials"),
            ],
        }
    }
}

/// Renew when less than this much of a token's life remains, or 10% of it if that is more.
const MIN_RENEW_MARGIN: Duration = Duration::from_secs(60);
/// Lifetimes above a day are treated as a day, so an absurd `expires_in` cannot overflow.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// When a token of this lifetime, requested at `requested_at`, should be renewed.
fn renew_at(requested_at: Instant, expires_in: u64) -> Instant {
    let lifetime = Duration::from_secs(expires_in).min(MAX_LIFETIME);
    let margin = MIN_RENEW_MARGIN.max(lifetime / 10);
    requested_at + lifetime.saturating_sub(margin)
}

#[derive(Clone)]
struct CachedToken {
    access_token: Secret,
    renew_at: Instant,
}

/// Where and how to ask for tokens, plus the cached token.
pub(crate) struct TokenCache {
    http: reqwest::Client,
    tenant_id: String,
    token_url: Url,
    scope: String,
    credential: Credential,
    current: Mutex<Option<CachedToken>>,
    /// Held while a token request is in flight, so concurrent callers wait for it.
    refresh: tokio::sync::Mutex<()>,
}

impl TokenCache {
    pub(crate) fn new(
        http: reqwest::Client,
        tenant_id: String,
        token_url: Url,
        scope: String,
        credential: Credential,
    ) -> Self {
        Self {
            http,
            tenant_id,
            token_url,
            scope,
            credential,
            current: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// A token valid for a while yet: the cached one, or a fresh one.
    pub(crate) async fn bearer(&self) -> Result<Secret, GraphError> {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let _single_flight = self.refresh.lock().await;
        // Whoever held the lock before us may have just renewed it.
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let requested_at = Instant::now();
        let response = self.request().await?;
        let token = response.access_token;
        *self.current() = Some(CachedToken {
            access_token: token.clone(),
            renew_at: renew_at(requested_at, response.expires_in),
        });
        Ok(token)
    }

    /// Drops the cached token (after a 401), so the next call requests a new one.
    pub(crate) fn invalidate(&self) {
        *self.current() = None;
    }

    fn fresh(&self) -> Option<Secret> {
        self.current()
            .as_ref()
            .filter(|cached| Instant::now() < cached.renew_at)
            .map(|cached| cached.access_token.clone())
    }

    fn current(&self) -> MutexGuard<'_, Option<CachedToken>> {
        // The guarded value is replaced whole, so a panic elsewhere cannot leave it half-written.
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn endpoint(&self) -> String {
        format!("POST /{}/oauth2/v2.0/token", self.tenant_id)
    }

    async fn request(&self) -> Result<TokenResponse, GraphError> {
        let client_request_id = uuid::Uuid::new_v4().to_string();
        debug!(
            tenant = %self.tenant_id,
            client_id = self.credential.client_id(),
            "requesting an access token"
        );
        let mut form = self.credential.form_fields().to_vec();
        form.push(("scope", &self.scope));
        let transport = |source: reqwest::Error| GraphError::Transport {
            endpoint: self.endpoint(),
            client_request_id: client_request_id.clone(),
            timeout: source.is_timeout(),
            source,
        };
        let response = self
            .http
            .post(self.token_url.clone())
            .header("client-request-id", &client_request_id)
            .header("return-client-request-id", "true")
            .form(&form)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport)?;
        if (200..300).contains(&status) {
            self.parse_success(status, &body)
        } else {
            Err(self.refusal(status, &body))
        }
    }

    fn parse_success(&self, status: u16, body: &[u8]) -> Result<TokenResponse, GraphError> {
        // serde_json can quote input in its messages, and this body holds a token: report
        // only where parsing stopped.
        serde_json::from_slice(body).map_err(|e| GraphError::Auth {
            tenant_id: self.tenant_id.clone(),
            status: Some(status),
            error: "invalid_token_response".to_string(),
            description: format!(
                "the token endpoint's answer is not a token response (line {}, column {})",
                e.line(),
                e.column()
            ),
            trace_id: None,
            correlation_id: None,
        })
    }

    fn refusal(&self, status: u16, body: &[u8]) -> GraphError {
        match serde_json::from_slice::<TokenErrorResponse>(body) {
            Ok(refusal) => GraphError::Auth {
                tenant_id: self.tenant_id.clone(),
                status: Some(status),
                description: refusal
                    .error_description
                    .as_deref()
                    .and_then(|d| d.lines().next())
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
                error: refusal.error,
                trace_id: refusal.trace_id,
                correlation_id: refusal.correlation_id,
            },
            Err(_) => GraphError::Auth {
                tenant_id: self.tenant_id.clone(),
                status: Some(status),
                error: "unexpected_response".to_string(),
                description: "the token endpoint's answer is not an OAuth error body".to_string(),
                trace_id: None,
                correlation_id: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_format() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(secret.expose(), "hunter2");
        let credential = Credential::ClientSecret {
            client_id: "app".into(),
            client_secret: secret,
        };
        let debug = format!("{credential:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("app"), "{debug}");
    }

    #[test]
    fn secrets_deserialise_from_plain_strings() {
        let secret: Secret = serde_json::from_str("\"s3cr3t\"").expect("a string");
        assert_eq!(secret.expose(), "s3cr3t");
        assert_eq!(
            serde_json::to_string(&secret).expect("serialises"),
            "\"s3cr3t\""
        );
    }

    #[test]
    fn renewal_keeps_a_margin_of_a_minute_or_a_tenth() {
        let t0 = Instant::now();
        // One hour: 10% (6 min) is more than a minute.
        assert_eq!(renew_at(t0, 3600) - t0, Duration::from_secs(3240));
        // Five minutes: a minute is more than 10%.
        assert_eq!(renew_at(t0, 300) - t0, Duration::from_secs(240));
        // Shorter than the margin: renew on every use.
        assert_eq!(renew_at(t0, 30), t0);
        // Absurd lifetimes are capped instead of overflowing.
        assert!(renew_at(t0, u64::MAX) - t0 <= MAX_LIFETIME);
    }
}
