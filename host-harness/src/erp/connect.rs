//! Connecting a bank (the guide's "Add a Bank Account" and "Update Credentials"): choose the
//! institution, send the user to the aggregator's consent page, take the callback, keep the
//! accounts of the chosen institution.
//!
//! Three ways to get the callback: a loopback listener for a real browser, the headless two-step
//! (`begin` prints the URL, `finish` takes the callback URL), and a filler function a development
//! tool passes (it fills a sandbox's consent page).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use super::errors::{Context, ErpError};
use super::provider::ProviderFactory;
use super::store::{ConnectAttempt, Db, OnlineAccount, has_table};
use crate::runtime::types::{Institution, InstitutionFilter};

/// Connection id used for calls that belong to no link (listing institutions).
pub const CATALOGUE_CONNECTION: &str = "catalogue";

/// A fresh, unguessable-enough connection id that scopes the plugin's storage.
pub fn new_connection_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS per process; mixing in the time and a counter keeps ids
    // apart within one process too.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut out = String::from("conn-");
    for salt in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.write_u64(n);
        h.write_u64(salt);
        h.write_u32(std::process::id());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// Find an institution by id, exact name, or a unique part of its name.
pub fn resolve_institution(
    providers: &dyn ProviderFactory,
    query: &str,
) -> Result<Institution, ErpError> {
    let mut provider = providers.session(CATALOGUE_CONNECTION)?;
    let all = provider.list_institutions(&InstitutionFilter {
        country: None,
        name_contains: None,
    })?;
    if let Some(i) = all.iter().find(|i| i.id == query) {
        return Ok(i.clone());
    }
    let q = query.to_lowercase();
    let exact: Vec<_> = all.iter().filter(|i| i.name.to_lowercase() == q).collect();
    if exact.len() == 1 {
        return Ok(exact[0].clone());
    }
    let partial: Vec<_> = all
        .iter()
        .filter(|i| i.name.to_lowercase().contains(&q))
        .collect();
    match partial.len() {
        1 => Ok(partial[0].clone()),
        0 => Err(ErpError::Usage(format!(
            "no institution matches `{query}`; `erp institutions --search TEXT` lists them with their ids"
        ))),
        _ => Err(ErpError::Usage(format!(
            "`{query}` matches several institutions ({}); give the id",
            partial
                .iter()
                .take(6)
                .map(|i| format!("{} = {}", i.id, i.name))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// How the callback comes back.
#[derive(Clone, Debug)]
pub enum CallbackMode {
    /// Listen on 127.0.0.1:port (0 = any free port) for the browser's redirect.
    Loopback { port: u16, timeout: Duration },
    /// Hand the consent URL to a filler that returns the callback URL (a development tool
    /// filling a sandbox's consent page); its error is shown as it is.
    Filled(fn(&str) -> Result<String, String>),
}

pub struct ConnectOutcome {
    pub link_id: i64,
    pub institution: Institution,
    pub accounts: Vec<(OnlineAccount, bool)>,
    pub authorized_account_count: u32,
    pub organization: Option<String>,
}

/// The whole connect flow in one process. `existing` is a link to update (Update Credentials,
/// by the link's own organisation only); `on_url` hears the authorization URL (to print it for
/// the user).
pub fn connect(
    db: &mut Db,
    providers: &dyn ProviderFactory,
    institution_id: &str,
    existing: Option<i64>,
    mode: CallbackMode,
    on_url: &mut dyn FnMut(&str),
) -> Result<ConnectOutcome, ErpError> {
    let (connection_id, fresh) = match existing {
        Some(id) => (db.link(id)?.connection_id, false),
        None => (new_connection_id(), true),
    };
    let attempt = |db: &mut Db| {
        connect_inner(
            db,
            providers,
            institution_id,
            existing,
            &connection_id,
            false,
            mode,
            on_url,
        )
    };
    if fresh {
        let result = attempt(db);
        if result.is_err() {
            // A connection that never became a link leaves nothing behind (its PKCE secrets,
            // tokens).
            let _ = db.forget_plugin_storage(&providers.provider_id(), &connection_id);
        }
        return result;
    }
    keeping_storage_on_failure(db, providers, &connection_id, attempt)
}

/// The guide's "Update Credentials": the consent flow again on link `link`. Another Ponto
/// organisation than the link's is refused unless `allow_other_organisation`.
pub fn update_credentials(
    db: &mut Db,
    providers: &dyn ProviderFactory,
    link: i64,
    allow_other_organisation: bool,
    mode: CallbackMode,
    on_url: &mut dyn FnMut(&str),
) -> Result<ConnectOutcome, ErpError> {
    let l = db.link(link)?;
    keeping_storage_on_failure(db, providers, &l.connection_id, |db| {
        connect_inner(
            db,
            providers,
            &l.institution_id,
            Some(link),
            &l.connection_id,
            allow_other_organisation,
            mode,
            on_url,
        )
    })
}

/// Run `f`, an update of an existing connection; if it fails, put the plugin's storage of that
/// connection back as it was (the tokens of the consent that still stands), so a refused or
/// failed update changes nothing.
fn keeping_storage_on_failure<T>(
    db: &mut Db,
    providers: &dyn ProviderFactory,
    connection_id: &str,
    f: impl FnOnce(&mut Db) -> Result<T, ErpError>,
) -> Result<T, ErpError> {
    let plugin = providers.provider_id();
    let before = plugin_storage_rows(db, &plugin, connection_id)?;
    let result = f(db);
    if result.is_err() {
        restore_plugin_storage(db, &plugin, connection_id, &before)?;
    }
    result
}

/// The plugin's stored rows (values as stored, encrypted) for one connection.
fn plugin_storage_rows(
    db: &Db,
    plugin: &str,
    connection_id: &str,
) -> Result<Vec<(String, String)>, ErpError> {
    let read = || -> rusqlite::Result<Vec<(String, String)>> {
        if !has_table(db.conn(), "plugin_storage")? {
            return Ok(Vec::new());
        }
        db.conn()
            .prepare("SELECT key, value FROM plugin_storage WHERE plugin = ?1 AND connection = ?2")?
            .query_map([plugin, connection_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    };
    read().map_err(|e| ErpError::db(db.path(), e))
}

fn restore_plugin_storage(
    db: &Db,
    plugin: &str,
    connection_id: &str,
    rows: &[(String, String)],
) -> Result<(), ErpError> {
    let write = || -> rusqlite::Result<()> {
        let tx = db.conn().unchecked_transaction()?;
        tx.execute(
            "DELETE FROM plugin_storage WHERE plugin = ?1 AND connection = ?2",
            [plugin, connection_id],
        )?;
        for (key, value) in rows {
            tx.execute(
                "INSERT INTO plugin_storage (plugin, connection, key, value) VALUES (?1, ?2, ?3, ?4)",
                [plugin, connection_id, key, value],
            )?;
        }
        tx.commit()
    };
    if rows.is_empty() && plugin_storage_rows(db, plugin, connection_id)?.is_empty() {
        return Ok(());
    }
    write().map_err(|e| ErpError::db(db.path(), e))
}

#[allow(clippy::too_many_arguments)]
fn connect_inner(
    db: &mut Db,
    providers: &dyn ProviderFactory,
    institution_id: &str,
    existing: Option<i64>,
    connection_id: &str,
    allow_other_organisation: bool,
    mode: CallbackMode,
    on_url: &mut dyn FnMut(&str),
) -> Result<ConnectOutcome, ErpError> {
    let mut provider = providers.session(connection_id)?;
    provider.set_context(Context {
        link: existing,
        account: None,
        ..Default::default()
    });
    let callback = match mode {
        CallbackMode::Loopback { port, timeout } => {
            let listener = TcpListener::bind(("127.0.0.1", port))
                .map_err(|e| ErpError::Usage(format!("cannot listen on 127.0.0.1:{port} for the callback: {e}; pick another --redirect-port")))?;
            let port = listener
                .local_addr()
                .map_err(|source| ErpError::Listener { doing: "", source })?
                .port();
            let redirect_uri = format!("http://127.0.0.1:{port}/callback");
            let start = provider.begin_connect(institution_id, &redirect_uri)?;
            on_url(&start.authorization_url);
            wait_for_callback(&listener, port, timeout, &start.state)?
        }
        CallbackMode::Filled(fill) => {
            let redirect_uri = "http://127.0.0.1:8765/callback";
            let start = provider.begin_connect(institution_id, redirect_uri)?;
            on_url(&start.authorization_url);
            fill(&start.authorization_url)
                .map_err(|e| ErpError::Usage(format!("automatic consent failed: {e}")))?
        }
    };
    let connection = provider.complete_connect(&callback)?;
    finish_connection(
        db,
        providers,
        existing,
        connection_id,
        allow_other_organisation,
        connection,
    )
}

fn finish_connection(
    db: &mut Db,
    providers: &dyn ProviderFactory,
    existing: Option<i64>,
    connection_id: &str,
    allow_other_organisation: bool,
    connection: crate::runtime::types::Connection,
) -> Result<ConnectOutcome, ErpError> {
    if let Some(link) = existing
        && !allow_other_organisation
    {
        check_same_organisation(db, link, &connection)?;
    }
    let (link_id, saved) = db.save_connection(
        existing,
        connection_id,
        &providers.provider_id(),
        &connection,
    )?;
    let all = db.accounts(Some(link_id))?;
    let accounts = saved
        .into_iter()
        .filter_map(|(id, created)| {
            all.iter()
                .find(|a| a.id == id)
                .map(|a| (a.clone(), created))
        })
        .collect();
    Ok(ConnectOutcome {
        link_id,
        institution: connection.institution,
        accounts,
        authorized_account_count: connection.authorized_account_count,
        organization: connection.organization_name,
    })
}

/// An update of credentials must come from the link's own organisation at the provider: another one would
/// pour its accounts into this link's books under the old name.
fn check_same_organisation(
    db: &Db,
    link: i64,
    connection: &crate::runtime::types::Connection,
) -> Result<(), ErpError> {
    let (old_id, old_name): (Option<String>, Option<String>) = db
        .conn()
        .query_row(
            "SELECT organization_id, organization_name FROM links WHERE id = ?1",
            [link],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(|e| ErpError::db(db.path(), e))?;
    let Some(old_id) = old_id.filter(|id| *id != connection.organization_id) else {
        return Ok(());
    };
    let name = |id: &str, name: Option<&str>| match name {
        Some(n) => format!("{n} ({id})"),
        None => id.to_owned(),
    };
    Err(ErpError::Usage(format!(
        "link {link} belongs to organisation {} but this consent was given by {}: nothing was changed; sign in at the provider as the link's organisation and try again, or add --allow-other-organisation to move the link to the new one",
        name(&old_id, old_name.as_deref()),
        name(
            &connection.organization_id,
            connection.organization_name.as_deref()
        )
    )))
}

/// `erp connect begin`: start a connection and remember it until `finish`.
pub fn begin(
    db: &mut Db,
    providers: &dyn ProviderFactory,
    institution_id: &str,
    existing: Option<i64>,
    redirect_uri: &str,
) -> Result<String, ErpError> {
    url::Url::parse(redirect_uri).map_err(|e| {
        ErpError::Usage(format!(
            "--redirect-uri `{redirect_uri}` is not a URL ({e})"
        ))
    })?;
    let connection_id = match existing {
        Some(id) => db.link(id)?.connection_id,
        None => new_connection_id(),
    };
    let mut provider = providers.session(&connection_id)?;
    let start = provider.begin_connect(institution_id, redirect_uri)?;
    db.save_attempt(&ConnectAttempt {
        connection_id,
        state: start.state.clone(),
        institution_id: institution_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        link_id: existing,
    })?;
    Ok(start.authorization_url)
}

/// `erp connect finish`: complete the attempt the callback's `state` names.
pub fn finish(
    db: &mut Db,
    providers: &dyn ProviderFactory,
    callback_url: &str,
    allow_other_organisation: bool,
) -> Result<ConnectOutcome, ErpError> {
    let url = url::Url::parse(callback_url).map_err(|e| {
        ErpError::Usage(format!(
            "--callback-url is not a URL ({e}); paste the whole address the browser was sent to"
        ))
    })?;
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| {
            ErpError::Usage(
                "the callback URL has no `state`; paste the whole address the browser was sent to"
                    .into(),
            )
        })?;
    let attempt = db.attempt_by_state(&state)?.ok_or_else(|| {
        ErpError::Usage(
            "the callback's state matches no connection started here (stale or forged); start again with `erp connect begin`"
                .into(),
        )
    })?;
    let complete = |db: &mut Db| {
        let mut provider = providers.session(&attempt.connection_id)?;
        provider.set_context(Context {
            link: attempt.link_id,
            account: None,
            ..Default::default()
        });
        let connection = provider.complete_connect(callback_url)?;
        finish_connection(
            db,
            providers,
            attempt.link_id,
            &attempt.connection_id,
            allow_other_organisation,
            connection,
        )
    };
    match attempt.link_id {
        Some(_) => keeping_storage_on_failure(db, providers, &attempt.connection_id, complete),
        None => complete(db),
    }
}

/// Most a callback request's line and headers may take; a browser's redirect needs a few KiB.
pub const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// How long one connection may take to send its request head.
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Wait for the browser's redirect to http://127.0.0.1:port/callback carrying `state`, and return
/// its full URL. Any local process can reach the port: a request with another state, another
/// path or an oversized or slow head is answered and ignored, and the wait goes on.
pub fn wait_for_callback(
    listener: &TcpListener,
    port: u16,
    timeout: Duration,
    state: &str,
) -> Result<String, ErpError> {
    let deadline = Instant::now()
        .checked_add(timeout)
        .ok_or_else(|| ErpError::Usage("the callback timeout is too long".into()))?;
    listener
        .set_nonblocking(true)
        .map_err(|source| ErpError::Listener { doing: "", source })?;
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let until = deadline.min(Instant::now() + REQUEST_HEAD_TIMEOUT);
                let Some(path) = read_request_path(&mut stream, until) else {
                    let _ = stream.write_all(
                        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                    continue;
                };
                if !path.starts_with("/callback") {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                    continue;
                }
                let url = format!("http://127.0.0.1:{port}{path}");
                let ours = url::Url::parse(&url)
                    .is_ok_and(|u| u.query_pairs().any(|(k, v)| k == "state" && v == state));
                if !ours {
                    let body = "This is not the callback of the connection erp is waiting for.";
                    let _ = write!(
                        stream,
                        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    continue;
                }
                let body = "<!doctype html><title>erp</title><p>Connected: you can close this window and go back to the terminal.</p>";
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                return Ok(url);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(ErpError::Usage(format!(
                        "no callback came within {} s; open the URL in a browser and finish the consent, or use `erp connect begin`/`finish`",
                        timeout.as_secs()
                    )));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(source) => {
                return Err(ErpError::Listener {
                    doing: "waiting for the callback",
                    source,
                });
            }
        }
    }
}

/// The path of a `GET` request whose line and headers arrive whole before `until` and within
/// [`MAX_REQUEST_HEAD`] bytes; None otherwise.
fn read_request_path(stream: &mut std::net::TcpStream, until: Instant) -> Option<String> {
    stream.set_nonblocking(false).ok()?;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = until.checked_duration_since(Instant::now())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        let n = stream.read(&mut chunk).ok().filter(|n| *n > 0)?;
        if head.len() + n > MAX_REQUEST_HEAD {
            return None;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let text = std::str::from_utf8(&head).ok()?;
    let mut words = text.lines().next()?.split_whitespace();
    (words.next() == Some("GET")).then_some(())?;
    words.next().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_ids_differ() {
        assert_ne!(new_connection_id(), new_connection_id());
    }

    #[test]
    fn loopback_listener_returns_the_callback_url() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"GET /favicon.ico HTTP/1.1\r\nhost: x\r\n\r\n")
                .unwrap();
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"GET /callback?code=c1&state=s1 HTTP/1.1\r\nhost: x\r\n\r\n")
                .unwrap();
            let mut answer = String::new();
            let _ = std::io::Read::read_to_string(&mut s, &mut answer);
            answer
        });
        let url = wait_for_callback(&listener, port, Duration::from_secs(10), "s1").unwrap();
        assert_eq!(
            url,
            format!("http://127.0.0.1:{port}/callback?code=c1&state=s1")
        );
        assert!(client.join().unwrap().starts_with("HTTP/1.1 200"));
    }

    /// Send `request` on a new connection and return the answer's status line.
    fn answer_to(port: u16, request: &[u8]) -> String {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        // The listener may stop reading (and close) before all of an oversized request is sent.
        let _ = s.write_all(request);
        let mut answer = String::new();
        let _ = std::io::Read::read_to_string(&mut s, &mut answer);
        answer.lines().next().unwrap_or_default().to_owned()
    }

    #[test]
    fn loopback_listener_ignores_foreign_and_oversized_requests_and_waits_for_its_state() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = std::thread::spawn(move || {
            let forged = answer_to(
                port,
                b"GET /callback?code=evil&state=other HTTP/1.1\r\nhost: x\r\n\r\n",
            );
            let stateless = answer_to(port, b"GET /callback?code=evil HTTP/1.1\r\n\r\n");
            // A request line far over the cap, with the right state: refused without reading
            // it all (its answer may be lost to the reset of a socket closed unread).
            let mut huge = b"GET /callback?code=big&state=s1&pad=".to_vec();
            huge.resize(MAX_REQUEST_HEAD * 64, b'a');
            huge.extend_from_slice(b" HTTP/1.1\r\n\r\n");
            answer_to(port, &huge);
            let right = answer_to(
                port,
                b"GET /callback?code=c1&state=s1 HTTP/1.1\r\nhost: x\r\n\r\n",
            );
            (forged, stateless, right)
        });
        let url = wait_for_callback(&listener, port, Duration::from_secs(30), "s1").unwrap();
        assert_eq!(
            url,
            format!("http://127.0.0.1:{port}/callback?code=c1&state=s1")
        );
        let (forged, stateless, right) = client.join().unwrap();
        assert!(forged.starts_with("HTTP/1.1 400"), "{forged}");
        assert!(stateless.starts_with("HTTP/1.1 400"), "{stateless}");
        assert!(right.starts_with("HTTP/1.1 200"), "{right}");
    }
}
