//! A plain HTTP client for the tests: no redirects followed, statuses returned, not raised.
#![allow(dead_code)]

use base64::Engine;
use ponto_sandbox::Sandbox;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status, self.body
            )
        })
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into()
}

fn finish(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Resp {
    let mut r = r.expect("request reached the sandbox");
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_string().unwrap_or_default();
    Resp {
        status,
        headers,
        body,
    }
}

pub fn get(url: &str, token: Option<&str>) -> Resp {
    let mut req = agent().get(url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    finish(req.call())
}

pub fn delete(url: &str, token: Option<&str>) -> Resp {
    let mut req = agent().delete(url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    finish(req.call())
}

pub fn post_raw(url: &str, token: Option<&str>, content_type: &str, body: &str) -> Resp {
    let mut req = agent().post(url).header("Content-Type", content_type);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    finish(req.send(body))
}

pub fn post_json(url: &str, token: Option<&str>, body: &Value) -> Resp {
    post_raw(url, token, "application/vnd.api+json", &body.to_string())
}

pub fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

pub fn post_form(url: &str, authorization: Option<&str>, form: &[(&str, &str)]) -> Resp {
    let mut req = agent().post(url);
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    finish(req.send_form(form.iter().copied()))
}

pub fn pkce(seed: &str) -> (String, String) {
    let verifier = format!("{seed}-verifier-0123456789abcdefghijklmnopqrstuvwxyz");
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// Scripted consent: POSTs the form as a browser would and returns the authorization code.
pub fn authorize(sb: &Sandbox, accounts: &[&str], scope: &str, challenge: &str) -> String {
    let mut form = vec![
        ("client_id", "sandbox-client-id"),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", scope),
        ("state", "st-1"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    for a in accounts {
        form.push(("account", a));
    }
    let r = post_form(&sb.auth_url(), None, &form);
    assert_eq!(r.status, 302, "{}", r.body);
    let loc = r.header("location").expect("Location").to_string();
    let q = loc.split_once('?').expect("query").1;
    let pairs: Vec<(String, String)> = form_urlencoded::parse(q.as_bytes()).into_owned().collect();
    assert!(pairs.contains(&("state".into(), "st-1".into())), "{loc}");
    pairs
        .into_iter()
        .find(|(k, _)| k == "code")
        .unwrap_or_else(|| panic!("no code in {loc}"))
        .1
}

pub fn token_url(sb: &Sandbox) -> String {
    format!("{}/oauth2/token", sb.api_url())
}

pub fn client_auth() -> String {
    basic("sandbox-client-id", "sandbox-client-secret")
}

/// The whole linking flow; returns (access token, refresh token).
pub fn connect(sb: &Sandbox, accounts: &[&str]) -> (String, String) {
    let (verifier, challenge) = pkce("t");
    let code = authorize(sb, accounts, "ai name offline_access", &challenge);
    let r = post_form(
        &token_url(sb),
        Some(&client_auth()),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("client_id", "sandbox-client-id"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    (
        v["access_token"].as_str().unwrap().to_string(),
        v["refresh_token"].as_str().unwrap().to_string(),
    )
}

pub fn all_account_ids(sb: &Sandbox) -> Vec<String> {
    sb.accounts().into_iter().map(|a| a.id).collect()
}
