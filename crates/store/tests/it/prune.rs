//! Retention: pruning old rows leaves a chain that still verifies, keeps what must stay, and
//! refuses to erase tampering.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use store::{ActionStatus, HeadCheck, Store, StoreError};

use crate::common::{attempt, db_path, decision, fresh, insert, raw, response};

/// A decision for `user` run to success: 5 audit entries (decision, 2 actions, started,
/// attempt started, attempt finished, action finished; the second action skipped).
async fn contained(store: &Store, user: &str) -> Vec<i64> {
    let mut d = decision(user, "1");
    d.actions.truncate(1);
    let ids = insert(store, &d).await;
    let id = store
        .begin_attempt(&attempt(ids[0], 1, None))
        .await
        .expect("begin");
    store
        .finish_attempt(id, &response(2, 200, "req"))
        .await
        .expect("finish attempt");
    store
        .finish_action(ids[0], ActionStatus::Succeeded, None, Utc::now())
        .await
        .expect("finish action");
    ids
}

/// The present, after a pause, so that rows written before it are strictly older.
async fn cut_off() -> DateTime<Utc> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    let now = Utc::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    now
}

async fn count(store: &Store, table: &str) -> i64 {
    let mut conn = raw(store.path()).await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&mut conn)
        .await
        .expect("count")
}

#[tokio::test]
async fn pruning_keeps_the_chain_verifiable_and_recent_rows_intact() {
    let (_dir, store) = fresh().await;
    store
        .record_daemon_event("start", &json!({"version": "test"}))
        .await
        .expect("start");
    contained(&store, "old-1").await;
    contained(&store, "old-2").await;
    let (old_head_seq, old_head) = store.chain_head().await.expect("head").expect("entries");
    let before = cut_off().await;
    contained(&store, "new").await;

    let report = store.prune(before).await.expect("prune");
    assert_eq!(report.removed.decisions, 2, "{report:?}");
    assert_eq!(report.removed.actions, 2);
    assert_eq!(report.removed.attempts, 2);
    assert_eq!(report.removed.daemon_events, 1);
    assert_eq!(
        report.removed.entries,
        u64::try_from(old_head_seq).expect("positive")
    );
    assert_eq!(report.blocked_by, None);
    let checkpoint = report.checkpoint.expect("checkpoint");
    assert_eq!(
        (checkpoint.from_seq, checkpoint.through_seq),
        (1, old_head_seq)
    );
    assert_eq!(checkpoint.through_hash, old_head);

    let verified = store.verify_chain().await.expect("verify");
    assert_eq!(verified.first_broken, None);
    assert_eq!(verified.checkpoint, Some(checkpoint));
    let users: Vec<String> = store
        .contained()
        .await
        .expect("contained")
        .into_iter()
        .map(|r| r.user_id)
        .collect();
    assert_eq!(users, ["new"]);
    // The last pruned entry's hash still vouches (the checkpoint keeps it); older ones cannot.
    assert_eq!(
        store
            .check_head(old_head_seq, &old_head)
            .await
            .expect("head"),
        HeadCheck::Present
    );
    assert_eq!(
        store.check_head(1, "whatever").await.expect("head"),
        HeadCheck::Pruned {
            checkpoint_seq: old_head_seq
        }
    );

    // Nothing older remains: a second prune with the same cut-off writes nothing.
    let rows = verified.rows;
    let again = store.prune(before).await.expect("prune again");
    assert_eq!(again.batches, 0);
    assert_eq!(store.verify_chain().await.expect("verify").rows, rows);
}

#[tokio::test]
async fn a_later_prune_moves_the_checkpoint_and_still_verifies() {
    let (_dir, store) = fresh().await;
    contained(&store, "u1").await;
    let first = cut_off().await;
    contained(&store, "u2").await;
    store.prune(first).await.expect("prune");
    let second = cut_off().await;
    contained(&store, "u3").await;

    let report = store.prune(second).await.expect("prune");
    assert_eq!(report.removed.decisions, 1, "{report:?}");
    let verified = store.verify_chain().await.expect("verify");
    assert_eq!(verified.first_broken, None, "{verified:?}");
    assert_eq!(count(&store, "decisions").await, 1);
    // The first prune's own record went with the second prefix.
    assert_eq!(
        count(&store, "audit_log WHERE kind = 'audit.pruned'").await,
        1
    );
}

#[tokio::test]
async fn an_unfinished_decision_holds_pruning_back() {
    let (_dir, store) = fresh().await;
    contained(&store, "done").await;
    let mut open = decision("open", "1");
    open.actions.truncate(1);
    insert(&store, &open).await;
    contained(&store, "after").await;
    let before = cut_off().await;

    let report = store.prune(before).await.expect("prune");
    assert_eq!(report.removed.decisions, 1, "{report:?}");
    let blocked = report.blocked_by.expect("blocked");
    assert!(blocked.contains("decision 2"), "{blocked}");
    assert_eq!(store.pending_actions(None).await.expect("pending").len(), 1);
    assert_eq!(count(&store, "decisions").await, 2);
    assert!(store.verify_chain().await.expect("verify").is_intact());
}

