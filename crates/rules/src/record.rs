//! The records rules are evaluated against, and the only place that reads their fields.

use graph::models::{RiskDetection, RiskyUser, SignIn};
use serde_json::Value;

use crate::rule::Source;

/// One typed record from a Graph feed, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub enum Record<'a> {
    /// An entry of `/identityProtection/riskyUsers`.
    RiskyUser(&'a RiskyUser),
    /// An entry of `/identityProtection/riskDetections`.
    RiskDetection(&'a RiskDetection),
    /// An entry of `/auditLogs/signIns`.
    SignIn(&'a SignIn),
    /// A successful sign-in by a user revokd contained, made after the revocation took
    /// effect: seen only by `post_containment` rules.
    PostContainment(&'a SignIn),
}

impl Record<'_> {
    /// The feed the record came from: only rules of this source see it.
    pub fn source(&self) -> Source {
        match self {
            Record::RiskyUser(_) => Source::RiskyUsers,
            Record::RiskDetection(_) => Source::RiskDetections,
            Record::SignIn(_) => Source::SignIns,
            Record::PostContainment(_) => Source::PostContainment,
        }
    }

    /// The object id of the user the record is about: whom an action would target.
    pub fn user_id(&self) -> Option<&str> {
        let id = match self {
            // A riskyUser's id is the user's object id.
            Record::RiskyUser(u) => Some(u.id.as_str()),
            Record::RiskDetection(d) => d.user_id.as_deref(),
            Record::SignIn(s) | Record::PostContainment(s) => Some(s.user_id.as_str()),
        };
        id.filter(|id| !id.is_empty())
    }

    /// The user's UPN, for people reading decisions and for UPN-based rules.
    pub fn user_principal_name(&self) -> Option<&str> {
        match self {
            Record::RiskyUser(u) => u.user_principal_name.as_deref(),
            Record::RiskDetection(d) => d.user_principal_name.as_deref(),
            Record::SignIn(s) | Record::PostContainment(s) => s.user_principal_name.as_deref(),
        }
    }

    /// The value of `field` as Graph sent it; `Null` when absent or not a field of this
    /// record's type.
    pub(crate) fn field(&self, field: Field) -> Value {
        match self {
            Record::RiskyUser(u) => risky_user_field(u, field),
            Record::RiskDetection(d) => risk_detection_field(d, field),
            Record::SignIn(s) | Record::PostContainment(s) => sign_in_field(s, field),
        }
    }
}

/// A record field rules can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    RiskLevel,
    RiskState,
    RiskDetail,
    RiskEventType,
    DetectionTimingType,
    UserPrincipalName,
    IsProcessing,
    IpAddress,
    Country,
    AppId,
    AppDisplayName,
    StatusErrorCode,
    RiskLevelDuringSignIn,
    RiskLevelAggregated,
}

impl Field {
    /// The Graph wire name, dotted for nested fields: what explanations show.
    pub fn wire_name(self) -> &'static str {
        match self {
            Field::RiskLevel => "riskLevel",
            Field::RiskState => "riskState",
            Field::RiskDetail => "riskDetail",
            Field::RiskEventType => "riskEventType",
            Field::DetectionTimingType => "detectionTimingType",
            Field::UserPrincipalName => "userPrincipalName",
            Field::IsProcessing => "isProcessing",
            Field::IpAddress => "ipAddress",
            Field::Country => "location.countryOrRegion",
            Field::AppId => "appId",
            Field::AppDisplayName => "appDisplayName",
            Field::StatusErrorCode => "status.errorCode",
            Field::RiskLevelDuringSignIn => "riskLevelDuringSignIn",
            Field::RiskLevelAggregated => "riskLevelAggregated",
        }
    }
}

/// A string field as JSON: Graph's own spelling for enum members, `null` when absent.
fn text(value: Option<&str>) -> Value {
    value.map_or(Value::Null, |v| Value::String(v.to_owned()))
}

fn risky_user_field(u: &RiskyUser, field: Field) -> Value {
    match field {
        Field::RiskLevel => text(u.risk_level.as_ref().map(|v| v.as_str())),
        Field::RiskState => text(u.risk_state.as_ref().map(|v| v.as_str())),
        Field::RiskDetail => text(u.risk_detail.as_ref().map(|v| v.as_str())),
        Field::UserPrincipalName => text(u.user_principal_name.as_deref()),
        Field::IsProcessing => u.is_processing.map_or(Value::Null, Value::Bool),
        _ => Value::Null,
    }
}

fn risk_detection_field(d: &RiskDetection, field: Field) -> Value {
    match field {
        Field::RiskEventType => text(d.risk_event_type.as_deref()),
        Field::RiskLevel => text(d.risk_level.as_ref().map(|v| v.as_str())),
        Field::RiskState => text(d.risk_state.as_ref().map(|v| v.as_str())),
        Field::DetectionTimingType => text(d.detection_timing_type.as_ref().map(|v| v.as_str())),
        Field::IpAddress => text(d.ip_address.as_deref()),
        Field::Country => text(
            d.location
                .as_ref()
                .and_then(|l| l.country_or_region.as_deref()),
        ),
        Field::UserPrincipalName => text(d.user_principal_name.as_deref()),
        _ => Value::Null,
    }
}

