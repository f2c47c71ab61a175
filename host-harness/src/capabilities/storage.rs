//! `interface storage`: a private key-value store on SQLite, scoped to one (plugin, connection).
//!
//! Every write runs in its own transaction with `synchronous=FULL`, so it is on disk when the call
//! returns: a refresh token rotated by the plugin survives a crash one instruction later. A write
//! the database cannot take (locked by another writer past the retries, disk full) is kept in a
//! recovery file reserved before the plugin runs, and written back later: see [`recovery`].
//!
//! # Encryption at rest
//!
//! The values a plugin stores are its bank credentials (refresh and access tokens), so the host
//! can encrypt them with a host key: [`StorageCapability::with_key`]. Without a key values are
//! stored as given (the behaviour before encryption existed).
//!
//! - Cipher: XChaCha20-Poly1305 (RustCrypto `chacha20poly1305`), a fresh random 192-bit nonce per
//!   write (large enough that random nonces never collide in practice).
//! - Stored form: `enc:v1:` + base64(nonce ‖ ciphertext ‖ tag), in the same TEXT column. Keys
//!   (`oauth/refresh-token`, ...) stay in clear so `list-keys` and prefixes work; they are names,
//!   not secrets.
//! - Associated data: the (plugin, connection, key) triple, so a ciphertext copied to another key,
//!   connection or plugin fails authentication instead of being read there.
//! - Reads: a value without the `enc:v1:` prefix is a legacy plaintext written before a key was
//!   configured and is returned as is (it is encrypted at its next write). A ciphertext that fails
//!   authentication (altered row, moved value, wrong key) or a ciphertext read without a key is a
//!   typed `unavailable` error saying so, never a panic and never garbage handed to the plugin.
//! - `compare-and-swap` compares plaintexts: the stored value is decrypted before comparing, since
//!   two encryptions of the same token never give the same text.
//! - Quota: `max-value-bytes` counts the plaintext, so a plugin sees the same limits either way.
//!
//! ## The key
//!
//! 32 random bytes, never stored in the database. The ERP helper gets it with [`host_key`]:
//! the environment variable [`KEY_ENV`] (`ERP_STORAGE_KEY`: 64 hex digits or standard base64 of
//! 32 bytes) when set, for deployments whose secret store injects it; otherwise a key file beside
//! the database ([`load_or_create_key`]), created on first use with mode 0600 (owner only) and
//! refused when group or others can read it. Losing the key makes stored tokens unreadable: the
//! user connects again (nothing else is lost, the ledger is not encrypted). Whoever can read both
//! the key file and the database can read the tokens: the key protects copies of the database
//! (backups, support dumps) rather than a compromised account.

mod recovery;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload, rand_core::RngCore};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::bindings::storage::{Host, StorageError};
pub use recovery::{LOCK_TIMEOUT_ENV, RESERVED_BYTES, WritePolicy, lock_timeout_override};
use recovery::{Record, RecoveryFile};

/// Environment variable holding the host storage key (64 hex digits or base64 of 32 bytes).
pub const KEY_ENV: &str = "ERP_STORAGE_KEY";
/// Marks a stored value as a version-1 ciphertext.
const ENC_PREFIX: &str = "enc:v1:";
/// XChaCha20 nonce length.
const NONCE_LEN: usize = 24;

/// Limits per connection: enough for tokens and small state, not a database.
#[derive(Clone, Copy, Debug)]
pub struct Quota {
    pub max_keys: usize,
    pub max_value_bytes: usize,
}

impl Default for Quota {
    fn default() -> Self {
        Self {
            max_keys: 1024,
            max_value_bytes: 64 * 1024,
        }
    }
}

pub struct StorageCapability {
    db: Connection,
    path: PathBuf,
    scope: Scope,
    policy: WritePolicy,
    /// Reserved before the plugin runs; holds what the database could not take.
    recovery: RecoveryFile,
    /// Values kept in the recovery file and not yet in the database: key → (the row before,
    /// the row now), stored forms.
    pending: BTreeMap<String, (Option<String>, Option<String>)>,
    /// Why the database refused the last kept write.
    cause: Option<String>,
    /// Time the current plugin call's writes waited on a database that refused them, not yet
    /// added to the call's deadline, and what was added so far (see [`Self::deadline_credit`]).
    waited: Duration,
    credited: Duration,
}

/// Why the store could not be opened; nothing of the plugin has run.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{}: cannot open the provider's storage: {source}", path.display())]
    Db {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "cannot reserve the provider's storage recovery file beside {} ({source}): free disk \
         space there or make the directory writable; nothing was sent to the bank",
        path.display()
    )]
    Reserve { path: PathBuf, source: io::Error },
    #[error("{0}")]
    Replay(String),
}

/// A storage write's failure: SQLite (retried, then kept in the recovery file) or the plugin's
/// own (quota, a value that does not decrypt), returned as is.
enum TxError {
    Sql(rusqlite::Error),
    Storage(StorageError),
}

impl From<rusqlite::Error> for TxError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e)
    }
}

impl From<StorageError> for TxError {
    fn from(e: StorageError) -> Self {
        Self::Storage(e)
    }
}

