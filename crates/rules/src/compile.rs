//! From rule files to a [`RuleSet`]: parse each file, validate each rule on its own, then check
//! what spans files (unique ids). Every problem is collected; nothing stops at the first.

use std::collections::HashMap;

use crate::diag::{Diagnostic, Diagnostics, Problem, SourceFile};
use crate::matcher::{Condition, MatchKey};
use crate::node::{self, Kind, Located, Node, NodeDeserializer, Pos};
use crate::raw::{RawFile, RawMatch, RawRule};
use crate::rule::{ActionKind, Rule, Source};
use crate::ruleset::RuleSet;

/// Parses, validates and compiles rule files into one rule set.
///
/// # Errors
/// Every problem in every file, each as `origin:line:col: message`, ordered by file (as
/// given) and position: YAML syntax, unknown keys, wrong types, unknown enum values, bad
/// networks, match keys that do not fit the rule's source, empty `match:` or `actions`, and
/// rule ids defined twice.
pub fn compile(files: &[SourceFile]) -> Result<RuleSet, Diagnostics> {
    // (file index, rule) and (file index, problem): problems are sorted at the end so each
    // file's read top to bottom.
    let mut rules = Vec::new();
    let mut problems: Vec<(usize, Problem)> = Vec::new();
    for (index, file) in files.iter().enumerate() {
        for result in load_file(file) {
            match result {
                Ok(rule) => rules.push((index, rule)),
                Err(found) => problems.extend(found.into_iter().map(|p| (index, p))),
            }
        }
    }
    problems.extend(duplicate_ids(&rules));
    let rules = rules.into_iter().map(|(_, rule)| rule).collect();
    if problems.is_empty() {
        return Ok(RuleSet::new(rules));
    }
    problems.sort_by_key(|(index, (pos, _))| (*index, *pos));
    Err(Diagnostics(
        problems
            .into_iter()
            .map(|(index, (pos, message))| Diagnostic::new(&files[index].origin, pos, message))
            .collect(),
    ))
}

/// One result per rule of the file (the compiled rule or its problems), or a single error
/// when the file itself is unusable.
fn load_file(file: &SourceFile) -> Vec<Result<Rule, Vec<Problem>>> {
    let root = match node::parse(&file.text) {
        Ok(root) => root,
        Err(problem) => return vec![Err(vec![problem])],
    };
    if root.kind == Kind::Null {
        let message = "empty rule file: expected a mapping with a `rules:` list";
        return vec![Err(vec![(root.pos, message.to_string())])];
    }
    if let Err(e) = NodeDeserializer::value::<RawFile>(&root) {
        return vec![Err(vec![(e.pos.unwrap_or(root.pos), e.message)])];
    }
    let items = match root.get("rules") {
        Some(Node {
            kind: Kind::Seq(items),
            ..
        }) => items.as_slice(),
        // RawFile has just checked that `rules` is a list.
        _ => &[],
    };
    items
        .iter()
        .map(|item| load_rule(item, &file.origin))
        .collect()
}

fn load_rule(item: &Node, origin: &str) -> Result<Rule, Vec<Problem>> {
    let raw = NodeDeserializer::value::<RawRule>(item)
        .map_err(|e| vec![(e.pos.unwrap_or(item.pos), e.message)])?;
    let mut problems = Vec::new();
    check_id(&raw.id, &mut problems);
    let conditions = conditions(&raw, item.pos, &mut problems);
    let actions = actions(&raw.actions, &mut problems);
    if !problems.is_empty() {
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
        origin: origin.to_owned(),
        line: raw.id.pos.line,
        column: raw.id.pos.column,
        conditions,
    };
    Ok(rule.seal())
}

/// Ids go into decisions, cooldowns, logs and URLs: keep them plain.
fn check_id(id: &Located<String>, problems: &mut Vec<Problem>) {
    let mut chars = id.value.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if !(first_ok && rest_ok) {
        problems.push((
            id.pos,
            format!(
                "invalid rule id `{}`: use lower-case letters, digits, `-`, `_` and `.`, starting with a letter or digit",
                id.value
            ),
        ));
    }
}

fn conditions(raw: &RawRule, rule_pos: Pos, problems: &mut Vec<Problem>) -> Vec<Condition> {
    let Some(Located {
        pos,
        value: RawMatch(entries),
    }) = &raw.matcher
    else {
        problems.push((
            rule_pos,
            "rule has no `match:` block; to match every record write `match: {all: true}`"
                .to_string(),
        ));
        return Vec::new();
    };
    if entries.is_empty() {
        problems.push((
            *pos,
            "empty `match:` would match every record; write `match: {all: true}` if that is meant"
                .to_string(),
        ));
    }
    let mut compiled = Vec::new();
    for (key, written) in entries {
        let Some(match_key) = resolve_key(key, raw.source, problems) else {
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

/// Points at the second definition of an id and names where the first one is.
fn duplicate_ids(rules: &[(usize, Rule)]) -> Vec<(usize, Problem)> {
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
