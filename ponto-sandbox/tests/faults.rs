//! The fault kinds a hostile or broken Ponto can show, as a client sees them over loopback.

mod common;

use common::*;
use ponto_sandbox::{Fault, HttpFailure, Sandbox, SandboxConfig};
use serde_json::Value;

fn start() -> Sandbox {
    Sandbox::start(
        SandboxConfig {
            transactions: 30,
            sync_cooldown_secs: 0,
            ..SandboxConfig::default()
        },
        0,
    )
    .unwrap()
}

fn page_url(sb: &Sandbox, account: &str) -> String {
    format!(
        "{}/accounts/{account}/transactions?page[limit]=10",
        sb.api_url()
    )
}

#[test]
fn a_reset_connection_gives_no_complete_answer() {
    let sb = start();
    let ids = all_account_ids(&sb);
    let (tok, _) = connect(&sb, &[&ids[0]]);
    sb.inject(Fault::http(HttpFailure::ConnectionReset));
    let r = agent()
        .get(&page_url(&sb, &ids[0]))
        .header("Authorization", &format!("Bearer {tok}"))
        .call();
    let failed = match r {
        Err(_) => true,
        Ok(mut resp) => resp.body_mut().read_to_string().is_err(),
    };
    assert!(failed, "the body must not arrive whole");
    assert_eq!(get(&page_url(&sb, &ids[0]), Some(&tok)).status, 200);
}

#[test]
fn an_error_without_detail_has_only_its_code() {
    let sb = start();
    let ids = all_account_ids(&sb);
    let (tok, _) = connect(&sb, &[&ids[0]]);
    sb.inject(Fault::http(HttpFailure::JsonApiErrorWithoutDetail {
        status: 400,
        code: Some("invalidRequest".into()),
    }));
    let r = get(&page_url(&sb, &ids[0]), Some(&tok));
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        serde_json::json!({"errors": [{"code": "invalidRequest"}]})
    );
}

#[test]
fn body_rewrites_hit_every_resource_and_keep_the_rest_exact() {
    let sb = start();
    let ids = all_account_ids(&sb);
    let (tok, _) = connect(&sb, &[&ids[0]]);
    let url = page_url(&sb, &ids[0]);
    let clean = get(&url, Some(&tok)).body;

    sb.inject(Fault::http(HttpFailure::MissingAttribute {
        field: "amount".into(),
    }));
    let v = get(&url, Some(&tok)).json();
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 10);
    assert!(data.iter().all(|t| t["attributes"].get("amount").is_none()));
    assert!(data.iter().all(|t| t["attributes"]["currency"].is_string()));

    sb.inject(Fault::http(HttpFailure::NullValue {
        field: "currency".into(),
    }));
    let v = get(&url, Some(&tok)).json();
    assert!(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["attributes"]["currency"].is_null())
    );

    sb.inject(Fault::http(HttpFailure::UnknownEnumValue {
        field: "remittanceInformationType".into(),
        value: "quantumEncoded".into(),
    }));
    let body = get(&url, Some(&tok)).body;
    assert!(body.contains(r#""remittanceInformationType":"quantumEncoded""#));
    // Only that member changed: putting the old values back gives the page byte for byte.
    let restored = body.replace("\"quantumEncoded\"", "\"structured\"");
    let expected = clean.replace("\"unstructured\"", "\"structured\"");
    assert_eq!(restored, expected);

    sb.inject(Fault::http(HttpFailure::ForeignNextLink {
        origin: "https://attacker.example".into(),
    }));
    let v = get(&url, Some(&tok)).json();
    let next = v["links"]["next"].as_str().unwrap();
    assert!(
        next.starts_with("https://attacker.example/ponto-connect/accounts/"),
        "{next}"
    );
    assert_eq!(
        v["links"]["first"],
        serde_json::from_str::<Value>(&clean).unwrap()["links"]["first"]
    );

    sb.inject(Fault::http(HttpFailure::HugePage { bytes: 1 << 20 }));
    let r = get(&url, Some(&tok));
    assert_eq!(r.body.len(), 1 << 20);
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 10);
}

#[test]
fn a_looping_next_link_leads_back_to_the_first_page() {
    let sb = start();
    let ids = all_account_ids(&sb);
    let (tok, _) = connect(&sb, &[&ids[0]]);
    sb.inject(
        Fault::http(HttpFailure::LoopingNextLink)
            .always()
            .on_path("/transactions"),
    );
    let first = page_url(&sb, &ids[0]);
    let p1 = get(&first, Some(&tok)).json();
    let second = p1["links"]["next"].as_str().unwrap().to_string();
    assert_ne!(second, first, "the first page is served as it is");
    let p2 = get(&second, Some(&tok)).json();
    assert_eq!(p2["links"]["next"].as_str(), Some(first.as_str()));
    sb.inject(Fault::ClearAll);
}

#[test]
fn the_sandbox_lists_every_secret_it_issued() {
    let sb = start();
    let ids = all_account_ids(&sb);
    let (tok, _) = connect(&sb, &[&ids[0]]);
    let s = sb.issued_secrets();
    assert!(s.access_tokens.contains(&tok));
    assert_eq!(s.authorization_codes.len(), 1);
    assert_eq!(s.client_secret, "sandbox-client-secret");
}
