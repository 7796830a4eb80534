//! The structured `match:` block: its keys, how each value is checked at load, and how a
//! compiled condition tests a record.
//!
//! A later `condition:` (CEL) form will sit beside `match:`; a `match:` block keeps its meaning.

use std::net::IpAddr;

use graph::models::RiskLevel;
use ipnet::IpNet;
use serde_json::Value;

use crate::diag::Problem;
use crate::node::{Located, Pos};
use crate::record::{Field, Record};
use crate::rule::Source;
use crate::vocab;

/// A key of the `match:` block. Each reads one field of the record (see [`MatchKey::field`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MatchKey {
    All,
    RiskLevel,
    MinRiskLevel,
    RiskState,
    RiskDetail,
    RiskEventType,
    DetectionTimingType,
    UserPrincipalName,
    IsProcessing,
    IpAddress,
    Country,
    AppId,
    AppDisplayName,
    Status,
    RiskLevelDuringSignIn,
    RiskLevelAggregated,
}

/// What kind of value a key takes in the rule file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `true`, and nothing else beside it.
    AllFlag,
    /// One string or a list; `Some` holds the only valid members.
    Strings(Option<&'static [&'static str]>, Fold),
    /// A list of IP addresses or CIDR networks.
    Networks,
    /// One ranked risk level.
    Level,
    /// `true` or `false`.
    Bool,
    /// `success` or `failure`.
    Status,
}

/// Whether strings compare case-insensitively (names, codes) or exactly (Graph enum members).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fold {
    Exact,
    IgnoreCase,
}

use Source::{PostContainment as P, RiskDetections as D, RiskyUsers as U, SignIns as S};

impl MatchKey {
    const EVERY: [MatchKey; 16] = [
        MatchKey::All,
        MatchKey::RiskLevel,
        MatchKey::MinRiskLevel,
        MatchKey::RiskState,
        MatchKey::RiskDetail,
        MatchKey::RiskEventType,
        MatchKey::DetectionTimingType,
        MatchKey::UserPrincipalName,
        MatchKey::IsProcessing,
        MatchKey::IpAddress,
        MatchKey::Country,
        MatchKey::AppId,
        MatchKey::AppDisplayName,
        MatchKey::Status,
        MatchKey::RiskLevelDuringSignIn,
        MatchKey::RiskLevelAggregated,
    ];

