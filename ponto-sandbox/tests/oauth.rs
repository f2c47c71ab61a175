//! The token endpoint refuses what Ponto refuses, in OAuth2's error shape.

mod common;

use common::*;
use ponto_sandbox::{Fault, Sandbox, SandboxConfig};

fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig::default(), 0).unwrap()
}

fn exchange(sb: &Sandbox, code: &str, redirect: &str, verifier: &str) -> Resp {
    post_form(
        &token_url(sb),
        Some(&client_auth()),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ],
    )
}

fn refresh(sb: &Sandbox, rt: &str) -> Resp {
    post_form(
        &token_url(sb),
        Some(&client_auth()),
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
}

fn assert_oauth_error(r: &Resp, status: u16, error: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let v = r.json();
    assert_eq!(v["error"], error, "{}", r.body);
    assert!(v["error_description"].is_string());
    assert!(r.header("ibanity-request-id").is_some());
}

#[test]
fn wrong_code_verifier_is_refused_and_code_stays_unused() {
    let sb = sandbox();
    let ids = all_account_ids(&sb);
    let (verifier, challenge) = pkce("a");
    let code = authorize(&sb, &[&ids[0]], "ai offline_access", &challenge);
    let (other, _) = pkce("b");
    assert_oauth_error(
        &exchange(&sb, &code, REDIRECT, &other),
        400,
        "invalid_grant",
    );
    // a refused attempt does not burn the code
    assert_eq!(exchange(&sb, &code, REDIRECT, &verifier).status, 200);
}

#[test]
fn reused_code_is_refused_and_revokes_its_tokens() {
    let sb = sandbox();
    let ids = all_account_ids(&sb);
    let (verifier, challenge) = pkce("a");
    let code = authorize(&sb, &[&ids[0]], "ai offline_access", &challenge);
    let r = exchange(&sb, &code, REDIRECT, &verifier);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["token_type"], "bearer");
    assert_eq!(v["expires_in"], 1799);
    let access = v["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        get(&format!("{}/accounts", sb.api_url()), Some(&access)).status,
        200
    );
    assert_oauth_error(
        &exchange(&sb, &code, REDIRECT, &verifier),
        400,
        "invalid_grant",
    );
    let r = get(&format!("{}/accounts", sb.api_url()), Some(&access));
    assert_eq!(r.status, 401, "tokens from a replayed code are revoked");
    assert_eq!(r.json()["errors"][0]["code"], "invalidAccessToken");
}

#[test]
fn wrong_redirect_uri_is_refused() {
    let sb = sandbox();
    let ids = all_account_ids(&sb);
    let (verifier, challenge) = pkce("a");
    let code = authorize(&sb, &[&ids[0]], "ai offline_access", &challenge);
    assert_oauth_error(
        &exchange(&sb, &code, "http://127.0.0.1:9/other", &verifier),
        400,
        "invalid_grant",
    );
}

#[test]
fn refresh_tokens_rotate_and_are_single_use() {
    let sb = sandbox();
    let ids = all_account_ids(&sb);
    let (_, rt1) = connect(&sb, &[&ids[0]]);
    let r = refresh(&sb, &rt1);
    assert_eq!(r.status, 200, "{}", r.body);
    let rt2 = r.json()["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2, "a new refresh token every time");
    let r = refresh(&sb, &rt1);
    assert_oauth_error(&r, 400, "invalid_grant");
    assert!(
        r.json()["error_hint"]
            .as_str()
            .unwrap()
            .contains("already been used")
    );
    assert_eq!(refresh(&sb, &rt2).status, 200);
}

#[test]
fn injected_refresh_faults_and_revocation() {
    let sb = sandbox();
    let ids = all_account_ids(&sb);
    let (_, rt) = connect(&sb, &[&ids[0]]);
    sb.inject(Fault::UsedRefreshToken);
    assert_oauth_error(&refresh(&sb, &rt), 400, "invalid_grant");
    let (access, rt) = connect(&sb, &[&ids[0]]);
    sb.inject(Fault::RevokedRefreshToken);
    let r = refresh(&sb, &rt);
    assert_oauth_error(&r, 400, "invalid_grant");
    assert!(r.json()["error_hint"].as_str().unwrap().contains("revoked"));
    let _ = access;
    // revoke endpoint ends the integration
    let (access, rt) = connect(&sb, &[&ids[0]]);
    let r = post_form(
        &format!("{}/oauth2/revoke", sb.api_url()),
        Some(&client_auth()),
        &[("token", &rt)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        get(&format!("{}/accounts", sb.api_url()), Some(&access)).status,
        401
    );
}

#[test]
fn client_auth_and_grant_type_are_checked() {
    let sb = sandbox();
    let r = post_form(
        &token_url(&sb),
        Some(&basic("sandbox-client-id", "wrong")),
        &[("grant_type", "client_credentials")],
    );
    assert_oauth_error(&r, 401, "invalid_client");
    assert!(r.header("www-authenticate").is_some());
    assert_oauth_error(
        &post_form(
            &token_url(&sb),
            None,
            &[("grant_type", "client_credentials")],
        ),
        401,
        "invalid_client",
    );
    assert_oauth_error(
        &post_form(
            &token_url(&sb),
            Some(&client_auth()),
            &[("grant_type", "password")],
        ),
        400,
        "unsupported_grant_type",
    );
    assert_oauth_error(
        &post_form(
            &token_url(&sb),
            Some(&client_auth()),
            &[("grant_type", "authorization_code")],
        ),
        400,
        "invalid_request",
    );
    // client credentials: a token without refresh token, refused by user endpoints
    let r = post_form(
        &token_url(&sb),
        Some(&client_auth()),
        &[("grant_type", "client_credentials")],
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    assert!(v.get("refresh_token").is_none());
    let t = v["access_token"].as_str().unwrap();
    assert_eq!(
        get(&format!("{}/accounts", sb.api_url()), Some(t)).status,
        401
    );
}

#[test]
fn consent_page_lists_accounts_and_denies_without_ticks() {
    let sb = sandbox();
    let (_, challenge) = pkce("a");
    let q = format!(
        "client_id=sandbox-client-id&redirect_uri={}&response_type=code&scope=ai&state=xyz&code_challenge={challenge}&code_challenge_method=S256",
        form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let page = get(&format!("{}?{q}", sb.auth_url()), None);
    assert_eq!(page.status, 200);
    for a in sb.accounts() {
        assert!(
            page.body
                .contains(&format!("name=\"account\" value=\"{}\"", a.id)),
            "checkbox for {}",
            a.id
        );
        assert!(page.body.contains(&a.institution_name));
    }
    let r = post_form(
        &sb.auth_url(),
        None,
        &[
            ("client_id", "sandbox-client-id"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "ai"),
            ("state", "xyz"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    assert_eq!(r.status, 302);
    let loc = r.header("location").unwrap();
    assert!(
        loc.starts_with(REDIRECT)
            && loc.contains("error=access_denied")
            && loc.contains("state=xyz"),
        "{loc}"
    );
    // an untrusted redirect_uri gets an error page, never a redirect
    let bad = get(
        &format!(
            "{}?client_id=sandbox-client-id&redirect_uri=http%3A%2F%2Fevil.example%2F&response_type=code",
            sb.auth_url()
        ),
        None,
    );
    assert_eq!(bad.status, 400);
    assert!(bad.header("location").is_none());
}
