//! The JSON shapes Graph serves for users, sign-ins and risk detections, after the CSDL and
//! the documented examples in `shared/graph-reference`: every property present, nulls where
//! the simulator has no data.

use crate::scenario::{
    DetectionRepublish, RiskDetectionSpec, SignInRepublish, SignInSpec, UserType,
};
use crate::world::{Clock, User};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};
use std::time::Duration;
use uuid::Uuid;

/// Namespace for ids derived from names, so the same scenario yields the same ids every run.
const ID_NAMESPACE: Uuid = Uuid::from_u128(0x7a3d_9c41_5e2b_4f08_9d16_c0ff_ee5e_1d00);

/// Microsoft Graph's own application id, the resource most sign-ins here are for.
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// First-party apps a scenario is likely to name, with their real application ids.
const KNOWN_APPS: &[(&str, &str)] = &[
    (
        "Office 365 Exchange Online",
        "00000002-0000-0ff1-ce00-000000000000",
    ),
    (
        "Office 365 SharePoint Online",
        "00000003-0000-0ff1-ce00-000000000000",
    ),
    ("Microsoft Teams", "1fec8e78-bce4-4aaf-ab1b-5451cc387264"),
    ("Azure Portal", "c44b4083-3bb0-49c1-b47d-974e53cbdf3c"),
    ("Graph Explorer", "de8bc8b5-d9f9-48b1-a8ad-b748da725064"),
    (
        "Microsoft Azure CLI",
        "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
    ),
    (
        "Microsoft Graph Command Line Tools",
        "14d82eec-204b-4c2f-b7e8-296a70dab67e",
    ),
];

