//! `interface http`: outbound HTTP on the plugin's behalf.
//!
//! The host owns what a plugin must not: the allowlist (checked on every request, and redirects
//! are never followed, so a 3xx cannot lead off the list), TLS with optional client certificates
//! (Ponto's mutual TLS), a timeout, a response size cap and one audit line per request. Bodies,
//! header values and query values never reach a log.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use ureq::Agent;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};
use url::Url;

pub use super::http_signature::RequestSigning;
use super::http_signature::Signer;
use crate::bindings::http::{Body, Host, HttpError, Method, Request, Response};

impl Body {
    /// The body's bytes, whichever way it crossed.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Body::Text(text) => text.as_bytes(),
            Body::Binary(bytes) => bytes,
        }
    }

    /// Bytes as they cross to the plugin: text exactly when they are valid UTF-8 (http.wit).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        match String::from_utf8(bytes) {
            Ok(text) => Body::Text(text),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    }
}

pub use erp_plugins::origin::AllowedOrigin;

/// A PEM client certificate and key presented to one host (Ponto's mutual TLS).
#[derive(Clone)]
pub struct ClientCertificate {
    pub host: String,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("ClientCertificate")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// What the operator allows one plugin to do over HTTP.
#[derive(Clone, Debug)]
pub struct HttpPolicy {
    pub allowed: Vec<AllowedOrigin>,
    pub timeout: Duration,
    pub max_response_bytes: u64,
    pub client_certificates: Vec<ClientCertificate>,
    /// Extra trusted roots (PEM), for private test servers. They are trusted for loopback hosts
    /// only: a public host is always verified against the webpki roots, so a test CA can never
    /// vouch for a bank.
    pub extra_roots_pem: Vec<Vec<u8>>,
    /// Hosts whose requests the host signs (Ibanity's `Digest` + `Signature` headers).
    pub request_signing: Vec<RequestSigning>,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        Self {
            allowed: Vec::new(),
            timeout: Duration::from_secs(30),
            max_response_bytes: 16 * 1024 * 1024,
            client_certificates: Vec::new(),
            extra_roots_pem: Vec::new(),
            request_signing: Vec::new(),
        }
    }
}

/// Request headers the host sets itself: a plugin setting them could desynchronise framing
/// (`content-length`, `transfer-encoding`) or talk to another virtual host than the one allowed.
const RESERVED_HEADERS: &[&str] = &["host", "content-length", "transfer-encoding", "connection"];

/// The `http` capability of one job: the policy plus one ureq agent per distinct TLS setup.
pub struct HttpCapability {
    policy: HttpPolicy,
    plugin: String,
    connection: String,
    /// Public hosts without a client certificate: webpki roots.
    public: Agent,
    /// Loopback hosts without a client certificate: the extra roots (or webpki if none).
    loopback: Agent,
    /// Hosts (lower case, no brackets) that get a client certificate, each with its own agent.
    with_cert: HashMap<String, Agent>,
    /// Hosts (lower case, no brackets) whose requests are signed.
    signers: HashMap<String, Signer>,
    /// A cassette recorder or replayer (`crate::cassette`), when one is attached.
    tap: Option<Arc<dyn crate::cassette::HttpTap>>,
}

impl HttpCapability {
    /// Build the agents once. Fails, naming the host, on a client certificate or key that does
    /// not parse or do not belong together, and on an extra root that is not a certificate.
    pub fn new(policy: HttpPolicy, plugin: &str, connection: &str) -> anyhow::Result<Self> {
        let extra_roots = parse_roots(&policy.extra_roots_pem)?;
        let loopback_roots = if extra_roots.is_empty() {
            RootCerts::WebPki
        } else {
            RootCerts::new_with_certs(&extra_roots)
        };
        let roots_for = |host: &str| {
            if AllowedOrigin::is_loopback_host(host) {
                loopback_roots.clone()
            } else {
                RootCerts::WebPki
            }
        };

        let mut with_cert = HashMap::new();
        for cc in &policy.client_certificates {
            let host = normalise_host(&cc.host);
            let cert = load_client_cert(cc)?;
            let tls = TlsConfig::builder()
                .root_certs(roots_for(&host))
                .client_cert(Some(cert))
                .build();
            if with_cert.insert(host, new_agent(tls)).is_some() {
                bail!(
                    "two client certificates are configured for host `{}`",
                    cc.host
                );
            }
        }

        let mut signers = HashMap::new();
        for s in &policy.request_signing {
            if signers
                .insert(normalise_host(&s.host), Signer::new(s)?)
                .is_some()
            {
                bail!(
                    "two request-signing keys are configured for host `{}`",
                    s.host
                );
            }
        }

        Ok(Self {
            signers,
            public: new_agent(TlsConfig::builder().root_certs(RootCerts::WebPki).build()),
            loopback: new_agent(TlsConfig::builder().root_certs(loopback_roots).build()),
            with_cert,
            policy,
            plugin: plugin.to_owned(),
            connection: connection.to_owned(),
            tap: None,
        })
    }

    /// Record every exchange into, or serve them from, a cassette.
    pub fn set_tap(&mut self, tap: Arc<dyn crate::cassette::HttpTap>) {
        self.tap = Some(tap);
    }

