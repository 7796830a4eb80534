//! The daemon's configuration: typed sections, their defaults, and loading.
//!
//! Loading happens in two layers. The file is parsed first on its own with `serde-saphyr`, so every
//! mistake in it is reported as `file:line:col: message`. Environment variables named
//! `REVOKD__SECTION__KEY` are then layered over it with the `config` crate; an error that only
//! appears after that layering names the variables involved instead of a line.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use graph::auth::Secret;
use serde::Deserialize;
use serde_saphyr::Spanned;
use url::Url;

/// Prefix of the environment variables that override config values (`REVOKD__STORE__PATH`).
pub const ENV_PREFIX: &str = "REVOKD";
/// Separator between the prefix and the section and key names of an environment override.
pub const ENV_SEPARATOR: &str = "__";

/// Every default value of the configuration, in one place.
pub mod defaults {
    use std::time::Duration;

    /// Entra ID's global-cloud authority.
    pub const AUTHORITY_URL: &str = "https://login.microsoftonline.com";
    /// Microsoft Graph's global-cloud endpoint.
    pub const GRAPH_URL: &str = "https://graph.microsoft.com";

    pub fn dry_run() -> bool {
        // Acting on a tenant stays off until an operator turns it on explicitly.
        true
    }
    pub fn poll_interval() -> Duration {
        Duration::from_secs(60)
    }
    pub fn lookback() -> Duration {
        Duration::from_secs(60 * 60)
    }
    pub fn overlap() -> Duration {
        Duration::from_secs(10 * 60)
    }
    pub fn directory_cache_ttl() -> Duration {
        Duration::from_secs(15 * 60)
    }
    pub fn directory_cache_entries() -> usize {
        10_000
    }
    pub fn max_window() -> Duration {
        Duration::from_secs(60 * 60)
    }
    pub fn skip_processing() -> bool {
        true
    }
    pub fn risky_users_mode() -> crate::feeds::RiskyUsersMode {
        crate::feeds::RiskyUsersMode::Auto
    }
    pub fn concurrency() -> usize {
        8
    }
    pub fn max_attempts() -> u32 {
        6
    }
    pub fn base_delay() -> Duration {
        Duration::from_millis(500)
    }
    pub fn max_delay() -> Duration {
        Duration::from_secs(30)
    }
    pub fn request_timeout() -> Duration {
        Duration::from_secs(30)
    }
    pub fn verify() -> bool {
        true
    }
    pub fn confirm_batch_size() -> usize {
        // Graph documents no limit for confirmCompromised; dismiss takes at most 60.
        60
    }
    pub fn breaker_max_actions() -> u32 {
        // Conservative: a rule that matches more than this many users in ten minutes is far
        // more likely to be wrong than a real incident is to be that large.
        50
    }
    pub fn breaker_window() -> Duration {
        Duration::from_secs(10 * 60)
    }
    pub fn retention() -> Option<Duration> {
        // Evidence is kept until an operator chooses how long to keep it.
        None
    }
    pub fn identity_protection_share() -> f64 {
        // Identity Protection's 1 request/s is shared with every other app in the tenant.
        0.5
    }
    pub fn notify_events() -> Vec<crate::notify::NotifyEvent> {
        use crate::notify::NotifyEvent;
        // Successes are left out: a mass containment would send one message per user.
        vec![
            NotifyEvent::ActionFailed,
            NotifyEvent::BreakerTripped,
            NotifyEvent::GuestNotContained,
            NotifyEvent::Notify,
        ]
    }
    pub fn notify_max_attempts() -> u32 {
        4
    }
    pub fn notify_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub fn enabled() -> bool {
        true
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the audit database lives.
    pub store: StoreConfig,
    /// Which rule files to load.
    pub rules: RulesConfig,
    /// What may never be actioned, and whether anything is actioned at all.
    #[serde(default)]
    pub safety: SafetyConfig,
    /// How often and how far back the feeds are read.
    #[serde(default)]
    pub polling: PollingConfig,
    /// How decided actions are carried out.
    #[serde(default)]
    pub executor: ExecutorConfig,
    /// Directory look-ups for `user.*` conditions and protected groups.
    #[serde(default)]
    pub directory: DirectoryConfig,
    /// Webhook sinks for alerts and the `notify` rule action.
    #[serde(default)]
    pub notify: Vec<NotifySinkConfig>,
    /// The tenants this daemon watches; each has its own credentials, limiter and cursors.
    pub tenants: Vec<Spanned<TenantConfig>>,
}

/// `store:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The SQLite audit database; created with mode 0600. Relative paths are resolved against
    /// the directory of the config file.
    pub path: PathBuf,
    /// How long decisions, their actions and attempts, and daemon events are kept; older ones
    /// are pruned once per cycle, leaving a checkpoint the audit chain verifies from. Unset
    /// (the default) keeps everything. It must be at least `min_retention`.
    #[serde(default = "defaults::retention", with = "humantime_serde")]
    pub retention: Option<Duration>,
}

