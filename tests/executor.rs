//! The executor and manual containment end to end, against `revokd sim`:
//! - `revokd revoke --users-file` with 50 lines: two malformed, one protected, one unknown, one
//!   guest; the valid users are revoked and each revoke is read back;
//! - `revokd revoke --all-users` needs the tenant typed out again and spares protected users;
//! - `confirm_compromised` goes out in batches, one attempt row per action sharing the call's
//!   request ids, and rides out Identity Protection's 429 without Retry-After.

#[path = "executor_support.rs"]
mod executor_support;
mod support;

use std::collections::{BTreeMap, BTreeSet};

use executor_support::{HIGH_RISK_RULE, Receiver, Setup, TENANT, count, revoked_users, run_revokd};
use serde_json::Value;
use support::{Sim, audit_db};

/// client-request-id, HTTP status, request-id, retry reason of a confirmCompromised attempt.
type ConfirmAttempt = (String, Option<i64>, Option<String>, Option<String>);

/// 45 members, a break-glass account and a guest; `ghost@contoso.com` does not exist.
fn users_scenario() -> String {
    let mut body = String::from("users:\n");
    for n in 1..=45 {
        body.push_str(&format!(
            "  - userPrincipalName: member{n:02}@contoso.com\n"
        ));
    }
    body.push_str("  - userPrincipalName: breakglass@contoso.com\n");
    body.push_str(
        "  - userPrincipalName: partner_fabrikam.com#EXT#@contoso.onmicrosoft.com\n    userType: Guest\n",
    );
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn users_file_revokes_the_valid_ones_and_reports_the_rest() {
    let setup = Setup::new();
    let sim = Sim::start(&setup.scenario(&users_scenario()));
    let hook = Receiver::start().await;
    setup.rules(HIGH_RISK_RULE);
    let config = setup.config(
        &sim.url,
        &format!(
            "\
safety:
  dry_run: false
  protected_users: [BreakGlass@contoso.com]
executor:
  base_delay: 50ms
notify:
  - name: soc
    kind: generic
    url: {}
    events: [action_failed, guest_not_contained]
  # Nothing listens here: its failures must not slow containment, and are recorded.
  - name: dead-sink
    kind: slack
    url: http://127.0.0.1:9/services/secret-token
    events: [action_failed]
    max_attempts: 2
",
            hook.url
        ),
        "",
    );
    // 50 lines of users: a header, members, the special cases, two malformed lines.
    let mut lines = vec!["displayName,userPrincipalName".to_string()];
    for n in 1..=45 {
        lines.push(format!("Member {n},member{n:02}@contoso.com"));
        if n == 10 {
            lines.push("Broken Line With No Separator".to_string());
        }
        if n == 30 {
            lines.push("Bad,not-a-user".to_string());
        }
    }
    lines.push("Break Glass,breakglass@contoso.com".to_string());
    lines.push("Nobody,ghost@contoso.com".to_string());
    lines.push("Partner,partner_fabrikam.com#EXT#@contoso.onmicrosoft.com".to_string());
    assert_eq!(lines.len(), 51, "a header and 50 lines");
    std::fs::write(setup.path("users.csv"), lines.join("\n") + "\n").expect("users file");
    let bad_lines: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("Broken") || l.starts_with("Bad,"))
        .map(|(i, _)| i + 1)
        .collect();

    let (ok, stdout, stderr, code) = run_revokd(
        setup.dir.path(),
        &[
            "revoke",
            "--config",
            config.to_str().expect("utf-8"),
            "--users-file",
            "users.csv",
            "--reason",
            "incident 4711: password spray",
            "--operator",
            "alice",
            "--json",
        ],
    );
    assert!(
        !ok && code == Some(1),
        "bad lines and failures exit 1:\n{stderr}"
    );
    // Each bad line is named with its number.
    for line in &bad_lines {
        assert!(
            stderr.contains(&format!("users.csv:{line}: ")),
            "line {line} not reported:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("2 bad line(s) in the users file"),
        "{stderr}"
    );

    // Graph's side: the 45 members and the guest revoked once each; the break-glass account
    // never touched; the unknown user's revoke answered 404.
    let record = sim.record().await;
    let actions = record["actions"].as_array().expect("actions");
    let revoked = revoked_users(&record);
    assert_eq!(revoked.len(), 46, "{stderr}");
    assert!(
        actions
            .iter()
            .all(|a| a["user"] != "breakglass@contoso.com"),
        "the protected account was called"
    );
    let ghost: Vec<&Value> = actions
        .iter()
        .filter(|a| a["user"] == "ghost@contoso.com")
        .collect();
    assert_eq!(ghost.len(), 1, "a 404 is not retried: {ghost:#?}");
    assert_eq!(ghost[0]["status"], 404);

    // The audit's side.
    let db = audit_db(&setup.db()).await;
    let decisions: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT coalesce(user_principal_name, user_id), mode, source, operator FROM decisions",
    )
    .fetch_all(&db)
    .await
    .expect("decisions");
    assert_eq!(
        decisions.len(),
        48,
        "one decision per usable, distinct user"
    );
    assert!(
        decisions
            .iter()
            .all(|d| d.2 == "manual" && d.3.as_deref() == Some("alice"))
    );
    let mode_of = |upn: &str| {
        decisions
            .iter()
            .find(|d| d.0 == upn)
            .map(|d| d.1.as_str())
            .unwrap_or("none")
    };
    assert_eq!(mode_of("breakglass@contoso.com"), "protected");
    assert_eq!(mode_of("ghost@contoso.com"), "enforce");
    let reason: String = sqlx::query_scalar(
        "SELECT json_extract(explanation_json, '$.reason') FROM decisions LIMIT 1",
    )
    .fetch_one(&db)
    .await
    .expect("reason");
    assert_eq!(reason, "incident 4711: password spray");

    let ghost_attempt: (String, Option<i64>, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT action_status, http_status, graph_error_code, request_id FROM v_action_attempts \
         WHERE user_principal_name = 'ghost@contoso.com'",
    )
    .fetch_one(&db)
    .await
    .expect("ghost attempt");
    assert_eq!(ghost_attempt.0, "failed");
    assert_eq!(ghost_attempt.1, Some(404));
    assert_eq!(ghost_attempt.2.as_deref(), Some("Request_ResourceNotFound"));
    assert!(ghost_attempt.3.is_some(), "Graph's request-id is kept");

    // Every effective revoke is verified by reading signInSessionsValidFromDateTime back;
    // the guest's is recorded as not effective.
    let checks: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT d.user_principal_name, v.outcome, v.sessions_valid_from, v.revoked_at
         FROM verifications AS v JOIN actions AS a ON a.id = v.action_id
         JOIN decisions AS d ON d.id = a.decision_id",
    )
    .fetch_all(&db)
    .await
    .expect("verifications");
    assert_eq!(checks.len(), 46);
    for (upn, outcome, valid_from, revoked_at) in &checks {
        if upn.contains("#EXT#") {
            assert_eq!(outcome, "guest_not_effective");
        } else {
            assert_eq!(outcome, "confirmed", "{upn}");
            let valid_from = valid_from.as_deref().expect("read back");
            let at = |t: &str| chrono::DateTime::parse_from_rfc3339(t).expect("rfc3339");
            assert!(
                at(valid_from) >= at(revoked_at) - chrono::Duration::seconds(1),
                "{upn}: {valid_from} before {revoked_at}"
            );
        }
    }
    let guest_detail: String = sqlx::query_scalar(
        "SELECT detail FROM v_contained WHERE user_principal_name LIKE 'partner%'",
    )
    .fetch_one(&db)
    .await
    .expect("guest detail");
    assert!(
        guest_detail.starts_with("not effective: guest"),
        "{guest_detail}"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM v_unverified_actions WHERE outcome = 'guest_not_effective'"
        )
        .await,
        1
    );

    // The JSON report and the alerts say the same.
    let report: Value = serde_json::from_str(stdout.trim()).expect("JSON report");
    assert_eq!(report["drain"]["succeeded"], 46);
    assert_eq!(report["drain"]["failed"], 1);
    assert_eq!(report["drain"]["guests"], 1);
    assert_eq!(hook.events("guest_not_contained").len(), 1);
    let failed = hook.events("action_failed");
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(
        failed[0]["details"]["user_principal_name"],
        "ghost@contoso.com"
    );
    let dead: Vec<String> =
        sqlx::query_scalar("SELECT detail_json FROM daemon_events WHERE kind = 'notify_failed'")
            .fetch_all(&db)
            .await
            .expect("notify_failed");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].contains("\"sink\":\"dead-sink\""), "{}", dead[0]);
    assert!(
        !dead[0].contains("secret-token"),
        "the URL is never stored: {}",
        dead[0]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn all_users_needs_the_tenant_typed_out_and_spares_protected_users() {
    let setup = Setup::new();
    let sim = Sim::start(&setup.scenario(
        "\
page_size: 2
users:
  - userPrincipalName: ana@contoso.com
  - userPrincipalName: ben@contoso.com
  - userPrincipalName: cho@contoso.com
  - userPrincipalName: dev@contoso.com
  - userPrincipalName: breakglass@contoso.com
",
    ));
    setup.rules(HIGH_RISK_RULE);
    let config = setup.config(
        &sim.url,
        "\
safety:
  dry_run: false
  protected_users: [breakglass@contoso.com]
",
        "",
    );
    let config = config.to_str().expect("utf-8");
    let dir = setup.dir.path();

    let (ok, _, stderr, code) = run_revokd(
        dir,
        &[
            "revoke",
            "--config",
            config,
            "--all-users",
            "--confirm-tenant",
            "00000000-0000-4000-8000-000000000bad",
            "--reason",
            "tenant-wide compromise",
        ],
    );
    assert!(!ok && code == Some(2), "{stderr}");
    assert!(
        stderr.contains("does not name a configured tenant"),
        "{stderr}"
    );
    assert!(revoked_users(&sim.record().await).is_empty());

    let (ok, _, stderr, _) = run_revokd(
        dir,
        &[
            "revoke",
            "--config",
            config,
            "--all-users",
            "--confirm-tenant",
            TENANT,
            "--reason",
            "tenant-wide compromise",
        ],
    );
    assert!(ok, "{stderr}");
    let record = sim.record().await;
    assert_eq!(revoked_users(&record).len(), 4, "{stderr}");
    let listed = record["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter(|r| {
            r["path_and_query"]
                .as_str()
                .is_some_and(|p| p.starts_with("/v1.0/users?"))
        })
        .count();
    assert_eq!(listed, 3, "five users at two per page");
    let db = audit_db(&setup.db()).await;
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM decisions WHERE mode = 'protected' \
             AND user_principal_name = 'breakglass@contoso.com'"
        )
        .await,
        1
    );
    assert!(stderr.contains("4 revoked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn confirm_compromised_goes_out_in_batches_and_rides_out_throttling() {
    let setup = Setup::new();
    let sim = Sim::start(&setup.scenario(
        "\
quotas:
  identity_protection: {limit: 1000, window: 1s}
generate:
  risky_users: {count: 10, level: high, state: atRisk, last_updated_ago: 5m}
faults:
  # Identity Protection throttles without Retry-After: revokd must back off by itself.
  - route: confirm_compromised
    kind: {type: throttle}
    times: 1
",
    ));
    setup.rules(
        "\
rules:
  - id: confirm-high-risk
    source: risky_users
    match:
      risk_level: [high]
      risk_state: [atRisk]
    actions: [revoke_sessions, confirm_compromised]
",
    );
    let config = setup.config(
        &sim.url,
        "\
safety:
  dry_run: false
executor:
  base_delay: 50ms
  confirm_batch_size: 4
",
        "    quotas:
      identity_protection: {requests: 1000, per: 1s}
",
    );
    let (ok, _, stderr, _) = run_revokd(
        setup.dir.path(),
        &["run", "--once", "--config", config.to_str().expect("utf-8")],
    );
    assert!(ok, "{stderr}");

    let record = sim.record().await;
    let confirms: Vec<&Value> = record["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter(|a| a["kind"] == "confirmCompromised")
        .collect();
    // Calls by request-id: the throttled first batch, then three accepted batches (4+4+2).
    let mut calls: BTreeMap<&str, (u64, usize)> = BTreeMap::new();
    for c in &confirms {
        let entry = calls
            .entry(c["client_request_id"].as_str().expect("crid"))
            .or_insert((c["status"].as_u64().expect("status"), 0));
        entry.1 += 1;
    }
    let accepted: Vec<usize> = calls.values().filter(|c| c.0 == 204).map(|c| c.1).collect();
    let mut sizes = accepted.clone();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![2, 4, 4], "{calls:?}");
    let throttled: Vec<usize> = calls.values().filter(|c| c.0 == 429).map(|c| c.1).collect();
    assert_eq!(throttled.len(), 1, "{calls:?}");
    let confirmed: BTreeSet<&str> = confirms
        .iter()
        .filter(|c| c["status"] == 204)
        .filter_map(|c| c["user_id"].as_str())
        .collect();
    assert_eq!(confirmed.len(), 10);

    // One attempt row per action, the batch's actions sharing the call's ids.
    let db = audit_db(&setup.db()).await;
    let attempts: Vec<ConfirmAttempt> = sqlx::query_as(
        "SELECT client_request_id, http_status, request_id, retry_reason FROM v_action_attempts \
         WHERE action = 'confirm_compromised' ORDER BY attempt_id",
    )
    .fetch_all(&db)
    .await
    .expect("attempts");
    assert_eq!(
        attempts.len(),
        10 + throttled[0],
        "10 accepted plus the throttled call's"
    );
    let mut per_call: BTreeMap<&str, Vec<&ConfirmAttempt>> = BTreeMap::new();
    for a in &attempts {
        per_call.entry(a.0.as_str()).or_default().push(a);
    }
    assert_eq!(per_call.len(), 4);
    for (crid, rows) in &per_call {
        assert_eq!(rows.len(), calls[crid].1, "{crid}");
        assert!(rows.iter().all(|r| r.1 == rows[0].1 && r.2 == rows[0].2));
    }
    let retried: Vec<&str> = attempts.iter().filter_map(|a| a.3.as_deref()).collect();
    assert_eq!(retried.len(), throttled[0], "{retried:?}");
    assert!(
        retried.iter().all(|r| r.starts_with("429 backoff")),
        "{retried:?}"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM actions WHERE status <> 'succeeded'"
        )
        .await,
        0
    );
}
