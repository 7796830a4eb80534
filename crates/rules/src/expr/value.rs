//! Run-time values of conditions: borrowed from the record wherever possible.

use std::borrow::Cow;

use serde_json::Value;

/// A value during evaluation. The checker guarantees every operation sees the types it expects.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val<'a> {
    Bool(bool),
    Int(i64),
    Str(Cow<'a, str>),
    List(Vec<Val<'a>>),
}

impl Val<'_> {
    /// As JSON, for explanations.
    pub fn to_json(&self) -> Value {
        match self {
            Val::Bool(b) => Value::Bool(*b),
            Val::Int(i) => Value::from(*i),
            Val::Str(s) => Value::String(s.to_string()),
            Val::List(items) => Value::Array(items.iter().map(Val::to_json).collect()),
        }
    }

    pub fn as_bool(&self) -> bool {
        matches!(self, Val::Bool(true))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Val::Str(s) => s,
            _ => "",
        }
    }
}
