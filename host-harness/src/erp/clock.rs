//! The ERP's clock and its timestamps (RFC 3339, UTC, to the second).

use chrono::{DateTime, Utc};

pub fn now() -> DateTime<Utc> {
    // Tests (and the demo) can pin the ERP's clock; the plugin has its own (WASI).
    if let Ok(fixed) = std::env::var("ERP_NOW")
        && let Ok(t) = DateTime::parse_from_rfc3339(&fixed)
    {
        return t.with_timezone(&Utc);
    }
    Utc::now()
}

pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn parse_stamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
