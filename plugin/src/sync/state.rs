//! What a sync keeps: the state between syncs of an account and the cursor within one, both
//! this provider's JSON held by the host.

use crate::bindings::Result;
use crate::bindings::types::{PendingLine, ProviderError, Statement, StatementLine, Warning};
use crate::config::{DateField, Grouping};
use crate::decimal::Decimal;
use crate::mapping;
use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// What is kept between syncs of an account. Every field added after the first version is
/// optional: a state written by an older version loads, and what it lacks makes this sync walk
/// the whole overlap and read the institution and pending list, as that version did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    /// Newest booking date seen so far.
    pub watermark: Option<NaiveDate>,
    /// Derived balance at the start of watermark − overlap (before that day's lines), where the
    /// next sync checks that the balances still chain.
    pub anchor: Option<Anchor>,
    /// When that sync finished.
    pub synced_at: Option<String>,
    /// Id of the newest booked transaction (the first of Ponto's newest-first list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_id: Option<String>,
    /// The account's `currentBalance` at that sync: the checksum of the next one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<Decimal>,
    /// The newest statement sent, which lines of its period arriving later extend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<NewestStatement>,
    /// Sums per booking date from watermark − overlap on: what a walk of the overlap would read,
    /// so a sync that reads only new lines can still hand the next one its anchor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Vec<(NaiveDate, Decimal)>>,
    /// When the overlap was last walked (the safety net's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub walked_at: Option<String>,
    /// The settings the window and statements were built with; another value walks the overlap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub walk: Option<WalkSettings>,
    /// The institution as last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub institution: Option<KnownInstitution>,
    /// The synchronizations Ponto named when the pending list was last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_read: Option<PendingRead>,
}

/// The newest statement of an account as last sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewestStatement {
    pub key: String,
    pub period_start: NaiveDate,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub start: Decimal,
}

/// Settings that shape the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkSettings {
    pub date_field: DateField,
    pub grouping: Grouping,
    pub overlap: u32,
}

/// What a sync needs of the institution; it rarely changes, so it is read at most daily.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownInstitution {
    pub id: String,
    pub name: String,
    pub time_zone: String,
    /// `stable`, `beta`, `experimental` or `unknown`.
    pub status: String,
    pub deprecated: bool,
    pub read_at: String,
}

/// Ids of the synchronizations Ponto named (account and transactions list) at the last read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRead {
    pub synchronizations: Vec<String>,
}

/// What lets a walk end at the previous sync's newest line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Known {
    pub(super) id: String,
    pub(super) balance: Decimal,
    pub(super) newest: Option<NewestStatement>,
}

/// How old the stored institution may be.
pub(super) const INSTITUTION_MAX_AGE_HOURS: i64 = 24;

/// A derived balance at the start of a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub date: NaiveDate,
    pub balance: Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum Phase {
    Transactions,
    Updated,
    Pending,
}

/// The statement in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Open {
    pub(super) key: String,
    pub(super) name: String,
    pub(super) period_start: NaiveDate,
    pub(super) from: NaiveDate,
    pub(super) to: NaiveDate,
    pub(super) end: Decimal,
    pub(super) sum: Decimal,
}

