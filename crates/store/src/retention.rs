//! Retention: pruning rows older than the configured period without breaking verification.
//!
//! The audit log can only lose a prefix: entries `from_seq..=through_seq` are deleted together
//! with the rows they record, and the last of them is replaced by a checkpoint row that keeps
//! its seq and hash, so the next entry still links to it. The same checkpoint content is then
//! appended to the chain as an `audit.pruned` entry, hashed like every entry, which verification
//! requires to match the checkpoint. A prune is refused when the part it would delete does not
//! verify, so it never erases the evidence of tampering.
//!
//! The prefix only ever covers whole rows and whole decisions (a decision with its actions and
//! attempts), every entry of which was written before the cut-off time, and it stops at the
//! first thing that must stay:
//! - a decision with an action still pending, in flight or held (the outbox and `revokd
//!   resume` need it; its decision says why it exists);
//! - the latest breaker trip of a tenant whose breaker is still open (the breaker's state is
//!   that event).
//!
//! Such a row holds pruning back until it is settled: keeping evidence longer is the safe
//! failure. Each batch is one short `BEGIN IMMEDIATE` transaction, so the daemon's own writes
//! interleave with a long prune.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;
use tracing::info;

use crate::audit::{self, AuditKind, ChainVerifier, Context, EntryRow, RowIds};
use crate::containment::{BREAKER_RESUMED, BREAKER_TRIPPED};
use crate::error::QueryContext;
use crate::model::{Checkpoint, PruneCounts, PruneReport};
use crate::rows::timestamp;
use crate::{Store, StoreError};

/// Entries one batch covers at most (a little more when a decision straddles the limit).
const BATCH_ENTRIES: usize = 2_000;
/// Entries read per query while scanning.
const PAGE: i64 = 500;
/// The tables whose triggers refuse deletes and updates; pruning lifts them inside its own
/// transaction and restores them exactly as they were before it commits.
const GUARDED_TABLES: &str = r#"["audit_log","decisions","actions","attempts","daemon_events"]"#;

impl Store {
    /// Deletes decisions (with their actions and attempts) and daemon events whose every audit
    /// entry was written before `before`, and the audit entries that recorded them, leaving a
    /// checkpoint so that `verify_chain` still passes. Rows that must stay (see the module
    /// documentation) stop the prune where they are; the report says which. A `before` in the
    /// future counts as now, so the prune never reaches the entries it writes itself.
    ///
    /// # Errors
    /// `PruneRefused` when the entries or rows to be deleted do not verify; otherwise when the
    /// database cannot be read or written.
    pub async fn prune(&self, before: DateTime<Utc>) -> Result<PruneReport, StoreError> {
        let before = before.min(Utc::now());
        let op = || format!("prune audit rows older than {}", timestamp(before));
        let mut report = PruneReport::default();
        loop {
            let mut tx = self.begin_write().await.context(&self.path, op)?;
            let plan = plan_batch(&mut tx, before).await.context(&self.path, op)?;
            report.blocked_by = plan.blocked_by.clone();
            if let Some((seq, problem)) = plan.broken {
                return Err(StoreError::PruneRefused {
                    path: self.path.clone(),
                    seq,
                    problem,
                });
            }
            let Some(cut) = plan.cut.clone() else {
                tx.rollback().await.context(&self.path, op)?;
                break;
            };
            let mut chain = plan.chain;
            if let Some((seq, problem)) = audit::check_rows(&mut tx, &mut chain, &plan.ids)
                .await
                .context(&self.path, op)?
            {
                return Err(StoreError::PruneRefused {
                    path: self.path.clone(),
                    seq,
                    problem,
                });
            }
            let checkpoint = apply(&mut tx, before, plan.anchor_seq, &cut, &plan.ids)
                .await
                .context(&self.path, op)?;
            tx.commit().await.context(&self.path, op)?;
            report.removed.add(&checkpoint.removed);
            report.batches += 1;
            report.checkpoint = Some(checkpoint);
        }
        if report.batches > 0 {
            info!(
                path = %self.path.display(),
                before = %timestamp(before),
                entries = report.removed.entries,
                decisions = report.removed.decisions,
                daemon_events = report.removed.daemon_events,
                "audit retention pruned old rows"
            );
        }
        Ok(report)
    }

