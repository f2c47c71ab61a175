//! The figures, each run inside a child process of `erp-dev bench` (see [`super`]). The sandboxes
//! live in the parent, so the child's peak RSS is the ERP host's alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::native::{NativeImports, NativeProviderHost, Stopwatch, Transport};
use super::proxy::{Proxy, loopback_http};
use super::wasm::WasmHost;
use super::{ChildResult, Metric, Target};
use host_harness::bindings::http as wh;
use host_harness::bindings::http::Host as _;
use host_harness::capabilities::http::HttpCapability;
use host_harness::erp::connect::{self, CallbackMode};
use host_harness::erp::db::{Db, OnlineAccount};
use host_harness::erp::errors::ErpError;
use host_harness::erp::provider::ProviderHost;
use host_harness::erp::settings::Settings;
use host_harness::erp::sync::{self, Quiet, SyncOptions, SyncReport};
use host_harness::runtime::types::{SyncProgress, SyncRequest};

/// A sandbox the parent started.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SandboxRef {
    pub base_url: String,
    pub account_id: String,
    pub institution_id: String,
}

/// What the parent asks a child to run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChildSpec {
    /// "1", "23", "4", "5" or "6".
    pub figure: String,
    pub runs: u32,
    pub transactions: u64,
    pub sandboxes: Vec<SandboxRef>,
    pub workdir: PathBuf,
    pub config: Option<PathBuf>,
}

fn io(e: impl std::fmt::Display) -> ErpError {
    ErpError::Io(e.to_string())
}

/// Provider settings pointing at `base` (a sandbox or the proxy), with the sandbox's client.
fn settings_for(spec: &ChildSpec, base: &str) -> Result<Settings, ErpError> {
    let mut s = crate::settings(spec.config.as_deref())?;
    let c = &mut s.provider_config;
    c.insert("api-url".into(), format!("{base}/ponto-connect"));
    c.insert("authorization-url".into(), format!("{base}/oauth2/auth"));
    c.insert("client-id".into(), "sandbox-client-id".into());
    c.insert("client-secret".into(), "sandbox-client-secret".into());
    // The sandbox finishes a bank refresh on the second poll; waiting longer measures nothing.
    c.insert("sync-poll-interval-ms".into(), "20".into());
    Ok(s)
}

fn fresh_db(dir: &Path, name: &str) -> Result<(PathBuf, Db), ErpError> {
    let path = dir.join(name);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let db = Db::open(&path)?;
    Ok((path, db))
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// Connect a link to the sandbox's first institution; the sandbox's main account in the ERP.
fn connect_link(
    db: &mut Db,
    host: &dyn ProviderHost,
    sb: &SandboxRef,
) -> Result<OnlineAccount, ErpError> {
    let outcome = connect::connect(
        db,
        host,
        &sb.institution_id,
        None,
        CallbackMode::Filled(ponto_sandbox::consent::auto_consent),
        &mut |_| {},
    )?;
    outcome
        .accounts
        .into_iter()
        .map(|(a, _)| a)
        .find(|a| a.provider_account_id == sb.account_id)
        .ok_or_else(|| {
            io(format!(
                "the sandbox account {} was not connected",
                sb.account_id
            ))
        })
}

fn sync_one(
    db: &mut Db,
    host: &dyn ProviderHost,
    account: &OnlineAccount,
    settings: &Settings,
    customer_ip: Option<&str>,
) -> Result<SyncReport, ErpError> {
    let opts = SyncOptions {
        account: Some(account.id.to_string()),
        customer_ip: customer_ip.map(str::to_owned),
        max_lines: settings.max_lines,
        refresh_hours: settings.refresh_hours,
        ..SyncOptions::default()
    };
    let report = sync::run(db, host, &opts, &mut Quiet)?;
    if let Some(e) = report.accounts.iter().find_map(|a| a.error.clone()) {
        return Err(io(format!("the benchmark sync failed: {e}")));
    }
    Ok(report)
}

/// Requests the sandbox has served so far, from the counter in its `ibanity-request-id`
/// (the probe itself counts one).
fn request_counter(http: &mut HttpCapability, sb: &SandboxRef) -> Result<u64, ErpError> {
    let resp = http
        .send(get(&format!("{}/_sandbox/accounts", sb.base_url)))
        .map_err(|e| io(format!("sandbox probe: {e:?}")))?;
    let id = resp
        .headers
        .iter()
        .find(|(k, _)| k == "ibanity-request-id")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| io("the sandbox sent no ibanity-request-id"))?;
    // The last 11 hex digits are the sandbox's request counter.
    u64::from_str_radix(&id[id.len().saturating_sub(11)..], 16).map_err(io)
}