const DEFAULT_USER_AGENT: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
     (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0";

/// Derives a stable GUID from a name.
pub(crate) fn derived_id(name: &str) -> String {
    Uuid::new_v5(&ID_NAMESPACE, name.as_bytes()).to_string()
}

/// Graph's timestamp format: UTC with 100 ns ticks (`2026-11-24T10:00:00.1234567Z`).
pub(crate) fn graph_time(t: DateTime<Utc>) -> String {
    format!(
        "{}.{:07}Z",
        t.format("%Y-%m-%dT%H:%M:%S"),
        t.timestamp_subsec_nanos() / 100
    )
}

/// A user's directory properties as Graph serves them.
pub(crate) fn directory_props(
    clock: &Clock,
    id: String,
    upn: &str,
    display_name: Option<String>,
    user_type: UserType,
) -> Map<String, Value> {
    let display_name = display_name.unwrap_or_else(|| name_from_upn(upn));
    let (given, surname) = match display_name.split_once(' ') {
        Some((g, s)) if user_type == UserType::Member => (json!(g), json!(s)),
        _ => (Value::Null, Value::Null),
    };
    let guest = user_type == UserType::Guest;
    // Accounts and their sessions predate the scenario.
    let created = graph_time(clock.at(Duration::ZERO, Duration::from_secs(400 * 86_400)));
    let sessions = graph_time(clock.at(Duration::ZERO, Duration::from_secs(30 * 86_400)));
    let mut props = Map::new();
    props.insert("id".into(), json!(id));
    props.insert("userPrincipalName".into(), json!(upn));
    props.insert("displayName".into(), json!(display_name));
    props.insert("givenName".into(), given);
    props.insert("surname".into(), surname);
    props.insert("mail".into(), if guest { Value::Null } else { json!(upn) });
    props.insert("businessPhones".into(), json!([]));
    props.insert("mobilePhone".into(), Value::Null);
    props.insert("officeLocation".into(), Value::Null);
    props.insert("preferredLanguage".into(), Value::Null);
    props.insert("department".into(), Value::Null);
    props.insert("jobTitle".into(), Value::Null);
    props.insert("accountEnabled".into(), json!(true));
    props.insert("userType".into(), json!(user_type.as_str()));
    props.insert(
        "creationType".into(),
        if guest {
            json!("Invitation")
        } else {
            Value::Null
        },
    );
    props.insert(
        "externalUserState".into(),
        if guest {
            json!("Accepted")
        } else {
            Value::Null
        },
    );
    props.insert("createdDateTime".into(), json!(created));
    props.insert("signInSessionsValidFromDateTime".into(), json!(sessions));
    props
}

/// `alex.wilber@contoso.com` → `Alex Wilber`.
fn name_from_upn(upn: &str) -> String {
    let local = upn.split('@').next().unwrap_or(upn);
    local
        .split(['.', '_', '-'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn location(city: &Option<String>, region: &Option<String>, country: &Option<String>) -> Value {
    json!({
        "city": city,
        "state": region,
        "countryOrRegion": country,
        "geoCoordinates": {"altitude": null, "latitude": null, "longitude": null},
    })
}

fn failure_reason(code: i32) -> Option<&'static str> {
    Some(match code {
        0 => return None,
        50053 => {
            "Account is locked because user tried to sign in too many times with an incorrect user ID or password."
        }
        50057 => "User account is disabled. The account has been disabled by an administrator.",
        50074 => "Strong Authentication is required.",
        50126 => "Error validating credentials due to invalid username or password.",
        53003 => {
            "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance."
        }
        _ => "Other.",
    })
}

/// A v1.0 signIn with every property of the CSDL entity.
pub(crate) fn sign_in_json(
    tenant: &str,
    id: &str,
    user: &User,
    created: DateTime<Utc>,
    spec: &SignInSpec,
) -> Value {
    let app_id = KNOWN_APPS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(&spec.app))
        .map_or_else(
            || derived_id(&format!("app/{}", spec.app)),
            |(_, id)| (*id).to_string(),
        );
    let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".to_string());
    let event_types = spec.risk_event_types.clone().unwrap_or_default();
    let reason = spec
        .failure_reason
        .clone()
        .or_else(|| failure_reason(spec.status_code).map(str::to_string));
    json!({
        "id": id,
        "createdDateTime": graph_time(created),
        "userDisplayName": user.prop("displayName"),
        "userPrincipalName": user.upn(),
        "userId": user.id(),
        "appId": app_id,
        "appDisplayName": spec.app,
        "ipAddress": spec.ip,
        "clientAppUsed": spec.client_app,
        "userAgent": spec.user_agent.as_deref().unwrap_or(DEFAULT_USER_AGENT),
        "correlationId": derived_id(&format!("correlation/{id}")),
        "conditionalAccessStatus": "notApplied",
        "isInteractive": spec.interactive,
        "riskDetail": or_none(&spec.risk_detail),
        "riskLevelAggregated": or_none(&spec.risk_level_aggregated),
        "riskLevelDuringSignIn": or_none(&spec.risk_level_during_sign_in),
        "riskState": or_none(&spec.risk_state),
        "riskEventTypes": event_types,
        "riskEventTypes_v2": event_types,
        "resourceDisplayName": "Microsoft Graph",
        "resourceId": GRAPH_APP_ID,
        "resourceTenantId": tenant,
        "homeTenantId": tenant,
        "servicePrincipalId": "",
        "servicePrincipalName": null,
        "authenticationAppDeviceDetails": null,
        "status": {
            "errorCode": spec.status_code,
            "failureReason": reason,
            "additionalDetails": null,
        },
        "deviceDetail": {
            "deviceId": "",
            "displayName": null,
            "operatingSystem": "Windows10",
            "browser": "Edge 130.0.0",
            "isCompliant": null,
            "isManaged": null,
            "trustType": null,
        },
        "location": location(&spec.city, &spec.region, &spec.country),
        "appliedConditionalAccessPolicies": [],
    })
}

pub(crate) fn republish_sign_in(first: &Value, update: &SignInRepublish) -> Value {
    let mut record = first.clone();
    let changes = [
        ("riskLevelDuringSignIn", &update.risk_level_during_sign_in),
        ("riskLevelAggregated", &update.risk_level_aggregated),
        ("riskState", &update.risk_state),
        ("riskDetail", &update.risk_detail),
    ];
    for (name, value) in changes {
        if let Some(value) = value {
            record[name] = json!(value);
        }
    }
    if let Some(types) = &update.risk_event_types {
        record["riskEventTypes"] = json!(types);
        record["riskEventTypes_v2"] = json!(types);
    }
    record
}

/// Beta-only signIn properties the simulator fills with values.
pub(crate) const BETA_FILLED: &[&str] = &[
    "signInEventTypes",
    "userType",
    "signInIdentifier",
    "signInIdentifierType",
    "originalRequestId",
    "authenticationProtocol",
    "authenticationRequirement",
    "processingTimeInMilliseconds",
    "tokenIssuerName",
    "tokenIssuerType",
];

/// Beta-only signIn collections, served empty.
pub(crate) const BETA_EMPTY_COLLECTIONS: &[&str] = &[
    "appliedEventListeners",
    "authenticationAppPolicyEvaluationDetails",
    "authenticationContextClassReferences",
    "authenticationDetails",
    "authenticationMethodsUsed",
    "authenticationProcessingDetails",
    "authenticationRequirementPolicies",
    "conditionalAccessAudiences",
    "networkLocationDetails",
    "sessionLifetimePolicies",
];

/// Beta-only signIn properties the simulator has no data for, served as null.
pub(crate) const BETA_NULLS: &[&str] = &[
    "agent",
    "appOwnerTenantId",
    "appTokenProtectionStatus",
    "autonomousSystemNumber",
    "azureResourceId",
    "clientCredentialType",
    "clientSessionId",
    "crossTenantAccessType",
    "federatedCredentialId",
    "flaggedForReview",
    "globalSecureAccessIpAddress",
    "homeTenantName",
    "incomingTokenType",
    "ipAddressFromResourceProvider",
    "isTenantRestricted",
    "isThroughGlobalSecureAccess",
    "managedServiceIdentity",
    "mfaDetail",
    "originalTransferMethod",
    "privateLinkDetails",
    "resourceOwnerTenantId",
    "resourceServicePrincipalId",
    "servicePrincipalCredentialKeyId",
    "servicePrincipalCredentialThumbprint",
    "sessionId",
    "signInTokenProtectionStatus",
    "tokenProtectionStatusDetails",
    "uniqueTokenIdentifier",
];

/// The beta shape of a sign-in: beta drops the legacy `riskEventTypes` and adds its own
/// properties.
pub(crate) fn beta_sign_in(v1: &Value, event_types: &Value, user_type: &str) -> Value {
    let mut beta = v1.clone();
    if let Value::Object(map) = &mut beta {
        map.remove("riskEventTypes");
        for name in BETA_EMPTY_COLLECTIONS {
            map.insert((*name).to_string(), json!([]));
        }
        for name in BETA_NULLS {
            map.insert((*name).to_string(), Value::Null);
        }
        let upn = map.get("userPrincipalName").cloned().unwrap_or(Value::Null);
        let id = map.get("id").cloned().unwrap_or(Value::Null);
        map.insert("signInEventTypes".into(), event_types.clone());
        map.insert("userType".into(), json!(user_type));
        map.insert("signInIdentifier".into(), upn);
        map.insert("signInIdentifierType".into(), json!("userPrincipalName"));
        map.insert("originalRequestId".into(), id);
        map.insert("authenticationProtocol".into(), json!("none"));
        map.insert(
            "authenticationRequirement".into(),
            json!("singleFactorAuthentication"),
        );
        map.insert("processingTimeInMilliseconds".into(), json!(112));
        map.insert("tokenIssuerName".into(), json!(""));
        map.insert("tokenIssuerType".into(), json!("AzureAD"));
    }
    beta
}

/// A v1.0 riskDetection, shaped like the documented example.
pub(crate) fn detection_json(
    id: &str,
    user: &User,
    detected: DateTime<Utc>,
    spec: &RiskDetectionSpec,
) -> Value {
    let request_id = spec
        .request_id
        .clone()
        .unwrap_or_else(|| derived_id(&format!("request/{id}")));
    // The risky activity happened shortly before it was detected.
    let activity = detected
        .checked_sub_signed(TimeDelta::seconds(90))
        .unwrap_or(detected);
    json!({
        "@odata.type": "#microsoft.graph.riskDetection",
        "id": id,
        "requestId": request_id,
        "correlationId": derived_id(&format!("correlation/{request_id}")),
        "riskEventType": spec.risk_event_type,
        "riskState": spec.risk_state,
        "riskLevel": spec.risk_level,
        "riskDetail": spec.risk_detail,
        "source": spec.source,
        "detectionTimingType": spec.timing,
        "activity": spec.activity,
        "tokenIssuerType": "AzureAD",
        "ipAddress": spec.ip,
        "location": location(&spec.city, &spec.region, &spec.country),
        "activityDateTime": graph_time(activity),
        "detectedDateTime": graph_time(detected),
        "lastUpdatedDateTime": graph_time(detected),
        "userId": user.id(),
        "userDisplayName": user.prop("displayName"),
        "userPrincipalName": user.upn(),
        "additionalInfo": format!("[{{\"Key\":\"userAgent\",\"Value\":\"{DEFAULT_USER_AGENT}\"}}]"),
    })
}

pub(crate) fn republish_detection(
    first: &Value,
    update: &DetectionRepublish,
    at: DateTime<Utc>,
) -> Value {
    let mut record = first.clone();
    let changes = [
        ("riskLevel", &update.risk_level),
        ("riskState", &update.risk_state),
        ("riskDetail", &update.risk_detail),
    ];
    for (name, value) in changes {
        if let Some(value) = value {
            record[name] = json!(value);
        }
    }
    record["lastUpdatedDateTime"] = json!(graph_time(at));
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_time_has_seven_fraction_digits() {
        let t = DateTime::parse_from_rfc3339("2026-11-24T10:00:00.123456789Z")
            .expect("valid")
            .with_timezone(&Utc);
        assert_eq!(graph_time(t), "2026-11-24T10:00:00.1234567Z");
    }

    #[test]
    fn names_come_from_upns() {
        assert_eq!(name_from_upn("alex.wilber@contoso.com"), "Alex Wilber");
        assert_eq!(name_from_upn("user7@contoso.com"), "User7");
    }
}
