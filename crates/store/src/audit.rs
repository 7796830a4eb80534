//! The append-only, hash-chained audit log: writing entries inside the caller's transaction,
//! `verify_chain`, which recomputes the chain and checks every audited row against its latest
//! entry, and `check_head`, which checks a head recorded elsewhere.
//!
//! An entry's hash is `hex(sha256(prev_hash "\n" seq "\n" kind "\n" payload))`, the first
//! `prev_hash` being 64 zeros; the payload is the canonical JSON of the row as written. The id
//! and tenant columns of an entry are not hashed, so verification derives them from the payload
//! and refuses entries whose columns disagree. Nor is `at`: every time that matters (decided,
//! started, finished, completed) is a column of the audited row, inside the payload.
//!
//! A chain pruned by retention (see `retention`) starts with a checkpoint row instead of entry 1:
//! it carries the seq and hash of the last pruned entry, so verification links the rest to it,
//! and the latest `audit.pruned` entry further on must repeat its content exactly.

use std::collections::HashMap;

use chrono::Utc;
use futures_util::TryStreamExt;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteRow;

use crate::error::QueryContext;
use crate::model::{ChainReport, Checkpoint, HeadCheck};
use crate::rows::{ActionRow, AttemptRow, DaemonEventRow, DecisionRow, timestamp};
use crate::{Store, StoreError};

/// `prev_hash` of the first entry.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A table whose rows the log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Entity {
    Decision,
    Action,
    Attempt,
    DaemonEvent,
}

impl Entity {
    fn table(self) -> &'static str {
        match self {
            Self::Decision => "decisions",
            Self::Action => "actions",
            Self::Attempt => "attempts",
            Self::DaemonEvent => "daemon_events",
        }
    }
}

/// What an entry records; the text is hashed and stored in `audit_log.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuditKind {
    DecisionRecorded,
    ActionCreated,
    ActionStarted,
    ActionFinished,
    /// A held action released by an operator (`revokd resume`): `held` became `pending`.
    ActionReleased,
    AttemptStarted,
    AttemptFinished,
    DaemonEvent,
    /// The row standing in for a pruned prefix; always the first row when present.
    Checkpoint,
    /// A prune, recorded in the chain with the checkpoint's content.
    Pruned,
}

impl AuditKind {
    const ALL: [Self; 10] = [
        Self::DecisionRecorded,
        Self::ActionCreated,
        Self::ActionStarted,
        Self::ActionFinished,
        Self::ActionReleased,
        Self::AttemptStarted,
        Self::AttemptFinished,
        Self::DaemonEvent,
        Self::Checkpoint,
        Self::Pruned,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::DecisionRecorded => "decision.recorded",
            Self::ActionCreated => "action.created",
            Self::ActionStarted => "action.started",
            Self::ActionFinished => "action.finished",
            Self::ActionReleased => "action.released",
            Self::AttemptStarted => "attempt.started",
            Self::AttemptFinished => "attempt.finished",
            Self::DaemonEvent => "daemon.event",
            Self::Checkpoint => "audit.checkpoint",
            Self::Pruned => "audit.pruned",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The table whose row the entry records; `None` for the log's own bookkeeping.
    pub(crate) fn entity(self) -> Option<Entity> {
        match self {
            Self::DecisionRecorded => Some(Entity::Decision),
            Self::ActionCreated
            | Self::ActionStarted
            | Self::ActionFinished
            | Self::ActionReleased => Some(Entity::Action),
            Self::AttemptStarted | Self::AttemptFinished => Some(Entity::Attempt),
            Self::DaemonEvent => Some(Entity::DaemonEvent),
            Self::Checkpoint | Self::Pruned => None,
        }
    }
}

/// The queryable, unhashed columns of an entry: which tenant and rows it concerns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Context {
    tenant_id: Option<String>,
    decision_id: Option<i64>,
    action_id: Option<i64>,
    attempt_id: Option<i64>,
}

impl Context {
    pub(crate) fn decision(row: &DecisionRow) -> Self {
        Self {
            tenant_id: Some(row.tenant_id.clone()),
            decision_id: Some(row.id),
            ..Self::default()
        }
    }

    pub(crate) fn action(row: &ActionRow, tenant_id: &str) -> Self {
        Self {
            tenant_id: Some(tenant_id.to_string()),
            decision_id: Some(row.decision_id),
            action_id: Some(row.id),
            attempt_id: None,
        }
    }

    pub(crate) fn attempt(row: &AttemptRow, decision_id: i64, tenant_id: &str) -> Self {
        Self {
            tenant_id: Some(tenant_id.to_string()),
            decision_id: Some(decision_id),
            action_id: Some(row.action_id),
            attempt_id: Some(row.id),
        }
    }
}

