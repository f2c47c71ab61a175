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

mod host_key;
mod recovery;
mod table;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::bindings::storage::{Host, StorageError};
pub use host_key::{KEY_ENV, host_key, load_or_create_key, parse_key};
pub use recovery::{LOCK_TIMEOUT_ENV, RESERVED_BYTES, WritePolicy, lock_timeout_override};
use recovery::{Record, RecoveryFile};
use table::{SCHEMA, write_raw};

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
mod tests;
