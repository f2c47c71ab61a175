//! The provider's Ponto logic run natively (the `ponto-provider` crate compiled for the host),
//! for figures 2 and 3: a [`NativeHost`] gives it HTTP (the host's own `http` capability, or
//! pages replayed from memory), an in-memory store and its settings; [`NativeProviderHost`]
//! puts it behind the ERP's [`ProviderHost`] so the ERP's own sync orchestration drives it.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ponto_provider::host::{self as ph, Host};
use ponto_provider::model as m;

use super::proxy::Cache;
use host_harness::bindings::http::Host as _;
use host_harness::bindings::{http as wh, provider as wp, types as wt};
use host_harness::capabilities::http::{HttpCapability, HttpPolicy};
use host_harness::erp::errors::{Context, ErpError};
use host_harness::erp::provider::{Provider, ProviderHost};

/// Where the native provider's requests go.
pub enum Transport {
    /// Over loopback HTTP, through the same capability code the component gets.
    Http(Box<RefCell<HttpCapability>>),
    /// Answered from recorded responses: no socket at all.
    Replay(Arc<Cache>),
}

/// A loopback-only HTTP capability (the policy the component gets for a sandbox).
pub fn loopback_http() -> Result<HttpCapability, ErpError> {
    let policy = HttpPolicy {
        allowed: vec!["http://127.0.0.1:*".parse().map_err(ErpError::DevTool)?],
        ..HttpPolicy::default()
    };
    HttpCapability::new(policy, "bench", "bench").map_err(|e| ErpError::DevTool(format!("{e:#}")))
}

