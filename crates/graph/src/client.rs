//! The Graph client: one per tenant, cheap to clone, shared by pollers and the executor.
//!
//! Every request takes a bearer token from the cache, waits for its quota class in the
//! tenant's limiter, carries a fresh `client-request-id`, and comes back as a [`CallMeta`]
//! (what the audit records) or a [`GraphError`]. Paging retries internally; containment calls
//! are single attempts because the executor audits each attempt before and after it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::{Instrument, debug, debug_span, warn};
use url::Url;

use crate::auth::{Credential, TokenCache};
use crate::error::{GraphError, RetryHint};
use crate::models::{DirectoryObject, GraphErrorBody, Page, User, UserIdsRequest};
use crate::quota::{QuotaClass, QuotaLimits, TenantLimiter};
use crate::retry::RetryPolicy;

/// `riskyUsers/dismiss` takes at most this many ids per call.
pub const DISMISS_MAX_USER_IDS: usize = 60;

/// Where one tenant's tokens and Graph calls go; national clouds change both hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphEndpoints {
    /// The directory (tenant) id or a verified domain.
    pub tenant_id: String,
    /// Identity platform root, e.g. `https://login.microsoftonline.com`.
    pub authority_url: Url,
    /// Graph root, e.g. `https://graph.microsoft.com`. Next links must share its origin.
    pub graph_url: Url,
}

/// The feeds revokd polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feed {
    /// `/identityProtection/riskyUsers`.
    RiskyUsers,
    /// `/identityProtection/riskDetections`.
    RiskDetections,
    /// `/auditLogs/signIns`.
    SignIns,
    /// `/beta/auditLogs/signIns`: the only place non-interactive sign-ins are listed.
    BetaSignIns,
}

impl Feed {
    /// Every feed.
    pub const ALL: [Self; 4] = [
        Self::RiskyUsers,
        Self::RiskDetections,
        Self::SignIns,
        Self::BetaSignIns,
    ];

    /// The API version the feed is read from.
    pub fn version(self) -> &'static str {
        match self {
            Self::BetaSignIns => "beta",
            _ => "v1.0",
        }
    }

    /// The path below the version.
    pub fn path(self) -> &'static str {
        match self {
            Self::RiskyUsers => "identityProtection/riskyUsers",
            Self::RiskDetections => "identityProtection/riskDetections",
            Self::SignIns | Self::BetaSignIns => "auditLogs/signIns",
        }
    }

    /// The endpoint as audited and logged.
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::RiskyUsers => "GET /v1.0/identityProtection/riskyUsers",
            Self::RiskDetections => "GET /v1.0/identityProtection/riskDetections",
            Self::SignIns => "GET /v1.0/auditLogs/signIns",
            Self::BetaSignIns => "GET /beta/auditLogs/signIns",
        }
    }

    /// The quota the feed draws on.
    pub fn quota_class(self) -> QuotaClass {
        match self {
            Self::RiskyUsers | Self::RiskDetections => QuotaClass::IdentityProtection,
            Self::SignIns | Self::BetaSignIns => QuotaClass::Reports,
        }
    }

    fn index(self) -> usize {
        match self {
            Self::RiskyUsers => 0,
            Self::RiskDetections => 1,
            Self::SignIns => 2,
            Self::BetaSignIns => 3,
        }
    }
}

/// OData options of a first-page request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// `$filter`, e.g. `riskLastUpdatedDateTime ge 2024-05-01T00:00:00Z`.
    pub filter: Option<String>,
    /// `$top`: page size (riskyUsers and riskDetections allow 500, signIns 1000).
    pub top: Option<u32>,
    /// `$select`: properties to return; empty means Graph's default set.
    pub select: Vec<String>,
}

