//! The ERP's provider host for benchmarks: the same component and grants as
//! [`crate::erp::provider::PluginHost`], plus what the figures need to see: the plugin's peak
//! linear memory and the time spent inside `sync` calls.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::erp::errors::{Context, ErpError};
use crate::erp::provider::{Provider, ProviderHost};
use crate::erp::settings::Settings;
use crate::runtime::types::{
    Account, ConnectStart, Connection, Institution, InstitutionFilter, ProviderError, SyncBatch,
    SyncRequest,
};
use crate::runtime::{CallError, Runtime, RuntimeOptions, Session, SessionGrants};

/// What the sessions of a [`WasmHost`] measured, summed over sessions.
#[derive(Clone, Copy, Debug, Default)]
pub struct WasmStats {
    /// Largest linear memory any session reached.
    pub peak_memory: usize,
    /// Time inside `sync` calls (the guest, its host calls and the HTTP they make).
    pub sync_time: Duration,
    pub sync_calls: u64,
}

pub struct WasmHost {
    runtime: Runtime,
    settings: Settings,
    db_path: PathBuf,
    stats: std::sync::Arc<Mutex<WasmStats>>,
}

impl WasmHost {
    pub fn load(settings: &Settings, db_path: &Path) -> Result<Self, ErpError> {
        let mut options = RuntimeOptions::new(settings.cache_dir.clone());
        options.granted_origins = settings.granted_origins.clone();
        options.call_timeout = settings.call_timeout;
        Ok(Self {
            runtime: Runtime::load(&settings.plugin_path, options)?,
            settings: settings.clone(),
            db_path: db_path.to_owned(),
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
        let mut grants = SessionGrants::new(connection_id, &self.db_path);
        grants.config = self.settings.provider_config.clone();
        grants.http = self.settings.http_policy();
        self.runtime.session(grants).map_err(ErpError::Call)
    }
}

impl ProviderHost for WasmHost {
    fn provider_id(&self) -> String {
        self.runtime.manifest().id.clone()
    }

    fn session(&self, connection_id: &str) -> Result<Box<dyn Provider>, ErpError> {
        Ok(Box::new(WasmProvider {
            session: self.raw_session(connection_id)?,
            context: Context::default(),
            stats: self.stats.clone(),
        }))
    }
}

struct WasmProvider {
    session: Session,
    context: Context,
    stats: std::sync::Arc<Mutex<WasmStats>>,
}

impl WasmProvider {
    fn fold<T>(&self, r: Result<Result<T, ProviderError>, CallError>) -> Result<T, ErpError> {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.peak_memory = stats.peak_memory.max(self.session.peak_memory());
        match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(ErpError::provider(e, self.context.clone())),
            Err(e) => Err(ErpError::Call(e)),
        }
    }
}

impl Provider for WasmProvider {
    fn list_institutions(
        &mut self,
        filter: &InstitutionFilter,
    ) -> Result<Vec<Institution>, ErpError> {
        let r = self.session.list_institutions(filter);
        self.fold(r)
    }
    fn begin_connect(
        &mut self,
        institution_id: &str,
        redirect_uri: &str,
    ) -> Result<ConnectStart, ErpError> {
        let r = self.session.begin_connect(institution_id, redirect_uri);
        self.fold(r)
    }
    fn complete_connect(&mut self, callback_url: &str) -> Result<Connection, ErpError> {
        let r = self.session.complete_connect(callback_url);
        self.fold(r)
    }
    fn list_accounts(&mut self, institution_id: Option<&str>) -> Result<Vec<Account>, ErpError> {
        let r = self.session.list_accounts(institution_id);
        self.fold(r)
    }
    fn sync(&mut self, request: &SyncRequest) -> Result<SyncBatch, ErpError> {
        let t = Instant::now();
        let r = self.session.sync(request);
        let elapsed = t.elapsed();
        {
            let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            stats.sync_time += elapsed;
            stats.sync_calls += 1;
        }
        self.fold(r)
    }
    fn request_reauthorization(
        &mut self,
        account_id: &str,
        redirect_uri: &str,
    ) -> Result<String, ErpError> {
        let r = self
            .session
            .request_reauthorization(account_id, redirect_uri);
        self.fold(r)
    }
    fn disconnect(&mut self) -> Result<(), ErpError> {
        let r = self.session.disconnect();
        self.fold(r)
    }
    fn set_context(&mut self, context: Context) {
        self.context = context;
    }
}
