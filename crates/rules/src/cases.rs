//! Rule test cases (`tests:` inside a rule): a record, optionally the sign-ins before it and the
//! user's directory attributes, and the decision the rule must reach. Records are parsed when
//! the rule is loaded, so a malformed case is a load error with its position;
//! [`RuleSet::run_tests`](crate::RuleSet::run_tests) runs them.

use std::fmt;

use serde::Serialize;

use crate::expr::schema::Input;
use crate::record::OwnedRecord;
use crate::rule::Rule;
use crate::ruleset::RuleSet;
use crate::userfacts::UserFacts;
use crate::window::WindowState;

/// The decision a rule reaches on a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// The rule matched and no exception held.
    Match,
    /// The rule did not match.
    NoMatch,
    /// The rule matched and an exception suppressed it.
    Suppressed,
}

impl Expect {
    /// Every decision.
    pub const ALL: [Expect; 3] = [Expect::Match, Expect::NoMatch, Expect::Suppressed];

    /// The name rule files use.
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Match => "match",
            Expect::NoMatch => "no_match",
            Expect::Suppressed => "suppressed",
        }
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One compiled test case.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RuleTest {
    pub name: String,
    pub line: usize,
    pub column: usize,
    /// Sign-ins (or other records) fed to the rule first, in order: they fill its window.
    pub given: Vec<OwnedRecord>,
    pub input: OwnedRecord,
    pub user: Option<UserFacts>,
    pub expect: Expect,
    /// For `suppressed`: the exception that must be the one to hold.
    pub exception: Option<String>,
}

/// The result of one test case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestOutcome {
    /// The rule tested.
    pub rule_id: String,
    /// The case's name.
    pub name: String,
    /// The rule file.
    pub origin: String,
    /// 1-based line of the case.
    pub line: usize,
    /// 1-based column of the case.
    pub column: usize,
    /// What the case expects.
    pub expected: Expect,
    /// What the rule decided.
    pub actual: Expect,
    /// The exception that held, when suppressed.
    pub exception: Option<String>,
    /// Whether the case passed.
    pub passed: bool,
    /// The rule's explanation of its decision on the input.
    pub summary: String,
}

impl fmt::Display for TestOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: rule {} test \"{}\": ",
            self.origin, self.line, self.column, self.rule_id, self.name
        )?;
        if self.passed {
            write!(f, "ok ({})", self.actual)
        } else {
            write!(f, "expected {}, got {}", self.expected, self.actual)?;
            if let Some(e) = &self.exception {
                write!(f, " (exception `{e}`)")?;
            }
            write!(f, ": {}", self.summary)
        }
    }
}

impl RuleSet {
    /// Runs every rule's test cases (disabled rules included), each on fresh windows.
    pub fn run_tests(&self) -> Vec<TestOutcome> {
        self.rules()
            .iter()
            .flat_map(|rule| rule.tests.iter().map(move |t| run(rule, t)))
            .collect()
    }
}

fn run(rule: &Rule, test: &RuleTest) -> TestOutcome {
    let mut windows = WindowState::new();
    for earlier in &test.given {
        let record = earlier.as_record();
        let input = Input {
            record: &record,
            user: test.user.as_ref(),
        };
        let _ = rule.decide(input, &mut windows);
    }
    let record = test.input.as_record();
    let input = Input {
        record: &record,
        user: test.user.as_ref(),
    };
    let decided = rule.decide(input, &mut windows);
    let (actual, exception, summary) = match &decided {
        Some(m) => match &m.suppressed_by {
            Some(e) => (
                Expect::Suppressed,
                Some(e.clone()),
                m.explanation.summary.clone(),
            ),
            None => (Expect::Match, None, m.explanation.summary.clone()),
        },
        None => (
            Expect::NoMatch,
            None,
            rule.explain_with(input, &mut windows).summary,
        ),
    };
    let passed = actual == test.expect && (test.exception.is_none() || test.exception == exception);
    TestOutcome {
        rule_id: rule.id.clone(),
        name: test.name.clone(),
        origin: rule.origin.clone(),
        line: test.line,
        column: test.column,
        expected: test.expect,
        actual,
        exception,
        passed,
        summary,
    }
}
