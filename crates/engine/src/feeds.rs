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
}

impl FeedKind {
    /// The name used for cursors, decisions and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::RiskyUsers => "risky_users",
            Self::RiskDetections => "risk_detections",
            Self::SignIns => "sign_ins",
        }
    }

    fn graph_feed(self) -> Feed {
        match self {
            Self::RiskyUsers => Feed::RiskyUsers,
            Self::RiskDetections => Feed::RiskDetections,
            Self::SignIns => Feed::SignIns,
        }
    }

    /// The timestamp property the window filters on.
    fn time_field(self) -> &'static str {
        match self {
            Self::RiskyUsers => "riskLastUpdatedDateTime",
            Self::RiskDetections => "detectedDateTime",
            Self::SignIns => "createdDateTime",
        }
    }

    /// The largest page Graph serves for the feed.
    fn page_size(self) -> u32 {
        match self {
            Self::RiskyUsers | Self::RiskDetections => 500,
            Self::SignIns => 1000,
        }
    }
}

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
    pub duplicates: u64,
}

/// Everything a pass needs besides the tenant.
pub(crate) struct PassContext<'a> {
    pub store: &'a Store,
    pub rules: &'a rules::RuleSet,
    pub gate: &'a SafetyGate,
    pub polling: &'a crate::config::PollingConfig,
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
            FeedKind::SignIns => Self::SignIn(Box::new(serde::Deserialize::deserialize(raw)?)),
        })
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

/// One pass over `feed` for the tenant of `client`.
///
/// # Errors
/// A page that could not be fetched or read after the retry policy, or a store failure. The
/// cursor is left where it was, so the next pass reads the same window again.
pub(crate) async fn poll(
    ctx: &PassContext<'_>,
    client: &GraphClient,
    feed: FeedKind,
) -> Result<FeedReport, EngineError> {
    let tenant_id = client.tenant_id();
    let started = Utc::now();
    let since = match ctx.store.cursor(tenant_id, feed.name()).await? {
        Some(watermark) => earlier(watermark, ctx.polling.overlap),
        None => earlier(started, ctx.polling.lookback),
    };
    let query = ListQuery {
        filter: Some(format!(
            "{} ge {}",
            feed.time_field(),
            since.to_rfc3339_opts(SecondsFormat::Secs, true)
        )),
        top: Some(feed.page_size()),
        select: Vec::new(),
    };
    let mut url = client.list_url(feed.graph_feed(), &query).to_string();
    let mut report = FeedReport::default();
    loop {
        let (page, meta) = client
            .get_page::<serde_json::Value>(feed.graph_feed(), &url)
            .await?;
        report.pages += 1;
        for raw in &page.value {
            report.records += 1;
            match FeedRecord::parse(feed, raw) {
                Ok(record) => evaluate(ctx, tenant_id, feed, &record, raw, &mut report).await?,
                Err(e) => {
                    report.rejected += 1;
                    warn!(
                        request_id = meta.request_id.as_deref().unwrap_or("-"),
                        error = %e,
                        "record rejected"
                    );
                }
            }
        }
        match page.next_link {
            Some(next) => url = next,
            None => break,
        }
    }
    // Only now are all decisions of the window committed: the watermark may move.
    ctx.store
        .set_cursor(tenant_id, feed.name(), started)
        .await?;
    info!(
        pages = report.pages,
        records = report.records,
        matches = report.matches,
        enforced = report.enforced,
        "feed polled"
    );
    Ok(report)
}

async fn evaluate(
    ctx: &PassContext<'_>,
    tenant_id: &str,
    feed: FeedKind,
    record: &FeedRecord,
    raw: &serde_json::Value,
    report: &mut FeedReport,
) -> Result<(), EngineError> {
    let rule_record = record.as_rule_record();
    let matches = ctx.rules.evaluate(&rule_record);
    if matches.is_empty() {
        return Ok(());
    }
    let Some(user_id) = rule_record.user_id() else {
        warn!("a rule matched a record without a user id; nothing to contain");
        return Ok(());
    };
    let subject = Subject {
        user_id,
        user_principal_name: rule_record.user_principal_name(),
    };
    let trigger_key = record.trigger_key();
    for m in matches {
        report.matches += 1;
        let now = Utc::now();
        let verdict = ctx
            .gate
            .judge(ctx.store, tenant_id, m.rule, subject, now)
            .await?;
        let decision = NewDecision {
            tenant_id: tenant_id.to_string(),
            source: feed.name().to_string(),
            trigger_key: trigger_key.clone(),
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
        match ctx.store.record_decision(&decision).await? {
            DecisionInsert::Duplicate { .. } => report.duplicates += 1,
            DecisionInsert::Inserted { decision_id, .. } => {
                match verdict.mode {
                    DecisionMode::Enforce => report.enforced += 1,
                    DecisionMode::DryRun => report.dry_run += 1,
                    DecisionMode::Protected => report.protected += 1,
                    DecisionMode::Cooldown => report.cooldown += 1,
                    DecisionMode::Held => {}
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

/// `t - d`, saturating at the earliest representable time instead of panicking.
pub(crate) fn earlier(t: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}