/// JSON with object keys sorted at every level and no insignificant whitespace, so the same
/// row always hashes the same whatever serde_json's map ordering is.
pub(crate) fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The canonical payload of a row.
pub(crate) fn payload(row: &impl Serialize) -> Result<String, sqlx::Error> {
    let value = serde_json::to_value(row).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    Ok(canonical_json(&value))
}

/// The chain hash of one entry.
pub(crate) fn entry_hash(prev_hash: &str, seq: i64, kind: &str, payload: &str) -> String {
    let mut hasher = Sha256::new();
    for (i, part) in [prev_hash, &seq.to_string(), kind, payload]
        .iter()
        .enumerate()
    {
        if i > 0 {
            hasher.update(b"\n");
        }
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Appends an entry recording `row`, chained to the current head. Must run inside the write
/// transaction that wrote the row (begun IMMEDIATE, so no other writer can move the head).
pub(crate) async fn append(
    conn: &mut SqliteConnection,
    kind: AuditKind,
    context: Context,
    row: &impl Serialize,
) -> Result<i64, sqlx::Error> {
    let payload = payload(row)?;
    let head: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    let (seq, prev_hash) = head.map_or((1, GENESIS.to_string()), |(s, h)| (s + 1, h));
    let hash = entry_hash(&prev_hash, seq, kind.as_str(), &payload);
    sqlx::query(
        "INSERT INTO audit_log
           (seq, at, kind, tenant_id, decision_id, action_id, attempt_id, payload, prev_hash, hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(seq)
    .bind(timestamp(Utc::now()))
    .bind(kind.as_str())
    .bind(context.tenant_id)
    .bind(context.decision_id)
    .bind(context.action_id)
    .bind(context.attempt_id)
    .bind(payload)
    .bind(prev_hash)
    .bind(hash)
    .execute(conn)
    .await?;
    Ok(seq)
}

impl Store {
    /// Recomputes the hash chain in seq order and checks that every decision, action, attempt and
    /// daemon event row still equals the payload of its latest audit entry, and that every entry
    /// still has its row. Runs in one read transaction, so it sees a consistent snapshot and never
    /// blocks the daemon.
    ///
    /// # Errors
    /// Only when the database cannot be read; tampering is reported in the `ChainReport`.
    pub async fn verify_chain(&self) -> Result<ChainReport, StoreError> {
        let op = || "verify the audit chain".to_string();
        let mut tx = self.pool.begin().await.context(&self.path, op)?;
        let report = verify(&mut tx).await.context(&self.path, op)?;
        tx.commit().await.context(&self.path, op)?;
        Ok(report)
    }

    /// Whether the entry `seq` recorded earlier (with its hash, from `chain_head`) is still in
    /// the chain with that hash. Together with an intact `verify_chain`, a present head proves
    /// that nothing up to it was rewritten and that the log was not cut short before it.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn check_head(&self, seq: i64, hash: &str) -> Result<HeadCheck, StoreError> {
        let op = || format!("look up audit entry {seq}");
        let mut tx = self.pool.begin().await.context(&self.path, op)?;
        let first: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, kind FROM audit_log ORDER BY seq LIMIT 1")
                .fetch_optional(&mut *tx)
                .await
                .context(&self.path, op)?;
        let stored: Option<String> = sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = ?")
            .bind(seq)
            .fetch_optional(&mut *tx)
            .await
            .context(&self.path, op)?;
        let last_seq: Option<i64> = sqlx::query_scalar("SELECT max(seq) FROM audit_log")
            .fetch_one(&mut *tx)
            .await
            .context(&self.path, op)?;
        tx.commit().await.context(&self.path, op)?;
        let checkpoint = first
            .filter(|(_, kind)| kind == AuditKind::Checkpoint.as_str())
            .map(|(seq, _)| seq);
        Ok(match (stored, checkpoint) {
            (Some(stored), _) if stored == hash => HeadCheck::Present,
            (Some(stored), _) => HeadCheck::Differs { stored },
            (None, Some(checkpoint_seq)) if seq < checkpoint_seq => {
                HeadCheck::Pruned { checkpoint_seq }
            }
            (None, _) => HeadCheck::Missing { last_seq },
        })
    }

    /// The last entry's seq and hash: record it outside the file to detect a rewrite of the
    /// whole log later.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn chain_head(&self) -> Result<Option<(i64, String)>, StoreError> {
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .context(&self.path, || "read the audit chain head".to_string())
    }
}

/// An `audit_log` row as verification and pruning read it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct EntryRow {
    pub(crate) seq: i64,
    pub(crate) at: String,
    pub(crate) kind: String,
    pub(crate) tenant_id: Option<String>,
    pub(crate) decision_id: Option<i64>,
    pub(crate) action_id: Option<i64>,
    pub(crate) attempt_id: Option<i64>,
    pub(crate) payload: String,
    pub(crate) prev_hash: String,
    pub(crate) hash: String,
}

/// Every entry, in chain order.
pub(crate) const SELECT_ENTRIES: &str = "SELECT seq, at, kind, tenant_id, decision_id, action_id,
    attempt_id, payload, prev_hash, hash FROM audit_log ORDER BY seq";

/// A page of entries after a seq (first parameter), at most a count (second), in chain order.
pub(crate) const SELECT_ENTRIES_FROM: &str = "SELECT seq, at, kind, tenant_id, decision_id,
    action_id, attempt_id, payload, prev_hash, hash FROM audit_log WHERE seq > ? ORDER BY seq
    LIMIT ?";

async fn verify(conn: &mut SqliteConnection) -> Result<ChainReport, sqlx::Error> {
    let mut chain = ChainVerifier::default();
    {
        let mut entries = sqlx::query_as::<_, EntryRow>(SELECT_ENTRIES).fetch(&mut *conn);
        while let Some(entry) = entries.try_next().await? {
            chain.push(&entry);
        }
    }
    chain.finish();
    if chain.broken.is_none() {
        let mut worst = None;
        cross_check::<DecisionRow>(conn, &mut chain, &mut worst).await?;
        cross_check::<ActionRow>(conn, &mut chain, &mut worst).await?;
        cross_check::<AttemptRow>(conn, &mut chain, &mut worst).await?;
        cross_check::<DaemonEventRow>(conn, &mut chain, &mut worst).await?;
        for orphan in chain.orphans() {
            keep_first(&mut worst, orphan);
        }
        if let Some(finding) = worst {
            chain.broken = Some(describe(conn, finding).await?);
        }
    }
    Ok(chain.report())
}

/// A table the log records, and how to read all of it.
trait Audited: Serialize + for<'r> sqlx::FromRow<'r, SqliteRow> + Send + Unpin {
    const ENTITY: Entity;
    const SELECT_ALL: &'static str;
    /// The rows whose ids are in a JSON array bound as the only parameter.
    const SELECT_SOME: &'static str;
    fn id(&self) -> i64;
}

impl Audited for DecisionRow {
    const ENTITY: Entity = Entity::Decision;
    const SELECT_ALL: &'static str = "SELECT * FROM decisions ORDER BY id";
    const SELECT_SOME: &'static str =
        "SELECT * FROM decisions WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id";
    fn id(&self) -> i64 {
        self.id
    }
}

impl Audited for ActionRow {
    const ENTITY: Entity = Entity::Action;
    const SELECT_ALL: &'static str = "SELECT * FROM actions ORDER BY id";
    const SELECT_SOME: &'static str =
        "SELECT * FROM actions WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id";
    fn id(&self) -> i64 {
        self.id
    }
}

impl Audited for AttemptRow {
    const ENTITY: Entity = Entity::Attempt;
    const SELECT_ALL: &'static str = "SELECT * FROM attempts ORDER BY id";
    const SELECT_SOME: &'static str =
        "SELECT * FROM attempts WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id";
    fn id(&self) -> i64 {
        self.id
    }
}

impl Audited for DaemonEventRow {
    const ENTITY: Entity = Entity::DaemonEvent;
    const SELECT_ALL: &'static str = "SELECT * FROM daemon_events ORDER BY id";
    const SELECT_SOME: &'static str =
        "SELECT * FROM daemon_events WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id";
    fn id(&self) -> i64 {
        self.id
    }
}

async fn cross_check<T: Audited>(
    conn: &mut SqliteConnection,
    chain: &mut ChainVerifier,
    worst: &mut Option<Finding>,
) -> Result<(), sqlx::Error> {
    let mut rows = sqlx::query_as::<_, T>(T::SELECT_ALL).fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        if let Some(finding) = chain.check_row(T::ENTITY, row.id(), &payload(&row)?) {
            keep_first(worst, finding);
        }
    }
    Ok(())
}

