//! OAuth2: the consent page (`/oauth2/auth`), the token and revoke endpoints
//! (`/ponto-connect/oauth2/*`, HTTP Basic client authentication) and the reauthorization page.

use std::collections::HashSet;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::errors::ApiError;
use crate::http::{S, query_pairs};
use crate::state::{AuthCode, Integration, World};

/// Any https URL, or http on the loopback (nothing is registered in the sandbox).
pub fn redirect_allowed(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return false;
    };
    let host = rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("")
        .rsplit('@')
        .next()
        .unwrap_or("");
    let host = host.strip_prefix('[').map_or_else(
        || host.split(':').next().unwrap_or(""),
        |h| h.split(']').next().unwrap_or(""),
    );
    match scheme {
        "https" => !host.is_empty(),
        "http" => matches!(host, "127.0.0.1" | "localhost" | "::1"),
        _ => false,
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    (
        status,
        Html(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title></head>\
             <body><h1>{t}</h1><p id=\"error\">{d}</p></body></html>",
            t = esc(title),
            d = esc(detail)
        )),
    )
        .into_response()
}

fn redirect(to: String) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn with_params(uri: &str, params: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", s.finish())
}

struct AuthRequest {
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: String,
    challenge: String,
}

/// Validates the authorization request. `Err` is either an error page (the redirect URI cannot
/// be trusted) or a redirect carrying `error=...` (RFC 6749 §4.1.2.1).
#[allow(clippy::result_large_err)] // the Err is the response itself, built once per request
fn check_request(w: &World, p: &[(String, String)]) -> Result<AuthRequest, Response> {
    let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let client_id = get("client_id").unwrap_or_default();
    if client_id != w.settings.client_id {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "Unknown client",
            "The client_id is missing or unknown to this Ponto sandbox.",
        ));
    }
    let redirect_uri = get("redirect_uri").unwrap_or_default();
    if !redirect_allowed(&redirect_uri) {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect_uri",
            "redirect_uri must be an https URL or an http URL on 127.0.0.1 or localhost.",
        ));
    }
    let state = get("state").unwrap_or_default();
    let fail = |error: &str, desc: &str| {
        redirect(with_params(
            &redirect_uri,
            &[
                ("error", error),
                ("error_description", desc),
                ("state", &state),
            ],
        ))
    };
    if get("response_type").as_deref() != Some("code") {
        return Err(fail(
            "unsupported_response_type",
            "response_type must be code",
        ));
    }
    let challenge = get("code_challenge").unwrap_or_default();
    if get("code_challenge_method").as_deref() != Some("S256") || challenge.len() < 43 {
        return Err(fail(
            "invalid_request",
            "PKCE is required: code_challenge (base64url SHA-256) with code_challenge_method=S256",
        ));
    }
    let scope = get("scope").unwrap_or_default();
    let known = ["ai", "pi", "name", "offline_access"];
    if let Some(bad) = scope
        .split(' ')
        .find(|s| !s.is_empty() && !known.contains(s))
    {
        return Err(fail("invalid_scope", &format!("unknown scope {bad}")));
    }
    Ok(AuthRequest {
        client_id,
        redirect_uri,
        scope,
        state,
        challenge,
    })
}

/// GET /oauth2/auth: the consent page, accounts grouped by institution.
pub async fn consent_page(State(sh): S, RawQuery(q): RawQuery) -> Response {
    let w = sh.world.lock().expect("world lock");
    let pairs = query_pairs(&q);
    let req = match check_request(&w, &pairs) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Ponto sandbox — connect your accounts</title>\
         <style>body{font-family:sans-serif;max-width:46em;margin:2em auto}fieldset{margin:1em 0}\
         label{display:block;padding:.2em 0}.meta{color:#666;font-size:.9em}</style></head><body>",
    );
    html.push_str(&format!(
        "<h1>Connect {org} to this application</h1>\
         <p>Choose the accounts this application may read. Sandbox data, no real bank is contacted.</p>\
         <form id=\"consent\" method=\"post\" action=\"/oauth2/auth\">",
        org = esc(w.data.organization_name)
    ));
    for (k, v) in [
        ("client_id", &req.client_id),
        ("redirect_uri", &req.redirect_uri),
        ("response_type", &"code".to_string()),
        ("scope", &req.scope),
        ("state", &req.state),
        ("code_challenge", &req.challenge),
        ("code_challenge_method", &"S256".to_string()),
    ] {
        html.push_str(&format!(
            "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
            esc(v)
        ));
    }
    for (n, inst) in w.data.institutions.iter().enumerate() {
        let accts: Vec<_> = w
            .data
            .accounts
            .iter()
            .filter(|a| a.institution == n)
            .collect();
        if accts.is_empty() {
            continue;
        }
        html.push_str(&format!(
            "<fieldset class=\"institution\" data-institution-id=\"{}\"><legend>{} <span class=\"meta\">({}, {})</span></legend>",
            esc(&inst.id),
            esc(inst.name),
            esc(inst.country.unwrap_or("international")),
            esc(inst.status)
        ));
        for a in accts {
            html.push_str(&format!(
                "<label><input type=\"checkbox\" name=\"account\" value=\"{id}\"> {desc} — {r} <span class=\"meta\">{cur}</span></label>",
                id = esc(&a.id),
                desc = esc(a.description),
                r = esc(&a.reference),
                cur = esc(a.currency)
            ));
        }
        html.push_str("</fieldset>");
    }
    html.push_str(
        "<button type=\"submit\" id=\"allow\" name=\"decision\" value=\"allow\">Allow access</button> \
         <button type=\"submit\" id=\"deny\" name=\"decision\" value=\"deny\">Cancel</button>\
         </form></body></html>",
    );
    Html(html).into_response()
}

