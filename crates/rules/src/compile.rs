//! From rule files to a [`RuleSet`]: parse each file, gather the named lists and macros of all
//! files, check the macros, then validate and compile each rule on its own, and finally check
//! what spans files (unique ids and names). Every problem is collected; nothing stops at the
//! first.

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use cel::common::ast::{Expr as Ast, IdedExpr, SourceInfo};

use crate::cases::{Expect, RuleTest};
use crate::diag::{Diagnostic, Diagnostics, Problem, SourceFile};
use crate::expr::check::{self, MacroDef, Scope};
use crate::expr::{CelCondition, Conjunct, span};
use crate::lists::{self, NamedList};
use crate::matcher::{Condition, MatchKey};
use crate::node::{self, Kind, Located, Node, NodeDeserializer, Pos};
use crate::raw::{RawFile, RawList, RawMatch, RawRule, RawTest, RawWindow};
use crate::record::OwnedRecord;
use crate::rule::{ActionKind, Exception, Rule, Source};
use crate::ruleset::RuleSet;
use crate::window::{DEFAULT_MAX_KEYS, WindowSpec};

/// A condition longer than this is surely not meant; the bound keeps parsing cheap.
const MAX_CONDITION_CHARS: usize = 16_384;

/// The longest window: a day of sign-ins per key is already a lot to hold.
const MAX_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Keys per rule at most, whatever a rule asks for.
const MAX_KEYS_LIMIT: usize = 10_000_000;

/// A problem in file `usize` (an index into the files given).
type FileProblem = (usize, Problem);

/// Parses, validates and compiles rule files (and the list files they name) into one rule set.
///
/// `files` holds the rule files and, for every `lists: {name: {file: ...}}` they contain, the
/// list file: its [`SourceFile::origin`] must be the path [`required_files`] returned for it.
///
/// # Errors
/// Every problem in every file, each as `origin:line:col: message`, ordered by file (as
/// given) and position: YAML syntax, unknown keys, wrong types, unknown enum values, bad
/// networks, match keys that do not fit the rule's source, CEL syntax, unknown names, type
/// errors, unknown lists or macros, bad windows, malformed test cases, and ids or names
/// defined twice.
pub fn compile(files: &[SourceFile]) -> Result<RuleSet, Diagnostics> {
    let mut problems: Vec<FileProblem> = Vec::new();
    let needed: HashSet<String> = required_files(files).into_iter().collect();
    let mut list_files: HashMap<String, usize> = HashMap::new();
    let mut roots: Vec<(usize, Node)> = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let normal = lists::normalise(std::path::Path::new(&file.origin));
        if needed.contains(&normal) {
            list_files.insert(normal, index);
            continue;
        }
        match parse_file(file) {
            Ok(root) => roots.push((index, root)),
            Err(problem) => problems.push((index, problem)),
        }
    }

    let (named_lists, broken_lists) = load_lists(files, &roots, &list_files, &mut problems);
    let (mut macro_defs, sites) = parse_macros(files, &roots, &mut problems);
    check_macros(
        files,
        &named_lists,
        &broken_lists,
        &mut macro_defs,
        &sites,
        &mut problems,
    );

    let mut rules = Vec::new();
    for (index, root) in &roots {
        let items = match root.get("rules") {
            Some(Node {
                kind: Kind::Seq(items),
                ..
            }) => items.as_slice(),
            // RawFile has checked that `rules`, when present, is a list.
            _ => &[],
        };
        let ctx = FileContext {
            file: &files[*index],
            lists: &named_lists,
            broken_lists: &broken_lists,
            macros: &macro_defs,
        };
        for item in items {
            match load_rule(item, &ctx) {
                Ok(rule) => rules.push((*index, rule)),
                Err(found) => problems.extend(found.into_iter().map(|p| (*index, p))),
            }
        }
    }
    problems.extend(duplicate_ids(&rules));
    let rules = rules.into_iter().map(|(_, rule)| rule).collect();
    if problems.is_empty() {
        return Ok(RuleSet::new(rules));
    }
    problems.sort_by_key(|(index, (pos, _))| (*index, *pos));
    problems.dedup();
    Err(Diagnostics(
        problems
            .into_iter()
            .map(|(index, (pos, message))| Diagnostic::new(&files[index].origin, pos, message))
            .collect(),
    ))
}