/// Progress within one sync; self-contained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Cursor {
    pub(super) account_id: String,
    pub(super) phase: Phase,
    /// Next page of the current phase; none means the phase's first page.
    pub(super) next: Option<String>,
    pub(super) stop: Option<NaiveDate>,
    /// A whole page older than `stop` was seen: only the statement in progress is finished.
    pub(super) stopping: bool,
    pub(super) tz: String,
    pub(super) date_field: DateField,
    pub(super) grouping: Grouping,
    pub(super) sync_key: String,
    pub(super) sync_name: String,
    pub(super) currency: String,
    /// The account's current balance; none means statements cannot be derived.
    pub(super) current: Option<Decimal>,
    /// Balance before the lines processed so far.
    pub(super) running: Option<Decimal>,
    pub(super) open: Option<Open>,
    /// The accountTransactions synchronization, for updated transactions.
    pub(super) sync_id: Option<String>,
    pub(super) read: u64,
    pub(super) prev: Option<SyncState>,
    /// Newest booking date known (previous watermark included).
    pub(super) newest: Option<NaiveDate>,
    /// Sums per booking date of the lines dated within `overlap` days of `newest`: the next
    /// sync's anchor (at most overlap + 1 entries).
    pub(super) window: Vec<(NaiveDate, Decimal)>,
    pub(super) overlap: u32,
    /// Sum of lines dated on or after the previous anchor's date.
    pub(super) sum_since_anchor: Decimal,
    pub(super) advice: Option<String>,
    /// Hashes of the last pages read in this phase (at most `RECENT_PAGES`): a `links.next`
    /// back to one of them is a paging loop, which would otherwise hand the host the same
    /// lines batch after batch, forever.
    #[serde(default)]
    pub(super) recent_pages: Vec<u64>,
    /// Pages read in this phase; longer loops end at `MAX_SYNC_PAGES`.
    #[serde(default)]
    pub(super) pages: u32,
    /// Set while the walk may end at the previous newest line; cleared once it must go deeper.
    #[serde(default)]
    pub(super) known: Option<Known>,
    /// The walk ended at the known line with the balance adding up.
    #[serde(default)]
    pub(super) ended_at_known: bool,
    /// Id of the first line taken (the newest).
    #[serde(default)]
    pub(super) first_id: Option<String>,
    /// Key of the first statement opened, and that statement as last sent.
    #[serde(default)]
    pub(super) first_key: Option<String>,
    #[serde(default)]
    pub(super) first: Option<NewestStatement>,
    /// Whether this sync reads the pending list (see the module doc).
    #[serde(default = "yes")]
    pub(super) read_pending: bool,
    /// Synchronization ids Ponto named during this sync.
    #[serde(default)]
    pub(super) synchronizations: Vec<String>,
    #[serde(default)]
    pub(super) institution: Option<KnownInstitution>,
    /// The ids and amounts of the last lines taken, to catch an id Ponto lists twice.
    #[serde(default)]
    pub(super) taken: Taken,
}

/// How many of the last lines taken the cursor carries to the next batch (id and amount, ~50
/// bytes each: the cursor is written with every batch). Within one batch every line is
/// remembered. A repeat further apart is not caught here; the ERP's check of each statement
/// against its stored lines still reports the gap it leaves.
pub(super) const TAKEN_MEMORY: usize = 500;

/// The lines taken in this call and the last [`TAKEN_MEMORY`] of the calls before: ids with
/// their amounts, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    from = "VecDeque<(String, Decimal)>",
    into = "VecDeque<(String, Decimal)>"
)]
pub(super) struct Taken {
    pub(super) order: VecDeque<(String, Decimal)>,
    pub(super) index: HashMap<String, Decimal>,
}

impl From<VecDeque<(String, Decimal)>> for Taken {
    fn from(order: VecDeque<(String, Decimal)>) -> Self {
        let index = order.iter().cloned().collect();
        Taken { order, index }
    }
}

impl From<Taken> for VecDeque<(String, Decimal)> {
    fn from(t: Taken) -> Self {
        let mut order = t.order;
        let excess = order.len().saturating_sub(TAKEN_MEMORY);
        order.drain(..excess);
        order
    }
}

impl Taken {
    /// The amount an id was taken with in this walk, if it was.
    pub(super) fn get(&self, id: &str) -> Option<Decimal> {
        self.index.get(id).copied()
    }

    pub(super) fn insert(&mut self, id: &str, amount: Decimal) {
        if self.index.insert(id.to_string(), amount).is_none() {
            self.order.push_back((id.to_string(), amount));
        }
    }
}

fn yes() -> bool {
    true
}

impl Cursor {
    pub(super) fn tz(&self) -> Tz {
        mapping::time_zone(&self.tz).unwrap_or(chrono_tz::Europe::Brussels)
    }

