//! The capabilities the provider gets from its host, as a trait: the wasm adapter implements it
//! with the WIT imports, native tests with fakes.

use chrono::{DateTime, Utc};
use std::time::Duration;

/// HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
}

/// An outbound request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout_ms: Option<u32>,
}

/// A response, whatever its status. Header names are lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request got no response (http.wit `http-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    Denied(String),
    Timeout,
    TooLarge(u64),
    InvalidRequest(String),
    Transport(String),
}

/// Why the store failed (storage.wit `storage-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageError {
    QuotaExceeded,
    Unavailable(String),
}

/// Log severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// What the provider needs from its host.
pub trait Host {
    /// Sends one request and waits for the whole response.
    fn send(&self, request: &Request) -> Result<Response, HttpError>;
    /// Reads a stored value.
    fn storage_get(&self, key: &str) -> Result<Option<String>, StorageError>;
    /// Writes a value, durable on return.
    fn storage_set(&self, key: &str, value: &str) -> Result<(), StorageError>;
    /// Removes a value.
    fn storage_delete(&self, key: &str) -> Result<(), StorageError>;
    /// Keys starting with `prefix`, sorted.
    fn storage_list_keys(&self, prefix: &str) -> Result<Vec<String>, StorageError>;
    /// Replaces `key` by `new` only if it holds `expected`; whether it did.
    fn storage_compare_and_swap(
        &self,
        key: &str,
        expected: Option<&str>,
        new: Option<&str>,
    ) -> Result<bool, StorageError>;
    /// A configuration value.
    fn config(&self, key: &str) -> Option<String>;
    /// Writes one log line (never a secret).
    fn log(&self, level: Level, message: &str);
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
    /// `n` cryptographically random bytes.
    fn random_bytes(&self, n: usize) -> Vec<u8>;
    /// Waits (for retries and polling).
    fn sleep(&self, duration: Duration);
}
