//! From a CEL AST to a compiled [`Expr`]: names resolved against the schema, lists and macros;
//! every type checked; literal patterns, networks and enum members validated. Problems carry
//! the byte offset in the expression's source where they arose.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cel::common::ast::{CallExpr, Expr as Ast, IdedExpr, LiteralValue, SelectExpr, SourceInfo};
use graph::models::RiskLevel;

use crate::expr::schema::{self, FieldId, Root, Ty};
use crate::expr::{CaseOp, CmpOp, Expr, LoopKind, Networks, Pattern, TextOp};
use crate::lists::{NamedList, bad_network, parse_network};
use crate::rule::Source;
use crate::vocab;

/// Macros may use macros; past this depth the nesting is surely a mistake.
const MAX_MACRO_DEPTH: usize = 16;

/// A macro: a named condition, parsed once.
#[derive(Debug)]
pub(crate) struct MacroDef {
    pub ast: IdedExpr,
    pub info: SourceInfo,
    /// Whether it checked cleanly on its own; when not, its problems are already reported and
    /// its users add none of their own about it.
    pub ok: bool,
}

/// What names a condition can use.
pub(crate) struct Scope<'s> {
    /// The rule's feed; `None` for a macro checked on its own, which may read any record.
    pub source: Option<Source>,
    pub lists: &'s HashMap<String, Arc<NamedList>>,
    /// Lists that are defined but failed to load: their problems are reported already.
    pub broken_lists: &'s HashSet<String>,
    pub macros: &'s HashMap<String, MacroDef>,
}

/// A problem at a byte offset of the checked text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckError {
    pub offset: usize,
    pub message: String,
}

/// A checked condition: the compiled tree and the fields it reads, in first-use order.
pub(crate) struct Checked {
    pub expr: Expr,
    pub fields: Vec<FieldId>,
}

/// Checks `ast` as a boolean condition.
pub(crate) fn check_condition(
    ast: &IdedExpr,
    info: &SourceInfo,
    scope: &Scope<'_>,
) -> Result<Checked, Vec<CheckError>> {
    check_in(ast, info, scope, &mut Vec::new())
}

fn check_in(
    ast: &IdedExpr,
    info: &SourceInfo,
    scope: &Scope<'_>,
    macro_stack: &mut Vec<String>,
) -> Result<Checked, Vec<CheckError>> {
    let mut checker = Checker {
        scope,
        info,
        vars: Vec::new(),
        macro_stack,
        errors: Vec::new(),
        fields: Vec::new(),
        uses_broken_definition: false,
    };
    let result = checker.expr(ast);
    if let Some((_, ty)) = &result
        && *ty != Ty::Bool
    {
        let at = checker.offset(ast.id);
        checker.error(
            at,
            format!("a condition must be a bool, this is a {}", ty.name()),
        );
    }
    match result {
        Some((expr, Ty::Bool)) if checker.errors.is_empty() => Ok(Checked {
            expr,
            fields: checker.fields,
        }),
        _ => {
            if checker.errors.is_empty() && !checker.uses_broken_definition {
                checker.error(0, "invalid condition".to_string());
            }
            Err(checker.errors)
        }
    }
}

struct Checker<'c, 's> {
    scope: &'c Scope<'s>,
    info: &'c SourceInfo,
    /// Comprehension variables in scope, outermost first, with their element types.
    vars: Vec<(String, Ty)>,
    macro_stack: &'c mut Vec<String>,
    errors: Vec<CheckError>,
    fields: Vec<FieldId>,
    /// Set when a macro or list with problems of its own is used: the condition fails, and
    /// its only problem is the definition's, reported where that is written.
    uses_broken_definition: bool,
}

type Typed = Option<(Expr, Ty)>;

impl Checker<'_, '_> {
    fn offset(&self, id: u64) -> usize {
        self.info
            .offset_for(id)
            .map_or(0, |(start, _)| usize::try_from(start).unwrap_or(0))
    }

    fn error(&mut self, offset: usize, message: String) {
        self.errors.push(CheckError { offset, message });
    }

    fn fail(&mut self, e: &IdedExpr, message: impl Into<String>) -> Typed {
        let at = self.offset(e.id);
        self.error(at, message.into());
        None
    }

    fn note_field(&mut self, f: FieldId) {
        if !self.fields.contains(&f) {
            self.fields.push(f);
        }
    }

