//! The simulator handle and its state: one mutex around the world, tokens, quotas, faults and
//! the record, and the pipeline every Graph or token request goes through.
//!
//! Pipeline: authenticate (Graph routes) → fault → quota → operation → record. Each step can
//! answer instead of the next; whatever is answered is recorded, including refusals.

use crate::fault::{FaultKind, FaultSpec, Faults};
use crate::quota::{Limiter, retry_after_secs};
use crate::record::{RecordedAction, RecordedRequest, SimRecord};
use crate::reply::{Ctx, Reply, fault_reply, throttled, unauthenticated};
use crate::route::Route;
use crate::scenario::{ClientSpec, Scenario};
use crate::world::{Clock, World};
use rand::Rng;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A running simulated tenant. Cheap to clone: clones share one state.
#[derive(Clone)]
pub struct Simulator {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator").finish_non_exhaustive()
    }
}

/// Everything that changes while the simulator runs.
pub(crate) struct State {
    /// The tenant's users, groups and feeds.
    pub(crate) world: World,
    /// App registrations allowed to get tokens.
    pub(crate) clients: Vec<ClientSpec>,
    /// Lifetime of issued tokens.
    pub(crate) token_lifetime: Duration,
    /// Cap on every list page.
    pub(crate) page_size: Option<usize>,
    /// Issued access tokens and when each expires.
    tokens: HashMap<String, Instant>,
    /// Quota windows.
    limiter: Limiter,
    /// Armed faults.
    faults: Faults,
    /// What was received.
    record: SimRecord,
}

/// What the pipeline needs to know about a request, gathered before it runs. Not `Debug`:
/// it holds the bearer token.
pub(crate) struct Call {
    /// The operation.
    pub(crate) route: Route,
    /// HTTP method, for the record.
    pub(crate) method: String,
    /// Path and query, for the record.
    pub(crate) path_and_query: String,
    /// The client's `client-request-id`.
    pub(crate) client_request_id: Option<String>,
    /// The `Authorization` header value (never recorded or logged).
    pub(crate) authorization: Option<String>,
    /// The users the call is about, as addressed (path segment or body `userIds`).
    pub(crate) users: Vec<String>,
    /// The JSON body, recorded with actions.
    pub(crate) body: Option<Value>,
}

