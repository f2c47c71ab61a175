//! Scenario tests of the provider over the fake host.

use crate::bindings::Result;
use crate::bindings::provider::{ConnectStart, SyncBatch, SyncProgress, SyncRequest};
use crate::bindings::types::*;
use crate::provider::{Provider, info};
use crate::testing::*;
use serde_json::json;
use std::time::Duration;

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

#[test]
fn info_lists_every_config_key() {
    let i = info();
    assert_eq!(i.id, "ponto");
    assert_eq!(i.api_version, "0.2.0");
    for k in [
        "api-url",
        "client-id",
        "client-secret",
        "date-field",
        "statement-grouping",
        "overlap-days",
    ] {
        assert!(i.config_keys.iter().any(|c| c == k), "{k}");
    }
}

#[test]
fn institutions_all_pages_filtered_with_defaults() {
    let f = FakeImports::new();
    let first = "/financial-institutions?page[limit]=100&filter[name][contains]=bank";
    let next = format!("{BASE}/financial-institutions?page[after]=i2&page[limit]=100");
    f.on_json(
        "GET",
        first,
        page(
            vec![
                institution(
                    "i1",
                    "Super Sandbox Bank",
                    Some("BE"),
                    "stable",
                    Some("Europe/Brussels"),
                ),
                institution("i2", "Other Thing", Some("NL"), "stable", None),
            ],
            Some(&next),
        ),
    );
    f.on_json(
        "GET",
        "/financial-institutions?page[after]=i2&page[limit]=100",
        page(
            vec![institution(
                "i3",
                "Beta BANK International",
                None,
                "beta",
                None,
            )],
            None,
        ),
    );
    let list = Provider::new(&f)
        .list_institutions(&InstitutionFilter {
            country: None,
            name_contains: Some("bank".into()),
        })
        .unwrap();
    insta::assert_json_snapshot!("institutions", list);
    assert_eq!(list.len(), 2);
    assert_eq!(list[1].time_zone, "Europe/Brussels");
    assert_eq!(list[1].status, InstitutionStatus::Beta);
}

