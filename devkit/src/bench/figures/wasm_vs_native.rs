//! Figures 2 and 3: the provider's sync logic natively vs in the component over pages replayed
//! from memory, and the in-process baseline (native provider, the ERP's own SQLite path).

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{ChildSpec, connect_link, fresh_db, metrics, remove_db, secs, settings_for, sync_one};
use crate::bench::native::{NativeFactory, NativeImports, Stopwatch, Transport};
use crate::bench::proxy::{Proxy, loopback_http};
use crate::bench::wasm::MeasuredFactory;
use crate::bench::{ChildResult, Target};
use host_harness::bindings::http as wh;
use host_harness::bindings::http::Host as _;
use host_harness::erp::errors::ErpError;
use host_harness::erp::provider::ProviderFactory;
use host_harness::erp::settings::Settings;
use host_harness::runtime::types::{SyncProgress, SyncRequest};

/// The link, tokens and recorded pages figures 2 and 3 share.
struct Replay {
    proxy: Proxy,
    settings: Settings,
    wasm: MeasuredFactory,
    connection_id: String,
    account_id: String,
    native_storage: ponto_provider::imports::MemoryStorage,
    connection: host_harness::runtime::types::Connection,
}

fn replay_setup(spec: &ChildSpec) -> anyhow::Result<Replay> {
    let sb = &spec.sandboxes[0];
    let proxy = Proxy::start(&sb.base_url)?;
    let settings = settings_for(spec, &proxy.origin)?;
    let (path, mut db) = fresh_db(&spec.workdir, "fig23-component.sqlite")?;
    let wasm = MeasuredFactory::load(&settings, &path)?;
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
    let nph = NativeFactory {
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
    mut sync: impl FnMut(&SyncRequest) -> anyhow::Result<host_harness::runtime::types::SyncBatch>,
    account_id: &str,
    max_lines: u32,
) -> anyhow::Result<u64> {
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
pub fn run(spec: &ChildSpec, out: &mut ChildResult) -> anyhow::Result<()> {
    let r = replay_setup(spec)?;
    let max_lines = r.settings.max_lines;
    #[rustfmt::skip]
    let mut m = metrics([
        ("2", "native_ms_per_page", "provider sync logic, native: per 100 lines", "ms", None),
        ("2", "wasm_ms_per_page",
         "provider sync logic, in the component (HTTP subtracted): per 100 lines", "ms", None),
        ("2", "http_ms_per_page",
         "HTTP from memory through the host's http capability (subtracted): per request",
         "ms", None),
        ("2", "ratio", "wasm / native", "×", Some(Target::AtMost(1.5))),
        ("3", "seconds",
         "in-process baseline (native provider, replayed pages, same SQLite path): time",
         "s", None),
        ("3", "tx_per_s", "in-process baseline: transactions/s", "tx/s", None),
    ]);
    let [native_ms, wasm_ms, http_ms, ratio, base_s, base_rate] = &mut m;
    for run in 0..spec.runs {
        // Native: the provider's own code over pages replayed from memory.
        let host = replay_host(&r);
        // Handing each batch to the ERP's types is the bench's bridge, not the provider's work
        // (the component's canonical ABI copy is timed on its side): it is left out.
        let bridge = std::cell::Cell::new(Duration::ZERO);
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
                let batch = ponto_provider::sync::sync(&host, &request)
                    .map_err(|e| anyhow::Error::msg(format!("native sync: {}", e.describe())))?;
                let handed = Stopwatch::start();
                let batch = crate::bench::native::convert(&batch);
                bridge.set(bridge.get() + handed.elapsed());
                Ok(batch)
            },
            &r.account_id,
            max_lines,
        )?;
        let native = t
            .elapsed()
            .saturating_sub(host.http_time.get())
            .saturating_sub(bridge.get());
        // The component, the proxy serving the same pages from memory.
        let mut session = r.wasm.raw_session(&r.connection_id)?;
        r.proxy.start_log();
        let t = Stopwatch::start();
        let n_wasm = drain(
            |req| match session.sync(req) {
                Ok(Ok(b)) => Ok(b),
                Ok(Err(e)) => Err(anyhow::Error::msg(format!("component sync: {e:?}"))),
                Err(e) => Err(ErpError::Call(e).into()),
            },
            &r.account_id,
            max_lines,
        )?;
        let total = t.elapsed();
        let served = r.proxy.take_log();
        if n_native != n_wasm || n_native == 0 {
            return Err(anyhow::Error::msg(format!(
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
            .ok_or_else(|| anyhow::Error::msg("the baseline account is missing"))?;
        let nph = NativeFactory {
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
        if crate::bench::native::thread_cpu().is_some() {
            "/proc/thread-self/schedstat"
        } else {
            "not available here: wall clock"
        }
    ));
    out.metrics.extend(m);
    Ok(())
}
