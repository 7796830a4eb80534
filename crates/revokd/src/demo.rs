//! `revokd demo`: the whole pipeline on the built-in simulator, with the example config and the
//! default rule pack, both embedded in the binary so the demo needs no files and no tenant.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use tokio_util::sync::CancellationToken;

use crate::Outcome;

const EXAMPLE_CONFIG: (&str, &str) = (
    "config/revokd.example.yaml",
    include_str!("../../../config/revokd.example.yaml"),
);
include!(concat!(env!("OUT_DIR"), "/rule_pack.rs"));
/// When the demo scenario's late arrivals (a user turning high-risk, its sign-in and detection,
/// `appears_after: 10s` in config/scenarios/demo.yaml) are all visible, plus a margin.
const LATE_ARRIVALS_BY: Duration = Duration::from_millis(10_500);

/// Human-readable progress on stderr: the engine's own events, without timestamps or targets.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("REVOKD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,engine=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .compact()
        .try_init();
}

pub async fn run(store: Option<PathBuf>) -> anyhow::Result<Outcome> {
    let scenario = sim::Scenario::demo();
    let (tenant_id, client_id, client_secret) = scenario.demo_credentials();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind a loopback port for the simulator")?;
    let sim_url = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let sim_started = tokio::time::Instant::now();
    let simulator = sim::Simulator::new(scenario);
    let server = tokio::spawn({
        let (simulator, shutdown) = (simulator.clone(), shutdown.clone());
        async move { simulator.serve(listener, shutdown).await }
    });

    let store_path = match store {
        Some(p) => p,
        None => fresh_demo_dir()?.join("audit.db"),
    };
    let rule_files = embedded_rule_pack();
    let mut loaded = engine::config::from_parts(
        EXAMPLE_CONFIG.1,
        EXAMPLE_CONFIG.0,
        Path::new("."),
        rule_files,
        std::env::vars(),
    )
    .map_err(|e| anyhow::anyhow!("the embedded example config does not load:\n{e}"))?;
    // Point the example's tenant at the simulator, with the scenario's app registration.
    loaded.config.store.path = store_path.clone();
    let tenant = &mut loaded
        .config
        .tenants
        .first_mut()
        .context("the example config has no tenant")?
        .value;
    tenant.tenant_id = tenant_id;
    tenant.authority_url = sim_url.parse()?;
    tenant.graph_url = sim_url.parse()?;
    tenant.auth.client_id = client_id;
    tenant.auth.client_secret = Some(graph::auth::Secret::new(client_secret));
    tenant.auth.client_secret_file = None;

    println!("revokd demo: the whole pipeline against the built-in Graph simulator");
    println!("  simulator   {sim_url} (scenario config/scenarios/demo.yaml)");
    println!(
        "  config      {} with the rule pack in config/rules/ ({} files)",
        EXAMPLE_CONFIG.0,
        RULE_PACK.len()
    );
    println!("  audit db    {}", store_path.display());
    println!();

    let engine = engine::Engine::start(&loaded).await?;
    eprintln!("-- cycle 1: poll every feed, decide, contain");
    let mut failed = report_failures(&engine.run_once(&shutdown).await);
    let late = sim_started + LATE_ARRIVALS_BY;
    let wait = late.saturating_duration_since(tokio::time::Instant::now());
    if !wait.is_zero() {
        eprintln!(
            "-- watching {}s more: the scenario turns another user high-risk while we watch",
            wait.as_secs().max(1)
        );
    }
    tokio::time::sleep_until(late).await;
    eprintln!("-- cycle 2: a user turned high-risk since cycle 1");
    failed |= report_failures(&engine.run_once(&shutdown).await);

    print_summary(engine.store(), &store_path).await?;
    shutdown.cancel();
    server.await?.context("simulator failed")?;
    Ok(if failed {
        Outcome::Failure
    } else {
        Outcome::Success
    })
}

/// The embedded rule files, then the list files they name, as the config loader would read them.
fn embedded_rule_pack() -> Vec<rules::SourceFile> {
    let source = |(origin, text): &(&str, &str)| rules::SourceFile {
        origin: (*origin).to_string(),
        text: (*text).to_string(),
    };
    let mut files: Vec<rules::SourceFile> = RULE_PACK
        .iter()
        .filter(|(origin, _)| origin.ends_with(".yaml") || origin.ends_with(".yml"))
        .map(source)
        .collect();
    for needed in rules::required_files(&files) {
        if let Some(list) = RULE_PACK
            .iter()
            .find(|(origin, _)| Path::new(origin) == Path::new(&needed))
        {
            files.push(source(list));
        }
    }
    files
}

fn report_failures(reports: &[engine::TenantReport]) -> bool {
    let mut failed = false;
    for r in reports.iter().filter(|r| r.failed()) {
        failed = true;
        eprintln!("tenant {} had failures: {:?}", r.tenant, r);
    }
    failed
}

fn fresh_demo_dir() -> anyhow::Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S");
    let dir = std::env::temp_dir().join(format!("revokd-demo-{stamp}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

async fn print_summary(store: &store::Store, path: &Path) -> anyhow::Result<()> {
    let rows = store.contained().await?;
    let mut contained = Table::new();
    contained.load_preset(UTF8_FULL_CONDENSED).set_header([
        "user",
        "rule",
        "action",
        "outcome",
        "attempts",
        "last status",
    ]);
    let mut recorded = Table::new();
    recorded
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(["user", "rule", "mode", "action"]);
    let (mut n_contained, mut n_recorded) = (0, 0);
    for row in &rows {
        let user = row.user_principal_name.as_deref().unwrap_or(&row.user_id);
        if row.mode == "enforce" {
            n_contained += 1;
            contained.add_row([
                user.to_string(),
                row.rule_id.clone(),
                row.action.clone(),
                row.status.clone(),
                row.attempts.to_string(),
                row.last_http_status
                    .map_or_else(|| "-".to_string(), |s| s.to_string()),
            ]);
        } else {
            n_recorded += 1;
            recorded.add_row([
                user.to_string(),
                row.rule_id.clone(),
                row.mode.clone(),
                row.action.clone(),
            ]);
        }
    }
    println!("Contained ({n_contained}):");
    println!("{contained}");
    println!();
    println!(
        "Recorded but not actioned ({n_recorded}): protected principals, dry-run rules, cooldowns"
    );
    println!("{recorded}");
    println!();
    println!("Audit database: {}", path.display());
    println!(
        "  try: sqlite3 {} 'SELECT * FROM v_contained'",
        path.display()
    );
    Ok(())
}
