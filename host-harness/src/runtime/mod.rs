//! The sandboxed runtime: one [`Engine`] per process, a checked and cached [`Runtime`] per plugin
//! file, and one [`Session`] (one wasmtime `Store`) per job.
//!
//! Confinement, in order of defence:
//! - at load, the component's imports are checked against what the host grants, by name, and
//!   `instantiate_pre` type-checks them; anything else is refused before any guest code runs;
//! - WASI is deny-by-default: no environment, no arguments, no stdin, and the filesystem and
//!   socket interfaces are not even linked;
//! - each Store has a memory cap and each call a wall-clock deadline (epoch interruption);
//! - the only ways out are the four `erp:bank-sync` capabilities, each with its own policy.

pub mod cache;
pub mod limits;
pub mod manifest;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::component::{Component, HasData, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, Trap};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use crate::bindings::{self, BankProvider, BankProviderPre};
use crate::capabilities::{
    self, InstanceState,
    config::ConfigCapability,
    http::{AllowedOrigin, HttpCapability, HttpPolicy},
    log::{LogCapability, Throttle},
    storage::{Quota, StorageCapability},
};
pub use manifest::Manifest;

/// The WIT types a host works with, re-exported under stable names.
pub mod types {
    pub use crate::bindings::provider::{
        ConnectStart, Connection, ProviderInfo, SyncBatch, SyncProgress, SyncRequest,
    };
    pub use crate::bindings::types::*;
}

/// How often the epoch ticks; deadlines are counted in ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Guest stderr kept for error messages (a panic message); more than this traps the guest.
const STDERR_CAP: usize = 64 * 1024;

/// The process-wide engine, with its epoch ticker.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        let engine = Engine::new(&config).expect("the engine configuration is static and valid");
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .expect("spawning the epoch thread");
        engine
    })
}

/// Limits and places the operator chooses.
#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    /// Most linear memory a Store may use.
    pub max_memory_bytes: usize,
    /// Wall-clock limit of one call into the plugin.
    pub call_timeout: Duration,
    /// Directory of compiled components.
    pub cache_dir: PathBuf,
    /// HTTP origins the operator grants; the manifest may not ask for more.
    pub granted_origins: Vec<AllowedOrigin>,
}

impl RuntimeOptions {
    pub fn new(cache_dir: PathBuf) -> Self {
        Self {
            max_memory_bytes: 256 * 1024 * 1024,
            call_timeout: Duration::from_secs(60),
            cache_dir,
            granted_origins: Vec::new(),
        }
    }
}

/// Why a plugin could not be loaded. Each message names the file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read the plugin: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a WebAssembly component ({reason})")]
    NotAComponent { path: PathBuf, reason: String },
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
    #[error(
        "{path}: the manifest asks for {origin}, which the operator has not granted; grant it or remove it"
    )]
    NotGranted { path: PathBuf, origin: String },
    #[error("{path}: the plugin imports `{import}`, which this host does not grant")]
    ImportNotGranted { path: PathBuf, import: String },
    #[error(
        "{path}: the plugin was built for erp:bank-sync@{found}; this host loads erp:bank-sync@{API_VERSION} only: rebuild the plugin against {API_VERSION}"
    )]
    ApiVersion { path: PathBuf, found: String },
    #[error("{path}: the plugin does not export `{export}`")]
    MissingExport { path: PathBuf, export: String },
    #[error("{path}: the plugin does not fit the erp:bank-sync world: {reason}")]
    Incompatible { path: PathBuf, reason: String },
}

/// Why a call into the plugin failed (as opposed to the plugin answering with an error).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("the plugin ran past its time limit of {0:?} and was stopped")]
    Timeout(Duration),
    #[error("the plugin tried to use more than its memory limit of {0} MiB and was stopped")]
    MemoryLimit(usize),
    #[error("the plugin crashed: {0}")]
    Trap(String),
    #[error("this job's plugin instance crashed earlier; start a new job")]
    Poisoned,
    #[error("cannot start the plugin: {0}")]
    Setup(String),
}

/// Imports a provider may have. The four `erp:bank-sync` capabilities, and the WASI interfaces
/// Rust's std needs on wasm32-wasip2 (inert: the context has no env, args or stdin).
const GRANTED_IMPORTS: &[&str] = &[
    "erp:bank-sync/types@0.2.",
    "erp:bank-sync/http@0.2.",
    "erp:bank-sync/storage@0.2.",
    "erp:bank-sync/log@0.2.",
    "erp:bank-sync/config@0.2.",
    "wasi:cli/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
];
const PROVIDER_EXPORT: &str = "erp:bank-sync/provider@0.2.";

