//! The audit database end to end, through the real binary: `revokd audit verify` names the
//! first broken link of a tampered copy and checks an exported head; verification survives
//! retention pruning, by `revokd audit prune` and by the daemon's own cycle; the investigator's
//! walk-through in docs/audit.md runs as written against a demo database; and a second
//! connection finds the database intact while `revokd run` writes to it and after it is killed.

mod support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Column, ConnectOptions, Row, SqliteConnection, TypeInfo, ValueRef};
use support::{Sim, repo_root, revokd};
use tempfile::TempDir;

/// The users the demo scenario's high-risk rule contains.
const DEMO_CONTAINED: [&str; 6] = [
    "adele.vance@contoso.com",
    "alex.wilber@contoso.com",
    "diego.siciliani@contoso.com",
    "lynne.robbins@contoso.com",
    "megan.bowen@contoso.com",
    "nestor.wilke@contoso.com",
];
const BREAK_GLASS: &str = "breakglass@contoso.com";

/// One `revokd demo --store` database for every test here: the demo takes a while (it waits for
/// the scenario's late user), and every test works on its own copy.
struct Demo {
    _dir: TempDir,
    path: PathBuf,
}

fn demo() -> &'static Demo {
    static DEMO: OnceLock<Demo> = OnceLock::new();
    DEMO.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.db");
        let out = revokd()
            .args(["demo", "--store"])
            .arg(&path)
            .output()
            .expect("revokd demo runs");
        assert!(
            out.status.success(),
            "revokd demo failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Demo { _dir: dir, path }
    })
}

/// A copy of the demo database (with its WAL, if the demo left one) in a new directory.
fn copy_of_demo() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.db");
    for suffix in ["", "-wal"] {
        let from = PathBuf::from(format!("{}{suffix}", demo().path.display()));
        if from.exists() {
            std::fs::copy(&from, format!("{}{suffix}", path.display())).expect("copy");
        }
    }
    (dir, path)
}

/// A connection as an intruder (or a careless admin) opens the file: no foreign keys, and the
/// triggers that refuse edits dropped first.
async fn intruder(path: &Path) -> SqliteConnection {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .foreign_keys(false)
        .connect()
        .await
        .expect("connect");
    let triggers: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_schema WHERE type = 'trigger'")
            .fetch_all(&mut conn)
            .await
            .expect("triggers");
    for name in triggers {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP TRIGGER \"{name}\"")))
            .execute(&mut conn)
            .await
            .expect("drop trigger");
    }
    conn
}

/// Runs the statements as an intruder; each must change something.
async fn tamper(path: &Path, statements: &[&str]) {
    let mut conn = intruder(path).await;
    for sql in statements {
        assert!(execute(&mut conn, sql).await > 0, "{sql} changed nothing");
    }
}

async fn execute(conn: &mut SqliteConnection, sql: &str) -> u64 {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .rows_affected()
}

