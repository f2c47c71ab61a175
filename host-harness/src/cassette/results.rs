//! What a `sync` call returned, as JSON: the expected result a cassette stores and what a check
//! compares. Only what the books keep: new and updated lines (every field, `raw-json` included),
//! statements, the pending list, and whether the sync goes on. Cursors and states are the
//! provider's own opaque text and are not compared.

use serde_json::{Value, json};

use crate::runtime::types::{
    PendingLine, ProviderError, Statement, StatementLine, SyncBatch, SyncProgress,
};

pub fn line(l: &StatementLine) -> Value {
    json!({
        "transaction_id": l.transaction_id,
        "statement_key": l.statement_key,
        "booking_date": l.booking_date,
        "value_date": l.value_date,
        "amount": l.amount,
        "currency": l.currency,
        "payment_reference": l.payment_reference,
        "structured_reference": l.structured_reference,
        "description": l.description,
        "partner_name": l.partner_name,
        "partner_account": l.partner_account,
        "end_to_end_id": l.end_to_end_id,
        "bank_transaction_code": l.bank_transaction_code,
        "mandate_id": l.mandate_id,
        "creditor_id": l.creditor_id,
        "card_reference": l.card_reference,
        "raw_json": l.raw_json,
    })
}

pub fn statement(s: &Statement) -> Value {
    json!({
        "key": s.key,
        "name": s.name,
        "date_from": s.date_from,
        "date_to": s.date_to,
        "balance_start": s.balance_start,
        "balance_end": s.balance_end,
    })
}

pub fn pending(p: &PendingLine) -> Value {
    json!({
        "transaction_id": p.transaction_id,
        "date": p.date,
        "amount": p.amount,
        "currency": p.currency,
        "payment_reference": p.payment_reference,
        "partner_name": p.partner_name,
        "raw_json": p.raw_json,
    })
}

pub fn batch(b: &SyncBatch) -> Value {
    json!({
        "lines": b.lines.iter().map(line).collect::<Vec<_>>(),
        "updated_lines": b.updated_lines.iter().map(line).collect::<Vec<_>>(),
        "statements": b.statements.iter().map(statement).collect::<Vec<_>>(),
        "pending": b.pending.as_ref().map(|p| p.iter().map(pending).collect::<Vec<_>>()),
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