/// The list files the rule files among `files` name (`lists: {x: {file: ...}}`), each resolved
/// against its rule file's directory, in order of first mention.
///
/// The caller reads each and passes it to [`compile`] as a [`SourceFile`] whose origin is the
/// returned path. A rule file with YAML errors names nothing; [`compile`] reports its errors.
pub fn required_files(files: &[SourceFile]) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for file in files {
        let Ok(root) = node::parse(&file.text) else {
            continue;
        };
        let Some(Node {
            kind: Kind::Map(entries),
            ..
        }) = root.get("lists")
        else {
            continue;
        };
        for (_, list) in entries {
            if let Some(Node {
                kind: Kind::Str(path),
                ..
            }) = list.get("file")
            {
                let resolved = lists::resolve(&file.origin, path);
                if !found.contains(&resolved) {
                    found.push(resolved);
                }
            }
        }
    }
    found
}

fn parse_file(file: &SourceFile) -> Result<Node, Problem> {
    let root = node::parse(&file.text)?;
    if root.kind == Kind::Null {
        let message = "empty rule file: expected a mapping with a `rules:` list";
        return Err((root.pos, message.to_string()));
    }
    NodeDeserializer::value::<RawFile>(&root)
        .map_err(|e| (e.pos.unwrap_or(root.pos), e.message))?;
    Ok(root)
}

/// The entries of a top-level mapping (`lists:` or `macros:`), with names checked.
fn named_entries<'n>(
    root: &'n Node,
    key: &str,
    index: usize,
    problems: &mut Vec<FileProblem>,
) -> Vec<(Located<String>, &'n Node)> {
    let Some(Node {
        kind: Kind::Map(entries),
        ..
    }) = root.get(key)
    else {
        return Vec::new();
    };
    let mut named = Vec::new();
    for (k, v) in entries {
        match &k.kind {
            Kind::Str(name) => named.push((
                Located {
                    pos: k.pos,
                    value: name.clone(),
                },
                v,
            )),
            _ => problems.push((index, (k.pos, format!("{key} names must be strings")))),
        }
    }
    named
}

/// Where each name was first defined, to report a second definition.
struct FirstSeen(HashMap<String, (usize, Pos)>);

impl FirstSeen {
    fn check(
        &mut self,
        what: &str,
        name: &Located<String>,
        index: usize,
        files: &[SourceFile],
        problems: &mut Vec<FileProblem>,
    ) -> bool {
        if let Some((first_index, first)) = self.0.get(&name.value) {
            problems.push((
                index,
                (
                    name.pos,
                    format!(
                        "{what} `{}` is defined twice, first at {}:{}:{}",
                        name.value, files[*first_index].origin, first.line, first.column
                    ),
                ),
            ));
            return false;
        }
        self.0.insert(name.value.clone(), (index, name.pos));
        true
    }
}

/// The lists that loaded, and the names of those that are defined but did not.
fn load_lists(
    files: &[SourceFile],
    roots: &[(usize, Node)],
    list_files: &HashMap<String, usize>,
    problems: &mut Vec<FileProblem>,
) -> (HashMap<String, Arc<NamedList>>, HashSet<String>) {
    let mut lists = HashMap::new();
    let mut broken = HashSet::new();
    let mut seen = FirstSeen(HashMap::new());
    for (index, root) in roots {
        let index = *index;
        for (name, node) in named_entries(root, "lists", index, problems) {
            check_name(&name, "list", problems, index);
            if !seen.check("list", &name, index, files, problems) {
                continue;
            }
            let raw = match NodeDeserializer::value::<RawList>(node) {
                Ok(raw) => raw,
                Err(e) => {
                    problems.push((index, (e.pos.unwrap_or(node.pos), e.message)));
                    broken.insert(name.value);
                    continue;
                }
            };
            match load_list(
                files,
                index,
                name.pos,
                &name.value,
                raw,
                list_files,
                problems,
            ) {
                Some(list) => {
                    lists.insert(name.value, Arc::new(list));
                }
                None => {
                    broken.insert(name.value);
                }
            }
        }
    }
    (lists, broken)
}

