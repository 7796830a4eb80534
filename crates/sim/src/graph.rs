//! Graph's operations on the simulated tenant: the three feeds, the risk actions, and user
//! reads and writes. Shapes follow the CSDL and the documented examples.

use crate::api::{App, json_body, read_body, run};
use crate::filter::{FieldDef, FieldType, Record};
use crate::list::{Endpoint, ListQuery, parse_select};
use crate::reply::{Ctx, Reply, bad_request, graph_error, not_found};
use crate::route::Route;
use crate::shapes::{BETA_EMPTY_COLLECTIONS, BETA_FILLED, BETA_NULLS, beta_sign_in};
use crate::simulator::{Call, State};
use crate::world::FeedRecord;
use axum::extract::{Path, Request, State as Extract};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

/// dismiss accepts at most this many users per call.
const DISMISS_MAX: usize = 60;

const RISKY_USER_PROPERTIES: &[&str] = &[
    "id",
    "isDeleted",
    "isProcessing",
    "riskDetail",
    "riskLastUpdatedDateTime",
    "riskLevel",
    "riskState",
    "userDisplayName",
    "userPrincipalName",
];

const RISKY_USERS: Endpoint = Endpoint {
    context: "https://graph.microsoft.com/v1.0/$metadata#identityProtection/riskyUsers",
    max_top: 500,
    fields: &[
        ("id", FieldType::String),
        ("riskLevel", FieldType::Enum),
        ("riskState", FieldType::Enum),
        ("riskDetail", FieldType::Enum),
        ("riskLastUpdatedDateTime", FieldType::DateTime),
        ("isProcessing", FieldType::Bool),
        ("isDeleted", FieldType::Bool),
        ("userPrincipalName", FieldType::String),
        ("userDisplayName", FieldType::String),
    ],
    properties: &[RISKY_USER_PROPERTIES],
    entity: "microsoft.graph.riskyUser",
    skip: true,
};

const RISK_DETECTION_PROPERTIES: &[&str] = &[
    "id",
    "activity",
    "activityDateTime",
    "additionalInfo",
    "correlationId",
    "detectedDateTime",
    "detectionTimingType",
    "ipAddress",
    "lastUpdatedDateTime",
    "location",
    "requestId",
    "riskDetail",
    "riskEventType",
    "riskLevel",
    "riskState",
    "source",
    "tokenIssuerType",
    "userDisplayName",
    "userId",
    "userPrincipalName",
];

const RISK_DETECTIONS: Endpoint = Endpoint {
    context: "https://graph.microsoft.com/v1.0/$metadata#identityProtection/riskDetections",
    max_top: 500,
    fields: &[
        ("id", FieldType::String),
        ("requestId", FieldType::String),
        ("correlationId", FieldType::String),
        ("riskEventType", FieldType::String),
        ("riskLevel", FieldType::Enum),
        ("riskState", FieldType::Enum),
        ("riskDetail", FieldType::Enum),
        ("detectionTimingType", FieldType::Enum),
        ("activity", FieldType::Enum),
        ("source", FieldType::String),
        ("detectedDateTime", FieldType::DateTime),
        ("lastUpdatedDateTime", FieldType::DateTime),
        ("activityDateTime", FieldType::DateTime),
        ("ipAddress", FieldType::String),
        ("userId", FieldType::String),
        ("userPrincipalName", FieldType::String),
        ("userDisplayName", FieldType::String),
    ],
    properties: &[RISK_DETECTION_PROPERTIES],
    entity: "microsoft.graph.riskDetection",
    skip: false,
};

/// signIn's v1.0 properties (CSDL `EntityType signIn` plus `id`).
pub(crate) const SIGN_IN_PROPERTIES: &[&str] = &[
    "id",
    "appDisplayName",
    "appId",
    "appliedConditionalAccessPolicies",
    "authenticationAppDeviceDetails",
    "clientAppUsed",
    "conditionalAccessStatus",
    "correlationId",
    "createdDateTime",
    "deviceDetail",
    "homeTenantId",
    "ipAddress",
    "isInteractive",
    "location",
    "resourceDisplayName",
    "resourceId",
    "resourceTenantId",
    "riskDetail",
    "riskEventTypes",
    "riskEventTypes_v2",
    "riskLevelAggregated",
    "riskLevelDuringSignIn",
    "riskState",
    "servicePrincipalId",
    "servicePrincipalName",
    "status",
    "userAgent",
    "userDisplayName",
    "userId",
    "userPrincipalName",
];

