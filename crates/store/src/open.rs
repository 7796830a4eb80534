//! Opening the database: the file is created (or tightened) to mode 0600 before SQLite touches
//! it, because it holds user ids, sign-in records and the evidence of every containment.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tracing::warn;

use crate::{Store, StoreError};

/// The only mode the database file may have.
const FILE_MODE: u32 = 0o600;
/// Mode of directories the store creates for the file.
const DIR_MODE: u32 = 0o700;
/// How long a writer waits for another writer (the CLI, a second daemon) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per store: writes serialise on SQLite's lock, the rest serve concurrent reads.
const MAX_CONNECTIONS: u32 = 4;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

impl Store {
    /// Opens (creating it if needed) the audit database for the daemon: parent directories,
    /// the file with mode 0600, WAL journal, `synchronous=FULL`, foreign keys, a 5 s busy
    /// timeout, and all migrations applied.
    ///
    /// # Errors
    /// When the directory or file cannot be created or secured, SQLite cannot open the file, or
    /// the schema cannot be migrated (for example, the file was written by a newer revokd).
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        prepare_file(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let store = connect(path, options).await?;
        MIGRATOR
            .run(&store.pool)
            .await
            .map_err(|source| StoreError::Migrate {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(store)
    }

    /// Opens an existing audit database for reading only, for investigators' commands: no file
    /// is created, no migration runs and every write fails.
    ///
    /// # Errors
    /// When the file does not exist or SQLite cannot open it.
    pub async fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        std::fs::metadata(path).map_err(|source| StoreError::File {
            path: path.to_path_buf(),
            action: "read the database file's metadata",
            source,
        })?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .busy_timeout(BUSY_TIMEOUT);
        connect(path, options).await
    }
}

async fn connect(path: &Path, options: SqliteConnectOptions) -> Result<Store, StoreError> {
    let pool = SqlitePoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .connect_with(options)
        .await
        .map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(Store {
        pool,
        path: path.to_path_buf(),
    })
}

/// Creates the parent directories and the file with mode 0600, or tightens an existing file's
/// mode, warning that it was readable by others.
fn prepare_file(path: &Path) -> Result<(), StoreError> {
    let io_error = |action, source| StoreError::File {
        path: path.to_path_buf(),
        action,
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(parent)
            .map_err(|e| io_error("create the parent directory", e))?;
    }
    // `mode` applies only when the file is created; an existing file keeps its own.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| io_error("create the database file", e))?;
    let metadata = file
        .metadata()
        .map_err(|e| io_error("read the database file's mode", e))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode != FILE_MODE {
        if mode & 0o077 != 0 {
            warn!(
                path = %path.display(),
                mode = format!("{mode:o}"),
                "audit database was accessible to other users; restricting it to 0600"
            );
        }
        file.set_permissions(Permissions::from_mode(FILE_MODE))
            .map_err(|e| io_error("restrict the file mode to 0600", e))?;
    }
    Ok(())
}
