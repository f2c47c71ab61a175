//! Online accounts and their journals: lookups, status, and the upsert a connection or a batch
//! makes (a new account gets a journal matched by IBAN and currency, else a new one).

use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;

use super::db::Db;
use crate::erp::errors::ErpError;
use crate::erp::money;
use crate::erp::names::{AccountStatus, availability_name};
use crate::runtime::types::Account;

#[derive(Clone, Debug, Serialize)]
pub struct OnlineAccount {
    pub id: i64,
    pub link_id: i64,
    pub provider_account_id: String,
    pub institution_id: String,
    pub reference: String,
    pub reference_type: String,
    pub description: String,
    pub holder_name: Option<String>,
    pub currency: String,
    pub balance: Option<String>,
    pub balance_date: Option<String>,
    pub available_balance: Option<String>,
    pub consent_expires_at: Option<String>,
    pub availability: String,
    pub deprecated: bool,
    pub journal_id: i64,
    pub journal_code: String,
    pub last_sync: Option<String>,
    pub status: AccountStatus,
    pub message: Option<String>,
    #[serde(skip)]
    pub sync_cursor: Option<String>,
    #[serde(skip)]
    pub sync_cursor_at: Option<String>,
    #[serde(skip)]
    pub sync_state: Option<String>,
    #[serde(skip)]
    pub sync_run_id: Option<i64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Journal {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub iban: Option<String>,
    pub currency: String,
}

impl Db {
    pub fn accounts(&self, link_id: Option<i64>) -> Result<Vec<OnlineAccount>, ErpError> {
        match link_id {
            Some(id) => self.query_accounts("a.link_id = ?1", params![id]),
            None => self.query_accounts("1 = 1", params![]),
        }
    }

    /// An account by its ERP id or its provider id.
    pub fn account(&self, key: &str) -> Result<OnlineAccount, ErpError> {
        let found = match key.parse::<i64>() {
            Ok(id) => self.query_accounts("a.id = ?1", params![id])?,
            Err(_) => self.query_accounts("a.provider_account_id = ?1", params![key])?,
        };
        match found.len() {
            1 => Ok(found.into_iter().next().expect("one element")),
            0 => Err(ErpError::Usage(format!(
                "there is no online account {key}; `erp accounts` lists them"
            ))),
            _ => Err(ErpError::Usage(format!(
                "account {key} is linked more than once; give the ERP id from `erp accounts`"
            ))),
        }
    }