const SIGN_IN_FIELDS: &[FieldDef] = &[
    ("id", FieldType::String),
    ("createdDateTime", FieldType::DateTime),
    ("userId", FieldType::String),
    ("userPrincipalName", FieldType::String),
    ("userDisplayName", FieldType::String),
    ("appId", FieldType::String),
    ("appDisplayName", FieldType::String),
    ("ipAddress", FieldType::String),
    ("clientAppUsed", FieldType::String),
    ("correlationId", FieldType::String),
    ("conditionalAccessStatus", FieldType::Enum),
    ("riskLevelDuringSignIn", FieldType::Enum),
    ("riskLevelAggregated", FieldType::Enum),
    ("riskState", FieldType::Enum),
    ("riskDetail", FieldType::Enum),
    ("isInteractive", FieldType::Bool),
    ("status/errorCode", FieldType::Int),
    ("location/city", FieldType::String),
    ("location/state", FieldType::String),
    ("location/countryOrRegion", FieldType::String),
];

const SIGN_INS: Endpoint = Endpoint {
    context: "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns",
    max_top: 1000,
    fields: SIGN_IN_FIELDS,
    properties: &[SIGN_IN_PROPERTIES],
    entity: "microsoft.graph.signIn",
    skip: true,
};

const BETA_SIGN_IN_FIELDS: &[FieldDef] = &[
    ("id", FieldType::String),
    ("createdDateTime", FieldType::DateTime),
    ("userId", FieldType::String),
    ("userPrincipalName", FieldType::String),
    ("userDisplayName", FieldType::String),
    ("appId", FieldType::String),
    ("appDisplayName", FieldType::String),
    ("ipAddress", FieldType::String),
    ("clientAppUsed", FieldType::String),
    ("correlationId", FieldType::String),
    ("conditionalAccessStatus", FieldType::Enum),
    ("riskLevelDuringSignIn", FieldType::Enum),
    ("riskLevelAggregated", FieldType::Enum),
    ("riskState", FieldType::Enum),
    ("riskDetail", FieldType::Enum),
    ("isInteractive", FieldType::Bool),
    ("status/errorCode", FieldType::Int),
    ("location/city", FieldType::String),
    ("location/state", FieldType::String),
    ("location/countryOrRegion", FieldType::String),
    ("signInEventTypes", FieldType::Collection),
];

const BETA_SIGN_INS: Endpoint = Endpoint {
    context: "https://graph.microsoft.com/beta/$metadata#auditLogs/signIns",
    max_top: 1000,
    fields: BETA_SIGN_IN_FIELDS,
    properties: &[
        SIGN_IN_PROPERTIES,
        BETA_FILLED,
        BETA_EMPTY_COLLECTIONS,
        BETA_NULLS,
    ],
    entity: "microsoft.graph.signIn",
    skip: true,
};

const GROUP_PROPERTIES: &[&str] = &[
    "id",
    "description",
    "displayName",
    "groupTypes",
    "mail",
    "mailEnabled",
    "securityEnabled",
];

const MEMBER_OF: Endpoint = Endpoint {
    context: "https://graph.microsoft.com/v1.0/$metadata#directoryObjects",
    max_top: 999,
    fields: &[
        ("id", FieldType::String),
        ("displayName", FieldType::String),
    ],
    properties: &[GROUP_PROPERTIES],
    entity: "microsoft.graph.directoryObject",
    skip: false,
};