fn sign_in_field(s: &SignIn, field: Field) -> Value {
    match field {
        Field::IpAddress => text(s.ip_address.as_deref()),
        Field::Country => text(
            s.location
                .as_ref()
                .and_then(|l| l.country_or_region.as_deref()),
        ),
        Field::AppId => text(s.app_id.as_deref()),
        Field::AppDisplayName => text(s.app_display_name.as_deref()),
        Field::StatusErrorCode => s
            .status
            .as_ref()
            .and_then(|st| st.error_code)
            .map_or(Value::Null, Value::from),
        Field::RiskLevelDuringSignIn => {
            text(s.risk_level_during_sign_in.as_ref().map(|v| v.as_str()))
        }
        Field::RiskLevelAggregated => text(s.risk_level_aggregated.as_ref().map(|v| v.as_str())),
        Field::RiskState => text(s.risk_state.as_ref().map(|v| v.as_str())),
        Field::UserPrincipalName => text(s.user_principal_name.as_deref()),
        _ => Value::Null,
    }
}

/// A record of any feed, owned: what rule test cases and `revokd replay` read from JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedRecord {
    /// An entry of `/identityProtection/riskyUsers`.
    RiskyUser(RiskyUser),
    /// An entry of `/identityProtection/riskDetections` (boxed: several times larger).
    RiskDetection(Box<RiskDetection>),
    /// An entry of `/auditLogs/signIns` (boxed: several times larger).
    SignIn(Box<SignIn>),
    /// A sign-in read as a `post_containment` record (boxed: several times larger).
    PostContainment(Box<SignIn>),
}

impl OwnedRecord {
    /// Reads `value` as a record of `source`.
    ///
    /// # Errors
    /// serde's message when a required field (`id`; for sign-ins `createdDateTime` and
    /// `userId`) is missing or mistyped. Unknown fields and wrongly typed optional ones do not
    /// fail: the models are lenient, as with live Graph pages.
    pub fn from_json(source: Source, value: Value) -> Result<OwnedRecord, serde_json::Error> {
        Ok(match source {
            Source::RiskyUsers => OwnedRecord::RiskyUser(serde_json::from_value(value)?),
            Source::RiskDetections => {
                OwnedRecord::RiskDetection(Box::new(serde_json::from_value(value)?))
            }
            Source::SignIns => OwnedRecord::SignIn(Box::new(serde_json::from_value(value)?)),
            Source::PostContainment => {
                OwnedRecord::PostContainment(Box::new(serde_json::from_value(value)?))
            }
        })
    }

    /// The record, borrowed, for evaluation.
    pub fn as_record(&self) -> Record<'_> {
        match self {
            OwnedRecord::RiskyUser(r) => Record::RiskyUser(r),
            OwnedRecord::RiskDetection(r) => Record::RiskDetection(r),
            OwnedRecord::SignIn(r) => Record::SignIn(r),
            OwnedRecord::PostContainment(r) => Record::PostContainment(r),
        }
    }

    /// The record's own id.
    pub fn id(&self) -> &str {
        match self {
            OwnedRecord::RiskyUser(r) => &r.id,
            OwnedRecord::RiskDetection(r) => &r.id,
            OwnedRecord::SignIn(r) | OwnedRecord::PostContainment(r) => &r.id,
        }
    }

    /// When the record happened, as Graph dates it: a sign-in's `createdDateTime`, a
    /// detection's `detectedDateTime`, a risky user's `riskLastUpdatedDateTime`.
    pub fn time(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        match self {
            OwnedRecord::RiskyUser(r) => r.risk_last_updated_date_time,
            OwnedRecord::RiskDetection(r) => r.detected_date_time.or(r.activity_date_time),
            OwnedRecord::SignIn(r) | OwnedRecord::PostContainment(r) => Some(r.created_date_time),
        }
    }
}

/// Which feed a JSON record most likely came from, by the fields only that feed has; `None`
/// when nothing tells.
pub fn detect_source(value: &Value) -> Option<Source> {
    let object = value.as_object()?;
    let has = |k: &str| object.contains_key(k);
    if has("createdDateTime") && has("userId") {
        return Some(Source::SignIns);
    }
    if has("riskEventType") || has("detectedDateTime") || has("detectionTimingType") {
        return Some(Source::RiskDetections);
    }
    if has("riskLastUpdatedDateTime")
        || has("isProcessing")
        || (has("riskLevel") && has("riskState"))
    {
        return Some(Source::RiskyUsers);
    }
    None
}

/// Which feed a Graph list page came from, by its `@odata.context`, e.g.
/// `https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns`.
pub fn source_of_context(context: &str) -> Option<Source> {
    let fragment = context.rsplit('#').next()?;
    let lower = fragment.to_ascii_lowercase();
    if lower.contains("signins") {
        Some(Source::SignIns)
    } else if lower.contains("riskdetections") {
        Some(Source::RiskDetections)
    } else if lower.contains("riskyusers") {
        Some(Source::RiskyUsers)
    } else {
        None
    }
}