#[tokio::test]
async fn an_open_breaker_trip_is_kept_until_resumed() {
    let (_dir, store) = fresh().await;
    let trip = json!({"tenant_id": "t1", "tripped_at": "2026-11-24T10:00:00Z", "max_actions": 1,
                      "window_secs": 60, "users_in_window": 1, "first_held_user": "u",
                      "rule_id": "r"});
    store
        .record_daemon_event("breaker_tripped", &trip)
        .await
        .expect("trip");
    store
        .record_daemon_event("breaker_tripped", &json!({"tenant_id": "t2"}))
        .await
        .expect("other tenant");
    let before = cut_off().await;
    let report = store.prune(before).await.expect("prune");
    assert_eq!(report.batches, 0, "{report:?}");
    assert!(report.blocked_by.expect("blocked").contains("breaker"));

    store
        .record_daemon_event("breaker_resumed", &json!({"tenant_id": "t1"}))
        .await
        .expect("resume");
    let before = cut_off().await;
    let report = store.prune(before).await.expect("prune");
    // t1's trip goes (its resume supersedes it); t2's breaker is still open and stays.
    assert_eq!(report.removed.daemon_events, 1, "{report:?}");
    assert!(store.verify_chain().await.expect("verify").is_intact());
}

#[tokio::test]
async fn a_prune_refuses_to_erase_a_tampered_row() {
    let (dir, store) = fresh().await;
    contained(&store, "u1").await;
    let before = cut_off().await;
    let mut conn = raw(&db_path(&dir)).await;
    for sql in [
        "DROP TRIGGER decisions_no_update",
        "UPDATE decisions SET user_id = 'someone-else' WHERE id = 1",
    ] {
        sqlx::query(sql).execute(&mut conn).await.expect(sql);
    }

    let err = store.prune(before).await.expect_err("refused");
    assert!(
        matches!(err, StoreError::PruneRefused { seq: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("decisions row 1"), "{err}");
    assert_eq!(count(&store, "decisions").await, 1, "nothing was deleted");
}

#[tokio::test]
async fn tampering_with_a_pruned_chain_is_named() {
    let cases: [(&str, &[&str], &str); 4] = [
        (
            "the prune's own entry cut off",
            &[
                "DROP TRIGGER audit_log_no_delete",
                "DELETE FROM audit_log WHERE kind = 'audit.pruned'",
            ],
            "vouched for by no audit.pruned entry",
        ),
        (
            "the checkpoint's counts edited",
            &[
                "DROP TRIGGER audit_log_no_update",
                "UPDATE audit_log SET payload = replace(payload, '\"decisions\":1', \
                 '\"decisions\":0') WHERE kind = 'audit.checkpoint'",
            ],
            "differs from the prune",
        ),
        (
            "the checkpoint deleted",
            &[
                "DROP TRIGGER audit_log_no_delete",
                "DELETE FROM audit_log WHERE kind = 'audit.checkpoint'",
            ],
            "is missing",
        ),
        (
            "a retained entry deleted",
            &[
                "DROP TRIGGER audit_log_no_delete",
                "DELETE FROM audit_log WHERE seq = (SELECT min(seq) + 1 FROM audit_log)",
            ],
            "is missing",
        ),
    ];
    for (what, statements, expected) in cases {
        let (dir, store) = fresh().await;
        contained(&store, "old").await;
        let before = cut_off().await;
        contained(&store, "new").await;
        store.prune(before).await.expect("prune");
        assert!(store.verify_chain().await.expect("verify").is_intact());

        let mut conn = raw(&db_path(&dir)).await;
        for sql in statements {
            sqlx::query(*sql).execute(&mut conn).await.expect(sql);
        }
        let report = store.verify_chain().await.expect("verify");
        let (_, why) = report
            .first_broken
            .unwrap_or_else(|| panic!("{what}: not detected"));
        assert!(why.contains(expected), "{what}: {why}");
    }
}

#[tokio::test]
async fn prune_older_than_counts_back_from_now() {
    let (_dir, store) = fresh().await;
    contained(&store, "u1").await;
    let report = store
        .prune_older_than(Duration::from_secs(3600))
        .await
        .expect("prune");
    assert_eq!(report.batches, 0, "nothing is an hour old");
    let report = store
        .prune_older_than(Duration::from_secs(u64::MAX))
        .await
        .expect("prune");
    assert_eq!(report.batches, 0, "an unrepresentable age prunes nothing");
    tokio::time::sleep(Duration::from_millis(10)).await;
    let report = store
        .prune_older_than(Duration::from_millis(1))
        .await
        .expect("prune");
    assert_eq!(report.removed.decisions, 1);
    assert!(store.verify_chain().await.expect("verify").is_intact());
}

#[tokio::test]
async fn a_cut_off_in_the_future_prunes_everything_once() {
    let (_dir, store) = fresh().await;
    contained(&store, "u1").await;
    contained(&store, "u2").await;
    let far = Utc::now() + chrono::Duration::days(365);
    let report = store.prune(far).await.expect("prune");
    assert_eq!(
        (report.batches, report.removed.decisions),
        (1, 2),
        "{report:?}"
    );
    let verified = store.verify_chain().await.expect("verify");
    assert!(verified.is_intact(), "{verified:?}");
    // The checkpoint and the entry recording the prune are all that is left.
    assert_eq!(verified.rows, 2);
}
