//! Resumable synchronisation of one account.
//!
//! The host keeps all progress: the `cursor` (within a sync) and the `state` (between syncs) are
//! this module's JSON, so a batch and its cursor commit together and a crash neither loses nor
//! doubles a line. One call holds at most one page plus one batch.
//!
//! Steps: on the first call, ask Ponto for fresh data when the user is present (customer IP),
//! read the account (balance, consent, availability) and, when the state does not hold it or it
//! is a day old, its institution (time zone, status); then walk `/transactions` newest first;
//! then the synchronization's updated transactions; then, by the rule below, the pending list.
//!
//! Where the walk ends (Ponto synchronises every account 4×/day by itself, so an unattended
//! sync usually just reads what Ponto holds):
//! - Normally at the previous sync's newest transaction id (kept in the state), with the
//!   account's `currentBalance` as a checksum: it must equal the previous sync's balance plus
//!   the lines above that id. Then one page (plus the account) is the whole sync.
//! - When the balance does not add up, a back-dated booking or an edit is hidden deeper in the
//!   newest-first list: the walk goes on, as it always did, until a whole page is older than the
//!   stop date (previous watermark − `overlap-days`, or `since` if that is earlier), finishing the
//!   statement in progress; the balance-gap warning then reports what even that leaves
//!   unexplained. The walk also goes that deep when the state does not say enough (first sync, a
//!   state written by an older version, another grouping, date field, overlap or time zone),
//!   for `since`, when a line above the known id falls in a period older than the previous
//!   newest statement, and at least every `overlap-walk-hours` (24) as a safety net for moves
//!   that cancel out.
//!
//! Pending rule: Ponto replaces an account's pending list only at a synchronization of subtype
//! `accountTransactionsWithUnsettled` (api-notes §2.6), so the list is read again only when
//! something could have changed it: nothing is known about the last read (first sync, older
//! state), the user asked for a bank refresh, the walk went deep (safety net or a balance that
//! did not add up), or the account's `meta.latestSynchronization` or the transactions list's
//! `meta.latestSynchronization` names a synchronization not seen at the last read whose subtype
//! is neither `accountTransactions` nor `accountDetails` (or the account names none at all).
//! Otherwise the batch carries no pending list and the host keeps the previous one. Whether the
//! last list was empty is deliberately not a reason either way: a plain `accountTransactions`
//! sync books settlements but leaves Ponto's list as it was, so re-reading it would give the same
//! list.
//!
//! Statements are runs of lines in walk order sharing a period (day, ISO week, month, or the whole
//! sync). Balances are derived backwards from the account's `currentBalance`: a statement's end is
//! the running balance before its lines are subtracted, its start is end − sum(lines). A line
//! whose period is newer than the statement in progress (Ponto orders by execution date, not
//! value date) joins that statement, which widens its dates, so keys stay unique and balances
//! chain. When the walk ends at the known id, the previous newest statement (kept in the state)
//! is re-sent with the new lines of its period: its start stays, its end moves.

use crate::bindings::Result;
use crate::bindings::provider::{SyncBatch, SyncProgress, SyncRequest};
use crate::bindings::types::ProviderError;
use crate::client::Api;
use crate::config::Config;
use crate::imports::Imports;
use crate::jsonapi::timestamp;

mod dates;
mod pending;
mod start;
mod state;
mod statements;
mod walk;

use start::start;
pub use start::{BETA_ADVICE, CONSENT_ADVICE};
pub use state::{Anchor, KnownInstitution, NewestStatement, PendingRead, SyncState, WalkSettings};
use state::{Batch, Cursor, Phase, parse_arg};

/// One sync batch (provider.wit `sync`).
pub fn sync(host: &dyn Imports, request: &SyncRequest) -> Result<SyncBatch> {
    if request.account_id.trim().is_empty() {
        return Err(ProviderError::argument("account-id", "is empty"));
    }
    if request.max_lines == 0 {
        return Err(ProviderError::argument("max-lines", "must be at least 1"));
    }
    let api = Api::new(host, Config::load(host)?);
    let mut batch = Batch {
        lines: Vec::new(),
        updated: Vec::new(),
        statements: Vec::new(),
        pending: None,
        warnings: Vec::new(),
    };
    let (mut cursor, account) = match request.cursor.as_deref() {
        None => {
            let (c, a) = start(&api, request, &mut batch)?;
            (c, Some(a))
        }
        Some(text) => {
            let c: Cursor = parse_arg("cursor", text)?;
            if c.account_id != request.account_id {
                return Err(ProviderError::argument(
                    "cursor",
                    "belongs to a sync of another account",
                ));
            }
            *api.advice.borrow_mut() = c.advice.clone();
            (c, None)
        }
    };
    let max = request.max_lines;
    let today = host.now().with_timezone(&cursor.tz()).date_naive();
    if cursor.phase == Phase::Transactions {
        if cursor.transactions(&api, max, today, &mut batch)? {
            cursor.finish_transactions(&mut batch)?;
        } else if let Some(o) = cursor.open.clone()
            && cursor.current.is_some()
        {
            // The statement in progress as now known; a later batch widens it.
            cursor.emit(&o, &mut batch)?;
        }
    }
    if cursor.phase == Phase::Updated && cursor.updated(&api, max, today, &mut batch)? {
        cursor.next_phase(Phase::Pending);
    }
    let progress = if cursor.phase == Phase::Pending {
        let read = cursor.read_pending;
        if read {
            batch.pending = cursor.pending(&api)?;
        }
        let state = cursor.final_state(timestamp(host.now()), read);
        SyncProgress::Done(
            serde_json::to_string(&state).map_err(|e| ProviderError::Storage(e.to_string()))?,
        )
    } else {
        SyncProgress::More(
            serde_json::to_string(&cursor).map_err(|e| ProviderError::Storage(e.to_string()))?,
        )
    };
    Ok(SyncBatch {
        account,
        lines: batch.lines,
        updated_lines: batch.updated,
        statements: batch.statements,
        pending: batch.pending,
        warnings: batch.warnings,
        transactions_read: cursor.read,
        progress,
    })
}