/// user's properties (CSDL `EntityType user` plus directoryObject's).
const USER_PROPERTIES: &[&str] = &[
    "id",
    "deletedDateTime",
    "aboutMe",
    "accountEnabled",
    "ageGroup",
    "assignedLicenses",
    "assignedPlans",
    "authorizationInfo",
    "birthday",
    "businessPhones",
    "city",
    "companyName",
    "consentProvidedForMinor",
    "country",
    "createdDateTime",
    "creationType",
    "customSecurityAttributes",
    "department",
    "deviceEnrollmentLimit",
    "displayName",
    "employeeHireDate",
    "employeeId",
    "employeeLeaveDateTime",
    "employeeOrgData",
    "employeeType",
    "externalUserState",
    "externalUserStateChangeDateTime",
    "faxNumber",
    "givenName",
    "hireDate",
    "identities",
    "identityParentId",
    "imAddresses",
    "interests",
    "isManagementRestricted",
    "isResourceAccount",
    "jobTitle",
    "lastPasswordChangeDateTime",
    "legalAgeGroupClassification",
    "licenseAssignmentStates",
    "mail",
    "mailboxSettings",
    "mailNickname",
    "mobilePhone",
    "mySite",
    "officeLocation",
    "onPremisesDistinguishedName",
    "onPremisesDomainName",
    "onPremisesExtensionAttributes",
    "onPremisesImmutableId",
    "onPremisesLastSyncDateTime",
    "onPremisesProvisioningErrors",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "onPremisesUserPrincipalName",
    "otherMails",
    "passwordPolicies",
    "passwordProfile",
    "pastProjects",
    "postalCode",
    "preferredDataLocation",
    "preferredLanguage",
    "preferredName",
    "print",
    "provisionedPlans",
    "proxyAddresses",
    "responsibilities",
    "schools",
    "securityIdentifier",
    "serviceProvisioningErrors",
    "showInAddressList",
    "signInActivity",
    "signInSessionsValidFromDateTime",
    "skills",
    "state",
    "streetAddress",
    "surname",
    "usageLocation",
    "userPrincipalName",
    "userType",
];

/// What `GET /users/{id}` returns without `$select` (Graph's default set).
const USER_DEFAULT_SELECT: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

/// Properties a PATCH may not set.
const USERS: Endpoint = Endpoint {
    context: "https://graph.microsoft.com/v1.0/$metadata#users",
    max_top: 999,
    fields: &[
        ("id", FieldType::String),
        ("userPrincipalName", FieldType::String),
        ("displayName", FieldType::String),
        ("userType", FieldType::String),
        ("accountEnabled", FieldType::Bool),
        ("department", FieldType::String),
    ],
    properties: &[USER_PROPERTIES],
    entity: "microsoft.graph.user",
    skip: false,
};

const USER_READ_ONLY: &[&str] = &[
    "id",
    "createdDateTime",
    "creationType",
    "deletedDateTime",
    "externalUserStateChangeDateTime",
    "securityIdentifier",
    "signInActivity",
    "signInSessionsValidFromDateTime",
];

/// `GET /v1.0/identityProtection/riskyUsers`.
pub(crate) async fn risky_users(Extract(app): Extract<App>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let base = app.base_url(&parts.headers);
    let call = Call::from_parts(Route::RiskyUsers, &parts);
    run(&app, call, move |state, ctx, elapsed| {
        let query = match ListQuery::parse(parts.uri.query(), &RISKY_USERS, ctx) {
            Ok(query) => query,
            Err(reply) => return reply,
        };
        let all = state.world.risky_users(elapsed);
        let matching: Vec<&Value> = all.iter().filter(|r| query.admits(*r)).collect();
        let link = format!("{base}{}", parts.uri.path());
        query.page(&matching, &RISKY_USERS, state.page_size, &link, |r| {
            (*r).clone()
        })
    })
    .await
}