/// The shortest `store.retention` this configuration allows: no decision a rule's cooldown, the
/// breaker's window or a feed's re-read window (lookback, overlap) still needs may be pruned,
/// or a user could be actioned twice.
pub fn min_retention(config: &Config, rules: &rules::RuleSet) -> Duration {
    rules
        .rules()
        .iter()
        .map(|r| r.cooldown)
        .chain([
            config.polling.lookback,
            config.polling.overlap,
            config.safety.breaker.window,
        ])
        .max()
        .unwrap_or_default()
}

/// `rules:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// Rule files, directories (every `*.yaml`/`*.yml` inside) or glob patterns, relative to
    /// the config file's directory.
    pub files: Vec<Spanned<String>>,
}

/// `safety:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafetyConfig {
    /// When true (the default), every decision is recorded but nothing is done to the tenant.
    #[serde(default = "defaults::dry_run")]
    pub dry_run: bool,
    /// Users (UPN, case-insensitive, or object id) that no rule may ever action: break-glass
    /// accounts, the identity team's own admins.
    #[serde(default)]
    pub protected_users: Vec<String>,
    /// Groups (object id or display name, case-insensitive) whose transitive members no rule
    /// may action. Each actioned user's membership is then looked up; when it cannot be read,
    /// the decision is held for an operator rather than enforced.
    #[serde(default)]
    pub protected_groups: Vec<String>,
    /// The blast-radius breaker: how many users may be actioned per tenant within a window
    /// before enforcement pauses until `revokd resume`.
    #[serde(default)]
    pub breaker: BreakerConfig,
}

impl Default for SafetyConfig {
    fn default() -> Self {
        Self {
            dry_run: defaults::dry_run(),
            protected_users: Vec::new(),
            protected_groups: Vec::new(),
            breaker: BreakerConfig::default(),
        }
    }
}

/// `safety.breaker:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Distinct users that may be actioned per tenant within `window`; the decision for the
    /// next one trips the breaker, and it and every later one are recorded as `held`.
    #[serde(default = "defaults::breaker_max_actions")]
    pub max_actions: u32,
    /// The sliding window users are counted in (from the last resume at the earliest).
    #[serde(default = "defaults::breaker_window", with = "humantime_serde")]
    pub window: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            max_actions: defaults::breaker_max_actions(),
            window: defaults::breaker_window(),
        }
    }
}

/// `directory:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// How long a user's looked-up attributes and groups are reused.
    #[serde(default = "defaults::directory_cache_ttl", with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// Users kept in the cache per tenant; the oldest are dropped beyond it.
    #[serde(default = "defaults::directory_cache_entries")]
    pub cache_entries: usize,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        Self {
            cache_ttl: defaults::directory_cache_ttl(),
            cache_entries: defaults::directory_cache_entries(),
        }
    }
}

