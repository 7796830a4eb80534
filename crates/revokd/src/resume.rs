//! `revokd resume`: the only way past a tripped blast-radius breaker. Without `--action`, it
//! releases every held action of the tenant (or of every tenant) and closes the breaker; with
//! `--action ID...`, it releases just those (an approval of listed actions) and leaves the
//! breaker as it is. Released actions are carried out at once through the executor (unless
//! `--no-drain` leaves them to the running daemon); `--list` only shows what is held.
//!
//! Exit codes: 0 released (and carried out); 1 when a listed action is not held (then nothing
//! is released) or a released action failed; 2 for a bad config or command line.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use engine::executor::Progress;
use store::BreakerState;
use tokio_util::sync::CancellationToken;

use crate::Outcome;

/// Arguments of `revokd resume`.
#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// The configuration file.
    #[arg(long, short)]
    config: PathBuf,
    /// Release only this held action (repeatable); the breaker stays open.
    #[arg(long = "action", value_name = "ID")]
    actions: Vec<i64>,
    /// Only this tenant (id or configured name).
    #[arg(long)]
    tenant: Option<String>,
    /// Who releases: recorded in the audit. Defaults to $USER.
    #[arg(long, env = "USER", value_name = "NAME")]
    operator: Option<String>,
    /// Show the breaker and the held actions, and release nothing.
    #[arg(long, conflicts_with_all = ["actions", "no_drain"])]
    list: bool,
    /// Release only; leave carrying the actions out to the running daemon.
    #[arg(long)]
    no_drain: bool,
}

/// Runs `revokd resume`.
pub async fn run(args: ResumeArgs) -> anyhow::Result<Outcome> {
    let loaded = match crate::load(&args.config) {
        Ok(l) => l,
        Err(outcome) => return Ok(outcome),
    };
    let engine = engine::Engine::start(&loaded)
        .await
        .context("cannot start the engine")?;
    if args.list {
        return list(&engine, args.tenant.as_deref()).await;
    }
    let Some(operator) = args.operator.clone().filter(|o| !o.trim().is_empty()) else {
        eprintln!("error: name yourself with --operator (no $USER is set)");
        return Ok(Outcome::BadConfig);
    };
    let shutdown = CancellationToken::new();
    let signals = tokio::spawn(crate::cancel_on_signal(shutdown.clone()));
    let progress = Arc::new(Progress::default());
    let display = tokio::spawn(show(
        progress.clone(),
        engine.write_rate(args.tenant.as_deref()),
    ));
    let only = (!args.actions.is_empty()).then_some(args.actions.as_slice());
    let result = engine
        .resume(
            args.tenant.as_deref(),
            only,
            &operator,
            !args.no_drain,
            progress,
            &shutdown,
        )
        .await;
    display.abort();
    signals.abort();
    let reports = match result {
        Ok(r) => r,
        Err(engine::EngineError::Manual(message)) => {
            eprintln!("error: {message}");
            return Ok(Outcome::BadConfig);
        }
        Err(e) => return Err(e.into()),
    };
    let mut outcome = Outcome::Success;
    for r in &reports {
        if !r.released.refused.is_empty() {
            for (id, why) in &r.released.refused {
                eprintln!("tenant {}: action {id} {why}", r.tenant_id);
            }
            eprintln!("tenant {}: nothing was released", r.tenant_id);
            outcome = Outcome::Failure;
            continue;
        }
        let what = if only.is_some() {
            "listed"
        } else {
            "all held; breaker closed"
        };
        match &r.drain {
            Some(d) => {
                eprintln!(
                    "tenant {}: released {} action(s) ({what}); {} succeeded ({} not confirmed, {} guests not contained), {} failed, {} interrupted",
                    r.tenant_id,
                    r.released.released.len(),
                    d.succeeded,
                    d.unconfirmed,
                    d.guests,
                    d.failed,
                    d.interrupted
                );
                if d.failed > 0 || d.interrupted > 0 {
                    outcome = Outcome::Failure;
                }
            }
            None => eprintln!(
                "tenant {}: released {} action(s) ({what})",
                r.tenant_id,
                r.released.released.len()
            ),
        }
    }
    Ok(outcome)
}

async fn list(engine: &engine::Engine, tenant: Option<&str>) -> anyhow::Result<Outcome> {
    let store = engine.store();
    for (tenant_id, name) in engine.tenants() {
        if tenant.is_some_and(|t| !t.eq_ignore_ascii_case(&tenant_id) && t != name) {
            continue;
        }
        match store.breaker_state(&tenant_id).await? {
            BreakerState::Open(trip) => println!(
                "tenant {tenant_id}: breaker OPEN since {} (more than {} users in {}s; first held: {} by {})",
                trip.tripped_at.to_rfc3339(),
                trip.max_actions,
                trip.window_secs,
                trip.first_held_user,
                trip.rule_id
            ),
            BreakerState::Closed { .. } => println!("tenant {tenant_id}: breaker closed"),
        }
        let held = store.held_actions(Some(&tenant_id)).await?;
        if held.is_empty() {
            continue;
        }
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_header(["action", "decision", "user", "rule", "kind", "decided at"]);
        for h in &held {
            table.add_row([
                h.action_id.to_string(),
                h.decision_id.to_string(),
                h.user_principal_name
                    .clone()
                    .unwrap_or_else(|| h.user_id.clone()),
                h.rule_id.clone(),
                h.kind.to_string(),
                h.decided_at.to_rfc3339(),
            ]);
        }
        println!("{table}");
        println!("{} held action(s)", held.len());
    }
    Ok(Outcome::Success)
}

async fn show(progress: Arc<Progress>, write_rate: Option<f64>) {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        eprintln!(
            "{}",
            crate::revoke::drain_line(&progress, started, write_rate)
        );
    }
}