/// Whose keys these are; kept apart from the connection so a transaction can borrow both.
struct Scope {
    plugin: String,
    connection: String,
    quota: Quota,
    /// The host key's cipher; none stores values as given.
    cipher: Option<XChaCha20Poly1305>,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS plugin_storage (
    plugin TEXT NOT NULL,
    connection TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (plugin, connection, key)
) WITHOUT ROWID;";

impl StorageCapability {
    /// Open the store in the SQLite file at `path` (created if needed, 0600), with the write
    /// policy of [`WritePolicy::from_env`].
    pub fn open(
        path: &Path,
        plugin: &str,
        connection: &str,
        quota: Quota,
    ) -> Result<Self, OpenError> {
        Self::open_with(path, plugin, connection, quota, WritePolicy::from_env())
    }

    /// [`Self::open`] with a write policy. Values kept by sessions that ended without writing
    /// them back are replayed first, so the plugin reads them; then this session's recovery
    /// file is reserved.
    pub fn open_with(
        path: &Path,
        plugin: &str,
        connection: &str,
        quota: Quota,
        policy: WritePolicy,
    ) -> Result<Self, OpenError> {
        let db_err = |source| OpenError::Db {
            path: path.to_owned(),
            source,
        };
        create_private(path).map_err(|e| OpenError::Reserve {
            path: path.to_owned(),
            source: e,
        })?;
        // No SQLITE_OPEN_URI: a path is a path.
        let db = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db_err)?;
        db.busy_timeout(policy.busy_timeout).map_err(db_err)?;
        db.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        db.pragma_update(None, "synchronous", "FULL")
            .map_err(db_err)?;
        db.execute_batch(SCHEMA).map_err(db_err)?;
        replay_kept_values(&db, path, policy.retry_for).map_err(OpenError::Replay)?;
        let recovery = RecoveryFile::reserve(path).map_err(|source| OpenError::Reserve {
            path: path.to_owned(),
            source,
        })?;
        let scope = Scope {
            plugin: plugin.to_owned(),
            connection: connection.to_owned(),
            quota,
            cipher: None,
        };
        Ok(Self {
            db,
            path: path.to_owned(),
            scope,
            policy,
            recovery,
            pending: BTreeMap::new(),
            cause: None,
            waited: Duration::ZERO,
            credited: Duration::ZERO,
        })
    }

    /// Encrypts the values written from now on with `key` (none: store them as given). Values
    /// already stored in clear stay readable; see the module documentation.
    pub fn with_key(mut self, key: Option<[u8; 32]>) -> Self {
        self.scope.cipher = key.map(|k| XChaCha20Poly1305::new(&k.into()));
        self
    }

    /// A plugin call starts: nothing waited, nothing credited.
    pub(crate) fn new_call(&mut self) {
        self.waited = Duration::ZERO;
        self.credited = Duration::ZERO;
    }

    /// How much the call's deadline may grow now: the time its writes waited on a refusing
    /// database (retries are the host's, not the plugin's, time), at most twice the retry budget
    /// per call (one budget for the first refused write, one for the single tries after it), so
    /// a plugin can never outrun its deadline by writing.
    pub(crate) fn deadline_credit(&mut self) -> Duration {
        let credit = self
            .waited
            .min((self.policy.retry_for * 2).saturating_sub(self.credited));
        self.waited = Duration::ZERO;
        self.credited += credit;
        credit
    }

    /// The recovery file reserved for this session.
    pub fn recovery_path(&self) -> &Path {
        self.recovery.path()
    }

    /// Writes `new` (none: delete) under `key`, when `expected` is none or the current
    /// plaintext equals it. The database first, retried; then the recovery file. `Ok` only when
    /// the value is durably kept in one of them.
    fn change(
        &mut self,
        key: &str,
        expected: Option<Option<&str>>,
        new: Option<&str>,
    ) -> Result<bool, StorageError> {
        if new.is_some_and(|v| v.len() > self.scope.quota.max_value_bytes) {
            return Err(StorageError::QuotaExceeded(format!(
                "a value is limited to {} bytes",
                self.scope.quota.max_value_bytes
            )));
        }
        // Sealed once: the same text goes to the database or to the recovery file.
        let sealed = new.map(|v| self.scope.seal_value(key, v)).transpose()?;
        // Once the database has refused a write for the whole budget, later writes of this
        // session try once and are kept at once.
        let retry_for = if self.pending.is_empty() {
            self.policy.retry_for
        } else {
            Duration::ZERO
        };
        let (db, scope, pending) = (&mut self.db, &self.scope, &self.pending);
        let started = std::time::Instant::now();
        let mut attempts = 0u32;
        let result = recovery::with_retry(
            retry_for,
            || {
                attempts += 1;
                write_in_db(db, scope, pending, key, expected, sealed.as_deref())
            },
            |e| match e {
                TxError::Sql(e) => Some(e),
                TxError::Storage(_) => None,
            },
        );
        if attempts > 1 || matches!(result, Err(TxError::Sql(_))) {
            self.waited += started.elapsed();
        }
        match result {
            Ok(done) => {
                // Whatever was pending went in with this write.
                self.pending.clear();
                self.recovery.clear();
                Ok(done)
            }
            Err(TxError::Storage(e)) => Err(e),
            Err(TxError::Sql(cause)) => self.keep(key, expected, sealed, cause),
        }
    }

