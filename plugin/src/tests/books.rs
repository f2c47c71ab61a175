//! The books (issue 11): duplicates, implausible dates, lines without dates, consent links,
//! warnings in words, statement names.

use super::fake_imports::*;
use super::{
    connected_account, done_state, pending_path, req, run, setup_account, state_json,
    sync_resource, three_days_one_page, tx_pages, tx_path,
};
use crate::bindings::provider::SyncBatch;
use crate::bindings::types::*;
use crate::provider::Provider;
use serde_json::json;

// ---- Issue 11: the books (items 7–10, 12, 14, 15) ----

/// The lines the ERP stores (the first of each id, in batch order) and the last version of each
/// statement: every statement's end − start must be the sum of its stored lines.
fn assert_statements_match_stored_lines(batches: &[SyncBatch]) {
    use crate::decimal::Decimal;
    let mut stored: Vec<&StatementLine> = Vec::new();
    for l in batches.iter().flat_map(|b| b.lines.iter()) {
        if !stored.iter().any(|s| s.transaction_id == l.transaction_id) {
            stored.push(l);
        }
    }
    let mut last = std::collections::BTreeMap::new();
    for s in batches.iter().flat_map(|b| b.statements.iter()) {
        last.insert(s.key.clone(), s.clone());
    }
    assert!(!last.is_empty());
    for (key, s) in &last {
        let mut sum = Decimal::ZERO;
        for l in stored.iter().filter(|l| &l.statement_key == key) {
            sum = sum.checked_add(Decimal::parse(&l.amount).unwrap()).unwrap();
        }
        let moved = Decimal::parse(&s.balance_end)
            .unwrap()
            .checked_sub(Decimal::parse(&s.balance_start).unwrap())
            .unwrap();
        assert!(
            moved.checked_sub(sum).unwrap().is_zero(),
            "statement {key}: {} → {} but its stored lines sum to {sum}",
            s.balance_start,
            s.balance_end
        );
    }
}

fn all_warnings(batches: &[SyncBatch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| b.warnings.iter().map(|w| w.message.clone()))
        .collect()
}

fn line_ids(batches: &[SyncBatch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| b.lines.iter().map(|l| l.transaction_id.clone()))
        .collect()
}

#[test]
fn a_duplicate_id_across_batches_is_counted_once_and_named() {
    // Item 7: t1 again on the next page (the next batch) with another amount.
    let f = connected_account("-527.34");
    f.set_config("page-size", "2");
    tx_pages(
        &f,
        2,
        vec![
            vec![
                tx("t1", "-100.0", &day("2026-11-24"), &day("2026-11-24")),
                tx("t2", "2.76", &day("2026-11-24"), &day("2026-11-23")),
            ],
            vec![
                tx("t3", "1000", &day("2026-11-23"), &day("2026-11-23")),
                tx("t1", "-987700", &day("2026-11-20"), &day("2026-11-20")),
            ],
            vec![tx("t5", "50", &day("2026-11-20"), &day("2026-11-19"))],
        ],
    );
    f.on_json("GET", &pending_path(), page(vec![], None));
    let batches = run(&f, None, 2);
    assert!(batches.len() >= 3, "the repeat arrives in a later batch");
    assert_eq!(line_ids(&batches), ["t1", "t2", "t3", "t5"]);
    let warnings = all_warnings(&batches);
    let dup: Vec<_> = warnings.iter().filter(|w| w.contains("twice")).collect();
    assert_eq!(dup.len(), 1, "{warnings:?}");
    assert!(
        dup[0].contains("t1") && dup[0].contains("-100.0") && dup[0].contains("-987700"),
        "{}",
        dup[0]
    );
    assert_statements_match_stored_lines(&batches);
    // The oldest statement starts where the bank balance minus the stored lines says.
    let oldest = batches
        .iter()
        .flat_map(|b| b.statements.iter())
        .rfind(|s| s.key == "2026-11-20")
        .unwrap();
    assert_eq!(oldest.balance_start, "-1480.10");
    // A plain repeat (same amount, Ponto's paging shifting) is dropped without a word.
    let f = connected_account("-100");
    f.set_config("page-size", "10");
    f.on_json(
        "GET",
        &tx_path("10"),
        page(
            vec![
                tx("t1", "-100.0", &day("2026-11-24"), &day("2026-11-24")),
                tx("t1", "-100.00", &day("2026-11-24"), &day("2026-11-24")),
            ],
            None,
        ),
    );
    f.on_json("GET", &pending_path(), page(vec![], None));
    let batches = run(&f, None, 100);
    assert_eq!(line_ids(&batches), ["t1"]);
    assert!(all_warnings(&batches).is_empty());
}

