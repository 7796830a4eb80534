//! Feed polling: one pass over a feed's time window, from the cursor to now.
//!
//! Graph has no delta query for these feeds, so each pass asks for everything changed since the
//! stored watermark minus an overlap, follows every `@odata.nextLink`, evaluates each record,
//! writes the decisions, and only then moves the watermark to the time the pass started.

use chrono::{DateTime, SecondsFormat, Utc};
use graph::client::{Feed, GraphClient, ListQuery};
use graph::models::{RiskDetection, RiskyUser, SignIn};
use serde::Serialize;
use store::{DecisionInsert, DecisionMode, NewDecision, Store};
use tracing::{info, warn};

use crate::EngineError;
use crate::safety::{SafetyGate, Subject};

/// The feeds revokd reads, with how each is windowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedKind {
    RiskyUsers,
    RiskDetections,
    SignIns,
    /// Sign-ins by apps holding a user's refresh token; listed only on Graph's beta endpoint.
    NonInteractiveSignIns,
}

impl FeedKind {
    /// The name used for cursors, decisions and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::RiskyUsers => "risky_users",
            Self::RiskDetections => "risk_detections",
            Self::SignIns => "sign_ins",
            Self::NonInteractiveSignIns => "non_interactive_sign_ins",
        }
    }

    fn graph_feed(self) -> Feed {
        match self {
            Self::RiskyUsers => Feed::RiskyUsers,
            Self::RiskDetections => Feed::RiskDetections,
            Self::SignIns => Feed::SignIns,
            Self::NonInteractiveSignIns => Feed::BetaSignIns,
        }
    }

    /// The timestamp property the window filters on. Detections filter on their last update,
    /// which is never earlier than their detection, so a raised risk level is read again.
    fn time_field(self) -> &'static str {
        match self {
            Self::RiskyUsers => "riskLastUpdatedDateTime",
            Self::RiskDetections => "lastUpdatedDateTime",
            Self::SignIns | Self::NonInteractiveSignIns => "createdDateTime",
        }
    }

    /// A clause every request of the feed carries besides the time window.
    fn fixed_filter(self) -> Option<&'static str> {
        match self {
            Self::NonInteractiveSignIns => {
                Some("signInEventTypes/any(t: t eq 'nonInteractiveUser')")
            }
            _ => None,
        }
    }

    fn is_sign_ins(self) -> bool {
        matches!(self, Self::SignIns | Self::NonInteractiveSignIns)
    }

    /// The largest page Graph serves for the feed.
    fn page_size(self) -> u32 {
        match self {
            Self::RiskyUsers | Self::RiskDetections => 500,
            Self::SignIns | Self::NonInteractiveSignIns => 1000,
        }
    }
}

/// How the riskyUsers feed is read. Graph documents `$filter` on riskLevel and riskState but
/// not range operators on `riskLastUpdatedDateTime`, so revokd tries the time window and falls
/// back to listing every user at risk when a tenant refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskyUsersMode {
    /// Try `window`; switch to `listing` for good after a 400 on the window filter.
    Auto,
    /// `riskLastUpdatedDateTime ge <watermark - overlap>`.
    Window,
    /// `riskState eq 'atRisk' or riskState eq 'confirmedCompromised'`, every poll.
    Listing,
}

impl RiskyUsersMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Window => "window",
            Self::Listing => "listing",
        }
    }
}

const LISTING_FILTER: &str = "riskState eq 'atRisk' or riskState eq 'confirmedCompromised'";

/// What one pass over a feed saw and decided.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FeedReport {
    pub pages: u32,
    pub records: u64,
    /// Records that could not be read as the feed's type (logged with the page's request-id).
    pub rejected: u64,
    pub matches: u64,
    pub enforced: u64,
    pub dry_run: u64,
    pub protected: u64,
    pub cooldown: u64,
    pub held: u64,
    pub suppressed: u64,
    pub duplicates: u64,
    /// Successful sign-ins by users after revokd contained them.
    pub post_containment: u64,
    /// Records not evaluated because Identity Protection is still processing them.
    pub processing: u64,
    /// Time slices the window was read in.
    pub slices: u32,
    /// How riskyUsers was read (`window` or `listing`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
}

