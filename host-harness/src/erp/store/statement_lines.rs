//! How the ERP stores a statement line: the one file that names the fields of the WIT
//! `statement-line` on the ERP's side. A new field is one entry in [`COLUMNS`], its value in
//! [`values`] and, when the books show it, a field of [`StoredLine`]; [`add_new_columns`] gives
//! existing databases the column.

use std::sync::LazyLock;

use rusqlite::{Connection, ToSql};
use serde::Serialize;

use crate::runtime::types::StatementLine;

/// The columns a line's record fills, in the order of [`values`], each with the type it gets when
/// an existing database lacks it (nullable: the lines stored before had no such value).
const COLUMNS: [(&str, &str); 17] = [
    ("transaction_id", "TEXT"),
    ("statement_key", "TEXT"),
    ("booking_date", "TEXT"),
    ("value_date", "TEXT"),
    ("amount", "TEXT"),
    ("currency", "TEXT"),
    ("payment_reference", "TEXT"),
    ("structured_reference", "INTEGER"),
    ("description", "TEXT"),
    ("partner_name", "TEXT"),
    ("partner_account", "TEXT"),
    ("end_to_end_id", "TEXT"),
    ("bank_transaction_code", "TEXT"),
    ("mandate_id", "TEXT"),
    ("creditor_id", "TEXT"),
    ("card_reference", "TEXT"),
    ("raw_json", "TEXT"),
];

/// The provider's text, kept but not shown with the books.
const NOT_SHOWN: &[&str] = &["raw_json"];

/// The values of [`COLUMNS`] for one line (`amount` normalised by the caller). The record is
/// taken apart whole, so a field the WIT gains is a compile error here until it is stored.
pub(super) fn values<'a>(l: &'a StatementLine, amount: &'a dyn ToSql) -> [&'a dyn ToSql; 17] {
    let StatementLine {
        transaction_id,
        statement_key,
        booking_date,
        value_date,
        amount: _,
        currency,
        payment_reference,
        structured_reference,
        description,
        partner_name,
        partner_account,
        end_to_end_id,
        bank_transaction_code,
        mandate_id,
        creditor_id,
        card_reference,
        raw_json,
    } = l;
    [
        transaction_id,
        statement_key,
        booking_date,
        value_date,
        amount,
        currency,
        payment_reference,
        structured_reference,
        description,
        partner_name,
        partner_account,
        end_to_end_id,
        bank_transaction_code,
        mandate_id,
        creditor_id,
        card_reference,
        raw_json,
    ]
}

fn names() -> impl Iterator<Item = &'static str> {
    COLUMNS.iter().map(|(name, _)| *name)
}

/// A new line: `?1` the journal, then [`values`], then the online account and the sync run.
pub(super) static INSERT: LazyLock<String> = LazyLock::new(|| {
    let n = COLUMNS.len();
    format!(
        "INSERT OR IGNORE INTO statement_lines (journal_id, {}, online_account_id, sync_run_id) VALUES ({})",
        names().collect::<Vec<_>>().join(", "),
        (1..=n + 3)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
});

/// A line the provider updated, found by journal `?1` and transaction id `?2` (the first of
/// [`values`]); the update time follows the values.
pub(super) static UPDATE: LazyLock<String> = LazyLock::new(|| {
    let set: Vec<String> = names()
        .enumerate()
        .skip(1)
        .map(|(i, name)| format!("{name} = ?{}", i + 2))
        .collect();
    format!(
        "UPDATE statement_lines SET {}, updated_at = ?{} WHERE journal_id = ?1 AND transaction_id = ?2",
        set.join(", "),
        COLUMNS.len() + 2
    )
});

/// Give a database made by an older version the columns of fields added since (their value is
/// NULL on the lines stored before). Runs after the migrations, inside no transaction of a sync.
pub(super) fn add_new_columns(conn: &Connection) -> rusqlite::Result<()> {
    let have: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('statement_lines')")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, ty) in COLUMNS {
        if !have.iter().any(|h| h == name) {
            conn.execute_batch(&format!(
                "ALTER TABLE statement_lines ADD COLUMN {name} {ty}"
            ))?;
        }
    }
    Ok(())
}