    /// The key as written in rule files.
    pub fn name(self) -> &'static str {
        match self {
            MatchKey::All => "all",
            MatchKey::RiskLevel => "risk_level",
            MatchKey::MinRiskLevel => "min_risk_level",
            MatchKey::RiskState => "risk_state",
            MatchKey::RiskDetail => "risk_detail",
            MatchKey::RiskEventType => "risk_event_type",
            MatchKey::DetectionTimingType => "detection_timing_type",
            MatchKey::UserPrincipalName => "user_principal_name",
            MatchKey::IsProcessing => "is_processing",
            MatchKey::IpAddress => "ip_address",
            MatchKey::Country => "country",
            MatchKey::AppId => "app_id",
            MatchKey::AppDisplayName => "app_display_name",
            MatchKey::Status => "status",
            MatchKey::RiskLevelDuringSignIn => "risk_level_during_sign_in",
            MatchKey::RiskLevelAggregated => "risk_level_aggregated",
        }
    }

    /// The key written as `name`, if there is one.
    pub fn from_name(name: &str) -> Option<MatchKey> {
        MatchKey::EVERY.into_iter().find(|k| k.name() == name)
    }

    /// The sources whose records have the field this key reads.
    fn sources(self) -> &'static [Source] {
        match self {
            MatchKey::All | MatchKey::RiskLevel | MatchKey::RiskState => &[U, D, S, P],
            MatchKey::MinRiskLevel | MatchKey::UserPrincipalName => &[U, D, S, P],
            MatchKey::RiskDetail | MatchKey::IsProcessing => &[U],
            MatchKey::RiskEventType | MatchKey::DetectionTimingType => &[D],
            MatchKey::IpAddress | MatchKey::Country => &[D, S, P],
            MatchKey::AppId | MatchKey::AppDisplayName | MatchKey::Status => &[S, P],
            MatchKey::RiskLevelDuringSignIn | MatchKey::RiskLevelAggregated => &[S, P],
        }
    }

    /// The keys a rule of `source` may use, in documentation order.
    pub fn valid_for(source: Source) -> impl Iterator<Item = MatchKey> {
        MatchKey::EVERY
            .into_iter()
            .filter(move |k| k.sources().contains(&source))
    }

    /// Whether records of `source` have the field this key reads.
    pub fn applies_to(self, source: Source) -> bool {
        self.sources().contains(&source)
    }

    fn shape(self) -> Shape {
        use Fold::{Exact, IgnoreCase};
        match self {
            MatchKey::All => Shape::AllFlag,
            MatchKey::RiskLevel
            | MatchKey::RiskLevelDuringSignIn
            | MatchKey::RiskLevelAggregated => Shape::Strings(Some(vocab::RISK_LEVEL), Exact),
            MatchKey::RiskState => Shape::Strings(Some(vocab::RISK_STATE), Exact),
            MatchKey::RiskDetail => Shape::Strings(Some(vocab::RISK_DETAIL), Exact),
            MatchKey::RiskEventType => Shape::Strings(Some(vocab::RISK_EVENT_TYPE), Exact),
            MatchKey::DetectionTimingType => {
                Shape::Strings(Some(vocab::DETECTION_TIMING_TYPE), Exact)
            }
            MatchKey::UserPrincipalName
            | MatchKey::Country
            | MatchKey::AppId
            | MatchKey::AppDisplayName => Shape::Strings(None, IgnoreCase),
            MatchKey::IpAddress => Shape::Networks,
            MatchKey::MinRiskLevel => Shape::Level,
            MatchKey::IsProcessing => Shape::Bool,
            MatchKey::Status => Shape::Status,
        }
    }

    /// The record field this key reads; `None` for `all`, which reads nothing.
    fn field(self, source: Source) -> Option<Field> {
        Some(match self {
            MatchKey::All => return None,
            MatchKey::RiskLevel => Field::RiskLevel,
            MatchKey::MinRiskLevel if source.is_sign_in() => Field::RiskLevelAggregated,
            MatchKey::MinRiskLevel => Field::RiskLevel,
            MatchKey::RiskState => Field::RiskState,
            MatchKey::RiskDetail => Field::RiskDetail,
            MatchKey::RiskEventType => Field::RiskEventType,
            MatchKey::DetectionTimingType => Field::DetectionTimingType,
            MatchKey::UserPrincipalName => Field::UserPrincipalName,
            MatchKey::IsProcessing => Field::IsProcessing,
            MatchKey::IpAddress => Field::IpAddress,
            MatchKey::Country => Field::Country,
            MatchKey::AppId => Field::AppId,
            MatchKey::AppDisplayName => Field::AppDisplayName,
            MatchKey::Status => Field::StatusErrorCode,
            MatchKey::RiskLevelDuringSignIn => Field::RiskLevelDuringSignIn,
            MatchKey::RiskLevelAggregated => Field::RiskLevelAggregated,
        })
    }
}

/// The JSON Schema of a `match:` block, from the keys and the shapes of their values.
pub(crate) fn match_schema() -> Value {
    let mut properties = serde_json::Map::new();
    for key in MatchKey::EVERY {
        let sources: Vec<&str> = key.sources().iter().map(|s| s.as_str()).collect();
        let string = |members: Option<&[&str]>| match members {
            Some(m) => serde_json::json!({"type": "string", "enum": m}),
            None => serde_json::json!({"type": "string", "minLength": 1}),
        };
        let one_or_many = |members: Option<&[&str]>| {
            serde_json::json!({"oneOf": [
                string(members),
                {"type": "array", "items": string(members), "minItems": 1}
            ]})
        };
        let mut schema = match key.shape() {
            Shape::AllFlag => serde_json::json!({"const": true}),
            Shape::Strings(members, _) => one_or_many(members),
            Shape::Networks => one_or_many(None),
            Shape::Level => string(Some(vocab::RANKED_RISK_LEVEL)),
            Shape::Bool => serde_json::json!({"type": "boolean"}),
            Shape::Status => serde_json::json!({"enum": ["success", "failure"]}),
        };
        if let Value::Object(o) = &mut schema {
            o.insert(
                "description".to_string(),
                Value::String(format!("Applies to sources: {}.", sources.join(", "))),
            );
        }
        properties.insert(key.name().to_string(), schema);
    }
    serde_json::json!({
        "description": "Structured conditions: every key must hold; a list of values means any of them.",
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
        "minProperties": 1
    })
}

