//! Evaluating compiled rules against records, and explaining the outcome to an operator.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::expr::CelCondition;
use crate::expr::schema::{self, Input};
use crate::record::Record;
use crate::rule::{Exception, Rule, Source};
use crate::userfacts::UserFacts;
use crate::window::{WindowOutcome, WindowState};

/// The compiled rules of all loaded files, in load order (files as given, rules as written).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet {
    rules: Vec<Rule>,
    hash: String,
}

/// A rule that matched a record, with the evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleMatch<'r> {
    /// The rule that matched; not serialized, [`Explanation::rule_id`] names it.
    #[serde(skip)]
    pub rule: &'r Rule,
    /// Why it matched, for the decision's audit record.
    pub explanation: Explanation,
    /// The `except:` condition that held, if one did: the match is then suppressed, and the
    /// engine records it (mode `suppressed`) without acting on it.
    pub suppressed_by: Option<String>,
}

/// Why a rule did or did not match a record: stored with each decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The rule explained.
    pub rule_id: String,
    /// One line an operator reads, e.g. `high-risk-users matched risky user
    /// alexw@contoso.com: riskLevel=high in [high]; riskState=atRisk in [atRisk]`.
    pub summary: String,
    /// Each `match:` entry in the order written, then each top-level conjunct of `condition:`.
    pub conditions: Vec<ConditionOutcome>,
    /// What the rule's window counted, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowOutcome>,
    /// The exception that suppressed the match, with why it held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<ExceptionOutcome>,
}

/// One condition's test and the record's value(s) it saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionOutcome {
    /// For a `match:` entry, the record field read, by its Graph wire name (`riskLevel`,
    /// `location.countryOrRegion`; `*` for `all: true`); for a CEL conjunct, `condition`.
    pub field: String,
    /// For a `match:` entry the test applied, e.g. `in [high]`, `>= medium`; for a CEL conjunct
    /// its source text (or the macro's name).
    pub test: String,
    /// For a `match:` entry the field's value as Graph sent it (`null` when absent); for a CEL
    /// conjunct an object of every field it read and its value (`null` when absent).
    pub actual: Value,
    /// Whether the test held.
    pub held: bool,
}

/// The `except:` condition that held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExceptionOutcome {
    /// The exception's name.
    pub name: String,
    /// Its conjuncts, each of which held.
    pub conditions: Vec<ConditionOutcome>,
}

impl RuleSet {
    pub(crate) fn new(rules: Vec<Rule>) -> RuleSet {
        // Sorted by id so that the set's hash does not depend on file or rule order.
        let mut lines: Vec<String> = rules
            .iter()
            .map(|r| format!("{} {}\n", r.id, r.hash))
            .collect();
        lines.sort();
        let hash = hex::encode(Sha256::digest(lines.concat()));
        RuleSet { rules, hash }
    }

    /// Every rule, enabled or not, in load order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule with this id.
    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Hex SHA-256 over every rule's id and hash: what the audit records on load and reload.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Whether some enabled rule of `source` reads `user.*`: only then is looking the user up
    /// in the directory worth its Graph call.
    pub fn reads_user(&self, source: Source) -> bool {
        self.rules
            .iter()
            .any(|r| r.enabled && r.source == source && r.reads_user())
    }

    /// The longest window of any enabled rule: the sign-in poll's overlap (and a restart's
    /// look-back) must cover it for windows to be rebuilt whole.
    pub fn longest_window(&self) -> Option<Duration> {
        self.rules
            .iter()
            .filter(|r| r.enabled)
            .filter_map(Rule::window_duration)
            .max()
    }

    /// The enabled rules of the record's source that match it on its own, in load order.
    ///
    /// No directory attributes are known (`user.*` reads as absent), windows see only this
    /// record, and matches an exception suppresses are left out. The daemon uses
    /// [`RuleSet::evaluate_with`]; this is for callers that have neither.
    pub fn evaluate<'r>(&'r self, record: &Record<'_>) -> Vec<RuleMatch<'r>> {
        let mut scratch = WindowState::new();
        self.evaluate_with(record, None, &mut scratch)
            .into_iter()
            .filter(|m| m.suppressed_by.is_none())
            .collect()
    }

