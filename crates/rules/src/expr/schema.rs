//! The names a `condition:` can read: the record's fields under `riskyUser`, `riskDetection`
//! or `signIn`, and the user's directory attributes under `user`, each with its CEL type.
//!
//! Every field is optional on the wire. An absent field reads as its type's zero value (`''`,
//! `0`, `false`, `[]`), as proto3 fields do in CEL; `has(...)` tells absent from present. This
//! keeps evaluation total: no field access can fail at run time.

use std::borrow::Cow;

use chrono::SecondsFormat;
use graph::models::{RiskDetection, RiskyUser, SignIn, SignInLocation};

use crate::expr::value::Val;
use crate::record::Record;
use crate::rule::Source;
use crate::userfacts::UserFacts;
use crate::vocab;

/// The static type of an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ty {
    Bool,
    Int,
    Str,
    List(Box<Ty>),
}

impl Ty {
    /// How CEL names the type, for error messages.
    pub fn name(&self) -> String {
        match self {
            Ty::Bool => "bool".to_string(),
            Ty::Int => "int".to_string(),
            Ty::Str => "string".to_string(),
            Ty::List(t) => format!("list({})", t.name()),
        }
    }

    pub fn str_list() -> Ty {
        Ty::List(Box::new(Ty::Str))
    }
}

/// A top-level name of the condition language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Root {
    RiskyUser,
    RiskDetection,
    SignIn,
    User,
}

impl Root {
    pub const ALL: [Root; 4] = [
        Root::RiskyUser,
        Root::RiskDetection,
        Root::SignIn,
        Root::User,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Root::RiskyUser => "riskyUser",
            Root::RiskDetection => "riskDetection",
            Root::SignIn => "signIn",
            Root::User => "user",
        }
    }

    pub fn from_name(name: &str) -> Option<Root> {
        Root::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Whether rules of `source` can read this root: the record of their own feed, and `user`.
    pub fn available_to(self, source: Source) -> bool {
        matches!(
            (self, source),
            (Root::User, _)
                | (Root::RiskyUser, Source::RiskyUsers)
                | (Root::RiskDetection, Source::RiskDetections)
                | (Root::SignIn, Source::SignIns | Source::PostContainment)
        )
    }

    /// The record root a source's rules read.
    pub fn of(source: Source) -> Root {
        match source {
            Source::RiskyUsers => Root::RiskyUser,
            Source::RiskDetections => Root::RiskDetection,
            Source::SignIns | Source::PostContainment => Root::SignIn,
        }
    }
}

/// One readable field: its dotted path under its root and its type.
pub(crate) struct FieldDef {
    pub root: Root,
    /// The path below the root, e.g. `location.countryOrRegion`.
    pub path: &'static str,
    pub ty: FieldTy,
    /// For Graph enums: the members a literal compared with this field must be one of.
    pub members: Option<&'static [&'static str]>,
    /// What the field holds, for the documentation.
    pub doc: &'static str,
    /// Reads the field; `None` when absent.
    pub read: Reader,
}

/// Field types (a `Ty` without the allocation, so the table can be static).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldTy {
    Bool,
    Int,
    Str,
    StrList,
}

impl FieldTy {
    pub fn ty(self) -> Ty {
        match self {
            FieldTy::Bool => Ty::Bool,
            FieldTy::Int => Ty::Int,
            FieldTy::Str => Ty::Str,
            FieldTy::StrList => Ty::str_list(),
        }
    }
}

/// Index into [`FIELDS`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct FieldId(pub u16);

/// By name, not index: the Debug form goes into rule hashes, which must not change when the
/// table is reordered.
impl std::fmt::Debug for FieldId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.full_name())
    }
}

impl FieldId {
    pub fn def(self) -> &'static FieldDef {
        &FIELDS[usize::from(self.0)]
    }

    /// `root.path`, as written in conditions and shown in explanations.
    pub fn full_name(self) -> String {
        let d = self.def();
        format!("{}.{}", d.root.name(), d.path)
    }
}

/// How a field is read: a function of the record (or of the directory's facts) it lives on.
pub(crate) enum Reader {
    RiskyUser(for<'a> fn(&'a RiskyUser) -> Option<Val<'a>>),
    RiskDetection(for<'a> fn(&'a RiskDetection) -> Option<Val<'a>>),
    SignIn(for<'a> fn(&'a SignIn) -> Option<Val<'a>>),
    User(for<'a> fn(&'a UserFacts) -> Option<Val<'a>>),
}

