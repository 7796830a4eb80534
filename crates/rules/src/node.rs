//! A span-aware YAML tree, and a serde deserializer over it whose errors carry positions.
//!
//! serde-saphyr stops at the first error of a document. Parsing the text once into this tree
//! and then deserializing each rule from its own subtree lets one broken rule be reported
//! without hiding the problems of the rules after it.

use std::fmt;
use std::slice;

use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde::{Deserialize, forward_to_deserialize_any};
use serde_saphyr::{
    Budget, DuplicateKeyPolicy, Localizer, Location, SnippetMode, Spanned, UserMessageFormatter,
};

use crate::diag::Problem;

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Pos {
    /// The start of a file: where problems without a better place are reported.
    pub const START: Pos = Pos { line: 1, column: 1 };

    fn from_location(location: Location) -> Pos {
        if location == Location::UNKNOWN {
            return Pos::START;
        }
        let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Pos {
            line: to_usize(location.line()),
            column: to_usize(location.column()),
        }
    }
}

/// One YAML node with the position it was written at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// Where the node starts (for an alias: where the alias is used).
    pub pos: Pos,
    /// The node's value.
    pub kind: Kind,
}

/// The value of a YAML node, as YAML's core schema resolved it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false` (strictly: `yes` is a string).
    Bool(bool),
    /// Wide enough for any YAML integer serde-saphyr produces.
    Int(i128),
    /// Floats, including `.nan` and `.inf`.
    Float(f64),
    /// Any other scalar.
    Str(String),
    /// A sequence, items in order.
    Seq(Vec<Node>),
    /// A mapping, entries in the order written (duplicates are rejected while parsing).
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The value under the string key `key`, when this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(&k.kind, Kind::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Parses one YAML document into a tree.
///
/// Duplicate keys and unknown tags are errors, booleans are strict (`yes` is a string), and
/// the budget bounds alias expansion, nesting depth and size.
pub(crate) fn parse(text: &str) -> Result<Node, Problem> {
    // serde-saphyr's default allows 250,000 nodes; a thousand-rule file needs a tenth of that,
    // and a tighter bound keeps an alias bomb from costing a reload more than milliseconds.
    let mut budget = Budget::default();
    budget.max_nodes = 50_000;
    let options = serde_saphyr::options! {
        budget: Some(budget),
        duplicate_keys: DuplicateKeyPolicy::Error,
        strict_booleans: true,
        reject_unsupported_tags: true,
        with_snippet: false,
    };
    serde_saphyr::from_str_with_options::<Node>(text, options).map_err(|e| {
        let pos = e.location().map_or(Pos::START, Pos::from_location);
        let mut message = plain_message(&e);
        // A CEL negation at the start of a plain scalar reads as a YAML tag.
        if message.starts_with("unsupported tag `!") {
            message.push_str(
                " (a condition that starts with `!` must be quoted: condition: '!signIn.isInteractive')",
            );
        }
        (pos, message)
    })
}

/// The error's message without serde-saphyr's own "at line X, column Y" suffix: diagnostics
/// put the position in front, as `file:line:col: message`.
fn plain_message(error: &serde_saphyr::Error) -> String {
    let formatter = UserMessageFormatter.with_localizer(&NoPositions);
    let options = serde_saphyr::render_options! {
        formatter: &formatter,
        snippets: SnippetMode::Off,
    };
    error.render_with_options(options)
}

struct NoPositions;

impl Localizer for NoPositions {
    fn attach_location<'a>(
        &self,
        base: std::borrow::Cow<'a, str>,
        _loc: Location,
    ) -> std::borrow::Cow<'a, str> {
        base
    }

    fn alias_used_at(&self, _used: Location) -> String {
        String::new()
    }

    fn alias_defined_at(&self, defined: Location) -> String {
        format!(" (anchor at {}:{})", defined.line(), defined.column())
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Kind>::deserialize(deserializer)?;
        Ok(Node {
            pos: Pos::from_location(spanned.referenced),
            kind: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Kind, E> {
        Ok(Kind::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Int(v.into()))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Kind, E> {
        Ok(Kind::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Kind, E> {
        Ok(Kind::Int(v.into()))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Kind, E> {
        i128::try_from(v)
            .map(Kind::Int)
            .map_err(|_| E::custom("integer out of range"))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Kind, E> {
        Ok(Kind::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Kind, E> {
        Ok(Kind::Str(v))
    }

    fn visit_unit<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }

    fn visit_none<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Kind, D::Error> {
        Kind::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Kind::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<Node, Node>()? {
            entries.push(entry);
        }
        Ok(Kind::Map(entries))
    }
}

/// A value deserialized from a [`Node`] together with the node's position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Located<T> {
    /// Where the value was written.
    pub pos: Pos,
    /// The value.
    pub value: T,
}

/// A located value has the schema of the value: positions are not written, only read.
impl<T: schemars::JsonSchema> schemars::JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// The newtype name through which [`Located`] asks [`NodeDeserializer`] for a position.
const LOCATED: &str = "$rules::Located";

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(LOCATED, LocatedVisitor(std::marker::PhantomData))
    }
}

struct LocatedVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for LocatedVisitor<T> {
    type Value = Located<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value with its position")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Located<T>, A::Error> {
        let missing = || de::Error::custom("position missing");
        let line = seq.next_element::<usize>()?.ok_or_else(missing)?;
        let column = seq.next_element::<usize>()?.ok_or_else(missing)?;
        let value = seq.next_element::<T>()?.ok_or_else(missing)?;
        Ok(Located {
            pos: Pos { line, column },
            value,
        })
    }
}

/// A deserialization error with the position of the node it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct DeError {
    /// The innermost node the error arose in; `None` only while it bubbles up to one.
    pub pos: Option<Pos>,
    /// What is wrong, lower-case, without position.
    pub message: String,
}

impl DeError {
    /// Attaches `pos` unless a more precise (inner) position is already known.
    fn at(mut self, pos: Pos) -> DeError {
        self.pos.get_or_insert(pos);
        self
    }
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            pos: None,
            message: msg.to_string(),
        }
    }
}

/// Deserializes a typed value from a [`Node`], strictly: no scalar is coerced to another type.
pub(crate) struct NodeDeserializer<'de>(pub &'de Node);