/// The contract version this host loads. A component built for another one (0.1.0) is refused,
/// not converted: 0.1.0 never left this repository, so a rebuild is the whole migration; the
/// frozen `wit/since_v0.1.0/` is where a converter would start if a version is ever published.
pub const API_VERSION: &str = "0.2.0";
const API_VERSION_PREFIX: &str = "0.2.";

/// The `erp:bank-sync` version a component was built for, when it is not the one this host
/// loads (read from its import and export names, so a wrong manifest cannot hide it).
fn foreign_api_version<'a>(names: impl IntoIterator<Item = &'a String>) -> Option<String> {
    names
        .into_iter()
        .filter_map(|n| n.strip_prefix("erp:bank-sync/")?.split_once('@'))
        .map(|(_, version)| version)
        .find(|v| !v.starts_with(API_VERSION_PREFIX))
        .map(str::to_owned)
}

/// A loaded, checked, compiled plugin, ready to start jobs.
pub struct Runtime {
    path: PathBuf,
    manifest: Manifest,
    options: RuntimeOptions,
    pre: BankProviderPre<InstanceState>,
    component: Component,
    /// The component came from the compile cache.
    pub from_cache: bool,
}

/// Refuses anything but a regular file (after symlinks) before it is opened: opening a FIFO
/// would wait for a writer for ever, and a device never ends.
pub fn regular_file(path: &Path) -> std::io::Result<()> {
    let kind = std::fs::metadata(path)?.file_type();
    if kind.is_file() {
        return Ok(());
    }
    let what = if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file (a FIFO, socket or device)"
    };
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("it is {what}; give the path of the file itself"),
    ))
}

/// Read a component file and check its header, without compiling it.
pub fn read_component(path: &Path) -> Result<Vec<u8>, LoadError> {
    let bytes = regular_file(path)
        .and_then(|()| std::fs::read(path))
        .map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
    let not = |reason: &str| LoadError::NotAComponent {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(not(if bytes.is_empty() {
            "the file is empty"
        } else {
            "no wasm header"
        }));
    }
    if bytes[4..8] != [0x0d, 0x00, 0x01, 0x00] {
        return Err(not(
            "it is a core module or an unsupported version; build it for wasm32-wasip2",
        ));
    }
    // The body is validated in full before it is first compiled (`cache::load`).
    Ok(bytes)
}

/// Load a component through the cache, with errors that name the file.
fn load_component(
    path: &Path,
    bytes: &[u8],
    cache_dir: &Path,
) -> Result<(Component, cache::Origin), LoadError> {
    cache::load(engine(), cache_dir, bytes).map_err(|failure| match failure {
        cache::Failure::Invalid(reason) => LoadError::NotAComponent {
            path: path.to_owned(),
            reason: format!("invalid: {reason}"),
        },
        cache::Failure::Compile(e) => LoadError::Incompatible {
            path: path.to_owned(),
            reason: format!("{e:#}"),
        },
    })
}

/// The import and export names of a component.
pub fn component_interface(component: &Component) -> (Vec<String>, Vec<String>) {
    let engine = engine();
    let ty = component.component_type();
    let imports = ty
        .imports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    let exports = ty
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    (imports, exports)
}

/// The process-wide linker: the same host functions serve every plugin, so they are registered
/// once (this is a measurable part of a cached load).
fn linker() -> Result<&'static Linker<InstanceState>, String> {
    static LINKER: OnceLock<Result<Linker<InstanceState>, String>> = OnceLock::new();
    LINKER
        .get_or_init(|| {
            let mut linker = Linker::new(engine());
            add_wasi_without_network(&mut linker).map_err(|e| format!("{e:#}"))?;
            capabilities::add_to_linker(&mut linker).map_err(|e| format!("{e:#}"))?;
            Ok(linker)
        })
        .as_ref()
        .map_err(Clone::clone)
}

struct IoTable;
impl HasData for IoTable {
    type Data<'a> = &'a mut ResourceTable;
}

