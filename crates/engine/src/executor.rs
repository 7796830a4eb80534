//! The executor: carries out the actions waiting in the outbox, as fast as Graph's quotas allow
//! and never faster.
//!
//! It works only from persisted actions, so a crash at any point loses nothing: on restart the
//! actions still `pending` or `in_flight` are picked up again (revocation is idempotent at Graph,
//! and the repeat shows in the audit as a further attempt whose retry reason says so). Held
//! actions are not touched until an operator releases them.
//!
//! Per tenant, at most `executor.concurrency` calls are in flight; every call also waits for its
//! quota class in the tenant's limiter (inside `graph`), so latency, not the client, sets the
//! pace. Pending `confirm_compromised` actions go out together, up to
//! `executor.confirm_batch_size` users per call, with one attempt row per action sharing the
//! call's request ids. Each attempt is written before the call and completed after it; retries
//! follow Graph's Retry-After (429, 503), exponential backoff with jitter where Graph sends none
//! (Identity Protection's 429, other 5xx, timeouts, dropped connections), renew the token once
//! on 401, and stop at once on 400/403/404 with Graph's error recorded.
//!
//! After a revoke, the executor reads the user back (`signInSessionsValidFromDateTime`,
//! `userType`) on the directory_read quota, without holding a write slot: a revoke is
//! confirmed when the time is at or after the call, flagged as unconfirmed otherwise, and a
//! guest (B2B) user is recorded as not contained, since a revoke in this tenant does not end a
//! guest's sessions. Outcomes go to the notify sinks; a webhook never delays containment.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use graph::client::{CallMeta, GraphClient};
use graph::error::{GraphError, RetryHint};
use serde::Serialize;
use serde_json::json;
use store::{
    ActionKind, ActionStatus, AttemptResult, NewAttempt, NewVerification, PendingAction, Store,
    StoreError, VerificationOutcome,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, warn};

use crate::EngineError;
use crate::notify::{Notification, Notifier, NotifyEvent};

/// A read-back may show a time up to this much before the call and still confirm it: Graph's
/// clock and ours are not the same clock.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Waits before each read-back of a revoke: the directory is eventually consistent, so a read
/// right after the write may still show the old time.
const READ_BACK_DELAYS: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_secs(1),
    Duration::from_secs(3),
];

/// Properties the read-back asks for.
const READ_BACK_SELECT: [&str; 4] = [
    "id",
    "userPrincipalName",
    "userType",
    "signInSessionsValidFromDateTime",
];

/// How the executor runs, from the config's `executor:` section, and where it reports.
#[derive(Debug, Clone)]
pub struct Executor {
    concurrency: usize,
    verify: bool,
    confirm_batch_size: usize,
    notifier: Notifier,
}

impl Executor {
    /// An executor per `config`, reporting outcomes through `notifier`.
    pub fn new(config: &crate::config::ExecutorConfig, notifier: Notifier) -> Self {
        Self {
            concurrency: config.concurrency.max(1),
            verify: config.verify,
            confirm_batch_size: config.confirm_batch_size.max(1),
            notifier,
        }
    }

    /// The notifier outcomes are reported through.
    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }
}

/// What one drain of the outbox did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DrainReport {
    pub succeeded: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Actions left pending because shutdown began; they resume on the next start.
    pub interrupted: u64,
    /// Revokes Graph accepted whose effect the read-back could not confirm.
    pub unconfirmed: u64,
    /// Revokes of guest (B2B) users, which do not end their sessions.
    pub guests: u64,
}

impl DrainReport {
    /// Adds another drain's counts to this one.
    pub fn add(&mut self, other: &DrainReport) {
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.interrupted += other.interrupted;
        self.unconfirmed += other.unconfirmed;
        self.guests += other.guests;
    }

    fn count(&mut self, ending: Ending) {
        match ending {
            Ending::Succeeded(check) => {
                self.succeeded += 1;
                match check {
                    Some(VerificationOutcome::Unconfirmed) => self.unconfirmed += 1,
                    Some(VerificationOutcome::GuestNotEffective) => self.guests += 1,
                    Some(VerificationOutcome::Confirmed) | None => {}
                }
            }
            Ending::Failed => self.failed += 1,
            Ending::Skipped => self.skipped += 1,
            Ending::Interrupted => self.interrupted += 1,
        }
    }
}

