//! The daemon's engine: wires Graph, rules and the store into the containment pipeline.
//!
//! It owns the configuration and its loading, the feed pollers, the safety gate between rule
//! matches and the outbox, the executor that drains the outbox, the run loop with its shutdown,
//! and rule reloads. It speaks to Microsoft only through `graph` (its own HTTP client posts to
//! the operator's webhooks, in `notify`), holds no SQL (only through `store`), evaluates no rule
//! logic (only through `rules`) and knows nothing of the CLI.
//!
//! Layout:
//! - [`config`]: typed config sections, defaults, loading with `file:line:col` errors.
//! - [`feeds`]: one pass over a feed's window: fetch, evaluate, record, move the cursor;
//!   post-containment sign-ins.
//! - [`directory`]: user attributes and group memberships for `user.*` and protected groups.
//! - [`safety`]: protected principals, dry-run, cooldowns, the blast-radius breaker.
//! - [`executor`]: the outbox drain with audited attempts, retries, batching and read-backs.
//! - [`notify`]: webhook sinks for alerts and the `notify` rule action.
//! - [`manual`]: operator-run containment (`revokd revoke`) and release of held actions.
//!
//! Invariants: no Graph call is made for a decision that is not yet in the outbox; a cursor
//! moves only after the decisions for the events it covers are committed.

pub mod config;
pub mod directory;
pub mod executor;
pub mod feeds;
pub mod manual;
pub mod notify;
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
use tracing::{Instrument, error, info, info_span};

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
    #[error("notify: {0}")]
    Notify(String),
    #[error("{0}")]
    Manual(String),
}

impl EngineError {
    /// Graph's request-id of the failed call, for the audit and Microsoft support.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Graph(e) => e.request_id(),
            _ => None,
        }
    }
}

/// One tenant as the engine runs it.
struct Tenant {
    name: String,
    client: GraphClient,
    feeds: Vec<FeedKind>,
    /// Woken by a feed that has just committed decisions, so containment does not wait.
    wake: tokio::sync::Notify,
    /// How riskyUsers is read; `auto` becomes `listing` if the tenant refuses the window filter.
    risky_users_mode: std::sync::Mutex<feeds::RiskyUsersMode>,
    /// Directory look-ups and their cache.
    directory: directory::Directory,
    /// Window aggregates of this tenant's sign-ins; kept across rule reloads.
    windows: std::sync::Mutex<rules::WindowState>,
}

