//! What the safety gate and the executor need beyond the outbox: decisions recorded through the
//! blast-radius breaker, the breaker's state, held actions and their release, the cooldown
//! look-up that counts held and released decisions, and the read-back that verifies a revoke.
//!
//! The breaker keeps no table of its own: a trip and a resume are daemon events
//! (`breaker_tripped`, `breaker_resumed`), written in the transaction that decided them, so the
//! state survives a restart and sits in the audit chain. Counting the users actioned within the
//! window, deciding `enforce` or `held`, recording a trip and inserting the decision happen in
//! one `BEGIN IMMEDIATE` transaction, so two writers (the daemon and `revokd revoke`) can never
//! both slip under the limit.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::SqliteConnection;

use crate::audit::{self, AuditKind, Context};
use crate::error::QueryContext;
use crate::model::{ActionKind, ActionStatus, DecisionInsert, DecisionMode, NewDecision};
use crate::rows::{self, timestamp};
use crate::{Store, StoreError};

/// Daemon event kind of a breaker trip.
pub const BREAKER_TRIPPED: &str = "breaker_tripped";
/// Daemon event kind of a resume that released every held action and closed the breaker.
pub const BREAKER_RESUMED: &str = "breaker_resumed";
/// Daemon event kind of a release of listed held actions; the breaker stays open.
pub const HELD_RELEASED: &str = "held_released";

/// The blast-radius limit: at most `max_actions` distinct users actioned per tenant within
/// `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerLimit {
    /// Users that may be actioned within the window; the next one trips the breaker.
    pub max_actions: u32,
    /// The sliding window the users are counted in.
    pub window: Duration,
}

/// A trip of the breaker, as recorded in its daemon event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BreakerTrip {
    /// The tenant whose enforcement is paused.
    pub tenant_id: String,
    /// When it tripped.
    pub tripped_at: DateTime<Utc>,
    /// The limit that was exceeded.
    pub max_actions: u32,
    /// The window, in seconds.
    pub window_secs: u64,
    /// Users already actioned within the window when it tripped.
    pub users_in_window: u64,
    /// The user whose decision was the first one held.
    pub first_held_user: String,
    /// The rule (or `manual`) of that decision.
    pub rule_id: String,
}

/// Whether enforcement is paused for a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakerState {
    /// Enforcement runs; `since` is the last resume, from which the window counts anew.
    Closed {
        /// The last `breaker_resumed`, if any.
        since: Option<DateTime<Utc>>,
    },
    /// Tripped: every enforced decision is held until `revokd resume`.
    Open(BreakerTrip),
}

/// What `record_decision_gated` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatedDecision {
    /// The insert, or the duplicate that already existed.
    pub insert: DecisionInsert,
    /// The mode recorded: the one asked for, or `Held` when the breaker held it.
    pub mode: DecisionMode,
    /// The reason recorded with it.
    pub reason: Option<String>,
    /// Set when this very decision tripped the breaker (exactly once per trip).
    pub tripped: Option<BreakerTrip>,
}

/// An action waiting for an operator, as `revokd resume --list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct HeldAction {
    /// The action.
    pub action_id: i64,
    /// Its decision.
    pub decision_id: i64,
    /// The tenant.
    pub tenant_id: String,
    /// The rule that decided, or `manual`.
    pub rule_id: String,
    /// The user's object id (or the reference an operator gave).
    pub user_id: String,
    /// The user's sign-in name, when known.
    pub user_principal_name: Option<String>,
    /// What it would do.
    pub kind: ActionKind,
    /// When it was decided.
    pub decided_at: DateTime<Utc>,
}

/// What a release did. When any listed action could not be released, nothing was.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Released {
    /// Actions now `pending`.
    pub released: Vec<i64>,
    /// Listed actions that are not held (unknown, another tenant's, or in another status), with
    /// why; non-empty means nothing was released.
    pub refused: Vec<(i64, String)>,
}

/// How a revoke's read-back came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationOutcome {
    /// `signInSessionsValidFromDateTime` is at or after the revoke.
    Confirmed,
    /// It is older or absent, or the read failed.
    Unconfirmed,
    /// An external (B2B) guest: a revoke in this tenant does not end the guest's sessions.
    GuestNotEffective,
}

impl VerificationOutcome {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Unconfirmed => "unconfirmed",
            Self::GuestNotEffective => "guest_not_effective",
        }
    }
}

