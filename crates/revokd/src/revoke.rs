//! `revokd revoke`: contain users now, by hand: one user, a list from a file, or every user of
//! a tenant. Everything goes through the daemon's safety gate, blast-radius breaker, quota
//! limiter, executor and audit (see `engine::manual`); this module parses the command line and
//! the users file, shows progress, and prints what happened.
//!
//! Exit codes: 0 when every requested user was contained or deliberately excluded (protected,
//! dry-run); 1 when a line of the users file was bad, a lookup or an action failed, a revoke
//! could not be confirmed or reached a guest, or the breaker held actions; 2 for a bad config
//! or command line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use engine::manual::{ManualProgress, ManualReport, ManualRequest, Targets, UserRef};
use store::{ActionStatus, DecisionMode};
use tokio_util::sync::CancellationToken;

use crate::Outcome;

/// Arguments of `revokd revoke`.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("who")
        .required(true)
        .multiple(true)
        .args(["users", "users_file", "all_users"])
))]
pub struct RevokeArgs {
    /// The configuration file.
    #[arg(long, short)]
    config: PathBuf,
    /// A user to contain: user principal name or object id (repeatable).
    #[arg(long = "user", value_name = "UPN_OR_ID")]
    users: Vec<String>,
    /// A file of users: CSV with a `userPrincipalName` or `id` column, or one UPN or id per
    /// line. Blank lines and lines starting with `#` are ignored; any other bad line is
    /// reported with its number.
    #[arg(long, value_name = "FILE")]
    users_file: Option<PathBuf>,
    /// Every user of the tenant, for a tenant-wide compromise. Needs --confirm-tenant.
    #[arg(long, requires = "confirm_tenant", conflicts_with_all = ["users", "users_file"])]
    all_users: bool,
    /// The tenant id, typed out again, to confirm --all-users.
    #[arg(long, value_name = "TENANT_ID")]
    confirm_tenant: Option<String>,
    /// Why: recorded with every decision.
    #[arg(long)]
    reason: String,
    /// Who asks: recorded with every decision. Defaults to $USER.
    #[arg(long, env = "USER", value_name = "NAME")]
    operator: Option<String>,
    /// The tenant (id or configured name); needed only when several are configured.
    #[arg(long)]
    tenant: Option<String>,
    /// Raise (or lower) the blast-radius breaker's limit for this run only.
    #[arg(long, value_name = "N")]
    max_actions: Option<u32>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// One line of a users file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Reads a users file: a CSV whose header names a `userPrincipalName` or `id` column, or one
/// UPN or object id per line. Returns every usable reference (with `origin:line`) and every bad
/// line; none is dropped silently. Blank lines and `#` comments are not data.
pub fn parse_users(text: &str, origin: &str) -> (Vec<UserRef>, Vec<BadLine>) {
    let mut refs = Vec::new();
    let mut bad = Vec::new();
    let mut columns: Option<Columns> = None;
    let mut first = true;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if first {
            first = false;
            if let Some(found) = Columns::from_header(trimmed) {
                columns = Some(found);
                continue;
            }
        }
        let value = match &columns {
            Some(cols) => match cols.pick(trimmed) {
                Ok(v) => v,
                Err(message) => {
                    bad.push(BadLine { line, message });
                    continue;
                }
            },
            None if trimmed.contains(',') || trimmed.contains(';') || trimmed.contains('\t') => {
                bad.push(BadLine {
                    line,
                    message: format!(
                        "`{trimmed}` has several fields, but the file has no header naming a userPrincipalName or id column"
                    ),
                });
                continue;
            }
            None => trimmed.to_string(),
        };
        match check_reference(&value) {
            Ok(()) => refs.push(UserRef {
                value,
                origin: format!("{origin}:{line}"),
            }),
            Err(message) => bad.push(BadLine { line, message }),
        }
    }
    (refs, bad)
}

/// Where the user is in each CSV row.
#[derive(Debug, Clone)]
struct Columns {
    id: Option<usize>,
    upn: Option<usize>,
    width: usize,
}

impl Columns {
    fn from_header(line: &str) -> Option<Self> {
        let fields = split_csv(line).ok()?;
        let find = |names: &[&str]| {
            fields
                .iter()
                .position(|f| names.iter().any(|n| f.trim().eq_ignore_ascii_case(n)))
        };
        let id = find(&["id", "objectId", "userId"]);
        let upn = find(&["userPrincipalName", "upn"]);
        (id.is_some() || upn.is_some()).then_some(Self {
            id,
            upn,
            width: fields.len(),
        })
    }

