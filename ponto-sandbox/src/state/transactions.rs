//! An account's newest-first transaction list: the seeded history (listed by index, never
//! materialised) with the bookings added later placed between its keys.

use chrono::{DateTime, Utc};

use super::{AccountState, World};
use crate::generator::{Generator, TsStyle, h3, ts, uuid_from};

/// Position in an account's newest-first list. Booked transaction `k` of the seeded history is
/// `(k, 0)`; a transaction added later sits just above base `anchor` with `seq >= 1`.
pub type Key = (i64, u64);

pub const EXTRA_BASE: u64 = 1 << 40;

impl AccountState {
    /// Books `rec` now, placed just after the seeded transaction `anchor` in the newest-first
    /// order: stamped, keyed, counted in the balance and findable by id.
    pub(super) fn book(
        &mut self,
        anchor: i64,
        mut rec: crate::generator::TxRecord,
        now: DateTime<Utc>,
    ) -> crate::generator::TxRecord {
        rec.attrs.created_at = ts(now, TsStyle::Millis);
        rec.attrs.updated_at = rec.attrs.created_at.clone();
        let key = (anchor, self.next_seq);
        self.next_seq += 1;
        self.extra_sum += rec.attrs.amount.minor;
        self.overlay_ids.insert(rec.id.clone(), key);
        self.overlay.insert(key, rec.clone());
        rec
    }
}

/// One item of a page: a seeded booking (generated outside the lock) or a stored record.
pub enum Slot {
    Base(u64),
    Stored(Box<crate::generator::TxRecord>),
}

pub struct Page {
    pub slots: Vec<(String, Slot)>,
    pub has_prev: bool,
    pub has_next: bool,
}

impl World {
    /// Position of a transaction id in the account's list, if it is listed there.
    pub fn key_of(&self, idx: usize, id: &str) -> Option<Key> {
        if let Some(k) = self.accounts[idx].overlay_ids.get(id) {
            return Some(*k);
        }
        let (a, kind, k) = self.data.decode_id(id)?;
        (a == idx && kind == crate::generator::KIND_BOOKED && k < self.data.accounts[idx].booked)
            .then_some((k as i64, 0))
    }

    /// A newest-first page of booked transactions. `after`: older than that key; `before`:
    /// newer than it. The seeded part is never materialised: only its indices are listed.
    pub fn page(&self, idx: usize, limit: usize, after: Option<Key>, before: Option<Key>) -> Page {
        let n = self.data.accounts[idx].booked as i64;
        let st = &self.accounts[idx];
        let id_of = |slot: &Slot| match slot {
            Slot::Base(k) => {
                self.data
                    .encode_id(&self.data.accounts[idx], crate::generator::KIND_BOOKED, *k)
            }
            Slot::Stored(r) => r.id.clone(),
        };
        if let Some(b) = before {
            // Walk up (ascending keys) from `b`, then flip to newest first.
            let mut base = b.0 + 1; // base keys (k, 0) above (b.0, any seq)
            let mut extra = st.overlay.range((b.0, b.1 + 1)..).peekable();
            let mut got: Vec<(Key, Slot)> = Vec::new();
            while got.len() < limit + 1 {
                let bk = (base < n).then_some((base, 0u64));
                let ek = extra.peek().map(|(k, _)| **k);
                match (bk, ek) {
                    (Some(x), Some(y)) if x < y => {
                        got.push((x, Slot::Base(x.0 as u64)));
                        base += 1;
                    }
                    (_, Some(y)) => {
                        let (_, r) = extra.next().expect("peeked");
                        got.push((y, Slot::Stored(Box::new(r.clone()))));
                    }
                    (Some(x), None) => {
                        got.push((x, Slot::Base(x.0 as u64)));
                        base += 1;
                    }
                    (None, None) => break,
                }
            }
            let has_prev = got.len() > limit;
            got.truncate(limit);
            got.reverse();
            let slots = got.into_iter().map(|(_, s)| (id_of(&s), s)).collect();
            return Page {
                slots,
                has_prev,
                has_next: true,
            };
        }
        let start: Key = after.unwrap_or((i64::MAX, 0));
        let mut base = if start.0 == i64::MAX {
            n - 1
        } else if start.1 > 0 {
            start.0
        } else {
            start.0 - 1
        };
        let mut extra = st.overlay.range(..start).rev().peekable();
        let mut got: Vec<Slot> = Vec::new();
        while got.len() < limit + 1 {
            let bk = (base >= 0).then_some((base, 0u64));
            let ek = extra.peek().map(|(k, _)| **k);
            match (bk, ek) {
                (Some(x), Some(y)) if x > y => {
                    got.push(Slot::Base(x.0 as u64));
                    base -= 1;
                }
                (_, Some(_)) => {
                    let (_, r) = extra.next().expect("peeked");
                    got.push(Slot::Stored(Box::new(r.clone())));
                }
                (Some(x), None) => {
                    got.push(Slot::Base(x.0 as u64));
                    base -= 1;
                }
                (None, None) => break,
            }
        }
        let has_next = got.len() > limit;
        got.truncate(limit);
        Page {
            slots: got.into_iter().map(|s| (id_of(&s), s)).collect(),
            has_prev: after.is_some(),
            has_next,
        }
    }
}

/// The newest seeded booking dated on or before `date` (-1 when older than all of them).
pub(super) fn last_k_on_or_before(data: &Generator, idx: usize, date: chrono::NaiveDate) -> i64 {
    let a = &data.accounts[idx];
    let (mut lo, mut hi) = (0i64, a.booked as i64 - 1);
    let mut best = -1;
    while lo <= hi {
        let mid = (lo + hi) / 2;
        if data.booking_date(a, mid as u64) <= date {
            best = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    best
}

/// A transaction outside the seeded history (late booking, settlement, new booking, pending).
pub(super) fn make_extra(
    data: &Generator,
    idx: usize,
    st: &mut AccountState,
    date: chrono::NaiveDate,
    booked: bool,
) -> crate::generator::TxRecord {
    let a = &data.accounts[idx];
    st.made += 1;
    let c = EXTRA_BASE + st.made;
    let id = uuid_from(h3(a.salt, 0xE7, st.made), h3(a.salt, 0xE8, st.made));
    let attrs = data.attributes(a, c, date, id.as_bytes(), booked);
    crate::generator::TxRecord { id, attrs }
}