fn get(url: &str) -> wh::Request {
    wh::Request {
        method: wh::Method::Get,
        url: url.to_owned(),
        headers: vec![],
        body: wh::Body::Text(String::new()),
        timeout_ms: None,
    }
}

fn metric(figure: &str, key: &str, label: &str, unit: &str, target: Option<Target>) -> Metric {
    Metric {
        figure: figure.into(),
        key: key.into(),
        label: label.into(),
        unit: unit.into(),
        samples: Vec::new(),
        target,
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

const MIB: f64 = 1024.0 * 1024.0;

pub fn run(spec: &ChildSpec) -> Result<ChildResult, ErpError> {
    std::fs::create_dir_all(&spec.workdir).map_err(io)?;
    let mut out = ChildResult::default();
    match spec.figure.as_str() {
        "1" => figure1(spec, &mut out)?,
        "23" => figure23(spec, &mut out)?,
        "4" => figure4(spec, &mut out)?,
        "5" => figure5(spec, &mut out)?,
        "6" => figure6(spec, &mut out)?,
        other => {
            return Err(ErpError::Usage(format!(
                "unknown benchmark figure `{other}`"
            )));
        }
    }
    out.peak_rss_mib = super::peak_rss_mib();
    Ok(out)
}

/// 1. First sync of one account from the loopback sandbox into a fresh SQLite file.
fn figure1(spec: &ChildSpec, out: &mut ChildResult) -> Result<(), ErpError> {
    let sb = &spec.sandboxes[0];
    let settings = settings_for(spec, &sb.base_url)?;
    let mut http = loopback_http()?;
    let mut secs_m = metric("1", "seconds", "first sync: time", "s", None);
    let mut rate = metric(
        "1",
        "tx_per_s",
        "first sync: transactions/s",
        "tx/s",
        Some(Target::AtLeast(50_000.0)),
    );
    let mut lines = metric("1", "lines", "first sync: lines stored", "lines", None);
    let mut requests = metric("1", "requests", "first sync: HTTP requests", "req", None);
    let mut in_plugin = metric(
        "1",
        "in_plugin",
        "first sync: inside plugin `sync` calls (guest + HTTP)",
        "s",
        None,
    );
    let mut in_erp = metric(
        "1",
        "in_erp",
        "first sync: ERP side left on the sync's path (commits overlap the plugin's next page)",
        "s",
        None,
    );
    let mut peak = metric(
        "1",
        "plugin_peak",
        "first sync: plugin peak linear memory",
        "MiB",
        Some(Target::AtMost(64.0)),
    );
    for run in 0..spec.runs {
        let (path, mut db) = fresh_db(&spec.workdir, &format!("fig1-{run}.sqlite"))?;
        let host = WasmHost::load(&settings, &path)?;
        let account = connect_link(&mut db, &host, sb)?;
        host.reset_stats();
        let before = request_counter(&mut http, sb)?;
        let t = Instant::now();
        let report = sync_one(&mut db, &host, &account, &settings, None)?;
        let elapsed = t.elapsed();
        let after = request_counter(&mut http, sb)?;
        let stats = host.stats();
        let n = report.new_lines();
        secs_m.samples.push(secs(elapsed));
        rate.samples.push(n as f64 / secs(elapsed));
        lines.samples.push(n as f64);
        requests.samples.push((after - before - 1) as f64);
        in_plugin.samples.push(secs(stats.sync_time));
        in_erp
            .samples
            .push(secs(elapsed.saturating_sub(stats.sync_time)));
        peak.samples.push(stats.peak_memory as f64 / MIB);
        drop(db);
        drop(host);
        remove_db(&path);
    }
    out.metrics
        .extend([secs_m, rate, lines, requests, in_plugin, in_erp, peak]);
    out.rss_figure = Some("1".into());
    Ok(())
}

/// The link, tokens and recorded pages figures 2 and 3 share.
struct Replay {
    proxy: Proxy,
    settings: Settings,
    wasm: WasmHost,
    connection_id: String,
    account_id: String,
    native_storage: std::sync::Arc<std::sync::Mutex<BTreeMap<String, String>>>,
    connection: host_harness::runtime::types::Connection,
}

fn replay_setup(spec: &ChildSpec) -> Result<Replay, ErpError> {
    let sb = &spec.sandboxes[0];
    let proxy = Proxy::start(&sb.base_url)?;
    let settings = settings_for(spec, &proxy.origin)?;
    let (path, mut db) = fresh_db(&spec.workdir, "fig23-component.sqlite")?;
    let wasm = WasmHost::load(&settings, &path)?;
    let account = connect_link(&mut db, &wasm, sb)?;
    let connection_id = db.link(account.link_id)?.connection_id;
    // Warm-up: one whole sync through the proxy records every page.
    sync_one(&mut db, &wasm, &account, &settings, None)?;
    proxy
        .recording
        .store(false, std::sync::atomic::Ordering::Relaxed);
    // The native provider connects through the proxy too, for its own tokens.
    let native = NativeImports::new(
        Transport::Http(Box::new(std::cell::RefCell::new(loopback_http()?))),
        settings.provider_config.clone(),
    );
    let storage = native.storage.clone();
    let nph = NativeProviderHost {
        host: Rc::new(native),
    };
    let mut p = nph.session("native")?;
    let start = p.begin_connect(&sb.institution_id, "http://127.0.0.1:8765/callback")?;
    let callback =
        ponto_sandbox::consent::auto_consent(&start.authorization_url).map_err(ErpError::Usage)?;
    let connection = p.complete_connect(&callback)?;
    Ok(Replay {
        proxy,
        settings,
        wasm,
        connection_id,
        account_id: sb.account_id.clone(),
        native_storage: storage,
        connection,
    })
}

fn replay_host(r: &Replay) -> NativeImports {
    let mut h = NativeImports::new(
        Transport::Replay(r.proxy.cache.clone()),
        r.settings.provider_config.clone(),
    );
    h.storage = r.native_storage.clone();
    h
}

/// Drive one whole first sync through `sync`, discarding the batches; lines read.
fn drain(
    mut sync: impl FnMut(&SyncRequest) -> Result<host_harness::runtime::types::SyncBatch, ErpError>,
    account_id: &str,
    max_lines: u32,
) -> Result<u64, ErpError> {
    let mut request = SyncRequest {
        account_id: account_id.to_owned(),
        cursor: None,
        state: None,
        customer_ip: None,
        since: None,
        max_lines,
    };
    let mut lines = 0;
    loop {
        let batch = sync(&request)?;
        lines += batch.lines.len() as u64;
        match batch.progress {
            SyncProgress::More(c) => request.cursor = Some(c),
            SyncProgress::Done(_) => return Ok(lines),
        }
    }
}

/// 2. Parsing and mapping natively vs in the component; 3. the in-process baseline.
fn figure23(spec: &ChildSpec, out: &mut ChildResult) -> Result<(), ErpError> {
    let r = replay_setup(spec)?;
    let max_lines = r.settings.max_lines;
    let mut native_ms = metric(
        "2",
        "native_ms_per_page",
        "provider sync logic, native: per 100 lines",
        "ms",
        None,
    );
    let mut wasm_ms = metric(
        "2",
        "wasm_ms_per_page",
        "provider sync logic, in the component (HTTP subtracted): per 100 lines",
        "ms",
        None,
    );
    let mut http_ms = metric(
        "2",
        "http_ms_per_page",
        "HTTP from memory through the host's http capability (subtracted): per request",
        "ms",
        None,
    );
    let mut ratio = metric(
        "2",
        "ratio",
        "wasm / native",
        "×",
        Some(Target::AtMost(1.5)),
    );
    let mut base_s = metric(
        "3",
        "seconds",
        "in-process baseline (native provider, replayed pages, same SQLite path): time",
        "s",
        None,
    );
    let mut base_rate = metric(
        "3",
        "tx_per_s",
        "in-process baseline: transactions/s",
        "tx/s",
        None,
    );
    for run in 0..spec.runs {
        // Native: the provider's own code over pages replayed from memory.
        let host = replay_host(&r);
        let t = Stopwatch::start();
        let n_native = drain(
            |req| {
                let request = ponto_provider::bindings::provider::SyncRequest {
                    account_id: req.account_id.clone(),
                    cursor: req.cursor.clone(),
                    state: req.state.clone(),
                    customer_ip: None,
                    since: None,
                    max_lines: req.max_lines,
                };
                ponto_provider::sync::sync(&host, &request)
                    .map(|batch| super::native::convert(&batch))
                    .map_err(|e| io(format!("native sync: {}", e.describe())))
            },
            &r.account_id,
            max_lines,
        )?;
        let native = t.elapsed().saturating_sub(host.http_time.get());
        // The component, the proxy serving the same pages from memory.
        let mut session = r.wasm.raw_session(&r.connection_id)?;
        r.proxy.start_log();
        let t = Stopwatch::start();
        let n_wasm = drain(
            |req| match session.sync(req) {
                Ok(Ok(b)) => Ok(b),
                Ok(Err(e)) => Err(io(format!("component sync: {e:?}"))),
                Err(e) => Err(ErpError::Call(e)),
            },
            &r.account_id,
            max_lines,
        )?;
        let total = t.elapsed();
        let served = r.proxy.take_log();
        if n_native != n_wasm || n_native == 0 {
            return Err(io(format!(
                "native read {n_native} lines, the component {n_wasm}"
            )));
        }
        // The same requests again from the host, through a fresh http capability: their cost.
        let mut http = loopback_http()?;
        let t = Stopwatch::start();
        for s in &served {
            let headers = s
                .headers
                .iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "host" | "content-length" | "transfer-encoding" | "connection"
                    )
                })
                .cloned()
                .collect();
            let _ = http.send(wh::Request {
                method: wh::Method::Get,
                url: format!("{}{}", r.proxy.origin, s.target),
                headers,
                body: wh::Body::Text(String::new()),
                timeout_ms: None,
            });
        }
        let http_time = t.elapsed();
        let wasm = total.saturating_sub(http_time);
        let pages = n_native as f64 / 100.0;
        native_ms
            .samples
            .push(native.as_secs_f64() * 1000.0 / pages);
        wasm_ms.samples.push(wasm.as_secs_f64() * 1000.0 / pages);
        http_ms
            .samples
            .push(http_time.as_secs_f64() * 1000.0 / served.len().max(1) as f64);
        ratio
            .samples
            .push(wasm.as_secs_f64() / native.as_secs_f64().max(1e-9));

        // 3. Baseline: the ERP's sync orchestration and SQLite commits, native provider.
        let (path, mut db) = fresh_db(&spec.workdir, &format!("fig3-{run}.sqlite"))?;
        let (link_id, _) =
            db.save_connection(None, &format!("native-{run}"), "ponto", &r.connection)?;
        let account = db
            .accounts(Some(link_id))?
            .into_iter()
            .find(|a| a.provider_account_id == r.account_id)
            .ok_or_else(|| io("the baseline account is missing"))?;
        let nph = NativeProviderHost {
            host: Rc::new(replay_host(&r)),
        };
        let t = Instant::now();
        let report = sync_one(&mut db, &nph, &account, &r.settings, None)?;
        let elapsed = t.elapsed();
        base_s.samples.push(secs(elapsed));
        base_rate
            .samples
            .push(report.new_lines() as f64 / secs(elapsed));
        drop(db);
        remove_db(&path);
    }
    out.notes.push(format!(
        "{} responses recorded by the replay proxy; figure 2 times are the bench thread's CPU \
         time ({})",
        r.proxy.cache.len(),
        if super::native::thread_cpu().is_some() {
            "/proc/thread-self/schedstat"
        } else {
            "not available here: wall clock"
        }
    ));
    out.metrics
        .extend([native_ms, wasm_ms, http_ms, ratio, base_s, base_rate]);
    Ok(())
}