    fn query_accounts(
        &self,
        filter: &str,
        p: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<OnlineAccount>, ErpError> {
        let sql = format!(
            "SELECT a.id, a.link_id, a.provider_account_id, a.institution_id, a.reference, a.reference_type, a.description,
                    a.holder_name, a.currency, a.balance, a.balance_date, a.available_balance, a.consent_expires_at,
                    a.availability, a.deprecated, a.journal_id, j.code, a.last_sync, a.status, a.message,
                    a.sync_cursor, a.sync_cursor_at, a.sync_state, a.sync_run_id
             FROM online_accounts a JOIN journals j ON j.id = a.journal_id WHERE {filter} ORDER BY a.id"
        );
        self.rows(&sql, p, |r| {
            Ok(OnlineAccount {
                id: r.get(0)?,
                link_id: r.get(1)?,
                provider_account_id: r.get(2)?,
                institution_id: r.get(3)?,
                reference: r.get(4)?,
                reference_type: r.get(5)?,
                description: r.get(6)?,
                holder_name: r.get(7)?,
                currency: r.get(8)?,
                balance: r.get(9)?,
                balance_date: r.get(10)?,
                available_balance: r.get(11)?,
                consent_expires_at: r.get(12)?,
                availability: r.get(13)?,
                deprecated: r.get(14)?,
                journal_id: r.get(15)?,
                journal_code: r.get(16)?,
                last_sync: r.get(17)?,
                status: r.get(18)?,
                message: r.get(19)?,
                sync_cursor: r.get(20)?,
                sync_cursor_at: r.get(21)?,
                sync_state: r.get(22)?,
                sync_run_id: r.get(23)?,
            })
        })
    }

    pub fn journals(&self) -> Result<Vec<Journal>, ErpError> {
        self.rows(
            "SELECT id, code, name, iban, currency FROM journals ORDER BY id",
            [],
            |r| {
                Ok(Journal {
                    id: r.get(0)?,
                    code: r.get(1)?,
                    name: r.get(2)?,
                    iban: r.get(3)?,
                    currency: r.get(4)?,
                })
            },
        )
    }

    /// A journal by id or code.
    pub fn journal(&self, key: &str) -> Result<Journal, ErpError> {
        self.journals()?
            .into_iter()
            .find(|j| j.id.to_string() == key || j.code.eq_ignore_ascii_case(key))
            .ok_or_else(|| {
                ErpError::Usage(format!(
                    "there is no journal {key}; `erp accounts` shows each account's journal"
                ))
            })
    }
}

pub(super) fn update_account_details(
    tx: &Transaction<'_>,
    id: i64,
    a: &Account,
) -> rusqlite::Result<usize> {
    tx.execute(
        "UPDATE online_accounts SET reference = ?2, reference_type = ?3, description = ?4, holder_name = ?5,
             product = ?6, currency = ?7,
             balance = COALESCE(?8, balance), balance_date = COALESCE(?9, balance_date),
             available_balance = COALESCE(?10, available_balance), authorized_at = ?11, consent_expires_at = ?12,
             availability = ?13, deprecated = ?14, synchronized_at = ?15
         WHERE id = ?1",
        params![
            id,
            a.reference,
            a.reference_type,
            a.description,
            a.holder_name,
            a.product,
            a.currency,
            a.current_balance.as_ref().map(|b| money::normalize(&b.amount).unwrap_or_else(|| b.amount.clone())),
            a.current_balance.as_ref().map(|b| b.reference_date.clone()),
            a.available_balance.as_ref().map(|b| b.amount.clone()),
            a.authorized_at,
            a.consent_expires_at,
            availability_name(a.availability),
            a.deprecated,
            a.synchronized_at
        ],
    )
}

/// Insert or refresh one online account under a link; a new one gets a journal matched by IBAN
/// and currency, else a new journal.
pub(super) fn upsert_account(
    tx: &Transaction<'_>,
    link_id: i64,
    a: &Account,
) -> rusqlite::Result<(i64, bool)> {
    let existing: Option<i64> = tx
        .query_row(
            "SELECT id FROM online_accounts WHERE link_id = ?1 AND provider_account_id = ?2",
            params![link_id, a.id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = existing {
        update_account_details(tx, id, a)?;
        return Ok((id, false));
    }
    let journal_id: Option<i64> = tx
        .query_row(
            "SELECT id FROM journals WHERE iban = ?1 AND currency = ?2 ORDER BY id LIMIT 1",
            params![a.reference, a.currency],
            |r| r.get(0),
        )
        .optional()?;
    let journal_id = match journal_id {
        Some(id) => id,
        None => {
            let n: i64 = tx.query_row("SELECT COUNT(*) FROM journals", [], |r| r.get(0))?;
            let code = format!("BNK{}", n + 1);
            let name = if a.description.trim().is_empty() {
                format!("Bank {}", a.reference)
            } else {
                a.description.clone()
            };
            tx.execute(
                "INSERT INTO journals (code, name, iban, currency) VALUES (?1, ?2, ?3, ?4)",
                params![code, name, a.reference, a.currency],
            )?;
            tx.last_insert_rowid()
        }
    };
    tx.execute(
        "INSERT INTO online_accounts (link_id, provider_account_id, institution_id, reference, reference_type, description,
             currency, journal_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![link_id, a.id, a.institution_id, a.reference, a.reference_type, a.description, a.currency, journal_id],
    )?;
    let id = tx.last_insert_rowid();
    update_account_details(tx, id, a)?;
    Ok((id, true))
}