/// Rows of each audited table, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RowIds {
    pub(crate) decisions: Vec<i64>,
    pub(crate) actions: Vec<i64>,
    pub(crate) attempts: Vec<i64>,
    pub(crate) daemon_events: Vec<i64>,
}

impl RowIds {
    pub(crate) fn of(&mut self, entity: Entity) -> &mut Vec<i64> {
        match entity {
            Entity::Decision => &mut self.decisions,
            Entity::Action => &mut self.actions,
            Entity::Attempt => &mut self.attempts,
            Entity::DaemonEvent => &mut self.daemon_events,
        }
    }
}

/// Compares the listed rows with their latest entries, already pushed into `chain`: the first
/// problem (an edited row, or a row that is gone), described, or `None`. Pruning runs this
/// before deleting rows, so that it never erases the evidence of tampering.
pub(crate) async fn check_rows(
    conn: &mut SqliteConnection,
    chain: &mut ChainVerifier,
    ids: &RowIds,
) -> Result<Option<(i64, String)>, sqlx::Error> {
    let mut worst = None;
    check_some::<DecisionRow>(conn, chain, &ids.decisions, &mut worst).await?;
    check_some::<ActionRow>(conn, chain, &ids.actions, &mut worst).await?;
    check_some::<AttemptRow>(conn, chain, &ids.attempts, &mut worst).await?;
    check_some::<DaemonEventRow>(conn, chain, &ids.daemon_events, &mut worst).await?;
    match worst {
        Some(finding) => Ok(Some(describe(conn, finding).await?)),
        None => Ok(None),
    }
}

