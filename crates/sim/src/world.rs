//! The simulated tenant at run time: a scenario expanded into users, groups and feed records,
//! with the clock that decides what is visible, and the JSON shapes Graph serves.
//!
//! Feed records are rendered once at start (and once more for a republished version), so a
//! list call only filters and copies a page. Directory users keep their properties as the JSON
//! map Graph would serve, which is what `$select` and PATCH work on.

use crate::scenario::{
    DetectionRepublish, GenDetections, GenRiskyUsers, GenSignIns, RiskDetectionSpec, RiskSpec,
    Scenario, SignInRepublish, SignInSpec, UserSpec, UserType,
};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};
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

/// The simulator's start, on both clocks: scenario times are offsets from it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    start: Instant,
    start_utc: DateTime<Utc>,
}

impl Clock {
    pub(crate) fn start_now() -> Clock {
        Clock {
            start: Instant::now(),
            start_utc: Utc::now(),
        }
    }

    /// How far into the scenario `now` is.
    pub(crate) fn elapsed(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.start)
    }

    /// Wall-clock time `after` into the scenario, minus `ago`.
    pub(crate) fn at(&self, after: Duration, ago: Duration) -> DateTime<Utc> {
        let delta = |d: Duration| TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX);
        self.start_utc
            .checked_add_signed(delta(after))
            .and_then(|t| t.checked_sub_signed(delta(ago)))
            .unwrap_or(self.start_utc)
    }
}

/// A risk state of a user, in force from `from` (scenario time) on.
#[derive(Debug, Clone)]
struct RiskEvent {
    from: Duration,
    level: String,
    state: String,
    detail: String,
    updated: DateTime<Utc>,
}

impl RiskEvent {
    fn from_spec(clock: &Clock, from: Duration, spec: &RiskSpec) -> RiskEvent {
        RiskEvent {
            from,
            level: spec.level.clone(),
            state: spec.state.clone(),
            detail: spec.detail.clone(),
            updated: clock.at(from, spec.last_updated_ago),
        }
    }
}

/// A directory user.
#[derive(Debug)]
pub(crate) struct User {
    /// Properties as Graph serves them (the subset the simulator models), keyed by name.
    pub(crate) props: Map<String, Value>,
    /// Indexes into [`World::groups`].
    pub(crate) groups: Vec<usize>,
    /// The user's risk over time, ordered by `from`.
    risk: Vec<RiskEvent>,
}

