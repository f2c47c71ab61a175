//! The ERP's accounting database on SQLite: versioned schema, online links and accounts,
//! journals, statements, lines, pending lines, sync runs and the per-link sync lock.
//!
//! Every write that belongs to one sync batch happens in one IMMEDIATE transaction together with
//! the batch's cursor, so a crash at any instant leaves either the whole batch or none of it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, ToSql, Transaction, TransactionBehavior, params,
    params_from_iter,
};
use serde::Serialize;

use super::errors::ErpError;
use super::money;
use crate::runtime::types::{
    Account, Availability, PendingLine, Statement, StatementLine, SyncBatch, SyncProgress, Warning,
    WarningKind,
};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
/// Never edit a shipped migration: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the accounting model.
    "CREATE TABLE links (
        id INTEGER PRIMARY KEY,
        provider TEXT NOT NULL,
        connection_id TEXT NOT NULL UNIQUE,
        institution_id TEXT NOT NULL,
        institution_name TEXT NOT NULL,
        institution_status TEXT NOT NULL,
        provider_name TEXT NOT NULL,
        organization_id TEXT,
        organization_name TEXT,
        state TEXT NOT NULL CHECK (state IN ('connected', 'error', 'disconnected')),
        message TEXT,
        consent_expires_at TEXT,
        last_refresh TEXT,
        next_refresh TEXT,
        auto_sync INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL
    );
    CREATE TABLE journals (
        id INTEGER PRIMARY KEY,
        code TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        iban TEXT,
        currency TEXT NOT NULL
    );
    CREATE INDEX journals_iban ON journals (iban, currency);
    CREATE TABLE online_accounts (
        id INTEGER PRIMARY KEY,
        link_id INTEGER NOT NULL REFERENCES links (id),
        provider_account_id TEXT NOT NULL,
        institution_id TEXT NOT NULL,
        reference TEXT NOT NULL,
        reference_type TEXT NOT NULL,
        description TEXT NOT NULL,
        holder_name TEXT,
        product TEXT,
        currency TEXT NOT NULL,
        balance TEXT,
        balance_date TEXT,
        available_balance TEXT,
        authorized_at TEXT,
        consent_expires_at TEXT,
        availability TEXT NOT NULL DEFAULT 'available',
        deprecated INTEGER NOT NULL DEFAULT 0,
        synchronized_at TEXT,
        journal_id INTEGER NOT NULL REFERENCES journals (id),
        last_sync TEXT,
        status TEXT NOT NULL DEFAULT 'new',
        message TEXT,
        sync_cursor TEXT,
        sync_cursor_at TEXT,
        sync_state TEXT,
        sync_run_id INTEGER,
        UNIQUE (link_id, provider_account_id)
    );
    CREATE TABLE statements (
        id INTEGER PRIMARY KEY,
        journal_id INTEGER NOT NULL REFERENCES journals (id),
        key TEXT NOT NULL,
        name TEXT NOT NULL,
        date_from TEXT NOT NULL,
        date_to TEXT NOT NULL,
        balance_start TEXT NOT NULL,
        balance_end TEXT NOT NULL,
        UNIQUE (journal_id, key)
    );
    CREATE TABLE statement_lines (
        id INTEGER PRIMARY KEY,
        journal_id INTEGER NOT NULL REFERENCES journals (id),
        online_account_id INTEGER NOT NULL REFERENCES online_accounts (id),
        transaction_id TEXT NOT NULL,
        statement_key TEXT NOT NULL,
        booking_date TEXT NOT NULL,
        value_date TEXT,
        amount TEXT NOT NULL,
        currency TEXT NOT NULL,
        payment_reference TEXT NOT NULL,
        structured_reference INTEGER NOT NULL,
        description TEXT,
        partner_name TEXT,
        partner_account TEXT,
        end_to_end_id TEXT,
        bank_transaction_code TEXT,
        mandate_id TEXT,
        creditor_id TEXT,
        card_reference TEXT,
        raw_json TEXT NOT NULL,
        sync_run_id INTEGER,
        updated_at TEXT,
        UNIQUE (journal_id, transaction_id)
    );
    CREATE INDEX statement_lines_statement ON statement_lines (journal_id, statement_key);
    CREATE TABLE pending_lines (
        id INTEGER PRIMARY KEY,
        online_account_id INTEGER NOT NULL REFERENCES online_accounts (id),
        transaction_id TEXT NOT NULL,
        date TEXT NOT NULL,
        amount TEXT NOT NULL,
        currency TEXT NOT NULL,
        payment_reference TEXT NOT NULL,
        partner_name TEXT,
        raw_json TEXT NOT NULL
    );
    CREATE TABLE sync_runs (
        id INTEGER PRIMARY KEY,
        link_id INTEGER NOT NULL REFERENCES links (id),
        online_account_id INTEGER NOT NULL REFERENCES online_accounts (id),
        started_at TEXT NOT NULL,
        ended_at TEXT,
        status TEXT NOT NULL CHECK (status IN ('running', 'done', 'error', 'interrupted')),
        batches INTEGER NOT NULL DEFAULT 0,
        lines_new INTEGER NOT NULL DEFAULT 0,
        lines_updated INTEGER NOT NULL DEFAULT 0,
        statements INTEGER NOT NULL DEFAULT 0,
        warnings INTEGER NOT NULL DEFAULT 0,
        transactions_read INTEGER NOT NULL DEFAULT 0,
        error TEXT
    );
    CREATE TABLE sync_warnings (
        id INTEGER PRIMARY KEY,
        sync_run_id INTEGER NOT NULL REFERENCES sync_runs (id),
        online_account_id INTEGER NOT NULL REFERENCES online_accounts (id),
        kind TEXT NOT NULL,
        message TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE link_locks (
        link_id INTEGER PRIMARY KEY REFERENCES links (id),
        holder TEXT NOT NULL,
        pid INTEGER NOT NULL,
        acquired_at TEXT NOT NULL,
        heartbeat_at TEXT NOT NULL
    );
    CREATE TABLE connect_attempts (
        connection_id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        institution_id TEXT NOT NULL,
        redirect_uri TEXT NOT NULL,
        link_id INTEGER REFERENCES links (id),
        created_at TEXT NOT NULL
    );",
    // 2: consecutive failed syncs of a link (they bring its next try forward, with backoff), and
    // the file's application id, which marks it as an erp database (0x45525042, "ERPB").
    "ALTER TABLE links ADD COLUMN sync_failures INTEGER NOT NULL DEFAULT 0;
    PRAGMA application_id = 1163022402;",
    // 3: installed providers (issue 12: the artifact's digest, who signed it, what the operator
    // granted) and the publisher keys the operator trusts. Links already name their provider.
    "CREATE TABLE plugins (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        digest TEXT NOT NULL,
        publisher TEXT,
        contract_version TEXT NOT NULL,
        manifest TEXT NOT NULL,
        granted_origins TEXT NOT NULL,
        source TEXT NOT NULL,
        installed_at TEXT NOT NULL
    );
    CREATE TABLE trusted_publishers (
        key_id TEXT PRIMARY KEY,
        public_key TEXT NOT NULL,
        added_at TEXT NOT NULL
    );",
];

/// `PRAGMA application_id` of an erp database ("ERPB"), set by migration 2.
const APPLICATION_ID: i64 = 0x4552_5042;
/// The first retry of a link whose sync failed; it doubles up to the normal refresh interval.
const FIRST_RETRY: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

/// A lock whose holder has not beaten for this long is taken over even if its process lives.
const LOCK_STALE_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(30);
/// A cursor left by an interrupted sync is resumed only while it is this fresh.
const CURSOR_FRESH_FOR: chrono::TimeDelta = chrono::TimeDelta::hours(24);

