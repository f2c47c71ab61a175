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
use crate::bindings::http::Method;
use crate::bindings::log::Level;
use crate::bindings::provider::{SyncBatch, SyncProgress, SyncRequest};
use crate::bindings::types::{
    ConsentError, InstitutionStatus, PendingLine, ProviderError, Statement, StatementLine, Warning,
    WarningKind,
};
use crate::client::{Api, Auth};
use crate::config::{Config, DateField, Grouping};
use crate::connection::{fetch_institution, forget_reauthorization, open_reauthorization};
use crate::decimal::Decimal;
use crate::imports::Imports;
use crate::jsonapi::{ApiError, Resource, Single, timestamp};
use crate::keys::KEY_REDIRECT;
use crate::mapping::{self, Mapped};
use chrono::{Datelike, Days, NaiveDate};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// Consent warnings start this many days before the end.
const CONSENT_WARNING_DAYS: i32 = 15;
/// Advice for an expired bank consent (Ponto's rule).
pub const CONSENT_ADVICE: &str = "The bank consent of this account has ended. Re-authorise the \
    account on Ponto's website (https://myponto.com) or with the reauthorization link; Ponto \
    asks for this every 180 days.";
/// Advice for beta and experimental institutions (the guide's FAQ).
pub const BETA_ADVICE: &str = "Errors are expected while Ponto collects feedback on this \
    institution's connection. Contact Ponto directly about problems with it.";

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
struct Known {
    id: String,
    balance: Decimal,
    newest: Option<NewestStatement>,
}

/// How old the stored institution may be.
const INSTITUTION_MAX_AGE_HOURS: i64 = 24;

/// A derived balance at the start of a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub date: NaiveDate,
    pub balance: Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Phase {
    Transactions,
    Updated,
    Pending,
}

/// The statement in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Open {
    key: String,
    name: String,
    period_start: NaiveDate,
    from: NaiveDate,
    to: NaiveDate,
    end: Decimal,
    sum: Decimal,
}

/// Progress within one sync; self-contained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    account_id: String,
    phase: Phase,
    /// Next page of the current phase; none means the phase's first page.
    next: Option<String>,
    stop: Option<NaiveDate>,
    /// A whole page older than `stop` was seen: only the statement in progress is finished.
    stopping: bool,
    tz: String,
    date_field: DateField,
    grouping: Grouping,
    sync_key: String,
    sync_name: String,
    currency: String,
    /// The account's current balance; none means statements cannot be derived.
    current: Option<Decimal>,
    /// Balance before the lines processed so far.
    running: Option<Decimal>,
    open: Option<Open>,
    /// The accountTransactions synchronization, for updated transactions.
    sync_id: Option<String>,
    read: u64,
    prev: Option<SyncState>,
    /// Newest booking date known (previous watermark included).
    newest: Option<NaiveDate>,
    /// Sums per booking date of the lines dated within `overlap` days of `newest`: the next
    /// sync's anchor (at most overlap + 1 entries).
    window: Vec<(NaiveDate, Decimal)>,
    overlap: u32,
    /// Sum of lines dated on or after the previous anchor's date.
    sum_since_anchor: Decimal,
    advice: Option<String>,
    /// Hashes of the last pages read in this phase (at most `RECENT_PAGES`): a `links.next`
    /// back to one of them is a paging loop, which would otherwise hand the host the same
    /// lines batch after batch, forever.
    #[serde(default)]
    recent_pages: Vec<u64>,
    /// Pages read in this phase; longer loops end at `MAX_SYNC_PAGES`.
    #[serde(default)]
    pages: u32,
    /// Set while the walk may end at the previous newest line; cleared once it must go deeper.
    #[serde(default)]
    known: Option<Known>,
    /// The walk ended at the known line with the balance adding up.
    #[serde(default)]
    ended_at_known: bool,
    /// Id of the first line taken (the newest).
    #[serde(default)]
    first_id: Option<String>,
    /// Key of the first statement opened, and that statement as last sent.
    #[serde(default)]
    first_key: Option<String>,
    #[serde(default)]
    first: Option<NewestStatement>,
    /// Whether this sync reads the pending list (see the module doc).
    #[serde(default = "yes")]
    read_pending: bool,
    /// Synchronization ids Ponto named during this sync.
    #[serde(default)]
    synchronizations: Vec<String>,
    #[serde(default)]
    institution: Option<KnownInstitution>,
    /// The ids and amounts of the last lines taken, to catch an id Ponto lists twice.
    #[serde(default)]
    taken: Taken,
}

