//! Responses as Graph and the identity platform shape them: headers, Graph error bodies,
//! OAuth error bodies, and the damage faults do to them.

use crate::fault::FaultKind;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use chrono::Utc;
use serde_json::{Value, json};

/// What Graph sends as `Content-Type` for JSON.
const GRAPH_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";
/// What the token endpoint sends as `Content-Type`.
const OAUTH_JSON: &str = "application/json; charset=utf-8";
/// Graph's `WWW-Authenticate` challenge on 401.
const CHALLENGE: &str = "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"";

/// Per-request identifiers: the fresh `request-id` and the client's `client-request-id`.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// Fresh for every request, sent back in `request-id` and error bodies.
    pub(crate) request_id: String,
    /// Echoed back when the client sent one.
    pub(crate) client_request_id: Option<String>,
}

impl Ctx {
    pub(crate) fn new(client_request_id: Option<String>) -> Ctx {
        Ctx {
            request_id: uuid::Uuid::new_v4().to_string(),
            client_request_id,
        }
    }
}

/// The body of a reply.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ReplyBody {
    Empty,
    /// Graph JSON.
    Graph(Value),
    /// Token-endpoint JSON.
    OAuth(Value),
    /// Bytes that do not parse, served under the given content type.
    Broken(String, &'static str),
}

/// A response before headers are attached.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// HTTP status.
    pub(crate) status: StatusCode,
    /// Body and its content type.
    pub(crate) body: ReplyBody,
    /// `Retry-After` seconds, when sent.
    pub(crate) retry_after: Option<u64>,
    /// Whether to send Graph's `WWW-Authenticate` challenge (401s).
    pub(crate) challenge: bool,
    /// Close the connection instead of answering (the `drop` fault).
    pub(crate) drop: bool,
}

impl Reply {
    pub(crate) fn new(status: StatusCode, body: ReplyBody) -> Reply {
        Reply {
            status,
            body,
            retry_after: None,
            challenge: false,
            drop: false,
        }
    }

    pub(crate) fn json(status: StatusCode, value: Value) -> Reply {
        Reply::new(status, ReplyBody::Graph(value))
    }

    pub(crate) fn no_content() -> Reply {
        Reply::new(StatusCode::NO_CONTENT, ReplyBody::Empty)
    }

    pub(crate) fn with_retry_after(mut self, secs: Option<u64>) -> Reply {
        self.retry_after = secs;
        self
    }

    /// The `malformed` fault: 200 with the JSON body cut in half.
    pub(crate) fn truncated(self) -> Reply {
        let (text, content_type) = match &self.body {
            ReplyBody::Graph(v) => (v.to_string(), GRAPH_JSON),
            ReplyBody::OAuth(v) => (v.to_string(), OAUTH_JSON),
            ReplyBody::Broken(text, content_type) => (text.clone(), *content_type),
            ReplyBody::Empty => ("{\"value\":[{\"id\":null}]}".to_string(), GRAPH_JSON),
        };
        let mut cut = text.len() / 2;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        Reply::new(
            StatusCode::OK,
            ReplyBody::Broken(text[..cut].to_string(), content_type),
        )
    }

    /// Attaches headers; `request-id` always, `client-request-id` when the client sent one.
    pub(crate) fn into_response(self, ctx: &Ctx) -> Response {
        let (body, content_type) = match self.body {
            ReplyBody::Empty => (Body::empty(), None),
            ReplyBody::Graph(v) => (Body::from(v.to_string()), Some(GRAPH_JSON)),
            ReplyBody::OAuth(v) => (Body::from(v.to_string()), Some(OAUTH_JSON)),
            ReplyBody::Broken(text, content_type) => (Body::from(text), Some(content_type)),
        };
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        if let Some(content_type) = content_type {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
            headers.insert("request-id", v.clone());
            headers.insert("x-ms-request-id", v);
        }
        if let Some(v) = ctx
            .client_request_id
            .as_deref()
            .and_then(|id| HeaderValue::from_str(id).ok())
        {
            headers.insert("client-request-id", v);
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(CHALLENGE),
            );
        }
        if self.drop {
            response.extensions_mut().insert(DropConnection);
        }
        response
    }
}

/// Marks a response the server must not send: it closes the connection instead.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DropConnection;

/// A Graph error: `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.
pub(crate) fn graph_error(status: StatusCode, code: &str, message: &str, ctx: &Ctx) -> Reply {
    let body = json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                "request-id": ctx.request_id,
                "client-request-id": ctx.client_request_id.as_deref().unwrap_or(&ctx.request_id),
            }
        }
    });
    Reply::json(status, body)
}

/// 400 for a malformed request, with Graph's generic code.
pub(crate) fn bad_request(message: &str, ctx: &Ctx) -> Reply {
    graph_error(StatusCode::BAD_REQUEST, "BadRequest", message, ctx)
}