/// `polling:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollingConfig {
    /// Time between two polls of a feed.
    #[serde(default = "defaults::poll_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// How far back the first poll of a feed reads, when no cursor is stored yet.
    #[serde(default = "defaults::lookback", with = "humantime_serde")]
    pub lookback: Duration,
    /// How far before the stored watermark each poll starts again, to catch records that Graph
    /// publishes late.
    #[serde(default = "defaults::overlap", with = "humantime_serde")]
    pub overlap: Duration,
    /// Windows longer than this (after downtime, or a long lookback) are read in slices of
    /// this length, each committed on its own, as Microsoft advises for large log queries.
    #[serde(default = "defaults::max_window", with = "humantime_serde")]
    pub max_window: Duration,
    /// Leave risky users that Identity Protection is still processing (`isProcessing`) for a
    /// later pass, holding the cursor at them.
    #[serde(default = "defaults::skip_processing")]
    pub skip_processing: bool,
    /// How riskyUsers is read: `auto` (time window, falling back to a full listing of users at
    /// risk if the tenant refuses the filter), `window` or `listing`.
    #[serde(default = "defaults::risky_users_mode")]
    pub risky_users_mode: crate::feeds::RiskyUsersMode,
    /// Per-feed intervals overriding `interval`.
    #[serde(default)]
    pub intervals: FeedIntervals,
}

impl Default for PollingConfig {
    fn default() -> Self {
        Self {
            interval: defaults::poll_interval(),
            lookback: defaults::lookback(),
            overlap: defaults::overlap(),
            max_window: defaults::max_window(),
            skip_processing: defaults::skip_processing(),
            risky_users_mode: defaults::risky_users_mode(),
            intervals: FeedIntervals::default(),
        }
    }
}

impl PollingConfig {
    /// The interval of one feed.
    pub fn interval_of(&self, feed: crate::feeds::FeedKind) -> Duration {
        use crate::feeds::FeedKind;
        let specific = match feed {
            FeedKind::RiskyUsers => self.intervals.risky_users,
            FeedKind::RiskDetections => self.intervals.risk_detections,
            FeedKind::SignIns => self.intervals.sign_ins,
            FeedKind::NonInteractiveSignIns => self.intervals.non_interactive_sign_ins,
        };
        specific.unwrap_or(self.interval)
    }
}

/// `polling.intervals:`: a feed left out polls every `polling.interval`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedIntervals {
    #[serde(default, with = "humantime_serde")]
    pub risky_users: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub risk_detections: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub sign_ins: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub non_interactive_sign_ins: Option<Duration>,
}

/// `executor:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorConfig {
    /// Actions carried out at the same time per tenant.
    #[serde(default = "defaults::concurrency")]
    pub concurrency: usize,
    /// Attempts per action (and per feed page) before giving up.
    #[serde(default = "defaults::max_attempts")]
    pub max_attempts: u32,
    /// First backoff delay when Graph gives no Retry-After.
    #[serde(default = "defaults::base_delay", with = "humantime_serde")]
    pub base_delay: Duration,
    /// Longest backoff delay.
    #[serde(default = "defaults::max_delay", with = "humantime_serde")]
    pub max_delay: Duration,
    /// Timeout of one HTTP request.
    #[serde(default = "defaults::request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// After a revoke, read the user's `signInSessionsValidFromDateTime` back to confirm it
    /// (one directory_read call per revoke), and detect guests, whom a revoke does not reach.
    #[serde(default = "defaults::verify")]
    pub verify: bool,
    /// Users per `confirmCompromised` call: pending confirm actions are sent together.
    #[serde(default = "defaults::confirm_batch_size")]
    pub confirm_batch_size: usize,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            concurrency: defaults::concurrency(),
            max_attempts: defaults::max_attempts(),
            base_delay: defaults::base_delay(),
            max_delay: defaults::max_delay(),
            request_timeout: defaults::request_timeout(),
            verify: defaults::verify(),
            confirm_batch_size: defaults::confirm_batch_size(),
        }
    }
}

