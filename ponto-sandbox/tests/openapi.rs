//! Every body the sandbox serves, validated against the facts of Ponto's official OpenAPI v2 spec
//! (`openapi-facts.json`: fields, types, formats and required names, derived from the spec by
//! `spec_facts::derive`; the spec's text is not in the repository). Where the spec has no endpoint
//! (pending transactions, oauth2) or no error schema, the shapes of api-notes.md are checked.
//!
//! Two relaxations, both forced by the spec itself (its own examples break them):
//! - `null` is accepted for any property (examples carry `"fee": null`, `"cardReference": null`
//!   for fields typed number/string; OpenAPI 3.0 would need `nullable`, which the spec omits);
//! - a bare `type: object` without `properties` (`any` in the facts) accepts any JSON value (the
//!   generator's way of writing an untyped field: `counterpartName`, `holderName`,
//!   `maintenanceType` hold strings).
//!
//! One strictness the spec does not ask for: an `attributes` object may carry only attributes
//! the spec declares (catches misspelt names), except `customerOnline` on synchronizations,
//! which the spec's examples show.

mod common;
mod spec_facts;

use common::*;
use ponto_sandbox::{Fault, HttpFailure, Sandbox, SandboxConfig};
use serde_json::{Value, json};
use spec_facts::Facts;

struct Validator<'a> {
    facts: &'a Facts,
    errors: Vec<String>,
}

impl Validator<'_> {
    /// Checks `v` against a type expression of the facts (see `spec_facts`).
    fn check(&mut self, expr: &str, v: &Value, at: &str) {
        if v.is_null() {
            return;
        }
        if let Some(item) = expr
            .strip_prefix("array<")
            .and_then(|e| e.strip_suffix('>'))
        {
            match v.as_array() {
                Some(items) => {
                    for (i, it) in items.iter().enumerate() {
                        self.check(item, it, &format!("{at}[{i}]"));
                    }
                }
                None => self
                    .errors
                    .push(format!("{at}: expected an array, got {v}")),
            }
            return;
        }
        match expr {
            "any" => {}
            "number" if !v.is_number() => self
                .errors
                .push(format!("{at}: expected a number, got {v}")),
            "integer" if !(v.is_i64() || v.is_u64()) => self
                .errors
                .push(format!("{at}: expected an integer, got {v}")),
            "boolean" if !v.is_boolean() => self
                .errors
                .push(format!("{at}: expected a boolean, got {v}")),
            "number" | "integer" | "boolean" => {}
            s if s == "string" || s.starts_with("string/") => match v.as_str() {
                Some(text) => match s.strip_prefix("string/") {
                    Some("date-time") if chrono::DateTime::parse_from_rfc3339(text).is_err() => {
                        self.errors
                            .push(format!("{at}: {text:?} is not an RFC 3339 date-time"))
                    }
                    Some("uuid") if !is_uuid(text) => {
                        self.errors.push(format!("{at}: {text:?} is not a UUID"))
                    }
                    _ => {}
                },
                None => self
                    .errors
                    .push(format!("{at}: expected a string, got {v}")),
            },
            name => self.object(name, v, at),
        }
    }

    fn object(&mut self, name: &str, v: &Value, at: &str) {
        let facts = self.facts;
        let ty = facts
            .types
            .get(name)
            .unwrap_or_else(|| panic!("the facts name no type {name}"));
        let Some(obj) = v.as_object() else {
            self.errors
                .push(format!("{at}: expected an object, got {v}"));
            return;
        };
        for k in &ty.required {
            if !obj.contains_key(k) {
                self.errors
                    .push(format!("{at}: required property {k} is missing"));
            }
        }
        for (k, val) in obj {
            match ty.fields.get(k) {
                Some(e) => self.check(e, val, &format!("{at}.{k}")),
                None if at.ends_with(".attributes")
                    && !(k == "customerOnline" && obj.contains_key("subtype")) =>
                {
                    self.errors
                        .push(format!("{at}: attribute {k} is not declared by the spec"));
                }
                None => {}
            }
        }
    }
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