macro_rules! fields {
    ($( $root:ident $path:literal $ty:ident $members:expr, $doc:literal, $read:expr; )*) => {
        /// Every readable field, in documentation order.
        pub(crate) static FIELDS: &[FieldDef] = &[
            $( FieldDef {
                root: Root::$root,
                path: $path,
                ty: FieldTy::$ty,
                members: $members,
                doc: $doc,
                read: Reader::$root($read),
            }, )*
        ];
    };
}

const LEVEL: Option<&[&str]> = Some(vocab::RISK_LEVEL);
const STATE: Option<&[&str]> = Some(vocab::RISK_STATE);
const DETAIL: Option<&[&str]> = Some(vocab::RISK_DETAIL);
const EVENT: Option<&[&str]> = Some(vocab::RISK_EVENT_TYPE);
const TIMING: Option<&[&str]> = Some(vocab::DETECTION_TIMING_TYPE);

fields! {
    RiskyUser "id" Str None, "the user's object id",
        |u| s(Some(&u.id));
    RiskyUser "userPrincipalName" Str None, "UPN",
        |u| s(u.user_principal_name.as_deref());
    RiskyUser "userDisplayName" Str None, "display name",
        |u| s(u.user_display_name.as_deref());
    RiskyUser "riskLevel" Str LEVEL, "aggregated user risk: low, medium, high, hidden, none",
        |u| s(u.risk_level.as_ref().map(|v| v.as_str()));
    RiskyUser "riskState" Str STATE, "atRisk, confirmedCompromised, remediated, dismissed, ...",
        |u| s(u.risk_state.as_ref().map(|v| v.as_str()));
    RiskyUser "riskDetail" Str DETAIL, "why the risk state last changed",
        |u| s(u.risk_detail.as_ref().map(|v| v.as_str()));
    RiskyUser "riskLastUpdatedDateTime" Str None, "RFC 3339 UTC timestamp",
        |u| time(u.risk_last_updated_date_time.as_ref());
    RiskyUser "isProcessing" Bool None, "Identity Protection is still computing the risk",
        |u| u.is_processing.map(Val::Bool);
    RiskyUser "isDeleted" Bool None, "the user has been deleted",
        |u| u.is_deleted.map(Val::Bool);

    RiskDetection "id" Str None, "the detection's id",
        |d| s(Some(&d.id));
    RiskDetection "userId" Str None, "object id of the user concerned",
        |d| s(d.user_id.as_deref());
    RiskDetection "userPrincipalName" Str None, "UPN",
        |d| s(d.user_principal_name.as_deref());
    RiskDetection "userDisplayName" Str None, "display name",
        |d| s(d.user_display_name.as_deref());
    RiskDetection "riskEventType" Str EVENT, "unlikelyTravel, leakedCredentials, passwordSpray, ...",
        |d| s(d.risk_event_type.as_deref());
    RiskDetection "riskLevel" Str LEVEL, "how risky this detection is",
        |d| s(d.risk_level.as_ref().map(|v| v.as_str()));
    RiskDetection "riskState" Str STATE, "where the detection stands",
        |d| s(d.risk_state.as_ref().map(|v| v.as_str()));
    RiskDetection "riskDetail" Str DETAIL, "why the risk state last changed",
        |d| s(d.risk_detail.as_ref().map(|v| v.as_str()));
    RiskDetection "detectionTimingType" Str TIMING, "realtime, nearRealtime, offline",
        |d| s(d.detection_timing_type.as_ref().map(|v| v.as_str()));
    RiskDetection "activity" Str None, "signin or user",
        |d| s(d.activity.as_ref().map(|v| v.as_str()));
    RiskDetection "source" Str None, "the detecting system, e.g. IdentityProtection",
        |d| s(d.source.as_deref());
    RiskDetection "tokenIssuerType" Str None, "AzureAD, ADFederationServices, ...",
        |d| s(d.token_issuer_type.as_ref().map(|v| v.as_str()));
    RiskDetection "ipAddress" Str None, "client IP address",
        |d| s(d.ip_address.as_deref());
    RiskDetection "location.city" Str None, "city",
        |d| loc(d.location.as_ref(), "city");
    RiskDetection "location.state" Str None, "state or province",
        |d| loc(d.location.as_ref(), "state");
    RiskDetection "location.countryOrRegion" Str None, "two-letter country code",
        |d| loc(d.location.as_ref(), "country");
    RiskDetection "correlationId" Str None, "correlation id of the sign-in",
        |d| s(d.correlation_id.as_deref());
    RiskDetection "requestId" Str None, "request id of the sign-in",
        |d| s(d.request_id.as_deref());
    RiskDetection "additionalInfo" Str None, "extra detail, a JSON-encoded string",
        |d| s(d.additional_info.as_deref());
    RiskDetection "detectedDateTime" Str None, "RFC 3339 UTC timestamp",
        |d| time(d.detected_date_time.as_ref());
    RiskDetection "activityDateTime" Str None, "RFC 3339 UTC timestamp",
        |d| time(d.activity_date_time.as_ref());

    SignIn "id" Str None, "the sign-in's id",
        |si| s(Some(&si.id));
    SignIn "createdDateTime" Str None, "RFC 3339 UTC timestamp (always present)",
        |si| time(Some(&si.created_date_time));
    SignIn "userId" Str None, "object id of the user (always present)",
        |si| s(Some(&si.user_id));
    SignIn "userPrincipalName" Str None, "UPN",
        |si| s(si.user_principal_name.as_deref());
    SignIn "userDisplayName" Str None, "display name",
        |si| s(si.user_display_name.as_deref());
    SignIn "appId" Str None, "application id signed in to",
        |si| s(si.app_id.as_deref());
    SignIn "appDisplayName" Str None, "application name",
        |si| s(si.app_display_name.as_deref());
    SignIn "ipAddress" Str None, "client IP address, IPv4 or IPv6",
        |si| s(si.ip_address.as_deref());
    SignIn "clientAppUsed" Str None, "Browser, Exchange ActiveSync, IMAP4, ...",
        |si| s(si.client_app_used.as_deref());
    SignIn "isInteractive" Bool None, "the user was present",
        |si| si.is_interactive.map(Val::Bool);
    SignIn "resourceId" Str None, "resource signed in to",
        |si| s(si.resource_id.as_deref());
    SignIn "resourceDisplayName" Str None, "resource name",
        |si| s(si.resource_display_name.as_deref());
    SignIn "userAgent" Str None, "the client's user agent",
        |si| s(si.user_agent.as_deref());
    SignIn "correlationId" Str None, "correlates with risk detections",
        |si| s(si.correlation_id.as_deref());
    SignIn "homeTenantId" Str None, "the user's home tenant",
        |si| s(si.home_tenant_id.as_deref());
    SignIn "conditionalAccessStatus" Str None, "success, failure, notApplied",
        |si| s(si.conditional_access_status.as_ref().map(|v| v.as_str()));
    SignIn "riskLevelAggregated" Str LEVEL, "risk over the sign-in and later detections",
        |si| s(si.risk_level_aggregated.as_ref().map(|v| v.as_str()));
    SignIn "riskLevelDuringSignIn" Str LEVEL, "risk computed while signing in",
        |si| s(si.risk_level_during_sign_in.as_ref().map(|v| v.as_str()));
    SignIn "riskState" Str STATE, "where the sign-in's risk stands",
        |si| s(si.risk_state.as_ref().map(|v| v.as_str()));
    SignIn "riskDetail" Str DETAIL, "why the risk state last changed",
        |si| s(si.risk_detail.as_ref().map(|v| v.as_str()));
    SignIn "riskEventTypes" StrList None, "risk types detected (the older, closed list)",
        |si| Some(Val::List(si.risk_event_types.iter().map(|t| Val::Str(Cow::Borrowed(t.as_str()))).collect()));
    SignIn "riskEventTypes_v2" StrList None, "risk types detected (free strings)",
        |si| Some(Val::List(si.risk_event_types_v2.iter().map(|t| Val::Str(Cow::Borrowed(t.as_str()))).collect()));
    SignIn "location.city" Str None, "city",
        |si| loc(si.location.as_ref(), "city");
    SignIn "location.state" Str None, "state or province",
        |si| loc(si.location.as_ref(), "state");
    SignIn "location.countryOrRegion" Str None, "two-letter country code",
        |si| loc(si.location.as_ref(), "country");
    SignIn "status.errorCode" Int None, "AADSTS error code; 0 is success",
        |si| si.status.as_ref().and_then(|st| st.error_code).map(|c| Val::Int(c.into()));
    SignIn "status.failureReason" Str None, "why the sign-in failed",
        |si| s(si.status.as_ref().and_then(|st| st.failure_reason.as_deref()));
    SignIn "status.additionalDetails" Str None, "extra detail on the outcome",
        |si| s(si.status.as_ref().and_then(|st| st.additional_details.as_deref()));
    SignIn "deviceDetail.deviceId" Str None, "Entra device id",
        |si| s(si.device_detail.as_ref().and_then(|d| d.device_id.as_deref()));
    SignIn "deviceDetail.displayName" Str None, "device name",
        |si| s(si.device_detail.as_ref().and_then(|d| d.display_name.as_deref()));
    SignIn "deviceDetail.operatingSystem" Str None, "operating system",
        |si| s(si.device_detail.as_ref().and_then(|d| d.operating_system.as_deref()));
    SignIn "deviceDetail.browser" Str None, "browser and version",
        |si| s(si.device_detail.as_ref().and_then(|d| d.browser.as_deref()));
    SignIn "deviceDetail.trustType" Str None, "how the device is joined",
        |si| s(si.device_detail.as_ref().and_then(|d| d.trust_type.as_deref()));
    SignIn "deviceDetail.isCompliant" Bool None, "the device is compliant",
        |si| si.device_detail.as_ref().and_then(|d| d.is_compliant).map(Val::Bool);
    SignIn "deviceDetail.isManaged" Bool None, "the device is managed",
        |si| si.device_detail.as_ref().and_then(|d| d.is_managed).map(Val::Bool);

    User "department" Str None, "department",
        |u| s(u.department.as_deref());
    User "jobTitle" Str None, "job title",
        |u| s(u.job_title.as_deref());
    User "accountEnabled" Bool None, "whether the account can sign in",
        |u| u.account_enabled.map(Val::Bool);
    User "userType" Str None, "Member or Guest",
        |u| s(u.user_type.as_deref());
    User "onPremisesSyncEnabled" Bool None, "synced from on-premises AD",
        |u| u.on_premises_sync_enabled.map(Val::Bool);
    User "groups" StrList None, "display names and object ids of the groups the user is a transitive member of",
        |u| u.groups.as_ref().map(|g| Val::List(g.iter().map(|n| Val::Str(Cow::Borrowed(n.as_str()))).collect()));
}

