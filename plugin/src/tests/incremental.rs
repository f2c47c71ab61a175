//! Incremental syncs: the known-id stop, the balance checksum, the pending rule.

use super::fake_imports::*;
use super::{
    connected_account, done_state, pending_path, req, run, setup_account, state_json,
    three_days_one_page, tx_pages, tx_path,
};
use crate::bindings::types::*;
use crate::provider::Provider;
use serde_json::json;

// ---- incremental sync: known-id stop, balance checksum, pending rule ---------------------------

/// The account as Ponto shows it after synchronization `sync` (id, subtype).
fn account_after(f: &FakeImports, balance: &str, sync: (&str, &str)) {
    let b: serde_json::Value = serde_json::from_str(balance).unwrap();
    let mut a = account(ACC, INST, b, "2027-05-25T13:02:18.103Z");
    a["meta"]["latestSynchronization"]["id"] = json!(sync.0);
    a["meta"]["latestSynchronization"]["attributes"]["subtype"] = json!(sync.1);
    f.on_json("GET", &format!("/accounts/{ACC}"), single(a));
}

/// A first sync of `three_days_one_page` (balance -527.34, page size 10); returns its state.
fn first_sync_one_page(f: &FakeImports) -> String {
    f.connected();
    f.set_config("page-size", "10");
    setup_account(f, "-527.34", "2027-05-25T13:02:18.103Z", "stable");
    three_days_one_page(f);
    f.on_json("GET", &pending_path(), page(vec![], None));
    let state = done_state(&run(f, None, 100));
    f.requests.borrow_mut().clear();
    state
}

/// Three new bookings (+12.50 in all) above `three_days_one_page`'s newest line.
fn three_new_on_top(f: &FakeImports) {
    f.on_json(
        "GET",
        &tx_path("10"),
        page(
            vec![
                tx("n1", "10", &day("2026-11-25"), &day("2026-11-25")),
                tx("n2", "-2.5", &day("2026-11-25"), &day("2026-11-25")),
                tx("n3", "5", &day("2026-11-24"), &day("2026-11-24")),
                tx("t1", "-100.0", &day("2026-11-24"), &day("2026-11-24")),
                tx("t2", "2.76", &day("2026-11-24"), &day("2026-11-23")),
                tx("t3", "1000", &day("2026-11-23"), &day("2026-11-23")),
                tx("t4", "-0.01", &day("2026-11-20"), &day("2026-11-20")),
                tx("t5", "50", &day("2026-11-20"), &day("2026-11-19")),
            ],
            None,
        ),
    );
}

