//! Windows: counts of sign-ins grouped by a key (user, IP, app, country) within a sliding span
//! of time, compared with thresholds — "10 failed sign-ins from 3 countries within 10 minutes".
//!
//! The state is a value the caller owns ([`WindowState`]) and passes to each evaluation, so
//! this crate stays pure. Time comes from each sign-in's `createdDateTime`, never from a clock.
//! A sign-in is stored once per rule under its `(createdDateTime, id)`: feeding it again (a
//! poll's overlap, a restart re-reading the last window) does not count it twice. Memory is
//! bounded: events older than the window behind the newest sign-in seen are evicted, each key
//! keeps at most [`MAX_EVENTS_PER_KEY`] events and each rule at most `max_keys` keys.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use graph::models::SignIn;
use serde::{Deserialize, Serialize};

use crate::rule::Rule;
use crate::ruleset::RuleSet;

/// A key keeps at most this many events; beyond it the oldest go first, so a flood from one
/// address costs bounded memory (counts then read at most this).
pub const MAX_EVENTS_PER_KEY: usize = 10_000;

/// Keys per rule when the rule does not say: enough for a large tenant's active users.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// A sign-in property windows group by or count distinct values of.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// `userId`.
    User,
    /// `ipAddress`.
    Ip,
    /// `appId` (or `appDisplayName` when Graph sent no id).
    App,
    /// `location.countryOrRegion`.
    Country,
}

impl Dimension {
    /// Every dimension, in documentation order.
    pub const ALL: [Dimension; 4] = [
        Dimension::User,
        Dimension::Ip,
        Dimension::App,
        Dimension::Country,
    ];

    /// The name rule files use.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::User => "user",
            Dimension::Ip => "ip",
            Dimension::App => "app",
            Dimension::Country => "country",
        }
    }

    /// The sign-in's value; `None` when absent or empty (such a sign-in is not counted).
    fn value(self, s: &SignIn) -> Option<&str> {
        let v = match self {
            Dimension::User => Some(s.user_id.as_str()),
            Dimension::Ip => s.ip_address.as_deref(),
            Dimension::App => s.app_id.as_deref().or(s.app_display_name.as_deref()),
            Dimension::Country => s
                .location
                .as_ref()
                .and_then(|l| l.country_or_region.as_deref()),
        };
        v.map(str::trim).filter(|v| !v.is_empty())
    }
}

/// A rule's compiled `window:`; the `where` filter lives on the rule.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WindowSpec {
    pub group_by: Vec<Dimension>,
    pub duration: Duration,
    pub min_count: Option<u64>,
    pub distinct: Vec<(Dimension, u64)>,
    pub max_keys: usize,
}

impl WindowSpec {
    /// The sign-in's key; borrowed when it groups by one dimension, as most windows do.
    fn key<'s>(&self, s: &'s SignIn) -> Option<Cow<'s, str>> {
        if let [one] = self.group_by.as_slice() {
            return one.value(s).map(Cow::Borrowed);
        }
        let mut key = String::new();
        for (i, d) in self.group_by.iter().enumerate() {
            if i > 0 {
                key.push('|');
            }
            key.push_str(d.value(s)?);
        }
        Some(Cow::Owned(key))
    }

    fn group_name(&self) -> String {
        self.group_by
            .iter()
            .map(|d| d.as_str())
            .collect::<Vec<_>>()
            .join("+")
    }
}

/// What a window saw when a rule was evaluated: stored in the match's explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowOutcome {
    /// What events are grouped by, e.g. `user` or `ip`.
    pub group_by: String,
    /// The group's value for this sign-in (`|`-joined for several dimensions); `null` when the
    /// sign-in lacks it.
    pub key: Option<String>,
    /// The window's span, e.g. `10m`.
    pub duration: String,
    /// Counted events of the group within the span ending at this sign-in.
    pub count: u64,
    /// Each threshold, in the order written.
    pub thresholds: Vec<ThresholdOutcome>,
}

impl WindowOutcome {
    /// Whether every threshold held.
    pub fn held(&self) -> bool {
        self.key.is_some() && self.thresholds.iter().all(|t| t.held)
    }
}

impl fmt::Display for WindowOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.key.as_deref().unwrap_or("(none)");
        write!(f, "window {}={key} over {}:", self.group_by, self.duration)?;
        for (i, t) in self.thresholds.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            let op = if t.held { ">=" } else { "<" };
            write!(f, "{sep}{} {} {op} {}", t.measure, t.actual, t.min)?;
            if !t.values.is_empty() {
                write!(f, " ({})", t.values.join(", "))?;
            }
        }
        Ok(())
    }
}

