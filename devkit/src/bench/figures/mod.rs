//! The figures, each run inside a child process of `erp-dev bench` (see [`super`]). The sandboxes
//! live in the parent, so the child's peak RSS is the ERP host's alone.
mod component_start;
mod first_sync;
mod incremental;
mod many_accounts;
mod wasm_vs_native;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{ChildResult, Metric, Target};
use host_harness::bindings::http as wh;
use host_harness::bindings::http::Host as _;
use host_harness::capabilities::http::HttpCapability;
use host_harness::erp::connect::{self, CallbackMode};
use host_harness::erp::errors::ErpError;
use host_harness::erp::provider::ProviderFactory;
use host_harness::erp::settings::Settings;
use host_harness::erp::store::{Db, OnlineAccount};
use host_harness::erp::sync::{self, Quiet, SyncOptions, SyncReport};

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

pub fn run(spec: &ChildSpec) -> anyhow::Result<ChildResult> {
    std::fs::create_dir_all(&spec.workdir)?;
    let mut out = ChildResult::default();
    match spec.figure.as_str() {
        "1" => first_sync::run(spec, &mut out)?,
        "23" => wasm_vs_native::run(spec, &mut out)?,
        "4" => component_start::run(spec, &mut out)?,
        "5" => incremental::run(spec, &mut out)?,
        "6" => many_accounts::run(spec, &mut out)?,
        other => {
            return Err(ErpError::Usage(format!("unknown benchmark figure `{other}`")).into());
        }
    }
    out.peak_rss_mib = super::peak_rss_mib();
    Ok(out)
}

/// Provider settings pointing at `base` (a sandbox or the proxy), with the sandbox's client.
fn settings_for(spec: &ChildSpec, base: &str) -> anyhow::Result<Settings> {
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

fn fresh_db(dir: &Path, name: &str) -> anyhow::Result<(PathBuf, Db)> {
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
    host: &dyn ProviderFactory,
    sb: &SandboxRef,
) -> anyhow::Result<OnlineAccount> {
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
            anyhow::Error::msg(format!(
                "the sandbox account {} was not connected",
                sb.account_id
            ))
        })
}

fn sync_one(
    db: &mut Db,
    host: &dyn ProviderFactory,
    account: &OnlineAccount,
    settings: &Settings,
    customer_ip: Option<&str>,
) -> anyhow::Result<SyncReport> {
    let opts = SyncOptions {
        account: Some(account.id.to_string()),
        customer_ip: customer_ip.map(str::to_owned),
        max_lines: settings.max_lines,
        refresh_hours: settings.refresh_hours,
        ..SyncOptions::default()
    };
    let report = sync::run(db, host, &opts, &mut Quiet)?;
    if let Some(e) = report.accounts.iter().find_map(|a| a.error.clone()) {
        return Err(anyhow::Error::msg(format!(
            "the benchmark sync failed: {e}"
        )));
    }
    Ok(report)
}

/// One measured sync: what it stored, how long it took and how many requests it made of the
/// sandbox.
struct Measured {
    report: SyncReport,
    elapsed: Duration,
    requests: f64,
}

fn measured_sync(
    http: &mut HttpCapability,
    sb: &SandboxRef,
    db: &mut Db,
    host: &dyn ProviderFactory,
    account: &OnlineAccount,
    settings: &Settings,
    customer_ip: Option<&str>,
) -> anyhow::Result<Measured> {
    let before = request_counter(http, sb)?;
    let t = Instant::now();
    let report = sync_one(db, host, account, settings, customer_ip)?;
    let elapsed = t.elapsed();
    let after = request_counter(http, sb)?;
    Ok(Measured {
        report,
        elapsed,
        requests: (after - before - 1) as f64,
    })
}

/// Requests the sandbox has served so far, from the counter in its `ibanity-request-id`
/// (the probe itself counts one).
fn request_counter(http: &mut HttpCapability, sb: &SandboxRef) -> anyhow::Result<u64> {
    let resp = http
        .send(get(&format!("{}/_sandbox/accounts", sb.base_url)))
        .map_err(|e| anyhow::Error::msg(format!("sandbox probe: {e:?}")))?;
    let id = resp
        .headers
        .iter()
        .find(|(k, _)| k == "ibanity-request-id")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| anyhow::Error::msg("the sandbox sent no ibanity-request-id"))?;
    // The last 11 hex digits are the sandbox's request counter.
    Ok(u64::from_str_radix(&id[id.len().saturating_sub(11)..], 16)?)
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

/// A figure's metrics from rows `(figure, key, label, unit, target)`, in the order the table
/// prints them.
fn metrics<const N: usize>(rows: [(&str, &str, &str, &str, Option<Target>); N]) -> [Metric; N] {
    rows.map(|(figure, key, label, unit, target)| metric(figure, key, label, unit, target))
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

const MIB: f64 = 1024.0 * 1024.0;
