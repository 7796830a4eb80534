//! What the simulator received: every Graph and token request, and every attempted action.
//!
//! Tests and benchmarks assert on this instead of scraping logs; it is also served as JSON at
//! `GET /_sim/record` so a test driving the real binary can read it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Everything received so far, in the order it was handled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimRecord {
    /// Attempted state changes (revoke, confirm, dismiss, user PATCH), including refused ones.
    pub actions: Vec<RecordedAction>,
    /// Every request to a Graph or token route, including refused ones.
    pub requests: Vec<RecordedRequest>,
}

/// One attempted action on one user. A confirm/dismiss call naming several users yields one
/// entry per user, all with the call's request id and body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedAction {
    /// When the simulator handled it (a `slow` fault holds the answer after this).
    pub at: DateTime<Utc>,
    /// `revokeSignInSessions`, `confirmCompromised`, `dismiss` or `updateUser`.
    pub kind: String,
    /// The user as the client addressed it: object id or UPN (empty when the body named none).
    pub user: String,
    /// The object id the address resolved to, when the user exists.
    pub user_id: Option<String>,
    /// The HTTP status served (0 when the connection was dropped by a fault).
    pub status: u16,
    /// The `request-id` the simulator sent back.
    pub request_id: String,
    /// The `client-request-id` the client sent, if any.
    pub client_request_id: Option<String>,
    /// The JSON request body, when there was one and it parsed.
    pub body: Option<serde_json::Value>,
}

/// One request as served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// When the simulator handled it (a `slow` fault holds the answer after this).
    pub at: DateTime<Utc>,
    /// HTTP method.
    pub method: String,
    /// Path and query as received (the token endpoint's form body is never recorded).
    pub path_and_query: String,
    /// `identity_protection`, `reports`, `directory_write` or `directory_read`; none for the
    /// token endpoint and unknown routes.
    pub quota_class: Option<String>,
    /// The HTTP status served (0 when the connection was dropped by a fault).
    pub status: u16,
    /// The `Retry-After` seconds sent, if any.
    pub retry_after: Option<u64>,
    /// The `request-id` the simulator sent back.
    pub request_id: String,
    /// The `client-request-id` the client sent, if any.
    pub client_request_id: Option<String>,
}