/// One read-back of a revoke, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVerification {
    /// The revoke action checked.
    pub action_id: i64,
    /// When the read-back answered (or failed).
    pub checked_at: DateTime<Utc>,
    /// The verdict.
    pub outcome: VerificationOutcome,
    /// When the revoke call was sent.
    pub revoked_at: DateTime<Utc>,
    /// `signInSessionsValidFromDateTime` as read, when present.
    pub sessions_valid_from: Option<DateTime<Utc>>,
    /// `userType` as read, when present.
    pub user_type: Option<String>,
    /// HTTP status of the read, when it was answered.
    pub http_status: Option<u16>,
    /// Graph's request-id of the read.
    pub request_id: Option<String>,
    /// The client-request-id revokd sent with the read.
    pub client_request_id: Option<String>,
    /// Why the effect could not be confirmed.
    pub detail: Option<String>,
}

impl Store {
    /// The breaker of `tenant_id`: open since its last trip, or closed since its last resume.
    ///
    /// # Errors
    /// When the database cannot be read or a trip event does not parse.
    pub async fn breaker_state(&self, tenant_id: &str) -> Result<BreakerState, StoreError> {
        let mut conn = self.pool.acquire().await.context(&self.path, || {
            format!("read the breaker of tenant {tenant_id}")
        })?;
        breaker_state(&mut conn, tenant_id)
            .await
            .context(&self.path, || {
                format!("read the breaker of tenant {tenant_id}")
            })
    }