/// A `match:` value as written, before it is checked against its key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Written {
    /// One scalar string.
    One(String),
    /// A list; each item with its position, or the kind of non-string found there.
    Many(Vec<(Pos, Result<String, &'static str>)>),
    /// `true` / `false`.
    Bool(bool),
    /// Anything else, named for the error message ("an integer", "a mapping", ...).
    Other(&'static str),
}

/// The check a compiled condition applies to the record's field.
#[derive(Debug, Clone, PartialEq)]
enum Test {
    /// Matches every record (`all: true`).
    Every,
    /// The field is one of these strings (sorted, deduplicated; lower-cased when folding).
    OneOf(Vec<String>, Fold),
    /// The field is an IP address inside one of these networks.
    InNetworks(Vec<IpNet>),
    /// The field's risk level ranks ([`RiskLevel::rank`]) at least as high as this one.
    AtLeast(RiskLevel),
    /// The field is this boolean.
    Is(bool),
    /// The sign-in succeeded (`status.errorCode == 0`) or failed (any other code).
    Succeeded(bool),
}

/// One compiled `match:` entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    key: MatchKey,
    test: Test,
}

/// The outcome of one condition against one record.
pub(crate) struct Outcome {
    /// The wire name of the field read.
    pub field: &'static str,
    /// Its value in the record.
    pub actual: Value,
    /// Whether the test held.
    pub held: bool,
}

impl Condition {
    /// Checks a written value against `key` and compiles it; the error is the message for the
    /// value (or for one list item, with its position).
    pub fn compile(key: MatchKey, written: Written, at: Pos) -> Result<Condition, Vec<Problem>> {
        let test = match key.shape() {
            Shape::AllFlag => match written {
                Written::Bool(true) => Ok(Test::Every),
                _ => Err(vec![(
                    at,
                    "`all` takes only `true`: it makes the rule match every record of its source"
                        .to_string(),
                )]),
            },
            Shape::Strings(members, fold) => strings(key, written, at, members)
                .map(|values| Test::OneOf(normalise(values, fold), fold)),
            Shape::Networks => strings(key, written, at, None).and_then(networks),
            Shape::Level => level(key, written, at),
            Shape::Bool => match written {
                Written::Bool(b) => Ok(Test::Is(b)),
                other => Err(vec![(
                    at,
                    format!(
                        "`{}` takes `true` or `false`, found {}",
                        key.name(),
                        describe(&other)
                    ),
                )]),
            },
            Shape::Status => match written {
                Written::One(s) if s == "success" => Ok(Test::Succeeded(true)),
                Written::One(s) if s == "failure" => Ok(Test::Succeeded(false)),
                other => Err(vec![(
                    at,
                    format!(
                        "`status` takes `success` or `failure`, found {}",
                        describe(&other)
                    ),
                )]),
            },
        }?;
        Ok(Condition { key, test })
    }

    /// The `match:` key, as written in rule files.
    pub fn key_name(&self) -> &'static str {
        self.key.name()
    }

    /// The test as an operator reads it: `in [high]`, `>= medium`, `== 0`.
    pub fn test_text(&self) -> String {
        match &self.test {
            Test::Every => "matches every record".to_string(),
            Test::OneOf(values, Fold::Exact) => format!("in [{}]", values.join(", ")),
            Test::OneOf(values, Fold::IgnoreCase) => {
                format!("in [{}] ignoring case", values.join(", "))
            }
            Test::InNetworks(nets) => {
                let nets: Vec<String> = nets.iter().map(ToString::to_string).collect();
                format!("in [{}]", nets.join(", "))
            }
            Test::AtLeast(level) => format!(">= {}", level.as_str()),
            Test::Is(b) => format!("== {b}"),
            Test::Succeeded(true) => "== 0 (success)".to_string(),
            Test::Succeeded(false) => "!= 0 (failure)".to_string(),
        }
    }

    /// The field read, its value and whether the condition held, for explanations.
    pub fn outcome(&self, record: &Record<'_>) -> Outcome {
        let (field, actual) = self.read(record);
        let held = self.test.holds(&actual);
        Outcome {
            field,
            actual,
            held,
        }
    }

    fn read(&self, record: &Record<'_>) -> (&'static str, Value) {
        let source = record.source();
        let Some(field) = self.key.field(source) else {
            return ("*", Value::Null);
        };
        let value = record.field(field);
        // A sign-in's aggregated level is absent or hidden without an Identity Protection
        // licence; the level during sign-in is then the best evidence there is.
        let unusable = !matches!(&value, Value::String(l) if l != "hidden");
        if self.key == MatchKey::MinRiskLevel && source.is_sign_in() && unusable {
            let fallback = Field::RiskLevelDuringSignIn;
            return (fallback.wire_name(), record.field(fallback));
        }
        (field.wire_name(), value)
    }
}

