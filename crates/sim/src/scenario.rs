//! The scenario file: who is in the simulated tenant, what its feeds show and when, its quotas
//! and its faults.
//!
//! Times are humantime durations relative to the simulator's start: `appears_after` is when a
//! record becomes visible, `*_ago` says how old it already is at that moment (so a sign-in with
//! `appears_after: 30s, created_ago: 5m` reaches the log 30 s in, already 5 minutes old: log
//! latency). `changes` and `republish` make feeds evolve while a client watches.
//!
//! Parsing rejects unknown keys and duplicate keys, and cross-checks references (a sign-in's
//! user must exist) with `file:line:col` errors. Risk values are free strings on purpose: Graph
//! adds enum members over time, and a scenario must be able to serve ones a client does not know.

use crate::error::SimError;
use crate::fault::FaultSpec;
use crate::quota::Quotas;
use serde::{Deserialize, Deserializer};
use serde_saphyr::{Location, Spanned};
use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::path::Path;
use std::time::Duration;

/// The embedded demo scenario, also shipped as `config/scenarios/demo.yaml`.
const DEMO: &str = include_str!("../../../config/scenarios/demo.yaml");

/// Upper bound for one generator's `count`, so a typo cannot exhaust memory.
const MAX_GENERATED: usize = 200_000;

/// A whole simulated tenant. Build it with [`Scenario::from_yaml`], [`Scenario::load`] or
/// [`Scenario::demo`]; those also cross-check references that plain deserialization cannot.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The directory (tenant) id the token endpoint accepts in its path.
    pub(crate) tenant_id: String,
    /// App registrations that may get tokens (client credentials).
    pub(crate) clients: Spanned<Vec<ClientSpec>>,
    /// Lifetime of issued access tokens (`expires_in`); Entra's default is 3599 s.
    #[serde(default = "default_token_lifetime", with = "humantime_serde")]
    pub(crate) token_lifetime: Duration,
    /// Caps every page of every list, so paging shows up with few records.
    #[serde(default)]
    pub(crate) page_size: Option<NonZeroUsize>,
    /// Per-class throttling limits; defaults are Graph's published ones.
    #[serde(default)]
    pub(crate) quotas: Quotas,
    /// Groups with pinned ids; groups named only in a user's `groups` get a derived id.
    #[serde(default)]
    pub(crate) groups: Vec<GroupSpec>,
    /// The directory's users; those with `risk` are listed by riskyUsers.
    #[serde(default)]
    pub(crate) users: Vec<UserSpec>,
    /// The sign-in log.
    #[serde(default)]
    pub(crate) sign_ins: Vec<SignInSpec>,
    /// The risk detection feed.
    #[serde(default)]
    pub(crate) risk_detections: Vec<RiskDetectionSpec>,
    /// Faults armed from the start.
    #[serde(default)]
    pub(crate) faults: Vec<FaultSpec>,
    /// Bulk records for benchmarks, without listing them one by one.
    #[serde(default)]
    pub(crate) generate: Generate,
}

fn default_token_lifetime() -> Duration {
    Duration::from_secs(3599)
}

/// One app registration allowed to use the client-credentials grant.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientSpec {
    /// The application (client) id.
    pub(crate) client_id: String,
    /// The client secret value.
    pub(crate) client_secret: String,
}

impl std::fmt::Debug for ClientSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSpec")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// A group with a pinned object id, so configs can name it by id.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupSpec {
    /// Object id; derived from the name when omitted.
    #[serde(default)]
    pub(crate) id: Option<String>,
    /// Display name, which users' `groups` lists refer to.
    #[serde(rename = "displayName")]
    pub(crate) display_name: String,
}

/// Member or guest (B2B); revocation is not effective for guests in real Entra ID.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub(crate) enum UserType {
    /// A member of the tenant.
    #[default]
    Member,
    /// An external (B2B) user.
    Guest,
}

impl UserType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            UserType::Member => "Member",
            UserType::Guest => "Guest",
        }
    }
}