/// A line as the books show it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StoredLine {
    pub transaction_id: String,
    pub statement_key: String,
    pub booking_date: String,
    pub value_date: Option<String>,
    pub amount: String,
    pub currency: String,
    pub payment_reference: String,
    pub structured_reference: bool,
    pub description: Option<String>,
    pub partner_name: Option<String>,
    pub partner_account: Option<String>,
    pub end_to_end_id: Option<String>,
    pub bank_transaction_code: Option<String>,
    pub mandate_id: Option<String>,
    pub creditor_id: Option<String>,
    pub card_reference: Option<String>,
}

/// The lines of journal `?1`, of statement `?2` when it is not NULL, as the books show them.
pub(super) static SELECT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM statement_lines WHERE journal_id = ?1 AND (?2 IS NULL OR statement_key = ?2)
         ORDER BY booking_date, transaction_id",
        names()
            .filter(|name| !NOT_SHOWN.contains(name))
            .collect::<Vec<_>>()
            .join(", ")
    )
});

impl StoredLine {
    /// A row of [`SELECT`].
    pub(super) fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            transaction_id: r.get("transaction_id")?,
            statement_key: r.get("statement_key")?,
            booking_date: r.get("booking_date")?,
            value_date: r.get("value_date")?,
            amount: r.get("amount")?,
            currency: r.get("currency")?,
            payment_reference: r.get("payment_reference")?,
            structured_reference: r.get("structured_reference")?,
            description: r.get("description")?,
            partner_name: r.get("partner_name")?,
            partner_account: r.get("partner_account")?,
            end_to_end_id: r.get("end_to_end_id")?,
            bank_transaction_code: r.get("bank_transaction_code")?,
            mandate_id: r.get("mandate_id")?,
            creditor_id: r.get("creditor_id")?,
            card_reference: r.get("card_reference")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statements made from [`COLUMNS`] are the ones the ERP ran before they were derived.
    #[test]
    fn the_derived_statements_name_every_column_in_order() {
        assert_eq!(
            *INSERT,
            "INSERT OR IGNORE INTO statement_lines (journal_id, transaction_id, statement_key, booking_date, \
             value_date, amount, currency, payment_reference, structured_reference, description, partner_name, \
             partner_account, end_to_end_id, bank_transaction_code, mandate_id, creditor_id, card_reference, \
             raw_json, online_account_id, sync_run_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
             ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"
        );
        assert_eq!(
            *UPDATE,
            "UPDATE statement_lines SET statement_key = ?3, booking_date = ?4, value_date = ?5, amount = ?6, \
             currency = ?7, payment_reference = ?8, structured_reference = ?9, description = ?10, \
             partner_name = ?11, partner_account = ?12, end_to_end_id = ?13, bank_transaction_code = ?14, \
             mandate_id = ?15, creditor_id = ?16, card_reference = ?17, raw_json = ?18, updated_at = ?19 \
             WHERE journal_id = ?1 AND transaction_id = ?2"
        );
    }

    /// A database whose line table lacks a column of a newer field gets it, NULL on old lines,
    /// and keeps every line it had.
    #[test]
    fn a_missing_column_is_added_and_old_lines_are_kept() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE statement_lines (id INTEGER PRIMARY KEY, transaction_id TEXT, statement_key TEXT,
                 booking_date TEXT, value_date TEXT, amount TEXT, currency TEXT, payment_reference TEXT,
                 structured_reference INTEGER, description TEXT, partner_name TEXT, partner_account TEXT,
                 end_to_end_id TEXT, bank_transaction_code TEXT, mandate_id TEXT, creditor_id TEXT,
                 raw_json TEXT);
             INSERT INTO statement_lines (transaction_id, amount) VALUES ('t1', '1.00');",
        )
        .unwrap();
        add_new_columns(&conn).unwrap();
        add_new_columns(&conn).unwrap();
        let (id, card): (String, Option<String>) = conn
            .query_row(
                "SELECT transaction_id, card_reference FROM statement_lines",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((id.as_str(), card), ("t1", None));
    }
}
