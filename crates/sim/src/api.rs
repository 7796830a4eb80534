//! The HTTP surface: Graph and token routes (paths exactly as Graph's), the `/_sim` control
//! plane, and what unknown paths get.

use crate::fault::FaultSpec;
use crate::reply::{Ctx, Reply, bad_request, graph_error};
use crate::route::Route;
use crate::simulator::{Call, Simulator, State};
use crate::{graph, token};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State as Extract};
use axum::http::{HeaderMap, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;

/// Largest request body read; the bodies Graph takes here are a few kilobytes.
const BODY_LIMIT: usize = 1 << 20;

/// What every handler gets: the simulator and the address it serves on.
#[derive(Clone, Debug)]
pub(crate) struct App {
    /// The shared simulator.
    pub(crate) sim: Simulator,
    /// The listener's address, for absolute nextLinks.
    pub(crate) local: SocketAddr,
}

impl App {
    /// `http://host:port` as the client reached us: the listener's address, or the `Host`
    /// header when listening on an unspecified address (0.0.0.0 or ::).
    pub(crate) fn base_url(&self, headers: &HeaderMap) -> String {
        if !self.local.ip().is_unspecified() {
            return format!("http://{}", self.local);
        }
        headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map_or_else(
                || format!("http://127.0.0.1:{}", self.local.port()),
                |host| format!("http://{host}"),
            )
    }
}

/// The router for one listener.
pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token_endpoint))
        .route(
            "/v1.0/identityProtection/riskyUsers",
            get(graph::risky_users),
        )
        .route(
            "/v1.0/identityProtection/riskyUsers/confirmCompromised",
            post(graph::confirm_compromised),
        )
        .route(
            "/v1.0/identityProtection/riskyUsers/dismiss",
            post(graph::dismiss),
        )
        .route(
            "/v1.0/identityProtection/riskDetections",
            get(graph::risk_detections),
        )
        .route("/v1.0/auditLogs/signIns", get(graph::sign_ins))
        .route("/beta/auditLogs/signIns", get(graph::sign_ins_beta))
        .route("/v1.0/users", get(graph::list_users))
        .route(
            "/v1.0/users/{id}",
            get(graph::get_user).patch(graph::update_user),
        )
        .route("/v1.0/users/{id}/revokeSignInSessions", post(graph::revoke))
        .route("/v1.0/users/{id}/transitiveMemberOf", get(graph::member_of))
        .route("/_sim/record", get(record))
        .route("/_sim/faults", post(inject))
        .route("/_sim/healthz", get(healthz))
        .fallback(unknown_path)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(app)
}

impl Call {
    /// Gathers what the pipeline needs from the request head.
    pub(crate) fn from_parts(route: Route, parts: &Parts) -> Call {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Call {
            route,
            method: parts.method.to_string(),
            path_and_query: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_string(), ToString::to_string),
            client_request_id: header("client-request-id"),
            authorization: header(header::AUTHORIZATION.as_str()),
            users: Vec::new(),
            body: None,
        }
    }
}

/// Runs an operation through the simulator's pipeline and turns the outcome into a response.
pub(crate) async fn run(
    app: &App,
    call: Call,
    op: impl FnOnce(&mut State, &Ctx, Duration) -> Reply,
) -> Response {
    let ctx = Ctx::new(call.client_request_id.clone());
    let (reply, delay) = app.sim.handle(&call, &ctx, op);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    reply.into_response(&ctx)
}

/// Reads a request body; a body too large or cut off reads as empty, which every route
/// treats as a malformed payload.
pub(crate) async fn read_body(body: Body) -> Bytes {
    axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .unwrap_or_default()
}

/// Parses a JSON body, if there is one and it is JSON.
pub(crate) fn json_body(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice(bytes).ok()
}

async fn token_endpoint(
    Extract(app): Extract<App>,
    Path(tenant): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let form = read_body(body).await;
    let call = Call::from_parts(Route::Token, &parts);
    run(&app, call, move |state, ctx, _| {
        token::issue(state, ctx, &tenant, &form)
    })
    .await
}

async fn record(Extract(app): Extract<App>) -> Response {
    axum::Json(app.sim.record()).into_response()
}

async fn inject(Extract(app): Extract<App>, body: Bytes) -> Response {
    match serde_json::from_slice::<FaultSpec>(&body) {
        Ok(fault) => {
            app.sim.inject(fault);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("invalid fault: {e}\n")).into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Graph answers an unknown segment under a version root with 400; anything else is 404.
async fn unknown_path(Extract(app): Extract<App>, request: Request) -> Response {
    let ctx = Ctx::new(client_request_id(request.headers()));
    let path = request.uri().path();
    let reply = if path.starts_with("/v1.0/") || path.starts_with("/beta/") {
        let segment = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or(path);
        bad_request(
            &format!("Resource not found for the segment '{segment}'."),
            &ctx,
        )
    } else {
        graph_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "The simulator serves no such path.",
            &ctx,
        )
    };
    finish_unrouted(&app, &request, ctx, reply)
}

async fn method_not_allowed(Extract(app): Extract<App>, request: Request) -> Response {
    let ctx = Ctx::new(client_request_id(request.headers()));
    let reply = graph_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "Request_BadRequest",
        "Specified HTTP method is not allowed for the request target.",
        &ctx,
    );
    finish_unrouted(&app, &request, ctx, reply)
}

fn finish_unrouted(app: &App, request: &Request, ctx: Ctx, reply: Reply) -> Response {
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or_else(|| request.uri().path().to_string(), ToString::to_string);
    app.sim.lock().record_unrouted(
        request.method().as_str(),
        &path_and_query,
        &ctx,
        reply.status.as_u16(),
    );
    reply.into_response(&ctx)
}

fn client_request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
