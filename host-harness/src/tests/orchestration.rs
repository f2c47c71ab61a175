//! Orchestration and database tests with a scripted provider (no wasm): batches committed with
//! their cursor, resume after a crash, dedup, isolation, locks, bad batches.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::fixtures::{account, batch, institution, line, page_index, statement, temp_db};
use crate::erp::errors::{Context, ErpError};
use crate::erp::provider::{Provider, ProviderFactory};
use crate::erp::store::{Db, process_identity};
use crate::erp::sync::{self, Quiet, SyncOptions};
use crate::runtime::types::*;

/// Per provider account: the batches of one sync, indexed by cursor `page-N`; or an error.
#[derive(Default)]
pub struct Script {
    pub pages: BTreeMap<String, Vec<SyncBatch>>,
    pub fail: BTreeMap<String, ProviderError>,
    pub calls: Vec<SyncRequest>,
    /// Runs at each sync call, before it answers (another process acting meanwhile).
    pub meanwhile: Option<Box<dyn FnMut()>>,
}

#[derive(Clone, Default)]
pub struct FakeFactory(pub Rc<RefCell<Script>>);

struct FakeProvider(Rc<RefCell<Script>>, Context);

impl ProviderFactory for FakeFactory {
    fn provider_id(&self) -> String {
        "fake".into()
    }
    fn session(&self, _connection_id: &str) -> Result<Box<dyn Provider>, ErpError> {
        Ok(Box::new(FakeProvider(self.0.clone(), Context::default())))
    }
}

impl Provider for FakeProvider {
    fn list_institutions(&mut self, _: &InstitutionFilter) -> Result<Vec<Institution>, ErpError> {
        Ok(vec![institution("inst-1")])
    }
    fn begin_connect(
        &mut self,
        _: &str,
        _: &str,
    ) -> Result<crate::runtime::types::ConnectStart, ErpError> {
        unimplemented!()
    }
    fn complete_connect(&mut self, _: &str) -> Result<Connection, ErpError> {
        unimplemented!()
    }
    fn list_accounts(&mut self, _: Option<&str>) -> Result<Vec<Account>, ErpError> {
        Ok(vec![])
    }
    fn sync(&mut self, request: &SyncRequest) -> Result<SyncBatch, ErpError> {
        let mut s = self.0.borrow_mut();
        s.calls.push(request.clone());
        if let Some(f) = s.meanwhile.as_mut() {
            f();
        }
        if let Some(e) = s.fail.get(&request.account_id) {
            return Err(ErpError::provider(e.clone(), self.1.clone()));
        }
        Ok(s.pages[&request.account_id][page_index(request)].clone())
    }
    fn request_reauthorization(&mut self, _: &str, _: &str) -> Result<String, ErpError> {
        unimplemented!()
    }
    fn disconnect(&mut self) -> Result<(), ErpError> {
        Ok(())
    }
    fn set_context(&mut self, context: Context) {
        self.1 = context;
    }
}

/// A link with the given accounts (provider ids and IBANs).
fn connect(db: &mut Db, accounts: &[(&str, &str)]) -> i64 {
    let connection = Connection {
        organization_id: "org".into(),
        organization_name: Some("Org".into()),
        institution: institution("inst-1"),
        accounts: accounts
            .iter()
            .map(|(id, iban)| account(id, iban))
            .collect(),
        authorized_account_count: accounts.len() as u32 + 2,
    };
    db.save_connection(
        None,
        &crate::erp::connect::new_connection_id(),
        "fake",
        &connection,
    )
    .unwrap()
    .0
}