    /// The database refused the write: keep it in the recovery file.
    fn keep(
        &mut self,
        key: &str,
        expected: Option<Option<&str>>,
        sealed: Option<String>,
        cause: rusqlite::Error,
    ) -> Result<bool, StorageError> {
        let current = match self.pending.get(key) {
            Some((_, now)) => now.clone(),
            None => self.scope.read_raw(&self.db, key).map_err(|e| {
                StorageError::Unavailable(format!(
                    "could not write `{key}` ({cause}) nor read it ({e}); nothing was stored"
                ))
            })?,
        };
        if let Some(expected) = expected {
            let plain = current
                .clone()
                .map(|raw| self.scope.open_value(key, raw))
                .transpose()?;
            if plain.as_deref() != expected {
                return Ok(false);
            }
        }
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        self.recovery
            .append(Record {
                plugin: self.scope.plugin.clone(),
                connection: self.scope.connection.clone(),
                key: key.to_owned(),
                expected: current.clone(),
                value: sealed.clone(),
                at,
                seq: 0,
            })
            .map_err(|e| {
                StorageError::Unavailable(format!(
                    "could not store `{key}`: the database refused it ({cause}) and so did the \
                     recovery file {} ({e}); free disk space beside {}",
                    self.recovery.path().display(),
                    self.path.display()
                ))
            })?;
        tracing::warn!(
            target: "erp::storage",
            key,
            "the database refused a storage write ({cause}); kept in {}",
            self.recovery.path().display()
        );
        let before = self
            .pending
            .get(key)
            .map_or(current, |(before, _)| before.clone());
        self.pending.insert(key.to_owned(), (before, sealed));
        self.cause = Some(cause.to_string());
        Ok(true)
    }
}

impl Drop for StorageCapability {
    fn drop(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        // One more try: the other writer may be gone by now.
        let (db, scope, pending) = (&mut self.db, &self.scope, &self.pending);
        if write_pending(db, scope, pending).is_ok() {
            self.pending.clear();
            self.recovery.clear();
            return;
        }
        eprintln!(
            "erp: warning: {} refused the provider's storage writes ({}); {} value(s) (bank tokens \
             among them) are kept in {} and the next erp command writes them back by itself: free \
             disk space or stop the program holding the database, then run `erp sync` again",
            self.path.display(),
            self.cause.as_deref().unwrap_or("unknown error"),
            self.pending.len(),
            self.recovery.path().display()
        );
    }
}

/// One write attempt in the database: the pending values first, then this one, in one
/// IMMEDIATE transaction (the write lock up front, so a compare-and-swap cannot interleave with
/// another process's).
fn write_in_db(
    db: &mut Connection,
    scope: &Scope,
    pending: &BTreeMap<String, (Option<String>, Option<String>)>,
    key: &str,
    expected: Option<Option<&str>>,
    sealed: Option<&str>,
) -> Result<bool, TxError> {
    let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
    flush_pending(&tx, scope, pending)?;
    if let Some(expected) = expected {
        let current = scope
            .read_raw(&tx, key)?
            .map(|raw| scope.open_value(key, raw))
            .transpose()?;
        if current.as_deref() != expected {
            tx.commit()?;
            return Ok(false);
        }
    }
    if sealed.is_some() {
        scope.check_key_count(&tx, key)?;
    }
    write_raw(&tx, &scope.plugin, &scope.connection, key, sealed)?;
    tx.commit()?;
    Ok(true)
}

fn write_pending(
    db: &mut Connection,
    scope: &Scope,
    pending: &BTreeMap<String, (Option<String>, Option<String>)>,
) -> rusqlite::Result<()> {
    let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
    flush_pending(&tx, scope, pending)?;
    tx.commit()
}

/// Kept values into the database, each only where its row has not changed since.
fn flush_pending(
    db: &Connection,
    scope: &Scope,
    pending: &BTreeMap<String, (Option<String>, Option<String>)>,
) -> rusqlite::Result<()> {
    for (key, (before, now)) in pending {
        if scope.read_raw(db, key)? == *before {
            write_raw(db, &scope.plugin, &scope.connection, key, now.as_deref())?;
        }
    }
    Ok(())
}

/// Writes a row as stored (a ciphertext or a legacy plaintext); none deletes it.
fn write_raw(
    db: &Connection,
    plugin: &str,
    connection: &str,
    key: &str,
    value: Option<&str>,
) -> rusqlite::Result<()> {
    match value {
        Some(v) => db.execute(
            "INSERT INTO plugin_storage (plugin, connection, key, value) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (plugin, connection, key) DO UPDATE SET value = excluded.value",
            params![plugin, connection, key, v],
        ),
        None => db.execute(
            "DELETE FROM plugin_storage WHERE plugin = ?1 AND connection = ?2 AND key = ?3",
            params![plugin, connection, key],
        ),
    }
    .map(drop)
}

/// Writes back the values kept by storage sessions that ended without writing them (see
/// [`recovery`]), retrying for `retry_for`, and says so in one line when there were any.
pub fn replay_kept_values(
    conn: &Connection,
    db_path: &Path,
    retry_for: Duration,
) -> Result<(), String> {
    let done = recovery::replay(conn, db_path, retry_for)?;
    if done.applied + done.superseded > 0 {
        let superseded = if done.superseded > 0 {
            format!(
                " ({} older one(s) left out: the database already held newer values)",
                done.superseded
            )
        } else {
            String::new()
        };
        eprintln!(
            "erp: wrote {} provider storage value(s) kept in a recovery file back into {}{superseded}; nothing else to do",
            done.applied,
            db_path.display()
        );
    }
    Ok(())
}

