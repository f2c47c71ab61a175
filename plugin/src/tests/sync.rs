//! Syncs: batches, statements and balances, grouping, consent, the bank refresh.

use super::fake_imports::*;
use super::{
    connected_account, done_state, req, run, setup_account, sync_resource, three_days_one_page,
    tx_pages, tx_path,
};
use crate::bindings::Result;
use crate::bindings::provider::{SyncBatch, SyncProgress};
use crate::bindings::types::*;
use crate::provider::Provider;
use serde_json::json;
use std::time::Duration;

// ---- sync ---------------------------------------------------------------------------------------

/// Five transactions over three Brussels days, newest first, two per page.
fn three_days(f: &FakeImports) {
    tx_pages(
        f,
        2,
        vec![
            vec![
                tx("t1", "-100.0", &day("2026-11-24"), &day("2026-11-24")),
                tx("t2", "2.76", &day("2026-11-24"), &day("2026-11-23")),
            ],
            vec![
                tx("t3", "1000", &day("2026-11-23"), &day("2026-11-23")),
                tx("t4", "-0.01", &day("2026-11-20"), &day("2026-11-20")),
            ],
            vec![tx("t5", "50", &day("2026-11-20"), &day("2026-11-19"))],
        ],
    );
    f.on_json(
        "GET",
        &format!("/accounts/{ACC}/pending-transactions?page[limit]=100"),
        page(
            vec![
                json!({"type": "pendingTransaction", "id": "p1", "attributes": {"amount": -12.5,
                "currency": "EUR", "executionDate": null, "valueDate": day("2026-11-26"),
                "remittanceInformation": "Card 6666", "counterpartName": "Bestmarket NV"}}),
            ],
            None,
        ),
    );
}

#[test]
fn first_sync_in_batches_derives_balances_backwards() {
    let f = connected_account("-527.34");
    f.set_config("page-size", "2");
    three_days(&f);
    let batches = run(&f, None, 2);
    insta::assert_json_snapshot!("first_sync_batches", batches, {
        "[].lines[].raw_json" => "[raw]", "[].progress.more" => "[cursor]"
    });
    let lines: Vec<_> = batches.iter().flat_map(|b| b.lines.iter()).collect();
    assert_eq!(lines.len(), 5);
    assert!(batches.iter().all(|b| b.lines.len() <= 2));
    // The last version of each statement, by key.
    let mut last = std::collections::BTreeMap::new();
    for s in batches.iter().flat_map(|b| b.statements.iter()) {
        last.insert(s.key.clone(), s.clone());
    }
    let keys: Vec<_> = last.keys().cloned().collect();
    assert_eq!(keys, ["2026-11-20", "2026-11-23", "2026-11-24"]);
    // Balances chain: each start is the previous end; the newest end is the bank balance.
    assert_eq!(last["2026-11-24"].balance_end, "-527.34");
    assert_eq!(last["2026-11-24"].balance_start, "-430.10");
    assert_eq!(last["2026-11-23"].balance_end, "-430.10");
    assert_eq!(last["2026-11-23"].balance_start, "-1430.10");
    assert_eq!(last["2026-11-20"].balance_end, "-1430.10");
    assert_eq!(last["2026-11-20"].balance_start, "-1480.09");
    let last_batch = batches.last().unwrap();
    let pending = last_batch.pending.as_ref().unwrap();
    assert_eq!(pending[0].date, "2026-11-26");
    assert!(
        !lines.iter().any(|l| l.transaction_id == "p1"),
        "pending is never booked"
    );
    assert!(batches[0].account.is_some() && batches[1].account.is_none());
    assert_eq!(last_batch.transactions_read, 5);
    let state: serde_json::Value = serde_json::from_str(&done_state(&batches)).unwrap();
    assert_eq!(state["watermark"], "2026-11-24");
    // Anchored where the next sync stops: watermark − 7 days, before every line read.
    assert_eq!(
        state["anchor"],
        json!({"date": "2026-11-17", "balance": "-1480.09"})
    );
}

