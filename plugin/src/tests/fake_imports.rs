//! The provider's imports, faked for native tests: routed HTTP answers in Ponto's shapes, an
//! in-memory store, a fixed clock, recorded sleeps, requests and logs.

use crate::bindings::http::{Body, HttpError, Request, Response};
use crate::bindings::log::Level;
use crate::bindings::provider::SyncRequest;
use crate::bindings::types::InstitutionFilter;
use crate::imports::{Imports, MemoryStorage, Storage};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

pub const BASE: &str = "https://api.example.test/ponto-connect";
pub const INST: &str = "9251e765-bfbe-48b0-a082-3b043c386131";
pub const OTHER_INST: &str = "b1f9e0b2-6c55-4c37-a9b0-7b5c0e1f0002";
pub const ACC: &str = "0df6d359-a2fb-4f41-bc4c-3c824d8a1a03";
pub const ACC2: &str = "6b2c5a33-7b1e-4d0e-9a57-1b7a4f2f0b22";
pub const ACC_OTHER: &str = "c3a1f1de-1f43-4d3e-8f7b-5f3f5c9b1c33";

type Answer = Result<Response, HttpError>;

pub struct FakeImports {
    routes: RefCell<BTreeMap<(String, String), VecDeque<Answer>>>,
    pub requests: RefCell<Vec<Request>>,
    pub store: MemoryStorage,
    pub config: RefCell<BTreeMap<String, String>>,
    pub now: Cell<DateTime<Utc>>,
    pub sleeps: RefCell<Vec<Duration>>,
    pub logs: RefCell<Vec<String>>,
    /// Snapshot of the store at each request, to check ordering of writes.
    pub store_at_request: RefCell<Vec<BTreeMap<String, String>>>,
    counter: Cell<u8>,
}

// The generated records derive no `Default` (a WIT record has none, and the derive is
// wit-bindgen's to write); the tests' requests start from these.
#[allow(clippy::derivable_impls)]
impl Default for InstitutionFilter {
    fn default() -> Self {
        InstitutionFilter {
            country: None,
            name_contains: None,
        }
    }
}

#[allow(clippy::derivable_impls)]
impl Default for SyncRequest {
    fn default() -> Self {
        SyncRequest {
            account_id: String::new(),
            cursor: None,
            state: None,
            customer_ip: None,
            since: None,
            max_lines: 0,
        }
    }
}

pub fn resp(status: u16, body: &Value) -> Answer {
    Ok(Response {
        status,
        headers: vec![
            ("content-type".into(), "application/vnd.api+json".into()),
            ("ibanity-request-id".into(), format!("req-{status}")),
        ],
        body: Body::Text(body.to_string()),
    })
}

pub fn resp_headers(status: u16, body: &Value, headers: &[(&str, &str)]) -> Answer {
    let mut r = resp(status, body)?;
    r.headers
        .extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Ok(r)
}

pub fn api_error(code: &str, detail: &str) -> Value {
    json!({"errors": [{"code": code, "detail": detail, "meta": {"requestId": "body-req-id"}}]})
}

impl FakeImports {
    pub fn new() -> FakeImports {
        let f = FakeImports {
            routes: RefCell::new(BTreeMap::new()),
            requests: RefCell::new(Vec::new()),
            store: MemoryStorage::default(),
            config: RefCell::new(BTreeMap::new()),
            now: Cell::new(Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()),
            sleeps: RefCell::new(Vec::new()),
            logs: RefCell::new(Vec::new()),
            store_at_request: RefCell::new(Vec::new()),
            counter: Cell::new(0),
        };
        for (k, v) in [
            ("api-url", BASE),
            ("authorization-url", "https://auth.example.test/oauth2/auth"),
            ("client-id", "client-1"),
            ("client-secret", "secret-1"),
        ] {
            f.set_config(k, v);
        }
        f
    }

    pub fn set_config(&self, k: &str, v: &str) {
        self.config.borrow_mut().insert(k.into(), v.into());
    }

