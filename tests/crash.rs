//! Outbox durability: the daemon is SIGKILLed at random moments while it decides and drains
//! 300 revocations, again and again; after a last, uninterrupted run every decided action has
//! completed, none is lost or doubled in the store, the simulator saw every user revoked, every
//! call the simulator saw is in the audit (attempts are written before their call), and a call
//! repeated after a kill says so in its retry reason.
//!
//! `REVOKD_CRASH_TRIALS` sets the number of kills (20 by default) and `REVOKD_CRASH_USERS` the
//! number of users (300); the soak run in BENCHMARKS.md uses more of both.

#[path = "executor_support.rs"]
mod executor_support;
mod support;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use executor_support::{HIGH_RISK_RULE, Setup, count, revoked_users, run_revokd};
use rand::Rng;
use support::{Sim, audit_db};

/// (action id, user id, attempt no, finished?, http status, retry reason, client-request-id)
type Attempt = (i64, String, i64, bool, Option<i64>, Option<String>, String);

#[tokio::test(flavor = "multi_thread")]
async fn killed_at_random_moments_nothing_is_lost() {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let trials = env("REVOKD_CRASH_TRIALS", 20);
    let users = env("REVOKD_CRASH_USERS", 300);
    let setup = Setup::new();
    let scenario = setup.scenario(&format!(
        "\
quotas:
  identity_protection: {{limit: 1000, window: 1s}}
  directory_write: {{limit: 10000, window: 1s}}
  directory_read: {{limit: 10000, window: 1s}}
generate:
  risky_users: {{count: {users}, level: high, state: atRisk, last_updated_ago: 5m}}
"
    ));
    let sim = Sim::start(&scenario);
    setup.rules(HIGH_RISK_RULE);
    // The drain is paced at 50 revokes/s by the client's own limiter, so the whole job takes
    // about six seconds of several runs, and kills land while decisions are written and while
    // calls are out.
    let config = setup.config(
        &sim.url,
        "\
safety:
  dry_run: false
  breaker: {max_actions: 1000, window: 10m}
executor:
  concurrency: 8
  base_delay: 20ms
",
        "    quotas:
      identity_protection: {requests: 1000, per: 1s}
      directory_write: {requests: 50, per: 1s}
      directory_read: {requests: 10000, per: 1s}
",
    );
    let config = config.to_str().expect("utf-8 path").to_string();
    let dir = setup.dir.path();
    let started = Instant::now();
    let mut rng = rand::rng();
    let mut finished_early = 0;
    for _ in 0..trials {
        let mut child = Command::new(env!("CARGO_BIN_EXE_revokd"))
            .current_dir(dir)
            .args(["run", "--once", "--config", &config])
            .env_remove("REVOKD_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("revokd starts");
        let wait = Duration::from_millis(rng.random_range(20..=900));
        std::thread::sleep(wait);
        // SIGKILL: no shutdown path runs, whatever the process was doing.
        match child.try_wait().expect("status") {
            Some(_) => finished_early += 1,
            None => child.kill().expect("SIGKILL"),
        }
        let _ = child.wait();
    }
    let killed_for = started.elapsed();

    let (ok, _, stderr, _) = run_revokd(dir, &["run", "--once", "--config", &config]);
    assert!(ok, "the final run failed:\n{stderr}");

    let db = audit_db(&setup.db()).await;
    // Every decided action completed; one decision and one action per user, none doubled.
    assert_eq!(
        count(&db, "SELECT count(*) FROM decisions").await,
        users as i64
    );
    assert_eq!(
        count(&db, "SELECT count(DISTINCT user_id) FROM decisions").await,
        users as i64
    );
    let statuses: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM actions GROUP BY status")
            .fetch_all(&db)
            .await
            .expect("statuses");
    assert_eq!(statuses, vec![("succeeded".to_string(), users as i64)]);

    // The simulator revoked exactly the users the store decided on.
    let record = sim.record().await;
    let decided: BTreeSet<String> = sqlx::query_scalar("SELECT user_id FROM decisions")
        .fetch_all(&db)
        .await
        .expect("users")
        .into_iter()
        .collect();
    assert_eq!(revoked_users(&record), decided);

    // Every revoke call the simulator received was recorded as an attempt before it was made,
    // and every answered attempt matches what the simulator answered.
    let attempts: Vec<Attempt> = sqlx::query_as(
        "SELECT action_id, user_id, attempt_no, finished_at IS NOT NULL, http_status,
                retry_reason, client_request_id
         FROM v_action_attempts ORDER BY action_id, attempt_no",
    )
    .fetch_all(&db)
    .await
    .expect("attempts");
    let audited: HashSet<&str> = attempts.iter().map(|a| a.6.as_str()).collect();
    let mut sim_status: BTreeMap<&str, i64> = BTreeMap::new();
    for call in record["actions"].as_array().expect("actions") {
        let crid = call["client_request_id"]
            .as_str()
            .expect("client-request-id");
        assert!(audited.contains(crid), "a call with no attempt row: {call}");
        sim_status.insert(crid, call["status"].as_i64().expect("status"));
    }
    for a in attempts.iter().filter(|a| a.4.is_some()) {
        assert_eq!(sim_status.get(a.6.as_str()).copied(), a.4, "{a:?}");
    }

    // An attempt cut off by a kill (no outcome) is followed by one recorded as a repeat.
    let mut repeats = 0;
    for pair in attempts.windows(2) {
        let (cut, next) = (&pair[0], &pair[1]);
        if cut.0 == next.0 && !cut.3 {
            let reason = next.5.as_deref().unwrap_or_default();
            assert!(reason.starts_with("repeat:"), "{next:?} after {cut:?}");
            repeats += 1;
        }
    }
    let store = store::Store::open_read_only(&setup.db())
        .await
        .expect("store");
    let chain = store.verify_chain().await.expect("verify");
    assert!(chain.is_intact(), "{chain:?}");
    eprintln!(
        "{trials} kills in {killed_for:?} ({finished_early} runs ended before their kill); \
         {} attempts for {users} actions, {repeats} repeated after a kill",
        attempts.len()
    );
}