/// One threshold against what the window counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdOutcome {
    /// `count`, or `distinct country` / `distinct ip` / `distinct app` / `distinct user`.
    pub measure: String,
    /// What the window counted.
    pub actual: u64,
    /// The threshold: at least this many.
    pub min: u64,
    /// Whether `actual >= min`.
    pub held: bool,
    /// For distinct counts, the distinct values (at most 20 shown).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// The windows of every rule: owned by the caller, passed to
/// [`RuleSet::evaluate_with`](crate::RuleSet::evaluate_with), kept across polls and reloads.
#[derive(Debug, Default)]
pub struct WindowState {
    rules: HashMap<String, RuleWindow>,
}

#[derive(Debug, Default)]
struct RuleWindow {
    /// The rule's hash when this state was built: a changed rule starts afresh.
    rule_hash: String,
    /// The newest sign-in time seen (microseconds since the epoch): what "old" is measured by.
    newest: i64,
    keys: HashMap<String, KeyEvents>,
    /// When expired events were last swept from every key (sign-in time, microseconds).
    swept_at: i64,
}

#[derive(Debug, Default)]
struct KeyEvents {
    /// (time in microseconds, sign-in id) → the values distinct thresholds count.
    events: BTreeMap<(i64, String), Vec<Option<String>>>,
}

impl KeyEvents {
    fn newest(&self) -> i64 {
        self.events.keys().next_back().map_or(i64::MIN, |(t, _)| *t)
    }

    fn evict_before(&mut self, cutoff: i64) {
        while let Some(entry) = self.events.first_entry() {
            if entry.key().0 >= cutoff {
                break;
            }
            entry.remove();
        }
    }
}

/// Summary of what a [`WindowState`] holds, for metrics and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WindowStats {
    /// Rules with a window.
    pub rules: usize,
    /// Keys across all rules.
    pub keys: usize,
    /// Events across all keys.
    pub events: usize,
}

impl WindowState {
    /// Empty windows.
    pub fn new() -> WindowState {
        WindowState::default()
    }

    /// After loading a new rule set: drops the windows of rules that are gone or changed, and
    /// keeps the others. (A changed rule would also be reset on its next evaluation.)
    pub fn retain(&mut self, rules: &RuleSet) {
        self.rules.retain(|id, w| {
            rules
                .get(id)
                .is_some_and(|r| r.window.is_some() && r.hash == w.rule_hash)
        });
    }

    /// How much the windows hold.
    pub fn stats(&self) -> WindowStats {
        WindowStats {
            rules: self.rules.len(),
            keys: self.rules.values().map(|w| w.keys.len()).sum(),
            events: self
                .rules
                .values()
                .flat_map(|w| w.keys.values())
                .map(|k| k.events.len())
                .sum(),
        }
    }

    /// Adds `sign_in` to `rule`'s window when `counted` (its `where` held), and when
    /// `measure` says whether the window's thresholds hold for the sign-in's key.
    pub(crate) fn observe(
        &mut self,
        rule: &Rule,
        spec: &WindowSpec,
        sign_in: &SignIn,
        counted: bool,
        measure: bool,
    ) -> bool {
        // Looked up before inserting, so that the common case allocates no key.
        if !self.rules.contains_key(&rule.id) {
            self.rules.insert(rule.id.clone(), RuleWindow::default());
        }
        let Some(window) = self.rules.get_mut(&rule.id) else {
            return false;
        };
        if window.rule_hash != rule.hash {
            *window = RuleWindow {
                rule_hash: rule.hash.clone(),
                newest: i64::MIN,
                swept_at: i64::MIN,
                keys: HashMap::new(),
            };
        }
        let span = span_micros(spec);
        let at = sign_in.created_date_time.timestamp_micros();
        let key = spec.key(sign_in);
        if counted && let Some(key) = &key {
            window.insert(spec, key, at, sign_in, span);
        }
        if !measure {
            return false;
        }
        let Some(key) = key else { return false };
        window.reaches(spec, &key, at, span)
    }

    /// What `rule`'s window holds for `sign_in`'s key, for an explanation. Adds nothing.
    pub(crate) fn outcome(
        &self,
        rule: &Rule,
        spec: &WindowSpec,
        sign_in: &SignIn,
    ) -> WindowOutcome {
        let key = spec.key(sign_in);
        let at = sign_in.created_date_time.timestamp_micros();
        let window = self
            .rules
            .get(&rule.id)
            .filter(|w| w.rule_hash == rule.hash);
        let (count, distinct) = match (window, &key) {
            (Some(w), Some(k)) => w.count(spec, k, at, span_micros(spec)),
            _ => (0, vec![BTreeSet::new(); spec.distinct.len()]),
        };
        let mut thresholds = Vec::new();
        if let Some(min) = spec.min_count {
            thresholds.push(ThresholdOutcome {
                measure: "count".to_string(),
                actual: count,
                min,
                held: count >= min,
                values: Vec::new(),
            });
        }
        for ((dimension, min), set) in spec.distinct.iter().zip(distinct) {
            let actual = set.len() as u64;
            thresholds.push(ThresholdOutcome {
                measure: format!("distinct {}", dimension.as_str()),
                actual,
                min: *min,
                held: actual >= *min,
                values: set.into_iter().take(20).map(str::to_owned).collect(),
            });
        }
        WindowOutcome {
            group_by: spec.group_name(),
            key: key.map(Cow::into_owned),
            duration: humantime::format_duration(spec.duration).to_string(),
            count,
            thresholds,
        }
    }
}

