//! Every way a Graph or token call can fail, with the ids an operator needs to chase it, and
//! the one place that decides whether a failure is worth retrying.

use std::time::Duration;

use thiserror::Error;

/// A failed Graph or identity platform call.
///
/// Each variant carries what the audit records and Microsoft support asks for: the endpoint
/// (as a template, `POST /v1.0/users/{id}/revokeSignInSessions`), the HTTP status, Graph's
/// error code, `request-id` and the `client-request-id` revokd sent.
#[derive(Debug, Error)]
pub enum GraphError {
    /// Graph answered with a non-success status.
    #[error(
        "{endpoint}: http {status} {}: {message} (request-id {}, client-request-id {client_request_id})",
        .code.as_deref().unwrap_or("-"),
        .request_id.as_deref().unwrap_or("-")
    )]
    Http {
        /// The endpoint template that was called.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// Graph's error code from the body, to branch on (`Request_ResourceNotFound`, ...).
        code: Option<String>,
        /// Graph's error message, or the start of a body that was not a Graph error.
        message: String,
        /// Graph's id for the request (header, or the body's innerError).
        request_id: Option<String>,
        /// The id revokd sent, so the audit row and Graph's logs can be joined.
        client_request_id: String,
        /// How long Graph asked us to wait (`Retry-After`), when it said.
        retry_after: Option<Duration>,
    },
    /// The request never got an HTTP answer: connection refused or dropped, TLS, timeout.
    #[error(
        "{endpoint}: {} (client-request-id {client_request_id}): {source}",
        if *.timeout { "request timed out" } else { "request failed" }
    )]
    Transport {
        /// The endpoint template that was called.
        endpoint: String,
        /// The id revokd sent (Graph may still have seen the request).
        client_request_id: String,
        /// Whether the request timed out, as opposed to failing outright.
        timeout: bool,
        /// What the HTTP client reported.
        source: reqwest::Error,
    },
    /// Graph answered with a success status but a body that does not parse.
    #[error(
        "{endpoint}: http {status}: cannot decode the response body (request-id {}, client-request-id {client_request_id}): {source}",
        .request_id.as_deref().unwrap_or("-")
    )]
    Decode {
        /// The endpoint template that was called.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// Graph's id for the request.
        request_id: Option<String>,
        /// The id revokd sent.
        client_request_id: String,
        /// Where and why parsing failed (line and column in the body).
        source: serde_json::Error,
    },
    /// The identity platform refused to issue a token.
    #[error(
        "tenant {tenant_id}: token request failed{}: {error}: {description} (trace-id {}, correlation-id {})",
        .status.map(|s| format!(" (http {s})")).unwrap_or_default(),
        .trace_id.as_deref().unwrap_or("-"),
        .correlation_id.as_deref().unwrap_or("-")
    )]
    Auth {
        /// The tenant the token was for.
        tenant_id: String,
        /// The HTTP status of the token response, when there was one.
        status: Option<u16>,
        /// The OAuth error (`invalid_client`, `unauthorized_client`, ...).
        error: String,
        /// First line of `error_description`: the AADSTS code and message.
        description: String,
        /// The identity platform's request id.
        trace_id: Option<String>,
        /// The identity platform's correlation id.
        correlation_id: Option<String>,
    },
    /// An `@odata.nextLink` pointed outside the configured Graph origin; following it would
    /// send the bearer token to another host.
    #[error("refusing to follow a next link outside the configured graph_url: {link}")]
    ForeignNextLink {
        /// The link as received.
        link: String,
    },
    /// The client was set up or called with values that cannot work (bad URL, zero quota,
    /// too many user ids, ...).
    #[error("{0}")]
    Config(String),
}

/// What a caller should do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryHint {
    /// Graph said how long to wait: wait exactly that, then retry.
    After(Duration),
    /// Transient: wait per the backoff policy, then retry.
    Backoff,
    /// The token was rejected: renew it and retry once.
    RenewToken,
    /// Retrying cannot help (bad request, forbidden, not found, bad credentials).
    Fatal,
}

impl GraphError {
    /// Classifies the failure for the retry loops (the client's pager and the engine's executor).
    ///
    /// `Retry-After` is honoured on 429 and on 5xx; a 429 without it (Identity Protection sends
    /// none), other 5xx, timeouts, dropped connections and malformed success bodies back off;
    /// 401 renews the token; other 4xx are fatal. A token endpoint that is throttled or down
    /// (429, 5xx) backs off; any other token refusal is fatal.
    pub fn retry_hint(&self) -> RetryHint {
        match self {
            Self::Http {
                status,
                retry_after,
                ..
            } => match (*status, retry_after) {
                (429 | 500..=599, Some(wait)) => RetryHint::After(*wait),
                (429 | 500..=599, None) => RetryHint::Backoff,
                (401, _) => RetryHint::RenewToken,
                _ => RetryHint::Fatal,
            },
            Self::Transport { .. } | Self::Decode { .. } => RetryHint::Backoff,
            Self::Auth {
                status: Some(429 | 500..=599),
                ..
            } => RetryHint::Backoff,
            Self::Auth { .. } | Self::ForeignNextLink { .. } | Self::Config(_) => RetryHint::Fatal,
        }
    }

