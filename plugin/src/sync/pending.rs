//! The pending rule: when the pending list can have changed, and reading it.

use super::state::Cursor;
use crate::bindings::Result;
use crate::bindings::types::{PendingLine, ProviderError};
use crate::client::{Api, Auth};
use crate::mapping;

impl Cursor {
    /// Notes a synchronization Ponto names (`meta.latestSynchronization`); one not seen at the
    /// last pending read whose subtype may have replaced the pending list makes this sync read
    /// it.
    pub(super) fn note_synchronization(&mut self, sync: Option<&serde_json::Value>) {
        let Some(id) = sync.and_then(|s| s.get("id")).and_then(|v| v.as_str()) else {
            return;
        };
        let subtype = sync
            .and_then(|s| s.pointer("/attributes/subtype"))
            .and_then(|v| v.as_str());
        let seen = self
            .prev
            .as_ref()
            .and_then(|p| p.pending_read.as_ref())
            .is_some_and(|r| r.synchronizations.iter().any(|x| x == id));
        if !seen && !matches!(subtype, Some("accountTransactions" | "accountDetails")) {
            self.read_pending = true;
        }
        if !self.synchronizations.iter().any(|x| x == id) {
            self.synchronizations.push(id.to_string());
        }
    }

    /// The complete pending list.
    pub(super) fn pending(&self, api: &Api<'_>) -> Result<Option<Vec<PendingLine>>> {
        let tz = self.tz();
        // The whole list is replaced at once, so read it in the largest pages Ponto allows.
        let url = api.url(&format!(
            "/accounts/{}/pending-transactions?page[limit]=100",
            crate::url::encode(&self.account_id),
        ));
        let mut out = Vec::new();
        match api.all_pages(&url, Auth::Bearer, "pending transactions", |raw| {
            out.push(mapping::pending(raw, tz)?);
            Ok(())
        }) {
            Ok(()) => Ok(Some(out)),
            // No pending list at this institution: leave the previous one as it is.
            Err(ProviderError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
