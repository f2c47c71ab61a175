//! Sync runs: one run per account sync, each batch committed with its cursor in ONE IMMEDIATE
//! transaction (a crash leaves the whole batch or none of it), and the statements it touched
//! checked against their lines when the run ends.

use rusqlite::{OptionalExtension, ToSql, Transaction, params, params_from_iter};

use super::accounts::{OnlineAccount, update_account_details};
use super::db::Db;
use super::statement_lines;
use super::validation::validate_batch;
use crate::erp::clock::{now, parse_stamp, stamp};
use crate::erp::errors::ErpError;
use crate::erp::money;
use crate::erp::names::{AccountStatus, warning_kind_name};
use crate::runtime::types::{SyncBatch, SyncProgress};

/// A cursor left by an interrupted sync is resumed only while it is this fresh.
const CURSOR_FRESH_FOR: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// Counts of what one batch changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub new_lines: u64,
    pub updated_lines: u64,
    /// Updated lines whose amount the bank changed (each also recorded as a warning).
    pub changed_amounts: u64,
    /// Statements of the finished sync whose balances do not move by the sum of their stored
    /// lines (each also recorded as a warning).
    pub unbalanced_statements: u64,
    pub statements: u64,
    pub done: bool,
}

/// Where a sync of one account starts.
#[derive(Clone, Debug)]
pub struct Resume {
    pub run_id: i64,
    pub cursor: Option<String>,
    pub state: Option<String>,
}