    /// Answers for `method path` (path under BASE, with query), served in order; the last repeats.
    pub fn on(&self, method: &str, path: &str, answers: Vec<Answer>) {
        self.routes.borrow_mut().insert(
            (method.to_string(), format!("{BASE}{path}")),
            answers.into(),
        );
    }

    pub fn on_json(&self, method: &str, path: &str, body: Value) {
        self.on(method, path, vec![resp(200, &body)]);
    }

    /// A connected store: tokens valid for an hour.
    pub fn connected(&self) {
        let exp = crate::jsonapi::timestamp(self.now.get() + chrono::Duration::hours(1));
        let mut s = self.store.map();
        s.insert("oauth/refresh-token".into(), "refresh-0".into());
        s.insert(
            "oauth/access-token".into(),
            json!({"token": "access-0", "expiresAt": exp}).to_string(),
        );
        s.insert(
            "connection/redirect-uri".into(),
            "https://erp.example.test/cb".into(),
        );
    }

    /// Requests as `METHOD path` (path relative to BASE when under it).
    pub fn calls(&self) -> Vec<String> {
        self.requests
            .borrow()
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r.method.as_str(),
                    r.url.strip_prefix(BASE).unwrap_or(&r.url)
                )
            })
            .collect()
    }

    pub fn header(r: &Request, name: &str) -> Option<String> {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}

impl Imports for FakeImports {
    fn send(&self, request: &Request) -> Result<Response, HttpError> {
        self.requests.borrow_mut().push(request.clone());
        self.store_at_request
            .borrow_mut()
            .push(self.store.map().clone());
        let key = (request.method.as_str().to_string(), request.url.clone());
        let mut routes = self.routes.borrow_mut();
        match routes.get_mut(&key) {
            Some(q) if q.len() > 1 => q.pop_front().unwrap(),
            Some(q) => q.front().cloned().unwrap(),
            None => resp(
                404,
                &api_error("resourceNotFound", "The requested resource was not found."),
            ),
        }
    }
    fn storage(&self) -> &dyn Storage {
        &self.store
    }
    fn config(&self, key: &str) -> Option<String> {
        self.config.borrow().get(key).cloned()
    }
    fn log(&self, level: Level, message: &str) {
        self.logs.borrow_mut().push(format!("{level:?} {message}"));
    }
    fn now(&self) -> DateTime<Utc> {
        self.now.get()
    }
    fn random_bytes(&self, n: usize) -> Vec<u8> {
        let c = self.counter.get().wrapping_add(1);
        self.counter.set(c);
        (0..n)
            .map(|i| c.wrapping_mul(31).wrapping_add(i as u8))
            .collect()
    }
    fn sleep(&self, d: Duration) {
        self.sleeps.borrow_mut().push(d);
    }
}

// ---- Ponto-shaped documents (own values, shapes from api-notes §5 and the spec examples) ----

pub fn institution(
    id: &str,
    name: &str,
    country: Option<&str>,
    status: &str,
    tz: Option<&str>,
) -> Value {
    json!({"type": "financialInstitution", "id": id, "attributes": {
        "name": name, "bic": "NBBEBEBB203", "country": country, "status": status,
        "deprecated": false, "timeZone": tz, "logoUrl": "https://example.invalid/logo.svg",
        "primaryColor": "#7d39ff", "secondaryColor": "#3DF2C2", "maintenanceType": null,
        "maintenanceFrom": null, "maintenanceTo": null, "sharedBrandName": null,
        "sharedBrandReference": null, "paymentsEnabled": true,
        "paymentsProductTypes": ["sepaCreditTransfer"], "futureDatedPaymentsAllowed": true}})
}

pub fn single(data: Value) -> Value {
    json!({"data": data})
}

pub fn page(data: Vec<Value>, next: Option<&str>) -> Value {
    let mut links = json!({"first": format!("{BASE}/x")});
    if let Some(n) = next {
        links["next"] = json!(n);
    }
    json!({"data": data, "links": links, "meta": {"paging": {"limit": 100}}})
}

