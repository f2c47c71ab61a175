//! The ERP's view of a provider: the WIT `provider` calls with both error layers (the plugin's
//! typed answer and the runtime's failure) folded into [`ErpError`]. A trait, so orchestration is
//! unit-tested with a scripted fake and run for real on a wasmtime [`Session`].

use std::path::{Path, PathBuf};

use super::errors::{Context, ErpError};
use super::settings::Settings;
use crate::runtime::types::{
    Account, ConnectStart, Connection, Institution, InstitutionFilter, ProviderError, SyncBatch,
    SyncRequest,
};
use crate::runtime::{CallError, Runtime, RuntimeOptions, Session, SessionGrants};

pub trait Provider {
    fn list_institutions(
        &mut self,
        filter: &InstitutionFilter,
    ) -> Result<Vec<Institution>, ErpError>;
    fn begin_connect(
        &mut self,
        institution_id: &str,
        redirect_uri: &str,
    ) -> Result<ConnectStart, ErpError>;
    fn complete_connect(&mut self, callback_url: &str) -> Result<Connection, ErpError>;
    fn list_accounts(&mut self, institution_id: Option<&str>) -> Result<Vec<Account>, ErpError>;
    fn sync(&mut self, request: &SyncRequest) -> Result<SyncBatch, ErpError>;
    fn request_reauthorization(
        &mut self,
        account_id: &str,
        redirect_uri: &str,
    ) -> Result<String, ErpError>;
    fn disconnect(&mut self) -> Result<(), ErpError>;
    /// Set what errors are about, for the advice they carry.
    fn set_context(&mut self, context: Context);
    /// Largest linear memory the provider's instance reached, when it runs in wasm.
    fn peak_memory(&self) -> Option<usize> {
        None
    }
}

/// Starts provider jobs, one per connection (a crashed job is replaced by a fresh one).
pub trait ProviderHost {
    /// The provider's id (`ponto`), which scopes its storage.
    fn provider_id(&self) -> String;
    fn session(&self, connection_id: &str) -> Result<Box<dyn Provider>, ErpError>;
}

/// The real host: the plugin component in wasmtime.
pub struct PluginHost {
    runtime: Runtime,
    settings: Settings,
    db_path: PathBuf,
    /// Encrypts the plugin's stored tokens at rest (`ERP_STORAGE_KEY`, or a 0600 key file
    /// beside the database, made on first use).
    storage_key: [u8; 32],
}

impl PluginHost {
    pub fn load(settings: &Settings, db_path: &Path) -> Result<Self, ErpError> {
        let mut options = RuntimeOptions::new(settings.cache_dir.clone());
        options.granted_origins = settings.granted_origins.clone();
        options.call_timeout = settings.call_timeout;
        // The database is checked (a path, ours) before the plugin's storage or the key file
        // touch it.
        super::db::check_database(db_path)?;
        let plugin = settings.plugin_path.as_deref().ok_or_else(|| {
            ErpError::Usage(
                "no provider plugin: set `plugin` in [provider] of the config file or ERP_PLUGIN_FILE".into(),
            )
        })?;
        let runtime = Runtime::load(plugin, options)?;
        let key_file = db_path.with_extension("key");
        let storage_key =
            crate::capabilities::storage::host_key(&key_file).map_err(|e| ErpError::Config {
                path: key_file.clone(),
                reason: format!("cannot read or create the storage key: {e}"),
            })?;
        Ok(Self {
            runtime,
            settings: settings.clone(),
            db_path: db_path.to_owned(),
            storage_key,
        })
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The `[provider]` settings the plugin does not declare among the keys it reads (a typo
    /// would otherwise pass silently). Asked of a throwaway instance with in-memory storage.
    pub fn unknown_config_keys(&self) -> Result<Vec<String>, ErpError> {
        let grants = SessionGrants::new("config-check", Path::new(":memory:"));
        let mut session = self.runtime.session(grants).map_err(ErpError::Call)?;
        let declared = session.info().map_err(ErpError::Call)?.config_keys;
        Ok(self
            .settings
            .provider_config
            .keys()
            .filter(|k| !declared.contains(k))
            .cloned()
            .collect())
    }

    /// A bare job for one connection, with this ERP's grants (settings, HTTP policy, storage key).
    pub fn raw_session(&self, connection_id: &str) -> Result<Session, ErpError> {
        let mut grants = SessionGrants::new(connection_id, &self.db_path);
        grants.config = self.settings.provider_config.clone();
        grants.storage_key = Some(self.storage_key);
        grants.http = self.settings.http_policy();
        self.runtime.session(grants).map_err(ErpError::Call)
    }
}

impl ProviderHost for PluginHost {
    fn provider_id(&self) -> String {
        self.runtime.manifest().id.clone()
    }

    fn session(&self, connection_id: &str) -> Result<Box<dyn Provider>, ErpError> {
        Ok(Box::new(PluginProvider {
            session: self.raw_session(connection_id)?,
            context: Context::default(),
        }))
    }
}

struct PluginProvider {
    session: Session,
    context: Context,
}

impl PluginProvider {
    fn fold<T>(&self, r: Result<Result<T, ProviderError>, CallError>) -> Result<T, ErpError> {
        match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(ErpError::provider(e, self.context.clone())),
            Err(e) => Err(ErpError::Call(e)),
        }
    }
}

impl Provider for PluginProvider {
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
        let r = self.session.sync(request);
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

    fn peak_memory(&self) -> Option<usize> {
        Some(self.session.peak_memory())
    }
}