/// `GET /v1.0/identityProtection/riskDetections`.
pub(crate) async fn risk_detections(Extract(app): Extract<App>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let base = app.base_url(&parts.headers);
    let call = Call::from_parts(Route::RiskDetections, &parts);
    run(&app, call, move |state, ctx, elapsed| {
        let query = match ListQuery::parse(parts.uri.query(), &RISK_DETECTIONS, ctx) {
            Ok(query) => query,
            Err(reply) => return reply,
        };
        let matching: Vec<&Value> = state
            .world
            .detections
            .iter()
            .filter_map(|d| d.at(elapsed))
            .filter(|r| query.admits(*r))
            .collect();
        let link = format!("{base}{}", parts.uri.path());
        query.page(&matching, &RISK_DETECTIONS, state.page_size, &link, |r| {
            (*r).clone()
        })
    })
    .await
}

/// `GET /v1.0/auditLogs/signIns`: interactive sign-ins only, newest first.
pub(crate) async fn sign_ins(Extract(app): Extract<App>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let base = app.base_url(&parts.headers);
    let call = Call::from_parts(Route::SignIns, &parts);
    run(&app, call, move |state, ctx, elapsed| {
        let query = match ListQuery::parse(parts.uri.query(), &SIGN_INS, ctx) {
            Ok(query) => query,
            Err(reply) => return reply,
        };
        let matching: Vec<&Value> = state
            .world
            .sign_ins
            .iter()
            .filter(|s| s.is_interactive())
            .filter_map(|s| s.at(elapsed))
            .filter(|r| query.admits(*r))
            .collect();
        let link = format!("{base}{}", parts.uri.path());
        query.page(&matching, &SIGN_INS, state.page_size, &link, |r| {
            (*r).clone()
        })
    })
    .await
}

/// A v1.0 sign-in seen through beta's extra filterable property.
struct BetaView<'a> {
    record: &'a Value,
    feed: &'a FeedRecord,
}

impl Record for BetaView<'_> {
    fn field(&self, path: &[String]) -> Option<&Value> {
        match path {
            [name] if name == "signInEventTypes" => Some(&self.feed.event_types),
            _ => self.record.field(path),
        }
    }
}

/// `GET /beta/auditLogs/signIns`: interactive sign-ins unless the filter asks for
/// `signInEventTypes`, in beta's shape.
pub(crate) async fn sign_ins_beta(Extract(app): Extract<App>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let base = app.base_url(&parts.headers);
    let call = Call::from_parts(Route::SignIns, &parts);
    run(&app, call, move |state, ctx, elapsed| {
        let query = match ListQuery::parse(parts.uri.query(), &BETA_SIGN_INS, ctx) {
            Ok(query) => query,
            Err(reply) => return reply,
        };
        let all_types = query.filters_on("signInEventTypes");
        let matching: Vec<BetaView<'_>> = state
            .world
            .sign_ins
            .iter()
            .filter(|s| all_types || s.is_interactive())
            .filter_map(|feed| feed.at(elapsed).map(|record| BetaView { record, feed }))
            .filter(|view| query.admits(view))
            .collect();
        let link = format!("{base}{}", parts.uri.path());
        query.page(&matching, &BETA_SIGN_INS, state.page_size, &link, |v| {
            beta_sign_in(v.record, &v.feed.event_types, v.feed.user_type)
        })
    })
    .await
}

/// `POST /v1.0/identityProtection/riskyUsers/confirmCompromised`.
pub(crate) async fn confirm_compromised(Extract(app): Extract<App>, request: Request) -> Response {
    risk_action(app, request, Route::ConfirmCompromised).await
}

/// `POST /v1.0/identityProtection/riskyUsers/dismiss`.
pub(crate) async fn dismiss(Extract(app): Extract<App>, request: Request) -> Response {
    risk_action(app, request, Route::Dismiss).await
}

