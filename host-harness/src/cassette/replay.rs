//! The network served from a cassette.
//!
//! A request is matched by method, path and query (scheme, host and port are not compared, so a
//! cassette recorded against a loopback server on any port replays): the first exchange of its
//! connection not yet played with the same method, path and query answers it. Exchanges are
//! recorded in order, so this plays them in order, and a request may skip ahead past exchanges
//! the provider no longer makes. A request no exchange answers gets the typed `transport` error
//! `not in the cassette: GET /path?query`, which the provider reports as its own typed error.

use std::sync::Mutex;

use url::Url;

use super::HttpTap;
use super::format::{Cassette, method_name};
use crate::bindings::http::{Body, HttpError, Request, Response};

/// One exchange to serve.
#[derive(Clone)]
pub struct Exchange {
    pub connection: String,
    pub key: String,
    /// The recorded request body: a retry sends the same one.
    pub request_body: String,
    pub outcome: Result<Response, HttpError>,
    /// Served every time it matches (a paging loop), never used up.
    pub repeat: bool,
    /// A fault served once before the real exchange that follows it: that one answers only the
    /// very next request (a retry); any other request drops it, so it never answers out of turn.
    pub transient: bool,
}

pub struct Replayer {
    exchanges: Vec<Exchange>,
    played: Mutex<Played>,
    /// The host's response size cap, applied as the network path does.
    max_response_bytes: u64,
}

struct Played {
    done: Vec<bool>,
    /// The real exchange after a transient fault just served.
    retry: Option<usize>,
}

/// `GET /path?query`, the matching key of a request.
pub fn key(method: &str, url: &str) -> String {
    match Url::parse(url) {
        Ok(u) => match u.query() {
            Some(q) => format!("{method} {}?{q}", u.path()),
            None => format!("{method} {}", u.path()),
        },
        Err(_) => format!("{method} {url}"),
    }
}

impl Replayer {
    pub fn exchanges(cassette: &Cassette) -> Vec<Exchange> {
        cassette
            .interactions
            .iter()
            .map(|i| Exchange {
                connection: i.connection.clone(),
                key: key(&i.request.method, &i.request.url),
                request_body: body_text(&i.request.body.to_body())
                    .unwrap_or_default()
                    .to_owned(),
                outcome: i.outcome(),
                repeat: false,
                transient: false,
            })
            .collect()
    }

    pub fn new(exchanges: Vec<Exchange>, max_response_bytes: u64) -> Self {
        Self {
            played: Mutex::new(Played {
                done: vec![false; exchanges.len()],
                retry: None,
            }),
            exchanges,
            max_response_bytes,
        }
    }

    /// Exchanges not played yet.
    pub fn unplayed(&self) -> usize {
        self.played
            .lock()
            .map_or(0, |p| p.done.iter().filter(|p| !**p).count())
    }
}

impl HttpTap for Replayer {
    fn replay(&self, connection: &str, request: &Request) -> Option<Result<Response, HttpError>> {
        let wanted = key(method_name(request.method), &request.url);
        let mut played = self.played.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(next) = played.retry.take()
            && self.exchanges.get(next).is_some_and(|e| {
                e.key != wanted || body_text(&request.body).is_some_and(|b| b != e.request_body)
            })
        {
            played.done[next] = true;
        }
        let found = self
            .exchanges
            .iter()
            .enumerate()
            .find(|(i, e)| !played.done[*i] && e.connection == connection && e.key == wanted);
        let Some((i, exchange)) = found else {
            return Some(Err(HttpError::Transport(format!(
                "not in the cassette: {wanted}"
            ))));
        };
        if !exchange.repeat {
            played.done[i] = true;
        }
        if exchange.transient {
            played.retry = Some(i + 1);
        }
        Some(match &exchange.outcome {
            Ok(r) if r.body.as_bytes().len() as u64 > self.max_response_bytes => {
                Err(HttpError::TooLarge(self.max_response_bytes))
            }
            other => other.clone(),
        })
    }
}

/// A body's text, for mutations (a binary body is left alone).
pub fn body_text(body: &Body) -> Option<&str> {
    match body {
        Body::Text(t) => Some(t),
        Body::Binary(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::http::Method;

    fn exchange(key: &str, status: u16) -> Exchange {
        Exchange {
            connection: "c".into(),
            key: key.into(),
            request_body: String::new(),
            outcome: Ok(Response {
                status,
                headers: vec![],
                body: Body::Text(String::new()),
            }),
            repeat: false,
            transient: false,
        }
    }

    fn get(r: &Replayer, url: &str) -> Result<u16, String> {
        let request = Request {
            method: Method::Get,
            url: url.into(),
            headers: vec![],
            body: Body::Text(String::new()),
            timeout_ms: None,
        };
        r.replay("c", &request)
            .expect("a replayer always answers")
            .map(|r| r.status)
            .map_err(|e| match e {
                HttpError::Transport(m) => m,
                other => format!("{other:?}"),
            })
    }

    #[test]
    fn requests_match_in_order_by_method_path_and_query_on_any_host() {
        let r = Replayer::new(
            vec![
                exchange("GET /a?page=1", 201),
                exchange("GET /b", 202),
                exchange("GET /a?page=1", 203),
            ],
            1 << 20,
        );
        assert_eq!(get(&r, "http://127.0.0.1:9/a?page=1"), Ok(201));
        // Skips ahead past `/b`, which the provider no longer asks for.
        assert_eq!(get(&r, "https://bank.example/a?page=1"), Ok(203));
        assert_eq!(r.unplayed(), 1);
        assert_eq!(
            get(&r, "https://bank.example/a?page=2"),
            Err("not in the cassette: GET /a?page=2".to_owned())
        );
    }

    #[test]
    fn a_transient_faults_real_response_answers_only_a_retry() {
        let mut fault = exchange("GET /a", 503);
        fault.transient = true;
        let r = Replayer::new(vec![fault.clone(), exchange("GET /a", 200)], 1 << 20);
        assert_eq!(get(&r, "https://x.example/a"), Ok(503));
        assert_eq!(get(&r, "https://x.example/a"), Ok(200), "the retry");
        let r = Replayer::new(
            vec![fault, exchange("GET /a", 200), exchange("GET /b", 204)],
            1 << 20,
        );
        assert_eq!(get(&r, "https://x.example/a"), Ok(503));
        assert_eq!(get(&r, "https://x.example/b"), Ok(204));
        assert!(get(&r, "https://x.example/a").is_err(), "no longer a retry");
    }
}
