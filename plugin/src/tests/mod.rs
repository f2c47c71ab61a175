//! The provider's tests, over [`fake_imports::FakeImports`]: scenario tests by subject, and
//! property-based fuzzing of the parsers and mapping.

use crate::bindings::provider::{SyncBatch, SyncProgress, SyncRequest};
use crate::provider::Provider;
use fake_imports::*;
use serde_json::json;

mod books;
mod connect;
mod fake_imports;
mod fuzz;
mod incremental;
mod sync;
mod tokens;

// Helpers the scenario tests share.

fn tx_path(extra: &str) -> String {
    format!("/accounts/{ACC}/transactions?page[limit]={extra}")
}

fn setup_account(f: &FakeImports, balance: &str, expires: &str, status: &str) {
    let b: serde_json::Value = serde_json::from_str(balance).unwrap();
    f.on_json(
        "GET",
        &format!("/accounts/{ACC}"),
        single(account(ACC, INST, b, expires)),
    );
    f.on_json(
        "GET",
        &format!("/financial-institutions/{INST}"),
        single(institution(
            INST,
            "Super Sandbox Bank",
            Some("BE"),
            status,
            Some("Europe/Brussels"),
        )),
    );
}

fn req(cursor: Option<String>, state: Option<String>, max: u32) -> SyncRequest {
    SyncRequest {
        account_id: ACC.into(),
        cursor,
        state,
        customer_ip: None,
        since: None,
        max_lines: max,
    }
}

/// Runs a sync to the end; returns every batch.
fn run(f: &FakeImports, state: Option<String>, max: u32) -> Vec<SyncBatch> {
    let p = Provider::new(f);
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let b = p.sync(&req(cursor.clone(), state.clone(), max)).unwrap();
        let progress = b.progress.clone();
        out.push(b);
        match progress {
            SyncProgress::More(c) => cursor = Some(c),
            SyncProgress::Done(_) => return out,
        }
        assert!(out.len() < 50, "sync does not end");
    }
}

fn done_state(batches: &[SyncBatch]) -> String {
    match &batches.last().unwrap().progress {
        SyncProgress::Done(s) => s.clone(),
        other => panic!("{other:?}"),
    }
}

fn three_days_one_page(f: &FakeImports) {
    f.on_json(
        "GET",
        &tx_path("10"),
        page(
            vec![
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

fn sync_resource(id: &str, status: &str, errors: serde_json::Value) -> serde_json::Value {
    single(
        json!({"type": "synchronization", "id": id, "attributes": {"resourceType": "account",
        "resourceId": ACC, "subtype": "accountTransactions", "status": status, "errors": errors,
        "createdAt": "2026-11-25T11:59:00.000Z", "updatedAt": "2026-11-25T11:59:01.000Z"}}),
    )
}

fn pending_path() -> String {
    format!("/accounts/{ACC}/pending-transactions?page[limit]=100")
}

fn state_json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap()
}

fn connect_routes(f: &FakeImports) {
    f.on_json(
        "GET",
        &format!("/financial-institutions/{INST}"),
        single(institution(
            INST,
            "Super Sandbox Bank",
            Some("BE"),
            "stable",
            Some("Europe/Brussels"),
        )),
    );
    f.on_json(
        "GET",
        &format!("/financial-institutions/{OTHER_INST}"),
        single(institution(
            OTHER_INST,
            "Other Bank",
            Some("NL"),
            "stable",
            Some("Europe/Amsterdam"),
        )),
    );
    f.on(
        "POST",
        "/oauth2/token",
        vec![resp(200, &token("access-1", "refresh-1"))],
    );
    f.on_json(
        "GET",
        "/userinfo",
        json!({"sub": "org-1", "name": "Acme BV", "onboardingComplete": true}),
    );
}

fn accounts_pages(f: &FakeImports) {
    let next = format!("{BASE}/accounts?page[after]={ACC2}&page[limit]=100");
    f.on_json(
        "GET",
        "/accounts?page[limit]=100",
        page(
            vec![
                account(ACC, INST, json!(-527.34), "2027-05-25T13:02:18.103Z"),
                account(ACC2, INST, json!(1000), "2027-05-25T13:02:18.103Z"),
            ],
            Some(&next),
        ),
    );
    f.on_json(
        "GET",
        &format!("/accounts?page[after]={ACC2}&page[limit]=100"),
        page(
            vec![account(
                ACC_OTHER,
                OTHER_INST,
                json!(5.5),
                "2027-05-25T13:02:18.103Z",
            )],
            None,
        ),
    );
}

/// Routes a walk of `/transactions` pages of `size` lines, newest first, each page linked to
/// the next by `page[after]=` its last id, as Ponto links them.
fn tx_pages(f: &FakeImports, size: u32, pages: Vec<Vec<serde_json::Value>>) {
    let mut path = tx_path(&size.to_string());
    let count = pages.len();
    for (i, lines) in pages.into_iter().enumerate() {
        let last = lines
            .last()
            .and_then(|t| t["id"].as_str())
            .unwrap_or_default();
        let next_path = tx_path(&format!("{size}&page[after]={last}"));
        let next = (i + 1 < count).then(|| format!("{BASE}{next_path}"));
        f.on_json("GET", &path, page(lines, next.as_deref()));
        path = next_path;
    }
}

/// A connected fake whose account `ACC` holds `balance`, with a consent until 2027 at a stable
/// institution.
fn connected_account(balance: &str) -> FakeImports {
    let f = FakeImports::new();
    f.connected();
    setup_account(&f, balance, "2027-05-25T13:02:18.103Z", "stable");
    f
}