/// How many of the last lines taken the cursor carries to the next batch (id and amount, ~50
/// bytes each: the cursor is written with every batch). Within one batch every line is
/// remembered. A repeat further apart is not caught here; the ERP's check of each statement
/// against its stored lines still reports the gap it leaves.
const TAKEN_MEMORY: usize = 500;

/// The lines taken in this call and the last [`TAKEN_MEMORY`] of the calls before: ids with
/// their amounts, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    from = "VecDeque<(String, Decimal)>",
    into = "VecDeque<(String, Decimal)>"
)]
struct Taken {
    order: VecDeque<(String, Decimal)>,
    index: HashMap<String, Decimal>,
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
    fn get(&self, id: &str) -> Option<Decimal> {
        self.index.get(id).copied()
    }

    fn insert(&mut self, id: &str, amount: Decimal) {
        if self.index.insert(id.to_string(), amount).is_none() {
            self.order.push_back((id.to_string(), amount));
        }
    }
}

/// The booking dates a sync takes at face value: from 1970 (no bank data Ponto serves is older)
/// to a year after today (a booked line is dated at most days ahead, for a value date or a time
/// zone). A line dated outside (`9999-12-31`, `0001-01-01`) is kept, but neither moves the
/// watermark (which would make later syncs stop at once) nor opens or widens a statement (which
/// would swallow all history into one).
fn plausible(d: NaiveDate, today: NaiveDate) -> bool {
    let floor = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN);
    let ceiling = today
        .checked_add_days(Days::new(366))
        .unwrap_or(NaiveDate::MAX);
    (floor..=ceiling).contains(&d)
}

fn yes() -> bool {
    true
}

/// How many page hashes the cursor keeps (8 bytes each).
const RECENT_PAGES: usize = 64;
/// Pages one phase may read: 100 million lines at Ponto's largest page.
const MAX_SYNC_PAGES: u32 = 1_000_000;

