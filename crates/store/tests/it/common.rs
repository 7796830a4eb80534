//! Shared fixtures: fresh stores, decisions, a raw connection for tampering.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, SqliteConnection};
use store::{
    ActionKind, ActionStatus, AttemptResult, DecisionInsert, DecisionMode, NewAttempt, NewDecision,
    Store,
};
use tempfile::TempDir;

/// A store in its own temporary directory, removed when the `TempDir` drops.
pub async fn fresh() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&db_path(&dir)).await.expect("open store");
    (dir, store)
}

pub fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("audit.db")
}

/// A fixed instant plus `minutes`, so tests do not depend on the clock.
pub fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 123_456_789).expect("in range")
        + Duration::minutes(minutes)
}

/// An enforced risky-user decision of rule `high-risk` for `user` in tenant `t1`.
pub fn decision(user: &str, trigger: &str) -> NewDecision {
    NewDecision {
        tenant_id: "t1".into(),
        source: "risky_users".into(),
        trigger_key: format!("risky_users:{user}:{trigger}"),
        rule_id: "high-risk".into(),
        rule_hash: "sha256:abc".into(),
        user_id: user.into(),
        user_principal_name: Some(format!("{user}@contoso.com")),
        mode: DecisionMode::Enforce,
        reason: None,
        record_json: format!(r#"{{"id":"{user}","riskLevel":"high"}}"#),
        explanation_json: r#"{"matched":"riskLevel == 'high'"}"#.into(),
        operator: None,
        decided_at: at(0),
        actions: vec![ActionKind::RevokeSessions, ActionKind::ConfirmCompromised],
    }
}

/// Records `d`, which must be new, and returns its action ids.
pub async fn insert(store: &Store, d: &NewDecision) -> Vec<i64> {
    match store.record_decision(d).await.expect("record decision") {
        DecisionInsert::Inserted { action_ids, .. } => action_ids,
        DecisionInsert::Duplicate { decision_id } => panic!("unexpected duplicate {decision_id}"),
    }
}

pub fn attempt(action_id: i64, minutes: i64, retry_reason: Option<&str>) -> NewAttempt {
    NewAttempt {
        action_id,
        endpoint: "/v1.0/users/u1/revokeSignInSessions".into(),
        client_request_id: format!("crid-{action_id}-{minutes}"),
        started_at: at(minutes),
        retry_reason: retry_reason.map(str::to_string),
    }
}

pub fn response(minutes: i64, status: u16, request_id: &str) -> AttemptResult {
    AttemptResult {
        finished_at: at(minutes),
        http_status: Some(status),
        graph_error_code: (status >= 400).then(|| "TooManyRequests".to_string()),
        error_message: (status >= 400).then(|| "throttled".to_string()),
        request_id: Some(request_id.into()),
        latency_ms: 42,
    }
}

/// A plain connection to the file, bypassing the store, as an intruder or `sqlite3` would.
pub async fn raw(path: &Path) -> SqliteConnection {
    SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .expect("raw connection")
}

/// The usual story of one action: a first attempt throttled (429, `req-1`), a second after the
/// Retry-After accepted (200, `req-2`), the action succeeded.
pub async fn throttled_then_contained(store: &Store, action_id: i64) {
    let first = store
        .begin_attempt(&attempt(action_id, 1, None))
        .await
        .expect("begin");
    store
        .finish_attempt(first, &response(2, 429, "req-1"))
        .await
        .expect("finish");
    let second = store
        .begin_attempt(&attempt(action_id, 3, Some("429 retry-after 1s")))
        .await
        .expect("begin");
    store
        .finish_attempt(second, &response(4, 200, "req-2"))
        .await
        .expect("finish");
    store
        .finish_action(action_id, ActionStatus::Succeeded, None, at(4))
        .await
        .expect("finish");
}