/// A directory user. Graph property names are spelt as Graph spells them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserSpec {
    /// Object id (a GUID); derived from the UPN when omitted.
    #[serde(default)]
    pub(crate) id: Option<Spanned<String>>,
    /// Sign-in name; lookups by UPN are case-insensitive like Graph's.
    #[serde(rename = "userPrincipalName")]
    pub(crate) upn: Spanned<String>,
    /// Display name; derived from the UPN when omitted.
    #[serde(rename = "displayName", default)]
    pub(crate) display_name: Option<String>,
    /// Department, for rules that scope by org.
    #[serde(default)]
    pub(crate) department: Option<String>,
    /// Job title.
    #[serde(rename = "jobTitle", default)]
    pub(crate) job_title: Option<String>,
    /// Whether the account can sign in; PATCH can change it.
    #[serde(rename = "accountEnabled", default = "yes")]
    pub(crate) account_enabled: bool,
    /// Member or Guest.
    #[serde(rename = "userType", default)]
    pub(crate) user_type: UserType,
    /// Display names (or ids) of groups the user is a transitive member of.
    #[serde(default)]
    pub(crate) groups: Vec<String>,
    /// The user's risk once `appears_after` has passed; without it the user is not risky.
    #[serde(default)]
    pub(crate) risk: Option<RiskSpec>,
    /// When `risk` shows up in riskyUsers.
    #[serde(default, with = "humantime_serde")]
    pub(crate) appears_after: Duration,
    /// Later risk changes, each at `after` from the start.
    #[serde(default)]
    pub(crate) changes: Vec<RiskChange>,
}

fn yes() -> bool {
    true
}

/// A risky user's risk as riskyUsers shows it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RiskSpec {
    /// riskLevel: low, medium, high, hidden, none, or anything newer.
    pub(crate) level: String,
    /// riskState: atRisk, confirmedCompromised, remediated, dismissed, confirmedSafe, none, ...
    pub(crate) state: String,
    /// riskDetail, `none` by default.
    #[serde(default = "none")]
    pub(crate) detail: String,
    /// How old riskLastUpdatedDateTime already is when this risk shows up.
    #[serde(default, with = "humantime_serde")]
    pub(crate) last_updated_ago: Duration,
}

fn none() -> String {
    "none".to_string()
}

/// A scheduled change of a user's risk.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RiskChange {
    /// When it happens, from the simulator's start.
    #[serde(with = "humantime_serde")]
    pub(crate) after: Duration,
    /// The risk from then on.
    pub(crate) risk: RiskSpec,
}

/// One sign-in log entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignInSpec {
    /// Sign-in id; derived from its position when omitted.
    #[serde(default)]
    pub(crate) id: Option<Spanned<String>>,
    /// The user (object id or UPN of a scenario user).
    pub(crate) user: Spanned<String>,
    /// How old createdDateTime already is when the entry reaches the log.
    #[serde(default, with = "humantime_serde")]
    pub(crate) created_ago: Duration,
    /// When the entry reaches the log (log latency).
    #[serde(default, with = "humantime_serde")]
    pub(crate) appears_after: Duration,
    /// Client IP address.
    #[serde(default = "default_ip")]
    pub(crate) ip: String,
    /// location.countryOrRegion (two-letter code).
    #[serde(default)]
    pub(crate) country: Option<String>,
    /// location.state.
    #[serde(default)]
    pub(crate) region: Option<String>,
    /// location.city.
    #[serde(default)]
    pub(crate) city: Option<String>,
    /// appDisplayName; well-known apps get their real appId.
    #[serde(default = "default_app")]
    pub(crate) app: String,
    /// clientAppUsed.
    #[serde(default = "default_client_app")]
    pub(crate) client_app: String,
    /// userAgent.
    #[serde(default)]
    pub(crate) user_agent: Option<String>,
    /// Interactive sign-ins are in v1.0; non-interactive ones only on beta with a
    /// `signInEventTypes/any(...)` filter, like Graph.
    #[serde(default = "yes")]
    pub(crate) interactive: bool,
    /// status.errorCode: 0 is success.
    #[serde(default)]
    pub(crate) status_code: i32,
    /// status.failureReason; a generic one is filled in for failures when omitted.
    #[serde(default)]
    pub(crate) failure_reason: Option<String>,
    /// riskLevelDuringSignIn as first published.
    #[serde(default)]
    pub(crate) risk_level_during_sign_in: Option<String>,
    /// riskLevelAggregated as first published.
    #[serde(default)]
    pub(crate) risk_level_aggregated: Option<String>,
    /// riskState as first published.
    #[serde(default)]
    pub(crate) risk_state: Option<String>,
    /// riskDetail as first published.
    #[serde(default)]
    pub(crate) risk_detail: Option<String>,
    /// riskEventTypes_v2 (and the legacy riskEventTypes) as first published.
    #[serde(default)]
    pub(crate) risk_event_types: Option<Vec<String>>,
    /// Graph re-publishing the same sign-in id later with risk data.
    #[serde(default)]
    pub(crate) republish: Option<SignInRepublish>,
}

