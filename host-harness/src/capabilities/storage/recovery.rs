//! Where a storage write goes when the database cannot take it: a rotated refresh token that
//! Ponto has issued (and the old one burned) must not be lost because another process holds the
//! database or the disk is full.
//!
//! - Each storage session reserves a recovery file beside the database before the plugin runs:
//!   [`RESERVED_BYTES`] of zeros actually written (0600), so a later record needs no new disk
//!   space. The session holds an exclusive `flock` on it for its lifetime.
//! - A write is retried with backoff for [`WritePolicy::retry_for`] (60 s, six lock timeouts) on
//!   busy, locked, full and I/O errors; when it still fails, the value, sealed exactly as
//!   `plugin_storage` would hold it, is appended to the file as one JSON line and fsynced, then
//!   kept in memory for the session's reads. Only then is success returned to the plugin.
//! - Every record is a compare-and-swap on the stored text: `expected` is the row as it was
//!   (a ciphertext, or none), `value` what it becomes. Replaying applies a record only when the
//!   row still holds `expected`, so a later write that did reach the database is never undone.
//! - The next storage open (and every `Db::open`) replays the files of sessions that are gone
//!   (their lock is free) into `plugin_storage` in write order, then deletes them.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, params};
use serde::{Deserialize, Serialize};

/// Bytes reserved per session: tokens and small state, sealed, fit many times over.
pub const RESERVED_BYTES: usize = 64 * 1024;
/// Lock timeout of the storage connection in milliseconds (default 10,000); storage writes are
/// retried for six times as long. For tests and operators whose backups hold the database long.
pub const LOCK_TIMEOUT_ENV: &str = "ERP_LOCK_TIMEOUT_MS";

/// How long a storage write waits for the database.
#[derive(Clone, Copy, Debug)]
pub struct WritePolicy {
    /// SQLite's busy timeout, per attempt.
    pub busy_timeout: Duration,
    /// Attempts go on, with backoff, until this much time has passed.
    pub retry_for: Duration,
}

impl WritePolicy {
    /// 10 s per attempt and 60 s in all, or [`LOCK_TIMEOUT_ENV`] and six times it.
    pub fn from_env() -> Self {
        let busy = lock_timeout_override().unwrap_or(Duration::from_secs(10));
        Self {
            busy_timeout: busy,
            retry_for: busy * 6,
        }
    }
}

/// [`LOCK_TIMEOUT_ENV`] when set to a number of milliseconds.
pub fn lock_timeout_override() -> Option<Duration> {
    std::env::var(LOCK_TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
}

/// Failures that may pass: another writer, a full disk being cleaned, a transient I/O error.
pub fn transient(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
        )
    )
}