fn load_list(
    files: &[SourceFile],
    index: usize,
    at: Pos,
    name: &str,
    raw: RawList,
    list_files: &HashMap<String, usize>,
    problems: &mut Vec<FileProblem>,
) -> Option<NamedList> {
    // Items with where each was written: (file index, position).
    let items: Vec<(usize, Pos, String)> = match (raw.items, raw.file) {
        (Some(items), None) => items
            .value
            .into_iter()
            .map(|i| (index, i.pos, i.value))
            .collect(),
        (None, Some(file)) => {
            let resolved = lists::resolve(&files[index].origin, &file.value);
            let Some(list_index) = list_files.get(&resolved) else {
                problems.push((
                    index,
                    (
                        file.pos,
                        format!(
                            "list file `{}` was not loaded (looked for `{resolved}`)",
                            file.value
                        ),
                    ),
                ));
                return None;
            };
            lists::parse_list_file(&files[*list_index].text)
                .into_iter()
                .map(|(line, column, item)| (*list_index, Pos { line, column }, item))
                .collect()
        }
        (Some(_), Some(_)) => {
            problems.push((
                index,
                (
                    at,
                    format!("list `{name}` has both `items` and `file`: give one"),
                ),
            ));
            return None;
        }
        (None, None) => {
            problems.push((
                index,
                (
                    at,
                    format!("list `{name}` needs `items` (inline) or `file` (one item per line)"),
                ),
            ));
            return None;
        }
    };
    let texts: Vec<String> = items.iter().map(|(_, _, t)| t.clone()).collect();
    match NamedList::new(name, raw.kind, &texts, &raw.description) {
        Ok(list) => Some(list),
        Err(errors) => {
            for (i, message) in errors {
                if let Some((file, pos, _)) = items.get(i) {
                    problems.push((*file, (*pos, message)));
                }
            }
            None
        }
    }
}

/// Where each macro is written: its file and its text node.
type MacroSites = HashMap<String, (usize, Located<String>)>;

fn parse_macros(
    files: &[SourceFile],
    roots: &[(usize, Node)],
    problems: &mut Vec<FileProblem>,
) -> (HashMap<String, MacroDef>, MacroSites) {
    let mut macros = HashMap::new();
    let mut sites = HashMap::new();
    let mut seen = FirstSeen(HashMap::new());
    for (index, root) in roots {
        let index = *index;
        for (name, node) in named_entries(root, "macros", index, problems) {
            if let Err(message) = macro_name(&name.value) {
                problems.push((index, (name.pos, message)));
                continue;
            }
            if !seen.check("macro", &name, index, files, problems) {
                continue;
            }
            let text = match NodeDeserializer::value::<Located<String>>(node) {
                Ok(text) => text,
                Err(e) => {
                    problems.push((index, (e.pos.unwrap_or(node.pos), e.message)));
                    continue;
                }
            };
            match parse_cel(&text, &files[index].text) {
                Ok((ast, info)) => {
                    macros.insert(
                        name.value.clone(),
                        MacroDef {
                            ast,
                            info,
                            ok: true,
                        },
                    );
                    sites.insert(name.value, (index, text));
                }
                Err(found) => problems.extend(found.into_iter().map(|p| (index, p))),
            }
        }
    }
    (macros, sites)
}

