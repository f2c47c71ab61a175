//! The wit-bindgen adapter: the WIT imports as [`Imports`], the WIT exports calling
//! [`Provider`]. The provider's logic already speaks the generated types, so calls pass straight
//! through. Compiled for wasm32 only (a wit-bindgen cdylib does not link natively).

use crate::bindings::provider::{
    ConnectStart, Connection, Guest, ProviderInfo, SyncBatch, SyncRequest,
};
use crate::bindings::types::{Account, Institution, InstitutionFilter, ProviderError};
use crate::bindings::{config, http, log, storage};
use crate::imports::{Imports, Storage};
use crate::provider::{self, Provider};
use chrono::{DateTime, Utc};
use std::time::Duration;

struct Component;
crate::bindings::export!(Component with_types_in crate::bindings);

/// The provider's imports: the WIT imports, and WASI for the clock, randomness and sleep.
struct WitImports;

/// The WIT `storage` import, scoped by the host to this connection.
impl Storage for WitImports {
    fn get(&self, key: &str) -> Result<Option<String>, storage::StorageError> {
        storage::get(key)
    }
    fn set(&self, key: &str, value: &str) -> Result<(), storage::StorageError> {
        storage::set(key, value)
    }
    fn delete(&self, key: &str) -> Result<(), storage::StorageError> {
        storage::delete(key)
    }
    fn list_keys(&self, prefix: &str) -> Result<Vec<String>, storage::StorageError> {
        storage::list_keys(prefix)
    }
    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&str>,
        new: Option<&str>,
    ) -> Result<bool, storage::StorageError> {
        storage::compare_and_swap(key, expected, new)
    }
}

impl Imports for WitImports {
    fn send(&self, request: &http::Request) -> Result<http::Response, http::HttpError> {
        http::send(request)
    }
    fn storage(&self) -> &dyn Storage {
        self
    }
    fn config(&self, key: &str) -> Option<String> {
        config::get(key)
    }
    fn log(&self, level: log::Level, message: &str) {
        log::write(level, message);
    }
    fn now(&self) -> DateTime<Utc> {
        // wasi:clocks/wall-clock; the host may fix it in tests.
        DateTime::<Utc>::from(std::time::SystemTime::now())
    }
    fn random_bytes(&self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        match getrandom::fill(&mut buf) {
            Ok(()) => buf,
            // An empty answer is refused by the caller with a typed error.
            Err(_) => Vec::new(),
        }
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

fn provider() -> Provider<'static> {
    Provider::new(&WitImports)
}

impl Guest for Component {
    fn info() -> ProviderInfo {
        provider::info()
    }

    fn list_institutions(filter: InstitutionFilter) -> Result<Vec<Institution>, ProviderError> {
        provider().list_institutions(&filter)
    }

    fn begin_connect(
        institution_id: String,
        redirect_uri: String,
    ) -> Result<ConnectStart, ProviderError> {
        provider().begin_connect(&institution_id, &redirect_uri)
    }

    fn complete_connect(callback_url: String) -> Result<Connection, ProviderError> {
        provider().complete_connect(&callback_url)
    }

    fn list_accounts(institution_id: Option<String>) -> Result<Vec<Account>, ProviderError> {
        provider().list_accounts(institution_id.as_deref())
    }

    fn sync(request: SyncRequest) -> Result<SyncBatch, ProviderError> {
        provider().sync(&request)
    }

    fn request_reauthorization(
        account_id: String,
        redirect_uri: String,
    ) -> Result<String, ProviderError> {
        provider().request_reauthorization(&account_id, &redirect_uri)
    }

    fn disconnect() -> Result<(), ProviderError> {
        provider().disconnect()
    }
}
