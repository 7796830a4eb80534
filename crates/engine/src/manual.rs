//! Operator-run containment: `revokd revoke` (one user, a list, or every user of a tenant) and
//! `revokd resume` (release what the blast-radius breaker held).
//!
//! A manual request takes the daemon's path, never a shortcut: each user is looked up in Graph
//! (so a protected principal named by UPN is recognised by object id too), judged by the same
//! safety gate (protected principals are always excluded, global dry-run applies), recorded as a
//! decision with source `manual` and the operator's name, passed through the breaker (whose
//! limit only `--max-actions` raises, for this run), and carried out by the executor under the
//! tenant's quota limiter, with every attempt audited. A user Graph does not know is still
//! recorded, and its revoke's 404 is what the audit shows.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use graph::client::GraphClient;
use graph::error::{GraphError, RetryHint};
use graph::models::User;
use serde::Serialize;
use serde_json::json;
use store::{ActionKind, ActionStatus, DecisionInsert, DecisionMode, NewDecision, Released};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::executor::{self, DrainReport, Progress, Scope};
use crate::safety::Subject;
use crate::{Engine, EngineError, Tenant};

/// How long a command waits for queued notifications before it exits.
pub const NOTIFY_FLUSH: Duration = Duration::from_secs(15);

/// The rule id manual decisions are recorded under.
pub const MANUAL_RULE: &str = "manual";

/// Properties asked for when resolving a user.
const USER_SELECT: [&str; 4] = ["id", "userPrincipalName", "userType", "accountEnabled"];

/// One user as the operator named them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRef {
    /// An object id or a UPN.
    pub value: String,
    /// Where it came from, e.g. `--user` or `users.csv:12`, for messages.
    pub origin: String,
}

/// Whom a manual request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// Named users (`--user`, `--users-file`).
    Users(Vec<UserRef>),
    /// Every user of the tenant (`--all-users`), listed from `GET /users`.
    AllUsers,
}

/// An operator's request to contain users now.
#[derive(Debug, Clone)]
pub struct ManualRequest {
    /// The tenant (id or configured name); may be left out when only one is configured.
    pub tenant: Option<String>,
    /// Whom to contain.
    pub targets: Targets,
    /// Why, recorded with every decision.
    pub reason: String,
    /// Who asked, recorded with every decision.
    pub operator: String,
    /// The breaker's limit for this run only, instead of `safety.breaker.max_actions`.
    pub max_actions: Option<u32>,
}

/// Live counts of a manual run, for a progress display.
#[derive(Debug, Default)]
pub struct ManualProgress {
    /// Users to look up (known once listing ends for `--all-users`).
    pub to_resolve: AtomicU64,
    /// Users looked up so far.
    pub resolved: AtomicU64,
    /// The executor's counts.
    pub drain: Arc<Progress>,
}

/// What happened to one requested user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManualOutcome {
    /// As the operator named the user.
    pub requested: String,
    /// Where the name came from.
    pub origin: String,
    /// The object id (the reference itself when Graph does not know the user).
    pub user_id: String,
    /// The sign-in name, when known.
    pub user_principal_name: Option<String>,
    /// How the decision was recorded; `None` when no decision was recorded (see `note`).
    pub mode: Option<DecisionMode>,
    /// Why not enforced, or why nothing was recorded.
    pub note: Option<String>,
    /// The revoke action, when one was recorded.
    pub action_id: Option<i64>,
    /// How the action ended (or `held`, `skipped`), once the run is over.
    pub status: Option<ActionStatus>,
    /// The action's detail: Graph's error, the read-back, or why it was skipped.
    pub detail: Option<String>,
}

/// What a manual run did.
#[derive(Debug, Clone, Serialize)]
pub struct ManualReport {
    /// The tenant it ran on.
    pub tenant_id: String,
    /// Identifies the run in decisions' trigger keys and the daemon event.
    pub run_id: String,
    /// Per user, in request order.
    pub outcomes: Vec<ManualOutcome>,
    /// How the actions ended.
    pub drain: DrainReport,
}