/// 4. Component start: compile, cached load + instantiate, size.
fn figure4(spec: &ChildSpec, out: &mut ChildResult) -> Result<(), ErpError> {
    use host_harness::runtime::{
        Runtime, RuntimeOptions, SessionGrants, cache, engine, read_component,
    };
    let settings = crate::settings(spec.config.as_deref())?;
    let path = &settings.plugin_path.clone().unwrap_or_default();
    let options = |dir: &Path| {
        let mut o = RuntimeOptions::new(dir.to_owned());
        o.granted_origins = settings.granted_origins.clone();
        o
    };
    let mut size = metric(
        "4",
        "size",
        "component size",
        "MiB",
        Some(Target::AtMost(1.5)),
    );
    let mut compile = metric(
        "4",
        "compile_ms",
        "load with compile from .wasm (empty cache)",
        "ms",
        None,
    );
    let mut cached = metric(
        "4",
        "cached_ms",
        "load from the compile cache + instantiate",
        "ms",
        Some(Target::AtMost(5.0)),
    );
    let mut load_ms = metric(
        "4",
        "load_ms",
        "  of which Runtime::load (read, validate, hash, deserialize, link)",
        "ms",
        None,
    );
    let mut inst_ms = metric(
        "4",
        "instantiate_ms",
        "  of which session: storage open + instantiate",
        "ms",
        None,
    );
    let mut validate_ms = metric(
        "4",
        "validate_ms",
        "  read + validate the .wasm",
        "ms",
        None,
    );
    let mut cache_ms = metric(
        "4",
        "cache_ms",
        "  cache read + blake3 check + deserialize",
        "ms",
        None,
    );
    let bytes = read_component(path)?;
    let warm = spec.workdir.join("fig4-cache");
    let _ = std::fs::remove_dir_all(&warm);
    Runtime::load(path, options(&warm))?;
    let db_path = spec.workdir.join("fig4.sqlite");
    remove_db(&db_path);
    drop(Db::open(&db_path)?);
    for run in 0..spec.runs {
        size.samples.push(bytes.len() as f64 / MIB);
        let cold = spec.workdir.join(format!("fig4-cold-{run}"));
        let _ = std::fs::remove_dir_all(&cold);
        let t = Instant::now();
        let rt = Runtime::load(path, options(&cold))?;
        compile.samples.push(t.elapsed().as_secs_f64() * 1000.0);
        if rt.from_cache {
            return Err(io("the cold load hit a cache"));
        }
        let _ = std::fs::remove_dir_all(&cold);

        let t = Instant::now();
        let rt = Runtime::load(path, options(&warm))?;
        let loaded = t.elapsed();
        let session = rt
            .session(SessionGrants::new("bench", &db_path))
            .map_err(ErpError::Call)?;
        let total = t.elapsed();
        drop(session);
        if !rt.from_cache {
            return Err(io("the warm load missed the cache"));
        }
        cached.samples.push(total.as_secs_f64() * 1000.0);
        load_ms.samples.push(loaded.as_secs_f64() * 1000.0);
        inst_ms
            .samples
            .push((total - loaded).as_secs_f64() * 1000.0);

        let t = Instant::now();
        let _ = read_component(path)?;
        validate_ms.samples.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let (_, origin) = cache::load(engine(), &warm, &bytes).map_err(|e| io(format!("{e:#}")))?;
        cache_ms.samples.push(t.elapsed().as_secs_f64() * 1000.0);
        if origin != cache::Origin::Cache {
            return Err(io("the cache entry was not used"));
        }
    }
    out.metrics.extend([
        size,
        compile,
        cached,
        load_ms,
        inst_ms,
        validate_ms,
        cache_ms,
    ]);
    let _ = std::fs::remove_dir_all(&warm);
    remove_db(&db_path);
    Ok(())
}

