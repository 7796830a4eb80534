//! The simulated tenant at run time: a scenario expanded into users, groups and feed records,
//! with the clock that decides what is visible.
//!
//! Feed records are rendered once at start (and once more for a republished version), so a
//! list call only filters and copies a page. Directory users keep their properties as the JSON
//! map Graph would serve, which is what `$select` and PATCH work on.

use crate::scenario::{
    GenDetections, GenRiskyUsers, GenSignIns, RiskDetectionSpec, RiskSpec, Scenario, SignInSpec,
    UserSpec, UserType,
};
use crate::shapes::{
    derived_id, detection_json, directory_props, graph_time, republish_detection,
    republish_sign_in, sign_in_json,
};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

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

    /// A property as served, null when unset.
    pub(crate) fn prop(&self, name: &str) -> Value {
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
                created_ago: if generator.arrive_over.is_zero() {
                    spread_offset(generator.spread, i, generator.count)
                } else {
                    Duration::ZERO
                },
                appears_after: generator.appears_after
                    + spread_offset(generator.arrive_over, i, generator.count),
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
    records.sort_by_cached_key(|r| {
        let text = |name: &str| r.first.get(name).and_then(Value::as_str).map(str::to_owned);
        std::cmp::Reverse((text(time_field), text("id")))
    });
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
}
