//! The ERP's view of a provider: the WIT `provider` calls with both error layers (the plugin's
//! typed answer and the runtime's failure) folded into [`ErpError`]. A trait, so orchestration is
//! unit-tested with a scripted fake and run for real on a wasmtime [`Session`].

use std::path::{Path, PathBuf};

use super::errors::{Context, ErpError};
use super::settings::Settings;
use crate::capabilities::http::AllowedOrigin;
use crate::runtime::types::{
    Account, ConnectStart, Connection, Institution, InstitutionFilter, ProviderError, SyncBatch,
    SyncRequest,
};
use crate::runtime::{
    CallError, LoadError, Manifest, Runtime, RuntimeOptions, Session, SessionGrants,
};

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

/// Makes the provider sessions the ERP runs, one per connection job (a crashed job is replaced
/// by a fresh session). The real one runs a component; tests and the bench give their own.
pub trait ProviderFactory {
    /// The provider's id (`ponto`), which scopes its storage.
    fn provider_id(&self) -> String;
    fn session(&self, connection_id: &str) -> Result<Box<dyn Provider>, ErpError>;
}

/// The real [`ProviderFactory`]: a provider component, installed or given as a file, run in
/// wasmtime with the settings, grants and storage key of this ERP.
pub struct ComponentFactory {
    runtime: Runtime,
    settings: Settings,
    /// What the plugin reads through `config.get` (see [`Settings::provider_config_for`]).
    config: std::collections::BTreeMap<String, String>,
    db_path: PathBuf,
    /// Encrypts the plugin's stored tokens at rest (`ERP_STORAGE_KEY`, or a 0600 key file
    /// beside the database, made on first use).
    storage_key: [u8; 32],
    /// Set when the settings used a deprecated form (said once, by the CLI).
    pub settings_note: Option<String>,
    /// The config keys its manifest declares; none for a bare file without one.
    declared_keys: Option<Vec<String>>,
}

impl ComponentFactory {
    /// The provider an operator installed in the database at `db_path`: `provider`, or the only
    /// one. Its artifact is read from the plugin directory and checked against its recorded
    /// digest; it runs with the origins granted at install (capped by `[host] granted-origins`
    /// when set) and the settings of `[provider.<id>]` and the variables its manifest declares.
    pub fn installed(
        settings: &Settings,
        db_path: &Path,
        provider: Option<&str>,
    ) -> Result<Self, ErpError> {
        super::store::check_database(db_path)?;
        let (plugin, only) = {
            if !db_path.exists() {
                return Err(ErpError::Usage(
                    "no provider is installed: install one with `erp plugin install REF` (an oci:// reference or a .wasm file)".into(),
                ));
            }
            let db = super::store::Db::open(db_path)?;
            let plugin = super::installed::choose(&db, provider)?;
            let only = super::installed::list(&db)?.len() == 1;
            (plugin, only)
        };
        let dir = super::installed::plugin_dir(db_path, settings.plugin_dir.as_deref());
        crate::plugins::store::load(&dir, &plugin.digest).map_err(|e| {
            ErpError::Usage(format!(
                "provider `{}`: {e}",
                crate::plugins::printable(&plugin.id)
            ))
        })?;
        let path = crate::plugins::store::path_for(&dir, &plugin.digest)
            .map_err(|e| ErpError::Usage(e.to_string()))?;
        let granted: Vec<String> = plugin
            .granted_origins
            .iter()
            .filter(|o| {
                settings.granted_origins.is_empty()
                    || o.parse::<AllowedOrigin>()
                        .is_ok_and(|o| settings.granted_origins.contains(&o))
            })
            .cloned()
            .collect();
        let manifest = Manifest::installed(&plugin.manifest, &plugin.version, &granted);
        let mut options = RuntimeOptions::new(settings.cache_dir.clone());
        options.granted_origins = manifest
            .requested_origins()
            .map_err(|e| ErpError::Usage(format!("provider `{}`: {e}", plugin.id)))?;
        options.call_timeout = settings.call_timeout;
        let runtime = Runtime::load_with_manifest(&path, manifest, options)?;
        let (config, note) =
            settings.provider_config_for(&plugin.id, &plugin.manifest.config, only);
        let declared = Some(plugin.manifest.config);
        Self::finish(runtime, settings, config, db_path, note, declared)
    }

