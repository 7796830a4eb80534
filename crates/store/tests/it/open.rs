//! Opening: file mode, directories, WAL, readers alongside a writer, read-only access.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use sqlx::Connection;
use store::{Store, StoreError};

use crate::common::{at, db_path, decision, fresh, insert, raw};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn a_new_database_is_private_and_in_wal_mode() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("var/lib/revokd/audit.db");
    let store = Store::open(&path).await.expect("open");
    assert_eq!(store.path(), path);
    insert(&store, &decision("u1", "1")).await;

    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("var/lib/revokd")), 0o700);
    // SQLite gives the WAL the database file's mode.
    assert_eq!(mode(&path.with_extension("db-wal")), 0o600);
    let mut conn = raw(&path).await;
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .expect("pragma");
    assert_eq!(journal, "wal");
}

#[tokio::test]
async fn an_existing_file_readable_by_others_is_tightened() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = db_path(&dir);
    std::fs::write(&path, b"").expect("create");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    Store::open(&path).await.expect("open");
    assert_eq!(mode(&path), 0o600);
}

#[tokio::test]
async fn reopening_keeps_the_data_and_the_schema() {
    let (dir, store) = fresh().await;
    insert(&store, &decision("u1", "1")).await;
    store.close().await;

    let store = Store::open(&db_path(&dir)).await.expect("reopen");
    assert_eq!(store.contained().await.expect("contained").len(), 2);
}

#[tokio::test]
async fn readers_are_not_blocked_by_an_open_write_transaction() {
    let (dir, store) = fresh().await;
    insert(&store, &decision("u1", "1")).await;
    let mut writer = raw(&db_path(&dir)).await;
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.expect("begin");
    sqlx::query("INSERT INTO cursors VALUES ('t1', 'sign_ins', 'x', 'x')")
        .execute(&mut *tx)
        .await
        .expect("uncommitted write");

    let started = Instant::now();
    let investigator = Store::open_read_only(&db_path(&dir))
        .await
        .expect("open read-only");
    assert_eq!(investigator.contained().await.expect("read").len(), 2);
    assert_eq!(store.pending_actions(None).await.expect("read").len(), 2);
    assert!(
        investigator
            .verify_chain()
            .await
            .expect("verify")
            .is_intact()
    );
    assert_eq!(store.cursor("t1", "sign_ins").await.expect("read"), None);
    // Far below the 5 s busy timeout: nobody waited for the writer.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    tx.rollback().await.expect("rollback");
}

#[tokio::test]
async fn a_writer_waits_for_another_writer_instead_of_failing() {
    let (dir, store) = fresh().await;
    let mut other = raw(&db_path(&dir)).await;
    let tx = other.begin_with("BEGIN IMMEDIATE").await.expect("begin");
    let release = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tx.commit().await.expect("commit");
    };
    let (written, ()) = tokio::join!(store.set_cursor("t1", "sign_ins", at(0)), release);
    written.expect("set_cursor waited for the lock");
    assert_eq!(
        store.cursor("t1", "sign_ins").await.expect("read"),
        Some(at(0))
    );
}

#[tokio::test]
async fn a_read_only_store_refuses_writes() {
    let (dir, store) = fresh().await;
    store.close().await;
    let investigator = Store::open_read_only(&db_path(&dir))
        .await
        .expect("open read-only");
    let err = investigator
        .set_cursor("t1", "sign_ins", at(0))
        .await
        .expect_err("read-only");
    assert!(matches!(err, StoreError::Query { .. }), "{err}");
    assert!(
        err.to_string().contains("sign_ins cursor of tenant t1"),
        "{err}"
    );
}

#[tokio::test]
async fn opening_a_missing_file_read_only_names_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = db_path(&dir);
    let err = Store::open_read_only(&path).await.expect_err("missing");
    assert!(matches!(err, StoreError::File { .. }), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(!path.exists(), "read-only open must not create the file");
}
