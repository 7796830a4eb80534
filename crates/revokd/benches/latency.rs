//! Detection-to-containment latency: the simulator makes a high-risk user visible at a recorded
//! instant (its riskLastUpdatedDateTime), the daemon polls riskyUsers every `--interval`, and the
//! simulator records when the revoke arrives. Reports p50/p99/max of (revoke - visible).
//!
//! `cargo bench -p revokd --bench latency` (defaults: 100 injections, 2 s interval).
//! `LATENCY_INJECTIONS=N LATENCY_INTERVAL_MS=M` change them.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

const TENANT: &str = "00000000-0000-4000-8000-0000000be0c0";
const CLIENT: &str = "44444444-4444-4444-8444-444444444444";
const SECRET: &str = "bench-secret-not-real";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Users turn high-risk one by one, at spacings that do not divide the poll interval, so the
/// injections land at every phase of the polling cycle.
fn scenario(injections: u64) -> String {
    let mut yaml = format!(
        "tenant_id: {TENANT}\nclients:\n  - {{client_id: {CLIENT}, client_secret: {SECRET}}}\nusers:\n"
    );
    for n in 0..injections {
        let after_ms = 1_000 + n * 2_317;
        writeln!(
            yaml,
            "  - userPrincipalName: user{n}@contoso.com\n    risk: {{level: high, state: atRisk}}\n    appears_after: {after_ms}ms"
        )
        .expect("writing to a String cannot fail");
    }
    yaml
}

fn config(sim_url: &str, store: &Path, interval_ms: u64) -> String {
    format!(
        "\
store:
  path: {store}
rules:
  files: [rules]
safety:
  dry_run: false
  # Every injection is a separate incident here; the breaker would hold them past its limit.
  breaker: {{max_actions: 100000, window: 10m}}
polling:
  interval: {interval_ms}ms
tenants:
  - tenant_id: {TENANT}
    authority_url: {sim_url}
    graph_url: {sim_url}
    auth: {{client_id: {CLIENT}, client_secret: {SECRET}}}
    feeds: {{risky_users: true, risk_detections: false, sign_ins: false}}
",
        store = store.display()
    )
}

const RULES: &str = "\
rules:
  - id: high-risk-users
    description: contain high-risk users
    source: risky_users
    match: {risk_level: [high], risk_state: [atRisk]}
    actions: [revoke_sessions]
";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let injections = env_or("LATENCY_INJECTIONS", 100);
    let interval_ms = env_or("LATENCY_INTERVAL_MS", 2_000);
    let scenario = sim::Scenario::from_yaml(&scenario(injections), "latency-scenario")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim_url = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let simulator = sim::Simulator::new(scenario);
    let server = tokio::spawn({
        let (simulator, shutdown) = (simulator.clone(), shutdown.clone());
        async move { simulator.serve(listener, shutdown).await }
    });

    let dir = tempfile::tempdir()?;
    let loaded = engine::config::from_parts(
        &config(&sim_url, &dir.path().join("audit.db"), interval_ms),
        "latency.yaml",
        dir.path(),
        vec![rules::SourceFile {
            origin: "rules.yaml".into(),
            text: RULES.into(),
        }],
        Vec::new(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let engine = engine::Engine::start(&loaded).await?;
    let daemon = tokio::spawn({
        let (engine, shutdown) = (engine.clone(), shutdown.clone());
        async move { engine.run(shutdown).await }
    });
    let last_visible = Duration::from_millis(1_000 + (injections - 1) * 2_317);
    eprintln!(
        "latency: {injections} injections, poll interval {interval_ms} ms, about {} s",
        (last_visible.as_millis() as u64 + 2 * interval_ms) / 1000
    );
    tokio::time::sleep(last_visible + Duration::from_millis(2 * interval_ms + 500)).await;
    shutdown.cancel();
    daemon.await??;
    server.await??;

    let record = simulator.record();
    let visible = visible_instants(&dir.path().join("audit.db")).await?;
    let mut latencies: Vec<f64> = record
        .actions
        .iter()
        .filter(|a| a.kind == "revokeSignInSessions" && a.status == 200)
        .filter_map(|a| {
            let user = a.user_id.as_deref().unwrap_or(&a.user);
            visible
                .get(user)
                .map(|v| (a.at - *v).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6)
        })
        .collect();
    anyhow::ensure!(
        latencies.len() as u64 == injections,
        "{} of {injections} users were revoked",
        latencies.len()
    );
    latencies.sort_by(f64::total_cmp);
    let (p50, p99, max) = (
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies[latencies.len() - 1],
    );
    let target = interval_ms as f64 / 1000.0 + 0.250;
    println!(
        "latency: n={} p50={p50:.3}s p99={p99:.3}s max={max:.3}s (target p99 <= {target:.3}s: {})",
        latencies.len(),
        if p99 <= target { "met" } else { "MISSED" }
    );
    Ok(())
}

/// Each user's visible instant is the riskLastUpdatedDateTime the simulator published, read back
/// from the decision's triggering record in the audit database.
async fn visible_instants(db: &Path) -> anyhow::Result<HashMap<String, DateTime<Utc>>> {
    let pool = sqlx::SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db)
            .read_only(true),
    )
    .await?;
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT user_id, record_json FROM decisions")
        .fetch_all(&pool)
        .await?;
    let mut visible = HashMap::new();
    for (user, record) in rows {
        let record: serde_json::Value = serde_json::from_str(&record)?;
        if let Some(t) = record["riskLastUpdatedDateTime"].as_str() {
            visible.insert(user, DateTime::parse_from_rfc3339(t)?.with_timezone(&Utc));
        }
    }
    Ok(visible)
}
