//! Statements: lines grouped by period in walk order, balances derived backwards from the
//! account's balance.

use super::state::Batch;
use super::state::{Cursor, NewestStatement, Open};
use crate::bindings::Result;
use crate::bindings::types::{ProviderError, Statement, Warning, WarningKind};
use crate::config::Grouping;
use crate::decimal::Decimal;
use crate::mapping::Mapped;
use chrono::{Datelike, Days, NaiveDate};

pub(super) fn overflow() -> ProviderError {
    ProviderError::malformed("transaction", Some("amount"), None, "the amounts overflow")
}

pub(super) fn add(a: Decimal, b: Decimal) -> Result<Decimal> {
    a.checked_add(b).ok_or_else(overflow)
}

pub(super) fn sub(a: Decimal, b: Decimal) -> Result<Decimal> {
    a.checked_sub(b).ok_or_else(overflow)
}

/// The first day of the period a date falls in, without building its key (every line asks).
pub(super) fn period_start(g: Grouping, d: NaiveDate) -> NaiveDate {
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
pub(super) fn period(
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

pub(super) fn statement_of(o: &Open) -> Result<Statement> {
    Ok(Statement {
        key: o.key.clone(),
        name: o.name.clone(),
        date_from: o.from.to_string(),
        date_to: o.to.to_string(),
        balance_start: sub(o.end, o.sum)?.to_string(),
        balance_end: o.end.to_string(),
    })
}

impl Cursor {
    pub(super) fn key_of(&self, d: NaiveDate) -> (String, String, NaiveDate, NaiveDate) {
        period(self.grouping, d, &self.sync_key, &self.sync_name)
    }

    /// Whether a line of date `d` belongs to the statement in progress (same or newer period).
    pub(super) fn joins_open(&self, d: NaiveDate) -> bool {
        match &self.open {
            Some(o) => period_start(self.grouping, d) >= o.period_start,
            None => false,
        }
    }

    /// Adds one line: statement bookkeeping and running balance.
    /// A `stray` line (implausible date, see [`plausible`]) comes with `m.booking` set to the
    /// date it is filed under; its own date stays on the line.
    pub(super) fn take(&mut self, m: Mapped, stray: bool, batch: &mut Batch) -> Result<()> {
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
    pub(super) fn emit(&mut self, o: &Open, batch: &mut Batch) -> Result<()> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