    /// Records a decision as `record_decision` does, but an `Enforce` decision goes through the
    /// blast-radius breaker first, in the same transaction: while the breaker of its tenant is
    /// open, or when its user would be one more than `limit.max_actions` distinct users actioned
    /// within `limit.window` (counted from the last resume at the earliest), it is recorded as
    /// `Held` with its actions `held`. The decision that trips the breaker records the
    /// `breaker_tripped` daemon event with it. Decisions whose only action is `notify` touch
    /// nothing in the tenant and are never held.
    ///
    /// # Errors
    /// As `record_decision`.
    pub async fn record_decision_gated(
        &self,
        d: &NewDecision,
        limit: &BreakerLimit,
    ) -> Result<GatedDecision, StoreError> {
        let op = || {
            format!(
                "record decision {} of rule {} for user {} in tenant {} through the breaker",
                d.trigger_key, d.rule_id, d.user_id, d.tenant_id
            )
        };
        let acts_on_tenant = d.actions.iter().any(|k| *k != ActionKind::Notify);
        if d.mode != DecisionMode::Enforce || !acts_on_tenant {
            let insert = self.record_decision(d).await?;
            return Ok(GatedDecision {
                insert,
                mode: d.mode,
                reason: d.reason.clone(),
                tripped: None,
            });
        }
        let mut tx = self.begin_write().await.context(&self.path, op)?;
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM decisions WHERE tenant_id = ? AND rule_id = ? AND trigger_key = ?",
        )
        .bind(&d.tenant_id)
        .bind(&d.rule_id)
        .bind(&d.trigger_key)
        .fetch_optional(&mut *tx)
        .await
        .context(&self.path, op)?;
        if let Some(decision_id) = existing {
            return Ok(GatedDecision {
                insert: DecisionInsert::Duplicate { decision_id },
                mode: d.mode,
                reason: d.reason.clone(),
                tripped: None,
            });
        }
        let verdict = judge_breaker(&mut tx, d, limit)
            .await
            .context(&self.path, op)?;
        let mut decision = d.clone();
        let mut tripped = None;
        match verdict {
            Breaker::Allow => {}
            Breaker::AlreadyOpen(trip) => {
                decision.mode = DecisionMode::Held;
                decision.reason = Some(held_reason(&trip));
            }
            Breaker::Trip(trip) => {
                let detail = serde_json::to_value(&trip)
                    .map_err(|e| sqlx::Error::Encode(Box::new(e)))
                    .context(&self.path, op)?;
                insert_daemon_event(&mut tx, BREAKER_TRIPPED, &detail)
                    .await
                    .context(&self.path, op)?;
                decision.mode = DecisionMode::Held;
                decision.reason = Some(held_reason(&trip));
                tripped = Some(trip);
            }
        }
        let insert = crate::outbox::insert_decision(&mut tx, &decision)
            .await
            .context(&self.path, op)?;
        tx.commit().await.context(&self.path, op)?;
        Ok(GatedDecision {
            insert,
            mode: decision.mode,
            reason: decision.reason,
            tripped,
        })
    }

    /// Whether `rule_id` enforced or held a decision on this user at or after `since`, for the
    /// cooldown: like `enforced_since`, but a decision the breaker held (and an operator may
    /// have released since) counts too, so a user is not queued twice while the breaker is
    /// open. A decision whose actions all failed does not count.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn actioned_since(
        &self,
        tenant_id: &str,
        rule_id: &str,
        user_id: &str,
        since: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.decided_since(tenant_id, rule_id, user_id, since, DecisionMode::Held)
            .await
    }

    /// Held actions, oldest first; all tenants or only `tenant_id`.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn held_actions(
        &self,
        tenant_id: Option<&str>,
    ) -> Result<Vec<HeldAction>, StoreError> {
        sqlx::query_as(
            "SELECT a.id AS action_id, a.decision_id, d.tenant_id, d.rule_id, d.user_id,
                    d.user_principal_name, a.kind, d.decided_at
             FROM actions AS a JOIN decisions AS d ON d.id = a.decision_id
             WHERE a.status = 'held' AND (?1 IS NULL OR d.tenant_id = ?1)
             ORDER BY a.created_at, a.id",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await
        .context(&self.path, || "list the held actions".to_string())
    }

    /// Releases held actions of `tenant_id` (they become `pending`, each with an
    /// `action.released` audit entry) and records who did it. Without `only`, every held action
    /// of the tenant is released and the breaker closes (`breaker_resumed`); with `only`, just
    /// those are (`held_released`) and the breaker stays as it is. All or nothing: when a listed
    /// action is not held in this tenant, nothing is released and `refused` says why.
    ///
    /// # Errors
    /// When the database cannot be read or written.
    pub async fn release_held(
        &self,
        tenant_id: &str,
        only: Option<&[i64]>,
        operator: &str,
        now: DateTime<Utc>,
    ) -> Result<Released, StoreError> {
        let op = || format!("release the held actions of tenant {tenant_id}");
        let mut tx = self.begin_write().await.context(&self.path, op)?;
        let held: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT a.id, a.status, d.tenant_id
             FROM actions AS a JOIN decisions AS d ON d.id = a.decision_id
             WHERE a.status = 'held' AND d.tenant_id = ?
             ORDER BY a.created_at, a.id",
        )
        .bind(tenant_id)
        .fetch_all(&mut *tx)
        .await
        .context(&self.path, op)?;
        let mut result = Released::default();
        let targets: Vec<i64> = match only {
            None => held.iter().map(|(id, _, _)| *id).collect(),
            Some(ids) => {
                for &id in ids {
                    if held.iter().any(|(h, _, _)| *h == id) {
                        continue;
                    }
                    let found: Option<(String, String)> = sqlx::query_as(
                        "SELECT a.status, d.tenant_id
                         FROM actions AS a JOIN decisions AS d ON d.id = a.decision_id
                         WHERE a.id = ?",
                    )
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .context(&self.path, op)?;
                    let why = match found {
                        None => "no such action".to_string(),
                        Some((_, t)) if t != tenant_id => format!("belongs to tenant {t}"),
                        Some((status, _)) => format!("is {status}, not held"),
                    };
                    result.refused.push((id, why));
                }
                let mut ids = ids.to_vec();
                ids.sort_unstable();
                ids.dedup();
                ids
            }
        };
        if !result.refused.is_empty() {
            return Ok(result);
        }
        let at = timestamp(now);
        for &id in &targets {
            sqlx::query(
                "UPDATE actions SET status = 'pending', detail = NULL, updated_at = ?
                 WHERE id = ? AND status = 'held'",
            )
            .bind(&at)
            .bind(id)
            .execute(&mut *tx)
            .await
            .context(&self.path, op)?;
            let action = rows::action(&mut tx, id)
                .await
                .context(&self.path, op)?
                .ok_or(StoreError::UnknownAction {
                    path: self.path.clone(),
                    action_id: id,
                })?;
            audit::append(
                &mut tx,
                AuditKind::ActionReleased,
                Context::action(&action.row, &action.tenant_id),
                &action.row,
            )
            .await
            .context(&self.path, op)?;
        }
        let (kind, scope) = match only {
            None => (BREAKER_RESUMED, "all"),
            Some(_) => (HELD_RELEASED, "listed"),
        };
        let detail = serde_json::json!({
            "tenant_id": tenant_id,
            "operator": operator,
            "scope": scope,
            "released": targets.len(),
            "action_ids": targets,
        });
        insert_daemon_event(&mut tx, kind, &detail)
            .await
            .context(&self.path, op)?;
        tx.commit().await.context(&self.path, op)?;
        result.released = targets;
        Ok(result)
    }

    /// Records the read-back of a revoke.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub async fn record_verification(&self, v: &NewVerification) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO verifications (action_id, checked_at, outcome, revoked_at,
               sessions_valid_from, user_type, http_status, request_id, client_request_id, detail)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             RETURNING id",
        )
        .bind(v.action_id)
        .bind(timestamp(v.checked_at))
        .bind(v.outcome.as_str())
        .bind(timestamp(v.revoked_at))
        .bind(v.sessions_valid_from.map(timestamp))
        .bind(&v.user_type)
        .bind(v.http_status.map(i64::from))
        .bind(&v.request_id)
        .bind(&v.client_request_id)
        .bind(&v.detail)
        .fetch_one(&self.pool)
        .await
        .context(&self.path, || {
            format!("record the verification of action {}", v.action_id)
        })
    }

    /// The status and detail of each listed action that exists, in id order.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn action_outcomes(
        &self,
        ids: &[i64],
    ) -> Result<Vec<(i64, ActionStatus, Option<String>)>, StoreError> {
        let list = serde_json::to_string(ids)
            .map_err(|e| sqlx::Error::Encode(Box::new(e)))
            .context(&self.path, || "encode action ids".to_string())?;
        sqlx::query_as(
            "SELECT id, status, detail FROM actions
             WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id",
        )
        .bind(list)
        .fetch_all(&self.pool)
        .await
        .context(&self.path, || {
            format!("read the outcome of {} action(s)", ids.len())
        })
    }
}

