//! Every body the sandbox serves, validated against Ponto's official OpenAPI v2 spec, read from
//! ../shared at test time (nothing of it is copied here). Where the spec has no endpoint
//! (pending transactions, oauth2) or no error schema, the shapes of api-notes.md are checked.
//!
//! Two relaxations, both forced by the spec itself (its own examples break them):
//! - `null` is accepted for any property (examples carry `"fee": null`, `"cardReference": null`
//!   for fields typed number/string; OpenAPI 3.0 would need `nullable`, which the spec omits);
//! - a bare `type: object` without `properties` accepts any JSON value (the generator's way of
//!   writing an untyped field: `counterpartName`, `holderName`, `maintenanceType` hold strings).
//!
//! One strictness the spec does not ask for: an `attributes` object may carry only attributes
//! the spec declares (catches misspelt names), except `customerOnline` on synchronizations,
//! which the spec's examples show.

mod common;

use std::path::PathBuf;

use common::*;
use ponto_sandbox::{Fault, HttpFailure, Sandbox, SandboxConfig};
use serde_json::{Value, json};

fn spec() -> Option<Value> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/ponto-connect/openapi.json"
    ));
    match std::fs::read_to_string(&p) {
        Ok(s) => Some(serde_json::from_str(&s).expect("openapi.json is JSON")),
        Err(_) => {
            println!(
                "SKIPPED: {} is absent; the OpenAPI validation did not run",
                p.display()
            );
            None
        }
    }
}

struct Validator<'a> {
    spec: &'a Value,
    errors: Vec<String>,
}

impl Validator<'_> {
    fn resolve<'s>(&'s self, schema: &'s Value) -> &'s Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let ptr = r.strip_prefix('#').expect("local $ref");
                let target = self
                    .spec
                    .pointer(ptr)
                    .unwrap_or_else(|| panic!("dangling $ref {r}"));
                self.resolve(target)
            }
            None => schema,
        }
    }

    fn check(&mut self, schema: &Value, v: &Value, at: &str) {
        let schema = &self.resolve(schema).clone();
        if v.is_null() {
            return;
        }
        let ty = schema.get("type").and_then(Value::as_str);
        match ty {
            Some("object") => {
                let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                    return; // untyped field, see the module doc
                };
                let Some(obj) = v.as_object() else {
                    self.errors
                        .push(format!("{at}: expected an object, got {v}"));
                    return;
                };
                for req in schema
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let k = req.as_str().unwrap();
                    if !obj.contains_key(k) {
                        self.errors
                            .push(format!("{at}: required property {k} is missing"));
                    }
                }
                for (k, val) in obj {
                    match props.get(k) {
                        Some(s) => {
                            let s = s.clone();
                            self.check(&s, val, &format!("{at}.{k}"));
                        }
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
            Some("array") => match v.as_array() {
                Some(items) => {
                    let item_schema = schema.get("items").cloned().unwrap_or(json!({}));
                    for (i, it) in items.iter().enumerate() {
                        self.check(&item_schema, it, &format!("{at}[{i}]"));
                    }
                }
                None => self
                    .errors
                    .push(format!("{at}: expected an array, got {v}")),
            },
            Some("string") => match v.as_str() {
                Some(s) => match schema.get("format").and_then(Value::as_str) {
                    Some("date-time") if chrono::DateTime::parse_from_rfc3339(s).is_err() => self
                        .errors
                        .push(format!("{at}: {s:?} is not an RFC 3339 date-time")),
                    Some("uuid") if !is_uuid(s) => {
                        self.errors.push(format!("{at}: {s:?} is not a UUID"))
                    }
                    _ => {}
                },
                None => self
                    .errors
                    .push(format!("{at}: expected a string, got {v}")),
            },
            Some("number") if !v.is_number() => self
                .errors
                .push(format!("{at}: expected a number, got {v}")),
            Some("integer") if !(v.is_i64() || v.is_u64()) => self
                .errors
                .push(format!("{at}: expected an integer, got {v}")),
            Some("boolean") if !v.is_boolean() => self
                .errors
                .push(format!("{at}: expected a boolean, got {v}")),
            _ => {}
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
    spec: Value,
    sb: Sandbox,
    token: String,
    checked: Vec<String>,
    errors: Vec<String>,
}

impl Run {
    /// The response schema the spec gives for (path template, method, status).
    fn spec_schema(&self, path: &str, method: &str, status: u16) -> Value {
        self.spec["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]["schema"]
            .clone()
    }

    fn validate(&mut self, label: &str, r: &Resp, schema: &Value) -> Value {
        let v = r.json();
        let mut val = Validator {
            spec: &self.spec,
            errors: vec![],
        };
        assert!(!schema.is_null(), "{label}: no schema");
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
    fn collection(&mut self, label: &str, r: &Resp, schema: &Value, synced: bool) -> Value {
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
            let sync_schema = json!({"$ref": "#/components/schemas/synchronization"});
            let mut val = Validator {
                spec: &self.spec,
                errors: vec![],
            };
            val.check(
                &sync_schema,
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
    let Some(spec) = spec() else { return };
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
        spec,
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
            spec: &run.spec,
            errors: vec![],
        };
        val.check(
            &json!({"$ref": "#/components/schemas/synchronization"}),
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
    let ui_attrs =
        run.spec["components"]["schemas"]["userInfo"]["properties"]["attributes"].clone();
    let v = run.validate("GET /userinfo", &r, &ui_attrs);
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
    let Some(spec) = spec() else { return };
    let mut val = Validator {
        spec: &spec,
        errors: vec![],
    };
    let bad = json!({"data": [{"type": "transaction", "id": "not-a-uuid", "attributes": {
        "amount": "2.76", "valueDate": "yesterday", "remitanceInformation": "typo"}}]});
    val.check(
        &json!({"$ref": "#/components/schemas/transaction_collection"}),
        &bad,
        "$",
    );
    assert_eq!(val.errors.len(), 4, "{:#?}", val.errors);
    let missing = json!({"data": {"attributes": {}}});
    val.errors.clear();
    val.check(
        &json!({"$ref": "#/components/schemas/account_single"}),
        &missing,
        "$",
    );
    assert_eq!(
        val.errors.len(),
        2,
        "type and id are required: {:#?}",
        val.errors
    );
}
