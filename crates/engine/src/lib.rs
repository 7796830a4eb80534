//! The daemon's engine: wires Graph, rules and the store into the containment pipeline.
//!
//! It owns the configuration and its loading, the feed pollers, the safety gate between rule
//! matches and the outbox, the executor that drains the outbox, and the run loop with its
//! shutdown. It does not speak HTTP itself (only through `graph`), holds no SQL (only through
//! `store`), evaluates no rule logic (only through `rules`) and knows nothing of the CLI.
//!
//! Layout:
//! - [`config`]: typed config sections, defaults, loading with `file:line:col` errors.
//! - [`feeds`]: one pass over a feed's window: fetch, evaluate, record, move the cursor.
//! - [`safety`]: protected principals, dry-run, cooldowns.
//! - [`executor`]: the outbox drain with audited attempts and retries.
//!
//! Invariants: no Graph call is made for a decision that is not yet in the outbox; a cursor
//! moves only after the decisions for the events it covers are committed.

pub mod config;
pub mod executor;
pub mod feeds;
pub mod safety;

use std::sync::Arc;
use std::time::Duration;

use graph::auth::{Credential, Secret};
use graph::client::{GraphClient, GraphEndpoints};
use graph::retry::RetryPolicy;
use serde::Serialize;
use store::Store;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, error, info_span};

pub use config::{ConfigErrors, LoadedConfig};
pub use executor::DrainReport;
pub use feeds::{FeedKind, FeedReport};

/// Failures of the engine at run time.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Graph(#[from] graph::error::GraphError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot encode a decision explanation: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("tenant {tenant_id}: cannot read the client secret file {path}: {source}")]
    SecretFile {
        tenant_id: String,
        path: String,
        source: std::io::Error,
    },
    #[error("an executor task ended abnormally: {0}")]
    Task(String),
    #[error("shutting down")]
    Shutdown,
}

/// One tenant as the engine runs it.
struct Tenant {
    name: String,
    client: GraphClient,
    feeds: Vec<FeedKind>,
}

/// The running pipeline. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    rules: rules::RuleSet,
    gate: safety::SafetyGate,
    polling: config::PollingConfig,
    concurrency: usize,
    tenants: Vec<Tenant>,
}

/// What one cycle over one tenant did.
#[derive(Debug, Clone, Serialize)]
pub struct TenantReport {
    pub tenant: String,
    pub feeds: Vec<(FeedKind, Result<FeedReport, String>)>,
    pub actions: Result<DrainReport, String>,
}

impl TenantReport {
    /// Whether any feed or the outbox drain failed in this cycle.
    pub fn failed(&self) -> bool {
        self.actions.is_err() || self.feeds.iter().any(|(_, r)| r.is_err())
    }
}