/// Checks every macro on its own (any record may be read): first the cycles, then each macro
/// after the macros it uses, so that a macro broken only by a broken macro it uses adds no
/// problem of its own.
fn check_macros(
    files: &[SourceFile],
    lists: &HashMap<String, Arc<NamedList>>,
    broken_lists: &HashSet<String>,
    macros: &mut HashMap<String, MacroDef>,
    sites: &MacroSites,
    problems: &mut Vec<FileProblem>,
) {
    let deps: HashMap<String, Vec<String>> = macros
        .iter()
        .map(|(name, m)| {
            let mut used = Vec::new();
            idents(&m.ast, &mut used);
            used.retain(|u| macros.contains_key(u));
            used.dedup();
            (name.clone(), used)
        })
        .collect();
    let mut names: Vec<&String> = macros.keys().collect();
    names.sort();
    // Depth-first, dependencies first; a name met again while still open closes a cycle.
    let mut order: Vec<String> = Vec::new();
    let mut state: HashMap<String, u8> = HashMap::new(); // 1 open, 2 done
    let mut cyclic: Vec<(String, Vec<String>)> = Vec::new();
    fn visit(
        name: &str,
        deps: &HashMap<String, Vec<String>>,
        state: &mut HashMap<String, u8>,
        path: &mut Vec<String>,
        order: &mut Vec<String>,
        cyclic: &mut Vec<(String, Vec<String>)>,
    ) {
        match state.get(name) {
            Some(2) => return,
            Some(_) => {
                let from = path.iter().position(|p| p == name).unwrap_or(0);
                let mut cycle: Vec<String> = path[from..].to_vec();
                cycle.push(name.to_string());
                cyclic.push((name.to_string(), cycle));
                return;
            }
            None => {}
        }
        state.insert(name.to_string(), 1);
        path.push(name.to_string());
        for d in deps.get(name).into_iter().flatten() {
            visit(d, deps, state, path, order, cyclic);
        }
        path.pop();
        state.insert(name.to_string(), 2);
        order.push(name.to_string());
    }
    for name in names {
        visit(
            name,
            &deps,
            &mut state,
            &mut Vec::new(),
            &mut order,
            &mut cyclic,
        );
    }
    for (name, cycle) in cyclic {
        if let (Some(m), Some((index, text))) = (macros.get_mut(&name), sites.get(&name)) {
            m.ok = false;
            problems.push((
                *index,
                (
                    text.pos,
                    format!(
                        "macro `{name}` is defined in terms of itself ({})",
                        cycle.join(" -> ")
                    ),
                ),
            ));
        }
    }
    for name in order {
        if !macros.get(&name).is_some_and(|m| m.ok) {
            continue;
        }
        let result = {
            let Some(m) = macros.get(&name) else { continue };
            let scope = Scope {
                source: None,
                lists,
                broken_lists,
                macros,
            };
            check::check_condition(&m.ast, &m.info, &scope)
        };
        if let Err(errors) = result {
            if let Some(m) = macros.get_mut(&name) {
                m.ok = false;
            }
            if let Some((index, text)) = sites.get(&name) {
                for e in errors {
                    let pos = span::locate(&files[*index].text, text.pos, &text.value, e.offset);
                    problems.push((*index, (pos, e.message)));
                }
            }
        }
    }
}

/// Every identifier an expression mentions (macro uses among them).
fn idents(e: &IdedExpr, out: &mut Vec<String>) {
    match &e.expr {
        Ast::Ident(name) => out.push(name.clone()),
        Ast::Select(s) => idents(&s.operand, out),
        Ast::Call(c) => {
            if let Some(t) = &c.target {
                idents(t, out);
            }
            for a in &c.args {
                idents(a, out);
            }
        }
        Ast::List(l) => {
            for item in &l.elements {
                idents(item, out);
            }
        }
        _ => {}
    }
}

