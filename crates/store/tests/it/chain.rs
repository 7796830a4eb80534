//! The audit chain: intact after normal use, and every kind of tampering named by its seq.

use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::SqliteConnection;
use store::{ActionStatus, DecisionMode, Store};
use tempfile::TempDir;

use crate::common::{at, attempt, db_path, decision, fresh, insert, raw, response};

/// A store after a little of everything: an enforced decision run to success, a dry-run one,
/// daemon events. Audit entries, in order: 1 daemon start, 2 decision 1, 3-4 its actions,
/// 5-6 action 1 started + attempt 1, 7 attempt 1 finished, 8 action 1 finished, 9 decision 2,
/// 10 its action, 11 daemon stop.
async fn used_store() -> (TempDir, Store) {
    let (dir, store) = fresh().await;
    store
        .record_daemon_event("start", &json!({"version": "0.1.0", "tenants": ["t1"]}))
        .await
        .expect("start");
    let ids = insert(&store, &decision("u1", "1")).await;
    let id = store
        .begin_attempt(&attempt(ids[0], 1, None))
        .await
        .expect("begin");
    store
        .finish_attempt(id, &response(2, 200, "req-1"))
        .await
        .expect("finish");
    store
        .finish_action(ids[0], ActionStatus::Succeeded, None, at(2))
        .await
        .expect("finish");
    let mut dry = decision("u2", "1");
    dry.mode = DecisionMode::DryRun;
    dry.actions.truncate(1);
    insert(&store, &dry).await;
    store
        .record_daemon_event("stop", &json!({}))
        .await
        .expect("stop");
    (dir, store)
}