/// Live counts of a drain, for a progress display.
#[derive(Debug, Default)]
pub struct Progress {
    /// Actions the drain will carry out.
    pub total: AtomicU64,
    /// Actions ended so far, however they ended.
    pub done: AtomicU64,
    /// Of those, succeeded.
    pub succeeded: AtomicU64,
    /// Of those, failed.
    pub failed: AtomicU64,
}

impl Progress {
    fn record(&self, ending: Ending) {
        self.done.fetch_add(1, Ordering::Relaxed);
        match ending {
            Ending::Succeeded(_) => self.succeeded.fetch_add(1, Ordering::Relaxed),
            Ending::Failed => self.failed.fetch_add(1, Ordering::Relaxed),
            Ending::Skipped | Ending::Interrupted => 0,
        };
    }
}

/// Which pending actions a drain takes.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Every pending or in-flight action of the tenant.
    All,
    /// Only these actions (those of one `revokd revoke` or `revokd resume` run).
    Only(&'a [i64]),
}

/// How one action ended; a succeeded revoke carries its read-back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Succeeded(Option<VerificationOutcome>),
    Failed,
    Skipped,
    Interrupted,
}

/// Carries out every pending action of the tenant of `client`.
///
/// # Errors
/// Only a store failure ends a drain early; a failed action is recorded and the drain goes on.
pub async fn drain(
    store: &Store,
    client: &GraphClient,
    executor: &Executor,
    shutdown: &CancellationToken,
) -> Result<DrainReport, EngineError> {
    drain_scoped(store, client, executor, Scope::All, None, shutdown).await
}