impl Db {
    /// Start a sync run for an account: an interrupted run's cursor is resumed when fresh.
    pub fn begin_run(&mut self, account: &OnlineAccount) -> Result<Resume, ErpError> {
        let path = self.path.clone();
        let at = now();
        let tx = self.immediate()?;
        let inner = || -> rusqlite::Result<Resume> {
            // A run still marked running was cut short by a crash (the link lock proves no one
            // else is running it now).
            tx.execute(
                "UPDATE sync_runs SET status = 'interrupted', ended_at = ?2
                 WHERE online_account_id = ?1 AND status = 'running'",
                params![account.id, stamp(at)],
            )?;
            let (cursor, cursor_at, state): (Option<String>, Option<String>, Option<String>) = tx
                .query_row(
                "SELECT sync_cursor, sync_cursor_at, sync_state FROM online_accounts WHERE id = ?1",
                params![account.id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let fresh = cursor_at
                .as_deref()
                .and_then(parse_stamp)
                .is_some_and(|t| at - t < CURSOR_FRESH_FOR);
            let cursor = cursor.filter(|_| fresh);
            tx.execute(
                "INSERT INTO sync_runs (link_id, online_account_id, started_at, status) VALUES (?1, ?2, ?3, 'running')",
                params![account.link_id, account.id, stamp(at)],
            )?;
            let run_id = tx.last_insert_rowid();
            tx.execute(
                "UPDATE online_accounts SET sync_run_id = ?2, sync_cursor = ?3,
                     sync_cursor_at = CASE WHEN ?3 IS NULL THEN NULL ELSE sync_cursor_at END
                 WHERE id = ?1",
                params![account.id, run_id, cursor],
            )?;
            Ok(Resume {
                run_id,
                cursor,
                state,
            })
        };
        let out = inner().map_err(|e| ErpError::db(&path, e))?;
        tx.commit().map_err(|e| ErpError::db(&path, e))?;
        Ok(out)
    }

    /// Commit one batch and its progress in ONE transaction. A batch that does not fit the
    /// contract (a malformed amount or date) is refused whole: nothing of it is stored.
    pub fn apply_batch(
        &mut self,
        account: &OnlineAccount,
        run_id: i64,
        link_id: i64,
        batch: &SyncBatch,
    ) -> Result<BatchOutcome, ErpError> {
        validate_batch(batch)?;
        let path = self.path.clone();
        let at = stamp(now());
        let tx = self.immediate()?;
        let inner = || -> rusqlite::Result<BatchOutcome> {
            let mut out = BatchOutcome::default();
            if let Some(details) = &batch.account {
                update_account_details(&tx, account.id, details)?;
            }
            {
                // The journal, then the line's values: both statements name the same columns.
                let mut insert = tx.prepare_cached(&statement_lines::INSERT)?;
                for l in &batch.lines {
                    let amount = money::normalize(&l.amount).unwrap_or_else(|| l.amount.clone());
                    let journal: [&dyn ToSql; 1] = [&account.journal_id];
                    let extra: [&dyn ToSql; 2] = [&account.id, &run_id];
                    out.new_lines += insert.execute(params_from_iter(
                        journal
                            .into_iter()
                            .chain(statement_lines::values(l, &amount))
                            .chain(extra),
                    ))? as u64;
                }
                let mut update = tx.prepare_cached(&statement_lines::UPDATE)?;
                for l in &batch.updated_lines {
                    // A bank that changes a booked amount changes a statement the accountant may
                    // already have reconciled: apply it (the bank is the truth) but say so.
                    let before: Option<(String, String)> = tx
                        .query_row(
                            "SELECT amount, statement_key FROM statement_lines WHERE journal_id = ?1 AND transaction_id = ?2",
                            params![account.journal_id, l.transaction_id],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )
                        .optional()?;
                    if let Some((old, key)) = before
                        && money::parse(&old) != money::parse(&l.amount)
                    {
                        tx.execute(
                            "INSERT INTO sync_warnings (sync_run_id, online_account_id, kind, message, created_at)
                             VALUES (?1, ?2, 'other', ?3, ?4)",
                            params![
                                run_id,
                                account.id,
                                format!(
                                    "the bank changed the amount of transaction {} (statement {key}) from {old} to {} {}; \
                                     the line was updated: check any reconciliation made on it",
                                    l.transaction_id, l.amount, l.currency
                                ),
                                at
                            ],
                        )?;
                        out.changed_amounts += 1;
                    }
                    let amount = money::normalize(&l.amount).unwrap_or_else(|| l.amount.clone());
                    let journal: [&dyn ToSql; 1] = [&account.journal_id];
                    let extra: [&dyn ToSql; 1] = [&at];
                    out.updated_lines += update.execute(params_from_iter(
                        journal
                            .into_iter()
                            .chain(statement_lines::values(l, &amount))
                            .chain(extra),
                    ))? as u64;
                }
                let mut upsert = tx.prepare_cached(
                    "INSERT INTO statements (journal_id, key, name, date_from, date_to, balance_start, balance_end)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (journal_id, key) DO UPDATE SET name = excluded.name, date_from = excluded.date_from,
                         date_to = excluded.date_to, balance_start = excluded.balance_start, balance_end = excluded.balance_end",
                )?;
                // The statements this sync touched, checked against their lines when it ends.
                tx.execute_batch(TOUCHED_STATEMENTS)?;
                let mut touch = tx.prepare_cached(
                    "INSERT OR IGNORE INTO temp.touched_statements (journal_id, key) VALUES (?1, ?2)",
                )?;
                for s in &batch.statements {
                    touch.execute(params![account.journal_id, s.key])?;
                    upsert.execute(params![
                        account.journal_id,
                        s.key,
                        s.name,
                        s.date_from,
                        s.date_to,
                        money::normalize(&s.balance_start)
                            .unwrap_or_else(|| s.balance_start.clone()),
                        money::normalize(&s.balance_end).unwrap_or_else(|| s.balance_end.clone())
                    ])?;
                    out.statements += 1;
                }
            }
            if let Some(pending) = &batch.pending {
                tx.execute(
                    "DELETE FROM pending_lines WHERE online_account_id = ?1",
                    params![account.id],
                )?;
                let mut insert = tx.prepare_cached(
                    "INSERT INTO pending_lines (online_account_id, transaction_id, date, amount, currency,
                         payment_reference, partner_name, raw_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for p in pending {
                    insert.execute(params![
                        account.id,
                        p.transaction_id,
                        p.date,
                        p.amount,
                        p.currency,
                        p.payment_reference,
                        p.partner_name,
                        p.raw_json
                    ])?;
                }
            }
            for w in &batch.warnings {
                tx.execute(
                    "INSERT INTO sync_warnings (sync_run_id, online_account_id, kind, message, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![run_id, account.id, warning_kind_name(w.kind), w.message, at],
                )?;
            }
            if matches!(batch.progress, SyncProgress::Done(_)) {
                out.unbalanced_statements = check_touched_statements(&tx, account, run_id, &at)?;
            }
            match &batch.progress {
                SyncProgress::More(cursor) => {
                    tx.execute(
                        "UPDATE online_accounts SET sync_cursor = ?2, sync_cursor_at = ?3 WHERE id = ?1",
                        params![account.id, cursor, at],
                    )?;
                }
                SyncProgress::Done(state) => {
                    out.done = true;
                    tx.execute(
                        "UPDATE online_accounts SET sync_cursor = NULL, sync_cursor_at = NULL, sync_state = ?2,
                             last_sync = ?3, status = CASE WHEN ?4 THEN 'warning' ELSE 'ok' END,
                             message = ?5, sync_run_id = NULL
                         WHERE id = ?1",
                        params![
                            account.id,
                            state,
                            at,
                            !batch.warnings.is_empty()
                                || out.changed_amounts > 0
                                || out.unbalanced_statements > 0,
                            batch.warnings.last().map(|w| w.message.clone())
                        ],
                    )?;
                }
            }
            tx.execute(
                "UPDATE sync_runs SET batches = batches + 1, lines_new = lines_new + ?2, lines_updated = lines_updated + ?3,
                     statements = statements + ?4, warnings = warnings + ?5, transactions_read = ?6,
                     status = CASE WHEN ?7 THEN 'done' ELSE status END,
                     ended_at = CASE WHEN ?7 THEN ?8 ELSE ended_at END
                 WHERE id = ?1",
                params![
                    run_id,
                    out.new_lines,
                    out.updated_lines,
                    out.statements,
                    batch.warnings.len() as u64 + out.changed_amounts + out.unbalanced_statements,
                    batch.transactions_read,
                    out.done,
                    at
                ],
            )?;
            tx.execute(
                "UPDATE link_locks SET heartbeat_at = ?2 WHERE link_id = ?1",
                params![link_id, at],
            )?;
            Ok(out)
        };
        let out = inner().map_err(|e| ErpError::db(&path, e))?;
        tx.commit().map_err(|e| ErpError::db(&path, e))?;
        self.after_commit(batch);
        Ok(out)
    }

    /// Ask the background checkpointer to run once enough has been committed.
    fn after_commit(&mut self, batch: &SyncBatch) {
        // Rows are about the raw JSON plus ~500 bytes of columns and index entries.
        let committed = batch
            .lines
            .iter()
            .chain(&batch.updated_lines)
            .map(|l| l.raw_json.len() + 512)
            .sum::<usize>();
        self.checkpoints.committed(&self.path, committed);
    }

    /// Record a failed sync: the run ends in error, the account says why; the cursor is dropped so
    /// the next sync starts afresh (lines already committed stay, and duplicates are skipped).
    pub fn fail_run(
        &mut self,
        account_id: i64,
        run_id: i64,
        status: AccountStatus,
        message: &str,
    ) -> Result<(), ErpError> {
        let path = self.path.clone();
        let at = stamp(now());
        let tx = self.immediate()?;
        let inner = || -> rusqlite::Result<()> {
            tx.execute(
                "UPDATE sync_runs SET status = 'error', ended_at = ?2, error = ?3 WHERE id = ?1",
                params![run_id, at, message],
            )?;
            tx.execute(
                "UPDATE online_accounts SET status = ?2, message = ?3, sync_cursor = NULL, sync_cursor_at = NULL,
                     sync_run_id = NULL WHERE id = ?1",
                params![account_id, status, message],
            )?;
            Ok(())
        };
        inner().map_err(|e| ErpError::db(&path, e))?;
        tx.commit().map_err(|e| ErpError::db(&path, e))?;
        Ok(())
    }
}

/// Keys of the statements a sync touched (per connection: a sync resumed by another process
/// checks only what it touched itself).
const TOUCHED_STATEMENTS: &str = "CREATE TEMP TABLE IF NOT EXISTS touched_statements (
    journal_id INTEGER NOT NULL, key TEXT NOT NULL, PRIMARY KEY (journal_id, key))";
/// At the end of a sync: each statement it touched must move by the sum of the lines stored
/// under it (a provider counting a line the ERP did not keep would break the books silently).
/// Each one that does not is recorded as a warning; returns how many.
fn check_touched_statements(
    tx: &Transaction<'_>,
    account: &OnlineAccount,
    run_id: i64,
    at: &str,
) -> rusqlite::Result<u64> {
    tx.execute_batch(TOUCHED_STATEMENTS)?;
    let touched: Vec<(String, String, String)> = tx
        .prepare_cached(
            "SELECT s.key, s.balance_start, s.balance_end FROM statements s
             JOIN temp.touched_statements t ON t.journal_id = s.journal_id AND t.key = s.key
             WHERE s.journal_id = ?1 ORDER BY s.date_to, s.key",
        )?
        .query_map(params![account.journal_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut amounts = tx.prepare_cached(
        "SELECT amount FROM statement_lines WHERE journal_id = ?1 AND statement_key = ?2",
    )?;
    let mut unbalanced = 0;
    for (key, start, end) in touched {
        let lines: Vec<String> = amounts
            .query_map(params![account.journal_id, key], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let total = money::sum(lines.iter().map(String::as_str));
        let moved = money::parse(&end)
            .zip(money::parse(&start))
            .and_then(|(e, s)| e.checked_sub(s));
        let gap = total.zip(moved).and_then(|(t, m)| m.checked_sub(t));
        if gap.is_some_and(|g| g.is_zero()) {
            continue;
        }
        let message = format!(
            "statement {key} moves from {start} to {end}, but the {} lines stored under it sum \
             to {}: {} is not explained by stored lines (a transaction the bank listed twice \
             or changed?); check the statement against the bank's before reconciling it",
            lines.len(),
            total.map_or_else(|| "more than the books can hold".into(), money::format),
            gap.map_or_else(|| "the difference".into(), money::format),
        );
        tx.execute(
            "INSERT INTO sync_warnings (sync_run_id, online_account_id, kind, message, created_at)
             VALUES (?1, ?2, 'balance-gap', ?3, ?4)",
            params![run_id, account.id, message, at],
        )?;
        unbalanced += 1;
    }
    tx.execute(
        "DELETE FROM temp.touched_statements WHERE journal_id = ?1",
        params![account.journal_id],
    )?;
    Ok(unbalanced)
}