/// The WASI p2 interfaces Rust's std uses on wasm32-wasip2, and neither files nor sockets: a
/// plugin that imports them is refused at load.
fn add_wasi_without_network(l: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::p2::bindings::sync::{cli, clocks, io, random};
    use wasmtime_wasi::random::{WasiRandom, WasiRandomView};
    type S = InstanceState;
    io::error::add_to_linker::<S, IoTable>(l, |t| &mut t.table)?;
    io::poll::add_to_linker::<S, IoTable>(l, |t| &mut t.table)?;
    io::streams::add_to_linker::<S, IoTable>(l, |t| &mut t.table)?;
    clocks::wall_clock::add_to_linker::<S, WasiClocks>(l, S::clocks)?;
    clocks::monotonic_clock::add_to_linker::<S, WasiClocks>(l, S::clocks)?;
    random::random::add_to_linker::<S, WasiRandom>(l, S::random)?;
    random::insecure::add_to_linker::<S, WasiRandom>(l, S::random)?;
    random::insecure_seed::add_to_linker::<S, WasiRandom>(l, S::random)?;
    cli::exit::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::environment::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::stdin::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::stdout::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::stderr::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::terminal_input::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::terminal_output::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::terminal_stdin::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::terminal_stdout::add_to_linker::<S, WasiCli>(l, S::cli)?;
    cli::terminal_stderr::add_to_linker::<S, WasiCli>(l, S::cli)?;
    Ok(())
}

impl Runtime {
    /// Load the plugin at `path` with the manifest beside it: check the manifest against the
    /// grants, check the component's imports and exports, compile (or load from cache).
    pub fn load(path: &Path, options: RuntimeOptions) -> Result<Self, LoadError> {
        let manifest = Manifest::load(&Manifest::path_for(path))?;
        Self::load_with_manifest(path, manifest, options)
    }

    /// Load the plugin at `path` described by `manifest` (an installed plugin's: what its
    /// embedded manifest says with the origins the operator granted), with the same checks.
    pub fn load_with_manifest(
        path: &Path,
        manifest: Manifest,
        options: RuntimeOptions,
    ) -> Result<Self, LoadError> {
        for origin in manifest.requested_origins().unwrap_or_default() {
            if !options.granted_origins.contains(&origin) {
                return Err(LoadError::NotGranted {
                    path: Manifest::path_for(path),
                    origin: origin.to_string(),
                });
            }
        }
        let bytes = read_component(path)?;
        let incompatible = |e: wasmtime::Error| LoadError::Incompatible {
            path: path.to_owned(),
            reason: format!("{e:#}"),
        };
        let (component, origin) = load_component(path, &bytes, &options.cache_dir)?;
        let (imports, exports) = component_interface(&component);
        if let Some(found) = foreign_api_version(imports.iter().chain(&exports)) {
            return Err(LoadError::ApiVersion {
                path: path.to_owned(),
                found,
            });
        }
        if let Some(import) = imports
            .iter()
            .find(|i| !GRANTED_IMPORTS.iter().any(|g| i.starts_with(g)))
        {
            return Err(LoadError::ImportNotGranted {
                path: path.to_owned(),
                import: import.clone(),
            });
        }
        if !exports.iter().any(|e| e.starts_with(PROVIDER_EXPORT)) {
            return Err(LoadError::MissingExport {
                path: path.to_owned(),
                export: format!("erp:bank-sync/provider@{API_VERSION}"),
            });
        }
        let linker = linker().map_err(|reason| LoadError::Incompatible {
            path: path.to_owned(),
            reason,
        })?;
        let instance_pre = linker.instantiate_pre(&component).map_err(|e| {
            // wasmtime names the import it could not satisfy.
            LoadError::ImportNotGranted {
                path: path.to_owned(),
                import: format!("{e:#}"),
            }
        })?;
        let pre = BankProviderPre::new(instance_pre).map_err(incompatible)?;
        Ok(Self {
            path: path.to_owned(),
            manifest,
            options,
            pre,
            component,
            from_cache: origin == cache::Origin::Cache,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn options(&self) -> &RuntimeOptions {
        &self.options
    }

    /// Import and export names of the component.
    pub fn interface(&self) -> (Vec<String>, Vec<String>) {
        component_interface(&self.component)
    }

    /// Start a job for one connection.
    pub fn session(&self, grants: SessionGrants) -> Result<Session, CallError> {
        let setup = |e: &dyn std::fmt::Display| CallError::Setup(e.to_string());
        let mut http_policy = grants.http;
        // The plugin reaches what its manifest asked for and the operator granted, nothing else.
        http_policy.allowed = self.manifest.requested_origins().map_err(|e| setup(&e))?;
        let plugin = self.manifest.id.as_str();
        let mut http = HttpCapability::new(http_policy, plugin, &grants.connection_id)
            .map_err(|e| setup(&e))?;
        let mut storage = StorageCapability::open(
            &grants.storage_path,
            plugin,
            &grants.connection_id,
            grants.storage_quota,
        )
        .map_err(|e| setup(&e))?
        .with_key(grants.storage_key);
        if let Some(tap) = grants.http_tap {
            tap.begin_session(plugin, &grants.connection_id, &grants.config, &mut storage);
            http.set_tap(tap);
        }
        let stderr = MemoryOutputPipe::new(STDERR_CAP);
        let mut wasi = WasiCtx::builder();
        wasi.stderr(stderr.clone());
        if grants.deterministic {
            // The same bytes on every run, so a replay's results can be compared.
            use wasmtime_wasi::random::Deterministic;
            wasi.secure_random(Deterministic::new((0..=255).collect()));
            wasi.insecure_random(Deterministic::new((0..=255).rev().collect()));
            wasi.insecure_random_seed(0x5eed);
        }
        if let Some(at) = grants.wall_clock {
            wasi.wall_clock(FixedClock(
                at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default(),
            ));
        }
        let state = InstanceState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits: limits::Limiter::new(self.options.max_memory_bytes),
            http,
            storage,
            log: LogCapability::new(plugin, &grants.connection_id, grants.log_throttle),
            config: ConfigCapability::new(grants.config),
        };
        let mut store = Store::new(engine(), state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(ticks(self.options.call_timeout));
        // At the deadline, time the storage spent waiting on a refusing database (its retries
        // before keeping a rotated token aside) is given back once; otherwise the call stops.
        store.epoch_deadline_callback(|mut ctx| {
            let credit = ctx.data_mut().storage.deadline_credit();
            Ok(if credit.is_zero() {
                wasmtime::UpdateDeadline::Interrupt
            } else {
                wasmtime::UpdateDeadline::Continue(ticks(credit))
            })
        });
        let bindings = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| CallError::Trap(format!("{e:#}")))?;
        Ok(Session {
            store,
            bindings,
            stderr,
            timeout: self.options.call_timeout,
            max_memory: self.options.max_memory_bytes,
            poisoned: false,
        })
    }
}

/// A wall clock that always tells the same time.
struct FixedClock(Duration);

impl wasmtime_wasi::HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        self.0
    }
}

