//! The SQLite audit database of revokd: schema migrations, the action outbox, attempts and
//! outcomes, feed cursors, cooldown look-ups, daemon lifecycle events and an append-only,
//! hash-chained audit log.
//!
//! Only this crate knows SQL. It must NOT know HTTP, Graph or rules: it takes and returns plain
//! values, and the engine translates. It never decides anything and never calls anything; it
//! records what the engine decided and did, and answers the engine's questions about that.
//!
//! # Invariants the daemon relies on
//!
//! - A decision and its actions are written in one transaction BEFORE any Graph call is made
//!   for them (`record_decision`: the outbox).
//! - Each attempt is written before its call (`begin_attempt`) and completed after it
//!   (`finish_attempt`); the action's outcome is a separate write (`finish_action`).
//! - After a crash, actions left `pending` or `in_flight` are returned by `pending_actions`, so
//!   they resume; an `in_flight` one may already have reached Graph, and its attempts say so.
//! - A cursor is a separate write (`set_cursor`) that the engine makes only after the
//!   decisions of the window it covers are committed.
//! - Re-evaluating the same triggering record (same tenant, rule and trigger key) never creates
//!   a second decision: `record_decision` answers `Duplicate` and writes nothing.
//! - Every write to decisions, actions, attempts and daemon events appends an audit entry in the
//!   same transaction; `verify_chain` detects an edited, deleted or forged row or entry.
//! - Retention (`prune`) removes only a verified prefix of the log with the rows it records,
//!   never a decision whose actions have not ended, and leaves a checkpoint that keeps the rest
//!   verifiable.
//! - Readers never block the daemon: the file is in WAL mode, and every write transaction takes
//!   the write lock up front (`BEGIN IMMEDIATE`) and waits up to 5 s for another writer.
//! - The file has mode 0600: it holds user ids and sign-in records.
//!
//! # Layout
//!
//! - `open`: creating and securing the file, connection settings, migrations.
//! - `model`: the public types the engine passes in and gets back.
//! - `outbox`: decisions, actions, attempts, outcomes, resume scan, cooldown, `contained`.
//! - `containment`: the blast-radius breaker, held actions and their release, revoke read-backs.
//! - `contained`: when a user's containment took effect, for post-containment sign-ins.
//! - `cursors`: feed watermarks.
//! - `daemon`: lifecycle events.
//! - `audit`: the hash chain, writing entries, `verify_chain` and `check_head`.
//! - `retention`: `prune`, which deletes old rows and leaves a checkpoint the chain starts from.
//! - `review`: read-only questions for `revokd audit`: list, one decision's story, stats.
//! - `rows`: the audited tables as stored, which the audit payloads are made of.
//! - `error`: `StoreError`.
//!
//! The schema is in `migrations/` at the repository root.

mod audit;
mod contained;
mod containment;
mod cursors;
mod daemon;
mod error;
mod model;
mod open;
mod outbox;
mod retention;
mod review;
mod rows;

use std::path::{Path, PathBuf};

use sqlx::SqlitePool;

pub use containment::{
    BREAKER_RESUMED, BREAKER_TRIPPED, BreakerLimit, BreakerState, BreakerTrip, GatedDecision,
    HELD_RELEASED, HeldAction, NewVerification, Released, VerificationOutcome,
};
pub use error::StoreError;
pub use model::{
    ActionKind, ActionStatus, AttemptResult, ChainReport, Checkpoint, ContainedRow, DecisionInsert,
    DecisionMode, HeadCheck, NewAttempt, NewDecision, PendingAction, PruneCounts, PruneReport,
};
pub use review::{
    ActionDetail, ActionSummary, AttemptDetail, AuditEntryRef, AuditStats, DecisionDetail,
    DecisionStory, HourStats, ModeCount, OutcomeCount, ReviewFilter, RuleStats,
};

/// A handle on the audit database; cheap to clone, all clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    /// The connections; writes serialise on SQLite's lock, reads run alongside.
    pool: SqlitePool,
    /// The file, for error messages and for `path()`.
    path: PathBuf,
}

impl Store {
    /// The database file this store was opened on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes every connection, waiting for queries in progress, so the WAL is checkpointed and
    /// the file is complete on its own. Later calls on any clone fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
