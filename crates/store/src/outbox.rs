//! The action outbox: decisions and their actions written before any call, attempts written
//! around each call, outcomes, the resume scan after a restart, and the cooldown look-up.
//!
//! Every write runs in one `BEGIN IMMEDIATE` transaction together with its audit entries, so a
//! crash leaves either both or neither, and two writers never chain from the same head.

use chrono::{DateTime, Utc};
use sqlx::{Sqlite, SqliteConnection, Transaction};

use crate::audit::{self, AuditKind, Context};
use crate::error::QueryContext;
use crate::model::{
    ActionKind, ActionStatus, AttemptResult, ContainedRow, DecisionInsert, DecisionMode,
    NewAttempt, NewDecision, PendingAction,
};
use crate::rows::{self, ActionInContext, timestamp};
use crate::{Store, StoreError};

impl Store {
    /// Records a decision and one action per requested kind in one transaction, with their
    /// audit entries. Actions are `pending` when the mode is `Enforce`, otherwise `skipped` with
    /// the mode as their detail. A trigger already decided (same tenant, rule and trigger key)
    /// returns `Duplicate` and writes nothing.
    ///
    /// # Errors
    /// When an action kind is listed twice, or the database cannot be written.
    pub async fn record_decision(&self, d: &NewDecision) -> Result<DecisionInsert, StoreError> {
        self.check_distinct_actions(d)?;
        let op = || {
            format!(
                "record decision {} of rule {} for user {} in tenant {}",
                d.trigger_key, d.rule_id, d.user_id, d.tenant_id
            )
        };
        let mut tx = self.begin_write().await.context(&self.path, op)?;
        let inserted = insert_decision(&mut tx, d).await.context(&self.path, op)?;
        tx.commit().await.context(&self.path, op)?;
        Ok(inserted)
    }

