//! Scale run: many simulated tenants, each with a steady stream of sign-ins, polled by one
//! `revokd run` process. Reports the daemon's CPU time (as a share of one core) and peak RSS,
//! read from /proc, and every 429 the simulators answered (a tenant exceeding its quotas).
//!
//! `cargo bench -p revokd --bench scale` (defaults: 50 tenants, 10,000 sign-ins per hour each,
//! 10 minutes). `SCALE_TENANTS`, `SCALE_MINUTES`, `SCALE_SIGNINS_PER_HOUR` change them.

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn tenant_id(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

fn scenario(n: u64, sign_ins: u64, minutes: u64) -> String {
    format!(
        "tenant_id: {tenant}
clients:
  - {{client_id: 55555555-5555-4555-8555-555555555555, client_secret: scale-secret-not-real}}
generate:
  risky_users: {{count: 20, level: medium, state: atRisk, upn_pattern: \"risky{{n}}@t{n}.example\"}}
  sign_ins: {{count: {sign_ins}, users: 500, arrive_over: {minutes}m, upn_pattern: \"user{{n}}@t{n}.example\"}}
",
        tenant = tenant_id(n)
    )
}

/// (utime + stime) in seconds and VmHWM in MiB of a live process.
fn usage(pid: u32) -> anyhow::Result<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    let hz: f64 = String::from_utf8(Command::new("getconf").arg("CLK_TCK").output()?.stdout)?
        .trim()
        .parse()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hwm_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or("0")
        .parse()?;
    Ok((ticks / hz, hwm_kib / 1024.0))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let tenants = env_or("SCALE_TENANTS", 50);
    let minutes = env_or("SCALE_MINUTES", 10);
    let per_hour = env_or("SCALE_SIGNINS_PER_HOUR", 10_000);
    let sign_ins = per_hour * minutes / 60;
    let shutdown = CancellationToken::new();
    let dir = tempfile::tempdir()?;
    let mut config = format!(
        "store:\n  path: {}\nrules:\n  files: [rules]\nsafety:\n  dry_run: true\ntenants:\n",
        dir.path().join("audit.db").display()
    );
    let mut sims = Vec::new();
    let mut servers = Vec::new();
    for n in 1..=tenants {
        let simulator = sim::Simulator::new(sim::Scenario::from_yaml(
            &scenario(n, sign_ins, minutes),
            "scale",
        )?);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        servers.push(tokio::spawn({
            let (simulator, shutdown) = (simulator.clone(), shutdown.clone());
            async move { simulator.serve(listener, shutdown).await }
        }));
        sims.push(simulator);
        write!(
            config,
            "  - tenant_id: {}\n    authority_url: {url}\n    graph_url: {url}\n    auth: {{client_id: 55555555-5555-4555-8555-555555555555, client_secret: scale-secret-not-real}}\n",
            tenant_id(n)
        )?;
    }
    std::fs::create_dir(dir.path().join("rules"))?;
    std::fs::write(
        dir.path().join("rules/rules.yaml"),
        "rules:\n  - id: suspicious-network\n    description: sign-ins from the suspicious network\n    source: sign_ins\n    match: {ip_address: [203.0.113.0/24]}\n    actions: [revoke_sessions]\n",
    )?;
    std::fs::write(dir.path().join("revokd.yaml"), &config)?;

    let mut child = Command::new(env!("CARGO_BIN_EXE_revokd"))
        .args(["run", "--config"])
        .arg(dir.path().join("revokd.yaml"))
        .env("REVOKD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    eprintln!(
        "scale: {tenants} tenants, {per_hour} sign-ins/hour each ({sign_ins} over {minutes} min), polling every 60 s"
    );
    let started = Instant::now();
    let run_for = Duration::from_secs(minutes * 60);
    let mut peak_rss: f64 = 0.0;
    while started.elapsed() < run_for {
        tokio::time::sleep(Duration::from_secs(5)).await;
        peak_rss = peak_rss.max(usage(child.id())?.1);
    }
    let (cpu, hwm) = usage(child.id())?;
    let wall = started.elapsed().as_secs_f64();
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()?;
    child.wait()?;
    shutdown.cancel();
    for server in servers {
        server.await??;
    }

    let (mut requests, mut throttled, mut signin_pages) = (0usize, 0usize, 0usize);
    for simulator in &sims {
        let record = simulator.record();
        requests += record.requests.len();
        throttled += record.requests.iter().filter(|r| r.status == 429).count();
        signin_pages += record
            .requests
            .iter()
            .filter(|r| r.path_and_query.starts_with("/v1.0/auditLogs/signIns") && r.status == 200)
            .count();
    }
    println!(
        "scale: tenants={tenants} wall={wall:.0}s cpu={cpu:.1}s ({:.2}% of one core) peak_rss={:.1}MiB requests={requests} signin_pages={signin_pages} throttled_429={throttled}",
        100.0 * cpu / wall,
        hwm.max(peak_rss)
    );
    Ok(())
}
