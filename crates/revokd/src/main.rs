//! The `revokd` binary: command line, logging, signals and exit codes.
//!
//! It owns argument parsing and how results are shown; the pipeline itself lives in `engine`,
//! the simulator in `sim`. Exit codes: 0 success, 1 runtime failure, 2 bad config or rules.

mod audit;
mod demo;
mod replay;
mod resume;
mod revoke;

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
        /// Also run the test cases the rule files carry (`tests:`); exit 1 if one fails.
        #[arg(long)]
        test: bool,
    },
    /// Run rules offline over recorded Graph responses and print their decisions.
    Replay(replay::ReplayArgs),
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
    /// Contain users now, by hand: through the same safety gate, breaker, limiter and audit.
    Revoke(revoke::RevokeArgs),
    /// Release actions held by the blast-radius breaker (all of them, or the listed ones).
    Resume(resume::ResumeArgs),
    /// Review and verify the audit database: verify, head, list, show, export, stats, prune.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
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
        Command::Check { config, test } => Ok(check(&config, test)),
        Command::Replay(args) => replay::run(args),
        Command::Sim { listen, scenario } => {
            init_logging(cli.log_format, "info");
            serve_sim(listen, scenario.as_deref()).await
        }
        Command::Revoke(args) => {
            init_logging(cli.log_format, "warn");
            revoke::run(args).await
        }
        Command::Resume(args) => {
            init_logging(cli.log_format, "warn");
            resume::run(args).await
        }
        Command::Demo { store } => {
            demo::init_logging();
            demo::run(store).await
        }
        Command::Audit { command } => {
            init_logging(cli.log_format, "warn");
            audit::run(command).await
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

fn check(config: &Path, test: bool) -> Outcome {
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
            if test && !replay::run_rule_tests(&loaded.rules) {
                return Outcome::Failure;
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
        let reloads = tokio::spawn(reload_on_sighup(engine.clone(), config.to_path_buf()));
        engine.run(shutdown.clone()).await?;
        reloads.abort();
        Outcome::Success
    };
    signals.abort();
    Ok(outcome)
}

/// Reloads the rules on every SIGHUP; a version with errors is rejected (and logged) and the
/// rules in force keep running.
async fn reload_on_sighup(engine: engine::Engine, config: PathBuf) {
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP; rules reload needs a restart");
            return;
        }
    };
    while hangup.recv().await.is_some() {
        tracing::info!(config = %config.display(), "SIGHUP: reloading rules");
        // Problems are logged and audited by the engine.
        let _ = engine.reload_rules(&config).await;
    }
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