struct Run {
    facts: Facts,
    sb: Sandbox,
    token: String,
    checked: Vec<String>,
    errors: Vec<String>,
}

impl Run {
    /// The body type the spec gives for (path template, method, status).
    fn spec_schema(&self, path: &str, method: &str, status: u16) -> String {
        let key = spec_facts::response_key(method, path, status);
        self.facts
            .responses
            .get(&key)
            .unwrap_or_else(|| panic!("openapi-facts.json has no {key}"))
            .clone()
    }

    fn validate(&mut self, label: &str, r: &Resp, schema: &str) -> Value {
        let v = r.json();
        let mut val = Validator {
            facts: &self.facts,
            errors: vec![],
        };
        val.check(schema, &v, "$");
        self.errors
            .extend(val.errors.into_iter().map(|e| format!("{label}: {e}")));
        self.common(label, r);
        v
    }

    fn common(&mut self, label: &str, r: &Resp) {
        if r.header("ibanity-request-id").is_none() {
            self.errors
                .push(format!("{label}: no ibanity-request-id header"));
        }
        self.checked.push(format!("{label} -> {}", r.status));
    }

    /// A JSON:API collection: the spec's schema plus api-notes' links/meta.paging envelope.
    fn collection(&mut self, label: &str, r: &Resp, schema: &str, synced: bool) -> Value {
        assert_eq!(r.status, 200, "{label}: {}", r.body);
        let v = self.validate(label, r, schema);
        if !v["links"]["first"].is_string() {
            self.errors.push(format!("{label}: links.first missing"));
        }
        let limit = &v["meta"]["paging"]["limit"];
        if !(limit.is_u64() && (1..=100).contains(&limit.as_u64().unwrap())) {
            self.errors
                .push(format!("{label}: meta.paging.limit is {limit}"));
        }
        if synced {
            let s = v["meta"]["synchronizedAt"].as_str().unwrap_or("");
            if chrono::DateTime::parse_from_rfc3339(s).is_err() {
                self.errors
                    .push(format!("{label}: meta.synchronizedAt {s:?}"));
            }
            let mut val = Validator {
                facts: &self.facts,
                errors: vec![],
            };
            val.check(
                "synchronization",
                &v["meta"]["latestSynchronization"],
                "$.meta.latestSynchronization",
            );
            if v["meta"]["latestSynchronization"]["type"] != "synchronization" {
                val.errors
                    .push("$.meta.latestSynchronization missing".into());
            }
            self.errors
                .extend(val.errors.into_iter().map(|e| format!("{label}: {e}")));
        }
        v
    }

    /// JSON:API error body (api-notes §3.1): errors[].code, detail, meta.requestId = header.
    fn api_error(&mut self, label: &str, r: &Resp, status: u16, code: &str) {
        self.common(label, r);
        if r.status != status {
            self.errors.push(format!(
                "{label}: status {} (expected {status}): {}",
                r.status, r.body
            ));
            return;
        }
        let v = r.json();
        let e = &v["errors"][0];
        let ok = e["code"] == code
            && e["detail"].as_str().is_some_and(|d| !d.is_empty())
            && e["meta"]["requestId"].as_str() == r.header("ibanity-request-id");
        if !ok || v["errors"].as_array().map(Vec::len) != Some(1) {
            self.errors
                .push(format!("{label}: not a Ponto error {code}: {}", r.body));
        }
    }

    /// OAuth2 error body (api-notes §3.1): error, error_description, optional error_hint.
    fn oauth_error(&mut self, label: &str, r: &Resp, status: u16, error: &str) {
        self.common(label, r);
        let v = r.json();
        let obj = v.as_object().unwrap();
        let ok = r.status == status
            && v["error"] == error
            && v["error_description"].is_string()
            && obj
                .keys()
                .all(|k| ["error", "error_description", "error_hint"].contains(&k.as_str()));
        if !ok {
            self.errors.push(format!(
                "{label}: not an OAuth error {error}/{status}: {} {}",
                r.status, r.body
            ));
        }
    }
}

