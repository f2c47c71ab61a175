//! The files a failed command made (a new database, its key file), removed so it leaves nothing.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::schema::has_table;

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
            if has_table(&conn, table)? {
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
