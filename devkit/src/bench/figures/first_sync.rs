//! Figure 1: the first sync of one account from the loopback sandbox into a fresh SQLite file.

use super::{
    ChildSpec, MIB, connect_link, fresh_db, measured_sync, metrics, remove_db, secs, settings_for,
};
use crate::bench::proxy::loopback_http;
use crate::bench::wasm::MeasuredFactory;
use crate::bench::{ChildResult, Target};

/// 1. First sync of one account from the loopback sandbox into a fresh SQLite file.
pub fn run(spec: &ChildSpec, out: &mut ChildResult) -> anyhow::Result<()> {
    let sb = &spec.sandboxes[0];
    let settings = settings_for(spec, &sb.base_url)?;
    let mut http = loopback_http()?;
    #[rustfmt::skip]
    let mut m = metrics([
        ("1", "seconds", "first sync: time", "s", None),
        ("1", "tx_per_s", "first sync: transactions/s", "tx/s", Some(Target::AtLeast(50_000.0))),
        ("1", "lines", "first sync: lines stored", "lines", None),
        ("1", "requests", "first sync: HTTP requests", "req", None),
        ("1", "in_plugin", "first sync: inside plugin `sync` calls (guest + HTTP)", "s", None),
        ("1", "in_erp",
         "first sync: ERP side left on the sync's path (commits overlap the plugin's next page)",
         "s", None),
        ("1", "plugin_peak",
         "first sync: plugin peak linear memory", "MiB", Some(Target::AtMost(64.0))),
    ]);
    let [secs_m, rate, lines, requests, in_plugin, in_erp, peak] = &mut m;
    for run in 0..spec.runs {
        let (path, mut db) = fresh_db(&spec.workdir, &format!("fig1-{run}.sqlite"))?;
        let host = MeasuredFactory::load(&settings, &path)?;
        let account = connect_link(&mut db, &host, sb)?;
        host.reset_stats();
        let sync = measured_sync(&mut http, sb, &mut db, &host, &account, &settings, None)?;
        let elapsed = sync.elapsed;
        let stats = host.stats();
        let n = sync.report.new_lines();
        secs_m.samples.push(secs(elapsed));
        rate.samples.push(n as f64 / secs(elapsed));
        lines.samples.push(n as f64);
        requests.samples.push(sync.requests);
        in_plugin.samples.push(secs(stats.sync_time));
        in_erp
            .samples
            .push(secs(elapsed.saturating_sub(stats.sync_time)));
        peak.samples.push(stats.peak_memory as f64 / MIB);
        drop(db);
        drop(host);
        remove_db(&path);
    }
    out.metrics.extend(m);
    out.rss_figure = Some("1".into());
    Ok(())
}
