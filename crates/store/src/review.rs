//! The questions an investigator asks after an incident, for `revokd audit`: decisions and
//! their actions filtered by user, rule, tenant, mode, outcome and time; the full story of one
//! decision (the record it saw, how the rule matched, every action and every Graph call, the
//! audit entries that vouch for them); and counts per rule, outcome, mode and hour.
//!
//! Everything here only reads, so it works on a store opened with `Store::open_read_only`, and
//! each answer comes from one read transaction: a consistent snapshot that never blocks the
//! daemon. Timestamps and enumerations are returned as stored (text), so an export is the
//! evidence byte for byte and an unexpected value in a damaged file is shown, not refused.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::error::QueryContext;
use crate::model::{ActionStatus, DecisionMode};
use crate::rows::{ActionRow, AttemptRow, DecisionRow, timestamp};
use crate::{Store, StoreError};

/// Which decisions a review looks at. Every field set narrows the selection; none set means
/// every decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewFilter {
    /// The user's object id, or sign-in name in any case.
    pub user: Option<String>,
    /// The rule that decided.
    pub rule: Option<String>,
    /// The tenant id.
    pub tenant: Option<String>,
    /// How the safety gate judged the match.
    pub mode: Option<DecisionMode>,
    /// Only actions that ended (or stand) so; decisions with at least one such action.
    pub outcome: Option<ActionStatus>,
    /// Decided at or after.
    pub since: Option<DateTime<Utc>>,
    /// Decided at or before.
    pub until: Option<DateTime<Utc>>,
    /// At most this many rows (list) or decisions (stories), oldest first.
    pub limit: Option<u32>,
}

/// One action of one decision with its last Graph call: a row of `revokd audit list` and of the
/// CSV export. A decision without actions has one row with the action fields empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ActionSummary {
    /// The decision; `revokd audit show` takes it.
    pub decision_id: i64,
    /// When the safety gate decided.
    pub decided_at: String,
    /// The tenant.
    pub tenant_id: String,
    /// The feed the triggering record came from, or `manual`.
    pub source: String,
    /// The user's object id.
    pub user_id: String,
    /// The user's sign-in name, when the record carried it.
    pub user_principal_name: Option<String>,
    /// The rule that decided.
    pub rule_id: String,
    /// Hash of that rule's text at the time.
    pub rule_hash: String,
    /// The safety gate's verdict: enforce, dry_run, suppressed, protected, cooldown, held.
    pub mode: String,
    /// Why it was not enforced.
    pub reason: Option<String>,
    /// Who asked, for manual actions.
    pub operator: Option<String>,
    /// The triggering record's identity (feed, id, version).
    pub trigger_key: String,
    /// The action, when the decision has one.
    pub action_id: Option<i64>,
    /// What it does: revoke_sessions, confirm_compromised, disable_account, notify.
    pub action: Option<String>,
    /// Where it stands: pending, in_flight, succeeded, failed, skipped, held.
    pub status: Option<String>,
    /// Why it was skipped or how it ended.
    pub detail: Option<String>,
    /// Graph calls made for it.
    pub attempts: Option<i64>,
    /// HTTP status of the last call.
    pub last_http_status: Option<i64>,
    /// Graph's error code on the last call.
    pub last_graph_error_code: Option<String>,
    /// Graph's request-id of the last call, for Microsoft support.
    pub last_request_id: Option<String>,
    /// The client-request-id revokd sent with the last call.
    pub last_client_request_id: Option<String>,
    /// When the action ended.
    pub completed_at: Option<String>,
    /// The triggering Graph record as received (JSON text).
    pub record_json: String,
    /// How the rule matched (JSON text).
    pub explanation_json: String,
}

/// Everything the database knows about one decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionStory {
    /// The decision and the evidence it was made on.
    pub decision: DecisionDetail,
    /// Its actions, each with every Graph call made for it.
    pub actions: Vec<ActionDetail>,
    /// The audit entries recording the decision, its actions and calls, in chain order.
    pub audit_entries: Vec<AuditEntryRef>,
}