/// Everything a pass needs besides the tenant.
pub(crate) struct PassContext<'a> {
    pub store: &'a Store,
    pub rules: &'a rules::RuleSet,
    pub gate: &'a SafetyGate,
    pub polling: &'a crate::config::PollingConfig,
    /// The riskyUsers mode in use for this tenant; `Auto` turns into what worked.
    pub risky_users_mode: &'a std::sync::Mutex<RiskyUsersMode>,
    /// This tenant's directory look-ups (user attributes, protected groups).
    pub directory: &'a crate::directory::Directory,
    /// This tenant's window aggregates; they outlive passes and rule reloads.
    pub windows: &'a std::sync::Mutex<rules::WindowState>,
    /// Whether an enabled `post_containment` rule is loaded (looked up once per pass).
    pub watches_post_containment: bool,
}

/// A record of any feed, owned, with its JSON as received.
enum FeedRecord {
    RiskyUser(RiskyUser),
    // Boxed: detections and sign-ins are several times larger than a risky user.
    RiskDetection(Box<RiskDetection>),
    SignIn(Box<SignIn>),
}

impl FeedRecord {
    fn parse(feed: FeedKind, raw: &serde_json::Value) -> Result<Self, serde_json::Error> {
        Ok(match feed {
            FeedKind::RiskyUsers => Self::RiskyUser(serde::Deserialize::deserialize(raw)?),
            FeedKind::RiskDetections => {
                Self::RiskDetection(Box::new(serde::Deserialize::deserialize(raw)?))
            }
            FeedKind::SignIns | FeedKind::NonInteractiveSignIns => {
                Self::SignIn(Box::new(serde::Deserialize::deserialize(raw)?))
            }
        })
    }

    /// For a risky user Identity Protection is still processing: the time to read it again from.
    fn still_processing(&self) -> Option<DateTime<Utc>> {
        match self {
            // Without a timestamp there is nothing to hold the cursor at; the user is read again
            // once processing ends, because that updates riskLastUpdatedDateTime.
            Self::RiskyUser(u) if u.is_processing == Some(true) => u.risk_last_updated_date_time,
            _ => None,
        }
    }

    /// When the record happened, for ordering a window's sign-ins.
    fn time(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::SignIn(s) => Some(s.created_date_time),
            Self::RiskDetection(d) => d.detected_date_time,
            Self::RiskyUser(u) => u.risk_last_updated_date_time,
        }
    }

    fn as_rule_record(&self) -> rules::Record<'_> {
        match self {
            Self::RiskyUser(r) => rules::Record::RiskyUser(r),
            Self::RiskDetection(r) => rules::Record::RiskDetection(r),
            Self::SignIn(r) => rules::Record::SignIn(r),
        }
    }

    /// Identifies this version of the record: re-reading it in the overlap adds nothing, while
    /// a risk change (or a sign-in republished with risk data) is evaluated again.
    fn trigger_key(&self) -> String {
        fn ts(t: Option<DateTime<Utc>>) -> String {
            t.map_or_else(
                || "none".to_string(),
                |t| t.to_rfc3339_opts(SecondsFormat::Micros, true),
            )
        }
        fn opt<T: std::fmt::Display>(v: Option<&T>) -> String {
            v.map_or_else(|| "none".to_string(), ToString::to_string)
        }
        match self {
            Self::RiskyUser(u) => format!(
                "risky_users:{}:{}:{}:{}",
                u.id,
                ts(u.risk_last_updated_date_time),
                opt(u.risk_level.as_ref()),
                opt(u.risk_state.as_ref())
            ),
            Self::RiskDetection(d) => {
                format!("risk_detections:{}:{}", d.id, ts(d.last_updated_date_time))
            }
            Self::SignIn(s) => format!(
                "sign_ins:{}:{}:{}",
                s.id,
                opt(s.risk_level_aggregated.as_ref()),
                opt(s.risk_state.as_ref())
            ),
        }
    }
}