impl Test {
    fn holds(&self, actual: &Value) -> bool {
        match (self, actual) {
            (Test::Every, _) => true,
            (Test::OneOf(values, Fold::Exact), Value::String(s)) => values.binary_search(s).is_ok(),
            (Test::OneOf(values, Fold::IgnoreCase), Value::String(s)) => {
                values.binary_search(&s.to_lowercase()).is_ok()
            }
            (Test::InNetworks(nets), Value::String(s)) => s
                .trim()
                .parse::<IpAddr>()
                .is_ok_and(|ip| nets.iter().any(|n| n.contains(&ip))),
            (Test::AtLeast(min), Value::String(s)) => {
                let rank = RiskLevel::from(s.as_str()).rank();
                rank.is_some() && rank >= min.rank()
            }
            (Test::Is(want), Value::Bool(b)) => want == b,
            (Test::Succeeded(want), Value::Number(code)) => {
                code.as_i64().is_some_and(|c| (c == 0) == *want)
            }
            _ => false,
        }
    }
}

fn describe(written: &Written) -> String {
    match written {
        Written::One(s) => format!("`{s}`"),
        Written::Many(_) => "a list".to_string(),
        Written::Bool(b) => format!("`{b}`"),
        Written::Other(kind) => (*kind).to_string(),
    }
}

/// The strings of a one-or-many value, each checked against `members` when given.
fn strings(
    key: MatchKey,
    written: Written,
    at: Pos,
    members: Option<&'static [&'static str]>,
) -> Result<Vec<Located<String>>, Vec<Problem>> {
    let items = match written {
        Written::One(s) => vec![(at, Ok(s))],
        Written::Many(items) if items.is_empty() => {
            return Err(vec![(
                at,
                format!("`{}` is an empty list: it would match nothing", key.name()),
            )]);
        }
        Written::Many(items) => items,
        other => {
            return Err(vec![(
                at,
                format!(
                    "`{}` takes a string or a list of strings, found {}",
                    key.name(),
                    describe(&other)
                ),
            )]);
        }
    };
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for (pos, item) in items {
        match item {
            Err(kind) => {
                errors.push((pos, format!("`{}` takes strings, found {kind}", key.name())))
            }
            Ok(s) if s.trim().is_empty() => {
                errors.push((pos, format!("empty value in `{}`", key.name())));
            }
            Ok(s) => match members {
                Some(valid) if !valid.contains(&s.as_str()) => {
                    errors.push((pos, unknown_member(key, &s, valid)));
                }
                _ => values.push(Located { pos, value: s }),
            },
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

fn unknown_member(key: MatchKey, value: &str, valid: &[&str]) -> String {
    let hint = valid
        .iter()
        .find(|v| v.eq_ignore_ascii_case(value))
        .map(|v| format!(" (did you mean `{v}`?)"))
        .unwrap_or_default();
    format!(
        "unknown value `{value}` for `{}`{hint}, expected one of: {}",
        key.name(),
        valid.join(", ")
    )
}

fn networks(items: Vec<Located<String>>) -> Result<Test, Vec<Problem>> {
    let mut nets = Vec::new();
    let mut errors = Vec::new();
    for Located { pos, value: s } in items {
        let text = s.trim();
        match text
            .parse::<IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        {
            Ok(net) => nets.push(net.trunc()),
            Err(_) => errors.push((
                pos,
                format!("invalid IP address or CIDR network `{s}` (e.g. 203.0.113.7, 203.0.113.0/24 or 2001:db8::/32)"),
            )),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    nets.sort();
    nets.dedup();
    Ok(Test::InNetworks(nets))
}

fn level(key: MatchKey, written: Written, at: Pos) -> Result<Test, Vec<Problem>> {
    let ranked = vocab::RANKED_RISK_LEVEL;
    match written {
        Written::One(s) => match ranked.iter().find(|l| **l == s) {
            Some(level) => Ok(Test::AtLeast(RiskLevel::from(*level))),
            None => Err(vec![(at, unknown_member(key, &s, ranked))]),
        },
        other => Err(vec![(
            at,
            format!(
                "`{}` takes one level ({}), found {}",
                key.name(),
                ranked.join(", "),
                describe(&other)
            ),
        )]),
    }
}

/// Sorted and deduplicated, so that tests can binary-search and the rule hash ignores order.
fn normalise(values: Vec<Located<String>>, fold: Fold) -> Vec<String> {
    let mut values: Vec<String> = values
        .into_iter()
        .map(|v| match fold {
            Fold::Exact => v.value,
            Fold::IgnoreCase => v.value.to_lowercase(),
        })
        .collect();
    values.sort();
    values.dedup();
    values
}
