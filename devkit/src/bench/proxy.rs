//! A loopback HTTP proxy that records the responses to GET requests and then serves them from
//! memory, so figures 2 and 3 can run the provider over the same pages with next to no server
//! cost. Requests it has not recorded (the OAuth flow, POSTs) go to the upstream sandbox through
//! the host's own `http` capability. The upstream origin is rewritten to the proxy's in bodies
//! and `location` headers, so `links.next` stays on the origin the provider was given.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use host_harness::bindings::http as wh;
use host_harness::bindings::http::Host as _;
use host_harness::capabilities::http::{HttpCapability, HttpPolicy};
use host_harness::erp::errors::ErpError;

/// A loopback-only HTTP capability (the policy the component gets for a sandbox).
pub fn loopback_http() -> anyhow::Result<HttpCapability> {
    let policy = HttpPolicy {
        allowed: vec!["http://127.0.0.1:*".parse().map_err(anyhow::Error::msg)?],
        ..HttpPolicy::default()
    };
    HttpCapability::new(policy, "bench", "bench").map_err(|e| anyhow::anyhow!(format!("{e:#}")))
}

/// One recorded response.
pub struct Cached {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Recorded GET responses, by method and path-and-query.
pub struct Cache {
    origin: String,
    map: RwLock<HashMap<String, Arc<Cached>>>,
}

impl Cache {
    fn key(&self, method: &str, url: &str) -> String {
        let target = url.strip_prefix(&self.origin).unwrap_or(url);
        format!("{method} {target}")
    }

    /// The recorded answer to `method url` (an absolute URL on the proxy, or a path).
    pub fn get(&self, method: &str, url: &str) -> Option<Arc<Cached>> {
        let key = self.key(method, url);
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned()
    }

    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A request the proxy served, for replaying its HTTP cost alone.
#[derive(Clone, Debug)]
pub struct Served {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
}

pub struct Proxy {
    pub origin: String,
    pub cache: Arc<Cache>,
    /// Record new GET answers (on during the warm-up).
    pub recording: Arc<AtomicBool>,
    log: Arc<Mutex<Option<Vec<Served>>>>,
}

struct Shared {
    upstream: String,
    origin: String,
    cache: Arc<Cache>,
    recording: Arc<AtomicBool>,
    log: Arc<Mutex<Option<Vec<Served>>>>,
    http: Mutex<HttpCapability>,
}

impl Proxy {
    /// Proxy to `upstream` (`http://127.0.0.1:PORT`), on a free loopback port.
    pub fn start(upstream: &str) -> anyhow::Result<Self> {
        let listener =
            TcpListener::bind(("127.0.0.1", 0)).map_err(|source| ErpError::Listener {
                doing: "proxy: cannot listen",
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| ErpError::Listener { doing: "", source })?
            .port();
        let origin = format!("http://127.0.0.1:{port}");
        let cache = Arc::new(Cache {
            origin: origin.clone(),
            map: RwLock::new(HashMap::new()),
        });
        let recording = Arc::new(AtomicBool::new(true));
        let log = Arc::new(Mutex::new(None));
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            origin: origin.clone(),
            cache: cache.clone(),
            recording: recording.clone(),
            log: log.clone(),
            http: Mutex::new(loopback_http()?),
        });
        // The accept loop lives as long as the process (a bench child): no shutdown needed.
        std::thread::Builder::new()
            .name("bench-proxy".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let shared = shared.clone();
                    let _ = std::thread::Builder::new()
                        .name("bench-proxy-conn".into())
                        .spawn(move || serve(stream, &shared));
                }
            })
            .map_err(|source| ErpError::Process {
                doing: "proxy: cannot start",
                source,
            })?;
        Ok(Self {
            origin,
            cache,
            recording,
            log,
        })
    }

    /// Start noting the requests served.
    pub fn start_log(&self) {
        *self.log.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
    }

    /// The requests served since [`Proxy::start_log`].
    pub fn take_log(&self) -> Vec<Served> {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default()
    }
}

/// Replace every `from` in `bytes` by `to`.
fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

struct Incoming {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn read_request(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<Incoming>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(None);
    };
    let (method, target) = (method.to_owned(), target.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 {
            return Ok(None);
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    }
    Ok(Some(Incoming {
        method,
        target,
        headers,
        body,
    }))
}

fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Ok(Some(req)) = read_request(&mut reader) {
        if let Some(log) = shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            log.push(Served {
                method: req.method.clone(),
                target: req.target.clone(),
                headers: req.headers.clone(),
            });
        }
        let answer = match shared.cache.get(&req.method, &req.target) {
            Some(c) => c,
            None => {
                let fetched = Arc::new(forward(shared, &req));
                if req.method == "GET"
                    && fetched.status == 200
                    && shared.recording.load(Ordering::Relaxed)
                {
                    let key = shared.cache.key(&req.method, &req.target);
                    shared
                        .cache
                        .map
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(key, fetched.clone());
                }
                fetched
            }
        };
        let mut head = format!("HTTP/1.1 {} X\r\n", answer.status);
        for (k, v) in &answer.headers {
            if !matches!(
                k.as_str(),
                "content-length" | "transfer-encoding" | "connection" | "content-encoding"
            ) {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", answer.body.len()));
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&answer.body).is_err() {
            return;
        }
    }
}

fn forward(shared: &Shared, req: &Incoming) -> Cached {
    let method = match req.method.as_str() {
        "POST" => wh::Method::Post,
        "PUT" => wh::Method::Put,
        "PATCH" => wh::Method::Patch,
        "DELETE" => wh::Method::Delete,
        _ => wh::Method::Get,
    };
    let headers = req
        .headers
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "host" | "content-length" | "transfer-encoding" | "connection" | "accept-encoding"
            )
        })
        .cloned()
        .collect();
    let request = wh::Request {
        method,
        url: format!("{}{}", shared.upstream, req.target),
        headers,
        body: wh::Body::from_bytes(req.body.clone()),
        timeout_ms: None,
    };
    let result = shared
        .http
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send(request);
    let (up, me) = (shared.upstream.as_bytes(), shared.origin.as_bytes());
    match result {
        Ok(resp) => Cached {
            status: resp.status,
            headers: resp
                .headers
                .into_iter()
                .map(|(k, v)| {
                    let v = if k == "location" {
                        v.replace(&shared.upstream, &shared.origin)
                    } else {
                        v
                    };
                    (k, v)
                })
                .collect(),
            body: replace(resp.body.as_bytes(), up, me),
        },
        Err(e) => Cached {
            status: 502,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: format!("bench proxy: upstream failed: {e:?}").into_bytes(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_every_occurrence_of_the_origin() {
        let got = replace(
            b"a http://127.0.0.1:1/x and http://127.0.0.1:1/y",
            b"http://127.0.0.1:1",
            b"http://127.0.0.1:23456",
        );
        assert_eq!(
            got,
            b"a http://127.0.0.1:23456/x and http://127.0.0.1:23456/y"
        );
    }
}