#[test]
fn incremental_sync_ends_at_the_known_line_in_two_requests() {
    let f = FakeImports::new();
    let state = first_sync_one_page(&f);
    account_after(&f, "-514.84", ("5d88f702", "accountDetails"));
    three_new_on_top(&f);
    let b = run(&f, Some(state), 100);
    assert_eq!(b.len(), 1);
    assert_eq!(
        f.calls(),
        [
            format!("GET /accounts/{ACC}"),
            format!("GET {}", tx_path("10"))
        ],
        "no institution, no deeper page, no pending list"
    );
    let ids: Vec<_> = b[0]
        .lines
        .iter()
        .map(|l| l.transaction_id.as_str())
        .collect();
    assert_eq!(ids, ["n1", "n2", "n3"]);
    assert!(b[0].pending.is_none(), "the host keeps its pending list");
    assert!(b[0].warnings.is_empty(), "{:?}", b[0].warnings);
    // The 24th had lines already: re-sent whole, same start, new end; the 25th is new.
    let st: Vec<_> = b[0]
        .statements
        .iter()
        .map(|s| {
            (
                s.key.as_str(),
                s.date_from.as_str(),
                s.date_to.as_str(),
                s.balance_start.as_str(),
                s.balance_end.as_str(),
            )
        })
        .collect();
    assert_eq!(
        st,
        [
            (
                "2026-11-25",
                "2026-11-25",
                "2026-11-25",
                "-522.34",
                "-514.84"
            ),
            (
                "2026-11-24",
                "2026-11-24",
                "2026-11-24",
                "-430.10",
                "-522.34"
            ),
        ]
    );
    let s = state_json(&done_state(&b));
    assert_eq!(s["last_id"], "n1");
    assert_eq!(s["balance"], "-514.84");
    assert_eq!(s["watermark"], "2026-11-25");
    // The anchor still sits before every line: nothing older moved.
    assert_eq!(
        s["anchor"],
        json!({"date": "2026-11-18", "balance": "-1480.09"})
    );
    assert_eq!(s["newest"]["key"], "2026-11-25");
    assert_eq!(s["newest"]["start"], "-522.34");

    // Nothing new: the same two requests, nothing sent, the known line kept.
    f.requests.borrow_mut().clear();
    let again = run(&f, Some(done_state(&b)), 100);
    assert_eq!(f.calls().len(), 2, "{:?}", f.calls());
    assert!(again[0].lines.is_empty() && again[0].statements.is_empty());
    let s2 = state_json(&done_state(&again));
    assert_eq!(s2["last_id"], "n1");
    assert_eq!(s2["newest"], s["newest"]);
    assert_eq!(s2["anchor"], s["anchor"]);

    // The same balance written with more decimals still adds up.
    f.requests.borrow_mut().clear();
    account_after(&f, "-514.8400", ("5d88f702", "accountDetails"));
    let same = run(&f, Some(done_state(&again)), 100);
    assert_eq!(f.calls().len(), 2, "{:?}", f.calls());
    assert!(same[0].lines.is_empty());
    account_after(&f, "-514.84", ("5d88f702", "accountDetails"));

    // A day later the safety net walks the whole overlap and reads everything again.
    f.requests.borrow_mut().clear();
    f.now.set(f.now.get() + chrono::Duration::hours(25));
    f.connected();
    let late = run(&f, Some(done_state(&again)), 100);
    let calls = f.calls();
    assert!(
        calls.contains(&format!("GET /financial-institutions/{INST}")),
        "{calls:?}"
    );
    assert!(
        calls.contains(&format!("GET {}", pending_path())),
        "{calls:?}"
    );
    assert_eq!(late[0].lines.len(), 8, "the overlap read again");
    assert!(
        !late[0]
            .warnings
            .iter()
            .any(|w| w.kind == WarningKind::BalanceGap)
    );
}

