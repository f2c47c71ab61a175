//! The host's own check of a batch before anything of it is written: exact decimal amounts the
//! books can sum, real dates.

use chrono::NaiveDate;

use crate::erp::errors::ErpError;
use crate::erp::money;
use crate::runtime::types::{PendingLine, Statement, StatementLine, SyncBatch, Warning};

/// The host's own check of a batch before anything of it is written.
pub fn validate_batch(batch: &SyncBatch) -> Result<(), ErpError> {
    let bad = |reason: String| ErpError::BadBatch(reason);
    for l in &batch.lines {
        check_line(l, "line").map_err(bad)?;
    }
    for l in &batch.updated_lines {
        check_line(l, "updated line").map_err(bad)?;
    }
    for s in &batch.statements {
        check_statement(s).map_err(bad)?;
    }
    for p in batch.pending.iter().flatten() {
        check_pending(p).map_err(bad)?;
    }
    if let Some(a) = &batch.account
        && let Some(b) = &a.current_balance
        && money::parse(&b.amount).is_none()
    {
        return Err(bad(format!(
            "account {}: balance `{}` is not an exact decimal",
            a.id, b.amount
        )));
    }
    let _: &[Warning] = &batch.warnings;
    Ok(())
}

/// `YYYY-MM-DD` of a real day (no chrono format parsing: this runs for every line).
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    match (num(0..4), num(5..7), num(8..10)) {
        (Some(y), Some(m), Some(d)) => NaiveDate::from_ymd_opt(y as i32, m, d).is_some(),
        _ => false,
    }
}

fn check_line(l: &StatementLine, what: &str) -> Result<(), String> {
    if l.transaction_id.is_empty() {
        return Err(format!("a {what} has an empty transaction id"));
    }
    match money::parse(&l.amount) {
        None => {
            return Err(format!(
                "{what} {}: amount `{}` is not an exact decimal",
                l.transaction_id, l.amount
            ));
        }
        Some(a) if !money::summable(a) => {
            return Err(format!(
                "{what} {}: amount `{}` is beyond what the books can sum (at most {} digits \
                 before the point)",
                l.transaction_id,
                l.amount,
                money::MAX_AMOUNT_DIGITS
            ));
        }
        Some(_) => {}
    }
    if !is_date(&l.booking_date) {
        return Err(format!(
            "{what} {}: booking date `{}` is not YYYY-MM-DD",
            l.transaction_id, l.booking_date
        ));
    }
    if let Some(v) = &l.value_date
        && !is_date(v)
    {
        return Err(format!(
            "{what} {}: value date `{v}` is not YYYY-MM-DD",
            l.transaction_id
        ));
    }
    Ok(())
}

fn check_statement(s: &Statement) -> Result<(), String> {
    if money::parse(&s.balance_start).is_none() || money::parse(&s.balance_end).is_none() {
        return Err(format!(
            "statement {}: a balance is not an exact decimal",
            s.key
        ));
    }
    if !is_date(&s.date_from) || !is_date(&s.date_to) {
        return Err(format!("statement {}: a date is not YYYY-MM-DD", s.key));
    }
    Ok(())
}

fn check_pending(p: &PendingLine) -> Result<(), String> {
    if !money::parse(&p.amount).is_some_and(money::summable) {
        return Err(format!(
            "pending {}: amount `{}` is not an exact decimal the books can sum",
            p.transaction_id, p.amount
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_date;

    #[test]
    fn dates_are_real_days_in_yyyy_mm_dd() {
        for good in ["2026-11-25", "2024-02-29", "0001-01-01"] {
            assert!(is_date(good), "{good}");
        }
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-1-25",
            "2026/11/25",
            "2026-11-25T00",
            "26-11-2025",
            "２０２６-11-25",
            "+026-11-25",
            "",
        ] {
            assert!(!is_date(bad), "{bad:?} must be refused");
        }
    }
}