#[test]
fn incremental_sync_stops_after_a_page_older_than_the_overlap() {
    let f = connected_account("-527.34");
    f.set_config("page-size", "2");
    f.set_config("overlap-days", "1");
    three_days(&f);
    let state = json!({"watermark": "2026-11-24",
        "anchor": {"date": "2026-11-23", "balance": "-1430.10"}, "synced_at": "2026-11-24T20:00:00.000Z"});
    let batches = run(&f, Some(state.to_string()), 10);
    // Stop date 2026-11-23: page 3 (the 20th only) is wholly older, but t4 opened the 20th's
    // statement on page 2, so t5 is taken to finish it.
    let ids: Vec<_> = batches
        .iter()
        .flat_map(|b| b.lines.iter().map(|l| l.transaction_id.clone()))
        .collect();
    assert_eq!(ids, ["t1", "t2", "t3", "t4", "t5"]);
    assert!(
        batches
            .iter()
            .all(|b| !b.warnings.iter().any(|w| w.kind == WarningKind::BalanceGap))
    );

    // With a stop date after every line of page 2, page 3 is never fetched.
    let f2 = FakeImports::new();
    f2.connected();
    f2.set_config("page-size", "2");
    setup_account(&f2, "-527.34", "2027-05-25T13:02:18.103Z", "stable");
    three_days(&f2);
    let mut r = req(None, None, 10);
    r.since = Some("2026-11-24".into());
    let b = Provider::new(&f2).sync(&r).unwrap();
    let ids: Vec<_> = b.lines.iter().map(|l| l.transaction_id.as_str()).collect();
    assert_eq!(ids, ["t1", "t2"]);
    assert!(!f2.calls().iter().any(|c| c.contains("page[after]=t4")));
}

#[test]
fn a_transaction_in_another_currency_is_kept_and_flagged() {
    let f = connected_account("-527.34");
    let mut usd = tx("t2", "12.50", &day("2026-11-24"), &day("2026-11-24"));
    usd["attributes"]["currency"] = json!("USD");
    f.on_json(
        "GET",
        &tx_path("10"),
        page(
            vec![
                tx("t1", "-100.0", &day("2026-11-24"), &day("2026-11-24")),
                usd,
            ],
            None,
        ),
    );
    let batches = run(&f, None, 10);
    let lines: Vec<_> = batches.iter().flat_map(|b| &b.lines).collect();
    assert_eq!(lines.len(), 2, "the line is imported, not dropped");
    let flagged: Vec<_> = batches
        .iter()
        .flat_map(|b| &b.warnings)
        .filter(|w| w.message.contains("USD on a EUR account"))
        .collect();
    assert_eq!(flagged.len(), 1, "{batches:?}");
    assert!(flagged[0].message.contains("t2"), "{}", flagged[0].message);
}

#[test]
fn back_dated_booking_in_the_overlap_is_caught_and_a_gap_is_reported() {
    let f = connected_account("-527.34");
    f.set_config("page-size", "2");
    three_days(&f);
    let first = run(&f, None, 100);
    let state = done_state(&first);

    // Later: a booking back-dated to the 23rd arrives, the balance moves with it.
    let f = connected_account("-517.34");
    f.set_config("page-size", "10");
    let all = vec![
        tx("t1", "-100.0", &day("2026-11-24"), &day("2026-11-24")),
        tx("t2", "2.76", &day("2026-11-24"), &day("2026-11-23")),
        tx("late", "10", &day("2026-11-23"), &day("2026-11-23")),
        tx("t3", "1000", &day("2026-11-23"), &day("2026-11-23")),
        tx("t4", "-0.01", &day("2026-11-20"), &day("2026-11-20")),
        tx("t5", "50", &day("2026-11-20"), &day("2026-11-19")),
    ];
    f.on_json("GET", &tx_path("10"), page(all, None));
    let again = run(&f, Some(state.clone()), 100);
    let ids: Vec<_> = again[0]
        .lines
        .iter()
        .map(|l| l.transaction_id.as_str())
        .collect();
    assert!(ids.contains(&"late"));
    assert!(
        !again[0]
            .warnings
            .iter()
            .any(|w| w.kind == WarningKind::BalanceGap),
        "explained"
    );

    // A balance change no line explains (a booking older than the overlap, or a silent fee).
    let f = connected_account("-500.00");
    f.set_config("page-size", "10");
    three_days_one_page(&f);
    let gap = run(&f, Some(state), 100);
    let w: Vec<_> = gap[0]
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::BalanceGap)
        .collect();
    assert_eq!(w.len(), 1);
    assert!(w[0].message.starts_with("27.34 EUR"), "{}", w[0].message);
    assert!(w[0].message.contains("2026-11-17"), "{}", w[0].message);
}

