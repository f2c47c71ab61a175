//! The walk: `/transactions` newest first until the known id or the stop date, then the
//! synchronization's updated transactions, guarding against paging loops.

use super::dates::{local_time, plausible};
use super::state::Batch;
use super::state::{Cursor, Phase, Taken};
use super::statements::{add, sub};
use crate::bindings::Result;
use crate::bindings::log::Level;
use crate::bindings::types::{ProviderError, Warning, WarningKind};
use crate::client::{Api, Auth};
use crate::config::Config;
use crate::decimal::Decimal;
use crate::mapping;
use chrono::{Days, NaiveDate};

/// How many page hashes the cursor keeps (8 bytes each).
pub(super) const RECENT_PAGES: usize = 64;

/// Pages one phase may read: 100 million lines at Ponto's largest page.
pub(super) const MAX_SYNC_PAGES: u32 = 1_000_000;

/// A stable 64-bit digest of a page URL (stable across builds, unlike `DefaultHasher`).
pub(super) fn page_hash(url: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(url.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    u64::from_be_bytes(first)
}

impl Cursor {
    /// Records that `url` is read now; a page read before in this phase is a paging loop.
    pub(super) fn visit(&mut self, url: &str, what: &str) -> Result<()> {
        let h = page_hash(url);
        let looped = |reason: &str| {
            crate::client::page_malformed(what, Some("links.next"), None, reason.to_string())
        };
        if self.recent_pages.contains(&h) {
            return Err(looped(
                "the next-page link leads back to a page already read (a paging loop)",
            ));
        }
        self.pages = self.pages.saturating_add(1);
        if self.pages > MAX_SYNC_PAGES {
            return Err(looped(&format!(
                "more than {MAX_SYNC_PAGES} pages (a paging loop?)"
            )));
        }
        self.recent_pages.push(h);
        if self.recent_pages.len() > RECENT_PAGES {
            self.recent_pages.remove(0);
        }
        Ok(())
    }

    /// Starts the next phase at its first page.
    pub(super) fn next_phase(&mut self, phase: Phase) {
        self.phase = phase;
        // Only the walk needs the lines it took.
        self.taken = Taken::default();
        self.next = None;
        self.recent_pages.clear();
        self.pages = 0;
    }

    /// The walk can no longer end at the known line: it goes down to the stop date, and this
    /// sync reads the pending list too (see the module doc).
    pub(super) fn go_deep(&mut self) {
        self.known = None;
        self.read_pending = true;
    }

    /// First day of the next sync's anchor window.
    pub(super) fn window_start(&self) -> Option<NaiveDate> {
        self.newest
            .and_then(|n| n.checked_sub_days(Days::new(u64::from(self.overlap))))
    }

    /// Keeps the per-day sums of the lines the next sync will read again; `moves` lets `d`
    /// become the newest date (a stray line's filing date does not).
    pub(super) fn track_window(
        &mut self,
        d: NaiveDate,
        amount: Decimal,
        moves: bool,
    ) -> Result<()> {
        if moves && self.newest.is_none_or(|n| d > n) {
            self.newest = Some(d);
            if let Some(start) = self.window_start() {
                self.window.retain(|(day, _)| *day >= start);
            }
        }
        if self.window_start().is_some_and(|start| d < start) {
            return Ok(());
        }
        match self.window.iter_mut().find(|(day, _)| *day == d) {
            Some((_, sum)) => *sum = add(*sum, amount)?,
            None => self.window.push((d, amount)),
        }
        Ok(())
    }

    /// The page size for this call.
    pub(super) fn limit(config: &Config, max_lines: u32) -> u32 {
        config.page_size.min(max_lines).max(1)
    }

    /// Reads transaction pages while the batch has room. Returns whether the phase ended.
    pub(super) fn transactions(
        &mut self,
        api: &Api<'_>,
        max_lines: u32,
        today: NaiveDate,
        batch: &mut Batch,
    ) -> Result<bool> {
        let limit = Self::limit(&api.config, max_lines);
        let tz = self.tz();
        loop {
            let first_page = self.next.is_none();
            let url = match &self.next {
                Some(u) => u.clone(),
                None => api.url(&format!(
                    "/accounts/{}/transactions?page[limit]={limit}",
                    crate::url::encode(&self.account_id)
                )),
            };
            self.visit(&url, "transactions")?;
            let body = api.page_text(&url, Auth::Bearer, "transactions")?;
            let data = api.parse_page(&body, &url, "transactions")?;
            if first_page {
                self.note_synchronization(
                    data.meta
                        .as_ref()
                        .and_then(|m| m.get("latestSynchronization")),
                );
            }
            let next = data.next.clone();
            // Map the whole page first: a malformed transaction rejects the batch.
            let mut page = Vec::with_capacity(data.items.len());
            for item in data.items {
                page.push(mapping::transaction_item(
                    item.raw,
                    item.lite,
                    tz,
                    self.date_field,
                )?);
            }
            drop(body);
            if let Some(stop) = self.stop
                && !page.is_empty()
                && page.iter().all(|m| m.booking < stop)
            {
                self.stopping = true;
            }
            let mut ended = page.is_empty() || next.is_none();
            for mut m in page {
                if let Some(first) = self.taken.get(&m.line.transaction_id) {
                    // Listed twice in one walk: the ERP keeps the first line of an id, so only
                    // the first is counted, and the statements agree with the stored lines.
                    if first != m.amount {
                        batch.warnings.push(Warning::new(
                            WarningKind::Other,
                            format!(
                                "Ponto lists transaction {} twice in this sync, first with \
                                 amount {first} {cur}, then with {} {cur}: the first is kept and \
                                 counted in the statement balances, the second ignored. Check \
                                 the transaction against the bank's statement.",
                                m.line.transaction_id,
                                m.amount,
                                cur = self.currency,
                            ),
                        ));
                    }
                    continue;
                }
                let stray = !plausible(m.booking, today);
                if stray {
                    // Filed with the statement in progress, else today's.
                    m.booking = self.open.as_ref().map_or(today, |o| o.to);
                }
                if let Some(k) = &self.known
                    && m.line.transaction_id == k.id
                {
                    // The previous sync's newest line: everything above it is new. If the
                    // balance adds up, nothing is hidden below it.
                    // Compared by value: Ponto writes `12.5` and `12.50` alike.
                    let adds_up = self
                        .running
                        .and_then(|r| r.checked_sub(k.balance))
                        .is_some_and(Decimal::is_zero);
                    if adds_up {
                        self.ended_at_known = true;
                        ended = true;
                        break;
                    }
                    // A back-dated booking or an edit below: walk the overlap as always.
                    self.go_deep();
                }
                if self.stopping && !self.joins_open(m.booking) {
                    ended = true;
                    break;
                }
                self.take(m, stray, batch)?;
            }
            self.next = next;
            if ended {
                return Ok(true);
            }
            if batch.lines.len() + limit as usize > max_lines as usize {
                return Ok(false);
            }
        }
    }

    /// Closes the walk: last statement and the balance-gap check.
    pub(super) fn finish_transactions(&mut self, batch: &mut Batch) -> Result<()> {
        if let Some(mut o) = self.open.take()
            && self.current.is_some()
        {
            if self.ended_at_known
                && let Some(k) = &self.known
                && let Some(p) = k.newest.as_ref().filter(|p| p.key == o.key)
            {
                // New lines of the newest statement's period: it is sent again whole, with the
                // start it had and the lines it held (previous balance − its start).
                o.sum = add(o.sum, sub(k.balance, p.start)?)?;
                o.from = o.from.min(p.from);
                o.to = o.to.max(p.to);
            }
            self.emit(&o, batch)?;
        }
        let covered = |date: NaiveDate| self.stop.is_none_or(|s| s <= date);
        // Ended at the known line, the balance check already held.
        if !self.ended_at_known
            && let (Some(current), Some(prev)) = (self.current, self.prev.as_ref())
            && let Some(anchor) = &prev.anchor
            && covered(anchor.date)
        {
            let derived = sub(current, self.sum_since_anchor)?;
            let gap = sub(derived, anchor.balance)?;
            if !gap.is_zero() {
                batch.warnings.push(Warning::new(
                    WarningKind::BalanceGap,
                    format!(
                        "{} {} of the bank balance is not explained by transactions: the \
                         balance at the start of {} was {} at the previous sync{} and is now \
                         derived as {}. A booking dated before {} may have arrived late (sync \
                         again with an earlier `since` date or a larger `overlap-days`), or the \
                         bank changed the balance without a transaction.",
                        gap,
                        self.currency,
                        anchor.date,
                        anchor.balance,
                        prev.synced_at
                            .as_deref()
                            .map(|t| format!(" ({})", local_time(t, self.tz())))
                            .unwrap_or_default(),
                        derived,
                        anchor.date,
                    ),
                ));
            }
        }
        self.next_phase(if self.sync_id.is_some() {
            Phase::Updated
        } else {
            Phase::Pending
        });
        Ok(())
    }

    /// Reads updated-transaction pages while the batch has room. Returns whether it ended.
    pub(super) fn updated(
        &mut self,
        api: &Api<'_>,
        max_lines: u32,
        today: NaiveDate,
        batch: &mut Batch,
    ) -> Result<bool> {
        let Some(sync_id) = self.sync_id.clone() else {
            return Ok(true);
        };
        let limit = Self::limit(&api.config, max_lines);
        let tz = self.tz();
        loop {
            let url = match &self.next {
                Some(u) => u.clone(),
                None => api.url(&format!(
                    "/synchronizations/{}/updated-transactions?page[limit]={limit}",
                    crate::url::encode(&sync_id)
                )),
            };
            self.visit(&url, "updated transactions")?;
            let body = match api.page_text(&url, Auth::Bearer, "updated transactions") {
                Err(ProviderError::NotFound(m)) => {
                    api.log(Level::Warn, &format!("no updated transactions: {m}"));
                    return Ok(true);
                }
                other => other?,
            };
            let data = api.parse_page(&body, &url, "updated transactions")?;
            let empty = data.is_empty();
            batch.updated.reserve(data.items.len());
            for item in data.items {
                let mut m = mapping::transaction_item(item.raw, item.lite, tz, self.date_field)?;
                batch.warnings.append(&mut m.notes);
                let filed = if plausible(m.booking, today) {
                    m.booking
                } else {
                    today
                };
                let mut line = m.line;
                line.statement_key = self.key_of(filed).0;
                batch.updated.push(line);
            }
            self.next = data.next;
            if self.next.is_none() || empty {
                return Ok(true);
            }
            if batch.lines.len() + batch.updated.len() + limit as usize > max_lines as usize {
                return Ok(false);
            }
        }
    }
}