fn default_ip() -> String {
    "198.51.100.10".to_string()
}

fn default_app() -> String {
    "Office 365 Exchange Online".to_string()
}

fn default_client_app() -> String {
    "Browser".to_string()
}

/// The republished version of a sign-in: the given risk properties replace the first ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignInRepublish {
    /// When the new version replaces the first, from the simulator's start.
    #[serde(with = "humantime_serde")]
    pub(crate) after: Duration,
    /// riskLevelDuringSignIn.
    #[serde(default)]
    pub(crate) risk_level_during_sign_in: Option<String>,
    /// riskLevelAggregated.
    #[serde(default)]
    pub(crate) risk_level_aggregated: Option<String>,
    /// riskState.
    #[serde(default)]
    pub(crate) risk_state: Option<String>,
    /// riskDetail.
    #[serde(default)]
    pub(crate) risk_detail: Option<String>,
    /// riskEventTypes_v2.
    #[serde(default)]
    pub(crate) risk_event_types: Option<Vec<String>>,
}

/// One risk detection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RiskDetectionSpec {
    /// Detection id; derived from its position when omitted.
    #[serde(default)]
    pub(crate) id: Option<Spanned<String>>,
    /// The user (object id or UPN of a scenario user).
    pub(crate) user: Spanned<String>,
    /// riskEventType (unfamiliarFeatures, anonymizedIPAddress, leakedCredentials, ...).
    #[serde(default = "default_event_type")]
    pub(crate) risk_event_type: String,
    /// riskLevel.
    #[serde(default = "default_detection_level")]
    pub(crate) risk_level: String,
    /// riskState.
    #[serde(default = "default_at_risk")]
    pub(crate) risk_state: String,
    /// riskDetail.
    #[serde(default = "none")]
    pub(crate) risk_detail: String,
    /// detectionTimingType: realtime, nearRealtime, offline.
    #[serde(default = "default_timing")]
    pub(crate) timing: String,
    /// activity: signin or user.
    #[serde(default = "default_activity")]
    pub(crate) activity: String,
    /// source.
    #[serde(default = "default_source")]
    pub(crate) source: String,
    /// requestId: the id of the sign-in this detection is about; derived when omitted.
    #[serde(default)]
    pub(crate) request_id: Option<String>,
    /// ipAddress.
    #[serde(default = "default_ip")]
    pub(crate) ip: String,
    /// location.countryOrRegion.
    #[serde(default)]
    pub(crate) country: Option<String>,
    /// location.state.
    #[serde(default)]
    pub(crate) region: Option<String>,
    /// location.city.
    #[serde(default)]
    pub(crate) city: Option<String>,
    /// How old detectedDateTime already is when the detection appears.
    #[serde(default, with = "humantime_serde")]
    pub(crate) detected_ago: Duration,
    /// When the detection appears in the feed.
    #[serde(default, with = "humantime_serde")]
    pub(crate) appears_after: Duration,
    /// A later update of the same detection (lastUpdatedDateTime moves to that moment).
    #[serde(default)]
    pub(crate) republish: Option<DetectionRepublish>,
}

fn default_event_type() -> String {
    "unfamiliarFeatures".to_string()
}
fn default_detection_level() -> String {
    "medium".to_string()
}
fn default_at_risk() -> String {
    "atRisk".to_string()
}
fn default_timing() -> String {
    "realtime".to_string()
}
fn default_activity() -> String {
    "signin".to_string()
}
fn default_source() -> String {
    "IdentityProtection".to_string()
}

/// The updated version of a risk detection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DetectionRepublish {
    /// When the update happens, from the simulator's start.
    #[serde(with = "humantime_serde")]
    pub(crate) after: Duration,
    /// New riskLevel.
    #[serde(default)]
    pub(crate) risk_level: Option<String>,
    /// New riskState.
    #[serde(default)]
    pub(crate) risk_state: Option<String>,
    /// New riskDetail.
    #[serde(default)]
    pub(crate) risk_detail: Option<String>,
}

/// Bulk generators (`generate:`), for benchmarks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Generate {
    /// Risky users named by a UPN pattern.
    #[serde(default)]
    pub(crate) risky_users: Option<GenRiskyUsers>,
    /// Sign-ins spread over users named by a UPN pattern.
    #[serde(default)]
    pub(crate) sign_ins: Option<GenSignIns>,
    /// Risk detections spread over users named by a UPN pattern.
    #[serde(default)]
    pub(crate) risk_detections: Option<GenDetections>,
}

