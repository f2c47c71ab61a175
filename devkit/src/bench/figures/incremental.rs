//! Figure 5: incremental sync of 10 new transactions on an account with many old ones, after
//! Ponto's own sync (unattended) and with the user present (bank refresh).

use super::{
    ChildSpec, SandboxRef, connect_link, fresh_db, measured_sync, metrics, remove_db, settings_for,
    sync_one,
};
use crate::bench::proxy::Proxy;
use crate::bench::proxy::loopback_http;
use crate::bench::wasm::MeasuredFactory;
use crate::bench::{ChildResult, Target};
use host_harness::bindings::http as wh;
use host_harness::bindings::http::Host as _;
use host_harness::capabilities::http::HttpCapability;

/// 5. Incremental sync: 10 new transactions on an account with many old ones.
pub fn run(spec: &ChildSpec, out: &mut ChildResult) -> anyhow::Result<()> {
    let sb = &spec.sandboxes[0];
    let settings = settings_for(spec, &sb.base_url)?;
    let mut http = loopback_http()?;
    let (path, mut db) = fresh_db(&spec.workdir, "fig5.sqlite")?;
    let host = MeasuredFactory::load(&settings, &path)?;
    let account = connect_link(&mut db, &host, sb)?;
    sync_one(&mut db, &host, &account, &settings, None)?;
    // The seeded history hides back-dated bookings until the first transactions
    // synchronization (they make that one sync walk the overlap, which the e2e tests cover):
    // one person's sync releases them before anything is measured.
    sync_one(&mut db, &host, &account, &settings, Some("127.0.0.1"))?;
    #[rustfmt::skip]
    let mut m = metrics([
        ("5", "requests_unattended",
         "incremental after Ponto's own sync, unattended, 10 new: HTTP requests",
         "req", Some(Target::AtMost(2.0))),
        ("5", "ms_unattended", "incremental after Ponto's own sync, unattended: time", "ms", None),
        ("5", "new_lines_unattended",
         "incremental after Ponto's own sync, unattended: new lines stored", "lines", None),
        // A bank refresh always costs the synchronization POSTs and polls: no target.
        ("5", "requests",
         "incremental, user present (bank refresh), 10 new: HTTP requests", "req", None),
        ("5", "ms", "incremental, user present, 10 new: time", "ms", None),
        ("5", "new_lines", "incremental, user present: new lines stored", "lines", None),
    ]);
    let [req_u, ms_u, new_u, req, ms, new] = &mut m;
    for _ in 0..spec.runs {
        add_transactions(&mut http, sb, 10)?;
        pontos_own_sync(&mut http, sb)?;
        let sync = measured_sync(&mut http, sb, &mut db, &host, &account, &settings, None)?;
        req_u.samples.push(sync.requests);
        ms_u.samples.push(sync.elapsed.as_secs_f64() * 1000.0);
        new_u.samples.push(sync.report.new_lines() as f64);

        add_transactions(&mut http, sb, 10)?;
        let present = Some("127.0.0.1");
        let sync = measured_sync(&mut http, sb, &mut db, &host, &account, &settings, present)?;
        req.samples.push(sync.requests);
        ms.samples.push(sync.elapsed.as_secs_f64() * 1000.0);
        new.samples.push(sync.report.new_lines() as f64);
    }
    out.metrics.extend(m);
    // Which requests: one more pass of each kind through a logging (not caching) proxy.
    let proxy = Proxy::start(&sb.base_url)?;
    proxy
        .recording
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let via_proxy = settings_for(spec, &proxy.origin)?;
    let logged = MeasuredFactory::load(&via_proxy, &path)?;
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

fn add_transactions(http: &mut HttpCapability, sb: &SandboxRef, n: u32) -> anyhow::Result<()> {
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
fn pontos_own_sync(http: &mut HttpCapability, sb: &SandboxRef) -> anyhow::Result<()> {
    sandbox_control(
        http,
        &format!(
            "{}/_sandbox/accounts/{}/synchronizations",
            sb.base_url, sb.account_id
        ),
        "{}".into(),
    )
}

fn sandbox_control(http: &mut HttpCapability, url: &str, body: String) -> anyhow::Result<()> {
    let resp = http
        .send(wh::Request {
            method: wh::Method::Post,
            url: url.to_owned(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: wh::Body::Text(body),
            timeout_ms: None,
        })
        .map_err(|e| anyhow::Error::msg(format!("sandbox control: {e:?}")))?;
    if !(200..300).contains(&resp.status) {
        return Err(anyhow::Error::msg(format!(
            "sandbox control {url}: HTTP {}: {}",
            resp.status,
            String::from_utf8_lossy(resp.body.as_bytes())
        )));
    }
    Ok(())
}

/// `GET /accounts/{id}/transactions ×2, ...`: requests by method and path, ids elided.
fn request_summary(served: &[crate::bench::proxy::Served]) -> String {
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
