//! The cassette file: versioned JSON, written by `erp --record` and read by replay and check.
//!
//! ```text
//! {
//!   "format": "erp-bank-sync-cassette",
//!   "version": 1,
//!   "recorded_at": "2026-11-20T09:00:00Z",   // the wall clock a check gives the plugin
//!   "plugin": "my-provider",                   // the manifest id of the recording plugin
//!   "pseudonymised": false,
//!   "config": { "api-url": "...", "client-secret": "cassette-secret-1" },
//!   "connections": [ { "connection": "c1", "storage": { "oauth/refresh-token": "cassette-secret-2" } } ],
//!   "interactions": [ {
//!       "connection": "c1", "started_at": "...", "elapsed_ms": 12,
//!       "request":  { "method": "GET", "url": "...", "headers": [["authorization", "Bearer cassette-secret-3"]],
//!                     "body": { "text": "" } },
//!       "response": { "status": 200, "headers": [["content-type", "application/json"]],
//!                     "body": { "text": "{...}" } }           // or "error": { "kind": "timeout", "detail": "" }
//!   } ],
//!   "syncs": [ {                                               // the expected results
//!       "connection": "c1",
//!       "request": { "account_id": "...", "cursor": null, "state": null, "customer_ip": null,
//!                    "since": null, "max_lines": 1000 },
//!       "result": { "ok": { ...batch... } }                   // or { "error": "upstream" }
//!   } ]
//! }
//! ```
//!
//! - A body is `{"text": "..."}` (exact UTF-8), `{"base64": "..."}` (other bytes) or, in a
//!   hand-written cassette, `{"json": ...}` (sent as compact JSON).
//! - `storage` is the plugin's key-value storage of the connection when the recording started, so
//!   a check needs no consent: record an `erp sync` of an already-connected link.
//! - Secrets are never written: each is replaced by `cassette-secret-N`, the same placeholder for
//!   the same value everywhere (headers, bodies, URLs, storage, config), so a replay is coherent.
//! - `syncs` holds every `sync` call the ERP made, in order, with what the plugin returned (the
//!   result format is [`super::results`]). A check replays each run (a call without cursor and the
//!   calls continuing it) and compares.
//! - Version 1 is the only version; a reader refuses any other with one line.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bindings::http::{Body, HttpError, Method, Request, Response};

pub const FORMAT: &str = "erp-bank-sync-cassette";
pub const VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cassette {
    pub format: String,
    pub version: u32,
    pub recorded_at: String,
    pub plugin: String,
    #[serde(default)]
    pub pseudonymised: bool,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub connections: Vec<ConnectionSnapshot>,
    #[serde(default)]
    pub interactions: Vec<Interaction>,
    #[serde(default)]
    pub syncs: Vec<SyncCall>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConnectionSnapshot {
    pub connection: String,
    pub storage: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Interaction {
    pub connection: String,
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub elapsed_ms: u64,
    pub request: RecordedRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<RecordedResponse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RecordedError>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub body: RecordedBody,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecordedResponse {
    pub status: u16,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub body: RecordedBody,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecordedError {
    /// `denied`, `timeout`, `too-large`, `invalid-request` or `transport` (the WIT cases).
    pub kind: String,
    #[serde(default)]
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordedBody {
    Text(String),
    Base64(String),
    Json(Value),
}

impl Default for RecordedBody {
    fn default() -> Self {
        RecordedBody::Text(String::new())
    }
}

impl RecordedBody {
    pub fn from_body(body: &Body) -> Self {
        match body {
            Body::Text(t) => RecordedBody::Text(t.clone()),
            Body::Binary(b) => RecordedBody::Base64(STANDARD.encode(b)),
        }
    }

    /// The bytes as they cross to the plugin (a bad base64 body crosses as its text).
    pub fn to_body(&self) -> Body {
        match self {
            RecordedBody::Text(t) => Body::Text(t.clone()),
            RecordedBody::Json(v) => Body::Text(v.to_string()),
            RecordedBody::Base64(b) => match STANDARD.decode(b) {
                Ok(bytes) => Body::from_bytes(bytes),
                Err(_) => Body::Text(b.clone()),
            },
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SyncCall {
    pub connection: String,
    pub request: RecordedSyncRequest,
    pub result: SyncResult,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecordedSyncRequest {
    pub account_id: String,
    pub cursor: Option<String>,
    pub state: Option<String>,
    pub customer_ip: Option<String>,
    pub since: Option<String>,
    pub max_lines: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncResult {
    /// The batch, as [`super::results::batch`] writes it.
    Ok(Value),
    /// The provider-error case (`upstream`, `malformed-response` ...) or `trap`.
    Error(String),
}

pub fn method_name(m: Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
    }
}

impl RecordedRequest {
    pub fn from_request(r: &Request) -> Self {
        Self {
            method: method_name(r.method).to_owned(),
            url: r.url.clone(),
            headers: r.headers.clone(),
            body: RecordedBody::from_body(&r.body),
        }
    }
}

impl RecordedResponse {
    pub fn from_response(r: &Response) -> Self {
        Self {
            status: r.status,
            headers: r.headers.clone(),
            body: RecordedBody::from_body(&r.body),
        }
    }

    pub fn to_response(&self) -> Response {
        Response {
            status: self.status,
            headers: self.headers.clone(),
            body: self.body.to_body(),
        }
    }
}

impl RecordedError {
    pub fn from_error(e: &HttpError) -> Self {
        let (kind, detail) = match e {
            HttpError::Denied(s) => ("denied", s.clone()),
            HttpError::Timeout => ("timeout", String::new()),
            HttpError::TooLarge(n) => ("too-large", n.to_string()),
            HttpError::InvalidRequest(s) => ("invalid-request", s.clone()),
            HttpError::Transport(s) => ("transport", s.clone()),
        };
        Self {
            kind: kind.to_owned(),
            detail,
        }
    }

    pub fn to_error(&self) -> HttpError {
        match self.kind.as_str() {
            "denied" => HttpError::Denied(self.detail.clone()),
            "timeout" => HttpError::Timeout,
            "too-large" => HttpError::TooLarge(self.detail.parse().unwrap_or(0)),
            "invalid-request" => HttpError::InvalidRequest(self.detail.clone()),
            _ => HttpError::Transport(self.detail.clone()),
        }
    }
}

impl Interaction {
    pub fn outcome(&self) -> Result<Response, HttpError> {
        match (&self.response, &self.error) {
            (Some(r), _) => Ok(r.to_response()),
            (None, Some(e)) => Err(e.to_error()),
            (None, None) => Err(HttpError::Transport(
                "the cassette holds no response for this request".into(),
            )),
        }
    }
}

impl Cassette {
    pub fn new(recorded_at: String, plugin: &str) -> Self {
        Self {
            format: FORMAT.to_owned(),
            version: VERSION,
            recorded_at,
            plugin: plugin.to_owned(),
            pseudonymised: false,
            config: BTreeMap::new(),
            connections: Vec::new(),
            interactions: Vec::new(),
            syncs: Vec::new(),
        }
    }

    /// Read and check a cassette file; the error is one line naming the file.
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read the cassette: {e}", path.display()))?;
        let c: Cassette = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a cassette: {e}", path.display()))?;
        if c.format != FORMAT || c.version != VERSION {
            return Err(format!(
                "{}: cassette format `{}` version {}; this host reads `{FORMAT}` version {VERSION}",
                path.display(),
                c.format,
                c.version
            ));
        }
        Ok(c)
    }

    pub fn save(&self, path: &std::path::Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }
}