/// The breaker's answer for one enforced decision.
enum Breaker {
    Allow,
    AlreadyOpen(BreakerTrip),
    Trip(BreakerTrip),
}

fn held_reason(trip: &BreakerTrip) -> String {
    format!(
        "held by the blast-radius breaker (tripped {} after more than {} users in {}s); release with `revokd resume`",
        trip.tripped_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        trip.max_actions,
        trip.window_secs
    )
}

async fn judge_breaker(
    conn: &mut SqliteConnection,
    d: &NewDecision,
    limit: &BreakerLimit,
) -> Result<Breaker, sqlx::Error> {
    let since = match breaker_state(conn, &d.tenant_id).await? {
        BreakerState::Open(trip) => return Ok(Breaker::AlreadyOpen(trip)),
        BreakerState::Closed { since } => since,
    };
    let window_start = chrono::Duration::from_std(limit.window)
        .ok()
        .and_then(|w| d.decided_at.checked_sub_signed(w))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let from = since.map_or(window_start, |s| s.max(window_start));
    let (users, counted): (i64, bool) = sqlx::query_as(
        "SELECT COUNT(DISTINCT d.user_id), COALESCE(MAX(d.user_id = ?3), 0)
         FROM decisions AS d
         WHERE d.tenant_id = ?1 AND d.mode = 'enforce' AND d.decided_at >= ?2
           AND EXISTS (SELECT 1 FROM actions AS a
                       WHERE a.decision_id = d.id AND a.kind <> 'notify')",
    )
    .bind(&d.tenant_id)
    .bind(timestamp(from))
    .bind(&d.user_id)
    .fetch_one(&mut *conn)
    .await?;
    let users = u64::try_from(users).unwrap_or(0);
    // A user already actioned within the window adds nobody new.
    if counted || users < u64::from(limit.max_actions) {
        return Ok(Breaker::Allow);
    }
    Ok(Breaker::Trip(BreakerTrip {
        tenant_id: d.tenant_id.clone(),
        tripped_at: d.decided_at,
        max_actions: limit.max_actions,
        window_secs: limit.window.as_secs(),
        users_in_window: users,
        first_held_user: d
            .user_principal_name
            .clone()
            .unwrap_or_else(|| d.user_id.clone()),
        rule_id: d.rule_id.clone(),
    }))
}

async fn breaker_state(
    conn: &mut SqliteConnection,
    tenant_id: &str,
) -> Result<BreakerState, sqlx::Error> {
    let last: Option<(String, String, String)> = sqlx::query_as(
        "SELECT kind, at, detail_json FROM daemon_events
         WHERE kind IN (?1, ?2) AND json_extract(detail_json, '$.tenant_id') = ?3
         ORDER BY id DESC LIMIT 1",
    )
    .bind(BREAKER_TRIPPED)
    .bind(BREAKER_RESUMED)
    .bind(tenant_id)
    .fetch_optional(&mut *conn)
    .await?;
    match last {
        None => Ok(BreakerState::Closed { since: None }),
        Some((kind, _, detail)) if kind == BREAKER_TRIPPED => {
            let trip =
                serde_json::from_str(&detail).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            Ok(BreakerState::Open(trip))
        }
        Some((_, at, _)) => {
            let since = DateTime::parse_from_rfc3339(&at)
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?
                .with_timezone(&Utc);
            Ok(BreakerState::Closed { since: Some(since) })
        }
    }
}

