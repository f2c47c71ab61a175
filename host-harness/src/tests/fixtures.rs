//! What the ERP's tests build their data from: contract records (institution, account, line,
//! statement, batch) and a fresh database.

use crate::erp::store::Db;
use crate::runtime::types::*;

pub fn institution(id: &str) -> Institution {
    Institution {
        id: id.into(),
        name: format!("Bank {id}"),
        country: Some("BE".into()),
        bic: None,
        status: InstitutionStatus::Stable,
        deprecated: false,
        time_zone: "Europe/Brussels".into(),
        maintenance: None,
        provider_name: "Acme".into(),
    }
}

pub fn account(id: &str, iban: &str) -> Account {
    Account {
        id: id.into(),
        institution_id: "inst-1".into(),
        reference: iban.into(),
        reference_type: "IBAN".into(),
        description: format!("Account {id}"),
        product: None,
        holder_name: None,
        currency: "EUR".into(),
        current_balance: Some(Balance {
            amount: "1000.00".into(),
            reference_date: "2026-11-24".into(),
        }),
        available_balance: None,
        authorized_at: None,
        consent_expires_at: Some("2027-05-01T00:00:00Z".into()),
        consent_days_left: Some(150),
        availability: Availability::Available,
        deprecated: false,
        synchronized_at: None,
    }
}

/// A statement line as a scripted bank sends it. The one place a test spells out every field
/// of `statement-line`: other fixtures (the store benchmark's realistic line) start from it, so a
/// new field in the WIT means editing this function only.
pub fn line(id: &str, day: &str, amount: &str) -> StatementLine {
    StatementLine {
        transaction_id: id.into(),
        statement_key: day.into(),
        booking_date: day.into(),
        value_date: Some(day.into()),
        amount: amount.into(),
        currency: "EUR".into(),
        payment_reference: format!("ref {id}"),
        structured_reference: false,
        description: None,
        partner_name: Some("ACME".into()),
        partner_account: None,
        end_to_end_id: None,
        bank_transaction_code: None,
        mandate_id: None,
        creditor_id: None,
        card_reference: None,
        raw_json: "{}".into(),
    }
}

pub fn statement(day: &str, start: &str, end: &str) -> Statement {
    Statement {
        key: day.into(),
        name: format!("BNK/{day}"),
        date_from: day.into(),
        date_to: day.into(),
        balance_start: start.into(),
        balance_end: end.into(),
    }
}

/// The page a scripted provider serves: its cursor is `page-N` (none: the first).
pub fn page_index(request: &SyncRequest) -> usize {
    request
        .cursor
        .as_deref()
        .and_then(|c| c.strip_prefix("page-"))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0)
}

pub fn batch(
    lines: Vec<StatementLine>,
    statements: Vec<Statement>,
    progress: SyncProgress,
) -> SyncBatch {
    SyncBatch {
        account: None,
        lines,
        updated_lines: vec![],
        statements,
        pending: None,
        warnings: vec![],
        transactions_read: 0,
        progress,
    }
}

pub fn temp_db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("erp.sqlite")).unwrap();
    (dir, db)
}
