//! `erp --record CASSETTE <verb>`: every exchange of the host's `http` capability, the plugin's
//! storage and settings when each connection's first job starts, and every `sync` result, kept
//! in memory and written once at the end with secrets (and, when asked, personal data) replaced
//! (see [`super::redact`]). Nothing unredacted is ever written to disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};

use super::HttpTap;
use super::format::{
    Cassette, ConnectionSnapshot, Interaction, RecordedError, RecordedRequest, RecordedResponse,
    RecordedSyncRequest, SyncCall, SyncResult,
};
use super::redact::Redactor;
use super::results;
use crate::bindings::http::{HttpError, Request, Response};
use crate::bindings::storage::Host as _;
use crate::capabilities::storage::StorageCapability;
use crate::runtime::CallError;
use crate::runtime::types::{ProviderError, SyncBatch, SyncRequest};

pub struct Recorder {
    path: PathBuf,
    inner: Mutex<Inner>,
}

struct Inner {
    cassette: Cassette,
    redactor: Redactor,
}

static ACTIVE: OnceLock<Arc<Recorder>> = OnceLock::new();

fn rfc3339(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Start recording this process's exchanges into `path` (written by [`finish`]).
pub fn start(path: &Path, pseudonymise: bool) -> Arc<Recorder> {
    let mut cassette = Cassette::new(rfc3339(SystemTime::now()), "");
    cassette.pseudonymised = pseudonymise;
    let recorder = Arc::new(Recorder {
        path: path.to_owned(),
        inner: Mutex::new(Inner {
            cassette,
            redactor: Redactor::new(pseudonymise),
        }),
    });
    let _ = ACTIVE.set(recorder.clone());
    recorder
}

/// The process's recorder, as the tap a new job's `http` capability gets.
pub fn active() -> Option<Arc<dyn HttpTap>> {
    ACTIVE.get().map(|r| r.clone() as Arc<dyn HttpTap>)
}

/// Note what a `sync` call returned, as the cassette's expected result.
pub fn note_sync(
    connection: &str,
    request: &SyncRequest,
    result: &Result<Result<SyncBatch, ProviderError>, CallError>,
) {
    let Some(recorder) = ACTIVE.get() else {
        return;
    };
    let result = match result {
        Ok(Ok(batch)) => SyncResult::Ok(results::batch(batch)),
        Ok(Err(e)) => SyncResult::Error(results::error_case(e).to_owned()),
        Err(_) => SyncResult::Error("trap".to_owned()),
    };
    let call = SyncCall {
        connection: connection.to_owned(),
        request: RecordedSyncRequest {
            account_id: request.account_id.clone(),
            cursor: request.cursor.clone(),
            state: request.state.clone(),
            customer_ip: request.customer_ip.clone(),
            since: request.since.clone(),
            max_lines: request.max_lines,
        },
        result,
    };
    recorder.lock().cassette.syncs.push(call);
}

/// Write the cassette of the active recorder, if any: redacted, pretty JSON.
pub fn finish() -> std::io::Result<Option<PathBuf>> {
    let Some(recorder) = ACTIVE.get() else {
        return Ok(None);
    };
    let cassette = recorder.redacted();
    cassette.save(&recorder.path)?;
    Ok(Some(recorder.path.clone()))
}

impl Recorder {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while recording leaves data worth writing.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cassette with every secret learned in the whole session replaced, wherever it is.
    pub fn redacted(&self) -> Cassette {
        let mut inner = self.lock();
        let Inner { cassette, redactor } = &mut *inner;
        for i in &cassette.interactions {
            if let Some(r) = &i.response
                && let super::format::RecordedBody::Text(t) = &r.body
            {
                redactor.pseudonymise_body(t);
            }
        }
        let mut value = serde_json::to_value(&*cassette).expect("a cassette is JSON");
        redactor.scrub_json(&mut value);
        serde_json::from_value(value).expect("scrubbing keeps the shape")
    }
}

impl HttpTap for Recorder {
    fn record(
        &self,
        connection: &str,
        request: &Request,
        outcome: &Result<Response, HttpError>,
        started: SystemTime,
        elapsed: Duration,
    ) {
        let mut inner = self.lock();
        let r = &mut inner.redactor;
        r.learn_url(&request.url);
        for (n, v) in &request.headers {
            r.learn_header(n, v);
        }
        r.learn_body(&String::from_utf8_lossy(request.body.as_bytes()));
        if let Ok(resp) = outcome {
            for (n, v) in &resp.headers {
                r.learn_header(n, v);
                if n.eq_ignore_ascii_case("location") {
                    r.learn_url(v);
                }
            }
            r.learn_body(&String::from_utf8_lossy(resp.body.as_bytes()));
        }
        let interaction = Interaction {
            connection: connection.to_owned(),
            started_at: rfc3339(started),
            elapsed_ms: elapsed.as_millis() as u64,
            request: RecordedRequest::from_request(request),
            response: outcome.as_ref().ok().map(RecordedResponse::from_response),
            error: outcome.as_ref().err().map(RecordedError::from_error),
        };
        inner.cassette.interactions.push(interaction);
    }

    fn begin_session(
        &self,
        plugin: &str,
        connection: &str,
        config: &BTreeMap<String, String>,
        storage: &mut StorageCapability,
    ) {
        let mut snapshot = BTreeMap::new();
        let keys = storage.list_keys(String::new()).unwrap_or_default();
        for key in keys {
            if let Ok(Some(value)) = storage.get(key.clone()) {
                snapshot.insert(key, value);
            }
        }
        let mut inner = self.lock();
        let Inner { cassette, redactor } = &mut *inner;
        if cassette.plugin.is_empty() {
            cassette.plugin = plugin.to_owned();
        }
        for (k, v) in config {
            redactor.learn_entry(k, v);
            cassette
                .config
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        if cassette
            .connections
            .iter()
            .any(|c| c.connection == connection)
        {
            return;
        }
        for (k, v) in &snapshot {
            redactor.learn_entry(k, v);
        }
        cassette.connections.push(ConnectionSnapshot {
            connection: connection.to_owned(),
            storage: snapshot,
        });
    }
}
