//! A compiled rule and the closed vocabularies of its header: source, action, mode, severity.

use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cases::RuleTest;
use crate::expr::CelCondition;
use crate::matcher::Condition;
use crate::window::WindowSpec;

/// The Graph feed a rule watches: a rule only ever sees records of its source.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `/identityProtection/riskyUsers`.
    RiskyUsers,
    /// `/identityProtection/riskDetections`.
    RiskDetections,
    /// `/auditLogs/signIns`.
    SignIns,
    /// A successful sign-in (from `/auditLogs/signIns`) by a user whose sessions revokd
    /// revoked, created after the revocation took effect: the engine evaluates such a sign-in
    /// a second time as this source, because it means the attacker holds another credential
    /// or token.
    PostContainment,
}

impl Source {
    /// Every source, in documentation order.
    pub const ALL: [Source; 4] = [
        Source::RiskyUsers,
        Source::RiskDetections,
        Source::SignIns,
        Source::PostContainment,
    ];

    /// The name rule files and the audit use: `risky_users`, `risk_detections`, `sign_ins`,
    /// `post_containment`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::RiskyUsers => "risky_users",
            Source::RiskDetections => "risk_detections",
            Source::SignIns => "sign_ins",
            Source::PostContainment => "post_containment",
        }
    }

    /// Whether the source's records are sign-ins: `sign_ins` and `post_containment` rules
    /// read the same fields.
    pub fn is_sign_in(self) -> bool {
        matches!(self, Source::SignIns | Source::PostContainment)
    }
}

/// What the executor does to the matched user.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// `POST /users/{id}/revokeSignInSessions`: invalidates refresh tokens and session cookies.
    RevokeSessions,
    /// `POST /identityProtection/riskyUsers/confirmCompromised`: raises the user to high risk.
    ConfirmCompromised,
    /// `PATCH /users/{id}` with `accountEnabled: false`.
    DisableAccount,
    /// Tells people (webhook); touches nothing in the tenant.
    Notify,
}

impl ActionKind {
    /// Every action, in documentation order.
    pub const ALL: [ActionKind; 4] = [
        ActionKind::RevokeSessions,
        ActionKind::ConfirmCompromised,
        ActionKind::DisableAccount,
        ActionKind::Notify,
    ];

    /// The name rule files and the audit use, e.g. `revoke_sessions`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::RevokeSessions => "revoke_sessions",
            ActionKind::ConfirmCompromised => "confirm_compromised",
            ActionKind::DisableAccount => "disable_account",
            ActionKind::Notify => "notify",
        }
    }
}

/// Whether a rule's matches are acted on or only recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Matches become actions (subject to the engine's safety gate).
    #[default]
    Enforce,
    /// Matches are recorded as decisions but never acted on: for trying a rule out.
    DryRun,
}

impl Mode {
    /// Both modes.
    pub const ALL: [Mode; 2] = [Mode::Enforce, Mode::DryRun];

    /// The name rule files use: `enforce` or `dry_run`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::DryRun => "dry_run",
        }
    }
}

/// How serious a match is, for people and alert routing; it changes no behaviour.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look.
    Low,
    /// The default when a rule does not say.
    #[default]
    Medium,
    /// Likely compromise.
    High,
    /// Confirmed or near-certain compromise.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The name rule files use, e.g. `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// A validated, compiled rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Unique across all loaded files; decisions, cooldowns and the audit refer to it.
    pub id: String,
    /// What the rule is for, in the author's words.
    pub description: String,
    /// The feed whose records the rule sees.
    pub source: Source,
    /// What to do to the matched user, in the order written.
    pub actions: Vec<ActionKind>,
    /// Enforce, or only record (dry run).
    pub mode: Mode,
    /// How long after actioning a user this rule leaves that user alone.
    pub cooldown: Duration,
    /// Informational seriousness, for people and routing.
    pub severity: Severity,
    /// Free-form labels, e.g. MITRE ATT&CK technique ids.
    pub tags: Vec<String>,
    /// A disabled rule is loaded and validated but never evaluated.
    pub enabled: bool,
    /// Hex SHA-256 of the rule's canonical form: changes iff the rule's meaning or text
    /// fields change, not when it moves within or between files. Decisions record it.
    pub hash: String,
    /// The file the rule is defined in, as the user wrote its path.
    pub origin: String,
    /// 1-based line where the rule is defined: that of its `id` value.
    pub line: usize,
    /// 1-based column of the rule's `id` value.
    pub column: usize,
    /// The `match:` entries; all must hold for the rule to match.
    pub(crate) conditions: Vec<Condition>,
    /// The CEL `condition:`; must hold too when present.
    pub(crate) condition: Option<CelCondition>,
    /// `except:` conditions, in order: the first that holds suppresses a match.
    pub(crate) exceptions: Vec<Exception>,
    /// The `window:` thresholds, when the rule aggregates sign-ins.
    pub(crate) window: Option<WindowSpec>,
    /// The window's `where:`: which sign-ins it counts (all when absent).
    pub(crate) window_filter: Option<CelCondition>,
    /// The rule's own test cases (`tests:`), checked by `revokd check --test`.
    pub(crate) tests: Vec<RuleTest>,
}

