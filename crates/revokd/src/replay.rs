//! Offline rule tooling: `revokd replay` runs rules over recorded Graph responses and prints
//! the decisions with their explanations; `revokd check --test` runs the test cases rule files
//! carry. Neither touches a tenant or the audit database.
//!
//! Inputs are what Graph returns: a list page (`{"value": [...]}`, as saved from Graph
//! Explorer or `curl`), or JSON lines holding records or pages. The feed is taken from
//! `--source`, else from the page's `@odata.context`, else from the fields of each record.
//! Records are evaluated oldest first (Graph serves newest first), so windows see a user's
//! earlier sign-ins before the one that completes a pattern.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::ValueEnum;
use rules::{OwnedRecord, RuleSet, Source, SourceFile, UserFacts, WindowState};
use serde_json::{Value, json};

use crate::Outcome;

/// `revokd replay`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Rule files, or directories whose *.yaml and *.yml files are read (list files they name
    /// are read too).
    #[arg(long, required = true, num_args = 1..)]
    rules: Vec<PathBuf>,
    /// Recorded Graph responses: list pages (`{"value": [...]}`) or JSON lines of records or
    /// pages.
    #[arg(long, required = true, num_args = 1..)]
    input: Vec<PathBuf>,
    /// The feed the input came from; when omitted, taken from each page's `@odata.context` or
    /// guessed from each record's fields.
    #[arg(long, value_enum)]
    source: Option<FeedArg>,
    /// Users' directory attributes for `user.*`: a list page or JSON lines of user objects
    /// (`id`, `userPrincipalName`, `department`, `jobTitle`, `accountEnabled`, `userType`,
    /// `onPremisesSyncEnabled`, and `groups` as a list of names).
    #[arg(long)]
    users: Option<PathBuf>,
    /// One JSON object per decision instead of a table.
    #[arg(long)]
    json: bool,
}

/// The feeds, as `--source` names them; the rule files' spellings (`sign_ins`) work too.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum FeedArg {
    #[value(alias = "risky_users")]
    RiskyUsers,
    #[value(alias = "risk_detections")]
    RiskDetections,
    #[value(alias = "sign_ins")]
    SignIns,
    #[value(alias = "post_containment")]
    PostContainment,
}

impl From<FeedArg> for Source {
    fn from(f: FeedArg) -> Source {
        match f {
            FeedArg::RiskyUsers => Source::RiskyUsers,
            FeedArg::RiskDetections => Source::RiskDetections,
            FeedArg::SignIns => Source::SignIns,
            FeedArg::PostContainment => Source::PostContainment,
        }
    }
}

/// One record read from an input, with where it came from.
struct Recorded {
    record: OwnedRecord,
    /// `file:line` of the record (the line of the page for a page).
    place: String,
}

/// Runs `revokd replay`.
pub fn run(args: ReplayArgs) -> anyhow::Result<Outcome> {
    let set = match load_rules(&args.rules)? {
        Ok(set) => set,
        Err(outcome) => return Ok(outcome),
    };
    let users = match &args.users {
        Some(path) => read_users(path)?,
        None => Users::default(),
    };
    let mut records = Vec::new();
    let mut rejected = 0usize;
    for path in &args.input {
        read_input(
            path,
            args.source.map(Source::from),
            &mut records,
            &mut rejected,
        )?;
    }
    // Oldest first, as the daemon feeds its windows; a stable sort keeps ties in input order.
    records.sort_by_key(|r| r.record.time().unwrap_or(DateTime::<Utc>::MIN_UTC));

    let mut windows = WindowState::new();
    let mut decisions = 0usize;
    let mut suppressed = 0usize;
    let mut out = String::new();
    if !args.json {
        out.push_str(&format!(
            "{:<20}  {:<28}  {:<24}  {:<7}  {:<32}  {}\n",
            "TIME", "RULE", "DECISION", "MODE", "USER", "RECORD"
        ));
    }
    for r in &records {
        let record = r.record.as_record();
        let facts = users.find(&record);
        for m in set.evaluate_with(&record, facts, &mut windows) {
            decisions += 1;
            let decision = match &m.suppressed_by {
                Some(e) => {
                    suppressed += 1;
                    format!("suppressed ({e})")
                }
                None => "match".to_string(),
            };
            let time = r.record.time().map_or_else(
                || "-".to_string(),
                |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
            );
            let user = record
                .user_principal_name()
                .or_else(|| record.user_id())
                .unwrap_or("-");
            let mode = m.rule.mode.as_str();
            if args.json {
                let line = json!({
                    "time": time,
                    "source": record.source().as_str(),
                    "record_id": r.record.id(),
                    "input": r.place,
                    "user_id": record.user_id(),
                    "user_principal_name": record.user_principal_name(),
                    "rule_id": m.rule.id,
                    "mode": mode,
                    "decision": if m.suppressed_by.is_some() { "suppressed" } else { "match" },
                    "suppressed_by": m.suppressed_by,
                    "explanation": m.explanation,
                });
                let _ = writeln!(out, "{line}");
            } else {
                let _ = writeln!(
                    out,
                    "{time:<20}  {:<28}  {decision:<24}  {mode:<7}  {user:<32}  {}/{}",
                    m.rule.id,
                    record.source().as_str(),
                    r.record.id()
                );
                let _ = writeln!(out, "    {}", m.explanation.summary);
            }
        }
    }
    print!("{out}");
    let summary = format!(
        "replayed {} record(s) from {} file(s) against {} rule(s): {decisions} decision(s), {suppressed} suppressed; {rejected} record(s) rejected",
        records.len(),
        args.input.len(),
        set.rules().iter().filter(|r| r.enabled).count(),
    );
    // With --json, stdout stays pure JSON lines.
    if args.json {
        eprintln!("{summary}");
    } else {
        println!("{summary}");
    }
    Ok(Outcome::Success)
}