/// Carries out the pending actions of the tenant of `client` within `scope`, counting into
/// `progress` as they end.
///
/// # Errors
/// As [`drain`].
pub async fn drain_scoped(
    store: &Store,
    client: &GraphClient,
    executor: &Executor,
    scope: Scope<'_>,
    progress: Option<Arc<Progress>>,
    shutdown: &CancellationToken,
) -> Result<DrainReport, EngineError> {
    let mut pending = store.pending_actions(Some(client.tenant_id())).await?;
    if let Scope::Only(ids) = scope {
        let wanted: HashSet<i64> = ids.iter().copied().collect();
        pending.retain(|a| wanted.contains(&a.action_id));
    }
    let mut report = DrainReport::default();
    if pending.is_empty() {
        return Ok(report);
    }
    let progress = progress.unwrap_or_default();
    progress
        .total
        .fetch_add(pending.len() as u64, Ordering::Relaxed);
    let permits = Arc::new(Semaphore::new(executor.concurrency));
    let mut tasks = JoinSet::new();
    for group in plan(pending, executor.confirm_batch_size) {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.map_err(|_| EngineError::Shutdown)?,
            () = shutdown.cancelled() => {
                for _ in &group {
                    report.count(Ending::Interrupted);
                    progress.record(Ending::Interrupted);
                }
                continue;
            }
        };
        let run = Run {
            store: store.clone(),
            client: client.clone(),
            executor: executor.clone(),
            shutdown: shutdown.clone(),
        };
        tasks.spawn(async move { run.group(group, permit).await }.in_current_span());
    }
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(endings) => {
                for ending in endings {
                    match ending {
                        Ok(ending) => {
                            report.count(ending);
                            progress.record(ending);
                        }
                        Err(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
            }
            Err(join) => {
                first_error.get_or_insert(EngineError::Task(join.to_string()));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Groups actions into calls: one per action, except `confirm_compromised`, whose users go
/// out together in batches of at most `batch` (Graph takes a list of ids).
fn plan(pending: Vec<PendingAction>, batch: usize) -> Vec<Vec<PendingAction>> {
    let (confirms, singles): (Vec<_>, Vec<_>) = pending
        .into_iter()
        .partition(|a| a.kind == ActionKind::ConfirmCompromised);
    let mut groups: Vec<Vec<PendingAction>> = singles.into_iter().map(|a| vec![a]).collect();
    let mut confirms = confirms.into_iter().peekable();
    while confirms.peek().is_some() {
        groups.push(confirms.by_ref().take(batch.max(1)).collect());
    }
    groups
}

/// The Graph endpoint an action calls, as recorded in the audit.
fn endpoint(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::RevokeSessions => "POST /v1.0/users/{id}/revokeSignInSessions",
        ActionKind::ConfirmCompromised => {
            "POST /v1.0/identityProtection/riskyUsers/confirmCompromised"
        }
        ActionKind::DisableAccount => "PATCH /v1.0/users/{id}",
        ActionKind::Notify => "notify",
    }
}

/// Whether a store error says another executor (a concurrent `revokd revoke` or `resume`)
/// already ended the action: not a failure of this drain.
fn ended_elsewhere(error: &StoreError) -> bool {
    matches!(error, StoreError::ActionClosed { .. })
}

/// Everything one task needs, owned.
struct Run {
    store: Store,
    client: GraphClient,
    executor: Executor,
    shutdown: CancellationToken,
}

/// An action of a group still being attempted, with its open attempt.
struct Member {
    action: PendingAction,
    attempt_id: Option<i64>,
    /// Why the next attempt is a retry; set before the first one for a resumed action.
    retry_reason: Option<String>,
}

impl Run {
    /// Runs one call group to its end: success, a permanent failure, exhausted retries, or
    /// shutdown. One ending per action of the group, in order.
    async fn group(
        &self,
        group: Vec<PendingAction>,
        permit: OwnedSemaphorePermit,
    ) -> Vec<Result<Ending, EngineError>> {
        let Some(kind) = group.first().map(|a| a.kind) else {
            return Vec::new();
        };
        if kind == ActionKind::Notify {
            drop(permit);
            let mut endings = Vec::new();
            for action in &group {
                endings.push(self.notify_action(action).await);
            }
            return endings;
        }
        let n = group.len();
        match self.attempt_group(kind, group, permit).await {
            Ok(endings) => endings.into_iter().map(Ok).collect(),
            Err(e) => {
                let mut out = vec![Err(e)];
                out.extend((1..n).map(|_| Ok(Ending::Interrupted)));
                out
            }
        }
    }

    /// A rule's `notify` action: queued to the sinks subscribed to `notify`, never waited for.
    async fn notify_action(&self, action: &PendingAction) -> Result<Ending, EngineError> {
        let sinks = self.executor.notifier.subscribers(NotifyEvent::Notify);
        let who = who(action);
        let (status, detail, ending) = if sinks == 0 {
            (
                ActionStatus::Skipped,
                "no notification sink subscribes to notify".to_string(),
                Ending::Skipped,
            )
        } else if self.executor.notifier.send(Notification::new(
            NotifyEvent::Notify,
            &action.tenant_id,
            format!("rule {} matched {who}", action.rule_id),
            json!({
                "rule_id": action.rule_id,
                "user_id": action.user_id,
                "user_principal_name": action.user_principal_name,
                "decision_id": action.decision_id,
                "action_id": action.action_id,
            }),
        )) {
            (
                ActionStatus::Succeeded,
                format!("queued for {sinks} sink(s)"),
                Ending::Succeeded(None),
            )
        } else {
            (
                ActionStatus::Failed,
                "notification queue full; dropped".to_string(),
                Ending::Failed,
            )
        };
        match self
            .store
            .finish_action(action.action_id, status, Some(&detail), Utc::now())
            .await
        {
            Ok(()) => Ok(ending),
            Err(e) if ended_elsewhere(&e) => Ok(Ending::Skipped),
            Err(e) => Err(e.into()),
        }
    }

    async fn attempt_group(
        &self,
        kind: ActionKind,
        group: Vec<PendingAction>,
        permit: OwnedSemaphorePermit,
    ) -> Result<Vec<Ending>, EngineError> {
        let policy = self.client.retry_policy().clone();
        let mut backoff = policy.backoff_delays();
        let mut members: Vec<Member> = group
            .into_iter()
            .map(|action| Member {
                // An action resumed after a restart repeats a call that may already have
                // reached Graph.
                retry_reason: (action.attempts > 0).then(|| {
                    format!(
                        "repeat: resumed after a restart or stop ({} earlier attempt(s), outcome unknown)",
                        action.attempts
                    )
                }),
                action,
                attempt_id: None,
            })
            .collect();
        let mut endings: Vec<(i64, Ending)> = Vec::new();
        let mut renewed_token = false;
        let mut last_error: String;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let client_request_id = uuid::Uuid::new_v4().to_string();
            let mut open = Vec::with_capacity(members.len());
            for mut m in members {
                let begun = self
                    .store
                    .begin_attempt(&NewAttempt {
                        action_id: m.action.action_id,
                        endpoint: endpoint(kind).to_string(),
                        client_request_id: client_request_id.clone(),
                        started_at: Utc::now(),
                        retry_reason: m.retry_reason.take(),
                    })
                    .await;
                match begun {
                    Ok(id) => {
                        m.attempt_id = Some(id);
                        open.push(m);
                    }
                    Err(e) if ended_elsewhere(&e) => {
                        endings.push((m.action.action_id, Ending::Skipped));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            members = open;
            if members.is_empty() {
                return Ok(order(endings));
            }
            let users: Vec<String> = members.iter().map(|m| m.action.user_id.clone()).collect();
            let started = Instant::now();
            let outcome = call(&self.client, kind, &users, &client_request_id).await;
            // Graph's answer time when there was one; otherwise the whole wait, limiter included.
            let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
            let latency_ms = millis(started.elapsed());
            let result = match &outcome {
                Ok(meta) => AttemptResult {
                    finished_at: Utc::now(),
                    http_status: Some(meta.status),
                    graph_error_code: None,
                    error_message: None,
                    request_id: meta.request_id.clone(),
                    latency_ms: millis(meta.latency),
                },
                Err(error) => AttemptResult {
                    finished_at: Utc::now(),
                    http_status: error.status(),
                    graph_error_code: error.code().map(str::to_string),
                    error_message: Some(error.to_string()),
                    request_id: error.request_id().map(str::to_string),
                    latency_ms,
                },
            };
            for m in &members {
                if let Some(id) = m.attempt_id {
                    self.store.finish_attempt(id, &result).await?;
                }
            }
            let error = match outcome {
                Ok(meta) => {
                    // The write slot is free for the next call; read-backs use another quota.
                    drop(permit);
                    for m in &members {
                        let ending = self.succeed(&m.action, &meta, attempt).await?;
                        endings.push((m.action.action_id, ending));
                    }
                    return Ok(order(endings));
                }
                Err(e) => e,
            };
            last_error = error.to_string();
            let (wait, reason) = match error.retry_hint() {
                RetryHint::After(d) => (
                    d,
                    format!(
                        "{} retry-after {}s",
                        error.status().unwrap_or_default(),
                        d.as_secs()
                    ),
                ),
                RetryHint::Backoff => {
                    let d = backoff.next().unwrap_or(policy.max_delay);
                    (
                        d,
                        format!("{} backoff {}ms", describe(&error), d.as_millis()),
                    )
                }
                RetryHint::RenewToken if !renewed_token => {
                    renewed_token = true;
                    self.client.invalidate_token();
                    (Duration::ZERO, "401 token renewed".to_string())
                }
                RetryHint::RenewToken | RetryHint::Fatal => break,
            };
            if attempt >= policy.max_attempts {
                break;
            }
            for m in &mut members {
                m.retry_reason = Some(reason.clone());
            }
            warn!(
                action = %kind,
                users = members.len(),
                first_user = who(&members[0].action),
                error = %error,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "action attempt failed; retrying"
            );
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.shutdown.cancelled() => {
                    endings.extend(members.iter().map(|m| (m.action.action_id, Ending::Interrupted)));
                    return Ok(order(endings));
                }
            }
        }
        drop(permit);
        for m in &members {
            let ending = self.fail(&m.action, &last_error).await?;
            endings.push((m.action.action_id, ending));
        }
        Ok(order(endings))
    }

    /// Ends an action Graph accepted: reads a revoke back first, then records the outcome and
    /// tells the sinks.
    async fn succeed(
        &self,
        action: &PendingAction,
        meta: &CallMeta,
        attempt: u32,
    ) -> Result<Ending, EngineError> {
        let check = if action.kind == ActionKind::RevokeSessions && self.executor.verify {
            Some(self.read_back(action, meta.started_at).await?)
        } else {
            None
        };
        let detail = check.as_ref().map(|c| c.summary.clone());
        match self
            .store
            .finish_action(
                action.action_id,
                ActionStatus::Succeeded,
                detail.as_deref(),
                Utc::now(),
            )
            .await
        {
            Ok(()) => {}
            Err(e) if ended_elsewhere(&e) => return Ok(Ending::Skipped),
            Err(e) => return Err(e.into()),
        }
        let outcome = check.as_ref().map(|c| c.outcome);
        info!(
            rule = %action.rule_id,
            user = who(action),
            action = %action.kind,
            status = meta.status,
            request_id = meta.request_id.as_deref().unwrap_or("-"),
            attempt,
            verification = outcome.map_or("-", VerificationOutcome::as_str),
            "action succeeded"
        );
        let details = json!({
            "rule_id": action.rule_id,
            "user_id": action.user_id,
            "user_principal_name": action.user_principal_name,
            "action": action.kind,
            "action_id": action.action_id,
            "decision_id": action.decision_id,
            "http_status": meta.status,
            "request_id": meta.request_id,
            "client_request_id": meta.client_request_id,
            "verification": outcome,
            "detail": detail,
        });
        if outcome == Some(VerificationOutcome::GuestNotEffective) {
            self.executor.notifier.send(Notification::new(
                NotifyEvent::GuestNotContained,
                &action.tenant_id,
                format!(
                    "{} is a guest (B2B) user: revoking sessions in this tenant does not end them; block the guest's sign-in or remove the guest",
                    who(action)
                ),
                details.clone(),
            ));
        }
        self.executor.notifier.send(Notification::new(
            NotifyEvent::ActionSucceeded,
            &action.tenant_id,
            format!("{} of {} succeeded", action.kind, who(action)),
            details,
        ));
        Ok(Ending::Succeeded(outcome))
    }

    async fn fail(&self, action: &PendingAction, error: &str) -> Result<Ending, EngineError> {
        match self
            .store
            .finish_action(
                action.action_id,
                ActionStatus::Failed,
                Some(error),
                Utc::now(),
            )
            .await
        {
            Ok(()) => {}
            Err(e) if ended_elsewhere(&e) => return Ok(Ending::Skipped),
            Err(e) => return Err(e.into()),
        }
        warn!(
            rule = %action.rule_id,
            user = who(action),
            action = %action.kind,
            error,
            "action failed"
        );
        self.executor.notifier.send(Notification::new(
            NotifyEvent::ActionFailed,
            &action.tenant_id,
            format!("{} of {} failed: {error}", action.kind, who(action)),
            json!({
                "rule_id": action.rule_id,
                "user_id": action.user_id,
                "user_principal_name": action.user_principal_name,
                "action": action.kind,
                "action_id": action.action_id,
                "decision_id": action.decision_id,
                "error": error,
            }),
        ));
        Ok(Ending::Failed)
    }

    /// Reads the user back after a revoke sent at `revoked_at` and records what it shows.
    async fn read_back(
        &self,
        action: &PendingAction,
        revoked_at: DateTime<Utc>,
    ) -> Result<Check, EngineError> {
        let mut last = None;
        for delay in READ_BACK_DELAYS {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.shutdown.cancelled() => break,
            }
            let client_request_id = uuid::Uuid::new_v4().to_string();
            let read = self
                .client
                .get_user_once(&action.user_id, &READ_BACK_SELECT, &client_request_id)
                .await;
            let check = Check::judge(read, revoked_at, client_request_id);
            let settled = check.outcome != VerificationOutcome::Unconfirmed || !check.retryable;
            last = Some(check);
            if settled {
                break;
            }
        }
        let check = last.unwrap_or_else(Check::interrupted);
        self.store
            .record_verification(&NewVerification {
                action_id: action.action_id,
                checked_at: Utc::now(),
                outcome: check.outcome,
                revoked_at,
                sessions_valid_from: check.valid_from,
                user_type: check.user_type.clone(),
                http_status: check.http_status,
                request_id: check.request_id.clone(),
                client_request_id: check.client_request_id.clone(),
                detail: check.problem.clone(),
            })
            .await?;
        if check.outcome == VerificationOutcome::Unconfirmed {
            warn!(user = who(action), detail = %check.summary, "revoke not confirmed");
        }
        Ok(check)
    }
}

/// A read-back's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Check {
    outcome: VerificationOutcome,
    /// The action's detail in words.
    summary: String,
    /// Why it is not confirmed.
    problem: Option<String>,
    /// Whether reading again may change the verdict (stale replica, throttled, transient).
    retryable: bool,
    valid_from: Option<DateTime<Utc>>,
    user_type: Option<String>,
    http_status: Option<u16>,
    request_id: Option<String>,
    client_request_id: Option<String>,
}

impl Check {
    fn judge(
        read: Result<(graph::models::User, CallMeta), GraphError>,
        revoked_at: DateTime<Utc>,
        client_request_id: String,
    ) -> Self {
        let (user, meta) = match read {
            Ok(answer) => answer,
            Err(e) => {
                let problem = format!("read-back failed: {e}");
                return Self {
                    outcome: VerificationOutcome::Unconfirmed,
                    summary: format!("unconfirmed: {problem}"),
                    retryable: !matches!(e.retry_hint(), RetryHint::Fatal),
                    problem: Some(problem),
                    valid_from: None,
                    user_type: None,
                    http_status: e.status(),
                    request_id: e.request_id().map(str::to_string),
                    client_request_id: Some(client_request_id),
                };
            }
        };
        let valid_from = user.sign_in_sessions_valid_from_date_time;
        let shown = valid_from.map_or_else(
            || "absent".to_string(),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        let guest = user
            .user_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("guest"));
        let earliest = chrono::Duration::from_std(CLOCK_SKEW)
            .ok()
            .and_then(|skew| revoked_at.checked_sub_signed(skew))
            .unwrap_or(revoked_at);
        let confirmed = valid_from.is_some_and(|t| t >= earliest);
        let (outcome, summary, problem, retryable) = if guest {
            (
                VerificationOutcome::GuestNotEffective,
                "not effective: guest (B2B) user; a revoke in this tenant does not end a guest's sessions: block the guest's sign-in or remove the guest".to_string(),
                Some("userType Guest".to_string()),
                false,
            )
        } else if confirmed {
            (
                VerificationOutcome::Confirmed,
                format!("verified: signInSessionsValidFromDateTime {shown}"),
                None,
                false,
            )
        } else {
            let problem = format!(
                "signInSessionsValidFromDateTime {shown} is before the revoke sent at {}",
                revoked_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
            (
                VerificationOutcome::Unconfirmed,
                format!("unconfirmed: {problem}"),
                Some(problem),
                true,
            )
        };
        Self {
            outcome,
            summary,
            problem,
            retryable,
            valid_from,
            user_type: user.user_type,
            http_status: Some(meta.status),
            request_id: meta.request_id,
            client_request_id: Some(meta.client_request_id),
        }
    }

    fn interrupted() -> Self {
        let problem = "read-back interrupted by shutdown".to_string();
        Self {
            outcome: VerificationOutcome::Unconfirmed,
            summary: format!("unconfirmed: {problem}"),
            problem: Some(problem),
            retryable: false,
            valid_from: None,
            user_type: None,
            http_status: None,
            request_id: None,
            client_request_id: None,
        }
    }
}

/// Endings in action-id order, matching the group's order (the outbox lists oldest first).
fn order(mut endings: Vec<(i64, Ending)>) -> Vec<Ending> {
    endings.sort_by_key(|(id, _)| *id);
    endings.into_iter().map(|(_, e)| e).collect()
}

fn who(action: &PendingAction) -> &str {
    action
        .user_principal_name
        .as_deref()
        .unwrap_or(&action.user_id)
}

async fn call(
    client: &GraphClient,
    kind: ActionKind,
    users: &[String],
    client_request_id: &str,
) -> Result<CallMeta, GraphError> {
    let first = users.first().map_or("", String::as_str);
    match kind {
        ActionKind::RevokeSessions => {
            client
                .revoke_sign_in_sessions_once(first, client_request_id)
                .await
        }
        ActionKind::ConfirmCompromised => {
            client
                .confirm_compromised_once(users, client_request_id)
                .await
        }
        ActionKind::DisableAccount => client.disable_account_once(first, client_request_id).await,
        // `group` settles notify actions before any call is made.
        ActionKind::Notify => Err(GraphError::Config(
            "notify actions are not Graph calls".to_string(),
        )),
    }
}

/// A short name for the failure, for the next attempt's retry reason.
fn describe(error: &GraphError) -> String {
    match error {
        GraphError::Transport { timeout: true, .. } => "timeout".to_string(),
        GraphError::Transport { .. } => "connection error".to_string(),
        GraphError::Decode { .. } => "malformed response".to_string(),
        other => other
            .status()
            .map_or_else(|| "error".to_string(), |s| s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(id: i64, kind: ActionKind) -> PendingAction {
        PendingAction {
            action_id: id,
            decision_id: id,
            tenant_id: "t".into(),
            rule_id: "r".into(),
            user_id: format!("u{id}"),
            user_principal_name: None,
            kind,
            status: ActionStatus::Pending,
            attempts: 0,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn confirms_are_batched_and_the_rest_go_one_by_one() {
        let actions = (1..=7)
            .map(|i| {
                let kind = if i % 2 == 0 {
                    ActionKind::RevokeSessions
                } else {
                    ActionKind::ConfirmCompromised
                };
                pending(i, kind)
            })
            .collect();
        let groups: Vec<Vec<i64>> = plan(actions, 3)
            .iter()
            .map(|g| g.iter().map(|a| a.action_id).collect())
            .collect();
        assert_eq!(
            groups,
            vec![vec![2], vec![4], vec![6], vec![1, 3, 5], vec![7]]
        );
    }

    fn user(json: serde_json::Value) -> graph::models::User {
        serde_json::from_value(json).expect("user")
    }

    fn meta() -> CallMeta {
        CallMeta {
            endpoint: "GET /v1.0/users/{id}".into(),
            url: "http://sim/v1.0/users/u".into(),
            status: 200,
            request_id: Some("req".into()),
            client_request_id: "crid".into(),
            started_at: Utc::now(),
            latency: Duration::from_millis(3),
        }
    }

    #[test]
    fn read_back_verdicts() {
        let revoked_at = DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let confirmed = Check::judge(
            Ok((
                user(json!({"id": "u", "userType": "Member",
                    "signInSessionsValidFromDateTime": "2026-11-24T10:00:01Z"})),
                meta(),
            )),
            revoked_at,
            "c".into(),
        );
        assert_eq!(confirmed.outcome, VerificationOutcome::Confirmed);
        assert_eq!(
            confirmed.summary,
            "verified: signInSessionsValidFromDateTime 2026-11-24T10:00:01Z"
        );
        // Within the clock-skew allowance.
        let skewed = Check::judge(
            Ok((
                user(json!({"id": "u", "signInSessionsValidFromDateTime": "2026-11-24T09:59:30Z"})),
                meta(),
            )),
            revoked_at,
            "c".into(),
        );
        assert_eq!(skewed.outcome, VerificationOutcome::Confirmed);
        let stale = Check::judge(
            Ok((
                user(json!({"id": "u", "signInSessionsValidFromDateTime": "2026-11-20T00:00:00Z"})),
                meta(),
            )),
            revoked_at,
            "c".into(),
        );
        assert_eq!(stale.outcome, VerificationOutcome::Unconfirmed);
        assert!(stale.retryable);
        assert!(
            stale.summary.contains("is before the revoke"),
            "{}",
            stale.summary
        );
        let absent = Check::judge(
            Ok((user(json!({"id": "u"})), meta())),
            revoked_at,
            "c".into(),
        );
        assert_eq!(absent.outcome, VerificationOutcome::Unconfirmed);
        assert!(absent.summary.contains("absent"), "{}", absent.summary);
        let guest = Check::judge(
            Ok((
                user(json!({"id": "u", "userType": "Guest",
                    "signInSessionsValidFromDateTime": "2026-11-24T10:00:01Z"})),
                meta(),
            )),
            revoked_at,
            "c".into(),
        );
        assert_eq!(guest.outcome, VerificationOutcome::GuestNotEffective);
        assert!(!guest.retryable);
    }

    #[test]
    fn reports_add_up() {
        let mut a = DrainReport::default();
        a.count(Ending::Succeeded(Some(VerificationOutcome::Unconfirmed)));
        a.count(Ending::Succeeded(Some(
            VerificationOutcome::GuestNotEffective,
        )));
        a.count(Ending::Failed);
        let mut b = DrainReport::default();
        b.count(Ending::Interrupted);
        b.count(Ending::Succeeded(None));
        a.add(&b);
        assert_eq!(
            (
                a.succeeded,
                a.failed,
                a.interrupted,
                a.unconfirmed,
                a.guests
            ),
            (3, 1, 1, 1, 1)
        );
    }
}
