//! The audited tables exactly as stored: one struct per table, one field per column (see
//! migrations/ for what each means), every value raw as SQLite holds it. The audit payload of a
//! row is the canonical JSON of these structs, so the writer and `verify_chain` see the same
//! thing, and a changed byte in any column changes the payload.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sqlx::SqliteConnection;

use crate::model::{ActionKind, ActionStatus};

/// The stored form of a timestamp: RFC 3339, UTC, nine fractional digits, `Z`. Fixed width, so
/// comparing the text compares the times.
pub(crate) fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// A `decisions` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub(crate) struct DecisionRow {
    pub id: i64,
    pub tenant_id: String,
    pub source: String,
    pub trigger_key: String,
    pub rule_id: String,
    pub rule_hash: String,
    pub user_id: String,
    pub user_principal_name: Option<String>,
    pub mode: String,
    pub reason: Option<String>,
    pub record_json: String,
    pub explanation_json: String,
    pub operator: Option<String>,
    pub decided_at: String,
}

/// An `actions` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub(crate) struct ActionRow {
    pub id: i64,
    pub decision_id: i64,
    pub kind: String,
    pub status: String,
    pub attempts: i64,
    pub detail: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub completed_at: Option<String>,
}

/// An `attempts` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub(crate) struct AttemptRow {
    pub id: i64,
    pub action_id: i64,
    pub attempt_no: i64,
    pub endpoint: String,
    pub client_request_id: String,
    pub retry_reason: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub http_status: Option<i64>,
    pub graph_error_code: Option<String>,
    pub error_message: Option<String>,
    pub request_id: Option<String>,
    pub latency_ms: Option<i64>,
}

/// A `daemon_events` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub(crate) struct DaemonEventRow {
    pub id: i64,
    pub at: String,
    pub kind: String,
    pub detail_json: String,
}

/// An action with the decision fields its audit entries and error messages need.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ActionInContext {
    #[sqlx(flatten)]
    pub row: ActionRow,
    /// `row.kind` decoded (the same column), for typed errors.
    pub kind: ActionKind,
    /// `row.status` decoded (the same column), to refuse work on ended actions.
    pub status: ActionStatus,
    pub tenant_id: String,
    pub user_id: String,
}

/// Reads back a decision just written, for its audit payload.
pub(crate) async fn decision(
    conn: &mut SqliteConnection,
    id: i64,
) -> Result<DecisionRow, sqlx::Error> {
    sqlx::query_as("SELECT * FROM decisions WHERE id = ?")
        .bind(id)
        .fetch_one(conn)
        .await
}

/// An action with its decision's tenant and user, or `None` when the id is unknown.
pub(crate) async fn action(
    conn: &mut SqliteConnection,
    id: i64,
) -> Result<Option<ActionInContext>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.*, d.tenant_id, d.user_id
         FROM actions AS a JOIN decisions AS d ON d.id = a.decision_id
         WHERE a.id = ?",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// An attempt, or `None` when the id is unknown.
pub(crate) async fn attempt(
    conn: &mut SqliteConnection,
    id: i64,
) -> Result<Option<AttemptRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM attempts WHERE id = ?")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Reads back a daemon event just written, for its audit payload.
pub(crate) async fn daemon_event(
    conn: &mut SqliteConnection,
    id: i64,
) -> Result<DaemonEventRow, sqlx::Error> {
    sqlx::query_as("SELECT * FROM daemon_events WHERE id = ?")
        .bind(id)
        .fetch_one(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_fixed_width_so_text_order_is_time_order() {
        let at = |secs, nanos| DateTime::from_timestamp(secs, nanos).expect("in range");
        assert_eq!(
            timestamp(at(1_800_000_000, 0)),
            "2027-01-15T08:00:00.000000000Z"
        );
        let (a, b) = (
            timestamp(at(1_800_000_000, 5)),
            timestamp(at(1_800_000_000, 40)),
        );
        assert_eq!(a.len(), b.len());
        assert!(a < b);
    }
}