/// A decision with its record and explanation as JSON values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionDetail {
    /// The decision id.
    pub id: i64,
    /// When the safety gate decided.
    pub decided_at: String,
    /// The tenant.
    pub tenant_id: String,
    /// The feed the trigger came from, or `manual`.
    pub source: String,
    /// The triggering record's identity.
    pub trigger_key: String,
    /// The rule that decided.
    pub rule_id: String,
    /// Hash of that rule's text at the time.
    pub rule_hash: String,
    /// The user's object id.
    pub user_id: String,
    /// The user's sign-in name.
    pub user_principal_name: Option<String>,
    /// The safety gate's verdict.
    pub mode: String,
    /// Why it was not enforced.
    pub reason: Option<String>,
    /// Who asked, for manual actions.
    pub operator: Option<String>,
    /// The triggering Graph record as received; a string when it is not valid JSON.
    pub record: Value,
    /// How the rule matched; a string when it is not valid JSON.
    pub explanation: Value,
}

/// An action with its calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionDetail {
    /// The action id.
    pub id: i64,
    /// What it does.
    pub kind: String,
    /// Where it stands.
    pub status: String,
    /// Why it was skipped or how it ended.
    pub detail: Option<String>,
    /// When it was queued.
    pub created_at: String,
    /// When its status last changed.
    pub updated_at: String,
    /// When it ended.
    pub completed_at: Option<String>,
    /// Every Graph call made for it, first first.
    pub attempts: Vec<AttemptDetail>,
}

/// One Graph call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptDetail {
    /// The attempt id.
    pub id: i64,
    /// 1 for the first call of the action.
    pub attempt_no: i64,
    /// The Graph path called.
    pub endpoint: String,
    /// Why this call is a retry.
    pub retry_reason: Option<String>,
    /// When the call started.
    pub started_at: String,
    /// When it answered; empty while in flight or when the process died during it.
    pub finished_at: Option<String>,
    /// How long it took.
    pub latency_ms: Option<i64>,
    /// The HTTP status.
    pub http_status: Option<i64>,
    /// Graph's error code.
    pub graph_error_code: Option<String>,
    /// What went wrong, in words.
    pub error_message: Option<String>,
    /// Graph's request-id.
    pub request_id: Option<String>,
    /// The client-request-id revokd sent.
    pub client_request_id: String,
}

/// An audit entry that records part of a decision's story.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AuditEntryRef {
    /// Its place in the chain.
    pub seq: i64,
    /// When it was written.
    pub at: String,
    /// What it records, e.g. `decision.recorded`, `attempt.finished`.
    pub kind: String,
    /// The action it concerns.
    pub action_id: Option<i64>,
    /// The attempt it concerns.
    pub attempt_id: Option<i64>,
    /// Its chain hash.
    pub hash: String,
}

/// Counts for `revokd audit stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditStats {
    /// Decisions selected.
    pub decisions: i64,
    /// Distinct users (per tenant) with at least one action on the tenant that succeeded.
    pub contained_users: i64,
    /// Per rule, most decisions first.
    pub by_rule: Vec<RuleStats>,
    /// Actions per status.
    pub by_outcome: Vec<OutcomeCount>,
    /// Decisions per mode.
    pub by_mode: Vec<ModeCount>,
    /// Per hour of decision (UTC), oldest first.
    pub by_hour: Vec<HourStats>,
}

/// One rule's decisions and how their actions ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct RuleStats {
    /// The rule.
    pub rule_id: String,
    /// Its decisions.
    pub decisions: i64,
    /// Of which enforced.
    pub enforced: i64,
    /// Actions that succeeded.
    pub succeeded: i64,
    /// Actions that failed.
    pub failed: i64,
    /// Actions recorded but not run.
    pub skipped: i64,
    /// Actions held by the breaker.
    pub held: i64,
    /// Actions pending or in flight.
    pub open: i64,
}

/// Actions with one status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct OutcomeCount {
    /// The status.
    pub status: String,
    /// How many actions.
    pub actions: i64,
}

/// Decisions with one mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ModeCount {
    /// The mode.
    pub mode: String,
    /// How many decisions.
    pub decisions: i64,
}