/// One entry of `notify:`: a webhook that receives events as JSON.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySinkConfig {
    /// A name for logs; the URL itself is never logged, as webhook URLs carry their own secret.
    #[serde(default)]
    pub name: Option<String>,
    /// The payload shape: `generic` (revokd's JSON), `slack` or `teams`.
    pub kind: crate::notify::SinkKind,
    /// The webhook URL inline (tests, demos).
    #[serde(default)]
    pub url: Option<Secret>,
    /// A file holding the webhook URL (exactly one of `url` and `url_file`).
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// Events sent to this sink: `action_succeeded`, `action_failed`, `breaker_tripped`,
    /// `guest_not_contained`, `notify` (the rule action). All but `action_succeeded` by default.
    #[serde(default = "defaults::notify_events")]
    pub events: Vec<crate::notify::NotifyEvent>,
    /// Delivery attempts per event, the first included.
    #[serde(default = "defaults::notify_max_attempts")]
    pub max_attempts: u32,
    /// Timeout of one delivery.
    #[serde(default = "defaults::notify_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

/// One entry of `tenants:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// A short name for logs and the audit; defaults to the tenant id.
    #[serde(default)]
    pub name: Option<String>,
    /// The Entra ID tenant (directory) id.
    pub tenant_id: String,
    /// The identity platform host; national clouds use their own.
    #[serde(default = "default_authority_url")]
    pub authority_url: Url,
    /// The Microsoft Graph host; national clouds use their own.
    #[serde(default = "default_graph_url")]
    pub graph_url: Url,
    /// The app registration's credentials.
    pub auth: AuthConfig,
    /// Which feeds are polled.
    #[serde(default)]
    pub feeds: FeedsConfig,
    /// Overrides of the published Graph quotas (limits per quota class).
    #[serde(default)]
    pub quotas: QuotasConfig,
}

impl TenantConfig {
    /// The name used in logs and the audit.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.tenant_id)
    }
}

fn default_authority_url() -> Url {
    Url::parse(defaults::AUTHORITY_URL).expect("constant URL parses")
}

fn default_graph_url() -> Url {
    Url::parse(defaults::GRAPH_URL).expect("constant URL parses")
}

/// `auth:` of a tenant: client credentials of the app registration.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The application (client) id.
    pub client_id: String,
    /// The client secret itself. Prefer `client_secret_file` outside of tests.
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// A file holding the client secret (for systemd credentials or mounted secrets).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "***"))
            .field("client_secret_file", &self.client_secret_file)
            .finish()
    }
}

/// `feeds:` of a tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedsConfig {
    /// Poll `identityProtection/riskyUsers` (IdentityRiskyUser.Read.All).
    #[serde(default = "defaults::enabled")]
    pub risky_users: bool,
    /// Poll `identityProtection/riskDetections` (IdentityRiskEvent.Read.All).
    #[serde(default = "defaults::enabled")]
    pub risk_detections: bool,
    /// Poll `auditLogs/signIns` (AuditLog.Read.All).
    #[serde(default = "defaults::enabled")]
    pub sign_ins: bool,
    /// Also poll non-interactive sign-ins (refresh-token use by apps), which Graph lists only
    /// on its beta endpoint. Off by default: beta APIs may change without notice.
    #[serde(default)]
    pub non_interactive_sign_ins: bool,
}

impl Default for FeedsConfig {
    fn default() -> Self {
        Self {
            risky_users: true,
            risk_detections: true,
            sign_ins: true,
            non_interactive_sign_ins: false,
        }
    }
}

impl FeedsConfig {
    /// The enabled feeds.
    pub fn enabled(&self) -> Vec<crate::feeds::FeedKind> {
        use crate::feeds::FeedKind;
        [
            (self.risky_users, FeedKind::RiskyUsers),
            (self.risk_detections, FeedKind::RiskDetections),
            (self.sign_ins, FeedKind::SignIns),
            (
                self.non_interactive_sign_ins,
                FeedKind::NonInteractiveSignIns,
            ),
        ]
        .into_iter()
        .filter_map(|(on, feed)| on.then_some(feed))
        .collect()
    }
}