/// What the audit records about one HTTP exchange that Graph answered with success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallMeta {
    /// The endpoint template, e.g. `POST /v1.0/users/{id}/revokeSignInSessions`.
    pub endpoint: String,
    /// The full URL requested.
    pub url: String,
    /// The HTTP status.
    pub status: u16,
    /// Graph's id for the request, from the `request-id` header.
    pub request_id: Option<String>,
    /// The id revokd sent.
    pub client_request_id: String,
    /// When the request was sent (after the limiter let it go).
    pub started_at: DateTime<Utc>,
    /// Time from sending to the end of the response body.
    pub latency: Duration,
}

/// A Graph client for one tenant. Clones share the token cache and the limiter.
#[derive(Clone)]
pub struct GraphClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    endpoints: GraphEndpoints,
    tokens: TokenCache,
    limiter: Arc<TenantLimiter>,
    /// The limits the limiter enforces, for callers that estimate durations from them.
    limits: QuotaLimits,
    retry: RetryPolicy,
    /// First-page URLs without query, indexed by [`Feed::index`].
    feed_urls: [Url; 4],
    /// `{graph}/v1.0/users`.
    users_url: Url,
    /// `{graph}/v1.0/identityProtection/riskyUsers`, the base of confirm and dismiss.
    risky_users_url: Url,
}

/// One request as the client sends it.
struct Request<'a> {
    method: Method,
    endpoint: &'static str,
    url: Url,
    class: QuotaClass,
    json_body: Option<Vec<u8>>,
    client_request_id: &'a str,
}

