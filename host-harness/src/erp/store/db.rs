//! The database handle: opening (creating and migrating) the file, and the transaction every
//! write of the store runs in.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::checkpoint::Checkpoints;
use super::connection::{check_path, open_conn};
use super::schema::{MIGRATIONS, MigrateError, migrate};
use crate::erp::errors::ErpError;

pub struct Db {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    /// The WAL checkpoints a sync's batches ask for.
    pub(super) checkpoints: Checkpoints,
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
            checkpoints: Checkpoints::default(),
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

    pub(super) fn err(&self, e: rusqlite::Error) -> ErpError {
        ErpError::db(&self.path, e)
    }

    /// Every row `sql` selects with `params`, each made by `row`; an error names the database.
    pub(super) fn rows<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, ErpError> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        stmt.query_map(params, row)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    pub(super) fn immediate(&mut self) -> Result<Transaction<'_>, ErpError> {
        let path = self.path.clone();
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| ErpError::db(&path, e))
    }
}
