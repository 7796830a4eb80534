//! Rule files for revokd: parse, validate, compile, evaluate, explain.
//!
//! The engine reads rule files and hands their text to [`compile`], which returns a
//! [`RuleSet`] or every problem at once as `file:line:col: message` [`Diagnostics`]. The
//! engine then passes each typed Graph record ([`Record`]) to [`RuleSet::evaluate`] and stores
//! the [`Explanation`] of every match with its decision.
//!
//! This crate is pure. It must NOT do I/O (no files, no network, no SQL), read the clock
//! (callers pass time in when a rule ever needs it), call Graph, or panic on any input: rule
//! text and records both come from outside. It depends on `graph` only for the typed models.
//!
//! Layout:
//! - `diag`: [`SourceFile`] in, [`Diagnostic`]s out.
//! - `node`: span-aware YAML tree (serde-saphyr) and a positioned deserializer over it.
//! - `raw`: the file format as serde types, unknown keys denied.
//! - `compile`: raw rules to validated [`Rule`]s; cross-file checks.
//! - `matcher`: the `match:` keys, their load-time checks and their tests on records.
//! - `vocab`: the Graph enum members rule values are checked against.
//! - `record`: [`Record`], the only place that reads model fields.
//! - `rule`: [`Rule`] and its header vocabularies ([`Source`], [`ActionKind`], [`Mode`],
//!   [`Severity`]) and its content hash.
//! - `ruleset`: [`RuleSet`], evaluation and [`Explanation`]s.

mod compile;
mod diag;
mod matcher;
mod node;
mod raw;
mod record;
mod rule;
mod ruleset;
mod vocab;

pub use compile::compile;
pub use diag::{Diagnostic, Diagnostics, SourceFile};
pub use record::Record;
pub use rule::{ActionKind, Mode, Rule, Severity, Source};
pub use ruleset::{ConditionOutcome, Explanation, RuleMatch, RuleSet};
