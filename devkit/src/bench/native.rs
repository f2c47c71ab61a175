//! The provider's Ponto logic run natively (the `ponto-provider` crate compiled for the host),
//! for figures 2 and 3: [`NativeImports`] gives it HTTP (the host's own `http` capability, or
//! pages replayed from memory), an in-memory store and its settings; [`NativeFactory`]
//! puts it behind the ERP's [`ProviderFactory`] so the ERP's own sync orchestration drives it.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ponto_provider::bindings::{http as ph, log::Level, types as pt};
use ponto_provider::imports::{Imports, MemoryStorage, Storage};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::proxy::Cache;
use host_harness::bindings::http::Host as _;
use host_harness::bindings::{provider as wp, types as wt};
use host_harness::capabilities::http::HttpCapability;
use host_harness::erp::errors::{Context, ErpError};
use host_harness::erp::provider::{Provider, ProviderFactory};

/// Where the native provider's requests go.
pub enum Transport {
    /// Over loopback HTTP, through the same capability code the component gets.
    Http(Box<RefCell<HttpCapability>>),
    /// Answered from recorded responses: no socket at all.
    Replay(Arc<Cache>),
}

/// A value of one side's generated contract type as the other side's: the provider's
/// (wit-bindgen) types and the ERP's (wasmtime) types come from the same WIT, so their serde
/// forms agree field for field. This is what the canonical ABI does for the component; postcard
/// (compact, no field names) keeps it to one copy out and one copy in, as the ABI does.
pub fn convert<A: Serialize, B: DeserializeOwned>(value: &A) -> B {
    thread_local! {
        // One buffer per thread, kept between calls: a batch is ~100 kB.
        static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    BUFFER.with_borrow_mut(|buffer| {
        let mut bytes = postcard::to_extend(value, std::mem::take(buffer))
            .expect("a contract value serialises");
        let converted =
            postcard::from_bytes(&bytes).expect("both sides' types come from the same WIT");
        bytes.clear();
        *buffer = bytes;
        converted
    })
}

/// Send one request through a capability, in the plugin's own types.
pub fn send_via(cap: &mut HttpCapability, r: &ph::Request) -> Result<ph::Response, ph::HttpError> {
    cap.send(convert(r))
        .map(|response| convert(&response))
        .map_err(|e| convert(&e))
}

/// CPU time of the calling thread, from Linux's schedstat (on-CPU nanoseconds, no unsafe code).
/// Figure 2 compares two runs of the same work on a machine shared with other builds, where the
/// wall clock counts their time too.
pub fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// A stopwatch on the thread's CPU time where the system gives it, else on the wall clock.
#[derive(Clone, Copy, Debug)]
pub struct Stopwatch {
    wall: Instant,
    cpu: Option<Duration>,
}

impl Stopwatch {
    pub fn start() -> Self {
        Self {
            cpu: thread_cpu(),
            wall: Instant::now(),
        }
    }

    pub fn elapsed(&self) -> Duration {
        match (self.cpu, thread_cpu()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => self.wall.elapsed(),
        }
    }
}

/// The provider's imports, natively. Storage lives in memory (it is shared between the sessions
/// of one bench host, as the component's SQLite store is between its sessions).
pub struct NativeImports {
    pub transport: Transport,
    /// Shared by the hosts of one figure, as one connection's store is.
    pub storage: MemoryStorage,
    pub config: BTreeMap<String, String>,
    /// Time spent in `send` (this thread's CPU time, see [`Stopwatch`]), and how many requests.
    pub http_time: Cell<Duration>,
    pub requests: Cell<u64>,
}

impl NativeImports {
    pub fn new(transport: Transport, config: BTreeMap<String, String>) -> Self {
        Self {
            transport,
            storage: Default::default(),
            config,
            http_time: Cell::new(Duration::ZERO),
            requests: Cell::new(0),
        }
    }
}

impl Imports for NativeImports {
    fn send(&self, request: &ph::Request) -> Result<ph::Response, ph::HttpError> {
        let t = Stopwatch::start();
        let r = match &self.transport {
            Transport::Http(cap) => send_via(&mut cap.borrow_mut(), request),
            Transport::Replay(cache) => {
                let method = request.method.as_str();
                cache
                    .get(method, &request.url)
                    .map(|c| ph::Response {
                        status: c.status,
                        headers: c.headers.clone(),
                        body: ph::Body::from_bytes(c.body.clone()),
                    })
                    .ok_or_else(|| {
                        ph::HttpError::Transport(format!(
                            "{method} {} was not recorded",
                            request.url
                        ))
                    })
            }
        };
        self.http_time.set(self.http_time.get() + t.elapsed());
        self.requests.set(self.requests.get() + 1);
        r
    }
    fn storage(&self) -> &dyn Storage {
        &self.storage
    }
    fn config(&self, key: &str) -> Option<String> {
        self.config.get(key).cloned()
    }
    fn log(&self, _level: Level, _message: &str) {}
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
    fn random_bytes(&self, n: usize) -> Vec<u8> {
        // PKCE values for a loopback benchmark: OS-seeded hashes are enough here (the component
        // gets real randomness from wasi:random).
        use std::hash::{BuildHasher, Hasher};
        let mut out = Vec::with_capacity(n + 8);
        let mut i = 0u64;
        while out.len() < n {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(i);
            out.extend_from_slice(&h.finish().to_le_bytes());
            i += 1;
        }
        out.truncate(n);
        out
    }
    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// The native provider's error as the ERP's, as if the component had returned it.
fn native_error(e: pt::ProviderError) -> ErpError {
    ErpError::Provider {
        error: Box::new(convert(&e)),
        context: Default::default(),
    }
}

/// The ERP's [`ProviderFactory`] over the native provider: every session shares one host (on one
/// thread: figure 3 is sequential).
pub struct NativeFactory {
    pub host: Rc<NativeImports>,
}

struct NativeProvider {
    host: Rc<NativeImports>,
}

impl ProviderFactory for NativeFactory {
    fn provider_id(&self) -> String {
        "ponto".into()
    }
    fn session(&self, _connection_id: &str) -> Result<Box<dyn Provider>, ErpError> {
        Ok(Box::new(NativeProvider {
            host: self.host.clone(),
        }))
    }
}

impl NativeProvider {
    fn p(&self) -> ponto_provider::provider::Provider<'_> {
        ponto_provider::provider::Provider::new(self.host.as_ref())
    }
}

// Arguments go in and results come out through [`convert`], as the canonical ABI carries them
// for the component.
impl Provider for NativeProvider {
    fn list_institutions(
        &mut self,
        filter: &wt::InstitutionFilter,
    ) -> Result<Vec<wt::Institution>, ErpError> {
        let list = self
            .p()
            .list_institutions(&convert(filter))
            .map_err(native_error)?;
        Ok(convert(&list))
    }
    fn begin_connect(
        &mut self,
        institution_id: &str,
        redirect_uri: &str,
    ) -> Result<wp::ConnectStart, ErpError> {
        let start = self
            .p()
            .begin_connect(institution_id, redirect_uri)
            .map_err(native_error)?;
        Ok(convert(&start))
    }
    fn complete_connect(&mut self, callback_url: &str) -> Result<wp::Connection, ErpError> {
        let connection = self
            .p()
            .complete_connect(callback_url)
            .map_err(native_error)?;
        Ok(convert(&connection))
    }
    fn list_accounts(
        &mut self,
        institution_id: Option<&str>,
    ) -> Result<Vec<wt::Account>, ErpError> {
        let accounts = self
            .p()
            .list_accounts(institution_id)
            .map_err(native_error)?;
        Ok(convert(&accounts))
    }
    fn sync(&mut self, r: &wp::SyncRequest) -> Result<wp::SyncBatch, ErpError> {
        let batch = self.p().sync(&convert(r)).map_err(native_error)?;
        Ok(convert(&batch))
    }
    fn request_reauthorization(
        &mut self,
        account_id: &str,
        redirect_uri: &str,
    ) -> Result<String, ErpError> {
        self.p()
            .request_reauthorization(account_id, redirect_uri)
            .map_err(native_error)
    }
    fn disconnect(&mut self) -> Result<(), ErpError> {
        self.p().disconnect().map_err(native_error)
    }
    fn set_context(&mut self, _context: Context) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use ponto_provider::bindings::provider as pp;
    use serde_json::json;

    /// Both sides' serde forms agree, so a batch crosses whole: every field, case and option.
    /// (Written as JSON so that a field added to the WIT needs no edit here.)
    #[test]
    fn a_batch_converts_field_for_field() {
        let line = |id: &str| {
            json!({"transaction_id": id, "statement_key": "2026-11-24",
                "booking_date": "2026-11-24", "value_date": "2026-11-23", "amount": "-100.25",
                "currency": "EUR", "payment_reference": "+++090/9337/55493+++",
                "structured_reference": true, "partner_name": "Partner",
                "bank_transaction_code": "PMNT-RCDT-ESCT", "raw_json": r#"{"id":"x"}"#})
        };
        let batch: pp::SyncBatch = serde_json::from_value(json!({
            "account": null,
            "lines": [line("t1"), line("t2")],
            "updated_lines": [line("t0")],
            "statements": [{"key": "2026-11-24", "name": "2026-11-24", "date_from": "2026-11-24",
                "date_to": "2026-11-24", "balance_start": "0", "balance_end": "-200.50"}],
            "pending": [{"transaction_id": "p1", "date": "2026-11-25", "amount": "3",
                "currency": "EUR", "payment_reference": "card", "raw_json": "{}"}],
            "warnings": [{"kind": "BalanceGap", "message": "gap"},
                {"kind": "Other", "message": "other"}],
            "transactions_read": 3,
            "progress": {"Done": "state"},
        }))
        .unwrap();
        let erp: wp::SyncBatch = convert(&batch);
        assert_eq!(
            serde_json::to_value(&erp).unwrap(),
            serde_json::to_value(&batch).unwrap()
        );
        assert!(matches!(erp.warnings[1].kind, wt::WarningKind::Other));
        assert!(matches!(erp.progress, wp::SyncProgress::Done(ref s) if s == "state"));
    }
}