async fn check_some<T: Audited>(
    conn: &mut SqliteConnection,
    chain: &mut ChainVerifier,
    ids: &[i64],
    worst: &mut Option<Finding>,
) -> Result<(), sqlx::Error> {
    let list = serde_json::to_string(ids).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let rows: Vec<T> = sqlx::query_as(T::SELECT_SOME)
        .bind(list)
        .fetch_all(&mut *conn)
        .await?;
    let mut found = std::collections::HashSet::new();
    for row in &rows {
        found.insert(row.id());
        if let Some(finding) = chain.check_row(T::ENTITY, row.id(), &payload(row)?) {
            keep_first(worst, finding);
        }
    }
    for &id in ids.iter().filter(|id| !found.contains(id)) {
        if let Some(&(seq, _)) = chain.latest.get(&(T::ENTITY, id)) {
            keep_first(
                worst,
                Finding::Orphan {
                    entity: T::ENTITY,
                    id,
                    seq,
                },
            );
        }
    }
    Ok(())
}

/// A row that does not match the log, found after the chain itself verified.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Finding {
    /// A row no entry records: inserted behind the store's back.
    Unrecorded { entity: Entity, id: i64 },
    /// A row edited since its latest entry; `current` is its payload now.
    Differs {
        entity: Entity,
        id: i64,
        seq: i64,
        current: String,
    },
    /// An entry whose row is gone.
    Orphan { entity: Entity, id: i64, seq: i64 },
}

impl Finding {
    fn seq(&self) -> i64 {
        match self {
            Self::Unrecorded { .. } => 0,
            Self::Differs { seq, .. } | Self::Orphan { seq, .. } => *seq,
        }
    }
}

/// Keeps the finding with the lowest seq, the first found on a tie.
fn keep_first(worst: &mut Option<Finding>, finding: Finding) {
    if worst.as_ref().is_none_or(|w| finding.seq() < w.seq()) {
        *worst = Some(finding);
    }
}

/// Words for a finding; for an edited row, names the columns that changed.
async fn describe(
    conn: &mut SqliteConnection,
    finding: Finding,
) -> Result<(i64, String), sqlx::Error> {
    let seq = finding.seq();
    let message = match finding {
        Finding::Unrecorded { entity, id } => {
            format!("{} row {id} has no audit entry", entity.table())
        }
        Finding::Orphan { entity, id, seq } => format!(
            "audit entry {seq} records {} row {id}, which no longer exists",
            entity.table()
        ),
        Finding::Differs {
            entity,
            id,
            seq,
            current,
        } => {
            let audited: String = sqlx::query_scalar("SELECT payload FROM audit_log WHERE seq = ?")
                .bind(seq)
                .fetch_one(conn)
                .await?;
            format!(
                "{} row {id} differs from its audit entry {seq} in {}",
                entity.table(),
                changed_fields(&audited, &current).join(", ")
            )
        }
    };
    Ok((seq, message))
}