/// A daemon event written inside the caller's transaction, with its audit entry.
async fn insert_daemon_event(
    conn: &mut SqliteConnection,
    kind: &str,
    detail: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO daemon_events (at, kind, detail_json) VALUES (?, ?, ?) RETURNING id",
    )
    .bind(timestamp(Utc::now()))
    .bind(kind)
    .bind(audit::canonical_json(detail))
    .fetch_one(&mut *conn)
    .await?;
    let row = rows::daemon_event(conn, id).await?;
    audit::append(conn, AuditKind::DaemonEvent, Context::default(), &row).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("audit.db"))
            .await
            .expect("store opens");
        (dir, store)
    }

    fn decision(user: &str, at: DateTime<Utc>) -> NewDecision {
        NewDecision {
            tenant_id: "t1".into(),
            source: "risky_users".into(),
            trigger_key: format!("risky_users:{user}:{at}"),
            rule_id: "high-risk".into(),
            rule_hash: "h".into(),
            user_id: user.into(),
            user_principal_name: Some(format!("{user}@contoso.com")),
            mode: DecisionMode::Enforce,
            reason: None,
            record_json: "{}".into(),
            explanation_json: "{}".into(),
            operator: None,
            decided_at: at,
            actions: vec![ActionKind::RevokeSessions],
        }
    }

    const LIMIT: BreakerLimit = BreakerLimit {
        max_actions: 3,
        window: Duration::from_secs(600),
    };

    #[tokio::test]
    async fn the_user_past_the_limit_trips_and_everything_after_is_held() {
        let (_dir, store) = store().await;
        let now = Utc::now();
        let mut modes = Vec::new();
        for user in ["a", "b", "c", "d", "e"] {
            let gated = store
                .record_decision_gated(&decision(user, now), &LIMIT)
                .await
                .expect("recorded");
            modes.push((gated.mode, gated.tripped.is_some()));
        }
        use DecisionMode::{Enforce, Held};
        assert_eq!(
            modes,
            vec![
                (Enforce, false),
                (Enforce, false),
                (Enforce, false),
                (Held, true),
                (Held, false)
            ]
        );
        assert_eq!(store.pending_actions(None).await.expect("pending").len(), 3);
        let held = store.held_actions(Some("t1")).await.expect("held");
        assert_eq!(held.len(), 2);
        assert!(matches!(
            store.breaker_state("t1").await.expect("state"),
            BreakerState::Open(BreakerTrip {
                users_in_window: 3,
                ..
            })
        ));
        // Another tenant has its own breaker.
        let mut other = decision("a", now);
        other.tenant_id = "t2".into();
        let gated = store
            .record_decision_gated(&other, &LIMIT)
            .await
            .expect("recorded");
        assert_eq!(gated.mode, Enforce);
        assert!(store.verify_chain().await.expect("verifies").is_intact());
    }

    #[tokio::test]
    async fn a_user_already_counted_is_not_a_new_one_and_old_ones_leave_the_window() {
        let (_dir, store) = store().await;
        let now = Utc::now();
        let old = now - chrono::Duration::minutes(11);
        for user in ["a", "b", "c"] {
            store
                .record_decision_gated(&decision(user, old), &LIMIT)
                .await
                .expect("recorded");
        }
        for user in ["d", "e", "f"] {
            let gated = store
                .record_decision_gated(&decision(user, now), &LIMIT)
                .await
                .expect("recorded");
            assert_eq!(gated.mode, DecisionMode::Enforce, "{user}");
        }
        let mut again = decision("f", now);
        again.trigger_key.push_str(":2");
        let gated = store
            .record_decision_gated(&again, &LIMIT)
            .await
            .expect("recorded");
        assert_eq!(gated.mode, DecisionMode::Enforce);
        let mut notify_only = decision("g", now);
        notify_only.actions = vec![ActionKind::Notify];
        let gated = store
            .record_decision_gated(&notify_only, &LIMIT)
            .await
            .expect("recorded");
        assert_eq!(gated.mode, DecisionMode::Enforce);
    }

    #[tokio::test]
    async fn release_of_listed_actions_keeps_the_breaker_open_and_resume_closes_it() {
        let (_dir, store) = store().await;
        let now = Utc::now();
        for user in ["a", "b", "c", "d", "e", "f"] {
            store
                .record_decision_gated(&decision(user, now), &LIMIT)
                .await
                .expect("recorded");
        }
        let held: Vec<i64> = store
            .held_actions(None)
            .await
            .expect("held")
            .iter()
            .map(|h| h.action_id)
            .collect();
        assert_eq!(held.len(), 3);

        let refused = store
            .release_held("t1", Some(&[held[0], 1]), "ops", Utc::now())
            .await
            .expect("release");
        assert!(refused.released.is_empty());
        assert_eq!(
            refused.refused,
            vec![(1, "is pending, not held".to_string())]
        );
        assert_eq!(store.held_actions(None).await.expect("held").len(), 3);

        let one = store
            .release_held("t1", Some(&[held[0]]), "ops", Utc::now())
            .await
            .expect("release");
        assert_eq!(one.released, vec![held[0]]);
        assert!(matches!(
            store.breaker_state("t1").await.expect("state"),
            BreakerState::Open(_)
        ));
        assert_eq!(
            store.action_outcomes(&[held[0]]).await.expect("status"),
            vec![(held[0], ActionStatus::Pending, None)]
        );

        let rest = store
            .release_held("t1", None, "ops", Utc::now())
            .await
            .expect("resume");
        assert_eq!(rest.released, held[1..].to_vec());
        assert!(matches!(
            store.breaker_state("t1").await.expect("state"),
            BreakerState::Closed { since: Some(_) }
        ));
        assert_eq!(store.pending_actions(None).await.expect("pending").len(), 6);
        // The window counts again from the resume: three more fit before the next trip.
        let later = Utc::now() + chrono::Duration::seconds(1);
        let modes: Vec<DecisionMode> = {
            let mut out = Vec::new();
            for user in ["g", "h", "i", "j"] {
                out.push(
                    store
                        .record_decision_gated(&decision(user, later), &LIMIT)
                        .await
                        .expect("recorded")
                        .mode,
                );
            }
            out
        };
        assert_eq!(
            modes,
            vec![
                DecisionMode::Enforce,
                DecisionMode::Enforce,
                DecisionMode::Enforce,
                DecisionMode::Held
            ]
        );
        assert!(store.verify_chain().await.expect("verifies").is_intact());
    }

    #[tokio::test]
    async fn held_decisions_count_for_the_cooldown() {
        let (_dir, store) = store().await;
        let now = Utc::now();
        for user in ["a", "b", "c", "d"] {
            store
                .record_decision_gated(&decision(user, now), &LIMIT)
                .await
                .expect("recorded");
        }
        let earlier = now - chrono::Duration::minutes(1);
        assert!(
            store
                .actioned_since("t1", "high-risk", "d", earlier)
                .await
                .expect("cooldown")
        );
        assert!(
            !store
                .enforced_since("t1", "high-risk", "d", earlier)
                .await
                .expect("cooldown")
        );
    }

    #[tokio::test]
    async fn verifications_are_recorded_and_unconfirmed_ones_listed() {
        let (_dir, store) = store().await;
        let now = Utc::now();
        let gated = store
            .record_decision_gated(&decision("a", now), &LIMIT)
            .await
            .expect("recorded");
        let DecisionInsert::Inserted { action_ids, .. } = gated.insert else {
            panic!("inserted");
        };
        store
            .record_verification(&NewVerification {
                action_id: action_ids[0],
                checked_at: now,
                outcome: VerificationOutcome::GuestNotEffective,
                revoked_at: now,
                sessions_valid_from: Some(now),
                user_type: Some("Guest".into()),
                http_status: Some(200),
                request_id: Some("r".into()),
                client_request_id: Some("c".into()),
                detail: None,
            })
            .await
            .expect("verification");
        let outcome: String =
            sqlx::query_scalar("SELECT outcome FROM v_unverified_actions WHERE action_id = ?")
                .bind(action_ids[0])
                .fetch_one(&store.pool)
                .await
                .expect("listed");
        assert_eq!(outcome, "guest_not_effective");
        // The widened CHECK still refuses what it never allowed.
        let bogus = sqlx::query("UPDATE actions SET status = 'bogus' WHERE id = ?")
            .bind(action_ids[0])
            .execute(&store.pool)
            .await;
        assert!(bogus.is_err());
    }
}