/// Macro names are CEL identifiers that do not shadow a root, a keyword or a function.
fn macro_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ident = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ident {
        return Err(format!(
            "invalid macro name `{name}`: use letters, digits and `_`, starting with a letter (it is used as a name in conditions)"
        ));
    }
    const TAKEN: &[&str] = &[
        "riskyUser",
        "riskDetection",
        "signIn",
        "user",
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
        "has",
        "size",
        "matches",
        "riskAtLeast",
        "ipInCidr",
        "inList",
        "equalsIgnoreCase",
    ];
    if TAKEN.contains(&name) {
        return Err(format!(
            "macro name `{name}` is already a name in conditions; pick another"
        ));
    }
    Ok(())
}

/// List names follow rule ids: they appear in explanations and logs.
fn check_name(name: &Located<String>, what: &str, problems: &mut Vec<FileProblem>, index: usize) {
    if !plain_name(&name.value) {
        problems.push((
            index,
            (
                name.pos,
                format!(
                    "invalid {what} name `{}`: use lower-case letters, digits, `-`, `_` and `.`, starting with a letter or digit",
                    name.value
                ),
            ),
        ));
    }
}

fn plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    first_ok
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// Parses CEL text; problems at their file positions.
fn parse_cel(text: &Located<String>, file: &str) -> Result<(IdedExpr, SourceInfo), Vec<Problem>> {
    if text.value.trim().is_empty() {
        return Err(vec![(text.pos, "empty condition".to_string())]);
    }
    if text.value.chars().count() > MAX_CONDITION_CHARS {
        return Err(vec![(
            text.pos,
            format!("condition longer than {MAX_CONDITION_CHARS} characters"),
        )]);
    }
    let parser = cel::Env::default().parser().max_recursion_depth(64);
    // The parser is generated code fed with text from outside: should it ever panic, that is
    // one bad condition, not a daemon that cannot load its rules.
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        parser.parse_with_source_info(&text.value)
    }));
    match parsed {
        Ok(Ok(parsed)) => Ok(parsed),
        Ok(Err(errors)) => Err(errors
            .errors
            .into_iter()
            .map(|e| {
                let offset = offset_of(&text.value, e.pos.0, e.pos.1);
                let pos = span::locate(file, text.pos, &text.value, offset);
                (pos, cel_message(&e.msg))
            })
            .collect()),
        Err(_) => Err(vec![(
            text.pos,
            "the condition could not be parsed".to_string(),
        )]),
    }
}

/// The byte offset of a 1-based line and character column in `text`.
fn offset_of(text: &str, line: isize, column: isize) -> usize {
    let line = usize::try_from(line).unwrap_or(1).max(1);
    let column = usize::try_from(column).unwrap_or(1).max(1);
    let mut start = 0;
    for _ in 1..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => break,
        }
    }
    text[start..]
        .char_indices()
        .nth(column - 1)
        .map_or(text.len(), |(i, _)| start + i)
}

fn cel_message(message: &str) -> String {
    let message = message
        .strip_prefix("Syntax error: ")
        .unwrap_or(message)
        .replace('\n', " ");
    format!("syntax error in condition: {message}")
}

/// What loading a rule needs from around it.
struct FileContext<'c> {
    file: &'c SourceFile,
    lists: &'c HashMap<String, Arc<NamedList>>,
    broken_lists: &'c HashSet<String>,
    macros: &'c HashMap<String, MacroDef>,
}

impl FileContext<'_> {
    /// Parses and checks a CEL condition for a rule of `source`.
    fn condition(
        &self,
        text: &Located<String>,
        source: Source,
        problems: &mut Vec<Problem>,
    ) -> Option<CelCondition> {
        let (ast, info) = match parse_cel(text, &self.file.text) {
            Ok(parsed) => parsed,
            Err(found) => {
                problems.extend(found);
                return None;
            }
        };
        let scope = Scope {
            source: Some(source),
            lists: self.lists,
            broken_lists: self.broken_lists,
            macros: self.macros,
        };
        let mut conjuncts = Vec::new();
        let mut failed = false;
        for (part, text_of_part) in span::conjuncts(&ast, &info, &text.value) {
            match check::check_condition(part, &info, &scope) {
                Ok(checked) => {
                    let label = match &part.expr {
                        Ast::Ident(name) if self.macros.contains_key(name) => name.clone(),
                        _ => text_of_part,
                    };
                    conjuncts.push(Conjunct {
                        text: label,
                        expr: checked.expr,
                        fields: checked.fields,
                    });
                }
                Err(errors) => {
                    failed = true;
                    for e in errors {
                        let pos = span::locate(&self.file.text, text.pos, &text.value, e.offset);
                        problems.push((pos, e.message));
                    }
                }
            }
        }
        if failed {
            return None;
        }
        let canonical = conjuncts
            .iter()
            .map(|c| format!("{:?}", c.expr))
            .collect::<Vec<_>>()
            .join(" && ");
        Some(CelCondition {
            text: text.value.clone(),
            conjuncts,
            canonical,
        })
    }
}

