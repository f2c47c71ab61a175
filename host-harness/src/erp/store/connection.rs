//! Opening a connection to the database: the path and file checks (an erp database, never
//! another application's file) and the pragmas every connection runs with.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::schema::APPLICATION_ID;
use crate::erp::errors::ErpError;

/// The automatic checkpoint's threshold (pages of 4 KiB: 64 MiB), a bound only.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 16_384;

pub(super) fn open_conn(path: &Path, create: bool) -> Result<Connection, ErpError> {
    check_path(path)?;
    // No SQLITE_OPEN_URI: `--db` is a file path, and the key file is named after it.
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        crate::capabilities::storage::create_private(path).map_err(|source| ErpError::Create {
            path: path.to_owned(),
            source,
        })?;
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(|e| ErpError::db(path, e))?;
    // Before anything is written (WAL mode, tables): another application's file stays as it is.
    check_ours(&conn, path)?;
    let setup = || -> rusqlite::Result<()> {
        conn.busy_timeout(
            crate::capabilities::storage::lock_timeout_override()
                .unwrap_or(Duration::from_secs(15)),
        )?;
        // WAL: the plugin's storage capability writes through its own connection meanwhile.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL is safe under WAL: a killed process never loses a committed batch, and a power
        // cut can lose only the last batches, never consistency; since each batch is committed
        // with its own cursor, the next sync fetches them again. (The plugin's token storage
        // keeps FULL: a rotated refresh token cannot be fetched again.)
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // The unique index on transaction ids takes random inserts: keep its pages (and the
        // table's tail) in memory instead of re-reading them from the OS on every batch.
        // An upper bound (16 MiB), allocated only as pages are used.
        conn.pragma_update(None, "cache_size", -16_384)?;
        // Checkpoints (each with two fsyncs) are what a first sync waits on: a sync runs them
        // on a background connection (see `Checkpointer`) every CHECKPOINT_EVERY_BYTES; the
        // automatic one stays only as a bound on the WAL should that thread fall behind.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
        // Once checkpointed, a WAL grown by a big sync is cut back to this size.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        Ok(())
    };
    setup().map_err(|e| ErpError::db(path, e))?;
    Ok(conn)
}

/// Refuses an SQLite URI (`file:x.sqlite`) where a file path is expected: SQLite would open
/// `x.sqlite` while the storage key file would be named `file:x.key`, so a later `--db x.sqlite`
/// would make a new key and the stored tokens could no longer be read.
pub fn check_path(path: &Path) -> Result<(), ErpError> {
    if path.to_string_lossy().starts_with("file:") {
        return Err(ErpError::Usage(format!(
            "--db {}: give a file path, not an SQLite URI (for `file:x.sqlite` give `x.sqlite`)",
            path.display()
        )));
    }
    Ok(())
}

/// Refuses a database that is not ours: one holding tables without our application id (another
/// application's file). An empty file, ours, or one made by an erp before the marker existed
/// (schema version set, `links` present) passes. Only reads.
fn check_ours(conn: &Connection, path: &Path) -> Result<(), ErpError> {
    let err = |e| ErpError::db(path, e);
    let app: i64 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(err)?;
    if app == APPLICATION_ID {
        return Ok(());
    }
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(err)?;
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(err)?;
    let ours = app == 0
        && (names.iter().all(|n| n == "plugin_storage")
            || (version > 0 && names.iter().any(|n| n == "links")));
    if ours {
        return Ok(());
    }
    Err(ErpError::Usage(format!(
        "{} is not an erp database (it holds {} other table(s) and no erp marker); nothing was \
         changed: give --db the path of an erp database or of a new file",
        path.display(),
        names.len()
    )))
}

/// Checks the database at `path` before anything else touches it (the plugin's storage, the key
/// file): a file path, and ours when it exists.
pub fn check_database(path: &Path) -> Result<(), ErpError> {
    check_path(path)?;
    if path.exists() {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| ErpError::db(path, e))?;
        check_ours(&conn, path)?;
    }
    Ok(())
}