    /// `prune` of everything older than `retention` from now: what the daemon runs each cycle
    /// when `store.retention` is set. A period too long to subtract from now prunes nothing.
    ///
    /// # Errors
    /// As `prune`.
    pub async fn prune_older_than(
        &self,
        retention: std::time::Duration,
    ) -> Result<PruneReport, StoreError> {
        let before = chrono::Duration::from_std(retention)
            .ok()
            .and_then(|age| Utc::now().checked_sub_signed(age));
        match before {
            Some(before) => self.prune(before).await,
            None => Ok(PruneReport::default()),
        }
    }
}

/// What one batch would delete.
struct Plan {
    /// The chain as scanned, to compare the rows against before deleting them.
    chain: ChainVerifier,
    /// The seq of the checkpoint the chain starts from, 0 before the first prune.
    anchor_seq: i64,
    /// The last entry to prune, with its hash; `None` when nothing can be.
    cut: Option<(i64, String)>,
    /// The rows recorded by the entries up to the cut.
    ids: RowIds,
    /// The first entry that does not verify.
    broken: Option<(i64, String)>,
    /// What stopped the scan before the cut-off time, in words.
    blocked_by: Option<String>,
}

/// How far a decision's entries reach, and whether it may go.
#[derive(Debug, Clone, Copy)]
struct DecisionSpan {
    last_seq: i64,
    state: SpanState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpanState {
    /// Every action ended and every entry is older than the cut-off.
    Removable,
    /// An action is pending, in flight or held.
    Open,
    /// Something happened to it after the cut-off.
    Recent,
}

/// Scans the chain from its start for the longest prefix made only of whole, removable rows
/// and decisions written before `before`, verifying every entry it reads.
async fn plan_batch(
    conn: &mut SqliteConnection,
    before: DateTime<Utc>,
) -> Result<Plan, sqlx::Error> {
    let before_text = timestamp(before);
    let mut chain = ChainVerifier::default();
    let mut spans: HashMap<i64, DecisionSpan> = HashMap::new();
    // Rows touched since the last cut, moved into `ids` when the next cut closes them.
    let mut pending = RowIds::default();
    let mut ids = RowIds::default();
    let mut cut = None;
    let mut blocked_by = None;
    let mut need_until = 0;
    let mut scanned = 0;
    let mut after = 0;
    'scan: loop {
        let page: Vec<EntryRow> = sqlx::query_as(audit::SELECT_ENTRIES_FROM)
            .bind(after)
            .bind(PAGE)
            .fetch_all(&mut *conn)
            .await?;
        if page.is_empty() {
            break;
        }
        for entry in &page {
            after = entry.seq;
            chain.push(entry);
            if let Some(broken) = chain.broken.take() {
                return Ok(Plan {
                    chain,
                    anchor_seq: 0,
                    cut: None,
                    ids,
                    broken: Some(broken),
                    blocked_by,
                });
            }
            let Some(kind) = AuditKind::parse(&entry.kind) else {
                // The verifier refuses unknown kinds; this is never reached.
                break 'scan;
            };
            if kind == AuditKind::Checkpoint {
                continue;
            }
            if entry.at >= before_text {
                break 'scan;
            }
            let end = match (kind.entity(), entry.decision_id) {
                (Some(audit::Entity::DaemonEvent), _) => {
                    if let Some(why) = daemon_event_must_stay(conn, &entry.payload).await? {
                        blocked_by = Some(why);
                        break 'scan;
                    }
                    pending.daemon_events.push(event_id(&entry.payload));
                    entry.seq
                }
                (Some(entity), Some(decision_id)) => {
                    let span = match spans.get(&decision_id) {
                        Some(span) => *span,
                        None => {
                            let span = decision_span(conn, decision_id, &before_text).await?;
                            spans.insert(decision_id, span);
                            span
                        }
                    };
                    match span.state {
                        SpanState::Removable => {}
                        SpanState::Recent => break 'scan,
                        SpanState::Open => {
                            blocked_by = Some(format!(
                                "decision {decision_id} has an action still pending, in flight \
                                 or held"
                            ));
                            break 'scan;
                        }
                    }
                    let id = match entity {
                        audit::Entity::Decision => Some(decision_id),
                        audit::Entity::Action => entry.action_id,
                        audit::Entity::Attempt => entry.attempt_id,
                        audit::Entity::DaemonEvent => None,
                    };
                    if let Some(id) = id {
                        pending.of(entity).push(id);
                    }
                    span.last_seq
                }
                // An `audit.pruned` entry records no row and goes with the prefix.
                (None, _) => entry.seq,
                // The verifier refuses a row entry without its decision; never reached.
                (Some(_), None) => break 'scan,
            };
            need_until = need_until.max(end);
            scanned += 1;
            if entry.seq >= need_until {
                cut = Some((entry.seq, entry.hash.clone()));
                for entity in [
                    audit::Entity::Decision,
                    audit::Entity::Action,
                    audit::Entity::Attempt,
                    audit::Entity::DaemonEvent,
                ] {
                    let moved = std::mem::take(pending.of(entity));
                    ids.of(entity).extend(moved);
                }
                if scanned >= BATCH_ENTRIES {
                    break 'scan;
                }
            }
        }
    }
    for list in [
        &mut ids.decisions,
        &mut ids.actions,
        &mut ids.attempts,
        &mut ids.daemon_events,
    ] {
        list.sort_unstable();
        list.dedup();
    }
    Ok(Plan {
        anchor_seq: chain.anchor_seq(),
        chain,
        cut,
        ids,
        broken: None,
        blocked_by,
    })
}