impl Simulator {
    /// Starts the scenario clock now and builds the simulated tenant.
    pub fn new(scenario: Scenario) -> Simulator {
        let world = World::build(&scenario, Clock::start_now());
        let mut faults = Faults::default();
        for fault in scenario.faults {
            faults.arm(fault);
        }
        let state = State {
            world,
            clients: scenario.clients.value,
            token_lifetime: scenario.token_lifetime,
            page_size: scenario.page_size.map(std::num::NonZeroUsize::get),
            tokens: HashMap::new(),
            limiter: Limiter::new(scenario.quotas),
            faults,
            record: SimRecord::default(),
        };
        Simulator {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// Everything received so far.
    pub fn record(&self) -> SimRecord {
        self.lock().record.clone()
    }

    /// Arms a fault behind those already armed.
    pub fn inject(&self, fault: FaultSpec) {
        tracing::debug!(?fault, "fault injected");
        self.lock().faults.arm(fault);
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters more than stopping the simulator would, so keep serving.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `op` through the pipeline and records the outcome. Returns the reply and, for a
    /// `slow` fault, how long to hold it.
    pub(crate) fn handle(
        &self,
        call: &Call,
        ctx: &Ctx,
        op: impl FnOnce(&mut State, &Ctx, Duration) -> Reply,
    ) -> (Reply, Option<Duration>) {
        let now = Instant::now();
        let mut state = self.lock();
        let elapsed = state.world.clock.elapsed(now);
        let mut delay = None;
        let reply = match state.admit(call, ctx, now) {
            Err(refusal) => refusal,
            Ok(fault) => {
                let reply = op(&mut state, ctx, elapsed);
                match fault {
                    Some(FaultKind::Slow { delay: d }) => {
                        delay = Some(d);
                        reply
                    }
                    Some(FaultKind::Malformed {}) => reply.truncated(),
                    _ => reply,
                }
            }
        };
        state.record_call(call, ctx, &reply, elapsed);
        tracing::debug!(
            method = %call.method,
            path = %call.path_and_query,
            status = reply.status.as_u16(),
            request_id = %ctx.request_id,
            "simulated graph call"
        );
        (reply, delay)
    }
}

impl State {
    /// Authentication, faults and quotas, in that order; `Ok` carries a fault that lets the
    /// call proceed (slow, malformed).
    fn admit(&mut self, call: &Call, ctx: &Ctx, now: Instant) -> Result<Option<FaultKind>, Reply> {
        if call.route != Route::Token {
            self.authenticate(call.authorization.as_deref(), now)
                .map_err(|message| unauthenticated(message, ctx))?;
        }
        let world = &self.world;
        let is_user = |key: &str| call.users.iter().any(|u| same_user(world, u, key));
        let fault = self.faults.hit(call.route, &is_user);
        if let Some(reply) = fault
            .as_ref()
            .and_then(|kind| fault_reply(kind, call.route == Route::Token, ctx))
        {
            return Err(reply);
        }
        if let Some(class) = call.route.quota_class()
            && let Err(wait) = self.limiter.admit(class, now)
        {
            let retry_after = class.sends_retry_after().then(|| retry_after_secs(wait));
            return Err(throttled(retry_after, ctx));
        }
        Ok(fault)
    }

    /// Checks `Authorization: Bearer <token>` against the tokens issued and not expired.
    fn authenticate(&self, header: Option<&str>, now: Instant) -> Result<(), &'static str> {
        let header = header
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or("Access token is empty.")?;
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or("Access token is empty.")?;
        match self.tokens.get(token) {
            None => Err("Access token validation failure. Invalid audience."),
            Some(expiry) if *expiry <= now => {
                Err("Lifetime validation failed, the token is expired.")
            }
            Some(_) => Ok(()),
        }
    }

    /// Issues an opaque access token valid for the scenario's token lifetime.
    pub(crate) fn issue_token(&mut self, now: Instant) -> String {
        self.tokens.retain(|_, expiry| *expiry > now);
        let token: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(64)
            .map(char::from)
            .collect();
        self.tokens.insert(token.clone(), now + self.token_lifetime);
        token
    }

    fn record_call(&mut self, call: &Call, ctx: &Ctx, reply: &Reply, elapsed: Duration) {
        let at = self.world.clock.at(elapsed, Duration::ZERO);
        let status = if reply.drop { 0 } else { reply.status.as_u16() };
        self.record.requests.push(RecordedRequest {
            at,
            method: call.method.clone(),
            path_and_query: call.path_and_query.clone(),
            quota_class: call.route.quota_class().map(|c| c.name().to_string()),
            status,
            retry_after: reply.retry_after,
            request_id: ctx.request_id.clone(),
            client_request_id: ctx.client_request_id.clone(),
        });
        let Some(kind) = call.route.action_kind() else {
            return;
        };
        let nobody = [String::new()];
        let users = if call.users.is_empty() {
            &nobody[..]
        } else {
            &call.users[..]
        };
        for user in users {
            let user_id = self
                .world
                .find(user)
                .map(|i| self.world.users[i].id().to_string());
            self.record.actions.push(RecordedAction {
                at,
                kind: kind.to_string(),
                user: user.clone(),
                user_id,
                status,
                request_id: ctx.request_id.clone(),
                client_request_id: ctx.client_request_id.clone(),
                body: call.body.clone(),
            });
        }
    }

    /// Records a request that matched no route (it has no operation to run).
    pub(crate) fn record_unrouted(
        &mut self,
        method: &str,
        path_and_query: &str,
        ctx: &Ctx,
        status: u16,
    ) {
        let at = self
            .world
            .clock
            .at(self.world.clock.elapsed(Instant::now()), Duration::ZERO);
        self.record.requests.push(RecordedRequest {
            at,
            method: method.to_string(),
            path_and_query: path_and_query.to_string(),
            quota_class: None,
            status,
            retry_after: None,
            request_id: ctx.request_id.clone(),
            client_request_id: ctx.client_request_id.clone(),
        });
    }
}

/// Whether `addressed` (how a request named a user) and `key` (a fault's user filter) are the
/// same user, by id or UPN.
fn same_user(world: &World, addressed: &str, key: &str) -> bool {
    addressed.eq_ignore_ascii_case(key)
        || world.find(addressed).is_some_and(|i| world.is_user(i, key))
}
