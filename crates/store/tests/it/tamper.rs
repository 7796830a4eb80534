//! Every single-row change to a used database, in every column of every audited table and of
//! the audit log, is found by `verify_chain`; so is deleting any row or inserting one.
//!
//! The one column left out is `audit_log.at`, which is not hashed: it only says when the entry
//! was written, and every time that matters is a column of the audited row, inside the payload.

use serde_json::json;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, SqliteConnection};
use store::{DecisionMode, Store};
use tempfile::TempDir;

use crate::common::{db_path, decision, fresh, insert, throttled_then_contained};

const TABLES: [&str; 5] = [
    "decisions",
    "actions",
    "attempts",
    "daemon_events",
    "audit_log",
];

/// A database after a little of everything, closed so the file is complete on its own.
async fn original() -> TempDir {
    let (dir, store) = fresh().await;
    store
        .record_daemon_event("start", &json!({"version": "test"}))
        .await
        .expect("start");
    let ids = insert(&store, &decision("u1", "1")).await;
    throttled_then_contained(&store, ids[0]).await;
    let mut dry = decision("u2", "1");
    dry.mode = DecisionMode::DryRun;
    dry.reason = Some("global dry-run".into());
    insert(&store, &dry).await;
    store
        .record_daemon_event("stop", &json!({}))
        .await
        .expect("stop");
    store.close().await;
    dir
}

/// A copy of the original to tamper with, as an intruder's connection sees it (no foreign keys,
/// no triggers), with the original attached as `orig` to restore from, and a read-only store
/// on it to verify with.
struct Lab {
    _dir: TempDir,
    conn: SqliteConnection,
    store: Store,
}

impl Lab {
    async fn new(original: &TempDir) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::copy(db_path(original), db_path(&dir)).expect("copy");
        let mut conn = SqliteConnectOptions::new()
            .filename(db_path(&dir))
            .foreign_keys(false)
            // A scratch copy: nothing to keep across a crash, so no waiting for the disk.
            .synchronous(sqlx::sqlite::SqliteSynchronous::Off)
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
        sqlx::query("ATTACH DATABASE ? AS orig")
            .bind(db_path(original).display().to_string())
            .execute(&mut conn)
            .await
            .expect("attach the original");
        let store = Store::open_read_only(&db_path(&dir)).await.expect("open");
        Self {
            _dir: dir,
            conn,
            store,
        }
    }

    /// Runs one tampering statement, which must change exactly one row.
    async fn run(&mut self, sql: String) {
        let done = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut self.conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(done.rows_affected(), 1, "{sql}");
    }

    /// What `verify_chain` says now; then `table` is restored from the original, which must
    /// verify again.
    async fn verdict(&mut self, table: &str, what: &str) -> (i64, String) {
        let report = self.store.verify_chain().await.expect("verify");
        for sql in [
            format!("DELETE FROM {table}"),
            format!("INSERT INTO {table} SELECT * FROM orig.{table}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut self.conn)
                .await
                .expect("restore");
        }
        let restored = self.store.verify_chain().await.expect("verify");
        assert_eq!(restored.first_broken, None, "{what}: restoring failed");
        report
            .first_broken
            .unwrap_or_else(|| panic!("{what}: not detected"))
    }
}

/// (table, primary key column, key of every row, (column, declared type) of every column).
async fn layout(
    original: &TempDir,
) -> Vec<(&'static str, String, Vec<i64>, Vec<(String, String)>)> {
    let mut conn = crate::common::raw(&db_path(original)).await;
    let mut out = Vec::new();
    for table in TABLES {
        let columns: Vec<(String, String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT name, type, pk FROM pragma_table_info('{table}')"
        )))
        .fetch_all(&mut conn)
        .await
        .expect("table info");
        let key = columns
            .iter()
            .find(|c| c.2 == 1)
            .map(|c| c.0.clone())
            .expect("primary key");
        let keys: Vec<i64> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT {key} FROM {table}")))
                .fetch_all(&mut conn)
                .await
                .expect("keys");
        assert!(!keys.is_empty(), "{table} has rows");
        let columns = columns.into_iter().map(|(n, t, _)| (n, t)).collect();
        out.push((table, key, keys, columns));
    }
    out
}