pub fn account(id: &str, inst: &str, balance: Value, expires: &str) -> Value {
    json!({"type": "account", "id": id, "attributes": {
        "reference": "be07 6265 5061 6261", "referenceType": "IBAN",
        "description": "Current account", "product": "Business account", "holderName": "Acme BV",
        "subtype": "checking", "currency": "EUR", "currentBalance": balance,
        "currentBalanceChangedAt": "2026-11-25T08:12:40.839Z",
        "currentBalanceReferenceDate": "2026-11-24T23:00:00.000Z",
        "currentBalanceVariationObservedAt": "2026-11-25T08:12:40.868Z",
        "availableBalance": balance, "availableBalanceChangedAt": "2026-11-25T08:12:40.839Z",
        "availableBalanceReferenceDate": "2026-11-24T23:00:00.000Z",
        "authorizedAt": "2026-06-01T13:02:18.103Z", "authorizationExpirationExpectedAt": expires,
        "deprecated": false, "internalReference": "c6283304-6c87-49c7-9f67-4b7d8ee71eb8",
        "someFutureAttribute": {"nested": [1, 2]}},
      "meta": {"availability": "available", "synchronizedAt": "2026-11-25T08:12:40.926Z",
        "latestSynchronization": {"type": "synchronization", "id": "5d88f702",
          "attributes": {"resourceType": "account", "resourceId": id, "subtype": "accountDetails",
            "status": "success", "errors": [], "customerOnline": true,
            "createdAt": "2026-11-25T08:12:40.746Z", "updatedAt": "2026-11-25T08:12:40.926Z"}}},
      "relationships": {"financialInstitution": {"data": {"type": "financialInstitution", "id": inst},
          "links": {"related": format!("{BASE}/financial-institutions/{inst}")}},
        "transactions": {"links": {"related": format!("{BASE}/accounts/{id}/transactions"),
          "meta": {"type": "transaction"}}}}})
}

/// A transaction; `amount` is the JSON number text as Ponto writes it.
pub fn tx(id: &str, amount: &str, execution: &str, value: &str) -> Value {
    let amount: Value = serde_json::from_str(amount).unwrap();
    json!({"type": "transaction", "id": id, "attributes": {
        "amount": amount, "currency": "EUR", "valueDate": value, "executionDate": execution,
        "description": "Wire transfer", "remittanceInformation": format!("Invoice {id}"),
        "remittanceInformationType": "unstructured", "counterpartName": "Rice Ltd",
        "counterpartReference": "BE62 4671 5332 7786", "bankTransactionCode": "PMNT-RCDT-ESCT",
        "proprietaryBankTransactionCode": "63058", "endToEndId": format!("e2e-{id}"),
        "purposeCode": null, "mandateId": null, "creditorId": null,
        "additionalInformation": null, "internalReference": "ae7976b0",
        "digest": "2acc87e558b508f7b4bd21829adee7aaace14eedde2b65ec8459201ea7a76050",
        "fee": null, "cardReference": null, "cardReferenceType": null,
        "createdAt": "2026-11-21T06:02:11.000Z", "updatedAt": "2026-11-25T08:13:03.072Z"},
      "relationships": {"account": {"data": {"type": "account", "id": ACC}}}})
}

/// Execution date `d` at Brussels midnight written in UTC (as banks' date-only data arrives).
pub fn day(d: &str) -> String {
    let date = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
    let local = chrono_tz::Europe::Brussels
        .from_local_datetime(&date.and_hms_opt(0, 0, 0).unwrap())
        .unwrap();
    crate::jsonapi::timestamp(local.with_timezone(&Utc))
}

pub fn token(access: &str, refresh: &str) -> Value {
    json!({"access_token": access, "expires_in": 1799, "refresh_token": refresh,
        "scope": "offline_access ai name", "token_type": "bearer"})
}
