//! Figure 6: many accounts, the ERP's own `sync` of every link one by one vs in parallel.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use super::{ChildSpec, connect_link, fresh_db, metrics, remove_db, secs, settings_for};
use crate::bench::ChildResult;
use crate::bench::wasm::MeasuredFactory;
use host_harness::erp::errors::ErpError;
use host_harness::erp::provider::ProviderFactory;
use host_harness::erp::settings::Settings;
use host_harness::erp::store::{Db, OnlineAccount};
use host_harness::erp::sync::{self, Quiet, SyncOptions, SyncReport};

/// One link of figure 6: its host (own api-url), account and settings.
type BenchLink = (MeasuredFactory, OnlineAccount, Settings);

/// Connect every sandbox into a fresh database.
fn connect_all(spec: &ChildSpec, name: &str) -> anyhow::Result<(PathBuf, Vec<BenchLink>)> {
    let (path, mut db) = fresh_db(&spec.workdir, name)?;
    let mut links = Vec::new();
    for sb in &spec.sandboxes {
        let settings = settings_for(spec, &sb.base_url)?;
        let host = MeasuredFactory::load(&settings, &path)?;
        let account = connect_link(&mut db, &host, sb)?;
        links.push((host, account, settings));
    }
    Ok((path, links))
}

/// The ERP's host for figure 6: each link's sessions come from that link's own host (each
/// sandbox has its own api-url), so one `sync` covers every link.
struct PerLinkFactory(BTreeMap<String, MeasuredFactory>);

impl ProviderFactory for PerLinkFactory {
    fn provider_id(&self) -> String {
        "ponto".into()
    }

    fn session(
        &self,
        connection_id: &str,
    ) -> Result<Box<dyn host_harness::erp::provider::Provider>, ErpError> {
        self.0
            .get(connection_id)
            .ok_or_else(|| {
                ErpError::Usage(format!("no bench host for connection {connection_id}"))
            })?
            .session(connection_id)
    }
}

/// Every link of a fresh database, ready for the ERP's own `sync` of all links.
fn connect_all_hosted(
    spec: &ChildSpec,
    name: &str,
) -> anyhow::Result<(PathBuf, Db, PerLinkFactory, SyncOptions)> {
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
    Ok((path, db, PerLinkFactory(hosts), opts))
}

/// Figure 6, many accounts: the ERP's own `sync` of every link, one by one (`--jobs 1`) vs
/// its parallel sync (`--jobs` default: one worker per CPU, each with its own DB connection
/// and Session).
pub fn run(spec: &ChildSpec, out: &mut ChildResult) -> anyhow::Result<()> {
    let jobs = sync::default_jobs();
    let k = spec.sandboxes.len();
    #[rustfmt::skip]
    let mut m = metrics([
        ("6", "sequential_s",
         &format!("{k} accounts one by one (`erp sync --jobs 1`): time"), "s", None),
        ("6", "parallel_s", &format!("{k} accounts, `erp sync --jobs {jobs}`: time"), "s", None),
        ("6", "speedup", "parallel speed-up", "×", None),
        ("6", "lines", "lines stored per pass", "lines", None),
    ]);
    let [seq, par, speedup, lines_m] = &mut m;
    let check = |report: &SyncReport| -> anyhow::Result<u64> {
        match report.accounts.iter().find_map(|a| a.error.clone()) {
            Some(e) => Err(anyhow::Error::msg(format!(
                "the benchmark sync failed: {e}"
            ))),
            None if report.accounts.len() != k || !report.skipped_links.is_empty() => {
                Err(anyhow::Error::msg(format!(
                    "{} of {k} accounts synchronised",
                    report.accounts.len()
                )))
            }
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
            return Err(anyhow::Error::msg(format!(
                "one by one stored {lines} lines, in parallel {par_lines}"
            )));
        }
        seq.samples.push(secs(s));
        par.samples.push(secs(p));
        speedup.samples.push(secs(s) / secs(p));
        lines_m.samples.push(lines as f64);
    }
    out.metrics.extend(m);
    Ok(())
}
