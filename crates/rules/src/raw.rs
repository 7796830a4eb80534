//! The rule file format as written: serde types that mirror the YAML, before validation.
//!
//! Unknown keys are errors everywhere (`deny_unknown_fields`), so a typo points at itself
//! instead of silently dropping a condition. New forms are added as new optional keys, so
//! files written for an earlier version stay valid. The doc comments here become the
//! descriptions of docs/rules.schema.json.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::cases::Expect;
use crate::lists::ListKind;
use crate::matcher::Written;
use crate::node::Located;
use crate::rule::{ActionKind, Mode, Severity, Source};
use crate::userfacts::UserFacts;
use crate::window::Dimension;

/// A rule file: a mapping of `rules:`, `lists:` and `macros:`, each optional.
///
/// Only the shape is checked here; each list, macro and rule is then deserialized on its own
/// so that one broken entry does not hide the problems of the others.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `rules:`, `lists:` or `macros:`"
)]
pub(crate) struct RawFile {
    /// Read again node by node; here only its being a list is checked.
    #[serde(rename = "rules", default)]
    _rules: Vec<IgnoredAny>,
    /// Read again entry by entry; here only its being a mapping is checked.
    #[serde(rename = "lists", default)]
    _lists: BTreeMap<String, IgnoredAny>,
    /// Read again entry by entry; here only its being a mapping is checked.
    #[serde(rename = "macros", default)]
    _macros: BTreeMap<String, IgnoredAny>,
}

/// The JSON Schema of a rule file (docs/rules.schema.json) is generated from this type, whose
/// parts are the very types rules are read with.
#[derive(Debug, JsonSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "only the schema of this type is used, never a value"
)]
#[schemars(
    title = "revokd rule file",
    description = "Rules that decide which Microsoft Entra ID users revokd contains, with the named lists and macros their conditions use. See docs/rules.md."
)]
pub(crate) struct FileSchema {
    /// Named lists of strings or networks, tested with `inList(value, 'name')`. Names are
    /// unique across all loaded files.
    #[serde(default)]
    pub lists: BTreeMap<String, RawList>,
    /// Named conditions (CEL), used in conditions by their name. Names are unique across all
    /// loaded files.
    #[serde(default)]
    pub macros: BTreeMap<String, String>,
    /// The rules, evaluated in the order written.
    #[serde(default)]
    pub rules: Vec<RawRule>,
}

/// One entry of `lists:`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(rename = "List")]
#[serde(
    deny_unknown_fields,
    expecting = "a list: a mapping with `kind` and `items` or `file`"
)]
pub(crate) struct RawList {
    /// What the list is for.
    #[serde(default)]
    pub description: String,
    /// `strings` (compared ignoring case) or `networks` (IP addresses and CIDR networks).
    #[serde(default)]
    pub kind: ListKind,
    /// The items, inline.
    #[serde(default)]
    pub items: Option<Located<Vec<Located<String>>>>,
    /// A text file with one item per line (`#` starts a comment), relative to this rule file.
    #[serde(default)]
    pub file: Option<Located<String>>,
}

/// One rule.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(rename = "Rule")]
#[serde(
    deny_unknown_fields,
    expecting = "a rule: a mapping with `id`, `source`, `match` or `condition`, and `actions`"
)]
pub(crate) struct RawRule {
    /// Unique across all rule files: lower-case letters, digits, `-`, `_` and `.`. Decisions,
    /// cooldowns and the audit refer to it.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9._-]*$"))]
    pub id: Located<String>,
    /// What the rule is for.
    #[serde(default)]
    pub description: String,
    /// The Graph feed whose records the rule sees.
    pub source: Source,
    /// Structured conditions: every key must hold; a list of values means any of them.
    #[serde(rename = "match", default)]
    pub matcher: Option<Located<RawMatch>>,
    /// A CEL condition over the record (`riskyUser.*`, `riskDetection.*` or `signIn.*`) and
    /// the user's directory attributes (`user.*`). With `match:` too, both must hold.
    #[serde(default)]
    pub condition: Option<Located<String>>,
    /// Named conditions that suppress a match: it is still recorded, as suppressed, and
    /// nothing is done to the user.
    #[serde(rename = "except", default)]
    pub exceptions: Vec<RawException>,
    /// Counts sign-ins per key within a sliding span of time and requires thresholds
    /// (`sign_ins` rules only).
    #[serde(default)]
    pub window: Option<Located<RawWindow>>,
    /// What to do to the matched user, in order.
    pub actions: Located<Vec<Located<ActionKind>>>,
    /// `enforce` acts; `dry_run` only records what it would have done.
    #[serde(default)]
    pub mode: Mode,
    /// After acting on a user, leave that user alone this long, e.g. `30m`, `1h` (default 1h).
    #[serde(default = "default_cooldown", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub cooldown: Duration,
    /// Informational: low, medium, high, critical.
    #[serde(default)]
    pub severity: Severity,
    /// Free-form labels, e.g. MITRE ATT&CK technique ids.
    #[serde(default)]
    pub tags: Vec<String>,
    /// A disabled rule is validated but never evaluated.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Test cases, run by `revokd check --test`.
    #[serde(default)]
    pub tests: Vec<Located<RawTest>>,
}