    /// The policy this capability enforces.
    pub fn policy(&self) -> &HttpPolicy {
        &self.policy
    }

    /// Check a URL against the policy; `Ok` carries the host without brackets.
    fn check_url(&self, url: &Url) -> Result<String, HttpError> {
        if url.cannot_be_a_base() {
            return Err(HttpError::InvalidRequest(format!(
                "`{}:` URLs cannot be sent; use an absolute https:// URL",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Credentials belong in a header, where they are never logged.
            return Err(HttpError::InvalidRequest(
                "URLs with user info (user:password@) are refused; send credentials in a header"
                    .into(),
            ));
        }
        let scheme = url.scheme();
        let host_str = url.host_str().unwrap_or_default();
        let host = normalise_host(host_str);
        let origin = match url.port_or_known_default() {
            Some(port) => format!("{scheme}://{host_str}:{port}"),
            None => format!("{scheme}://{host_str}"),
        };
        let denied = |why: &str| HttpError::Denied(format!("{origin} {why}"));
        let port = match (scheme, url.port_or_known_default()) {
            ("https" | "http", Some(port)) if !host.is_empty() => port,
            _ => return Err(denied("is not an http(s) origin")),
        };
        if scheme == "http" && !AllowedOrigin::is_loopback_host(&host) {
            return Err(denied(
                "is refused: plain http is allowed only to loopback addresses",
            ));
        }
        if !self
            .policy
            .allowed
            .iter()
            .any(|o| o.matches(scheme, &host, port))
        {
            return Err(denied(&format!(
                "is not granted to plugin `{}`",
                self.plugin
            )));
        }
        Ok(host)
    }

    /// The signature headers this request gets, if its host signs requests of its method.
    fn signing_headers(
        &self,
        request: &Request,
        url: &Url,
        host: &str,
    ) -> Result<Option<[(String, String); 2]>, HttpError> {
        let method = method_name(request.method);
        let Some(signer) = self.signers.get(host).filter(|s| s.applies_to(method)) else {
            return Ok(None);
        };
        if let Some((name, _)) = request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("digest") || n.eq_ignore_ascii_case("signature"))
        {
            return Err(HttpError::InvalidRequest(format!(
                "header `{name}` is set by the host, which signs requests to {host}; leave it out"
            )));
        }
        // As the Host header is sent: with the port only when it is not the scheme's default.
        let host_header = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let mut target = url.path().to_owned();
        if let Some(q) = url.query() {
            target.push('?');
            target.push_str(q);
        }
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        signer
            .headers(
                method,
                &target,
                &host_header,
                request.body.as_bytes(),
                &request.headers,
                created,
            )
            .map(Some)
            .map_err(|e| HttpError::InvalidRequest(format!("{e:#}")))
    }

    fn agent_for(&self, host: &str) -> &Agent {
        if let Some(agent) = self.with_cert.get(host) {
            agent
        } else if AllowedOrigin::is_loopback_host(host) {
            &self.loopback
        } else {
            &self.public
        }
    }

    fn effective_timeout(&self, requested_ms: Option<u32>) -> Duration {
        let requested = requested_ms.map_or(Duration::MAX, |ms| Duration::from_millis(ms.into()));
        // A zero budget is read as the smallest one: the request fails fast with `Timeout`.
        requested
            .min(self.policy.timeout)
            .max(Duration::from_millis(1))
    }

    fn perform(&self, request: &Request, url: &Url, host: &str) -> Result<Response, HttpError> {
        for (name, value) in &request.headers {
            let lower = name.to_ascii_lowercase();
            if ureq::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(HttpError::InvalidRequest(format!(
                    "`{name}` is not a valid header name"
                )));
            }
            if ureq::http::HeaderValue::from_str(value).is_err() {
                // The value may be a secret: name the header only.
                return Err(HttpError::InvalidRequest(format!(
                    "the value of header `{name}` has characters not allowed in a header"
                )));
            }
            if RESERVED_HEADERS.contains(&lower.as_str()) {
                return Err(HttpError::InvalidRequest(format!(
                    "header `{name}` is set by the host; leave it out"
                )));
            }
        }

        let signed = self.signing_headers(request, url, host)?;
        let signed_headers;
        let headers = match signed {
            Some(extra) => {
                signed_headers = request.headers.iter().cloned().chain(extra).collect();
                &signed_headers
            }
            None => &request.headers,
        };
        let agent = self.agent_for(host);
        let timeout = self.effective_timeout(request.timeout_ms);
        // A fragment is never sent on the wire (and `http::Uri` would refuse it).
        let mut url = url.clone();
        url.set_fragment(None);
        let url = url.as_str();
        let body = request.body.as_bytes();
        let sent = match (request.method, body.is_empty()) {
            (Method::Get, true) => prepare_call(agent.get(url), headers, timeout).call(),
            (Method::Get, false) => {
                prepare_call(agent.get(url).force_send_body(), headers, timeout).send(body)
            }
            (Method::Delete, true) => prepare_call(agent.delete(url), headers, timeout).call(),
            (Method::Delete, false) => {
                prepare_call(agent.delete(url).force_send_body(), headers, timeout).send(body)
            }
            (Method::Post, _) => prepare_call(agent.post(url), headers, timeout).send(body),
            (Method::Put, _) => prepare_call(agent.put(url), headers, timeout).send(body),
            (Method::Patch, _) => prepare_call(agent.patch(url), headers, timeout).send(body),
        };
        let response = sent.map_err(map_error)?;

        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                // `http` keeps names lower case already; values may be any bytes.
                (
                    name.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let cap = self.policy.max_response_bytes;
        let body = response.into_body();
        if body.content_length().is_some_and(|len| len > cap) {
            return Err(HttpError::TooLarge(cap));
        }
        // Read one byte past the cap to tell "exactly the cap" from "over it", never more.
        let mut bytes = Vec::new();
        body.into_reader()
            .take(cap.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| map_error(ureq::Error::from(e)))?;
        if bytes.len() as u64 > cap {
            return Err(HttpError::TooLarge(cap));
        }
        Ok(Response {
            status,
            headers,
            body: Body::from_bytes(bytes),
        })
    }
}

impl Host for HttpCapability {
    fn send(&mut self, request: Request) -> Result<Response, HttpError> {
        let started = Instant::now();
        let parsed = Url::parse(&request.url);
        let outcome = match &parsed {
            Err(e) => Err(HttpError::InvalidRequest(format!("unparsable URL: {e}"))),
            // The allowlist holds in a replay too; a replayer answers instead of the network.
            Ok(url) => self.check_url(url).and_then(|host| {
                match self
                    .tap
                    .as_ref()
                    .and_then(|t| t.replay(&self.connection, &request))
                {
                    Some(answer) => answer,
                    None => self.perform(&request, url, &host),
                }
            }),
        };
        if let Some(tap) = &self.tap {
            let elapsed = started.elapsed();
            let at = std::time::SystemTime::now() - elapsed;
            tap.record(&self.connection, &request, &outcome, at, elapsed);
        }
        let line = AuditLine {
            method: method_name(request.method),
            host: parsed
                .as_ref()
                .ok()
                .and_then(|u| u.host_str())
                .unwrap_or("-"),
            path: parsed.as_ref().map_or_else(|_| "-".to_owned(), audit_path),
            outcome: &outcome,
            ms: started.elapsed().as_millis(),
        };
        tracing::info!(
            target: "http",
            plugin = %self.plugin,
            connection = %self.connection,
            method = line.method,
            host = line.host,
            path = %line.path,
            status = line.status(),
            bytes = line.bytes(),
            ms = line.ms as u64,
            outcome = line.outcome_label(),
            "{}",
            line
        );
        outcome
    }
}

/// What one audit line says. Built only from the method, the URL's host and path (query values
/// redacted) and the outcome's status and size: headers and bodies are not even reachable here.
struct AuditLine<'a> {
    method: &'static str,
    host: &'a str,
    path: String,
    outcome: &'a Result<Response, HttpError>,
    ms: u128,
}

impl AuditLine<'_> {
    fn status(&self) -> Option<u64> {
        self.outcome.as_ref().ok().map(|r| u64::from(r.status))
    }