fn span_micros(spec: &WindowSpec) -> i64 {
    i64::try_from(spec.duration.as_micros()).unwrap_or(i64::MAX)
}

impl RuleWindow {
    fn insert(&mut self, spec: &WindowSpec, key: &str, at: i64, s: &SignIn, span: i64) {
        self.newest = self.newest.max(at);
        let cutoff = self.newest.saturating_sub(span);
        if at < cutoff {
            // Older than any window still open: it can no longer change a decision.
            return;
        }
        if !self.keys.contains_key(key) && self.keys.len() >= spec.max_keys {
            self.sweep(cutoff);
            if self.keys.len() >= spec.max_keys {
                self.evict_oldest_keys(spec.max_keys);
            }
        }
        if !self.keys.contains_key(key) {
            self.keys.insert(key.to_owned(), KeyEvents::default());
        }
        let Some(events) = self.keys.get_mut(key) else {
            return;
        };
        let values = spec
            .distinct
            .iter()
            .map(|(d, _)| d.value(s).map(str::to_owned))
            .collect();
        events.events.insert((at, s.id.clone()), values);
        events.evict_before(cutoff);
        while events.events.len() > MAX_EVENTS_PER_KEY {
            events.events.pop_first();
        }
        // Once per span of sign-in time, drop what expired from every key: memory then holds
        // at most two spans of events, at a cost of one pass over the keys per span.
        if self.newest.saturating_sub(self.swept_at) >= span {
            self.sweep(cutoff);
            self.swept_at = self.newest;
        }
    }

    fn sweep(&mut self, cutoff: i64) {
        self.keys.retain(|_, k| {
            k.evict_before(cutoff);
            !k.events.is_empty()
        });
    }

    /// Drops the eighth of the keys seen least recently, so that a flood of new keys costs one
    /// scan per many insertions rather than one per insertion.
    fn evict_oldest_keys(&mut self, max_keys: usize) {
        let drop = (max_keys / 8).max(1);
        let mut by_age: Vec<(i64, String)> = self
            .keys
            .iter()
            .map(|(k, e)| (e.newest(), k.clone()))
            .collect();
        by_age.sort_unstable();
        for (_, key) in by_age.into_iter().take(drop) {
            self.keys.remove(&key);
        }
    }

    /// Whether the events of `key` in the span `(at - span, at]` reach every threshold; stops
    /// reading as soon as they do.
    fn reaches(&self, spec: &WindowSpec, key: &str, at: i64, span: i64) -> bool {
        let Some(events) = self.keys.get(key) else {
            return false;
        };
        let mut count = 0u64;
        let mut distinct: Vec<HashSet<&str>> = vec![HashSet::new(); spec.distinct.len()];
        let reached = |count: u64, distinct: &[HashSet<&str>]| {
            spec.min_count.is_none_or(|min| count >= min)
                && spec
                    .distinct
                    .iter()
                    .zip(distinct)
                    .all(|((_, min), set)| set.len() as u64 >= *min)
        };
        let from = (at.saturating_sub(span).saturating_add(1), String::new());
        for (_, values) in events
            .events
            .range(from..)
            .take_while(|((t, _), _)| *t <= at)
        {
            count += 1;
            for (set, value) in distinct.iter_mut().zip(values) {
                if let Some(v) = value {
                    set.insert(v.as_str());
                }
            }
            if reached(count, &distinct) {
                return true;
            }
        }
        false
    }

    /// The events of `key` in the span `(at - span, at]`: how many, and the distinct values
    /// of each distinct threshold's dimension.
    fn count(
        &self,
        spec: &WindowSpec,
        key: &str,
        at: i64,
        span: i64,
    ) -> (u64, Vec<BTreeSet<&str>>) {
        let mut count = 0u64;
        let mut distinct: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); spec.distinct.len()];
        if let Some(events) = self.keys.get(key) {
            let from = (at.saturating_sub(span).saturating_add(1), String::new());
            for (_, values) in events
                .events
                .range(from..)
                .take_while(|((t, _), _)| *t <= at)
            {
                count += 1;
                for (set, value) in distinct.iter_mut().zip(values) {
                    if let Some(v) = value {
                        set.insert(v.as_str());
                    }
                }
            }
        }
        (count, distinct)
    }
}