/// One pass over `feed` for the tenant of `client`: from the stored watermark (minus the
/// overlap; the lookback on a first start) to the moment the pass began, in slices of at most
/// `polling.max_window`, each slice's cursor committed once its decisions are.
///
/// # Errors
/// A page that could not be fetched or read after the retry policy, or a store failure. The
/// cursor stays at the last completed slice, so the next pass reads the rest again.
pub(crate) async fn poll(
    ctx: &PassContext<'_>,
    client: &GraphClient,
    feed: FeedKind,
) -> Result<FeedReport, EngineError> {
    let mut report = FeedReport::default();
    if feed == FeedKind::RiskyUsers {
        let mode = current_mode(ctx);
        if mode == RiskyUsersMode::Listing {
            report.mode = Some(mode.as_str());
            read_pages(ctx, client, feed, LISTING_FILTER.to_string(), &mut report).await?;
            info!(
                mode = mode.as_str(),
                pages = report.pages,
                records = report.records,
                matches = report.matches,
                enforced = report.enforced,
                "feed polled"
            );
            return Ok(report);
        }
        report.mode = Some(RiskyUsersMode::Window.as_str());
    }
    let tenant_id = client.tenant_id();
    let started = Utc::now();
    // Sign-in windows are rebuilt from the feed after a restart, so the overlap covers them.
    let overlap = match ctx.rules.longest_window() {
        Some(window) if feed.is_sign_ins() => window.max(ctx.polling.overlap),
        _ => ctx.polling.overlap,
    };
    let mut from = match ctx.store.cursor(tenant_id, feed.name()).await? {
        Some(watermark) => earlier(watermark, overlap),
        None => earlier(started, ctx.polling.lookback),
    };
    loop {
        let until = later(from, ctx.polling.max_window).filter(|end| *end < started);
        let filter = window_filter(feed, from, until);
        report.slices += 1;
        let hold = match read_pages(ctx, client, feed, filter, &mut report).await {
            Err(EngineError::Graph(e)) if falls_back(ctx, feed, &e) => {
                return switch_to_listing(ctx, client, &e, report).await;
            }
            other => other?,
        };
        let end = until.unwrap_or(started);
        // Records still being processed are read again from their own time on the next pass.
        let watermark = hold.map_or(end, |h| h.min(end));
        // Only now are all decisions of the slice committed: the watermark may move.
        ctx.store
            .set_cursor(tenant_id, feed.name(), watermark)
            .await?;
        match until {
            Some(end) => from = end,
            None => break,
        }
    }
    info!(
        pages = report.pages,
        records = report.records,
        slices = report.slices,
        matches = report.matches,
        enforced = report.enforced,
        "feed polled"
    );
    Ok(report)
}

