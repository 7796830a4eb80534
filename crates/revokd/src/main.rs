//! The `revokd` binary: command line, logging, signals and exit codes.
//!
//! It owns argument parsing and how results are shown; the pipeline itself lives in `engine`,
//! the simulator in `sim`. Exit codes: 0 success, 1 runtime failure, 2 bad config or rules.

mod demo;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

/// Contains compromised Microsoft Entra ID accounts: watches Graph's risk and sign-in feeds,
/// decides with YAML rules, revokes sessions within Graph's quotas, and audits everything.
#[derive(Debug, Parser)]
#[command(name = "revokd", version, about)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "REVOKD_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Run one full cycle (poll every feed, evaluate, drain the outbox) and exit.
        #[arg(long)]
        once: bool,
    },
    /// Validate the configuration and every rule file it names.
    Check {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Serve the Graph simulator on its own.
    Sim {
        /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Scenario file; the built-in demo scenario when omitted.
        #[arg(long)]
        scenario: Option<PathBuf>,
    },
    /// Run the whole pipeline on the built-in simulator with the example config.
    Demo {
        /// Where to create the audit database (a fresh temporary directory when omitted).
        #[arg(long)]
        store: Option<PathBuf>,
    },
}

/// The process's outcome, mapped to its exit status.
enum Outcome {
    Success,
    Failure,
    BadConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(dispatch(cli));
    match outcome {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failure) => ExitCode::from(1),
        Ok(Outcome::BadConfig) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Run { config, once } => {
            init_logging(cli.log_format, "info");
            run(&config, once).await
        }
        Command::Check { config } => Ok(check(&config)),
        Command::Sim { listen, scenario } => {
            init_logging(cli.log_format, "info");
            serve_sim(listen, scenario.as_deref()).await
        }
        Command::Demo { store } => {
            demo::init_logging();
            demo::run(store).await
        }
    }
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("REVOKD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Loads config and rules, printing every problem as `file:line:col: message`.
fn load(config: &Path) -> Result<engine::LoadedConfig, Outcome> {
    engine::config::load(config).map_err(|errors| {
        for d in &errors.0 {
            eprintln!("{d}");
        }
        eprintln!("{} error(s); nothing was started", errors.0.len());
        Outcome::BadConfig
    })
}

fn check(config: &Path) -> Outcome {
    match load(config) {
        Ok(loaded) => {
            let rules = loaded.rules.rules();
            println!(
                "{}: ok: {} tenant(s), {} rule(s) from {} file(s), rule set {}",
                loaded.origin,
                loaded.config.tenants.len(),
                rules.len(),
                loaded.rule_files.len(),
                short_hash(loaded.rules.hash()),
            );
            for rule in rules {
                println!(
                    "  {:<32} {:<16} {:<8} {}",
                    rule.id,
                    rule.source.as_str(),
                    if rule.enabled {
                        mode_name(rule.mode)
                    } else {
                        "disabled"
                    },
                    rule.actions
                        .iter()
                        .map(|a| a.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                );
            }
            if loaded.config.safety.dry_run {
                println!("safety.dry_run is on: decisions are recorded, nothing is actioned");
            }
            Outcome::Success
        }
        Err(outcome) => outcome,
    }
}

fn mode_name(mode: rules::Mode) -> &'static str {
    match mode {
        rules::Mode::Enforce => "enforce",
        rules::Mode::DryRun => "dry_run",
    }
}

fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

async fn run(config: &Path, once: bool) -> anyhow::Result<Outcome> {
    let loaded = match load(config) {
        Ok(l) => l,
        Err(outcome) => return Ok(outcome),
    };
    let engine = engine::Engine::start(&loaded)
        .await
        .context("cannot start the engine")?;
    let shutdown = CancellationToken::new();
    let signals = tokio::spawn(cancel_on_signal(shutdown.clone()));
    let outcome = if once {
        let reports = engine.run_once(&shutdown).await;
        let failed = reports.iter().any(engine::TenantReport::failed);
        println!("{}", serde_json::to_string(&reports)?);
        if failed {
            Outcome::Failure
        } else {
            Outcome::Success
        }
    } else {
        engine.run(shutdown.clone()).await?;
        Outcome::Success
    };
    signals.abort();
    Ok(outcome)
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown requested; finishing in-flight work");
    shutdown.cancel();
}

async fn serve_sim(listen: SocketAddr, scenario: Option<&Path>) -> anyhow::Result<Outcome> {
    let scenario = match scenario {
        Some(path) => match sim::Scenario::load(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                return Ok(Outcome::BadConfig);
            }
        },
        None => sim::Scenario::demo(),
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    // Tests and scripts read this first line to find the port.
    println!("revokd sim listening on http://{addr}");
    let shutdown = CancellationToken::new();
    let signals = tokio::spawn(cancel_on_signal(shutdown.clone()));
    sim::Simulator::new(scenario)
        .serve(listener, shutdown)
        .await
        .context("simulator failed")?;
    signals.abort();
    Ok(Outcome::Success)
}
