//! A faithful Microsoft Graph and identity-platform token endpoint simulator, for tests,
//! benchmarks and demos of revokd.
//!
//! It owns: the scenario format (a fictional tenant's users, groups, risky users, risk
//! detections and sign-ins, evolving over time), the Graph routes revokd uses with Graph's
//! paths, bodies, headers, error shapes, `$filter`/`$top`/`$skiptoken` paging and throttling
//! (the published quota classes), fault injection, and a record of every request and action it
//! received. `revokd sim` serves it on its own; `revokd demo` runs it in-process.
//!
//! It must NOT contain revokd logic (no rules, no decisions, no retries on the client's behalf)
//! and depends on no crate of this workspace: it speaks JSON shaped after
//! `shared/graph-reference`, so it can catch a client that drifts from Graph.
//!
//! # Layout
//!
//! - `scenario`: the YAML scenario format ([`Scenario`]) and its validation (`file:line:col`
//!   errors, [`SimError`]); `config/scenarios/README.md` is its reference.
//! - `world`: the scenario expanded into users, groups and feed records, and the clock.
//! - `shapes`: the JSON shapes Graph serves for users, sign-ins and risk detections.
//! - `simulator`: the [`Simulator`] handle, its state, and the request pipeline
//!   (authenticate → fault → quota → operation → record).
//! - `server`: the accept loop and shutdown.
//! - `api`: the router, the `/_sim` control plane, unknown paths.
//! - `graph`: Graph operations; `token`: the token endpoint.
//! - `list`: OData paging and query options; `filter`: the `$filter` parser and evaluator.
//! - `quota`: sliding-window throttling ([`Quotas`]); `fault`: fault injection ([`FaultSpec`]).
//! - `reply`: response headers and error bodies; `record`: what was received ([`SimRecord`]).
//! - `route`: which quota class, action kind and fault target each operation has.

mod api;
mod error;
mod fault;
mod filter;
mod graph;
mod list;
mod quota;
mod record;
mod reply;
mod route;
mod scenario;
mod server;
mod shapes;
mod simulator;
mod token;
mod world;

pub use error::SimError;
pub use fault::{FaultKind, FaultRoute, FaultSpec};
pub use quota::{QuotaLimit, Quotas};
pub use record::{RecordedAction, RecordedRequest, SimRecord};
pub use scenario::Scenario;
pub use simulator::Simulator;
