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
    pub outcome: Result<Response, HttpError>,
    /// Served every time it matches (a paging loop), never used up.
    pub repeat: bool,
}

pub struct Replayer {
    exchanges: Vec<Exchange>,
    played: Mutex<Vec<bool>>,
    /// The host's response size cap, applied as the network path does.
    max_response_bytes: u64,
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
                outcome: i.outcome(),
                repeat: false,
            })
            .collect()
    }

    pub fn new(exchanges: Vec<Exchange>, max_response_bytes: u64) -> Self {
        Self {
            played: Mutex::new(vec![false; exchanges.len()]),
            exchanges,
            max_response_bytes,
        }
    }

    /// Exchanges not played yet.
    pub fn unplayed(&self) -> usize {
        self.played
            .lock()
            .map_or(0, |p| p.iter().filter(|p| !**p).count())
    }
}

impl HttpTap for Replayer {
    fn replay(&self, connection: &str, request: &Request) -> Option<Result<Response, HttpError>> {
        let wanted = key(method_name(request.method), &request.url);
        let mut played = self.played.lock().unwrap_or_else(|p| p.into_inner());
        let found = self
            .exchanges
            .iter()
            .enumerate()
            .find(|(i, e)| !played[*i] && e.connection == connection && e.key == wanted);
        let Some((i, exchange)) = found else {
            return Some(Err(HttpError::Transport(format!(
                "not in the cassette: {wanted}"
            ))));
        };
        if !exchange.repeat {
            played[i] = true;
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
