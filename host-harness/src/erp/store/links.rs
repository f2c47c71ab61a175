//! Online links (one per bank connection): their state, refresh schedule and the connection
//! that creates them with their accounts.

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;

use super::accounts::upsert_account;
use super::db::Db;
use super::schema::has_table;
use crate::erp::clock::{now, stamp};
use crate::erp::errors::ErpError;
use crate::erp::names::{LinkState, institution_status_name};
use crate::runtime::types::Account;

/// The first retry of a link whose sync failed; it doubles up to the normal refresh interval.
const FIRST_RETRY: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

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
    pub state: LinkState,
    pub message: Option<String>,
    pub consent_expires_at: Option<String>,
    pub last_refresh: Option<String>,
    pub next_refresh: Option<String>,
    pub auto_sync: bool,
    pub created_at: String,
    /// Syncs in a row that ended with an account in error (0 after a clean one).
    pub sync_failures: u32,
}

impl Db {
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
        self.rows(&sql, p, |r| {
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
        state: LinkState,
        message: Option<&str>,
        failed: bool,
    ) -> Result<(), ErpError> {
        let path = self.path.clone();
        let tx = self.immediate()?;
        let inner = || -> rusqlite::Result<()> {
            let (current, failures): (LinkState, u32) = tx.query_row(
                "SELECT state, sync_failures FROM links WHERE id = ?1",
                params![link_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let consent = "consent_expires_at = (SELECT MIN(consent_expires_at) FROM online_accounts WHERE link_id = ?1)";
            if current == LinkState::Disconnected {
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
            if has_table(&tx, "plugin_storage")? {
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
                            institution_status_name(inst.status)
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
                            institution_status_name(inst.status),
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
}

/// When a link is tried again after `failures` failed syncs in a row: 15 minutes, doubling with
/// each further failure, never later than the normal `refresh` interval; `refresh` after a clean
/// sync.
fn next_try(failures: u32, refresh: chrono::TimeDelta) -> chrono::TimeDelta {
    if failures == 0 {
        return refresh;
    }
    let factor = 1i32 << (failures - 1).min(16);
    (FIRST_RETRY * factor).min(refresh)
}