/// POST /oauth2/auth: the consent form (application/x-www-form-urlencoded).
pub async fn consent_submit(State(sh): S, body: Bytes) -> Response {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let mut w = sh.world.lock().expect("world lock");
    let req = match check_request(&w, &pairs) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let ticked: HashSet<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "account")
        .map(|(_, v)| v.as_str())
        .collect();
    let accounts: Vec<usize> = w
        .data
        .accounts
        .iter()
        .enumerate()
        .filter(|(_, a)| ticked.contains(a.id.as_str()))
        .map(|(i, _)| i)
        .collect();
    let denied = pairs.iter().any(|(k, v)| k == "decision" && v == "deny");
    if denied || accounts.is_empty() {
        return redirect(with_params(
            &req.redirect_uri,
            &[
                ("error", "access_denied"),
                (
                    "error_description",
                    "The user did not grant access to any account.",
                ),
                ("state", &req.state),
            ],
        ));
    }
    let code = w.new_code(AuthCode {
        client_id: req.client_id,
        redirect_uri: req.redirect_uri.clone(),
        challenge: req.challenge,
        scope: req.scope,
        accounts,
        expires: Instant::now() + World::code_ttl(),
        used: false,
        integration: None,
    });
    redirect(with_params(
        &req.redirect_uri,
        &[("code", &code), ("state", &req.state)],
    ))
}

/// HTTP Basic client authentication (the SDKs may repeat client_id in the body: it must agree).
fn client_auth(w: &World, h: &HeaderMap, form: &[(String, String)]) -> Result<(), ApiError> {
    let raw = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .ok_or_else(ApiError::invalid_client)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(ApiError::invalid_client)?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(ApiError::invalid_client)?;
    let id = form_urlencoded::parse(id.as_bytes())
        .map(|(k, _)| k.into_owned())
        .next()
        .unwrap_or_default();
    if id != w.settings.client_id || secret != w.settings.client_secret {
        return Err(ApiError::invalid_client());
    }
    if let Some((_, body_id)) = form.iter().find(|(k, _)| k == "client_id")
        && *body_id != w.settings.client_id
    {
        return Err(ApiError::invalid_client());
    }
    Ok(())
}

fn form_field<'a>(form: &'a [(String, String)], k: &str) -> Result<&'a str, ApiError> {
    form.iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ApiError::oauth(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("The request is missing the required parameter {k}."),
            )
        })
}