/// Top-level keys whose values differ between two JSON objects.
fn changed_fields(before: &str, after: &str) -> Vec<String> {
    let parse = |text: &str| match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let (before, after) = (parse(before), parse(after));
    let mut keys: Vec<String> = before.keys().chain(after.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    keys.retain(|k| before.get(k) != after.get(k));
    keys
}

/// Walks the log in seq order, checking links and hashes, and remembers the latest payload
/// digest of every row so the tables can be compared afterwards. Pure: no I/O.
#[derive(Debug, Default)]
pub(crate) struct ChainVerifier {
    rows: u64,
    last: Option<(i64, String)>,
    pub(crate) broken: Option<(i64, String)>,
    /// The checkpoint the chain starts from: its seq, payload and content.
    anchor: Option<(i64, String, Checkpoint)>,
    /// The latest `audit.pruned` entry: its seq and payload.
    vouched: Option<(i64, String)>,
    /// (table, row id) → (seq, sha256 of payload) of the row's latest entry.
    pub(crate) latest: HashMap<(Entity, i64), (i64, [u8; 32])>,
    /// decision id → tenant, from decision entries, to check later entries' columns.
    tenants: HashMap<i64, String>,
    /// action id → decision id, from action entries.
    decisions: HashMap<i64, i64>,
}

impl ChainVerifier {
    pub(crate) fn push(&mut self, entry: &EntryRow) {
        self.rows += 1;
        if self.broken.is_none()
            && let Err(problem) = self.check(entry)
        {
            self.broken = Some(problem);
        }
        self.last = Some((entry.seq, entry.hash.clone()));
    }

    fn check(&mut self, entry: &EntryRow) -> Result<(), (i64, String)> {
        let seq = entry.seq;
        if entry.kind == AuditKind::Checkpoint.as_str() {
            return self.anchor_at(entry);
        }
        let (expected, prev_hash) = match &self.last {
            Some((last, hash)) => (last + 1, hash.as_str()),
            None => (1, GENESIS),
        };
        if seq > expected {
            return Err((
                expected,
                format!("entry {expected} is missing: the next entry is {seq}"),
            ));
        }
        if seq < expected {
            return Err((
                seq,
                format!("entry {seq} is out of sequence: expected {expected}"),
            ));
        }
        if entry.prev_hash != prev_hash {
            return Err((
                seq,
                "prev_hash does not match the previous entry's hash".into(),
            ));
        }
        if entry_hash(&entry.prev_hash, seq, &entry.kind, &entry.payload) != entry.hash {
            return Err((
                seq,
                "hash does not match the entry's kind and payload".into(),
            ));
        }
        let kind = AuditKind::parse(&entry.kind)
            .ok_or_else(|| (seq, format!("unknown kind {:?}", entry.kind)))?;
        let object = match serde_json::from_str::<Value>(&entry.payload) {
            Ok(Value::Object(map)) => map,
            _ => return Err((seq, "payload is not a JSON object".into())),
        };
        let Some(entity) = kind.entity() else {
            // Only `audit.pruned` gets here: a checkpoint returned above.
            serde_json::from_value::<Checkpoint>(Value::Object(object)).map_err(|e| {
                (
                    seq,
                    format!("audit.pruned payload is not a checkpoint: {e}"),
                )
            })?;
            if let Some(why) = context_mismatch(entry, &Context::default()) {
                return Err((seq, why));
            }
            self.vouched = Some((seq, entry.payload.clone()));
            return Ok(());
        };
        let expected = self
            .expected_context(entity, &object)
            .map_err(|why| (seq, why))?;
        if let Some(why) = context_mismatch(entry, &expected) {
            return Err((seq, why));
        }
        self.remember(entity, &object, seq, &entry.payload)
            .map_err(|why| (seq, why))
    }

    /// Starts the chain at a checkpoint: the rest links to the hash it carries. Its content
    /// cannot be hashed (the entries it stands for are gone), so `finish` compares it with the
    /// hashed `audit.pruned` entry that recorded the prune.
    fn anchor_at(&mut self, entry: &EntryRow) -> Result<(), (i64, String)> {
        let seq = entry.seq;
        if self.last.is_some() {
            return Err((
                seq,
                "a checkpoint row in the middle of the chain: only the first row may be one".into(),
            ));
        }
        let checkpoint: Checkpoint = serde_json::from_str(&entry.payload)
            .map_err(|e| (seq, format!("checkpoint payload is not a checkpoint: {e}")))?;
        if checkpoint.through_seq != seq || checkpoint.through_hash != entry.hash {
            return Err((
                seq,
                "checkpoint row's seq or hash differs from the entry it says it replaced".into(),
            ));
        }
        if let Some(why) = context_mismatch(entry, &Context::default()) {
            return Err((seq, why));
        }
        self.anchor = Some((seq, entry.payload.clone(), checkpoint));
        Ok(())
    }

    /// Checks, once every entry is pushed, that a checkpoint is vouched for by the latest prune
    /// recorded in the chain, and that a recorded prune left its checkpoint.
    pub(crate) fn finish(&mut self) {
        if self.broken.is_some() {
            return;
        }
        self.broken = match (&self.anchor, &self.vouched) {
            (None, None) => None,
            (Some((_, anchor, _)), Some((_, vouched))) if anchor == vouched => None,
            (Some((seq, ..)), Some((vseq, _))) => Some((
                *seq,
                format!(
                    "checkpoint row {seq} differs from the prune that audit entry {vseq} \
                     recorded: the pruned part of the log was replaced"
                ),
            )),
            (Some((seq, ..)), None) => Some((
                *seq,
                format!(
                    "checkpoint row {seq} is vouched for by no audit.pruned entry: the entry \
                     recording the prune was removed, or the checkpoint was forged"
                ),
            )),
            (None, Some((vseq, _))) => Some((
                *vseq,
                format!(
                    "audit entry {vseq} records a prune, but the log does not start at its \
                     checkpoint"
                ),
            )),
        };
    }

    /// The seq the chain starts from: the checkpoint's, or 0 before entry 1.
    pub(crate) fn anchor_seq(&self) -> i64 {
        self.anchor.as_ref().map_or(0, |(seq, ..)| *seq)
    }

    /// The columns an entry must carry, derived from its (hashed) payload.
    fn expected_context(
        &self,
        entity: Entity,
        row: &Map<String, Value>,
    ) -> Result<Context, String> {
        let id = int_field(row, "id")?;
        Ok(match entity {
            Entity::Decision => Context {
                tenant_id: Some(str_field(row, "tenant_id")?.to_string()),
                decision_id: Some(id),
                ..Context::default()
            },
            Entity::Action => {
                let decision_id = int_field(row, "decision_id")?;
                Context {
                    tenant_id: Some(self.tenant_of(decision_id)?),
                    decision_id: Some(decision_id),
                    action_id: Some(id),
                    attempt_id: None,
                }
            }
            Entity::Attempt => {
                let action_id = int_field(row, "action_id")?;
                let decision_id = *self.decisions.get(&action_id).ok_or_else(|| {
                    format!(
                        "records an attempt of action {action_id}, which no earlier entry records"
                    )
                })?;
                Context {
                    tenant_id: Some(self.tenant_of(decision_id)?),
                    decision_id: Some(decision_id),
                    action_id: Some(action_id),
                    attempt_id: Some(id),
                }
            }
            Entity::DaemonEvent => Context::default(),
        })
    }

    fn tenant_of(&self, decision_id: i64) -> Result<String, String> {
        self.tenants.get(&decision_id).cloned().ok_or_else(|| {
            format!("refers to decision {decision_id}, which no earlier entry records")
        })
    }

    fn remember(
        &mut self,
        entity: Entity,
        row: &Map<String, Value>,
        seq: i64,
        payload: &str,
    ) -> Result<(), String> {
        let id = int_field(row, "id")?;
        match entity {
            Entity::Decision => {
                self.tenants
                    .insert(id, str_field(row, "tenant_id")?.to_string());
            }
            Entity::Action => {
                self.decisions.insert(id, int_field(row, "decision_id")?);
            }
            Entity::Attempt | Entity::DaemonEvent => {}
        }
        self.latest.insert((entity, id), (seq, digest(payload)));
        Ok(())
    }

    /// Compares a table row with its latest entry, forgetting the entry so that what remains
    /// afterwards are entries whose rows are gone.
    fn check_row(&mut self, entity: Entity, id: i64, payload: &str) -> Option<Finding> {
        match self.latest.remove(&(entity, id)) {
            None => Some(Finding::Unrecorded { entity, id }),
            Some((seq, audited)) if audited != digest(payload) => Some(Finding::Differs {
                entity,
                id,
                seq,
                current: payload.to_string(),
            }),
            Some(_) => None,
        }
    }

    fn orphans(&self) -> impl Iterator<Item = Finding> + '_ {
        self.latest
            .iter()
            .map(|(&(entity, id), &(seq, _))| Finding::Orphan { entity, id, seq })
    }

    fn report(self) -> ChainReport {
        ChainReport {
            rows: self.rows,
            head: self.last.map(|(_, hash)| hash),
            first_broken: self.broken,
            checkpoint: self.anchor.map(|(.., checkpoint)| checkpoint),
        }
    }
}