    fn expr(&mut self, e: &IdedExpr) -> Typed {
        match &e.expr {
            Ast::Literal(lit) => self.literal(e, lit),
            Ast::Ident(name) => self.ident(e, name),
            Ast::Select(select) => self.select(e, select),
            Ast::Call(call) => self.call(e, call),
            Ast::List(list) => {
                if !list.optional_indices.is_empty() {
                    return self.fail(e, "optional list elements are not supported");
                }
                let mut items = Vec::new();
                let mut elem: Option<Ty> = None;
                let mut ok = true;
                for item in &list.elements {
                    match self.expr(item) {
                        Some((x, t)) => {
                            if let Some(first) = &elem
                                && *first != t
                            {
                                let message = format!(
                                    "a list holds values of one type: {} then {}",
                                    first.name(),
                                    t.name()
                                );
                                self.fail(item, message);
                                ok = false;
                            }
                            if matches!(t, Ty::List(_)) {
                                self.fail(item, "lists of lists are not supported");
                                ok = false;
                            }
                            elem.get_or_insert(t);
                            items.push(x);
                        }
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                // An empty literal list holds strings: the only element type lists compare with.
                let elem = elem.unwrap_or(Ty::Str);
                Some((Expr::List(items), Ty::List(Box::new(elem))))
            }
            Ast::Map(_) | Ast::Struct(_) => {
                self.fail(e, "maps and message literals are not supported in conditions")
            }
            Ast::Comprehension(_) => self.fail(e, "comprehensions are written as list.exists(x, ...), list.all(x, ...) or list.exists_one(x, ...)"),
            Ast::Unspecified => self.fail(e, "incomplete expression"),
        }
    }

    fn literal(&mut self, e: &IdedExpr, lit: &LiteralValue) -> Typed {
        match lit {
            LiteralValue::Boolean(b) => Some((Expr::Bool(*b.inner()), Ty::Bool)),
            LiteralValue::Int(i) => Some((Expr::Int(*i.inner()), Ty::Int)),
            LiteralValue::String(s) => Some((Expr::Str(Arc::from(s.inner())), Ty::Str)),
            LiteralValue::Null => self.fail(
                e,
                "`null` is not a value here: an absent field reads as '', 0, false or []; test presence with has(...)",
            ),
            LiteralValue::Double(_) => self.fail(e, "floating-point numbers are not supported: no field is a double"),
            LiteralValue::UInt(_) => self.fail(e, "unsigned literals are not supported: write the number without `u`"),
            LiteralValue::Bytes(_) => self.fail(e, "bytes literals are not supported"),
        }
    }

    fn ident(&mut self, e: &IdedExpr, name: &str) -> Typed {
        if let Some(depth) = self.vars.iter().rposition(|(v, _)| v == name) {
            let ty = self.vars[depth].1.clone();
            return Some((Expr::Var(depth), ty));
        }
        if let Some(root) = Root::from_name(name) {
            let fields = schema::children(root, "").join(", ");
            return self.fail(
                e,
                format!("`{name}` is an object: read one of its fields ({fields})"),
            );
        }
        if self.scope.macros.contains_key(name) {
            return self.inline_macro(e, name);
        }
        let mut known: Vec<String> = self
            .roots()
            .into_iter()
            .map(|r| r.name().to_string())
            .collect();
        let mut macros: Vec<&String> = self.scope.macros.keys().collect();
        macros.sort();
        known.extend(macros.into_iter().cloned());
        known.extend(self.vars.iter().map(|(v, _)| v.clone()));
        self.fail(
            e,
            format!(
                "unknown name `{name}`{}, expected a field path or a macro: {}",
                hint(name, known.iter().map(String::as_str)),
                known.join(", ")
            ),
        )
    }

    fn roots(&self) -> Vec<Root> {
        Root::ALL
            .into_iter()
            .filter(|r| self.scope.source.is_none_or(|s| r.available_to(s)))
            .collect()
    }

    fn inline_macro(&mut self, e: &IdedExpr, name: &str) -> Typed {
        let def = self.scope.macros.get(name)?;
        if self.macro_stack.iter().any(|m| m == name) {
            let chain = self.macro_stack.join(" -> ");
            return self.fail(
                e,
                format!("macro `{name}` refers to itself ({chain} -> {name})"),
            );
        }
        if self.macro_stack.len() >= MAX_MACRO_DEPTH {
            return self.fail(e, format!("macros nested more than {MAX_MACRO_DEPTH} deep"));
        }
        self.macro_stack.push(name.to_string());
        let result = check_in(&def.ast, &def.info, self.scope, self.macro_stack);
        self.macro_stack.pop();
        match result {
            Ok(checked) => {
                for f in checked.fields {
                    self.note_field(f);
                }
                Some((checked.expr, Ty::Bool))
            }
            Err(_) if !def.ok => {
                self.uses_broken_definition = true;
                None
            }
            Err(errors) => {
                let first = errors
                    .into_iter()
                    .next()
                    .map_or_else(String::new, |e| e.message);
                self.fail(e, format!("macro `{name}` cannot be used here: {first}"))
            }
        }
    }

    /// `root.a.b`: the whole path must name a field.
    fn select(&mut self, e: &IdedExpr, select: &SelectExpr) -> Typed {
        if select.test {
            return self.fail(e, "presence tests are written has(field)");
        }
        let Some(segments) = e.name_segments() else {
            return self.fail(
                e,
                "fields are read from `riskyUser`, `riskDetection`, `signIn` or `user` only",
            );
        };
        match self.resolve(e, &segments)? {
            Resolved::Field(f) => {
                self.note_field(f);
                Some((Expr::Field(f), f.def().ty.ty()))
            }
            Resolved::Group(root, path) => self.fail(
                e,
                format!(
                    "`{}.{path}` is an object: read one of its fields ({})",
                    root.name(),
                    schema::children(root, &path).join(", ")
                ),
            ),
        }
    }

    /// Where a step of a dotted name is written: the identifier, or the field after its dot.
    fn step_offset(&self, step: &IdedExpr) -> usize {
        let at = self.offset(step.id);
        if let Ast::Select(_) = &step.expr {
            // The offset is that of the dot; the field name follows it, maybe after spaces.
            let after = self.info.source.get(at + 1..).unwrap_or("");
            let skipped = after.len() - after.trim_start().len();
            at + 1 + skipped
        } else {
            at
        }
    }

    /// Resolves a dotted name; reports a problem and returns `None` when it names nothing.
    fn resolve(&mut self, e: &IdedExpr, named: &[(&str, &IdedExpr)]) -> Option<Resolved> {
        let segments: Vec<&str> = named.iter().map(|(s, _)| *s).collect();
        let ((first, root_node), rest_named) = named.split_first()?;
        let rest: Vec<&str> = rest_named.iter().map(|(s, _)| *s).collect();
        let first = *first;
        let root_at = self.step_offset(root_node);
        if self.vars.iter().any(|(v, _)| v == first) {
            self.error(root_at, format!("`{first}` is a string: it has no fields"));
            return None;
        }
        let Some(root) = Root::from_name(first) else {
            let roots: Vec<&str> = Root::ALL.iter().map(|r| r.name()).collect();
            self.error(
                root_at,
                format!(
                    "unknown name `{first}`{}, expected one of: {}",
                    hint(first, roots.iter().copied()),
                    roots.join(", ")
                ),
            );
            return None;
        };
        if let Some(source) = self.scope.source
            && !root.available_to(source)
        {
            self.error(
                root_at,
                format!(
                    "`{}` is not available to rules of source `{}`: they read `{}` and `user`",
                    root.name(),
                    source.as_str(),
                    Root::of(source).name()
                ),
            );
            return None;
        }
        let path = rest.join(".");
        if let Some(f) = schema::lookup(root, &path) {
            return Some(Resolved::Field(f));
        }
        if schema::is_group(root, &path) {
            return Some(Resolved::Group(root, path));
        }
        // Name the first step that does not exist, with what exists there.
        let mut prefix = String::new();
        for (step, node) in rest_named {
            let step = *step;
            let candidates = schema::children(root, &prefix);
            if !candidates.contains(&step) {
                let owner = if prefix.is_empty() {
                    root.name().to_string()
                } else {
                    format!("{}.{prefix}", root.name())
                };
                let at = self.step_offset(node);
                self.error(
                    at,
                    format!(
                        "`{owner}` has no field `{step}`{}, expected one of: {}",
                        hint(step, candidates.iter().copied()),
                        candidates.join(", ")
                    ),
                );
                return None;
            }
            if !prefix.is_empty() {
                prefix.push('.');
            }
            prefix.push_str(step);
        }
        let at = self.offset(e.id);
        self.error(at, format!("`{}` is not a field", segments.join(".")));
        None
    }

    fn call(&mut self, e: &IdedExpr, call: &CallExpr) -> Typed {
        let name = call.func_name.as_str();
        let args = &call.args;
        match (name, call.target.as_deref(), args.len()) {
            ("_&&_" | "_||_", None, 2) => {
                let a = self.typed(&args[0], &Ty::Bool);
                let b = self.typed(&args[1], &Ty::Bool);
                let (a, b) = (Box::new(a?), Box::new(b?));
                Some((
                    if name == "_&&_" {
                        Expr::And(a, b)
                    } else {
                        Expr::Or(a, b)
                    },
                    Ty::Bool,
                ))
            }
            ("!_", None, 1) => Some((
                Expr::Not(Box::new(self.typed(&args[0], &Ty::Bool)?)),
                Ty::Bool,
            )),
            ("-_", None, 1) => match &args[0].expr {
                Ast::Literal(LiteralValue::Int(i)) => match i.inner().checked_neg() {
                    Some(n) => Some((Expr::Int(n), Ty::Int)),
                    None => self.fail(e, "integer out of range"),
                },
                _ => self.fail(e, "arithmetic is not supported in conditions"),
            },
            ("_?_:_", None, 3) => {
                let c = self.typed(&args[0], &Ty::Bool);
                let a = self.expr(&args[1]);
                let b = self.expr(&args[2]);
                let (c, (a, ta), (b, tb)) = (c?, a?, b?);
                if ta != tb {
                    return self.fail(
                        e,
                        format!(
                            "both branches of `?:` must have one type, found {} and {}",
                            ta.name(),
                            tb.name()
                        ),
                    );
                }
                Some((Expr::Cond(Box::new(c), Box::new(a), Box::new(b)), ta))
            }
            ("_==_" | "_!=_" | "_<_" | "_<=_" | "_>_" | "_>=_", None, 2) => {
                self.comparison(e, name, &args[0], &args[1])
            }
            ("@in", None, 2) => self.membership(e, &args[0], &args[1]),
            ("_+_", None, 2) => {
                let a = self.expr(&args[0]);
                let b = self.expr(&args[1]);
                let ((a, ta), (b, tb)) = (a?, b?);
                if ta == Ty::Str && tb == Ty::Str {
                    Some((Expr::Concat(Box::new(a), Box::new(b)), Ty::Str))
                } else {
                    self.fail(
                        e,
                        format!(
                            "`+` joins two strings; arithmetic is not supported in conditions (found {} and {})",
                            ta.name(),
                            tb.name()
                        ),
                    )
                }
            }
            ("_-_" | "_*_" | "_/_" | "_%_", None, 2) => {
                self.fail(e, "arithmetic is not supported in conditions")
            }
            ("_[_]" | "_[?_]", None, 2) => self.fail(
                e,
                "indexing is not supported (it can fail on a short list); use exists(), all() or `in`",
            ),
            ("has", None, 1) => self.has(e, &args[0]),
            ("size", None, 1) => self.size(e, &args[0]),
            ("size", Some(target), 0) => self.size(e, target),
            ("riskAtLeast", None, 2) => {
                let level = self.typed(&args[0], &Ty::Str);
                let min = self.literal_str(&args[1], "riskAtLeast's level")?;
                let ranked = vocab::RANKED_RISK_LEVEL;
                let Some(rank) = ranked
                    .iter()
                    .find(|l| **l == min)
                    .and_then(|l| RiskLevel::from(*l).rank())
                else {
                    return self.fail(
                        &args[1],
                        format!(
                            "unknown risk level `{min}`{}, expected one of: {}",
                            hint(&min, ranked.iter().copied()),
                            ranked.join(", ")
                        ),
                    );
                };
                Some((Expr::RiskAtLeast(Box::new(level?), rank), Ty::Bool))
            }
            ("ipInCidr", None, 2) => {
                let ip = self.typed(&args[0], &Ty::Str);
                let nets = self.networks(&args[1]);
                Some((
                    Expr::InNetworks(Box::new(ip?), Networks(Arc::new(nets?))),
                    Ty::Bool,
                ))
            }
            ("inList", None, 2) => {
                let value = self.typed(&args[0], &Ty::Str);
                let name = self.literal_str(&args[1], "inList's list name")?;
                if self.scope.broken_lists.contains(&name) {
                    self.uses_broken_definition = true;
                    return None;
                }
                let Some(list) = self.scope.lists.get(&name) else {
                    let mut known: Vec<&str> =
                        self.scope.lists.keys().map(String::as_str).collect();
                    known.sort_unstable();
                    let listed = if known.is_empty() {
                        "no lists are defined (add them under `lists:`)".to_string()
                    } else {
                        format!("defined lists: {}", known.join(", "))
                    };
                    return self.fail(
                        &args[1],
                        format!(
                            "unknown list `{name}`{}; {listed}",
                            hint(&name, known.iter().copied())
                        ),
                    );
                };
                let list = Arc::clone(list);
                Some((Expr::InList(Box::new(value?), list), Ty::Bool))
            }
            ("equalsIgnoreCase", None, 2) => {
                let a = self.typed(&args[0], &Ty::Str);
                let b = self.typed(&args[1], &Ty::Str);
                Some((
                    Expr::Text(TextOp::EqualsIgnoreCase, Box::new(a?), Box::new(b?)),
                    Ty::Bool,
                ))
            }
            ("matches", None, 2) => self.matches(&args[0], &args[1]),
            ("matches", Some(target), 1) => self.matches(target, &args[0]),
            ("startsWith" | "endsWith" | "contains", Some(target), 1) => {
                let op = match name {
                    "startsWith" => TextOp::StartsWith,
                    "endsWith" => TextOp::EndsWith,
                    _ => TextOp::Contains,
                };
                let a = self.typed(target, &Ty::Str);
                let b = self.typed(&args[0], &Ty::Str);
                Some((Expr::Text(op, Box::new(a?), Box::new(b?)), Ty::Bool))
            }
            ("lowerAscii" | "upperAscii" | "trim", Some(target), 0) => {
                let op = match name {
                    "lowerAscii" => CaseOp::Lower,
                    "upperAscii" => CaseOp::Upper,
                    _ => CaseOp::Trim,
                };
                let a = self.typed(target, &Ty::Str)?;
                Some((Expr::Case(op, Box::new(a)), Ty::Str))
            }
            ("exists" | "all" | "exists_one", Some(target), 2) => {
                let kind = match name {
                    "exists" => LoopKind::Exists,
                    "all" => LoopKind::All,
                    _ => LoopKind::ExistsOne,
                };
                self.comprehension(e, kind, target, &args[0], &args[1])
            }
            _ => self.unknown_call(e, call),
        }
    }

    fn unknown_call(&mut self, e: &IdedExpr, call: &CallExpr) -> Typed {
        let name = call.func_name.as_str();
        let known_global = [
            "has",
            "size",
            "riskAtLeast",
            "ipInCidr",
            "inList",
            "equalsIgnoreCase",
            "matches",
        ];
        let known_member = [
            "startsWith",
            "endsWith",
            "contains",
            "matches",
            "lowerAscii",
            "upperAscii",
            "trim",
            "size",
            "exists",
            "all",
            "exists_one",
        ];
        let (known, style): (&[&str], &str) = if call.target.is_some() {
            (&known_member, "method")
        } else {
            (&known_global, "function")
        };
        let all: Vec<&str> = known_global.iter().chain(&known_member).copied().collect();
        if all.contains(&name) {
            return self.fail(
                e,
                format!(
                    "`{name}` does not take {} argument(s) written this way; see docs/rules.md",
                    call.args.len()
                ),
            );
        }
        self.fail(
            e,
            format!(
                "unknown {style} `{name}`{}, expected one of: {}",
                hint(name, known.iter().copied()),
                known.join(", ")
            ),
        )
    }

    /// Checks `e` and that it has type `want`.
    fn typed(&mut self, e: &IdedExpr, want: &Ty) -> Option<Expr> {
        let (x, t) = self.expr(e)?;
        if t == *want {
            Some(x)
        } else {
            self.fail(
                e,
                format!("expected a {}, found a {}", want.name(), t.name()),
            );
            None
        }
    }

    fn literal_str(&mut self, e: &IdedExpr, what: &str) -> Option<String> {
        match &e.expr {
            Ast::Literal(LiteralValue::String(s)) => Some(s.inner().to_string()),
            _ => {
                self.fail(
                    e,
                    format!("{what} must be a string literal, so it is checked at load"),
                );
                None
            }
        }
    }

    fn comparison(&mut self, e: &IdedExpr, op: &str, a: &IdedExpr, b: &IdedExpr) -> Typed {
        let x = self.expr(a);
        let y = self.expr(b);
        let ((x, tx), (y, ty)) = (x?, y?);
        let symbol = op.trim_matches('_');
        if tx != ty {
            return self.fail(
                e,
                format!(
                    "`{symbol}` compares values of one type, found {} and {}",
                    tx.name(),
                    ty.name()
                ),
            );
        }
        if matches!(tx, Ty::List(_)) {
            return self.fail(
                e,
                format!("`{symbol}` does not compare lists; use `in`, exists() or size()"),
            );
        }
        let op = match op {
            "_==_" => CmpOp::Eq,
            "_!=_" => CmpOp::Ne,
            "_<_" => CmpOp::Lt,
            "_<=_" => CmpOp::Le,
            "_>_" => CmpOp::Gt,
            _ => CmpOp::Ge,
        };
        if matches!(op, CmpOp::Eq | CmpOp::Ne) {
            self.check_member(&x, b);
            self.check_member(&y, a);
        }
        Some((Expr::Cmp(op, Box::new(x), Box::new(y)), Ty::Bool))
    }

    /// When `field` is a Graph enum field and `literal` a string literal (or a list of them),
    /// each literal must be a member: a typo is a load error, not a rule that never fires.
    fn check_member(&mut self, field: &Expr, literal: &IdedExpr) {
        let Expr::Field(f) = field else { return };
        let Some(members) = f.def().members else {
            return;
        };
        let items: Vec<&IdedExpr> = match &literal.expr {
            Ast::List(list) => list.elements.iter().collect(),
            _ => vec![literal],
        };
        for item in items {
            if let Ast::Literal(LiteralValue::String(s)) = &item.expr {
                let value = s.inner();
                if !members.contains(&value) {
                    let message = format!(
                        "`{}` is never `{value}`{}; its values are: {}",
                        f.full_name(),
                        hint(value, members.iter().copied()),
                        members.join(", ")
                    );
                    self.fail(item, message);
                }
            }
        }
    }

    fn membership(&mut self, e: &IdedExpr, item: &IdedExpr, list: &IdedExpr) -> Typed {
        let x = self.expr(item);
        let l = self.expr(list);
        let ((x, tx), (l, tl)) = (x?, l?);
        match &tl {
            Ty::List(elem) if **elem == tx => {
                self.check_member(&x, list);
                Some((Expr::In(Box::new(x), Box::new(l)), Ty::Bool))
            }
            Ty::List(_) if matches!(&l, Expr::List(items) if items.is_empty()) => {
                Some((Expr::Bool(false), Ty::Bool))
            }
            _ => self.fail(
                e,
                format!(
                    "`in` tests a value against a list of its type, found {} in {}; named lists are tested with inList(value, 'name')",
                    tx.name(),
                    tl.name()
                ),
            ),
        }
    }

    fn has(&mut self, e: &IdedExpr, arg: &IdedExpr) -> Typed {
        let Some(segments) = arg.name_segments().filter(|s| s.len() > 1) else {
            return self.fail(
                e,
                "has() takes a field path, e.g. has(signIn.status.errorCode)",
            );
        };
        match self.resolve(arg, &segments)? {
            Resolved::Field(f) => {
                self.note_field(f);
                Some((Expr::Has(vec![f]), Ty::Bool))
            }
            Resolved::Group(root, path) => {
                let fields: Vec<FieldId> = (0..schema::FIELDS.len())
                    .filter_map(|i| u16::try_from(i).ok().map(FieldId))
                    .filter(|f| {
                        let d = f.def();
                        d.root == root && d.path.starts_with(&format!("{path}."))
                    })
                    .collect();
                Some((Expr::Has(fields), Ty::Bool))
            }
        }
    }

    fn size(&mut self, e: &IdedExpr, arg: &IdedExpr) -> Typed {
        let (x, t) = self.expr(arg)?;
        match t {
            Ty::Str | Ty::List(_) => Some((Expr::Size(Box::new(x)), Ty::Int)),
            other => self.fail(
                e,
                format!("size() takes a string or a list, found a {}", other.name()),
            ),
        }
    }

    fn matches(&mut self, subject: &IdedExpr, pattern: &IdedExpr) -> Typed {
        let s = self.typed(subject, &Ty::Str);
        let text = self.literal_str(pattern, "the regular expression")?;
        // The size limit keeps a hostile pattern from costing the daemon memory.
        let compiled = regex::RegexBuilder::new(&text).size_limit(1 << 20).build();
        match compiled {
            Ok(re) => Some((Expr::Matches(Box::new(s?), Pattern(Arc::new(re))), Ty::Bool)),
            Err(err) => {
                let message = err.to_string().replace('\n', " ");
                self.fail(pattern, format!("invalid regular expression: {message}"))
            }
        }
    }

    fn networks(&mut self, e: &IdedExpr) -> Option<Vec<ipnet::IpNet>> {
        let items: Vec<&IdedExpr> = match &e.expr {
            Ast::List(list) if !list.elements.is_empty() => list.elements.iter().collect(),
            Ast::Literal(LiteralValue::String(_)) => vec![e],
            _ => {
                self.fail(
                    e,
                    "ipInCidr takes a network literal or a list of them, e.g. '10.0.0.0/8'; for a named list use inList(ip, 'name')",
                );
                return None;
            }
        };
        let mut nets = Vec::new();
        let mut ok = true;
        for item in items {
            let Some(text) = self.literal_str(item, "a network") else {
                ok = false;
                continue;
            };
            match parse_network(&text) {
                Some(net) => nets.push(net),
                None => {
                    self.fail(item, bad_network(&text));
                    ok = false;
                }
            }
        }
        nets.sort();
        nets.dedup();
        ok.then_some(nets)
    }

    fn comprehension(
        &mut self,
        e: &IdedExpr,
        kind: LoopKind,
        range: &IdedExpr,
        var: &IdedExpr,
        body: &IdedExpr,
    ) -> Typed {
        let (r, tr) = self.expr(range)?;
        let Ty::List(elem) = tr else {
            return self.fail(
                e,
                format!(
                    "exists(), all() and exists_one() range over a list, found a {}",
                    tr.name()
                ),
            );
        };
        let Ast::Ident(name) = &var.expr else {
            return self.fail(var, "the first argument is the variable's name, e.g. x");
        };
        if Root::from_name(name).is_some() || self.scope.macros.contains_key(name) {
            return self.fail(
                var,
                format!("`{name}` is already a name; pick another variable"),
            );
        }
        self.vars.push((name.clone(), *elem));
        let b = self.typed(body, &Ty::Bool);
        self.vars.pop();
        Some((Expr::Loop(kind, Box::new(r), Box::new(b?)), Ty::Bool))
    }
}

enum Resolved {
    Field(FieldId),
    Group(Root, String),
}

trait Segments {
    fn name_segments(&self) -> Option<Vec<(&str, &IdedExpr)>>;
}

impl Segments for IdedExpr {
    /// `a.b.c` as `[a, b, c]`, each with the node that writes it; `None` for anything but a
    /// dotted name.
    fn name_segments(&self) -> Option<Vec<(&str, &IdedExpr)>> {
        let mut segments = Vec::new();
        let mut expr = self;
        loop {
            match &expr.expr {
                Ast::Ident(name) => {
                    segments.push((name.as_str(), expr));
                    segments.reverse();
                    return Some(segments);
                }
                Ast::Select(select) if !select.test => {
                    segments.push((select.field.as_str(), expr));
                    expr = &select.operand;
                }
                _ => return None,
            }
        }
    }
}

/// ` (did you mean `x`?)` for the closest candidate, or nothing.
pub(crate) fn hint<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let lower = name.to_lowercase();
    let best = candidates
        .into_iter()
        .map(|c| {
            let cl = c.to_lowercase();
            // A prefix (`country` for `countryOrRegion`) is as good as a one-letter typo.
            let d = if lower.len() >= 3 && cl.starts_with(&lower) {
                1
            } else {
                distance(&lower, &cl)
            };
            (d, c)
        })
        .filter(|(d, c)| *d <= (c.len() / 3).max(1))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((_, c)) if c != name => format!(" (did you mean `{c}`?)"),
        _ => String::new(),
    }
}

/// Levenshtein distance, for suggestions; inputs are short names.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_find_close_names_only() {
        assert_eq!(
            hint("ipAdress", ["ipAddress", "appId"]),
            " (did you mean `ipAddress`?)"
        );
        assert_eq!(hint("zzz", ["ipAddress"]), "");
    }
}