/// Creates the file at `path` empty with mode 0600 when it does not exist, so SQLite (which
/// gives its -wal and -shm files the database's mode) never makes it readable by others.
pub fn create_private(path: &Path) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

impl Scope {
    /// The value as stored (ciphertext when encrypted).
    fn read_raw(&self, db: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
        db.query_row(
            "SELECT value FROM plugin_storage WHERE plugin = ?1 AND connection = ?2 AND key = ?3",
            params![self.plugin, self.connection, key],
            |r| r.get(0),
        )
        .optional()
    }

    /// A new key must fit the quota's key count (the value's size is checked before).
    fn check_key_count(&self, tx: &Connection, key: &str) -> Result<(), TxError> {
        let (count, exists): (i64, i64) = tx.query_row(
            "SELECT COUNT(*), COALESCE(SUM(key = ?3), 0) FROM plugin_storage WHERE plugin = ?1 AND connection = ?2",
            params![self.plugin, self.connection, key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if exists == 0 && usize::try_from(count).unwrap_or(usize::MAX) >= self.quota.max_keys {
            return Err(TxError::Storage(StorageError::QuotaExceeded(format!(
                "a connection is limited to {} keys",
                self.quota.max_keys
            ))));
        }
        Ok(())
    }

    /// What binds a ciphertext to its place: a value moved to another key, connection or plugin
    /// fails authentication. Length prefixes keep ("a", "bc") apart from ("ab", "c").
    fn associated_data(&self, key: &str) -> Vec<u8> {
        let mut aad = b"erp:bank-sync/storage/v1".to_vec();
        for part in [&self.plugin, &self.connection, key] {
            aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }

    /// The stored form of `value`: a ciphertext when a key is configured.
    fn seal_value(&self, key: &str, value: &str) -> Result<String, StorageError> {
        let Some(cipher) = &self.cipher else {
            return Ok(value.to_owned());
        };
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = self.associated_data(key);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: value.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| {
                StorageError::Unavailable(format!("could not encrypt the value of `{key}`"))
            })?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("{ENC_PREFIX}{}", STANDARD.encode(bytes)))
    }

    /// The plaintext of a stored value; legacy plaintexts pass through.
    fn open_value(&self, key: &str, stored: String) -> Result<String, StorageError> {
        let Some(body) = stored.strip_prefix(ENC_PREFIX) else {
            return Ok(stored);
        };
        let Some(cipher) = &self.cipher else {
            return Err(StorageError::Unavailable(format!(
                "the value of `{key}` is encrypted at rest but this host has no storage key: set \
                 {KEY_ENV} or restore the key file beside the database"
            )));
        };
        let failed = || {
            StorageError::Unavailable(format!(
                "the stored value of `{key}` failed authentication: it was altered, copied from \
                 another key or connection, or the storage key changed; restore the original key \
                 or connect this account again"
            ))
        };
        let bytes = STANDARD.decode(body).map_err(|_| failed())?;
        if bytes.len() < NONCE_LEN {
            return Err(failed());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let aad = self.associated_data(key);
        let plain = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| failed())?;
        String::from_utf8(plain).map_err(|_| failed())
    }
}

/// Parses a storage key: 64 hex digits or standard base64 of 32 bytes (surrounding blanks ignored).
pub fn parse_key(text: &str) -> io::Result<[u8; 32]> {
    let t = text.trim();
    let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
    } else {
        STANDARD.decode(t).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "the storage key is neither 64 hex digits nor base64 of 32 bytes",
            )
        })?
    };
    bytes.try_into().map_err(|b: Vec<u8>| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the storage key has {} bytes, 32 are needed", b.len()),
        )
    })
}

/// Reads the key file at `path` (64 hex digits), creating it with a fresh random key and mode
/// 0600 when it does not exist. A key file that group or others may read is refused (Unix): the
/// key would no longer protect the tokens. Creation is atomic (written aside, then linked into
/// place), so two processes starting together agree on one key.
pub fn load_or_create_key(path: &Path) -> io::Result<[u8; 32]> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            check_private(path)?;
            return parse_key(&text)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut key = [0u8; 32];
    OsRng.fill_bytes(&mut key);
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        f.write_all(format!("{hex}\n").as_bytes())?;
        f.sync_all()?;
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => load_or_create_key(path),
        Err(e) => Err(e),
    }
}