#[tokio::test]
async fn the_untouched_original_verifies() {
    let original = original().await;
    let store = Store::open_read_only(&db_path(&original))
        .await
        .expect("open");
    assert!(store.verify_chain().await.expect("verify").is_intact());
}

#[tokio::test]
async fn altering_any_column_of_any_row_is_detected() {
    let original = original().await;
    let mut lab = Lab::new(&original).await;
    let mut checked = 0;
    for (table, key, keys, columns) in layout(&original).await {
        for row in &keys {
            for (column, kind) in &columns {
                if table == "audit_log" && column == "at" {
                    continue;
                }
                // A different value of the column's type, whatever it held (NULL included);
                // one the CHECK constraint allows where there is one.
                let swap = |a: &str, b: &str| {
                    format!("CASE WHEN {column} = '{a}' THEN '{b}' ELSE '{a}' END")
                };
                let changed = match (table, column.as_str()) {
                    ("decisions", "mode") => swap("enforce", "dry_run"),
                    ("actions", "kind") => swap("notify", "disable_account"),
                    ("actions", "status") => swap("succeeded", "failed"),
                    _ if kind == "INTEGER" => format!("coalesce({column} + 1000, 1000)"),
                    _ => format!("coalesce({column} || 'x', 'x')"),
                };
                lab.run(format!(
                    "UPDATE {table} SET {column} = {changed} WHERE {key} = {row}"
                ))
                .await;
                let what = format!("{table} {key} {row}: {column} altered");
                let (_, why) = lab.verdict(table, &what).await;
                assert!(!why.is_empty(), "{what}");
                checked += 1;
            }
        }
    }
    assert!(checked > 150, "only {checked} alterations tried");
}

#[tokio::test]
async fn deleting_any_row_is_detected_and_named() {
    let original = original().await;
    let mut lab = Lab::new(&original).await;
    for (table, key, keys, _) in layout(&original).await {
        for row in keys {
            lab.run(format!("DELETE FROM {table} WHERE {key} = {row}"))
                .await;
            let what = format!("{table} {key} {row} deleted");
            let (seq, why) = lab.verdict(table, &what).await;
            if table == "audit_log" {
                // A gap is named by its seq; the last entry's row is left without an entry.
                assert!(
                    seq == row || why.contains("has no audit entry"),
                    "{what}: {seq} {why}"
                );
            } else {
                assert!(
                    why.contains(&format!("{table} row {row}, which no longer exists")),
                    "{what}: {why}"
                );
            }
        }
    }
}

#[tokio::test]
async fn inserting_a_row_into_any_table_is_detected_and_named() {
    let original = original().await;
    let mut lab = Lab::new(&original).await;
    for (table, key, keys, columns) in layout(&original).await {
        let names: Vec<&str> = columns
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| *n != key)
            .collect();
        let list = names.join(", ");
        let last = keys.iter().max().copied().unwrap_or_default();
        // A copy of an existing row under the next free key, as a forger would start.
        let sql = if table == "audit_log" {
            format!(
                "INSERT INTO audit_log (seq, {list}) SELECT seq + 1, {list} FROM audit_log \
                 WHERE seq = {last}"
            )
        } else {
            // Unique keys (one decision per trigger, one action kind per decision) make the
            // forger change a value that belongs to them too.
            let tweak = |n: &str| match n {
                "trigger_key" => format!("{n} || '-forged'"),
                "kind" => "'notify'".to_string(),
                _ => n.to_string(),
            };
            let select: Vec<String> = names.iter().map(|n| tweak(n)).collect();
            format!(
                "INSERT INTO {table} ({list}) SELECT {} FROM {table} WHERE {key} = {last}",
                select.join(", ")
            )
        };
        lab.run(sql).await;
        let what = format!("a row inserted into {table}");
        let (seq, why) = lab.verdict(table, &what).await;
        if table == "audit_log" {
            assert_eq!(seq, last + 1, "{what}: {why}");
        } else {
            assert!(
                why.contains(&format!("{table} row {} has no audit entry", last + 1)),
                "{what}: {why}"
            );
        }
    }
}
