//! The ERP's provider host for benchmarks: the ERP's own [`ComponentFactory`] (same component, same
//! grants), with each provider wrapped to record what the figures need: the plugin's peak linear
//! memory and the time spent inside `sync` calls.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use host_harness::erp::errors::{Context, ErpError};
use host_harness::erp::provider::{ComponentFactory, Provider, ProviderFactory};
use host_harness::erp::settings::Settings;
use host_harness::runtime::Session;
use host_harness::runtime::types::{
    Account, ConnectStart, Connection, Institution, InstitutionFilter, SyncBatch, SyncRequest,
};

/// What the sessions of a [`MeasuredFactory`] measured, summed over sessions.
#[derive(Clone, Copy, Debug, Default)]
pub struct WasmStats {
    /// Largest linear memory any session reached.
    pub peak_memory: usize,
    /// Time inside `sync` calls (the guest, its host calls and the HTTP they make).
    pub sync_time: Duration,
    pub sync_calls: u64,
}

/// The ERP's [`ComponentFactory`] with each session's memory and `sync` time measured.
pub struct MeasuredFactory {
    inner: ComponentFactory,
    stats: Arc<Mutex<WasmStats>>,
}

impl MeasuredFactory {
    pub fn load(settings: &Settings, db_path: &Path) -> Result<Self, ErpError> {
        Ok(Self {
            inner: ComponentFactory::load(settings, db_path)?,
            stats: Default::default(),
        })
    }

    pub fn stats(&self) -> WasmStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn reset_stats(&self) {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = WasmStats::default();
    }

    /// A bare session (figure 2 drives `sync` itself).
    pub fn raw_session(&self, connection_id: &str) -> Result<Session, ErpError> {
        self.inner.raw_session(connection_id)
    }
}

impl ProviderFactory for MeasuredFactory {
    fn provider_id(&self) -> String {
        self.inner.provider_id()
    }

    fn session(&self, connection_id: &str) -> Result<Box<dyn Provider>, ErpError> {
        Ok(Box::new(Measured {
            inner: self.inner.session(connection_id)?,
            stats: self.stats.clone(),
        }))
    }
}

/// A provider that records its peak memory and its time in `sync`.
struct Measured {
    inner: Box<dyn Provider>,
    stats: Arc<Mutex<WasmStats>>,
}

impl Measured {
    fn record<T>(&self, result: T, sync_time: Option<Duration>) -> T {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.peak_memory = stats.peak_memory.max(self.inner.peak_memory().unwrap_or(0));
        if let Some(t) = sync_time {
            stats.sync_time += t;
            stats.sync_calls += 1;
        }
        result
    }
}

impl Provider for Measured {
    fn list_institutions(
        &mut self,
        filter: &InstitutionFilter,
    ) -> Result<Vec<Institution>, ErpError> {
        let r = self.inner.list_institutions(filter);
        self.record(r, None)
    }
    fn begin_connect(
        &mut self,
        institution_id: &str,
        redirect_uri: &str,
    ) -> Result<ConnectStart, ErpError> {
        let r = self.inner.begin_connect(institution_id, redirect_uri);
        self.record(r, None)
    }
    fn complete_connect(&mut self, callback_url: &str) -> Result<Connection, ErpError> {
        let r = self.inner.complete_connect(callback_url);
        self.record(r, None)
    }
    fn list_accounts(&mut self, institution_id: Option<&str>) -> Result<Vec<Account>, ErpError> {
        let r = self.inner.list_accounts(institution_id);
        self.record(r, None)
    }
    fn sync(&mut self, request: &SyncRequest) -> Result<SyncBatch, ErpError> {
        let t = Instant::now();
        let r = self.inner.sync(request);
        let elapsed = t.elapsed();
        self.record(r, Some(elapsed))
    }
    fn request_reauthorization(
        &mut self,
        account_id: &str,
        redirect_uri: &str,
    ) -> Result<String, ErpError> {
        let r = self.inner.request_reauthorization(account_id, redirect_uri);
        self.record(r, None)
    }
    fn disconnect(&mut self) -> Result<(), ErpError> {
        let r = self.inner.disconnect();
        self.record(r, None)
    }
    fn set_context(&mut self, context: Context) {
        self.inner.set_context(context);
    }
    fn peak_memory(&self) -> Option<usize> {
        self.inner.peak_memory()
    }
}