/// `revokd audit ARGS... --db PATH`: exit code, stdout, stderr.
fn audit(path: &Path, args: &[&str]) -> (i32, String, String) {
    let out = revokd()
        .arg("audit")
        .args(args)
        .arg("--db")
        .arg(path)
        .output()
        .expect("revokd audit runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn scalar<T>(path: &Path, sql: &'static str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + Send + Unpin,
{
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .expect("connect");
    sqlx::query_scalar(sql)
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untouched_database_verifies() {
    let (_dir, path) = copy_of_demo();
    let (code, out, err) = audit(&path, &["verify"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(": intact"), "{out}");
    let (code, out, _) = audit(&path, &["verify", "--json"]);
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(report["intact"], true);
    assert_eq!(report["first_broken"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn altering_deleting_or_inserting_a_row_fails_verify_and_names_it() {
    // (what, statements, words the report must contain)
    let cases: [(&str, &[&str], &[&str]); 9] = [
        (
            "a decision's user changed",
            &["UPDATE decisions SET user_id = 'someone-else' WHERE id = 3"],
            &["decisions row 3 differs from its audit entry", "user_id"],
        ),
        (
            "an action's outcome changed",
            &["UPDATE actions SET status = 'failed' WHERE id = 1"],
            &["actions row 1 differs from its audit entry", "status"],
        ),
        (
            "a Graph answer changed",
            &["UPDATE attempts SET http_status = 403 WHERE id = 1"],
            &["attempts row 1 differs from its audit entry", "http_status"],
        ),
        (
            "a decision deleted",
            &["DELETE FROM decisions WHERE id = 7"],
            &["decisions row 7, which no longer exists"],
        ),
        (
            "the daemon's start deleted",
            &["DELETE FROM daemon_events WHERE id = 1"],
            &["daemon_events row 1, which no longer exists"],
        ),
        (
            "a daemon event inserted",
            &["INSERT INTO daemon_events (id, at, kind, detail_json)
               VALUES (1000, '2026-01-01T00:00:00.000000000Z', 'stop', '{}')"],
            &["daemon_events row 1000 has no audit entry"],
        ),
        (
            "an audit entry deleted",
            &["DELETE FROM audit_log WHERE seq = 10"],
            &["BROKEN at audit entry 10", "entry 10 is missing"],
        ),
        (
            "an audit entry's payload edited",
            &[
                "UPDATE audit_log SET payload = replace(payload, 'high-risk', 'low-risk')
               WHERE seq = 2",
            ],
            &["BROKEN at audit entry 2", "hash does not match"],
        ),
        (
            "an audit entry inserted at the end",
            &[
                "INSERT INTO audit_log (seq, at, kind, payload, prev_hash, hash)
               SELECT seq + 1, at, kind, payload, hash, hash FROM audit_log
               ORDER BY seq DESC LIMIT 1",
            ],
            &["hash does not match"],
        ),
    ];
    for (what, statements, expected) in cases {
        let (_dir, path) = copy_of_demo();
        tamper(&path, statements).await;
        let (code, out, err) = audit(&path, &["verify"]);
        assert_eq!(code, 1, "{what}: exit {code}\n{out}{err}");
        assert!(out.contains("BROKEN"), "{what}: {out}");
        for words in expected {
            assert!(out.contains(words), "{what}: `{words}` not in\n{out}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_truncation_is_caught_only_by_the_exported_head() {
    let (dir, path) = copy_of_demo();
    let (code, head, err) = audit(&path, &["head"]);
    assert_eq!(code, 0, "{err}");
    let head_file = dir.path().join("head.json");
    std::fs::write(&head_file, &head).expect("head file");
    let exported: Value = serde_json::from_str(&head).expect("head is JSON");
    let seq = exported["seq"].as_i64().expect("seq");
    let hash = exported["hash"].as_str().expect("hash");
    assert_eq!(hash.len(), 64);

    let (code, out, _) = audit(&path, &["verify", "--head", &format!("{seq}:{hash}")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("present"), "{out}");

    // Cut the log before the last decisions, with every row recorded from there on: a chain
    // that is intact on its own, only shorter. The cut moves back until no decision recorded
    // before it has an entry after it.
    let mut conn = intruder(&path).await;
    let mut from: i64 =
        sqlx::query_scalar("SELECT max(seq) FROM audit_log WHERE kind = 'decision.recorded'")
            .fetch_one(&mut conn)
            .await
            .expect("last decision");
    loop {
        let earlier: i64 = sqlx::query_scalar(
            "SELECT min(seq) FROM audit_log WHERE kind = 'decision.recorded'
               AND decision_id IN (SELECT decision_id FROM audit_log WHERE seq >= ?)",
        )
        .bind(from)
        .fetch_one(&mut conn)
        .await
        .expect("earliest decision");
        if earlier == from {
            break;
        }
        from = earlier;
    }
    for (table, ids) in [
        ("attempts", "attempt_id"),
        ("actions", "action_id"),
        ("decisions", "decision_id"),
    ] {
        execute(
            &mut conn,
            &format!(
                "DELETE FROM {table} WHERE id IN
                   (SELECT {ids} FROM audit_log WHERE seq >= {from} AND {ids} IS NOT NULL)"
            ),
        )
        .await;
    }
    execute(
        &mut conn,
        &format!(
            "DELETE FROM daemon_events WHERE id IN (SELECT json_extract(payload, '$.id')
               FROM audit_log WHERE seq >= {from} AND kind = 'daemon.event')"
        ),
    )
    .await;
    let cut = execute(
        &mut conn,
        &format!("DELETE FROM audit_log WHERE seq >= {from}"),
    )
    .await;
    assert!(cut > 0);
    drop(conn);
    let (code, out, _) = audit(&path, &["verify"]);
    assert_eq!(code, 0, "a clean truncation verifies on its own: {out}");
    let (code, out, _) = audit(
        &path,
        &["verify", "--head", head_file.to_str().expect("utf-8")],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("MISSING"), "{out}");
    let (code, out, _) = audit(
        &path,
        &["verify", "--json", "--head", &format!("{seq}:{hash}")],
    );
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(report["intact"], false);
    assert_eq!(report["recorded_head"]["check"]["result"], "missing");

    let (code, _, err) = audit(&path, &["verify", "--head", "12:not-a-hash"]);
    assert_eq!(code, 2, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn exports_and_filters_carry_every_decision() {
    let (dir, path) = copy_of_demo();
    let decisions: i64 = scalar(&path, "SELECT count(*) FROM decisions").await;
    let actions: i64 = scalar(&path, "SELECT count(*) FROM actions").await;

    let (code, csv, _) = audit(&path, &["export", "--format", "csv"]);
    assert_eq!(code, 0);
    let mut lines = csv.split("\r\n").filter(|l| !l.is_empty());
    assert!(
        lines
            .next()
            .is_some_and(|h| h.starts_with("decision_id,decided_at,tenant_id,")),
        "{csv}"
    );
    // One row per action; record JSON is quoted, so count rows by their leading id instead of
    // by line breaks inside the cells.
    let rows = lines.filter(|l| {
        l.split(',')
            .next()
            .is_some_and(|c| c.parse::<i64>().is_ok())
    });
    assert_eq!(rows.count() as i64, actions);

    let (code, jsonl, _) = audit(&path, &["export", "--format", "jsonl"]);
    assert_eq!(code, 0);
    let stories: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(stories.len() as i64, decisions);
    assert!(stories.iter().all(|s| s["decision"]["record"].is_object()));

    let file = dir.path().join("incident.json");
    let args = [
        "export",
        "--format",
        "json",
        "--user",
        "ADELE.VANCE@contoso.com",
        "--output",
    ];
    let mut with_file: Vec<&str> = args.to_vec();
    with_file.push(file.to_str().expect("utf-8"));
    let (code, _, err) = audit(&path, &with_file);
    assert_eq!(code, 0, "{err}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&file).expect("written").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let exported: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("JSON");
    let users: Vec<&str> = exported
        .as_array()
        .expect("array")
        .iter()
        .map(|s| {
            s["decision"]["user_principal_name"]
                .as_str()
                .unwrap_or_default()
        })
        .collect();
    assert!(!users.is_empty());
    assert!(
        users.iter().all(|u| *u == "adele.vance@contoso.com"),
        "{users:?}"
    );
    let (code, _, err) = audit(&path, &with_file);
    assert_eq!(code, 1, "an existing file is never overwritten: {err}");

    let count = |args: &[&str]| {
        let mut all = vec!["list", "--json"];
        all.extend_from_slice(args);
        let (code, out, err) = audit(&path, &all);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<Vec<Value>>(&out)
            .expect("JSON")
            .len()
    };
    assert_eq!(count(&["--since", "1h"]) as i64, actions);
    assert_eq!(count(&["--until", "2000-01-01"]), 0);
    assert_eq!(count(&["--mode", "protected"]), 1);
    assert_eq!(
        count(&["--rule", "high-risk-users", "--outcome", "succeeded"]),
        6
    );
    assert_eq!(count(&["--tenant", "someone-else"]), 0);
    let (code, _, err) = audit(&path, &["list", "--mode", "enforced"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("enforce, dry_run, suppressed"), "{err}");
    let (code, _, err) = audit(&path, &["show", "9999"]);
    assert_eq!(code, 1);
    assert!(err.contains("no decision 9999"), "{err}");
}

/// Rules with one-second cooldowns, and a configuration whose retention floor is one second,
/// so that the demo's rows are old enough to prune after a short pause.
fn short_config(dir: &Path, store: &Path, sim: Option<&Sim>, retention: Option<&str>) -> PathBuf {
    std::fs::create_dir_all(dir.join("rules")).expect("rules dir");
    std::fs::write(
        dir.join("rules/rules.yaml"),
        "\
rules:
  - id: high-risk-users
    description: contain users rated high risk and still at risk
    source: risky_users
    match:
      risk_level: [high]
      risk_state: [atRisk]
    actions: [revoke_sessions]
    cooldown: 1s
",
    )
    .expect("rules");
    let url = sim.map_or("http://127.0.0.1:9", |s| s.url.as_str());
    let retention = retention.map_or(String::new(), |r| format!("  retention: {r}\n"));
    let config = dir.join("revokd.yaml");
    std::fs::write(
        &config,
        format!(
            "\
store:
  path: {store}
{retention}rules:
  files: [rules]
safety:
  dry_run: false
  breaker:
    window: 1s
polling:
  interval: 1s
  lookback: 1s
  overlap: 1s
tenants:
  - tenant_id: 00000000-0000-4000-8000-0000000e2e00
    authority_url: {url}
    graph_url: {url}
    auth:
      client_id: 22222222-2222-4222-8222-222222222222
      client_secret: e2e-secret-not-real
",
            store = store.display()
        ),
    )
    .expect("config");
    config
}

#[test]
fn a_retention_shorter_than_what_decisions_need_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("audit.db");
    let check = |retention: Option<&str>, env: Option<&str>| {
        let config = short_config(dir.path(), &store, None, retention);
        let mut cmd = revokd();
        cmd.args(["check", "--config"]).arg(&config);
        if let Some(value) = env {
            cmd.env("REVOKD__STORE__RETENTION", value);
        }
        let out = cmd.output().expect("revokd check runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(check(Some("1s"), None).0, 0);
    assert_eq!(check(Some("90d"), None).0, 0);
    let (code, err) = check(Some("500ms"), None);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("store.retention 500ms is shorter than 1s"),
        "{err}"
    );
    let (code, err) = check(Some("1s"), Some("200ms"));
    assert_eq!(code, 2, "the environment override is checked too: {err}");
    let (code, err) = check(Some("soon"), None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("revokd.yaml:3:"), "located: {err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn verification_passes_after_retention_pruning() {
    let (dir, path) = copy_of_demo();
    let config = short_config(dir.path(), &path, None, None);
    let entry_10: String = scalar(&path, "SELECT hash FROM audit_log WHERE seq = 10").await;
    let decisions: i64 = scalar(&path, "SELECT count(*) FROM decisions").await;
    std::thread::sleep(Duration::from_millis(1100));

    let prune = |args: &[&str]| {
        let out = revokd()
            .args(["audit", "prune", "--config"])
            .arg(&config)
            .args(args)
            .output()
            .expect("revokd audit prune runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // --config finds the database through store.path, like every audit command.
    let out = revokd()
        .args(["audit", "stats", "--json", "--config"])
        .arg(&config)
        .output()
        .expect("revokd audit stats runs");
    let stats: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(stats["decisions"], decisions);

    let (code, _, err) = prune(&[]);
    assert_eq!(code, 2, "no retention configured: {err}");
    assert!(err.contains("store.retention is not set"), "{err}");
    let (code, _, err) = prune(&["--older-than", "500ms"]);
    assert_eq!(code, 2, "shorter than the cooldowns allow: {err}");

    let (code, out, err) = prune(&["--older-than", "1s", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(report["removed"]["decisions"], decisions, "{report:#}");
    assert_eq!(report["blocked_by"], Value::Null);
    assert_eq!(
        scalar::<i64>(&path, "SELECT count(*) FROM decisions").await,
        0
    );

    let (code, out, _) = audit(&path, &["verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(": intact") && out.contains("pruned   entries 1.."),
        "{out}"
    );
    // A head from before the prune can no longer vouch for the chain.
    let (code, out, _) = audit(&path, &["verify", "--head", &format!("10:{entry_10}")]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("CANNOT BE CHECKED"), "{out}");

    // The pruned chain is still tamper-evident.
    tamper(
        &path,
        &["DELETE FROM audit_log WHERE kind = 'audit.pruned'"],
    )
    .await;
    let (code, out, _) = audit(&path, &["verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("vouched for by no audit.pruned entry"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_prunes_each_cycle_when_retention_is_set() {
    let sim = Sim::start("tests/fixtures/e2e-scenario.yaml");
    let (dir, path) = copy_of_demo();
    let config = short_config(dir.path(), &path, Some(&sim), Some("1s"));
    std::thread::sleep(Duration::from_millis(1100));
    let out = revokd()
        .args(["run", "--once", "--config"])
        .arg(&config)
        .output()
        .expect("revokd run --once");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    let demo_users: i64 = scalar(
        &path,
        "SELECT count(*) FROM decisions WHERE user_principal_name LIKE '%@contoso.com'
           AND tenant_id = '00000000-0000-4000-8000-00000000d3e0'",
    )
    .await;
    assert_eq!(demo_users, 0, "the demo's decisions were pruned");
    let checkpoints: i64 = scalar(
        &path,
        "SELECT count(*) FROM audit_log WHERE kind = 'audit.checkpoint'",
    )
    .await;
    assert_eq!(checkpoints, 1);
    let (code, out, _) = audit(&path, &["verify"]);
    assert_eq!(code, 0, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn integrity_holds_while_the_daemon_writes_and_after_it_is_killed() {
    let sim = Sim::start("tests/fixtures/e2e-scenario.yaml");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.db");
    let config = short_config(dir.path(), &path, Some(&sim), None);
    // Read the scenario's records (minutes old) on the first poll.
    let text = std::fs::read_to_string(&config)
        .expect("config")
        .replace("lookback: 1s", "lookback: 1h");
    std::fs::write(&config, text).expect("config");
    let mut daemon = std::process::Command::new(env!("CARGO_BIN_EXE_revokd"))
        .current_dir(repo_root())
        .args(["run", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("revokd run starts");

    let check = |path: PathBuf| async move {
        let mut conn = SqliteConnectOptions::new()
            .filename(&path)
            .read_only(true)
            .connect()
            .await
            .expect("a second connection opens");
        let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut conn)
            .await
            .expect("integrity_check");
        let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
            .fetch_one(&mut conn)
            .await
            .unwrap_or(0);
        (integrity, entries)
    };
    // Poll while the daemon decides, calls Graph (one revoke is throttled for a second) and
    // records everything.
    let started = Instant::now();
    let (mut reads, mut entries) = (0, 0);
    while started.elapsed() < Duration::from_secs(20) && entries < 20 {
        if path.exists() {
            let (integrity, seen) = check(path.clone()).await;
            assert_eq!(integrity, "ok");
            entries = seen;
            reads += 1;
            if seen > 0 {
                let (code, out, err) = audit(&path, &["verify"]);
                assert_eq!(code, 0, "while the daemon writes: {out}{err}");
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(entries >= 20, "the daemon wrote only {entries} entries");
    assert!(reads > 3, "only {reads} reads");
    daemon.kill().expect("kill the daemon");
    daemon.wait().expect("reap");

    let (integrity, after) = check(path.clone()).await;
    assert_eq!(integrity, "ok");
    assert!(after >= entries);
    let (code, out, err) = audit(&path, &["verify"]);
    assert_eq!(code, 0, "after the kill: {out}{err}");
}

/// A fenced block of docs/audit.md marked `walkthrough: NAME` on its first line.
struct Block {
    name: String,
    lang: String,
    body: String,
}

fn walkthrough_blocks() -> Vec<Block> {
    let doc = std::fs::read_to_string(repo_root().join("docs/audit.md")).expect("docs/audit.md");
    let mut blocks = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(lang) = line.strip_prefix("```").filter(|l| !l.is_empty()) else {
            continue;
        };
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        let first = body.first().copied().unwrap_or_default();
        let marker = first
            .strip_prefix("-- walkthrough: ")
            .or_else(|| first.strip_prefix("# walkthrough: "));
        if let Some(name) = marker {
            blocks.push(Block {
                name: name.trim().to_string(),
                lang: lang.to_string(),
                body: body[1..].join("\n"),
            });
        }
    }
    blocks
}

/// Runs a documented `revokd ...` line with `$DB` set to `db`: exit code and stdout.
fn run_documented(line: &str, db: &Path) -> (i32, String) {
    let args: Vec<String> = line
        .split_whitespace()
        .map(|w| {
            w.trim_matches('"')
                .replace("$DB", &db.display().to_string())
        })
        .collect();
    assert_eq!(args.first().map(String::as_str), Some("revokd"), "{line}");
    let out = revokd().args(&args[1..]).output().expect("revokd runs");
    assert!(
        out.stderr.is_empty(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Runs a documented SQL block: one JSON object per row.
async fn run_sql(sql: &str, db: &Path) -> Vec<Map<String, Value>> {
    let mut conn = SqliteConnectOptions::new()
        .filename(db)
        .read_only(true)
        .connect()
        .await
        .expect("connect");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_all(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}\n{e}"));
    rows.iter()
        .map(|row| {
            row.columns()
                .iter()
                .map(|c| {
                    let i = c.ordinal();
                    let raw = row.try_get_raw(i).expect("value");
                    let value = if raw.is_null() {
                        Value::Null
                    } else {
                        match raw.type_info().name() {
                            "INTEGER" => json!(row.try_get_unchecked::<i64, _>(i).expect("int")),
                            "REAL" => json!(row.try_get_unchecked::<f64, _>(i).expect("real")),
                            _ => json!(row.try_get_unchecked::<String, _>(i).expect("text")),
                        }
                    };
                    (c.name().to_string(), value)
                })
                .collect()
        })
        .collect()
}

fn column<'a>(rows: &'a [Map<String, Value>], name: &str) -> Vec<&'a str> {
    rows.iter()
        .map(|r| r.get(name).and_then(Value::as_str).unwrap_or_default())
        .collect()
}

/// Snapshot text without what differs between runs: times, GUIDs, hashes, latencies.
fn stable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let rest: String = chars[i..chars.len().min(i + 64)].iter().collect();
        let hex_run = rest.chars().take_while(char::is_ascii_hexdigit).count();
        if let Some(len) = timestamp_len(&chars[i..]) {
            out.push_str("[time]");
            i += len;
        } else if is_guid(&rest) {
            out.push_str("[guid]");
            i += 36;
        } else if hex_run == 64 {
            out.push_str("[hash]");
            i += 64;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// A table with the cells of its first column (ids) replaced by `#`.
fn without_first_column(table: &str) -> String {
    table
        .lines()
        .map(
            |line| match line.strip_prefix("│ ").and_then(|l| l.split_once(" ┆")) {
                Some((first, rest)) if first.trim().parse::<i64>().is_ok() => {
                    format!("│ {:<width$} ┆{rest}\n", "#", width = first.len())
                }
                _ => format!("{line}\n"),
            },
        )
        .collect()
}

fn is_guid(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 36
        && b[..36].iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Length of `2026-11-24T10:31:00.123Z`-like or `2026-11-24 10:31:00` text at the start.
fn timestamp_len(chars: &[char]) -> Option<usize> {
    let pattern = "dddd-dd-dd?dd:dd:dd";
    if chars.len() < pattern.len() {
        return None;
    }
    let fits = pattern.chars().zip(chars).all(|(p, c)| match p {
        'd' => c.is_ascii_digit(),
        '?' => *c == 'T' || *c == ' ',
        _ => p == *c,
    });
    if !fits {
        return None;
    }
    let mut len = pattern.len();
    if chars.get(len) == Some(&'.') {
        len += 1;
        while chars.get(len).is_some_and(char::is_ascii_digit) {
            len += 1;
        }
    }
    if chars.get(len) == Some(&'Z') {
        len += 1;
    }
    Some(len)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_documented_walkthrough_answers_the_questions() {
    let (_dir, db) = copy_of_demo();
    let blocks = walkthrough_blocks();
    let names: Vec<&str> = blocks.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "verify",
            "who-was-contained",
            "list-contained",
            "evidence",
            "graph-answers",
            "not-actioned",
            "show",
            "daemon",
            "stats"
        ],
        "docs/audit.md's walkthrough changed: update this test's questions"
    );
    let mut transcript = String::new();
    for block in &blocks {
        transcript.push_str(&format!("## {} ({})\n", block.name, block.lang));
        match block.lang.as_str() {
            "sh" => {
                for line in block.body.lines().filter(|l| !l.trim().is_empty()) {
                    let (code, out) = run_documented(line, &db);
                    assert_eq!(code, 0, "{line}\n{out}");
                    check_command(&block.name, &out);
                    let out = out.replace(&db.display().to_string(), "$DB");
                    // What the demo's timing decides is left out: the order in which decisions
                    // got their ids, the hours it ran in, and (in `show`) latencies and ids in
                    // tables whose widths follow them.
                    let out = match block.name.as_str() {
                        "show" => String::new(),
                        "list-contained" => without_first_column(&out),
                        "stats" => out.split("\nPer hour").next().unwrap_or_default().into(),
                        _ => out,
                    };
                    transcript.push_str(&stable(&out));
                }
            }
            "sql" => {
                let rows = run_sql(&block.body, &db).await;
                check_answer(&block.name, &rows);
                for row in &rows {
                    let mut row = row.clone();
                    if row.contains_key("latency_ms") {
                        row.insert("latency_ms".into(), json!("[ms]"));
                    }
                    transcript.push_str(&stable(&Value::Object(row).to_string()));
                    transcript.push('\n');
                }
            }
            other => panic!(
                "walkthrough block {} in unknown language {other}",
                block.name
            ),
        }
        transcript.push('\n');
    }
    insta::assert_snapshot!("audit_walkthrough", transcript);
}

/// What each documented command must show.
fn check_command(name: &str, out: &str) {
    match name {
        "verify" => assert!(out.contains(": intact"), "{out}"),
        "list-contained" => {
            for user in DEMO_CONTAINED {
                assert!(out.contains(user), "{user} missing:\n{out}");
            }
            assert!(!out.contains(BREAK_GLASS), "{out}");
            assert!(!out.contains("dry_run"), "{out}");
        }
        "show" => {
            for words in [
                "Decision 1,",
                "Evidence: the record as received from Graph",
                "\"riskLevel\": \"high\"",
                "Why the rule matched",
                "revoke_sessions succeeded",
                "revokeSignInSessions",
                "decision.recorded",
                "attempt.finished",
            ] {
                assert!(out.contains(words), "`{words}` missing:\n{out}");
            }
        }
        "stats" => {
            assert!(out.contains("6 users contained"), "{out}");
            assert!(out.contains("Per hour"), "{out}");
        }
        other => panic!("no check for walkthrough command {other}"),
    }
}

/// What each documented query must answer.
fn check_answer(name: &str, rows: &[Map<String, Value>]) {
    match name {
        "who-was-contained" => {
            assert_eq!(column(rows, "user_principal_name"), DEMO_CONTAINED);
            assert!(
                column(rows, "rule_id")
                    .iter()
                    .all(|r| *r == "high-risk-users")
            );
            for row in rows {
                let (decided, completed) = (&row["decided_at"], &row["completed_at"]);
                assert!(decided.as_str() <= completed.as_str(), "{row:?}");
            }
        }
        "evidence" => {
            assert_eq!(column(rows, "user_principal_name"), DEMO_CONTAINED);
            assert!(column(rows, "risk_level").iter().all(|l| *l == "high"));
            assert!(column(rows, "risk_state").iter().all(|s| *s == "atRisk"));
            assert!(column(rows, "rule_hash").iter().all(|h| h.len() == 64));
        }
        "graph-answers" => {
            let users: std::collections::BTreeSet<&str> =
                column(rows, "user_principal_name").into_iter().collect();
            assert_eq!(users, DEMO_CONTAINED.into_iter().collect());
            for user in DEMO_CONTAINED {
                let last = rows
                    .iter()
                    .rfind(|r| r["user_principal_name"] == user)
                    .expect("a call");
                assert_eq!(last["http_status"], 200, "{last:?}");
                assert!(last["request_id"].is_string(), "{last:?}");
                assert!(last["client_request_id"].is_string(), "{last:?}");
            }
        }
        "not-actioned" => {
            let glass = rows
                .iter()
                .find(|r| r["user_principal_name"] == BREAK_GLASS)
                .expect("the break-glass account is recorded");
            assert_eq!(glass["mode"], "protected");
            assert!(rows.iter().all(|r| r["reason"].is_string()), "{rows:?}");
        }
        "daemon" => {
            assert_eq!(rows.first().map(|r| &r["kind"]), Some(&json!("start")));
            assert!(
                rows[0]["rule_set_hash"]
                    .as_str()
                    .is_some_and(|h| h.len() == 64)
            );
        }
        other => panic!("no check for walkthrough query {other}"),
    }
}