async fn risk_action(app: App, request: Request, route: Route) -> Response {
    let (parts, body) = request.into_parts();
    let body = json_body(&read_body(body).await);
    let ids: Option<Vec<String>> = body
        .as_ref()
        .and_then(|b| b.get("userIds"))
        .and_then(Value::as_array)
        .and_then(|ids| {
            ids.iter()
                .map(|id| id.as_str().map(str::to_string))
                .collect()
        });
    let mut call = Call::from_parts(route, &parts);
    call.users = ids.clone().unwrap_or_default();
    call.body = body;
    run(&app, call, move |state, ctx, elapsed| {
        let ids = match ids {
            Some(ids) if !ids.is_empty() => ids,
            _ => {
                return bad_request(
                    "Invalid request body: 'userIds' must be a non-empty array of user ids.",
                    ctx,
                );
            }
        };
        if route == Route::Dismiss && ids.len() > DISMISS_MAX {
            return bad_request(
                &format!("A maximum of {DISMISS_MAX} users can be dismissed in one request."),
                ctx,
            );
        }
        // Like Graph, ids that name no risky user are accepted and have no effect.
        let found: Vec<usize> = ids.iter().filter_map(|id| state.world.find(id)).collect();
        for index in found {
            if route == Route::Dismiss {
                state.world.dismiss(index, elapsed);
            } else {
                state.world.confirm_compromised(index, elapsed);
            }
        }
        Reply::no_content()
    })
    .await
}

/// `POST /v1.0/users/{id | userPrincipalName}/revokeSignInSessions`.
pub(crate) async fn revoke(
    Extract(app): Extract<App>,
    Path(user): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let mut call = Call::from_parts(Route::Revoke, &parts);
    call.users = vec![user.clone()];
    call.body = json_body(&read_body(body).await);
    run(&app, call, move |state, ctx, elapsed| match state.world.find(&user) {
        None => not_found(&user, ctx),
        Some(index) => {
            state.world.revoke_sessions(index, elapsed);
            Reply::json(
                StatusCode::OK,
                json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean", "value": true}),
            )
        }
    })
    .await
}

/// `GET /v1.0/users`: the directory's users in pages (`$top` up to 999, `$select`, `$filter`
/// on the listed properties); without `$select`, Graph's default set. Draws on the
/// directory_read quota, and faults aimed at `get_user` hit it too.
pub(crate) async fn list_users(Extract(app): Extract<App>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let base = app.base_url(&parts.headers);
    let call = Call::from_parts(Route::GetUser, &parts);
    run(&app, call, move |state, ctx, _| {
        let query = match ListQuery::parse(parts.uri.query(), &USERS, ctx) {
            Ok(query) => query,
            Err(reply) => return reply,
        };
        let matching: Vec<&Map<String, Value>> = state
            .world
            .users
            .iter()
            .map(|u| &u.props)
            .filter(|props| query.admits(&Props(props)))
            .collect();
        let link = format!("{base}{}", parts.uri.path());
        let selected = query.has_select();
        query.page(&matching, &USERS, state.page_size, &link, |props| {
            let shown = props
                .iter()
                .filter(|(k, _)| selected || USER_DEFAULT_SELECT.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Value::Object(shown)
        })
    })
    .await
}

/// A user's properties seen by the list filter.
struct Props<'a>(&'a Map<String, Value>);

impl Record for Props<'_> {
    fn field(&self, path: &[String]) -> Option<&Value> {
        let (first, rest) = path.split_first()?;
        rest.iter()
            .try_fold(self.0.get(first)?, |value, key| value.get(key))
    }
}

/// `GET /v1.0/users/{id | userPrincipalName}` with optional `$select`.
pub(crate) async fn get_user(
    Extract(app): Extract<App>,
    Path(user): Path<String>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let mut call = Call::from_parts(Route::GetUser, &parts);
    call.users = vec![user.clone()];
    run(&app, call, move |state, ctx, _| {
        let select = match user_select(parts.uri.query(), ctx) {
            Ok(select) => select,
            Err(reply) => return reply,
        };
        let Some(index) = state.world.find(&user) else {
            return not_found(&user, ctx);
        };
        let props = &state.world.users[index].props;
        let context = match &select {
            Some(names) => format!(
                "https://graph.microsoft.com/v1.0/$metadata#users({})/$entity",
                names.join(",")
            ),
            None => "https://graph.microsoft.com/v1.0/$metadata#users/$entity".to_string(),
        };
        let names: Vec<&str> = select.as_ref().map_or_else(
            || USER_DEFAULT_SELECT.to_vec(),
            |names| names.iter().map(String::as_str).chain(["id"]).collect(),
        );
        let mut body = Map::new();
        body.insert("@odata.context".into(), json!(context));
        for name in names {
            body.insert(
                name.to_string(),
                props.get(name).cloned().unwrap_or(Value::Null),
            );
        }
        Reply::json(StatusCode::OK, Value::Object(body))
    })
    .await
}