fn token_response(w: &World, access: &str, refresh: Option<&str>, scope: &str) -> Response {
    let mut body = json!({
        "access_token": access,
        "expires_in": w.settings.access_ttl,
        "scope": scope,
        "token_type": "bearer",
    });
    if let Some(r) = refresh {
        body["refresh_token"] = json!(r);
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// POST /ponto-connect/oauth2/token
pub async fn token(State(sh): S, h: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let mut w = sh.world.lock().expect("world lock");
    client_auth(&w, &h, &form)?;
    match form_field(&form, "grant_type")? {
        "authorization_code" => {
            let code = form_field(&form, "code")?.to_string();
            let redirect_uri = form_field(&form, "redirect_uri")?.to_string();
            let verifier = form_field(&form, "code_verifier")?.to_string();
            let client_id = w.settings.client_id.clone();
            let c = w
                .codes
                .get_mut(&code)
                .ok_or_else(|| ApiError::invalid_grant("The authorization code is unknown."))?;
            if c.used {
                // A replayed code revokes what it issued (RFC 6749 §4.1.2).
                let integ = c.integration.clone();
                if let Some(i) = integ {
                    w.revoke_integration(&i);
                }
                return Err(ApiError::invalid_grant(
                    "The authorization code has already been used.",
                ));
            }
            if Instant::now() >= c.expires {
                return Err(ApiError::invalid_grant(
                    "The authorization code has expired.",
                ));
            }
            if c.client_id != client_id {
                return Err(ApiError::invalid_grant(
                    "The authorization code was issued to another client.",
                ));
            }
            if c.redirect_uri != redirect_uri {
                return Err(ApiError::invalid_grant(
                    "The redirect_uri does not match the one of the authorization request.",
                ));
            }
            let digest = Sha256::digest(verifier.as_bytes());
            let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
            if !(43..=128).contains(&verifier.len()) || expected != c.challenge {
                return Err(ApiError::invalid_grant(
                    "The code_verifier does not match the code_challenge (S256).",
                ));
            }
            c.used = true;
            let (accounts, scope) = (c.accounts.clone(), c.scope.clone());
            let integ = w.new_uuid();
            if let Some(c) = w.codes.get_mut(&code) {
                c.integration = Some(integ.clone());
            }
            w.integrations.insert(
                integ.clone(),
                Integration {
                    accounts,
                    scope: scope.clone(),
                    revoked: false,
                },
            );
            let offline = scope.split(' ').any(|s| s == "offline_access");
            let (access, refresh) = w.issue_tokens(&integ, offline);
            Ok(token_response(&w, &access, refresh.as_deref(), &scope))
        }
        "refresh_token" => {
            let rt = form_field(&form, "refresh_token")?.to_string();
            let r = w
                .refresh
                .get_mut(&rt)
                .ok_or_else(|| ApiError::invalid_grant("The refresh token is unknown."))?;
            if r.revoked {
                return Err(ApiError::invalid_grant(
                    "The refresh token has been revoked.",
                ));
            }
            if r.used {
                return Err(ApiError::invalid_grant(
                    "The refresh token has already been used; refresh tokens rotate on every use.",
                ));
            }
            r.used = true;
            let integ = r.integration.clone();
            let scope = w
                .integrations
                .get(&integ)
                .map(|i| i.scope.clone())
                .unwrap_or_default();
            let (access, refresh) = w.issue_tokens(&integ, true);
            Ok(token_response(&w, &access, refresh.as_deref(), &scope))
        }
        "client_credentials" => {
            let access = w.new_token();
            let ttl = w.settings.access_ttl;
            w.access.insert(
                access.clone(),
                crate::state::AccessToken {
                    integration: None,
                    expires: Instant::now() + std::time::Duration::from_secs(ttl),
                    revoked: false,
                },
            );
            Ok(token_response(&w, &access, None, ""))
        }
        other => Err(ApiError::oauth(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!(
                "The authorization grant type {other:?} is not supported by the authorization server."
            ),
        )),
    }
}

/// POST /ponto-connect/oauth2/revoke (RFC 7009: unknown tokens answer 200 too).
pub async fn revoke(State(sh): S, h: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let mut w = sh.world.lock().expect("world lock");
    client_auth(&w, &h, &form)?;
    let token = form_field(&form, "token")?.to_string();
    let integ = w
        .refresh
        .get(&token)
        .map(|r| r.integration.clone())
        .or_else(|| w.access.get(&token).and_then(|a| a.integration.clone()));
    if let Some(i) = integ {
        w.revoke_integration(&i);
    }
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        "{}",
    )
        .into_response())
}

/// GET /oauth2/reauthorize/{id}: the page a reauthorization request's `links.redirect` opens.
pub async fn reauthorize_page(State(sh): S, Path(id): Path<String>) -> Response {
    let w = sh.world.lock().expect("world lock");
    let Some(r) = w.reauths.get(&id).filter(|r| !r.done) else {
        return error_page(
            StatusCode::NOT_FOUND,
            "Unknown reauthorization request",
            "This reauthorization link is unknown or was already used.",
        );
    };
    let a = &w.data.accounts[r.account];
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Reauthorize account</title></head>\
         <body><h1>Renew access to {desc} ({r})</h1>\
         <form method=\"post\" action=\"/oauth2/reauthorize/{id}\">\
         <button type=\"submit\" id=\"reauthorize\">Renew bank consent</button></form></body></html>",
        desc = esc(a.description),
        r = esc(&a.reference),
        id = esc(&id)
    ))
    .into_response()
}

/// POST /oauth2/reauthorize/{id}: renews the consent for 90 days and returns to the app.
pub async fn reauthorize_submit(State(sh): S, Path(id): Path<String>) -> Response {
    let mut w = sh.world.lock().expect("world lock");
    let Some(r) = w.reauths.get_mut(&id).filter(|r| !r.done) else {
        return error_page(
            StatusCode::NOT_FOUND,
            "Unknown reauthorization request",
            "This reauthorization link is unknown or was already used.",
        );
    };
    r.done = true;
    let (idx, uri) = (r.account, r.redirect_uri.clone());
    let now = chrono::Utc::now();
    let st = &mut w.accounts[idx];
    st.consent_fault = false;
    st.authorized_at = now;
    st.consent_expires = now + chrono::Duration::days(90);
    redirect(uri)
}

#[cfg(test)]
mod tests {
    use super::redirect_allowed;

    #[test]
    fn redirect_rules() {
        assert!(redirect_allowed("http://127.0.0.1:8080/cb"));
        assert!(redirect_allowed("http://localhost/cb?x=1"));
        assert!(redirect_allowed("http://[::1]:9/cb"));
        assert!(redirect_allowed("https://erp.example.com/ponto/callback"));
        assert!(!redirect_allowed("http://evil.example/cb"));
        assert!(!redirect_allowed("http://127.0.0.1.evil.example/cb"));
        assert!(!redirect_allowed("http://localhost@evil.example/cb"));
        assert!(!redirect_allowed("javascript:alert(1)"));
        assert!(!redirect_allowed("ftp://127.0.0.1/"));
    }
}
