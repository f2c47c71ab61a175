//! The per-link sync lock: one sync of a link at a time, across processes; a lock whose holder
//! died or stopped beating is taken over.

use rusqlite::{OptionalExtension, params};

use super::db::Db;
use crate::erp::clock::{now, parse_stamp, stamp};
use crate::erp::errors::ErpError;

/// A lock whose holder has not beaten for this long is taken over even if its process lives.
const LOCK_STALE_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(30);

impl Db {
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
}

/// `pid:<pid>:<start time>` of a live process, or None when it is gone. The start time guards
/// against a recycled pid.
pub fn process_identity(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (starttime) counted after the command name, which may hold spaces.
    let after = stat.rsplit_once(')')?.1;
    let start = after.split_whitespace().nth(19)?;
    Some(format!("pid:{pid}:{start}"))
}
