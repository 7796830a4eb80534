//! The Graph v1.0 entities revokd reads: riskyUser, riskDetection, signIn and user.
//!
//! Property lists follow the v1.0 CSDL (`EntityType riskyUser`, `riskDetection`, `signIn`);
//! navigation properties (riskyUser `history`) are not fetched and not modelled. Every optional
//! property goes through [`super::lenient`], so one malformed value costs that value, never
//! the record. `user` models only the properties revokd selects (`$select`), not the 100-odd
//! of the full entity.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::enums::{
    ActivityType, AppliedConditionalAccessPolicyResult, ConditionalAccessStatus, RiskDetail,
    RiskDetectionTimingType, RiskEventType, RiskLevel, RiskState, TokenIssuerType,
};
use super::lenient;

/// A user Identity Protection considers at risk (`/identityProtection/riskyUsers`). Its `id`
/// is the user's object id, so it doubles as the user reference for containment calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RiskyUser {
    /// The user's object id (entity key; required).
    pub id: String,
    /// Whether the user has been deleted; a deleted user cannot be contained.
    #[serde(default, deserialize_with = "lenient::option")]
    pub is_deleted: Option<bool>,
    /// Whether Identity Protection is still computing this user's risk.
    #[serde(default, deserialize_with = "lenient::option")]
    pub is_processing: Option<bool>,
    /// Why the risk state last changed.
    #[serde(default, deserialize_with = "lenient::option")]
    pub risk_detail: Option<RiskDetail>,
    /// When the risk last changed; the riskyUsers feed is windowed on it.
    #[serde(default, deserialize_with = "lenient::option")]
    pub risk_last_updated_date_time: Option<DateTime<Utc>>,
    /// The aggregated user risk.
    #[serde(default, deserialize_with = "lenient::option")]
    pub risk_level: Option<RiskLevel>,
    /// Where the user stands (atRisk, remediated, dismissed, ...).
    #[serde(default, deserialize_with = "lenient::option")]
    pub risk_state: Option<RiskState>,
    /// Display name, for operators reading decisions.
    #[serde(default, deserialize_with = "lenient::option")]
    pub user_display_name: Option<String>,
    /// UPN, for operators and for rules that match on domains.
    #[serde(default, deserialize_with = "lenient::option")]
    pub user_principal_name: Option<String>,
}