fn current_mode(ctx: &PassContext<'_>) -> RiskyUsersMode {
    *ctx.risky_users_mode
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether this error means the tenant refuses the riskyUsers window filter.
fn falls_back(ctx: &PassContext<'_>, feed: FeedKind, error: &graph::error::GraphError) -> bool {
    feed == FeedKind::RiskyUsers
        && current_mode(ctx) == RiskyUsersMode::Auto
        && error.status() == Some(400)
}

async fn switch_to_listing(
    ctx: &PassContext<'_>,
    client: &GraphClient,
    error: &graph::error::GraphError,
    mut report: FeedReport,
) -> Result<FeedReport, EngineError> {
    warn!(error = %error, "riskyUsers refused the time-window filter; listing every user at risk from now on");
    *ctx.risky_users_mode
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = RiskyUsersMode::Listing;
    ctx.store
        .record_daemon_event(
            "feed_mode",
            &serde_json::json!({
                "tenant_id": client.tenant_id(),
                "feed": FeedKind::RiskyUsers.name(),
                "mode": RiskyUsersMode::Listing.as_str(),
                "reason": error.to_string(),
            }),
        )
        .await?;
    report.mode = Some(RiskyUsersMode::Listing.as_str());
    read_pages(
        ctx,
        client,
        FeedKind::RiskyUsers,
        LISTING_FILTER.to_string(),
        &mut report,
    )
    .await?;
    Ok(report)
}

/// `field ge from [and field lt until]`, plus the feed's fixed clause.
fn window_filter(feed: FeedKind, from: DateTime<Utc>, until: Option<DateTime<Utc>>) -> String {
    let field = feed.time_field();
    let mut filter = format!(
        "{field} ge {}",
        from.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    if let Some(until) = until {
        filter.push_str(&format!(
            " and {field} lt {}",
            until.to_rfc3339_opts(SecondsFormat::Secs, true)
        ));
    }
    if let Some(fixed) = feed.fixed_filter() {
        filter.push_str(" and ");
        filter.push_str(fixed);
    }
    filter
}

/// Reads every page of one query and evaluates each record. Returns the earliest time of a
/// record skipped because Identity Protection is still processing it.
///
/// Records are evaluated page by page as they arrive, so memory holds one page, except for
/// sign-ins when a rule aggregates over a window: Graph serves sign-ins newest first, and a
/// window ("failures, then a success") must see them oldest first, so the slice is gathered and
/// sorted before it is evaluated (`polling.max_window` bounds a slice).
async fn read_pages(
    ctx: &PassContext<'_>,
    client: &GraphClient,
    feed: FeedKind,
    filter: String,
    report: &mut FeedReport,
) -> Result<Option<DateTime<Utc>>, EngineError> {
    let query = ListQuery {
        filter: Some(filter),
        top: Some(feed.page_size()),
        select: Vec::new(),
    };
    let oldest_first = feed.is_sign_ins() && ctx.rules.longest_window().is_some();
    let mut gathered: Vec<(FeedRecord, serde_json::Value)> = Vec::new();
    let mut url = client.list_url(feed.graph_feed(), &query).to_string();
    let mut hold: Option<DateTime<Utc>> = None;
    loop {
        let (page, meta) = client
            .get_page::<serde_json::Value>(feed.graph_feed(), &url)
            .await?;
        report.pages += 1;
        for raw in page.value {
            report.records += 1;
            let record = match FeedRecord::parse(feed, &raw) {
                Ok(record) => record,
                Err(e) => {
                    report.rejected += 1;
                    warn!(
                        request_id = meta.request_id.as_deref().unwrap_or("-"),
                        error = %e,
                        "record rejected"
                    );
                    continue;
                }
            };
            if let Some(since) = record
                .still_processing()
                .filter(|_| ctx.polling.skip_processing)
            {
                report.processing += 1;
                hold = Some(hold.map_or(since, |h| h.min(since)));
                continue;
            }
            if oldest_first {
                gathered.push((record, raw));
            } else {
                evaluate(ctx, client, feed, &record, &raw, report).await?;
            }
        }
        match page.next_link {
            Some(next) => url = next,
            None => break,
        }
    }
    gathered.sort_by_key(|(record, _)| record.time());
    for (record, raw) in &gathered {
        evaluate(ctx, client, feed, record, raw, report).await?;
    }
    Ok(hold)
}

async fn evaluate(
    ctx: &PassContext<'_>,
    client: &GraphClient,
    feed: FeedKind,
    record: &FeedRecord,
    raw: &serde_json::Value,
    report: &mut FeedReport,
) -> Result<(), EngineError> {
    let rule_record = record.as_rule_record();
    let trigger_key = record.trigger_key();
    evaluate_as(
        ctx,
        client,
        feed.name(),
        &trigger_key,
        &rule_record,
        raw,
        report,
    )
    .await?;
    if let FeedRecord::SignIn(sign_in) = record {
        after_containment(ctx, client, sign_in, raw, report).await?;
    }
    Ok(())
}

/// A successful sign-in by a user whose sessions revokd revoked, made after the revocation took
/// effect, means the attacker holds another credential or token: it is evaluated again as a
/// `post_containment` record, for rules that escalate (disable the account, notify). Looked
/// for only while some rule of that source is loaded.
async fn after_containment(
    ctx: &PassContext<'_>,
    client: &GraphClient,
    sign_in: &SignIn,
    raw: &serde_json::Value,
    report: &mut FeedReport,
) -> Result<(), EngineError> {
    let succeeded = sign_in.status.as_ref().and_then(|s| s.error_code) == Some(0);
    if !succeeded || !ctx.watches_post_containment {
        return Ok(());
    }
    let Some(contained) = ctx
        .store
        .contained_since(client.tenant_id(), &sign_in.user_id)
        .await?
    else {
        return Ok(());
    };
    if sign_in.created_date_time <= contained {
        return Ok(());
    }
    warn!(
        user = sign_in.user_principal_name.as_deref().unwrap_or(&sign_in.user_id),
        sign_in = %sign_in.id,
        contained_at = %contained.to_rfc3339_opts(SecondsFormat::Secs, true),
        "successful sign-in after containment"
    );
    report.post_containment += 1;
    let trigger_key = format!("post_containment:{}", sign_in.id);
    let record = rules::Record::PostContainment(sign_in);
    evaluate_as(
        ctx,
        client,
        "post_containment",
        &trigger_key,
        &record,
        raw,
        report,
    )
    .await
}

/// Evaluates one record as `source` and records a decision for every match.
async fn evaluate_as(
    ctx: &PassContext<'_>,
    client: &GraphClient,
    source: &str,
    trigger_key: &str,
    rule_record: &rules::Record<'_>,
    raw: &serde_json::Value,
    report: &mut FeedReport,
) -> Result<(), EngineError> {
    let tenant_id = client.tenant_id();
    let user_id = rule_record.user_id();
    let facts = match user_id {
        Some(id) if ctx.rules.reads_user(rule_record.source()) => {
            match ctx.directory.facts(client, id).await {
                Ok(facts) => Some(facts),
                Err(e) => {
                    // `user.*` then reads as absent: a rule that needs it does not match.
                    warn!(user = id, error = %e, "directory look-up failed");
                    None
                }
            }
        }
        _ => None,
    };
    let matches = {
        let mut windows = ctx
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ctx.rules
            .evaluate_with(rule_record, facts.as_deref(), &mut windows)
    };
    if matches.is_empty() {
        return Ok(());
    }
    let Some(user_id) = user_id else {
        warn!("a rule matched a record without a user id; nothing to contain");
        return Ok(());
    };
    let subject = Subject {
        user_id,
        user_principal_name: rule_record.user_principal_name(),
    };
    for m in matches {
        report.matches += 1;
        let now = Utc::now();
        let verdict = if let Some(exception) = &m.suppressed_by {
            crate::safety::Verdict {
                mode: DecisionMode::Suppressed,
                reason: Some(format!("suppressed by exception: {exception}")),
            }
        } else {
            let judged = ctx
                .gate
                .judge(ctx.store, tenant_id, m.rule, subject, now)
                .await?;
            match judged.mode {
                DecisionMode::Enforce | DecisionMode::DryRun => ctx
                    .directory
                    .protection(client, user_id)
                    .await
                    .unwrap_or(judged),
                _ => judged,
            }
        };
        let decision = NewDecision {
            tenant_id: tenant_id.to_string(),
            source: source.to_string(),
            trigger_key: trigger_key.to_string(),
            rule_id: m.rule.id.clone(),
            rule_hash: m.rule.hash.clone(),
            user_id: user_id.to_string(),
            user_principal_name: subject.user_principal_name.map(str::to_string),
            mode: verdict.mode,
            reason: verdict.reason.clone(),
            record_json: raw.to_string(),
            explanation_json: serde_json::to_string(&m.explanation)?,
            operator: None,
            decided_at: now,
            actions: m
                .rule
                .actions
                .iter()
                .map(|a| crate::action_kind(*a))
                .collect(),
        };
        // The breaker may hold an enforced decision; count and log it as recorded.
        let recorded = ctx.gate.record(ctx.store, &decision).await?;
        let verdict = crate::safety::Verdict {
            mode: recorded.mode,
            reason: recorded.reason,
        };
        match recorded.insert {
            DecisionInsert::Duplicate { .. } => report.duplicates += 1,
            DecisionInsert::Inserted { decision_id, .. } => {
                match verdict.mode {
                    DecisionMode::Enforce => report.enforced += 1,
                    DecisionMode::DryRun => report.dry_run += 1,
                    DecisionMode::Protected => report.protected += 1,
                    DecisionMode::Cooldown => report.cooldown += 1,
                    DecisionMode::Held => report.held += 1,
                    DecisionMode::Suppressed => report.suppressed += 1,
                }
                info!(
                    rule = %m.rule.id,
                    user = subject.user_principal_name.unwrap_or(user_id),
                    mode = %verdict.mode,
                    reason = verdict.reason.as_deref().unwrap_or("-"),
                    decision_id,
                    "decision recorded"
                );
            }
        }
    }
    Ok(())
}

/// `t + d`, or `None` past the representable range.
fn later(t: DateTime<Utc>, d: std::time::Duration) -> Option<DateTime<Utc>> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
}

/// `t - d`, saturating at the earliest representable time instead of panicking.
pub(crate) fn earlier(t: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}
