//! The plain values the store takes and returns. Nothing here knows Graph or rules: the engine
//! translates its types into these.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How the safety gate judged a rule match; stored as snake_case text in `decisions.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum DecisionMode {
    /// The actions run.
    Enforce,
    /// Recorded only, because dry-run is on globally or for the rule.
    DryRun,
    /// Recorded only, because one of the rule's exceptions excused the match.
    Suppressed,
    /// The user is a protected principal (break-glass account, protected group).
    Protected,
    /// The rule already actioned this user within its cooldown.
    Cooldown,
    /// The blast-radius breaker is open until an operator resumes enforcement.
    Held,
}

impl DecisionMode {
    /// Every mode, in the order the safety gate considers them.
    pub const ALL: [Self; 6] = [
        Self::Enforce,
        Self::DryRun,
        Self::Suppressed,
        Self::Protected,
        Self::Cooldown,
        Self::Held,
    ];

    /// The mode stored as `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == text)
    }

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::DryRun => "dry_run",
            Self::Suppressed => "suppressed",
            Self::Protected => "protected",
            Self::Cooldown => "cooldown",
            Self::Held => "held",
        }
    }
}

/// What an action does; stored as snake_case text in `actions.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum ActionKind {
    /// `POST /users/{id}/revokeSignInSessions`.
    RevokeSessions,
    /// `POST /identityProtection/riskyUsers/confirmCompromised`.
    ConfirmCompromised,
    /// `PATCH /users/{id}` with `accountEnabled: false`.
    DisableAccount,
    /// A notification to people, not a Graph call.
    Notify,
}

impl ActionKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RevokeSessions => "revoke_sessions",
            Self::ConfirmCompromised => "confirm_compromised",
            Self::DisableAccount => "disable_account",
            Self::Notify => "notify",
        }
    }
}

/// Where an action is in its life; stored as snake_case text in `actions.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum ActionStatus {
    /// In the outbox, not attempted yet.
    Pending,
    /// At least one attempt began; after a crash the call may or may not have reached Graph.
    InFlight,
    /// Graph accepted it.
    Succeeded,
    /// Gave up: a permanent error or retries exhausted.
    Failed,
    /// Never run: the decision was not enforced, or there is nothing to run it with.
    Skipped,
    /// Held back by the blast-radius breaker until an operator releases it (`revokd resume`),
    /// which makes it `Pending`.
    Held,
}

impl ActionStatus {
    /// Every status, in the order of an action's life.
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::InFlight,
        Self::Succeeded,
        Self::Failed,
        Self::Skipped,
        Self::Held,
    ];

    /// The status stored as `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InFlight => "in_flight",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Held => "held",
        }
    }

    /// Whether the action has ended and must not run again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Skipped)
    }
}

macro_rules! display_as_str {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(DecisionMode, ActionKind, ActionStatus);

/// A decision to record, with the actions it asks for, before anything is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDecision {
    /// The Entra tenant the user belongs to.
    pub tenant_id: String,
    /// The feed the trigger came from: `risky_users`, `risk_detections`, `sign_ins` or `manual`.
    pub source: String,
    /// Identifies the triggering record, e.g. `risky_users:<user id>:<riskLastUpdatedDateTime>`;
    /// a second decision with the same tenant, rule and key is refused as a duplicate.
    pub trigger_key: String,
    /// The rule that matched.
    pub rule_id: String,
    /// Hash of the rule's text, so the audit shows which version of the rule decided.
    pub rule_hash: String,
    /// The user's object id.
    pub user_id: String,
    /// The user's sign-in name, when the record carried it.
    pub user_principal_name: Option<String>,
    /// The safety gate's verdict.
    pub mode: DecisionMode,
    /// Why it is not enforced, e.g. "protected principal breakglass@contoso.com".
    pub reason: Option<String>,
    /// The triggering Graph record as received.
    pub record_json: String,
    /// How the rule matched, as JSON.
    pub explanation_json: String,
    /// Who asked, for manual actions.
    pub operator: Option<String>,
    /// When the gate decided.
    pub decided_at: DateTime<Utc>,
    /// The actions the rule asks for, each kind at most once.
    pub actions: Vec<ActionKind>,
}

/// What `record_decision` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecisionInsert {
    /// A new decision, with its action ids in the order of `NewDecision::actions`.
    Inserted {
        /// The new decision.
        decision_id: i64,
        /// One id per requested action, same order.
        action_ids: Vec<i64>,
    },
    /// The trigger was already decided; nothing was written.
    Duplicate {
        /// The decision that exists.
        decision_id: i64,
    },
}

/// An outbox entry still to run: pending, or in flight when the daemon stopped.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingAction {
    /// The action to attempt and finish.
    pub action_id: i64,
    /// The decision that asked for it.
    pub decision_id: i64,
    /// Which tenant's client runs it.
    pub tenant_id: String,
    /// The rule that decided, for logs.
    pub rule_id: String,
    /// The user to act on.
    pub user_id: String,
    /// The user's sign-in name, for logs.
    pub user_principal_name: Option<String>,
    /// What to do.
    pub kind: ActionKind,
    /// `Pending`, or `InFlight` when an earlier attempt may already have reached Graph.
    pub status: ActionStatus,
    /// Attempts begun so far.
    pub attempts: i64,
    /// When the decision was recorded; the outbox runs oldest first.
    pub created_at: DateTime<Utc>,
}

