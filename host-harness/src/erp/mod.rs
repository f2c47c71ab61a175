//! The ERP the harness plays: an accounting database on SQLite (online links, online accounts,
//! journals, statements, lines, pending lines, sync runs), sync orchestration, settings, and the
//! demo. The `erp` CLI (crate::cli) is a thin shell over this module.

pub mod clock;
pub mod connect;
pub mod errors;
pub mod installed;
pub mod money;
pub mod names;
pub mod provider;
pub mod settings;
pub mod store;
pub mod sync;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use errors::ErpError;
pub use settings::Settings;
pub use store::Db;

/// Days before consent expiry at which the ERP reminds the user (as Odoo does).
pub const REMINDER_DAYS: [i64; 3] = [15, 3, 1];

/// A consent reminder for `erp status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reminder {
    pub days_left: i64,
    /// 15, 3 or 1 (the reminder reached), or 0 once the consent has ended.
    pub stage: i64,
    pub expires_at: String,
}

/// The reminder due for a consent ending at `expires_at` (RFC 3339), if any.
pub fn consent_reminder(expires_at: &str, now: DateTime<Utc>) -> Option<Reminder> {
    let end = DateTime::parse_from_rfc3339(expires_at)
        .ok()?
        .with_timezone(&Utc);
    let left = end - now;
    let days_left = left.num_days();
    let stage = if left <= chrono::TimeDelta::zero() {
        0
    } else {
        // The smallest threshold reached: 1 inside the last day, then 3, then 15.
        *REMINDER_DAYS.iter().rev().find(|&&d| days_left < d)?
    };
    Some(Reminder {
        days_left,
        stage,
        expires_at: expires_at.to_owned(),
    })
}

impl Reminder {
    pub fn message(&self, what: &str) -> String {
        if self.stage == 0 {
            format!(
                "the bank consent of {what} ended on {}: synchronisation has stopped; renew it at the provider (`erp reauthorize --account ...` gives the link)",
                &self.expires_at[..10.min(self.expires_at.len())]
            )
        } else {
            format!(
                "the bank consent of {what} ends in {} {}, on {} ({}-day reminder): renew it at the provider (`erp reauthorize --account ...` gives the link), as PSD2 asks every 180 days",
                self.days_left,
                if self.days_left == 1 { "day" } else { "days" },
                &self.expires_at[..10.min(self.expires_at.len())],
                self.stage
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn reminders_at_15_3_and_1_days() {
        let now = at("2026-11-25T12:00:00Z");
        let stage = |end: &str| consent_reminder(end, now).map(|r| r.stage);
        assert_eq!(stage("2027-01-01T00:00:00Z"), None);
        assert_eq!(
            stage("2026-12-10T13:00:00Z"),
            None,
            "15 days and an hour left"
        );
        assert_eq!(
            stage("2026-12-10T11:00:00Z"),
            Some(15),
            "14 days and 23 h left"
        );
        assert_eq!(stage("2026-11-28T11:00:00Z"), Some(3));
        assert_eq!(stage("2026-11-26T11:00:00Z"), Some(1));
        assert_eq!(stage("2026-11-25T11:00:00Z"), Some(0), "ended an hour ago");
        assert_eq!(stage("not a date"), None);
    }
}
