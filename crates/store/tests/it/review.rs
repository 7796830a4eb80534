//! Review queries and views: filters, one decision's story, counts, the views of docs/audit.md,
//! and a database written by schema 1 that upgrades with its chain intact.

use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use store::{ActionStatus, DecisionMode, ReviewFilter, Store};
use tempfile::TempDir;

use crate::common::{
    at, attempt, db_path, decision, fresh, insert, raw, response, throttled_then_contained,
};

/// u1 contained by `high-risk` (after a 429), u2 recorded in dry run by `any-risk`, a protected
/// break-glass account, u3 suppressed by an exception, u4 failed (404).
async fn incident() -> (TempDir, Store) {
    let (dir, store) = fresh().await;
    store
        .record_daemon_event("start", &json!({"rule_set_hash": "abc"}))
        .await
        .expect("start");
    let mut u1 = decision("u1", "1");
    u1.actions.truncate(1);
    let ids = insert(&store, &u1).await;
    throttled_then_contained(&store, ids[0]).await;

    let mut u2 = decision("u2", "1");
    u2.rule_id = "any-risk".into();
    u2.mode = DecisionMode::DryRun;
    u2.reason = Some("rule mode dry_run".into());
    u2.decided_at = at(70);
    insert(&store, &u2).await;

    let mut glass = decision("breakglass", "1");
    glass.mode = DecisionMode::Protected;
    glass.reason = Some("protected principal breakglass@contoso.com".into());
    glass.decided_at = at(71);
    insert(&store, &glass).await;

    let mut u3 = decision("u3", "1");
    u3.mode = DecisionMode::Suppressed;
    u3.reason = Some("exception: travel-desk".into());
    u3.decided_at = at(72);
    u3.actions.truncate(1);
    insert(&store, &u3).await;

    let mut u4 = decision("u4", "1");
    u4.decided_at = at(73);
    u4.actions.truncate(1);
    let ids = insert(&store, &u4).await;
    let id = store
        .begin_attempt(&attempt(ids[0], 74, None))
        .await
        .expect("begin");
    store
        .finish_attempt(id, &response(74, 404, "req-9"))
        .await
        .expect("finish");
    store
        .finish_action(ids[0], ActionStatus::Failed, Some("404"), at(74))
        .await
        .expect("finish");
    (dir, store)
}

fn users(rows: &[store::ActionSummary]) -> Vec<(&str, Option<&str>)> {
    rows.iter()
        .map(|r| (r.user_id.as_str(), r.status.as_deref()))
        .collect()
}

#[tokio::test]
async fn list_filters_by_every_field() {
    let (_dir, store) = incident().await;
    let all = store
        .list_actions(&ReviewFilter::default())
        .await
        .expect("list");
    assert_eq!(all.len(), 7, "{all:#?}");
    assert_eq!(all[0].last_http_status, Some(200));
    assert_eq!(all[0].last_request_id.as_deref(), Some("req-2"));
    assert_eq!(all[0].attempts, Some(2));

    let by = |f: ReviewFilter| {
        let store = store.clone();
        async move { store.list_actions(&f).await.expect("list") }
    };
    let rows = by(ReviewFilter {
        user: Some("U1@Contoso.com".into()),
        ..ReviewFilter::default()
    })
    .await;
    assert_eq!(users(&rows), [("u1", Some("succeeded"))]);
    let rows = by(ReviewFilter {
        rule: Some("any-risk".into()),
        ..ReviewFilter::default()
    })
    .await;
    assert_eq!(
        users(&rows),
        [("u2", Some("skipped")), ("u2", Some("skipped"))]
    );
    let rows = by(ReviewFilter {
        outcome: Some(ActionStatus::Failed),
        ..ReviewFilter::default()
    })
    .await;
    assert_eq!(users(&rows), [("u4", Some("failed"))]);
    let rows = by(ReviewFilter {
        mode: Some(DecisionMode::Suppressed),
        ..ReviewFilter::default()
    })
    .await;
    assert_eq!(users(&rows), [("u3", Some("skipped"))]);
    let rows = by(ReviewFilter {
        since: Some(at(71)),
        until: Some(at(72)),
        ..ReviewFilter::default()
    })
    .await;
    assert_eq!(
        users(&rows),
        [
            ("breakglass", Some("skipped")),
            ("breakglass", Some("skipped")),
            ("u3", Some("skipped"))
        ]
    );
    let rows = by(ReviewFilter {
        tenant: Some("t2".into()),
        ..ReviewFilter::default()
    })
    .await;
    assert!(rows.is_empty());
    let rows = by(ReviewFilter {
        limit: Some(2),
        ..ReviewFilter::default()
    })
    .await;
    assert_eq!(rows.len(), 2);
}

