//! How the audit database's investigator-side operations scale: a store is filled through the
//! public API with N contained users (a decision, an action, one attempt each: 6 audit entries)
//! and as many dry-run decisions (3 entries), then `verify_chain`, `list_actions`, `stats`,
//! `decision_stories` (the JSON export) and `prune` of the older half are timed.
//!
//! `cargo bench -p store --bench audit` (default N = 2,000); `AUDIT_BENCH_USERS=N` changes it,
//! `AUDIT_BENCH_DIR` puts the database elsewhere (the default is the system temp directory; the
//! write figure depends on how fast that disk syncs, since every write is `synchronous=FULL`).

use std::time::Instant;

use chrono::Utc;
use store::{
    ActionKind, ActionStatus, AttemptResult, DecisionInsert, DecisionMode, NewAttempt, NewDecision,
    ReviewFilter, Store,
};

fn decision(i: u64, mode: DecisionMode) -> NewDecision {
    NewDecision {
        tenant_id: "00000000-0000-4000-8000-0000000be7c4".into(),
        source: "risky_users".into(),
        trigger_key: format!("risky_users:user-{i}:{mode}"),
        rule_id: if mode == DecisionMode::Enforce {
            "high-risk-users".into()
        } else {
            "medium-risk-users-watch".into()
        },
        rule_hash: "0".repeat(64),
        user_id: format!("user-{i}"),
        user_principal_name: Some(format!("user{i}@contoso.com")),
        mode,
        reason: (mode != DecisionMode::Enforce).then(|| "rule mode dry_run".into()),
        record_json: format!(
            r#"{{"id":"user-{i}","riskLevel":"high","riskState":"atRisk","userPrincipalName":"user{i}@contoso.com"}}"#
        ),
        explanation_json: r#"{"summary":"riskLevel=high in [high]"}"#.into(),
        operator: None,
        decided_at: Utc::now(),
        actions: vec![ActionKind::RevokeSessions],
    }
}

async fn contain(store: &Store, i: u64) {
    let DecisionInsert::Inserted { action_ids, .. } = store
        .record_decision(&decision(i, DecisionMode::Enforce))
        .await
        .expect("record")
    else {
        panic!("duplicate");
    };
    let id = store
        .begin_attempt(&NewAttempt {
            action_id: action_ids[0],
            endpoint: "POST /v1.0/users/{id}/revokeSignInSessions".into(),
            client_request_id: format!("crid-{i}"),
            started_at: Utc::now(),
            retry_reason: None,
        })
        .await
        .expect("begin");
    store
        .finish_attempt(
            id,
            &AttemptResult {
                finished_at: Utc::now(),
                http_status: Some(200),
                graph_error_code: None,
                error_message: None,
                request_id: Some(format!("req-{i}")),
                latency_ms: 40,
            },
        )
        .await
        .expect("finish");
    store
        .finish_action(action_ids[0], ActionStatus::Succeeded, None, Utc::now())
        .await
        .expect("finish");
}

fn timed<T>(what: &str, started: Instant, result: T) -> T {
    println!(
        "{what:<40} {:>9.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    result
}

#[tokio::main]
async fn main() {
    let users: u64 = std::env::var("AUDIT_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let base = std::env::var_os("AUDIT_BENCH_DIR")
        .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    let dir = tempfile::tempdir_in(base).expect("temp dir");
    let store = Store::open(&dir.path().join("audit.db"))
        .await
        .expect("open");

    let started = Instant::now();
    let half = users / 2;
    for i in 0..users {
        contain(&store, i).await;
        store
            .record_decision(&decision(i, DecisionMode::DryRun))
            .await
            .expect("record");
    }
    let written = started.elapsed();
    let transactions = users * 5;
    println!(
        "wrote {users} contained + {users} dry-run decisions: {transactions} transactions in \
         {:.1} s ({:.0} transactions/s, synchronous=FULL)",
        written.as_secs_f64(),
        transactions as f64 / written.as_secs_f64()
    );
    let report = timed(
        "verify_chain",
        Instant::now(),
        store.verify_chain().await.expect("verify"),
    );
    assert!(report.is_intact());
    println!("  ({} audit entries)", report.rows);
    let rows = timed(
        "list_actions (all)",
        Instant::now(),
        store
            .list_actions(&ReviewFilter::default())
            .await
            .expect("list"),
    );
    assert_eq!(rows.len() as u64, users * 2);
    timed(
        "list_actions (--user, one of them)",
        Instant::now(),
        store
            .list_actions(&ReviewFilter {
                user: Some(format!("user{half}@contoso.com")),
                ..ReviewFilter::default()
            })
            .await
            .expect("list"),
    );
    timed(
        "stats",
        Instant::now(),
        store.stats(&ReviewFilter::default()).await.expect("stats"),
    );
    let stories = timed(
        "decision_stories (export json, all)",
        Instant::now(),
        store
            .decision_stories(&ReviewFilter::default())
            .await
            .expect("stories"),
    );
    assert_eq!(stories.len() as u64, users * 2);
    // The second half's first decision was made after everything the first half wrote.
    let before = stories[usize::try_from(users).expect("fits")]
        .decision
        .decided_at
        .clone();
    let before = chrono::DateTime::parse_from_rfc3339(&before)
        .expect("timestamp")
        .with_timezone(&Utc);
    let pruned = timed(
        "prune (the older half)",
        Instant::now(),
        store.prune(before).await.expect("prune"),
    );
    println!(
        "  ({} entries, {} decisions in {} batches)",
        pruned.removed.entries, pruned.removed.decisions, pruned.batches
    );
    let report = timed(
        "verify_chain after the prune",
        Instant::now(),
        store.verify_chain().await.expect("verify"),
    );
    assert!(report.is_intact());
    store.close().await;
}
