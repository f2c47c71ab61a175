//! A provider built against the frozen `erp:bank-sync@0.1.0` contract (`wit/since_v0.1.0`):
//! hosts of 0.2.0 must refuse it with one line naming both versions.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "bank-provider", path: "../../wit/since_v0.1.0" });

    use erp::bank_sync::types::*;
    use exports::erp::bank_sync::provider::{
        ConnectStart, Connection, Guest, ProviderInfo, SyncBatch, SyncRequest,
    };

    struct V010;

    fn no() -> ProviderError {
        ProviderError::Transport("a 0.1.0 guest".into())
    }

    impl Guest for V010 {
        fn info() -> ProviderInfo {
            ProviderInfo {
                id: "v010".into(),
                name: "0.1.0 guest".into(),
                version: "0.1.0".into(),
                api_version: "0.1.0".into(),
                config_keys: vec![],
            }
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

    export!(V010);
}