    /// Whether `rule_id` enforced a decision on this user at or after `since`, for the cooldown.
    /// A decision whose actions all failed does not count: the user was not contained, so a new
    /// trigger may try again.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn enforced_since(
        &self,
        tenant_id: &str,
        rule_id: &str,
        user_id: &str,
        since: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.decided_since(tenant_id, rule_id, user_id, since, DecisionMode::Enforce)
            .await
    }

    /// Whether `rule_id` recorded an `enforce` decision, or one in mode `also`, on this user at
    /// or after `since`, not counting a decision whose actions all failed. The one cooldown
    /// query behind `enforced_since` and `actioned_since`.
    pub(crate) async fn decided_since(
        &self,
        tenant_id: &str,
        rule_id: &str,
        user_id: &str,
        since: DateTime<Utc>,
        also: DecisionMode,
    ) -> Result<bool, StoreError> {
        sqlx::query_scalar(
            "SELECT EXISTS (
               SELECT 1 FROM decisions AS d
               WHERE d.tenant_id = ? AND d.rule_id = ? AND d.user_id = ?
                 AND d.mode IN ('enforce', ?) AND d.decided_at >= ?
                 AND (NOT EXISTS (SELECT 1 FROM actions AS a WHERE a.decision_id = d.id)
                      OR EXISTS (SELECT 1 FROM actions AS a
                                 WHERE a.decision_id = d.id AND a.status <> 'failed'))
             )",
        )
        .bind(tenant_id)
        .bind(rule_id)
        .bind(user_id)
        .bind(also.as_str())
        .bind(timestamp(since))
        .fetch_one(&self.pool)
        .await
        .context(&self.path, || {
            format!(
                "look up the cooldown of rule {rule_id} for user {user_id} in tenant {tenant_id}"
            )
        })
    }

    /// Actions still to run, `pending` or `in_flight` (interrupted by a stop or a crash), oldest
    /// first; all tenants, or only `tenant_id`.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn pending_actions(
        &self,
        tenant_id: Option<&str>,
    ) -> Result<Vec<PendingAction>, StoreError> {
        sqlx::query_as(
            "SELECT a.id AS action_id, a.decision_id, d.tenant_id, d.rule_id, d.user_id,
                    d.user_principal_name, a.kind, a.status, a.attempts, a.created_at
             FROM actions AS a JOIN decisions AS d ON d.id = a.decision_id
             WHERE a.status IN ('pending', 'in_flight') AND (?1 IS NULL OR d.tenant_id = ?1)
             ORDER BY a.created_at, a.id",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await
        .context(&self.path, || match tenant_id {
            Some(t) => format!("list the pending actions of tenant {t}"),
            None => "list the pending actions".to_string(),
        })
    }

    /// Records an attempt before its call and marks the action `in_flight`.
    ///
    /// # Errors
    /// When the action does not exist or has already ended, or the database cannot be written.
    pub async fn begin_attempt(&self, a: &NewAttempt) -> Result<i64, StoreError> {
        let op = || format!("begin an attempt of action {}", a.action_id);
        let mut tx = self.begin_write().await.context(&self.path, op)?;
        let action = self
            .open_action(&mut tx, a.action_id, "begin an attempt of")
            .await?;
        let attempt_id = insert_attempt(&mut tx, &action, a)
            .await
            .context(&self.path, op)?;
        tx.commit().await.context(&self.path, op)?;
        Ok(attempt_id)
    }

    /// Records how an attempt's call ended. The action's status is left to `finish_action`, as
    /// a failed attempt may be retried.
    ///
    /// # Errors
    /// When the attempt does not exist or already has its outcome, or the database cannot be
    /// written.
    pub async fn finish_attempt(
        &self,
        attempt_id: i64,
        r: &AttemptResult,
    ) -> Result<(), StoreError> {
        let op = || format!("finish attempt {attempt_id}");
        let mut tx = self.begin_write().await.context(&self.path, op)?;
        let attempt = rows::attempt(&mut tx, attempt_id)
            .await
            .context(&self.path, op)?
            .ok_or_else(|| StoreError::UnknownAttempt {
                path: self.path.clone(),
                attempt_id,
            })?;
        if attempt.finished_at.is_some() {
            return Err(StoreError::AttemptFinished {
                path: self.path.clone(),
                attempt_id,
                action_id: attempt.action_id,
            });
        }
        complete_attempt(&mut tx, attempt_id, attempt.action_id, r)
            .await
            .context(&self.path, op)?;
        tx.commit().await.context(&self.path, op)
    }

    /// Ends an action as `Succeeded`, `Failed` or `Skipped`, with a detail such as the last
    /// error or why it was skipped.
    ///
    /// # Errors
    /// When `status` is not final, the action does not exist or has already ended, or the
    /// database cannot be written.
    pub async fn finish_action(
        &self,
        action_id: i64,
        status: ActionStatus,
        detail: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if !status.is_final() {
            return Err(StoreError::NotFinal {
                path: self.path.clone(),
                action_id,
                status,
            });
        }
        let op = || format!("finish action {action_id} as {status}");
        let mut tx = self.begin_write().await.context(&self.path, op)?;
        let action = self.open_action(&mut tx, action_id, "finish").await?;
        close_action(&mut tx, &action, status, detail, at)
            .await
            .context(&self.path, op)?;
        tx.commit().await.context(&self.path, op)
    }

    /// Every action of every decision with its outcome and last call, oldest decision first
    /// (the `v_contained` view).
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn contained(&self) -> Result<Vec<ContainedRow>, StoreError> {
        sqlx::query_as(
            "SELECT tenant_id, user_id, user_principal_name, rule_id, mode, action, status,
                    attempts, last_http_status, last_request_id, decided_at, completed_at
             FROM v_contained ORDER BY decided_at, decision_id, action_id",
        )
        .fetch_all(&self.pool)
        .await
        .context(&self.path, || "list contained users".to_string())
    }

    /// A write transaction that takes SQLite's write lock up front, waiting up to the busy
    /// timeout for another writer, so that it cannot fail later when upgrading from a read.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    fn check_distinct_actions(&self, d: &NewDecision) -> Result<(), StoreError> {
        let repeated = d
            .actions
            .iter()
            .enumerate()
            .find(|(i, kind)| d.actions[..*i].contains(kind));
        match repeated {
            Some((_, &kind)) => Err(StoreError::DuplicateAction {
                path: self.path.clone(),
                tenant_id: d.tenant_id.clone(),
                rule_id: d.rule_id.clone(),
                user_id: d.user_id.clone(),
                trigger_key: d.trigger_key.clone(),
                kind,
            }),
            None => Ok(()),
        }
    }

    /// Loads an action that has not ended yet, inside the caller's transaction.
    async fn open_action(
        &self,
        conn: &mut SqliteConnection,
        action_id: i64,
        op: &'static str,
    ) -> Result<OpenAction, StoreError> {
        let action = rows::action(conn, action_id)
            .await
            .context(&self.path, || format!("{op} action {action_id}"))?
            .ok_or_else(|| StoreError::UnknownAction {
                path: self.path.clone(),
                action_id,
            })?;
        if action.status.is_final() {
            return Err(StoreError::ActionClosed {
                path: self.path.clone(),
                op,
                action_id,
                kind: action.kind,
                tenant_id: action.tenant_id,
                user_id: action.user_id,
                status: action.status,
            });
        }
        Ok(OpenAction(action))
    }
}