/// 5. Incremental sync: 10 new transactions on an account with many old ones.
fn figure5(spec: &ChildSpec, out: &mut ChildResult) -> Result<(), ErpError> {
    let sb = &spec.sandboxes[0];
    let settings = settings_for(spec, &sb.base_url)?;
    let mut http = loopback_http()?;
    let (path, mut db) = fresh_db(&spec.workdir, "fig5.sqlite")?;
    let host = WasmHost::load(&settings, &path)?;
    let account = connect_link(&mut db, &host, sb)?;
    sync_one(&mut db, &host, &account, &settings, None)?;
    // The seeded history hides back-dated bookings until the first transactions
    // synchronization (they make that one sync walk the overlap, which the e2e tests cover):
    // one person's sync releases them before anything is measured.
    sync_one(&mut db, &host, &account, &settings, Some("127.0.0.1"))?;
    let mut req_u = metric(
        "5",
        "requests_unattended",
        "incremental after Ponto's own sync, unattended, 10 new: HTTP requests",
        "req",
        Some(Target::AtMost(2.0)),
    );
    let mut ms_u = metric(
        "5",
        "ms_unattended",
        "incremental after Ponto's own sync, unattended: time",
        "ms",
        None,
    );
    let mut new_u = metric(
        "5",
        "new_lines_unattended",
        "incremental after Ponto's own sync, unattended: new lines stored",
        "lines",
        None,
    );
    // A bank refresh always costs the synchronization POSTs and polls: no target.
    let mut req = metric(
        "5",
        "requests",
        "incremental, user present (bank refresh), 10 new: HTTP requests",
        "req",
        None,
    );
    let mut ms = metric(
        "5",
        "ms",
        "incremental, user present, 10 new: time",
        "ms",
        None,
    );
    let mut new = metric(
        "5",
        "new_lines",
        "incremental, user present: new lines stored",
        "lines",
        None,
    );
    for _ in 0..spec.runs {
        add_transactions(&mut http, sb, 10)?;
        pontos_own_sync(&mut http, sb)?;
        let before = request_counter(&mut http, sb)?;
        let t = Instant::now();
        let report = sync_one(&mut db, &host, &account, &settings, None)?;
        let elapsed = t.elapsed();
        let after = request_counter(&mut http, sb)?;
        req_u.samples.push((after - before - 1) as f64);
        ms_u.samples.push(elapsed.as_secs_f64() * 1000.0);
        new_u.samples.push(report.new_lines() as f64);

        add_transactions(&mut http, sb, 10)?;
        let before = request_counter(&mut http, sb)?;
        let t = Instant::now();
        let report = sync_one(&mut db, &host, &account, &settings, Some("127.0.0.1"))?;
        let elapsed = t.elapsed();
        let after = request_counter(&mut http, sb)?;
        req.samples.push((after - before - 1) as f64);
        ms.samples.push(elapsed.as_secs_f64() * 1000.0);
        new.samples.push(report.new_lines() as f64);
    }
    out.metrics.extend([req_u, ms_u, new_u, req, ms, new]);
    // Which requests: one more pass of each kind through a logging (not caching) proxy.
    let proxy = Proxy::start(&sb.base_url)?;
    proxy
        .recording
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let via_proxy = settings_for(spec, &proxy.origin)?;
    let logged = WasmHost::load(&via_proxy, &path)?;
    for (what, ip) in [
        ("unattended after Ponto's own sync", None),
        ("user present", Some("127.0.0.1")),
    ] {
        add_transactions(&mut http, sb, 10)?;
        if ip.is_none() {
            pontos_own_sync(&mut http, sb)?;
        }
        proxy.start_log();
        sync_one(&mut db, &logged, &account, &via_proxy, ip)?;
        out.notes.push(format!(
            "figure 5, {what}: {}",
            request_summary(&proxy.take_log())
        ));
    }
    drop(db);
    drop(host);
    drop(logged);
    remove_db(&path);
    Ok(())
}

