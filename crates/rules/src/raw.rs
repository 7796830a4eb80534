//! The rule file format as written: serde types that mirror the YAML, before validation.
//!
//! Unknown keys are errors everywhere (`deny_unknown_fields`), so a typo points at itself
//! instead of silently dropping a condition. New forms (a CEL `condition:`, named lists,
//! macros) are added here as new optional keys, so files written for this version stay valid.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::matcher::Written;
use crate::node::Located;
use crate::rule::{ActionKind, Mode, Severity, Source};

/// A rule file: a mapping whose only key (for now) is the list of rules.
///
/// Only the shape is checked here; each rule is then deserialized on its own so that one
/// broken rule does not hide the problems of the others.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping with a `rules:` list")]
pub(crate) struct RawFile {
    /// Read again node by node; here only its being a list is checked.
    #[serde(rename = "rules")]
    _rules: Vec<IgnoredAny>,
}

/// One entry of `rules:`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a rule: a mapping with `id`, `source`, `match` and `actions`"
)]
pub(crate) struct RawRule {
    /// Unique rule name; its position anchors id and duplicate errors.
    pub id: Located<String>,
    /// Free text for people.
    #[serde(default)]
    pub description: String,
    /// The feed the rule watches.
    pub source: Source,
    /// Optional in the type so that its absence gets a message saying how to match everything.
    #[serde(rename = "match", default)]
    pub matcher: Option<Located<RawMatch>>,
    /// What to do on a match, each with its position for duplicate errors.
    pub actions: Located<Vec<Located<ActionKind>>>,
    /// Enforce or dry run.
    #[serde(default)]
    pub mode: Mode,
    /// Written `30s`, `10m`, `1h`.
    #[serde(default = "default_cooldown", with = "humantime_serde")]
    pub cooldown: Duration,
    /// Informational.
    #[serde(default)]
    pub severity: Severity,
    /// Free-form labels.
    #[serde(default)]
    pub tags: Vec<String>,
    /// A disabled rule is validated but not evaluated.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

/// One hour: long enough that a user is not revoked again on every poll while Graph still
/// reports the same risk, short enough that a fresh compromise the same day is acted on.
fn default_cooldown() -> Duration {
    Duration::from_secs(3600)
}

fn enabled_by_default() -> bool {
    true
}

/// The `match:` block: its entries in the order written, keys not yet resolved, so that every
/// unknown or misplaced key of a rule is reported together.
#[derive(Debug)]
pub(crate) struct RawMatch(pub Vec<(Located<String>, Located<Written>)>);

impl<'de> Deserialize<'de> for RawMatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RawMatchVisitor)
    }
}

struct RawMatchVisitor;

impl<'de> Visitor<'de> for RawMatchVisitor {
    type Value = RawMatch;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of match keys to values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawMatch, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(RawMatch(entries))
    }
}

impl<'de> Deserialize<'de> for Written {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(WrittenVisitor)
    }
}

/// Accepts any value: what does not fit the key is reported when the key is known.
struct WrittenVisitor;

impl<'de> Visitor<'de> for WrittenVisitor {
    type Value = Written;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a match value")
    }

    fn visit_str<E>(self, v: &str) -> Result<Written, E> {
        Ok(Written::One(v.to_owned()))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Written, E> {
        Ok(Written::Bool(v))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Written, E> {
        Ok(Written::Other("a number"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Written, E> {
        Ok(Written::Other("a number"))
    }

    fn visit_i128<E>(self, _: i128) -> Result<Written, E> {
        Ok(Written::Other("a number"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Written, E> {
        Ok(Written::Other("a number"))
    }

    fn visit_unit<E>(self) -> Result<Written, E> {
        Ok(Written::Other("nothing (null)"))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Written, A::Error> {
        Ok(Written::Other("a mapping"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Written, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Located<Item>>()? {
            items.push((item.pos, item.value.0));
        }
        Ok(Written::Many(items))
    }
}

/// One list item: a string, or the kind of value found instead.
struct Item(Result<String, &'static str>);

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ItemVisitor)
    }
}

struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Item;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E>(self, v: &str) -> Result<Item, E> {
        Ok(Item(Ok(v.to_owned())))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Item, E> {
        Ok(Item(Err("a boolean")))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Item, E> {
        Ok(Item(Err("a number")))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Item, E> {
        Ok(Item(Err("a number")))
    }

    fn visit_i128<E>(self, _: i128) -> Result<Item, E> {
        Ok(Item(Err("a number")))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Item, E> {
        Ok(Item(Err("a number")))
    }

    fn visit_unit<E>(self) -> Result<Item, E> {
        Ok(Item(Err("nothing (null)")))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Item, A::Error> {
        Ok(Item(Err("a mapping")))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Item, A::Error> {
        Ok(Item(Err("a list")))
    }
}

/// Header enums are read by name with an error that says what the value is for; serde's
/// derived message would talk about "variants". The check runs inside the visitor so that
/// the error carries the value's position.
macro_rules! by_name {
    ($ty:ty, $what:literal, $all:expr) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Name;

                impl<'de> Visitor<'de> for Name {
                    type Value = $ty;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "a {} name", $what)
                    }

                    fn visit_str<E: de::Error>(self, text: &str) -> Result<$ty, E> {
                        $all.into_iter()
                            .find(|v| v.as_str() == text)
                            .ok_or_else(|| {
                                let valid: Vec<&str> = $all.iter().map(|v| v.as_str()).collect();
                                E::custom(format!(
                                    "unknown {} `{text}`, expected one of: {}",
                                    $what,
                                    valid.join(", ")
                                ))
                            })
                    }
                }

                deserializer.deserialize_str(Name)
            }
        }
    };
}

by_name!(Source, "source", Source::ALL);
by_name!(ActionKind, "action", ActionKind::ALL);
by_name!(Mode, "mode", Mode::ALL);
by_name!(Severity, "severity", Severity::ALL);