pub fn now() -> DateTime<Utc> {
    // Tests (and the demo) can pin the ERP's clock; the plugin has its own (WASI).
    if let Ok(fixed) = std::env::var("ERP_NOW")
        && let Ok(t) = DateTime::parse_from_rfc3339(&fixed)
    {
        return t.with_timezone(&Utc);
    }
    Utc::now()
}

pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn parse_stamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[derive(Clone, Debug, Serialize)]
pub struct Link {
    pub id: i64,
    pub provider: String,
    #[serde(skip)]
    pub connection_id: String,
    pub institution_id: String,
    pub institution_name: String,
    pub institution_status: String,
    pub provider_name: String,
    pub organization_name: Option<String>,
    pub state: String,
    pub message: Option<String>,
    pub consent_expires_at: Option<String>,
    pub last_refresh: Option<String>,
    pub next_refresh: Option<String>,
    pub auto_sync: bool,
    pub created_at: String,
    /// Syncs in a row that ended with an account in error (0 after a clean one).
    pub sync_failures: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct OnlineAccount {
    pub id: i64,
    pub link_id: i64,
    pub provider_account_id: String,
    pub institution_id: String,
    pub reference: String,
    pub reference_type: String,
    pub description: String,
    pub holder_name: Option<String>,
    pub currency: String,
    pub balance: Option<String>,
    pub balance_date: Option<String>,
    pub available_balance: Option<String>,
    pub consent_expires_at: Option<String>,
    pub availability: String,
    pub deprecated: bool,
    pub journal_id: i64,
    pub journal_code: String,
    pub last_sync: Option<String>,
    pub status: String,
    pub message: Option<String>,
    #[serde(skip)]
    pub sync_cursor: Option<String>,
    #[serde(skip)]
    pub sync_cursor_at: Option<String>,
    #[serde(skip)]
    pub sync_state: Option<String>,
    #[serde(skip)]
    pub sync_run_id: Option<i64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Journal {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub iban: Option<String>,
    pub currency: String,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StoredLine {
    pub transaction_id: String,
    pub statement_key: String,
    pub booking_date: String,
    pub value_date: Option<String>,
    pub amount: String,
    pub currency: String,
    pub payment_reference: String,
    pub structured_reference: bool,
    pub description: Option<String>,
    pub partner_name: Option<String>,
    pub partner_account: Option<String>,
    pub end_to_end_id: Option<String>,
    pub bank_transaction_code: Option<String>,
    pub mandate_id: Option<String>,
    pub creditor_id: Option<String>,
    pub card_reference: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StoredStatement {
    pub id: i64,
    pub journal_id: i64,
    pub key: String,
    pub name: String,
    pub date_from: String,
    pub date_to: String,
    pub balance_start: String,
    pub balance_end: String,
    /// Sum of the stored lines, exact.
    pub lines_total: String,
    /// `balance_start + lines_total - balance_end`; zero when the statement chains.
    pub difference: String,
    pub lines: Vec<StoredLine>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StoredPending {
    pub transaction_id: String,
    pub date: String,
    pub amount: String,
    pub currency: String,
    pub payment_reference: String,
    pub partner_name: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StoredWarning {
    pub online_account_id: i64,
    pub kind: String,
    pub message: String,
    pub created_at: String,
}

/// Counts of what one batch changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub new_lines: u64,
    pub updated_lines: u64,
    /// Updated lines whose amount the bank changed (each also recorded as a warning).
    pub changed_amounts: u64,
    /// Statements of the finished sync whose balances do not move by the sum of their stored
    /// lines (each also recorded as a warning).
    pub unbalanced_statements: u64,
    pub statements: u64,
    pub done: bool,
}

/// Where a sync of one account starts.
#[derive(Clone, Debug)]
pub struct Resume {
    pub run_id: i64,
    pub cursor: Option<String>,
    pub state: Option<String>,
}

/// A pending connection attempt of the two-step connect (`erp connect begin` / `finish`).
#[derive(Clone, Debug)]
pub struct ConnectAttempt {
    pub connection_id: String,
    pub state: String,
    pub institution_id: String,
    pub redirect_uri: String,
    pub link_id: Option<i64>,
}

pub struct Db {
    conn: Connection,
    path: PathBuf,
    /// Checkpoints the WAL off the sync's thread; started by the first batch.
    checkpointer: Option<Checkpointer>,
    /// Bytes (estimated) committed since the last checkpoint was asked for.
    uncheckpointed: usize,
}

/// The automatic checkpoint's threshold (pages of 4 KiB: 64 MiB), a bound only.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 16_384;
/// A background checkpoint is asked for after about this much committed line data.
const CHECKPOINT_EVERY_BYTES: usize = 16 * 1024 * 1024;

/// A thread with its own connection that runs PASSIVE checkpoints when asked, so the writer
/// never waits for a checkpoint's fsyncs. Safe to lose at any instant: a checkpoint only copies
/// committed pages from the WAL into the database file, and SQLite redoes it after a crash.
struct Checkpointer {
    wake: Option<std::sync::mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> Option<Self> {
        let conn = open_conn(path, false).ok()?;
        // One pending request is enough: a checkpoint catches up with everything committed.
        let (wake, asked) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("erp-checkpoint".into())
            .spawn(move || {
                while asked.recv().is_ok() {
                    // Best effort: a busy or failed checkpoint is retried by the next request,
                    // and the writer's automatic checkpoint bounds the WAL meanwhile.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .ok()?;
        Some(Self {
            wake: Some(wake),
            thread: Some(thread),
        })
    }

    fn ask(&self) {
        if let Some(w) = &self.wake {
            // Full means a checkpoint is already asked for.
            let _ = w.try_send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.wake = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn open_conn(path: &Path, create: bool) -> Result<Connection, ErpError> {
    check_path(path)?;
    // No SQLITE_OPEN_URI: `--db` is a file path, and the key file is named after it.
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        crate::capabilities::storage::create_private(path)
            .map_err(|e| ErpError::Io(format!("cannot create {}: {e}", path.display())))?;
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

/// The files a command may create (the database and its key file), noted before it runs, so a
/// command that fails creates nothing.
pub struct NewFiles {
    db: PathBuf,
    db_existed: bool,
    key_existed: bool,
}

impl NewFiles {
    pub fn note(db: &Path) -> Self {
        Self {
            db: db.to_owned(),
            db_existed: db.exists(),
            key_existed: db.with_extension("key").exists(),
        }
    }

    /// Removes what the failed command created, as long as nothing in it matters: no link, no
    /// pending connect, no plugin value outside the institution catalogue's scratch space. Of
    /// an existing database, only a storage key the command made.
    pub fn remove_unused(&self) {
        if (self.db_existed && self.key_existed)
            || !self.db.exists()
            || !self.unused().unwrap_or(false)
        {
            return;
        }
        if self.db_existed {
            // A database that only holds installed providers: the storage key a failed command
            // made for it protects nothing yet.
            let _ = std::fs::remove_file(self.db.with_extension("key"));
            // The read-only check above cannot remove the WAL files when it closes last; a
            // writable connection closing does.
            drop(Connection::open(&self.db));
            return;
        }
        // Values the provider's storage kept aside belong with this database and its key.
        let kept = format!(
            "{}.recovery-",
            self.db.file_name().unwrap_or_default().to_string_lossy()
        );
        let dir = match self.db.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        if std::fs::read_dir(dir).is_ok_and(|mut entries| {
            entries.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with(&kept)))
        }) {
            return;
        }
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.db.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
        if !self.key_existed {
            let _ = std::fs::remove_file(self.db.with_extension("key"));
        }
    }

    fn unused(&self) -> rusqlite::Result<bool> {
        let conn = Connection::open_with_flags(
            &self.db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        for (table, filter) in [
            ("links", "1 = 1"),
            ("connect_attempts", "1 = 1"),
            ("plugin_storage", "connection != 'catalogue'"),
        ] {
            let exists: bool = conn.query_row(
                "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )?;
            if exists {
                let rows: i64 = conn.query_row(
                    &format!("SELECT COUNT(*) FROM {table} WHERE {filter}"),
                    [],
                    |r| r.get(0),
                )?;
                if rows > 0 {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

impl Db {
    /// Open (creating if needed) and migrate the database at `path`.
    pub fn open(path: &Path) -> Result<Self, ErpError> {
        let mut conn = open_conn(path, true)?;
        migrate(&mut conn).map_err(|e| match e {
            MigrateError::Sql(e) => ErpError::db(path, e),
            MigrateError::TooNew(v) => ErpError::Usage(format!(
                "{}: the database has schema version {v}, newer than this erp knows ({}); use a newer erp",
                path.display(),
                MIGRATIONS.len()
            )),
            MigrateError::Step { recorded, reason } => ErpError::Usage(format!(
                "{}: the database says schema version {recorded} but its tables do not match ({reason}); it was changed outside erp: restore it from a backup or give another --db",
                path.display()
            )),
        })?;
        // Values the provider's storage kept aside when this database could not take them
        // (locked, disk full) go back in now; if it still cannot, the next storage open says so.
        let _ = crate::capabilities::storage::replay_kept_values(&conn, path, Duration::ZERO);
        Ok(Self {
            conn,
            path: path.to_owned(),
            checkpointer: None,
            uncheckpointed: 0,
        })
    }

    /// Open an existing database for reading verbs; a missing file is a clear error, never a new
    /// empty database.
    pub fn open_existing(path: &Path) -> Result<Self, ErpError> {
        check_path(path)?;
        if !path.exists() {
            return Err(ErpError::Usage(format!(
                "no ERP database at {}: connect a bank first (`erp connect --institution NAME`) or run `erp-dev demo`",
                path.display()
            )));
        }
        Self::open(path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    fn err(&self, e: rusqlite::Error) -> ErpError {
        ErpError::db(&self.path, e)
    }

    fn immediate(&mut self) -> Result<Transaction<'_>, ErpError> {
        let path = self.path.clone();
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| ErpError::db(&path, e))
    }

    // ---- links -------------------------------------------------------------------------------

    pub fn links(&self) -> Result<Vec<Link>, ErpError> {
        self.query_links("1 = 1", params![])
    }

    pub fn link(&self, id: i64) -> Result<Link, ErpError> {
        self.query_links("id = ?1", params![id])?
            .pop()
            .ok_or_else(|| {
                ErpError::Usage(format!(
                    "there is no link {id}; `erp status` lists the links"
                ))
            })
    }

    /// Links whose next refresh has passed, with auto-sync on and not disconnected.
    pub fn due_links(&self, at: DateTime<Utc>) -> Result<Vec<Link>, ErpError> {
        self.query_links(
            "auto_sync = 1 AND state != 'disconnected' AND (next_refresh IS NULL OR next_refresh <= ?1)",
            params![stamp(at)],
        )
    }

    fn query_links(&self, filter: &str, p: &[&dyn rusqlite::ToSql]) -> Result<Vec<Link>, ErpError> {
        let sql = format!(
            "SELECT id, provider, connection_id, institution_id, institution_name, institution_status, provider_name,
                    organization_name, state, message, consent_expires_at, last_refresh, next_refresh, auto_sync, created_at,
                    sync_failures
             FROM links WHERE {filter} ORDER BY id"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(p, |r| {
                Ok(Link {
                    id: r.get(0)?,
                    provider: r.get(1)?,
                    connection_id: r.get(2)?,
                    institution_id: r.get(3)?,
                    institution_name: r.get(4)?,
                    institution_status: r.get(5)?,
                    provider_name: r.get(6)?,
                    organization_name: r.get(7)?,
                    state: r.get(8)?,
                    message: r.get(9)?,
                    consent_expires_at: r.get(10)?,
                    last_refresh: r.get(11)?,
                    next_refresh: r.get(12)?,
                    auto_sync: r.get(13)?,
                    created_at: r.get(14)?,
                    sync_failures: r.get(15)?,
                })
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }

    pub fn set_link_state(
        &mut self,
        link_id: i64,
        state: &str,
        message: Option<&str>,
    ) -> Result<(), ErpError> {
        self.conn
            .execute(
                "UPDATE links SET state = ?2, message = ?3 WHERE id = ?1",
                params![link_id, state, message],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn set_auto_sync(&mut self, link_id: i64, on: bool) -> Result<(), ErpError> {
        self.conn
            .execute(
                "UPDATE links SET auto_sync = ?2 WHERE id = ?1",
                params![link_id, on],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Record the end of a link's sync: last refresh now, next one `refresh` later, or sooner
    /// after a failed sync (`failed`: an account ended in error): 15 minutes, doubling with each
    /// failure in a row up to `refresh`. A link disconnected meanwhile (by another process)
    /// stays disconnected.
    pub fn finish_link_sync(
        &mut self,
        link_id: i64,
        at: DateTime<Utc>,
        refresh: chrono::TimeDelta,
        state: &str,
        message: Option<&str>,
        failed: bool,
    ) -> Result<(), ErpError> {
        let path = self.path.clone();
        let tx = self.immediate()?;
        let inner = || -> rusqlite::Result<()> {
            let (current, failures): (String, u32) = tx.query_row(
                "SELECT state, sync_failures FROM links WHERE id = ?1",
                params![link_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let consent = "consent_expires_at = (SELECT MIN(consent_expires_at) FROM online_accounts WHERE link_id = ?1)";
            if current == "disconnected" {
                tx.execute(
                    &format!("UPDATE links SET last_refresh = ?2, {consent} WHERE id = ?1"),
                    params![link_id, stamp(at)],
                )?;
                return Ok(());
            }
            let failures = if failed {
                failures.saturating_add(1)
            } else {
                0
            };
            tx.execute(
                &format!(
                    "UPDATE links SET last_refresh = ?2, next_refresh = ?3, state = ?4, message = ?5,
                         sync_failures = ?6, {consent}
                     WHERE id = ?1"
                ),
                params![
                    link_id,
                    stamp(at),
                    stamp(at + next_try(failures, refresh)),
                    state,
                    message,
                    failures
                ],
            )?;
            Ok(())
        };
        inner().map_err(|e| ErpError::db(&path, e))?;
        tx.commit().map_err(|e| ErpError::db(&path, e))?;
        Ok(())
    }

    /// Disconnect a link: its state, no automatic sync, and everything its provider stored (the
    /// bank tokens), in one transaction. Journals and statements stay.
    pub fn disconnect_link(&mut self, link_id: i64, plugin: &str) -> Result<(), ErpError> {
        let path = self.path.clone();
        let tx = self.immediate()?;
        let inner = || -> rusqlite::Result<()> {
            tx.execute(
                "UPDATE links SET state = 'disconnected', message = 'disconnected by the user', auto_sync = 0
                 WHERE id = ?1",
                params![link_id],
            )?;
            let storage: bool = tx.query_row(
                "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'plugin_storage'",
                [],
                |r| r.get(0),
            )?;
            if storage {
                tx.execute(
                    "DELETE FROM plugin_storage WHERE plugin = ?1
                       AND connection = (SELECT connection_id FROM links WHERE id = ?2)",
                    params![plugin, link_id],
                )?;
            }
            Ok(())
        };
        inner().map_err(|e| ErpError::db(&path, e))?;
        tx.commit().map_err(|e| ErpError::db(&path, e))?;
        Ok(())
    }

    /// Create a link and its accounts (journals matched or created) in one transaction, or, when
    /// `existing` is given (update credentials), refresh that link and add new accounts.
    /// Returns the link id and, per account, (online account id, created).
    pub fn save_connection(
        &mut self,
        existing: Option<i64>,
        connection_id: &str,
        provider: &str,
        connection: &crate::runtime::types::Connection,
    ) -> Result<(i64, Vec<(i64, bool)>), ErpError> {
        let path = self.path.clone();
        let tx = self.immediate()?;
        let inner = || -> rusqlite::Result<(i64, Vec<(i64, bool)>)> {
            let inst = &connection.institution;
            let now = stamp(now());
            let link_id = match existing {
                Some(id) => {
                    tx.execute(
                        "UPDATE links SET state = 'connected', message = NULL, organization_id = ?2,
                             organization_name = ?3, institution_name = ?4, institution_status = ?5 WHERE id = ?1",
                        params![
                            id,
                            connection.organization_id,
                            connection.organization_name,
                            inst.name,
                            status_name(inst.status)
                        ],
                    )?;
                    id
                }
                None => {
                    tx.execute(
                        "INSERT INTO links (provider, connection_id, institution_id, institution_name, institution_status,
                             provider_name, organization_id, organization_name, state, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'connected', ?9)",
                        params![
                            provider,
                            connection_id,
                            inst.id,
                            inst.name,
                            status_name(inst.status),
                            inst.provider_name,
                            connection.organization_id,
                            connection.organization_name,
                            now
                        ],
                    )?;
                    tx.last_insert_rowid()
                }
            };
            let mut out = Vec::new();
            for account in &connection.accounts {
                out.push(upsert_account(&tx, link_id, account)?);
            }
            tx.execute(
                "UPDATE links SET consent_expires_at = (SELECT MIN(consent_expires_at) FROM online_accounts WHERE link_id = ?1)
                 WHERE id = ?1",
                params![link_id],
            )?;
            tx.execute(
                "DELETE FROM connect_attempts WHERE connection_id = ?1",
                params![connection_id],
            )?;
            Ok((link_id, out))
        };
        let out = inner().map_err(|e| ErpError::db(&path, e))?;
        tx.commit().map_err(|e| ErpError::db(&path, e))?;
        Ok(out)
    }

    /// Add accounts the provider lists for a link (Fetch Accounts), refresh existing ones.
    pub fn merge_accounts(
        &mut self,
        link_id: i64,
        accounts: &[Account],
    ) -> Result<Vec<(i64, bool)>, ErpError> {
        let path = self.path.clone();
        let tx = self.immediate()?;
        let mut out = Vec::new();
        for account in accounts {
            out.push(upsert_account(&tx, link_id, account).map_err(|e| ErpError::db(&path, e))?);
        }
        tx.commit().map_err(|e| ErpError::db(&path, e))?;
        Ok(out)
    }

    // ---- connect attempts --------------------------------------------------------------------

    pub fn save_attempt(&mut self, a: &ConnectAttempt) -> Result<(), ErpError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO connect_attempts (connection_id, state, institution_id, redirect_uri, link_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![a.connection_id, a.state, a.institution_id, a.redirect_uri, a.link_id, stamp(now())],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn attempt_by_state(&self, state: &str) -> Result<Option<ConnectAttempt>, ErpError> {
        self.conn
            .query_row(
                "SELECT connection_id, state, institution_id, redirect_uri, link_id FROM connect_attempts WHERE state = ?1",
                params![state],
                |r| {
                    Ok(ConnectAttempt {
                        connection_id: r.get(0)?,
                        state: r.get(1)?,
                        institution_id: r.get(2)?,
                        redirect_uri: r.get(3)?,
                        link_id: r.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Forget what the plugin stored for a connection that never became a link (a failed connect),
    /// so bad input leaves nothing behind.
    pub fn forget_plugin_storage(
        &mut self,
        plugin: &str,
        connection_id: &str,
    ) -> Result<(), ErpError> {
        let exists: bool = self
            .conn
            .query_row(
                "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'plugin_storage'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        if exists {
            self.conn
                .execute(
                    "DELETE FROM plugin_storage WHERE plugin = ?1 AND connection = ?2",
                    params![plugin, connection_id],
                )
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    // ---- accounts and journals ---------------------------------------------------------------

    pub fn accounts(&self, link_id: Option<i64>) -> Result<Vec<OnlineAccount>, ErpError> {
        match link_id {
            Some(id) => self.query_accounts("a.link_id = ?1", params![id]),
            None => self.query_accounts("1 = 1", params![]),
        }
    }

    /// An account by its ERP id or its provider id.
    pub fn account(&self, key: &str) -> Result<OnlineAccount, ErpError> {
        let found = match key.parse::<i64>() {
            Ok(id) => self.query_accounts("a.id = ?1", params![id])?,
            Err(_) => self.query_accounts("a.provider_account_id = ?1", params![key])?,
        };
        match found.len() {
            1 => Ok(found.into_iter().next().expect("one element")),
            0 => Err(ErpError::Usage(format!(
                "there is no online account {key}; `erp accounts` lists them"
            ))),
            _ => Err(ErpError::Usage(format!(
                "account {key} is linked more than once; give the ERP id from `erp accounts`"
            ))),
        }
    }

    fn query_accounts(
        &self,
        filter: &str,
        p: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<OnlineAccount>, ErpError> {
        let sql = format!(
            "SELECT a.id, a.link_id, a.provider_account_id, a.institution_id, a.reference, a.reference_type, a.description,
                    a.holder_name, a.currency, a.balance, a.balance_date, a.available_balance, a.consent_expires_at,
                    a.availability, a.deprecated, a.journal_id, j.code, a.last_sync, a.status, a.message,
                    a.sync_cursor, a.sync_cursor_at, a.sync_state, a.sync_run_id
             FROM online_accounts a JOIN journals j ON j.id = a.journal_id WHERE {filter} ORDER BY a.id"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        stmt.query_map(p, |r| {
            Ok(OnlineAccount {
                id: r.get(0)?,
                link_id: r.get(1)?,
                provider_account_id: r.get(2)?,
                institution_id: r.get(3)?,
                reference: r.get(4)?,
                reference_type: r.get(5)?,
                description: r.get(6)?,
                holder_name: r.get(7)?,
                currency: r.get(8)?,
                balance: r.get(9)?,
                balance_date: r.get(10)?,
                available_balance: r.get(11)?,
                consent_expires_at: r.get(12)?,
                availability: r.get(13)?,
                deprecated: r.get(14)?,
                journal_id: r.get(15)?,
                journal_code: r.get(16)?,
                last_sync: r.get(17)?,
                status: r.get(18)?,
                message: r.get(19)?,
                sync_cursor: r.get(20)?,
                sync_cursor_at: r.get(21)?,
                sync_state: r.get(22)?,
                sync_run_id: r.get(23)?,
            })
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| self.err(e))
    }

    pub fn journals(&self) -> Result<Vec<Journal>, ErpError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, code, name, iban, currency FROM journals ORDER BY id")
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| {
            Ok(Journal {
                id: r.get(0)?,
                code: r.get(1)?,
                name: r.get(2)?,
                iban: r.get(3)?,
                currency: r.get(4)?,
            })
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| self.err(e))
    }

    /// A journal by id or code.
    pub fn journal(&self, key: &str) -> Result<Journal, ErpError> {
        self.journals()?
            .into_iter()
            .find(|j| j.id.to_string() == key || j.code.eq_ignore_ascii_case(key))
            .ok_or_else(|| {
                ErpError::Usage(format!(
                    "there is no journal {key}; `erp accounts` shows each account's journal"
                ))
            })
    }

    pub fn set_account_status(
        &mut self,
        account_id: i64,
        status: &str,
        message: Option<&str>,
    ) -> Result<(), ErpError> {
        self.conn
            .execute(
                "UPDATE online_accounts SET status = ?2, message = ?3 WHERE id = ?1",
                params![account_id, status, message],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    // ---- sync --------------------------------------------------------------------------------

    /// Start a sync run for an account: an interrupted run's cursor is resumed when fresh.
    pub fn begin_run(&mut self, account: &OnlineAccount) -> Result<Resume, ErpError> {
        let path = self.path.clone();
        let at = now();
        let tx = self.immediate()?;
        let inner = || -> rusqlite::Result<Resume> {
            // A run still marked running was cut short by a crash (the link lock proves no one
            // else is running it now).
            tx.execute(
                "UPDATE sync_runs SET status = 'interrupted', ended_at = ?2
                 WHERE online_account_id = ?1 AND status = 'running'",
                params![account.id, stamp(at)],
            )?;
            let (cursor, cursor_at, state): (Option<String>, Option<String>, Option<String>) = tx
                .query_row(
                "SELECT sync_cursor, sync_cursor_at, sync_state FROM online_accounts WHERE id = ?1",
                params![account.id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let fresh = cursor_at
                .as_deref()
                .and_then(parse_stamp)
                .is_some_and(|t| at - t < CURSOR_FRESH_FOR);
            let cursor = cursor.filter(|_| fresh);
            tx.execute(
                "INSERT INTO sync_runs (link_id, online_account_id, started_at, status) VALUES (?1, ?2, ?3, 'running')",
                params![account.link_id, account.id, stamp(at)],
            )?;
            let run_id = tx.last_insert_rowid();
            tx.execute(
                "UPDATE online_accounts SET sync_run_id = ?2, sync_cursor = ?3,
                     sync_cursor_at = CASE WHEN ?3 IS NULL THEN NULL ELSE sync_cursor_at END
                 WHERE id = ?1",
                params![account.id, run_id, cursor],
            )?;
            Ok(Resume {
                run_id,
                cursor,
                state,
            })
        };
        let out = inner().map_err(|e| ErpError::db(&path, e))?;
        tx.commit().map_err(|e| ErpError::db(&path, e))?;
        Ok(out)
    }

    /// Commit one batch and its progress in ONE transaction. A batch that does not fit the
    /// contract (a malformed amount or date) is refused whole: nothing of it is stored.
    pub fn apply_batch(
        &mut self,
        account: &OnlineAccount,
        run_id: i64,
        link_id: i64,
        batch: &SyncBatch,
    ) -> Result<BatchOutcome, ErpError> {
        validate_batch(batch)?;
        let path = self.path.clone();
        let at = stamp(now());
        let tx = self.immediate()?;
        let inner = || -> rusqlite::Result<BatchOutcome> {
            let mut out = BatchOutcome::default();
            if let Some(details) = &batch.account {
                update_account_details(&tx, account.id, details)?;
            }
            {
                // ?1–?18 are `line_params` in both statements, so the two cannot drift apart.
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO statement_lines (journal_id, transaction_id, statement_key,
                         booking_date, value_date, amount, currency, payment_reference, structured_reference, description,
                         partner_name, partner_account, end_to_end_id, bank_transaction_code, mandate_id, creditor_id,
                         card_reference, raw_json, online_account_id, sync_run_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
                )?;
                for l in &batch.lines {
                    let amount = money::normalize(&l.amount).unwrap_or_else(|| l.amount.clone());
                    let extra: [&dyn ToSql; 2] = [&account.id, &run_id];
                    out.new_lines += insert.execute(params_from_iter(
                        line_params(&account.journal_id, l, &amount)
                            .into_iter()
                            .chain(extra),
                    ))? as u64;
                }
                let mut update = tx.prepare_cached(
                    "UPDATE statement_lines SET statement_key = ?3, booking_date = ?4, value_date = ?5, amount = ?6,
                         currency = ?7, payment_reference = ?8, structured_reference = ?9, description = ?10,
                         partner_name = ?11, partner_account = ?12, end_to_end_id = ?13, bank_transaction_code = ?14,
                         mandate_id = ?15, creditor_id = ?16, card_reference = ?17, raw_json = ?18, updated_at = ?19
                     WHERE journal_id = ?1 AND transaction_id = ?2",
                )?;
                for l in &batch.updated_lines {
                    // A bank that changes a booked amount changes a statement the accountant may
                    // already have reconciled: apply it (the bank is the truth) but say so.
                    let before: Option<(String, String)> = tx
                        .query_row(
                            "SELECT amount, statement_key FROM statement_lines WHERE journal_id = ?1 AND transaction_id = ?2",
                            params![account.journal_id, l.transaction_id],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )
                        .optional()?;
                    if let Some((old, key)) = before
                        && money::parse(&old) != money::parse(&l.amount)
                    {
                        tx.execute(
                            "INSERT INTO sync_warnings (sync_run_id, online_account_id, kind, message, created_at)
                             VALUES (?1, ?2, 'other', ?3, ?4)",
                            params![
                                run_id,
                                account.id,
                                format!(
                                    "the bank changed the amount of transaction {} (statement {key}) from {old} to {} {}; \
                                     the line was updated: check any reconciliation made on it",
                                    l.transaction_id, l.amount, l.currency
                                ),
                                at
                            ],
                        )?;
                        out.changed_amounts += 1;
                    }
                    let amount = money::normalize(&l.amount).unwrap_or_else(|| l.amount.clone());
                    let extra: [&dyn ToSql; 1] = [&at];
                    out.updated_lines += update.execute(params_from_iter(
                        line_params(&account.journal_id, l, &amount)
                            .into_iter()
                            .chain(extra),
                    ))? as u64;
                }
                let mut upsert = tx.prepare_cached(
                    "INSERT INTO statements (journal_id, key, name, date_from, date_to, balance_start, balance_end)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (journal_id, key) DO UPDATE SET name = excluded.name, date_from = excluded.date_from,
                         date_to = excluded.date_to, balance_start = excluded.balance_start, balance_end = excluded.balance_end",
                )?;
                // The statements this sync touched, checked against their lines when it ends.
                tx.execute_batch(TOUCHED_STATEMENTS)?;
                let mut touch = tx.prepare_cached(
                    "INSERT OR IGNORE INTO temp.touched_statements (journal_id, key) VALUES (?1, ?2)",
                )?;
                for s in &batch.statements {
                    touch.execute(params![account.journal_id, s.key])?;
                    upsert.execute(params![
                        account.journal_id,
                        s.key,
                        s.name,
                        s.date_from,
                        s.date_to,
                        money::normalize(&s.balance_start)
                            .unwrap_or_else(|| s.balance_start.clone()),
                        money::normalize(&s.balance_end).unwrap_or_else(|| s.balance_end.clone())
                    ])?;
                    out.statements += 1;
                }
            }
            if let Some(pending) = &batch.pending {
                tx.execute(
                    "DELETE FROM pending_lines WHERE online_account_id = ?1",
                    params![account.id],
                )?;
                let mut insert = tx.prepare_cached(
                    "INSERT INTO pending_lines (online_account_id, transaction_id, date, amount, currency,
                         payment_reference, partner_name, raw_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for p in pending {
                    insert.execute(params![
                        account.id,
                        p.transaction_id,
                        p.date,
                        p.amount,
                        p.currency,
                        p.payment_reference,
                        p.partner_name,
                        p.raw_json
                    ])?;
                }
            }
            for w in &batch.warnings {
                tx.execute(
                    "INSERT INTO sync_warnings (sync_run_id, online_account_id, kind, message, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![run_id, account.id, warning_kind_name(w.kind), w.message, at],
                )?;
            }
            if matches!(batch.progress, SyncProgress::Done(_)) {
                out.unbalanced_statements = check_touched_statements(&tx, account, run_id, &at)?;
            }
            match &batch.progress {
                SyncProgress::More(cursor) => {
                    tx.execute(
                        "UPDATE online_accounts SET sync_cursor = ?2, sync_cursor_at = ?3 WHERE id = ?1",
                        params![account.id, cursor, at],
                    )?;
                }
                SyncProgress::Done(state) => {
                    out.done = true;
                    tx.execute(
                        "UPDATE online_accounts SET sync_cursor = NULL, sync_cursor_at = NULL, sync_state = ?2,
                             last_sync = ?3, status = CASE WHEN ?4 THEN 'warning' ELSE 'ok' END,
                             message = ?5, sync_run_id = NULL
                         WHERE id = ?1",
                        params![
                            account.id,
                            state,
                            at,
                            !batch.warnings.is_empty()
                                || out.changed_amounts > 0
                                || out.unbalanced_statements > 0,
                            batch.warnings.last().map(|w| w.message.clone())
                        ],
                    )?;
                }
            }
            tx.execute(
                "UPDATE sync_runs SET batches = batches + 1, lines_new = lines_new + ?2, lines_updated = lines_updated + ?3,
                     statements = statements + ?4, warnings = warnings + ?5, transactions_read = ?6,
                     status = CASE WHEN ?7 THEN 'done' ELSE status END,
                     ended_at = CASE WHEN ?7 THEN ?8 ELSE ended_at END
                 WHERE id = ?1",
                params![
                    run_id,
                    out.new_lines,
                    out.updated_lines,
                    out.statements,
                    batch.warnings.len() as u64 + out.changed_amounts + out.unbalanced_statements,
                    batch.transactions_read,
                    out.done,
                    at
                ],
            )?;
            tx.execute(
                "UPDATE link_locks SET heartbeat_at = ?2 WHERE link_id = ?1",
                params![link_id, at],
            )?;
            Ok(out)
        };
        let out = inner().map_err(|e| ErpError::db(&path, e))?;
        tx.commit().map_err(|e| ErpError::db(&path, e))?;
        self.after_commit(batch);
        Ok(out)
    }

    /// Ask the background checkpointer to run once enough has been committed.
    fn after_commit(&mut self, batch: &SyncBatch) {
        // Rows are about the raw JSON plus ~500 bytes of columns and index entries.
        self.uncheckpointed += batch
            .lines
            .iter()
            .chain(&batch.updated_lines)
            .map(|l| l.raw_json.len() + 512)
            .sum::<usize>();
        if self.uncheckpointed < CHECKPOINT_EVERY_BYTES {
            return;
        }
        self.uncheckpointed = 0;
        if self.checkpointer.is_none() {
            self.checkpointer = Checkpointer::start(&self.path);
        }
        if let Some(c) = &self.checkpointer {
            c.ask();
        }
    }

    /// Record a failed sync: the run ends in error, the account says why; the cursor is dropped so
    /// the next sync starts afresh (lines already committed stay, and duplicates are skipped).
    pub fn fail_run(
        &mut self,
        account_id: i64,
        run_id: i64,
        status: &str,
        message: &str,
    ) -> Result<(), ErpError> {
        let path = self.path.clone();
        let at = stamp(now());
        let tx = self.immediate()?;
        let inner = || -> rusqlite::Result<()> {
            tx.execute(
                "UPDATE sync_runs SET status = 'error', ended_at = ?2, error = ?3 WHERE id = ?1",
                params![run_id, at, message],
            )?;
            tx.execute(
                "UPDATE online_accounts SET status = ?2, message = ?3, sync_cursor = NULL, sync_cursor_at = NULL,
                     sync_run_id = NULL WHERE id = ?1",
                params![account_id, status, message],
            )?;
            Ok(())
        };
        inner().map_err(|e| ErpError::db(&path, e))?;
        tx.commit().map_err(|e| ErpError::db(&path, e))?;
        Ok(())
    }

    // ---- locks -------------------------------------------------------------------------------

    /// Take the sync lock of a link. A lock whose process is gone (or that has not beaten for
    /// half an hour) is taken over, so a crash never leaves a link stuck.
    pub fn acquire_lock(&mut self, link_id: i64) -> Result<(), ErpError> {
        let path = self.path.clone();
        let me = process_identity(std::process::id())
            .unwrap_or_else(|| format!("pid:{}", std::process::id()));
        let at = now();
        let tx = self.immediate()?;
        let current: Option<(String, i64, String, String)> = tx
            .query_row(
                "SELECT holder, pid, acquired_at, heartbeat_at FROM link_locks WHERE link_id = ?1",
                params![link_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(|e| ErpError::db(&path, e))?;
        if let Some((holder, pid, acquired_at, heartbeat)) = current {
            let alive = u32::try_from(pid)
                .ok()
                .and_then(process_identity)
                .is_some_and(|now_holder| now_holder == holder);
            let fresh = parse_stamp(&heartbeat).is_some_and(|t| at - t < LOCK_STALE_AFTER);
            if holder != me && alive && fresh {
                return Err(ErpError::Locked {
                    link: link_id,
                    pid,
                    since: acquired_at,
                });
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO link_locks (link_id, holder, pid, acquired_at, heartbeat_at) VALUES (?1, ?2, ?3, ?4, ?4)",
            params![link_id, me, std::process::id(), stamp(at)],
        )
        .map_err(|e| ErpError::db(&path, e))?;
        tx.commit().map_err(|e| ErpError::db(&path, e))?;
        Ok(())
    }

    pub fn release_lock(&mut self, link_id: i64) -> Result<(), ErpError> {
        self.conn
            .execute(
                "DELETE FROM link_locks WHERE link_id = ?1 AND pid = ?2",
                params![link_id, std::process::id()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    // ---- reads -------------------------------------------------------------------------------

    pub fn statements(&self, journal_id: i64) -> Result<Vec<StoredStatement>, ErpError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, journal_id, key, name, date_from, date_to, balance_start, balance_end
                 FROM statements WHERE journal_id = ?1 ORDER BY date_to, key",
            )
            .map_err(|e| self.err(e))?;
        let mut statements = stmt
            .query_map(params![journal_id], |r| {
                Ok(StoredStatement {
                    id: r.get(0)?,
                    journal_id: r.get(1)?,
                    key: r.get(2)?,
                    name: r.get(3)?,
                    date_from: r.get(4)?,
                    date_to: r.get(5)?,
                    balance_start: r.get(6)?,
                    balance_end: r.get(7)?,
                    lines_total: String::new(),
                    difference: String::new(),
                    lines: Vec::new(),
                })
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.err(e))?;
        for s in &mut statements {
            s.lines = self.read_lines(journal_id, Some(&s.key))?;
            // Checked: stored data from an older version may hold amounts past the bound.
            let total = money::sum(s.lines.iter().map(|l| l.amount.as_str()));
            s.lines_total = total.map_or_else(|| "?".into(), money::format);
            s.difference = match (money::parse(&s.balance_start), money::parse(&s.balance_end)) {
                (Some(start), Some(end)) => total
                    .and_then(|t| start.checked_add(t))
                    .and_then(|x| x.checked_sub(end))
                    .map_or_else(|| "?".into(), money::format),
                _ => "?".into(),
            };
        }
        Ok(statements)
    }

    /// Every line of a journal (with or without a statement), in a stable order.
    pub fn lines(&self, journal_id: i64) -> Result<Vec<StoredLine>, ErpError> {
        self.read_lines(journal_id, None)
    }

    fn read_lines(
        &self,
        journal_id: i64,
        statement_key: Option<&str>,
    ) -> Result<Vec<StoredLine>, ErpError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT transaction_id, statement_key, booking_date, value_date, amount, currency, payment_reference,
                        structured_reference, description, partner_name, partner_account, end_to_end_id,
                        bank_transaction_code, mandate_id, creditor_id, card_reference
                 FROM statement_lines WHERE journal_id = ?1 AND (?2 IS NULL OR statement_key = ?2)
                 ORDER BY booking_date, transaction_id",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![journal_id, statement_key], |r| {
            Ok(StoredLine {
                transaction_id: r.get(0)?,
                statement_key: r.get(1)?,
                booking_date: r.get(2)?,
                value_date: r.get(3)?,
                amount: r.get(4)?,
                currency: r.get(5)?,
                payment_reference: r.get(6)?,
                structured_reference: r.get(7)?,
                description: r.get(8)?,
                partner_name: r.get(9)?,
                partner_account: r.get(10)?,
                end_to_end_id: r.get(11)?,
                bank_transaction_code: r.get(12)?,
                mandate_id: r.get(13)?,
                creditor_id: r.get(14)?,
                card_reference: r.get(15)?,
            })
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| self.err(e))
    }

    pub fn line_count(&self) -> Result<u64, ErpError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM statement_lines", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    pub fn pending(&self, account_id: i64) -> Result<Vec<StoredPending>, ErpError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT transaction_id, date, amount, currency, payment_reference, partner_name
                 FROM pending_lines WHERE online_account_id = ?1 ORDER BY date, transaction_id",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![account_id], |r| {
            Ok(StoredPending {
                transaction_id: r.get(0)?,
                date: r.get(1)?,
                amount: r.get(2)?,
                currency: r.get(3)?,
                payment_reference: r.get(4)?,
                partner_name: r.get(5)?,
            })
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| self.err(e))
    }

    /// Warnings of each account's latest run.
    pub fn latest_warnings(&self) -> Result<Vec<StoredWarning>, ErpError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT w.online_account_id, w.kind, w.message, w.created_at FROM sync_warnings w
                 WHERE w.sync_run_id = (SELECT MAX(r.id) FROM sync_runs r
                                        WHERE r.online_account_id = w.online_account_id AND r.status != 'running')
                 ORDER BY w.online_account_id, w.id",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| {
            Ok(StoredWarning {
                online_account_id: r.get(0)?,
                kind: r.get(1)?,
                message: r.get(2)?,
                created_at: r.get(3)?,
            })
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| self.err(e))
    }
}

fn status_name(s: crate::runtime::types::InstitutionStatus) -> &'static str {
    use crate::runtime::types::InstitutionStatus as S;
    match s {
        S::Stable => "stable",
        S::Beta => "beta",
        S::Experimental => "experimental",
        S::Unknown => "unknown",
    }
}

pub fn availability_name(a: Availability) -> &'static str {
    match a {
        Availability::Available => "available",
        Availability::Readonly => "readonly",
        Availability::Unavailable => "unavailable",
    }
}

pub fn warning_kind_name(k: WarningKind) -> &'static str {
    match k {
        WarningKind::BalanceGap => "balance-gap",
        WarningKind::ConsentExpiring => "consent-expiring",
        WarningKind::Maintenance => "maintenance",
        WarningKind::Deprecated => "deprecated",
        WarningKind::RecentlySynchronized => "recently-synchronized",
        WarningKind::SynchronizationPending => "synchronization-pending",
        WarningKind::BetaInstitution => "beta-institution",
        WarningKind::Other => "other",
    }
}

fn update_account_details(tx: &Transaction<'_>, id: i64, a: &Account) -> rusqlite::Result<usize> {
    tx.execute(
        "UPDATE online_accounts SET reference = ?2, reference_type = ?3, description = ?4, holder_name = ?5,
             product = ?6, currency = ?7,
             balance = COALESCE(?8, balance), balance_date = COALESCE(?9, balance_date),
             available_balance = COALESCE(?10, available_balance), authorized_at = ?11, consent_expires_at = ?12,
             availability = ?13, deprecated = ?14, synchronized_at = ?15
         WHERE id = ?1",
        params![
            id,
            a.reference,
            a.reference_type,
            a.description,
            a.holder_name,
            a.product,
            a.currency,
            a.current_balance.as_ref().map(|b| money::normalize(&b.amount).unwrap_or_else(|| b.amount.clone())),
            a.current_balance.as_ref().map(|b| b.reference_date.clone()),
            a.available_balance.as_ref().map(|b| b.amount.clone()),
            a.authorized_at,
            a.consent_expires_at,
            availability_name(a.availability),
            a.deprecated,
            a.synchronized_at
        ],
    )
}

/// Insert or refresh one online account under a link; a new one gets a journal matched by IBAN
/// and currency, else a new journal.
fn upsert_account(
    tx: &Transaction<'_>,
    link_id: i64,
    a: &Account,
) -> rusqlite::Result<(i64, bool)> {
    let existing: Option<i64> = tx
        .query_row(
            "SELECT id FROM online_accounts WHERE link_id = ?1 AND provider_account_id = ?2",
            params![link_id, a.id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = existing {
        update_account_details(tx, id, a)?;
        return Ok((id, false));
    }
    let journal_id: Option<i64> = tx
        .query_row(
            "SELECT id FROM journals WHERE iban = ?1 AND currency = ?2 ORDER BY id LIMIT 1",
            params![a.reference, a.currency],
            |r| r.get(0),
        )
        .optional()?;
    let journal_id = match journal_id {
        Some(id) => id,
        None => {
            let n: i64 = tx.query_row("SELECT COUNT(*) FROM journals", [], |r| r.get(0))?;
            let code = format!("BNK{}", n + 1);
            let name = if a.description.trim().is_empty() {
                format!("Bank {}", a.reference)
            } else {
                a.description.clone()
            };
            tx.execute(
                "INSERT INTO journals (code, name, iban, currency) VALUES (?1, ?2, ?3, ?4)",
                params![code, name, a.reference, a.currency],
            )?;
            tx.last_insert_rowid()
        }
    };
    tx.execute(
        "INSERT INTO online_accounts (link_id, provider_account_id, institution_id, reference, reference_type, description,
             currency, journal_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![link_id, a.id, a.institution_id, a.reference, a.reference_type, a.description, a.currency, journal_id],
    )?;
    let id = tx.last_insert_rowid();
    update_account_details(tx, id, a)?;
    Ok((id, true))
}

/// The parameters ?1–?18 of the line INSERT and UPDATE: journal, transaction id, then the line's
/// fields from `statement_key` to `raw_json` (`amount` normalised by the caller).
fn line_params<'a>(
    journal: &'a i64,
    l: &'a StatementLine,
    amount: &'a dyn ToSql,
) -> [&'a dyn ToSql; 18] {
    [
        journal,
        &l.transaction_id,
        &l.statement_key,
        &l.booking_date,
        &l.value_date,
        amount,
        &l.currency,
        &l.payment_reference,
        &l.structured_reference,
        &l.description,
        &l.partner_name,
        &l.partner_account,
        &l.end_to_end_id,
        &l.bank_transaction_code,
        &l.mandate_id,
        &l.creditor_id,
        &l.card_reference,
        &l.raw_json,
    ]
}

/// `YYYY-MM-DD` of a real day (no chrono format parsing: this runs for every line).
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    match (num(0..4), num(5..7), num(8..10)) {
        (Some(y), Some(m), Some(d)) => NaiveDate::from_ymd_opt(y as i32, m, d).is_some(),
        _ => false,
    }
}

fn check_line(l: &StatementLine, what: &str) -> Result<(), String> {
    if l.transaction_id.is_empty() {
        return Err(format!("a {what} has an empty transaction id"));
    }
    match money::parse(&l.amount) {
        None => {
            return Err(format!(
                "{what} {}: amount `{}` is not an exact decimal",
                l.transaction_id, l.amount
            ));
        }
        Some(a) if !money::summable(a) => {
            return Err(format!(
                "{what} {}: amount `{}` is beyond what the books can sum (at most {} digits \
                 before the point)",
                l.transaction_id,
                l.amount,
                money::MAX_AMOUNT_DIGITS
            ));
        }
        Some(_) => {}
    }
    if !is_date(&l.booking_date) {
        return Err(format!(
            "{what} {}: booking date `{}` is not YYYY-MM-DD",
            l.transaction_id, l.booking_date
        ));
    }
    if let Some(v) = &l.value_date
        && !is_date(v)
    {
        return Err(format!(
            "{what} {}: value date `{v}` is not YYYY-MM-DD",
            l.transaction_id
        ));
    }
    Ok(())
}

fn check_statement(s: &Statement) -> Result<(), String> {
    if money::parse(&s.balance_start).is_none() || money::parse(&s.balance_end).is_none() {
        return Err(format!(
            "statement {}: a balance is not an exact decimal",
            s.key
        ));
    }
    if !is_date(&s.date_from) || !is_date(&s.date_to) {
        return Err(format!("statement {}: a date is not YYYY-MM-DD", s.key));
    }
    Ok(())
}

fn check_pending(p: &PendingLine) -> Result<(), String> {
    if !money::parse(&p.amount).is_some_and(money::summable) {
        return Err(format!(
            "pending {}: amount `{}` is not an exact decimal the books can sum",
            p.transaction_id, p.amount
        ));
    }
    Ok(())
}

/// Keys of the statements a sync touched (per connection: a sync resumed by another process
/// checks only what it touched itself).
const TOUCHED_STATEMENTS: &str = "CREATE TEMP TABLE IF NOT EXISTS touched_statements (
    journal_id INTEGER NOT NULL, key TEXT NOT NULL, PRIMARY KEY (journal_id, key))";

/// At the end of a sync: each statement it touched must move by the sum of the lines stored
/// under it (a provider counting a line the ERP did not keep would break the books silently).
/// Each one that does not is recorded as a warning; returns how many.
fn check_touched_statements(
    tx: &Transaction<'_>,
    account: &OnlineAccount,
    run_id: i64,
    at: &str,
) -> rusqlite::Result<u64> {
    tx.execute_batch(TOUCHED_STATEMENTS)?;
    let touched: Vec<(String, String, String)> = tx
        .prepare_cached(
            "SELECT s.key, s.balance_start, s.balance_end FROM statements s
             JOIN temp.touched_statements t ON t.journal_id = s.journal_id AND t.key = s.key
             WHERE s.journal_id = ?1 ORDER BY s.date_to, s.key",
        )?
        .query_map(params![account.journal_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut amounts = tx.prepare_cached(
        "SELECT amount FROM statement_lines WHERE journal_id = ?1 AND statement_key = ?2",
    )?;
    let mut unbalanced = 0;
    for (key, start, end) in touched {
        let lines: Vec<String> = amounts
            .query_map(params![account.journal_id, key], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let total = money::sum(lines.iter().map(String::as_str));
        let moved = money::parse(&end)
            .zip(money::parse(&start))
            .and_then(|(e, s)| e.checked_sub(s));
        let gap = total.zip(moved).and_then(|(t, m)| m.checked_sub(t));
        if gap.is_some_and(|g| g.is_zero()) {
            continue;
        }
        let message = format!(
            "statement {key} moves from {start} to {end}, but the {} lines stored under it sum \
             to {}: {} is not explained by stored lines (a transaction the bank listed twice \
             or changed?); check the statement against the bank's before reconciling it",
            lines.len(),
            total.map_or_else(|| "more than the books can hold".into(), money::format),
            gap.map_or_else(|| "the difference".into(), money::format),
        );
        tx.execute(
            "INSERT INTO sync_warnings (sync_run_id, online_account_id, kind, message, created_at)
             VALUES (?1, ?2, 'balance-gap', ?3, ?4)",
            params![run_id, account.id, message, at],
        )?;
        unbalanced += 1;
    }
    tx.execute(
        "DELETE FROM temp.touched_statements WHERE journal_id = ?1",
        params![account.journal_id],
    )?;
    Ok(unbalanced)
}

/// The host's own check of a batch before anything of it is written.
pub fn validate_batch(batch: &SyncBatch) -> Result<(), ErpError> {
    let bad = |reason: String| ErpError::BadBatch(reason);
    for l in &batch.lines {
        check_line(l, "line").map_err(bad)?;
    }
    for l in &batch.updated_lines {
        check_line(l, "updated line").map_err(bad)?;
    }
    for s in &batch.statements {
        check_statement(s).map_err(bad)?;
    }
    for p in batch.pending.iter().flatten() {
        check_pending(p).map_err(bad)?;
    }
    if let Some(a) = &batch.account
        && let Some(b) = &a.current_balance
        && money::parse(&b.amount).is_none()
    {
        return Err(bad(format!(
            "account {}: balance `{}` is not an exact decimal",
            a.id, b.amount
        )));
    }
    let _: &[Warning] = &batch.warnings;
    Ok(())
}

/// `pid:<pid>:<start time>` of a live process, or None when it is gone. The start time guards
/// against a recycled pid.
/// When a link is tried again after `failures` failed syncs in a row: 15 minutes, doubling with
/// each further failure, never later than the normal `refresh` interval; `refresh` after a clean
/// sync.
pub fn next_try(failures: u32, refresh: chrono::TimeDelta) -> chrono::TimeDelta {
    if failures == 0 {
        return refresh;
    }
    let factor = 1i32 << (failures - 1).min(16);
    (FIRST_RETRY * factor).min(refresh)
}

pub fn process_identity(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (starttime) counted after the command name, which may hold spaces.
    let after = stat.rsplit_once(')')?.1;
    let start = after.split_whitespace().nth(19)?;
    Some(format!("pid:{pid}:{start}"))
}

fn migrate(conn: &mut Connection) -> Result<(), MigrateError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(MigrateError::TooNew(version));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the write lock.
        let now: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if now > i as i64 {
            continue;
        }
        tx.execute_batch(sql).map_err(|e| MigrateError::Step {
            recorded: version,
            reason: match e {
                // SQLite's message alone: the error's own text quotes the whole migration.
                rusqlite::Error::SqlInputError { msg, .. } => msg,
                other => other.to_string(),
            },
        })?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

enum MigrateError {
    Sql(rusqlite::Error),
    TooNew(i64),
    /// A migration failed on a database whose recorded schema version is `recorded`.
    Step {
        recorded: i64,
        reason: String,
    },
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e)
    }
}

#[cfg(test)]
mod tests {
    use super::is_date;

    #[test]
    fn dates_are_real_days_in_yyyy_mm_dd() {
        for good in ["2026-11-25", "2024-02-29", "0001-01-01"] {
            assert!(is_date(good), "{good}");
        }
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-1-25",
            "2026/11/25",
            "2026-11-25T00",
            "26-11-2025",
            "２０２６-11-25",
            "+026-11-25",
            "",
        ] {
            assert!(!is_date(bad), "{bad:?} must be refused");
        }
    }
}