#[test]
fn implausible_dates_neither_stop_incremental_sync_nor_merge_statements() {
    // Item 8: one line dated 9999-12-31 (first of the newest-first list) and one 0001-01-01.
    let f = connected_account("-515.34");
    f.set_config("page-size", "10");
    let mut far_future = tx(
        "future",
        "5",
        "9999-12-31T00:00:00Z",
        "9999-12-31T00:00:00Z",
    );
    far_future["attributes"]["remittanceInformation"] = json!("future");
    let long_ago = tx(
        "ancient",
        "7",
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
    );
    f.on_json(
        "GET",
        &tx_path("10"),
        page(
            vec![
                far_future,
                tx("t1", "-100.0", &day("2026-11-24"), &day("2026-11-24")),
                tx("t2", "2.76", &day("2026-11-24"), &day("2026-11-23")),
                tx("t3", "1000", &day("2026-11-23"), &day("2026-11-23")),
                tx("t4", "-0.01", &day("2026-11-20"), &day("2026-11-20")),
                tx("t5", "50", &day("2026-11-20"), &day("2026-11-19")),
                long_ago,
            ],
            None,
        ),
    );
    f.on_json("GET", &pending_path(), page(vec![], None));
    let batches = run(&f, None, 100);
    // Every line is kept, with the date Ponto gave.
    assert_eq!(
        line_ids(&batches),
        ["future", "t1", "t2", "t3", "t4", "t5", "ancient"]
    );
    let lines: Vec<_> = batches.iter().flat_map(|b| b.lines.iter()).collect();
    assert_eq!(lines[0].booking_date, "9999-12-31");
    assert_eq!(lines[6].booking_date, "0001-01-01");
    // Filed under today's statement and the oldest one, whose dates do not move.
    assert_eq!(lines[0].statement_key, "2026-11-25");
    assert_eq!(lines[6].statement_key, "2026-11-20");
    for s in batches.iter().flat_map(|b| b.statements.iter()) {
        assert!(
            s.date_from.as_str() >= "2026-11-20" && s.date_to.as_str() <= "2026-11-25",
            "{s:?}"
        );
    }
    assert_statements_match_stored_lines(&batches);
    let warnings = all_warnings(&batches);
    for (id, date) in [("future", "9999-12-31"), ("ancient", "0001-01-01")] {
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(&format!("Transaction {id} is dated {date}"))),
            "{warnings:?}"
        );
    }
    let state = done_state(&batches);
    assert_eq!(state_json(&state)["watermark"], "2026-11-24");

    // The next sync still reads what is new below the far-future line.
    f.requests.borrow_mut().clear();
    f.now.set(f.now.get() + chrono::Duration::days(2));
    f.connected();
    setup_account(&f, "-503.34", "2027-05-25T13:02:18.103Z", "stable");
    let mut far_future = tx(
        "future",
        "5",
        "9999-12-31T00:00:00Z",
        "9999-12-31T00:00:00Z",
    );
    far_future["attributes"]["remittanceInformation"] = json!("future");
    f.on_json(
        "GET",
        &tx_path("10"),
        page(
            vec![
                far_future,
                tx("n1", "12", &day("2026-11-26"), &day("2026-11-26")),
                tx("t1", "-100.0", &day("2026-11-24"), &day("2026-11-24")),
                tx("t2", "2.76", &day("2026-11-24"), &day("2026-11-23")),
                tx("t3", "1000", &day("2026-11-23"), &day("2026-11-23")),
                tx("t4", "-0.01", &day("2026-11-20"), &day("2026-11-20")),
                tx("t5", "50", &day("2026-11-20"), &day("2026-11-19")),
            ],
            None,
        ),
    );
    let batches = run(&f, Some(state), 100);
    assert!(line_ids(&batches).contains(&"n1".to_string()));
    assert_eq!(state_json(&done_state(&batches))["watermark"], "2026-11-26");
}