/// The running pipeline. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    /// The rules in force; a reload swaps in a new set whole, never a half-loaded one.
    rules: std::sync::RwLock<Arc<rules::RuleSet>>,
    gate: safety::SafetyGate,
    polling: config::PollingConfig,
    concurrency: usize,
    /// Carries out the outbox; shares the notifier with the gate.
    executor: executor::Executor,
    tenants: Vec<Tenant>,
    /// `store.retention`: rows older than this are pruned once per cycle.
    retention: Option<Duration>,
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
            tenants.push(Tenant {
                name: t.display_name().to_string(),
                client,
                feeds: t.feeds.enabled(),
                wake: tokio::sync::Notify::new(),
                risky_users_mode: std::sync::Mutex::new(config.polling.risky_users_mode),
                directory: directory::Directory::new(
                    &config.directory,
                    &config.safety.protected_groups,
                ),
                windows: std::sync::Mutex::new(rules::WindowState::new()),
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
        let notifier =
            notify::Notifier::start(&config.notify, &loaded.base_dir, Some(store.clone()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                executor: executor::Executor::new(&config.executor, notifier.clone()),
                store,
                rules: std::sync::RwLock::new(Arc::new(loaded.rules.clone())),
                gate: safety::SafetyGate::new(&config.safety).with_notifier(notifier),
                polling: config.polling.clone(),
                concurrency: config.executor.concurrency,
                tenants,
                retention: config.store.retention,
            }),
        })
    }

    /// The rules in force now.
    pub fn rules(&self) -> Arc<rules::RuleSet> {
        self.inner
            .rules
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Re-reads the rule files (and their list files) named by the config at `path` and, if
    /// every one of them compiles, swaps them in atomically; otherwise the rules in force keep
    /// running. Either way the outcome is recorded in the audit. Only the rules are reloaded:
    /// other config changes need a restart.
    ///
    /// # Errors
    /// The problems of the new version, each as `file:line:col: message`.
    pub async fn reload_rules(&self, path: &std::path::Path) -> Result<String, ConfigErrors> {
        match config::load(path) {
            Ok(loaded) => {
                let hash = loaded.rules.hash().to_string();
                let ids: Vec<String> = loaded.rules.rules().iter().map(|r| r.id.clone()).collect();
                // Window state of rules that did not change survives the reload.
                for tenant in &self.inner.tenants {
                    tenant
                        .windows
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .retain(&loaded.rules);
                }
                *self
                    .inner
                    .rules
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(loaded.rules);
                info!(rule_set_hash = %hash, rules = ids.len(), "rules reloaded");
                self.record_event(
                    "reload",
                    serde_json::json!({"config": path.display().to_string(), "rule_set_hash": hash, "rules": ids}),
                )
                .await;
                Ok(hash)
            }
            Err(errors) => {
                for d in &errors.0 {
                    error!(problem = %d, "reload rejected; the previous rules keep running");
                }
                self.record_event(
                    "reload_failed",
                    serde_json::json!({
                        "config": path.display().to_string(),
                        "errors": errors.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
                        "rule_set_hash_in_force": self.rules().hash(),
                    }),
                )
                .await;
                Err(errors)
            }
        }
    }

    async fn record_event(&self, kind: &str, detail: serde_json::Value) {
        if let Err(e) = self.inner.store.record_daemon_event(kind, &detail).await {
            error!(error = %e, kind, "cannot record a daemon event");
        }
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
        self.inner
            .executor
            .notifier()
            .flush(manual::NOTIFY_FLUSH)
            .await;
        reports
    }

    /// Runs until `shutdown` is cancelled, then records the stop: per tenant, one task per
    /// enabled feed polling on its own interval (with jitter), and one executor task draining the
    /// outbox whenever a feed has committed decisions. A single executor per tenant means an
    /// action is never carried out twice at once. Actions interrupted by shutdown stay in the
    /// outbox and resume on the next start.
    ///
    /// # Errors
    /// Only when the stop cannot be recorded.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), EngineError> {
        let tracker = TaskTracker::new();
        for index in 0..self.inner.tenants.len() {
            let tenant = &self.inner.tenants[index];
            let span = info_span!("tenant", tenant = %tenant.name);
            let engine = self.clone();
            let token = shutdown.clone();
            tracker.spawn(
                async move { engine.executor_loop(index, &token).await }.instrument(span.clone()),
            );
            for &feed in &tenant.feeds {
                let engine = self.clone();
                let token = shutdown.clone();
                let feed_span = info_span!(parent: &span, "feed", feed = feed.name());
                tracker.spawn(
                    async move { engine.feed_loop(index, feed, &token).await }
                        .instrument(feed_span),
                );
            }
        }
        tracker.close();
        tracker.wait().await;
        self.inner
            .executor
            .notifier()
            .flush(manual::NOTIFY_FLUSH)
            .await;
        self.inner
            .store
            .record_daemon_event("stop", &serde_json::json!({ "reason": "shutdown" }))
            .await?;
        Ok(())
    }

    async fn feed_loop(&self, index: usize, feed: FeedKind, shutdown: &CancellationToken) {
        let tenant = &self.inner.tenants[index];
        let interval = self.inner.polling.interval_of(feed);
        loop {
            let started = tokio::time::Instant::now();
            let _ = self.poll_feed(tenant, feed).await;
            tenant.wake.notify_one();
            // The interval runs from the start of one poll to the start of the next.
            let next = started + jittered(interval);
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                () = shutdown.cancelled() => break,
            }
        }
    }

    async fn executor_loop(&self, index: usize, shutdown: &CancellationToken) {
        let tenant = &self.inner.tenants[index];
        loop {
            let _ = self.drain(tenant, shutdown).await;
            // Also wake on the poll interval, for actions waiting on a retry after an error.
            tokio::select! {
                () = tenant.wake.notified() => {}
                () = tokio::time::sleep(self.inner.polling.interval) => {}
                () = shutdown.cancelled() => break,
            }
        }
    }

    /// One pass over one feed, its failure logged and recorded (with the request-id) rather
    /// than propagated: a failing feed never stops another feed or tenant.
    async fn poll_feed(&self, tenant: &Tenant, feed: FeedKind) -> Result<FeedReport, String> {
        let rules = self.rules();
        let ctx = feeds::PassContext {
            store: &self.inner.store,
            rules: &rules,
            gate: &self.inner.gate,
            polling: &self.inner.polling,
            risky_users_mode: &tenant.risky_users_mode,
            directory: &tenant.directory,
            windows: &tenant.windows,
            watches_post_containment: rules
                .rules()
                .iter()
                .any(|r| r.enabled && r.source == rules::Source::PostContainment),
        };
        let e = match feeds::poll(&ctx, &tenant.client, feed).await {
            Ok(report) => return Ok(report),
            Err(e) => e,
        };
        error!(error = %e, "feed poll failed; cursor kept");
        let detail = serde_json::json!({
            "tenant_id": tenant.client.tenant_id(),
            "feed": feed.name(),
            "error": e.to_string(),
            "request_id": e.request_id(),
        });
        if let Err(store_error) = self
            .inner
            .store
            .record_daemon_event("poll_failed", &detail)
            .await
        {
            error!(error = %store_error, "cannot record the failed poll");
        }
        Err(e.to_string())
    }

    async fn cycle(&self, index: usize, shutdown: &CancellationToken) -> TenantReport {
        let tenant = &self.inner.tenants[index];
        let span = info_span!("tenant", tenant = %tenant.name);
        async {
            let mut actions = self.drain(tenant, shutdown).await;
            if let Some(retention) = self.inner.retention
                && let Err(e) = self.inner.store.prune_older_than(retention).await
            {
                error!(error = %e, "audit retention prune failed; rows are kept");
            }
            let mut feed_reports = Vec::new();
            for &feed in &tenant.feeds {
                if shutdown.is_cancelled() {
                    break;
                }
                let outcome = self
                    .poll_feed(tenant, feed)
                    .instrument(info_span!("feed", feed = feed.name()))
                    .await;
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
            &self.inner.executor,
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
    let (mut a, b) = (a?, b?);
    a.add(&b);
    Ok(a)
}

/// The poll interval with ±5% random jitter, so tenants and feeds drift apart instead of
/// polling in lockstep, while the mean interval (and so the worst-case detection delay) holds.
fn jittered(interval: Duration) -> Duration {
    let spread_ms = u64::try_from(interval.as_millis() / 20).unwrap_or(u64::MAX);
    let offset = rand::random_range(0..=spread_ms.saturating_mul(2));
    (interval + Duration::from_millis(offset)).saturating_sub(Duration::from_millis(spread_ms))
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
