//! `interface storage`: a private key-value store on SQLite, scoped to one (plugin, connection).
//!
//! Every write runs in its own transaction with `synchronous=FULL`, so it is on disk when the call
//! returns: a refresh token rotated by the plugin survives a crash one instruction later.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::bindings::storage::{Host, StorageError};

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
    pub fn open(path: &Path, plugin: &str, connection: &str, quota: Quota) -> rusqlite::Result<Self> {
        let db = Connection::open(path)?;
        db.busy_timeout(std::time::Duration::from_secs(10))?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "FULL")?;
        db.execute_batch(SCHEMA)?;
        let scope = Scope {
            plugin: plugin.to_owned(),
            connection: connection.to_owned(),
            quota,
        };
        Ok(Self { db, scope })
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
    fn read(&self, db: &Connection, key: &str) -> Result<Option<String>, StorageError> {
        db.query_row(
            "SELECT value FROM plugin_storage WHERE plugin = ?1 AND connection = ?2 AND key = ?3",
            params![self.plugin, self.connection, key],
            |r| r.get(0),
        )
        .optional()
        .map_err(unavailable)
    }

    fn check_quota(&self, tx: &rusqlite::Transaction<'_>, key: &str, value: &str) -> Result<(), StorageError> {
        if value.len() > self.quota.max_value_bytes {
            return Err(StorageError::QuotaExceeded);
        }
        let (count, exists): (i64, i64) = tx
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(key = ?3), 0) FROM plugin_storage WHERE plugin = ?1 AND connection = ?2",
                params![self.plugin, self.connection, key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(unavailable)?;
        if exists == 0 && usize::try_from(count).unwrap_or(usize::MAX) >= self.quota.max_keys {
            return Err(StorageError::QuotaExceeded);
        }
        Ok(())
    }

    fn write(&self, tx: &rusqlite::Transaction<'_>, key: &str, value: Option<&str>) -> Result<(), StorageError> {
        match value {
            Some(v) => {
                self.check_quota(tx, key, v)?;
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
            .query_map(params![self.scope.plugin, self.scope.connection, prefix], |r| r.get(0))
            .map_err(unavailable)?;
        rows.collect::<rusqlite::Result<Vec<String>>>().map_err(unavailable)
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
        StorageCapability::open(&dir.path().join("kv.sqlite"), "ponto", conn, Quota::default()).unwrap()
    }

    #[test]
    fn set_get_delete_and_list_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let mut kv = open(&dir, "c1");
        kv.set("oauth/refresh".into(), "r1".into()).unwrap();
        kv.set("oauth/access".into(), "a1".into()).unwrap();
        kv.set("state".into(), "{}".into()).unwrap();
        assert_eq!(kv.get("oauth/refresh".into()).unwrap().as_deref(), Some("r1"));
        assert_eq!(kv.list_keys("oauth/".into()).unwrap(), vec!["oauth/access", "oauth/refresh"]);
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
        assert!(a.compare_and_swap("rt".into(), None, Some("r1".into())).unwrap());
        // Two workers holding r1 race to rotate it: exactly one wins.
        assert!(a.compare_and_swap("rt".into(), Some("r1".into()), Some("r2".into())).unwrap());
        assert!(!b.compare_and_swap("rt".into(), Some("r1".into()), Some("r3".into())).unwrap());
        assert_eq!(b.get("rt".into()).unwrap().as_deref(), Some("r2"));
        assert!(b.compare_and_swap("rt".into(), Some("r2".into()), None).unwrap());
        assert_eq!(a.get("rt".into()).unwrap(), None);
    }

    #[test]
    fn writes_are_durable_for_a_new_connection() {
        let dir = tempfile::tempdir().unwrap();
        open(&dir, "c").set("k".into(), "v".into()).unwrap();
        assert_eq!(open(&dir, "c").get("k".into()).unwrap().as_deref(), Some("v"));
    }

    #[test]
    fn quota_is_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let quota = Quota { max_keys: 2, max_value_bytes: 8 };
        let mut kv = StorageCapability::open(&dir.path().join("kv.sqlite"), "p", "c", quota).unwrap();
        assert!(matches!(kv.set("big".into(), "123456789".into()), Err(StorageError::QuotaExceeded)));
        kv.set("a".into(), "1".into()).unwrap();
        kv.set("b".into(), "2".into()).unwrap();
        kv.set("a".into(), "3".into()).unwrap(); // overwriting is not a new key
        assert!(matches!(kv.set("c".into(), "4".into()), Err(StorageError::QuotaExceeded)));
    }
}
