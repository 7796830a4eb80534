//! The outbox: decisions, duplicates, cooldowns, resume after restart, attempts and outcomes.

use chrono::Duration;
use store::{
    ActionKind, ActionStatus, DecisionInsert, DecisionMode, PendingAction, Store, StoreError,
};

use crate::common::{
    at, attempt, db_path, decision, fresh, insert, raw, response, throttled_then_contained,
};

#[tokio::test]
async fn an_enforced_decision_puts_its_actions_in_the_outbox() {
    let (_dir, store) = fresh().await;
    let d = decision("u1", "1");
    let DecisionInsert::Inserted {
        decision_id,
        action_ids,
    } = store.record_decision(&d).await.expect("record")
    else {
        panic!("expected a new decision");
    };
    assert_eq!(action_ids.len(), 2);

    let pending = store.pending_actions(None).await.expect("pending");
    let expected = |action_id, kind| PendingAction {
        action_id,
        decision_id,
        tenant_id: "t1".into(),
        rule_id: "high-risk".into(),
        user_id: "u1".into(),
        user_principal_name: Some("u1@contoso.com".into()),
        kind,
        status: ActionStatus::Pending,
        attempts: 0,
        created_at: at(0),
    };
    assert_eq!(
        pending,
        [
            expected(action_ids[0], ActionKind::RevokeSessions),
            expected(action_ids[1], ActionKind::ConfirmCompromised),
        ]
    );
}

#[tokio::test]
async fn the_same_trigger_is_decided_once() {
    let (_dir, store) = fresh().await;
    let d = decision("u1", "1");
    let DecisionInsert::Inserted { decision_id, .. } =
        store.record_decision(&d).await.expect("record")
    else {
        panic!("expected a new decision");
    };
    let entries = store.verify_chain().await.expect("verify").rows;

    let mut again = d.clone();
    again.decided_at = at(5);
    again.mode = DecisionMode::DryRun;
    assert_eq!(
        store.record_decision(&again).await.expect("record"),
        DecisionInsert::Duplicate { decision_id }
    );
    assert_eq!(store.pending_actions(None).await.expect("pending").len(), 2);
    assert_eq!(store.verify_chain().await.expect("verify").rows, entries);

    // The key is unique per rule: another rule may decide on the same record.
    let mut other_rule = d.clone();
    other_rule.rule_id = "any-risk".into();
    insert(&store, &other_rule).await;
}