    /// The HTTP status, when an answer came back.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Http { status, .. } | Self::Decode { status, .. } => Some(*status),
            Self::Auth { status, .. } => *status,
            Self::Transport { .. } | Self::ForeignNextLink { .. } | Self::Config(_) => None,
        }
    }

    /// The error code to branch on and to audit: Graph's `error.code`, or the OAuth `error` of
    /// a token refusal.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Http { code, .. } => code.as_deref(),
            Self::Auth { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The service's id for the failed request: Graph's `request-id`, or the identity
    /// platform's `trace_id`.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Http { request_id, .. } | Self::Decode { request_id, .. } => {
                request_id.as_deref()
            }
            Self::Auth { trace_id, .. } => trace_id.as_deref(),
            _ => None,
        }
    }

    /// The `client-request-id` revokd sent with the failed Graph request.
    pub fn client_request_id(&self) -> Option<&str> {
        match self {
            Self::Http {
                client_request_id, ..
            }
            | Self::Transport {
                client_request_id, ..
            }
            | Self::Decode {
                client_request_id, ..
            } => Some(client_request_id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, retry_after: Option<u64>) -> GraphError {
        GraphError::Http {
            endpoint: "GET /v1.0/identityProtection/riskyUsers".into(),
            status,
            code: Some("TooManyRequests".into()),
            message: "slow down".into(),
            request_id: Some("req-1".into()),
            client_request_id: "crid-1".into(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    fn auth(status: Option<u16>) -> GraphError {
        GraphError::Auth {
            tenant_id: "t1".into(),
            status,
            error: "invalid_client".into(),
            description: "AADSTS7000215: Invalid client secret provided.".into(),
            trace_id: Some("trace".into()),
            correlation_id: None,
        }
    }

    #[test]
    fn hints_follow_status_and_retry_after() {
        let cases = [
            (http(429, Some(7)), RetryHint::After(Duration::from_secs(7))),
            (http(503, Some(2)), RetryHint::After(Duration::from_secs(2))),
            (http(429, None), RetryHint::Backoff),
            (http(500, None), RetryHint::Backoff),
            (http(504, None), RetryHint::Backoff),
            (http(401, None), RetryHint::RenewToken),
            (http(400, None), RetryHint::Fatal),
            (http(403, None), RetryHint::Fatal),
            (http(404, None), RetryHint::Fatal),
            (http(409, Some(3)), RetryHint::Fatal),
            (auth(Some(401)), RetryHint::Fatal),
            (auth(None), RetryHint::Fatal),
            (auth(Some(503)), RetryHint::Backoff),
            (
                GraphError::ForeignNextLink {
                    link: "https://evil.example/".into(),
                },
                RetryHint::Fatal,
            ),
            (GraphError::Config("bad".into()), RetryHint::Fatal),
        ];
        for (error, hint) in cases {
            assert_eq!(error.retry_hint(), hint, "{error}");
        }
    }

    #[test]
    fn malformed_bodies_back_off() {
        let source = serde_json::from_str::<serde_json::Value>("{").expect_err("truncated");
        let error = GraphError::Decode {
            endpoint: "GET /v1.0/auditLogs/signIns".into(),
            status: 200,
            request_id: None,
            client_request_id: "c".into(),
            source,
        };
        assert_eq!(error.retry_hint(), RetryHint::Backoff);
        assert_eq!(error.status(), Some(200));
        assert!(error.to_string().contains("line 1 column 1"), "{error}");
    }

    #[test]
    fn display_names_every_id() {
        let text = http(429, None).to_string();
        assert_eq!(
            text,
            "GET /v1.0/identityProtection/riskyUsers: http 429 TooManyRequests: slow down \
             (request-id req-1, client-request-id crid-1)"
        );
        let text = auth(Some(401)).to_string();
        assert_eq!(
            text,
            "tenant t1: token request failed (http 401): invalid_client: AADSTS7000215: Invalid \
             client secret provided. (trace-id trace, correlation-id -)"
        );
    }

    #[test]
    fn accessors_expose_audit_fields() {
        let error = http(404, None);
        assert_eq!(error.status(), Some(404));
        assert_eq!(error.code(), Some("TooManyRequests"));
        assert_eq!(error.request_id(), Some("req-1"));
        assert_eq!(error.client_request_id(), Some("crid-1"));
        let error = auth(Some(400));
        assert_eq!(error.code(), Some("invalid_client"));
        assert_eq!(error.request_id(), Some("trace"));
        assert_eq!(error.client_request_id(), None);
    }
}