/// One hour's decisions and outcomes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct HourStats {
    /// The hour, e.g. `2026-11-24T10:00Z`.
    pub hour: String,
    /// Decisions made in it.
    pub decisions: i64,
    /// Their actions that succeeded.
    pub succeeded: i64,
    /// Their actions that failed.
    pub failed: i64,
}

/// The decision part of every review query, over `decisions AS d`, parameters ?1 to ?6 (user,
/// rule, tenant, mode, since, until); ?7 is the outcome and ?8 the limit.
macro_rules! decision_filter {
    () => {
        "(?1 IS NULL OR d.user_id = ?1 OR lower(d.user_principal_name) = lower(?1))
         AND (?2 IS NULL OR d.rule_id = ?2)
         AND (?3 IS NULL OR d.tenant_id = ?3)
         AND (?4 IS NULL OR d.mode = ?4)
         AND (?5 IS NULL OR d.decided_at >= ?5)
         AND (?6 IS NULL OR d.decided_at <= ?6)"
    };
}

/// Selected decisions for the stories and stats, outcome included.
macro_rules! selected_decisions {
    () => {
        concat!(
            "SELECT d.* FROM decisions AS d WHERE ",
            decision_filter!(),
            " AND (?7 IS NULL OR EXISTS (SELECT 1 FROM actions AS x
                                          WHERE x.decision_id = d.id AND x.status = ?7))"
        )
    };
}

/// Binds a `ReviewFilter` to parameters ?1 to ?8.
macro_rules! bind_filter {
    ($query:expr, $f:expr) => {
        $query
            .bind($f.user.as_deref())
            .bind($f.rule.as_deref())
            .bind($f.tenant.as_deref())
            .bind($f.mode.map(DecisionMode::as_str))
            .bind($f.since.map(timestamp))
            .bind($f.until.map(timestamp))
            .bind($f.outcome.map(ActionStatus::as_str))
            // SQLite reads a negative LIMIT as none.
            .bind($f.limit.map_or(-1, i64::from))
    };
}

const LIST: &str = concat!(
    "SELECT d.id AS decision_id, d.decided_at, d.tenant_id, d.source, d.user_id,
            d.user_principal_name, d.rule_id, d.rule_hash, d.mode, d.reason, d.operator,
            d.trigger_key, a.id AS action_id, a.kind AS action, a.status, a.detail, a.attempts,
            last.http_status AS last_http_status, last.graph_error_code AS last_graph_error_code,
            last.request_id AS last_request_id, last.client_request_id AS last_client_request_id,
            a.completed_at, d.record_json, d.explanation_json
     FROM decisions AS d
     LEFT JOIN actions AS a ON a.decision_id = d.id
     LEFT JOIN attempts AS last
         ON last.id = (SELECT max(t.id) FROM attempts AS t WHERE t.action_id = a.id)
     WHERE ",
    decision_filter!(),
    " AND (?7 IS NULL OR a.status = ?7)
     ORDER BY d.decided_at, d.id, a.id
     LIMIT ?8"
);

const STORY_DECISIONS: &str = concat!(
    selected_decisions!(),
    " ORDER BY d.decided_at, d.id LIMIT ?8"
);

/// The selection as common table expressions `sel` (decisions) and `act` (their actions, only
/// those with the outcome when one is asked for), for the counts.
macro_rules! stats_query {
    ($select:literal) => {
        concat!(
            "WITH sel AS (",
            selected_decisions!(),
            " LIMIT ?8), act AS (SELECT a.* FROM actions AS a JOIN sel ON sel.id = a.decision_id
                           WHERE ?7 IS NULL OR a.status = ?7) ",
            $select
        )
    };
}

const STATS_TOTALS: &str = stats_query!(
    "SELECT (SELECT count(*) FROM sel),
            (SELECT count(DISTINCT sel.tenant_id || '/' || sel.user_id)
             FROM sel JOIN act ON act.decision_id = sel.id
             WHERE act.status = 'succeeded' AND act.kind <> 'notify')"
);