impl<'de> NodeDeserializer<'de> {
    /// Deserializes `T` from `node`.
    pub fn value<T: Deserialize<'de>>(node: &'de Node) -> Result<T, DeError> {
        T::deserialize(NodeDeserializer(node))
    }

    fn any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.0.kind {
            Kind::Null => visitor.visit_unit(),
            Kind::Bool(b) => visitor.visit_bool(*b),
            Kind::Int(i) => match i64::try_from(*i) {
                Ok(small) => visitor.visit_i64(small),
                Err(_) => visitor.visit_i128(*i),
            },
            Kind::Float(x) => visitor.visit_f64(*x),
            Kind::Str(s) => visitor.visit_str(s),
            Kind::Seq(items) => visitor.visit_seq(NodeSeq(items.iter())),
            Kind::Map(entries) => visitor.visit_map(NodeMap {
                entries: entries.iter(),
                value: None,
            }),
        }
    }
}

impl<'de> Deserializer<'de> for NodeDeserializer<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let pos = self.0.pos;
        self.any(visitor).map_err(|e| e.at(pos))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let pos = self.0.pos;
        match self.0.kind {
            Kind::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
        .map_err(|e| e.at(pos))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let pos = self.0.pos;
        if name == LOCATED {
            visitor.visit_seq(LocatedSeq {
                node: self.0,
                step: 0,
            })
        } else {
            visitor.visit_newtype_struct(self)
        }
        .map_err(|e| e.at(pos))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        // Only unit variants written as plain strings: `mode: dry_run`.
        let pos = self.0.pos;
        match &self.0.kind {
            Kind::Str(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            _ => self.any(visitor),
        }
        .map_err(|e| e.at(pos))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // A non-string key must not select a struct field by its index.
        let pos = self.0.pos;
        match &self.0.kind {
            Kind::Str(s) => visitor.visit_str(s),
            _ => Err(<DeError as de::Error>::custom("expected a string key")),
        }
        .map_err(|e| e.at(pos))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        // Derived structs also accept a sequence of their fields in order; a rule file never
        // means that, and the resulting message would be misleading.
        let pos = self.0.pos;
        match &self.0.kind {
            Kind::Map(_) => self.any(visitor),
            other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
        }
        .map_err(|e| e.at(pos))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map
    }
}

