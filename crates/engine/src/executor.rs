//! The executor: carries out the actions waiting in the outbox.
//!
//! It works only from persisted actions, so a crash at any point loses nothing: on restart the
//! actions still `pending` or `in_flight` are picked up again (revocation is idempotent at Graph,
//! and the repeat shows in the audit as a further attempt). Each attempt is written to the store
//! before the call and completed after it; retries follow Graph's Retry-After, or exponential
//! backoff with jitter where Graph sends none.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use graph::client::{CallMeta, GraphClient};
use graph::error::{GraphError, RetryHint};
use serde::Serialize;
use store::{ActionKind, ActionStatus, AttemptResult, NewAttempt, PendingAction, Store};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, warn};

use crate::EngineError;

/// What one drain of the outbox did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DrainReport {
    pub succeeded: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Actions left pending because shutdown began; they resume on the next start.
    pub interrupted: u64,
}

/// How one action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Succeeded,
    Failed,
    Skipped,
    Interrupted,
}

/// Carries out every pending action of the tenant of `client`, `concurrency` at a time.
///
/// # Errors
/// Only a store failure ends a drain early; a failed action is recorded and the drain goes on.
pub async fn drain(
    store: &Store,
    client: &GraphClient,
    concurrency: usize,
    shutdown: &CancellationToken,
) -> Result<DrainReport, EngineError> {
    let pending = store.pending_actions(Some(client.tenant_id())).await?;
    let mut report = DrainReport::default();
    if pending.is_empty() {
        return Ok(report);
    }
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for action in pending {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.map_err(|_| EngineError::Shutdown)?,
            () = shutdown.cancelled() => { report.interrupted += 1; continue; }
        };
        let (store, client, shutdown) = (store.clone(), client.clone(), shutdown.clone());
        tasks.spawn(
            async move {
                let _permit = permit;
                execute(&store, &client, &action, &shutdown).await
            }
            .in_current_span(),
        );
    }
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(Ending::Succeeded)) => report.succeeded += 1,
            Ok(Ok(Ending::Failed)) => report.failed += 1,
            Ok(Ok(Ending::Skipped)) => report.skipped += 1,
            Ok(Ok(Ending::Interrupted)) => report.interrupted += 1,
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
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

async fn call(
    client: &GraphClient,
    action: &PendingAction,
    client_request_id: &str,
) -> Result<CallMeta, GraphError> {
    let user = action.user_id.as_str();
    match action.kind {
        ActionKind::RevokeSessions => {
            client
                .revoke_sign_in_sessions_once(user, client_request_id)
                .await
        }
        ActionKind::ConfirmCompromised => {
            client
                .confirm_compromised_once(&[user.to_string()], client_request_id)
                .await
        }
        ActionKind::DisableAccount => client.disable_account_once(user, client_request_id).await,
        // `execute` settles notify actions before any call is made.
        ActionKind::Notify => Err(GraphError::Config(
            "notify actions are not Graph calls".to_string(),
        )),
    }
}

/// Runs one action to its end: success, a permanent failure, exhausted retries, or shutdown.
async fn execute(
    store: &Store,
    client: &GraphClient,
    action: &PendingAction,
    shutdown: &CancellationToken,
) -> Result<Ending, EngineError> {
    let who = action
        .user_principal_name
        .as_deref()
        .unwrap_or(&action.user_id);
    if action.kind == ActionKind::Notify {
        store
            .finish_action(
                action.action_id,
                ActionStatus::Skipped,
                Some("no notification sink is configured"),
                Utc::now(),
            )
            .await?;
        return Ok(Ending::Skipped);
    }
    let policy = client.retry_policy().clone();
    let mut backoff = policy.backoff_delays();
    // An action resumed after a restart is a repeat of a call that may already have reached Graph.
    let mut retry_reason = (action.attempts > 0).then(|| {
        format!(
            "resumed after restart ({} earlier attempts)",
            action.attempts
        )
    });
    let mut renewed_token = false;
    let mut last_error = String::new();
    for attempt in 1..=policy.max_attempts {
        let client_request_id = uuid::Uuid::new_v4().to_string();
        let attempt_id = store
            .begin_attempt(&NewAttempt {
                action_id: action.action_id,
                endpoint: endpoint(action.kind).to_string(),
                client_request_id: client_request_id.clone(),
                started_at: Utc::now(),
                retry_reason: retry_reason.take(),
            })
            .await?;
        let started = Instant::now();
        let outcome = call(client, action, &client_request_id).await;
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let error = match outcome {
            Ok(meta) => {
                store
                    .finish_attempt(
                        attempt_id,
                        &AttemptResult {
                            finished_at: Utc::now(),
                            http_status: Some(meta.status),
                            graph_error_code: None,
                            error_message: None,
                            request_id: meta.request_id.clone(),
                            latency_ms,
                        },
                    )
                    .await?;
                store
                    .finish_action(action.action_id, ActionStatus::Succeeded, None, Utc::now())
                    .await?;
                info!(
                                        rule = %action.rule_id,
                    user = who,
                    action = %action.kind,
                    status = meta.status,
                    request_id = meta.request_id.as_deref().unwrap_or("-"),
                    attempt,
                    "action succeeded"
                );
                return Ok(Ending::Succeeded);
            }
            Err(e) => e,
        };
        store
            .finish_attempt(
                attempt_id,
                &AttemptResult {
                    finished_at: Utc::now(),
                    http_status: error.status(),
                    graph_error_code: error.code().map(str::to_string),
                    error_message: Some(error.to_string()),
                    request_id: error.request_id().map(str::to_string),
                    latency_ms,
                },
            )
            .await?;
        last_error = error.to_string();
        let wait = match error.retry_hint() {
            RetryHint::After(d) => {
                retry_reason = Some(format!(
                    "{} retry-after {}s",
                    error.status().unwrap_or_default(),
                    d.as_secs()
                ));
                d
            }
            RetryHint::Backoff => {
                let d = backoff.next().unwrap_or(policy.max_delay);
                retry_reason = Some(format!("{} backoff {}ms", describe(&error), d.as_millis()));
                d
            }
            RetryHint::RenewToken if !renewed_token => {
                renewed_token = true;
                client.invalidate_token();
                retry_reason = Some("401 token renewed".to_string());
                Duration::ZERO
            }
            RetryHint::RenewToken | RetryHint::Fatal => break,
        };
        if attempt == policy.max_attempts {
            break;
        }
        warn!(
                        user = who,
            action = %action.kind,
            error = %error,
            wait_ms = wait.as_millis() as u64,
            "action attempt failed; retrying"
        );
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => return Ok(Ending::Interrupted),
        }
    }
    store
        .finish_action(
            action.action_id,
            ActionStatus::Failed,
            Some(&last_error),
            Utc::now(),
        )
        .await?;
    warn!(
                rule = %action.rule_id,
        user = who,
        action = %action.kind,
        error = %last_error,
        "action failed"
    );
    Ok(Ending::Failed)
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