/// Two batches for account `a`: 3 lines over two days, then 2 more; balances chain.
fn two_batches() -> Vec<SyncBatch> {
    vec![
        batch(
            vec![
                line("t5", "2026-11-24", "-10.25"),
                line("t4", "2026-11-24", "0.25"),
                line("t3", "2026-11-23", "100"),
            ],
            vec![statement("2026-11-24", "1010.00", "1000.00")],
            SyncProgress::More("page-1".into()),
        ),
        batch(
            vec![
                line("t2", "2026-11-23", "-0.10"),
                line("t1", "2026-11-22", "5.05"),
            ],
            vec![
                statement("2026-11-23", "910.10", "1010.00"),
                statement("2026-11-22", "905.05", "910.10"),
            ],
            SyncProgress::Done("state-1".into()),
        ),
    ]
}

fn opts() -> SyncOptions {
    SyncOptions {
        max_lines: 3,
        refresh_hours: 12,
        ..SyncOptions::default()
    }
}

#[test]
fn sync_commits_lines_statements_and_state_and_twice_adds_nothing() {
    let (_dir, mut db) = temp_db();
    let link = connect(&mut db, &[("a", "BE68539007547034")]);
    let host = FakeFactory::default();
    host.0.borrow_mut().pages.insert("a".into(), two_batches());
    let report = sync::run(&mut db, &host, &opts(), &mut Quiet).unwrap();
    assert_eq!(report.new_lines(), 5);
    assert_eq!(report.accounts[0].statements, 3);
    assert!(!report.failed());
    let statements = db.statements(1).unwrap();
    assert_eq!(statements.len(), 3);
    assert!(
        statements.iter().all(|s| s.difference == "0.00"),
        "{statements:#?}"
    );
    assert_eq!(statements[1].lines_total, "99.90");
    let acc = db.account("a").unwrap();
    assert_eq!(acc.sync_state.as_deref(), Some("state-1"));
    assert_eq!(acc.sync_cursor, None);
    assert_eq!(acc.status.as_str(), "ok");
    let l = db.link(link).unwrap();
    assert!(l.next_refresh.is_some() && l.last_refresh.is_some());

    let report = sync::run(&mut db, &host, &opts(), &mut Quiet).unwrap();
    assert_eq!(report.new_lines(), 0, "the same lines again add nothing");
    assert_eq!(db.line_count().unwrap(), 5);
    // The second sync hands the provider the state of the first.
    let calls = &host.0.borrow().calls;
    assert_eq!(calls[2].state.as_deref(), Some("state-1"));
    assert_eq!(calls[2].cursor, None);
}

