//! Feed ingestion against the simulator: late records inside the overlap are caught, a
//! republished record is evaluated again but acted on once, a failed page leaves the cursor
//! where it was, and a run interrupted mid-window neither skips nor double-acts.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{
    DIRECTORY_APP, E2E_APP, FEEDS_APP, HIGH_RISK_RULES, POST_CONTAINMENT_APP, Sim, audit_db,
    one_tenant_config, revoked_count, run_once, workspace,
};

const RULES: &str = "\
rules:
  - id: suspicious-network
    description: sign-ins from the suspicious network
    source: sign_ins
    match:
      ip_address: [203.0.113.0/24]
    actions: [revoke_sessions]
  - id: risky-sign-in
    description: sign-ins Identity Protection rates high risk
    source: sign_ins
    match:
      risk_level_aggregated: [high]
    actions: [revoke_sessions]
";

struct Setup {
    sim: Sim,
    dir: tempfile::TempDir,
}

fn setup(overlap: &str) -> Setup {
    let sim = Sim::start("tests/fixtures/feeds-scenario.yaml");
    let config = one_tenant_config(
        &sim,
        &FEEDS_APP,
        &format!(
            "safety:\n  dry_run: false\npolling:\n  overlap: {overlap}\nexecutor:\n  base_delay: 10ms\n  max_delay: 50ms\n  max_attempts: 3\n"
        ),
        "feeds: {risky_users: false, risk_detections: false, sign_ins: true}\nquotas:\n  reports: {requests: 100, per: 1s}",
    );
    let dir = workspace(&config, RULES);
    Setup { sim, dir }
}

impl Setup {
    fn run_once(&self) -> std::process::Output {
        run_once(self.dir.path())
    }

    async fn revoked(&self) -> Vec<String> {
        let record = self.sim.record().await;
        let mut users: Vec<String> = record["actions"]
            .as_array()
            .expect("actions")
            .iter()
            .filter(|a| a["kind"] == "revokeSignInSessions" && a["status"] == 200)
            .map(|a| a["user"].as_str().expect("user").to_string())
            .collect();
        users.sort();
        users
    }
}

