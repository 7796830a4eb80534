//! CEL conditions: parsed by the `cel` crate, type-checked against the record schema
//! ([`schema`]) at load, compiled into a small typed tree, and evaluated against records
//! without any failure path.
//!
//! The checker accepts a subset of CEL chosen so that evaluation is total: no arithmetic (it can
//! overflow), no indexing (it can go out of range), no `null`, no maps; every function's
//! pattern or network argument is a literal checked at load. What is accepted behaves as CEL
//! specifies, with absent fields read as their type's zero value.
//!
//! Layout:
//! - `schema`: the names a condition can read and their types.
//! - `check`: CEL AST to [`Expr`], with every type and name error.
//! - `span`: source text of conjuncts, and CEL offsets mapped into YAML positions.
//! - `value`: run-time values.

pub(crate) mod check;
pub(crate) mod schema;
pub(crate) mod span;
pub(crate) mod value;

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use graph::models::RiskLevel;
use ipnet::IpNet;

use crate::lists::NamedList;
use schema::{FieldId, Input};
use value::Val;

/// A type-checked, compiled condition.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Bool(bool),
    Int(i64),
    Str(Arc<str>),
    Field(FieldId),
    /// Any of the fields present (one field, or every field of a group like `signIn.location`).
    Has(Vec<FieldId>),
    /// A comprehension variable, by nesting depth (0 = outermost).
    Var(usize),
    List(Vec<Expr>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    In(Box<Expr>, Box<Expr>),
    Concat(Box<Expr>, Box<Expr>),
    Size(Box<Expr>),
    Text(TextOp, Box<Expr>, Box<Expr>),
    Case(CaseOp, Box<Expr>),
    Matches(Box<Expr>, Pattern),
    RiskAtLeast(Box<Expr>, u8),
    InNetworks(Box<Expr>, Networks),
    InList(Box<Expr>, Arc<NamedList>),
    Loop(LoopKind, Box<Expr>, Box<Expr>),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Two-string tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextOp {
    StartsWith,
    EndsWith,
    Contains,
    EqualsIgnoreCase,
}

/// One-string transformations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CaseOp {
    Lower,
    Upper,
    Trim,
}

/// The list macros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoopKind {
    Exists,
    All,
    ExistsOne,
}

/// A regular expression compiled at load; its Debug form is the pattern, which the rule hash
/// covers.
#[derive(Clone)]
pub(crate) struct Pattern(pub Arc<regex::Regex>);

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}/", self.0.as_str())
    }
}

/// Networks from an `ipInCidr` literal: sorted, deduplicated.
#[derive(Debug, Clone)]
pub(crate) struct Networks(pub Arc<Vec<IpNet>>);

/// Evaluation state: the input and the comprehension variables in scope.
struct Env<'a> {
    input: Input<'a>,
    vars: Vec<Val<'a>>,
}

impl Expr {
    /// Evaluates a boolean condition. Total: the checker has ruled out every failing case.
    pub fn holds(&self, input: Input<'_>) -> bool {
        let mut env = Env {
            input,
            vars: Vec::new(),
        };
        self.eval(&mut env).as_bool()
    }