#[test]
fn same_sync_twice_gives_the_same_lines_and_statements() {
    let f = connected_account("-527.34");
    f.set_config("page-size", "2");
    three_days(&f);
    let a = run(&f, None, 3);
    let b = run(&f, None, 3);
    let strip = |v: &Vec<SyncBatch>| {
        v.iter()
            .map(|x| (x.lines.clone(), x.statements.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&a), strip(&b));
}

#[test]
fn week_and_month_grouping() {
    for (grouping, keys) in [
        ("week", vec!["2026-W48", "2026-W47"]),
        ("month", vec!["2026-11"]),
    ] {
        let f = connected_account("-527.34");
        f.set_config("page-size", "2");
        f.set_config("statement-grouping", grouping);
        three_days(&f);
        let batches = run(&f, None, 100);
        let mut seen: Vec<String> = Vec::new();
        for s in batches.iter().flat_map(|b| b.statements.iter()) {
            if !seen.contains(&s.key) {
                seen.push(s.key.clone());
            }
        }
        assert_eq!(seen, keys, "{grouping}");
        let oldest = batches
            .iter()
            .flat_map(|b| b.statements.iter())
            .last()
            .unwrap();
        assert_eq!(oldest.balance_start, "-1480.09");
    }
}

#[test]
fn value_date_out_of_order_joins_the_open_statement() {
    let f = connected_account("100");
    f.set_config("date-field", "value");
    f.on_json(
        "GET",
        &tx_path("100"),
        page(
            vec![
                tx("a", "1", &day("2026-11-24"), &day("2026-11-24")),
                tx("b", "2", &day("2026-11-23"), &day("2026-11-22")),
                tx("c", "4", &day("2026-11-23"), &day("2026-11-23")),
            ],
            None,
        ),
    );
    let b = run(&f, None, 100);
    let st = &b[0].statements;
    assert_eq!(st.len(), 2, "{st:?}");
    assert_eq!(
        (
            st[1].key.as_str(),
            st[1].date_from.as_str(),
            st[1].date_to.as_str()
        ),
        ("2026-11-22", "2026-11-22", "2026-11-23")
    );
    assert_eq!(
        (st[1].balance_start.as_str(), st[1].balance_end.as_str()),
        ("93", "99")
    );
    assert_eq!(b[0].lines[2].statement_key, "2026-11-22");
}

#[test]
fn malformed_transaction_rejects_the_batch() {
    let f = connected_account("1");
    let mut bad = tx("t9", "1", &day("2026-11-24"), &day("2026-11-24"));
    bad["attributes"]
        .as_object_mut()
        .unwrap()
        .remove("currency");
    f.on_json(
        "GET",
        &tx_path("100"),
        page(
            vec![tx("t8", "1", &day("2026-11-24"), &day("2026-11-24")), bad],
            None,
        ),
    );
    match Provider::new(&f).sync(&req(None, None, 100)) {
        Err(ProviderError::MalformedResponse(m)) => {
            assert_eq!(m.field.as_deref(), Some("currency"));
            assert_eq!(m.resource_id.as_deref(), Some("t9"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_sync_arguments_are_named() {
    let f = FakeImports::new();
    f.connected();
    let p = Provider::new(&f);
    let name = |r: Result<SyncBatch>| match r {
        Err(ProviderError::InvalidArgument(a)) => a.name,
        other => panic!("{other:?}"),
    };
    assert_eq!(name(p.sync(&req(None, None, 0))), "max-lines");
    assert_eq!(name(p.sync(&req(Some("{".into()), None, 5))), "cursor");
    assert_eq!(name(p.sync(&req(None, Some("[]".into()), 5))), "state");
    let mut r = req(None, None, 5);
    r.since = Some("25/11/2026".into());
    assert_eq!(name(p.sync(&r)), "since");
    assert!(f.requests.borrow().is_empty());
    let mut r = req(None, None, 5);
    r.account_id = "unknown".into();
    assert!(matches!(p.sync(&r), Err(ProviderError::NotFound(m)) if m.contains("unknown")));
}

#[test]
fn expired_consent_is_an_error_for_that_account_with_a_link() {
    let f = FakeImports::new();
    f.connected();
    setup_account(&f, "1", "2026-11-20T13:02:18.103Z", "stable");
    f.on(
        "POST",
        &format!("/accounts/{ACC}/reauthorization-requests"),
        vec![resp(
            201,
            &single(json!({"type": "reauthorizationRequest", "id": "rr1",
            "links": {"redirect": "https://authorize.myponto.com/organizations/x/reauthorize"}})),
        )],
    );
    match Provider::new(&f).sync(&req(None, None, 10)) {
        Err(ProviderError::AuthorizationExpired(c)) => {
            assert_eq!(c.account_id, ACC);
            assert_eq!(c.expired_at.as_deref(), Some("2026-11-20T13:02:18.103Z"));
            assert_eq!(
                c.reauthorization_url.as_deref(),
                Some("https://authorize.myponto.com/organizations/x/reauthorize")
            );
            assert!(c.advice.contains("180 days"));
        }
        other => panic!("{other:?}"),
    }
    let body: serde_json::Value =
        serde_json::from_slice(f.requests.borrow().last().unwrap().body.as_bytes()).unwrap();
    assert_eq!(
        body["data"]["attributes"]["redirectUri"],
        "https://erp.example.test/cb"
    );
}

#[test]
fn consent_ending_soon_beta_and_maintenance_are_warnings() {
    let f = FakeImports::new();
    f.connected();
    setup_account(&f, "1", "2026-12-01T13:02:18.103Z", "beta");
    f.on_json("GET", &tx_path("10"), page(vec![], None));
    let b = Provider::new(&f).sync(&req(None, None, 10)).unwrap();
    let kinds: Vec<_> = b.warnings.iter().map(|w| w.kind).collect();
    assert!(kinds.contains(&WarningKind::ConsentExpiring), "{kinds:?}");
    assert!(kinds.contains(&WarningKind::BetaInstitution), "{kinds:?}");
    assert_eq!(b.account.unwrap().consent_days_left, Some(6));
    // Errors at a beta institution carry the advice to contact Ponto.
    let f = FakeImports::new();
    f.connected();
    setup_account(&f, "1", "2027-12-01T13:02:18.103Z", "experimental");
    f.on(
        "GET",
        &tx_path("10"),
        vec![resp(400, &api_error("invalidRequest", "nope"))],
    );
    match Provider::new(&f).sync(&req(None, None, 10)) {
        Err(ProviderError::Upstream(u)) => assert!(u.advice.unwrap().contains("Contact Ponto")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_institution_without_status_is_unknown_and_not_warned_about() {
    // Issue 11 item 14: no status is no claim of trouble; the institution is `unknown`, with no
    // beta/experimental warning and no "contact Ponto" advice on errors.
    let f = FakeImports::new();
    f.connected();
    setup_account(&f, "1", "2027-12-01T13:02:18.103Z", "stable");
    let mut inst = institution(INST, "Super Sandbox Bank", Some("BE"), "x", None);
    inst["attributes"].as_object_mut().unwrap().remove("status");
    f.on_json(
        "GET",
        &format!("/financial-institutions/{INST}"),
        single(inst),
    );
    f.on(
        "GET",
        &tx_path("10"),
        vec![resp(400, &api_error("invalidRequest", "nope"))],
    );
    match Provider::new(&f).sync(&req(None, None, 10)) {
        Err(ProviderError::Upstream(u)) => assert_eq!(u.advice, None),
        other => panic!("{other:?}"),
    }
    f.on_json("GET", &tx_path("10"), page(vec![], None));
    let b = Provider::new(&f).sync(&req(None, None, 10)).unwrap();
    assert!(
        b.warnings
            .iter()
            .all(|w| w.kind != WarningKind::BetaInstitution),
        "{:?}",
        b.warnings
    );
}

#[test]
fn user_present_sync_refreshes_polls_and_applies_updated_transactions() {
    let f = connected_account("10");
    f.on(
        "POST",
        "/synchronizations",
        vec![
            resp(
                400,
                &api_error(
                    "accountRecentlySynchronized",
                    "This type of synchronization was already created recently",
                ),
            ),
            resp(201, &sync_resource("s-tx", "pending", json!([]))),
        ],
    );
    f.on(
        "GET",
        "/synchronizations/s-tx",
        vec![
            resp(200, &sync_resource("s-tx", "running", json!([]))),
            resp(200, &sync_resource("s-tx", "success", json!([]))),
        ],
    );
    f.on_json(
        "GET",
        &tx_path("100"),
        page(
            vec![tx("n1", "10", &day("2026-11-25"), &day("2026-11-25"))],
            None,
        ),
    );
    f.on_json(
        "GET",
        "/synchronizations/s-tx/updated-transactions?page[limit]=100",
        page(
            vec![tx("old", "-3.5", &day("2026-11-02"), &day("2026-11-02"))],
            None,
        ),
    );
    let mut r = req(None, None, 100);
    r.customer_ip = Some("203.0.113.7".into());
    let b = Provider::new(&f).sync(&r).unwrap();
    assert!(
        b.warnings
            .iter()
            .any(|w| w.kind == WarningKind::RecentlySynchronized)
    );
    assert_eq!(b.updated_lines.len(), 1);
    assert_eq!(b.updated_lines[0].transaction_id, "old");
    assert_eq!(*f.sleeps.borrow(), vec![Duration::from_millis(1000)]);
    let posted: serde_json::Value =
        serde_json::from_slice(f.requests.borrow()[0].body.as_bytes()).unwrap();
    assert_eq!(
        posted["data"]["attributes"]["customerIpAddress"],
        "203.0.113.7"
    );
    assert!(matches!(b.progress, SyncProgress::Done(_)));
}

#[test]
fn unfinished_or_invalid_bank_refresh() {
    let f = connected_account("10");
    f.set_config("sync-poll-attempts", "2");
    f.on(
        "POST",
        "/synchronizations",
        vec![resp(201, &sync_resource("s1", "pending", json!([])))],
    );
    f.on_json(
        "GET",
        "/synchronizations/s1",
        sync_resource("s1", "running", json!([])),
    );
    f.on_json("GET", &tx_path("100"), page(vec![], None));
    let mut r = req(None, None, 100);
    r.customer_ip = Some("203.0.113.7".into());
    let b = Provider::new(&f).sync(&r).unwrap();
    assert!(
        b.warnings
            .iter()
            .any(|w| w.kind == WarningKind::SynchronizationPending)
    );
    assert!(!f.calls().iter().any(|c| c.contains("updated-transactions")));

    f.on_json(
        "GET",
        "/synchronizations/s1",
        sync_resource(
            "s1",
            "error",
            json!([{"code": "authorizationInvalid", "detail": "ask the customer to reauthorize"}]),
        ),
    );
    let r2 = Provider::new(&f).sync(&r);
    assert!(
        matches!(&r2, Err(ProviderError::AuthorizationExpired(c)) if c.account_id == ACC),
        "{r2:?}"
    );
}

#[test]
fn missing_balance_gives_lines_without_faked_statements() {
    let f = connected_account("null");
    f.on_json(
        "GET",
        &tx_path("100"),
        page(
            vec![tx("n1", "10", &day("2026-11-25"), &day("2026-11-25"))],
            None,
        ),
    );
    let b = Provider::new(&f).sync(&req(None, None, 100)).unwrap();
    assert_eq!(b.lines.len(), 1);
    assert!(b.statements.is_empty());
    assert!(b.warnings.iter().any(|w| w.message.contains("no balance")));
}

#[test]
fn mapped_page_snapshot() {
    let f = connected_account("-527.34");
    let mut structured = tx(
        "3e883ad5",
        "2.76",
        "2026-11-24T23:00:00.000Z",
        "2026-11-23T23:00:00Z",
    );
    structured["attributes"]["remittanceInformation"] = json!("090933755493");
    structured["attributes"]["remittanceInformationType"] = json!("structured");
    let mut card = tx(
        "a4a47c21",
        "-100.0",
        "2026-11-24T13:12:51.546123Z",
        "2026-11-24T00:00:00Z",
    );
    card["attributes"]["cardReference"] = json!("6666");
    card["attributes"]["mandateId"] = json!("MANDATE-1");
    card["attributes"]["creditorId"] = json!("BE69ZZZ050D000000008");
    card["attributes"]["remittanceInformation"] = json!(null);
    f.on_json("GET", &tx_path("100"), page(vec![structured, card], None));
    let b = Provider::new(&f).sync(&req(None, None, 100)).unwrap();
    insta::assert_json_snapshot!("mapped_page", (b.account, b.lines, b.statements));
}