impl ManualReport {
    /// Decisions recorded with `mode`.
    pub fn count(&self, mode: DecisionMode) -> usize {
        self.outcomes
            .iter()
            .filter(|o| o.mode == Some(mode))
            .count()
    }

    /// Requested users for which nothing was recorded (duplicates, lookups that failed).
    pub fn not_recorded(&self) -> impl Iterator<Item = &ManualOutcome> {
        self.outcomes.iter().filter(|o| o.mode.is_none())
    }
}

/// What a resume did, per tenant.
#[derive(Debug, Clone, Serialize)]
pub struct ResumeReport {
    /// The tenant.
    pub tenant_id: String,
    /// Released and refused actions.
    pub released: Released,
    /// How the released actions ended, when they were carried out at once.
    pub drain: Option<DrainReport>,
}

/// A user as resolved in Graph, or the reason it could not be.
enum Resolved {
    Found(User),
    /// 404 from Graph: recorded anyway, so the revoke's 404 is in the audit.
    Unknown,
    Failed(String),
}

impl Engine {
    /// The configured tenants as (tenant id, name).
    pub fn tenants(&self) -> Vec<(String, String)> {
        self.inner
            .tenants
            .iter()
            .map(|t| (t.client.tenant_id().to_string(), t.name.clone()))
            .collect()
    }

