//! Pending connection attempts of the two-step connect, and the provider storage of a connection
//! that never became a link.

use rusqlite::{OptionalExtension, params};

use super::db::Db;
use super::schema::has_table;
use crate::erp::clock::{now, stamp};
use crate::erp::errors::ErpError;

/// A pending connection attempt of the two-step connect (`erp connect begin` / `finish`).
#[derive(Clone, Debug)]
pub struct ConnectAttempt {
    pub connection_id: String,
    pub state: String,
    pub institution_id: String,
    pub redirect_uri: String,
    pub link_id: Option<i64>,
}

impl Db {
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
        let exists = has_table(&self.conn, "plugin_storage").map_err(|e| self.err(e))?;
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
}
