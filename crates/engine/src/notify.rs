//! Webhook notifications: alerts (breaker trips, failed actions, guests a revoke cannot reach)
//! and the `notify` rule action, sent to the sinks listed under `notify:` in the config.
//!
//! Containment never waits for a webhook. Events go into a bounded queue that one background
//! task drains; when the queue is full the event is dropped with a warning instead of blocking
//! the executor or the safety gate. Each delivery has its own timeout and retries (backoff on
//! 429, 5xx and transport errors); a delivery that still fails is logged and recorded as a
//! `notify_failed` daemon event. Webhook URLs carry their own secret, so they are held as
//! [`Secret`]s and never logged or stored; logs name a sink by its `name`.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use graph::auth::Secret;
use graph::retry::RetryPolicy;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::Store;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::EngineError;
use crate::config::NotifySinkConfig;

/// Events queued at most; beyond that new events are dropped (and counted), never waited for.
pub const QUEUE_CAPACITY: usize = 1024;

/// What happened, as sinks subscribe to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// Graph accepted an action.
    ActionSucceeded,
    /// An action failed for good (a permanent error or retries exhausted).
    ActionFailed,
    /// The blast-radius breaker tripped: enforcement is paused until `revokd resume`.
    BreakerTripped,
    /// A revoke reached an external (B2B) guest, whose sessions it does not end.
    GuestNotContained,
    /// A rule's `notify` action.
    Notify,
}

impl NotifyEvent {
    /// The name used in config and payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ActionSucceeded => "action_succeeded",
            Self::ActionFailed => "action_failed",
            Self::BreakerTripped => "breaker_tripped",
            Self::GuestNotContained => "guest_not_contained",
            Self::Notify => "notify",
        }
    }
}

/// The payload shape a sink expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    /// revokd's own JSON: `{event, tenant_id, summary, details, at}`.
    Generic,
    /// A Slack incoming webhook: `{"text": ...}`.
    Slack,
    /// A Microsoft Teams workflow webhook: a message with one Adaptive Card.
    Teams,
}

/// One event for the sinks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// What happened.
    pub event: NotifyEvent,
    /// The tenant it happened in.
    pub tenant_id: String,
    /// One line for people.
    pub summary: String,
    /// Everything else, for machines (ids, rule, user, Graph's answer).
    pub details: Value,
    /// When it happened.
    pub at: DateTime<Utc>,
}

impl Notification {
    /// A notification stamped now.
    pub fn new(
        event: NotifyEvent,
        tenant_id: &str,
        summary: impl Into<String>,
        details: Value,
    ) -> Self {
        Self {
            event,
            tenant_id: tenant_id.to_string(),
            summary: summary.into(),
            details,
            at: Utc::now(),
        }
    }

    /// The body a sink of `kind` receives.
    pub fn payload(&self, kind: SinkKind) -> Value {
        let title = format!("revokd: {}", self.event.as_str().replace('_', " "));
        match kind {
            SinkKind::Generic => json!({
                "source": "revokd",
                "event": self.event,
                "tenant_id": self.tenant_id,
                "summary": self.summary,
                "details": self.details,
                "at": self.at,
            }),
            SinkKind::Slack => json!({
                "text": format!("*{title}* (tenant {}): {}", self.tenant_id, self.summary),
            }),
            SinkKind::Teams => json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium"},
                            {"type": "TextBlock", "text": self.summary, "wrap": true},
                            {"type": "FactSet", "facts": [
                                {"title": "Tenant", "value": self.tenant_id},
                                {"title": "At", "value": self.at.to_rfc3339()},
                            ]},
                        ],
                    },
                }],
            }),
        }
    }
}

/// Checks a webhook URL: absolute http(s) with a host. The URL is not repeated in the message.
///
/// # Errors
/// Why the URL cannot be used.
pub fn check_url(url: &str) -> Result<(), String> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(()),
        Ok(_) => Err("url must be an http(s) URL with a host".to_string()),
        Err(e) => Err(format!("url is not a URL: {e}")),
    }
}

/// A sink ready to deliver to.
#[derive(Debug, Clone)]
struct Sink {
    name: String,
    kind: SinkKind,
    url: Secret,
    events: HashSet<NotifyEvent>,
    retry: RetryPolicy,
    http: reqwest::Client,
}

/// Sends notifications to the configured sinks without ever blocking the caller. Cheap to
/// clone; the delivery task ends once every clone is dropped.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    shared: Option<Arc<Shared>>,
}