/// A UPN template with `{n}` standing for 1, 2, 3, ...
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern(String);

impl Pattern {
    pub(crate) fn expand(&self, n: usize) -> String {
        self.0.replace("{n}", &n.to_string())
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Pattern, D::Error> {
        let text = String::deserialize(deserializer)?;
        if !text.contains("{n}") {
            return Err(serde::de::Error::custom(format!(
                "pattern '{text}' must contain {{n}}, which stands for the record number"
            )));
        }
        Ok(Pattern(text))
    }
}

impl Default for Pattern {
    fn default() -> Pattern {
        Pattern("user{n}@contoso.com".to_string())
    }
}

fn generated_count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    let count = usize::deserialize(deserializer)?;
    if count > MAX_GENERATED {
        return Err(serde::de::Error::custom(format!(
            "count {count} is above the limit of {MAX_GENERATED}"
        )));
    }
    Ok(count)
}

/// `generate.risky_users`: `count` users `upn_pattern` with the same risk.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GenRiskyUsers {
    /// How many users.
    #[serde(deserialize_with = "generated_count")]
    pub(crate) count: usize,
    /// riskLevel.
    #[serde(default = "default_high")]
    pub(crate) level: String,
    /// riskState.
    #[serde(default = "default_at_risk")]
    pub(crate) state: String,
    /// riskDetail.
    #[serde(default = "none")]
    pub(crate) detail: String,
    /// UPN template; `user{n}@contoso.com` by default.
    #[serde(default)]
    pub(crate) upn_pattern: Pattern,
    /// department of every generated user.
    #[serde(default)]
    pub(crate) department: Option<String>,
    /// When their risk shows up.
    #[serde(default, with = "humantime_serde")]
    pub(crate) appears_after: Duration,
    /// How old riskLastUpdatedDateTime already is then.
    #[serde(default, with = "humantime_serde")]
    pub(crate) last_updated_ago: Duration,
}

fn default_high() -> String {
    "high".to_string()
}

/// `generate.sign_ins`: `count` sign-ins cycling over `users` UPNs, created evenly over
/// `spread` before they appear. Users that do not exist yet are created without risk.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GenSignIns {
    /// How many sign-ins.
    #[serde(deserialize_with = "generated_count")]
    pub(crate) count: usize,
    /// UPN template.
    #[serde(default)]
    pub(crate) upn_pattern: Pattern,
    /// How many distinct users (n cycles over 1..=users); `count` when omitted.
    #[serde(default)]
    pub(crate) users: Option<NonZeroUsize>,
    /// The time span their createdDateTime values cover.
    #[serde(default = "default_spread", with = "humantime_serde")]
    pub(crate) spread: Duration,
    /// When they reach the log.
    #[serde(default, with = "humantime_serde")]
    pub(crate) appears_after: Duration,
    /// When set, the sign-ins instead arrive one by one, evenly over this span from
    /// `appears_after` on, each created the moment it arrives: a steady sign-in rate.
    #[serde(default, with = "humantime_serde")]
    pub(crate) arrive_over: Duration,
    /// Client IP address.
    #[serde(default = "default_ip")]
    pub(crate) ip: String,
    /// appDisplayName.
    #[serde(default = "default_app")]
    pub(crate) app: String,
    /// status.errorCode.
    #[serde(default)]
    pub(crate) status_code: i32,
    /// Interactive (v1.0) or not (beta only).
    #[serde(default = "yes")]
    pub(crate) interactive: bool,
    /// riskLevelDuringSignIn.
    #[serde(default)]
    pub(crate) risk_level_during_sign_in: Option<String>,
    /// riskState.
    #[serde(default)]
    pub(crate) risk_state: Option<String>,
}

fn default_spread() -> Duration {
    Duration::from_secs(3600)
}

/// `generate.risk_detections`: like `sign_ins`, for the risk detection feed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GenDetections {
    /// How many detections.
    #[serde(deserialize_with = "generated_count")]
    pub(crate) count: usize,
    /// UPN template.
    #[serde(default)]
    pub(crate) upn_pattern: Pattern,
    /// How many distinct users; `count` when omitted.
    #[serde(default)]
    pub(crate) users: Option<NonZeroUsize>,
    /// The time span their detectedDateTime values cover.
    #[serde(default = "default_spread", with = "humantime_serde")]
    pub(crate) spread: Duration,
    /// When they appear in the feed.
    #[serde(default, with = "humantime_serde")]
    pub(crate) appears_after: Duration,
    /// riskEventType.
    #[serde(default = "default_event_type")]
    pub(crate) risk_event_type: String,
    /// riskLevel.
    #[serde(default = "default_high")]
    pub(crate) risk_level: String,
    /// riskState.
    #[serde(default = "default_at_risk")]
    pub(crate) risk_state: String,
    /// ipAddress.
    #[serde(default = "default_ip")]
    pub(crate) ip: String,
}