/// The id of a daemon event from its entry's payload (checked by the verifier).
fn event_id(payload: &str) -> i64 {
    serde_json::from_str::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("id").and_then(serde_json::Value::as_i64))
        .unwrap_or_default()
}

/// Why a daemon event must stay, if it must: it is a tenant's latest breaker trip, so the
/// breaker is open and its state is this event.
async fn daemon_event_must_stay(
    conn: &mut SqliteConnection,
    payload: &str,
) -> Result<Option<String>, sqlx::Error> {
    let event: serde_json::Value =
        serde_json::from_str(payload).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    if event.get("kind").and_then(serde_json::Value::as_str) != Some(BREAKER_TRIPPED) {
        return Ok(None);
    }
    let id = event.get("id").and_then(serde_json::Value::as_i64);
    let detail = event
        .get("detail_json")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("{}");
    let superseded: bool = sqlx::query_scalar(
        "SELECT EXISTS (
           SELECT 1 FROM daemon_events
           WHERE id > ?1 AND kind IN (?2, ?3)
             AND json_extract(detail_json, '$.tenant_id') = json_extract(?4, '$.tenant_id')
         )",
    )
    .bind(id)
    .bind(BREAKER_TRIPPED)
    .bind(BREAKER_RESUMED)
    .bind(detail)
    .fetch_one(&mut *conn)
    .await?;
    Ok((!superseded).then(|| {
        format!(
            "daemon event {} is the breaker trip of a tenant whose breaker is still open",
            id.unwrap_or_default()
        )
    }))
}