/// An action known to be `pending` or `in_flight`.
struct OpenAction(ActionInContext);

pub(crate) async fn insert_decision(
    conn: &mut SqliteConnection,
    d: &NewDecision,
) -> Result<DecisionInsert, sqlx::Error> {
    let existing: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM decisions WHERE tenant_id = ? AND rule_id = ? AND trigger_key = ?",
    )
    .bind(&d.tenant_id)
    .bind(&d.rule_id)
    .bind(&d.trigger_key)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(decision_id) = existing {
        return Ok(DecisionInsert::Duplicate { decision_id });
    }
    let decided_at = timestamp(d.decided_at);
    let decision_id: i64 = sqlx::query_scalar(
        "INSERT INTO decisions (tenant_id, source, trigger_key, rule_id, rule_hash, user_id,
           user_principal_name, mode, reason, record_json, explanation_json, operator, decided_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         RETURNING id",
    )
    .bind(&d.tenant_id)
    .bind(&d.source)
    .bind(&d.trigger_key)
    .bind(&d.rule_id)
    .bind(&d.rule_hash)
    .bind(&d.user_id)
    .bind(&d.user_principal_name)
    .bind(d.mode.as_str())
    .bind(&d.reason)
    .bind(&d.record_json)
    .bind(&d.explanation_json)
    .bind(&d.operator)
    .bind(&decided_at)
    .fetch_one(&mut *conn)
    .await?;
    let row = rows::decision(conn, decision_id).await?;
    audit::append(
        conn,
        AuditKind::DecisionRecorded,
        Context::decision(&row),
        &row,
    )
    .await?;
    let mut action_ids = Vec::with_capacity(d.actions.len());
    for &kind in &d.actions {
        action_ids
            .push(insert_action(conn, decision_id, &d.tenant_id, kind, d.mode, &decided_at).await?);
    }
    Ok(DecisionInsert::Inserted {
        decision_id,
        action_ids,
    })
}