impl Scenario {
    /// Parses and cross-checks a scenario; `origin` names the text in errors (a file name).
    ///
    /// # Errors
    ///
    /// [`SimError::Scenario`] with the line and column of the first problem: YAML syntax, an
    /// unknown or duplicate key, a wrong type, or a reference to a user that does not exist.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Scenario, SimError> {
        let options = serde_saphyr::options! {
            duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        };
        let scenario: Scenario = serde_saphyr::from_str_with_options(text, options)
            .map_err(|e| yaml_error(origin, &e))?;
        scenario.validate(origin)?;
        Ok(scenario)
    }

    /// Reads and parses a scenario file.
    ///
    /// # Errors
    ///
    /// [`SimError::Read`] when the file cannot be read, else as [`Scenario::from_yaml`].
    pub fn load(path: &Path) -> Result<Scenario, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Scenario::from_yaml(&text, &path.display().to_string())
    }

    /// The demo tenant (`config/scenarios/demo.yaml`, embedded at build time).
    pub fn demo() -> Scenario {
        // The embedded file is parsed by the `demo_scenario_parses` test, so this cannot fail
        // in a build whose tests pass.
        Scenario::from_yaml(DEMO, "config/scenarios/demo.yaml")
            .expect("the embedded demo scenario is valid")
    }

    /// The tenant id and the first app registration's client id and secret: what a client
    /// needs to point at this scenario.
    pub fn demo_credentials(&self) -> (String, String, String) {
        let first = self.clients.value.first();
        (
            self.tenant_id.clone(),
            first.map(|c| c.client_id.clone()).unwrap_or_default(),
            first.map(|c| c.client_secret.clone()).unwrap_or_default(),
        )
    }

    fn validate(&self, origin: &str) -> Result<(), SimError> {
        if self.clients.value.is_empty() {
            return Err(located(
                origin,
                self.clients.referenced,
                "clients must list at least one app registration",
            ));
        }
        let mut known = HashSet::new();
        for user in &self.users {
            if let Some(id) = &user.id
                && uuid::Uuid::parse_str(&id.value).is_err()
            {
                return Err(located(
                    origin,
                    id.referenced,
                    &format!("user id '{}' is not a GUID", id.value),
                ));
            }
            let keys = [user.id.as_ref(), Some(&user.upn)];
            for key in keys.into_iter().flatten() {
                if !known.insert(key.value.to_lowercase()) {
                    return Err(located(
                        origin,
                        key.referenced,
                        &format!("duplicate user '{}'", key.value),
                    ));
                }
            }
        }
        if let Some(generated) = &self.generate.risky_users {
            known.extend(
                (1..=generated.count).map(|n| generated.upn_pattern.expand(n).to_lowercase()),
            );
        }
        let references = self
            .sign_ins
            .iter()
            .map(|s| &s.user)
            .chain(self.risk_detections.iter().map(|d| &d.user));
        for user in references {
            if !known.contains(&user.value.to_lowercase()) {
                return Err(located(
                    origin,
                    user.referenced,
                    &format!("unknown user '{}': list it under users", user.value),
                ));
            }
        }
        let ids = self.sign_ins.iter().filter_map(|s| s.id.as_ref());
        unique(origin, ids, "sign-in")?;
        let ids = self.risk_detections.iter().filter_map(|d| d.id.as_ref());
        unique(origin, ids, "risk detection")
    }
}

fn unique<'a>(
    origin: &str,
    ids: impl Iterator<Item = &'a Spanned<String>>,
    what: &str,
) -> Result<(), SimError> {
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id.value.as_str()) {
            return Err(located(
                origin,
                id.referenced,
                &format!("duplicate {what} id '{}'", id.value),
            ));
        }
    }
    Ok(())
}

fn located(origin: &str, at: Location, message: &str) -> SimError {
    if at.line() == 0 {
        return SimError::ScenarioUnplaced {
            origin: origin.to_string(),
            message: message.to_string(),
        };
    }
    SimError::Scenario {
        origin: origin.to_string(),
        line: at.line(),
        column: at.column(),
        message: message.to_string(),
    }
}

