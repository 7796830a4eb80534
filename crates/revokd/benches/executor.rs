//! Executor drain rate against the quota floor: `revokd revoke --users-file` with N users on a
//! simulator that adds 200 ms to every revoke and enforces Graph's published directory_write
//! quota (3,000 per 150 s, i.e. 20/s). The floor is N / 20 s; the run reports the time from the
//! first revoke to the last as the simulator saw them, its ratio to the floor, the 429s served
//! and the failed actions. The same users are then revoked again with `executor.concurrency: 1`
//! (one call at a time, the way a `foreach` loop does it) for comparison.
//!
//! `cargo bench -p revokd --bench executor` (default 300 users); `EXECUTOR_BENCH_USERS` changes
//! the count, `EXECUTOR_BENCH_SERIAL=0` skips the one-at-a-time run.

use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

const TENANT: &str = "00000000-0000-4000-8000-0000000be7c4";
const CLIENT: &str = "66666666-6666-4666-8666-666666666666";
const SECRET: &str = "bench-secret-not-real";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Wall time from the first to the last successful revoke, 429s, and successful revokes.
fn measure(record: &sim::SimRecord) -> (Duration, usize, usize) {
    let ok: Vec<DateTime<Utc>> = record
        .actions
        .iter()
        .filter(|a| a.kind == "revokeSignInSessions" && a.status == 200)
        .map(|a| a.at)
        .collect();
    let span = match (ok.iter().min(), ok.iter().max()) {
        (Some(first), Some(last)) => (*last - *first).to_std().unwrap_or_default(),
        _ => Duration::ZERO,
    };
    let throttled = record.requests.iter().filter(|r| r.status == 429).count();
    (span, throttled, ok.len())
}

async fn run(users: u64, concurrency: u64) -> anyhow::Result<String> {
    let scenario = format!(
        "tenant_id: {TENANT}
clients:
  - {{client_id: {CLIENT}, client_secret: {SECRET}}}
generate:
  risky_users: {{count: {users}, level: low, state: atRisk, upn_pattern: \"user{{n}}@bench.example\"}}
faults:
  - {{route: revoke, kind: {{type: slow, delay: 200ms}}, times: 1000000}}
"
    );
    let simulator = sim::Simulator::new(sim::Scenario::from_yaml(&scenario, "bench")?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn({
        let (simulator, shutdown) = (simulator.clone(), shutdown.clone());
        async move { simulator.serve(listener, shutdown).await }
    });
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("rules"))?;
    // The command acts on the listed users only; the rule just makes the config complete.
    std::fs::write(
        dir.path().join("rules/high.yaml"),
        "rules:\n  - id: high\n    source: risky_users\n    match:\n      risk_level: [high]\n    actions: [revoke_sessions]\n",
    )?;
    let list: String = (1..=users)
        .map(|n| format!("user{n}@bench.example\n"))
        .collect();
    std::fs::write(dir.path().join("users.txt"), list)?;
    std::fs::write(
        dir.path().join("revokd.yaml"),
        format!(
            "store:\n  path: audit.db\nrules:\n  files: [rules]\nsafety:\n  dry_run: false\n\
             executor:\n  concurrency: {concurrency}\ntenants:\n  - tenant_id: {TENANT}\n    \
             authority_url: {url}\n    graph_url: {url}\n    auth:\n      client_id: {CLIENT}\n      \
             client_secret: {SECRET}\n"
        ),
    )?;
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_revokd"))
        .current_dir(dir.path())
        .args([
            "revoke",
            "--config",
            "revokd.yaml",
            "--users-file",
            "users.txt",
            "--reason",
            "bench",
            "--operator",
            "bench",
            "--max-actions",
            &users.to_string(),
        ])
        .output()?;
    let wall = started.elapsed();
    let (span, throttled, revoked) = measure(&simulator.record());
    shutdown.cancel();
    let _ = server.await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let users_n = usize::try_from(users).unwrap_or(usize::MAX);
    let failed = users_n - revoked.min(users_n);
    let floor = users as f64 / 20.0;
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("tenant "))
        .unwrap_or("");
    Ok(format!(
        "concurrency {concurrency}: {revoked}/{users} revoked, {failed} failed, {throttled} 429s; \
         first to last revoke {:.1} s = {:.3}x the floor of {floor:.1} s; whole command {:.1} s\n  {summary}",
        span.as_secs_f64(),
        span.as_secs_f64() / floor,
        wall.as_secs_f64(),
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let users = env_or("EXECUTOR_BENCH_USERS", 300).max(2);
    println!("{}", run(users, 8).await?);
    if env_or("EXECUTOR_BENCH_SERIAL", 1) != 0 {
        println!("{}", run(users, 1).await?);
    }
    Ok(())
}