    fn bytes(&self) -> Option<u64> {
        self.outcome
            .as_ref()
            .ok()
            .map(|r| r.body.as_bytes().len() as u64)
    }

    fn outcome_label(&self) -> &'static str {
        match self.outcome {
            Ok(_) => "response",
            Err(HttpError::Denied(_)) => "denied",
            Err(HttpError::Timeout) => "timeout",
            Err(HttpError::TooLarge(_)) => "too-large",
            Err(HttpError::InvalidRequest(_)) => "invalid-request",
            Err(HttpError::Transport(_)) => "transport",
        }
    }
}

impl std::fmt::Display for AuditLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}{} -> ", self.method, self.host, self.path)?;
        match self.outcome {
            Ok(r) => write!(f, "{} ({} bytes)", r.status, r.body.as_bytes().len())?,
            Err(_) => write!(f, "{}", self.outcome_label())?,
        }
        write!(f, " in {} ms", self.ms)
    }
}

/// The URL's path for the audit log: query parameter names are kept, their values (which may
/// carry codes or tokens) are replaced by `_`; the fragment is dropped.
fn audit_path(url: &Url) -> String {
    let mut out = url.path().to_owned();
    if let Some(query) = url.query() {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((name, _)) => {
                    out.push_str(name);
                    out.push_str("=_");
                }
                None => out.push_str(pair),
            }
        }
    }
    out
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
    }
}

/// Lower case, without IPv6 brackets: the form `AllowedOrigin` stores.
fn normalise_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// Apply the plugin's headers and this request's timeout to a ureq request.
fn prepare_call<B>(
    mut rb: ureq::RequestBuilder<B>,
    headers: &[(String, String)],
    timeout: Duration,
) -> ureq::RequestBuilder<B> {
    for (name, value) in headers {
        rb = rb.header(name.as_str(), value.as_str());
    }
    rb.config().timeout_global(Some(timeout)).build()
}

