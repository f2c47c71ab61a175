//! What the provider imports, as a trait: the WIT's http, storage, config and log, in the
//! generated types, plus the clock, randomness and sleep it takes from WASI. The component
//! implements it with the WIT imports (`component::WitImports`), native tests with fakes and the
//! bench with the ERP's own capabilities.

use crate::bindings::http::{Body, HttpError, Method, Request, Response};
use crate::bindings::log::Level;
use crate::bindings::storage::StorageError;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The WIT `storage` interface: the connection's key-value store.
pub trait Storage {
    /// Reads a stored value.
    fn get(&self, key: &str) -> Result<Option<String>, StorageError>;
    /// Writes a value, durable on return.
    fn set(&self, key: &str, value: &str) -> Result<(), StorageError>;
    /// Removes a value.
    fn delete(&self, key: &str) -> Result<(), StorageError>;
    /// Keys starting with `prefix`, sorted.
    fn list_keys(&self, prefix: &str) -> Result<Vec<String>, StorageError>;
    /// Replaces `key` by `new` (none removes it) only if it holds `expected` (none: absent);
    /// whether it did.
    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&str>,
        new: Option<&str>,
    ) -> Result<bool, StorageError>;
}

/// What the provider needs from its host.
pub trait Imports {
    /// Sends one request and waits for the whole response.
    fn send(&self, request: &Request) -> Result<Response, HttpError>;
    /// The connection's key-value store.
    fn storage(&self) -> &dyn Storage;
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
/// bench): keys by prefix, sorted, and the compare-and-swap that rotates single-use tokens. Clones
/// share one map, as the sessions of one connection share its store.
#[derive(Clone, Default)]
pub struct MemoryStorage {
    map: Arc<Mutex<BTreeMap<String, String>>>,
    /// What another process writes just before the next compare-and-swap, which then fails.
    interference: Arc<Mutex<Option<(String, String)>>>,
}

impl MemoryStorage {
    /// The stored values, to read or change directly.
    pub fn map(&self) -> MutexGuard<'_, BTreeMap<String, String>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Play a second process that writes `value` under `key` just before the next
    /// compare-and-swap, so that it fails as a lost race does.
    pub fn interfere_before_next_swap(&self, key: &str, value: &str) {
        *self.interference.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((key.to_owned(), value.to_owned()));
    }
}

impl Storage for MemoryStorage {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        Ok(self.map().get(key).cloned())
    }

    fn set(&self, key: &str, value: &str) -> Result<(), StorageError> {
        self.map().insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.map().remove(key);
        Ok(())
    }

    fn list_keys(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        Ok(self
            .map()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }

    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&str>,
        new: Option<&str>,
    ) -> Result<bool, StorageError> {
        let interference = self
            .interference
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let mut map = self.map();
        if let Some((k, v)) = interference {
            map.insert(k, v);
        }
        if map.get(key).map(String::as_str) != expected {
            return Ok(false);
        }
        match new {
            Some(v) => map.insert(key.to_owned(), v.to_owned()),
            None => map.remove(key),
        };
        Ok(true)
    }
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}