/// One risk detection (`/identityProtection/riskDetections`): the evidence behind user risk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RiskDetection {
    /// The detection's id (entity key; required).
    pub id: String,
    /// Whether the detection concerns a sign-in or the user as a whole.
    #[serde(default, deserialize_with = "lenient::option")]
    pub activity: Option<ActivityType>,
    /// When the risky activity happened.
    #[serde(default, deserialize_with = "lenient::option")]
    pub activity_date_time: Option<DateTime<Utc>>,
    /// Extra detail as a JSON-encoded string (user agent, alert URL, ...), kept as sent.
    #[serde(default, deserialize_with = "lenient::option")]
    pub additional_info: Option<String>,
    /// Correlation id of the sign-in behind the detection.
    #[serde(default, deserialize_with = "lenient::option")]
    pub correlation_id: Option<String>,
    /// When the risk was detected; the riskDetections feed is windowed on it.
    #[serde(default, deserialize_with = "lenient::option")]
    pub detected_date_time: Option<DateTime<Utc>>,
    /// Realtime, near-realtime or offline: tells how late the detection may arrive.
    #[serde(default, deserialize_with = "lenient::option")]
    pub detection_timing_type: Option<RiskDetectionTimingType>,
    /// Client IP address of the risky activity.
    #[serde(default, deserialize_with = "lenient::option")]
    pub ip_address: Option<String>,
    /// When the detection was last updated.
    #[serde(default, deserialize_with = "lenient::option")]
    pub last_updated_date_time: Option<DateTime<Utc>>,
    /// Where the activity came from.
    #[serde(default, deserialize_with = "lenient::option")]
    pub location: Option<SignInLocation>,
    /// Request id of the sign-in behind the detection.
    #[serde(default, deserialize_with = "lenient::option")]
    pub request_id: Option<String>,
    /// Why the detection's risk state last changed.
    #[serde(default, deserialize_with = "lenient::option")]
    pub risk_detail: Option<RiskDetail>,
    /// The detection type (`unlikelyTravel`, `leakedCredentials`, ...); a free string in v1.0.
    #[serde(default, deserialize_with = "lenient::option")]
    pub risk_event_type: Option<String>,
    /// How risky this detection is.
    #[serde(default, deserialize_with = "lenient::option")]
    pub risk_level: Option<RiskLevel>,
    /// Where the detection stands.
    #[serde(default, deserialize_with = "lenient::option")]
    pub risk_state: Option<RiskState>,
    /// Which system detected it (`activeDirectory`, `IdentityProtection`, `MicrosoftCloudAppSecurity`, ...).
    #[serde(default, deserialize_with = "lenient::option")]
    pub source: Option<String>,
    /// Who issued the token of the detected sign-in.
    #[serde(default, deserialize_with = "lenient::option")]
    pub token_issuer_type: Option<TokenIssuerType>,
    /// Display name of the user concerned.
    #[serde(default, deserialize_with = "lenient::option")]
    pub user_display_name: Option<String>,
    /// Object id of the user concerned: the reference for containment calls.
    #[serde(default, deserialize_with = "lenient::option")]
    pub user_id: Option<String>,
    /// UPN of the user concerned.
    #[serde(default, deserialize_with = "lenient::option")]
    pub user_principal_name: Option<String>,
}