    /// The enabled rules of the record's source that match it, in load order, suppressed
    /// matches included (with [`RuleMatch::suppressed_by`] set).
    ///
    /// `user` is what the directory said about the record's user (`None`: nothing known);
    /// `windows` is the caller's window state, which this sign-in is added to. Feed sign-ins
    /// oldest first: a rule like "failures, then a success" sees only what came before.
    pub fn evaluate_with<'r>(
        &'r self,
        record: &Record<'_>,
        user: Option<&UserFacts>,
        windows: &mut WindowState,
    ) -> Vec<RuleMatch<'r>> {
        let input = Input { record, user };
        self.rules
            .iter()
            .filter(|rule| rule.enabled)
            .filter_map(|rule| rule.decide(input, windows))
            .collect()
    }
}

impl Rule {
    /// Whether the rule's conditions (and window thresholds, counting this record alone) hold
    /// for `record`; `false` for a record of another source. Exceptions are not consulted.
    /// Ignores [`Rule::enabled`], so a disabled rule can still be tried out.
    pub fn matches(&self, record: &Record<'_>) -> bool {
        let input = Input { record, user: None };
        self.decide(input, &mut WindowState::new()).is_some()
    }

    /// Evaluates every condition against `record` on its own and says which held.
    pub fn explain(&self, record: &Record<'_>) -> Explanation {
        let input = Input { record, user: None };
        self.explain_with(input, &mut WindowState::new())
    }

    /// The decision on one input: `None` when the rule does not match.
    pub(crate) fn decide<'r>(
        &'r self,
        input: Input<'_>,
        windows: &mut WindowState,
    ) -> Option<RuleMatch<'r>> {
        if input.record.source() != self.source {
            return None;
        }
        let base = self.conditions.iter().all(|c| c.outcome(input.record).held)
            && self.condition.as_ref().is_none_or(|c| c.holds(input));
        // Every sign-in goes into the window, matching or not; thresholds are checked only
        // when the rest of the rule holds.
        let window_held = self.observe(input, windows, base);
        if !base || window_held == Some(false) {
            return None;
        }
        let window = self.window_outcome(input, windows);
        let exception = self.exceptions.iter().find(|e| e.condition.holds(input));
        let explanation = self.explanation(input, window, exception);
        Some(RuleMatch {
            rule: self,
            explanation,
            suppressed_by: exception.map(|e| e.name.clone()),
        })
    }

    /// The explanation of whatever the rule decides on `input`, match or not.
    pub(crate) fn explain_with(&self, input: Input<'_>, windows: &mut WindowState) -> Explanation {
        let window = if input.record.source() == self.source {
            self.observe(input, windows, false);
            self.window_outcome(input, windows)
        } else {
            None
        };
        let exception = self.exceptions.iter().find(|e| e.condition.holds(input));
        self.explanation(input, window, exception)
    }

    /// Adds a sign-in to the rule's window; when `measure`, says whether the thresholds hold
    /// (`None` for a rule without a window).
    fn observe(&self, input: Input<'_>, windows: &mut WindowState, measure: bool) -> Option<bool> {
        let spec = self.window.as_ref()?;
        let Record::SignIn(sign_in) = input.record else {
            return Some(false);
        };
        let counted = self.window_filter.as_ref().is_none_or(|f| f.holds(input));
        Some(windows.observe(self, spec, sign_in, counted, measure))
    }

    /// What the rule's window holds for the sign-in, for its explanation.
    fn window_outcome(&self, input: Input<'_>, windows: &WindowState) -> Option<WindowOutcome> {
        let spec = self.window.as_ref()?;
        match input.record {
            Record::SignIn(sign_in) => Some(windows.outcome(self, spec, sign_in)),
            _ => None,
        }
    }

    fn explanation(
        &self,
        input: Input<'_>,
        window: Option<WindowOutcome>,
        exception: Option<&Exception>,
    ) -> Explanation {
        let record = input.record;
        let same_source = record.source() == self.source;
        let mut conditions: Vec<ConditionOutcome> = Vec::new();
        if same_source {
            conditions.extend(self.conditions.iter().map(|c| {
                let o = c.outcome(record);
                ConditionOutcome {
                    field: o.field.to_string(),
                    test: c.test_text(),
                    actual: o.actual,
                    held: o.held,
                }
            }));
            if let Some(condition) = &self.condition {
                conditions.extend(outcomes(condition, input));
            }
        }
        let exception = exception.filter(|_| same_source).map(|e| ExceptionOutcome {
            name: e.name.clone(),
            conditions: outcomes(&e.condition, input),
        });
        let window = window.filter(|_| same_source);
        // Record values come from the tenant: keep the summary on one line whatever they hold.
        let summary = summary(
            self,
            record,
            same_source,
            &conditions,
            window.as_ref(),
            exception.as_ref(),
        )
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
        Explanation {
            rule_id: self.id.clone(),
            summary,
            conditions,
            window,
            exception,
        }
    }
}