/// `quotas:` of a tenant; a class left out keeps its published limit.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotasConfig {
    /// The share (0 < share <= 1) of Identity Protection's published 1 request/s that revokd
    /// takes when `identity_protection` is not set: the quota is shared with every other app
    /// in the tenant. Default 0.5, i.e. one request every 2 s.
    #[serde(default)]
    pub identity_protection_share: Option<f64>,
    pub identity_protection: Option<QuotaLimitConfig>,
    pub reports: Option<QuotaLimitConfig>,
    pub directory_write: Option<QuotaLimitConfig>,
    pub directory_read: Option<QuotaLimitConfig>,
}

/// At most `requests` calls in any window of length `per`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaLimitConfig {
    pub requests: u32,
    #[serde(with = "humantime_serde")]
    pub per: Duration,
}

impl QuotasConfig {
    /// The published limits with this tenant's overrides applied.
    pub fn limits(&self) -> graph::quota::QuotaLimits {
        let mut limits = graph::quota::QuotaLimits::default();
        let share = self
            .identity_protection_share
            .unwrap_or_else(defaults::identity_protection_share);
        if share > 0.0 && share <= 1.0 {
            let published = limits.identity_protection;
            limits.identity_protection = graph::quota::QuotaLimit {
                requests: published.requests,
                per: published.per.div_f64(share),
            };
        }
        let apply = |target: &mut graph::quota::QuotaLimit, over: &Option<QuotaLimitConfig>| {
            if let Some(o) = over {
                *target = graph::quota::QuotaLimit {
                    requests: o.requests,
                    per: o.per,
                };
            }
        };
        apply(&mut limits.identity_protection, &self.identity_protection);
        apply(&mut limits.reports, &self.reports);
        apply(&mut limits.directory_write, &self.directory_write);
        apply(&mut limits.directory_read, &self.directory_read);
        limits
    }
}

/// A problem in the configuration, rules or the files they name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigDiagnostic {
    /// The file the problem is in (or the environment variables that caused it).
    pub origin: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.origin, self.message),
            (Some(l), None) => write!(f, "{}:{l}: {}", self.origin, self.message),
            _ => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

impl ConfigDiagnostic {
    fn at(origin: &str, location: &serde_saphyr::Location, message: impl Into<String>) -> Self {
        let known = location.line() > 0;
        Self {
            origin: origin.to_string(),
            line: known.then(|| location.line()),
            column: known.then(|| location.column()),
            message: message.into(),
        }
    }

    fn file(origin: &str, message: impl Into<String>) -> Self {
        Self {
            origin: origin.to_string(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    /// Builds a diagnostic from a `serde-saphyr` error, moving its position into the prefix.
    pub fn from_yaml_error(origin: &str, err: &serde_saphyr::Error) -> Self {
        let message = err.without_snippet().to_string();
        match err.location() {
            Some(loc) if loc.line() > 0 => {
                let suffix = format!(" at line {}, column {}", loc.line(), loc.column());
                let message = message
                    .strip_suffix(&suffix)
                    .unwrap_or(&message)
                    .to_string();
                Self::at(origin, &loc, message)
            }
            _ => Self::file(origin, message),
        }
    }
}

/// All problems found while loading, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigDiagnostic>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigDiagnostic> for ConfigErrors {
    fn from(d: ConfigDiagnostic) -> Self {
        Self(vec![d])
    }
}

/// A configuration with its rules compiled and every file it names read: what the engine runs.
#[derive(Debug)]
pub struct LoadedConfig {
    /// The parsed configuration, environment overrides applied.
    pub config: Config,
    /// Where the config came from (a path, or a name for an embedded one).
    pub origin: String,
    /// The directory relative paths are resolved against.
    pub base_dir: PathBuf,
    /// The compiled rules.
    pub rules: rules::RuleSet,
    /// The rule files as loaded, for `check` to list.
    pub rule_files: Vec<String>,
}

impl LoadedConfig {
    /// The store path, resolved against the config file's directory.
    pub fn store_path(&self) -> PathBuf {
        self.base_dir.join(&self.config.store.path)
    }
}

/// Reads a config file, layers environment overrides, reads and compiles the rule files.
///
/// # Errors
/// Every problem found, each naming its file and, where known, line and column.
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigErrors> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigDiagnostic::file(&origin, format!("cannot read config: {e}")))?;
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let config = parse(&text, &origin, std::env::vars())?;
    let (rule_sources, errors) = read_rule_files(&config, &origin, &base_dir);
    finish(config, origin, base_dir, rule_sources, errors)
}

