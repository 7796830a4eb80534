//! OData `$filter` for the list endpoints: the subset Graph clients actually send.
//!
//! Grammar: `field op literal` (op: eq ne gt ge lt le) joined by `and` / `or`, `not`, parentheses,
//! and the beta lambda `collection/any(t: t eq 'x')`. String literals are single-quoted (`''`
//! escapes a quote), DateTimeOffset literals are unquoted, plus integers, `true`, `false`, `null`.
//! Every field is type-checked against the endpoint's table at parse time, so a client that
//! quotes a date or filters on an unsupported property gets the 400 Graph would give it.
//! Evaluation runs on the rendered JSON record, so a filter sees exactly what the client sees.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::cmp::Ordering;

/// The Edm type of a filterable property; decides which literals and operators are legal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldType {
    String,
    Enum,
    DateTime,
    Bool,
    Int,
    /// A collection of strings or enum members, usable only inside `any(...)`.
    Collection,
}

impl FieldType {
    /// The name Graph uses in its type-mismatch messages.
    fn edm(self) -> &'static str {
        match self {
            FieldType::String | FieldType::Enum => "Edm.String",
            FieldType::DateTime => "Edm.DateTimeOffset",
            FieldType::Bool => "Edm.Boolean",
            FieldType::Int => "Edm.Int32",
            FieldType::Collection => "Collection(Edm.String)",
        }
    }
}

/// A property a client may filter on: the name as written in `$filter` (with `/` for nested
/// properties) and its type.
pub(crate) type FieldDef = (&'static str, FieldType);

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn parse(word: &str) -> Option<Op> {
        Some(match word {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            _ => return None,
        })
    }

    /// OData's operator-kind name, as Graph prints it in errors.
    fn kind(self) -> &'static str {
        match self {
            Op::Eq => "Equal",
            Op::Ne => "NotEqual",
            Op::Gt => "GreaterThan",
            Op::Ge => "GreaterThanOrEqual",
            Op::Lt => "LessThan",
            Op::Le => "LessThanOrEqual",
        }
    }

    fn holds(self, ord: Ordering) -> bool {
        match self {
            Op::Eq => ord == Ordering::Equal,
            Op::Ne => ord != Ordering::Equal,
            Op::Gt => ord == Ordering::Greater,
            Op::Ge => ord != Ordering::Less,
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
        }
    }
}

/// A literal on the right of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Str(String),
    DateTime(DateTime<Utc>),
    Int(i64),
    Bool(bool),
    Null,
}

impl Literal {
    fn edm(&self) -> &'static str {
        match self {
            Literal::Str(_) => "Edm.String",
            Literal::DateTime(_) => "Edm.DateTimeOffset",
            Literal::Int(_) => "Edm.Int32",
            Literal::Bool(_) => "Edm.Boolean",
            Literal::Null => "null",
        }
    }
}

/// Where a comparison reads its left operand.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    /// A (possibly nested) property of the record.
    Property(Vec<String>),
    /// The lambda variable: the current element of the collection.
    Element,
}

/// A parsed, type-checked filter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Compare {
        operand: Operand,
        ty: FieldType,
        op: Op,
        literal: Literal,
    },
    /// `collection/any(var: body)`: true when some element satisfies `body`.
    Any {
        collection: Vec<String>,
        body: Box<Filter>,
    },
}

/// Why a filter was rejected; the text goes after Graph's "Invalid filter clause: " prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FilterError(pub(crate) String);

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Open,
    Close,
    Colon,
}

fn tokenize(text: &str) -> Result<Vec<Token>, FilterError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | ':' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    _ => Token::Colon,
                });
            }
            '\'' => {
                chars.next();
                tokens.push(Token::Str(string_literal(&mut chars, start)?));
            }
            _ => {
                // Inside a DateTimeOffset literal `:` separates hours, minutes and seconds;
                // elsewhere it ends a lambda variable (`t: t eq 'x'`).
                let in_time = c.is_ascii_digit();
                let mut end = start;
                while let Some(&(i, c)) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | '\'') || (c == ':' && !in_time)
                    {
                        break;
                    }
                    end = i + c.len_utf8();
                    chars.next();
                }
                tokens.push(Token::Word(text[start..end].to_string()));
            }
        }
    }
    Ok(tokens)
}

fn string_literal(
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    start: usize,
) -> Result<String, FilterError> {
    let mut value = String::new();
    while let Some((_, c)) = chars.next() {
        if c != '\'' {
            value.push(c);
        } else if chars.peek().is_some_and(|&(_, next)| next == '\'') {
            chars.next();
            value.push('\'');
        } else {
            return Ok(value);
        }
    }
    Err(FilterError(format!(
        "unterminated string literal at position {start}"
    )))
}