fn ticks(d: Duration) -> u64 {
    (d.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}

/// What one job is allowed: its connection's storage, settings and HTTP policy.
pub struct SessionGrants {
    pub connection_id: String,
    /// SQLite file holding the plugin's key-value storage.
    pub storage_path: PathBuf,
    pub storage_quota: Quota,
    /// Key that encrypts the stored values at rest (see `capabilities::storage`); none stores
    /// them as given.
    pub storage_key: Option<[u8; 32]>,
    pub config: std::collections::BTreeMap<String, String>,
    /// Timeouts, size cap, client certificates; `allowed` is replaced by the manifest's origins.
    pub http: HttpPolicy,
    pub log_throttle: Throttle,
    /// What the plugin's wall clock says (tests pin dates); the system clock otherwise.
    pub wall_clock: Option<std::time::SystemTime>,
    /// A cassette recorder or replayer for the `http` capability (`crate::cassette`).
    pub http_tap: Option<std::sync::Arc<dyn crate::cassette::HttpTap>>,
    /// Fixed randomness (WASI `random`), for replays that must give the same results each run.
    pub deterministic: bool,
}

impl SessionGrants {
    pub fn new(connection_id: &str, storage_path: &Path) -> Self {
        Self {
            connection_id: connection_id.to_owned(),
            storage_path: storage_path.to_owned(),
            storage_quota: Quota::default(),
            storage_key: None,
            config: Default::default(),
            http: HttpPolicy::default(),
            log_throttle: Throttle::default(),
            wall_clock: None,
            http_tap: None,
            deterministic: false,
        }
    }
}

/// One job: one Store, one instance. A trap poisons it; start another session to go on.
pub struct Session {
    store: Store<InstanceState>,
    bindings: BankProvider,
    stderr: MemoryOutputPipe,
    timeout: Duration,
    max_memory: usize,
    poisoned: bool,
}

type ProviderResult<T> = Result<Result<T, types::ProviderError>, CallError>;

impl Session {
    fn call<T>(
        &mut self,
        f: impl FnOnce(&bindings::provider::Guest, &mut Store<InstanceState>) -> wasmtime::Result<T>,
    ) -> Result<T, CallError> {
        if self.poisoned {
            return Err(CallError::Poisoned);
        }
        self.store.data_mut().storage.new_call();
        self.store.set_epoch_deadline(ticks(self.timeout));
        let result = f(self.bindings.erp_bank_sync_provider(), &mut self.store);
        result.map_err(|e| {
            self.poisoned = true;
            if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
                CallError::Timeout(self.timeout)
            } else if self.store.data().limits.exceeded {
                CallError::MemoryLimit(self.max_memory / (1024 * 1024))
            } else {
                let stderr = String::from_utf8_lossy(&self.stderr.contents())
                    .trim()
                    .to_owned();
                let detail = if stderr.is_empty() {
                    format!("{e:#}")
                } else {
                    format!("{e:#}; plugin said: {stderr}")
                };
                CallError::Trap(detail)
            }
        })
    }

    /// Log lines the plugin wrote, and lines the throttle dropped.
    pub fn log_counts(&self) -> (u64, u64) {
        self.store.data().log.counts()
    }

    /// Largest linear memory the plugin reached in this session, in bytes.
    pub fn peak_memory(&self) -> usize {
        self.store.data().limits.peak_memory
    }

    pub fn info(&mut self) -> Result<types::ProviderInfo, CallError> {
        self.call(|p, s| p.call_info(s))
    }

    pub fn list_institutions(
        &mut self,
        filter: &types::InstitutionFilter,
    ) -> ProviderResult<Vec<types::Institution>> {
        self.call(|p, s| p.call_list_institutions(s, filter))
    }

    pub fn begin_connect(
        &mut self,
        institution_id: &str,
        redirect_uri: &str,
    ) -> ProviderResult<types::ConnectStart> {
        self.call(|p, s| p.call_begin_connect(s, institution_id, redirect_uri))
    }

    pub fn complete_connect(&mut self, callback_url: &str) -> ProviderResult<types::Connection> {
        self.call(|p, s| p.call_complete_connect(s, callback_url))
    }

    pub fn list_accounts(
        &mut self,
        institution_id: Option<&str>,
    ) -> ProviderResult<Vec<types::Account>> {
        self.call(|p, s| p.call_list_accounts(s, institution_id))
    }

    pub fn sync(&mut self, request: &types::SyncRequest) -> ProviderResult<types::SyncBatch> {
        self.call(|p, s| p.call_sync(s, request))
    }

    pub fn request_reauthorization(
        &mut self,
        account_id: &str,
        redirect_uri: &str,
    ) -> ProviderResult<String> {
        self.call(|p, s| p.call_request_reauthorization(s, account_id, redirect_uri))
    }

    pub fn disconnect(&mut self) -> ProviderResult<()> {
        self.call(|p, s| p.call_disconnect(s))
    }
}

