//! Reading the books: statements with their lines and balances, lines, pending lines and the
//! latest warnings.

use rusqlite::params;
use serde::Serialize;

use super::db::Db;
use super::statement_lines::{self, StoredLine};
use crate::erp::errors::ErpError;
use crate::erp::money;

#[derive(Clone, Debug, Serialize)]
pub struct StoredStatement {
    pub id: i64,
    pub journal_id: i64,
    pub key: String,
    pub name: String,
    pub date_from: String,
    pub date_to: String,
    pub balance_start: String,
    pub balance_end: String,
    /// Sum of the stored lines, exact.
    pub lines_total: String,
    /// `balance_start + lines_total - balance_end`; zero when the statement chains.
    pub difference: String,
    pub lines: Vec<StoredLine>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StoredPending {
    pub transaction_id: String,
    pub date: String,
    pub amount: String,
    pub currency: String,
    pub payment_reference: String,
    pub partner_name: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StoredWarning {
    pub online_account_id: i64,
    pub kind: String,
    pub message: String,
    pub created_at: String,
}

impl Db {
    pub fn statements(&self, journal_id: i64) -> Result<Vec<StoredStatement>, ErpError> {
        let mut statements = self.rows(
            "SELECT id, journal_id, key, name, date_from, date_to, balance_start, balance_end
                 FROM statements WHERE journal_id = ?1 ORDER BY date_to, key",
            params![journal_id],
            |r| {
                Ok(StoredStatement {
                    id: r.get(0)?,
                    journal_id: r.get(1)?,
                    key: r.get(2)?,
                    name: r.get(3)?,
                    date_from: r.get(4)?,
                    date_to: r.get(5)?,
                    balance_start: r.get(6)?,
                    balance_end: r.get(7)?,
                    lines_total: String::new(),
                    difference: String::new(),
                    lines: Vec::new(),
                })
            },
        )?;
        for s in &mut statements {
            s.lines = self.read_lines(journal_id, Some(&s.key))?;
            // Checked: stored data from an older version may hold amounts past the bound.
            let total = money::sum(s.lines.iter().map(|l| l.amount.as_str()));
            s.lines_total = total.map_or_else(|| "?".into(), money::format);
            s.difference = match (money::parse(&s.balance_start), money::parse(&s.balance_end)) {
                (Some(start), Some(end)) => total
                    .and_then(|t| start.checked_add(t))
                    .and_then(|x| x.checked_sub(end))
                    .map_or_else(|| "?".into(), money::format),
                _ => "?".into(),
            };
        }
        Ok(statements)
    }

    /// Every line of a journal (with or without a statement), in a stable order.
    pub fn lines(&self, journal_id: i64) -> Result<Vec<StoredLine>, ErpError> {
        self.read_lines(journal_id, None)
    }

    fn read_lines(
        &self,
        journal_id: i64,
        statement_key: Option<&str>,
    ) -> Result<Vec<StoredLine>, ErpError> {
        let mut stmt = self
            .conn
            .prepare_cached(&statement_lines::SELECT)
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![journal_id, statement_key], StoredLine::from_row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.err(e))
    }

    pub fn line_count(&self) -> Result<u64, ErpError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM statement_lines", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    pub fn pending(&self, account_id: i64) -> Result<Vec<StoredPending>, ErpError> {
        self.rows(
            "SELECT transaction_id, date, amount, currency, payment_reference, partner_name
                 FROM pending_lines WHERE online_account_id = ?1 ORDER BY date, transaction_id",
            params![account_id],
            |r| {
                Ok(StoredPending {
                    transaction_id: r.get(0)?,
                    date: r.get(1)?,
                    amount: r.get(2)?,
                    currency: r.get(3)?,
                    payment_reference: r.get(4)?,
                    partner_name: r.get(5)?,
                })
            },
        )
    }

    /// Warnings of each account's latest run.
    pub fn latest_warnings(&self) -> Result<Vec<StoredWarning>, ErpError> {
        self.rows(
            "SELECT w.online_account_id, w.kind, w.message, w.created_at FROM sync_warnings w
                 WHERE w.sync_run_id = (SELECT MAX(r.id) FROM sync_runs r
                                        WHERE r.online_account_id = w.online_account_id AND r.status != 'running')
                 ORDER BY w.online_account_id, w.id",
            [],
            |r| {
                Ok(StoredWarning {
                    online_account_id: r.get(0)?,
                    kind: r.get(1)?,
                    message: r.get(2)?,
                    created_at: r.get(3)?,
                })
            },
        )
    }
}
