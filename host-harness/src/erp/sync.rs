//! Sync orchestration: which links and accounts to run, one lock per link, each batch committed
//! with its cursor, and one account's failure never stopping the others.

use chrono::{NaiveDate, TimeDelta};
use serde::Serialize;

use super::db::{Db, Link, OnlineAccount, now, warning_kind_name};
use super::errors::{Context, ErpError};
use super::provider::{Provider, ProviderHost};
use crate::runtime::types::SyncRequest;

#[derive(Clone, Debug, Default)]
pub struct SyncOptions {
    pub link: Option<i64>,
    /// ERP id or provider id of one account.
    pub account: Option<String>,
    pub due: bool,
    pub since: Option<NaiveDate>,
    pub customer_ip: Option<String>,
    pub max_lines: u32,
    pub refresh_hours: u32,
}

/// What happened to one account.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AccountOutcome {
    pub link_id: i64,
    pub account_id: i64,
    pub reference: String,
    pub journal: String,
    pub new_lines: u64,
    pub updated_lines: u64,
    pub statements: u64,
    pub transactions_read: u64,
    pub batches: u64,
    pub warnings: Vec<(String, String)>,
    pub error: Option<String>,
    pub status: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SyncReport {
    pub accounts: Vec<AccountOutcome>,
    /// Links not run at all, with why (another process holds the lock, ...).
    pub skipped_links: Vec<(i64, String)>,
    /// The first lock met: (link, pid, since).
    #[serde(skip)]
    pub locked: Option<(i64, i64, String)>,
}

impl SyncReport {
    pub fn failed(&self) -> bool {
        !self.skipped_links.is_empty() || self.accounts.iter().any(|a| a.error.is_some())
    }
    pub fn new_lines(&self) -> u64 {
        self.accounts.iter().map(|a| a.new_lines).sum()
    }
}

/// Hears about progress, for progress bars.
pub trait Observer {
    fn account_started(&mut self, _account: &OnlineAccount) {}
    fn batch(&mut self, _account: &OnlineAccount, _transactions_read: u64, _new_lines: u64) {}
    fn account_finished(&mut self, _outcome: &AccountOutcome) {}
}

pub struct Quiet;
impl Observer for Quiet {}

/// Check a --since date: a day in the future is refused (nothing to read there).
pub fn check_since(since: NaiveDate) -> Result<(), ErpError> {
    let today = now().date_naive();
    if since > today {
        return Err(ErpError::Usage(format!(
            "--since {since} is in the future (today is {today}); give a past date to read back to"
        )));
    }
    Ok(())
}

/// Resolve which links (and optionally which single account) a sync covers, before touching
/// anything, so bad arguments change nothing.
pub fn plan(db: &Db, opts: &SyncOptions) -> Result<Vec<(Link, Option<i64>)>, ErpError> {
    if let Some(since) = opts.since {
        check_since(since)?;
    }
    if let Some(key) = &opts.account {
        let account = db.account(key)?;
        if let Some(l) = opts.link
            && l != account.link_id
        {
            return Err(ErpError::Usage(format!(
                "account {key} belongs to link {}, not link {l}",
                account.link_id
            )));
        }
        let link = db.link(account.link_id)?;
        if link.state == "disconnected" {
            return Err(ErpError::Usage(format!(
                "link {} is disconnected; connect again with `erp connect --institution {}`",
                link.id, link.institution_id
            )));
        }
        return Ok(vec![(link, Some(account.id))]);
    }
    if let Some(l) = opts.link {
        let link = db.link(l)?;
        if link.state == "disconnected" {
            return Err(ErpError::Usage(format!(
                "link {l} is disconnected; connect again with `erp connect --institution {}`",
                link.institution_id
            )));
        }
        return Ok(vec![(link, None)]);
    }
    let links = if opts.due {
        db.due_links(now())?
    } else {
        db.links()?
    };
    Ok(links
        .into_iter()
        .filter(|l| l.state != "disconnected")
        .map(|l| (l, None))
        .collect())
}

pub fn run(
    db: &mut Db,
    host: &dyn ProviderHost,
    opts: &SyncOptions,
    observer: &mut dyn Observer,
) -> Result<SyncReport, ErpError> {
    let plan = plan(db, opts)?;
    let mut report = SyncReport::default();
    for (link, only) in plan {
        match db.acquire_lock(link.id) {
            Ok(()) => {}
            Err(e @ ErpError::Locked { .. }) => {
                report.skipped_links.push((link.id, e.to_string()));
                if let ErpError::Locked { link, pid, since } = e {
                    report.locked.get_or_insert((link, pid, since));
                }
                continue;
            }
            Err(e) => return Err(e),
        }
        let result = sync_link(db, host, &link, only, opts, observer, &mut report);
        let released = db.release_lock(link.id);
        result?;
        released?;
    }
    Ok(report)
}