impl User {
    pub(crate) fn id(&self) -> &str {
        self.props
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub(crate) fn upn(&self) -> &str {
        self.props
            .get("userPrincipalName")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    fn prop(&self, name: &str) -> Value {
        self.props.get(name).cloned().unwrap_or(Value::Null)
    }

    /// The riskyUser record at scenario time `elapsed`, if the user is risky by then.
    fn risky_json(&self, elapsed: Duration) -> Option<Value> {
        let risk = self.risk.iter().rev().find(|r| r.from <= elapsed)?;
        Some(json!({
            "@odata.type": "#microsoft.graph.riskyUser",
            "id": self.id(),
            "isDeleted": false,
            "isProcessing": false,
            "riskLastUpdatedDateTime": graph_time(risk.updated),
            "riskLevel": risk.level,
            "riskState": risk.state,
            "riskDetail": risk.detail,
            "userDisplayName": self.prop("displayName"),
            "userPrincipalName": self.upn(),
        }))
    }

    /// Sets the user's risk from `elapsed` on (an admin action), ahead of later scheduled
    /// changes, which still apply when their time comes.
    fn set_risk(
        &mut self,
        elapsed: Duration,
        at: DateTime<Utc>,
        level: &str,
        state: &str,
        detail: &str,
    ) {
        let position = self.risk.partition_point(|r| r.from <= elapsed);
        self.risk.insert(
            position,
            RiskEvent {
                from: elapsed,
                level: level.to_string(),
                state: state.to_string(),
                detail: detail.to_string(),
                updated: at,
            },
        );
    }
}

/// A group users can be transitive members of.
#[derive(Debug)]
pub(crate) struct Group {
    /// Object id.
    pub(crate) id: String,
    /// Display name.
    pub(crate) display_name: String,
}

impl Group {
    /// The directoryObject shape transitiveMemberOf returns for a group.
    pub(crate) fn json(&self) -> Value {
        json!({
            "@odata.type": "#microsoft.graph.group",
            "id": self.id,
            "displayName": self.display_name,
            "description": null,
            "groupTypes": [],
            "mail": null,
            "mailEnabled": false,
            "securityEnabled": true,
        })
    }
}

/// A feed record that becomes visible at some point and may be republished later.
#[derive(Debug)]
pub(crate) struct FeedRecord {
    visible_from: Duration,
    first: Value,
    republished: Option<(Duration, Value)>,
    /// For sign-ins: `signInEventTypes`, which only the beta shape carries.
    pub(crate) event_types: Value,
    /// For sign-ins: the beta `userType` (member or guest).
    pub(crate) user_type: &'static str,
}

impl FeedRecord {
    /// The version visible at `elapsed`, if any.
    pub(crate) fn at(&self, elapsed: Duration) -> Option<&Value> {
        if elapsed < self.visible_from {
            return None;
        }
        match &self.republished {
            Some((after, record)) if *after <= elapsed => Some(record),
            _ => Some(&self.first),
        }
    }

    /// Whether this is an interactive sign-in (the only kind v1.0 lists).
    pub(crate) fn is_interactive(&self) -> bool {
        self.event_types
            .as_array()
            .is_some_and(|types| types.iter().any(|t| t == "interactiveUser"))
    }
}

/// The whole simulated tenant.
#[derive(Debug)]
pub(crate) struct World {
    /// Scenario start, for every time computation.
    pub(crate) clock: Clock,
    /// The tenant id accepted by the token endpoint.
    pub(crate) tenant_id: String,
    /// Directory users, in scenario order (riskyUsers lists them in this order).
    pub(crate) users: Vec<User>,
    /// Lower-cased object id and UPN to index in `users`.
    index: HashMap<String, usize>,
    /// Groups referenced by users.
    pub(crate) groups: Vec<Group>,
    /// The sign-in log, newest first.
    pub(crate) sign_ins: Vec<FeedRecord>,
    /// The risk detection feed, newest first.
    pub(crate) detections: Vec<FeedRecord>,
}

impl World {
    /// Expands a scenario at `clock`'s start. Never fails: a scenario that skipped
    /// [`Scenario::from_yaml`]'s checks still yields a world (unknown references get
    /// placeholder users).
    pub(crate) fn build(scenario: &Scenario, clock: Clock) -> World {
        let mut world = World {
            clock,
            tenant_id: scenario.tenant_id.clone(),
            users: Vec::new(),
            index: HashMap::new(),
            groups: scenario
                .groups
                .iter()
                .map(|g| Group {
                    id: g
                        .id
                        .clone()
                        .unwrap_or_else(|| derived_id(&format!("group/{}", g.display_name))),
                    display_name: g.display_name.clone(),
                })
                .collect(),
            sign_ins: Vec::new(),
            detections: Vec::new(),
        };
        for spec in &scenario.users {
            world.add_user(spec);
        }
        if let Some(generator) = &scenario.generate.risky_users {
            world.generate_risky_users(generator);
        }
        for (i, spec) in scenario.sign_ins.iter().enumerate() {
            let record = world.sign_in(spec, i);
            world.sign_ins.push(record);
        }
        if let Some(generator) = &scenario.generate.sign_ins {
            world.generate_sign_ins(generator);
        }
        for (i, spec) in scenario.risk_detections.iter().enumerate() {
            let record = world.detection(spec, i);
            world.detections.push(record);
        }
        if let Some(generator) = &scenario.generate.risk_detections {
            world.generate_detections(generator);
        }
        sort_newest_first(&mut world.sign_ins, "createdDateTime");
        sort_newest_first(&mut world.detections, "detectedDateTime");
        world
    }

    /// Finds a user by object id or UPN, case-insensitively.
    pub(crate) fn find(&self, key: &str) -> Option<usize> {
        self.index.get(&key.to_lowercase()).copied()
    }

    /// Whether `key` (id or UPN) names the same user as the user at `index`.
    pub(crate) fn is_user(&self, index: usize, key: &str) -> bool {
        self.find(key) == Some(index)
    }

    /// riskyUsers at scenario time `elapsed`.
    pub(crate) fn risky_users(&self, elapsed: Duration) -> Vec<Value> {
        self.users
            .iter()
            .filter_map(|u| u.risky_json(elapsed))
            .collect()
    }

    /// confirmCompromised on one user at `elapsed`.
    pub(crate) fn confirm_compromised(&mut self, user: usize, elapsed: Duration) {
        let at = self.clock.at(elapsed, Duration::ZERO);
        if let Some(u) = self.users.get_mut(user) {
            u.set_risk(
                elapsed,
                at,
                "high",
                "confirmedCompromised",
                "adminConfirmedUserCompromised",
            );
        }
    }

    /// dismiss on one user at `elapsed`.
    pub(crate) fn dismiss(&mut self, user: usize, elapsed: Duration) {
        let at = self.clock.at(elapsed, Duration::ZERO);
        if let Some(u) = self.users.get_mut(user) {
            u.set_risk(
                elapsed,
                at,
                "none",
                "dismissed",
                "adminDismissedAllRiskForUser",
            );
        }
    }

    /// revokeSignInSessions: every refresh token issued before now is invalid.
    pub(crate) fn revoke_sessions(&mut self, user: usize, elapsed: Duration) {
        let now = graph_time(self.clock.at(elapsed, Duration::ZERO));
        if let Some(u) = self.users.get_mut(user) {
            u.props
                .insert("signInSessionsValidFromDateTime".into(), Value::String(now));
        }
    }

    /// Applies already-validated PATCH properties, keeping the lookup index in step with a
    /// changed UPN.
    pub(crate) fn patch_user(&mut self, user: usize, changes: Map<String, Value>) {
        let Some(u) = self.users.get_mut(user) else {
            return;
        };
        let old_upn = u.upn().to_lowercase();
        u.props.extend(changes);
        let new_upn = u.upn().to_lowercase();
        if new_upn != old_upn {
            self.index.remove(&old_upn);
            self.index.insert(new_upn, user);
        }
    }

    fn insert_user(&mut self, user: User) -> usize {
        let index = self.users.len();
        self.index.insert(user.id().to_lowercase(), index);
        self.index.insert(user.upn().to_lowercase(), index);
        self.users.push(user);
        index
    }

    fn group_index(&mut self, reference: &str) -> usize {
        let wanted = reference.to_lowercase();
        if let Some(i) = self
            .groups
            .iter()
            .position(|g| g.id.to_lowercase() == wanted || g.display_name.to_lowercase() == wanted)
        {
            return i;
        }
        self.groups.push(Group {
            id: derived_id(&format!("group/{reference}")),
            display_name: reference.to_string(),
        });
        self.groups.len() - 1
    }

    fn add_user(&mut self, spec: &UserSpec) {
        let upn = spec.upn.value.clone();
        let id = spec.id.as_ref().map(|id| id.value.clone());
        let mut props = directory_props(
            &self.clock,
            id.unwrap_or_else(|| derived_id(&format!("user/{}", upn.to_lowercase()))),
            &upn,
            spec.display_name.clone(),
            spec.user_type,
        );
        props.insert("department".into(), json!(spec.department));
        props.insert("jobTitle".into(), json!(spec.job_title));
        props.insert("accountEnabled".into(), json!(spec.account_enabled));
        let mut risk: Vec<RiskEvent> = spec
            .risk
            .iter()
            .map(|r| RiskEvent::from_spec(&self.clock, spec.appears_after, r))
            .chain(
                spec.changes
                    .iter()
                    .map(|c| RiskEvent::from_spec(&self.clock, c.after, &c.risk)),
            )
            .collect();
        risk.sort_by_key(|r| r.from);
        let groups = spec.groups.iter().map(|g| self.group_index(g)).collect();
        self.insert_user(User {
            props,
            groups,
            risk,
        });
    }

    /// The user `key` names, created without risk when it does not exist yet.
    fn ensure_user(&mut self, key: &str) -> usize {
        if let Some(i) = self.find(key) {
            return i;
        }
        let props = directory_props(
            &self.clock,
            derived_id(&format!("user/{}", key.to_lowercase())),
            key,
            None,
            UserType::Member,
        );
        self.insert_user(User {
            props,
            groups: Vec::new(),
            risk: Vec::new(),
        })
    }

    fn generate_risky_users(&mut self, generator: &GenRiskyUsers) {
        let risk = RiskSpec {
            level: generator.level.clone(),
            state: generator.state.clone(),
            detail: generator.detail.clone(),
            last_updated_ago: generator.last_updated_ago,
        };
        for n in 1..=generator.count {
            let upn = generator.upn_pattern.expand(n);
            if self.find(&upn).is_some() {
                continue;
            }
            let index = self.ensure_user(&upn);
            let event = RiskEvent::from_spec(&self.clock, generator.appears_after, &risk);
            if let Some(user) = self.users.get_mut(index) {
                user.props
                    .insert("department".into(), json!(generator.department));
                user.risk.push(event);
            }
        }
    }

    fn generate_sign_ins(&mut self, generator: &GenSignIns) {
        let users = generator.users.map_or(generator.count, |u| u.get()).max(1);
        for i in 0..generator.count {
            let spec = SignInSpec {
                id: None,
                user: plain(generator.upn_pattern.expand(i % users + 1)),
                created_ago: spread_offset(generator.spread, i, generator.count),
                appears_after: generator.appears_after,
                ip: generator.ip.clone(),
                country: None,
                region: None,
                city: None,
                app: generator.app.clone(),
                client_app: "Browser".to_string(),
                user_agent: None,
                interactive: generator.interactive,
                status_code: generator.status_code,
                failure_reason: None,
                risk_level_during_sign_in: generator.risk_level_during_sign_in.clone(),
                risk_level_aggregated: None,
                risk_state: generator.risk_state.clone(),
                risk_detail: None,
                risk_event_types: None,
                republish: None,
            };
            let record = self.sign_in_with_id(&spec, derived_id(&format!("signin/generated/{i}")));
            self.sign_ins.push(record);
        }
    }

    fn generate_detections(&mut self, generator: &GenDetections) {
        let users = generator.users.map_or(generator.count, |u| u.get()).max(1);
        for i in 0..generator.count {
            let spec = RiskDetectionSpec {
                id: None,
                user: plain(generator.upn_pattern.expand(i % users + 1)),
                risk_event_type: generator.risk_event_type.clone(),
                risk_level: generator.risk_level.clone(),
                risk_state: generator.risk_state.clone(),
                risk_detail: "none".to_string(),
                timing: "realtime".to_string(),
                activity: "signin".to_string(),
                source: "IdentityProtection".to_string(),
                request_id: None,
                ip: generator.ip.clone(),
                country: None,
                region: None,
                city: None,
                detected_ago: spread_offset(generator.spread, i, generator.count),
                appears_after: generator.appears_after,
                republish: None,
            };
            let record =
                self.detection_with_id(&spec, derived_id(&format!("detection/generated/{i}")));
            self.detections.push(record);
        }
    }

    fn sign_in(&mut self, spec: &SignInSpec, position: usize) -> FeedRecord {
        let id = spec.id.as_ref().map_or_else(
            || derived_id(&format!("signin/{position}")),
            |id| id.value.clone(),
        );
        self.sign_in_with_id(spec, id)
    }

    fn sign_in_with_id(&mut self, spec: &SignInSpec, id: String) -> FeedRecord {
        let user_index = self.ensure_user(&spec.user.value);
        let user = &self.users[user_index];
        let created = self.clock.at(spec.appears_after, spec.created_ago);
        let first = sign_in_json(&self.tenant_id, &id, user, created, spec);
        let republished = spec
            .republish
            .as_ref()
            .map(|r| (r.after, republish_sign_in(&first, r)));
        let event_type = if spec.interactive {
            "interactiveUser"
        } else {
            "nonInteractiveUser"
        };
        let guest = user.props.get("userType").and_then(Value::as_str) == Some("Guest");
        FeedRecord {
            visible_from: spec.appears_after,
            first,
            republished,
            event_types: json!([event_type]),
            user_type: if guest { "guest" } else { "member" },
        }
    }

    fn detection(&mut self, spec: &RiskDetectionSpec, position: usize) -> FeedRecord {
        let id = spec.id.as_ref().map_or_else(
            || derived_id(&format!("detection/{position}")),
            |id| id.value.clone(),
        );
        self.detection_with_id(spec, id)
    }

    fn detection_with_id(&mut self, spec: &RiskDetectionSpec, id: String) -> FeedRecord {
        let user_index = self.ensure_user(&spec.user.value);
        let user = &self.users[user_index];
        let detected = self.clock.at(spec.appears_after, spec.detected_ago);
        let first = detection_json(&id, user, detected, spec);
        let republished = spec.republish.as_ref().map(|r| {
            let updated = self.clock.at(r.after, Duration::ZERO);
            (r.after, republish_detection(&first, r, updated))
        });
        FeedRecord {
            visible_from: spec.appears_after,
            first,
            republished,
            event_types: Value::Null,
            user_type: "member",
        }
    }
}

/// A name from a generator, which has no place in the file to point errors at.
fn plain(value: String) -> serde_saphyr::Spanned<String> {
    serde_saphyr::Spanned::new(
        value,
        serde_saphyr::Location::UNKNOWN,
        serde_saphyr::Location::UNKNOWN,
    )
}

/// How long before its appearance the `i`-th of `count` generated records happened, so the
/// records cover `spread` evenly, newest first.
fn spread_offset(spread: Duration, i: usize, count: usize) -> Duration {
    let count = u32::try_from(count.max(1)).unwrap_or(u32::MAX);
    let i = u32::try_from(i).unwrap_or(u32::MAX);
    (spread / count).saturating_mul(i)
}

fn sort_newest_first(records: &mut [FeedRecord], time_field: &str) {
    // Graph timestamps in one format sort chronologically as strings.
    records.sort_by(|a, b| {
        let key = |r: &FeedRecord| {
            (
                r.first
                    .get(time_field)
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                r.first.get("id").and_then(Value::as_str).map(str::to_owned),
            )
        };
        key(b).cmp(&key(a))
    });
}

/// A user's directory properties as Graph serves them.
fn directory_props(
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
fn sign_in_json(
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

fn republish_sign_in(first: &Value, update: &SignInRepublish) -> Value {
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
pub(crate) fn beta_sign_in(v1: &Value, record: &FeedRecord) -> Value {
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
        map.insert("signInEventTypes".into(), record.event_types.clone());
        map.insert("userType".into(), json!(record.user_type));
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
fn detection_json(
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

fn republish_detection(first: &Value, update: &DetectionRepublish, at: DateTime<Utc>) -> Value {
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

    fn world(yaml: &str) -> World {
        let text = format!("tenant_id: t\nclients: [{{client_id: c, client_secret: s}}]\n{yaml}");
        let scenario = Scenario::from_yaml(&text, "t.yaml").unwrap_or_else(|e| panic!("{e}"));
        World::build(&scenario, Clock::start_now())
    }

    #[test]
    fn graph_time_has_seven_fraction_digits() {
        let t = DateTime::parse_from_rfc3339("2026-11-24T10:00:00.123456789Z")
            .expect("valid")
            .with_timezone(&Utc);
        assert_eq!(graph_time(t), "2026-11-24T10:00:00.1234567Z");
    }

    #[test]
    fn risk_timeline_and_admin_actions() {
        let mut w = world(
            "users:\n  - userPrincipalName: a@x\n    risk: {level: medium, state: atRisk}\n    appears_after: 10s\n    changes:\n      - {after: 20s, risk: {level: high, state: atRisk}}\n",
        );
        let level = |w: &World, secs| {
            w.risky_users(Duration::from_secs(secs))
                .first()
                .map(|u| u["riskLevel"].as_str().unwrap_or_default().to_string())
        };
        assert_eq!(level(&w, 5), None);
        assert_eq!(level(&w, 10).as_deref(), Some("medium"));
        assert_eq!(level(&w, 25).as_deref(), Some("high"));
        w.dismiss(0, Duration::from_secs(12));
        assert_eq!(level(&w, 15).as_deref(), Some("none"));
        // A change scheduled after the admin action still happens.
        assert_eq!(level(&w, 25).as_deref(), Some("high"));
    }

    #[test]
    fn generated_records_reference_created_users() {
        let w = world("generate:\n  risky_users: {count: 4}\n  sign_ins: {count: 10, users: 6}\n");
        assert_eq!(
            w.users.len(),
            6,
            "4 risky users plus 2 created for sign-ins"
        );
        assert_eq!(w.sign_ins.len(), 10);
        assert_eq!(w.risky_users(Duration::ZERO).len(), 4);
        assert!(w.find("USER6@contoso.com").is_some());
        let created: Vec<&str> = w
            .sign_ins
            .iter()
            .filter_map(|s| s.at(Duration::ZERO)?.get("createdDateTime")?.as_str())
            .collect();
        let mut sorted = created.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(created, sorted, "newest first");
    }

    #[test]
    fn republished_sign_in_keeps_id_and_time() {
        let w = world(
            "users: [{userPrincipalName: a@x}]\nsign_ins:\n  - user: a@x\n    republish: {after: 5s, risk_level_during_sign_in: high}\n",
        );
        let first = w.sign_ins[0].at(Duration::ZERO).cloned().expect("visible");
        let later = w.sign_ins[0]
            .at(Duration::from_secs(5))
            .cloned()
            .expect("visible");
        assert_eq!(first["riskLevelDuringSignIn"], "none");
        assert_eq!(later["riskLevelDuringSignIn"], "high");
        assert_eq!(first["id"], later["id"]);
        assert_eq!(first["createdDateTime"], later["createdDateTime"]);
    }

    #[test]
    fn names_come_from_upns() {
        assert_eq!(name_from_upn("alex.wilber@contoso.com"), "Alex Wilber");
        assert_eq!(name_from_upn("user7@contoso.com"), "User7");
    }
}
