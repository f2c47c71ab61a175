//! Connecting a bank (the guide's "Add a Bank Account" and "Update Credentials"): choose the
//! institution, send the user to the aggregator's consent page, take the callback, keep the
//! accounts of the chosen institution.
//!
//! Three ways to get the callback: a loopback listener for a real browser, the headless two-step
//! (`begin` prints the URL, `finish` takes the callback URL), and `auto-consent`, which fills the
//! sandbox's consent page itself, ticking every account (other institutions' too, as the guide
//! says).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use super::db::{ConnectAttempt, Db, OnlineAccount};
use super::errors::{Context, ErpError};
use super::provider::ProviderHost;
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
pub fn resolve_institution(host: &dyn ProviderHost, query: &str) -> Result<Institution, ErpError> {
    let mut provider = host.session(CATALOGUE_CONNECTION)?;
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
    /// Fill the consent page ourselves (the sandbox's), ticking every account.
    AutoConsent,
}

pub struct ConnectOutcome {
    pub link_id: i64,
    pub institution: Institution,
    pub accounts: Vec<(OnlineAccount, bool)>,
    pub authorized_account_count: u32,
    pub organization: Option<String>,
}

/// The whole connect flow in one process. `existing` is a link to update (Update Credentials);
/// `on_url` hears the authorization URL (to print it for the user).
pub fn connect(
    db: &mut Db,
    host: &dyn ProviderHost,
    institution_id: &str,
    existing: Option<i64>,
    mode: CallbackMode,
    on_url: &mut dyn FnMut(&str),
) -> Result<ConnectOutcome, ErpError> {
    let (connection_id, fresh) = match existing {
        Some(id) => (db.link(id)?.connection_id, false),
        None => (new_connection_id(), true),
    };
    let result = connect_inner(
        db,
        host,
        institution_id,
        existing,
        &connection_id,
        mode,
        on_url,
    );
    if result.is_err() && fresh {
        // A connection that never became a link leaves nothing behind (its PKCE secrets, tokens).
        let _ = db.forget_plugin_storage(&host.provider_id(), &connection_id);
    }
    result
}

fn connect_inner(
    db: &mut Db,
    host: &dyn ProviderHost,
    institution_id: &str,
    existing: Option<i64>,
    connection_id: &str,
    mode: CallbackMode,
    on_url: &mut dyn FnMut(&str),
) -> Result<ConnectOutcome, ErpError> {
    let mut provider = host.session(connection_id)?;
    provider.set_context(Context {
        link: existing,
        account: None,
    });
    let callback = match mode {
        CallbackMode::Loopback { port, timeout } => {
            let listener = TcpListener::bind(("127.0.0.1", port))
                .map_err(|e| ErpError::Usage(format!("cannot listen on 127.0.0.1:{port} for the callback: {e}; pick another --redirect-port")))?;
            let port = listener
                .local_addr()
                .map_err(|e| ErpError::Io(e.to_string()))?
                .port();
            let redirect_uri = format!("http://127.0.0.1:{port}/callback");
            let start = provider.begin_connect(institution_id, &redirect_uri)?;
            on_url(&start.authorization_url);
            wait_for_callback(&listener, port, timeout)?
        }
        CallbackMode::AutoConsent => {
            let redirect_uri = "http://127.0.0.1:8765/callback";
            let start = provider.begin_connect(institution_id, redirect_uri)?;
            on_url(&start.authorization_url);
            auto_consent(&start.authorization_url)?
        }
    };
    let connection = provider.complete_connect(&callback)?;
    finish_connection(db, host, existing, connection_id, connection)
}

fn finish_connection(
    db: &mut Db,
    host: &dyn ProviderHost,
    existing: Option<i64>,
    connection_id: &str,
    connection: crate::runtime::types::Connection,
) -> Result<ConnectOutcome, ErpError> {
    let (link_id, saved) =
        db.save_connection(existing, connection_id, &host.provider_id(), &connection)?;
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

/// `erp connect begin`: start a connection and remember it until `finish`.
pub fn begin(
    db: &mut Db,
    host: &dyn ProviderHost,
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
    let mut provider = host.session(&connection_id)?;
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
    host: &dyn ProviderHost,
    callback_url: &str,
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
    let mut provider = host.session(&attempt.connection_id)?;
    provider.set_context(Context {
        link: attempt.link_id,
        account: None,
    });
    let connection = provider.complete_connect(callback_url)?;
    finish_connection(
        db,
        host,
        attempt.link_id,
        &attempt.connection_id,
        connection,
    )
}

/// Wait for the browser's redirect to http://127.0.0.1:port/callback and return its full URL.
pub fn wait_for_callback(
    listener: &TcpListener,
    port: u16,
    timeout: Duration,
) -> Result<String, ErpError> {
    let deadline = Instant::now() + timeout;
    listener
        .set_nonblocking(true)
        .map_err(|e| ErpError::Io(e.to_string()))?;
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut line = String::new();
                let mut reader = BufReader::new(&stream);
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                // Drain the headers so the browser sees a clean answer.
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                if !path.starts_with("/callback") {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                    continue;
                }
                let body = "<!doctype html><title>erp</title><p>Connected: you can close this window and go back to the terminal.</p>";
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                return Ok(format!("http://127.0.0.1:{port}{path}"));
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
            Err(e) => return Err(ErpError::Io(format!("waiting for the callback: {e}"))),
        }
    }
}

