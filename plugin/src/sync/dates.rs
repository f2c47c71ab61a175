//! Dates as a sync reads and shows them: which booking dates it takes at face value, and
//! timestamps in the institution's zone for messages.

use chrono::{Days, NaiveDate};
use chrono_tz::Tz;

/// The booking dates a sync takes at face value: from 1970 (no bank data Ponto serves is older)
/// to a year after today (a booked line is dated at most days ahead, for a value date or a time
/// zone). A line dated outside (`9999-12-31`, `0001-01-01`) is kept, but neither moves the
/// watermark (which would make later syncs stop at once) nor opens or widens a statement (which
/// would swallow all history into one).
pub(super) fn plausible(d: NaiveDate, today: NaiveDate) -> bool {
    let floor = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN);
    let ceiling = today
        .checked_add_days(Days::new(366))
        .unwrap_or(NaiveDate::MAX);
    (floor..=ceiling).contains(&d)
}

/// The calendar day of a timestamp in the institution's zone, for messages (`2026-12-15`);
/// unreadable text is shown as it is.
pub(super) fn local_day(t: &str, tz: Tz) -> String {
    crate::jsonapi::When::parse(t).map_or_else(|| t.to_string(), |w| w.local_date(tz).to_string())
}

/// A timestamp in the institution's zone, to the minute, for messages (`2026-12-15 07:00`).
pub(super) fn local_time(t: &str, tz: Tz) -> String {
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