async fn insert_action(
    conn: &mut SqliteConnection,
    decision_id: i64,
    tenant_id: &str,
    kind: ActionKind,
    mode: DecisionMode,
    created_at: &str,
) -> Result<i64, sqlx::Error> {
    // Only an enforced decision acts; the others keep their actions as a record of what the
    // rule would have done.
    let (status, detail, completed_at) = match mode {
        DecisionMode::Enforce => (ActionStatus::Pending, None, None),
        DecisionMode::Held => (ActionStatus::Held, None, None),
        other => (
            ActionStatus::Skipped,
            Some(other.as_str()),
            Some(created_at),
        ),
    };
    let action_id: i64 = sqlx::query_scalar(
        "INSERT INTO actions (decision_id, kind, status, attempts, detail, created_at, updated_at,
           completed_at)
         VALUES (?, ?, ?, 0, ?, ?, ?, ?)
         RETURNING id",
    )
    .bind(decision_id)
    .bind(kind.as_str())
    .bind(status.as_str())
    .bind(detail)
    .bind(created_at)
    .bind(created_at)
    .bind(completed_at)
    .fetch_one(&mut *conn)
    .await?;
    let action = rows::action(conn, action_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    audit::append(
        conn,
        AuditKind::ActionCreated,
        Context::action(&action.row, tenant_id),
        &action.row,
    )
    .await?;
    Ok(action_id)
}

async fn insert_attempt(
    conn: &mut SqliteConnection,
    action: &OpenAction,
    a: &NewAttempt,
) -> Result<i64, sqlx::Error> {
    let OpenAction(action) = action;
    let started_at = timestamp(a.started_at);
    sqlx::query(
        "UPDATE actions SET status = 'in_flight', attempts = attempts + 1, updated_at = ?
         WHERE id = ?",
    )
    .bind(&started_at)
    .bind(action.row.id)
    .execute(&mut *conn)
    .await?;
    let updated = rows::action(conn, action.row.id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    audit::append(
        conn,
        AuditKind::ActionStarted,
        Context::action(&updated.row, &updated.tenant_id),
        &updated.row,
    )
    .await?;
    let attempt_id: i64 = sqlx::query_scalar(
        "INSERT INTO attempts (action_id, attempt_no, endpoint, client_request_id, retry_reason,
           started_at)
         VALUES (?, ?, ?, ?, ?, ?)
         RETURNING id",
    )
    .bind(action.row.id)
    .bind(updated.row.attempts)
    .bind(&a.endpoint)
    .bind(&a.client_request_id)
    .bind(&a.retry_reason)
    .bind(&started_at)
    .fetch_one(&mut *conn)
    .await?;
    let attempt = rows::attempt(conn, attempt_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    let context = Context::attempt(&attempt, action.row.decision_id, &action.tenant_id);
    audit::append(conn, AuditKind::AttemptStarted, context, &attempt).await?;
    Ok(attempt_id)
}

async fn complete_attempt(
    conn: &mut SqliteConnection,
    attempt_id: i64,
    action_id: i64,
    r: &AttemptResult,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE attempts SET finished_at = ?, http_status = ?, graph_error_code = ?,
           error_message = ?, request_id = ?, latency_ms = ?
         WHERE id = ?",
    )
    .bind(timestamp(r.finished_at))
    .bind(r.http_status.map(i64::from))
    .bind(&r.graph_error_code)
    .bind(&r.error_message)
    .bind(&r.request_id)
    .bind(r.latency_ms)
    .bind(attempt_id)
    .execute(&mut *conn)
    .await?;
    let action = rows::action(conn, action_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    let attempt = rows::attempt(conn, attempt_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    let context = Context::attempt(&attempt, action.row.decision_id, &action.tenant_id);
    audit::append(conn, AuditKind::AttemptFinished, context, &attempt).await?;
    Ok(())
}

async fn close_action(
    conn: &mut SqliteConnection,
    action: &OpenAction,
    status: ActionStatus,
    detail: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let OpenAction(action) = action;
    let at = timestamp(at);
    sqlx::query(
        "UPDATE actions SET status = ?, detail = ?, updated_at = ?, completed_at = ? WHERE id = ?",
    )
    .bind(status.as_str())
    .bind(detail)
    .bind(&at)
    .bind(&at)
    .bind(action.row.id)
    .execute(&mut *conn)
    .await?;
    let updated = rows::action(conn, action.row.id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    audit::append(
        conn,
        AuditKind::ActionFinished,
        Context::action(&updated.row, &updated.tenant_id),
        &updated.row,
    )
    .await?;
    Ok(())
}