/// The host key: [`KEY_ENV`] when set, else the key file at `key_file` ([`load_or_create_key`]).
pub fn host_key(key_file: &Path) -> io::Result<[u8; 32]> {
    match std::env::var(KEY_ENV) {
        Ok(text) if !text.trim().is_empty() => {
            parse_key(&text).map_err(|e| io::Error::new(e.kind(), format!("{KEY_ENV}: {e}")))
        }
        _ => load_or_create_key(key_file),
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the storage key file {} can be read by other users (mode {:o}): run `chmod 600` on it",
                path.display(),
                mode & 0o777
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> io::Result<()> {
    Ok(())
}

fn unavailable(e: rusqlite::Error) -> StorageError {
    StorageError::Unavailable(e.to_string())
}

impl Host for StorageCapability {
    fn get(&mut self, key: String) -> Result<Option<String>, StorageError> {
        let stored = match self.pending.get(&key) {
            Some((_, now)) => now.clone(),
            None => self.scope.read_raw(&self.db, &key).map_err(unavailable)?,
        };
        stored
            .map(|raw| self.scope.open_value(&key, raw))
            .transpose()
    }

    fn set(&mut self, key: String, value: String) -> Result<(), StorageError> {
        self.change(&key, None, Some(&value)).map(drop)
    }

    fn delete(&mut self, key: String) -> Result<(), StorageError> {
        self.change(&key, None, None).map(drop)
    }

    fn list_keys(&mut self, prefix: String) -> Result<Vec<String>, StorageError> {
        let mut stmt = self
            .db
            .prepare_cached(
                "SELECT key FROM plugin_storage WHERE plugin = ?1 AND connection = ?2
                 AND substr(key, 1, length(?3)) = ?3 ORDER BY key",
            )
            .map_err(unavailable)?;
        let rows = stmt
            .query_map(
                params![self.scope.plugin, self.scope.connection, prefix],
                |r| r.get(0),
            )
            .map_err(unavailable)?;
        let mut keys = rows
            .collect::<rusqlite::Result<std::collections::BTreeSet<String>>>()
            .map_err(unavailable)?;
        // Kept values count as written.
        for (key, (_, now)) in &self.pending {
            if key.starts_with(&prefix) {
                if now.is_some() {
                    keys.insert(key.clone());
                } else {
                    keys.remove(key);
                }
            }
        }
        Ok(keys.into_iter().collect())
    }

    fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<String>,
        new: Option<String>,
    ) -> Result<bool, StorageError> {
        self.change(&key, Some(expected.as_deref()), new.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &tempfile::TempDir, conn: &str) -> StorageCapability {
        StorageCapability::open(
            &dir.path().join("kv.sqlite"),
            "acme",
            conn,
            Quota::default(),
        )
        .unwrap()
    }

    #[test]
    fn set_get_delete_and_list_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let mut kv = open(&dir, "c1");
        kv.set("oauth/refresh".into(), "r1".into()).unwrap();
        kv.set("oauth/access".into(), "a1".into()).unwrap();
        kv.set("state".into(), "{}".into()).unwrap();
        assert_eq!(
            kv.get("oauth/refresh".into()).unwrap().as_deref(),
            Some("r1")
        );
        assert_eq!(
            kv.list_keys("oauth/".into()).unwrap(),
            vec!["oauth/access", "oauth/refresh"]
        );
        kv.delete("oauth/access".into()).unwrap();
        kv.delete("never-set".into()).unwrap();
        assert_eq!(kv.get("oauth/access".into()).unwrap(), None);
        assert_eq!(kv.list_keys(String::new()).unwrap().len(), 2);
    }

    #[test]
    fn connections_do_not_see_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = open(&dir, "a");
        let mut b = open(&dir, "b");
        a.set("k".into(), "from a".into()).unwrap();
        assert_eq!(b.get("k".into()).unwrap(), None);
        assert!(b.list_keys(String::new()).unwrap().is_empty());
    }

    #[test]
    fn compare_and_swap_rotates_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = open(&dir, "c");
        let mut b = open(&dir, "c");
        assert!(
            a.compare_and_swap("rt".into(), None, Some("r1".into()))
                .unwrap()
        );
        // Two workers holding r1 race to rotate it: exactly one wins.
        assert!(
            a.compare_and_swap("rt".into(), Some("r1".into()), Some("r2".into()))
                .unwrap()
        );
        assert!(
            !b.compare_and_swap("rt".into(), Some("r1".into()), Some("r3".into()))
                .unwrap()
        );
        assert_eq!(b.get("rt".into()).unwrap().as_deref(), Some("r2"));
        assert!(
            b.compare_and_swap("rt".into(), Some("r2".into()), None)
                .unwrap()
        );
        assert_eq!(a.get("rt".into()).unwrap(), None);
    }

    #[test]
    fn writes_are_durable_for_a_new_connection() {
        let dir = tempfile::tempdir().unwrap();
        open(&dir, "c").set("k".into(), "v".into()).unwrap();
        assert_eq!(
            open(&dir, "c").get("k".into()).unwrap().as_deref(),
            Some("v")
        );
    }

    #[test]
    fn quota_is_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let quota = Quota {
            max_keys: 2,
            max_value_bytes: 8,
        };
        let mut kv =
            StorageCapability::open(&dir.path().join("kv.sqlite"), "p", "c", quota).unwrap();
        assert!(matches!(
            kv.set("big".into(), "123456789".into()),
            Err(StorageError::QuotaExceeded(_))
        ));
        kv.set("a".into(), "1".into()).unwrap();
        kv.set("b".into(), "2".into()).unwrap();
        kv.set("a".into(), "3".into()).unwrap(); // overwriting is not a new key
        assert!(matches!(
            kv.set("c".into(), "4".into()),
            Err(StorageError::QuotaExceeded(_))
        ));
    }

    const KEY: [u8; 32] = [7; 32];
    /// A short lock timeout and retry budget, so the tests outlast them quickly.
    const SHORT: WritePolicy = WritePolicy {
        busy_timeout: Duration::from_millis(50),
        retry_for: Duration::from_millis(300),
    };

    fn open_short(dir: &tempfile::TempDir, conn: &str) -> StorageCapability {
        StorageCapability::open_with(
            &dir.path().join("kv.sqlite"),
            "acme",
            conn,
            Quota::default(),
            SHORT,
        )
        .unwrap()
        .with_key(Some(KEY))
    }

    /// Another connection holding the write lock until dropped.
    fn lock_database(dir: &tempfile::TempDir) -> Connection {
        let c = Connection::open(dir.path().join("kv.sqlite")).unwrap();
        c.execute_batch("BEGIN EXCLUSIVE").unwrap();
        c
    }

    fn recovery_files(dir: &tempfile::TempDir) -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("kv.sqlite.recovery-"))
            .collect()
    }

    #[test]
    fn the_recovery_file_is_reserved_private_and_removed_when_unused() {
        let dir = tempfile::tempdir().unwrap();
        let kv = open_short(&dir, "c");
        let path = kv.recovery_path().to_owned();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), RESERVED_BYTES as u64);
        use std::os::unix::fs::MetadataExt;
        assert!(
            meta.blocks() * 512 >= RESERVED_BYTES as u64,
            "the blocks are allocated, not sparse"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        drop(kv);
        assert!(recovery_files(&dir).is_empty());
    }

    #[test]
    fn a_rotation_the_locked_database_refuses_is_kept_and_written_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut kv = open_short(&dir, "c");
        kv.set("oauth/refresh-token".into(), "r1".into()).unwrap();
        let lock = lock_database(&dir);
        // Acme has rotated the token: the swap is kept although the database refuses it.
        assert!(
            kv.compare_and_swap(
                "oauth/refresh-token".into(),
                Some("r1".into()),
                Some(TOKEN.into())
            )
            .unwrap()
        );
        kv.set("oauth/access-token".into(), "a2".into()).unwrap();
        // The session reads what it kept; a stale expectation is refused honestly.
        assert_eq!(
            kv.get("oauth/refresh-token".into()).unwrap().as_deref(),
            Some(TOKEN)
        );
        assert!(
            !kv.compare_and_swap("oauth/refresh-token".into(), Some("r1".into()), None)
                .unwrap()
        );
        assert_eq!(
            kv.list_keys("oauth/".into()).unwrap(),
            vec!["oauth/access-token", "oauth/refresh-token"]
        );
        let file = kv.recovery_path().to_owned();
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        assert!(text.contains("enc:v1:") && !text.contains(TOKEN), "{text}");
        drop(kv); // still locked: the file stays
        assert_eq!(recovery_files(&dir), vec![file.clone()]);
        drop(lock);
        // The next open writes it back before anything reads.
        let mut kv = open_short(&dir, "c");
        assert_eq!(
            kv.get("oauth/refresh-token".into()).unwrap().as_deref(),
            Some(TOKEN)
        );
        assert_eq!(
            raw_row(&dir, "c", "oauth/access-token").map(|r| r.starts_with(ENC_PREFIX)),
            Some(true)
        );
        assert!(!file.exists());
        drop(kv);
        assert!(recovery_files(&dir).is_empty());
    }

    #[test]
    fn time_waiting_on_a_refusing_database_is_credited_to_the_call_once_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        let mut kv = open_short(&dir, "c");
        kv.new_call();
        kv.set("a".into(), "1".into()).unwrap();
        assert_eq!(
            kv.deadline_credit(),
            Duration::ZERO,
            "a plain write is the plugin's time"
        );
        let lock = lock_database(&dir);
        kv.set("a".into(), "2".into()).unwrap();
        let credit = kv.deadline_credit();
        assert!(credit >= SHORT.retry_for / 2, "{credit:?}");
        assert_eq!(kv.deadline_credit(), Duration::ZERO, "credited once");
        for i in 0..20 {
            kv.set("b".into(), i.to_string()).unwrap();
        }
        let more = kv.deadline_credit();
        assert!(
            credit + more <= SHORT.retry_for * 2,
            "{credit:?} + {more:?}"
        );
        drop(lock);
        kv.new_call();
        assert_eq!(kv.deadline_credit(), Duration::ZERO);
    }

    #[test]
    fn a_kept_value_goes_in_with_the_next_write_the_database_takes() {
        let dir = tempfile::tempdir().unwrap();
        let mut kv = open_short(&dir, "c");
        let lock = lock_database(&dir);
        kv.set("a".into(), "1".into()).unwrap();
        kv.delete("gone".into()).unwrap();
        drop(lock);
        kv.set("b".into(), "2".into()).unwrap();
        let mut other = open_short(&dir, "c");
        assert_eq!(other.get("a".into()).unwrap().as_deref(), Some("1"));
        assert_eq!(other.get("b".into()).unwrap().as_deref(), Some("2"));
        drop(kv);
        drop(other);
        assert!(recovery_files(&dir).is_empty());
    }

    #[test]
    fn a_replay_never_undoes_a_later_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut kv = open_short(&dir, "c");
        kv.set("k".into(), "v1".into()).unwrap();
        let lock = lock_database(&dir);
        kv.set("k".into(), "v2".into()).unwrap();
        drop(kv); // ends while the database is still locked: v2 stays in its file
        drop(lock);
        // Another process writes k before the kept value is written back.
        set_raw_row(&dir, "c", "k", "newer");
        let mut kv = open_short(&dir, "c");
        assert_eq!(kv.get("k".into()).unwrap().as_deref(), Some("newer"));
        assert_eq!(recovery_files(&dir), vec![kv.recovery_path().to_owned()]);
    }

    #[test]
    fn a_session_does_not_replay_a_live_sessions_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = open_short(&dir, "c");
        let lock = lock_database(&dir);
        a.set("k".into(), "kept".into()).unwrap();
        drop(lock);
        // `a` still runs: its value is in its memory and its file, not written back by `b`.
        let mut b = open_short(&dir, "c");
        assert_eq!(raw_row(&dir, "c", "k"), None);
        assert_eq!(a.get("k".into()).unwrap().as_deref(), Some("kept"));
        drop(a); // the database is free again: written back at the end
        assert_eq!(b.get("k".into()).unwrap().as_deref(), Some("kept"));
    }

    const TOKEN: &str = "refresh-3f9c2a-very-secret";

    fn open_keyed(dir: &tempfile::TempDir, conn: &str, key: Option<[u8; 32]>) -> StorageCapability {
        open(dir, conn).with_key(key)
    }

    /// The row exactly as SQLite holds it.
    fn raw_row(dir: &tempfile::TempDir, conn: &str, key: &str) -> Option<String> {
        let db = Connection::open(dir.path().join("kv.sqlite")).unwrap();
        db.query_row(
            "SELECT value FROM plugin_storage WHERE plugin = 'acme' AND connection = ?1 AND key = ?2",
            params![conn, key],
            |r| r.get(0),
        )
        .optional()
        .unwrap()
    }

    fn set_raw_row(dir: &tempfile::TempDir, conn: &str, key: &str, value: &str) {
        let db = Connection::open(dir.path().join("kv.sqlite")).unwrap();
        db.execute(
            "INSERT INTO plugin_storage (plugin, connection, key, value) VALUES ('acme', ?1, ?2, ?3)
             ON CONFLICT (plugin, connection, key) DO UPDATE SET value = excluded.value",
            params![conn, key, value],
        )
        .unwrap();
    }

    fn unavailable_text(r: Result<Option<String>, StorageError>) -> String {
        match r {
            Err(StorageError::Unavailable(m)) => m,
            other => panic!("expected unavailable, got {other:?}"),
        }
    }

    #[test]
    fn encrypted_round_trip_and_the_row_holds_no_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let mut kv = open_keyed(&dir, "c", Some(KEY));
        kv.set("oauth/refresh-token".into(), TOKEN.into()).unwrap();
        assert_eq!(
            kv.get("oauth/refresh-token".into()).unwrap().as_deref(),
            Some(TOKEN)
        );
        let row = raw_row(&dir, "c", "oauth/refresh-token").unwrap();
        assert!(row.starts_with(ENC_PREFIX), "{row}");
        assert!(!row.contains(TOKEN) && !row.contains("secret"), "{row}");
        // A fresh nonce per write: the same value never gives the same row twice.
        kv.set("oauth/refresh-token".into(), TOKEN.into()).unwrap();
        assert_ne!(raw_row(&dir, "c", "oauth/refresh-token").unwrap(), row);
        // Durable and readable by another handle holding the same key.
        assert_eq!(
            open_keyed(&dir, "c", Some(KEY))
                .get("oauth/refresh-token".into())
                .unwrap()
                .as_deref(),
            Some(TOKEN)
        );
        assert_eq!(
            kv.list_keys("oauth/".into()).unwrap(),
            vec!["oauth/refresh-token"]
        );
        // Empty values encrypt too.
        kv.set("empty".into(), String::new()).unwrap();
        assert_eq!(kv.get("empty".into()).unwrap().as_deref(), Some(""));
    }

    #[test]
    fn a_tampered_row_fails_authentication_without_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut kv = open_keyed(&dir, "c", Some(KEY));
        kv.set("k".into(), TOKEN.into()).unwrap();
        let row = raw_row(&dir, "c", "k").unwrap();
        let body = row.strip_prefix(ENC_PREFIX).unwrap();
        let mut bytes = STANDARD.decode(body).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let mut flipped_ct = bytes.clone();
        flipped_ct[NONCE_LEN] ^= 0x80;
        bytes[last] ^= 1;
        let mut flipped_nonce = bytes.clone();
        flipped_nonce[0] ^= 1;
        let tampered = [
            format!("{ENC_PREFIX}{}", STANDARD.encode(&flipped_ct)),
            format!("{ENC_PREFIX}{}", STANDARD.encode(&flipped_nonce)),
            format!("{ENC_PREFIX}{}", STANDARD.encode(&bytes[..bytes.len() - 1])),
            format!("{ENC_PREFIX}{}", STANDARD.encode(&bytes[..5])),
            format!("{ENC_PREFIX}not base64!"),
            ENC_PREFIX.to_string(),
        ];
        for t in tampered {
            set_raw_row(&dir, "c", "k", &t);
            let m = unavailable_text(kv.get("k".into()));
            assert!(
                m.contains("failed authentication") && m.contains("`k`"),
                "{m}"
            );
            // A compare-and-swap against an unreadable value changes nothing.
            assert!(
                kv.compare_and_swap("k".into(), Some(TOKEN.into()), Some("x".into()))
                    .is_err()
            );
            assert_eq!(raw_row(&dir, "c", "k").as_deref(), Some(t.as_str()));
        }
    }

    #[test]
    fn a_value_moved_to_another_key_or_connection_does_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = open_keyed(&dir, "a", Some(KEY));
        a.set("oauth/refresh-token".into(), TOKEN.into()).unwrap();
        let row = raw_row(&dir, "a", "oauth/refresh-token").unwrap();
        set_raw_row(&dir, "a", "oauth/access-token", &row);
        set_raw_row(&dir, "b", "oauth/refresh-token", &row);
        let m = unavailable_text(a.get("oauth/access-token".into()));
        assert!(m.contains("failed authentication"), "{m}");
        let mut b = open_keyed(&dir, "b", Some(KEY));
        assert!(
            unavailable_text(b.get("oauth/refresh-token".into())).contains("failed authentication")
        );
        // The original still reads.
        assert_eq!(
            a.get("oauth/refresh-token".into()).unwrap().as_deref(),
            Some(TOKEN)
        );
    }

    #[test]
    fn wrong_key_and_missing_key_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        open_keyed(&dir, "c", Some(KEY))
            .set("k".into(), TOKEN.into())
            .unwrap();
        let mut wrong = open_keyed(&dir, "c", Some([8; 32]));
        assert!(unavailable_text(wrong.get("k".into())).contains("failed authentication"));
        let mut none = open_keyed(&dir, "c", None);
        let m = unavailable_text(none.get("k".into()));
        assert!(m.contains("no storage key") && m.contains(KEY_ENV), "{m}");
        assert!(!m.contains(TOKEN));
    }

    #[test]
    fn legacy_plaintext_reads_and_is_encrypted_at_its_next_write() {
        let dir = tempfile::tempdir().unwrap();
        open_keyed(&dir, "c", None)
            .set("k".into(), TOKEN.into())
            .unwrap();
        assert_eq!(raw_row(&dir, "c", "k").as_deref(), Some(TOKEN));
        let mut kv = open_keyed(&dir, "c", Some(KEY));
        assert_eq!(kv.get("k".into()).unwrap().as_deref(), Some(TOKEN));
        // Rotation by compare-and-swap from the legacy plaintext.
        assert!(
            kv.compare_and_swap("k".into(), Some(TOKEN.into()), Some("r2".into()))
                .unwrap()
        );
        let row = raw_row(&dir, "c", "k").unwrap();
        assert!(row.starts_with(ENC_PREFIX) && !row.contains("r2"), "{row}");
        assert_eq!(kv.get("k".into()).unwrap().as_deref(), Some("r2"));
    }

    #[test]
    fn compare_and_swap_compares_plaintexts_of_encrypted_values() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = open_keyed(&dir, "c", Some(KEY));
        let mut b = open_keyed(&dir, "c", Some(KEY));
        assert!(
            a.compare_and_swap("rt".into(), None, Some("r1".into()))
                .unwrap()
        );
        assert!(
            !a.compare_and_swap("rt".into(), None, Some("r1".into()))
                .unwrap()
        );
        // The stored text is a ciphertext; the plugin's expected value is the plaintext.
        let row = raw_row(&dir, "c", "rt").unwrap();
        assert!(
            !a.compare_and_swap("rt".into(), Some(row.clone()), Some("x".into()))
                .unwrap()
        );
        assert!(
            a.compare_and_swap("rt".into(), Some("r1".into()), Some("r2".into()))
                .unwrap()
        );
        assert!(
            !b.compare_and_swap("rt".into(), Some("r1".into()), Some("r3".into()))
                .unwrap()
        );
        assert_eq!(b.get("rt".into()).unwrap().as_deref(), Some("r2"));
        assert!(
            b.compare_and_swap("rt".into(), Some("r2".into()), None)
                .unwrap()
        );
        assert_eq!(a.get("rt".into()).unwrap(), None);
        assert_eq!(raw_row(&dir, "c", "rt"), None);
    }

    #[test]
    fn quota_counts_the_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let quota = Quota {
            max_keys: 4,
            max_value_bytes: 8,
        };
        let mut kv = StorageCapability::open(&dir.path().join("kv.sqlite"), "acme", "c", quota)
            .unwrap()
            .with_key(Some(KEY));
        kv.set("a".into(), "12345678".into()).unwrap();
        assert!(matches!(
            kv.set("b".into(), "123456789".into()),
            Err(StorageError::QuotaExceeded(_))
        ));
    }

    #[test]
    fn key_text_forms() {
        let hex = "07".repeat(32);
        assert_eq!(parse_key(&format!(" {hex}\n")).unwrap(), KEY);
        assert_eq!(parse_key(&STANDARD.encode(KEY)).unwrap(), KEY);
        for bad in [
            "",
            "abc",
            &"0".repeat(63),
            &"zz".repeat(32),
            &STANDARD.encode([1u8; 31]),
        ] {
            assert_eq!(
                parse_key(bad).unwrap_err().kind(),
                io::ErrorKind::InvalidData,
                "{bad}"
            );
        }
    }

    #[test]
    fn key_file_is_created_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("storage.key");
        let k1 = load_or_create_key(&path).unwrap();
        let k2 = load_or_create_key(&path).unwrap();
        assert_eq!(k1, k2);
        assert_ne!(k1, [0; 32]);
        assert_eq!(
            parse_key(&std::fs::read_to_string(&path).unwrap()).unwrap(),
            k1
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = load_or_create_key(&path).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
            assert!(e.to_string().contains("chmod 600"), "{e}");
        }
        // Another database's key is another key.
        assert_ne!(
            load_or_create_key(&dir.path().join("other.key")).unwrap(),
            k1
        );
    }
}