/// One entry of `except:`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(rename = "Exception")]
#[serde(
    deny_unknown_fields,
    expecting = "an exception: a mapping with `name` and `condition`"
)]
pub(crate) struct RawException {
    /// Unique within the rule; a suppressed match names it.
    pub name: Located<String>,
    /// A CEL condition; when it holds the match is suppressed.
    pub condition: Located<String>,
}

/// A rule's `window:`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(rename = "Window")]
#[serde(
    deny_unknown_fields,
    expecting = "a window: a mapping with `group_by`, `duration` and thresholds"
)]
pub(crate) struct RawWindow {
    /// What sign-ins are grouped by: one or more of user, ip, app, country.
    pub group_by: Located<Vec<Located<Dimension>>>,
    /// The sliding span, e.g. `10m` (at most 24h).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub duration: Duration,
    /// A CEL condition choosing which sign-ins are counted; all when absent.
    #[serde(rename = "where", default)]
    pub filter: Option<Located<String>>,
    /// Threshold: at least this many counted sign-ins in the span.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub count: Option<Located<u64>>,
    /// Thresholds: at least this many distinct values of each dimension in the span.
    #[serde(default)]
    #[schemars(with = "DistinctThresholds")]
    pub distinct: BTreeMap<Dimension, Located<u64>>,
    /// Keys kept at most for this rule (default 100000); the least recently seen go first.
    #[serde(default)]
    pub max_keys: Option<Located<usize>>,
}

/// The schema of `distinct:`: a map from dimension to threshold, spelled out so that the
/// schema names the dimensions.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "only the schema of this type is used, never a value"
)]
struct DistinctThresholds {
    /// At least this many distinct users (`userId`).
    #[schemars(range(min = 1))]
    user: Option<u64>,
    /// At least this many distinct addresses (`ipAddress`).
    #[schemars(range(min = 1))]
    ip: Option<u64>,
    /// At least this many distinct applications (`appId`).
    #[schemars(range(min = 1))]
    app: Option<u64>,
    /// At least this many distinct countries (`location.countryOrRegion`).
    #[schemars(range(min = 1))]
    country: Option<u64>,
}

/// One entry of a rule's `tests:`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(rename = "Test")]
#[serde(
    deny_unknown_fields,
    expecting = "a test: a mapping with `name`, `input` and `expect`"
)]
pub(crate) struct RawTest {
    /// What the case shows.
    pub name: String,
    /// Records fed to the rule first, oldest first: they fill its window.
    #[serde(default)]
    #[schemars(with = "Vec<serde_json::Map<String, Value>>")]
    pub given: Vec<Located<Value>>,
    /// The record the rule decides on, as Graph sends it.
    #[schemars(with = "serde_json::Map<String, Value>")]
    pub input: Located<Value>,
    /// The user's directory attributes (`user.*`); absent when not given.
    #[serde(default)]
    pub user: Option<UserFacts>,
    /// The decision expected: match, no_match or suppressed.
    pub expect: Expect,
    /// For `suppressed`: the exception expected to hold.
    #[serde(default)]
    pub exception: Option<Located<String>>,
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

impl JsonSchema for RawMatch {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Match".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::Schema::try_from(crate::matcher::match_schema()).unwrap_or_default()
    }
}

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
by_name!(ListKind, "list kind", ListKind::ALL);
by_name!(Dimension, "window dimension", Dimension::ALL);
by_name!(Expect, "expected decision", Expect::ALL);