    /// The id when the row has one, else the UPN.
    fn pick(&self, line: &str) -> Result<String, String> {
        let fields = split_csv(line)?;
        if fields.len() != self.width {
            return Err(format!(
                "expected {} fields as in the header, found {}",
                self.width,
                fields.len()
            ));
        }
        let get = |i: Option<usize>| {
            i.and_then(|i| fields.get(i))
                .map(|f| f.trim().to_string())
                .filter(|f| !f.is_empty())
        };
        get(self.id)
            .or_else(|| get(self.upn))
            .ok_or_else(|| "the userPrincipalName and id fields are empty".to_string())
    }
}

/// Splits one CSV line (RFC 4180 quoting, comma-separated).
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".to_string());
    }
    fields.push(field);
    Ok(fields)
}

/// An object id (GUID) or a user principal name (`local@domain`, guests' `#EXT#` form too).
fn check_reference(value: &str) -> Result<(), String> {
    if is_guid(value) {
        return Ok(());
    }
    let usable = match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && value
                    .chars()
                    .all(|c| !c.is_whitespace() && !c.is_control() && !"/\\?\"<>".contains(c))
        }
        None => false,
    };
    if usable {
        Ok(())
    } else {
        Err(format!(
            "`{value}` is neither an object id (GUID) nor a user principal name"
        ))
    }
}

fn is_guid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Runs `revokd revoke`.
pub async fn run(args: RevokeArgs) -> anyhow::Result<Outcome> {
    let Some(operator) = args.operator.clone().filter(|o| !o.trim().is_empty()) else {
        eprintln!("error: name yourself with --operator (no $USER is set)");
        return Ok(Outcome::BadConfig);
    };
    let mut refs: Vec<UserRef> = args
        .users
        .iter()
        .map(|u| UserRef {
            value: u.trim().to_string(),
            origin: "--user".to_string(),
        })
        .collect();
    let mut bad_lines = 0;
    for r in &refs {
        if let Err(message) = check_reference(&r.value) {
            eprintln!("--user: {message}");
            return Ok(Outcome::BadConfig);
        }
    }
    if let Some(path) = &args.users_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the users file {}", path.display()))?;
        let origin = path.display().to_string();
        let (found, bad) = parse_users(&text, &origin);
        for b in &bad {
            eprintln!("{origin}:{}: {}", b.line, b.message);
        }
        bad_lines = bad.len();
        if found.is_empty() {
            eprintln!("{origin}: no usable user in the file; nothing was done");
            return Ok(Outcome::BadConfig);
        }
        refs.extend(found);
    }
    let loaded = match crate::load(&args.config) {
        Ok(l) => l,
        Err(outcome) => return Ok(outcome),
    };
    let targets = if args.all_users {
        let confirm = args.confirm_tenant.as_deref().unwrap_or_default();
        let matches_config = loaded.config.tenants.iter().any(|t| {
            t.value.tenant_id.eq_ignore_ascii_case(confirm)
                && args.tenant.as_deref().is_none_or(|wanted| {
                    t.value.tenant_id.eq_ignore_ascii_case(wanted)
                        || t.value.name.as_deref() == Some(wanted)
                })
        });
        if !matches_config {
            eprintln!(
                "error: --confirm-tenant {confirm} does not name a configured tenant{}: nothing was done",
                args.tenant
                    .as_deref()
                    .map(|t| format!(" (or not the one given by --tenant {t})"))
                    .unwrap_or_default()
            );
            return Ok(Outcome::BadConfig);
        }
        Targets::AllUsers
    } else {
        Targets::Users(refs)
    };
    let tenant = match (&targets, &args.tenant) {
        (Targets::AllUsers, None) => args.confirm_tenant.clone(),
        _ => args.tenant.clone(),
    };
    let engine = engine::Engine::start(&loaded)
        .await
        .context("cannot start the engine")?;
    if loaded.config.safety.dry_run {
        eprintln!("safety.dry_run is on: decisions are recorded, nothing is actioned");
    }
    let request = ManualRequest {
        tenant: tenant.clone(),
        targets,
        reason: args.reason.clone(),
        operator,
        max_actions: args.max_actions,
    };
    let shutdown = CancellationToken::new();
    let signals = tokio::spawn(crate::cancel_on_signal(shutdown.clone()));
    let progress = Arc::new(ManualProgress::default());
    let display = tokio::spawn(show_progress(
        progress.clone(),
        engine.write_rate(tenant.as_deref()),
    ));
    let result = engine
        .contain_manually(&request, progress.clone(), &shutdown)
        .await;
    display.abort();
    signals.abort();
    let report = match result {
        Ok(report) => report,
        Err(engine::EngineError::Manual(message)) => {
            eprintln!("error: {message}");
            return Ok(Outcome::BadConfig);
        }
        Err(e) => return Err(e.into()),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(summarize(&report, bad_lines))
}

