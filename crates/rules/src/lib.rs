//! Rule files for revokd: parse, validate, compile, evaluate, explain.
//!
//! The engine reads rule files (and the list files they name, see [`required_files`]) and
//! hands their text to [`compile`], which returns a [`RuleSet`] or every problem at once as
//! `file:line:col: message` [`Diagnostics`]. The engine then passes each typed Graph record
//! ([`Record`]), what the directory says of its user ([`UserFacts`]) and its [`WindowState`]
//! to [`RuleSet::evaluate_with`], and stores the [`Explanation`] of every match with its
//! decision; a match an exception suppressed comes back with [`RuleMatch::suppressed_by`].
//!
//! A rule's conditions are a structured `match:` block, a CEL `condition:` (checked against
//! the record schema at load, total at evaluation), or both; `except:` conditions suppress a
//! match; a `window:` counts sign-ins per key over a sliding span. Named `lists:` and
//! `macros:` are shared by every loaded file.
//!
//! This crate is pure. It must NOT do I/O (no files, no network, no SQL), read the clock
//! (windows take time from each sign-in's `createdDateTime`), call Graph, or panic on any
//! input: rule text and records both come from outside. It depends on `graph` only for the
//! typed models.
//!
//! Layout:
//! - `diag`: [`SourceFile`] in, [`Diagnostic`]s out.
//! - `node`: span-aware YAML tree (serde-saphyr) and a positioned deserializer over it.
//! - `raw`: the file format as serde types, unknown keys denied; the JSON Schema's source.
//! - `compile`: files to validated [`Rule`]s: lists, macros, rules, cross-file checks.
//! - `matcher`: the `match:` keys, their load-time checks and their tests on records.
//! - `expr`: CEL conditions: schema of names, type checker, compiled form, evaluation.
//! - `lists`: named lists and list files.
//! - `window`: sliding-window counts over sign-ins and their state.
//! - `cases`: rule test cases and their runner.
//! - `vocab`: the Graph enum members rule values are checked against.
//! - `record`: [`Record`] and [`OwnedRecord`], the only place that reads match fields.
//! - `userfacts`: [`UserFacts`], the user's directory attributes.
//! - `rule`: [`Rule`] and its header vocabularies ([`Source`], [`ActionKind`], [`Mode`],
//!   [`Severity`]) and its content hash.
//! - `ruleset`: [`RuleSet`], evaluation and [`Explanation`]s.

mod cases;
mod compile;
mod diag;
mod expr;
mod lists;
mod matcher;
mod node;
mod raw;
mod record;
mod rule;
mod ruleset;
mod userfacts;
mod vocab;
mod window;

pub use cases::{Expect, TestOutcome};
pub use compile::{compile, required_files};
pub use diag::{Diagnostic, Diagnostics, SourceFile};
pub use lists::{ListKind, NamedList};
pub use record::{OwnedRecord, Record, detect_source, source_of_context};
pub use rule::{ActionKind, Mode, Rule, Severity, Source};
pub use ruleset::{ConditionOutcome, ExceptionOutcome, Explanation, RuleMatch, RuleSet};
pub use userfacts::UserFacts;
pub use window::{
    DEFAULT_MAX_KEYS, Dimension, MAX_EVENTS_PER_KEY, ThresholdOutcome, WindowOutcome, WindowState,
    WindowStats,
};

/// The JSON Schema (2020-12) of a rule file, generated from the types rule files are read
/// with; published as docs/rules.schema.json.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::SchemaGenerator::default().into_root_schema_for::<raw::FileSchema>();
    schema.to_value()
}

/// Every name a `condition:` can read, as `(name, CEL type, what it holds)`: the reference
/// docs/rules.md lists.
pub fn condition_fields() -> Vec<(String, String, &'static str)> {
    expr::schema::documented().collect()
}