#[tokio::test]
async fn a_story_has_the_record_the_explanation_every_call_and_its_entries() {
    let (_dir, store) = incident().await;
    let story = store
        .decision_story(1)
        .await
        .expect("story")
        .expect("decision 1 exists");
    assert_eq!(story.decision.user_id, "u1");
    assert_eq!(
        story.decision.record,
        json!({"id": "u1", "riskLevel": "high"})
    );
    assert_eq!(
        story.decision.explanation,
        json!({"matched": "riskLevel == 'high'"})
    );
    assert_eq!(story.actions.len(), 1);
    let calls = &story.actions[0].attempts;
    assert_eq!(
        calls
            .iter()
            .map(|c| (c.attempt_no, c.http_status, c.retry_reason.as_deref()))
            .collect::<Vec<_>>(),
        [
            (1, Some(429), None),
            (2, Some(200), Some("429 retry-after 1s"))
        ]
    );
    let kinds: Vec<&str> = story
        .audit_entries
        .iter()
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "decision.recorded",
            "action.created",
            "action.started",
            "attempt.started",
            "attempt.finished",
            "action.started",
            "attempt.started",
            "attempt.finished",
            "action.finished"
        ]
    );
    assert_eq!(store.decision_story(99).await.expect("story"), None);

    let stories = store
        .decision_stories(&ReviewFilter {
            outcome: Some(ActionStatus::Failed),
            ..ReviewFilter::default()
        })
        .await
        .expect("stories");
    assert_eq!(stories.len(), 1);
    assert_eq!(stories[0].decision.user_id, "u4");
}

#[tokio::test]
async fn stats_count_per_rule_outcome_mode_and_hour() {
    let (_dir, store) = incident().await;
    let stats = store.stats(&ReviewFilter::default()).await.expect("stats");
    assert_eq!((stats.decisions, stats.contained_users), (5, 1));
    let rules: Vec<(&str, i64, i64, i64, i64)> = stats
        .by_rule
        .iter()
        .map(|r| {
            (
                r.rule_id.as_str(),
                r.decisions,
                r.enforced,
                r.succeeded,
                r.failed,
            )
        })
        .collect();
    assert_eq!(rules, [("high-risk", 4, 2, 1, 1), ("any-risk", 1, 0, 0, 0)]);
    let outcomes: Vec<(&str, i64)> = stats
        .by_outcome
        .iter()
        .map(|o| (o.status.as_str(), o.actions))
        .collect();
    assert_eq!(outcomes, [("skipped", 5), ("failed", 1), ("succeeded", 1)]);
    let hours: Vec<(&str, i64)> = stats
        .by_hour
        .iter()
        .map(|h| (h.hour.as_str(), h.decisions))
        .collect();
    assert_eq!(hours, [("2027-01-15T08:00Z", 1), ("2027-01-15T09:00Z", 4)]);
    assert_eq!(stats.by_mode.len(), 4);

    let only = store
        .stats(&ReviewFilter {
            user: Some("u4".into()),
            ..ReviewFilter::default()
        })
        .await
        .expect("stats");
    assert_eq!((only.decisions, only.contained_users), (1, 0));
}

