//! The blast-radius breaker end to end: 500 users go high risk at once with the breaker set to
//! 100. Exactly 100 are revoked, 400 are held and recorded, an alert reaches a webhook, the
//! breaker stays open across a restart (a manual revoke is held too), and `revokd resume`
//! releases the rest until every user is revoked.

#[path = "executor_support.rs"]
mod executor_support;
mod support;

use executor_support::{HIGH_RISK_RULE, Receiver, Setup, TENANT, count, revoked_users, run_revokd};
use support::{Sim, audit_db};

#[tokio::test(flavor = "multi_thread")]
async fn five_hundred_at_once_with_a_breaker_of_one_hundred() {
    let setup = Setup::new();
    // Quotas raised on both sides so 500 revokes take a few seconds, not 25.
    let scenario = setup.scenario(
        "\
quotas:
  identity_protection: {limit: 1000, window: 1s}
  directory_write: {limit: 10000, window: 1s}
  directory_read: {limit: 10000, window: 1s}
users:
  - userPrincipalName: late@contoso.com
generate:
  risky_users: {count: 500, level: high, state: atRisk, last_updated_ago: 5m}
",
    );
    let sim = Sim::start(&scenario);
    let hook = Receiver::start().await;
    setup.rules(HIGH_RISK_RULE);
    let config = setup.config(
        &sim.url,
        &format!(
            "\
safety:
  dry_run: false
  breaker: {{max_actions: 100, window: 10m}}
executor:
  concurrency: 16
  base_delay: 50ms
notify:
  - name: test-hook
    kind: generic
    url: {}
    events: [breaker_tripped]
",
            hook.url
        ),
        "    quotas:
      identity_protection: {requests: 1000, per: 1s}
      directory_write: {requests: 10000, per: 1s}
      directory_read: {requests: 10000, per: 1s}
",
    );
    let config = config.to_str().expect("utf-8 path");
    let dir = setup.dir.path();

    let (ok, _, stderr, _) = run_revokd(dir, &["run", "--once", "--config", config]);
    assert!(ok, "run --once failed:\n{stderr}");

    // Graph's side: exactly the first 100 users were revoked.
    let record = sim.record().await;
    assert_eq!(revoked_users(&record).len(), 100, "{stderr}");

    // The audit's side: 100 enforced, 400 held with their actions held, one trip.
    let db = audit_db(&setup.db()).await;
    let modes: Vec<(String, i64)> =
        sqlx::query_as("SELECT mode, count(*) FROM decisions GROUP BY mode ORDER BY mode")
            .fetch_all(&db)
            .await
            .expect("modes");
    assert_eq!(
        modes,
        vec![("enforce".to_string(), 100), ("held".to_string(), 400)]
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM actions WHERE status = 'held'").await,
        400
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM actions WHERE status = 'succeeded'"
        )
        .await,
        100
    );
    let held_reason: String =
        sqlx::query_scalar("SELECT reason FROM decisions WHERE mode = 'held' LIMIT 1")
            .fetch_one(&db)
            .await
            .expect("reason");
    assert!(
        held_reason.contains("blast-radius breaker"),
        "{held_reason}"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM daemon_events WHERE kind = 'breaker_tripped'"
        )
        .await,
        1
    );

    // The alert reached the webhook, once, naming the tenant and the limit.
    let alerts = hook.events("breaker_tripped");
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["tenant_id"], TENANT);
    assert_eq!(alerts[0]["details"]["max_actions"], 100);
    assert_eq!(alerts[0]["details"]["users_in_window"], 100);

    // A restart does not reset the breaker: it is still open, and a manual revoke is held.
    let (ok, stdout, stderr, _) = run_revokd(dir, &["resume", "--config", config, "--list"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("breaker OPEN"), "{stdout}");
    assert!(stdout.contains("400 held action(s)"), "{stdout}");
    let (ok, _, stderr, code) = run_revokd(
        dir,
        &[
            "revoke",
            "--config",
            config,
            "--user",
            "late@contoso.com",
            "--reason",
            "breaker test",
        ],
    );
    assert!(
        !ok && code == Some(1),
        "a held manual revoke exits 1:\n{stderr}"
    );
    assert!(stderr.contains("1 held by the breaker"), "{stderr}");
    assert_eq!(revoked_users(&sim.record().await).len(), 100);

    // An approval of listed actions releases exactly those, and refuses what is not held.
    let succeeded: i64 =
        sqlx::query_scalar("SELECT min(id) FROM actions WHERE status = 'succeeded'")
            .fetch_one(&db)
            .await
            .expect("a succeeded action");
    let held: i64 = sqlx::query_scalar("SELECT min(id) FROM actions WHERE status = 'held'")
        .fetch_one(&db)
        .await
        .expect("a held action");
    let (succeeded, held) = (succeeded.to_string(), held.to_string());
    let listed = |ids: &[&str]| {
        let mut args = vec!["resume", "--config", config];
        for id in ids {
            args.extend(["--action", id]);
        }
        run_revokd(dir, &args)
    };
    let (ok, _, stderr, code) = listed(&[held.as_str(), succeeded.as_str()]);
    assert!(!ok && code == Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("action {succeeded} is succeeded, not held")),
        "{stderr}"
    );
    assert_eq!(
        revoked_users(&sim.record().await).len(),
        100,
        "nothing released"
    );
    let (ok, _, stderr, _) = listed(&[held.as_str()]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("released 1 action(s) (listed); 1 succeeded"),
        "{stderr}"
    );
    assert_eq!(revoked_users(&sim.record().await).len(), 101);
    let (_, stdout, _, _) = run_revokd(dir, &["resume", "--config", config, "--list"]);
    assert!(
        stdout.contains("breaker OPEN"),
        "listed releases keep it open: {stdout}"
    );

    // Only a full `revokd resume` releases the rest; then every user is revoked.
    let (ok, _, stderr, _) = run_revokd(dir, &["resume", "--config", config]);
    assert!(ok, "resume failed:\n{stderr}");
    assert!(
        stderr.contains("released 400 action(s) (all held; breaker closed); 400 succeeded"),
        "{stderr}"
    );
    let record = sim.record().await;
    assert_eq!(revoked_users(&record).len(), 501);
    let per_user_successes = record["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter(|a| a["status"] == 200)
        .count();
    assert_eq!(per_user_successes, 501, "no user was revoked twice");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM actions WHERE status <> 'succeeded'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM daemon_events WHERE kind = 'breaker_resumed' \
             AND json_extract(detail_json, '$.operator') = 'test-operator'"
        )
        .await,
        1
    );
    // Every read-back confirmed its revoke.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM verifications WHERE outcome = 'confirmed'"
        )
        .await,
        501
    );
    let store = store::Store::open_read_only(&setup.db())
        .await
        .expect("store");
    let chain = store.verify_chain().await.expect("verify");
    assert!(chain.is_intact(), "{chain:?}");

    // The daemon's next cycle finds nothing left to do.
    let (ok, _, stderr, _) = run_revokd(dir, &["run", "--once", "--config", config]);
    assert!(ok, "{stderr}");
    assert_eq!(revoked_users(&sim.record().await).len(), 501);
}