/// Parses the query of a user GET: only `$select` is supported.
fn user_select(query: Option<&str>, ctx: &Ctx) -> Result<Option<Vec<String>>, Reply> {
    let mut select = None;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "$select" => {
                select = Some(parse_select(
                    &value,
                    &[USER_PROPERTIES],
                    "microsoft.graph.user",
                    ctx,
                )?)
            }
            other if other.starts_with('$') => {
                return Err(bad_request(
                    &format!("Query option '{other}' is not supported by the simulator."),
                    ctx,
                ));
            }
            _ => {}
        }
    }
    Ok(select)
}

/// `PATCH /v1.0/users/{id | userPrincipalName}`.
pub(crate) async fn update_user(
    Extract(app): Extract<App>,
    Path(user): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = json_body(&read_body(body).await);
    let mut call = Call::from_parts(Route::UpdateUser, &parts);
    call.users = vec![user.clone()];
    call.body = body.clone();
    run(&app, call, move |state, ctx, _| {
        let Some(index) = state.world.find(&user) else {
            return not_found(&user, ctx);
        };
        let changes = match validate_patch(body, ctx) {
            Ok(changes) => changes,
            Err(reply) => return reply,
        };
        state.world.patch_user(index, changes);
        Reply::no_content()
    })
    .await
}

/// Accepts a JSON object of known, writable user properties with sensible types.
fn validate_patch(body: Option<Value>, ctx: &Ctx) -> Result<Map<String, Value>, Reply> {
    let Some(Value::Object(changes)) = body else {
        return Err(bad_request(
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
            ctx,
        ));
    };
    let invalid =
        |message: String| graph_error(StatusCode::BAD_REQUEST, "Request_BadRequest", &message, ctx);
    for (name, value) in &changes {
        if !USER_PROPERTIES.contains(&name.as_str()) {
            return Err(invalid(format!(
                "Property '{name}' does not exist on type 'microsoft.graph.user'."
            )));
        }
        if USER_READ_ONLY.contains(&name.as_str()) {
            return Err(invalid(format!(
                "Property '{name}' is read-only and cannot be set."
            )));
        }
        let well_typed = match name.as_str() {
            "accountEnabled" => value.is_boolean(),
            "userPrincipalName" => value.as_str().is_some_and(|s| s.contains('@')),
            "userType" => matches!(value.as_str(), Some("Member" | "Guest")),
            "displayName" | "department" | "jobTitle" | "givenName" | "surname" | "mail" => {
                value.is_string() || value.is_null()
            }
            _ => true,
        };
        if !well_typed {
            return Err(invalid(format!(
                "Invalid value specified for property '{name}' of resource 'User'."
            )));
        }
    }
    Ok(changes)
}