fn new_agent(tls: TlsConfig) -> Agent {
    Agent::config_builder()
        // 4xx and 5xx are answers the plugin interprets, not transport failures.
        .http_status_as_error(false)
        // A 3xx goes back to the plugin, whose next request is checked against the allowlist.
        .max_redirects(0)
        // ureq reads HTTP(S)_PROXY by default; a plugin's traffic goes straight to the origin.
        .proxy(None)
        .user_agent(concat!("erp-host/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls)
        .build()
        .new_agent()
}

fn map_error(error: ureq::Error) -> HttpError {
    match error {
        ureq::Error::Timeout(_) => HttpError::Timeout,
        ureq::Error::Io(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) =>
        {
            HttpError::Timeout
        }
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => {
            HttpError::InvalidRequest(format!("the request cannot be sent: {error}"))
        }
        other => HttpError::Transport(other.to_string()),
    }
}

/// Parse every extra root; each PEM must hold at least one certificate rustls accepts as a root.
fn parse_roots(pems: &[Vec<u8>]) -> anyhow::Result<Vec<Certificate<'static>>> {
    let mut roots = Vec::new();
    for (i, pem) in pems.iter().enumerate() {
        let ders = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("extra root #{}: not PEM", i + 1))?;
        if ders.is_empty() {
            bail!("extra root #{}: no CERTIFICATE in the PEM", i + 1);
        }
        for der in ders {
            rustls::RootCertStore::empty()
                .add(der.clone())
                .with_context(|| format!("extra root #{}: not a usable CA certificate", i + 1))?;
            roots.push(Certificate::from_der(der.as_ref()).to_owned());
        }
    }
    Ok(roots)
}

