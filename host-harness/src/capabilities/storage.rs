//! `interface storage`: a private key-value store on SQLite, scoped to one (plugin, connection).
//!
//! Every write runs in its own transaction with `synchronous=FULL`, so it is on disk when the call
//! returns: a refresh token rotated by the plugin survives a crash one instruction later.
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

use std::io;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload, rand_core::RngCore};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::bindings::storage::{Host, StorageError};

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
    scope: Scope,
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
    /// Open the store in the SQLite file at `path` (created if needed).
    pub fn open(
        path: &Path,
        plugin: &str,
        connection: &str,
        quota: Quota,
    ) -> rusqlite::Result<Self> {
        let db = Connection::open(path)?;
        db.busy_timeout(std::time::Duration::from_secs(10))?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "FULL")?;
        db.execute_batch(SCHEMA)?;
        let scope = Scope {
            plugin: plugin.to_owned(),
            connection: connection.to_owned(),
            quota,
            cipher: None,
        };
        Ok(Self { db, scope })
    }

    /// Encrypts the values written from now on with `key` (none: store them as given). Values
    /// already stored in clear stay readable; see the module documentation.
    pub fn with_key(mut self, key: Option<[u8; 32]>) -> Self {
        self.scope.cipher = key.map(|k| XChaCha20Poly1305::new(&k.into()));
        self
    }

    fn in_transaction<T>(
        &mut self,
        f: impl FnOnce(&Scope, &rusqlite::Transaction<'_>) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        // IMMEDIATE takes the write lock up front, so a compare-and-swap cannot interleave with
        // another process's.
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        let out = f(&self.scope, &tx)?;
        tx.commit().map_err(unavailable)?;
        Ok(out)
    }
}

impl Scope {
    /// The plaintext of `key`.
    fn read(&self, db: &Connection, key: &str) -> Result<Option<String>, StorageError> {
        self.read_raw(db, key)?
            .map(|stored| self.open_value(key, stored))
            .transpose()
    }

    /// The value as stored (ciphertext when encrypted).
    fn read_raw(&self, db: &Connection, key: &str) -> Result<Option<String>, StorageError> {
        db.query_row(
            "SELECT value FROM plugin_storage WHERE plugin = ?1 AND connection = ?2 AND key = ?3",
            params![self.plugin, self.connection, key],
            |r| r.get(0),
        )
        .optional()
        .map_err(unavailable)
    }

    fn check_quota(
        &self,
        tx: &rusqlite::Transaction<'_>,
        key: &str,
        value: &str,
    ) -> Result<(), StorageError> {
        if value.len() > self.quota.max_value_bytes {
            return Err(StorageError::QuotaExceeded(format!(
                "a value is limited to {} bytes",
                self.quota.max_value_bytes
            )));
        }
        let (count, exists): (i64, i64) = tx
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(key = ?3), 0) FROM plugin_storage WHERE plugin = ?1 AND connection = ?2",
                params![self.plugin, self.connection, key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(unavailable)?;
        if exists == 0 && usize::try_from(count).unwrap_or(usize::MAX) >= self.quota.max_keys {
            return Err(StorageError::QuotaExceeded(format!(
                "a connection is limited to {} keys",
                self.quota.max_keys
            )));
        }
        Ok(())
    }

    fn write(
        &self,
        tx: &rusqlite::Transaction<'_>,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), StorageError> {
        match value {
            Some(v) => {
                self.check_quota(tx, key, v)?;
                let v = self.seal_value(key, v)?;
                tx.execute(
                    "INSERT INTO plugin_storage (plugin, connection, key, value) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (plugin, connection, key) DO UPDATE SET value = excluded.value",
                    params![self.plugin, self.connection, key, v],
                )
            }
            None => tx.execute(
                "DELETE FROM plugin_storage WHERE plugin = ?1 AND connection = ?2 AND key = ?3",
                params![self.plugin, self.connection, key],
            ),
        }
        .map(drop)
        .map_err(unavailable)
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
        self.scope.read(&self.db, &key)
    }

    fn set(&mut self, key: String, value: String) -> Result<(), StorageError> {
        self.in_transaction(|s, tx| s.write(tx, &key, Some(&value)))
    }

    fn delete(&mut self, key: String) -> Result<(), StorageError> {
        self.in_transaction(|s, tx| s.write(tx, &key, None))
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
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(unavailable)
    }

    fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<String>,
        new: Option<String>,
    ) -> Result<bool, StorageError> {
        self.in_transaction(|s, tx| {
            let current = s.read(tx, &key)?;
            if current != expected {
                return Ok(false);
            }
            s.write(tx, &key, new.as_deref())?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &tempfile::TempDir, conn: &str) -> StorageCapability {
        StorageCapability::open(
            &dir.path().join("kv.sqlite"),
            "ponto",
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
    const TOKEN: &str = "refresh-3f9c2a-very-secret";

    fn open_keyed(dir: &tempfile::TempDir, conn: &str, key: Option<[u8; 32]>) -> StorageCapability {
        open(dir, conn).with_key(key)
    }

    /// The row exactly as SQLite holds it.
    fn raw_row(dir: &tempfile::TempDir, conn: &str, key: &str) -> Option<String> {
        let db = Connection::open(dir.path().join("kv.sqlite")).unwrap();
        db.query_row(
            "SELECT value FROM plugin_storage WHERE plugin = 'ponto' AND connection = ?1 AND key = ?2",
            params![conn, key],
            |r| r.get(0),
        )
        .optional()
        .unwrap()
    }

    fn set_raw_row(dir: &tempfile::TempDir, conn: &str, key: &str, value: &str) {
        let db = Connection::open(dir.path().join("kv.sqlite")).unwrap();
        db.execute(
            "INSERT INTO plugin_storage (plugin, connection, key, value) VALUES ('ponto', ?1, ?2, ?3)
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
        let mut kv = StorageCapability::open(&dir.path().join("kv.sqlite"), "ponto", "c", quota)
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