/// An attempt about to be made, recorded before the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttempt {
    /// The action being attempted.
    pub action_id: i64,
    /// The Graph path called, e.g. `/v1.0/users/{id}/revokeSignInSessions`.
    pub endpoint: String,
    /// The `client-request-id` GUID sent with the call.
    pub client_request_id: String,
    /// When the call starts.
    pub started_at: DateTime<Utc>,
    /// Why this attempt is a retry, e.g. "429 retry-after 1s"; `None` for a first attempt.
    pub retry_reason: Option<String>,
}

/// How an attempt's call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    /// When the response (or the failure) arrived.
    pub finished_at: DateTime<Utc>,
    /// The HTTP status, when there was a response.
    pub http_status: Option<u16>,
    /// Graph's `error.code`, e.g. `Request_ResourceNotFound`.
    pub graph_error_code: Option<String>,
    /// What went wrong, in words.
    pub error_message: Option<String>,
    /// Graph's `request-id`, for Microsoft support.
    pub request_id: Option<String>,
    /// How long the call took.
    pub latency_ms: i64,
}

/// One action of one decision, as `revokd audit` and `demo` show it (the `v_contained` view).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ContainedRow {
    /// The tenant.
    pub tenant_id: String,
    /// The user's object id.
    pub user_id: String,
    /// The user's sign-in name, when known.
    pub user_principal_name: Option<String>,
    /// The rule that decided.
    pub rule_id: String,
    /// The decision mode (`enforce`, `dry_run`, ...).
    pub mode: String,
    /// The action kind (`revoke_sessions`, ...).
    pub action: String,
    /// The action status (`succeeded`, `failed`, ...).
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// HTTP status of the last attempt.
    pub last_http_status: Option<i64>,
    /// Graph request-id of the last attempt.
    pub last_request_id: Option<String>,
    /// When the decision was made.
    pub decided_at: DateTime<Utc>,
    /// When the action ended.
    pub completed_at: Option<DateTime<Utc>>,
}

/// The result of recomputing the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// Rows in the audit log, the checkpoint of a pruned chain included.
    pub rows: u64,
    /// Hash of the last entry as stored; worth recording elsewhere, since a full rewrite of the
    /// file can only be caught against a head kept outside it.
    pub head: Option<String>,
    /// The first problem found: the seq it concerns and what is wrong. Seq 0 means a table row
    /// that no audit entry records.
    pub first_broken: Option<(i64, String)>,
    /// Where the chain starts when retention pruned its beginning; `None` when it starts at
    /// entry 1.
    pub checkpoint: Option<Checkpoint>,
}

/// What a retention prune removed, and the point the chain continues from. Stored twice: as the
/// checkpoint row that replaces the pruned prefix (not hashed, as it stands in for entries that
/// are gone), and as the payload of an `audit.pruned` entry appended to the chain (hashed like
/// every entry), which verification requires to be identical to the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The first entry this prune removed.
    pub from_seq: i64,
    /// The last entry removed; the checkpoint row takes its seq, and the next entry links to it.
    pub through_seq: i64,
    /// That entry's hash, which the next entry's `prev_hash` carries.
    pub through_hash: String,
    /// Rows whose every audit entry was written before this time were eligible.
    pub before: DateTime<Utc>,
    /// When the prune ran.
    pub pruned_at: DateTime<Utc>,
    /// How many rows went.
    pub removed: PruneCounts,
}

/// Rows removed by pruning, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneCounts {
    /// Audit entries the checkpoint now stands for.
    pub entries: u64,
    /// Decisions removed.
    pub decisions: u64,
    /// Their actions.
    pub actions: u64,
    /// Their attempts.
    pub attempts: u64,
    /// Daemon events removed.
    pub daemon_events: u64,
}

impl PruneCounts {
    /// Adds another batch's counts.
    pub fn add(&mut self, other: &PruneCounts) {
        self.entries += other.entries;
        self.decisions += other.decisions;
        self.actions += other.actions;
        self.attempts += other.attempts;
        self.daemon_events += other.daemon_events;
    }
}

/// What `Store::prune` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Everything removed, over all batches.
    pub removed: PruneCounts,
    /// Transactions it took; each is short, so the daemon's writes interleave.
    pub batches: u32,
    /// Where the chain starts now, when anything was pruned.
    pub checkpoint: Option<Checkpoint>,
    /// What kept older rows from being pruned, when something did: a decision whose actions
    /// have not ended, or the trip of a breaker still open.
    pub blocked_by: Option<String>,
}

/// Whether a chain head recorded earlier (with `revokd audit head`) is still in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum HeadCheck {
    /// The entry is there with the same hash.
    Present,
    /// The entry is there with another hash: the chain was rewritten from there on, or before.
    Differs {
        /// The hash stored now.
        stored: String,
    },
    /// The chain ends before that entry: it was truncated.
    Missing {
        /// The last entry now, if any.
        last_seq: Option<i64>,
    },
    /// The entry was pruned by retention, so it can no longer vouch for the chain.
    Pruned {
        /// Where the chain starts now.
        checkpoint_seq: i64,
    },
}

impl HeadCheck {
    /// Whether the recorded head vouches for the chain.
    pub fn is_present(&self) -> bool {
        matches!(self, Self::Present)
    }
}

impl ChainReport {
    /// Whether the chain and the rows it records are intact.
    pub fn is_intact(&self) -> bool {
        self.first_broken.is_none()
    }
}
