//! Evaluating compiled rules against records, and explaining the outcome to an operator.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::record::Record;
use crate::rule::{Rule, Source};

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
}

/// Why a rule did or did not match a record: stored with each decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The rule explained.
    pub rule_id: String,
    /// One line an operator reads, e.g. `high-risk-users matched risky user
    /// alexw@contoso.com: riskLevel=high in [high]; riskState=atRisk in [atRisk]`.
    pub summary: String,
    /// Each condition of the rule, in the order written.
    pub conditions: Vec<ConditionOutcome>,
}

/// One condition's test and the record's value it saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionOutcome {
    /// The record field read, by its Graph wire name (`riskLevel`, `location.countryOrRegion`);
    /// `*` for `all: true`.
    pub field: String,
    /// The test applied, e.g. `in [high]`, `>= medium`, `in [203.0.113.0/24]`.
    pub test: String,
    /// The field's value in the record, as Graph sent it (`null` when absent).
    pub actual: serde_json::Value,
    /// Whether the test held.
    pub held: bool,
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

    /// The enabled rules of the record's source that match it, in load order.
    pub fn evaluate<'r>(&'r self, record: &Record<'_>) -> Vec<RuleMatch<'r>> {
        self.rules
            .iter()
            .filter(|rule| rule.enabled && rule.matches(record))
            .map(|rule| RuleMatch {
                rule,
                explanation: rule.explain(record),
            })
            .collect()
    }
}

impl Rule {
    /// Whether every condition holds for `record`; `false` for a record of another source.
    /// Ignores [`Rule::enabled`], so a disabled rule can still be tried out.
    pub fn matches(&self, record: &Record<'_>) -> bool {
        record.source() == self.source && self.conditions.iter().all(|c| c.outcome(record).held)
    }

    /// Evaluates every condition against `record` and says which held and which did not.
    pub fn explain(&self, record: &Record<'_>) -> Explanation {
        let same_source = record.source() == self.source;
        let conditions: Vec<ConditionOutcome> = if same_source {
            self.conditions
                .iter()
                .map(|c| {
                    let o = c.outcome(record);
                    ConditionOutcome {
                        field: o.field.to_string(),
                        test: c.test_text(),
                        actual: o.actual,
                        held: o.held,
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        // Record values come from the tenant: keep the summary on one line whatever they hold.
        let summary = summary(self, record, same_source, &conditions)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        Explanation {
            rule_id: self.id.clone(),
            summary,
            conditions,
        }
    }
}

fn summary(
    rule: &Rule,
    record: &Record<'_>,
    same_source: bool,
    conditions: &[ConditionOutcome],
) -> String {
    let subject = subject(record);
    if !same_source {
        return format!(
            "{} did not match {subject}: the rule watches {}",
            rule.id,
            rule.source.as_str()
        );
    }
    let matched = conditions.iter().all(|c| c.held);
    let shown = conditions
        .iter()
        .filter(|c| matched || !c.held)
        .map(|c| match &c.actual {
            serde_json::Value::Null if c.field == "*" => c.test.clone(),
            actual => format!("{}={} {}", c.field, plain(actual), c.test),
        })
        .collect::<Vec<_>>()
        .join("; ");
    if matched {
        format!("{} matched {subject}: {shown}", rule.id)
    } else {
        format!("{} did not match {subject}, failed: {shown}", rule.id)
    }
}

/// Who the record is about, as an operator would say it.
fn subject(record: &Record<'_>) -> String {
    let what = match record.source() {
        Source::RiskyUsers => "risky user",
        Source::RiskDetections => "risk detection of",
        Source::SignIns => "sign-in of",
    };
    let who = record
        .user_principal_name()
        .or_else(|| record.user_id())
        .unwrap_or("an unknown user");
    format!("{what} {who}")
}

/// A JSON value without quotes around strings, for the one-line summary.
fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