/// Prints what happened, on stderr, and decides the exit status.
fn summarize(report: &ManualReport, bad_lines: usize) -> Outcome {
    let d = &report.drain;
    let held = report.count(DecisionMode::Held);
    let not_recorded = report.not_recorded().count();
    eprintln!(
        "tenant {} run {}: {} requested; {} revoked ({} not confirmed, {} guests not contained), {} failed, {} held by the breaker, {} protected, {} dry-run, {} not recorded{}",
        report.tenant_id,
        report.run_id,
        report.outcomes.len(),
        d.succeeded,
        d.unconfirmed,
        d.guests,
        d.failed,
        held,
        report.count(DecisionMode::Protected),
        report.count(DecisionMode::DryRun),
        not_recorded,
        if bad_lines > 0 {
            format!(", {bad_lines} bad line(s) in the users file")
        } else {
            String::new()
        }
    );
    for o in &report.outcomes {
        let name = o.user_principal_name.as_deref().unwrap_or(&o.user_id);
        let line = match (o.mode, o.status) {
            (None, _) => Some(o.note.clone().unwrap_or_default()),
            (Some(DecisionMode::Protected), _) => Some(format!(
                "excluded: {}",
                o.note.as_deref().unwrap_or("protected principal")
            )),
            (Some(DecisionMode::Held), _) => Some("held by the blast-radius breaker".to_string()),
            (Some(_), Some(ActionStatus::Failed)) => Some(format!(
                "failed: {}",
                o.detail.as_deref().unwrap_or("see the audit")
            )),
            (Some(_), Some(ActionStatus::Succeeded))
                if o.detail
                    .as_deref()
                    .is_some_and(|d| !d.starts_with("verified")) =>
            {
                o.detail.clone()
            }
            _ => None,
        };
        if let Some(line) = line {
            eprintln!("  {} ({name}): {line}", o.origin);
        }
    }
    if held > 0 {
        eprintln!(
            "{held} action(s) held: the blast-radius breaker is open. Review them with `revokd resume --list`, release them with `revokd resume`, or re-run with --max-actions"
        );
    }
    let clean = bad_lines == 0
        && not_recorded == 0
        && held == 0
        && d.failed == 0
        && d.interrupted == 0
        && d.unconfirmed == 0
        && d.guests == 0;
    if clean {
        Outcome::Success
    } else {
        Outcome::Failure
    }
}

/// Prints progress every second on stderr until aborted: lookups, then actions with their rate
/// and an ETA from the directory_write quota.
async fn show_progress(progress: Arc<ManualProgress>, write_rate: Option<f64>) {
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let drain = &progress.drain;
        let total = drain.total.load(Ordering::Relaxed);
        let line = if total == 0 {
            format!(
                "looking users up: {}/{}",
                progress.resolved.load(Ordering::Relaxed),
                progress.to_resolve.load(Ordering::Relaxed)
            )
        } else {
            drain_line(drain, started, write_rate)
        };
        if tty {
            eprint!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
    }
}