impl Engine {
    /// Opens the store, builds a Graph client per tenant and records the start in the audit.
    ///
    /// # Errors
    /// The store cannot be opened, a secret file cannot be read, or a client cannot be built.
    pub async fn start(loaded: &LoadedConfig) -> Result<Self, EngineError> {
        let store = Store::open(&loaded.store_path()).await?;
        let config = &loaded.config;
        let retry = RetryPolicy {
            max_attempts: config.executor.max_attempts,
            base_delay: config.executor.base_delay,
            max_delay: config.executor.max_delay,
        };
        let mut tenants = Vec::new();
        for spanned in &config.tenants {
            let t = &spanned.value;
            let secret = match (&t.auth.client_secret, &t.auth.client_secret_file) {
                (Some(s), _) => s.clone(),
                (None, Some(path)) => read_secret(&loaded.base_dir.join(path), &t.tenant_id)?,
                // `config::validate` rejects a tenant without either.
                (None, None) => Secret::new(String::new()),
            };
            let client = GraphClient::new(
                GraphEndpoints {
                    tenant_id: t.tenant_id.clone(),
                    authority_url: t.authority_url.clone(),
                    graph_url: t.graph_url.clone(),
                },
                Credential::ClientSecret {
                    client_id: t.auth.client_id.clone(),
                    client_secret: secret,
                },
                &t.quotas.limits(),
                retry.clone(),
                config.executor.request_timeout,
            )?;
            let feeds = [
                (t.feeds.risky_users, FeedKind::RiskyUsers),
                (t.feeds.risk_detections, FeedKind::RiskDetections),
                (t.feeds.sign_ins, FeedKind::SignIns),
            ]
            .into_iter()
            .filter_map(|(on, f)| on.then_some(f))
            .collect();
            tenants.push(Tenant {
                name: t.display_name().to_string(),
                client,
                feeds,
            });
        }
        store
            .record_daemon_event(
                "start",
                &serde_json::json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "config": loaded.origin,
                    "rule_set_hash": loaded.rules.hash(),
                    "rules": loaded.rules.rules().iter().map(|r| &r.id).collect::<Vec<_>>(),
                    "dry_run": config.safety.dry_run,
                    "tenants": tenants.iter().map(|t| t.client.tenant_id()).collect::<Vec<_>>(),
                }),
            )
            .await?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                rules: loaded.rules.clone(),
                gate: safety::SafetyGate::new(&config.safety),
                polling: config.polling.clone(),
                concurrency: config.executor.concurrency,
                tenants,
            }),
        })
    }

    /// The audit store the engine writes to.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// One full cycle over every tenant at once: resume the outbox, poll every feed, drain.
    /// A failing tenant never stalls another.
    pub async fn run_once(&self, shutdown: &CancellationToken) -> Vec<TenantReport> {
        let tracker = TaskTracker::new();
        let mut handles = Vec::new();
        for index in 0..self.inner.tenants.len() {
            let engine = self.clone();
            let shutdown = shutdown.clone();
            handles.push(tracker.spawn(async move { engine.cycle(index, &shutdown).await }));
        }
        tracker.close();
        let mut reports = Vec::new();
        for handle in handles {
            match handle.await {
                Ok(report) => reports.push(report),
                Err(join) => error!(error = %join, "a tenant cycle ended abnormally"),
            }
        }
        tracker.wait().await;
        reports
    }

    /// Runs cycles every `polling.interval` (with jitter) until `shutdown` is cancelled, then
    /// records the stop. Actions interrupted by shutdown stay in the outbox and resume on start.
    ///
    /// # Errors
    /// Only when the stop cannot be recorded.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), EngineError> {
        let tracker = TaskTracker::new();
        for index in 0..self.inner.tenants.len() {
            let engine = self.clone();
            let shutdown = shutdown.clone();
            tracker.spawn(async move {
                loop {
                    engine.cycle(index, &shutdown).await;
                    let wait = jittered(engine.inner.polling.interval);
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = shutdown.cancelled() => break,
                    }
                }
            });
        }
        tracker.close();
        tracker.wait().await;
        self.inner
            .store
            .record_daemon_event("stop", &serde_json::json!({ "reason": "shutdown" }))
            .await?;
        Ok(())
    }

    async fn cycle(&self, index: usize, shutdown: &CancellationToken) -> TenantReport {
        let tenant = &self.inner.tenants[index];
        let span = info_span!("tenant", tenant = %tenant.name);
        async {
            let ctx = feeds::PassContext {
                store: &self.inner.store,
                rules: &self.inner.rules,
                gate: &self.inner.gate,
                polling: &self.inner.polling,
            };
            let mut actions = self.drain(tenant, shutdown).await;
            let mut feed_reports = Vec::new();
            for &feed in &tenant.feeds {
                if shutdown.is_cancelled() {
                    break;
                }
                let outcome = feeds::poll(&ctx, &tenant.client, feed)
                    .instrument(info_span!("feed", feed = feed.name()))
                    .await
                    .map_err(|e| {
                        error!(feed = feed.name(), error = %e, "feed poll failed; cursor kept");
                        e.to_string()
                    });
                if let Err(message) = &outcome {
                    let _ = self
                        .inner
                        .store
                        .record_daemon_event(
                            "poll_failed",
                            &serde_json::json!({
                                "tenant_id": tenant.client.tenant_id(),
                                "feed": feed.name(),
                                "error": message,
                            }),
                        )
                        .await;
                }
                feed_reports.push((feed, outcome));
                // Contain as soon as a feed's decisions are in, not after every feed.
                let drained = self.drain(tenant, shutdown).await;
                actions = merge(actions, drained);
            }
            TenantReport {
                tenant: tenant.name.clone(),
                feeds: feed_reports,
                actions,
            }
        }
        .instrument(span)
        .await
    }

    async fn drain(
        &self,
        tenant: &Tenant,
        shutdown: &CancellationToken,
    ) -> Result<DrainReport, String> {
        executor::drain(
            &self.inner.store,
            &tenant.client,
            self.inner.concurrency,
            shutdown,
        )
        .await
        .map_err(|e| {
            error!(error = %e, "outbox drain failed");
            e.to_string()
        })
    }
}

fn merge(
    a: Result<DrainReport, String>,
    b: Result<DrainReport, String>,
) -> Result<DrainReport, String> {
    let (a, b) = (a?, b?);
    Ok(DrainReport {
        succeeded: a.succeeded + b.succeeded,
        failed: a.failed + b.failed,
        skipped: a.skipped + b.skipped,
        interrupted: a.interrupted + b.interrupted,
    })
}

/// The poll interval plus up to 10% random jitter, so tenants and feeds do not poll in lockstep.
fn jittered(interval: Duration) -> Duration {
    let max_jitter_ms = u64::try_from(interval.as_millis() / 10).unwrap_or(u64::MAX);
    interval + Duration::from_millis(rand::random_range(0..=max_jitter_ms))
}

fn read_secret(path: &std::path::Path, tenant_id: &str) -> Result<Secret, EngineError> {
    std::fs::read_to_string(path)
        .map(|s| Secret::new(s.trim_end_matches(['\r', '\n']).to_string()))
        .map_err(|source| EngineError::SecretFile {
            tenant_id: tenant_id.to_string(),
            path: path.display().to_string(),
            source,
        })
}

/// Maps a rule's action to the store's (the two crates do not depend on each other).
pub(crate) fn action_kind(action: rules::ActionKind) -> store::ActionKind {
    match action {
        rules::ActionKind::RevokeSessions => store::ActionKind::RevokeSessions,
        rules::ActionKind::ConfirmCompromised => store::ActionKind::ConfirmCompromised,
        rules::ActionKind::DisableAccount => store::ActionKind::DisableAccount,
        rules::ActionKind::Notify => store::ActionKind::Notify,
    }
}