/// The last entry of a decision (its actions' and attempts' included) and whether the whole
/// decision may be pruned: every action ended, every entry before the cut-off.
async fn decision_span(
    conn: &mut SqliteConnection,
    decision_id: i64,
    before: &str,
) -> Result<DecisionSpan, sqlx::Error> {
    let (last_seq, last_at, open): (Option<i64>, Option<String>, bool) = sqlx::query_as(
        "SELECT max(seq), max(at),
                EXISTS (SELECT 1 FROM actions
                        WHERE decision_id = ?1
                          AND status NOT IN ('succeeded', 'failed', 'skipped'))
         FROM audit_log WHERE decision_id = ?1",
    )
    .bind(decision_id)
    .fetch_one(&mut *conn)
    .await?;
    let state = if open {
        SpanState::Open
    } else if last_at.is_some_and(|at| at.as_str() < before) {
        SpanState::Removable
    } else {
        SpanState::Recent
    };
    Ok(DecisionSpan {
        last_seq: last_seq.unwrap_or_default(),
        state,
    })
}

/// Deletes the rows and entries up to the cut, puts the checkpoint in the cut's place and
/// records the prune in the chain.
async fn apply(
    conn: &mut SqliteConnection,
    before: DateTime<Utc>,
    anchor_seq: i64,
    (cut_seq, cut_hash): &(i64, String),
    ids: &RowIds,
) -> Result<Checkpoint, sqlx::Error> {
    let triggers: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_schema
         WHERE type = 'trigger' AND tbl_name IN (SELECT value FROM json_each(?))
         ORDER BY name",
    )
    .bind(GUARDED_TABLES)
    .fetch_all(&mut *conn)
    .await?;
    for (name, _) in &triggers {
        // Names come from sqlite_schema, quoted as identifiers.
        let drop = format!("DROP TRIGGER \"{}\"", name.replace('"', "\"\""));
        sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
            .execute(&mut *conn)
            .await?;
    }
    let list = |ids: &[i64]| serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
    let mut delete = async |sql: &'static str, ids: &[i64]| -> Result<u64, sqlx::Error> {
        Ok(sqlx::query(sql)
            .bind(list(ids))
            .execute(&mut *conn)
            .await?
            .rows_affected())
    };
    let attempts = delete(
        "DELETE FROM attempts WHERE id IN (SELECT value FROM json_each(?))",
        &ids.attempts,
    )
    .await?;
    let actions = delete(
        "DELETE FROM actions WHERE id IN (SELECT value FROM json_each(?))",
        &ids.actions,
    )
    .await?;
    let decisions = delete(
        "DELETE FROM decisions WHERE id IN (SELECT value FROM json_each(?))",
        &ids.decisions,
    )
    .await?;
    let daemon_events = delete(
        "DELETE FROM daemon_events WHERE id IN (SELECT value FROM json_each(?))",
        &ids.daemon_events,
    )
    .await?;
    sqlx::query("DELETE FROM audit_log WHERE seq < ?")
        .bind(cut_seq)
        .execute(&mut *conn)
        .await?;
    let now = Utc::now();
    let checkpoint = Checkpoint {
        from_seq: anchor_seq + 1,
        through_seq: *cut_seq,
        through_hash: cut_hash.clone(),
        before,
        pruned_at: now,
        removed: PruneCounts {
            entries: u64::try_from(cut_seq - anchor_seq).unwrap_or_default(),
            decisions,
            actions,
            attempts,
            daemon_events,
        },
    };
    sqlx::query(
        "UPDATE audit_log
         SET at = ?, kind = ?, tenant_id = NULL, decision_id = NULL, action_id = NULL,
             attempt_id = NULL, payload = ?
         WHERE seq = ?",
    )
    .bind(timestamp(now))
    .bind(AuditKind::Checkpoint.as_str())
    .bind(audit::payload(&checkpoint)?)
    .bind(cut_seq)
    .execute(&mut *conn)
    .await?;
    for (_, sql) in &triggers {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut *conn)
            .await?;
    }
    audit::append(conn, AuditKind::Pruned, Context::default(), &checkpoint).await?;
    Ok(checkpoint)
}