/// Reads and compiles rule files and the list files they name; prints problems as
/// `file:line:col: message` and yields `BadConfig` when there are any.
fn load_rules(paths: &[PathBuf]) -> anyhow::Result<Result<RuleSet, Outcome>> {
    let mut files = Vec::new();
    for path in paths {
        for file in expand(path)? {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read rule file {}", file.display()))?;
            files.push(SourceFile {
                origin: file.display().to_string(),
                text,
            });
        }
    }
    if files.is_empty() {
        eprintln!("no rule files found in {}", display_all(paths));
        return Ok(Err(Outcome::BadConfig));
    }
    for list in rules::required_files(&files) {
        // A missing list file is reported by `compile`, at the `file:` that names it.
        if let Ok(text) = std::fs::read_to_string(&list) {
            files.push(SourceFile { origin: list, text });
        }
    }
    match rules::compile(&files) {
        Ok(set) => Ok(Ok(set)),
        Err(diagnostics) => {
            for d in &diagnostics.0 {
                eprintln!("{d}");
            }
            eprintln!(
                "{} error(s) in the rules; nothing was replayed",
                diagnostics.0.len()
            );
            Ok(Err(Outcome::BadConfig))
        }
    }
}

/// A file as itself; a directory as its *.yaml and *.yml files, sorted.
fn expand(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot list {}", path.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    Ok(files)
}

fn display_all(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The JSON values of an input file, each with its 1-based line: the whole file when it is
/// one JSON document, else one per non-empty line.
fn json_values(path: &Path) -> anyhow::Result<Vec<(usize, Value)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    if let Ok(value) = serde_json::from_str::<Value>(&text) {
        return Ok(vec![(1, value)]);
    }
    let mut values = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value = serde_json::from_str(line).with_context(|| {
            format!(
                "{}:{}: neither a JSON document nor JSON lines",
                path.display(),
                i + 1
            )
        })?;
        values.push((i + 1, value));
    }
    Ok(values)
}

/// The records of a value: a page's `value` list (with the page's `@odata.context`), or the
/// value itself.
fn records_of(value: Value) -> (Option<Source>, Vec<Value>) {
    match value {
        Value::Object(mut page) if page.get("value").is_some_and(Value::is_array) => {
            let source = page
                .get("@odata.context")
                .and_then(Value::as_str)
                .and_then(rules::source_of_context);
            let records = match page.remove("value") {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            };
            (source, records)
        }
        other => (None, vec![other]),
    }
}

fn read_input(
    path: &Path,
    forced: Option<Source>,
    records: &mut Vec<Recorded>,
    rejected: &mut usize,
) -> anyhow::Result<()> {
    for (line, value) in json_values(path)? {
        let (page_source, items) = records_of(value);
        for item in items {
            let place = format!("{}:{line}", path.display());
            let Some(source) = forced
                .or(page_source)
                .or_else(|| rules::detect_source(&item))
            else {
                eprintln!("{place}: cannot tell which feed this record is from; pass --source");
                *rejected += 1;
                continue;
            };
            match OwnedRecord::from_json(source, item) {
                Ok(record) => records.push(Recorded { record, place }),
                Err(e) => {
                    eprintln!("{place}: not a {} record: {e}", source.as_str());
                    *rejected += 1;
                }
            }
        }
    }
    Ok(())
}

/// Directory attributes by user id and by lower-cased UPN.
#[derive(Default)]
struct Users {
    by_key: HashMap<String, usize>,
    facts: Vec<UserFacts>,
}

impl Users {
    fn find(&self, record: &rules::Record<'_>) -> Option<&UserFacts> {
        let by_id = record.user_id().and_then(|id| self.by_key.get(id));
        let by_upn = || {
            record
                .user_principal_name()
                .and_then(|upn| self.by_key.get(&upn.to_lowercase()))
        };
        by_id.or_else(by_upn).and_then(|i| self.facts.get(*i))
    }
}

fn read_users(path: &Path) -> anyhow::Result<Users> {
    let mut users = Users::default();
    for (line, value) in json_values(path)? {
        for item in records_of(value).1 {
            let groups = item.get("groups").and_then(Value::as_array).map(|g| {
                g.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            });
            let user: graph::models::User = serde_json::from_value(item)
                .with_context(|| format!("{}:{line}: not a user object", path.display()))?;
            let index = users.facts.len();
            users.facts.push(UserFacts::from_user(&user, groups));
            users.by_key.insert(user.id.clone(), index);
            if let Some(upn) = &user.user_principal_name {
                users.by_key.insert(upn.to_lowercase(), index);
            }
        }
    }
    Ok(users)
}

/// Runs the test cases of every rule (`revokd check --test`): prints each failure as
/// `file:line:col: ...` and a count; `true` when all passed.
pub fn run_rule_tests(set: &RuleSet) -> bool {
    let outcomes = set.run_tests();
    let failed = outcomes.iter().filter(|o| !o.passed).count();
    for o in outcomes.iter().filter(|o| !o.passed) {
        println!("{o}");
    }
    let untested: Vec<&str> = set
        .rules()
        .iter()
        .filter(|r| r.test_count() == 0)
        .map(|r| r.id.as_str())
        .collect();
    if !untested.is_empty() {
        println!("rules without tests: {}", untested.join(", "));
    }
    println!(
        "rule tests: {} passed, {failed} failed",
        outcomes.len() - failed
    );
    failed == 0
}