/// One sign-in (`/auditLogs/signIns`). Graph republishes the same sign-in later with risk data,
/// so consumers upsert by `id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignIn {
    /// The sign-in's id (entity key; required).
    pub id: String,
    /// Name of the application signed in to.
    #[serde(default, deserialize_with = "lenient::option")]
    pub app_display_name: Option<String>,
    /// Application id signed in to.
    #[serde(default, deserialize_with = "lenient::option")]
    pub app_id: Option<String>,
    /// Conditional Access policies evaluated for this sign-in.
    #[serde(default, deserialize_with = "lenient::vec")]
    pub applied_conditional_access_policies: Vec<AppliedConditionalAccessPolicy>,
    /// Details of the Authenticator app device used, when there was one.
    #[serde(default, deserialize_with = "lenient::option")]
    pub authentication_app_device_details: Option<AuthenticationAppDeviceDetails>,
    /// The client used (Browser, Exchange ActiveSync, IMAP, ...): legacy protocols matter to rules.
    #[serde(default, deserialize_with = "lenient::option")]
    pub client_app_used: Option<String>,
    /// Whether Conditional Access applied.
    #[serde(default, deserialize_with = "lenient::option")]
    pub conditional_access_status: Option<ConditionalAccessStatus>,
    /// Correlates the sign-in with risk detections.
    #[serde(default, deserialize_with = "lenient::option")]
    pub correlation_id: Option<String>,
    /// When the sign-in started; the feed is windowed on it (non-nullable; required).
    pub created_date_time: DateTime<Utc>,
    /// The device used.
    #[serde(default, deserialize_with = "lenient::option")]
    pub device_detail: Option<DeviceDetail>,
    /// Tenant of the user (differs from the resource tenant for guests).
    #[serde(default, deserialize_with = "lenient::option")]
    pub home_tenant_id: Option<String>,
    /// Client IP address.
    #[serde(default, deserialize_with = "lenient::option")]
    pub ip_address: Option<String>,
    /// Whether the user was present (interactive) or a client signed in silently.
    #[serde(default, deserialize_with = "lenient::option")]
    pub is_interactive: Option<bool>,
    /// Where the sign-in came from.
    #[serde(default, deserialize_with = "lenient::option")]
    pub location: Option<SignInLocation>,
    /// Name of the resource signed in to.
    #[serde(default, deserialize_with = "lenient::option")]
    pub resource_display_name: Option<String>,
    /// Id of the resource signed in to.
    #[serde(default, deserialize_with = "lenient::option")]
    pub resource_id: Option<String>,
    /// Tenant of the resource signed in to.
    #[serde(default, deserialize_with = "lenient::option")]
    pub resource_tenant_id: Option<String>,
    /// Why the sign-in's risk state last changed.
    #[serde(default, deserialize_with = "lenient::option")]
    pub risk_detail: Option<RiskDetail>,
    /// Risk types detected on this sign-in (the older, closed list).
    #[serde(default, deserialize_with = "lenient::vec")]
    pub risk_event_types: Vec<RiskEventType>,
    /// Risk types detected on this sign-in as free strings (the list that keeps growing).
    #[serde(
        rename = "riskEventTypes_v2",
        default,
        deserialize_with = "lenient::vec"
    )]
    pub risk_event_types_v2: Vec<String>,
    /// Risk level aggregated over the sign-in and later detections.
    #[serde(default, deserialize_with = "lenient::option")]
    pub risk_level_aggregated: Option<RiskLevel>,
    /// Risk level computed while the sign-in happened.
    #[serde(default, deserialize_with = "lenient::option")]
    pub risk_level_during_sign_in: Option<RiskLevel>,
    /// Where the sign-in's risk stands.
    #[serde(default, deserialize_with = "lenient::option")]
    pub risk_state: Option<RiskState>,
    /// Service principal id, for sign-ins by applications.
    #[serde(default, deserialize_with = "lenient::option")]
    pub service_principal_id: Option<String>,
    /// Service principal name, for sign-ins by applications.
    #[serde(default, deserialize_with = "lenient::option")]
    pub service_principal_name: Option<String>,
    /// Success or failure, with the error code.
    #[serde(default, deserialize_with = "lenient::option")]
    pub status: Option<SignInStatus>,
    /// The client's user agent.
    #[serde(default, deserialize_with = "lenient::option")]
    pub user_agent: Option<String>,
    /// Display name of the user.
    #[serde(default, deserialize_with = "lenient::option")]
    pub user_display_name: Option<String>,
    /// Object id of the user (non-nullable; required): the reference for containment calls.
    pub user_id: String,
    /// UPN of the user.
    #[serde(default, deserialize_with = "lenient::option")]
    pub user_principal_name: Option<String>,
}

/// Outcome of a sign-in (`signInStatus`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInStatus {
    /// Extra detail on the outcome.
    #[serde(default, deserialize_with = "lenient::option")]
    pub additional_details: Option<String>,
    /// AADSTS error code; 0 means success.
    #[serde(default, deserialize_with = "lenient::option")]
    pub error_code: Option<i32>,
    /// Why the sign-in failed.
    #[serde(default, deserialize_with = "lenient::option")]
    pub failure_reason: Option<String>,
}

/// Where a sign-in or detection came from (`signInLocation`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInLocation {
    /// City, derived from the IP address.
    #[serde(default, deserialize_with = "lenient::option")]
    pub city: Option<String>,
    /// Two-letter country code: what location rules match on.
    #[serde(default, deserialize_with = "lenient::option")]
    pub country_or_region: Option<String>,
    /// Coordinates, derived from the IP address.
    #[serde(default, deserialize_with = "lenient::option")]
    pub geo_coordinates: Option<GeoCoordinates>,
    /// State or province.
    #[serde(default, deserialize_with = "lenient::option")]
    pub state: Option<String>,
}

/// A point on Earth (`geoCoordinates`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GeoCoordinates {
    /// Altitude in feet above sea level.
    #[serde(default, deserialize_with = "lenient::option")]
    pub altitude: Option<f64>,
    /// Latitude in decimal degrees.
    #[serde(default, deserialize_with = "lenient::option")]
    pub latitude: Option<f64>,
    /// Longitude in decimal degrees.
    #[serde(default, deserialize_with = "lenient::option")]
    pub longitude: Option<f64>,
}