#[derive(Debug)]
struct Shared {
    tx: mpsc::Sender<Notification>,
    /// Events every sink together subscribes to, to skip building what nobody wants.
    subscribed: HashSet<NotifyEvent>,
    /// Sinks per event, for the `notify` action's detail.
    per_event: Vec<(NotifyEvent, usize)>,
    /// Queued or being delivered; `flush` waits for zero.
    outstanding: AtomicUsize,
    idle: tokio::sync::Notify,
    /// Events dropped because the queue was full.
    dropped: AtomicU64,
}

impl Notifier {
    /// A notifier without sinks: every event is discarded.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Reads each sink's URL (inline or from its file, relative to `base_dir`), builds its HTTP
    /// client, and starts the delivery task. Without sinks, returns a disabled notifier.
    ///
    /// # Errors
    /// A URL file that cannot be read or holds no usable URL, or an HTTP client that cannot be
    /// built.
    pub fn start(
        configs: &[NotifySinkConfig],
        base_dir: &std::path::Path,
        store: Option<Store>,
    ) -> Result<Self, EngineError> {
        if configs.is_empty() {
            return Ok(Self::disabled());
        }
        let mut sinks = Vec::new();
        for (i, c) in configs.iter().enumerate() {
            let name = c.name.clone().unwrap_or_else(|| format!("notify[{i}]"));
            let url = match (&c.url, &c.url_file) {
                (Some(url), _) => url.clone(),
                (None, Some(path)) => {
                    let path = base_dir.join(path);
                    let text = std::fs::read_to_string(&path).map_err(|e| {
                        EngineError::Notify(format!(
                            "{name}: cannot read url_file {}: {e}",
                            path.display()
                        ))
                    })?;
                    Secret::new(text.trim().to_string())
                }
                // `config::validate` rejects a sink without either.
                (None, None) => Secret::new(String::new()),
            };
            check_url(url.expose()).map_err(|why| EngineError::Notify(format!("{name}: {why}")))?;
            let http = graph::http_client(c.timeout)?;
            sinks.push(Sink {
                name,
                kind: c.kind,
                url,
                events: c.events.iter().copied().collect(),
                retry: RetryPolicy {
                    max_attempts: c.max_attempts.max(1),
                    base_delay: Duration::from_millis(500),
                    max_delay: Duration::from_secs(10),
                },
                http,
            });
        }
        Ok(Self::with_sinks(sinks, store))
    }

    fn with_sinks(sinks: Vec<Sink>, store: Option<Store>) -> Self {
        let subscribed: HashSet<NotifyEvent> = sinks
            .iter()
            .flat_map(|s| s.events.iter().copied())
            .collect();
        let per_event = subscribed
            .iter()
            .map(|e| (*e, sinks.iter().filter(|s| s.events.contains(e)).count()))
            .collect();
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let shared = Arc::new(Shared {
            tx,
            subscribed,
            per_event,
            outstanding: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
            dropped: AtomicU64::new(0),
        });
        tokio::spawn(deliver_all(rx, sinks, Arc::downgrade(&shared), store));
        Self {
            shared: Some(shared),
        }
    }

    /// How many sinks receive `event`.
    pub fn subscribers(&self, event: NotifyEvent) -> usize {
        self.shared.as_ref().map_or(0, |s| {
            s.per_event
                .iter()
                .find(|(e, _)| *e == event)
                .map_or(0, |(_, n)| *n)
        })
    }

    /// Queues a notification for every sink subscribed to its event. Returns whether it was
    /// queued: false when no sink wants it or the queue is full (then it is dropped and
    /// counted; the caller never waits).
    pub fn send(&self, notification: Notification) -> bool {
        let Some(shared) = &self.shared else {
            return false;
        };
        if !shared.subscribed.contains(&notification.event) {
            return false;
        }
        shared.outstanding.fetch_add(1, Ordering::SeqCst);
        match shared.tx.try_send(notification) {
            Ok(()) => true,
            Err(e) => {
                shared.done();
                let dropped = shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                let event = match &e {
                    mpsc::error::TrySendError::Full(n) | mpsc::error::TrySendError::Closed(n) => {
                        n.event.as_str()
                    }
                };
                warn!(
                    event,
                    dropped, "notification queue full; notification dropped"
                );
                false
            }
        }
    }

    /// Events dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared
            .as_ref()
            .map_or(0, |s| s.dropped.load(Ordering::Relaxed))
    }

    /// Waits until every queued notification has been delivered or given up on, for at most
    /// `deadline`. Returns whether the queue emptied in time. Called before the process exits.
    pub async fn flush(&self, deadline: Duration) -> bool {
        let Some(shared) = &self.shared else {
            return true;
        };
        let wait = async {
            loop {
                let idle = shared.idle.notified();
                if shared.outstanding.load(Ordering::SeqCst) == 0 {
                    return;
                }
                idle.await;
            }
        };
        tokio::time::timeout(deadline, wait).await.is_ok()
    }
}