async fn tamper(dir: &TempDir, statements: &[&'static str]) -> SqliteConnection {
    let mut conn = raw(&db_path(dir)).await;
    for sql in statements {
        sqlx::query(*sql).execute(&mut conn).await.expect(sql);
    }
    conn
}

async fn broken(store: &Store) -> (i64, String) {
    let report = store.verify_chain().await.expect("verify");
    report.first_broken.expect("tampering detected")
}

#[tokio::test]
async fn an_untouched_chain_verifies() {
    let (_dir, store) = used_store().await;
    let report = store.verify_chain().await.expect("verify");
    assert_eq!(report.first_broken, None);
    assert_eq!(report.rows, 11);
    let (seq, hash) = store.chain_head().await.expect("head").expect("not empty");
    assert_eq!(seq, 11);
    assert_eq!(report.head, Some(hash));
}

#[tokio::test]
async fn an_empty_chain_verifies() {
    let (_dir, store) = fresh().await;
    let report = store.verify_chain().await.expect("verify");
    assert_eq!(
        (report.rows, report.head, report.first_broken),
        (0, None, None)
    );
    assert_eq!(store.chain_head().await.expect("head"), None);
}

#[tokio::test]
async fn casual_edits_are_refused_by_the_schema() {
    let (dir, _store) = used_store().await;
    let mut conn = raw(&db_path(&dir)).await;
    for sql in [
        "UPDATE decisions SET user_id = 'someone-else'",
        "DELETE FROM audit_log WHERE seq = 3",
        "UPDATE audit_log SET payload = '{}'",
        "DELETE FROM attempts",
    ] {
        let err = sqlx::query(sql).execute(&mut conn).await.expect_err(sql);
        assert!(
            err.to_string().contains("audit_log")
                || err.to_string().contains("written once")
                || err.to_string().contains("never deleted"),
            "{sql}: {err}"
        );
    }
}

#[tokio::test]
async fn an_edited_decision_row_is_named_with_its_entry() {
    let (dir, store) = used_store().await;
    tamper(
        &dir,
        &[
            "DROP TRIGGER decisions_no_update",
            "UPDATE decisions SET user_id = 'someone-else' WHERE id = 1",
        ],
    )
    .await;
    let (seq, why) = broken(&store).await;
    assert_eq!(seq, 2, "{why}");
    assert!(
        why.contains("decisions row 1") && why.contains("user_id"),
        "{why}"
    );
}

#[tokio::test]
async fn an_edited_action_outcome_is_named_with_its_latest_entry() {
    let (dir, store) = used_store().await;
    tamper(
        &dir,
        &["UPDATE actions SET status = 'succeeded', detail = NULL WHERE id = 2"],
    )
    .await;
    let (seq, why) = broken(&store).await;
    assert_eq!(seq, 4, "{why}");
    assert!(
        why.contains("actions row 2") && why.contains("status"),
        "{why}"
    );
}

#[tokio::test]
async fn a_deleted_audit_entry_is_named() {
    let (dir, store) = used_store().await;
    tamper(
        &dir,
        &[
            "DROP TRIGGER audit_log_no_delete",
            "DELETE FROM audit_log WHERE seq = 5",
        ],
    )
    .await;
    let (seq, why) = broken(&store).await;
    assert_eq!(seq, 5, "{why}");
    assert!(why.contains("missing"), "{why}");
}

#[tokio::test]
async fn a_deleted_last_entry_is_caught_by_its_row() {
    let (dir, store) = used_store().await;
    tamper(
        &dir,
        &[
            "DROP TRIGGER audit_log_no_delete",
            "DELETE FROM audit_log WHERE seq = 11",
        ],
    )
    .await;
    let (seq, why) = broken(&store).await;
    assert_eq!(seq, 0, "{why}");
    assert!(
        why.contains("daemon_events row 2 has no audit entry"),
        "{why}"
    );
}

#[tokio::test]
async fn a_forged_entry_with_a_made_up_hash_is_named() {
    let (dir, store) = used_store().await;
    let mut conn = raw(&db_path(&dir)).await;
    let (_, head) = store.chain_head().await.expect("head").expect("not empty");
    sqlx::query(
        "INSERT INTO audit_log (seq, at, kind, payload, prev_hash, hash)
         VALUES (12, 'x', 'daemon.event', '{\"id\":3}', ?, ?)",
    )
    .bind(&head)
    .bind("ab".repeat(32))
    .execute(&mut conn)
    .await
    .expect("forge");
    let (seq, why) = broken(&store).await;
    assert_eq!(seq, 12, "{why}");
    assert!(why.contains("hash does not match"), "{why}");
}

#[tokio::test]
async fn a_forged_entry_hashed_correctly_still_needs_its_row() {
    let (dir, store) = used_store().await;
    let mut conn = raw(&db_path(&dir)).await;
    let (_, head) = store.chain_head().await.expect("head").expect("not empty");
    let payload = r#"{"decided_at":"x","id":99,"tenant_id":"t1"}"#;
    let hash = hex::encode(Sha256::digest(format!(
        "{head}\n12\ndecision.recorded\n{payload}"
    )));
    sqlx::query(
        "INSERT INTO audit_log (seq, at, kind, tenant_id, decision_id, payload, prev_hash, hash)
         VALUES (12, 'x', 'decision.recorded', 't1', 99, ?, ?, ?)",
    )
    .bind(payload)
    .bind(&head)
    .bind(hash)
    .execute(&mut conn)
    .await
    .expect("forge");
    let (seq, why) = broken(&store).await;
    assert_eq!(seq, 12, "{why}");
    assert!(
        why.contains("decisions row 99, which no longer exists"),
        "{why}"
    );
}

#[tokio::test]
async fn a_row_inserted_behind_the_stores_back_is_found() {
    let (dir, store) = used_store().await;
    tamper(
        &dir,
        &["INSERT INTO daemon_events (at, kind, detail_json) VALUES ('x', 'resume', '{}')"],
    )
    .await;
    let (seq, why) = broken(&store).await;
    assert_eq!(seq, 0, "{why}");
    assert!(
        why.contains("daemon_events row 3 has no audit entry"),
        "{why}"
    );
}

#[tokio::test]
async fn a_repointed_entry_is_named() {
    let (dir, store) = used_store().await;
    tamper(
        &dir,
        &[
            "DROP TRIGGER audit_log_no_update",
            "UPDATE audit_log SET tenant_id = 't9' WHERE seq = 7",
        ],
    )
    .await;
    let (seq, why) = broken(&store).await;
    assert_eq!(seq, 7, "{why}");
    assert!(why.contains("tenant_id column"), "{why}");
}