/// The device a sign-in came from (`deviceDetail`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceDetail {
    /// Browser name and version.
    #[serde(default, deserialize_with = "lenient::option")]
    pub browser: Option<String>,
    /// Entra device id, when the device is registered.
    #[serde(default, deserialize_with = "lenient::option")]
    pub device_id: Option<String>,
    /// Device name.
    #[serde(default, deserialize_with = "lenient::option")]
    pub display_name: Option<String>,
    /// Whether the device is compliant: unmanaged devices are a common rule condition.
    #[serde(default, deserialize_with = "lenient::option")]
    pub is_compliant: Option<bool>,
    /// Whether the device is managed.
    #[serde(default, deserialize_with = "lenient::option")]
    pub is_managed: Option<bool>,
    /// Operating system.
    #[serde(default, deserialize_with = "lenient::option")]
    pub operating_system: Option<String>,
    /// How the device is joined (Azure AD joined, hybrid, registered).
    #[serde(default, deserialize_with = "lenient::option")]
    pub trust_type: Option<String>,
}

/// One Conditional Access policy evaluated for a sign-in (`appliedConditionalAccessPolicy`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedConditionalAccessPolicy {
    /// Policy name.
    #[serde(default, deserialize_with = "lenient::option")]
    pub display_name: Option<String>,
    /// Grant controls enforced (Mfa, RequireCompliantDevice, ...).
    #[serde(default, deserialize_with = "lenient::vec")]
    pub enforced_grant_controls: Vec<String>,
    /// Session controls enforced.
    #[serde(default, deserialize_with = "lenient::vec")]
    pub enforced_session_controls: Vec<String>,
    /// Policy id.
    #[serde(default, deserialize_with = "lenient::option")]
    pub id: Option<String>,
    /// What the policy did.
    #[serde(default, deserialize_with = "lenient::option")]
    pub result: Option<AppliedConditionalAccessPolicyResult>,
}

/// The Authenticator app device of a sign-in (`authenticationAppDeviceDetails`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationAppDeviceDetails {
    /// App version.
    #[serde(default, deserialize_with = "lenient::option")]
    pub app_version: Option<String>,
    /// Client app.
    #[serde(default, deserialize_with = "lenient::option")]
    pub client_app: Option<String>,
    /// Device id.
    #[serde(default, deserialize_with = "lenient::option")]
    pub device_id: Option<String>,
    /// Operating system.
    #[serde(default, deserialize_with = "lenient::option")]
    pub operating_system: Option<String>,
}

/// The user properties revokd reads before and after containment (`/users/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Object id (entity key; required).
    pub id: String,
    /// UPN (an alternate key: calls accept it in place of the id).
    #[serde(default, deserialize_with = "lenient::option")]
    pub user_principal_name: Option<String>,
    /// Display name.
    #[serde(default, deserialize_with = "lenient::option")]
    pub display_name: Option<String>,
    /// Whether the account can sign in; a disable action sets it to false.
    #[serde(default, deserialize_with = "lenient::option")]
    pub account_enabled: Option<bool>,
    /// Department, for rules and protected-principal lists.
    #[serde(default, deserialize_with = "lenient::option")]
    pub department: Option<String>,
    /// Job title, for rules and protected-principal lists.
    #[serde(default, deserialize_with = "lenient::option")]
    pub job_title: Option<String>,
    /// `Member` or `Guest`: revoking sessions does not reach a guest's home tenant.
    #[serde(default, deserialize_with = "lenient::option")]
    pub user_type: Option<String>,
    /// Whether the account is synced from on-premises AD (a disable there would be overwritten).
    #[serde(default, deserialize_with = "lenient::option")]
    pub on_premises_sync_enabled: Option<bool>,
    /// Tokens issued before this instant are invalid: reading it back confirms a revoke.
    #[serde(default, deserialize_with = "lenient::option")]
    pub sign_in_sessions_valid_from_date_time: Option<DateTime<Utc>>,
    /// Primary SMTP address, for notifications.
    #[serde(default, deserialize_with = "lenient::option")]
    pub mail: Option<String>,
}