fn yaml_error(origin: &str, error: &serde_saphyr::Error) -> SimError {
    let text = error.without_snippet().to_string();
    match error.location() {
        Some(at) => {
            // The plain rendering ends with the position, which the error already carries.
            let suffix = format!(" at line {}, column {}", at.line(), at.column());
            let message = text.strip_suffix(&suffix).unwrap_or(&text);
            located(origin, at, message)
        }
        None => SimError::ScenarioUnplaced {
            origin: origin.to_string(),
            message: text,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "tenant_id: t\nclients:\n  - {client_id: c, client_secret: s}\n";

    fn error_of(text: &str) -> String {
        match Scenario::from_yaml(text, "s.yaml") {
            Ok(_) => panic!("expected an error for:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn demo_scenario_parses() {
        let demo = Scenario::from_yaml(DEMO, "demo.yaml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(demo.tenant_id, "00000000-0000-4000-8000-00000000d3e0");
        assert_eq!(demo.page_size.map(NonZeroUsize::get), Some(3));
        let (tenant, client, secret) = demo.demo_credentials();
        assert_eq!(tenant, demo.tenant_id);
        assert_eq!(client, "11111111-1111-4111-8111-111111111111");
        assert_eq!(secret, "demo-secret-not-real");
    }

    #[test]
    fn defaults_apply() {
        let s = Scenario::from_yaml(MINIMAL, "s.yaml").expect("minimal scenario");
        assert_eq!(s.token_lifetime, Duration::from_secs(3599));
        assert_eq!(s.quotas, Quotas::default());
        assert!(s.users.is_empty() && s.page_size.is_none());
    }

    #[test]
    fn syntax_and_schema_errors_carry_line_and_column() {
        let unknown = format!("{MINIMAL}users:\n  - userPrincipalName: a@x\n    colour: red\n");
        assert!(
            error_of(&unknown).starts_with("s.yaml:6:5: unknown field `colour`"),
            "{}",
            error_of(&unknown)
        );
        let duplicate = format!("{MINIMAL}tenant_id: u\n");
        assert!(error_of(&duplicate).starts_with("s.yaml:4:1: duplicate mapping key"));
        let duration = format!("{MINIMAL}token_lifetime: soon\n");
        assert!(error_of(&duration).starts_with("s.yaml:4:"));
        let fault =
            format!("{MINIMAL}faults:\n  - route: revoke\n    kind: {{type: status, code: 302}}\n");
        assert!(
            error_of(&fault).contains("not an error status"),
            "{}",
            error_of(&fault)
        );
        assert!(
            error_of(&fault).starts_with("s.yaml:6:"),
            "{}",
            error_of(&fault)
        );
    }

    #[test]
    fn cross_checks_carry_line_and_column() {
        let dangling =
            format!("{MINIMAL}users:\n  - userPrincipalName: a@x\nsign_ins:\n  - user: b@x\n");
        assert_eq!(
            error_of(&dangling),
            "s.yaml:7:11: unknown user 'b@x': list it under users"
        );
        let dup =
            format!("{MINIMAL}users:\n  - userPrincipalName: a@x\n  - userPrincipalName: A@x\n");
        assert_eq!(error_of(&dup), "s.yaml:6:24: duplicate user 'A@x'");
        let bad_id = format!("{MINIMAL}users:\n  - {{id: nope, userPrincipalName: a@x}}\n");
        assert_eq!(
            error_of(&bad_id),
            "s.yaml:5:10: user id 'nope' is not a GUID"
        );
        let no_clients = "tenant_id: t\nclients: []\n";
        assert_eq!(
            error_of(no_clients),
            "s.yaml:2:10: clients must list at least one app registration"
        );
    }

    #[test]
    fn generated_users_can_be_referenced_and_patterns_are_checked() {
        let ok = format!(
            "{MINIMAL}generate:\n  risky_users: {{count: 3, upn_pattern: 'u{{n}}@x'}}\nsign_ins:\n  - user: U3@x\n"
        );
        Scenario::from_yaml(&ok, "s.yaml").unwrap_or_else(|e| panic!("{e}"));
        let bad = format!("{MINIMAL}generate:\n  sign_ins: {{count: 3, upn_pattern: 'fixed@x'}}\n");
        assert!(
            error_of(&bad).contains("must contain {n}"),
            "{}",
            error_of(&bad)
        );
    }
}