impl Shared {
    fn done(&self) {
        if self.outstanding.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }
}

/// The delivery task: one notification at a time, to each subscribed sink in turn.
async fn deliver_all(
    mut rx: mpsc::Receiver<Notification>,
    sinks: Vec<Sink>,
    shared: std::sync::Weak<Shared>,
    store: Option<Store>,
) {
    while let Some(notification) = rx.recv().await {
        for sink in sinks
            .iter()
            .filter(|s| s.events.contains(&notification.event))
        {
            if let Err(error) = deliver(sink, &notification).await {
                warn!(
                    sink = %sink.name,
                    event = notification.event.as_str(),
                    error = %error,
                    "notification not delivered"
                );
                if let Some(store) = &store {
                    let _ = store
                        .record_daemon_event(
                            "notify_failed",
                            &json!({
                                "tenant_id": notification.tenant_id,
                                "sink": sink.name,
                                "event": notification.event,
                                "summary": notification.summary,
                                "error": error,
                            }),
                        )
                        .await;
                }
            }
        }
        match shared.upgrade() {
            Some(shared) => shared.done(),
            None => break,
        }
    }
}

/// One notification to one sink, with the sink's retries. The error never contains the URL.
async fn deliver(sink: &Sink, notification: &Notification) -> Result<(), String> {
    let body = notification.payload(sink.kind);
    let mut delays = sink.retry.backoff_delays();
    let mut attempt = 1;
    loop {
        let outcome = sink.http.post(sink.url.expose()).json(&body).send().await;
        let (error, retryable) = match outcome {
            Ok(response) if response.status().is_success() => {
                debug!(sink = %sink.name, event = notification.event.as_str(), attempt, "notification delivered");
                return Ok(());
            }
            Ok(response) => {
                let status = response.status();
                (
                    format!("http {}", status.as_u16()),
                    status.as_u16() == 429 || status.is_server_error(),
                )
            }
            Err(e) => (e.without_url().to_string(), true),
        };
        let Some(wait) = delays.next().filter(|_| retryable) else {
            return Err(format!("{error} after {attempt} attempt(s)"));
        };
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Notification {
        Notification {
            event: NotifyEvent::BreakerTripped,
            tenant_id: "t1".into(),
            summary: "enforcement paused".into(),
            details: json!({"max_actions": 100}),
            at: DateTime::from_timestamp(1_800_000_000, 0).expect("in range"),
        }
    }

    #[test]
    fn payload_shapes() {
        let n = sample();
        let generic = n.payload(SinkKind::Generic);
        assert_eq!(generic["event"], "breaker_tripped");
        assert_eq!(generic["details"]["max_actions"], 100);
        let slack = n.payload(SinkKind::Slack);
        assert_eq!(
            slack["text"],
            "*revokd: breaker tripped* (tenant t1): enforcement paused"
        );
        let teams = n.payload(SinkKind::Teams);
        assert_eq!(
            teams["attachments"][0]["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(
            teams["attachments"][0]["content"]["body"][1]["text"],
            "enforcement paused"
        );
    }

    #[test]
    fn urls_are_checked_without_echoing_them() {
        assert!(check_url("https://hooks.slack.com/services/T/B/x").is_ok());
        let err = check_url("ftp://example.com/secret-token").expect_err("scheme");
        assert!(!err.contains("secret-token"), "{err}");
        assert!(check_url("not a url").is_err());
    }

    #[tokio::test]
    async fn unsubscribed_events_are_not_queued_and_a_full_queue_drops() {
        assert!(!Notifier::disabled().send(sample()));
        let sink = Sink {
            name: "test".into(),
            kind: SinkKind::Generic,
            // Nothing listens on port 9 of localhost: deliveries fail fast.
            url: Secret::new("http://127.0.0.1:9/hook".to_string()),
            events: [NotifyEvent::BreakerTripped].into_iter().collect(),
            retry: RetryPolicy {
                max_attempts: 1,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(1),
            },
            http: graph::http_client(Duration::from_secs(1)).expect("client"),
        };
        let notifier = Notifier::with_sinks(vec![sink], None);
        assert_eq!(notifier.subscribers(NotifyEvent::BreakerTripped), 1);
        assert_eq!(notifier.subscribers(NotifyEvent::ActionFailed), 0);
        let mut failed = sample();
        failed.event = NotifyEvent::ActionFailed;
        assert!(!notifier.send(failed));
        let mut queued = 0;
        for _ in 0..QUEUE_CAPACITY + 50 {
            queued += usize::from(notifier.send(sample()));
        }
        assert!(queued >= QUEUE_CAPACITY, "{queued}");
        assert!(notifier.dropped() > 0);
        assert!(notifier.flush(Duration::from_secs(30)).await);
    }
}