fn context_mismatch(entry: &EntryRow, expected: &Context) -> Option<String> {
    let show = |v: Option<i64>| v.map_or_else(|| "empty".to_string(), |v| v.to_string());
    let columns = [
        ("decision_id", entry.decision_id, expected.decision_id),
        ("action_id", entry.action_id, expected.action_id),
        ("attempt_id", entry.attempt_id, expected.attempt_id),
    ];
    if let Some((name, actual, wanted)) = columns.into_iter().find(|(_, a, w)| a != w) {
        return Some(format!(
            "{name} column is {} but the payload says {}",
            show(actual),
            show(wanted)
        ));
    }
    (entry.tenant_id != expected.tenant_id).then(|| {
        format!(
            "tenant_id column is {:?} but the payload says {:?}",
            entry.tenant_id, expected.tenant_id
        )
    })
}

fn int_field(row: &Map<String, Value>, name: &str) -> Result<i64, String> {
    row.get(name)
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("payload has no integer {name}"))
}

fn str_field<'a>(row: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    row.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("payload has no text {name}"))
}

fn digest(payload: &str) -> [u8; 32] {
    Sha256::digest(payload.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use serde_json::json;

    use super::*;

    /// An entry chained after `prev` (or first), with consistent columns.
    fn entry(
        prev: Option<&EntryRow>,
        kind: AuditKind,
        context: Context,
        payload: Value,
    ) -> EntryRow {
        let seq = prev.map_or(1, |p| p.seq + 1);
        let prev_hash = prev.map_or(GENESIS.to_string(), |p| p.hash.clone());
        let payload = canonical_json(&payload);
        EntryRow {
            seq,
            at: String::new(),
            kind: kind.as_str().to_string(),
            tenant_id: context.tenant_id,
            decision_id: context.decision_id,
            action_id: context.action_id,
            attempt_id: context.attempt_id,
            hash: entry_hash(&prev_hash, seq, kind.as_str(), &payload),
            payload,
            prev_hash,
        }
    }

    fn decision_entry(prev: Option<&EntryRow>) -> EntryRow {
        let context = Context {
            tenant_id: Some("t1".into()),
            decision_id: Some(7),
            ..Context::default()
        };
        entry(
            prev,
            AuditKind::DecisionRecorded,
            context,
            json!({"id": 7, "tenant_id": "t1"}),
        )
    }

    fn action_entry(prev: Option<&EntryRow>) -> EntryRow {
        let context = Context {
            tenant_id: Some("t1".into()),
            decision_id: Some(7),
            action_id: Some(3),
            attempt_id: None,
        };
        entry(
            prev,
            AuditKind::ActionCreated,
            context,
            json!({"id": 3, "decision_id": 7}),
        )
    }

    fn verify(entries: &[EntryRow]) -> Option<(i64, String)> {
        let mut chain = ChainVerifier::default();
        entries.iter().for_each(|e| chain.push(e));
        chain.finish();
        chain.report().first_broken
    }

    fn checkpoint(through: &EntryRow) -> Checkpoint {
        let at = DateTime::from_timestamp(1_800_000_000, 0).expect("in range");
        Checkpoint {
            from_seq: 1,
            through_seq: through.seq,
            through_hash: through.hash.clone(),
            before: at,
            pruned_at: at,
            removed: crate::model::PruneCounts {
                entries: u64::try_from(through.seq).expect("positive"),
                ..Default::default()
            },
        }
    }

    /// `entries` pruned through `through`: the checkpoint row replacing it, then the rest.
    fn pruned(through: &EntryRow, rest: &[EntryRow], c: &Checkpoint) -> Vec<EntryRow> {
        let mut row = through.clone();
        row.kind = AuditKind::Checkpoint.as_str().into();
        row.payload = canonical_json(&serde_json::to_value(c).expect("serialise"));
        row.tenant_id = None;
        row.decision_id = None;
        row.action_id = None;
        row.attempt_id = None;
        let mut chain = vec![row];
        chain.extend(rest.iter().cloned());
        chain
    }

    fn pruned_entry(prev: &EntryRow, c: &Checkpoint) -> EntryRow {
        entry(
            Some(prev),
            AuditKind::Pruned,
            Context::default(),
            serde_json::to_value(c).expect("serialise"),
        )
    }

    fn event_entry(prev: &EntryRow) -> EntryRow {
        entry(
            Some(prev),
            AuditKind::DaemonEvent,
            Context::default(),
            json!({"id": 1, "kind": "start"}),
        )
    }

    #[test]
    fn a_pruned_chain_starts_at_its_vouched_checkpoint() {
        let first = decision_entry(None);
        let second = event_entry(&first);
        let c = checkpoint(&first);
        let third = pruned_entry(&second, &c);
        assert_eq!(verify(&pruned(&first, &[second.clone(), third], &c)), None);

        // The same checkpoint with no prune recorded after it: the recording entry was cut off.
        let broken = verify(&pruned(&first, std::slice::from_ref(&second), &c)).expect("broken");
        assert_eq!(broken.0, 1);
        assert!(
            broken.1.contains("vouched for by no audit.pruned"),
            "{}",
            broken.1
        );

        // A checkpoint whose content differs from the recorded prune.
        let mut other = c.clone();
        other.removed.decisions = 99;
        let third = pruned_entry(&second, &c);
        let broken = verify(&pruned(&first, &[second.clone(), third], &other)).expect("broken");
        assert!(broken.1.contains("differs from the prune"), "{}", broken.1);
    }

    #[test]
    fn a_checkpoint_must_carry_the_hash_it_replaced_and_start_the_chain() {
        let first = decision_entry(None);
        let second = event_entry(&first);
        let mut c = checkpoint(&first);
        c.through_hash = "00".repeat(32);
        let third = pruned_entry(&second, &c);
        let broken = verify(&pruned(&first, &[second.clone(), third], &c)).expect("broken");
        assert_eq!(broken.0, 1);
        assert!(broken.1.contains("seq or hash differs"), "{}", broken.1);

        let c = checkpoint(&second);
        let middle = pruned(&second, &[], &c).remove(0);
        let broken = verify(&[first, middle]).expect("broken");
        assert_eq!(broken.0, 2);
        assert!(broken.1.contains("middle of the chain"), "{}", broken.1);
    }

    #[test]
    fn a_prune_recorded_without_its_checkpoint_is_named() {
        let first = decision_entry(None);
        let c = checkpoint(&first);
        let second = pruned_entry(&first, &c);
        let broken = verify(&[first, second]).expect("broken");
        assert_eq!(broken.0, 2);
        assert!(
            broken.1.contains("does not start at its checkpoint"),
            "{}",
            broken.1
        );
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let value = json!({"b": 1, "a": {"d": [2, {"f": null, "e": "x"}], "c": true}});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":{"c":true,"d":[2,{"e":"x","f":null}]},"b":1}"#
        );
    }

    #[test]
    fn entry_hash_follows_the_documented_formula() {
        // sha256("0" * 64 + "\n1\ndaemon.event\n{\"id\":1}"), computed independently.
        assert_eq!(
            entry_hash(GENESIS, 1, "daemon.event", r#"{"id":1}"#),
            "293b7416b34f0d97f1b4ab20cb4b6dd0aca0234b09304cd3a79fe1a4d443e992"
        );
    }

    #[test]
    fn every_kind_round_trips_through_its_text() {
        for kind in AuditKind::ALL {
            assert_eq!(AuditKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(AuditKind::parse("decision.deleted"), None);
    }

    #[test]
    fn a_consistent_chain_verifies_and_reports_its_head() {
        let first = decision_entry(None);
        let second = action_entry(Some(&first));
        let mut chain = ChainVerifier::default();
        chain.push(&first);
        chain.push(&second);
        assert_eq!(chain.check_row(Entity::Action, 3, &second.payload), None);
        let report = chain.report();
        assert_eq!(report.first_broken, None);
        assert_eq!(report.rows, 2);
        assert_eq!(report.head, Some(second.hash));
    }

    #[test]
    fn a_missing_entry_is_named() {
        let first = decision_entry(None);
        let second = action_entry(Some(&first));
        let third = entry(
            Some(&second),
            AuditKind::DaemonEvent,
            Context::default(),
            json!({"id": 1}),
        );
        let broken = verify(&[first, third]).expect("broken");
        assert_eq!(broken.0, 2);
        assert!(broken.1.contains("entry 2 is missing"), "{}", broken.1);
    }

    #[test]
    fn an_edited_payload_breaks_its_hash() {
        let mut first = decision_entry(None);
        first.payload = canonical_json(&json!({"id": 7, "tenant_id": "t2"}));
        let broken = verify(&[first]).expect("broken");
        assert_eq!(broken.0, 1);
        assert!(broken.1.contains("hash does not match"), "{}", broken.1);
    }

    #[test]
    fn a_relinked_entry_breaks_the_chain() {
        let first = decision_entry(None);
        let mut second = action_entry(Some(&first));
        second.prev_hash = GENESIS.to_string();
        second.hash = entry_hash(&second.prev_hash, 2, &second.kind, &second.payload);
        let broken = verify(&[first, second]).expect("broken");
        assert_eq!(broken.0, 2);
        assert!(broken.1.contains("prev_hash"), "{}", broken.1);
    }

    #[test]
    fn unhashed_columns_must_agree_with_the_payload() {
        let first = decision_entry(None);
        let mut second = action_entry(Some(&first));
        second.decision_id = Some(8);
        let broken = verify(&[first, second]).expect("broken");
        assert_eq!(broken.0, 2);
        assert!(broken.1.contains("decision_id column is 8"), "{}", broken.1);
    }

    #[test]
    fn an_entry_for_an_unrecorded_parent_is_refused() {
        let broken = verify(&[action_entry(None)]).expect("broken");
        assert_eq!(broken.0, 1);
        assert!(broken.1.contains("decision 7"), "{}", broken.1);
    }

    #[test]
    fn rows_are_compared_with_their_latest_entry() {
        let first = decision_entry(None);
        let mut chain = ChainVerifier::default();
        chain.push(&first);
        let edited = canonical_json(&json!({"id": 7, "tenant_id": "t2"}));
        assert!(matches!(
            chain.check_row(Entity::Decision, 7, &edited),
            Some(Finding::Differs { seq: 1, id: 7, .. })
        ));
        assert_eq!(
            chain.check_row(Entity::Decision, 9, "{}"),
            Some(Finding::Unrecorded {
                entity: Entity::Decision,
                id: 9
            })
        );
    }

    #[test]
    fn changed_fields_names_only_what_differs() {
        let fields = changed_fields(r#"{"a":1,"b":"x","c":null}"#, r#"{"a":1,"b":"y","d":2}"#);
        assert_eq!(fields, ["b", "c", "d"]);
    }
}