/// 404 for a user (or other directory object) that does not exist.
pub(crate) fn not_found(id: &str, ctx: &Ctx) -> Reply {
    let message = format!(
        "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
    );
    graph_error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &message,
        ctx,
    )
}

/// 401 for a missing, unknown or expired bearer token.
pub(crate) fn unauthenticated(message: &str, ctx: &Ctx) -> Reply {
    let mut reply = graph_error(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        message,
        ctx,
    );
    reply.challenge = true;
    reply
}

/// 429 from Graph; `retry_after` is `None` for identity protection, which sends no header.
pub(crate) fn throttled(retry_after: Option<u64>, ctx: &Ctx) -> Reply {
    graph_error(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        "Too many requests.",
        ctx,
    )
    .with_retry_after(retry_after)
}

/// The identity platform's error body for the token endpoint.
pub(crate) fn oauth_error(
    status: StatusCode,
    error: &str,
    aadsts: u32,
    message: &str,
    ctx: &Ctx,
) -> Reply {
    let now = Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    // Entra echoes client-request-id as the correlation id, else makes one up.
    let correlation = ctx
        .client_request_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let description = format!(
        "AADSTS{aadsts}: {message}\r\nTrace ID: {}\r\nCorrelation ID: {correlation}\r\nTimestamp: {now}",
        ctx.request_id
    );
    let body = json!({
        "error": error,
        "error_description": description,
        "error_codes": [aadsts],
        "timestamp": now,
        "trace_id": ctx.request_id,
        "correlation_id": correlation,
    });
    Reply::new(status, ReplyBody::OAuth(body))
}

/// The reply a replacing fault (`status`, `throttle`, `drop`) serves; `None` for faults that
/// let the call proceed. `oauth` selects the token endpoint's error shape.
pub(crate) fn fault_reply(kind: &FaultKind, oauth: bool, ctx: &Ctx) -> Option<Reply> {
    match kind {
        FaultKind::Status { code } => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Some(if oauth {
                let error = if status.is_server_error() {
                    "temporarily_unavailable"
                } else {
                    "invalid_request"
                };
                oauth_error(
                    status,
                    error,
                    50000,
                    "There was an error issuing a token or an issue with our sign-in service.",
                    ctx,
                )
            } else {
                let (code, message) = graph_code(status);
                graph_error(status, code, message, ctx)
            })
        }
        FaultKind::Throttle { retry_after } => Some(if oauth {
            oauth_error(
                StatusCode::TOO_MANY_REQUESTS,
                "temporarily_unavailable",
                90055,
                "There are too many incoming requests. Please try again later.",
                ctx,
            )
            .with_retry_after(*retry_after)
        } else {
            throttled(*retry_after, ctx)
        }),
        FaultKind::Drop {} => {
            let mut reply = Reply::no_content();
            reply.drop = true;
            Some(reply)
        }
        FaultKind::Slow { .. } | FaultKind::Malformed {} => None,
    }
}

/// Graph's error code and message for a status a fault asks for.
fn graph_code(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("BadRequest", "Bad request."),
        401 => (
            "InvalidAuthenticationToken",
            "Access token validation failure.",
        ),
        403 => (
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ),
        404 => (
            "Request_ResourceNotFound",
            "The requested resource does not exist.",
        ),
        409 => (
            "Conflict",
            "The request conflicts with the current state of the resource.",
        ),
        429 => ("TooManyRequests", "Too many requests."),
        500 => ("generalException", "An unspecified error occurred."),
        502 => ("badGateway", "The service is unreachable."),
        503 => (
            "serviceNotAvailable",
            "The service is temporarily unavailable. Try again later.",
        ),
        504 => ("gatewayTimeout", "The gateway timed out."),
        _ => ("UnknownError", "An error occurred."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_cuts_on_a_char_boundary_and_breaks_json() {
        let reply = Reply::json(StatusCode::CREATED, json!({"value": ["ééééé", "ü"]})).truncated();
        assert_eq!(reply.status, StatusCode::OK);
        let ReplyBody::Broken(text, _) = &reply.body else {
            panic!("expected a broken body, got {:?}", reply.body);
        };
        assert!(serde_json::from_str::<Value>(text).is_err());
        assert!(!text.is_empty());
    }

    #[test]
    fn graph_error_shape() {
        let ctx = Ctx::new(Some("c-1".into()));
        let reply = not_found("x@y", &ctx);
        let ReplyBody::Graph(body) = reply.body else {
            panic!("graph body expected");
        };
        assert_eq!(body["error"]["code"], "Request_ResourceNotFound");
        assert_eq!(
            body["error"]["innerError"]["request-id"],
            ctx.request_id.as_str()
        );
        assert_eq!(body["error"]["innerError"]["client-request-id"], "c-1");
        assert!(body["error"]["innerError"]["date"].is_string());
    }
}