fn load_rule(item: &Node, ctx: &FileContext<'_>) -> Result<Rule, Vec<Problem>> {
    let raw = NodeDeserializer::value::<RawRule>(item)
        .map_err(|e| vec![(e.pos.unwrap_or(item.pos), e.message)])?;
    let mut problems = Vec::new();
    check_id(&raw.id, &mut problems);
    if raw.matcher.is_none() && raw.condition.is_none() {
        problems.push((
            item.pos,
            "rule has neither `match:` nor `condition:`; to match every record write `match: {all: true}`"
                .to_string(),
        ));
    }
    let conditions = match &raw.matcher {
        Some(matcher) => conditions(matcher, raw.source, &mut problems),
        None => Vec::new(),
    };
    let condition = raw
        .condition
        .as_ref()
        .and_then(|text| ctx.condition(text, raw.source, &mut problems));
    let exceptions = exceptions(&raw, ctx, &mut problems);
    let (window, window_filter) = match &raw.window {
        Some(w) => window(w, raw.source, ctx, &mut problems),
        None => (None, None),
    };
    let actions = actions(&raw.actions, &mut problems);
    let tests = tests(&raw, &exceptions, &mut problems);
    // A condition that uses a broken macro fails without a problem of its own (the macro's
    // are reported where it is defined): the rule must not load without it.
    let broken = (raw.condition.is_some() && condition.is_none())
        || exceptions.len() != raw.exceptions.len()
        || (raw.window.is_some() && window.is_none())
        || raw
            .window
            .as_ref()
            .is_some_and(|w| w.value.filter.is_some() && window_filter.is_none());
    if !problems.is_empty() || broken {
        return Err(problems);
    }
    let rule = Rule {
        id: raw.id.value,
        description: raw.description,
        source: raw.source,
        actions,
        mode: raw.mode,
        cooldown: raw.cooldown,
        severity: raw.severity,
        tags: raw.tags,
        enabled: raw.enabled,
        hash: String::new(),
        origin: ctx.file.origin.clone(),
        line: raw.id.pos.line,
        column: raw.id.pos.column,
        conditions,
        condition,
        exceptions,
        window,
        window_filter,
        tests,
    };
    Ok(rule.seal())
}

/// Ids go into decisions, cooldowns, logs and URLs: keep them plain.
fn check_id(id: &Located<String>, problems: &mut Vec<Problem>) {
    if !plain_name(&id.value) {
        problems.push((
            id.pos,
            format!(
                "invalid rule id `{}`: use lower-case letters, digits, `-`, `_` and `.`, starting with a letter or digit",
                id.value
            ),
        ));
    }
}

fn conditions(
    matcher: &Located<RawMatch>,
    source: Source,
    problems: &mut Vec<Problem>,
) -> Vec<Condition> {
    let Located {
        pos,
        value: RawMatch(entries),
    } = matcher;
    if entries.is_empty() {
        problems.push((
            *pos,
            "empty `match:` would match every record; write `match: {all: true}` if that is meant"
                .to_string(),
        ));
    }
    let mut compiled = Vec::new();
    for (key, written) in entries {
        let Some(match_key) = resolve_key(key, source, problems) else {
            continue;
        };
        if match_key == MatchKey::All && entries.len() > 1 {
            problems.push((
                key.pos,
                "`all` cannot be combined with other match keys".to_string(),
            ));
            continue;
        }
        match Condition::compile(match_key, written.value.clone(), written.pos) {
            Ok(condition) => compiled.push(condition),
            Err(found) => problems.extend(found),
        }
    }
    compiled
}