/// Builds a config from text and already-read rule files (the embedded demo uses this).
///
/// # Errors
/// As [`load`].
pub fn from_parts(
    text: &str,
    origin: &str,
    base_dir: &Path,
    rule_sources: Vec<rules::SourceFile>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<LoadedConfig, ConfigErrors> {
    let config = parse(text, origin, env)?;
    finish(
        config,
        origin.to_string(),
        base_dir.to_path_buf(),
        rule_sources,
        Vec::new(),
    )
}

fn finish(
    config: Config,
    origin: String,
    base_dir: PathBuf,
    rule_sources: Vec<rules::SourceFile>,
    mut errors: Vec<ConfigDiagnostic>,
) -> Result<LoadedConfig, ConfigErrors> {
    errors.extend(validate(&config, &origin));
    let rule_files = rule_sources.iter().map(|s| s.origin.clone()).collect();
    let compiled = rules::compile(&rule_sources);
    match compiled {
        Ok(rules) if errors.is_empty() => {
            let shortest = min_retention(&config, &rules);
            if let Some(retention) = config.store.retention
                && retention < shortest
            {
                return Err(ConfigDiagnostic::file(
                    &origin,
                    format!(
                        "store.retention {} is shorter than {}, the longest rule cooldown, \
                         breaker window or feed lookback/overlap: decisions still needed would \
                         be pruned",
                        humantime::format_duration(retention),
                        humantime::format_duration(shortest)
                    ),
                )
                .into());
            }
            Ok(LoadedConfig {
                config,
                origin,
                base_dir,
                rules,
                rule_files,
            })
        }
        Ok(_) => Err(ConfigErrors(errors)),
        Err(diags) => {
            errors.extend(diags.0.into_iter().map(|d| ConfigDiagnostic {
                origin: d.origin,
                line: Some(d.line as u64),
                column: Some(d.column as u64),
                message: d.message,
            }));
            Err(ConfigErrors(errors))
        }
    }
}

/// Parses the config text, then layers `REVOKD__SECTION__KEY` overrides from `env`.
fn parse(
    text: &str,
    origin: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigErrors> {
    let from_file: Config =
        serde_saphyr::from_str(text).map_err(|e| ConfigDiagnostic::from_yaml_error(origin, &e))?;
    let overrides: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}{ENV_SEPARATOR}")))
        .collect();
    if overrides.is_empty() {
        return Ok(from_file);
    }
    let names = overrides
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let env_source = config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator(ENV_SEPARATOR)
        .separator(ENV_SEPARATOR)
        .try_parsing(true)
        .source(Some(overrides.into_iter().collect()));
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Yaml))
        .add_source(env_source)
        .build()
        .and_then(config::Config::try_deserialize::<Config>)
        .map_err(|e| {
            ConfigDiagnostic::file(
                origin,
                format!("after applying environment overrides ({names}): {e}"),
            )
            .into()
        })
}