/// A stable 64-bit digest of a page URL (stable across builds, unlike `DefaultHasher`).
fn page_hash(url: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(url.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    u64::from_be_bytes(first)
}

fn overflow() -> ProviderError {
    ProviderError::malformed("transaction", Some("amount"), None, "the amounts overflow")
}

fn add(a: Decimal, b: Decimal) -> Result<Decimal> {
    a.checked_add(b).ok_or_else(overflow)
}

fn sub(a: Decimal, b: Decimal) -> Result<Decimal> {
    a.checked_sub(b).ok_or_else(overflow)
}

/// The first day of the period a date falls in, without building its key (every line asks).
fn period_start(g: Grouping, d: NaiveDate) -> NaiveDate {
    match g {
        Grouping::Day => d,
        // Checked: a cursor handed back by the host may carry any date chrono can hold.
        Grouping::Week => d
            .checked_sub_days(Days::new(u64::from(d.weekday().num_days_from_monday())))
            .unwrap_or(d),
        Grouping::Month => d.with_day(1).unwrap_or(d),
        Grouping::Sync => NaiveDate::MIN,
    }
}

/// The period a date falls in: key, name, first and last day.
fn period(
    g: Grouping,
    d: NaiveDate,
    sync_key: &str,
    sync_name: &str,
) -> (String, String, NaiveDate, NaiveDate) {
    match g {
        Grouping::Day => {
            // chrono's Display costs ~8× this; it runs for every line (issue 6).
            let k = crate::jsonapi::date_text(d);
            (k.clone(), k, d, d)
        }
        Grouping::Week => {
            let w = d.iso_week();
            let start = period_start(g, d);
            let end = start.checked_add_days(Days::new(6)).unwrap_or(d);
            let key = format!("{}-W{:02}", w.year(), w.week());
            (key.clone(), key, start, end)
        }
        Grouping::Month => {
            let start = period_start(g, d);
            let next = if d.month() == 12 {
                NaiveDate::from_ymd_opt(d.year() + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(d.year(), d.month() + 1, 1)
            };
            let end = next.and_then(|n| n.pred_opt()).unwrap_or(d);
            let key = format!("{}-{:02}", d.year(), d.month());
            (key.clone(), key, start, end)
        }
        // One statement for the whole sync: every line compares equal.
        Grouping::Sync => (
            sync_key.into(),
            sync_name.into(),
            NaiveDate::MIN,
            NaiveDate::MIN,
        ),
    }
}

fn statement_of(o: &Open) -> Result<Statement> {
    Ok(Statement {
        key: o.key.clone(),
        name: o.name.clone(),
        date_from: o.from.to_string(),
        date_to: o.to.to_string(),
        balance_start: sub(o.end, o.sum)?.to_string(),
        balance_end: o.end.to_string(),
    })
}

/// What one call collects.
struct Batch {
    lines: Vec<StatementLine>,
    updated: Vec<StatementLine>,
    statements: Vec<Statement>,
    pending: Option<Vec<PendingLine>>,
    warnings: Vec<Warning>,
}

impl Cursor {
    /// Records that `url` is read now; a page read before in this phase is a paging loop.
    fn visit(&mut self, url: &str, what: &str) -> Result<()> {
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
    fn next_phase(&mut self, phase: Phase) {
        self.phase = phase;
        // Only the walk needs the lines it took.
        self.taken = Taken::default();
        self.next = None;
        self.recent_pages.clear();
        self.pages = 0;
    }

    fn tz(&self) -> Tz {
        mapping::time_zone(&self.tz).unwrap_or(chrono_tz::Europe::Brussels)
    }

    fn key_of(&self, d: NaiveDate) -> (String, String, NaiveDate, NaiveDate) {
        period(self.grouping, d, &self.sync_key, &self.sync_name)
    }

    /// Whether a line of date `d` belongs to the statement in progress (same or newer period).
    fn joins_open(&self, d: NaiveDate) -> bool {
        match &self.open {
            Some(o) => period_start(self.grouping, d) >= o.period_start,
            None => false,
        }
    }

    /// Adds one line: statement bookkeeping and running balance.
    /// A `stray` line (implausible date, see [`plausible`]) comes with `m.booking` set to the
    /// date it is filed under; its own date stays on the line.
    fn take(&mut self, m: Mapped, stray: bool, batch: &mut Batch) -> Result<()> {
        if let Some(p) = self.known.as_ref().and_then(|k| k.newest.as_ref())
            && period_start(self.grouping, m.booking) < p.period_start
        {
            // A new line in a period older than the newest statement sent: that statement's
            // lines must be read again, so the walk goes through the overlap.
            self.go_deep();
        }
        if !self.joins_open(m.booking) {
            // The key is built only for a new statement, not for every line.
            let (key, name, start, end) = self.key_of(m.booking);
            if let Some(o) = self.open.take()
                && self.current.is_some()
            {
                self.emit(&o, batch)?;
            }
            if self.first_key.is_none() {
                self.first_key = Some(key.clone());
            }
            let (from, to) = if self.grouping == Grouping::Sync {
                (m.booking, m.booking)
            } else {
                (start, end)
            };
            self.open = Some(Open {
                key,
                name,
                period_start: start,
                from,
                to,
                end: self.running.unwrap_or(Decimal::ZERO),
                sum: Decimal::ZERO,
            });
        }
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        open.sum = add(open.sum, m.amount)?;
        open.from = open.from.min(m.booking);
        open.to = open.to.max(m.booking);
        let mut line = m.line;
        line.statement_key = open.key.clone();
        batch.warnings.extend(m.notes);
        if stray {
            batch.warnings.push(Warning::new(
                WarningKind::Other,
                format!(
                    "Transaction {} is dated {}, which no bank booking can be: it is kept in \
                     statement {} (amount {} {} counted there) without moving the statement's \
                     dates or the sync's progress. Check its date against the bank's statement.",
                    line.transaction_id, line.booking_date, open.key, line.amount, line.currency,
                ),
            ));
        }
        if !line.currency.eq_ignore_ascii_case(&self.currency) {
            // Counted as Ponto reports it (the balances derive from the same figures), but a
            // person has to look: the ERP would book it in the journal's currency.
            batch.warnings.push(Warning::new(
                WarningKind::Other,
                format!(
                    "Transaction {} of {} is in {} on a {} account: its amount {} {} is counted \
                     in the statement as Ponto reports it. Check it against the bank's statement \
                     before reconciling.",
                    line.transaction_id,
                    m.booking,
                    line.currency,
                    self.currency,
                    line.amount,
                    line.currency,
                ),
            ));
        }
        if let Some(r) = self.running {
            self.running = Some(sub(r, m.amount)?);
        }
        self.track_window(m.booking, m.amount, !stray)?;
        if let Some(a) = self.prev.as_ref().and_then(|p| p.anchor.as_ref())
            && m.booking >= a.date
        {
            self.sum_since_anchor = add(self.sum_since_anchor, m.amount)?;
        }
        self.read += 1;
        self.taken.insert(&line.transaction_id, m.amount);
        if self.first_id.is_none() {
            self.first_id = Some(line.transaction_id.clone());
        }
        batch.lines.push(line);
        Ok(())
    }

    /// Sends a statement; the first one of the walk (the newest) is kept for the state.
    fn emit(&mut self, o: &Open, batch: &mut Batch) -> Result<()> {
        let statement = statement_of(o)?;
        if self.first_key.as_deref() == Some(o.key.as_str()) {
            self.first = Some(NewestStatement {
                key: o.key.clone(),
                period_start: o.period_start,
                from: o.from,
                to: o.to,
                start: sub(o.end, o.sum)?,
            });
        }
        batch.statements.push(statement);
        Ok(())
    }

    /// The walk can no longer end at the known line: it goes down to the stop date, and this
    /// sync reads the pending list too (see the module doc).
    fn go_deep(&mut self) {
        self.known = None;
        self.read_pending = true;
    }

    /// Notes a synchronization Ponto names (`meta.latestSynchronization`); one not seen at the
    /// last pending read whose subtype may have replaced the pending list makes this sync read
    /// it.
    fn note_synchronization(&mut self, sync: Option<&serde_json::Value>) {
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

    /// First day of the next sync's anchor window.
    fn window_start(&self) -> Option<NaiveDate> {
        self.newest
            .and_then(|n| n.checked_sub_days(Days::new(u64::from(self.overlap))))
    }

    /// Keeps the per-day sums of the lines the next sync will read again; `moves` lets `d`
    /// become the newest date (a stray line's filing date does not).
    fn track_window(&mut self, d: NaiveDate, amount: Decimal, moves: bool) -> Result<()> {
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
    fn limit(config: &Config, max_lines: u32) -> u32 {
        config.page_size.min(max_lines).max(1)
    }

    /// Reads transaction pages while the batch has room. Returns whether the phase ended.
    fn transactions(
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
    fn finish_transactions(&mut self, batch: &mut Batch) -> Result<()> {
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
    fn updated(
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

    /// The complete pending list.
    fn pending(&self, api: &Api<'_>) -> Result<Option<Vec<PendingLine>>> {
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

    /// The state to keep after a completed sync: the watermark, the derived balance at the
    /// start of the next sync's stop date (watermark − overlap), where the next sync checks it,
    /// and what lets the next sync end at this one's newest line. `pending_read`: this sync
    /// read the pending list.
    fn final_state(&self, now: String, pending_read: bool) -> SyncState {
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
    fn bare_state(&self, now: String) -> SyncState {
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

/// The calendar day of a timestamp in the institution's zone, for messages (`2026-12-15`);
/// unreadable text is shown as it is.
fn local_day(t: &str, tz: Tz) -> String {
    crate::jsonapi::When::parse(t).map_or_else(|| t.to_string(), |w| w.local_date(tz).to_string())
}

/// A timestamp in the institution's zone, to the minute, for messages (`2026-12-15 07:00`).
fn local_time(t: &str, tz: Tz) -> String {
    crate::jsonapi::When::parse(t).map_or_else(
        || t.to_string(),
        |w| {
            w.instant()
                .with_timezone(&tz)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        },
    )
}

fn parse_arg<T: for<'de> Deserialize<'de>>(name: &str, text: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| ProviderError::argument(name, format!("not one this provider wrote: {e}")))
}

/// Creates the two synchronizations and polls them; returns the accountTransactions one when it
/// finished, for its updated transactions.
fn refresh_from_bank(
    api: &Api<'_>,
    account_id: &str,
    ip: &str,
    warnings: &mut Vec<Warning>,
) -> Result<Option<String>> {
    let mut created: Vec<(String, String)> = Vec::new();
    let mut recent = false;
    for subtype in ["accountDetails", "accountTransactions"] {
        let body = serde_json::json!({"data": {"type": "synchronization", "attributes": {
            "resourceType": "account", "resourceId": account_id,
            "subtype": subtype, "customerIpAddress": ip}}});
        let resp = api.send(
            Method::Post,
            &api.url("/synchronizations"),
            Auth::Bearer,
            Some(("application/vnd.api+json", body.to_string().into_bytes())),
        )?;
        if (200..300).contains(&resp.status) {
            let id = serde_json::from_slice::<Single>(resp.body.as_bytes())
                .ok()
                .and_then(|d| Resource::parse(&d.data, "synchronization").ok())
                .and_then(|r| r.id)
                .ok_or_else(|| {
                    ProviderError::malformed("synchronization", Some("id"), None, "no id")
                })?;
            created.push((subtype.to_string(), id));
            continue;
        }
        let info = ApiError::parse(resp.body.as_bytes());
        match (resp.status, info.code.as_deref()) {
            (_, Some("accountRecentlySynchronized")) => recent = true,
            (404, _) => return Err(api.error_from(&resp, &format!("account {account_id}"))),
            _ => {
                // Fresh data is a bonus: what Ponto already holds is still read.
                let e = api.error_from(&resp, "synchronization");
                warnings.push(Warning::new(
                    WarningKind::Other,
                    format!(
                        "Ponto could not start a refresh of the account's {} from the bank ({}); \
                         the data Ponto already holds was read.",
                        refreshed(subtype),
                        e.describe()
                    ),
                ));
            }
        }
    }
    if recent {
        warnings.push(Warning::new(
            WarningKind::RecentlySynchronized,
            "Ponto refreshed this account from the bank a short while ago and refused another \
             refresh; the data Ponto holds was read. Try again in a few minutes for newer data.",
        ));
    }
    let mut open: Vec<(String, String)> = created;
    let mut transactions_sync = None;
    let mut attempt = 0;
    while !open.is_empty() && attempt < api.config.poll_attempts.max(1) {
        if attempt > 0 {
            api.host.sleep(std::time::Duration::from_millis(u64::from(
                api.config.poll_interval_ms,
            )));
        }
        attempt += 1;
        let mut still = Vec::new();
        for (subtype, id) in open {
            let url = api.url(&format!("/synchronizations/{}", crate::url::encode(&id)));
            let body = api.get(&url, Auth::Bearer, "synchronization")?;
            let r = serde_json::from_slice::<Single>(&body)
                .map_err(|e| {
                    ProviderError::malformed("synchronization", None, Some(&id), e.to_string())
                })
                .and_then(|d| Resource::parse(&d.data, "synchronization"))?;
            match r.attributes.text("status").as_deref() {
                Some("success") => {
                    if subtype == "accountTransactions" {
                        transactions_sync = Some(id);
                    }
                }
                Some("error") => {
                    let errors = sync_errors(&body);
                    let codes: Vec<String> = errors
                        .iter()
                        .filter_map(|e| e.get("code").and_then(|c| c.as_str()).map(str::to_string))
                        .collect();
                    if codes
                        .iter()
                        .any(|c| c == "authorizationInvalid" || c == "authorizationExpired")
                    {
                        return Err(consent_error(api, account_id, None, None));
                    }
                    let detail = errors
                        .iter()
                        .filter_map(|e| e.get("detail").and_then(|d| d.as_str()))
                        .collect::<Vec<_>>()
                        .join("; ");
                    warnings.push(Warning::new(
                        WarningKind::Other,
                        format!(
                            "Ponto's refresh of the account's {} from the bank failed ({}); the \
                             data Ponto already holds was read.",
                            refreshed(&subtype),
                            if detail.is_empty() {
                                codes.join(", ")
                            } else {
                                detail
                            }
                        ),
                    ));
                }
                _ => still.push((subtype, id)),
            }
        }
        open = still;
    }
    if !open.is_empty() {
        warnings.push(Warning::new(
            WarningKind::SynchronizationPending,
            "Ponto's refresh from the bank did not finish in time; the data Ponto already holds \
             was read. The next sync picks up the rest.",
        ));
    }
    Ok(transactions_sync)
}

/// What a synchronization subtype refreshes, in words.
fn refreshed(subtype: &str) -> &'static str {
    match subtype {
        "accountDetails" => "details",
        _ => "transactions",
    }
}

fn sync_errors(body: &[u8]) -> Vec<serde_json::Value> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.pointer("/data/attributes/errors").cloned())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

/// The authorization-expired error, with the account's open reauthorization link (created at
/// Ponto only when none is kept for this consent). `authorized_at`: the account's, when read.
fn consent_error(
    api: &Api<'_>,
    account_id: &str,
    expired_at: Option<String>,
    authorized_at: Option<&str>,
) -> ProviderError {
    let redirect = api.host.storage_get(KEY_REDIRECT).ok().flatten();
    let reauthorization_url =
        redirect.and_then(
            |r| match open_reauthorization(api, account_id, &r, authorized_at) {
                Ok(link) => Some(link),
                Err(e) => {
                    api.log(
                        Level::Warn,
                        &format!("no reauthorization link: {}", e.describe()),
                    );
                    None
                }
            },
        );
    ProviderError::AuthorizationExpired(ConsentError {
        account_id: account_id.to_string(),
        expired_at,
        reauthorization_url,
        advice: CONSENT_ADVICE.to_string(),
    })
}

/// The first call: bank refresh, account, institution; returns the cursor and the account.
fn start(
    api: &Api<'_>,
    request: &SyncRequest,
    batch: &mut Batch,
) -> Result<(Cursor, crate::bindings::types::Account)> {
    let host = api.host;
    let prev: Option<SyncState> = match request.state.as_deref() {
        None => None,
        Some(s) => Some(parse_arg("state", s)?),
    };
    let since = match request.since.as_deref() {
        None => None,
        Some(s) => Some(
            NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .ok()
                .filter(|d| (1..=9999).contains(&d.year()))
                .ok_or_else(|| {
                    ProviderError::argument("since", format!("`{s}` is not a YYYY-MM-DD date"))
                })?,
        ),
    };
    let account_id = request.account_id.as_str();
    let mut sync_id = None;
    let mut asked_refresh = false;
    if let Some(ip) = request
        .customer_ip
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        asked_refresh = true;
        sync_id = refresh_from_bank(api, account_id, ip, &mut batch.warnings)?;
    }
    let url = api.url(&format!("/accounts/{}", crate::url::encode(account_id)));
    let body = match api.get(&url, Auth::Bearer, &format!("account {account_id}")) {
        Err(ProviderError::NotFound(_)) => {
            return Err(ProviderError::NotFound(format!(
                "account {account_id}: it is not (or no longer) authorised in Ponto; fetch the \
                 accounts again"
            )));
        }
        other => other?,
    };
    let doc: Single = serde_json::from_slice(&body)
        .map_err(|e| ProviderError::malformed("account", None, Some(account_id), e.to_string()))?;
    let resource = Resource::parse(&doc.data, "account")?;
    let institution_id = resource
        .relationship_id("financialInstitution")
        .unwrap_or_default()
        .to_string();
    let now = host.now();
    let config = &api.config;
    let settings = WalkSettings {
        date_field: config.date_field,
        grouping: config.grouping,
        overlap: config.overlap_days,
    };
    let age_hours = |stamp: Option<&str>| {
        stamp
            .and_then(crate::jsonapi::When::parse)
            .map(|w| (now - w.instant()).num_hours())
    };
    // The overlap is walked when the state does not say enough, or as the periodic safety net.
    let walk_due = match prev.as_ref() {
        None => true,
        Some(p) => {
            p.walk != Some(settings)
                // One sum per day of the window: more is not a state this provider wrote.
                || p
                    .window
                    .as_ref()
                    .is_none_or(|w| w.len() > config.overlap_days as usize + 1)
                || age_hours(p.walked_at.as_deref())
                    .is_none_or(|h| h < 0 || h >= i64::from(config.overlap_walk_hours))
        }
    };
    let stored = prev
        .as_ref()
        .and_then(|p| p.institution.clone())
        .filter(|i| {
            !walk_due
                && i.id == institution_id
                && age_hours(Some(&i.read_at))
                    .is_some_and(|h| (0..INSTITUTION_MAX_AGE_HOURS).contains(&h))
        });
    let (institution, maintenance) = match stored {
        Some(i) => (i, None),
        None => {
            let i = fetch_institution(api, &institution_id)?;
            let known = KnownInstitution {
                id: i.id.clone(),
                name: i.name.clone(),
                time_zone: i.time_zone.clone(),
                status: match i.status {
                    InstitutionStatus::Stable => "stable",
                    InstitutionStatus::Beta => "beta",
                    InstitutionStatus::Experimental => "experimental",
                    InstitutionStatus::Unknown => "unknown",
                }
                .to_string(),
                deprecated: i.deprecated,
                read_at: timestamp(now),
            };
            (known, i.maintenance)
        }
    };
    let tz = mapping::time_zone(&institution.time_zone).unwrap_or(chrono_tz::Europe::Brussels);
    // A zone the provider does not carry falls back to Brussels: never silently.
    batch
        .warnings
        .extend(mapping::zone_warning(&institution.time_zone));
    let account = mapping::account(&resource, tz, now)?;

    // `unknown` (Ponto gave no status) claims no trouble: no warning, no advice on errors.
    if !matches!(institution.status.as_str(), "stable" | "unknown") {
        *api.advice.borrow_mut() = Some(BETA_ADVICE.to_string());
        let status = if institution.status == "beta" {
            "a beta"
        } else {
            "an experimental"
        };
        batch.warnings.push(Warning::new(
            WarningKind::BetaInstitution,
            format!(
                "{} is {status} institution at Ponto. {BETA_ADVICE}",
                institution.name
            ),
        ));
    }
    if institution.deprecated || account.deprecated {
        batch.warnings.push(Warning::new(
            WarningKind::Deprecated,
            format!(
                "Ponto is phasing out its connection to {}: once the consent ends this account \
                 stops syncing; link the account again through its replacement institution.",
                institution.name
            ),
        ));
    }
    // Maintenance is known only when the institution was read; the account's availability
    // says it too.
    if let Some(m) = &maintenance {
        batch.warnings.push(Warning::new(
            WarningKind::Maintenance,
            format!(
                "{} is in maintenance ({}{}); data may be stale.",
                institution.name,
                m.kind,
                m.ends_at
                    .as_deref()
                    .map(|t| format!(" until {}", local_time(t, tz)))
                    .unwrap_or_default()
            ),
        ));
    } else if account.availability != crate::bindings::types::Availability::Available {
        batch.warnings.push(Warning::new(
            WarningKind::Maintenance,
            "The bank is in maintenance: Ponto serves the data it holds, no fresh data comes in.",
        ));
    }
    // The consent has ended when its expected end has passed, or when Ponto's last
    // synchronization of the account was refused for it (whatever the date says) after the
    // consent was last given (a renewal makes an older refusal stale).
    let latest = resource
        .meta
        .as_ref()
        .and_then(|m| m.get("latestSynchronization"));
    let instant = |t: Option<&str>| t.and_then(crate::jsonapi::When::parse).map(|w| w.instant());
    let refused_at = latest
        .filter(|l| {
            l.pointer("/attributes/errors")
                .and_then(|e| e.as_array())
                .is_some_and(|errors| {
                    errors.iter().any(|e| {
                        matches!(
                            e.get("code").and_then(|c| c.as_str()),
                            Some("authorizationInvalid" | "authorizationExpired")
                        )
                    })
                })
        })
        .map(|l| {
            ["/attributes/updatedAt", "/attributes/createdAt"]
                .iter()
                .find_map(|p| instant(l.pointer(p).and_then(|v| v.as_str())))
        });
    let consent_refused = match (refused_at, instant(account.authorized_at.as_deref())) {
        (None, _) => false,
        (Some(Some(refused)), Some(given)) => refused > given,
        // Undated, or no date of consent: the refusal stands.
        (Some(_), _) => true,
    };
    let expires = account.consent_expires_at.as_deref();
    let days = account.consent_days_left;
    let authorized_at = account.authorized_at.as_deref();
    if consent_refused || days.is_some_and(|d| d < 0) {
        return Err(consent_error(
            api,
            account_id,
            expires.map(str::to_string),
            authorized_at,
        ));
    }
    forget_reauthorization(api, account_id);
    if let (Some(expires), Some(days)) = (expires, days)
        && days <= CONSENT_WARNING_DAYS
    {
        batch.warnings.push(Warning::new(
            WarningKind::ConsentExpiring,
            format!(
                "The bank consent of account {} ends on {} ({days} day{} left). \
                 Re-authorise it on Ponto's website (every 180 days) to keep syncing.",
                account.reference,
                local_day(expires, tz),
                if days == 1 { "" } else { "s" },
            ),
        ));
    }
    let current = match &account.current_balance {
        Some(b) => Some(Decimal::parse(&b.amount).map_err(|e| {
            ProviderError::malformed("account", Some("currentBalance"), Some(account_id), e)
        })?),
        None => {
            batch.warnings.push(Warning::new(
                WarningKind::Other,
                "The bank gives no balance for this account: lines are imported, but no \
                 statement balances can be derived.",
            ));
            None
        }
    };
    let overlap = Days::new(u64::from(api.config.overlap_days));
    // A watermark an older version took from a line dated 9999-12-31 would end every walk at
    // once: such a state is dropped, and this sync walks as a first one does.
    let today = now.with_timezone(&tz).date_naive();
    let prev = prev.filter(|p| p.watermark.is_none_or(|w| plausible(w, today)));
    let from_state = match prev.as_ref().and_then(|p| p.watermark) {
        None => None,
        Some(w) => Some(w.checked_sub_days(overlap).ok_or_else(|| {
            ProviderError::argument("state", format!("the watermark {w} is out of range"))
        })?),
    };
    // `since` asks to read back at least that far: the earlier of the two wins.
    let stop = match (from_state, since) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let stamp = now.format("%Y%m%dT%H%M%SZ");
    let newest = prev.as_ref().and_then(|p| p.watermark);
    let same_zone = prev
        .as_ref()
        .and_then(|p| p.institution.as_ref())
        .is_some_and(|i| i.time_zone == institution.time_zone);
    let known = match prev.as_ref() {
        Some(SyncState {
            last_id: Some(id),
            balance: Some(balance),
            newest,
            ..
        }) if !walk_due && since.is_none() && same_zone && current.is_some() => Some(Known {
            id: id.clone(),
            balance: *balance,
            newest: newest.clone(),
        }),
        _ => None,
    };
    let read_pending =
        known.is_none() || asked_refresh || prev.as_ref().is_none_or(|p| p.pending_read.is_none());
    let latest_sync = resource
        .meta
        .as_ref()
        .and_then(|m| m.get("latestSynchronization"))
        .filter(|v| !v.is_null())
        .cloned();
    let mut cursor = Cursor {
        account_id: account_id.to_string(),
        phase: Phase::Transactions,
        next: None,
        stop,
        stopping: false,
        tz: institution.time_zone.clone(),
        date_field: api.config.date_field,
        grouping: api.config.grouping,
        sync_key: format!("sync-{stamp}"),
        // Named in the institution's time, as its dates are.
        sync_name: format!("Ponto sync {}", local_time(&timestamp(now), tz)),
        currency: account.currency.clone(),
        current,
        running: current,
        open: None,
        sync_id,
        read: 0,
        prev,
        newest,
        window: Vec::new(),
        overlap: api.config.overlap_days,
        sum_since_anchor: Decimal::ZERO,
        advice: api.advice.borrow().clone(),
        recent_pages: Vec::new(),
        pages: 0,
        known,
        ended_at_known: false,
        first_id: None,
        first_key: None,
        first: None,
        read_pending,
        synchronizations: Vec::new(),
        institution: Some(institution),
        taken: Taken::default(),
    };
    match latest_sync {
        Some(sync) => cursor.note_synchronization(Some(&sync)),
        // Ponto names no synchronization: nothing tells whether the list changed.
        None => cursor.read_pending = true,
    }
    Ok((cursor, account))
}

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

    #[test]
    fn periods() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        assert_eq!(period(Grouping::Day, d, "s", "n").0, "2026-11-25");
        let (k, _, s, e) = period(Grouping::Week, d, "s", "n");
        assert_eq!(
            (k.as_str(), s.to_string(), e.to_string()),
            ("2026-W48", "2026-11-23".into(), "2026-11-29".into())
        );
        let (k, _, s, e) = period(
            Grouping::Month,
            NaiveDate::from_ymd_opt(2024, 2, 10).unwrap(),
            "s",
            "n",
        );
        assert_eq!(
            (k.as_str(), s.to_string(), e.to_string()),
            ("2024-02", "2024-02-01".into(), "2024-02-29".into())
        );
        let (k, ..) = period(
            Grouping::Month,
            NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
            "s",
            "n",
        );
        assert_eq!(k, "2026-12");
        // ISO week-year differs from the calendar year around New Year.
        assert_eq!(
            period(
                Grouping::Week,
                NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
                "s",
                "n"
            )
            .0,
            "2026-W53"
        );
        assert_eq!(period(Grouping::Sync, d, "sync-1", "n").0, "sync-1");
    }
}