    fn tenant(&self, wanted: Option<&str>) -> Result<&Tenant, EngineError> {
        let tenants = &self.inner.tenants;
        match wanted {
            None if tenants.len() == 1 => Ok(&tenants[0]),
            None => Err(EngineError::Manual(format!(
                "{} tenants are configured: name one with --tenant ({})",
                tenants.len(),
                tenants
                    .iter()
                    .map(|t| t.client.tenant_id())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
            Some(w) => tenants
                .iter()
                .find(|t| t.client.tenant_id().eq_ignore_ascii_case(w) || t.name == w)
                .ok_or_else(|| {
                    EngineError::Manual(format!("tenant {w} is not in the configuration"))
                }),
        }
    }

    /// Contains the requested users now, through the gate, breaker, limiter, executor and audit.
    ///
    /// # Errors
    /// An unknown tenant, a failed user listing (`--all-users`), or a store failure. A single
    /// user's failed lookup or action is reported in its outcome and does not stop the run.
    pub async fn contain_manually(
        &self,
        request: &ManualRequest,
        progress: Arc<ManualProgress>,
        shutdown: &CancellationToken,
    ) -> Result<ManualReport, EngineError> {
        let tenant = self.tenant(request.tenant.as_deref())?;
        let client = &tenant.client;
        let tenant_id = client.tenant_id().to_string();
        let run_id = uuid::Uuid::new_v4().to_string();
        let gate = match request.max_actions {
            Some(n) => self.inner.gate.clone().with_max_actions(n),
            None => self.inner.gate.clone(),
        };
        let store = &self.inner.store;
        let resolved: Vec<(UserRef, Resolved)> = match &request.targets {
            Targets::Users(refs) => {
                progress
                    .to_resolve
                    .store(refs.len() as u64, Ordering::Relaxed);
                resolve_all(client, refs, self.inner.concurrency, &progress, shutdown).await
            }
            Targets::AllUsers => list_all(client, &progress, shutdown).await?,
        };
        store
            .record_daemon_event(
                "manual_containment",
                &json!({
                    "tenant_id": tenant_id,
                    "run_id": run_id,
                    "operator": request.operator,
                    "reason": request.reason,
                    "all_users": request.targets == Targets::AllUsers,
                    "requested": resolved.len(),
                    "max_actions": gate.breaker().max_actions,
                }),
            )
            .await?;
        let mut outcomes = Vec::with_capacity(resolved.len());
        let mut action_ids = Vec::new();
        let mut seen: HashMap<String, String> = HashMap::new();
        for (reference, resolution) in resolved {
            let (user_id, upn, record) = match &resolution {
                Resolved::Found(user) => (
                    user.id.clone(),
                    user.user_principal_name.clone(),
                    json!({
                        "id": user.id,
                        "userPrincipalName": user.user_principal_name,
                        "userType": user.user_type,
                        "accountEnabled": user.account_enabled,
                    }),
                ),
                Resolved::Unknown => (
                    reference.value.clone(),
                    reference
                        .value
                        .contains('@')
                        .then(|| reference.value.clone()),
                    json!({"reference": reference.value, "found": false}),
                ),
                Resolved::Failed(why) => {
                    outcomes.push(ManualOutcome {
                        requested: reference.value.clone(),
                        origin: reference.origin.clone(),
                        user_id: reference.value.clone(),
                        user_principal_name: None,
                        mode: None,
                        note: Some(format!("not recorded: lookup failed: {why}")),
                        action_id: None,
                        status: None,
                        detail: None,
                    });
                    continue;
                }
            };
            let key = user_id.to_ascii_lowercase();
            if let Some(first) = seen.get(&key) {
                outcomes.push(ManualOutcome {
                    requested: reference.value.clone(),
                    origin: reference.origin.clone(),
                    user_id,
                    user_principal_name: upn,
                    mode: None,
                    note: Some(format!("not recorded: the same user as {first}")),
                    action_id: None,
                    status: None,
                    detail: None,
                });
                continue;
            }
            seen.insert(key, reference.origin.clone());
            let subject = Subject {
                user_id: &user_id,
                user_principal_name: upn.as_deref(),
            };
            // The reference as given counts too: a protected UPN must stay protected even when
            // Graph does not know it.
            let by_reference = Subject {
                user_id: &reference.value,
                user_principal_name: Some(&reference.value),
            };
            let verdict = match gate.protected_entry(by_reference) {
                Some(entry) if gate.protected_entry(subject).is_none() => crate::safety::Verdict {
                    mode: DecisionMode::Protected,
                    reason: Some(format!("protected principal {entry}")),
                },
                _ => gate.judge_operator(subject),
            };
            let now = Utc::now();
            let decision = NewDecision {
                tenant_id: tenant_id.clone(),
                source: "manual".to_string(),
                trigger_key: format!("manual:{run_id}:{user_id}"),
                rule_id: MANUAL_RULE.to_string(),
                rule_hash: MANUAL_RULE.to_string(),
                user_id: user_id.clone(),
                user_principal_name: upn.clone(),
                mode: verdict.mode,
                reason: verdict.reason.clone(),
                record_json: record.to_string(),
                explanation_json: json!({
                    "manual": true,
                    "reason": request.reason,
                    "operator": request.operator,
                    "requested_as": reference.value,
                    "origin": reference.origin,
                    "run_id": run_id,
                    "all_users": request.targets == Targets::AllUsers,
                })
                .to_string(),
                operator: Some(request.operator.clone()),
                decided_at: now,
                actions: vec![ActionKind::RevokeSessions],
            };
            let gated = gate.record(store, &decision).await?;
            let action_id = match gated.insert {
                DecisionInsert::Inserted {
                    action_ids: ids, ..
                } => ids.first().copied(),
                DecisionInsert::Duplicate { .. } => None,
            };
            if gated.mode == DecisionMode::Enforce
                && let Some(id) = action_id
            {
                action_ids.push(id);
            }
            outcomes.push(ManualOutcome {
                requested: reference.value.clone(),
                origin: reference.origin.clone(),
                user_id,
                user_principal_name: upn,
                mode: Some(gated.mode),
                note: gated.reason.or_else(|| {
                    matches!(resolution, Resolved::Unknown)
                        .then(|| "Graph does not know this user (404)".to_string())
                }),
                action_id,
                status: None,
                detail: None,
            });
        }
        info!(
            tenant = %tenant_id,
            run_id,
            operator = %request.operator,
            enforced = action_ids.len(),
            requested = outcomes.len(),
            "manual containment recorded; carrying it out"
        );
        let drain = executor::drain_scoped(
            store,
            client,
            &self.inner.executor,
            Scope::Only(&action_ids),
            Some(progress.drain.clone()),
            shutdown,
        )
        .await?;
        let recorded: Vec<i64> = outcomes.iter().filter_map(|o| o.action_id).collect();
        let ended: HashMap<i64, (ActionStatus, Option<String>)> = store
            .action_outcomes(&recorded)
            .await?
            .into_iter()
            .map(|(id, status, detail)| (id, (status, detail)))
            .collect();
        for outcome in &mut outcomes {
            if let Some((status, detail)) = outcome.action_id.and_then(|id| ended.get(&id)) {
                outcome.status = Some(*status);
                outcome.detail.clone_from(detail);
            }
        }
        self.inner.executor.notifier().flush(NOTIFY_FLUSH).await;
        Ok(ManualReport {
            tenant_id,
            run_id,
            outcomes,
            drain,
        })
    }

    /// Releases held actions: every one of the chosen tenant (or of every tenant), closing the
    /// breaker, or only the listed action ids (the breaker stays as it is). Unless `drain` is
    /// false, the released actions are carried out at once, counted into `progress`.
    ///
    /// # Errors
    /// An unknown tenant or a store failure.
    pub async fn resume(
        &self,
        tenant: Option<&str>,
        only: Option<&[i64]>,
        operator: &str,
        drain: bool,
        progress: Arc<Progress>,
        shutdown: &CancellationToken,
    ) -> Result<Vec<ResumeReport>, EngineError> {
        let store = &self.inner.store;
        let chosen: Vec<&Tenant> = match tenant {
            Some(_) => vec![self.tenant(tenant)?],
            None => self.inner.tenants.iter().collect(),
        };
        // Listed ids go to the tenant that holds them. When one is not held by any chosen
        // tenant, the first tenant's release gets them all: it refuses, names why, and nothing
        // is released anywhere.
        let mut per_tenant: Vec<(&Tenant, Option<Vec<i64>>)> = Vec::new();
        match only {
            None => per_tenant.extend(chosen.iter().map(|t| (*t, None))),
            Some(ids) => {
                let held = store.held_actions(None).await?;
                let owner: HashMap<i64, &str> = held
                    .iter()
                    .map(|h| (h.action_id, h.tenant_id.as_str()))
                    .collect();
                let holder = |id: &i64| {
                    owner
                        .get(id)
                        .and_then(|t| chosen.iter().find(|c| c.client.tenant_id() == *t))
                };
                if ids.iter().all(|id| holder(id).is_some()) {
                    for t in &chosen {
                        let mine: Vec<i64> = ids
                            .iter()
                            .copied()
                            .filter(|id| holder(id).is_some_and(|h| std::ptr::eq(*h, *t)))
                            .collect();
                        if !mine.is_empty() {
                            per_tenant.push((*t, Some(mine)));
                        }
                    }
                } else if let Some(first) = chosen.first() {
                    per_tenant.push((*first, Some(ids.to_vec())));
                }
            }
        }
        let mut reports = Vec::new();
        for (t, ids) in per_tenant {
            let tenant_id = t.client.tenant_id().to_string();
            let released = store
                .release_held(&tenant_id, ids.as_deref(), operator, Utc::now())
                .await?;
            if !released.refused.is_empty() {
                warn!(tenant = %tenant_id, refused = ?released.refused, "nothing released");
            } else {
                info!(
                    tenant = %tenant_id,
                    operator,
                    released = released.released.len(),
                    "held actions released"
                );
            }
            let drained = if drain && !released.released.is_empty() {
                Some(
                    executor::drain_scoped(
                        store,
                        &t.client,
                        &self.inner.executor,
                        Scope::Only(&released.released),
                        Some(progress.clone()),
                        shutdown,
                    )
                    .await?,
                )
            } else {
                None
            };
            reports.push(ResumeReport {
                tenant_id,
                released,
                drain: drained,
            });
        }
        self.inner.executor.notifier().flush(NOTIFY_FLUSH).await;
        Ok(reports)
    }

    /// The directory_write limit of a tenant, for an ETA: calls per second.
    pub fn write_rate(&self, tenant: Option<&str>) -> Option<f64> {
        let t = self.tenant(tenant).ok()?;
        let spacing = t
            .client
            .quota_limit(graph::quota::QuotaClass::DirectoryWrite)
            .spacing();
        (!spacing.is_zero()).then(|| 1.0 / spacing.as_secs_f64())
    }
}

/// Looks every reference up in Graph, `concurrency` at a time; results in request order.
async fn resolve_all(
    client: &GraphClient,
    refs: &[UserRef],
    concurrency: usize,
    progress: &ManualProgress,
    shutdown: &CancellationToken,
) -> Vec<(UserRef, Resolved)> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for (index, reference) in refs.iter().cloned().enumerate() {
        let (client, permits, shutdown) = (client.clone(), permits.clone(), shutdown.clone());
        tasks.spawn(async move {
            let resolution = match permits.acquire_owned().await {
                Ok(_permit) => resolve(&client, &reference.value, &shutdown).await,
                Err(_) => Resolved::Failed("shutting down".to_string()),
            };
            (index, reference, resolution)
        });
    }
    let mut out: Vec<Option<(UserRef, Resolved)>> = refs.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((index, reference, resolution)) = joined {
            progress.resolved.fetch_add(1, Ordering::Relaxed);
            if let Some(slot) = out.get_mut(index) {
                *slot = Some((reference, resolution));
            }
        }
    }
    out.into_iter()
        .zip(refs)
        .map(|(slot, reference)| {
            slot.unwrap_or_else(|| {
                (
                    reference.clone(),
                    Resolved::Failed("the lookup task ended abnormally".to_string()),
                )
            })
        })
        .collect()
}

/// One lookup, retried like the executor's calls (Retry-After, backoff, one token renewal).
async fn resolve(client: &GraphClient, reference: &str, shutdown: &CancellationToken) -> Resolved {
    let policy = client.retry_policy().clone();
    let mut backoff = policy.backoff_delays();
    let mut renewed = false;
    for _ in 0..policy.max_attempts.max(1) {
        let client_request_id = uuid::Uuid::new_v4().to_string();
        let error = match client
            .get_user_once(reference, &USER_SELECT, &client_request_id)
            .await
        {
            Ok((user, _)) => return Resolved::Found(user),
            Err(e) => e,
        };
        if let GraphError::Http { status: 404, .. } = error {
            return Resolved::Unknown;
        }
        let wait = match error.retry_hint() {
            RetryHint::After(d) => d,
            RetryHint::Backoff => match backoff.next() {
                Some(d) => d,
                None => return Resolved::Failed(error.to_string()),
            },
            RetryHint::RenewToken if !renewed => {
                renewed = true;
                client.invalidate_token();
                Duration::ZERO
            }
            RetryHint::RenewToken | RetryHint::Fatal => return Resolved::Failed(error.to_string()),
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => return Resolved::Failed("shutting down".to_string()),
        }
    }
    Resolved::Failed("lookup attempts exhausted".to_string())
}

/// Every user of the tenant, page by page from `GET /users`.
async fn list_all(
    client: &GraphClient,
    progress: &ManualProgress,
    shutdown: &CancellationToken,
) -> Result<Vec<(UserRef, Resolved)>, EngineError> {
    let mut url = client.list_users_url(&USER_SELECT, 999).to_string();
    let mut out = Vec::new();
    loop {
        if shutdown.is_cancelled() {
            return Err(EngineError::Shutdown);
        }
        let (page, _) = client.list_users_page(&url).await?;
        for user in page.value {
            let value = user
                .user_principal_name
                .clone()
                .unwrap_or_else(|| user.id.clone());
            out.push((
                UserRef {
                    value,
                    origin: "--all-users".to_string(),
                },
                Resolved::Found(user),
            ));
        }
        progress
            .to_resolve
            .store(out.len() as u64, Ordering::Relaxed);
        progress.resolved.store(out.len() as u64, Ordering::Relaxed);
        match page.next_link {
            Some(next) => url = next,
            None => break,
        }
    }
    Ok(out)
}
