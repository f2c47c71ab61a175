//! Tokens and transport: refresh and rotation by compare-and-swap, rate limits, server errors.

use super::fake_imports::*;
use super::{accounts_pages, connect_routes};
use crate::bindings::types::*;
use crate::provider::Provider;
use serde_json::json;
use std::time::Duration;

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
    f.store.map().remove("oauth/access-token");
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
        f.store.map()["oauth/refresh-token"],
        "refresh-0",
        "nothing changed"
    );
}

#[test]
fn lost_rotation_race_uses_the_winners_access_token() {
    let f = FakeImports::new();
    f.connected();
    f.store.map().remove("oauth/access-token");
    accounts_pages(&f);
    connect_routes(&f);
    f.on(
        "POST",
        "/oauth2/token",
        vec![resp(200, &token("access-mine", "refresh-mine"))],
    );
    // The other process stored its tokens before our compare-and-swap.
    let exp = crate::jsonapi::timestamp(f.now.get() + chrono::Duration::hours(1));
    f.store.map().insert(
        "oauth/access-token".into(),
        json!({"token": "access-theirs", "expiresAt": exp}).to_string(),
    );
    f.store
        .map()
        .insert("oauth/access-token".into(), "garbage".into());
    f.store
        .interfere_before_next_swap("oauth/refresh-token", "refresh-theirs");
    // Their access token lands in the store at the same time.
    let theirs = json!({"token": "access-theirs", "expiresAt": exp}).to_string();
    f.store
        .map()
        .insert("oauth/access-token".into(), theirs.clone());
    // Stored access is valid: no refresh at all. Force one by expiring it.
    f.store.map().insert(
        "oauth/access-token".into(),
        json!({"token": "access-old", "expiresAt": "2020-01-01T00:00:00Z"}).to_string(),
    );
    let api = crate::client::Api::new(&f, crate::config::Config::load(&f).unwrap());
    let t = api.access_token().unwrap();
    // CAS failed: the stored refresh token is the winner's, never overwritten by ours.
    assert_eq!(f.store.map()["oauth/refresh-token"], "refresh-theirs");
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