#[tokio::test]
async fn a_decision_listing_an_action_twice_writes_nothing() {
    let (_dir, store) = fresh().await;
    let mut d = decision("u1", "1");
    d.actions = vec![
        ActionKind::RevokeSessions,
        ActionKind::Notify,
        ActionKind::RevokeSessions,
    ];
    let err = store.record_decision(&d).await.expect_err("duplicate kind");
    assert!(
        matches!(
            err,
            StoreError::DuplicateAction {
                kind: ActionKind::RevokeSessions,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("revoke_sessions more than once"),
        "{err}"
    );
    assert!(store.contained().await.expect("contained").is_empty());
}

#[tokio::test]
async fn a_decision_not_enforced_records_its_actions_as_skipped() {
    let (_dir, store) = fresh().await;
    let mut d = decision("breakglass", "1");
    d.mode = DecisionMode::Protected;
    d.reason = Some("protected principal breakglass@contoso.com".into());
    insert(&store, &d).await;

    assert!(
        store
            .pending_actions(None)
            .await
            .expect("pending")
            .is_empty()
    );
    let rows = store.contained().await.expect("contained");
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(
            (row.mode.as_str(), row.status.as_str()),
            ("protected", "skipped")
        );
        assert_eq!(row.completed_at, Some(at(0)));
        assert_eq!(row.attempts, 0);
    }
    assert_eq!(rows[0].action, "revoke_sessions");
}

#[tokio::test]
async fn cooldown_counts_enforced_decisions_of_the_same_rule_and_user() {
    let (_dir, store) = fresh().await;
    insert(&store, &decision("u1", "1")).await;
    let mut dry = decision("u2", "1");
    dry.mode = DecisionMode::DryRun;
    insert(&store, &dry).await;

    let since = |m| at(0) + Duration::minutes(m);
    assert!(
        store
            .enforced_since("t1", "high-risk", "u1", since(-60))
            .await
            .expect("look up")
    );
    assert!(
        store
            .enforced_since("t1", "high-risk", "u1", at(0))
            .await
            .expect("look up")
    );
    assert!(
        !store
            .enforced_since("t1", "high-risk", "u1", since(1))
            .await
            .expect("look up")
    );
    assert!(
        !store
            .enforced_since("t1", "other-rule", "u1", since(-60))
            .await
            .expect("look up")
    );
    assert!(
        !store
            .enforced_since("t2", "high-risk", "u1", since(-60))
            .await
            .expect("look up")
    );
    assert!(
        !store
            .enforced_since("t1", "high-risk", "u2", since(-60))
            .await
            .expect("look up")
    );
}

#[tokio::test]
async fn cooldown_ignores_a_decision_whose_actions_all_failed() {
    let (_dir, store) = fresh().await;
    let ids = insert(&store, &decision("u1", "1")).await;
    store
        .finish_action(ids[0], ActionStatus::Failed, Some("404"), at(1))
        .await
        .expect("finish");
    assert!(
        store
            .enforced_since("t1", "high-risk", "u1", at(-1))
            .await
            .expect("look up")
    );
    store
        .finish_action(ids[1], ActionStatus::Failed, Some("404"), at(1))
        .await
        .expect("finish");
    assert!(
        !store
            .enforced_since("t1", "high-risk", "u1", at(-1))
            .await
            .expect("look up")
    );
}

#[tokio::test]
async fn unfinished_actions_resume_after_reopening() {
    let (dir, store) = fresh().await;
    let ids = insert(&store, &decision("u1", "1")).await;
    let mut later = decision("u2", "1");
    later.tenant_id = "t2".into();
    later.decided_at = at(1);
    later.actions = vec![ActionKind::DisableAccount];
    let later_ids = insert(&store, &later).await;
    store
        .begin_attempt(&attempt(ids[0], 2, None))
        .await
        .expect("begin");
    // The process dies here: the call may or may not have reached Graph.
    store.close().await;
    drop(store);

    let store = Store::open(&db_path(&dir)).await.expect("reopen");
    let pending = store.pending_actions(None).await.expect("pending");
    let summary: Vec<_> = pending
        .iter()
        .map(|p| (p.action_id, p.tenant_id.as_str(), p.status, p.attempts))
        .collect();
    assert_eq!(
        summary,
        [
            (ids[0], "t1", ActionStatus::InFlight, 1),
            (ids[1], "t1", ActionStatus::Pending, 0),
            (later_ids[0], "t2", ActionStatus::Pending, 0),
        ]
    );
    let t2 = store.pending_actions(Some("t2")).await.expect("pending");
    assert_eq!(
        t2.iter().map(|p| p.action_id).collect::<Vec<_>>(),
        later_ids
    );
}

#[tokio::test]
async fn attempts_and_outcomes_are_recorded() {
    let (dir, store) = fresh().await;
    let ids = insert(&store, &decision("u1", "1")).await;
    throttled_then_contained(&store, ids[0]).await;

    let row = &store.contained().await.expect("contained")[0];
    assert_eq!(
        (
            row.status.as_str(),
            row.attempts,
            row.last_http_status,
            row.last_request_id.as_deref()
        ),
        ("succeeded", 2, Some(200), Some("req-2"))
    );
    assert_eq!(row.completed_at, Some(at(4)));
    assert_eq!(
        store
            .pending_actions(None)
            .await
            .expect("pending")
            .iter()
            .map(|p| p.action_id)
            .collect::<Vec<_>>(),
        [ids[1]]
    );

    let mut conn = raw(&db_path(&dir)).await;
    let attempts: Vec<AttemptView> = sqlx::query_as(
        "SELECT attempt_no, retry_reason, http_status, graph_error_code, request_id,
                client_request_id
         FROM v_action_attempts ORDER BY attempt_id",
    )
    .fetch_all(&mut conn)
    .await
    .expect("v_action_attempts");
    let view = |attempt_no,
                retry_reason: Option<&str>,
                http_status,
                code: Option<&str>,
                request_id: &str,
                minutes| AttemptView {
        attempt_no,
        retry_reason: retry_reason.map(str::to_string),
        http_status: Some(http_status),
        graph_error_code: code.map(str::to_string),
        request_id: Some(request_id.to_string()),
        client_request_id: format!("crid-{}-{minutes}", ids[0]),
    };
    assert_eq!(
        attempts,
        [
            view(1, None, 429, Some("TooManyRequests"), "req-1", 1),
            view(2, Some("429 retry-after 1s"), 200, None, "req-2", 3),
        ]
    );
}

/// A `v_action_attempts` row, as an investigator would select it.
#[derive(Debug, PartialEq, sqlx::FromRow)]
struct AttemptView {
    attempt_no: i64,
    retry_reason: Option<String>,
    http_status: Option<i64>,
    graph_error_code: Option<String>,
    request_id: Option<String>,
    client_request_id: String,
}

#[tokio::test]
async fn failed_actions_show_in_their_view() {
    let (dir, store) = fresh().await;
    let ids = insert(&store, &decision("u1", "1")).await;
    let id = store
        .begin_attempt(&attempt(ids[1], 1, None))
        .await
        .expect("begin");
    store
        .finish_attempt(id, &response(2, 403, "req-9"))
        .await
        .expect("finish");
    store
        .finish_action(
            ids[1],
            ActionStatus::Failed,
            Some("403 Authorization_RequestDenied"),
            at(2),
        )
        .await
        .expect("finish");

    let mut conn = raw(&db_path(&dir)).await;
    let failed: Vec<(i64, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT action_id, detail, last_request_id, last_error_message FROM v_failed_actions",
    )
    .fetch_all(&mut conn)
    .await
    .expect("v_failed_actions");
    assert_eq!(
        failed,
        [(
            ids[1],
            "403 Authorization_RequestDenied".into(),
            Some("req-9".into()),
            Some("throttled".into())
        )]
    );
}

#[tokio::test]
async fn an_ended_action_cannot_be_attempted_or_finished_again() {
    let (_dir, store) = fresh().await;
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

    let err = store
        .begin_attempt(&attempt(ids[0], 3, None))
        .await
        .expect_err("closed");
    assert!(
        matches!(
            err,
            StoreError::ActionClosed {
                status: ActionStatus::Succeeded,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("user u1 in tenant t1"), "{err}");
    let err = store
        .finish_action(ids[0], ActionStatus::Failed, None, at(3))
        .await
        .expect_err("closed");
    assert!(matches!(err, StoreError::ActionClosed { .. }), "{err}");
    let err = store
        .finish_attempt(id, &response(3, 500, "req-2"))
        .await
        .expect_err("finished");
    assert!(matches!(err, StoreError::AttemptFinished { .. }), "{err}");
    let err = store
        .finish_action(ids[1], ActionStatus::InFlight, None, at(3))
        .await
        .expect_err("not final");
    assert!(matches!(err, StoreError::NotFinal { .. }), "{err}");
    let err = store
        .begin_attempt(&attempt(999, 3, None))
        .await
        .expect_err("unknown");
    assert!(
        matches!(err, StoreError::UnknownAction { action_id: 999, .. }),
        "{err}"
    );
    let err = store
        .finish_attempt(999, &response(3, 200, "r"))
        .await
        .expect_err("unknown");
    assert!(
        matches!(
            err,
            StoreError::UnknownAttempt {
                attempt_id: 999,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn cursors_round_trip_exactly_per_tenant_and_feed() {
    let (_dir, store) = fresh().await;
    assert_eq!(store.cursor("t1", "sign_ins").await.expect("read"), None);
    store
        .set_cursor("t1", "sign_ins", at(10))
        .await
        .expect("set");
    store
        .set_cursor("t2", "sign_ins", at(20))
        .await
        .expect("set");
    store
        .set_cursor("t1", "sign_ins", at(5))
        .await
        .expect("move back");
    assert_eq!(
        store.cursor("t1", "sign_ins").await.expect("read"),
        Some(at(5))
    );
    assert_eq!(
        store.cursor("t2", "sign_ins").await.expect("read"),
        Some(at(20))
    );
    assert_eq!(store.cursor("t1", "risky_users").await.expect("read"), None);
}