/// Checks what types alone cannot: credentials present, tenants unique.
fn validate(config: &Config, origin: &str) -> Vec<ConfigDiagnostic> {
    let mut errors = Vec::new();
    if config.tenants.is_empty() {
        errors.push(ConfigDiagnostic::file(
            origin,
            "no tenants configured: add at least one entry under `tenants:`",
        ));
    }
    let mut seen = HashSet::new();
    for tenant in &config.tenants {
        let t = &tenant.value;
        if !seen.insert(t.tenant_id.to_ascii_lowercase()) {
            errors.push(ConfigDiagnostic::at(
                origin,
                &tenant.referenced,
                format!("tenant {} is configured twice", t.tenant_id),
            ));
        }
        match (&t.auth.client_secret, &t.auth.client_secret_file) {
            (Some(_), Some(_)) => errors.push(ConfigDiagnostic::at(
                origin,
                &tenant.referenced,
                format!(
                    "tenant {}: set either auth.client_secret or auth.client_secret_file, not both",
                    t.tenant_id
                ),
            )),
            (None, None) => errors.push(ConfigDiagnostic::at(
                origin,
                &tenant.referenced,
                format!(
                    "tenant {}: auth needs client_secret or client_secret_file",
                    t.tenant_id
                ),
            )),
            _ => {}
        }
    }
    if config.executor.concurrency == 0 {
        errors.push(ConfigDiagnostic::file(
            origin,
            "executor.concurrency must be at least 1",
        ));
    }
    if config.polling.max_window.is_zero() {
        errors.push(ConfigDiagnostic::file(
            origin,
            "polling.max_window must be greater than zero",
        ));
    }
    errors.extend(validate_containment(config, origin));
    if config.executor.max_attempts == 0 {
        errors.push(ConfigDiagnostic::file(
            origin,
            "executor.max_attempts must be at least 1",
        ));
    }
    errors
}

/// Checks the breaker, the executor's batch size, the quota share and the notify sinks.
fn validate_containment(config: &Config, origin: &str) -> Vec<ConfigDiagnostic> {
    let mut errors = Vec::new();
    let mut fail = |message: String| errors.push(ConfigDiagnostic::file(origin, message));
    if config.safety.breaker.max_actions == 0 {
        fail("safety.breaker.max_actions must be at least 1".to_string());
    }
    if config.safety.breaker.window.is_zero() {
        fail("safety.breaker.window must be greater than zero".to_string());
    }
    if config.executor.confirm_batch_size == 0 {
        fail("executor.confirm_batch_size must be at least 1".to_string());
    }
    for tenant in &config.tenants {
        let t = &tenant.value;
        if let Some(share) = t.quotas.identity_protection_share
            && !(share > 0.0 && share <= 1.0)
        {
            errors.push(ConfigDiagnostic::at(
                origin,
                &tenant.referenced,
                format!(
                    "tenant {}: quotas.identity_protection_share must be greater than 0 and at most 1, got {share}",
                    t.tenant_id
                ),
            ));
        }
    }
    for (i, sink) in config.notify.iter().enumerate() {
        let name = sink.name.clone().unwrap_or_else(|| format!("notify[{i}]"));
        let mut fail = |message: String| {
            errors.push(ConfigDiagnostic::file(origin, format!("{name}: {message}")));
        };
        match (&sink.url, &sink.url_file) {
            (Some(_), Some(_)) => fail("set either url or url_file, not both".to_string()),
            (None, None) => fail("needs url or url_file".to_string()),
            (Some(url), None) => {
                if let Err(why) = crate::notify::check_url(url.expose()) {
                    fail(why);
                }
            }
            (None, Some(_)) => {}
        }
        if sink.max_attempts == 0 {
            fail("max_attempts must be at least 1".to_string());
        }
        if sink.timeout.is_zero() {
            fail("timeout must be greater than zero".to_string());
        }
    }
    errors
}