#[test]
fn a_stored_far_future_watermark_no_longer_blocks_the_account() {
    // Item 8: a state an older version wrote with the watermark 9999-12-31.
    let f = connected_account("-527.34");
    f.set_config("page-size", "10");
    three_days_one_page(&f);
    f.on_json("GET", &pending_path(), page(vec![], None));
    let state = json!({"watermark": "9999-12-31",
        "anchor": {"date": "9999-12-24", "balance": "0"}, "synced_at": "2026-11-24T20:00:00.000Z"});
    let batches = run(&f, Some(state.to_string()), 100);
    assert_eq!(line_ids(&batches), ["t1", "t2", "t3", "t4", "t5"]);
    assert_eq!(state_json(&done_state(&batches))["watermark"], "2026-11-24");
}

#[test]
fn a_booked_line_without_execution_date_is_stored_with_the_rest_of_its_page() {
    // Item 9: absent or null executionDate made every sync of the account fail.
    let f = connected_account("-527.34");
    f.set_config("page-size", "10");
    let mut absent = tx("t2", "2.76", &day("2026-11-24"), &day("2026-11-23"));
    absent["attributes"]
        .as_object_mut()
        .unwrap()
        .remove("executionDate");
    let mut null = tx("t4", "-0.01", &day("2026-11-20"), &day("2026-11-20"));
    null["attributes"]["executionDate"] = serde_json::Value::Null;
    f.on_json(
        "GET",
        &tx_path("10"),
        page(
            vec![
                tx("t1", "-100.0", &day("2026-11-24"), &day("2026-11-24")),
                absent,
                tx("t3", "1000", &day("2026-11-23"), &day("2026-11-23")),
                null,
                tx("t5", "50", &day("2026-11-20"), &day("2026-11-19")),
            ],
            None,
        ),
    );
    f.on_json("GET", &pending_path(), page(vec![], None));
    let batches = run(&f, None, 100);
    assert_eq!(line_ids(&batches), ["t1", "t2", "t3", "t4", "t5"]);
    let lines: Vec<_> = batches.iter().flat_map(|b| b.lines.iter()).collect();
    assert_eq!(
        lines[1].booking_date, "2026-11-23",
        "t2 takes its value date"
    );
    assert_eq!(lines[3].booking_date, "2026-11-20");
    let warnings = all_warnings(&batches);
    for id in ["t2", "t4"] {
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(&format!("Transaction {id} has no executionDate"))),
            "{warnings:?}"
        );
    }
    assert_statements_match_stored_lines(&batches);
}

fn reauthorization_route(f: &FakeImports, ids: &[&str]) {
    f.on(
        "POST",
        &format!("/accounts/{ACC}/reauthorization-requests"),
        ids.iter()
            .map(|id| {
                resp(
                    201,
                    &single(json!({"type": "reauthorizationRequest", "id": id,
                    "links": {"redirect": format!("https://authorize.myponto.com/reauthorize/{id}")}})),
                )
            })
            .collect(),
    );
}

fn reauthorization_posts(f: &FakeImports) -> usize {
    f.calls()
        .iter()
        .filter(|c| c.starts_with("POST") && c.contains("reauthorization-requests"))
        .count()
}

