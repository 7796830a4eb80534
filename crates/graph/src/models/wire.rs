//! Envelopes around the entities: collection pages, token endpoint bodies, Graph's error body
//! and the small request/response bodies of the containment actions.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use super::lenient;
use crate::auth::Secret;

/// One page of a collection. Graph pages with `@odata.nextLink` only (no `$skip` on risk
/// detections), so the link is the whole paging state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The records of this page.
    pub value: Vec<T>,
    /// The URL of the next page, to be requested exactly as received; `None` on the last page.
    #[serde(
        rename = "@odata.nextLink",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub next_link: Option<String>,
}

/// A successful client-credentials token response from the identity platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// Always `Bearer` for Graph.
    pub token_type: String,
    /// Lifetime in seconds; the cache renews before it runs out. Accepted as a number or a
    /// numeric string (older endpoints and managed identity send strings).
    #[serde(deserialize_with = "seconds")]
    pub expires_in: u64,
    /// Extended lifetime in seconds (used by Microsoft's resilience features); informational.
    #[serde(
        default,
        deserialize_with = "lenient::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub ext_expires_in: Option<u64>,
    /// The bearer token; redacted in `Debug` and `Display`.
    pub access_token: Secret,
}

/// The identity platform's error body (`AADSTS` errors) from the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenErrorResponse {
    /// OAuth error code (`invalid_client`, `invalid_scope`, `unauthorized_client`, ...).
    pub error: String,
    /// Human-readable description; its first line carries the AADSTS code and message.
    #[serde(default, deserialize_with = "lenient::option")]
    pub error_description: Option<String>,
    /// The numeric AADSTS codes.
    #[serde(default, deserialize_with = "lenient::vec")]
    pub error_codes: Vec<i64>,
    /// When the error happened, as sent (the docs' own example is a placeholder, so no parsing).
    #[serde(default, deserialize_with = "lenient::option")]
    pub timestamp: Option<String>,
    /// Request id at the identity platform: what Microsoft support asks for.
    #[serde(default, deserialize_with = "lenient::option")]
    pub trace_id: Option<String>,
    /// Correlation id at the identity platform.
    #[serde(default, deserialize_with = "lenient::option")]
    pub correlation_id: Option<String>,
}

/// Graph's error body: `{"error": {"code", "message", "innerError": {...}}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphErrorBody {
    /// The error itself.
    pub error: GraphErrorDetail,
}

/// The `error` object of [`GraphErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphErrorDetail {
    /// Machine-readable code to branch on (`Request_ResourceNotFound`, `TooManyRequests`, ...).
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Request ids and date of the failed call; Graph spells it `innerError` (and, in older
    /// services, `innererror`).
    #[serde(
        rename = "innerError",
        alias = "innererror",
        default,
        deserialize_with = "lenient::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub inner_error: Option<InnerError>,
}

/// The `innerError` object of a Graph error: the ids Microsoft support asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InnerError {
    /// Graph's id for the request (also in the `request-id` response header).
    #[serde(
        rename = "request-id",
        default,
        deserialize_with = "lenient::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub request_id: Option<String>,
    /// The `client-request-id` the caller sent, echoed back.
    #[serde(
        rename = "client-request-id",
        default,
        deserialize_with = "lenient::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub client_request_id: Option<String>,
    /// When the error happened, as sent.
    #[serde(
        default,
        deserialize_with = "lenient::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub date: Option<String>,
}

/// Body of `riskyUsers/confirmCompromised` and `riskyUsers/dismiss`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserIdsRequest {
    /// Object ids of the users to act on.
    #[serde(rename = "userIds")]
    pub user_ids: Vec<String>,
}

/// A boolean action result (`revokeSignInSessions` answers `{"value": true}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BooleanValue {
    /// The result.
    pub value: bool,
}

/// Seconds as a JSON number or a numeric string.
fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }
    match Raw::deserialize(deserializer)? {
        Raw::Number(n) => Ok(n),
        Raw::Text(text) => text
            .trim()
            .parse()
            .map_err(|_| D::Error::custom("expires_in is not a number of seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_accepts_numbers_and_numeric_strings() {
        let parse = |json: &str| serde_json::from_str::<TokenResponse>(json);
        let number = parse(r#"{"token_type":"Bearer","expires_in":3599,"access_token":"t"}"#)
            .expect("number");
        assert_eq!(number.expires_in, 3599);
        let text = parse(r#"{"token_type":"Bearer","expires_in":"3599","access_token":"t"}"#)
            .expect("numeric string");
        assert_eq!(text.expires_in, 3599);
        let bad = parse(r#"{"token_type":"Bearer","expires_in":"soon","access_token":"t"}"#)
            .expect_err("not a number");
        assert!(!bad.to_string().contains("soon"), "{bad}");
    }

    #[test]
    fn token_debug_is_redacted() {
        let token: TokenResponse = serde_json::from_str(
            r#"{"token_type":"Bearer","expires_in":1,"access_token":"eyJ-secret"}"#,
        )
        .expect("parses");
        assert!(!format!("{token:?}").contains("eyJ-secret"));
        assert_eq!(token.access_token.expose(), "eyJ-secret");
    }

    #[test]
    fn inner_error_accepts_both_spellings() {
        for key in ["innerError", "innererror"] {
            let body: GraphErrorBody = serde_json::from_str(&format!(
                r#"{{"error":{{"code":"c","message":"m","{key}":{{"request-id":"r1"}}}}}}"#
            ))
            .expect("parses");
            let inner = body.error.inner_error.expect("inner error");
            assert_eq!(inner.request_id.as_deref(), Some("r1"));
        }
    }

    #[test]
    fn next_link_uses_the_odata_name() {
        let page: Page<serde_json::Value> =
            serde_json::from_str(r#"{"value":[],"@odata.nextLink":"https://g/next"}"#)
                .expect("parses");
        assert_eq!(page.next_link.as_deref(), Some("https://g/next"));
        let last: Page<serde_json::Value> =
            serde_json::from_str(r#"{"value":[1]}"#).expect("parses");
        assert_eq!(last.next_link, None);
    }
}