    /// The state to keep after a completed sync: the watermark, the derived balance at the
    /// start of the next sync's stop date (watermark − overlap), where the next sync checks it,
    /// and what lets the next sync end at this one's newest line. `pending_read`: this sync
    /// read the pending list.
    pub(super) fn final_state(&self, now: String, pending_read: bool) -> SyncState {
        let prev = self.prev.as_ref();
        let early = self.ended_at_known;
        // Ended at the known line, only new lines were read: the window is the previous one
        // plus them (the balance check proved nothing else moved).
        let window: Vec<(NaiveDate, Decimal)> = if early {
            let start = self.window_start();
            let mut merged: Vec<(NaiveDate, Decimal)> = Vec::new();
            let previous = prev.and_then(|p| p.window.as_deref()).unwrap_or_default();
            for &(day, v) in previous.iter().chain(self.window.iter()) {
                if start.is_some_and(|s| day < s) {
                    continue;
                }
                match merged.iter_mut().find(|(d, _)| *d == day) {
                    Some((_, sum)) => match sum.checked_add(v) {
                        Some(x) => *sum = x,
                        None => return self.bare_state(now),
                    },
                    None => merged.push((day, v)),
                }
            }
            merged
        } else {
            self.window.clone()
        };
        let covered = |date: NaiveDate| early || self.stop.is_none_or(|s| s <= date);
        let anchor = match (self.current, self.window_start()) {
            (Some(c), Some(date)) if covered(date) => {
                let mut sum = Some(Decimal::ZERO);
                for (_, v) in &window {
                    sum = sum.and_then(|s| s.checked_add(*v));
                }
                sum.and_then(|s| c.checked_sub(s))
                    .map(|balance| Anchor { date, balance })
            }
            _ => None,
        };
        let kept =
            |f: fn(&SyncState) -> Option<String>| if early { prev.and_then(f) } else { None };
        SyncState {
            watermark: self.newest,
            anchor,
            synced_at: Some(now.clone()),
            last_id: self
                .first_id
                .clone()
                .or_else(|| kept(|p| p.last_id.clone())),
            balance: self.current,
            newest: self.first.clone().or_else(|| {
                if early {
                    prev.and_then(|p| p.newest.clone())
                } else {
                    None
                }
            }),
            window: Some(window),
            walked_at: if early {
                kept(|p| p.walked_at.clone())
            } else {
                Some(now)
            },
            walk: Some(WalkSettings {
                date_field: self.date_field,
                grouping: self.grouping,
                overlap: self.overlap,
            }),
            institution: self.institution.clone(),
            pending_read: if pending_read {
                Some(PendingRead {
                    synchronizations: self.synchronizations.clone(),
                })
            } else {
                prev.and_then(|p| p.pending_read.clone())
            },
        }
    }

    /// A state that makes the next sync walk the overlap and read everything (amounts too
    /// large to sum up exactly).
    pub(super) fn bare_state(&self, now: String) -> SyncState {
        SyncState {
            watermark: self.newest,
            anchor: None,
            synced_at: Some(now),
            last_id: None,
            balance: None,
            newest: None,
            window: None,
            walked_at: None,
            walk: None,
            institution: None,
            pending_read: None,
        }
    }
}

/// What one call collects.
pub(super) struct Batch {
    pub(super) lines: Vec<StatementLine>,
    pub(super) updated: Vec<StatementLine>,
    pub(super) statements: Vec<Statement>,
    pub(super) pending: Option<Vec<PendingLine>>,
    pub(super) warnings: Vec<Warning>,
}

/// Reads a state or cursor handed back by the host (this provider's own JSON).
pub(super) fn parse_arg<T: for<'de> Deserialize<'de>>(name: &str, text: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| ProviderError::argument(name, format!("not one this provider wrote: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_carries_only_the_last_lines_taken() {
        let mut t = Taken::default();
        for i in 0..TAKEN_MEMORY + 10 {
            t.insert(&format!("t{i}"), Decimal::ZERO);
        }
        // Within the call, every line is remembered.
        assert!(t.get("t0").is_some());
        let text = serde_json::to_string(&t).unwrap();
        let back: Taken = serde_json::from_str(&text).unwrap();
        assert_eq!(back.order.len(), TAKEN_MEMORY);
        assert!(back.get("t9").is_none() && back.get("t10").is_some());
    }
}