fn expired_link(f: &FakeImports) -> String {
    match Provider::new(f).sync(&req(None, None, 10)) {
        Err(ProviderError::AuthorizationExpired(c)) => c.reauthorization_url.unwrap(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn expired_consent_reuses_the_open_reauthorization_request() {
    // Item 12: every sync after the expected end created one more request at Ponto.
    let f = FakeImports::new();
    f.connected();
    setup_account(&f, "1", "2026-11-20T13:02:18.103Z", "stable");
    reauthorization_route(&f, &["rr1", "rr2"]);
    let first = expired_link(&f);
    assert_eq!(first, "https://authorize.myponto.com/reauthorize/rr1");
    for _ in 0..3 {
        assert_eq!(expired_link(&f), first);
    }
    assert_eq!(reauthorization_posts(&f), 1);
    // The user renewed the consent: the kept request is forgotten ...
    setup_account(&f, "1", "2027-05-20T13:02:18.103Z", "stable");
    f.on_json("GET", &tx_path("10"), page(vec![], None));
    f.on_json("GET", &pending_path(), page(vec![], None));
    run(&f, None, 10);
    assert!(
        !f.store
            .map()
            .keys()
            .any(|k| k.starts_with("consent/reauthorization/"))
    );
    // ... and the next end of consent asks Ponto for a new one.
    setup_account(&f, "1", "2026-11-21T13:02:18.103Z", "stable");
    assert_eq!(
        expired_link(&f),
        "https://authorize.myponto.com/reauthorize/rr2"
    );
    assert_eq!(reauthorization_posts(&f), 2);
}

#[test]
fn a_consent_ponto_could_not_use_ends_the_sync_whatever_the_expected_date() {
    // Item 12: Ponto's account data (its last synchronization refused for the consent) counts,
    // not only the expected end date.
    let f = FakeImports::new();
    f.connected();
    let mut a = account(ACC, INST, json!(1), "2027-05-25T13:02:18.103Z");
    a["meta"]["latestSynchronization"]["attributes"]["status"] = json!("error");
    a["meta"]["latestSynchronization"]["attributes"]["errors"] = json!([{"code":
        "authorizationInvalid", "detail": "The authorization for this account is no longer valid."}]);
    setup_account(&f, "1", "2027-05-25T13:02:18.103Z", "stable");
    f.on_json("GET", &format!("/accounts/{ACC}"), single(a.clone()));
    reauthorization_route(&f, &["rr1"]);
    assert_eq!(
        expired_link(&f),
        "https://authorize.myponto.com/reauthorize/rr1"
    );
    // Consent given again after that refusal (Ponto has not synchronised since): it syncs.
    a["attributes"]["authorizedAt"] = json!("2026-11-25T09:00:00.000Z");
    f.on_json("GET", &format!("/accounts/{ACC}"), single(a));
    f.on_json("GET", &tx_path("100"), page(vec![], None));
    f.on_json("GET", &pending_path(), page(vec![], None));
    run(&f, None, 100);
}

#[test]
fn provider_warnings_read_as_sentences() {
    // Item 15: runs of spaces, "a experimental … is in beta", raw timestamps.
    let f = FakeImports::new();
    f.connected();
    f.set_config("page-size", "10");
    setup_account(&f, "1", "2026-12-01T23:30:00.000Z", "experimental");
    let mut usd = tx("t1", "1", &day("2026-11-24"), &day("2026-11-24"));
    usd["attributes"]["currency"] = json!("USD");
    f.on_json("GET", &tx_path("10"), page(vec![usd], None));
    f.on_json("GET", &pending_path(), page(vec![], None));
    let warnings = all_warnings(&run(&f, None, 10));
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    for w in &warnings {
        assert!(!w.contains("  "), "a run of spaces: {w:?}");
        assert!(
            !w.contains("a experimental") && !w.contains("in beta"),
            "{w}"
        );
        assert!(!w.contains("T23:30"), "a raw timestamp: {w}");
    }
    // 23:30 UTC on the 1st is the 2nd in Brussels.
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("ends on 2026-12-02 (6 days left)")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("is an experimental institution")),
        "{warnings:?}"
    );
    // A refresh Ponto refuses or that fails names what it refreshes in words, not
    // "a accountDetails refresh".
    let f = connected_account("10");
    f.on(
        "POST",
        "/synchronizations",
        vec![
            resp(400, &api_error("invalidRequest", "nope")),
            resp(201, &sync_resource("s1", "pending", json!([]))),
        ],
    );
    f.on_json(
        "GET",
        "/synchronizations/s1",
        sync_resource(
            "s1",
            "error",
            json!([{"code": "bankDown", "detail": "The bank is down"}]),
        ),
    );
    f.on_json("GET", &tx_path("100"), page(vec![], None));
    f.on_json("GET", &pending_path(), page(vec![], None));
    let mut r = req(None, None, 100);
    r.customer_ip = Some("203.0.113.7".into());
    let b = Provider::new(&f).sync(&r).unwrap();
    let words: Vec<_> = b.warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(
        words
            .iter()
            .any(|w| w.contains("could not start a refresh of the account's details")),
        "{words:?}"
    );
    assert!(
        words
            .iter()
            .any(|w| w.contains("refresh of the account's transactions from the bank failed")),
        "{words:?}"
    );
    assert!(words.iter().all(|w| !w.contains("a account")), "{words:?}");
}

#[test]
fn a_sync_statement_is_named_in_the_institutions_time() {
    // Item 15: "Ponto sync 2026-11-25T12:00:00.000Z".
    let f = connected_account("-527.34");
    f.set_config("page-size", "10");
    f.set_config("statement-grouping", "sync");
    three_days_one_page(&f);
    f.on_json("GET", &pending_path(), page(vec![], None));
    let batches = run(&f, None, 100);
    let s = &batches.last().unwrap().statements[0];
    assert_eq!(s.name, "Ponto sync 2026-11-25 13:00");
}
