//! The `plugin_storage` table: its schema, and the raw write both a session and the replay of a
//! recovery file use.

use rusqlite::{Connection, params};

pub(super) const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS plugin_storage (
    plugin TEXT NOT NULL,
    connection TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (plugin, connection, key)
) WITHOUT ROWID;";

/// Writes a row as stored (a ciphertext or a legacy plaintext); none deletes it.
pub(super) fn write_raw(
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