impl GraphClient {
    /// Builds a client (no network traffic until the first call).
    ///
    /// # Errors
    ///
    /// [`GraphError::Config`] when a URL is not an absolute http(s) URL without query, the
    /// tenant id is empty, a quota is zero, the timeout is zero, or the HTTP client cannot be
    /// built.
    pub fn new(
        endpoints: GraphEndpoints,
        credential: Credential,
        limits: &QuotaLimits,
        retry: RetryPolicy,
        timeout: Duration,
    ) -> Result<Self, GraphError> {
        check_root("authority_url", &endpoints.authority_url)?;
        check_root("graph_url", &endpoints.graph_url)?;
        if endpoints.tenant_id.trim().is_empty() {
            return Err(GraphError::Config("tenant_id is empty".to_string()));
        }
        if timeout.is_zero() {
            return Err(GraphError::Config(
                "the request timeout must be greater than zero".to_string(),
            ));
        }
        limits.validate()?;
        let http = crate::http_client(timeout)?;
        let graph = &endpoints.graph_url;
        let token_url = join(
            &endpoints.authority_url,
            [endpoints.tenant_id.as_str(), "oauth2", "v2.0", "token"],
        )?;
        let scope = format!("{}/.default", graph.as_str().trim_end_matches('/'));
        let [risky_users, risk_detections, sign_ins, beta_sign_ins] = Feed::ALL.map(|feed| {
            join(
                graph,
                [feed.version()].into_iter().chain(feed.path().split('/')),
            )
        });
        let tokens = TokenCache::new(
            http.clone(),
            endpoints.tenant_id.clone(),
            token_url,
            scope,
            credential,
        );
        let feed_urls = [risky_users?, risk_detections?, sign_ins?, beta_sign_ins?];
        let inner = Inner {
            users_url: join(graph, ["v1.0", "users"])?,
            risky_users_url: feed_urls[Feed::RiskyUsers.index()].clone(),
            feed_urls,
            http,
            endpoints,
            tokens,
            limiter: Arc::new(TenantLimiter::new(limits)),
            limits: limits.clone(),
            retry,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The tenant this client acts on.
    pub fn tenant_id(&self) -> &str {
        &self.inner.endpoints.tenant_id
    }

    /// The limit the tenant's limiter enforces for `class`.
    pub fn quota_limit(&self, class: QuotaClass) -> crate::quota::QuotaLimit {
        self.inner.limits.get(class)
    }

    /// The retry policy, for callers that run their own attempt loop.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// Drops the cached token, so the next call requests a new one (the 401 path).
    pub fn invalidate_token(&self) {
        self.inner.tokens.invalidate();
    }

    /// The first-page URL of a feed: `{graph}/v1.0/{path}?$filter=..&$top=..&$select=..`.
    pub fn list_url(&self, feed: Feed, query: &ListQuery) -> Url {
        let mut url = self.inner.feed_urls[feed.index()].clone();
        let mut pairs = Vec::new();
        if let Some(filter) = &query.filter {
            pairs.push(("$filter", filter.clone()));
        }
        if let Some(top) = query.top {
            pairs.push(("$top", top.to_string()));
        }
        if !query.select.is_empty() {
            pairs.push(("$select", query.select.join(",")));
        }
        if !pairs.is_empty() {
            url.set_query(Some(&encode_query(&pairs)));
        }
        url
    }

    /// Fetches one page, retrying per the policy: the limiter before every attempt,
    /// `Retry-After` honoured, backoff otherwise, one token renewal on 401.
    ///
    /// `url` is a [`Self::list_url`] or an `@odata.nextLink` used as received: never rebuilt
    /// or re-parameterised (the URL parser only percent-encodes characters that may not
    /// appear raw, such as `'` in a query).
    ///
    /// # Errors
    ///
    /// [`GraphError::ForeignNextLink`] when `url` is not on the configured Graph origin (the
    /// token is never sent elsewhere); otherwise the last attempt's error once retrying cannot
    /// help or attempts run out.
    pub async fn get_page<T: DeserializeOwned>(
        &self,
        feed: Feed,
        url: &str,
    ) -> Result<(Page<T>, CallMeta), GraphError> {
        let url = self.same_origin(url)?;
        self.get_with_retries(feed.endpoint(), feed.quota_class(), url)
            .await
    }

    /// The first-page URL of the tenant's user list: `{graph}/v1.0/users?$select=..&$top=..`
    /// (`$top` at most 999).
    pub fn list_users_url(&self, select: &[&str], top: u32) -> Url {
        let mut url = self.inner.users_url.clone();
        let mut pairs = vec![("$top", top.clamp(1, 999).to_string())];
        if !select.is_empty() {
            pairs.push(("$select", select.join(",")));
        }
        url.set_query(Some(&encode_query(&pairs)));
        url
    }

    /// Fetches one page of `GET /users` (a [`Self::list_users_url`] or a next link), retrying
    /// like [`Self::get_page`]; it draws on the directory_read quota.
    ///
    /// # Errors
    ///
    /// As [`Self::get_page`].
    pub async fn list_users_page(&self, url: &str) -> Result<(Page<User>, CallMeta), GraphError> {
        let url = self.same_origin(url)?;
        self.get_with_retries("GET /v1.0/users", QuotaClass::DirectoryRead, url)
            .await
    }

    /// The first-page URL of a user's transitive group memberships:
    /// `{graph}/v1.0/users/{id}/transitiveMemberOf?$select=id,displayName&$top=999`.
    ///
    /// # Errors
    ///
    /// [`GraphError::Config`] for an empty or path-like user.
    pub fn member_of_url(&self, user: &str) -> Result<Url, GraphError> {
        let mut url = self.user_url(user, Some("transitiveMemberOf"))?;
        url.set_query(Some(&encode_query(&[
            ("$select", "id,displayName".to_string()),
            ("$top", "999".to_string()),
        ])));
        Ok(url)
    }

    /// Fetches one page of `transitiveMemberOf` (a [`Self::member_of_url`] or a next link),
    /// retrying like [`Self::get_page`]; it draws on the directory_read quota.
    ///
    /// # Errors
    ///
    /// As [`Self::get_page`].
    pub async fn member_of_page(
        &self,
        url: &str,
    ) -> Result<(Page<DirectoryObject>, CallMeta), GraphError> {
        let url = self.same_origin(url)?;
        self.get_with_retries(
            "GET /v1.0/users/{id}/transitiveMemberOf",
            QuotaClass::DirectoryRead,
            url,
        )
        .await
    }

    /// Fetches one user's directory attributes (`$select` only what is asked), retrying like
    /// [`Self::get_page`]; it draws on the directory_read quota.
    ///
    /// # Errors
    ///
    /// As [`Self::get_page`]; a 404 (`Request_ResourceNotFound`) means no such user.
    pub async fn get_user(
        &self,
        user: &str,
        select: &[&str],
    ) -> Result<(User, CallMeta), GraphError> {
        let mut url = self.user_url(user, None)?;
        if !select.is_empty() {
            url.set_query(Some(&encode_query(&[("$select", select.join(","))])));
        }
        self.get_with_retries("GET /v1.0/users/{id}", QuotaClass::DirectoryRead, url)
            .await
    }

    /// One GET, retried per the policy: the limiter before every attempt, `Retry-After`
    /// honoured, backoff otherwise, one token renewal on 401.
    async fn get_with_retries<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        class: QuotaClass,
        url: Url,
    ) -> Result<(T, CallMeta), GraphError> {
        let mut backoff = self.inner.retry.backoff_delays();
        let mut renewed = false;
        let mut attempt = 1;
        loop {
            let client_request_id = uuid::Uuid::new_v4().to_string();
            let request = Request {
                method: Method::GET,
                endpoint,
                url: url.clone(),
                class,
                json_body: None,
                client_request_id: &client_request_id,
            };
            let error = match self.send_for(&request).await {
                Ok(answer) => return Ok(answer),
                Err(error) => error,
            };
            if attempt >= self.inner.retry.max_attempts {
                return Err(error);
            }
            let wait = match error.retry_hint() {
                RetryHint::After(wait) => wait,
                RetryHint::Backoff => match backoff.next() {
                    Some(wait) => wait,
                    None => return Err(error),
                },
                RetryHint::RenewToken if !renewed => {
                    renewed = true;
                    self.inner.tokens.invalidate();
                    Duration::ZERO
                }
                RetryHint::RenewToken | RetryHint::Fatal => return Err(error),
            };
            warn!(
                tenant = %self.tenant_id(),
                endpoint,
                attempt,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                error = %error,
                "graph call failed, retrying"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// `POST /users/{user}/revokeSignInSessions`, once. Any 2xx means Graph accepted it.
    /// `user` is an object id or a UPN (guest UPNs with `#EXT#` are percent-encoded).
    /// `client_request_id` is a GUID the caller has already audited.
    ///
    /// # Errors
    ///
    /// Any [`GraphError`]; see [`GraphError::retry_hint`] for what to do next.
    pub async fn revoke_sign_in_sessions_once(
        &self,
        user: &str,
        client_request_id: &str,
    ) -> Result<CallMeta, GraphError> {
        let request = Request {
            method: Method::POST,
            endpoint: "POST /v1.0/users/{id}/revokeSignInSessions",
            url: self.user_url(user, Some("revokeSignInSessions"))?,
            class: QuotaClass::DirectoryWrite,
            json_body: None,
            client_request_id: checked_request_id(client_request_id)?,
        };
        self.send(&request).await.map(|(_, meta)| meta)
    }

    /// `POST /identityProtection/riskyUsers/confirmCompromised` for these users, once.
    ///
    /// # Errors
    ///
    /// [`GraphError::Config`] for an empty list; otherwise any [`GraphError`].
    pub async fn confirm_compromised_once(
        &self,
        user_ids: &[String],
        client_request_id: &str,
    ) -> Result<CallMeta, GraphError> {
        self.risky_users_action(
            "confirmCompromised",
            "POST /v1.0/identityProtection/riskyUsers/confirmCompromised",
            user_ids,
            client_request_id,
        )
        .await
    }

    /// `POST /identityProtection/riskyUsers/dismiss` for at most
    /// [`DISMISS_MAX_USER_IDS`] users, once.
    ///
    /// # Errors
    ///
    /// [`GraphError::Config`] for an empty or too long list; otherwise any [`GraphError`].
    pub async fn dismiss_once(
        &self,
        user_ids: &[String],
        client_request_id: &str,
    ) -> Result<CallMeta, GraphError> {
        if user_ids.len() > DISMISS_MAX_USER_IDS {
            return Err(GraphError::Config(format!(
                "dismiss takes at most {DISMISS_MAX_USER_IDS} user ids per call, got {}",
                user_ids.len()
            )));
        }
        self.risky_users_action(
            "dismiss",
            "POST /v1.0/identityProtection/riskyUsers/dismiss",
            user_ids,
            client_request_id,
        )
        .await
    }

    /// `PATCH /users/{id}` with `{"accountEnabled": false}`, once.
    ///
    /// # Errors
    ///
    /// Any [`GraphError`].
    pub async fn disable_account_once(
        &self,
        user_id: &str,
        client_request_id: &str,
    ) -> Result<CallMeta, GraphError> {
        let request = Request {
            method: Method::PATCH,
            endpoint: "PATCH /v1.0/users/{id}",
            url: self.user_url(user_id, None)?,
            class: QuotaClass::DirectoryWrite,
            json_body: Some(br#"{"accountEnabled":false}"#.to_vec()),
            client_request_id: checked_request_id(client_request_id)?,
        };
        self.send(&request).await.map(|(_, meta)| meta)
    }

    /// `GET /users/{user}?$select=...`, once; an empty `select` returns Graph's default set.
    ///
    /// # Errors
    ///
    /// Any [`GraphError`]; a 404 (`Request_ResourceNotFound`) means no such user.
    pub async fn get_user_once(
        &self,
        user: &str,
        select: &[&str],
        client_request_id: &str,
    ) -> Result<(User, CallMeta), GraphError> {
        let mut url = self.user_url(user, None)?;
        if !select.is_empty() {
            url.set_query(Some(&encode_query(&[("$select", select.join(","))])));
        }
        let request = Request {
            method: Method::GET,
            endpoint: "GET /v1.0/users/{id}",
            url,
            class: QuotaClass::DirectoryRead,
            json_body: None,
            client_request_id: checked_request_id(client_request_id)?,
        };
        self.send_for(&request).await
    }

    async fn risky_users_action(
        &self,
        action: &str,
        endpoint: &'static str,
        user_ids: &[String],
        client_request_id: &str,
    ) -> Result<CallMeta, GraphError> {
        if user_ids.is_empty() {
            return Err(GraphError::Config(format!("{endpoint}: no user ids given")));
        }
        let body = UserIdsRequest {
            user_ids: user_ids.to_vec(),
        };
        let request = Request {
            method: Method::POST,
            endpoint,
            url: join(&self.inner.risky_users_url, [action])?,
            class: QuotaClass::IdentityProtection,
            json_body: Some(serde_json::to_vec(&body).map_err(|e| {
                GraphError::Config(format!("{endpoint}: cannot encode the body: {e}"))
            })?),
            client_request_id: checked_request_id(client_request_id)?,
        };
        self.send(&request).await.map(|(_, meta)| meta)
    }

    /// Sends and decodes a success body as `T`.
    async fn send_for<T: DeserializeOwned>(
        &self,
        request: &Request<'_>,
    ) -> Result<(T, CallMeta), GraphError> {
        let (body, meta) = self.send(request).await?;
        match serde_json::from_slice(&body) {
            Ok(value) => Ok((value, meta)),
            Err(source) => Err(GraphError::Decode {
                endpoint: meta.endpoint,
                status: meta.status,
                request_id: meta.request_id,
                client_request_id: meta.client_request_id,
                source,
            }),
        }
    }

    /// One HTTP exchange: token, limiter, request, and the answer or a typed error.
    async fn send(&self, request: &Request<'_>) -> Result<(Vec<u8>, CallMeta), GraphError> {
        let span = debug_span!(
            "graph_call",
            tenant = %self.tenant_id(),
            endpoint = request.endpoint,
            client_request_id = request.client_request_id,
        );
        async {
            let token = self.inner.tokens.bearer().await?;
            self.inner.limiter.acquire(request.class).await;
            let started_at = Utc::now();
            let clock = Instant::now();
            let transport = |source: reqwest::Error| GraphError::Transport {
                endpoint: request.endpoint.to_string(),
                client_request_id: request.client_request_id.to_string(),
                timeout: source.is_timeout(),
                source,
            };
            let mut builder = self
                .inner
                .http
                .request(request.method.clone(), request.url.clone())
                .bearer_auth(token.expose())
                .header("client-request-id", request.client_request_id)
                .header("return-client-request-id", "true")
                .header(ACCEPT, "application/json");
            builder = match (&request.json_body, &request.method) {
                (Some(json), _) => builder
                    .header(CONTENT_TYPE, "application/json")
                    .body(json.clone()),
                // Graph answers 411 to a POST without a Content-Length.
                (None, &Method::POST) => builder.header(CONTENT_LENGTH, "0"),
                (None, _) => builder,
            };
            let response = builder.send().await.map_err(transport)?;
            let status = response.status().as_u16();
            let request_id = header(response.headers(), "request-id");
            let retry_after = retry_after(response.headers(), Utc::now());
            let body = response.bytes().await.map_err(transport)?.to_vec();
            let latency = clock.elapsed();
            debug!(status, latency_ms = latency.as_millis(), "graph answered");
            if !(200..300).contains(&status) {
                if status == 429 {
                    // Graph throttles the app, not the call: hold the whole class.
                    let pause = retry_after.unwrap_or(self.inner.retry.base_delay);
                    self.inner.limiter.pause(request.class, pause);
                }
                return Err(http_error(request, status, request_id, retry_after, &body));
            }
            let meta = CallMeta {
                endpoint: request.endpoint.to_string(),
                url: request.url.to_string(),
                status,
                request_id,
                client_request_id: request.client_request_id.to_string(),
                started_at,
                latency,
            };
            Ok((body, meta))
        }
        .instrument(span)
        .await
    }

    /// Accepts a page URL only on the configured Graph origin (scheme, host and port).
    fn same_origin(&self, link: &str) -> Result<Url, GraphError> {
        let foreign = || GraphError::ForeignNextLink {
            link: link.to_string(),
        };
        let url = Url::parse(link).map_err(|_| foreign())?;
        if url.origin() == self.inner.endpoints.graph_url.origin() {
            Ok(url)
        } else {
            Err(foreign())
        }
    }

    /// `{graph}/v1.0/users/{user}[/{action}]` with `user` as one percent-encoded segment.
    fn user_url(&self, user: &str, action: Option<&str>) -> Result<Url, GraphError> {
        if matches!(user.trim(), "" | "." | "..") {
            return Err(GraphError::Config(format!(
                "{user:?} is not a user id or user principal name"
            )));
        }
        join(&self.inner.users_url, std::iter::once(user).chain(action))
    }
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("endpoints", &self.inner.endpoints)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// Requires an absolute http(s) URL with a host and no query or fragment.
fn check_root(name: &str, url: &Url) -> Result<(), GraphError> {
    let usable = matches!(url.scheme(), "http" | "https")
        && url.has_host()
        && url.query().is_none()
        && url.fragment().is_none();
    if usable {
        Ok(())
    } else {
        Err(GraphError::Config(format!(
            "{name} {url} must be an http(s) URL with a host and no query or fragment"
        )))
    }
}

/// Appends path segments, each percent-encoded as exactly one segment (so a user reference
/// can never add or climb path levels).
fn join<'a>(base: &Url, segments: impl IntoIterator<Item = &'a str>) -> Result<Url, GraphError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| GraphError::Config(format!("{base} cannot take a path")))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// Percent-encodes OData query options, keeping `$` keys and readable filter punctuation.
fn encode_query(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(key, value)| format!("{key}={}", encode_component(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        let keep = byte.is_ascii_alphanumeric() || b"-._~:,()/@!*$".contains(&byte);
        if keep {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn checked_request_id(client_request_id: &str) -> Result<&str, GraphError> {
    match uuid::Uuid::try_parse(client_request_id) {
        Ok(_) => Ok(client_request_id),
        Err(_) => Err(GraphError::Config(format!(
            "client-request-id {client_request_id:?} is not a GUID"
        ))),
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_string)
}

/// `Retry-After` as delay-seconds (what Graph sends) or an HTTP date.
fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = header(headers, RETRY_AFTER.as_str())?;
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = DateTime::parse_from_rfc2822(&value).ok()?;
    Some(
        (date.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// Builds the error for a non-success answer from Graph's error body, or the body's start.
fn http_error(
    request: &Request<'_>,
    status: u16,
    header_request_id: Option<String>,
    retry_after: Option<Duration>,
    body: &[u8],
) -> GraphError {
    let (code, message, body_request_id) = match serde_json::from_slice::<GraphErrorBody>(body) {
        Ok(parsed) => {
            let request_id = parsed.error.inner_error.and_then(|inner| inner.request_id);
            (Some(parsed.error.code), parsed.error.message, request_id)
        }
        Err(_) => (None, body_excerpt(status, body), None),
    };
    GraphError::Http {
        endpoint: request.endpoint.to_string(),
        status,
        code,
        message,
        request_id: header_request_id.or(body_request_id),
        client_request_id: request.client_request_id.to_string(),
        retry_after,
    }
}

/// The start of a body that is not a Graph error (a proxy's HTML page, say), on one line.
fn body_excerpt(status: u16, body: &[u8]) -> String {
    const LIMIT: usize = 200;
    let text = String::from_utf8_lossy(&body[..body.len().min(LIMIT)]);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("no body")
            .to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(name: &'static str, value: &'static str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(name, HeaderValue::from_static(value));
        map
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        assert_eq!(
            retry_after(&headers("retry-after", "7"), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(
                &headers("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT"),
                now
            ),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(
                &headers("retry-after", "Wed, 21 Oct 2015 07:27:00 GMT"),
                now
            ),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("retry-after", "soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn query_values_are_encoded_but_readable() {
        assert_eq!(
            encode_query(&[
                (
                    "$filter",
                    "riskLevel eq 'high' and t ge 2024-05-01T00:00:00+02:00".into()
                ),
                ("$top", "500".into()),
            ]),
            "$filter=riskLevel%20eq%20%27high%27%20and%20t%20ge%202024-05-01T00:00:00%2B02:00&$top=500"
        );
        assert_eq!(encode_component("a&b=c#d"), "a%26b%3Dc%23d");
    }

    #[test]
    fn join_keeps_prefixes_and_encodes_segments() {
        let base = Url::parse("http://127.0.0.1:8080/graph/").expect("valid");
        let url = join(&base, ["v1.0", "users"]).expect("joins");
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/graph/v1.0/users");
        let guest = join(&url, ["alice_contoso.com#EXT#@fabrikam.com"]).expect("joins");
        assert_eq!(
            guest.as_str(),
            "http://127.0.0.1:8080/graph/v1.0/users/alice_contoso.com%23EXT%23@fabrikam.com"
        );
        let sneaky = join(&url, ["../groups?x"]).expect("joins");
        assert_eq!(
            sneaky.as_str(),
            "http://127.0.0.1:8080/graph/v1.0/users/..%2Fgroups%3Fx"
        );
    }

    #[test]
    fn request_ids_must_be_guids() {
        assert!(checked_request_id("0f8fad5b-d9cb-469f-a165-70867728950e").is_ok());
        assert!(checked_request_id("not-a-guid").is_err());
    }

    #[test]
    fn excerpts_are_short_and_single_line() {
        let html = format!("<html>\n<body>{}</body></html>", "x".repeat(500));
        let excerpt = body_excerpt(502, html.as_bytes());
        assert!(excerpt.len() <= 200 && !excerpt.contains('\n'), "{excerpt}");
        assert_eq!(body_excerpt(502, b""), "Bad Gateway");
    }
}
