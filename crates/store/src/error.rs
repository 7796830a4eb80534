//! The one error type of the crate. Every variant names the database file, and the operation or
//! the tenant, user, action and attempt involved, so an operator can act on the message alone.

use std::path::{Path, PathBuf};

use crate::model::{ActionKind, ActionStatus};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file or its directory could not be created, secured or inspected.
    #[error("audit database {}: cannot {action}: {source}", path.display())]
    File {
        /// The file or directory involved.
        path: PathBuf,
        /// What was being done to it, e.g. "restrict the file mode to 0600".
        action: &'static str,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// SQLite refused to open the file (corrupt, not a database, locked past the busy timeout).
    #[error("audit database {}: cannot open: {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// SQLite's reason.
        source: sqlx::Error,
    },
    /// The schema could not be brought up to date, e.g. the file was written by a newer revokd.
    #[error("audit database {}: cannot apply migrations: {source}", path.display())]
    Migrate {
        /// The database file.
        path: PathBuf,
        /// sqlx's reason, naming the migration.
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("audit database {}: cannot {op}: {source}", path.display())]
    Query {
        /// The database file.
        path: PathBuf,
        /// What was being done, with the tenant, rule, user or ids involved.
        op: String,
        /// SQLite's reason.
        source: sqlx::Error,
    },
    /// A decision listed the same action twice; each kind runs at most once per decision.
    #[error(
        "audit database {}: decision {trigger_key} of rule {rule_id} for user {user_id} in tenant {tenant_id} lists action {kind} more than once",
        path.display()
    )]
    DuplicateAction {
        /// The database file.
        path: PathBuf,
        /// Tenant of the decision.
        tenant_id: String,
        /// Rule that decided.
        rule_id: String,
        /// User the decision is about.
        user_id: String,
        /// The decision's trigger key.
        trigger_key: String,
        /// The repeated action.
        kind: ActionKind,
    },
    /// An action id that is not in the outbox.
    #[error("audit database {}: action {action_id} does not exist", path.display())]
    UnknownAction {
        /// The database file.
        path: PathBuf,
        /// The id asked for.
        action_id: i64,
    },
    /// An attempt id that was never begun.
    #[error("audit database {}: attempt {attempt_id} does not exist", path.display())]
    UnknownAttempt {
        /// The database file.
        path: PathBuf,
        /// The id asked for.
        attempt_id: i64,
    },
    /// The action already ended; it must not be attempted or finished again.
    #[error(
        "audit database {}: cannot {op} action {action_id} ({kind} of user {user_id} in tenant {tenant_id}): it is already {status}",
        path.display()
    )]
    ActionClosed {
        /// The database file.
        path: PathBuf,
        /// What was asked, e.g. "begin an attempt of".
        op: &'static str,
        /// The action.
        action_id: i64,
        /// What the action does.
        kind: ActionKind,
        /// Tenant of the action's decision.
        tenant_id: String,
        /// User the action is about.
        user_id: String,
        /// How it already ended.
        status: ActionStatus,
    },
    /// `finish_action` was given a status that does not end an action.
    #[error(
        "audit database {}: cannot finish action {action_id} as {status}: an action ends as succeeded, failed or skipped",
        path.display()
    )]
    NotFinal {
        /// The database file.
        path: PathBuf,
        /// The action.
        action_id: i64,
        /// The status given.
        status: ActionStatus,
    },
    /// The attempt already has its outcome; a second one would rewrite history.
    #[error(
        "audit database {}: attempt {attempt_id} of action {action_id} already finished",
        path.display()
    )]
    AttemptFinished {
        /// The database file.
        path: PathBuf,
        /// The attempt.
        attempt_id: i64,
        /// Its action.
        action_id: i64,
    },
    /// Retention would delete entries or rows that do not verify, which would erase the
    /// evidence of tampering; nothing was deleted.
    #[error(
        "audit database {}: refusing to prune: the audit log is broken at entry {seq}: {problem}; \
         run `revokd audit verify` and keep a copy of the file before anything else",
        path.display()
    )]
    PruneRefused {
        /// The database file.
        path: PathBuf,
        /// The entry concerned (0 for a row no entry records).
        seq: i64,
        /// What is wrong.
        problem: String,
    },
}

/// Attaches the database path and the operation to a sqlx error.
pub(crate) trait QueryContext<T> {
    /// Wraps the error, building the operation text only when there is an error.
    fn context(self, path: &Path, op: impl FnOnce() -> String) -> Result<T, StoreError>;
}

impl<T> QueryContext<T> for Result<T, sqlx::Error> {
    fn context(self, path: &Path, op: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Query {
            path: path.to_path_buf(),
            op: op(),
            source,
        })
    }
}