/// `GET /v1.0/users/{id | userPrincipalName}/transitiveMemberOf`.
pub(crate) async fn member_of(
    Extract(app): Extract<App>,
    Path(user): Path<String>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let base = app.base_url(&parts.headers);
    let mut call = Call::from_parts(Route::MemberOf, &parts);
    call.users = vec![user.clone()];
    run(&app, call, move |state: &mut State, ctx, _| {
        let query = match ListQuery::parse(parts.uri.query(), &MEMBER_OF, ctx) {
            Ok(query) => query,
            Err(reply) => return reply,
        };
        let Some(index) = state.world.find(&user) else {
            return not_found(&user, ctx);
        };
        let groups: Vec<Value> = state.world.users[index]
            .groups
            .iter()
            .filter_map(|&g| state.world.groups.get(g))
            .map(crate::world::Group::json)
            .collect();
        let matching: Vec<&Value> = groups.iter().filter(|g| query.admits(*g)).collect();
        let link = format!("{base}{}", parts.uri.path());
        query.page(&matching, &MEMBER_OF, state.page_size, &link, |g| {
            (*g).clone()
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use crate::world::{Clock, World};
    use std::collections::BTreeSet;
    use std::time::Duration;

    /// beta signIn's properties as listed by msgraph-metadata's beta type mappings, plus `id`.
    const BETA_SIGN_IN: &[&str] = &[
        "agent",
        "appDisplayName",
        "appId",
        "appOwnerTenantId",
        "appTokenProtectionStatus",
        "appliedConditionalAccessPolicies",
        "appliedEventListeners",
        "authenticationAppDeviceDetails",
        "authenticationAppPolicyEvaluationDetails",
        "authenticationContextClassReferences",
        "authenticationDetails",
        "authenticationMethodsUsed",
        "authenticationProcessingDetails",
        "authenticationProtocol",
        "authenticationRequirement",
        "authenticationRequirementPolicies",
        "autonomousSystemNumber",
        "azureResourceId",
        "clientAppUsed",
        "clientCredentialType",
        "clientSessionId",
        "conditionalAccessAudiences",
        "conditionalAccessStatus",
        "correlationId",
        "createdDateTime",
        "crossTenantAccessType",
        "deviceDetail",
        "federatedCredentialId",
        "flaggedForReview",
        "globalSecureAccessIpAddress",
        "homeTenantId",
        "homeTenantName",
        "id",
        "incomingTokenType",
        "ipAddress",
        "ipAddressFromResourceProvider",
        "isInteractive",
        "isTenantRestricted",
        "isThroughGlobalSecureAccess",
        "location",
        "managedServiceIdentity",
        "mfaDetail",
        "networkLocationDetails",
        "originalRequestId",
        "originalTransferMethod",
        "privateLinkDetails",
        "processingTimeInMilliseconds",
        "resourceDisplayName",
        "resourceId",
        "resourceOwnerTenantId",
        "resourceServicePrincipalId",
        "resourceTenantId",
        "riskDetail",
        "riskEventTypes_v2",
        "riskLevelAggregated",
        "riskLevelDuringSignIn",
        "riskState",
        "servicePrincipalCredentialKeyId",
        "servicePrincipalCredentialThumbprint",
        "servicePrincipalId",
        "servicePrincipalName",
        "sessionId",
        "sessionLifetimePolicies",
        "signInEventTypes",
        "signInIdentifier",
        "signInIdentifierType",
        "signInTokenProtectionStatus",
        "status",
        "tokenIssuerName",
        "tokenIssuerType",
        "tokenProtectionStatusDetails",
        "uniqueTokenIdentifier",
        "userAgent",
        "userDisplayName",
        "userId",
        "userPrincipalName",
        "userType",
    ];

    #[test]
    fn sign_in_shapes_have_exactly_the_published_properties() {
        let text = "tenant_id: t\nclients: [{client_id: c, client_secret: s}]\nusers: [{userPrincipalName: a@x}]\nsign_ins: [{user: a@x}]\n";
        let scenario = Scenario::from_yaml(text, "t.yaml").unwrap_or_else(|e| panic!("{e}"));
        let world = World::build(&scenario, Clock::start_now());
        let feed = &world.sign_ins[0];
        let v1 = feed.at(Duration::ZERO).expect("visible at start");
        let keys = |v: &Value| {
            v.as_object()
                .map(|o| o.keys().cloned().collect::<BTreeSet<_>>())
                .unwrap_or_default()
        };
        let names = |list: &[&str]| {
            list.iter()
                .map(|s| (*s).to_string())
                .collect::<BTreeSet<_>>()
        };
        assert_eq!(keys(v1), names(SIGN_IN_PROPERTIES));
        assert_eq!(
            keys(&beta_sign_in(v1, &feed.event_types, feed.user_type)),
            names(BETA_SIGN_IN)
        );
    }
}