/// Runs `attempt` until it succeeds, fails for good, or `retry_for` has passed (backoff from
/// 50 ms doubling to 1 s between attempts).
pub fn with_retry<T, E>(
    retry_for: Duration,
    mut attempt: impl FnMut() -> Result<T, E>,
    sql: impl Fn(&E) -> Option<&rusqlite::Error>,
) -> Result<T, E> {
    let deadline = Instant::now() + retry_for;
    let mut wait = Duration::from_millis(50);
    loop {
        match attempt() {
            Err(e) if sql(&e).is_some_and(transient) && Instant::now() + wait < deadline => {
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

/// One kept write: the row (plugin, connection, key) goes from `expected` to `value` (stored
/// forms; none = no row).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub plugin: String,
    pub connection: String,
    pub key: String,
    pub expected: Option<String>,
    pub value: Option<String>,
    /// Nanoseconds since the epoch, then the order within the file: replay order.
    pub at: u128,
    pub seq: u64,
}

/// A session's reserved recovery file.
pub struct RecoveryFile {
    path: PathBuf,
    file: File,
    used: usize,
    seq: u64,
}

/// `erp.sqlite` → `erp.sqlite.recovery-`: the prefix of its recovery files.
fn prefix(db_path: &Path) -> String {
    let name = db_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{name}.recovery-")
}

/// Files being reserved (not yet locked and renamed into place).
fn reserving_prefix(db_path: &Path) -> String {
    prefix(db_path).replace(".recovery-", ".reserving-")
}

fn dir_of(db_path: &Path) -> PathBuf {
    match db_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

impl RecoveryFile {
    /// Reserve a fresh file beside the database: created 0600, locked, filled with zeros, then
    /// renamed into place (so a replayer never sees it before it is locked).
    pub fn reserve(db_path: &Path) -> io::Result<Self> {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{}-{n}", std::process::id());
        let dir = dir_of(db_path);
        let path = dir.join(format!("{}{name}", prefix(db_path)));
        let reserving = dir.join(format!("{}{name}", reserving_prefix(db_path)));
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create_new(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&reserving)?;
        let reserved = (|| {
            file.try_lock().map_err(io::Error::other)?;
            // Written, not only `set_len`: a sparse file would need the blocks later.
            file.write_all_at(&[0u8; RESERVED_BYTES], 0)?;
            std::fs::rename(&reserving, &path)
        })();
        if let Err(e) = reserved {
            let _ = std::fs::remove_file(&reserving);
            return Err(e);
        }
        Ok(Self {
            path,
            file,
            used: 0,
            seq: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and makes it durable (file data, and the file's name in its directory).
    pub fn append(&mut self, mut record: Record) -> io::Result<()> {
        record.seq = self.seq;
        let mut line = serde_json::to_vec(&record).map_err(io::Error::other)?;
        line.push(b'\n');
        if self.used + line.len() > RESERVED_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!("the recovery file's {RESERVED_BYTES} bytes are used up"),
            ));
        }
        self.file.write_all_at(&line, self.used as u64)?;
        self.file.sync_data()?;
        if self.used == 0 {
            File::open(self.path.parent().unwrap_or(Path::new(".")))?.sync_all()?;
        }
        self.used += line.len();
        self.seq += 1;
        Ok(())
    }

    /// Forget every record (they reached the database): zeros over what was written.
    pub fn clear(&mut self) {
        if self.used > 0 && self.file.write_all_at(&vec![0u8; self.used], 0).is_ok() {
            let _ = self.file.sync_data();
            self.used = 0;
        }
    }
}

impl Drop for RecoveryFile {
    fn drop(&mut self) {
        if self.used == 0 {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Records of a file, in order; a torn last line (a kill mid-write) is ignored.
fn read_records(file: &mut File) -> io::Result<Vec<Record>> {
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Ok(bytes[..end]
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice(line).ok())
        .collect())
}

/// What a replay did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Records written into `plugin_storage`.
    pub applied: usize,
    /// Records whose row had changed since (a later write reached the database): left as is.
    pub superseded: usize,
    /// Files read and deleted.
    pub files: usize,
}

/// Applies the records of every recovery file of `db_path` whose session is gone, in write
/// order, in one transaction, then deletes the files. Files of live sessions are left alone.
pub fn replay(conn: &Connection, db_path: &Path, retry_for: Duration) -> Result<Replayed, String> {
    let mut out = Replayed::default();
    let prefix = prefix(db_path);
    let reserving = reserving_prefix(db_path);
    let Ok(entries) = std::fs::read_dir(dir_of(db_path)) else {
        return Ok(out);
    };
    let mut files = Vec::new();
    let mut records = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.starts_with(&reserving) {
            // Left by a session killed while reserving: nothing in it yet.
            if std::fs::File::open(&path).is_ok_and(|f| f.try_lock().is_ok()) {
                let _ = std::fs::remove_file(&path);
            }
            continue;
        }
        if !name.starts_with(&prefix) {
            continue;
        }
        let Ok(mut file) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
        else {
            continue;
        };
        if file.try_lock().is_err() {
            continue; // Its session is still running and keeps its values in memory.
        }
        let mut found = read_records(&mut file)
            .map_err(|e| format!("cannot read the recovery file {}: {e}", path.display()))?;
        records.append(&mut found);
        files.push((path, file));
    }
    if !records.is_empty() {
        records.sort_by_key(|r| (r.at, r.seq));
        let apply = || -> rusqlite::Result<(usize, usize)> {
            let mut tx = immediate(conn)?;
            tx.execute_batch(super::table::SCHEMA)?;
            let (mut applied, mut superseded) = (0, 0);
            for r in &records {
                let current: Option<String> = tx
                    .query_row(
                        "SELECT value FROM plugin_storage WHERE plugin = ?1 AND connection = ?2 AND key = ?3",
                        params![r.plugin, r.connection, r.key],
                        |row| row.get(0),
                    )
                    .ok();
                if current == r.value {
                    continue; // Already there (replayed before a crash, or flushed).
                }
                if current != r.expected {
                    superseded += 1;
                    continue;
                }
                super::table::write_raw(&tx, &r.plugin, &r.connection, &r.key, r.value.as_deref())?;
                applied += 1;
            }
            tx.execute_batch("COMMIT")?;
            tx.done = true;
            Ok((applied, superseded))
        };
        let (applied, superseded) = with_retry(retry_for, apply, |e| Some(e)).map_err(|e| {
            format!(
                "the provider's storage values kept in {} could not be written back into {}: {e}; \
                 run the command again once the database is writable (free disk space, or wait \
                 for the other program holding it)",
                files
                    .iter()
                    .map(|(p, _)| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                db_path.display()
            )
        })?;
        out.applied = applied;
        out.superseded = superseded;
    }
    for (path, _file) in &files {
        let _ = std::fs::remove_file(path);
    }
    out.files = files.len();
    Ok(out)
}

/// BEGIN IMMEDIATE on a borrowed connection (rusqlite's `Transaction` needs `&mut`), rolled
/// back on drop unless `done`.
struct ImmediateTx<'c> {
    conn: &'c Connection,
    done: bool,
}

impl std::ops::Deref for ImmediateTx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for ImmediateTx<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

fn immediate(conn: &Connection) -> rusqlite::Result<ImmediateTx<'_>> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    Ok(ImmediateTx { conn, done: false })
}