#[test]
fn an_interrupted_sync_resumes_from_its_committed_cursor() {
    let (_dir, mut db) = temp_db();
    connect(&mut db, &[("a", "BE68539007547034")]);
    let pages = two_batches();
    // A process committed the first batch, then died.
    let acc = db.account("a").unwrap();
    let resume = db.begin_run(&acc).unwrap();
    assert_eq!(resume.cursor, None);
    db.apply_batch(&acc, resume.run_id, acc.link_id, &pages[0])
        .unwrap();
    let host = FakeFactory::default();
    host.0.borrow_mut().pages.insert("a".into(), pages);
    let report = sync::run(&mut db, &host, &opts(), &mut Quiet).unwrap();
    assert_eq!(
        report.new_lines(),
        2,
        "only the second batch's lines are new"
    );
    assert_eq!(host.0.borrow().calls[0].cursor.as_deref(), Some("page-1"));
    assert_eq!(db.line_count().unwrap(), 5);
    let interrupted: i64 = db
        .conn()
        .query_row(
            "SELECT COUNT(*) FROM sync_runs WHERE status = 'interrupted'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(interrupted, 1);
}

#[test]
fn one_failing_account_does_not_stop_the_others() {
    let (_dir, mut db) = temp_db();
    connect(
        &mut db,
        &[("a", "BE68539007547034"), ("b", "BE71096123456769")],
    );
    let host = FakeFactory::default();
    {
        let mut s = host.0.borrow_mut();
        s.fail.insert(
            "a".into(),
            ProviderError::AuthorizationExpired(ConsentError {
                account_id: "a".into(),
                expired_at: None,
                reauthorization_url: Some("https://renew.test/a".into()),
                advice: "Renew.".into(),
            }),
        );
        s.pages.insert("b".into(), two_batches());
    }
    let report = sync::run(&mut db, &host, &opts(), &mut Quiet).unwrap();
    assert!(report.failed());
    assert_eq!(report.accounts[0].status.as_str(), "consent-expired");
    assert!(
        report.accounts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("https://renew.test/a")
    );
    assert_eq!(report.accounts[1].new_lines, 5);
    assert_eq!(db.account("a").unwrap().status.as_str(), "consent-expired");
    assert_eq!(
        db.link(1).unwrap().state.as_str(),
        "connected",
        "a consent error is the account's, not the link's"
    );
}

#[test]
fn a_batch_with_a_bad_amount_stores_nothing() {
    let (_dir, mut db) = temp_db();
    connect(&mut db, &[("a", "BE68539007547034")]);
    let mut pages = two_batches();
    pages[0].lines[1].amount = "1e3".into();
    let host = FakeFactory::default();
    host.0.borrow_mut().pages.insert("a".into(), pages);
    let report = sync::run(&mut db, &host, &opts(), &mut Quiet).unwrap();
    assert!(
        report.accounts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("not an exact decimal")
    );
    assert_eq!(db.line_count().unwrap(), 0);
    assert!(db.statements(1).unwrap().is_empty());
    assert_eq!(db.account("a").unwrap().sync_cursor, None);
}

#[test]
fn pending_lines_are_replaced_wholesale_and_updated_lines_update() {
    let (_dir, mut db) = temp_db();
    connect(&mut db, &[("a", "BE68539007547034")]);
    let pending = |id: &str| PendingLine {
        transaction_id: id.into(),
        date: "2026-11-25".into(),
        amount: "-3.50".into(),
        currency: "EUR".into(),
        payment_reference: "card".into(),
        partner_name: None,
        raw_json: "{}".into(),
    };
    let mut first = batch(
        vec![line("t1", "2026-11-24", "1.00")],
        vec![],
        SyncProgress::Done("s".into()),
    );
    first.pending = Some(vec![pending("p1"), pending("p2")]);
    let mut second = batch(vec![], vec![], SyncProgress::Done("s2".into()));
    second.pending = Some(vec![pending("p3")]);
    let mut changed = line("t1", "2026-11-24", "1.00");
    changed.payment_reference = "corrected".into();
    second.updated_lines = vec![changed];
    let acc = db.account("a").unwrap();
    let r = db.begin_run(&acc).unwrap();
    db.apply_batch(&acc, r.run_id, 1, &first).unwrap();
    assert_eq!(db.pending(acc.id).unwrap().len(), 2);
    let r = db.begin_run(&acc).unwrap();
    let out = db.apply_batch(&acc, r.run_id, 1, &second).unwrap();
    assert_eq!(out.updated_lines, 1);
    let p = db.pending(acc.id).unwrap();
    assert_eq!(
        p.iter()
            .map(|p| p.transaction_id.as_str())
            .collect::<Vec<_>>(),
        ["p3"]
    );
    assert_eq!(db.lines(1).unwrap()[0].payment_reference, "corrected");
    assert_eq!(out.changed_amounts, 0, "same amount: no warning");
    // The bank changes the booked amount: applied, and said.
    let mut recast = line("t1", "2026-11-24", "1.10");
    recast.payment_reference = "corrected".into();
    let mut third = batch(vec![], vec![], SyncProgress::Done("s2b".into()));
    third.updated_lines = vec![recast];
    let r = db.begin_run(&acc).unwrap();
    let out = db.apply_batch(&acc, r.run_id, 1, &third).unwrap();
    assert_eq!(out.changed_amounts, 1);
    assert_eq!(db.lines(1).unwrap()[0].amount, "1.10");
    let warned = db.latest_warnings().unwrap();
    assert!(
        warned.iter().any(
            |w| w.message.contains("changed the amount of transaction t1")
                && w.message.contains("from 1.00 to 1.10")
        ),
        "{warned:?}"
    );
    // `None` leaves the pending list alone.
    let r = db.begin_run(&acc).unwrap();
    db.apply_batch(
        &acc,
        r.run_id,
        1,
        &batch(vec![], vec![], SyncProgress::Done("s3".into())),
    )
    .unwrap();
    assert_eq!(db.pending(acc.id).unwrap().len(), 1);
}

#[test]
fn journals_are_matched_by_iban_and_currency() {
    let (_dir, mut db) = temp_db();
    connect(&mut db, &[("a", "BE68539007547034")]);
    connect(
        &mut db,
        &[("a2", "BE68539007547034"), ("c", "BE71096123456769")],
    );
    let accounts = db.accounts(None).unwrap();
    assert_eq!(accounts[0].journal_id, accounts[1].journal_id);
    assert_ne!(accounts[0].journal_id, accounts[2].journal_id);
    assert_eq!(db.journals().unwrap().len(), 2);
}

#[test]
fn a_live_lock_refuses_a_dead_one_is_taken_over() {
    let (_dir, mut db) = temp_db();
    let link = connect(&mut db, &[("a", "BE68539007547034")]);
    // pid 1 always lives: a lock held by it refuses us.
    let holder = process_identity(1).expect("pid 1 exists");
    let fresh = crate::erp::clock::stamp(crate::erp::clock::now());
    db.conn()
        .execute(
            "INSERT INTO link_locks (link_id, holder, pid, acquired_at, heartbeat_at) VALUES (?1, ?2, 1, ?3, ?3)",
            rusqlite::params![link, holder, fresh],
        )
        .unwrap();
    let e = db.acquire_lock(link).unwrap_err();
    assert!(matches!(e, ErpError::Locked { pid: 1, .. }), "{e}");
    assert_eq!(e.exit_code(), 3);
    let host = FakeFactory::default();
    let report = sync::run(&mut db, &host, &opts(), &mut Quiet).unwrap();
    assert!(report.accounts.is_empty() && report.locked.is_some());
    // The same pid recycled by another process (different start time) is a dead holder.
    db.conn()
        .execute(
            "UPDATE link_locks SET holder = 'pid:1:0' WHERE link_id = ?1",
            [link],
        )
        .unwrap();
    db.acquire_lock(link).unwrap();
    db.release_lock(link).unwrap();
    let left: i64 = db
        .conn()
        .query_row("SELECT COUNT(*) FROM link_locks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn bad_arguments_are_refused_before_anything_runs() {
    let (_dir, mut db) = temp_db();
    connect(&mut db, &[("a", "BE68539007547034")]);
    let host = FakeFactory::default();
    let tomorrow = crate::erp::clock::now().date_naive() + chrono::TimeDelta::days(1);
    let e = sync::run(
        &mut db,
        &host,
        &SyncOptions {
            since: Some(tomorrow),
            ..opts()
        },
        &mut Quiet,
    )
    .unwrap_err();
    assert!(e.to_string().contains("in the future"), "{e}");
    for bad in [
        SyncOptions {
            link: Some(9),
            ..opts()
        },
        SyncOptions {
            account: Some("nope".into()),
            ..opts()
        },
    ] {
        let e = sync::run(&mut db, &host, &bad, &mut Quiet).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");
    }
    assert!(host.0.borrow().calls.is_empty());
    let runs: i64 = db
        .conn()
        .query_row("SELECT COUNT(*) FROM sync_runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(runs, 0);
}

#[test]
fn due_links_wait_for_their_next_refresh() {
    let (_dir, mut db) = temp_db();
    connect(&mut db, &[("a", "BE68539007547034")]);
    let host = FakeFactory::default();
    host.0.borrow_mut().pages.insert("a".into(), two_batches());
    let due = SyncOptions {
        due: true,
        ..opts()
    };
    assert_eq!(
        sync::run(&mut db, &host, &due, &mut Quiet)
            .unwrap()
            .accounts
            .len(),
        1,
        "never synced: due"
    );
    assert_eq!(
        sync::run(&mut db, &host, &due, &mut Quiet)
            .unwrap()
            .accounts
            .len(),
        0,
        "next refresh in 12 h"
    );
    db.set_auto_sync(1, true).unwrap();
    db.conn()
        .execute("UPDATE links SET next_refresh = '2000-01-01T00:00:00Z'", [])
        .unwrap();
    assert_eq!(
        sync::run(&mut db, &host, &due, &mut Quiet)
            .unwrap()
            .accounts
            .len(),
        1
    );
}

#[test]
fn migrations_are_versioned_and_reopen_cleanly() {
    let (dir, db) = temp_db();
    let v: i64 = db
        .conn()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, 3);
    drop(db);
    let db = Db::open(&dir.path().join("erp.sqlite")).unwrap();
    db.conn().pragma_update(None, "user_version", 99).unwrap();
    drop(db);
    let e = Db::open(&dir.path().join("erp.sqlite")).err().unwrap();
    assert!(e.to_string().contains("newer"), "{e}");
    assert!(Db::open_existing(&dir.path().join("missing.sqlite")).is_err());
    assert!(!dir.path().join("missing.sqlite").exists());
}

#[test]
fn an_amount_the_books_cannot_sum_is_refused_naming_the_transaction() {
    // Issue 11 item 10: same-day lines of ±5e28 were stored, then `erp statements` panicked.
    let (_dir, mut db) = temp_db();
    connect(&mut db, &[("a", "BE68539007547034")]);
    let mut pages = two_batches();
    pages[0].lines[1].amount = "50000000000000000000000000000".into();
    let host = FakeFactory::default();
    host.0.borrow_mut().pages.insert("a".into(), pages);
    let report = sync::run(&mut db, &host, &opts(), &mut Quiet).unwrap();
    let error = report.accounts[0].error.as_deref().unwrap();
    assert!(
        error.contains("t4") && error.contains("beyond what the books can sum"),
        "{error}"
    );
    assert_eq!(db.line_count().unwrap(), 0);
}

#[test]
fn statements_of_amounts_past_the_bound_do_not_panic() {
    // Issue 11 item 10: lines stored before the bound existed still make a readable report.
    let (_dir, mut db) = temp_db();
    connect(&mut db, &[("a", "BE68539007547034")]);
    let host = FakeFactory::default();
    host.0.borrow_mut().pages.insert("a".into(), two_batches());
    sync::run(&mut db, &host, &opts(), &mut Quiet).unwrap();
    db.conn()
        .execute(
            "UPDATE statement_lines SET amount = '50000000000000000000000000000'
             WHERE transaction_id IN ('t5', 't4')",
            [],
        )
        .unwrap();
    let statements = db.statements(1).unwrap();
    let s = statements.iter().find(|s| s.key == "2026-11-24").unwrap();
    assert_eq!((s.lines_total.as_str(), s.difference.as_str()), ("?", "?"));
}

#[test]
fn a_statement_its_stored_lines_do_not_explain_is_a_warning_on_the_account() {
    // Issue 11 item 7 (ERP side): the provider counted t4 twice (once with another amount in
    // the next batch); the ERP keeps the first, so the statement no longer adds up.
    let (_dir, mut db) = temp_db();
    connect(&mut db, &[("a", "BE68539007547034")]);
    let mut pages = two_batches();
    pages[1].lines.push(line("t4", "2026-11-24", "-987700"));
    pages[1]
        .statements
        .push(statement("2026-11-24", "988710.00", "1000.00"));
    let host = FakeFactory::default();
    host.0.borrow_mut().pages.insert("a".into(), pages);
    let report = sync::run(&mut db, &host, &opts(), &mut Quiet).unwrap();
    assert!(!report.failed());
    let acc = db.account("a").unwrap();
    assert_eq!(acc.status.as_str(), "warning");
    let warnings = db.latest_warnings().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0].message;
    assert!(
        w.contains("statement 2026-11-24") && w.contains("987700"),
        "{w}"
    );
    // Balanced statements stay quiet.
    let (_dir, mut db) = temp_db();
    connect(&mut db, &[("a", "BE68539007547034")]);
    let host = FakeFactory::default();
    host.0.borrow_mut().pages.insert("a".into(), two_batches());
    sync::run(&mut db, &host, &opts(), &mut Quiet).unwrap();
    assert!(db.latest_warnings().unwrap().is_empty());
    assert_eq!(db.account("a").unwrap().status.as_str(), "ok");
}

#[test]
fn a_disconnect_during_a_sync_is_not_undone_when_it_ends() {
    let (dir, mut db) = temp_db();
    let link = connect(&mut db, &[("a", "BE68539007547034")]);
    let host = FakeFactory::default();
    {
        let mut s = host.0.borrow_mut();
        // The user disconnects from another terminal while the sync runs; the provider then
        // finds its authorisation gone.
        let path = dir.path().join("erp.sqlite");
        s.meanwhile = Some(Box::new(move || {
            Db::open(&path)
                .unwrap()
                .disconnect_link(link, "fake")
                .unwrap();
        }));
        s.fail.insert(
            "a".into(),
            ProviderError::ReconnectRequired("the refresh token was revoked".into()),
        );
    }
    let report = sync::run(&mut db, &host, &opts(), &mut Quiet).unwrap();
    assert!(report.failed());
    let l = db.link(link).unwrap();
    assert_eq!(l.state.as_str(), "disconnected");
    assert_eq!(l.message.as_deref(), Some("disconnected by the user"));
    assert!(!l.auto_sync);
    // Later syncs leave the disconnected link out instead of failing on it.
    let report = sync::run(&mut db, &host, &opts(), &mut Quiet).unwrap();
    assert!(report.accounts.is_empty() && !report.failed());
}

#[test]
fn a_failed_sync_is_retried_sooner_with_backoff() {
    let (_dir, mut db) = temp_db();
    let link = connect(&mut db, &[("a", "BE68539007547034")]);
    let host = FakeFactory::default();
    host.0.borrow_mut().fail.insert(
        "a".into(),
        ProviderError::Transport("connection refused".into()),
    );
    let interval = |db: &Db| {
        let l = db.link(link).unwrap();
        let at = |s: &Option<String>| {
            chrono::DateTime::parse_from_rfc3339(s.as_deref().unwrap()).unwrap()
        };
        (
            (at(&l.next_refresh) - at(&l.last_refresh)).num_minutes(),
            l.sync_failures,
        )
    };
    let mut seen = Vec::new();
    for _ in 0..7 {
        assert!(
            sync::run(&mut db, &host, &opts(), &mut Quiet)
                .unwrap()
                .failed()
        );
        seen.push(interval(&db));
    }
    assert_eq!(
        seen,
        vec![
            (15, 1),
            (30, 2),
            (60, 3),
            (120, 4),
            (240, 5),
            (480, 6),
            (720, 7)
        ],
        "15 minutes doubling, never beyond the 12-hour interval"
    );
    // Past its retry time a failed link is due again.
    db.conn()
        .execute("UPDATE links SET next_refresh = '2000-01-01T00:00:00Z'", [])
        .unwrap();
    let due = SyncOptions {
        due: true,
        ..opts()
    };
    host.0.borrow_mut().fail.clear();
    host.0.borrow_mut().pages.insert("a".into(), two_batches());
    let report = sync::run(&mut db, &host, &due, &mut Quiet).unwrap();
    assert_eq!(report.accounts.len(), 1);
    assert!(!report.failed());
    assert_eq!(interval(&db), (720, 0), "a clean sync resets the count");
}