/// Each conjunct of a CEL condition with the values of the fields it read.
fn outcomes(condition: &CelCondition, input: Input<'_>) -> Vec<ConditionOutcome> {
    condition
        .conjuncts
        .iter()
        .map(|c| {
            let values: Map<String, Value> = c
                .fields
                .iter()
                .map(|f| {
                    let value = schema::read(*f, input).map_or(Value::Null, |v| v.to_json());
                    (f.full_name(), value)
                })
                .collect();
            ConditionOutcome {
                field: "condition".to_string(),
                test: c.text.clone(),
                actual: Value::Object(values),
                held: c.expr.holds(input),
            }
        })
        .collect()
}

fn summary(
    rule: &Rule,
    record: &Record<'_>,
    same_source: bool,
    conditions: &[ConditionOutcome],
    window: Option<&WindowOutcome>,
    exception: Option<&ExceptionOutcome>,
) -> String {
    let subject = subject(record);
    if !same_source {
        return format!(
            "{} did not match {subject}: the rule watches {}",
            rule.id,
            rule.source.as_str()
        );
    }
    let window_held = window.is_none_or(WindowOutcome::held);
    let matched = conditions.iter().all(|c| c.held) && window_held;
    let mut shown: Vec<String> = conditions
        .iter()
        .filter(|c| matched || !c.held)
        .map(describe)
        .collect();
    if let Some(w) = window
        && (matched || !w.held())
    {
        shown.push(w.to_string());
    }
    let shown = shown.join("; ");
    if !matched {
        return format!("{} did not match {subject}, failed: {shown}", rule.id);
    }
    match exception {
        None => format!("{} matched {subject}: {shown}", rule.id),
        Some(e) => {
            let why = e
                .conditions
                .iter()
                .map(describe)
                .collect::<Vec<_>>()
                .join("; ");
            format!(
                "{} matched {subject}: {shown}; suppressed by exception {}: {why}",
                rule.id, e.name
            )
        }
    }
}

fn describe(c: &ConditionOutcome) -> String {
    match &c.actual {
        Value::Null if c.field == "*" => c.test.clone(),
        Value::Object(values) if c.field == "condition" => {
            if values.is_empty() {
                c.test.clone()
            } else {
                let values: Vec<String> = values
                    .iter()
                    .map(|(k, v)| format!("{k}={}", plain(v)))
                    .collect();
                format!("{} [{}]", c.test, values.join(", "))
            }
        }
        actual => format!("{}={} {}", c.field, plain(actual), c.test),
    }
}

/// Who the record is about, as an operator would say it.
fn subject(record: &Record<'_>) -> String {
    let what = match record.source() {
        Source::RiskyUsers => "risky user",
        Source::RiskDetections => "risk detection of",
        Source::SignIns => "sign-in of",
        Source::PostContainment => "post-containment sign-in of",
    };
    let who = record
        .user_principal_name()
        .or_else(|| record.user_id())
        .unwrap_or("an unknown user");
    format!("{what} {who}")
}

/// A JSON value without quotes around strings, for the one-line summary.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