/// Send one request through a capability, in the plugin's own types.
pub fn send_via(cap: &mut HttpCapability, r: &ph::Request) -> Result<ph::Response, ph::HttpError> {
    let request = wh::Request {
        method: match r.method {
            ph::Method::Get => wh::Method::Get,
            ph::Method::Post => wh::Method::Post,
            ph::Method::Delete => wh::Method::Delete,
        },
        url: r.url.clone(),
        headers: r.headers.clone(),
        body: wh::Body::from_bytes(r.body.clone()),
        timeout_ms: r.timeout_ms,
    };
    match cap.send(request) {
        Ok(resp) => Ok(ph::Response {
            status: resp.status,
            headers: resp.headers,
            body: resp.body.as_bytes().to_vec(),
        }),
        Err(e) => Err(match e {
            wh::HttpError::Denied(s) => ph::HttpError::Denied(s),
            wh::HttpError::Timeout => ph::HttpError::Timeout,
            wh::HttpError::TooLarge(n) => ph::HttpError::TooLarge(n),
            wh::HttpError::InvalidRequest(s) => ph::HttpError::InvalidRequest(s),
            wh::HttpError::Transport(s) => ph::HttpError::Transport(s),
        }),
    }
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

/// The plugin's host, natively. Storage lives in memory (it is shared between the sessions of
/// one bench host, as the component's SQLite store is between its sessions).
pub struct NativeHost {
    pub transport: Transport,
    pub storage: Arc<std::sync::Mutex<BTreeMap<String, String>>>,
    pub config: BTreeMap<String, String>,
    /// Time spent in `send` (this thread's CPU time, see [`Stopwatch`]), and how many requests.
    pub http_time: Cell<Duration>,
    pub requests: Cell<u64>,
}

impl NativeHost {
    pub fn new(transport: Transport, config: BTreeMap<String, String>) -> Self {
        Self {
            transport,
            storage: Default::default(),
            config,
            http_time: Cell::new(Duration::ZERO),
            requests: Cell::new(0),
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.storage.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Host for NativeHost {
    fn send(&self, request: &ph::Request) -> Result<ph::Response, ph::HttpError> {
        let t = Stopwatch::start();
        let r = match &self.transport {
            Transport::Http(cap) => send_via(&mut cap.borrow_mut(), request),
            Transport::Replay(cache) => {
                let method = match request.method {
                    ph::Method::Get => "GET",
                    ph::Method::Post => "POST",
                    ph::Method::Delete => "DELETE",
                };
                cache
                    .get(method, &request.url)
                    .map(|c| ph::Response {
                        status: c.status,
                        headers: c.headers.clone(),
                        body: c.body.clone(),
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
    fn storage_get(&self, key: &str) -> Result<Option<String>, ph::StorageError> {
        Ok(self.store().get(key).cloned())
    }
    fn storage_set(&self, key: &str, value: &str) -> Result<(), ph::StorageError> {
        self.store().insert(key.to_owned(), value.to_owned());
        Ok(())
    }
    fn storage_delete(&self, key: &str) -> Result<(), ph::StorageError> {
        self.store().remove(key);
        Ok(())
    }
    fn storage_list_keys(&self, prefix: &str) -> Result<Vec<String>, ph::StorageError> {
        Ok(self
            .store()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
    fn storage_compare_and_swap(
        &self,
        key: &str,
        expected: Option<&str>,
        new: Option<&str>,
    ) -> Result<bool, ph::StorageError> {
        let mut s = self.store();
        if s.get(key).map(String::as_str) != expected {
            return Ok(false);
        }
        match new {
            Some(v) => s.insert(key.to_owned(), v.to_owned()),
            None => s.remove(key),
        };
        Ok(true)
    }
    fn config(&self, key: &str) -> Option<String> {
        self.config.get(key).cloned()
    }
    fn log(&self, _level: ph::Level, _message: &str) {}
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

fn native_error(e: m::ProviderError) -> ErpError {
    ErpError::DevTool(format!("the native provider failed: {e}"))
}

/// The ERP's [`ProviderHost`] over the native provider: every session shares one host (on one
/// thread: figure 3 is sequential).
pub struct NativeProviderHost {
    pub host: Rc<NativeHost>,
}

struct NativeProvider {
    host: Rc<NativeHost>,
}

impl ProviderHost for NativeProviderHost {
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

impl Provider for NativeProvider {
    fn list_institutions(
        &mut self,
        filter: &wt::InstitutionFilter,
    ) -> Result<Vec<wt::Institution>, ErpError> {
        let f = m::InstitutionFilter {
            country: filter.country.clone(),
            name_contains: filter.name_contains.clone(),
        };
        Ok(self
            .p()
            .list_institutions(&f)
            .map_err(native_error)?
            .into_iter()
            .map(institution)
            .collect())
    }
    fn begin_connect(
        &mut self,
        institution_id: &str,
        redirect_uri: &str,
    ) -> Result<wp::ConnectStart, ErpError> {
        let s = self
            .p()
            .begin_connect(institution_id, redirect_uri)
            .map_err(native_error)?;
        Ok(wp::ConnectStart {
            authorization_url: s.authorization_url,
            state: s.state,
        })
    }
    fn complete_connect(&mut self, callback_url: &str) -> Result<wp::Connection, ErpError> {
        let c = self
            .p()
            .complete_connect(callback_url)
            .map_err(native_error)?;
        Ok(wp::Connection {
            organization_id: c.organization_id,
            organization_name: c.organization_name,
            institution: institution(c.institution),
            accounts: c.accounts.into_iter().map(account).collect(),
            authorized_account_count: c.authorized_account_count,
        })
    }
    fn list_accounts(
        &mut self,
        institution_id: Option<&str>,
    ) -> Result<Vec<wt::Account>, ErpError> {
        Ok(self
            .p()
            .list_accounts(institution_id)
            .map_err(native_error)?
            .into_iter()
            .map(account)
            .collect())
    }
    fn sync(&mut self, r: &wp::SyncRequest) -> Result<wp::SyncBatch, ErpError> {
        let request = m::SyncRequest {
            account_id: r.account_id.clone(),
            cursor: r.cursor.clone(),
            state: r.state.clone(),
            customer_ip: r.customer_ip.clone(),
            since: r.since.clone(),
            max_lines: r.max_lines,
        };
        self.p().sync(&request).map(batch).map_err(native_error)
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

// ---- the plugin's records into the host's WIT records (what the canonical ABI does for the
// component) -----------------------------------------------------------------------------------

fn institution(i: m::Institution) -> wt::Institution {
    wt::Institution {
        id: i.id,
        name: i.name,
        country: i.country,
        bic: i.bic,
        status: match i.status {
            m::InstitutionStatus::Stable => wt::InstitutionStatus::Stable,
            m::InstitutionStatus::Beta => wt::InstitutionStatus::Beta,
            m::InstitutionStatus::Experimental => wt::InstitutionStatus::Experimental,
            m::InstitutionStatus::Unknown => wt::InstitutionStatus::Unknown,
        },
        deprecated: i.deprecated,
        time_zone: i.time_zone,
        maintenance: i.maintenance.map(|x| wt::Maintenance {
            kind: x.kind,
            starts_at: x.starts_at,
            ends_at: x.ends_at,
        }),
        provider_name: i.provider_name,
    }
}

fn balance(b: m::Balance) -> wt::Balance {
    wt::Balance {
        amount: b.amount,
        reference_date: b.reference_date,
    }
}

fn account(a: m::Account) -> wt::Account {
    wt::Account {
        id: a.id,
        institution_id: a.institution_id,
        reference: a.reference,
        reference_type: a.reference_type,
        description: a.description,
        product: a.product,
        holder_name: a.holder_name,
        currency: a.currency,
        current_balance: a.current_balance.map(balance),
        available_balance: a.available_balance.map(balance),
        authorized_at: a.authorized_at,
        consent_expires_at: a.consent_expires_at,
        consent_days_left: a.consent_days_left,
        availability: match a.availability {
            m::Availability::Available => wt::Availability::Available,
            m::Availability::Readonly => wt::Availability::Readonly,
            m::Availability::Unavailable => wt::Availability::Unavailable,
        },
        deprecated: a.deprecated,
        synchronized_at: a.synchronized_at,
    }
}

fn line(l: m::StatementLine) -> wt::StatementLine {
    wt::StatementLine {
        transaction_id: l.transaction_id,
        statement_key: l.statement_key,
        booking_date: l.booking_date,
        value_date: l.value_date,
        amount: l.amount,
        currency: l.currency,
        payment_reference: l.payment_reference,
        structured_reference: l.structured_reference,
        description: l.description,
        partner_name: l.partner_name,
        partner_account: l.partner_account,
        end_to_end_id: l.end_to_end_id,
        bank_transaction_code: l.bank_transaction_code,
        mandate_id: l.mandate_id,
        creditor_id: l.creditor_id,
        card_reference: l.card_reference,
        raw_json: l.raw_json,
    }
}

pub fn batch(b: m::SyncBatch) -> wp::SyncBatch {
    wp::SyncBatch {
        account: b.account.map(account),
        lines: b.lines.into_iter().map(line).collect(),
        updated_lines: b.updated_lines.into_iter().map(line).collect(),
        statements: b
            .statements
            .into_iter()
            .map(|s| wt::Statement {
                key: s.key,
                name: s.name,
                date_from: s.date_from,
                date_to: s.date_to,
                balance_start: s.balance_start,
                balance_end: s.balance_end,
            })
            .collect(),
        pending: b.pending.map(|p| {
            p.into_iter()
                .map(|p| wt::PendingLine {
                    transaction_id: p.transaction_id,
                    date: p.date,
                    amount: p.amount,
                    currency: p.currency,
                    payment_reference: p.payment_reference,
                    partner_name: p.partner_name,
                    raw_json: p.raw_json,
                })
                .collect()
        }),
        warnings: b
            .warnings
            .into_iter()
            .map(|w| wt::Warning {
                kind: match w.kind {
                    m::WarningKind::BalanceGap => wt::WarningKind::BalanceGap,
                    m::WarningKind::ConsentExpiring => wt::WarningKind::ConsentExpiring,
                    m::WarningKind::Maintenance => wt::WarningKind::Maintenance,
                    m::WarningKind::Deprecated => wt::WarningKind::Deprecated,
                    m::WarningKind::RecentlySynchronized => wt::WarningKind::RecentlySynchronized,
                    m::WarningKind::SynchronizationPending => {
                        wt::WarningKind::SynchronizationPending
                    }
                    m::WarningKind::BetaInstitution => wt::WarningKind::BetaInstitution,
                    m::WarningKind::Other => wt::WarningKind::Other,
                },
                message: w.message,
            })
            .collect(),
        transactions_read: b.transactions_read,
        progress: match b.progress {
            m::SyncProgress::More(c) => wp::SyncProgress::More(c),
            m::SyncProgress::Done(s) => wp::SyncProgress::Done(s),
        },
    }
}