/// A named `except:` condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Exception {
    pub name: String,
    pub condition: CelCondition,
}

/// The part of a rule its hash covers: what it matches and what it does, not where it sits.
#[derive(Serialize)]
struct Canonical<'a> {
    id: &'a str,
    description: &'a str,
    source: Source,
    conditions: Vec<(&'static str, String)>,
    actions: &'a [ActionKind],
    mode: Mode,
    cooldown_ms: u128,
    severity: Severity,
    tags: &'a [String],
    enabled: bool,
    // The forms below are omitted when unused, so that rules written only with `match:` keep
    // the hash they had before conditions, exceptions and windows existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    condition: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exceptions: Vec<(&'a str, &'a str)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    window: Option<String>,
}

impl Rule {
    /// The CEL `condition:` as written, when the rule has one.
    pub fn condition_text(&self) -> Option<&str> {
        self.condition.as_ref().map(|c| c.text.as_str())
    }

    /// The names of the rule's `except:` conditions, in order.
    pub fn exception_names(&self) -> impl Iterator<Item = &str> {
        self.exceptions.iter().map(|e| e.name.as_str())
    }

    /// The span of the rule's window, when it has one: a restart must re-read at least this
    /// much of the sign-in log for the window to be whole again.
    pub fn window_duration(&self) -> Option<Duration> {
        self.window.as_ref().map(|w| w.duration)
    }

    /// Whether the rule reads the user's directory attributes (`user.*`) anywhere.
    pub fn reads_user(&self) -> bool {
        self.condition
            .as_ref()
            .is_some_and(CelCondition::reads_user)
            || self
                .window_filter
                .as_ref()
                .is_some_and(CelCondition::reads_user)
            || self.exceptions.iter().any(|e| e.condition.reads_user())
    }

    /// How many test cases the rule carries.
    pub fn test_count(&self) -> usize {
        self.tests.len()
    }

    /// Computes [`Rule::hash`] from the other fields.
    pub(crate) fn seal(mut self) -> Rule {
        let canonical = Canonical {
            id: &self.id,
            description: &self.description,
            source: self.source,
            conditions: self
                .conditions
                .iter()
                .map(|c| (c.key_name(), c.test_text()))
                .collect(),
            actions: &self.actions,
            mode: self.mode,
            cooldown_ms: self.cooldown.as_millis(),
            severity: self.severity,
            tags: &self.tags,
            enabled: self.enabled,
            condition: self.condition.as_ref().map(|c| c.canonical.as_str()),
            exceptions: self
                .exceptions
                .iter()
                .map(|e| (e.name.as_str(), e.condition.canonical.as_str()))
                .collect(),
            window: self.window.as_ref().map(|w| {
                let filter = self.window_filter.as_ref().map(|f| f.canonical.as_str());
                format!("{w:?} where {filter:?}")
            }),
        };
        // Serializing plain strings, enums and numbers into JSON has no failure path; the
        // fallback still yields a stable (if coarse) hash rather than a panic.
        let json = serde_json::to_vec(&canonical).unwrap_or_default();
        self.hash = hex::encode(Sha256::digest(&json));
        self
    }
}