    /// A plugin file run directly (`settings.plugin_path`, set in code by development tools and
    /// tests), with the `provider.toml` beside it and the origins of `[host] granted-origins`,
    /// or those its manifest asks for when none is set.
    pub fn load(settings: &Settings, db_path: &Path) -> Result<Self, ErpError> {
        let plugin = settings.plugin_path.as_deref().ok_or_else(|| {
            ErpError::Usage("no provider plugin file given (development use)".into())
        })?;
        super::store::check_database(db_path)?;
        let mut options = RuntimeOptions::new(settings.cache_dir.clone());
        options.granted_origins = if settings.granted_origins.is_empty() {
            Manifest::load(&Manifest::path_for(plugin))
                .map_err(LoadError::from)?
                .requested_origins()
                .unwrap_or_default()
        } else {
            settings.granted_origins.clone()
        };
        options.call_timeout = settings.call_timeout;
        let runtime = Runtime::load(plugin, options)?;
        // The environment variables its embedded manifest declares, when it carries one.
        let declared = std::fs::read(plugin)
            .ok()
            .and_then(|b| crate::plugins::manifest::read(&b).ok())
            .map(|m| m.config);
        let id = runtime.manifest().id.clone();
        let (config, note) =
            settings.provider_config_for(&id, declared.as_deref().unwrap_or_default(), true);
        Self::finish(runtime, settings, config, db_path, note, declared)
    }

    fn finish(
        runtime: Runtime,
        settings: &Settings,
        config: std::collections::BTreeMap<String, String>,
        db_path: &Path,
        settings_note: Option<String>,
        declared: Option<Vec<crate::plugins::manifest::ConfigKey>>,
    ) -> Result<Self, ErpError> {
        let key_file = db_path.with_extension("key");
        let storage_key =
            crate::capabilities::storage::host_key(&key_file).map_err(|e| ErpError::Config {
                path: key_file.clone(),
                reason: format!("cannot read or create the storage key: {e}"),
            })?;
        Ok(Self {
            runtime,
            settings: settings.clone(),
            config,
            db_path: db_path.to_owned(),
            storage_key,
            settings_note,
            declared_keys: declared.map(|keys| keys.into_iter().map(|k| k.key).collect()),
        })
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The provider's display name (its manifest's), for messages.
    pub fn provider_name(&self) -> &str {
        &self.runtime.manifest().name
    }

    /// What the plugin reads through `config.get`.
    pub fn provider_config(&self) -> &std::collections::BTreeMap<String, String> {
        &self.config
    }

    /// The provider settings the plugin does not declare among the keys it reads (a typo
    /// would otherwise pass silently): those of its manifest, or, for a bare file without one,
    /// what a throwaway instance says, its storage in a private temporary folder removed after
    /// (never a file in the working directory).
    pub fn unknown_config_keys(&self) -> Result<Vec<String>, ErpError> {
        let declared = match &self.declared_keys {
            Some(keys) => keys.clone(),
            None => self.keys_from_an_instance()?,
        };
        Ok(self
            .config
            .keys()
            .filter(|k| !declared.contains(k))
            .cloned()
            .collect())
    }

    fn keys_from_an_instance(&self) -> Result<Vec<String>, ErpError> {
        static CHECKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = CHECKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("erp-config-check-{}-{n}", std::process::id()));
        let io = |source| ErpError::File {
            path: dir.clone(),
            doing: "cannot make a scratch folder",
            source,
        };
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .create(&dir)
            .map_err(io)?;
        let declared = (|| {
            let grants = SessionGrants::new("config-check", &dir.join("storage.sqlite"));
            let mut session = self.runtime.session(grants).map_err(ErpError::Call)?;
            session.info().map_err(ErpError::Call)
        })();
        let _ = std::fs::remove_dir_all(&dir);
        Ok(declared?.config_keys)
    }

    /// A bare job for one connection, with this ERP's grants (settings, HTTP policy, storage key).
    pub fn raw_session(&self, connection_id: &str) -> Result<Session, ErpError> {
        let mut grants = SessionGrants::new(connection_id, &self.db_path);
        grants.config = self.config.clone();
        grants.storage_key = Some(self.storage_key);
        grants.http = self.settings.http_policy();
        grants.http_tap = crate::cassette::record::active();
        self.runtime.session(grants).map_err(ErpError::Call)
    }
}

impl ProviderFactory for ComponentFactory {
    fn provider_id(&self) -> String {
        self.runtime.manifest().id.clone()
    }

    fn session(&self, connection_id: &str) -> Result<Box<dyn Provider>, ErpError> {
        Ok(Box::new(PluginProvider {
            session: self.raw_session(connection_id)?,
            context: Context::default(),
            connection_id: connection_id.to_owned(),
            name: self.runtime.manifest().name.clone(),
        }))
    }
}

struct PluginProvider {
    session: Session,
    context: Context,
    connection_id: String,
    /// The provider's display name, for its errors' messages.
    name: String,
}

impl PluginProvider {
    fn fold<T>(&self, r: Result<Result<T, ProviderError>, CallError>) -> Result<T, ErpError> {
        match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                let mut context = self.context.clone();
                context.provider.get_or_insert_with(|| self.name.clone());
                Err(ErpError::provider(e, context))
            }
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
        crate::cassette::record::note_sync(&self.connection_id, request, &r);
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
