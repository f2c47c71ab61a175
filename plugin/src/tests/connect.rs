//! The provider's identity, the institutions list, connecting (PKCE, callback, accounts),
//! reauthorization links and disconnecting.

use super::fake_imports::*;
use super::{accounts_pages, connect_routes};
use crate::bindings::Result;
use crate::bindings::provider::ConnectStart;
use crate::bindings::types::*;
use crate::provider::{Provider, info};
use serde_json::json;

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
        serde_json::from_str(&f.store.map()["connect/pending"]).unwrap();
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
        f.store.map().get("connect/pending").is_none(),
        "bad input stores nothing"
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
    let s = f.store.map();
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
        .map()
        .insert("connection/organization".into(), "org-before".into());
    let start = begin(&f);
    let cb = format!("https://erp.example.test/cb?code=c&state={}", start.state);
    let c = Provider::new(&f).complete_connect(&cb).unwrap();
    assert_eq!(c.organization_id, "org-1");
    assert_eq!(f.store.map()["connection/organization"], "org-1");
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
        f.store.map().contains_key("connect/pending"),
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
fn disconnect_revokes_then_forgets() {
    let f = FakeImports::new();
    f.connected();
    f.store
        .map()
        .insert("connection/organization".into(), "org-1".into());
    f.on("POST", "/oauth2/revoke", vec![resp(500, &json!({}))]);
    assert!(Provider::new(&f).disconnect().is_err());
    assert!(
        f.store.map().contains_key("oauth/refresh-token"),
        "kept for a retry"
    );
    f.on("POST", "/oauth2/revoke", vec![resp(200, &json!({}))]);
    Provider::new(&f).disconnect().unwrap();
    assert!(f.store.map().is_empty());
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