#[tokio::test]
async fn the_views_answer_the_common_questions() {
    let (dir, _store) = incident().await;
    let mut conn = raw(&db_path(&dir)).await;
    let per_user: Vec<(String, i64, i64, i64, String)> = sqlx::query_as(
        "SELECT user_id, decisions, contained, actions_failed, rules
         FROM v_actions_per_user ORDER BY user_id",
    )
    .fetch_all(&mut conn)
    .await
    .expect("v_actions_per_user");
    assert_eq!(
        per_user,
        [
            ("breakglass".into(), 1, 0, 0, "high-risk".into()),
            ("u1".into(), 1, 1, 0, "high-risk".into()),
            ("u2".into(), 1, 0, 0, "any-risk".into()),
            ("u3".into(), 1, 0, 0, "high-risk".into()),
            ("u4".into(), 1, 0, 1, "high-risk".into()),
        ]
    );
    let not_actioned: Vec<(String, String)> =
        sqlx::query_as("SELECT DISTINCT user_id, mode FROM v_not_actioned ORDER BY user_id")
            .fetch_all(&mut conn)
            .await
            .expect("v_not_actioned");
    assert_eq!(
        not_actioned,
        [
            ("breakglass".into(), "protected".into()),
            ("u2".into(), "dry_run".into()),
            ("u3".into(), "suppressed".into())
        ]
    );
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM v_held_actions")
        .fetch_one(&mut conn)
        .await
        .expect("v_held_actions");
    assert_eq!(held, 0);
    let timeline: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT event, user_id FROM v_timeline WHERE user_id = 'u1' OR event LIKE 'daemon.%'
         ORDER BY at, step",
    )
    .fetch_all(&mut conn)
    .await
    .expect("v_timeline");
    let events: Vec<&str> = timeline.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(
        events,
        [
            // The daemon started now; the fixtures' decisions are dated 2027.
            "daemon.start",
            "decision.enforce",
            "call.started",
            "call.finished",
            "call.started",
            "call.finished",
            "action.succeeded"
        ]
    );
}

/// The hash of an entry, computed here from the documented formula.
fn entry_hash(prev: &str, seq: i64, kind: &str, payload: &str) -> String {
    hex::encode(Sha256::digest(format!("{prev}\n{seq}\n{kind}\n{payload}")))
}

#[tokio::test]
async fn a_schema_1_database_upgrades_with_its_chain_intact() {
    // Schema 1 exactly as databases in the field ran it, with one decision written by it.
    let dir = tempfile::tempdir().expect("temp dir");
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).expect("dir");
    let init = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../migrations/0001_init.sql"
    );
    std::fs::copy(init, migrations.join("0001_init.sql")).expect("copy 0001");
    let path = db_path(&dir);
    let mut conn = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .connect()
        .await
        .expect("create");
    sqlx::migrate::Migrator::new(migrations.as_path())
        .await
        .expect("migrator")
        .run(&mut conn)
        .await
        .expect("schema 1");
    let payload = concat!(
        r#"{"decided_at":"2026-01-01T00:00:00.000000000Z","explanation_json":"{}","id":1,"#,
        r#""mode":"enforce","operator":null,"reason":null,"record_json":"{}","rule_hash":"h","#,
        r#""rule_id":"r","source":"risky_users","tenant_id":"t1","trigger_key":"k","#,
        r#""user_id":"u","user_principal_name":null}"#
    );
    let genesis = "0".repeat(64);
    sqlx::query(
        "INSERT INTO decisions (id, tenant_id, source, trigger_key, rule_id, rule_hash, user_id,
           mode, record_json, explanation_json, decided_at)
         VALUES (1, 't1', 'risky_users', 'k', 'r', 'h', 'u', 'enforce', '{}', '{}',
                 '2026-01-01T00:00:00.000000000Z')",
    )
    .execute(&mut conn)
    .await
    .expect("decision");
    sqlx::query(
        "INSERT INTO audit_log (seq, at, kind, tenant_id, decision_id, payload, prev_hash, hash)
         VALUES (1, '2026-01-01T00:00:00.000000000Z', 'decision.recorded', 't1', 1, ?, ?, ?)",
    )
    .bind(payload)
    .bind(&genesis)
    .bind(entry_hash(&genesis, 1, "decision.recorded", payload))
    .execute(&mut conn)
    .await
    .expect("entry");
    drop(conn);

    let store = Store::open(&path).await.expect("upgrade");
    assert!(store.verify_chain().await.expect("verify").is_intact());
    let mut suppressed = decision("u9", "1");
    suppressed.mode = DecisionMode::Suppressed;
    insert(&store, &suppressed).await;
    let report = store.verify_chain().await.expect("verify");
    assert_eq!((report.first_broken, report.rows), (None, 4));
}
