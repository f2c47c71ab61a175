//! The stub provider the refused test guests share: each guest exists for what its component
//! imports (or which contract it was built against), so every provider call but `info` just fails.
//!
//! The macro expands in the guest's own bindings module, after its `wit_bindgen::generate!`: the
//! names below resolve there, so one shell serves any contract version with these signatures
//! (0.1.0 and 0.2.0 alike).

/// Implements and exports the provider `$guest`: `info` returns `$info`; every other function
/// returns `Err($error)`. Both expressions are evaluated at each call, in the guest's scope, where
/// the contract's types and the provider interface's records are imported.
#[macro_export]
macro_rules! stub_provider {
    ($guest:ident, info: $info:expr, error: $error:expr $(,)?) => {
        use erp::bank_sync::types::*;
        use exports::erp::bank_sync::provider::{
            ConnectStart, Connection, Guest, ProviderInfo, SyncBatch, SyncRequest,
        };

        struct $guest;

        fn no() -> ProviderError {
            $error
        }

        impl Guest for $guest {
            fn info() -> ProviderInfo {
                $info
            }
            fn list_institutions(_: InstitutionFilter) -> Result<Vec<Institution>, ProviderError> {
                Err(no())
            }
            fn begin_connect(_: String, _: String) -> Result<ConnectStart, ProviderError> {
                Err(no())
            }
            fn complete_connect(_: String) -> Result<Connection, ProviderError> {
                Err(no())
            }
            fn list_accounts(_: Option<String>) -> Result<Vec<Account>, ProviderError> {
                Err(no())
            }
            fn sync(_: SyncRequest) -> Result<SyncBatch, ProviderError> {
                Err(no())
            }
            fn request_reauthorization(_: String, _: String) -> Result<String, ProviderError> {
                Err(no())
            }
            fn disconnect() -> Result<(), ProviderError> {
                Err(no())
            }
        }

        export!($guest);
    };
}