/// Fill the consent page at `authorization_url` ticking every account, submit it, and return the
/// callback URL the page redirects to.
pub fn auto_consent(authorization_url: &str) -> Result<String, ErpError> {
    let fail = |what: String| ErpError::Usage(format!("automatic consent failed: {what}"));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut page = agent.get(authorization_url).call().map_err(|e| {
        fail(format!(
            "cannot open the consent page {authorization_url}: {e}"
        ))
    })?;
    if page.status() != 200 {
        return Err(fail(format!(
            "the consent page answered HTTP {}",
            page.status()
        )));
    }
    let html = page
        .body_mut()
        .read_to_string()
        .map_err(|e| fail(format!("cannot read the consent page: {e}")))?;
    let form = parse_consent_form(&html);
    if form.accounts == 0 {
        return Err(fail("the consent page offers no account to tick".into()));
    }
    let base = url::Url::parse(authorization_url)
        .map_err(|e| fail(format!("bad authorization URL: {e}")))?;
    let action = base
        .join(form.action.as_deref().unwrap_or(base.path()))
        .map_err(|e| fail(format!("bad form action: {e}")))?;
    let answer = agent
        .post(action.as_str())
        .send_form(form.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| fail(format!("cannot submit the consent page: {e}")))?;
    let location = answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            fail(format!(
                "the consent page answered HTTP {} without a redirect",
                answer.status()
            ))
        })?;
    base.join(location)
        .map(|u| u.to_string())
        .map_err(|e| fail(format!("bad redirect `{location}`: {e}")))
}

#[derive(Debug, Default, PartialEq)]
pub struct ConsentForm {
    pub action: Option<String>,
    pub fields: Vec<(String, String)>,
    pub accounts: usize,
}

/// The hidden inputs and every account checkbox (ticked) of a consent page.
pub fn parse_consent_form(html: &str) -> ConsentForm {
    let mut form = ConsentForm::default();
    for tag in tags(html, "form") {
        if let Some(a) = attr(tag, "action") {
            form.action = Some(a);
            break;
        }
    }
    for tag in tags(html, "input") {
        let kind = attr(tag, "type")
            .unwrap_or_else(|| "text".into())
            .to_ascii_lowercase();
        let Some(name) = attr(tag, "name") else {
            continue;
        };
        let value = attr(tag, "value").unwrap_or_default();
        match kind.as_str() {
            "hidden" => form.fields.push((name, value)),
            "checkbox" if name == "account" => {
                form.accounts += 1;
                form.fields.push((name, value));
            }
            _ => {}
        }
    }
    form
}

/// The attribute text of every `<name ...>` tag.
fn tags<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let lower = html.to_ascii_lowercase();
    let open = format!("<{name}");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = lower[from..].find(&open) {
        let start = from + i + open.len();
        let next = lower[start..].chars().next();
        if !next.is_some_and(|c| c.is_whitespace() || c == '>' || c == '/') {
            from = start;
            continue;
        }
        let end = html[start..].find('>').map_or(html.len(), |e| start + e);
        out.push(&html[start..end]);
        from = end;
    }
    out
}

/// One attribute's value in a tag's text (quoted or bare), entities decoded.
fn attr(tag: &str, name: &str) -> Option<String> {
    let bytes = tag.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        let key_start = i;
        while i < bytes.len()
            && !bytes[i].is_ascii_whitespace()
            && bytes[i] != b'='
            && bytes[i] != b'>'
        {
            i += 1;
        }
        let key = &tag[key_start..i];
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = None;
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let q = bytes[i];
                let s = i + 1;
                let e = tag[s..].find(q as char).map_or(tag.len(), |e| s + e);
                value = Some(&tag[s..e]);
                i = e + 1;
            } else {
                let s = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = Some(&tag[s..i]);
            }
        }
        if key.eq_ignore_ascii_case(name) {
            return Some(decode_entities(value.unwrap_or("")));
        }
        if key.is_empty() {
            i += 1;
        }
    }
    None
}

fn decode_entities(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_form_ticks_every_account_and_keeps_hidden_fields() {
        let html = r#"<html><form method="post" action="/oauth2/auth">
            <input type="hidden" name="state" value="a&amp;b">
            <input type='hidden' name=client_id value=xyz />
            <h2>KBC</h2><input type="checkbox" name="account" value="acc-1">
            <h2>ING</h2><input type="checkbox" name="account" value="acc-2" checked>
            <input type="text" name="note" value="ignored"><input type="submit" value="Allow">
            <inputx name="bogus" value="no">
            </form></html>"#;
        let form = parse_consent_form(html);
        assert_eq!(form.action.as_deref(), Some("/oauth2/auth"));
        assert_eq!(form.accounts, 2);
        assert_eq!(
            form.fields,
            vec![
                ("state".into(), "a&b".into()),
                ("client_id".into(), "xyz".into()),
                ("account".into(), "acc-1".into()),
                ("account".into(), "acc-2".into()),
            ]
        );
    }

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
        let url = wait_for_callback(&listener, port, Duration::from_secs(10)).unwrap();
        assert_eq!(
            url,
            format!("http://127.0.0.1:{port}/callback?code=c1&state=s1")
        );
        assert!(client.join().unwrap().starts_with("HTTP/1.1 200"));
    }
}