    fn eval<'a>(&'a self, env: &mut Env<'a>) -> Val<'a> {
        match self {
            Expr::Bool(b) => Val::Bool(*b),
            Expr::Int(i) => Val::Int(*i),
            Expr::Str(s) => Val::Str(Cow::Borrowed(s)),
            Expr::Field(f) => schema::read(*f, env.input).unwrap_or_else(|| zero(*f)),
            Expr::Has(fields) => {
                Val::Bool(fields.iter().any(|f| schema::read(*f, env.input).is_some()))
            }
            Expr::Var(depth) => env
                .vars
                .get(*depth)
                .cloned()
                .unwrap_or(Val::Str(Cow::Borrowed(""))),
            Expr::List(items) => Val::List(items.iter().map(|e| e.eval(env)).collect()),
            Expr::Not(e) => Val::Bool(!e.eval(env).as_bool()),
            Expr::And(a, b) => Val::Bool(a.eval(env).as_bool() && b.eval(env).as_bool()),
            Expr::Or(a, b) => Val::Bool(a.eval(env).as_bool() || b.eval(env).as_bool()),
            Expr::Cond(c, a, b) => {
                if c.eval(env).as_bool() {
                    a.eval(env)
                } else {
                    b.eval(env)
                }
            }
            Expr::Cmp(op, a, b) => {
                let (a, b) = (a.eval(env), b.eval(env));
                Val::Bool(compare(*op, &a, &b))
            }
            Expr::In(item, list) => {
                let item = item.eval(env);
                match list.eval(env) {
                    Val::List(items) => Val::Bool(items.contains(&item)),
                    _ => Val::Bool(false),
                }
            }
            Expr::Concat(a, b) => {
                let mut s = a.eval(env).as_str().to_owned();
                s.push_str(b.eval(env).as_str());
                Val::Str(Cow::Owned(s))
            }
            Expr::Size(e) => Val::Int(match e.eval(env) {
                Val::Str(s) => i64::try_from(s.chars().count()).unwrap_or(i64::MAX),
                Val::List(l) => i64::try_from(l.len()).unwrap_or(i64::MAX),
                _ => 0,
            }),
            Expr::Text(op, a, b) => {
                let (a, b) = (a.eval(env), b.eval(env));
                let (a, b) = (a.as_str(), b.as_str());
                Val::Bool(match op {
                    TextOp::StartsWith => a.starts_with(b),
                    TextOp::EndsWith => a.ends_with(b),
                    TextOp::Contains => a.contains(b),
                    TextOp::EqualsIgnoreCase => eq_ignore_case(a, b),
                })
            }
            Expr::Case(op, e) => {
                let v = e.eval(env);
                let s = v.as_str();
                Val::Str(Cow::Owned(match op {
                    CaseOp::Lower => s.to_ascii_lowercase(),
                    CaseOp::Upper => s.to_ascii_uppercase(),
                    CaseOp::Trim => s.trim().to_owned(),
                }))
            }
            Expr::Matches(e, pattern) => Val::Bool(pattern.0.is_match(e.eval(env).as_str())),
            Expr::RiskAtLeast(e, min) => {
                let v = e.eval(env);
                Val::Bool(
                    RiskLevel::from(v.as_str())
                        .rank()
                        .is_some_and(|r| r >= *min),
                )
            }
            Expr::InNetworks(e, nets) => Val::Bool(
                parse_ip(e.eval(env).as_str())
                    .is_some_and(|ip| nets.0.iter().any(|n| n.contains(&ip))),
            ),
            Expr::InList(e, list) => Val::Bool(list.contains(e.eval(env).as_str())),
            Expr::Loop(kind, range, body) => {
                let Val::List(items) = range.eval(env) else {
                    return Val::Bool(matches!(kind, LoopKind::All));
                };
                let mut hits = 0usize;
                for item in items {
                    env.vars.push(item);
                    let held = body.eval(env).as_bool();
                    env.vars.pop();
                    match (kind, held) {
                        (LoopKind::Exists, true) => return Val::Bool(true),
                        (LoopKind::All, false) => return Val::Bool(false),
                        (LoopKind::ExistsOne, true) => hits += 1,
                        _ => {}
                    }
                }
                Val::Bool(match kind {
                    LoopKind::Exists => false,
                    LoopKind::All => true,
                    LoopKind::ExistsOne => hits == 1,
                })
            }
        }
    }
}

/// The value an absent field reads as.
fn zero(field: FieldId) -> Val<'static> {
    match field.def().ty {
        schema::FieldTy::Bool => Val::Bool(false),
        schema::FieldTy::Int => Val::Int(0),
        schema::FieldTy::Str => Val::Str(Cow::Borrowed("")),
        schema::FieldTy::StrList => Val::List(Vec::new()),
    }
}

fn compare(op: CmpOp, a: &Val<'_>, b: &Val<'_>) -> bool {
    use std::cmp::Ordering;
    let order = match (a, b) {
        (Val::Int(x), Val::Int(y)) => Some(x.cmp(y)),
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    };
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => order == Some(Ordering::Less),
        CmpOp::Le => matches!(order, Some(Ordering::Less | Ordering::Equal)),
        CmpOp::Gt => order == Some(Ordering::Greater),
        CmpOp::Ge => matches!(order, Some(Ordering::Greater | Ordering::Equal)),
    }
}

/// Unicode-aware, as operators expect of UPNs and display names.
pub(crate) fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.eq_ignore_ascii_case(b)
        || a.chars()
            .flat_map(char::to_lowercase)
            .eq(b.chars().flat_map(char::to_lowercase))
}

/// An IP address as Graph writes it; surrounding spaces tolerated.
pub(crate) fn parse_ip(text: &str) -> Option<IpAddr> {
    text.trim().parse::<IpAddr>().ok()
}

/// A rule's `condition:` (or an exception's, or a window's `where:`), compiled: the whole text
/// and its top-level `&&` conjuncts, each evaluated and explained on its own.
#[derive(Debug, Clone)]
pub(crate) struct CelCondition {
    /// The text as written.
    pub text: String,
    /// The conjuncts in source order; all must hold.
    pub conjuncts: Vec<Conjunct>,
    /// The compiled form with macros expanded and lists inlined: what the rule hash covers, so
    /// editing a macro or list a rule uses changes that rule's hash.
    pub canonical: String,
}

/// One top-level conjunct of a condition.
#[derive(Debug, Clone)]
pub(crate) struct Conjunct {
    /// Its source text on one line, or the macro's name when the conjunct is one macro.
    pub text: String,
    pub expr: Expr,
    /// The fields it reads, whose values explanations show.
    pub fields: Vec<FieldId>,
}

impl PartialEq for CelCondition {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && self.canonical == other.canonical
    }
}

impl CelCondition {
    pub fn holds(&self, input: Input<'_>) -> bool {
        self.conjuncts.iter().all(|c| c.expr.holds(input))
    }

    /// Whether any conjunct reads `user.*`.
    pub fn reads_user(&self) -> bool {
        self.conjuncts
            .iter()
            .flat_map(|c| &c.fields)
            .any(|f| f.def().root == schema::Root::User)
    }
}
