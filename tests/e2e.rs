//! End to end: the real `revokd` binary against `revokd sim`, checked from both sides: what the
//! simulator received and what the audit database recorded.

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::{E2E_APP, HIGH_RISK_RULES, Sim, audit_db, one_tenant_config, run_once, workspace};

const CONTAINED: [&str; 4] = [
    "a0000000-0000-4000-8000-000000000001",
    "a0000000-0000-4000-8000-000000000002",
    "a0000000-0000-4000-8000-000000000003",
    "a0000000-0000-4000-8000-000000000004",
];
const PROTECTED: &str = "a0000000-0000-4000-8000-000000000005";
const THROTTLED: &str = "a0000000-0000-4000-8000-000000000002";

/// user, attempt number, HTTP status, request-id, retry reason, client-request-id
type AttemptRow = (
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    String,
);

/// Enforcing, with the break-glass account protected (written in another case than the scenario's).
fn config(sim: &Sim) -> String {
    one_tenant_config(
        sim,
        &E2E_APP,
        "safety:\n  dry_run: false\n  protected_users: [BreakGlass@contoso.com]\nexecutor:\n  base_delay: 50ms\n",
        // Graph's full 1 request/s: nothing else polls the simulated tenant.
        "quotas: {identity_protection_share: 1.0}",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn run_once_contains_exactly_the_intended_users() {
    let sim = Sim::start("tests/fixtures/e2e-scenario.yaml");
    let dir = workspace(&config(&sim), HIGH_RISK_RULES);

    let out = run_once(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "revokd run --once failed:\n{stderr}");

    // The simulator's side: exactly the intended users were revoked.
    let record = sim.record().await;
    let actions = record["actions"].as_array().expect("actions");
    let revoked: BTreeSet<&str> = actions
        .iter()
        .filter(|a| a["kind"] == "revokeSignInSessions" && a["status"] == 200)
        .map(|a| a["user_id"].as_str().expect("resolved user id"))
        .collect();
    assert_eq!(revoked, CONTAINED.into_iter().collect(), "{stderr}");
    assert!(
        actions.iter().all(|a| a["user_id"] != PROTECTED),
        "the protected account was called"
    );

    // Pages beyond the first were followed: 8 risky users at 2 per page.
    let requests = record["requests"].as_array().expect("requests");
    let risky_pages = requests
        .iter()
        .filter(|r| {
            let p = r["path_and_query"].as_str().unwrap_or_default();
            p.starts_with("/v1.0/identityProtection/riskyUsers") && r["status"] == 200
        })
        .collect::<Vec<_>>();
    assert!(risky_pages.len() >= 3, "{risky_pages:#?}");
    assert!(
        risky_pages.iter().skip(1).all(|r| r["path_and_query"]
            .as_str()
            .unwrap_or_default()
            .contains("skiptoken")),
        "{risky_pages:#?}"
    );

    // The throttled revoke was retried, after its Retry-After.
    let throttled: Vec<&Value> = actions
        .iter()
        .filter(|a| a["user_id"] == THROTTLED)
        .collect();
    assert_eq!(throttled.len(), 2, "{throttled:#?}");
    assert_eq!(throttled[0]["status"], 429);
    assert_eq!(throttled[1]["status"], 200);
    let at = |a: &Value| {
        chrono::DateTime::parse_from_rfc3339(a["at"].as_str().expect("at")).expect("rfc3339")
    };
    let waited = at(throttled[1]) - at(throttled[0]);
    assert!(
        waited >= chrono::Duration::milliseconds(950),
        "waited only {waited}"
    );

    // The audit database's side.
    let db = audit_db(&dir.path().join("audit.db")).await;
    let decisions: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT user_id, rule_id, mode, record_json, decided_at FROM decisions ORDER BY user_id",
    )
    .fetch_all(&db)
    .await
    .expect("decisions");
    let enforced: BTreeSet<&str> = decisions
        .iter()
        .filter(|d| d.2 == "enforce")
        .map(|d| d.0.as_str())
        .collect();
    assert_eq!(enforced, CONTAINED.into_iter().collect());
    for (user, rule, mode, record, decided_at) in &decisions {
        assert_eq!(rule, "high-risk-users");
        let record: Value = serde_json::from_str(record).expect("record is JSON");
        assert_eq!(
            record["id"],
            user.as_str(),
            "the triggering record is stored"
        );
        assert!(chrono::DateTime::parse_from_rfc3339(decided_at).is_ok());
        if user == PROTECTED {
            assert_eq!(mode, "protected");
        }
    }
    assert!(
        decisions.iter().any(|d| d.0 == PROTECTED),
        "protected match recorded"
    );

    let attempts: Vec<AttemptRow> = sqlx::query_as(
        "SELECT user_id, attempt_no, http_status, request_id, retry_reason, client_request_id \
             FROM v_action_attempts ORDER BY user_id, attempt_no",
    )
    .fetch_all(&db)
    .await
    .expect("attempts");
    for user in CONTAINED {
        let mine: Vec<_> = attempts.iter().filter(|a| a.0 == user).collect();
        let last = mine.last().expect("an attempt per contained user");
        assert_eq!(last.2, Some(200), "{mine:?}");
        assert!(
            mine.iter().all(|a| a.3.is_some()),
            "request-id recorded: {mine:?}"
        );
    }
    let ben: Vec<_> = attempts.iter().filter(|a| a.0 == THROTTLED).collect();
    assert_eq!(ben.len(), 2, "{ben:?}");
    assert_eq!(ben[0].2, Some(429));
    assert!(
        ben[1]
            .4
            .as_deref()
            .unwrap_or_default()
            .contains("retry-after 1s"),
        "{ben:?}"
    );
    // The client-request-id in the audit is the one the simulator saw.
    assert_eq!(
        Some(ben[1].5.as_str()),
        throttled[1]["client_request_id"].as_str()
    );

    let outcomes: Vec<(String, String)> =
        sqlx::query_as("SELECT user_id, status FROM v_contained WHERE mode = 'enforce'")
            .fetch_all(&db)
            .await
            .expect("outcomes");
    assert!(outcomes.iter().all(|o| o.1 == "succeeded"), "{outcomes:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_does_not_act_twice() {
    let sim = Sim::start("tests/fixtures/e2e-scenario.yaml");
    let dir = workspace(&config(&sim), HIGH_RISK_RULES);
    for _ in 0..2 {
        let out = run_once(dir.path());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let record = sim.record().await;
    let successful = record["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter(|a| a["status"] == 200)
        .count();
    assert_eq!(successful, CONTAINED.len(), "each user is revoked once");
}