fn add_transactions(http: &mut HttpCapability, sb: &SandboxRef, n: u32) -> Result<(), ErpError> {
    sandbox_control(
        http,
        &format!(
            "{}/_sandbox/accounts/{}/transactions",
            sb.base_url, sb.account_id
        ),
        format!(r#"{{"count": {n}}}"#),
    )
}

/// Ponto's own scheduled synchronization of the account (`accountTransactions`, customer
/// offline): the queued bookings become visible without the ERP asking the bank.
fn pontos_own_sync(http: &mut HttpCapability, sb: &SandboxRef) -> Result<(), ErpError> {
    sandbox_control(
        http,
        &format!(
            "{}/_sandbox/accounts/{}/synchronizations",
            sb.base_url, sb.account_id
        ),
        "{}".into(),
    )
}

fn sandbox_control(http: &mut HttpCapability, url: &str, body: String) -> Result<(), ErpError> {
    let resp = http
        .send(wh::Request {
            method: wh::Method::Post,
            url: url.to_owned(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: wh::Body::Text(body),
            timeout_ms: None,
        })
        .map_err(|e| io(format!("sandbox control: {e:?}")))?;
    if !(200..300).contains(&resp.status) {
        return Err(io(format!(
            "sandbox control {url}: HTTP {}: {}",
            resp.status,
            String::from_utf8_lossy(resp.body.as_bytes())
        )));
    }
    Ok(())
}

/// `GET /accounts/{id}/transactions ×2, ...`: requests by method and path, ids elided.
fn request_summary(served: &[super::proxy::Served]) -> String {
    let mut counts: Vec<(String, u32)> = Vec::new();
    for s in served {
        let path = s.target.split('?').next().unwrap_or_default();
        let path: Vec<&str> = path
            .split('/')
            .map(|seg| {
                if seg.len() >= 32 && seg.contains('-') {
                    "{id}"
                } else {
                    seg
                }
            })
            .collect();
        let key = format!("{} {}", s.method, path.join("/"));
        match counts.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => counts.push((key, 1)),
        }
    }
    let total: u32 = counts.iter().map(|(_, n)| n).sum();
    let list: Vec<String> = counts
        .into_iter()
        .map(|(k, n)| if n > 1 { format!("{k} ×{n}") } else { k })
        .collect();
    format!("{total} requests: {}", list.join(", "))
}

/// One link of figure 6: its host (own api-url), account and settings.
type BenchLink = (WasmHost, OnlineAccount, Settings);

/// Connect every sandbox into a fresh database.
fn connect_all(spec: &ChildSpec, name: &str) -> Result<(PathBuf, Vec<BenchLink>), ErpError> {
    let (path, mut db) = fresh_db(&spec.workdir, name)?;
    let mut links = Vec::new();
    for sb in &spec.sandboxes {
        let settings = settings_for(spec, &sb.base_url)?;
        let host = WasmHost::load(&settings, &path)?;
        let account = connect_link(&mut db, &host, sb)?;
        links.push((host, account, settings));
    }
    Ok((path, links))
}

/// The ERP's host for figure 6: each link's sessions come from that link's own host (each
/// sandbox has its own api-url), so one `sync` covers every link.
struct PerLinkHost(BTreeMap<String, WasmHost>);

impl ProviderHost for PerLinkHost {
    fn provider_id(&self) -> String {
        "ponto".into()
    }

    fn session(
        &self,
        connection_id: &str,
    ) -> Result<Box<dyn host_harness::erp::provider::Provider>, ErpError> {
        self.0
            .get(connection_id)
            .ok_or_else(|| io(format!("no bench host for connection {connection_id}")))?
            .session(connection_id)
    }
}

/// Every link of a fresh database, ready for the ERP's own `sync` of all links.
fn connect_all_hosted(
    spec: &ChildSpec,
    name: &str,
) -> Result<(PathBuf, Db, PerLinkHost, SyncOptions), ErpError> {
    let (path, links) = connect_all(spec, name)?;
    let db = Db::open(&path)?;
    let mut opts = SyncOptions::default();
    let mut hosts = BTreeMap::new();
    for (host, account, settings) in links {
        opts.max_lines = settings.max_lines;
        opts.refresh_hours = settings.refresh_hours;
        // The figure is one account of 200 transactions per link: the sandbox's second account
        // of each link (24 transactions) is left out of the ERP before the sync.
        db.conn()
            .execute(
                "DELETE FROM online_accounts WHERE link_id = ?1 AND id != ?2",
                [account.link_id, account.id],
            )
            .map_err(|e| ErpError::db(&path, e))?;
        hosts.insert(db.link(account.link_id)?.connection_id, host);
    }
    Ok((path, db, PerLinkHost(hosts), opts))
}

/// Figure 6, many accounts: the ERP's own `sync` of every link, one by one (`--jobs 1`) vs
/// its parallel sync (`--jobs` default: one worker per CPU, each with its own DB connection
/// and Session).
fn figure6(spec: &ChildSpec, out: &mut ChildResult) -> Result<(), ErpError> {
    let jobs = sync::default_jobs();
    let k = spec.sandboxes.len();
    let mut seq = metric(
        "6",
        "sequential_s",
        &format!("{k} accounts one by one (`erp sync --jobs 1`): time"),
        "s",
        None,
    );
    let mut par = metric(
        "6",
        "parallel_s",
        &format!("{k} accounts, `erp sync --jobs {jobs}`: time"),
        "s",
        None,
    );
    let mut speedup = metric("6", "speedup", "parallel speed-up", "×", None);
    let mut lines_m = metric("6", "lines", "lines stored per pass", "lines", None);
    let check = |report: &SyncReport| -> Result<u64, ErpError> {
        match report.accounts.iter().find_map(|a| a.error.clone()) {
            Some(e) => Err(io(format!("the benchmark sync failed: {e}"))),
            None if report.accounts.len() != k || !report.skipped_links.is_empty() => Err(io(
                format!("{} of {k} accounts synchronised", report.accounts.len()),
            )),
            None => Ok(report.new_lines()),
        }
    };
    for run in 0..spec.runs {
        let (path, mut db, host, opts) =
            connect_all_hosted(spec, &format!("fig6-seq-{run}.sqlite"))?;
        let t = Instant::now();
        let lines = check(&sync::run_jobs(&mut db, &host, &opts, 1, &mut Quiet)?)?;
        let s = t.elapsed();
        drop(db);
        drop(host);
        remove_db(&path);

        let (path, mut db, host, opts) =
            connect_all_hosted(spec, &format!("fig6-par-{run}.sqlite"))?;
        let t = Instant::now();
        let par_lines = check(&sync::run_jobs(&mut db, &host, &opts, jobs, &mut Quiet)?)?;
        let p = t.elapsed();
        drop(db);
        drop(host);
        remove_db(&path);
        if par_lines != lines {
            return Err(io(format!(
                "one by one stored {lines} lines, in parallel {par_lines}"
            )));
        }
        seq.samples.push(secs(s));
        par.samples.push(secs(p));
        speedup.samples.push(secs(s) / secs(p));
        lines_m.samples.push(lines as f64);
    }
    out.metrics.extend([seq, par, speedup, lines_m]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::proxy::Served;

    #[test]
    fn request_summary_groups_by_method_and_path_with_ids_elided() {
        let served = |method: &str, target: &str| Served {
            method: method.into(),
            target: target.into(),
            headers: vec![],
        };
        let log = [
            served(
                "GET",
                "/ponto-connect/accounts/2d48bc49-5f32-446a-910d-308fd5367f31",
            ),
            served(
                "GET",
                "/ponto-connect/accounts/2d48bc49-5f32-446a-910d-308fd5367f31/transactions?page[limit]=100",
            ),
            served(
                "GET",
                "/ponto-connect/accounts/2d48bc49-5f32-446a-910d-308fd5367f31/transactions?page[after]=x",
            ),
        ];
        assert_eq!(
            request_summary(&log),
            "3 requests: GET /ponto-connect/accounts/{id}, GET /ponto-connect/accounts/{id}/transactions ×2"
        );
    }
}