fn sync_link(
    db: &mut Db,
    host: &dyn ProviderHost,
    link: &Link,
    only: Option<i64>,
    opts: &SyncOptions,
    observer: &mut dyn Observer,
    report: &mut SyncReport,
) -> Result<(), ErpError> {
    let accounts: Vec<OnlineAccount> = db
        .accounts(Some(link.id))?
        .into_iter()
        .filter(|a| only.is_none_or(|id| id == a.id))
        .collect();
    let mut session: Option<Box<dyn Provider>> = None;
    let mut link_error: Option<String> = None;
    for account in &accounts {
        observer.account_started(account);
        // Statements touched count once each per run, not once per batch re-emission.
        let mut outcome = AccountOutcome {
            link_id: link.id,
            account_id: account.id,
            reference: account.reference.clone(),
            journal: account.journal_code.clone(),
            ..AccountOutcome::default()
        };
        let result = (|| -> Result<(), ErpError> {
            if session.is_none() {
                session = Some(host.session(&link.connection_id)?);
            }
            let provider = session.as_mut().expect("set above");
            provider.set_context(Context {
                link: Some(link.id),
                account: Some(account.id),
            });
            sync_account(db, provider.as_mut(), account, opts, observer, &mut outcome)
        })();
        match result {
            Ok(()) => {
                outcome.status = if outcome.warnings.is_empty() {
                    "ok".into()
                } else {
                    "warning".into()
                }
            }
            Err(e) => {
                if matches!(e, ErpError::Call(_)) {
                    // The job's instance is poisoned: the next account gets a fresh one.
                    session = None;
                }
                if matches!(e, ErpError::Db { .. }) {
                    return Err(e);
                }
                let message = e.to_string();
                outcome.status = e.account_status().to_owned();
                if e.is_link_wide() {
                    link_error = Some(message.clone());
                }
                outcome.error = Some(message);
            }
        }
        observer.account_finished(&outcome);
        report.accounts.push(outcome);
    }
    let state = if link_error.is_some() {
        "error"
    } else {
        "connected"
    };
    db.finish_link_sync(
        link.id,
        now(),
        TimeDelta::hours(i64::from(opts.refresh_hours.max(1))),
        state,
        link_error.as_deref(),
    )?;
    Ok(())
}

fn sync_account(
    db: &mut Db,
    provider: &mut dyn Provider,
    account: &OnlineAccount,
    opts: &SyncOptions,
    observer: &mut dyn Observer,
    outcome: &mut AccountOutcome,
) -> Result<(), ErpError> {
    let resume = db.begin_run(account)?;
    let mut cursor = resume.cursor.clone();
    let mut statement_keys = std::collections::BTreeSet::new();
    loop {
        let request = SyncRequest {
            account_id: account.provider_account_id.clone(),
            cursor: cursor.clone(),
            state: resume.state.clone(),
            customer_ip: opts.customer_ip.clone(),
            since: opts.since.map(|d| d.format("%Y-%m-%d").to_string()),
            max_lines: opts.max_lines.max(1),
        };
        let batch = match provider.sync(&request) {
            Ok(b) => b,
            Err(e) => {
                db.fail_run(
                    account.id,
                    resume.run_id,
                    e.account_status(),
                    &e.to_string(),
                )?;
                return Err(e);
            }
        };
        let applied = match db.apply_batch(account, resume.run_id, account.link_id, &batch) {
            Ok(a) => a,
            Err(e) => {
                if !matches!(e, ErpError::Db { .. }) {
                    db.fail_run(account.id, resume.run_id, "error", &e.to_string())?;
                }
                return Err(e);
            }
        };
        outcome.batches += 1;
        outcome.new_lines += applied.new_lines;
        outcome.updated_lines += applied.updated_lines;
        statement_keys.extend(batch.statements.iter().map(|s| s.key.clone()));
        outcome.statements = statement_keys.len() as u64;
        let _ = applied.statements;
        outcome.transactions_read = batch.transactions_read;
        outcome.warnings.extend(
            batch
                .warnings
                .iter()
                .map(|w| (warning_kind_name(w.kind).to_owned(), w.message.clone())),
        );
        observer.batch(account, batch.transactions_read, outcome.new_lines);
        match batch.progress {
            crate::runtime::types::SyncProgress::More(next) => {
                if cursor.as_deref() == Some(next.as_str()) {
                    // A provider that hands back the same cursor would loop forever.
                    let e = ErpError::BadBatch(format!(
                        "the provider repeated its cursor after {} batches",
                        outcome.batches
                    ));
                    db.fail_run(account.id, resume.run_id, "error", &e.to_string())?;
                    return Err(e);
                }
                cursor = Some(next);
            }
            crate::runtime::types::SyncProgress::Done(_) => break,
        }
    }
    Ok(())
}