fn resolve_key(
    key: &Located<String>,
    source: Source,
    problems: &mut Vec<Problem>,
) -> Option<MatchKey> {
    let valid = || {
        MatchKey::valid_for(source)
            .map(MatchKey::name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match MatchKey::from_name(&key.value) {
        Some(k) if k.applies_to(source) => Some(k),
        Some(k) => {
            problems.push((
                key.pos,
                format!(
                    "match key `{}` does not apply to source `{}`, whose keys are: {}",
                    k.name(),
                    source.as_str(),
                    valid()
                ),
            ));
            None
        }
        None => {
            problems.push((
                key.pos,
                format!(
                    "unknown match key `{}`, expected one of: {}",
                    key.value,
                    valid()
                ),
            ));
            None
        }
    }
}

fn exceptions(raw: &RawRule, ctx: &FileContext<'_>, problems: &mut Vec<Problem>) -> Vec<Exception> {
    let mut compiled: Vec<Exception> = Vec::new();
    let mut names: HashSet<&str> = HashSet::new();
    for e in &raw.exceptions {
        if !plain_name(&e.name.value) {
            problems.push((
                e.name.pos,
                format!(
                    "invalid exception name `{}`: use lower-case letters, digits, `-`, `_` and `.`",
                    e.name.value
                ),
            ));
        }
        if !names.insert(&e.name.value) {
            problems.push((
                e.name.pos,
                format!("exception `{}` is listed twice in this rule", e.name.value),
            ));
        }
        if let Some(condition) = ctx.condition(&e.condition, raw.source, problems) {
            compiled.push(Exception {
                name: e.name.value.clone(),
                condition,
            });
        }
    }
    compiled
}

fn window(
    written: &Located<RawWindow>,
    source: Source,
    ctx: &FileContext<'_>,
    problems: &mut Vec<Problem>,
) -> (Option<WindowSpec>, Option<CelCondition>) {
    let at = written.pos;
    let w = &written.value;
    let before = problems.len();
    if source != Source::SignIns {
        problems.push((
            at,
            format!(
                "`window:` counts sign-ins: it needs `source: sign_ins`, not `{}`",
                source.as_str()
            ),
        ));
    }
    let mut group_by = Vec::new();
    for d in &w.group_by.value {
        if group_by.contains(&d.value) {
            problems.push((
                d.pos,
                format!("`{}` is listed twice in `group_by`", d.value.as_str()),
            ));
        }
        group_by.push(d.value);
    }
    if group_by.is_empty() {
        problems.push((
            w.group_by.pos,
            "`group_by` is empty: name what sign-ins are grouped by (user, ip, app, country)"
                .to_string(),
        ));
    }
    if w.duration < Duration::from_secs(1) || w.duration > MAX_WINDOW {
        problems.push((at, "`duration` must be between 1s and 24h".to_string()));
    }
    if let Some(count) = &w.count
        && count.value == 0
    {
        problems.push((count.pos, "`count` must be at least 1".to_string()));
    }
    let mut distinct = Vec::new();
    for (dimension, min) in &w.distinct {
        if min.value == 0 {
            problems.push((
                min.pos,
                "a distinct threshold must be at least 1".to_string(),
            ));
        }
        distinct.push((*dimension, min.value));
    }
    if w.count.is_none() && distinct.is_empty() {
        problems.push((
            at,
            "a window needs a threshold: `count` or `distinct`".to_string(),
        ));
    }
    let max_keys = match &w.max_keys {
        Some(m) if m.value == 0 || m.value > MAX_KEYS_LIMIT => {
            problems.push((
                m.pos,
                format!("`max_keys` must be between 1 and {MAX_KEYS_LIMIT}"),
            ));
            DEFAULT_MAX_KEYS
        }
        Some(m) => m.value,
        None => DEFAULT_MAX_KEYS,
    };
    let filter = w
        .filter
        .as_ref()
        .and_then(|text| ctx.condition(text, source, problems));
    if problems.len() > before {
        return (None, None);
    }
    let spec = WindowSpec {
        group_by,
        duration: w.duration,
        min_count: w.count.as_ref().map(|c| c.value),
        distinct,
        max_keys,
    };
    (Some(spec), filter)
}

fn actions(
    written: &Located<Vec<Located<ActionKind>>>,
    problems: &mut Vec<Problem>,
) -> Vec<ActionKind> {
    if written.value.is_empty() {
        problems.push((
            written.pos,
            "`actions` is empty: a rule must do something (revoke_sessions, confirm_compromised, disable_account or notify)".to_string(),
        ));
    }
    let mut actions = Vec::new();
    for action in &written.value {
        if actions.contains(&action.value) {
            problems.push((
                action.pos,
                format!("action `{}` is listed twice", action.value.as_str()),
            ));
        } else {
            actions.push(action.value);
        }
    }
    actions
}

fn tests(raw: &RawRule, exceptions: &[Exception], problems: &mut Vec<Problem>) -> Vec<RuleTest> {
    let mut compiled = Vec::new();
    for Located { pos, value: test } in &raw.tests {
        if let Some(t) = load_test(*pos, test, raw, exceptions, problems) {
            compiled.push(t);
        }
    }
    compiled
}

fn load_test(
    pos: Pos,
    test: &RawTest,
    raw: &RawRule,
    exceptions: &[Exception],
    problems: &mut Vec<Problem>,
) -> Option<RuleTest> {
    let record = |value: &Located<serde_json::Value>, problems: &mut Vec<Problem>| {
        OwnedRecord::from_json(raw.source, value.value.clone())
            .map_err(|e| {
                problems.push((
                    value.pos,
                    format!(
                        "test record is not a valid {} record: {e}",
                        raw.source.as_str()
                    ),
                ));
            })
            .ok()
    };
    let before = problems.len();
    let given: Vec<OwnedRecord> = test
        .given
        .iter()
        .filter_map(|g| record(g, problems))
        .collect();
    let input = record(&test.input, problems);
    if let Some(name) = &test.exception {
        if test.expect != Expect::Suppressed {
            problems.push((
                name.pos,
                "`exception` names the exception of an `expect: suppressed` test".to_string(),
            ));
        } else if !exceptions.iter().any(|e| e.name == name.value)
            && raw.exceptions.iter().all(|e| e.name.value != name.value)
        {
            problems.push((
                name.pos,
                format!("the rule has no exception `{}`", name.value),
            ));
        }
    }
    if problems.len() > before {
        return None;
    }
    Some(RuleTest {
        name: test.name.clone(),
        line: pos.line,
        column: pos.column,
        given,
        input: input?,
        user: test.user.clone(),
        expect: test.expect,
        exception: test.exception.as_ref().map(|e| e.value.clone()),
    })
}

/// Points at the second definition of an id and names where the first one is.
fn duplicate_ids(rules: &[(usize, Rule)]) -> Vec<FileProblem> {
    let mut first: HashMap<&str, &Rule> = HashMap::new();
    let mut problems = Vec::new();
    for (index, rule) in rules {
        if let Some(earlier) = first.get(rule.id.as_str()) {
            let message = format!(
                "duplicate rule id `{}`, first defined at {}:{}:{}",
                rule.id, earlier.origin, earlier.line, earlier.column
            );
            let pos = Pos {
                line: rule.line,
                column: rule.column,
            };
            problems.push((*index, (pos, message)));
        } else {
            first.insert(&rule.id, rule);
        }
    }
    problems
}
