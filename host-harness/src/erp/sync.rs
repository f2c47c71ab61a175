//! Sync orchestration: which links and accounts to run, one lock per link, each batch committed
//! with its cursor, and one account's failure never stopping the others.

use chrono::{NaiveDate, TimeDelta};
use serde::Serialize;

use super::clock::now;
use super::errors::{Context, ErpError};
use super::names::{AccountStatus, LinkState, warning_kind_name};
use super::provider::{Provider, ProviderFactory};
use super::store::{BatchOutcome, Db, Link, OnlineAccount};
use crate::runtime::types::{SyncBatch, SyncProgress, SyncRequest};

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
    pub status: AccountStatus,
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
        if link.state == LinkState::Disconnected {
            return Err(ErpError::Usage(format!(
                "link {} is disconnected; connect again with `erp connect --institution {}`",
                link.id, link.institution_id
            )));
        }
        return Ok(vec![(link, Some(account.id))]);
    }
    if let Some(l) = opts.link {
        let link = db.link(l)?;
        if link.state == LinkState::Disconnected {
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
        .filter(|l| l.state != LinkState::Disconnected)
        .map(|l| (l, None))
        .collect())
}

pub fn run(
    db: &mut Db,
    providers: &dyn ProviderFactory,
    opts: &SyncOptions,
    observer: &mut dyn Observer,
) -> Result<SyncReport, ErpError> {
    let plan = plan(db, opts)?;
    run_in_order(db, providers, plan, opts, observer)
}

/// The links of a plan one after the other, on this thread.
fn run_in_order(
    db: &mut Db,
    providers: &dyn ProviderFactory,
    plan: Vec<(Link, Option<i64>)>,
    opts: &SyncOptions,
    observer: &mut dyn Observer,
) -> Result<SyncReport, ErpError> {
    let mut report = SyncReport::default();
    for (link, only) in plan {
        run_link(db, providers, &link, only, opts, observer)?.merge_into(&mut report);
    }
    Ok(report)
}

/// Most links synchronised at once: beyond this, more threads only queue on SQLite's write
/// lock and the bank's rate limits.
pub const MAX_JOBS: usize = 8;

/// The default `--jobs`: one per CPU, at most [`MAX_JOBS`].
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, MAX_JOBS)
}