/// How serde names a node's kind in "invalid type" messages.
fn unexpected(kind: &Kind) -> de::Unexpected<'_> {
    match kind {
        Kind::Null => de::Unexpected::Unit,
        Kind::Bool(b) => de::Unexpected::Bool(*b),
        Kind::Int(i) => match i64::try_from(*i) {
            Ok(small) => de::Unexpected::Signed(small),
            Err(_) => de::Unexpected::Other("integer"),
        },
        Kind::Float(x) => de::Unexpected::Float(*x),
        Kind::Str(s) => de::Unexpected::Str(s),
        Kind::Seq(_) => de::Unexpected::Seq,
        Kind::Map(_) => de::Unexpected::Map,
    }
}

struct NodeSeq<'de>(slice::Iter<'de, Node>);

impl<'de> SeqAccess<'de> for NodeSeq<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        self.0
            .next()
            .map(|node| seed.deserialize(NodeDeserializer(node)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct NodeMap<'de> {
    entries: slice::Iter<'de, (Node, Node)>,
    value: Option<&'de Node>,
}

impl<'de> MapAccess<'de> for NodeMap<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(NodeDeserializer(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some(value) => seed.deserialize(NodeDeserializer(value)),
            None => Err(de::Error::custom("value requested before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// Feeds [`LocatedVisitor`]: line, column, then the node's value.
struct LocatedSeq<'de> {
    node: &'de Node,
    step: u8,
}

impl<'de> SeqAccess<'de> for LocatedSeq<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        self.step = self.step.saturating_add(1);
        let pos = self.node.pos;
        match self.step {
            1 => seed.deserialize(pos.line.into_deserializer()).map(Some),
            2 => seed.deserialize(pos.column.into_deserializer()).map(Some),
            3 => seed.deserialize(NodeDeserializer(self.node)).map(Some),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        name: Located<String>,
        #[serde(default)]
        count: u32,
    }

    fn sample(text: &str) -> Result<Sample, DeError> {
        let node = parse(text).map_err(|(pos, message)| DeError {
            pos: Some(pos),
            message,
        })?;
        NodeDeserializer::value(&node)
    }

    fn err(text: &str) -> (usize, usize, String) {
        match sample(text) {
            Ok(v) => panic!("expected an error, got {v:?}"),
            Err(e) => {
                let pos = e.pos.unwrap_or(Pos { line: 0, column: 0 });
                (pos.line, pos.column, e.message)
            }
        }
    }

    #[test]
    fn located_values_carry_their_position() {
        let s = sample("count: 2\nname: alpha\n").expect("valid sample");
        assert_eq!(s.name.value, "alpha");
        assert_eq!(s.name.pos, Pos { line: 2, column: 7 });
        assert_eq!(s.count, 2);
    }

    #[test]
    fn errors_point_at_the_innermost_node() {
        assert_eq!(
            err("name: a\ncount: many\n"),
            (
                2,
                8,
                "invalid type: string \"many\", expected u32".to_string()
            )
        );
        assert_eq!(
            err("name: a\ncolour: red\n"),
            (
                2,
                1,
                "unknown field `colour`, expected `name` or `count`".to_string()
            )
        );
        assert_eq!(
            err("count: 1\n"),
            (1, 1, "missing field `name`".to_string())
        );
    }

    #[test]
    fn scalars_are_not_coerced() {
        assert_eq!(
            err("name: 5\n").2,
            "invalid type: integer `5`, expected a string"
        );
        assert_eq!(
            err("name: yes\ncount: true\n").2,
            "invalid type: boolean `true`, expected u32"
        );
    }

    #[test]
    fn non_string_keys_never_select_fields_by_index() {
        assert_eq!(err("0: x\n").2, "expected a string key");
    }

    #[test]
    fn yaml_problems_are_reported_without_a_position_suffix() {
        let (pos, message) = parse("a: 1\na: 2\n").expect_err("duplicate key");
        assert_eq!(pos, Pos { line: 2, column: 1 });
        assert!(message.starts_with("duplicate mapping key"), "{message}");
        assert!(!message.contains("line"), "{message}");
    }
}