/// Where compiled components are cached by default: a directory of this user's, never a shared
/// one, since only files this host wrote may be loaded.
pub fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("erp-bank-sync").join("components")
}

/// A human description of the plugin at `path`: its manifest, imports and exports. Nothing is
/// granted or run.
pub fn inspect(path: &Path) -> Result<String, LoadError> {
    use std::fmt::Write;
    let manifest_path = Manifest::path_for(path);
    let manifest = Manifest::load(&manifest_path)?;
    let bytes = read_component(path)?;
    let (component, _) = load_component(path, &bytes, &default_cache_dir())?;
    let (imports, exports) = component_interface(&component);
    let mut out = String::new();
    let _ = writeln!(out, "plugin      {}", path.display());
    let _ = writeln!(out, "manifest    {}", manifest_path.display());
    let _ = writeln!(out, "id          {}", manifest.id);
    let _ = writeln!(out, "name        {}", manifest.name);
    let _ = writeln!(out, "version     {}", manifest.version);
    let _ = writeln!(out, "api-version {}", manifest.api_version);
    let _ = writeln!(
        out,
        "size        {} bytes (blake3 {})",
        bytes.len(),
        cache::content_hash(&bytes)
    );
    let _ = writeln!(out, "http hosts:");
    for host in &manifest.capabilities.http {
        let _ = writeln!(out, "  {host}");
    }
    let _ = writeln!(out, "imports:");
    for import in &imports {
        let granted = GRANTED_IMPORTS.iter().any(|g| import.starts_with(g));
        let _ = writeln!(
            out,
            "  {import}{}",
            if granted { "" } else { "   (NOT GRANTED)" }
        );
    }
    let _ = writeln!(out, "exports:");
    for export in &exports {
        let _ = writeln!(out, "  {export}");
    }
    Ok(out)
}
