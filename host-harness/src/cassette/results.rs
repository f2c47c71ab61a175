//! What a `sync` call returned, as JSON: the expected result a cassette stores and what a check
//! compares. Only what the books keep: new and updated lines (every field, `raw-json` included),
//! statements, the pending list, and whether the sync goes on. Cursors and states are the
//! provider's own opaque text and are not compared. Records are written in their serde form (the
//! generated types' fields), so a field added to the WIT shows up here by itself.

use serde::Serialize;
use serde_json::{Value, json};

use crate::runtime::types::{ProviderError, SyncBatch, SyncProgress};

/// A record's serde form (a generated WIT record always serialises).
fn record<T: Serialize>(r: &T) -> Value {
    serde_json::to_value(r).expect("a WIT record serialises to JSON")
}

pub fn batch(b: &SyncBatch) -> Value {
    json!({
        "lines": record(&b.lines),
        "updated_lines": record(&b.updated_lines),
        "statements": record(&b.statements),
        "pending": record(&b.pending),
        "progress": match b.progress {
            SyncProgress::More(_) => "more",
            SyncProgress::Done(_) => "done",
        },
    })
}

/// The WIT case name of a provider error (`upstream`, `malformed-response` ...).
pub fn error_case(e: &ProviderError) -> &'static str {
    match e {
        ProviderError::InvalidArgument(_) => "invalid-argument",
        ProviderError::InvalidClient(_) => "invalid-client",
        ProviderError::ReconnectRequired(_) => "reconnect-required",
        ProviderError::StateMismatch(_) => "state-mismatch",
        ProviderError::NoAccountsForInstitution(_) => "no-accounts-for-institution",
        ProviderError::AuthorizationExpired(_) => "authorization-expired",
        ProviderError::NotFound(_) => "not-found",
        ProviderError::RateLimited(_) => "rate-limited",
        ProviderError::Upstream(_) => "upstream",
        ProviderError::MalformedResponse(_) => "malformed-response",
        ProviderError::Transport(_) => "transport",
        ProviderError::Storage(_) => "storage",
    }
}
