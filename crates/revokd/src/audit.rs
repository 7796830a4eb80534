//! `revokd audit`: the investigator's commands over the audit database.
//!
//! `verify` recomputes the hash chain (optionally against a head exported earlier), `head`
//! exports the chain head, `list`, `show`, `export` and `stats` review decisions, actions and
//! Graph calls, and `prune` applies the retention period. Every command but `prune` opens the
//! database read-only, so an investigator never writes to the evidence. Tables are for people;
//! `--json` (and `export --format jsonl`) is for jq and scripts, and stdout carries nothing else.

use std::fmt::Write as _;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand, ValueEnum};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde_json::{Value, json};
use store::{
    ActionStatus, ActionSummary, AuditStats, ChainReport, DecisionMode, DecisionStory, HeadCheck,
    ReviewFilter, Store,
};

use crate::Outcome;

/// The audit database's commands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain and check every row against it; exit 0 when intact, 1 when not
    /// (the first broken link is named).
    Verify {
        #[command(flatten)]
        db: DbArgs,
        /// A head exported earlier with `revokd audit head`: `SEQ:HASH`, or a file holding it
        /// (or the JSON `head` printed). It must still be in the chain.
        #[arg(long, value_name = "SEQ:HASH|FILE")]
        head: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the chain head (seq and hash) as JSON, to store outside the database.
    Head {
        #[command(flatten)]
        db: DbArgs,
    },
    /// List decisions and their actions, oldest first.
    List {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        filter: FilterArgs,
        /// Print the rows as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// The full story of one decision: the record, why the rule matched, every action and
    /// every Graph call, and the audit entries recording them.
    Show {
        /// The decision id (the first column of `revokd audit list`).
        id: i64,
        #[command(flatten)]
        db: DbArgs,
        /// Print the story as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Export decisions: `csv` one row per action (the columns of `list --json`), `json` an
    /// array and `jsonl` one line per decision, each with its full story.
    Export {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        filter: FilterArgs,
        /// Output format.
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Write to this new file (mode 0600) instead of stdout; an existing file is refused.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Count decisions and actions per rule, outcome, mode and hour.
    Stats {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        filter: FilterArgs,
        /// Print the counts as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete rows older than `store.retention` (or `--older-than`), leaving a checkpoint the
    /// chain verifies from. The daemon does this every cycle when `store.retention` is set.
    Prune {
        /// The configuration file; its `store.path` and `store.retention` are used.
        #[arg(long, short)]
        config: PathBuf,
        /// Prune rows older than this instead of `store.retention` (e.g. `30d`); it may not be
        /// shorter than the configuration allows.
        #[arg(long, value_name = "DURATION")]
        older_than: Option<humantime::Duration>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Which database: the file itself, or the `store.path` of a configuration.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct DbArgs {
    /// The audit database file.
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// A configuration file whose `store.path` names the database.
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Which decisions to look at; every filter given narrows the selection.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// The user's object id or sign-in name (any case).
    #[arg(long)]
    user: Option<String>,
    /// The rule id.
    #[arg(long)]
    rule: Option<String>,
    /// The tenant id.
    #[arg(long)]
    tenant: Option<String>,
    /// The decision mode: enforce, dry_run, suppressed, protected, cooldown, held.
    #[arg(long, value_parser = parse_mode)]
    mode: Option<DecisionMode>,
    /// The action's status: pending, in_flight, succeeded, failed, skipped, held.
    #[arg(long, value_parser = parse_outcome)]
    outcome: Option<ActionStatus>,
    /// Decided at or after: RFC 3339 (2026-11-24T10:00:00Z), a date (2026-11-24, UTC) or an
    /// age (24h, 7d).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    since: Option<DateTime<Utc>>,
    /// Decided at or before: as `--since`.
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    until: Option<DateTime<Utc>>,
    /// At most this many rows (decisions for `export`).
    #[arg(long)]
    limit: Option<u32>,
}

impl FilterArgs {
    fn to_filter(&self) -> ReviewFilter {
        ReviewFilter {
            user: self.user.clone(),
            rule: self.rule.clone(),
            tenant: self.tenant.clone(),
            mode: self.mode,
            outcome: self.outcome,
            since: self.since,
            until: self.until,
            limit: self.limit,
        }
    }
}

/// `revokd audit export --format`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
    Jsonl,
}

fn parse_mode(text: &str) -> Result<DecisionMode, String> {
    DecisionMode::parse(text).ok_or_else(|| {
        let all: Vec<_> = DecisionMode::ALL.iter().map(|m| m.as_str()).collect();
        format!("unknown mode `{text}`; one of {}", all.join(", "))
    })
}

fn parse_outcome(text: &str) -> Result<ActionStatus, String> {
    ActionStatus::parse(text).ok_or_else(|| {
        let all: Vec<_> = ActionStatus::ALL.iter().map(|s| s.as_str()).collect();
        format!("unknown outcome `{text}`; one of {}", all.join(", "))
    })
}

/// An instant: RFC 3339, a UTC date, or an age counted back from now.
fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    let age = humantime::parse_duration(text).map_err(|_| {
        format!("`{text}` is not a time: use RFC 3339 (2026-11-24T10:00:00Z), a date (2026-11-24) or an age (24h, 7d)")
    })?;
    chrono::Duration::from_std(age)
        .ok()
        .and_then(|age| Utc::now().checked_sub_signed(age))
        .ok_or_else(|| format!("`{text}` reaches back too far"))
}

/// Runs one audit command.
pub async fn run(command: AuditCommand) -> anyhow::Result<Outcome> {
    match command {
        AuditCommand::Verify { db, head, json } => {
            let head = match head.as_deref().map(read_head).transpose() {
                Ok(head) => head,
                Err(e) => {
                    eprintln!("error: --head: {e:#}");
                    return Ok(Outcome::BadConfig);
                }
            };
            let (path, store) = match open(&db).await? {
                Ok(opened) => opened,
                Err(outcome) => return Ok(outcome),
            };
            verify(&path, &store, head, json).await
        }
        AuditCommand::Head { db } => {
            let (path, store) = match open(&db).await? {
                Ok(opened) => opened,
                Err(outcome) => return Ok(outcome),
            };
            let Some((seq, hash)) = store.chain_head().await? else {
                bail!(
                    "{}: the audit log is empty: there is no head to export",
                    path.display()
                );
            };
            print_json(&json!({
                "database": path,
                "seq": seq,
                "hash": hash,
                "exported_at": Utc::now(),
            }))?;
            Ok(Outcome::Success)
        }
        AuditCommand::List { db, filter, json } => {
            let (_, store) = match open(&db).await? {
                Ok(opened) => opened,
                Err(outcome) => return Ok(outcome),
            };
            let rows = store.list_actions(&filter.to_filter()).await?;
            if json {
                print_json(&rows)?;
            } else if rows.is_empty() {
                println!("no decisions match");
            } else {
                println!("{}", list_table(&rows));
            }
            Ok(Outcome::Success)
        }
        AuditCommand::Show { id, db, json } => {
            let (path, store) = match open(&db).await? {
                Ok(opened) => opened,
                Err(outcome) => return Ok(outcome),
            };
            let Some(story) = store.decision_story(id).await? else {
                eprintln!("{}: no decision {id}", path.display());
                return Ok(Outcome::Failure);
            };
            if json {
                print_json(&story)?;
            } else {
                print!("{}", story_text(&story));
            }
            Ok(Outcome::Success)
        }
        AuditCommand::Export {
            db,
            filter,
            format,
            output,
        } => {
            let (_, store) = match open(&db).await? {
                Ok(opened) => opened,
                Err(outcome) => return Ok(outcome),
            };
            export(&store, &filter.to_filter(), format, output.as_deref()).await?;
            Ok(Outcome::Success)
        }
        AuditCommand::Stats { db, filter, json } => {
            let (_, store) = match open(&db).await? {
                Ok(opened) => opened,
                Err(outcome) => return Ok(outcome),
            };
            let stats = store.stats(&filter.to_filter()).await?;
            if json {
                print_json(&stats)?;
            } else {
                print!("{}", stats_text(&stats));
            }
            Ok(Outcome::Success)
        }
        AuditCommand::Prune {
            config,
            older_than,
            json,
        } => prune(&config, older_than.map(Into::into), json).await,
    }
}

/// The database named by `--db`, or by `store.path` of `--config`, opened read-only; a bad
/// configuration is reported and becomes its outcome.
async fn open(db: &DbArgs) -> anyhow::Result<Result<(PathBuf, Store), Outcome>> {
    let path = match (&db.db, &db.config) {
        (Some(path), _) => path.clone(),
        (None, Some(config)) => match crate::load(config) {
            Ok(loaded) => loaded.store_path(),
            Err(outcome) => return Ok(Err(outcome)),
        },
        // clap requires one of the two.
        (None, None) => bail!("give --db FILE or --config FILE"),
    };
    let store = Store::open_read_only(&path).await?;
    Ok(Ok((path, store)))
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// A head given as `SEQ:HASH`, or a file holding that or the JSON of `revokd audit head`.
fn read_head(arg: &str) -> anyhow::Result<(i64, String)> {
    if let Some(head) = parse_head_text(arg) {
        return Ok(head);
    }
    let text = std::fs::read_to_string(arg)
        .with_context(|| format!("`{arg}` is neither SEQ:HASH nor a readable file"))?;
    if let Some(head) = parse_head_text(text.trim()) {
        return Ok(head);
    }
    let value: Value = serde_json::from_str(&text)
        .with_context(|| format!("{arg}: neither SEQ:HASH nor the JSON of `revokd audit head`"))?;
    match (value["seq"].as_i64(), value["hash"].as_str()) {
        (Some(seq), Some(hash)) if is_hash(hash) => Ok((seq, hash.to_string())),
        _ => bail!("{arg}: the JSON has no `seq` number and 64-hex-digit `hash`"),
    }
}

fn parse_head_text(text: &str) -> Option<(i64, String)> {
    let (seq, hash) = text.split_once(':')?;
    let seq = seq.trim().parse().ok()?;
    let hash = hash.trim().to_ascii_lowercase();
    is_hash(&hash).then_some((seq, hash))
}

fn is_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn verify(
    path: &Path,
    store: &Store,
    head: Option<(i64, String)>,
    json: bool,
) -> anyhow::Result<Outcome> {
    let report = store.verify_chain().await?;
    let last = store.chain_head().await?;
    let recorded = match &head {
        Some((seq, hash)) => Some(store.check_head(*seq, hash).await?),
        None => None,
    };
    let intact = report.is_intact() && recorded.as_ref().is_none_or(HeadCheck::is_present);
    if json {
        print_json(&json!({
            "database": path,
            "intact": intact,
            "rows": report.rows,
            "head": last.as_ref().map(|(seq, hash)| json!({"seq": seq, "hash": hash})),
            "checkpoint": report.checkpoint,
            "first_broken": report.first_broken.as_ref()
                .map(|(seq, problem)| json!({"seq": seq, "problem": problem})),
            "recorded_head": head.as_ref().zip(recorded.as_ref()).map(|((seq, hash), check)| {
                json!({"seq": seq, "hash": hash, "check": check})
            }),
        }))?;
    } else {
        print!(
            "{}",
            verify_text(
                path,
                &report,
                last.as_ref(),
                head.as_ref().zip(recorded.as_ref())
            )
        );
    }
    Ok(if intact {
        Outcome::Success
    } else {
        Outcome::Failure
    })
}

fn verify_text(
    path: &Path,
    report: &ChainReport,
    last: Option<&(i64, String)>,
    recorded: Option<(&(i64, String), &HeadCheck)>,
) -> String {
    let mut out = String::new();
    match &report.first_broken {
        None => {
            let _ = writeln!(out, "audit database {}: intact", path.display());
        }
        Some((0, problem)) => {
            let _ = writeln!(out, "audit database {}: BROKEN: {problem}", path.display());
        }
        Some((seq, problem)) => {
            let _ = writeln!(
                out,
                "audit database {}: BROKEN at audit entry {seq}: {problem}",
                path.display()
            );
        }
    }
    let first = report.checkpoint.as_ref().map_or(1, |c| c.through_seq);
    match last {
        Some((seq, hash)) => {
            let _ = writeln!(out, "  entries  {first}..{seq} ({} rows)", report.rows);
            let _ = writeln!(out, "  head     {seq}:{hash}");
        }
        None => {
            let _ = writeln!(out, "  entries  none");
        }
    }
    if let Some(c) = &report.checkpoint {
        let _ = writeln!(
            out,
            "  pruned   entries {}..{} on {} (rows older than {}): {} decisions, {} actions, \
             {} attempts, {} daemon events",
            c.from_seq,
            c.through_seq,
            c.pruned_at.format("%Y-%m-%d %H:%M:%S UTC"),
            c.before.format("%Y-%m-%d %H:%M:%S UTC"),
            c.removed.decisions,
            c.removed.actions,
            c.removed.attempts,
            c.removed.daemon_events
        );
    }
    if let Some(((seq, hash), check)) = recorded {
        let verdict = match check {
            HeadCheck::Present => "present: nothing up to it was rewritten or cut off".to_string(),
            HeadCheck::Differs { stored } => {
                format!("DIFFERS: entry {seq} now has hash {stored}: the log was rewritten")
            }
            HeadCheck::Missing { last_seq } => format!(
                "MISSING: the log ends at {}: it was cut short",
                last_seq.map_or_else(|| "nothing".to_string(), |s| format!("entry {s}"))
            ),
            HeadCheck::Pruned { checkpoint_seq } => format!(
                "CANNOT BE CHECKED: retention pruned it (the log starts at checkpoint \
                 {checkpoint_seq}); record heads more often than store.retention"
            ),
        };
        let _ = writeln!(out, "  recorded head {seq}:{hash}: {verdict}");
    }
    out
}

/// `2026-11-24T10:31:05.123456789Z` as `2026-11-24 10:31:05`: a terminal column, in UTC.
fn short_time(stored: &str) -> String {
    stored.get(..19).unwrap_or(stored).replacen('T', " ", 1)
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn table() -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    table
}

fn user(upn: Option<&str>, id: &str) -> String {
    upn.unwrap_or(id).to_string()
}

fn list_table(rows: &[ActionSummary]) -> Table {
    let several_tenants = rows.iter().any(|r| r.tenant_id != rows[0].tenant_id);
    let mut header = vec!["id", "decided (UTC)"];
    if several_tenants {
        header.push("tenant");
    }
    header.extend(["user", "rule", "mode", "action", "outcome", "HTTP", "calls"]);
    let mut t = table();
    t.set_header(header);
    for r in rows {
        let mut cells = vec![r.decision_id.to_string(), short_time(&r.decided_at)];
        if several_tenants {
            cells.push(r.tenant_id.clone());
        }
        cells.extend([
            user(r.user_principal_name.as_deref(), &r.user_id),
            r.rule_id.clone(),
            r.mode.clone(),
            opt(r.action.as_deref()),
            opt(r.status.as_deref()),
            opt(r.last_http_status),
            opt(r.attempts),
        ]);
        t.add_row(cells);
    }
    t
}

fn story_text(story: &DecisionStory) -> String {
    let d = &story.decision;
    let mut out = String::new();
    let _ = writeln!(out, "Decision {}, {} UTC", d.id, short_time(&d.decided_at));
    let upn = d
        .user_principal_name
        .as_deref()
        .map_or_else(String::new, |u| format!("{u} "));
    for (label, value) in [
        ("tenant", d.tenant_id.clone()),
        ("user", format!("{upn}({})", d.user_id)),
        ("rule", format!("{} (rule hash {})", d.rule_id, d.rule_hash)),
        ("source", d.source.clone()),
        ("trigger", d.trigger_key.clone()),
        ("mode", d.mode.clone()),
        ("reason", opt(d.reason.as_deref())),
        ("operator", opt(d.operator.as_deref())),
    ] {
        let _ = writeln!(out, "  {label:<9} {value}");
    }
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    let _ = writeln!(out, "\nEvidence: the record as received from Graph");
    let _ = writeln!(out, "{}", pretty(&d.record));
    let _ = writeln!(out, "\nWhy the rule matched");
    let _ = writeln!(out, "{}", pretty(&d.explanation));
    let _ = writeln!(out, "\nActions");
    if story.actions.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for a in &story.actions {
        let ended = a
            .completed_at
            .as_deref()
            .map_or_else(String::new, |at| format!(" at {} UTC", short_time(at)));
        let detail = a
            .detail
            .as_deref()
            .map_or_else(String::new, |d| format!(" ({d})"));
        let _ = writeln!(
            out,
            "  action {}: {} {}{ended}{detail}",
            a.id, a.kind, a.status
        );
        if a.attempts.is_empty() {
            continue;
        }
        let mut t = table();
        t.set_header([
            "call",
            "started (UTC)",
            "endpoint",
            "HTTP",
            "Graph error",
            "ms",
            "request-id",
            "client-request-id",
            "retry because",
        ]);
        for c in &a.attempts {
            t.add_row([
                c.attempt_no.to_string(),
                short_time(&c.started_at),
                c.endpoint.clone(),
                opt(c.http_status),
                opt(c.graph_error_code.as_deref()),
                opt(c.latency_ms),
                opt(c.request_id.as_deref()),
                c.client_request_id.clone(),
                opt(c.retry_reason.as_deref()),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }
    let _ = writeln!(out, "\nAudit entries");
    let mut t = table();
    t.set_header(["seq", "written (UTC)", "kind", "action", "call", "hash"]);
    for e in &story.audit_entries {
        t.add_row([
            e.seq.to_string(),
            short_time(&e.at),
            e.kind.clone(),
            opt(e.action_id),
            opt(e.attempt_id),
            e.hash.clone(),
        ]);
    }
    let _ = writeln!(out, "{t}");
    out
}

fn stats_text(stats: &AuditStats) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} decisions; {} users contained (an action on the tenant succeeded)",
        stats.decisions, stats.contained_users
    );
    let mut t = table();
    t.set_header([
        "rule",
        "decisions",
        "enforced",
        "succeeded",
        "failed",
        "skipped",
        "held",
        "open",
    ]);
    for r in &stats.by_rule {
        t.add_row([
            r.rule_id.clone(),
            r.decisions.to_string(),
            r.enforced.to_string(),
            r.succeeded.to_string(),
            r.failed.to_string(),
            r.skipped.to_string(),
            r.held.to_string(),
            r.open.to_string(),
        ]);
    }
    let _ = writeln!(out, "\nPer rule\n{t}");
    let mut t = table();
    t.set_header(["outcome", "actions"]);
    for o in &stats.by_outcome {
        t.add_row([o.status.clone(), o.actions.to_string()]);
    }
    let _ = writeln!(out, "\nPer outcome\n{t}");
    let mut t = table();
    t.set_header(["mode", "decisions"]);
    for m in &stats.by_mode {
        t.add_row([m.mode.clone(), m.decisions.to_string()]);
    }
    let _ = writeln!(out, "\nPer mode\n{t}");
    let mut t = table();
    t.set_header(["hour (UTC)", "decisions", "succeeded", "failed"]);
    for h in &stats.by_hour {
        t.add_row([
            h.hour.clone(),
            h.decisions.to_string(),
            h.succeeded.to_string(),
            h.failed.to_string(),
        ]);
    }
    let _ = writeln!(out, "\nPer hour\n{t}");
    out
}

/// The CSV columns, in order: the fields of `list --json`.
const CSV_COLUMNS: [&str; 24] = [
    "decision_id",
    "decided_at",
    "tenant_id",
    "source",
    "user_id",
    "user_principal_name",
    "rule_id",
    "rule_hash",
    "mode",
    "reason",
    "operator",
    "trigger_key",
    "action_id",
    "action",
    "status",
    "detail",
    "attempts",
    "last_http_status",
    "last_graph_error_code",
    "last_request_id",
    "last_client_request_id",
    "completed_at",
    "record_json",
    "explanation_json",
];

fn csv_cells(r: &ActionSummary) -> [String; 24] {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    let n = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    [
        r.decision_id.to_string(),
        r.decided_at.clone(),
        r.tenant_id.clone(),
        r.source.clone(),
        r.user_id.clone(),
        o(&r.user_principal_name),
        r.rule_id.clone(),
        r.rule_hash.clone(),
        r.mode.clone(),
        o(&r.reason),
        o(&r.operator),
        r.trigger_key.clone(),
        n(r.action_id),
        o(&r.action),
        o(&r.status),
        o(&r.detail),
        n(r.attempts),
        n(r.last_http_status),
        o(&r.last_graph_error_code),
        o(&r.last_request_id),
        o(&r.last_client_request_id),
        o(&r.completed_at),
        r.record_json.clone(),
        r.explanation_json.clone(),
    ]
}

/// One CSV line (RFC 4180): fields with a comma, quote or line break are quoted, quotes
/// doubled. Values are written as stored, never altered.
fn csv_line(cells: &[impl AsRef<str>]) -> String {
    let mut line = cells
        .iter()
        .map(|c| {
            let c = c.as_ref();
            if c.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

async fn export(
    store: &Store,
    filter: &ReviewFilter,
    format: ExportFormat,
    output: Option<&Path>,
) -> anyhow::Result<()> {
    let mut sink: Box<dyn Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    match format {
        ExportFormat::Csv => {
            sink.write_all(csv_line(&CSV_COLUMNS).as_bytes())?;
            for row in store.list_actions(filter).await? {
                sink.write_all(csv_line(&csv_cells(&row)).as_bytes())?;
            }
        }
        ExportFormat::Json => {
            serde_json::to_writer_pretty(&mut sink, &store.decision_stories(filter).await?)?;
            writeln!(sink)?;
        }
        ExportFormat::Jsonl => {
            for story in store.decision_stories(filter).await? {
                serde_json::to_writer(&mut sink, &story)?;
                writeln!(sink)?;
            }
        }
    }
    sink.flush()?;
    Ok(())
}

async fn prune(
    config: &Path,
    older_than: Option<std::time::Duration>,
    json: bool,
) -> anyhow::Result<Outcome> {
    let loaded = match crate::load(config) {
        Ok(loaded) => loaded,
        Err(outcome) => return Ok(outcome),
    };
    let Some(retention) = older_than.or(loaded.config.store.retention) else {
        eprintln!(
            "{}: store.retention is not set and no --older-than was given: nothing to prune",
            loaded.origin
        );
        return Ok(Outcome::BadConfig);
    };
    let shortest = engine::config::min_retention(&loaded.config, &loaded.rules);
    if retention < shortest {
        eprintln!(
            "--older-than {} is shorter than {}, the longest rule cooldown, breaker window or \
             feed lookback/overlap of {}: decisions still needed would be pruned",
            humantime::format_duration(retention),
            humantime::format_duration(shortest),
            loaded.origin
        );
        return Ok(Outcome::BadConfig);
    }
    let store = Store::open(&loaded.store_path()).await?;
    let report = store.prune_older_than(retention).await?;
    store.close().await;
    if json {
        print_json(&report)?;
    } else {
        let r = &report.removed;
        println!(
            "pruned rows older than {}: {} decisions, {} actions, {} attempts, {} daemon events \
             ({} audit entries)",
            humantime::format_duration(retention),
            r.decisions,
            r.actions,
            r.attempts,
            r.daemon_events,
            r.entries
        );
        if let Some(c) = &report.checkpoint {
            println!(
                "the audit log now starts at checkpoint {} ({})",
                c.through_seq, c.through_hash
            );
        }
        if let Some(why) = &report.blocked_by {
            println!("older rows remain: {why}");
        }
    }
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_what_needs_it_and_keeps_values_as_stored() {
        assert_eq!(csv_line(&["a", "b c", ""]), "a,b c,\r\n");
        assert_eq!(
            csv_line(&[r#"{"id":"u1","x":1}"#, "line\nbreak", "=cmd"]),
            "\"{\"\"id\"\":\"\"u1\"\",\"\"x\"\":1}\",\"line\nbreak\",=cmd\r\n"
        );
    }

    #[test]
    fn times_are_rfc3339_dates_or_ages() {
        assert_eq!(
            parse_time("2026-11-24T10:00:00+01:00").expect("rfc3339"),
            DateTime::parse_from_rfc3339("2026-11-24T09:00:00Z").expect("utc")
        );
        assert_eq!(
            parse_time("2026-11-24").expect("date"),
            DateTime::parse_from_rfc3339("2026-11-24T00:00:00Z").expect("utc")
        );
        let day_ago = parse_time("24h").expect("age");
        let expected = Utc::now() - chrono::Duration::hours(24);
        assert!((expected - day_ago).num_seconds().abs() < 5, "{day_ago}");
        let err = parse_time("yesterday").expect_err("not a time");
        assert!(err.contains("RFC 3339"), "{err}");
    }

    #[test]
    fn heads_parse_from_text_and_refuse_garbage() {
        let hash = "ab".repeat(32);
        assert_eq!(
            parse_head_text(&format!("42:{hash}")),
            Some((42, hash.clone()))
        );
        assert_eq!(
            parse_head_text(&format!("42:{}", hash.to_uppercase())),
            Some((42, hash.clone()))
        );
        assert_eq!(parse_head_text("42:abc"), None);
        assert_eq!(parse_head_text(&format!("x:{hash}")), None);
        assert!(read_head("/nonexistent/head.json").is_err());
    }

    #[test]
    fn modes_and_outcomes_list_the_valid_values() {
        assert_eq!(parse_mode("suppressed"), Ok(DecisionMode::Suppressed));
        let err = parse_mode("enforced").expect_err("unknown");
        assert!(err.contains("enforce, dry_run, suppressed"), "{err}");
        assert_eq!(parse_outcome("held"), Ok(ActionStatus::Held));
        assert!(parse_outcome("done").is_err());
    }
}
