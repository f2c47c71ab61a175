//! `sync::run_jobs`: links synchronised on several threads store exactly what one by one does,
//! report in plan order, and respect another process's link lock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::fixtures::{account, batch, institution, line, page_index, statement, temp_db};
use crate::erp::errors::{Context, ErpError};
use crate::erp::provider::{Provider, ProviderFactory};
use crate::erp::store::Db;
use crate::erp::sync::{self, Quiet, SyncOptions};
use crate::runtime::types::*;

/// A thread-safe scripted provider: per account, its batches by cursor `page-N`; records the
/// threads that opened sessions.
#[derive(Clone, Default)]
struct SharedFactory {
    pages: Arc<BTreeMap<String, Vec<SyncBatch>>>,
    threads: Arc<Mutex<BTreeSet<String>>>,
    /// When set, a session waits (up to 5 s) until this many threads have opened one, so that
    /// "every worker was used" does not depend on how fast a loaded machine starts threads.
    rendezvous: Option<usize>,
}

struct SharedProvider(Arc<BTreeMap<String, Vec<SyncBatch>>>);

impl ProviderFactory for SharedFactory {
    fn provider_id(&self) -> String {
        "fake".into()
    }
    fn session(&self, _connection_id: &str) -> Result<Box<dyn Provider>, ErpError> {
        self.threads
            .lock()
            .unwrap()
            .insert(format!("{:?}", std::thread::current().id()));
        if let Some(n) = self.rendezvous {
            let until = std::time::Instant::now() + Duration::from_secs(5);
            while self.threads.lock().unwrap().len() < n && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        Ok(Box::new(SharedProvider(self.pages.clone())))
    }
}

impl Provider for SharedProvider {
    fn list_institutions(&mut self, _: &InstitutionFilter) -> Result<Vec<Institution>, ErpError> {
        Ok(vec![])
    }
    fn begin_connect(&mut self, _: &str, _: &str) -> Result<ConnectStart, ErpError> {
        Err(ErpError::Usage("not scripted".into()))
    }
    fn complete_connect(&mut self, _: &str) -> Result<Connection, ErpError> {
        Err(ErpError::Usage("not scripted".into()))
    }
    fn list_accounts(&mut self, _: Option<&str>) -> Result<Vec<Account>, ErpError> {
        Ok(vec![])
    }
    fn sync(&mut self, request: &SyncRequest) -> Result<SyncBatch, ErpError> {
        // Slow enough that the two links overlap in time.
        std::thread::sleep(Duration::from_millis(15));
        let index = page_index(request);
        self.0[&request.account_id]
            .get(index)
            .cloned()
            .ok_or_else(|| ErpError::Usage(format!("no page {index} scripted")))
    }
    fn request_reauthorization(&mut self, _: &str, _: &str) -> Result<String, ErpError> {
        Err(ErpError::Usage("not scripted".into()))
    }
    fn disconnect(&mut self) -> Result<(), ErpError> {
        Ok(())
    }
    fn set_context(&mut self, _: Context) {}
}

/// Three batches of account `id`: 2 lines a day over three days, balances chaining.
fn batches(id: &str) -> Vec<SyncBatch> {
    let days = ["2026-11-22", "2026-11-23", "2026-11-24"];
    let mut balance = 100_i64;
    days.iter()
        .enumerate()
        .map(|(i, day)| {
            let start = balance;
            balance += 3;
            let progress = if i + 1 == days.len() {
                SyncProgress::Done(format!("state-{id}"))
            } else {
                SyncProgress::More(format!("page-{}", i + 1))
            };
            batch(
                vec![
                    line(&format!("{id}-{i}-a"), day, "1.00"),
                    line(&format!("{id}-{i}-b"), day, "2.00"),
                ],
                vec![statement(
                    day,
                    &format!("{start}.00"),
                    &format!("{balance}.00"),
                )],
                progress,
            )
        })
        .collect()
}

/// Two links of one account each.
fn two_links(db: &mut Db) -> Vec<i64> {
    [("a", "BE68539007547034"), ("b", "BE71096123456769")]
        .iter()
        .enumerate()
        .map(|(i, (id, iban))| {
            let connection = Connection {
                organization_id: "org".into(),
                organization_name: None,
                institution: institution("inst-1"),
                accounts: vec![account(id, iban)],
                authorized_account_count: 1,
            };
            db.save_connection(None, &format!("conn-{i}"), "fake", &connection)
                .unwrap()
                .0
        })
        .collect()
}

fn host() -> SharedFactory {
    SharedFactory {
        pages: Arc::new(
            ["a", "b"]
                .iter()
                .map(|id| ((*id).to_owned(), batches(id)))
                .collect(),
        ),
        threads: Default::default(),
        rendezvous: None,
    }
}

fn opts() -> SyncOptions {
    SyncOptions {
        max_lines: 2,
        refresh_hours: 12,
        ..SyncOptions::default()
    }
}

/// Everything the sync stores, without ids and times that differ between two databases.
fn content(db: &Db) -> Vec<String> {
    let mut out = Vec::new();
    for (sql, n) in [
        (
            "SELECT j.code, l.transaction_id, l.statement_key, l.amount, a.provider_account_id
             FROM statement_lines l JOIN journals j ON j.id = l.journal_id
             JOIN online_accounts a ON a.id = l.online_account_id ORDER BY 1, 2",
            5,
        ),
        (
            "SELECT j.code, s.key, s.balance_start, s.balance_end FROM statements s
             JOIN journals j ON j.id = s.journal_id ORDER BY 1, 2",
            4,
        ),
        (
            "SELECT provider_account_id, status, sync_state, sync_cursor, journal_id FROM online_accounts ORDER BY 1",
            5,
        ),
        (
            "SELECT a.provider_account_id, r.status, r.batches, r.lines_new FROM sync_runs r
             JOIN online_accounts a ON a.id = r.online_account_id ORDER BY 1, r.id",
            4,
        ),
        ("SELECT id, state FROM links ORDER BY id", 2),
        ("SELECT COUNT(*) FROM link_locks", 1),
    ] {
        let mut stmt = db.conn().prepare(sql).unwrap();
        let rows = stmt
            .query_map([], |r| {
                (0..n)
                    .map(|i| {
                        r.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map(|v| v.join("|"))
            })
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap();
        out.push(format!("{sql}: {rows:?}"));
    }
    out
}

#[test]
fn two_links_in_parallel_store_what_one_by_one_stores() {
    let (_d1, mut one) = temp_db();
    two_links(&mut one);
    let report_one = sync::run(&mut one, &host(), &opts(), &mut Quiet).unwrap();

    let (_d2, mut par) = temp_db();
    two_links(&mut par);
    let h = SharedFactory {
        rendezvous: Some(2),
        ..host()
    };
    let report_par = sync::run_jobs(&mut par, &h, &opts(), 2, &mut Quiet).unwrap();

    assert_eq!(
        h.threads.lock().unwrap().len(),
        2,
        "each link ran on a worker thread of its own"
    );
    assert_eq!(content(&one), content(&par));
    assert_eq!(par.line_count().unwrap(), 12);
    // The report keeps the plan's order.
    let order = |r: &sync::SyncReport| -> Vec<(i64, u64, String)> {
        r.accounts
            .iter()
            .map(|a| (a.link_id, a.new_lines, a.status.to_string()))
            .collect()
    };
    assert_eq!(order(&report_one), order(&report_par));
    assert_eq!(
        order(&report_par),
        vec![(1, 6, "ok".into()), (2, 6, "ok".into())]
    );

    // Twice adds nothing, in parallel too.
    let again = sync::run_jobs(&mut par, &h, &opts(), 2, &mut Quiet).unwrap();
    assert_eq!(again.new_lines(), 0);
    assert_eq!(par.line_count().unwrap(), 12);
}

#[test]
fn parallel_sync_skips_a_link_another_process_holds() {
    let (_d, mut db) = temp_db();
    let links = two_links(&mut db);
    // pid 1 always lives: its lock on the first link must be respected.
    let holder = crate::erp::store::process_identity(1).expect("pid 1 exists");
    db.conn()
        .execute(
            "INSERT INTO link_locks (link_id, holder, pid, acquired_at, heartbeat_at) VALUES (?1, ?2, 1, ?3, ?3)",
            rusqlite::params![links[0], holder, crate::erp::clock::stamp(crate::erp::clock::now())],
        )
        .unwrap();
    let report = sync::run_jobs(&mut db, &host(), &opts(), 2, &mut Quiet).unwrap();
    assert_eq!(report.skipped_links.len(), 1);
    assert_eq!(report.skipped_links[0].0, links[0]);
    assert_eq!(report.locked.as_ref().map(|l| l.0), Some(links[0]));
    assert_eq!(
        report
            .accounts
            .iter()
            .map(|a| a.link_id)
            .collect::<Vec<_>>(),
        vec![links[1]]
    );
    assert!(report.failed());
    // Only the free link's lines were stored; the held lock is left to its owner.
    assert_eq!(db.line_count().unwrap(), 6);
    let held: i64 = db
        .conn()
        .query_row("SELECT COUNT(*) FROM link_locks WHERE pid = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(held, 1);
}

#[test]
fn a_refused_batch_is_reported_before_what_the_provider_said_after_it() {
    // The provider reads page 2 (an error here) while the writer refuses page 1: as in a
    // one-thread sync, page 0 stays committed, the refusal is the account's error, no cursor.
    let (_d, mut db) = temp_db();
    two_links(&mut db);
    let mut pages = batches("a");
    pages[1].lines[0].amount = "1e3".into();
    pages.truncate(2);
    let h = SharedFactory {
        pages: Arc::new([("a".to_owned(), pages), ("b".to_owned(), batches("b"))].into()),
        ..SharedFactory::default()
    };
    let report = sync::run(&mut db, &h, &opts(), &mut Quiet).unwrap();
    let a = &report.accounts[0];
    assert!(
        a.error.as_deref().unwrap().contains("not an exact decimal"),
        "{a:?}"
    );
    assert_eq!((a.new_lines, a.batches), (2, 1));
    assert_eq!(report.accounts[1].new_lines, 6, "the other link is whole");
    assert_eq!(db.line_count().unwrap(), 8);
    let acc = db.account("a").unwrap();
    assert_eq!(acc.status.as_str(), "error");
    assert!(acc.message.unwrap().contains("not an exact decimal"));
    assert_eq!(acc.sync_cursor, None);
    let runs: Vec<String> = db
        .conn()
        .prepare("SELECT status FROM sync_runs ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(runs, ["error", "done"]);
}