#[test]
fn every_endpoint_matches_the_spec() {
    let facts = spec_facts::load();
    let sb = Sandbox::start(
        SandboxConfig {
            transactions: 150,
            ..SandboxConfig::default()
        },
        0,
    )
    .unwrap();
    let ids = all_account_ids(&sb);
    let all: Vec<&str> = ids.iter().map(String::as_str).collect();
    let (token, refresh) = connect(&sb, &all);
    let mut run = Run {
        facts,
        sb,
        token,
        checked: vec![],
        errors: vec![],
    };
    let api = run.sb.api_url();
    let tok = run.token.clone();
    let t = Some(tok.as_str());

    // Root (not in the spec): a links map of URL templates (api-notes §1.1).
    let r = get(&api, None);
    run.common("GET /", &r);
    let v = r.json();
    for k in [
        "accounts",
        "account.transactions",
        "account.pendingTransactions",
        "synchronizations",
        "financialInstitutions",
        "userinfo",
    ] {
        if !v["links"][k].is_string() {
            run.errors.push(format!("GET /: links.{k} missing"));
        }
    }

    // Financial institutions: public and organisation lists, filters, single, 404.
    let fi_list = run.spec_schema("/financial-institutions", "get", 200);
    let fi_one = run.spec_schema("/financial-institutions/{id}", "get", 200);
    let public = run.collection(
        "GET /financial-institutions (public)",
        &get(
            &format!("{api}/financial-institutions?page[limit]=100"),
            None,
        ),
        &fi_list,
        false,
    );
    let statuses: Vec<&str> = public["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["attributes"]["status"].as_str().unwrap())
        .collect();
    for s in ["stable", "beta", "experimental"] {
        assert!(statuses.contains(&s), "an institution with status {s}");
    }
    assert!(
        public["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["attributes"]["country"].is_null()),
        "one international"
    );
    assert!(
        public["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["attributes"]["maintenanceType"].is_string())
    );
    run.collection(
        "GET /financial-institutions (organisation)",
        &get(&format!("{api}/financial-institutions"), t),
        &fi_list,
        false,
    );
    let f = run.collection(
        "GET /financial-institutions?filter",
        &get(
            &format!(
                "{api}/financial-institutions?filter[country][eq]=BE&filter[name][contains]=sandbox"
            ),
            None,
        ),
        &fi_list,
        false,
    );
    assert_eq!(f["data"].as_array().unwrap().len(), 1, "{f}");
    let paged = run.collection(
        "GET /financial-institutions page 1",
        &get(&format!("{api}/financial-institutions?page[limit]=3"), None),
        &fi_list,
        false,
    );
    let next = paged["links"]["next"].as_str().unwrap().to_string();
    run.collection(
        "GET /financial-institutions page 2",
        &get(&next, None),
        &fi_list,
        false,
    );
    let fi_id = public["data"][0]["id"].as_str().unwrap().to_string();
    let r = get(&format!("{api}/financial-institutions/{fi_id}"), None);
    assert_eq!(r.status, 200);
    run.validate("GET /financial-institutions/{id}", &r, &fi_one);
    run.api_error(
        "GET /financial-institutions/{unknown}",
        &get(
            &format!("{api}/financial-institutions/00000000-0000-4000-8000-000000000000"),
            None,
        ),
        404,
        "resourceNotFound",
    );
    run.api_error(
        "GET /financial-institutions?filter[bogus]",
        &get(
            &format!("{api}/financial-institutions?filter[bogus][eq]=1"),
            None,
        ),
        400,
        "invalidParameter",
    );

    // Accounts.
    let acc_list = run.spec_schema("/accounts", "get", 200);
    let acc_one = run.spec_schema("/accounts/{id}", "get", 200);
    let accs = run.collection(
        "GET /accounts",
        &get(&format!("{api}/accounts?page[limit]=100"), t),
        &acc_list,
        false,
    );
    let currencies: Vec<&str> = accs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attributes"]["currency"].as_str().unwrap())
        .collect();
    for c in ["EUR", "USD", "JPY"] {
        assert!(currencies.contains(&c));
    }
    for a in accs["data"].as_array().unwrap() {
        let m = &a["meta"];
        if !(m["availability"] == "available" || m["availability"] == "readonly")
            || !m["synchronizedAt"].is_string()
        {
            run.errors.push(format!("GET /accounts: account meta {m}"));
        }
        let mut val = Validator {
            facts: &run.facts,
            errors: vec![],
        };
        val.check(
            "synchronization",
            &m["latestSynchronization"],
            "$.meta.latestSynchronization",
        );
        run.errors.extend(val.errors);
    }
    run.collection(
        "GET /accounts page 1",
        &get(&format!("{api}/accounts?page[limit]=2"), t),
        &acc_list,
        false,
    );
    let r = get(&format!("{api}/accounts/{}", ids[0]), t);
    assert_eq!(r.status, 200);
    run.validate("GET /accounts/{id}", &r, &acc_one);
    run.api_error(
        "GET /accounts/{unknown}",
        &get(
            &format!("{api}/accounts/00000000-0000-4000-8000-000000000000"),
            t,
        ),
        404,
        "resourceNotFound",
    );
    run.api_error(
        "GET /accounts (no token)",
        &get(&format!("{api}/accounts"), None),
        401,
        "invalidAccessToken",
    );
    run.api_error(
        "GET /accounts (bad token)",
        &get(&format!("{api}/accounts"), Some("nope")),
        401,
        "invalidAccessToken",
    );

    // Transactions.
    let tx_list = run.spec_schema("/accounts/{accountId}/transactions", "get", 200);
    let tx_one = run.spec_schema("/accounts/{accountId}/transactions/{id}", "get", 200);
    for id in &ids {
        let first = run.collection(
            "GET /accounts/{id}/transactions",
            &get(
                &format!("{api}/accounts/{id}/transactions?page[limit]=100"),
                t,
            ),
            &tx_list,
            true,
        );
        if let Some(n) = first["links"]["next"].as_str() {
            let second = run.collection(
                "GET /accounts/{id}/transactions (next)",
                &get(n, t),
                &tx_list,
                true,
            );
            let prev = second["links"]["prev"].as_str().unwrap().to_string();
            run.collection(
                "GET /accounts/{id}/transactions (prev)",
                &get(&prev, t),
                &tx_list,
                true,
            );
        }
        let tx_id = first["data"][0]["id"].as_str().unwrap();
        let r = get(&format!("{api}/accounts/{id}/transactions/{tx_id}"), t);
        assert_eq!(r.status, 200);
        let one = run.validate("GET /accounts/{id}/transactions/{id}", &r, &tx_one);
        assert_eq!(one["data"], first["data"][0]);
    }
    run.api_error(
        "GET /accounts/{id}/transactions/{unknown}",
        &get(
            &format!(
                "{api}/accounts/{}/transactions/00000000-0000-4000-8000-000000000000",
                ids[0]
            ),
            t,
        ),
        404,
        "resourceNotFound",
    );
    run.api_error(
        "GET transactions?page[limit]=1000",
        &get(
            &format!("{api}/accounts/{}/transactions?page[limit]=1000", ids[0]),
            t,
        ),
        400,
        "invalidParameter",
    );
    run.api_error(
        "GET transactions?page[after]=garbage",
        &get(
            &format!("{api}/accounts/{}/transactions?page[after]=garbage", ids[0]),
            t,
        ),
        400,
        "invalidParameter",
    );

    // Pending transactions: not in the spec; api-notes §2.6 says the transaction attribute set.
    let pend = run.collection(
        "GET /accounts/{id}/pending-transactions",
        &get(
            &format!("{api}/accounts/{}/pending-transactions", ids[0]),
            t,
        ),
        &tx_list,
        true,
    );
    assert!(
        pend["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["type"] == "pendingTransaction")
    );
    let pid = pend["data"][0]["id"].as_str().unwrap();
    let r = get(
        &format!("{api}/accounts/{}/pending-transactions/{pid}", ids[0]),
        t,
    );
    run.validate("GET /accounts/{id}/pending-transactions/{id}", &r, &tx_one);

    // Synchronizations.
    let sync_one = run.spec_schema("/synchronizations", "post", 201);
    let sync_get = run.spec_schema("/synchronizations/{id}", "get", 200);
    let body = |subtype: &str, acc: &str| json!({"data": {"type": "synchronization", "attributes": {"resourceType": "account", "resourceId": acc, "subtype": subtype, "customerIpAddress": "203.0.113.7"}}});
    let r = post_json(
        &format!("{api}/synchronizations"),
        t,
        &body("accountTransactions", &ids[0]),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let created = run.validate("POST /synchronizations", &r, &sync_one);
    let sid = created["data"]["id"].as_str().unwrap().to_string();
    let mut status = String::new();
    for _ in 0..5 {
        let r = get(&format!("{api}/synchronizations/{sid}"), t);
        let v = run.validate("GET /synchronizations/{id}", &r, &sync_get);
        status = v["data"]["attributes"]["status"]
            .as_str()
            .unwrap()
            .to_string();
        if status == "success" {
            break;
        }
    }
    assert_eq!(status, "success");
    let upd = run.collection(
        "GET /synchronizations/{id}/updated-transactions",
        &get(
            &format!("{api}/synchronizations/{sid}/updated-transactions"),
            t,
        ),
        &run.spec_schema(
            "/synchronizations/{synchronizationId}/updated-transactions",
            "get",
            200,
        ),
        false,
    );
    assert!(!upd["data"].as_array().unwrap().is_empty());
    run.collection(
        "GET /synchronizations/{id}/updated-pending-transactions",
        &get(
            &format!("{api}/synchronizations/{sid}/updated-pending-transactions"),
            t,
        ),
        &tx_list,
        false,
    );
    run.api_error(
        "POST /synchronizations (too soon)",
        &post_json(
            &format!("{api}/synchronizations"),
            t,
            &body("accountTransactions", &ids[0]),
        ),
        400,
        "accountRecentlySynchronized",
    );
    let mut no_ip = body("accountDetails", &ids[0]);
    no_ip["data"]["attributes"]
        .as_object_mut()
        .unwrap()
        .remove("customerIpAddress");
    run.api_error(
        "POST /synchronizations (no customerIpAddress)",
        &post_json(&format!("{api}/synchronizations"), t, &no_ip),
        400,
        "validationError",
    );
    run.api_error(
        "POST /synchronizations (bad subtype)",
        &post_json(
            &format!("{api}/synchronizations"),
            t,
            &body("accountTransactionsPending", &ids[0]),
        ),
        400,
        "validationError",
    );
    run.api_error(
        "POST /synchronizations (bad JSON)",
        &post_raw(
            &format!("{api}/synchronizations"),
            t,
            "application/json",
            "{",
        ),
        400,
        "invalidRequestBody",
    );
    run.api_error(
        "POST /synchronizations (unknown account)",
        &post_json(
            &format!("{api}/synchronizations"),
            t,
            &body("accountDetails", "00000000-0000-4000-8000-000000000000"),
        ),
        404,
        "resourceNotFound",
    );
    run.api_error(
        "GET /synchronizations/{unknown}",
        &get(
            &format!("{api}/synchronizations/00000000-0000-4000-8000-000000000000"),
            t,
        ),
        404,
        "resourceNotFound",
    );
    // Expired consent (the seeded international PSP account): the sync ends in error.
    let psp = run
        .sb
        .accounts()
        .into_iter()
        .find(|a| a.subtype == "psp")
        .unwrap()
        .id;
    let r = post_json(
        &format!("{api}/synchronizations"),
        t,
        &body("accountTransactions", &psp),
    );
    let sid = r.json()["data"]["id"].as_str().unwrap().to_string();
    let _ = get(&format!("{api}/synchronizations/{sid}"), t);
    let r = get(&format!("{api}/synchronizations/{sid}"), t);
    let v = run.validate("GET /synchronizations/{id} (error)", &r, &sync_get);
    assert_eq!(v["data"]["attributes"]["status"], "error");
    let e = &v["data"]["attributes"]["errors"][0];
    assert!(
        e["code"] == "authorizationInvalid" && e["detail"].is_string() && e["meta"].is_object(),
        "{e}"
    );

    // Reauthorization request.
    let r = post_json(
        &format!("{api}/accounts/{psp}/reauthorization-requests"),
        t,
        &json!({"data": {"type": "reauthorizationRequest", "attributes": {"redirectUri": "https://erp.example/back"}}}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let v = run.validate(
        "POST /accounts/{id}/reauthorization-requests",
        &r,
        &run.spec_schema(
            "/accounts/{accountId}/reauthorization-requests",
            "post",
            201,
        ),
    );
    assert!(v["data"]["links"]["redirect"].is_string());
    run.api_error(
        "POST reauthorization-requests (no redirectUri)",
        &post_json(
            &format!("{api}/accounts/{psp}/reauthorization-requests"),
            t,
            &json!({"data": {"type": "reauthorizationRequest", "attributes": {}}}),
        ),
        400,
        "validationError",
    );

    // Userinfo: flat JSON (api-notes §1.4 and the spec's example), checked against the
    // attributes of the spec's userInfo schema.
    let r = get(&format!("{api}/userinfo"), t);
    assert_eq!(r.status, 200);
    let ui_attrs = "userInfo.attributes";
    let v = run.validate("GET /userinfo", &r, ui_attrs);
    assert!(
        v["sub"].is_string() && v["name"].is_string() && v.get("data").is_none(),
        "{v}"
    );

    // OAuth endpoints (not in the spec): api-notes §1.3 token response and OAuth error shape.
    let tr = post_form(
        &token_url(&run.sb),
        Some(&client_auth()),
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    );
    run.common("POST /oauth2/token", &tr);
    let v = tr.json();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert!(
        v["access_token"].is_string()
            && v["refresh_token"].is_string()
            && v["expires_in"].is_u64()
            && v["token_type"] == "bearer"
            && v["scope"].is_string(),
        "{v}"
    );
    assert!(
        keys.iter().all(|k| [
            "access_token",
            "expires_in",
            "refresh_token",
            "scope",
            "token_type"
        ]
        .contains(k)),
        "{keys:?}"
    );
    run.oauth_error(
        "POST /oauth2/token (reused refresh)",
        &post_form(
            &token_url(&run.sb),
            Some(&client_auth()),
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        ),
        400,
        "invalid_grant",
    );
    run.oauth_error(
        "POST /oauth2/token (bad client)",
        &post_form(
            &token_url(&run.sb),
            Some(&basic("x", "y")),
            &[("grant_type", "client_credentials")],
        ),
        401,
        "invalid_client",
    );
    run.oauth_error(
        "POST /oauth2/token (grant)",
        &post_form(
            &token_url(&run.sb),
            Some(&client_auth()),
            &[("grant_type", "implicit")],
        ),
        400,
        "unsupported_grant_type",
    );
    run.oauth_error(
        "POST /oauth2/revoke (no token)",
        &post_form(&format!("{api}/oauth2/revoke"), Some(&client_auth()), &[]),
        400,
        "invalid_request",
    );
    let r = post_form(
        &format!("{api}/oauth2/revoke"),
        Some(&client_auth()),
        &[("token", "unknown")],
    );
    assert_eq!(r.status, 200);
    run.common("POST /oauth2/revoke", &r);

    // Injected API errors keep the JSON:API shape.
    run.sb.inject(Fault::http(HttpFailure::RateLimited {
        retry_after_secs: None,
    }));
    run.api_error(
        "429",
        &get(&format!("{api}/accounts"), t),
        429,
        "tooManyRequests",
    );
    run.sb
        .inject(Fault::http(HttpFailure::ServerError { status: 503 }));
    run.api_error(
        "503",
        &get(&format!("{api}/accounts"), t),
        503,
        "serviceUnavailable",
    );
    run.api_error(
        "unknown route",
        &get(&format!("{api}/nope"), t),
        404,
        "routeNotFound",
    );

    // DELETE /accounts/{id}: the spec's account_single, then the account is gone for this token.
    let r = delete(&format!("{api}/accounts/{}", ids[1]), t);
    assert_eq!(r.status, 200);
    run.validate("DELETE /accounts/{id}", &r, &acc_one);
    run.api_error(
        "GET /accounts/{deleted}",
        &get(&format!("{api}/accounts/{}", ids[1]), t),
        404,
        "resourceNotFound",
    );

    println!(
        "validated {} responses:\n  {}",
        run.checked.len(),
        run.checked.join("\n  ")
    );
    assert!(
        run.errors.is_empty(),
        "{} spec violations:\n{}",
        run.errors.len(),
        run.errors.join("\n")
    );
}

#[test]
fn the_validator_catches_violations() {
    let facts = spec_facts::load();
    let mut val = Validator {
        facts: &facts,
        errors: vec![],
    };
    let bad = json!({"data": [{"type": "transaction", "id": "not-a-uuid", "attributes": {
        "amount": "2.76", "valueDate": "yesterday", "remitanceInformation": "typo"}}]});
    val.check("transaction_collection", &bad, "$");
    assert_eq!(val.errors.len(), 4, "{:#?}", val.errors);
    let missing = json!({"data": {"attributes": {}}});
    val.errors.clear();
    val.check("account_single", &missing, "$");
    assert_eq!(
        val.errors.len(),
        2,
        "type and id are required: {:#?}",
        val.errors
    );
}

/// The committed facts are what the official spec says today. The spec is Ibanity's text and is
/// not in the repository: without `../shared/ponto-connect/openapi.json` there is nothing to compare
/// (set `PONTO_SPEC_REQUIRED=1` to make that a failure); `UPDATE_PONTO_FACTS=1` rewrites the file.
#[test]
fn the_facts_agree_with_the_official_spec() {
    let p = spec_facts::spec_path();
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) => {
            assert!(
                std::env::var_os("PONTO_SPEC_REQUIRED").is_none(),
                "{}: {e}",
                p.display()
            );
            println!(
                "NOT COMPARED: {} is absent, so the derived facts were not checked against it",
                p.display()
            );
            return;
        }
    };
    let spec: Value = serde_json::from_str(&text).expect("openapi.json is JSON");
    let derived = spec_facts::derive(&spec);
    if std::env::var_os("UPDATE_PONTO_FACTS").is_some() {
        let mut out = serde_json::to_string_pretty(&derived).unwrap();
        out.push('\n');
        std::fs::write(spec_facts::facts_path(), out).unwrap();
        println!("rewrote {}", spec_facts::facts_path().display());
        return;
    }
    let committed = spec_facts::load();
    if committed != derived {
        let a = serde_json::to_string_pretty(&committed).unwrap();
        let b = serde_json::to_string_pretty(&derived).unwrap();
        let first = a
            .lines()
            .zip(b.lines())
            .position(|(x, y)| x != y)
            .unwrap_or(a.lines().count().min(b.lines().count()));
        panic!(
            "openapi-facts.json differs from the official spec from line {} on (committed {:?}, spec says {:?}); \
             rerun with UPDATE_PONTO_FACTS=1 and review the diff",
            first + 1,
            a.lines().nth(first),
            b.lines().nth(first)
        );
    }
}