/// `done/total (ok, failed), rate/s, ETA` for a drain in progress.
pub fn drain_line(
    drain: &engine::executor::Progress,
    started: Instant,
    write_rate: Option<f64>,
) -> String {
    let total = drain.total.load(Ordering::Relaxed);
    let done = drain.done.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64().max(0.001);
    let rate = done as f64 / elapsed;
    let remaining = total.saturating_sub(done) as f64;
    let eta = match write_rate {
        Some(quota) if quota > 0.0 => format!(
            ", ETA {:.0}s at the directory_write quota of {quota:.1}/s",
            remaining / quota
        ),
        _ => String::new(),
    };
    format!(
        "actions: {done}/{total} done ({} ok, {} failed), {rate:.1}/s{eta}",
        drain.succeeded.load(Ordering::Relaxed),
        drain.failed.load(Ordering::Relaxed),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(refs: &[UserRef]) -> Vec<(&str, &str)> {
        refs.iter()
            .map(|r| (r.value.as_str(), r.origin.as_str()))
            .collect()
    }

    #[test]
    fn one_reference_per_line_with_comments_and_bad_lines() {
        let text = "# incident 42\nana@contoso.com\n\n  6e1c7b5a-0000-4000-8000-000000000001  \nnot a user\nalice_fabrikam.com#EXT#@contoso.onmicrosoft.com\nben@contoso.com,x\n";
        let (refs, bad) = parse_users(text, "u.txt");
        assert_eq!(
            values(&refs),
            vec![
                ("ana@contoso.com", "u.txt:2"),
                ("6e1c7b5a-0000-4000-8000-000000000001", "u.txt:4"),
                ("alice_fabrikam.com#EXT#@contoso.onmicrosoft.com", "u.txt:6"),
            ]
        );
        assert_eq!(bad.iter().map(|b| b.line).collect::<Vec<_>>(), vec![5, 7]);
        assert!(
            bad[0].message.contains("`not a user`"),
            "{}",
            bad[0].message
        );
        assert!(bad[1].message.contains("no header"), "{}", bad[1].message);
    }

    #[test]
    fn csv_with_a_upn_column_and_quoting() {
        let text = "\u{feff}displayName,userPrincipalName,department\n\"Doe, Ana\",ana@contoso.com,Sales\nBen,ben@contoso.com\nCho,,IT\nDev,\"dev@contoso.com\",IT\n\"Eve,eve@contoso.com,IT\n";
        let (refs, bad) = parse_users(text, "u.csv");
        assert_eq!(
            values(&refs),
            vec![
                ("ana@contoso.com", "u.csv:2"),
                ("dev@contoso.com", "u.csv:5")
            ]
        );
        let lines: Vec<(usize, &str)> = bad.iter().map(|b| (b.line, b.message.as_str())).collect();
        assert_eq!(
            lines,
            vec![
                (3, "expected 3 fields as in the header, found 2"),
                (4, "the userPrincipalName and id fields are empty"),
                (6, "a quoted field is not closed"),
            ]
        );
    }

    #[test]
    fn csv_prefers_the_id_column() {
        let text = "id,userPrincipalName\n6e1c7b5a-0000-4000-8000-000000000001,ana@contoso.com\n,ben@contoso.com\nnot-a-guid,\n";
        let (refs, bad) = parse_users(text, "u.csv");
        assert_eq!(
            values(&refs),
            vec![
                ("6e1c7b5a-0000-4000-8000-000000000001", "u.csv:2"),
                ("ben@contoso.com", "u.csv:3")
            ]
        );
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 4);
    }

    #[test]
    fn references() {
        for good in [
            "ana@contoso.com",
            "6E1C7B5A-0000-4000-8000-000000000001",
            "a.b+c@sub.contoso.co.uk",
        ] {
            assert!(check_reference(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "ana",
            "ana@",
            "@contoso.com",
            "ana@contoso",
            "ana smith@contoso.com",
            "ana@contoso.com/../x",
            "6e1c7b5a-0000-4000-8000-00000000000",
            "a@b@c.com",
        ] {
            assert!(check_reference(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn progress_line_has_rate_and_quota_eta() {
        let p = engine::executor::Progress::default();
        p.total.store(100, Ordering::Relaxed);
        p.done.store(40, Ordering::Relaxed);
        p.succeeded.store(39, Ordering::Relaxed);
        p.failed.store(1, Ordering::Relaxed);
        let line = drain_line(&p, Instant::now() - Duration::from_secs(2), Some(20.0));
        assert!(
            line.starts_with("actions: 40/100 done (39 ok, 1 failed), "),
            "{line}"
        );
        assert!(
            line.ends_with(", ETA 3s at the directory_write quota of 20.0/s"),
            "{line}"
        );
    }
}
