//! Behaviour of the sandbox API as a client sees it over loopback.

mod common;

use common::*;
use ponto_sandbox::{Fault, HttpFailure, Sandbox, SandboxConfig};
use serde_json::{Value, json};

fn start(transactions: u64) -> Sandbox {
    Sandbox::start(
        SandboxConfig {
            transactions,
            sync_cooldown_secs: 0,
            ..SandboxConfig::default()
        },
        0,
    )
    .unwrap()
}

fn walk(url: &str, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut next = Some(url.to_string());
    while let Some(u) = next {
        let r = get(&u, Some(token));
        assert_eq!(r.status, 200, "{u}: {}", r.body);
        let v = r.json();
        out.extend(v["data"].as_array().unwrap().iter().cloned());
        next = v["links"]["next"].as_str().map(str::to_string);
    }
    out
}

fn sync(sb: &Sandbox, token: &str, account: &str, subtype: &str) -> Value {
    let r = post_json(
        &format!("{}/synchronizations", sb.api_url()),
        Some(token),
        &json!({"data": {"type": "synchronization", "attributes": {
            "resourceType": "account", "resourceId": account, "subtype": subtype, "customerIpAddress": "203.0.113.7"}}}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    assert_eq!(v["data"]["attributes"]["status"], "pending");
    let id = v["data"]["id"].as_str().unwrap().to_string();
    let mut seen = vec![];
    for _ in 0..10 {
        let s = get(
            &format!("{}/synchronizations/{id}", sb.api_url()),
            Some(token),
        )
        .json();
        let st = s["data"]["attributes"]["status"]
            .as_str()
            .unwrap()
            .to_string();
        seen.push(st.clone());
        if st == "success" || st == "error" {
            assert!(
                seen.len() >= 2,
                "a running state is visible first: {seen:?}"
            );
            return s;
        }
    }
    panic!("sync never finished: {seen:?}");
}

#[test]
fn paging_walks_newest_first_and_back() {
    let sb = start(257);
    let ids = all_account_ids(&sb);
    let (tok, _) = connect(&sb, &[&ids[0]]);
    let url = format!(
        "{}/accounts/{}/transactions?page[limit]=25",
        sb.api_url(),
        ids[0]
    );
    let all = walk(&url, &tok);
    assert_eq!(all.len(), 257);
    let uniq: std::collections::HashSet<_> =
        all.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(uniq.len(), 257, "ids are unique");
    let dates: Vec<&str> = all
        .iter()
        .map(|t| t["attributes"]["valueDate"].as_str().unwrap())
        .collect();
    let exec: Vec<chrono::DateTime<chrono::Utc>> = all
        .iter()
        .map(|t| {
            t["attributes"]["executionDate"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(!dates.is_empty());
    for w in exec.windows(2) {
        // newest first (card payments carry a time of day within their booking day)
        assert!(
            w[0].date_naive() >= w[1].date_naive() - chrono::Duration::days(1),
            "{w:?}"
        );
    }
    // default limit is 10, and first page has no prev
    let r = get(
        &format!("{}/accounts/{}/transactions", sb.api_url(), ids[0]),
        Some(&tok),
    )
    .json();
    assert_eq!(r["data"].as_array().unwrap().len(), 10);
    assert_eq!(r["meta"]["paging"]["limit"], 10);
    assert!(r["links"]["prev"].is_null());
    assert!(
        r["links"]["first"]
            .as_str()
            .unwrap()
            .ends_with("transactions?page[limit]=10")
    );
    assert!(r["meta"]["synchronizedAt"].is_string());
    assert_eq!(
        r["meta"]["latestSynchronization"]["type"],
        "synchronization"
    );
    // second page, then prev goes back to the first page
    let p2 = get(r["links"]["next"].as_str().unwrap(), Some(&tok)).json();
    assert_eq!(p2["data"][0]["id"], all[10]["id"]);
    let back = get(p2["links"]["prev"].as_str().unwrap(), Some(&tok)).json();
    let back_ids: Vec<&Value> = back["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["id"])
        .collect();
    let first_ids: Vec<&Value> = r["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["id"])
        .collect();
    assert_eq!(back_ids, first_ids);
    assert!(back["links"]["prev"].is_null());
}

/// Exact decimal text -> minor units, no floats; refuses more decimals than the currency has.
fn minor(v: &Value, exp: usize) -> i64 {
    let s = v.to_string();
    assert!(v.is_number(), "{s} is a JSON number");
    let (i, f) = s.split_once('.').unwrap_or((&s, ""));
    let f = f.trim_end_matches('0');
    assert!(f.len() <= exp, "{s} has more decimals than the currency");
    let neg = i.starts_with('-');
    let i: i64 = i.trim_start_matches('-').parse().unwrap();
    let f: i64 = if exp == 0 {
        0
    } else {
        format!("{f:0<exp$}").parse().unwrap()
    };
    let m = i * 10i64.pow(exp as u32) + f;
    if neg { -m } else { m }
}

#[test]
fn balances_match_booked_history() {
    let sb = start(120);
    let ids = all_account_ids(&sb);
    let (tok, _) = connect(&sb, &ids.iter().map(String::as_str).collect::<Vec<_>>());
    // opening = currentBalance - sum(booked): constant when a sync books new transactions.
    let opening = |id: &str| {
        let acc = get(&format!("{}/accounts/{id}", sb.api_url()), Some(&tok)).json();
        let exp = if acc["data"]["attributes"]["currency"] == "JPY" {
            0
        } else {
            2
        };
        let txs = walk(
            &format!(
                "{}/accounts/{id}/transactions?page[limit]=100",
                sb.api_url()
            ),
            &tok,
        );
        let sum: i64 = txs
            .iter()
            .map(|t| minor(&t["attributes"]["amount"], exp))
            .sum();
        (
            minor(&acc["data"]["attributes"]["currentBalance"], exp) - sum,
            txs.len(),
        )
    };
    // The JPY account (institution in maintenance) cannot sync; its amounts must be whole yen.
    let jpy = sb
        .accounts()
        .into_iter()
        .find(|a| a.currency == "JPY")
        .unwrap();
    let _ = opening(&jpy.id);
    let mut saw_decimals = false;
    for id in &ids[..4] {
        let (before, n) = opening(id);
        sb.add_transactions(id, 2);
        let s = sync(&sb, &tok, id, "accountTransactions");
        assert_eq!(s["data"]["attributes"]["status"], "success");
        let (after, m) = opening(id);
        assert!(m > n, "the sync booked new transactions");
        assert_eq!(before, after, "balance moved by exactly the new bookings");
        let txs = get(
            &format!(
                "{}/accounts/{id}/transactions?page[limit]=100",
                sb.api_url()
            ),
            Some(&tok),
        );
        saw_decimals |= txs.body.contains(".5,") || txs.body.contains(".0,");
    }
    assert!(
        saw_decimals,
        "amounts are written like Ponto's floats (2.76, -100.5, 59.0)"
    );
}

#[test]
fn errors_have_ponto_shapes() {
    let sb = start(30);
    let ids = all_account_ids(&sb);
    let (tok, _) = connect(&sb, &[&ids[0]]);
    let r = get(&format!("{}/accounts", sb.api_url()), None);
    assert_eq!(r.status, 401);
    let v = r.json();
    assert_eq!(v["errors"][0]["code"], "invalidAccessToken");
    assert_eq!(
        v["errors"][0]["meta"]["requestId"],
        r.header("ibanity-request-id").unwrap()
    );
    let r = get(&format!("{}/accounts/{}", sb.api_url(), ids[1]), Some(&tok));
    assert_eq!(r.status, 404, "unticked account is invisible");
    assert_eq!(r.json()["errors"][0]["code"], "resourceNotFound");
    for bad in ["0", "101", "abc", "-1"] {
        let r = get(
            &format!(
                "{}/accounts/{}/transactions?page[limit]={bad}",
                sb.api_url(),
                ids[0]
            ),
            Some(&tok),
        );
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.json()["errors"][0]["source"]["parameter"], "page[limit]");
    }
    let r = get(
        &format!(
            "{}/accounts/{}/transactions?page[after]=nope",
            sb.api_url(),
            ids[0]
        ),
        Some(&tok),
    );
    assert_eq!(r.status, 400);
    let r = post_raw(
        &format!("{}/synchronizations", sb.api_url()),
        Some(&tok),
        "application/json",
        "{not json",
    );
    assert_eq!(r.status, 400);
    assert!(r.header("ibanity-request-id").is_some());
}

#[test]
fn sync_reveals_late_bookings_and_settles_pending() {
    let sb = start(60);
    let ids = all_account_ids(&sb);
    let (tok, _) = connect(&sb, &[&ids[0]]);
    let before = walk(
        &format!(
            "{}/accounts/{}/transactions?page[limit]=100",
            sb.api_url(),
            ids[0]
        ),
        &tok,
    );
    let pending = get(
        &format!("{}/accounts/{}/pending-transactions", sb.api_url(), ids[0]),
        Some(&tok),
    )
    .json();
    let pend_ids: Vec<String> = pending["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(pend_ids.len(), 2);
    sb.add_transactions(&ids[0], 3);
    let s = sync(&sb, &tok, &ids[0], "accountTransactions");
    assert_eq!(s["data"]["attributes"]["status"], "success");
    let upd_url = s["data"]["relationships"]["updatedTransactions"]["links"]["related"]
        .as_str()
        .unwrap();
    let upd = walk(upd_url, &tok);
    assert_eq!(upd.len(), 2 + 2 + 3, "2 late + 2 settled + 3 new");
    let after = walk(
        &format!(
            "{}/accounts/{}/transactions?page[limit]=100",
            sb.api_url(),
            ids[0]
        ),
        &tok,
    );
    assert_eq!(after.len(), before.len() + 7);
    for p in &pend_ids {
        assert!(
            after.iter().all(|t| t["id"] != p.as_str()),
            "settled under a new id"
        );
    }
    let acc = get(&format!("{}/accounts/{}", sb.api_url(), ids[0]), Some(&tok)).json();
    assert!(acc["data"]["meta"]["latestSynchronization"]["id"] == s["data"]["id"]);
    // too-soon repeat once a cooldown is set
    sb.inject(Fault::SyncCooldown { secs: 60 });
    let _ = sync(&sb, &tok, &ids[0], "accountDetails");
    let r = post_json(
        &format!("{}/synchronizations", sb.api_url()),
        Some(&tok),
        &json!({"data": {"type": "synchronization", "attributes": {
            "resourceType": "account", "resourceId": ids[0], "subtype": "accountDetails", "customerIpAddress": "203.0.113.7"}}}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["errors"][0]["code"], "accountRecentlySynchronized");
}

#[test]
fn faults_fire_then_clear() {
    let sb = start(30);
    let ids = all_account_ids(&sb);
    let (tok, _) = connect(&sb, &[&ids[0]]);
    let url = format!("{}/accounts/{}/transactions", sb.api_url(), ids[0]);
    sb.inject(Fault::http(HttpFailure::RateLimited {
        retry_after_secs: Some(3),
    }));
    let r = get(&url, Some(&tok));
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("3"));
    assert_eq!(
        get(&url, Some(&tok)).status,
        200,
        "used up after one request"
    );
    sb.inject(Fault::http(HttpFailure::TruncatedJson));
    let r = get(&url, Some(&tok));
    assert_eq!(r.status, 200);
    assert!(serde_json::from_str::<Value>(&r.body).is_err());
    sb.inject(
        Fault::http(HttpFailure::HtmlErrorPage { status: 502 })
            .always()
            .for_account(&ids[0]),
    );
    assert_eq!(get(&url, Some(&tok)).status, 502);
    assert_eq!(get(&url, Some(&tok)).status, 502);
    assert_eq!(
        get(&format!("{}/accounts", sb.api_url()), Some(&tok)).status,
        200,
        "other paths unaffected"
    );
    sb.inject(Fault::ClearAll);
    assert_eq!(get(&url, Some(&tok)).status, 200);
    // expired consent: sync ends in error authorizationInvalid
    sb.inject(Fault::ExpiredConsent {
        account_id: ids[0].clone(),
    });
    let s = sync(&sb, &tok, &ids[0], "accountTransactions");
    assert_eq!(s["data"]["attributes"]["status"], "error");
    assert_eq!(
        s["data"]["attributes"]["errors"][0]["code"],
        "authorizationInvalid"
    );
    // the control endpoint accepts the same JSON
    let r = post_raw(
        &format!("{}/_sandbox/faults", sb.base_url()),
        None,
        "application/json",
        r#"{"kind":"http","failure":{"kind":"serverError","status":503},"scope":{"times":2}}"#,
    );
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(get(&url, Some(&tok)).status, 503);
    assert_eq!(get(&url, Some(&tok)).status, 503);
    assert_eq!(get(&url, Some(&tok)).status, 200);
}

#[test]
fn pages_derived_ahead_are_dropped_when_a_sync_lands() {
    let sb = start(500);
    let ids = all_account_ids(&sb);
    let (tok, _) = connect(&sb, &[&ids[0]]);
    let p1 = get(
        &format!(
            "{}/accounts/{}/transactions?page[limit]=100",
            sb.api_url(),
            ids[0]
        ),
        Some(&tok),
    )
    .json();
    let old = p1["meta"]["synchronizedAt"].clone();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let s = sync(&sb, &tok, &ids[0], "accountTransactions");
    let p2 = get(p1["links"]["next"].as_str().unwrap(), Some(&tok)).json();
    assert_ne!(
        p2["meta"]["synchronizedAt"], old,
        "page 2 reflects the finished sync"
    );
    assert_eq!(p2["meta"]["latestSynchronization"]["id"], s["data"]["id"]);
    // and the walk continues seamlessly from page 1's last id
    let last = p1["data"][99]["id"].as_str().unwrap();
    assert!(p2["links"]["prev"].as_str().unwrap().contains(&format!(
        "page[before]={}",
        p2["data"][0]["id"].as_str().unwrap()
    )));
    assert_ne!(p2["data"][0]["id"].as_str().unwrap(), last);
}

#[test]
fn pontos_own_sync_shows_queued_bookings_and_leaves_pending_alone() {
    let sb = start(60);
    let ids = all_account_ids(&sb);
    let (tok, _) = connect(&sb, &[&ids[0]]);
    let tx_url = format!(
        "{}/accounts/{}/transactions?page[limit]=100",
        sb.api_url(),
        ids[0]
    );
    let pending_url = format!("{}/accounts/{}/pending-transactions", sb.api_url(), ids[0]);
    let pending_ids = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_string())
            .collect()
    };
    let before = walk(&tx_url, &tok);
    let pend_before = pending_ids(&get(&pending_url, Some(&tok)).json());
    assert_eq!(pend_before.len(), 2);
    sb.add_transactions(&ids[0], 3);
    // Queued bookings stay invisible until a transactions synchronization.
    assert_eq!(walk(&tx_url, &tok).len(), before.len());

    let sync_id = sb.background_sync(&ids[0]).unwrap();
    let after = walk(&tx_url, &tok);
    assert_eq!(after.len(), before.len() + 3 + 2, "3 new + 2 back-dated");
    assert_eq!(
        pending_ids(&get(&pending_url, Some(&tok)).json()),
        pend_before,
        "a plain accountTransactions sync does not touch the pending list"
    );
    let acc = get(&format!("{}/accounts/{}", sb.api_url(), ids[0]), Some(&tok)).json();
    let latest = &acc["data"]["meta"]["latestSynchronization"];
    assert_eq!(latest["id"], sync_id.as_str());
    assert_eq!(latest["attributes"]["subtype"], "accountTransactions");
    assert_eq!(latest["attributes"]["status"], "success");
    assert_eq!(latest["attributes"]["customerOnline"], false);
    let page = get(&tx_url, Some(&tok)).json();
    assert_eq!(
        page["meta"]["latestSynchronization"]["id"],
        sync_id.as_str()
    );
    // Its updated transactions are readable like those of any synchronization.
    let upd = walk(
        &format!(
            "{}/synchronizations/{sync_id}/updated-transactions",
            sb.api_url()
        ),
        &tok,
    );
    assert_eq!(upd.len(), 5);

    // The same through the control endpoint, with unsettled: pending settles and is renewed.
    let r = post_json(
        &format!(
            "{}/_sandbox/accounts/{}/synchronizations",
            sb.base_url(),
            ids[0]
        ),
        None,
        &json!({"subtype": "accountTransactionsWithUnsettled"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let sync2 = r.json()["id"].as_str().unwrap().to_string();
    let pend_after = pending_ids(&get(&pending_url, Some(&tok)).json());
    assert_eq!(pend_after.len(), 1);
    assert!(pend_after.iter().all(|p| !pend_before.contains(p)));
    assert_eq!(walk(&tx_url, &tok).len(), after.len() + 2, "2 settled");
    let acc = get(&format!("{}/accounts/{}", sb.api_url(), ids[0]), Some(&tok)).json();
    assert_eq!(
        acc["data"]["meta"]["latestSynchronization"]["id"],
        sync2.as_str()
    );
    assert_eq!(
        acc["data"]["meta"]["latestSynchronization"]["attributes"]["subtype"],
        "accountTransactionsWithUnsettled"
    );
    let bad = post_json(
        &format!(
            "{}/_sandbox/accounts/{}/synchronizations",
            sb.base_url(),
            ids[0]
        ),
        None,
        &json!({"subtype": "accountDetails"}),
    );
    assert_eq!(bad.status, 400);
}