/// Every name a condition can read: `(name, CEL type, what it holds)`, in documentation order.
pub(crate) fn documented() -> impl Iterator<Item = (String, String, &'static str)> {
    FIELDS.iter().map(|f| {
        (
            format!("{}.{}", f.root.name(), f.path),
            f.ty.ty().name(),
            f.doc,
        )
    })
}

/// The field at `root.path`, if there is one.
pub(crate) fn lookup(root: Root, path: &str) -> Option<FieldId> {
    FIELDS
        .iter()
        .position(|f| f.root == root && f.path == path)
        .and_then(|i| u16::try_from(i).ok())
        .map(FieldId)
}

/// Whether some field lives below `root.prefix.` (so `signIn.location` is a valid step).
pub(crate) fn is_group(root: Root, prefix: &str) -> bool {
    FIELDS.iter().any(|f| {
        f.root == root
            && f.path.len() > prefix.len()
            && f.path.starts_with(prefix)
            && f.path.as_bytes().get(prefix.len()) == Some(&b'.')
    })
}

/// The names directly below `root.prefix` (`prefix` empty for the root itself), for "did you
/// mean" messages.
pub(crate) fn children(root: Root, prefix: &str) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = FIELDS
        .iter()
        .filter(|f| f.root == root)
        .filter_map(|f| {
            let rest = if prefix.is_empty() {
                Some(f.path)
            } else {
                f.path
                    .strip_prefix(prefix)
                    .and_then(|r| r.strip_prefix('.'))
            }?;
            Some(rest.split('.').next().unwrap_or(rest))
        })
        .collect();
    names.dedup();
    names
}

