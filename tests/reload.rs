//! Hot reload: SIGHUP swaps in new rules atomically; a broken new version is rejected, audited,
//! and the rules in force keep running.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{
    E2E_APP, HIGH_RISK_RULES, Sim, audit_db, one_tenant_config, revoked_count, workspace,
};

const NO_MATCH: &str = "\
rules:
  - id: high-risk-users
    description: contain high-risk users
    source: risky_users
    match: {risk_level: [low], risk_state: [atRisk]}
    actions: [revoke_sessions]
";

fn hangup(pid: u32) {
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

async fn wait_for<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_rules_and_rejects_a_broken_version() {
    let sim = Sim::start("tests/fixtures/e2e-scenario.yaml");
    let config = one_tenant_config(
        &sim,
        &E2E_APP,
        "safety:\n  dry_run: false\n  protected_users: [breakglass@contoso.com]\npolling:\n  interval: 500ms\n  risky_users_mode: listing\n",
        "feeds: {risk_detections: false, sign_ins: false}\nquotas:\n  identity_protection_share: 1.0",
    );
    let dir = workspace(&config, NO_MATCH);
    let rules = dir.path().join("rules/rules.yaml");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_revokd"))
        .current_dir(dir.path())
        .args(["run", "--config", "revokd.yaml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("daemon starts");
    let db_path = dir.path().join("audit.db");
    wait_for("the first poll", || async {
        db_path.exists()
            && sim.record().await["requests"]
                .as_array()
                .is_some_and(|r| r.len() > 2)
    })
    .await;
    assert_eq!(revoked_count(&sim).await, 0, "the first rules match nobody");

    // A broken version is rejected and audited; the daemon keeps running the old rules.
    std::fs::write(&rules, HIGH_RISK_RULES.replace("[high]", "[high")).expect("broken rules");
    hangup(daemon.id());
    wait_for("the rejected reload", || async {
        events(&db_path, "reload_failed").await > 0
    })
    .await;
    assert!(
        daemon.try_wait().expect("status").is_none(),
        "the daemon is still running"
    );

    // A valid version is swapped in and acted on.
    std::fs::write(&rules, HIGH_RISK_RULES).expect("rules");
    hangup(daemon.id());
    wait_for("the reload", || async {
        events(&db_path, "reload").await > 0
    })
    .await;
    wait_for("the contained users", || async {
        revoked_count(&sim).await == 4
    })
    .await;

    let _ = daemon.kill();
    let _ = daemon.wait();
}

async fn events(db: &std::path::Path, kind: &str) -> i64 {
    if !db.exists() {
        return 0;
    }
    let pool = audit_db(db).await;
    let count: (i64,) = sqlx::query_as("SELECT count(*) FROM daemon_events WHERE kind = ?")
        .bind(kind)
        .fetch_one(&pool)
        .await
        .unwrap_or((0,));
    pool.close().await;
    count.0
}