fn succeeded(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "revokd failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn user_ids(setup: &Setup, upns: &[&str]) -> Vec<String> {
    let db = audit_db(&setup.dir.path().join("audit.db")).await;
    let mut ids = Vec::new();
    for upn in upns {
        let id: (String,) =
            sqlx::query_as("SELECT DISTINCT user_id FROM decisions WHERE user_principal_name = ?")
                .bind(upn)
                .fetch_one(&db)
                .await
                .unwrap_or_else(|e| panic!("no decision for {upn}: {e}"));
        ids.push(id.0);
    }
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn late_records_inside_the_overlap_are_caught() {
    let setup = setup("10m");
    succeeded(&setup.run_once());
    tokio::time::sleep(Duration::from_millis(3_300)).await;
    succeeded(&setup.run_once());
    let expected = user_ids(
        &setup,
        &[
            "early@contoso.com",
            "page2@contoso.com",
            "page3@contoso.com",
            "late@contoso.com",
            "enriched@contoso.com",
        ],
    )
    .await;
    assert_eq!(setup.revoked().await, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_overlap_a_late_record_is_missed() {
    // The control for the test above: the overlap is what catches late records.
    let setup = setup("0s");
    succeeded(&setup.run_once());
    tokio::time::sleep(Duration::from_millis(3_300)).await;
    succeeded(&setup.run_once());
    let db = audit_db(&setup.dir.path().join("audit.db")).await;
    let late: (i64,) = sqlx::query_as(
        "SELECT count(*) FROM decisions WHERE user_principal_name = 'late@contoso.com'",
    )
    .fetch_one(&db)
    .await
    .expect("count");
    assert_eq!(late.0, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_republished_sign_in_is_evaluated_again_and_acted_on_once() {
    let setup = setup("10m");
    succeeded(&setup.run_once());
    let db = audit_db(&setup.dir.path().join("audit.db")).await;
    let before: (i64,) = sqlx::query_as(
        "SELECT count(*) FROM decisions WHERE user_principal_name = 'enriched@contoso.com'",
    )
    .fetch_one(&db)
    .await
    .expect("count");
    assert_eq!(before.0, 0, "the clean first version matches no rule");

    tokio::time::sleep(Duration::from_millis(3_300)).await;
    succeeded(&setup.run_once());
    succeeded(&setup.run_once());

    let decisions: Vec<(String, String)> = sqlx::query_as(
        "SELECT rule_id, mode FROM decisions WHERE user_principal_name = 'enriched@contoso.com'",
    )
    .fetch_all(&db)
    .await
    .expect("decisions");
    assert_eq!(
        decisions,
        vec![("risky-sign-in".to_string(), "enforce".to_string())]
    );
    let enriched = user_ids(&setup, &["enriched@contoso.com"]).await;
    let revoked = setup.revoked().await;
    assert_eq!(
        revoked.iter().filter(|u| **u == enriched[0]).count(),
        1,
        "{revoked:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_page_keeps_the_cursor_and_the_rerun_neither_skips_nor_double_acts() {
    let setup = setup("10m");
    // The second page stays malformed for every attempt of the first run (max_attempts 3).
    inject(
        &setup.sim,
        serde_json::json!({"route": "sign_ins", "kind": {"type": "malformed"}, "skip": 1, "times": 3}),
    )
    .await;
    let first = setup.run_once();
    assert_eq!(
        first.status.code(),
        Some(1),
        "a failed feed makes --once fail"
    );

    let db = audit_db(&setup.dir.path().join("audit.db")).await;
    let cursor: Option<(String,)> =
        sqlx::query_as("SELECT watermark FROM cursors WHERE feed = 'sign_ins'")
            .fetch_optional(&db)
            .await
            .expect("cursor query");
    assert!(
        cursor.is_none(),
        "the cursor must not move past a failed page"
    );
    let failure: (String,) =
        sqlx::query_as("SELECT detail_json FROM daemon_events WHERE kind = 'poll_failed'")
            .fetch_one(&db)
            .await
            .expect("the failed poll is recorded");
    let detail: Value = serde_json::from_str(&failure.0).expect("JSON");
    assert!(detail["request_id"].is_string(), "{detail}");
    let revoked_before = setup.revoked().await.len();
    assert!(
        revoked_before >= 1,
        "page 1 was decided and acted on before page 2 failed"
    );

    // The fault is spent: the rerun reads the whole window again.
    succeeded(&setup.run_once());
    let expected = user_ids(
        &setup,
        &[
            "early@contoso.com",
            "page2@contoso.com",
            "page3@contoso.com",
        ],
    )
    .await;
    let revoked = setup.revoked().await;
    let mut unique = revoked.clone();
    unique.dedup();
    assert_eq!(revoked, unique, "nobody revoked twice");
    assert!(
        expected.iter().all(|u| revoked.contains(u)),
        "{revoked:?} vs {expected:?}"
    );
}

async fn inject(sim: &Sim, fault: Value) {
    let status = graph::http_client(Duration::from_secs(5))
        .expect("client")
        .post(format!("{}/_sim/faults", sim.url))
        .json(&fault)
        .send()
        .await
        .expect("fault injected")
        .status();
    assert!(status.is_success(), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_tenant_never_stalls_another() {
    let broken = Sim::start("tests/fixtures/feeds-scenario.yaml");
    let healthy = Sim::start("tests/fixtures/e2e-scenario.yaml");
    let config = format!(
        "\
store:
  path: audit.db
rules:
  files: [rules]
safety:
  dry_run: false
  protected_users: [breakglass@contoso.com]
executor:
  max_attempts: 2
  base_delay: 10ms
tenants:
  - name: broken
    tenant_id: 00000000-0000-4000-8000-00000000fee0
    authority_url: {broken}
    graph_url: {broken}
    auth: {{client_id: 33333333-3333-4333-8333-333333333333, client_secret: wrong-secret}}
  - name: healthy
    tenant_id: 00000000-0000-4000-8000-0000000e2e00
    authority_url: {healthy}
    graph_url: {healthy}
    auth: {{client_id: 22222222-2222-4222-8222-222222222222, client_secret: e2e-secret-not-real}}
    feeds: {{risk_detections: false, sign_ins: false}}
",
        broken = broken.url,
        healthy = healthy.url
    );
    let dir = workspace(&config, HIGH_RISK_RULES);
    let out = run_once(dir.path());
    assert_eq!(out.status.code(), Some(1), "one tenant failed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("AADSTS7000215"),
        "the auth error is named: {stderr}"
    );
    assert!(
        !stderr.contains("wrong-secret"),
        "the secret is never logged"
    );
    assert_eq!(
        revoked_count(&healthy).await,
        4,
        "the healthy tenant contained its users"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn risky_users_falls_back_to_a_full_listing_when_the_window_filter_is_refused() {
    let sim = Sim::start("tests/fixtures/e2e-scenario.yaml");
    // The first riskyUsers request (the time-window filter) is refused with a 400.
    inject(
        &sim,
        serde_json::json!({"route": "risky_users", "kind": {"type": "status", "code": 400}}),
    )
    .await;
    let config = one_tenant_config(
        &sim,
        &E2E_APP,
        "safety:\n  dry_run: false\n  protected_users: [breakglass@contoso.com]\n",
        "feeds: {risk_detections: false, sign_ins: false}",
    );
    let dir = workspace(&config, HIGH_RISK_RULES);
    succeeded(&run_once(dir.path()));

    let record = sim.record().await;
    let risky: Vec<&str> = record["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter_map(|r| r["path_and_query"].as_str())
        .filter(|p| p.starts_with("/v1.0/identityProtection/riskyUsers"))
        .collect();
    assert!(risky[0].contains("riskLastUpdatedDateTime"), "{risky:?}");
    assert!(
        risky.last().expect("a listing").contains("riskState"),
        "{risky:?}"
    );
    assert_eq!(
        revoked_count(&sim).await,
        4,
        "the listing found every high-risk user"
    );

    let db = audit_db(&dir.path().join("audit.db")).await;
    let mode: (String,) = sqlx::query_as(
        "SELECT json_extract(detail_json, '$.mode') FROM daemon_events WHERE kind = 'feed_mode'",
    )
    .fetch_one(&db)
    .await
    .expect("the mode switch is audited");
    assert_eq!(mode.0, "listing");
}

#[tokio::test(flavor = "multi_thread")]
async fn protected_groups_are_never_actioned_and_an_unreadable_membership_is_held() {
    let sim = Sim::start("tests/fixtures/directory-scenario.yaml");
    let config = one_tenant_config(
        &sim,
        &DIRECTORY_APP,
        "safety:\n  dry_run: false\n  protected_groups: [tier 0 admins]\nexecutor:\n  max_attempts: 2\n  base_delay: 10ms\n",
        "feeds: {risk_detections: false, sign_ins: false}",
    );
    let dir = workspace(&config, HIGH_RISK_RULES);
    succeeded(&run_once(dir.path()));

    let db = audit_db(&dir.path().join("audit.db")).await;
    let modes: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT user_principal_name, mode, reason FROM decisions ORDER BY user_principal_name",
    )
    .fetch_all(&db)
    .await
    .expect("decisions");
    let mode_of = |upn: &str| {
        modes
            .iter()
            .find(|m| m.0 == upn)
            .map(|m| (m.1.as_str(), m.2.clone().unwrap_or_default()))
            .unwrap_or_else(|| panic!("no decision for {upn}: {modes:?}"))
    };
    assert_eq!(mode_of("alice@contoso.com").0, "enforce");
    assert_eq!(mode_of("bob@contoso.com").0, "enforce");
    let admin = mode_of("admin@contoso.com");
    assert_eq!(admin.0, "protected");
    assert!(admin.1.contains("tier 0 admins"), "{admin:?}");
    let carol = mode_of("carol@contoso.com");
    assert_eq!(
        carol.0, "held",
        "unknown protection is held, never enforced"
    );
    assert!(
        carol.1.contains("protection cannot be decided"),
        "{carol:?}"
    );

    let record = sim.record().await;
    let revoked: Vec<&str> = record["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter(|a| a["status"] == 200)
        .filter_map(|a| a["user"].as_str())
        .collect();
    assert_eq!(revoked.len(), 2, "{revoked:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn non_interactive_sign_ins_are_read_from_beta_when_enabled() {
    let setup = setup("10m");
    let quiet = "feeds: {risky_users: false, risk_detections: false, sign_ins: true}";
    let config = std::fs::read_to_string(setup.dir.path().join("revokd.yaml")).expect("config");
    assert!(config.contains(quiet));
    std::fs::write(
        setup.dir.path().join("revokd.yaml"),
        config.replace(
            quiet,
            "feeds: {risky_users: false, risk_detections: false, sign_ins: true, non_interactive_sign_ins: true}",
        ),
    )
    .expect("config");
    succeeded(&setup.run_once());

    let record = setup.sim.record().await;
    let beta: Vec<&str> = record["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter_map(|r| r["path_and_query"].as_str())
        .filter(|p| p.starts_with("/beta/auditLogs/signIns"))
        .collect();
    assert!(!beta.is_empty(), "the beta feed was polled");
    assert!(beta[0].contains("nonInteractiveUser"), "{beta:?}");
    let quiet_id = user_ids(&setup, &["quiet@contoso.com"]).await;
    assert!(
        setup.revoked().await.contains(&quiet_id[0]),
        "the refresh-token use was caught"
    );
    let db = audit_db(&setup.dir.path().join("audit.db")).await;
    let source: (String,) = sqlx::query_as(
        "SELECT source FROM decisions WHERE user_principal_name = 'quiet@contoso.com'",
    )
    .fetch_one(&db)
    .await
    .expect("decision");
    assert_eq!(source.0, "non_interactive_sign_ins");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_successful_sign_in_after_containment_is_its_own_event() {
    let sim = Sim::start("tests/fixtures/post-containment-scenario.yaml");
    let rules = format!(
        "{HIGH_RISK_RULES}  - id: signed-in-after-containment
    description: the attacker holds another credential; disable the account
    source: post_containment
    match: {{status: success}}
    actions: [disable_account]
"
    );
    let config = one_tenant_config(
        &sim,
        &POST_CONTAINMENT_APP,
        "safety:\n  dry_run: false\n",
        "feeds: {risk_detections: false}\nquotas:\n  identity_protection_share: 1.0\n  reports: {requests: 100, per: 1s}",
    );
    let dir = workspace(&config, &rules);
    succeeded(&run_once(dir.path()));
    assert_eq!(revoked_count(&sim).await, 1, "contained");
    tokio::time::sleep(Duration::from_millis(3_300)).await;
    succeeded(&run_once(dir.path()));

    let record = sim.record().await;
    let disabled = record["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter(|a| a["kind"] == "updateUser" && a["status"] == 204)
        .count();
    assert_eq!(
        disabled, 1,
        "only the sign-in after containment escalates: {record:#}"
    );
    let db = audit_db(&dir.path().join("audit.db")).await;
    let sources: Vec<(String, String)> =
        sqlx::query_as("SELECT source, rule_id FROM decisions ORDER BY id")
            .fetch_all(&db)
            .await
            .expect("decisions");
    assert_eq!(
        sources,
        vec![
            ("risky_users".to_string(), "high-risk-users".to_string()),
            (
                "post_containment".to_string(),
                "signed-in-after-containment".to_string()
            ),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_read_the_users_directory_attributes() {
    let sim = Sim::start("tests/fixtures/directory-scenario.yaml");
    let rules = "\
rules:
  - id: sales-risky-users
    description: high-risk users of the Sales department
    source: risky_users
    condition: riskyUser.riskLevel == 'high' && user.department == 'Sales'
    actions: [revoke_sessions]
";
    let config = one_tenant_config(
        &sim,
        &DIRECTORY_APP,
        "safety:\n  dry_run: false\nexecutor:\n  max_attempts: 2\n  base_delay: 10ms\n",
        "feeds: {risk_detections: false, sign_ins: false}",
    );
    let dir = workspace(&config, rules);
    succeeded(&run_once(dir.path()));
    let db = audit_db(&dir.path().join("audit.db")).await;
    let decided: Vec<(String, String)> =
        sqlx::query_as("SELECT user_principal_name, explanation_json FROM decisions")
            .fetch_all(&db)
            .await
            .expect("decisions");
    assert_eq!(decided.len(), 1, "{decided:?}");
    assert_eq!(decided[0].0, "bob@contoso.com");
    assert!(
        decided[0].1.contains("Sales"),
        "the explanation shows the value: {}",
        decided[0].1
    );
    let lookups = sim.record().await["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter(|r| {
            r["path_and_query"].as_str().is_some_and(|p| {
                p.starts_with("/v1.0/users/") && (p.contains("$select") || p.contains("%24select"))
            })
        })
        .count();
    assert!(
        lookups >= 3,
        "each risky user was looked up once: {lookups}"
    );
    assert_eq!(revoked_count(&sim).await, 1);
}