/// Parses `text` for a resource whose filterable properties are `fields`; `entity` names the
/// type in error messages (e.g. `microsoft.graph.signIn`).
pub(crate) fn parse(text: &str, fields: &[FieldDef], entity: &str) -> Result<Filter, FilterError> {
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        fields,
        entity,
        lambda_var: None,
    };
    let filter = parser.or()?;
    match parser.tokens.get(parser.pos) {
        None => Ok(filter),
        Some(t) => Err(FilterError(format!(
            "syntax error: unexpected {}",
            describe(t)
        ))),
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Word(w) => format!("'{w}'"),
        Token::Str(s) => format!("string literal '{s}'"),
        Token::Open => "'('".to_string(),
        Token::Close => "')'".to_string(),
        Token::Colon => "':'".to_string(),
    }
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    fields: &'a [FieldDef],
    entity: &'a str,
    /// The variable bound by the enclosing `any(...)`, with the element type.
    lambda_var: Option<(String, FieldType)>,
}

impl Parser<'_> {
    fn peek_word(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Token::Word(w)) if w == word)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn expect(&mut self, want: &Token) -> Result<(), FilterError> {
        match self.next() {
            Some(t) if &t == want => Ok(()),
            Some(t) => Err(FilterError(format!(
                "syntax error: expected {} but found {}",
                describe(want),
                describe(&t)
            ))),
            None => Err(FilterError(format!(
                "syntax error: expected {} at the end of the clause",
                describe(want)
            ))),
        }
    }

    fn or(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.pos += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.pos += 1;
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, FilterError> {
        if self.peek_word("not") {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if self.tokens.get(self.pos) == Some(&Token::Open) {
            self.pos += 1;
            let inner = self.or()?;
            self.expect(&Token::Close)?;
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Filter, FilterError> {
        let path = match self.next() {
            Some(Token::Word(w)) => w,
            Some(t) => {
                return Err(FilterError(format!(
                    "syntax error: expected a property name but found {}",
                    describe(&t)
                )));
            }
            None => {
                return Err(FilterError(
                    "syntax error: the clause is empty or incomplete".into(),
                ));
            }
        };
        if let Some(collection) = path.strip_suffix("/any") {
            return self.lambda(collection);
        }
        let (operand, ty) = self.operand(&path)?;
        let op = match self.next() {
            Some(Token::Word(w)) => Op::parse(&w).ok_or_else(|| {
                FilterError(format!("syntax error: '{w}' is not a supported operator"))
            })?,
            _ => {
                return Err(FilterError(format!(
                    "syntax error: expected an operator after '{path}'"
                )));
            }
        };
        let literal = self.literal()?;
        check_types(&path, ty, op, &literal)?;
        Ok(Filter::Compare {
            operand,
            ty,
            op,
            literal,
        })
    }

    fn operand(&self, path: &str) -> Result<(Operand, FieldType), FilterError> {
        if let Some((var, ty)) = &self.lambda_var
            && path == var
        {
            return Ok((Operand::Element, *ty));
        }
        let ty = self
            .fields
            .iter()
            .find(|(name, _)| *name == path)
            .map(|(_, ty)| *ty)
            .ok_or_else(|| {
                FilterError(format!(
                    "Could not find a property named '{path}' on type '{}'",
                    self.entity
                ))
            })?;
        if ty == FieldType::Collection {
            return Err(FilterError(format!(
                "the collection '{path}' can only be filtered with any(...)"
            )));
        }
        Ok((Operand::Property(split_path(path)), ty))
    }

    fn lambda(&mut self, collection: &str) -> Result<Filter, FilterError> {
        let known = self
            .fields
            .iter()
            .any(|(name, ty)| *name == collection && *ty == FieldType::Collection);
        if !known {
            return Err(FilterError(format!(
                "Could not find a collection property named '{collection}' on type '{}'",
                self.entity
            )));
        }
        if self.lambda_var.is_some() {
            return Err(FilterError(
                "nested lambda expressions are not supported".into(),
            ));
        }
        self.expect(&Token::Open)?;
        let var = match self.next() {
            Some(Token::Word(w)) => w,
            _ => {
                return Err(FilterError(
                    "syntax error: expected a lambda variable".into(),
                ));
            }
        };
        self.expect(&Token::Colon)?;
        self.lambda_var = Some((var, FieldType::Enum));
        let body = self.or();
        self.lambda_var = None;
        let body = body?;
        self.expect(&Token::Close)?;
        Ok(Filter::Any {
            collection: split_path(collection),
            body: Box::new(body),
        })
    }

    fn literal(&mut self) -> Result<Literal, FilterError> {
        match self.next() {
            Some(Token::Str(s)) => Ok(Literal::Str(s)),
            Some(Token::Word(w)) => word_literal(&w),
            Some(t) => Err(FilterError(format!(
                "syntax error: expected a literal but found {}",
                describe(&t)
            ))),
            None => Err(FilterError(
                "syntax error: expected a literal at the end of the clause".into(),
            )),
        }
    }
}

fn split_path(path: &str) -> Vec<String> {
    path.split('/').map(str::to_string).collect()
}

fn word_literal(word: &str) -> Result<Literal, FilterError> {
    match word {
        "true" => return Ok(Literal::Bool(true)),
        "false" => return Ok(Literal::Bool(false)),
        "null" => return Ok(Literal::Null),
        _ => {}
    }
    if let Ok(n) = word.parse::<i64>() {
        return Ok(Literal::Int(n));
    }
    if word.starts_with(|c: char| c.is_ascii_digit())
        && let Ok(t) = DateTime::parse_from_rfc3339(word)
    {
        return Ok(Literal::DateTime(t.with_timezone(&Utc)));
    }
    Err(FilterError(format!(
        "syntax error: '{word}' is not a valid literal (strings need single quotes, \
         DateTimeOffset values are written unquoted like 2026-11-24T10:00:00Z)"
    )))
}

fn check_types(path: &str, ty: FieldType, op: Op, literal: &Literal) -> Result<(), FilterError> {
    let compatible = matches!(
        (ty, literal),
        (_, Literal::Null)
            | (FieldType::String | FieldType::Enum, Literal::Str(_))
            | (FieldType::DateTime, Literal::DateTime(_))
            | (FieldType::Int, Literal::Int(_))
            | (FieldType::Bool, Literal::Bool(_))
    );
    if !compatible {
        return Err(FilterError(format!(
            "A binary operator with incompatible types was detected. Found operand types '{}' \
             and '{}' for operator kind '{}'",
            ty.edm(),
            literal.edm(),
            op.kind()
        )));
    }
    let ordered = matches!(ty, FieldType::DateTime | FieldType::Int);
    if !ordered && !matches!(op, Op::Eq | Op::Ne) {
        return Err(FilterError(format!(
            "the operator '{}' is not supported on property '{path}'",
            op.kind()
        )));
    }
    if matches!(literal, Literal::Null) && !matches!(op, Op::Eq | Op::Ne) {
        return Err(FilterError(format!(
            "the operator '{}' cannot compare with null",
            op.kind()
        )));
    }
    Ok(())
}

/// Something a filter can read properties from: a rendered record, or a view that adds
/// properties to one without copying it.
pub(crate) trait Record {
    /// The value at a property path (`["status", "errorCode"]`), if present.
    fn field(&self, path: &[String]) -> Option<&Value>;
}

impl Record for Value {
    fn field(&self, path: &[String]) -> Option<&Value> {
        path.iter().try_fold(self, |value, key| value.get(key))
    }
}

impl Filter {
    /// Whether `record` satisfies the filter.
    pub(crate) fn matches(&self, record: &dyn Record) -> bool {
        self.eval(record, None)
    }

    fn eval(&self, record: &dyn Record, element: Option<&Value>) -> bool {
        match self {
            Filter::And(a, b) => a.eval(record, element) && b.eval(record, element),
            Filter::Or(a, b) => a.eval(record, element) || b.eval(record, element),
            Filter::Not(inner) => !inner.eval(record, element),
            Filter::Compare {
                operand,
                ty,
                op,
                literal,
            } => {
                let value = match operand {
                    Operand::Property(path) => record.field(path),
                    Operand::Element => element,
                };
                compare(value, *ty, *op, literal)
            }
            Filter::Any { collection, body } => record
                .field(collection)
                .and_then(Value::as_array)
                .is_some_and(|items| items.iter().any(|item| body.eval(record, Some(item)))),
        }
    }
}

fn compare(value: Option<&Value>, ty: FieldType, op: Op, literal: &Literal) -> bool {
    let value = value.filter(|v| !v.is_null());
    let (value, literal) = match (value, literal) {
        (None, Literal::Null) => return op == Op::Eq,
        (Some(_), Literal::Null) => return op == Op::Ne,
        (None, _) => return op == Op::Ne,
        (Some(v), l) => (v, l),
    };
    let ord = match (ty, literal) {
        (FieldType::DateTime, Literal::DateTime(want)) => value
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|have| have.with_timezone(&Utc).cmp(want)),
        (FieldType::Int, Literal::Int(want)) => value.as_i64().map(|have| have.cmp(want)),
        (FieldType::Bool, Literal::Bool(want)) => value.as_bool().map(|have| have.cmp(want)),
        (_, Literal::Str(want)) => value
            .as_str()
            .map(|have| have.to_lowercase().cmp(&want.to_lowercase())),
        _ => None,
    };
    ord.is_some_and(|ord| op.holds(ord))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIELDS: &[FieldDef] = &[
        ("createdDateTime", FieldType::DateTime),
        ("userId", FieldType::String),
        ("riskLevel", FieldType::Enum),
        ("isProcessing", FieldType::Bool),
        ("status/errorCode", FieldType::Int),
        ("signInEventTypes", FieldType::Collection),
    ];

    fn record() -> Value {
        json!({
            "createdDateTime": "2026-11-24T10:00:00.1234567Z",
            "userId": "AbC",
            "riskLevel": "high",
            "isProcessing": false,
            "status": {"errorCode": 50126},
            "signInEventTypes": ["nonInteractiveUser"],
        })
    }

    fn check(filter: &str, expected: bool) {
        let parsed = parse(filter, FIELDS, "microsoft.graph.signIn")
            .unwrap_or_else(|e| panic!("{filter}: {}", e.0));
        assert_eq!(parsed.matches(&record()), expected, "{filter}");
    }

    fn reject(filter: &str, needle: &str) {
        let err = parse(filter, FIELDS, "microsoft.graph.signIn").expect_err(filter);
        assert!(err.0.contains(needle), "{filter}: {}", err.0);
    }

    #[test]
    fn comparisons_on_each_type() {
        check("createdDateTime ge 2026-11-24T10:00:00Z", true);
        check("createdDateTime gt 2026-11-24T10:00:00.1234567Z", false);
        check("createdDateTime le 2026-11-24T11:00:00+01:00", false);
        check("createdDateTime lt 2026-11-24T10:00:01Z", true);
        check("userId eq 'abc'", true);
        check("userId ne 'abc'", false);
        check("riskLevel eq 'high'", true);
        check("isProcessing eq false", true);
        check("status/errorCode eq 50126", true);
        check("status/errorCode gt 0", true);
    }

    #[test]
    fn boolean_structure_and_precedence() {
        check(
            "riskLevel eq 'low' or riskLevel eq 'high' and isProcessing eq false",
            true,
        );
        check(
            "(riskLevel eq 'low' or riskLevel eq 'high') and isProcessing eq true",
            false,
        );
        check("not (riskLevel eq 'low')", true);
        check(
            "riskLevel eq 'high' and (userId eq 'x' or userId eq 'ABC')",
            true,
        );
    }

    #[test]
    fn lambda_any_over_a_collection() {
        check("signInEventTypes/any(t: t eq 'nonInteractiveUser')", true);
        check("signInEventTypes/any(t: t eq 'interactiveUser')", false);
        check(
            "signInEventTypes/any(t: t eq 'interactiveUser' or t eq 'nonInteractiveUser') and riskLevel eq 'high'",
            true,
        );
    }

    #[test]
    fn null_literals() {
        check("userId ne null", true);
        check("userId eq null", false);
    }

    #[test]
    fn string_literal_escapes_quotes() {
        let f = parse("userId eq 'o''brien'", FIELDS, "t").expect("parses");
        assert!(f.matches(&json!({"userId": "O'Brien"})));
    }

    #[test]
    fn rejects_what_graph_rejects() {
        reject(
            "createdDateTime ge '2026-11-24T10:00:00Z'",
            "incompatible types",
        );
        reject("userId eq 5", "incompatible types");
        reject(
            "ipAddress eq '1.2.3.4'",
            "Could not find a property named 'ipAddress'",
        );
        reject("riskLevel gt 'low'", "not supported");
        reject("userId eq 'x' and", "incomplete");
        reject("(userId eq 'x'", "expected ')'");
        reject("userId eq 'x", "unterminated");
        reject("userId startswith 'x'", "not a supported operator");
        reject("createdDateTime ge 2026-11-24", "not a valid literal");
        reject("signInEventTypes eq 'x'", "any(...)");
        reject("userId/any(t: t eq 'x')", "collection");
        reject("userId eq 'x' userId", "unexpected");
        reject("", "empty");
    }
}
