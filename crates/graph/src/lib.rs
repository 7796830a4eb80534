//! Microsoft Graph and identity platform client for revokd.
//!
//! Owns everything that speaks HTTP to Microsoft: credentials and the token cache, typed
//! models of the risk and sign-in feeds, paging, errors with their retry classification, the
//! quota classes and the per-tenant limiter, and the one constructor of HTTP clients
//! ([`http_client`]) the whole workspace uses.
//!
//! It must NOT know rules, SQL, config files or the CLI: it takes typed endpoints, credentials
//! and limits, and returns typed records, call metadata and errors. It never logs or formats a
//! secret or token, and never sends a token anywhere but the configured Graph origin.
//!
//! # Layout
//!
//! - [`auth`]: [`auth::Secret`], [`auth::Credential`] and the token cache.
//! - [`client`]: [`client::GraphClient`], feeds, list queries, containment calls, [`client::CallMeta`].
//! - [`error`]: [`error::GraphError`] and [`error::RetryHint`].
//! - [`models`]: wire types (entities, open enums, pages, token and error bodies).
//! - [`quota`]: quota classes, published limits, [`quota::TenantLimiter`].
//! - [`retry`]: [`retry::RetryPolicy`] and its backoff delays.

pub mod auth;
pub mod client;
pub mod error;
pub mod models;
pub mod quota;
pub mod retry;

use std::time::Duration;

pub use error::GraphError;

/// Connecting gives up after this long, or after the whole request timeout if that is shorter.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds an HTTP client the way every part of revokd must: rustls with the ring provider,
/// the given overall timeout, no redirects (a redirect could carry a bearer token to another
/// host), and revokd's user agent.
///
/// # Errors
///
/// [`GraphError::Config`] when the TLS backend cannot be set up.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, GraphError> {
    // reqwest is built without a default crypto provider; installing it twice is harmless,
    // and the "already installed" answer is expected after the first client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(CONNECT_TIMEOUT))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("revokd/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| GraphError::Config(format!("cannot build the HTTP client: {e}")))
}