/// What a condition sees of one evaluation: the record and what the directory said of its user.
#[derive(Clone, Copy)]
pub(crate) struct Input<'a> {
    pub record: &'a Record<'a>,
    pub user: Option<&'a UserFacts>,
}

fn s(v: Option<&str>) -> Option<Val<'_>> {
    v.map(|v| Val::Str(Cow::Borrowed(v)))
}

fn time(t: Option<&chrono::DateTime<chrono::Utc>>) -> Option<Val<'static>> {
    t.map(|t| Val::Str(Cow::Owned(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))))
}

fn loc<'a>(l: Option<&'a SignInLocation>, what: &str) -> Option<Val<'a>> {
    let l = l?;
    s(match what {
        "city" => l.city.as_deref(),
        "state" => l.state.as_deref(),
        _ => l.country_or_region.as_deref(),
    })
}

/// Reads a field; `None` when the record lacks it (or is of another feed, or the directory
/// sent nothing for the user).
pub(crate) fn read<'a>(field: FieldId, input: Input<'a>) -> Option<Val<'a>> {
    match (&field.def().read, input.record) {
        (Reader::RiskyUser(f), Record::RiskyUser(u)) => f(u),
        (Reader::RiskDetection(f), Record::RiskDetection(d)) => f(d),
        (Reader::SignIn(f), Record::SignIn(si) | Record::PostContainment(si)) => f(si),
        (Reader::User(f), _) => f(input.user?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_a_reader_on_a_full_record() {
        let sign_in: SignIn = serde_json::from_value(serde_json::json!({
            "id": "s", "createdDateTime": "2026-11-01T10:00:00Z", "userId": "u",
            "userPrincipalName": "a@b", "userDisplayName": "A", "appId": "x", "appDisplayName": "X",
            "ipAddress": "1.2.3.4", "clientAppUsed": "Browser", "isInteractive": true,
            "resourceId": "r", "resourceDisplayName": "R", "userAgent": "ua", "correlationId": "c",
            "homeTenantId": "t", "conditionalAccessStatus": "success", "riskLevelAggregated": "high",
            "riskLevelDuringSignIn": "high", "riskState": "atRisk", "riskDetail": "none",
            "riskEventTypes": ["unlikelyTravel"], "riskEventTypes_v2": ["x"],
            "location": {"city": "c", "state": "s", "countryOrRegion": "NL"},
            "status": {"errorCode": 0, "failureReason": "f", "additionalDetails": "d"},
            "deviceDetail": {"deviceId": "d", "displayName": "n", "operatingSystem": "o",
                "browser": "b", "trustType": "t", "isCompliant": true, "isManaged": true}
        }))
        .expect("full sign-in");
        let user: RiskyUser = serde_json::from_value(serde_json::json!({
            "id": "u", "userPrincipalName": "a", "userDisplayName": "A", "riskLevel": "high",
            "riskState": "atRisk", "riskDetail": "none", "riskLastUpdatedDateTime": "2026-11-01T10:00:00Z",
            "isProcessing": false, "isDeleted": false
        }))
        .expect("full risky user");
        let detection: RiskDetection = serde_json::from_value(serde_json::json!({
            "id": "d", "userId": "u", "userPrincipalName": "a", "userDisplayName": "A",
            "riskEventType": "x", "riskLevel": "high", "riskState": "atRisk", "riskDetail": "none",
            "detectionTimingType": "offline", "activity": "user", "source": "s",
            "tokenIssuerType": "AzureAD", "ipAddress": "1.2.3.4",
            "location": {"city": "c", "state": "s", "countryOrRegion": "NL"},
            "correlationId": "c", "requestId": "r", "additionalInfo": "[]",
            "detectedDateTime": "2026-11-01T10:00:00Z", "activityDateTime": "2026-11-01T10:00:00Z"
        }))
        .expect("full detection");
        let facts = UserFacts {
            department: Some("d".into()),
            job_title: Some("j".into()),
            account_enabled: Some(true),
            user_type: Some("Member".into()),
            on_premises_sync_enabled: Some(false),
            groups: Some(vec!["g".into()]),
        };
        let records = [
            Record::SignIn(&sign_in),
            Record::RiskyUser(&user),
            Record::RiskDetection(&detection),
        ];
        for (i, _) in FIELDS.iter().enumerate() {
            let id = FieldId(u16::try_from(i).expect("small table"));
            let found = records.iter().any(|r| {
                read(
                    id,
                    Input {
                        record: r,
                        user: Some(&facts),
                    },
                )
                .is_some()
            });
            assert!(found, "no reader for {}", id.full_name());
        }
    }

    #[test]
    fn groups_and_children_describe_the_tree() {
        assert!(is_group(Root::SignIn, "location"));
        assert!(!is_group(Root::SignIn, "ipAddress"));
        assert!(children(Root::SignIn, "status").contains(&"errorCode"));
        assert!(children(Root::SignIn, "").contains(&"location"));
    }
}