const STATS_BY_RULE: &str = stats_query!(
    "SELECT sel.rule_id,
            count(DISTINCT sel.id) AS decisions,
            count(DISTINCT CASE WHEN sel.mode = 'enforce' THEN sel.id END) AS enforced,
            count(act.id) FILTER (WHERE act.status = 'succeeded') AS succeeded,
            count(act.id) FILTER (WHERE act.status = 'failed') AS failed,
            count(act.id) FILTER (WHERE act.status = 'skipped') AS skipped,
            count(act.id) FILTER (WHERE act.status = 'held') AS held,
            count(act.id) FILTER (WHERE act.status IN ('pending', 'in_flight')) AS open
     FROM sel LEFT JOIN act ON act.decision_id = sel.id
     GROUP BY sel.rule_id
     ORDER BY decisions DESC, sel.rule_id"
);

const STATS_BY_OUTCOME: &str = stats_query!(
    "SELECT status, count(*) AS actions FROM act GROUP BY status ORDER BY actions DESC, status"
);

const STATS_BY_MODE: &str = stats_query!(
    "SELECT mode, count(*) AS decisions FROM sel GROUP BY mode ORDER BY decisions DESC, mode"
);

const STATS_BY_HOUR: &str = stats_query!(
    "SELECT substr(sel.decided_at, 1, 13) || ':00Z' AS hour,
            count(DISTINCT sel.id) AS decisions,
            count(act.id) FILTER (WHERE act.status = 'succeeded') AS succeeded,
            count(act.id) FILTER (WHERE act.status = 'failed') AS failed
     FROM sel LEFT JOIN act ON act.decision_id = sel.id
     GROUP BY hour
     ORDER BY hour"
);

impl Store {
    /// One row per action of every selected decision (a decision without actions gets one
    /// row), oldest decision first.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn list_actions(&self, f: &ReviewFilter) -> Result<Vec<ActionSummary>, StoreError> {
        bind_filter!(sqlx::query_as(LIST), f)
            .fetch_all(&self.pool)
            .await
            .context(&self.path, || "list decisions and actions".to_string())
    }

    /// The full story of one decision, or `None` when there is no such decision.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn decision_story(&self, id: i64) -> Result<Option<DecisionStory>, StoreError> {
        let op = || format!("read decision {id}");
        let mut tx = self.pool.begin().await.context(&self.path, op)?;
        let decisions: Vec<DecisionRow> = sqlx::query_as("SELECT * FROM decisions WHERE id = ?")
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .context(&self.path, op)?;
        let mut stories = stories(&mut tx, decisions).await.context(&self.path, op)?;
        tx.commit().await.context(&self.path, op)?;
        Ok(stories.pop())
    }

    /// The full story of every selected decision, oldest first.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn decision_stories(
        &self,
        f: &ReviewFilter,
    ) -> Result<Vec<DecisionStory>, StoreError> {
        let op = || "read decisions".to_string();
        let mut tx = self.pool.begin().await.context(&self.path, op)?;
        let decisions: Vec<DecisionRow> = bind_filter!(sqlx::query_as(STORY_DECISIONS), f)
            .fetch_all(&mut *tx)
            .await
            .context(&self.path, op)?;
        let stories = stories(&mut tx, decisions).await.context(&self.path, op)?;
        tx.commit().await.context(&self.path, op)?;
        Ok(stories)
    }

    /// Counts per rule, outcome, mode and hour over the selected decisions.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn stats(&self, f: &ReviewFilter) -> Result<AuditStats, StoreError> {
        let op = || "count decisions and actions".to_string();
        let mut tx = self.pool.begin().await.context(&self.path, op)?;
        let (decisions, contained_users): (i64, i64) =
            bind_filter!(sqlx::query_as(STATS_TOTALS), f)
                .fetch_one(&mut *tx)
                .await
                .context(&self.path, op)?;
        let by_rule = bind_filter!(sqlx::query_as(STATS_BY_RULE), f)
            .fetch_all(&mut *tx)
            .await
            .context(&self.path, op)?;
        let by_outcome = bind_filter!(sqlx::query_as(STATS_BY_OUTCOME), f)
            .fetch_all(&mut *tx)
            .await
            .context(&self.path, op)?;
        let by_mode = bind_filter!(sqlx::query_as(STATS_BY_MODE), f)
            .fetch_all(&mut *tx)
            .await
            .context(&self.path, op)?;
        let by_hour = bind_filter!(sqlx::query_as(STATS_BY_HOUR), f)
            .fetch_all(&mut *tx)
            .await
            .context(&self.path, op)?;
        tx.commit().await.context(&self.path, op)?;
        Ok(AuditStats {
            decisions,
            contained_users,
            by_rule,
            by_outcome,
            by_mode,
            by_hour,
        })
    }
}