/// Load and check one client certificate. ureq would panic at the first request on a key that
/// does not match its certificate, so rustls checks the pair here, where an error names the host.
fn load_client_cert(cc: &ClientCertificate) -> anyhow::Result<ClientCert> {
    let host = &cc.host;
    let chain = CertificateDer::pem_slice_iter(&cc.cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("client certificate for `{host}`: not PEM"))?;
    if chain.is_empty() {
        bail!("client certificate for `{host}`: no CERTIFICATE in the PEM");
    }
    let key = PrivateKeyDer::from_pem_slice(&cc.key_pem)
        .with_context(|| format!("client key for `{host}`: no PEM private key"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS provider has no protocol versions")?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_client_auth_cert(chain.clone(), key)
        .with_context(|| {
            format!("client certificate and key for `{host}` cannot be used together")
        })?;
    let certs: Vec<Certificate<'static>> = chain
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    // The same PEM again, into ureq's own key type (ureq does not expose its key-kind enum).
    let key = PrivateKey::from_pem(&cc.key_pem)
        .with_context(|| format!("client key for `{host}`: no PEM private key"))?;
    Ok(ClientCert::new_with_certs(&certs, key))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::Mutex;
    use std::sync::mpsc;

    use super::*;

    fn origin(s: &str) -> AllowedOrigin {
        s.parse().unwrap()
    }

    fn capability(allowed: &[&str]) -> HttpCapability {
        let policy = HttpPolicy {
            allowed: allowed.iter().map(|s| origin(s)).collect(),
            ..HttpPolicy::default()
        };
        HttpCapability::new(policy, "acme", "conn-1").unwrap()
    }

    fn get(url: &str) -> Request {
        Request {
            method: Method::Get,
            url: url.to_owned(),
            headers: Vec::new(),
            body: Body::Text(String::new()),
            timeout_ms: None,
        }
    }

    /// Read one HTTP/1.1 request (head and content-length body) off a stream; returns its text.
    fn read_request(stream: &mut impl Read) -> String {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte) {
                Ok(1) => buf.push(byte[0]),
                _ => return String::from_utf8_lossy(&buf).into_owned(),
            }
        }
        let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).unwrap();
        buf.extend_from_slice(&body);
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// A plain-HTTP server on 127.0.0.1 answering each connection with the next canned
    /// response; the requests it saw come out of the returned channel.
    fn serve(responses: Vec<Vec<u8>>) -> (SocketAddr, mpsc::Receiver<String>) {
        serve_with_delay(responses, Duration::ZERO)
    }

    fn serve_with_delay(
        responses: Vec<Vec<u8>>,
        delay: Duration,
    ) -> (SocketAddr, mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for response in responses {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                let request = read_request(&mut stream);
                let _ = tx.send(request);
                std::thread::sleep(delay);
                let _ = stream.write_all(&response);
            }
        });
        (addr, rx)
    }

    /// The value of header `name` (lower case) in a request's text.
    fn header_of(request: &str, name: &str) -> Option<String> {
        request.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    #[test]
    fn requests_to_a_signing_host_carry_a_signature_that_verifies() {
        use crate::capabilities::http_signature::tests::{TEST_KEY_PEM, signing, verify};
        let ok = || canned("200 OK", &[], b"{}");
        let (addr, seen) = serve(vec![ok(), ok(), ok()]);
        let policy = HttpPolicy {
            allowed: vec![origin("http://127.0.0.1:*")],
            request_signing: vec![signing("127.0.0.1", false)],
            ..HttpPolicy::default()
        };
        let mut http = HttpCapability::new(policy, "acme", "conn-1").unwrap();
        let body = br#"{"data":{"type":"synchronization"}}"#.to_vec();
        let post = Request {
            method: Method::Post,
            url: format!("http://{addr}/acme-connect/synchronizations?a=b"),
            headers: vec![("Authorization".into(), "Bearer abc".into())],
            body: Body::from_bytes(body.clone()),
            timeout_ms: None,
        };
        assert_eq!(http.send(post.clone()).unwrap().status, 200);
        let sent = seen.recv().unwrap();
        let digest = header_of(&sent, "digest").expect("a Digest header");
        let signature = header_of(&sent, "signature").expect("a Signature header");
        let created = signature
            .split("created=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap()
            .to_owned();
        let lines = vec![
            "(request-target): post /acme-connect/synchronizations?a=b".to_owned(),
            format!("host: {addr}"),
            format!("digest: {digest}"),
            format!("(created): {created}"),
            "authorization: Bearer abc".to_owned(),
        ];
        assert!(verify(TEST_KEY_PEM, &signature, &lines), "{sent}");

        // GETs are not signed unless asked; the plugin may not forge the host's headers.
        http.send(get(&format!("http://{addr}/x"))).unwrap();
        assert_eq!(header_of(&seen.recv().unwrap(), "signature"), None);
        let mut forged = post;
        forged
            .headers
            .push(("Signature".into(), "keyId=\"x\"".into()));
        assert!(matches!(
            http.send(forged),
            Err(HttpError::InvalidRequest(m)) if m.contains("`Signature` is set by the host")
        ));
    }

    fn canned(status: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {status}\r\nconnection: close\r\n");
        for h in headers {
            out.push_str(h);
            out.push_str("\r\n");
        }
        out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        let mut out = out.into_bytes();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn origins_outside_the_allowlist_are_denied_naming_the_origin() {
        let mut cap = capability(&["https://api.example.com", "http://127.0.0.1:*"]);
        for (url, named) in [
            ("https://evil.example.com/x", "https://evil.example.com:443"),
            ("http://api.example.com/x", "http://api.example.com:80"),
            (
                "https://api.example.com:8443/x",
                "https://api.example.com:8443",
            ),
            ("ftp://api.example.com/x", "ftp://api.example.com:21"),
            ("https://127.0.0.1/x", "https://127.0.0.1:443"),
        ] {
            match cap.send(get(url)) {
                Err(HttpError::Denied(msg)) => assert!(msg.contains(named), "{url}: {msg}"),
                other => panic!("{url}: expected Denied, got {other:?}"),
            }
        }
    }

    #[test]
    fn plain_http_to_a_public_host_is_refused_even_if_granted() {
        // Built directly: `FromStr` would already refuse this origin.
        let policy = HttpPolicy {
            allowed: vec![AllowedOrigin {
                scheme: "http".into(),
                host: "api.example.com".into(),
                port: Some(80),
            }],
            ..HttpPolicy::default()
        };
        let mut cap = HttpCapability::new(policy, "p", "c").unwrap();
        match cap.send(get("http://api.example.com/")) {
            Err(HttpError::Denied(msg)) => assert!(msg.contains("loopback"), "{msg}"),
            other => panic!("expected Denied, got {other:?}"),
        }
    }

    #[test]
    fn ipv6_loopback_origins_match_without_brackets() {
        let mut cap = capability(&["http://[::1]:*"]);
        // Nothing listens on port 1: getting past the allowlist shows as a transport error.
        let got = cap.send(get("http://[::1]:1/"));
        assert!(matches!(got, Err(HttpError::Transport(_))), "{got:?}");
        let got = cap.send(get("http://[::2]:1/"));
        assert!(matches!(got, Err(HttpError::Denied(_))), "{got:?}");
    }

    #[test]
    fn user_info_and_unparsable_urls_are_invalid() {
        let mut cap = capability(&["https://api.example.com"]);
        for url in [
            "https://user:secret@api.example.com/",
            "https://user@api.example.com/",
            "not a url",
            "mailto:someone@example.com",
        ] {
            match cap.send(get(url)) {
                Err(HttpError::InvalidRequest(msg)) => assert!(!msg.contains("secret"), "{msg}"),
                other => panic!("{url}: expected InvalidRequest, got {other:?}"),
            }
        }
    }

    #[test]
    fn reserved_and_malformed_headers_are_invalid() {
        let (addr, _) = serve(vec![]);
        let mut cap = capability(&[&format!("http://127.0.0.1:{}", addr.port())]);
        for (name, value) in [("Host", "evil.com"), ("bad name", "x"), ("x-token", "a\nb")] {
            let mut req = get(&format!("http://127.0.0.1:{}/", addr.port()));
            req.headers.push((name.into(), value.into()));
            assert!(
                matches!(cap.send(req), Err(HttpError::InvalidRequest(_))),
                "{name}"
            );
        }
    }

    #[test]
    fn granted_loopback_any_port_is_reached_and_headers_come_back_lower_case() {
        let (addr, seen) = serve(vec![canned("200 OK", &["X-Custom: Value"], b"hello")]);
        let mut cap = capability(&["http://127.0.0.1:*"]);
        let mut req = get(&format!(
            "http://127.0.0.1:{}/accounts?page=2#top",
            addr.port()
        ));
        req.headers
            .push(("Accept".into(), "application/json".into()));
        let resp = cap.send(req).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body.as_bytes(), b"hello");
        assert!(
            resp.headers.contains(&("x-custom".into(), "Value".into())),
            "{:?}",
            resp.headers
        );
        let request = seen.recv().unwrap();
        assert!(
            request.starts_with("GET /accounts?page=2 HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request
                .to_ascii_lowercase()
                .contains("accept: application/json")
        );
    }

    #[test]
    fn a_body_crosses_as_text_when_it_is_utf8_and_as_bytes_otherwise() {
        let (addr, _seen) = serve(vec![
            canned("200 OK", &[], "{\"naïve\":1}".as_bytes()),
            canned("200 OK", &[], b"\xff\xfe\x00"),
        ]);
        let mut cap = capability(&["http://127.0.0.1:*"]);
        let url = format!("http://127.0.0.1:{}/", addr.port());
        let text = cap.send(get(&url)).unwrap().body;
        assert!(
            matches!(&text, Body::Text(t) if t == "{\"naïve\":1}"),
            "{text:?}"
        );
        let binary = cap.send(get(&url)).unwrap().body;
        assert!(
            matches!(&binary, Body::Binary(b) if b == &[0xff, 0xfe, 0x00]),
            "{binary:?}"
        );
    }

    #[test]
    fn a_post_body_reaches_the_server() {
        let (addr, seen) = serve(vec![canned("201 Created", &[], b"")]);
        let mut cap = capability(&["http://127.0.0.1:*"]);
        let mut req = get(&format!("http://127.0.0.1:{}/sync", addr.port()));
        req.method = Method::Post;
        req.body = Body::Text("{\"a\":1}".into());
        let resp = cap.send(req).unwrap();
        assert_eq!(resp.status, 201);
        assert!(seen.recv().unwrap().ends_with("\r\n\r\n{\"a\":1}"));
    }

    #[test]
    fn redirects_are_returned_not_followed() {
        let (target, target_seen) = serve(vec![canned("200 OK", &[], b"followed")]);
        let location = format!("location: http://127.0.0.1:{}/elsewhere", target.port());
        let (addr, seen) = serve(vec![canned("302 Found", &[&location], b"")]);
        // Both servers are granted: the redirect is still not followed.
        let mut cap = capability(&["http://127.0.0.1:*"]);
        let resp = cap
            .send(get(&format!("http://127.0.0.1:{}/start", addr.port())))
            .unwrap();
        assert_eq!(resp.status, 302);
        assert!(
            resp.headers
                .iter()
                .any(|(k, v)| k == "location" && v.ends_with("/elsewhere"))
        );
        assert!(seen.recv().unwrap().starts_with("GET /start "));
        assert!(
            target_seen
                .recv_timeout(Duration::from_millis(300))
                .is_err()
        );
    }

    #[test]
    fn server_errors_are_responses() {
        let (addr, _) = serve(vec![
            canned("500 Internal Server Error", &[], b"{\"errors\":[]}"),
            canned("401 Unauthorized", &[], b""),
        ]);
        let mut cap = capability(&["http://127.0.0.1:*"]);
        let url = format!("http://127.0.0.1:{}/", addr.port());
        let resp = cap.send(get(&url)).unwrap();
        assert_eq!(
            (resp.status, resp.body.as_bytes()),
            (500, &b"{\"errors\":[]}"[..])
        );
        assert_eq!(cap.send(get(&url)).unwrap().status, 401);
    }

    fn capped(cap_bytes: u64) -> HttpCapability {
        let policy = HttpPolicy {
            allowed: vec![origin("http://127.0.0.1:*")],
            max_response_bytes: cap_bytes,
            ..HttpPolicy::default()
        };
        HttpCapability::new(policy, "p", "c").unwrap()
    }

    /// A response without content-length (chunked), so the cap is met while streaming.
    fn chunked(body: &[u8]) -> Vec<u8> {
        let mut out =
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        for chunk in body.chunks(300) {
            out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }

    #[test]
    fn a_body_at_the_cap_is_accepted_and_one_byte_more_is_refused() {
        let at = vec![b'a'; 1000];
        let over = vec![b'a'; 1001];
        let (addr, _) = serve(vec![
            canned("200 OK", &[], &at),
            canned("200 OK", &[], &over),
            chunked(&at),
            chunked(&over),
            chunked(&vec![b'a'; 100_000]),
        ]);
        let mut cap = capped(1000);
        let url = format!("http://127.0.0.1:{}/", addr.port());
        assert_eq!(cap.send(get(&url)).unwrap().body.as_bytes().len(), 1000);
        assert!(matches!(
            cap.send(get(&url)),
            Err(HttpError::TooLarge(1000))
        ));
        assert_eq!(cap.send(get(&url)).unwrap().body.as_bytes().len(), 1000);
        assert!(matches!(
            cap.send(get(&url)),
            Err(HttpError::TooLarge(1000))
        ));
        assert!(matches!(
            cap.send(get(&url)),
            Err(HttpError::TooLarge(1000))
        ));
    }

    #[test]
    fn a_slow_server_times_out_at_the_smaller_of_both_limits() {
        let slow = Duration::from_secs(3);
        let (addr, _) = serve_with_delay(
            vec![canned("200 OK", &[], b""), canned("200 OK", &[], b"")],
            slow,
        );
        let url = format!("http://127.0.0.1:{}/", addr.port());

        // The request asks for less than the policy allows.
        let cap = capability(&["http://127.0.0.1:*"]);
        times_out_soon(cap, &url, 200);

        // The request asks for more than the policy allows: the policy wins.
        let policy = HttpPolicy {
            allowed: vec![origin("http://127.0.0.1:*")],
            timeout: Duration::from_millis(200),
            ..HttpPolicy::default()
        };
        let cap = HttpCapability::new(policy, "p", "c").unwrap();
        times_out_soon(cap, &url, 60_000);
    }

    /// A request asking for `timeout_ms` to a server that answers after 3 s ends in a timeout
    /// well before the answer.
    fn times_out_soon(mut cap: HttpCapability, url: &str, timeout_ms: u32) {
        let mut req = get(url);
        req.timeout_ms = Some(timeout_ms);
        let started = Instant::now();
        assert!(matches!(cap.send(req), Err(HttpError::Timeout)));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_refused_connection_is_a_transport_error() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cap = capability(&["http://127.0.0.1:*"]);
        let got = cap.send(get(&format!("http://127.0.0.1:{port}/")));
        assert!(matches!(got, Err(HttpError::Transport(_))), "{got:?}");
    }

    #[test]
    fn audit_paths_keep_parameter_names_and_drop_values() {
        let url =
            Url::parse("https://h/oauth2/token?code=SECRET&page%5Blimit%5D=10&flag#frag").unwrap();
        assert_eq!(
            audit_path(&url),
            "/oauth2/token?code=_&page%5Blimit%5D=_&flag"
        );
        assert_eq!(audit_path(&Url::parse("https://h/a/b").unwrap()), "/a/b");
    }

    /// Collects everything a `tracing` fmt subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// `tracing` caches per call site whether any subscriber listens; a parallel test that hits
    /// the audit call site first, with none, can cache "no" while this test's subscriber is being
    /// set up. So the audit test proper runs alone, in a process of its own.
    #[test]
    fn the_audit_line_never_carries_authorization_query_values_or_bodies() {
        let module = module_path!()
            .split_once("::")
            .map_or(module_path!(), |(_, m)| m);
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .arg(format!("{module}::audit_in_a_process_of_its_own"))
            .args(["--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains("1 passed"), "{stdout}\n{stderr}");
    }

    #[test]
    #[ignore = "run by the_audit_line_never_carries_authorization_query_values_or_bodies"]
    fn audit_in_a_process_of_its_own() {
        let (addr, _) = serve(vec![
            canned("200 OK", &[], b"{\"access_token\":\"RESPONSE-TOKEN\"}"),
            canned("200 OK", &[], b""),
        ]);
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let mut cap = capability(&["http://127.0.0.1:*"]);
        tracing::subscriber::with_default(subscriber, || {
            let mut req = get(&format!(
                "http://127.0.0.1:{}/oauth2/token?code=QUERY-SECRET",
                addr.port()
            ));
            req.method = Method::Post;
            req.headers
                .push(("Authorization".into(), "Basic AUTH-SECRET".into()));
            req.body = Body::Text("grant_type=refresh_token&refresh_token=BODY-SECRET".into());
            assert_eq!(cap.send(req).unwrap().status, 200);
            // A denied request is audited too.
            let mut denied = get("https://elsewhere.example/x?token=DENIED-SECRET");
            denied
                .headers
                .push(("authorization".into(), "Bearer AUTH-SECRET".into()));
            assert!(cap.send(denied).is_err());
        });
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 2, "{log}");
        assert!(
            lines[0].contains("POST") && lines[0].contains("/oauth2/token?code=_"),
            "{log}"
        );
        assert!(
            lines[0].contains("status=200") && lines[0].contains("plugin=acme"),
            "{log}"
        );
        assert!(
            lines[0].contains("connection=conn-1") && lines[0].contains("bytes=33"),
            "{log}"
        );
        assert!(
            lines[1].contains("outcome=\"denied\"") || lines[1].contains("outcome=denied"),
            "{log}"
        );
        assert!(
            !log.contains("SECRET") && !log.contains("RESPONSE-TOKEN"),
            "{log}"
        );
    }

    // ---- mutual TLS -------------------------------------------------------------------------

    struct Pki {
        ca_pem: String,
        server_chain: Vec<CertificateDer<'static>>,
        server_key: PrivateKeyDer<'static>,
        client_cert_pem: String,
        client_key_pem: String,
    }

    fn ca(name: &str) -> (rcgen::Issuer<'static, rcgen::KeyPair>, String) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        (rcgen::Issuer::new(params, key), pem)
    }

    fn leaf(
        names: &[&str],
        issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
    ) -> (rcgen::Certificate, rcgen::KeyPair) {
        let params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        (params.signed_by(&key, issuer).unwrap(), key)
    }

    fn pki() -> Pki {
        let (issuer, ca_pem) = ca("test CA");
        let (server, server_key) = leaf(&["localhost", "127.0.0.1"], &issuer);
        let (client, client_key) = leaf(&["erp client"], &issuer);
        Pki {
            ca_pem,
            server_chain: vec![server.der().clone()],
            server_key: PrivateKeyDer::try_from(server_key.serialize_der()).unwrap(),
            client_cert_pem: client.pem(),
            client_key_pem: client_key.serialize_pem(),
        }
    }

    /// A TLS server that requires a client certificate signed by `pki`'s CA and answers each
    /// request with 200 "mtls ok". Serves up to `connections` connections.
    fn serve_mtls(pki: &Pki, connections: usize) -> SocketAddr {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for der in CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()) {
            roots.add(der.unwrap()).unwrap();
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for _ in 0..connections {
                let Ok((tcp, _)) = listener.accept() else {
                    return;
                };
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut tls = rustls::StreamOwned::<_, TcpStream>::new(conn, tcp);
                // A handshake without a valid client certificate fails here; the client sees it.
                let request = read_request(&mut tls);
                if request.ends_with("\r\n\r\n") {
                    let _ = tls.write_all(&canned("200 OK", &[], b"mtls ok"));
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
            }
        });
        addr
    }

    fn mtls_policy(pki: &Pki, port: u16, with_cert: bool) -> HttpPolicy {
        HttpPolicy {
            allowed: vec![origin(&format!("https://127.0.0.1:{port}"))],
            extra_roots_pem: vec![pki.ca_pem.clone().into_bytes()],
            client_certificates: if with_cert {
                vec![ClientCertificate {
                    host: "127.0.0.1".into(),
                    cert_pem: pki.client_cert_pem.clone().into_bytes(),
                    key_pem: pki.client_key_pem.clone().into_bytes(),
                }]
            } else {
                Vec::new()
            },
            ..HttpPolicy::default()
        }
    }

    #[test]
    fn mutual_tls_needs_the_client_certificate() {
        let pki = pki();
        let addr = serve_mtls(&pki, 3);
        let url = format!("https://127.0.0.1:{}/accounts", addr.port());

        let mut without =
            HttpCapability::new(mtls_policy(&pki, addr.port(), false), "p", "c").unwrap();
        let got = without.send(get(&url));
        assert!(matches!(got, Err(HttpError::Transport(_))), "{got:?}");

        let mut with = HttpCapability::new(mtls_policy(&pki, addr.port(), true), "p", "c").unwrap();
        let resp = with.send(get(&url)).unwrap();
        assert_eq!((resp.status, resp.body.as_bytes()), (200, &b"mtls ok"[..]));

        // A certificate from another CA is refused by the server just the same.
        let (other_ca, _) = ca("other CA");
        let (stranger, stranger_key) = leaf(&["stranger"], &other_ca);
        let mut policy = mtls_policy(&pki, addr.port(), true);
        policy.client_certificates[0].cert_pem = stranger.pem().into_bytes();
        policy.client_certificates[0].key_pem = stranger_key.serialize_pem().into_bytes();
        let mut stranger = HttpCapability::new(policy, "p", "c").unwrap();
        let got = stranger.send(get(&url));
        assert!(matches!(got, Err(HttpError::Transport(_))), "{got:?}");
    }

    #[test]
    fn an_untrusted_server_certificate_is_a_transport_error() {
        let pki = pki();
        let addr = serve_mtls(&pki, 1);
        // No extra root: the test CA is not trusted.
        let mut policy = mtls_policy(&pki, addr.port(), true);
        policy.extra_roots_pem.clear();
        let mut cap = HttpCapability::new(policy, "p", "c").unwrap();
        let got = cap.send(get(&format!("https://127.0.0.1:{}/", addr.port())));
        assert!(matches!(got, Err(HttpError::Transport(_))), "{got:?}");
    }

    #[test]
    fn bad_certificates_fail_setup_naming_the_host() {
        let pki = pki();
        let (_, other_key) = leaf(&["x"], &ca("other").0);
        let cases = [
            (b"not pem".to_vec(), pki.client_key_pem.clone().into_bytes()),
            (
                pki.client_cert_pem.clone().into_bytes(),
                b"no key here".to_vec(),
            ),
            // A key that is not the certificate's.
            (
                pki.client_cert_pem.clone().into_bytes(),
                other_key.serialize_pem().into_bytes(),
            ),
        ];
        for (cert_pem, key_pem) in cases {
            let policy = HttpPolicy {
                client_certificates: vec![ClientCertificate {
                    host: "api.acme.example".into(),
                    cert_pem,
                    key_pem,
                }],
                ..HttpPolicy::default()
            };
            let err = HttpCapability::new(policy, "p", "c")
                .err()
                .expect("setup must fail");
            assert!(format!("{err:#}").contains("api.acme.example"), "{err:#}");
        }
        let policy = HttpPolicy {
            extra_roots_pem: vec![b"garbage".to_vec()],
            ..HttpPolicy::default()
        };
        let err = HttpCapability::new(policy, "p", "c")
            .err()
            .expect("setup must fail");
        assert!(format!("{err:#}").contains("extra root #1"), "{err:#}");
    }
}