/// [`run`] with up to `jobs` links at a time. Each worker thread has its own database connection
/// and its own provider sessions; the per-link lock is taken as in [`run`]. The report lists the
/// links in the order of the plan whatever order they finish in, and observer events are
/// serialised (they may interleave between links). A database error stops the handing out of
/// links and is returned once the workers have finished, the first in plan order.
pub fn run_jobs(
    db: &mut Db,
    providers: &(dyn ProviderFactory + Sync),
    opts: &SyncOptions,
    jobs: usize,
    observer: &mut (dyn Observer + Send),
) -> Result<SyncReport, ErpError> {
    let plan = plan(db, opts)?;
    let workers = jobs.clamp(1, MAX_JOBS).min(plan.len());
    if workers <= 1 {
        return run_in_order(db, providers, plan, opts, observer);
    }
    let path = db.path().to_owned();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let shared = std::sync::Mutex::new(observer);
    let mut results: Vec<Option<Result<LinkReport, ErpError>>> =
        (0..plan.len()).map(|_| None).collect();
    let done: Vec<Vec<(usize, Result<LinkReport, ErpError>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    use std::sync::atomic::Ordering::SeqCst;
                    let mut out = Vec::new();
                    let mut db = match Db::open(&path) {
                        Ok(db) => db,
                        Err(e) => {
                            stop.store(true, SeqCst);
                            out.push((usize::MAX, Err(e)));
                            return out;
                        }
                    };
                    let mut observer = Serialised(&shared);
                    while !stop.load(SeqCst) {
                        let i = next.fetch_add(1, SeqCst);
                        let Some((link, only)) = plan.get(i) else {
                            break;
                        };
                        let r = run_link(&mut db, providers, link, *only, opts, &mut observer);
                        if r.is_err() {
                            stop.store(true, SeqCst);
                        }
                        out.push((i, r));
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    vec![(
                        usize::MAX,
                        Err(ErpError::ThreadStopped {
                            thread: "a sync worker",
                        }),
                    )]
                })
            })
            .collect()
    });
    let mut report = SyncReport::default();
    let mut first_error = None;
    for (i, r) in done.into_iter().flatten() {
        match results.get_mut(i) {
            Some(slot) => *slot = Some(r),
            None => {
                if let Err(e) = r {
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    for r in results.into_iter().flatten() {
        match r {
            Ok(l) => l.merge_into(&mut report),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Forwards a worker's progress to the caller's observer, one event at a time.
struct Serialised<'a, 'o>(&'a std::sync::Mutex<&'o mut (dyn Observer + Send)>);

impl Observer for Serialised<'_, '_> {
    fn account_started(&mut self, account: &OnlineAccount) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .account_started(account);
    }
    fn batch(&mut self, account: &OnlineAccount, transactions_read: u64, new_lines: u64) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).batch(
            account,
            transactions_read,
            new_lines,
        );
    }
    fn account_finished(&mut self, outcome: &AccountOutcome) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .account_finished(outcome);
    }
}

/// What one link's sync adds to the report.
#[derive(Default)]
struct LinkReport {
    accounts: Vec<AccountOutcome>,
    skipped: Option<(i64, String)>,
    locked: Option<(i64, i64, String)>,
}

impl LinkReport {
    fn merge_into(self, report: &mut SyncReport) {
        report.accounts.extend(self.accounts);
        report.skipped_links.extend(self.skipped);
        if report.locked.is_none() {
            report.locked = self.locked;
        }
    }
}

/// One link under its lock; a link another process holds is skipped, not an error.
fn run_link(
    db: &mut Db,
    providers: &dyn ProviderFactory,
    link: &Link,
    only: Option<i64>,
    opts: &SyncOptions,
    observer: &mut dyn Observer,
) -> Result<LinkReport, ErpError> {
    let mut out = LinkReport::default();
    match db.acquire_lock(link.id) {
        Ok(()) => {}
        Err(e @ ErpError::Locked { .. }) => {
            out.skipped = Some((link.id, e.to_string()));
            if let ErpError::Locked { link, pid, since } = e {
                out.locked = Some((link, pid, since));
            }
            return Ok(out);
        }
        Err(e) => return Err(e),
    }
    let mut report = SyncReport::default();
    let result = sync_link(db, providers, link, only, opts, observer, &mut report);
    let released = db.release_lock(link.id);
    result?;
    released?;
    out.accounts = report.accounts;
    Ok(out)
}

fn sync_link(
    db: &mut Db,
    providers: &dyn ProviderFactory,
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
                session = Some(providers.session(&link.connection_id)?);
            }
            let provider = session.as_mut().expect("set above");
            provider.set_context(Context {
                link: Some(link.id),
                account: Some(account.id),
                ..Default::default()
            });
            sync_account(db, provider.as_mut(), account, opts, observer, &mut outcome)
        })();
        match result {
            Ok(()) => {
                outcome.status = if outcome.warnings.is_empty() {
                    AccountStatus::Ok
                } else {
                    AccountStatus::Warning
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
                outcome.status = e.account_status();
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
        LinkState::Error
    } else {
        LinkState::Connected
    };
    // A failed account brings the link's next try forward (with backoff), so `--due` retries it.
    let failed = report.accounts.iter().any(|a| a.error.is_some());
    db.finish_link_sync(
        link.id,
        now(),
        TimeDelta::hours(i64::from(opts.refresh_hours.max(1))),
        state,
        link_error.as_deref(),
        failed,
    )?;
    Ok(())
}

/// One account: the provider reads batch N+1 while a writer thread commits batch N (each with its
/// cursor, in order, in one transaction), so the bank's pages and the ERP's SQLite work overlap.
/// At most one batch waits between them. Whatever fails, every batch fetched before the failure
/// is committed or refused whole, and the run is closed only after the writer is done.
fn sync_account(
    db: &mut Db,
    provider: &mut dyn Provider,
    account: &OnlineAccount,
    opts: &SyncOptions,
    observer: &mut dyn Observer,
    outcome: &mut AccountOutcome,
) -> Result<(), ErpError> {
    let resume = db.begin_run(account)?;
    let run_id = resume.run_id;
    let (to_writer, batches) = std::sync::mpsc::sync_channel::<SyncBatch>(1);
    let (applied_tx, applied) =
        std::sync::mpsc::channel::<(SyncBatch, Result<BatchOutcome, ErpError>)>();
    let mut statement_keys = std::collections::BTreeSet::new();
    // A refused batch (or a database error) comes first: it concerns a batch fetched before
    // anything the provider said afterwards, as in a one-thread sync.
    let mut write_failure: Option<ErpError> = None;
    // The provider's error, or a repeated cursor.
    let mut fetch_failure: Option<ErpError> = None;
    let mut take = |batch: SyncBatch,
                    result: Result<BatchOutcome, ErpError>,
                    failure: &mut Option<ErpError>,
                    observer: &mut dyn Observer| {
        match result {
            Ok(a) => {
                outcome.batches += 1;
                outcome.new_lines += a.new_lines;
                outcome.updated_lines += a.updated_lines;
                statement_keys.extend(batch.statements.iter().map(|s| s.key.clone()));
                outcome.statements = statement_keys.len() as u64;
                outcome.transactions_read = batch.transactions_read;
                outcome.warnings.extend(
                    batch
                        .warnings
                        .iter()
                        .map(|w| (warning_kind_name(w.kind).to_owned(), w.message.clone())),
                );
                observer.batch(account, batch.transactions_read, outcome.new_lines);
            }
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    };
    let db_ref = &mut *db;
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            for batch in batches {
                let result = db_ref.apply_batch(account, run_id, account.link_id, &batch);
                let failed = result.is_err();
                if applied_tx.send((batch, result)).is_err() || failed {
                    // Nothing after a refused batch is written.
                    return;
                }
            }
        });
        let mut cursor = resume.cursor.clone();
        let mut sent = 0u64;
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
                    fetch_failure = Some(e);
                    break;
                }
            };
            let progress = batch.progress.clone();
            if to_writer.send(batch).is_err() {
                break; // The writer stopped on a refused batch: its error follows.
            }
            sent += 1;
            while let Ok((b, r)) = applied.try_recv() {
                take(b, r, &mut write_failure, observer);
            }
            if write_failure.is_some() {
                break;
            }
            match progress {
                SyncProgress::More(next) => {
                    if cursor.as_deref() == Some(next.as_str()) {
                        // A provider that hands back the same cursor would loop forever.
                        fetch_failure = Some(ErpError::BadBatch(format!(
                            "the provider repeated its cursor after {sent} batches"
                        )));
                        break;
                    }
                    cursor = Some(next);
                }
                SyncProgress::Done(_) => break,
            }
        }
        drop(to_writer);
        let joined = writer.join();
        while let Ok((b, r)) = applied.try_recv() {
            take(b, r, &mut write_failure, observer);
        }
        if joined.is_err() {
            write_failure.get_or_insert(ErpError::ThreadStopped {
                thread: "the ERP's database writer",
            });
        }
    });
    match write_failure.or(fetch_failure) {
        None => Ok(()),
        // The database itself failed: recording the failure in it would fail too.
        Some(e @ ErpError::Db { .. }) => Err(e),
        Some(e) => {
            db.fail_run(account.id, run_id, e.account_status(), &e.to_string())?;
            Err(e)
        }
    }
}