/// Loads the actions, attempts and audit entries of `decisions` and puts each story together.
async fn stories(
    conn: &mut sqlx::SqliteConnection,
    decisions: Vec<DecisionRow>,
) -> Result<Vec<DecisionStory>, sqlx::Error> {
    if decisions.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = decisions.iter().map(|d| d.id).collect();
    let ids = serde_json::to_string(&ids).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let actions: Vec<ActionRow> = sqlx::query_as(
        "SELECT * FROM actions WHERE decision_id IN (SELECT value FROM json_each(?))
         ORDER BY id",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let attempts: Vec<AttemptRow> = sqlx::query_as(
        "SELECT t.* FROM attempts AS t JOIN actions AS a ON a.id = t.action_id
         WHERE a.decision_id IN (SELECT value FROM json_each(?))
         ORDER BY t.id",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let entries: Vec<(i64, AuditEntryRef)> = sqlx::query_as::<_, EntryWithDecision>(
        "SELECT decision_id, seq, at, kind, action_id, attempt_id, hash FROM audit_log
         WHERE decision_id IN (SELECT value FROM json_each(?))
         ORDER BY seq",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|e| (e.decision_id, e.entry))
    .collect();

    let mut calls: HashMap<i64, Vec<AttemptDetail>> = HashMap::new();
    for t in attempts {
        calls.entry(t.action_id).or_default().push(AttemptDetail {
            id: t.id,
            attempt_no: t.attempt_no,
            endpoint: t.endpoint,
            retry_reason: t.retry_reason,
            started_at: t.started_at,
            finished_at: t.finished_at,
            latency_ms: t.latency_ms,
            http_status: t.http_status,
            graph_error_code: t.graph_error_code,
            error_message: t.error_message,
            request_id: t.request_id,
            client_request_id: t.client_request_id,
        });
    }
    let mut by_decision: HashMap<i64, Vec<ActionDetail>> = HashMap::new();
    for a in actions {
        by_decision
            .entry(a.decision_id)
            .or_default()
            .push(ActionDetail {
                attempts: calls.remove(&a.id).unwrap_or_default(),
                id: a.id,
                kind: a.kind,
                status: a.status,
                detail: a.detail,
                created_at: a.created_at,
                updated_at: a.updated_at,
                completed_at: a.completed_at,
            });
    }
    let mut trail: HashMap<i64, Vec<AuditEntryRef>> = HashMap::new();
    for (decision_id, entry) in entries {
        trail.entry(decision_id).or_default().push(entry);
    }
    Ok(decisions
        .into_iter()
        .map(|d| DecisionStory {
            actions: by_decision.remove(&d.id).unwrap_or_default(),
            audit_entries: trail.remove(&d.id).unwrap_or_default(),
            decision: DecisionDetail {
                id: d.id,
                decided_at: d.decided_at,
                tenant_id: d.tenant_id,
                source: d.source,
                trigger_key: d.trigger_key,
                rule_id: d.rule_id,
                rule_hash: d.rule_hash,
                user_id: d.user_id,
                user_principal_name: d.user_principal_name,
                mode: d.mode,
                reason: d.reason,
                operator: d.operator,
                record: json_or_text(d.record_json),
                explanation: json_or_text(d.explanation_json),
            },
        })
        .collect())
}

/// An audit entry with the decision it belongs to.
#[derive(sqlx::FromRow)]
struct EntryWithDecision {
    decision_id: i64,
    #[sqlx(flatten)]
    entry: AuditEntryRef,
}

/// The text parsed as JSON, or kept as a string when it is not JSON.
fn json_or_text(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}