#[test]
fn next_link_to_another_host_is_malformed() {
    let f = FakeImports::new();
    f.on_json(
        "GET",
        "/financial-institutions?page[limit]=100",
        page(
            vec![institution("i1", "A", Some("BE"), "stable", None)],
            Some("https://evil.test/steal"),
        ),
    );
    match Provider::new(&f).list_institutions(&InstitutionFilter::default()) {
        Err(ProviderError::MalformedResponse(m)) => {
            assert_eq!(m.field.as_deref(), Some("links.next"));
            assert!(m.reason.contains("evil.test"), "{}", m.reason);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        f.requests.borrow().len(),
        1,
        "the foreign link was not followed"
    );
    let bad = Provider::new(&f).list_institutions(&InstitutionFilter {
        country: Some("Belgium".into()),
        name_contains: None,
    });
    assert!(matches!(bad, Err(ProviderError::InvalidArgument(a)) if a.name == "filter.country"));
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

fn begin(f: &FakeImports) -> ConnectStart {
    Provider::new(f)
        .begin_connect(INST, "https://erp.example.test/cb")
        .unwrap()
}

#[test]
fn begin_connect_builds_a_pkce_authorization_url() {
    let f = FakeImports::new();
    connect_routes(&f);
    let start = begin(&f);
    let q: std::collections::BTreeMap<_, _> = crate::url::query_pairs(&start.authorization_url)
        .into_iter()
        .collect();
    assert!(
        start
            .authorization_url
            .starts_with("https://auth.example.test/oauth2/auth?")
    );
    assert_eq!(q["client_id"], "client-1");
    assert_eq!(q["redirect_uri"], "https://erp.example.test/cb");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["scope"], "ai name offline_access");
    assert_eq!(q["state"], start.state);
    assert_eq!(q["code_challenge_method"], "S256");
    let pending: serde_json::Value =
        serde_json::from_str(&f.store.borrow()["connect/pending"]).unwrap();
    use base64::Engine;
    use sha2::Digest;
    let verifier = pending["verifier"].as_str().unwrap();
    assert!(verifier.len() >= 43);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    assert_eq!(q["code_challenge"], challenge);
}

#[test]
fn begin_connect_names_bad_arguments_and_missing_config() {
    let f = FakeImports::new();
    connect_routes(&f);
    let p = Provider::new(&f);
    let name = |r: Result<ConnectStart>| match r {
        Err(ProviderError::InvalidArgument(a)) => a.name,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        name(p.begin_connect("", "https://erp/cb")),
        "institution-id"
    );
    assert_eq!(name(p.begin_connect(INST, "not a url")), "redirect-uri");
    assert_eq!(
        name(p.begin_connect("nope", "https://erp/cb")),
        "institution-id"
    );
    f.config.borrow_mut().remove("client-secret");
    assert_eq!(
        name(p.begin_connect(INST, "https://erp/cb")),
        "client-secret"
    );
    f.set_config("client-secret", "s");
    f.set_config("overlap-days", "seven");
    assert_eq!(
        name(p.begin_connect(INST, "https://erp/cb")),
        "overlap-days"
    );
    assert!(
        f.store.borrow().get("connect/pending").is_none(),
        "bad input stores nothing"
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

#[test]
fn complete_connect_keeps_the_chosen_institutions_accounts() {
    let f = FakeImports::new();
    connect_routes(&f);
    accounts_pages(&f);
    let start = begin(&f);
    let cb = format!(
        "https://erp.example.test/cb?code=abc.def&state={}",
        start.state
    );
    let c = Provider::new(&f).complete_connect(&cb).unwrap();
    insta::assert_json_snapshot!("connection", c);
    assert_eq!(c.accounts.len(), 2);
    assert_eq!(c.authorized_account_count, 3);
    let token_req = f
        .requests
        .borrow()
        .iter()
        .find(|r| r.url.ends_with("/oauth2/token"))
        .cloned()
        .unwrap();
    let form: std::collections::BTreeMap<_, _> = form_urlencoded::parse(token_req.body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "abc.def");
    assert_eq!(form["redirect_uri"], "https://erp.example.test/cb");
    assert!(form.contains_key("code_verifier"));
    assert_eq!(
        FakeImports::header(&token_req, "authorization").unwrap(),
        "Basic Y2xpZW50LTE6c2VjcmV0LTE="
    );
    let s = f.store.borrow();
    assert_eq!(s["oauth/refresh-token"], "refresh-1");
    assert_eq!(s["connection/organization"], "org-1");
    assert_eq!(s["connection/institution"], INST);
    assert!(
        !s.contains_key("connect/pending"),
        "the attempt is single use"
    );
    assert!(
        !f.logs
            .borrow()
            .iter()
            .any(|l| l.contains("access-1") || l.contains("refresh-1"))
    );
}

#[test]
fn complete_connect_reports_the_organisation_that_gave_the_consent() {
    // An update of credentials signed in as another organisation: the connection names the new
    // one (the ERP refuses or re-links; it restores this storage when it refuses).
    let f = FakeImports::new();
    connect_routes(&f);
    accounts_pages(&f);
    f.store
        .borrow_mut()
        .insert("connection/organization".into(), "org-before".into());
    let start = begin(&f);
    let cb = format!("https://erp.example.test/cb?code=c&state={}", start.state);
    let c = Provider::new(&f).complete_connect(&cb).unwrap();
    assert_eq!(c.organization_id, "org-1");
    assert_eq!(f.store.borrow()["connection/organization"], "org-1");
}

#[test]
fn complete_connect_with_no_account_at_the_institution_names_the_others() {
    let f = FakeImports::new();
    connect_routes(&f);
    f.on_json(
        "GET",
        "/accounts?page[limit]=100",
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
    let start = begin(&f);
    let cb = format!("https://erp.example.test/cb?code=c&state={}", start.state);
    match Provider::new(&f).complete_connect(&cb) {
        Err(ProviderError::NoAccountsForInstitution(e)) => {
            assert_eq!(e.institution, "Super Sandbox Bank");
            assert_eq!(e.authorized_institutions, vec!["Other Bank".to_string()]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn callback_state_and_refusal() {
    let f = FakeImports::new();
    connect_routes(&f);
    let start = begin(&f);
    let p = Provider::new(&f);
    let forged = p.complete_connect("https://erp.example.test/cb?code=c&state=forged");
    assert!(matches!(forged, Err(ProviderError::StateMismatch(_))));
    assert!(
        f.store.borrow().contains_key("connect/pending"),
        "a forged callback cancels nothing"
    );
    let refused = p.complete_connect(&format!(
        "https://erp.example.test/cb?error=access_denied&state={}",
        start.state
    ));
    assert!(
        matches!(refused, Err(ProviderError::ReconnectRequired(m)) if m.contains("access_denied"))
    );
    assert!(!f.calls().iter().any(|c| c.contains("oauth2/token")));
    let again = p.complete_connect(&format!(
        "https://erp.example.test/cb?code=c&state={}",
        start.state
    ));
    assert!(matches!(again, Err(ProviderError::InvalidArgument(a)) if a.name == "callback-url"));
}

#[test]
fn used_authorization_code_is_reconnect_required() {
    let f = FakeImports::new();
    connect_routes(&f);
    f.on(
        "POST",
        "/oauth2/token",
        vec![resp(
            400,
            &json!({"error": "invalid_grant", "error_description": "code used"}),
        )],
    );
    let start = begin(&f);
    let r =
        Provider::new(&f).complete_connect(&format!("https://erp/cb?code=c&state={}", start.state));
    assert!(
        matches!(r, Err(ProviderError::ReconnectRequired(_))),
        "{r:?}"
    );
    f.on(
        "POST",
        "/oauth2/token",
        vec![resp(401, &json!({"error": "invalid_client"}))],
    );
    let start = begin(&f);
    let r =
        Provider::new(&f).complete_connect(&format!("https://erp/cb?code=c&state={}", start.state));
    assert!(matches!(r, Err(ProviderError::InvalidClient(_))), "{r:?}");
}

#[test]
fn expired_access_token_is_refreshed_and_rotation_stored_before_use() {
    let f = FakeImports::new();
    f.connected();
    f.now
        .set(f.now.get() + chrono::Duration::minutes(59) + chrono::Duration::seconds(30));
    accounts_pages(&f);
    connect_routes(&f);
    f.on(
        "POST",
        "/oauth2/token",
        vec![resp(200, &token("access-1", "refresh-1"))],
    );
    let accounts = Provider::new(&f).list_accounts(None).unwrap();
    assert_eq!(accounts.len(), 3);
    let calls = f.calls();
    assert_eq!(calls[0], "POST /oauth2/token");
    let form: std::collections::BTreeMap<_, _> =
        form_urlencoded::parse(f.requests.borrow()[0].body.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(form["grant_type"], "refresh_token");
    assert_eq!(form["refresh_token"], "refresh-0");
    // At the first API call with the new access token, the new refresh token is already stored.
    let at_use = &f.store_at_request.borrow()[1];
    assert_eq!(at_use["oauth/refresh-token"], "refresh-1");
    assert_eq!(
        FakeImports::header(&f.requests.borrow()[1], "authorization").unwrap(),
        "Bearer access-1"
    );
    assert_eq!(
        calls.iter().filter(|c| c.contains("oauth2/token")).count(),
        1
    );
}

#[test]
fn used_refresh_token_is_reconnect_required_without_retry_loop() {
    let f = FakeImports::new();
    f.connected();
    f.store.borrow_mut().remove("oauth/access-token");
    f.on(
        "POST",
        "/oauth2/token",
        vec![resp(
            400,
            &json!({"error": "invalid_grant", "error_description": "already used"}),
        )],
    );
    let r = Provider::new(&f).list_accounts(None);
    assert!(
        matches!(r, Err(ProviderError::ReconnectRequired(_))),
        "{r:?}"
    );
    assert_eq!(f.calls(), vec!["POST /oauth2/token"]);
    assert_eq!(
        f.store.borrow()["oauth/refresh-token"],
        "refresh-0",
        "nothing changed"
    );
}

#[test]
fn lost_rotation_race_uses_the_winners_access_token() {
    let f = FakeImports::new();
    f.connected();
    f.store.borrow_mut().remove("oauth/access-token");
    accounts_pages(&f);
    connect_routes(&f);
    f.on(
        "POST",
        "/oauth2/token",
        vec![resp(200, &token("access-mine", "refresh-mine"))],
    );
    // The other process stored its tokens before our compare-and-swap.
    let exp = crate::jsonapi::timestamp(f.now.get() + chrono::Duration::hours(1));
    f.store.borrow_mut().insert(
        "oauth/access-token".into(),
        json!({"token": "access-theirs", "expiresAt": exp}).to_string(),
    );
    f.store
        .borrow_mut()
        .insert("oauth/access-token".into(), "garbage".into());
    *f.cas_conflict.borrow_mut() = Some(("oauth/refresh-token".into(), "refresh-theirs".into()));
    // Their access token lands in the store at the same time.
    let theirs = json!({"token": "access-theirs", "expiresAt": exp}).to_string();
    f.store
        .borrow_mut()
        .insert("oauth/access-token".into(), theirs.clone());
    // Stored access is valid: no refresh at all. Force one by expiring it.
    f.store.borrow_mut().insert(
        "oauth/access-token".into(),
        json!({"token": "access-old", "expiresAt": "2020-01-01T00:00:00Z"}).to_string(),
    );
    let api = crate::client::Api::new(&f, crate::config::Config::load(&f).unwrap());
    let t = api.access_token().unwrap();
    // CAS failed: the stored refresh token is the winner's, never overwritten by ours.
    assert_eq!(f.store.borrow()["oauth/refresh-token"], "refresh-theirs");
    assert_eq!(
        t, "access-mine",
        "the expired stored token is not used; ours is still valid"
    );
}

#[test]
fn invalid_access_token_triggers_one_refresh_and_one_retry() {
    let f = FakeImports::new();
    f.connected();
    connect_routes(&f);
    f.on(
        "POST",
        "/oauth2/token",
        vec![resp(200, &token("access-1", "refresh-1"))],
    );
    f.on(
        "GET",
        "/accounts?page[limit]=100",
        vec![
            resp(
                401,
                &api_error("invalidAccessToken", "Your access token is invalid."),
            ),
            resp(
                200,
                &page(
                    vec![account(ACC, INST, json!(1), "2027-01-01T00:00:00Z")],
                    None,
                ),
            ),
        ],
    );
    let accounts = Provider::new(&f).list_accounts(Some(INST)).unwrap();
    assert_eq!(accounts.len(), 1);
    let calls = f.calls();
    assert_eq!(
        calls[..3],
        [
            "GET /accounts?page[limit]=100",
            "POST /oauth2/token",
            "GET /accounts?page[limit]=100"
        ]
    );
    // Twice refused: reconnect, not a loop.
    f.on(
        "GET",
        "/accounts?page[limit]=100",
        vec![resp(401, &api_error("invalidAccessToken", "no"))],
    );
    f.on(
        "POST",
        "/oauth2/token",
        vec![resp(200, &token("access-2", "refresh-2"))],
    );
    let r = Provider::new(&f).list_accounts(None);
    assert!(
        matches!(r, Err(ProviderError::ReconnectRequired(_))),
        "{r:?}"
    );
}

#[test]
fn rate_limits_and_server_errors() {
    let f = FakeImports::new();
    f.connected();
    connect_routes(&f);
    let ok = resp(
        200,
        &page(
            vec![account(ACC, INST, json!(1), "2027-01-01T00:00:00Z")],
            None,
        ),
    );
    f.on(
        "GET",
        "/accounts?page[limit]=100",
        vec![
            resp_headers(
                429,
                &api_error("tooManyRequests", "slow"),
                &[("retry-after", "2")],
            ),
            resp(503, &json!({})),
            ok.clone(),
        ],
    );
    assert_eq!(Provider::new(&f).list_accounts(None).unwrap().len(), 1);
    assert_eq!(
        *f.sleeps.borrow(),
        vec![Duration::from_secs(2), Duration::from_millis(500)]
    );

    f.sleeps.borrow_mut().clear();
    f.on(
        "GET",
        "/accounts?page[limit]=100",
        vec![resp_headers(429, &json!({}), &[("retry-after", "120")])],
    );
    match Provider::new(&f).list_accounts(None) {
        Err(ProviderError::RateLimited(r)) => assert_eq!(r.retry_after_seconds, Some(120)),
        other => panic!("{other:?}"),
    }
    assert!(
        f.sleeps.borrow().is_empty(),
        "a long Retry-After is not slept through"
    );

    f.on(
        "GET",
        "/accounts?page[limit]=100",
        vec![resp(502, &api_error("gatewayError", "down"))],
    );
    match Provider::new(&f).list_accounts(None) {
        Err(ProviderError::Upstream(u)) => {
            assert_eq!(u.status, 502);
            assert_eq!(u.request_id.as_deref(), Some("req-502"));
            assert!(u.advice.is_some());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        *f.sleeps.borrow(),
        vec![
            Duration::from_millis(500),
            Duration::from_millis(1000),
            Duration::from_millis(2000)
        ]
    );
}

// ---- sync ---------------------------------------------------------------------------------------

/// Five transactions over three Brussels days, newest first, two per page.
fn three_days(f: &FakeImports) {
    let p2 = format!("{BASE}{}", tx_path("2&page[after]=t2"));
    let p3 = format!("{BASE}{}", tx_path("2&page[after]=t4"));
    f.on_json(
        "GET",
        &tx_path("2"),
        page(
            vec![
                tx("t1", "-100.0", &day("2026-11-24"), &day("2026-11-24")),
                tx("t2", "2.76", &day("2026-11-24"), &day("2026-11-23")),
            ],
            Some(&p2),
        ),
    );
    f.on_json(
        "GET",
        &tx_path("2&page[after]=t2"),
        page(
            vec![
                tx("t3", "1000", &day("2026-11-23"), &day("2026-11-23")),
                tx("t4", "-0.01", &day("2026-11-20"), &day("2026-11-20")),
            ],
            Some(&p3),
        ),
    );
    f.on_json(
        "GET",
        &tx_path("2&page[after]=t4"),
        page(
            vec![tx("t5", "50", &day("2026-11-20"), &day("2026-11-19"))],
            None,
        ),
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
    let f = FakeImports::new();
    f.connected();
    f.set_config("page-size", "2");
    setup_account(&f, "-527.34", "2027-05-25T13:02:18.103Z", "stable");
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
    let f = FakeImports::new();
    f.connected();
    f.set_config("page-size", "2");
    f.set_config("overlap-days", "1");
    setup_account(&f, "-527.34", "2027-05-25T13:02:18.103Z", "stable");
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

#[test]
fn a_transaction_in_another_currency_is_kept_and_flagged() {
    let f = FakeImports::new();
    f.connected();
    setup_account(&f, "-527.34", "2027-05-25T13:02:18.103Z", "stable");
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
    let f = FakeImports::new();
    f.connected();
    f.set_config("page-size", "2");
    setup_account(&f, "-527.34", "2027-05-25T13:02:18.103Z", "stable");
    three_days(&f);
    let first = run(&f, None, 100);
    let state = done_state(&first);

    // Later: a booking back-dated to the 23rd arrives, the balance moves with it.
    let f = FakeImports::new();
    f.connected();
    f.set_config("page-size", "10");
    setup_account(&f, "-517.34", "2027-05-25T13:02:18.103Z", "stable");
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
    let f = FakeImports::new();
    f.connected();
    f.set_config("page-size", "10");
    setup_account(&f, "-500.00", "2027-05-25T13:02:18.103Z", "stable");
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
    let f = FakeImports::new();
    f.connected();
    f.set_config("page-size", "2");
    setup_account(&f, "-527.34", "2027-05-25T13:02:18.103Z", "stable");
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
        let f = FakeImports::new();
        f.connected();
        f.set_config("page-size", "2");
        f.set_config("statement-grouping", grouping);
        setup_account(&f, "-527.34", "2027-05-25T13:02:18.103Z", "stable");
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
    let f = FakeImports::new();
    f.connected();
    f.set_config("date-field", "value");
    setup_account(&f, "100", "2027-05-25T13:02:18.103Z", "stable");
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
    let f = FakeImports::new();
    f.connected();
    setup_account(&f, "1", "2027-05-25T13:02:18.103Z", "stable");
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

fn sync_resource(id: &str, status: &str, errors: serde_json::Value) -> serde_json::Value {
    single(
        json!({"type": "synchronization", "id": id, "attributes": {"resourceType": "account",
        "resourceId": ACC, "subtype": "accountTransactions", "status": status, "errors": errors,
        "createdAt": "2026-11-25T11:59:00.000Z", "updatedAt": "2026-11-25T11:59:01.000Z"}}),
    )
}

#[test]
fn user_present_sync_refreshes_polls_and_applies_updated_transactions() {
    let f = FakeImports::new();
    f.connected();
    setup_account(&f, "10", "2027-05-25T13:02:18.103Z", "stable");
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
    let f = FakeImports::new();
    f.connected();
    f.set_config("sync-poll-attempts", "2");
    setup_account(&f, "10", "2027-05-25T13:02:18.103Z", "stable");
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
    let f = FakeImports::new();
    f.connected();
    setup_account(&f, "null", "2027-05-25T13:02:18.103Z", "stable");
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
    let f = FakeImports::new();
    f.connected();
    setup_account(&f, "-527.34", "2027-05-25T13:02:18.103Z", "stable");
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

#[test]
fn disconnect_revokes_then_forgets() {
    let f = FakeImports::new();
    f.connected();
    f.store
        .borrow_mut()
        .insert("connection/organization".into(), "org-1".into());
    f.on("POST", "/oauth2/revoke", vec![resp(500, &json!({}))]);
    assert!(Provider::new(&f).disconnect().is_err());
    assert!(
        f.store.borrow().contains_key("oauth/refresh-token"),
        "kept for a retry"
    );
    f.on("POST", "/oauth2/revoke", vec![resp(200, &json!({}))]);
    Provider::new(&f).disconnect().unwrap();
    assert!(f.store.borrow().is_empty());
    let r = f.requests.borrow().last().cloned().unwrap();
    assert_eq!(
        String::from_utf8(r.body.into_bytes()).unwrap(),
        "token=refresh-0"
    );
}

#[test]
fn request_reauthorization_returns_pontos_link() {
    let f = FakeImports::new();
    f.connected();
    f.on(
        "POST",
        &format!("/accounts/{ACC}/reauthorization-requests"),
        vec![resp(
            201,
            &single(json!({"type": "reauthorizationRequest", "id": "rr1",
            "links": {"redirect": "https://authorize.myponto.com/r/1"}})),
        )],
    );
    let p = Provider::new(&f);
    assert_eq!(
        p.request_reauthorization(ACC, "https://erp/cb").unwrap(),
        "https://authorize.myponto.com/r/1"
    );
    assert!(matches!(
        p.request_reauthorization("nope", "https://erp/cb"),
        Err(ProviderError::NotFound(_))
    ));
    assert!(matches!(
        p.request_reauthorization(ACC, "cb"),
        Err(ProviderError::InvalidArgument(_))
    ));
}

// ---- incremental sync: known-id stop, balance checksum, pending rule ---------------------------

/// The account as Ponto shows it after synchronization `sync` (id, subtype).
fn account_after(f: &FakeImports, balance: &str, sync: (&str, &str)) {
    let b: serde_json::Value = serde_json::from_str(balance).unwrap();
    let mut a = account(ACC, INST, b, "2027-05-25T13:02:18.103Z");
    a["meta"]["latestSynchronization"]["id"] = json!(sync.0);
    a["meta"]["latestSynchronization"]["attributes"]["subtype"] = json!(sync.1);
    f.on_json("GET", &format!("/accounts/{ACC}"), single(a));
}

fn pending_path() -> String {
    format!("/accounts/{ACC}/pending-transactions?page[limit]=100")
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

fn state_json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap()
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
    let p2 = format!("{BASE}{}", tx_path("2&page[after]=t1"));
    let p3 = format!("{BASE}{}", tx_path("2&page[after]=late"));
    let p4 = format!("{BASE}{}", tx_path("2&page[after]=t4"));
    f.on_json(
        "GET",
        &tx_path("2"),
        page(
            vec![
                tx("n1", "10", &day("2026-11-25"), &day("2026-11-25")),
                tx("t1", "-100.0", &day("2026-11-24"), &day("2026-11-24")),
            ],
            Some(&p2),
        ),
    );
    f.on_json(
        "GET",
        &tx_path("2&page[after]=t1"),
        page(
            vec![
                tx("t2", "2.76", &day("2026-11-24"), &day("2026-11-23")),
                tx("late", "10", &day("2026-11-23"), &day("2026-11-23")),
            ],
            Some(&p3),
        ),
    );
    f.on_json(
        "GET",
        &tx_path("2&page[after]=late"),
        page(
            vec![
                tx("t3", "1000", &day("2026-11-23"), &day("2026-11-23")),
                tx("t4", "-0.01", &day("2026-11-20"), &day("2026-11-20")),
            ],
            Some(&p4),
        ),
    );
    f.on_json(
        "GET",
        &tx_path("2&page[after]=t4"),
        page(
            vec![tx("t5", "50", &day("2026-11-20"), &day("2026-11-19"))],
            None,
        ),
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
    let f = FakeImports::new();
    f.connected();
    f.set_config("page-size", "10");
    setup_account(&f, "-527.34", "2027-05-25T13:02:18.103Z", "stable");
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
    let f = FakeImports::new();
    f.connected();
    f.set_config("page-size", "2");
    setup_account(&f, "-527.34", "2027-05-25T13:02:18.103Z", "stable");
    let p2 = format!("{BASE}{}", tx_path("2&page[after]=t2"));
    let p3 = format!("{BASE}{}", tx_path("2&page[after]=t1"));
    f.on_json(
        "GET",
        &tx_path("2"),
        page(
            vec![
                tx("t1", "-100.0", &day("2026-11-24"), &day("2026-11-24")),
                tx("t2", "2.76", &day("2026-11-24"), &day("2026-11-23")),
            ],
            Some(&p2),
        ),
    );
    f.on_json(
        "GET",
        &tx_path("2&page[after]=t2"),
        page(
            vec![
                tx("t3", "1000", &day("2026-11-23"), &day("2026-11-23")),
                tx("t1", "-987700", &day("2026-11-20"), &day("2026-11-20")),
            ],
            Some(&p3),
        ),
    );
    f.on_json(
        "GET",
        &tx_path("2&page[after]=t1"),
        page(
            vec![tx("t5", "50", &day("2026-11-20"), &day("2026-11-19"))],
            None,
        ),
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
    let f = FakeImports::new();
    f.connected();
    f.set_config("page-size", "10");
    setup_account(&f, "-100", "2027-05-25T13:02:18.103Z", "stable");
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
    let f = FakeImports::new();
    f.connected();
    f.set_config("page-size", "10");
    setup_account(&f, "-515.34", "2027-05-25T13:02:18.103Z", "stable");
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
    let f = FakeImports::new();
    f.connected();
    f.set_config("page-size", "10");
    setup_account(&f, "-527.34", "2027-05-25T13:02:18.103Z", "stable");
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
    let f = FakeImports::new();
    f.connected();
    f.set_config("page-size", "10");
    setup_account(&f, "-527.34", "2027-05-25T13:02:18.103Z", "stable");
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
            .borrow()
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
    let f = FakeImports::new();
    f.connected();
    setup_account(&f, "10", "2027-05-25T13:02:18.103Z", "stable");
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
    let f = FakeImports::new();
    f.connected();
    f.set_config("page-size", "10");
    f.set_config("statement-grouping", "sync");
    setup_account(&f, "-527.34", "2027-05-25T13:02:18.103Z", "stable");
    three_days_one_page(&f);
    f.on_json("GET", &pending_path(), page(vec![], None));
    let batches = run(&f, None, 100);
    let s = &batches.last().unwrap().statements[0];
    assert_eq!(s.name, "Ponto sync 2026-11-25 13:00");
}