/// Expands `rules.files` (files, directories, globs) and reads every file.
fn read_rule_files(
    config: &Config,
    origin: &str,
    base_dir: &Path,
) -> (Vec<rules::SourceFile>, Vec<ConfigDiagnostic>) {
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for entry in &config.rules.files {
        match expand_rule_path(base_dir, &entry.value) {
            Ok(paths) if paths.is_empty() => errors.push(ConfigDiagnostic::at(
                origin,
                &entry.referenced,
                format!("rules.files: `{}` matches no rule file", entry.value),
            )),
            Ok(paths) => {
                for p in paths {
                    match std::fs::read_to_string(&p) {
                        Ok(text) => sources.push(rules::SourceFile {
                            origin: p.display().to_string(),
                            text,
                        }),
                        Err(e) => errors.push(ConfigDiagnostic::file(
                            &p.display().to_string(),
                            format!("cannot read rule file: {e}"),
                        )),
                    }
                }
            }
            Err(message) => errors.push(ConfigDiagnostic::at(
                origin,
                &entry.referenced,
                format!("rules.files: `{}`: {message}", entry.value),
            )),
        }
    }
    // Named lists kept in their own files (`lists: {name: {file: ...}}`), e.g. threat-intel IPs.
    for path in rules::required_files(&sources) {
        match std::fs::read_to_string(&path) {
            Ok(text) => sources.push(rules::SourceFile { origin: path, text }),
            Err(e) => errors.push(ConfigDiagnostic::file(
                &path,
                format!("cannot read list file: {e}"),
            )),
        }
    }
    (sources, errors)
}

fn expand_rule_path(base_dir: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let joined = base_dir.join(pattern);
    if joined.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&joined)
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
            .collect();
        files.sort();
        return Ok(files);
    }
    let text = joined.to_str().ok_or("path is not valid UTF-8")?;
    let mut files = glob::glob(text)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "\
store:
  path: audit.db
rules:
  files: [rules]
safety:
  protected_users: [breakglass@contoso.com]
tenants:
  - tenant_id: 00000000-0000-4000-8000-000000000001
    auth:
      client_id: app
      client_secret: s3cret
";

    fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    #[test]
    fn minimal_config_gets_safe_defaults() {
        let c = parse(MINIMAL, "revokd.yaml", no_env()).expect("parses");
        assert!(c.safety.dry_run, "dry-run is the default");
        assert_eq!(c.polling.interval, Duration::from_secs(60));
        assert_eq!(c.polling.overlap, Duration::from_secs(600));
        let t = &c.tenants[0].value;
        assert_eq!(t.graph_url.as_str(), "https://graph.microsoft.com/");
        assert!(t.feeds.sign_ins);
    }

    #[test]
    fn unknown_key_names_file_line_and_column() {
        let text = MINIMAL.replace("  path: audit.db", "  path: audit.db\n  paht: x");
        let err = parse(&text, "revokd.yaml", no_env()).expect_err("unknown key");
        let shown = err.to_string();
        assert!(
            shown.starts_with("revokd.yaml:3:3: unknown field `paht`"),
            "{shown}"
        );
    }

    #[test]
    fn bad_duration_is_located() {
        let text = format!("{MINIMAL}polling:\n  interval: 10 parsecs\n");
        let err = parse(&text, "c.yaml", no_env()).expect_err("bad duration");
        assert!(
            err.to_string().starts_with("c.yaml:13:3: invalid value"),
            "{err}"
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let env = vec![
            ("REVOKD__SAFETY__DRY_RUN".to_string(), "false".to_string()),
            ("REVOKD__STORE__PATH".to_string(), "/tmp/x.db".to_string()),
            ("UNRELATED".to_string(), "1".to_string()),
        ];
        let c = parse(MINIMAL, "revokd.yaml", env).expect("parses");
        assert!(!c.safety.dry_run);
        assert_eq!(c.store.path, PathBuf::from("/tmp/x.db"));
        assert_eq!(c.safety.protected_users, vec!["breakglass@contoso.com"]);
    }

    #[test]
    fn missing_secret_is_reported_at_the_tenant() {
        let text = MINIMAL.replace("      client_secret: s3cret\n", "");
        let c = parse(&text, "revokd.yaml", no_env()).expect("parses");
        let errors = validate(&c, "revokd.yaml");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].to_string().starts_with(
                "revokd.yaml:8:5: tenant 00000000-0000-4000-8000-000000000001: auth needs"
            ),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c = parse(MINIMAL, "revokd.yaml", no_env()).expect("parses");
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
