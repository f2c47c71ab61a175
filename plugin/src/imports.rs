//! What the provider imports, as a trait: the WIT's http, storage, config and log, in the
//! generated types, plus the clock, randomness and sleep it takes from WASI. The component
//! implements it with the WIT imports (`component::WitImports`), native tests with fakes and the
//! bench with the ERP's own capabilities.

use crate::bindings::http::{Body, HttpError, Request, Response};
use crate::bindings::log::Level;
use crate::bindings::storage::StorageError;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::Duration;

/// What the provider needs from its host.
pub trait Imports {
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

impl Response {
    /// The first value of a header (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Body {
    /// `text` when the bytes are UTF-8 (Ponto's JSON and form bodies always are), else `binary`.
    pub fn from_bytes(bytes: Vec<u8>) -> Body {
        match String::from_utf8(bytes) {
            Ok(text) => Body::Text(text),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    }

    /// The body's bytes, whatever its case.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Body::Text(text) => text.as_bytes(),
            Body::Binary(bytes) => bytes,
        }
    }

    /// The body's bytes, without a copy.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Body::Text(text) => text.into_bytes(),
            Body::Binary(bytes) => bytes,
        }
    }
}

/// The WIT `storage` rules over a map in memory, for the provider run natively (tests and the
/// bench): keys by prefix, sorted, and the compare-and-swap that rotates single-use tokens.
pub trait MemoryStorage {
    /// Keys starting with `prefix`, sorted.
    fn list_keys(&self, prefix: &str) -> Vec<String>;
    /// Replaces `key` by `new` (none removes it) only if it holds `expected` (none: absent);
    /// whether it did.
    fn compare_and_swap(&mut self, key: &str, expected: Option<&str>, new: Option<&str>) -> bool;
}

impl MemoryStorage for BTreeMap<String, String> {
    fn list_keys(&self, prefix: &str) -> Vec<String> {
        self.keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }

    fn compare_and_swap(&mut self, key: &str, expected: Option<&str>, new: Option<&str>) -> bool {
        if self.get(key).map(String::as_str) != expected {
            return false;
        }
        match new {
            Some(v) => self.insert(key.to_owned(), v.to_owned()),
            None => self.remove(key),
        };
        true
    }
}
