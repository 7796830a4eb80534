//! The identity platform's token endpoint, client-credentials grant with a client secret.
//!
//! Checks run in the order Entra ID reports them: tenant, grant type, client, scope, secret.
//! Errors carry the documented OAuth shape and the AADSTS code a real tenant returns.

use crate::reply::{Ctx, Reply, ReplyBody, oauth_error};
use crate::simulator::State;
use axum::http::StatusCode;
use serde_json::json;
use std::collections::HashMap;
use std::time::Instant;

/// Answers a token request for `tenant` with the URL-encoded `form`.
pub(crate) fn issue(state: &mut State, ctx: &Ctx, tenant: &str, form: &[u8]) -> Reply {
    let form: HashMap<String, String> = url::form_urlencoded::parse(form).into_owned().collect();
    match check(state, ctx, tenant, &form) {
        Ok(()) => {
            let token = state.issue_token(Instant::now());
            let body = json!({
                "token_type": "Bearer",
                "expires_in": state.token_lifetime.as_secs(),
                "access_token": token,
            });
            Reply::new(StatusCode::OK, ReplyBody::OAuth(body))
        }
        Err(reply) => reply,
    }
}

fn check(
    state: &State,
    ctx: &Ctx,
    tenant: &str,
    form: &HashMap<String, String>,
) -> Result<(), Reply> {
    if !tenant.eq_ignore_ascii_case(&state.world.tenant_id) {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are \
                 signing into the correct cloud. Check with your subscription administrator, this may \
                 happen if there are no active subscriptions for the tenant."
            ),
            ctx,
        ));
    }
    let grant_type = required(form, "grant_type", ctx)?;
    if grant_type != "client_credentials" {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{grant_type}'."),
            ctx,
        ));
    }
    let client_id = required(form, "client_id", ctx)?;
    let Some(client) = state
        .clients
        .iter()
        .find(|c| c.client_id.eq_ignore_ascii_case(client_id))
    else {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This \
                 can happen if the application has not been installed by the administrator of the tenant or \
                 consented to by any user in the tenant. You may have sent your authentication request to \
                 the wrong tenant."
            ),
            ctx,
        ));
    };
    let scope = required(form, "scope", ctx)?;
    if !scope.ends_with("/.default") || scope.split_whitespace().count() != 1 {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            &format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
            ctx,
        ));
    }
    check_secret(client.client_id.as_str(), &client.client_secret, form, ctx)
}

fn check_secret(
    client_id: &str,
    secret: &str,
    form: &HashMap<String, String>,
    ctx: &Ctx,
) -> Result<(), Reply> {
    let invalid_client = |code, message: &str| {
        oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            code,
            message,
            ctx,
        )
    };
    if form.contains_key("client_assertion") {
        return Err(invalid_client(
            700027,
            "Client assertion failed signature validation. (The simulator accepts client secrets only.)",
        ));
    }
    match form.get("client_secret") {
        None => Err(invalid_client(
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )),
        Some(given) if given != secret => Err(invalid_client(
            7000215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client \
                 secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        )),
        Some(_) => Ok(()),
    }
}

fn required<'f>(
    form: &'f HashMap<String, String>,
    name: &str,
    ctx: &Ctx,
) -> Result<&'f str, Reply> {
    form.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                &format!("The request body must contain the following parameter: '{name}'."),
                ctx,
            )
        })
}