#[test]
fn overlap_walk_hours_zero_walks_the_overlap_every_time() {
    let f = FakeImports::new();
    f.set_config("overlap-walk-hours", "0");
    let state = first_sync_one_page(&f);
    account_after(&f, "-514.84", ("5d88f702", "accountDetails"));
    three_new_on_top(&f);
    let b = run(&f, Some(state), 100);
    assert_eq!(b[0].lines.len(), 8);
    assert!(f.calls().contains(&format!("GET {}", pending_path())));
    f.set_config("overlap-walk-hours", "-1");
    match Provider::new(&f).sync(&req(None, None, 10)) {
        Err(ProviderError::InvalidArgument(a)) => assert_eq!(a.name, "overlap-walk-hours"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_back_dated_booking_below_the_known_line_is_caught_by_the_balance_check() {
    let f = FakeImports::new();
    let state = first_sync_one_page(&f);
    // One new line on top and one back-dated to the 23rd, below the known line t1, on a later
    // page: the balance moved by both, so the walk must go past t1.
    f.set_config("page-size", "2");
    account_after(&f, "-507.34", ("5d88f702", "accountDetails"));
    tx_pages(
        &f,
        2,
        vec![
            vec![
                tx("n1", "10", &day("2026-11-25"), &day("2026-11-25")),
                tx("t1", "-100.0", &day("2026-11-24"), &day("2026-11-24")),
            ],
            vec![
                tx("t2", "2.76", &day("2026-11-24"), &day("2026-11-23")),
                tx("late", "10", &day("2026-11-23"), &day("2026-11-23")),
            ],
            vec![
                tx("t3", "1000", &day("2026-11-23"), &day("2026-11-23")),
                tx("t4", "-0.01", &day("2026-11-20"), &day("2026-11-20")),
            ],
            vec![tx("t5", "50", &day("2026-11-20"), &day("2026-11-19"))],
        ],
    );
    let b = run(&f, Some(state), 100);
    let ids: Vec<_> = b
        .iter()
        .flat_map(|x| x.lines.iter().map(|l| l.transaction_id.clone()))
        .collect();
    assert!(ids.contains(&"late".to_string()), "{ids:?}");
    assert!(
        b.iter()
            .all(|x| !x.warnings.iter().any(|w| w.kind == WarningKind::BalanceGap)),
        "the deeper walk explains the balance"
    );
    assert!(
        b.last().unwrap().pending.is_some(),
        "an unusual sync reads everything"
    );
    // Statements chain down from the new balance through the back-dated day.
    let mut last = std::collections::BTreeMap::new();
    for s in b.iter().flat_map(|x| x.statements.iter()) {
        last.insert(s.key.clone(), s.clone());
    }
    assert_eq!(last["2026-11-25"].balance_end, "-507.34");
    assert_eq!(last["2026-11-23"].balance_start, "-1430.10");
    assert_eq!(last["2026-11-20"].balance_start, "-1480.09");
    let s = state_json(&done_state(&b));
    assert_eq!(s["last_id"], "n1");
    assert_eq!(s["walked_at"], "2026-11-25T12:00:00.000Z");
}

#[test]
fn a_new_line_in_an_older_period_than_the_newest_statement_walks_the_overlap() {
    let f = FakeImports::new();
    let state = first_sync_one_page(&f);
    // Above t1 (24th) comes a line booked on the 23rd: the 23rd's statement must be rebuilt
    // from all its lines, so the walk cannot end at t1 even though the balance adds up.
    account_after(&f, "-524.34", ("5d88f702", "accountDetails"));
    f.on_json(
        "GET",
        &tx_path("10"),
        page(
            vec![
                tx("odd", "3", &day("2026-11-23"), &day("2026-11-23")),
                tx("t1", "-100.0", &day("2026-11-24"), &day("2026-11-24")),
                tx("t2", "2.76", &day("2026-11-24"), &day("2026-11-23")),
                tx("t3", "1000", &day("2026-11-23"), &day("2026-11-23")),
                tx("t4", "-0.01", &day("2026-11-20"), &day("2026-11-20")),
                tx("t5", "50", &day("2026-11-20"), &day("2026-11-19")),
            ],
            None,
        ),
    );
    let b = run(&f, Some(state), 100);
    assert_eq!(b[0].lines.len(), 6, "the whole overlap");
    assert!(
        !b[0]
            .warnings
            .iter()
            .any(|w| w.kind == WarningKind::BalanceGap)
    );
}

#[test]
fn a_state_without_the_new_fields_still_syncs_and_is_upgraded() {
    let f = connected_account("-527.34");
    f.set_config("page-size", "10");
    three_days_one_page(&f);
    f.on_json("GET", &pending_path(), page(vec![], None));
    // As the previous version wrote it after a sync on the 24th.
    let old = json!({"watermark": "2026-11-24",
        "anchor": {"date": "2026-11-17", "balance": "-1480.09"},
        "synced_at": "2026-11-24T20:00:00.000Z"});
    let b = run(&f, Some(old.to_string()), 100);
    let calls = f.calls();
    assert!(
        calls.contains(&format!("GET /financial-institutions/{INST}")),
        "{calls:?}"
    );
    assert!(
        calls.contains(&format!("GET {}", pending_path())),
        "{calls:?}"
    );
    assert_eq!(b[0].lines.len(), 5, "the whole overlap, as before");
    assert!(
        !b[0]
            .warnings
            .iter()
            .any(|w| w.kind == WarningKind::BalanceGap)
    );
    let s = state_json(&done_state(&b));
    assert_eq!(s["last_id"], "t1");
    assert_eq!(s["balance"], "-527.34");
    // The upgraded state lets the next sync end at the known line.
    f.requests.borrow_mut().clear();
    account_after(&f, "-514.84", ("5d88f702", "accountDetails"));
    three_new_on_top(&f);
    let next = run(&f, Some(done_state(&b)), 100);
    assert_eq!(f.calls().len(), 2, "{:?}", f.calls());
    assert_eq!(next[0].lines.len(), 3);
}

#[test]
fn pending_is_read_only_when_something_could_have_changed_it() {
    let f = FakeImports::new();
    let state = first_sync_one_page(&f);
    let pending_calls = |f: &FakeImports| {
        f.calls()
            .iter()
            .filter(|c| c.contains("pending-transactions"))
            .count()
    };
    let sync = |f: &FakeImports, state: &str, sync: (&str, &str)| {
        f.requests.borrow_mut().clear();
        account_after(f, "-527.34", sync);
        three_days_one_page(f);
        let b = run(f, Some(state.to_string()), 100);
        assert!(b[0].lines.is_empty(), "nothing new");
        (pending_calls(f), b[0].pending.is_some(), done_state(&b))
    };
    // Ponto's own plain transactions sync ran: the pending list is as it was.
    let (n, sent, state) = sync(&f, &state, ("s-plain", "accountTransactions"));
    assert_eq!((n, sent), (0, false));
    // A sync that refreshes unsettled transactions: read once, then not again.
    f.on_json(
        "GET",
        &pending_path(),
        page(
            vec![
                json!({"type": "pendingTransaction", "id": "p9", "attributes": {"amount": -4,
                "currency": "EUR", "executionDate": null, "valueDate": day("2026-11-26")}}),
            ],
            None,
        ),
    );
    let (n, sent, state) = sync(
        &f,
        &state,
        ("s-unsettled", "accountTransactionsWithUnsettled"),
    );
    assert_eq!((n, sent), (1, true));
    let (n, _, state) = sync(
        &f,
        &state,
        ("s-unsettled", "accountTransactionsWithUnsettled"),
    );
    assert_eq!(n, 0, "the same synchronization: nothing changed since");
    // An unknown subtype could be anything: read.
    let (n, _, state) = sync(&f, &state, ("s-new", "accountSomethingNew"));
    assert_eq!(n, 1);
    // The transactions list names a synchronization the account does not (another came after).
    f.requests.borrow_mut().clear();
    account_after(&f, "-527.34", ("s-details", "accountDetails"));
    let mut p = page(
        vec![tx("t1", "-100.0", &day("2026-11-24"), &day("2026-11-24"))],
        None,
    );
    p["meta"]["latestSynchronization"] = json!({"type": "synchronization", "id": "s-u2",
        "attributes": {"subtype": "accountTransactionsWithUnsettled", "status": "success"}});
    f.on_json("GET", &tx_path("10"), p);
    let b = run(&f, Some(state), 100);
    assert_eq!(pending_calls(&f), 1);
    let state = done_state(&b);
    // The user asks for a bank refresh: everything is read.
    f.requests.borrow_mut().clear();
    account_after(&f, "-527.34", ("s-details", "accountDetails"));
    three_days_one_page(&f);
    f.on(
        "POST",
        "/synchronizations",
        vec![resp(
            400,
            &api_error("accountRecentlySynchronized", "already created recently"),
        )],
    );
    let mut r = req(None, Some(state), 100);
    r.customer_ip = Some("203.0.113.7".into());
    let b = Provider::new(&f).sync(&r).unwrap();
    assert!(b.pending.is_some());
    assert_eq!(pending_calls(&f), 1);
}