/// A group (or directory role) the user belongs to, from `transitiveMemberOf`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryObject {
    /// Object id.
    pub id: String,
    /// `#microsoft.graph.group` or `#microsoft.graph.directoryRole`.
    #[serde(default, rename = "@odata.type", deserialize_with = "lenient::option")]
    pub odata_type: Option<String>,
    /// Display name.
    #[serde(default, deserialize_with = "lenient::option")]
    pub display_name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_types_in_optional_fields_keep_the_record() {
        let user: RiskyUser = serde_json::from_str(
            r#"{"id": "u1", "isDeleted": "Boolean", "riskLastUpdatedDateTime": "String (timestamp)",
                "riskLevel": 7, "riskState": "atRisk"}"#,
        )
        .expect("optional fields are lenient");
        assert_eq!(user.id, "u1");
        assert_eq!(user.is_deleted, None);
        assert_eq!(user.risk_last_updated_date_time, None);
        assert_eq!(user.risk_level, None);
        assert_eq!(user.risk_state, Some(RiskState::AtRisk));
    }

    #[test]
    fn nulls_become_none_and_empty() {
        let sign_in: SignIn = serde_json::from_str(
            r#"{"id": "s1", "createdDateTime": "2024-05-01T10:00:00Z", "userId": "u1",
                "location": null, "riskEventTypes": null, "appliedConditionalAccessPolicies": null,
                "status": {}}"#,
        )
        .expect("nulls are accepted");
        assert_eq!(sign_in.location, None);
        assert!(sign_in.risk_event_types.is_empty());
        assert!(sign_in.applied_conditional_access_policies.is_empty());
        assert_eq!(sign_in.status, Some(SignInStatus::default()));
    }

    #[test]
    fn required_fields_stay_strict() {
        let missing_id = serde_json::from_str::<RiskyUser>(r#"{"riskLevel": "high"}"#)
            .expect_err("id is required");
        assert!(
            missing_id.to_string().contains("missing field `id`"),
            "{missing_id}"
        );

        let no_time = serde_json::from_str::<SignIn>(r#"{"id": "s1", "userId": "u1"}"#)
            .expect_err("createdDateTime is required");
        assert!(no_time.to_string().contains("createdDateTime"), "{no_time}");

        let bad_time = serde_json::from_str::<SignIn>(
            r#"{"id": "s1", "userId": "u1", "createdDateTime": "yesterday"}"#,
        )
        .expect_err("createdDateTime must be a timestamp");
        assert_eq!(bad_time.line(), 1, "{bad_time}");

        let no_user = serde_json::from_str::<SignIn>(
            r#"{"id": "s1", "createdDateTime": "2024-05-01T10:00:00Z", "userId": null}"#,
        )
        .expect_err("userId is required");
        assert!(
            no_user.to_string().contains("invalid type: null"),
            "{no_user}"
        );
    }

    #[test]
    fn unknown_fields_are_ignored_and_v2_keeps_its_wire_name() {
        let sign_in: SignIn = serde_json::from_str(
            r#"{"id": "s1", "createdDateTime": "2024-05-01T10:00:00.1234567Z", "userId": "u1",
                "tokenProtectionStatusDetails": {"x": 1}, "riskEventTypes_v2": ["newKind"]}"#,
        )
        .expect("unknown fields are ignored");
        assert_eq!(sign_in.risk_event_types_v2, ["newKind"]);
        let back = serde_json::to_value(&sign_in).expect("serialises");
        assert_eq!(back["riskEventTypes_v2"][0], "newKind");
        assert_eq!(back["userId"], "u1");
    }
}
