//! A provider whose component imports `wasi:filesystem` (it reads a file through std), which
//! no host grants: hosts must refuse to load it, naming the interface.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "bank-provider", path: "../../wit" });

    use erp::bank_sync::types::*;
    use exports::erp::bank_sync::provider::{
        ConnectStart, Connection, Guest, ProviderInfo, SyncBatch, SyncRequest,
    };

    struct Files;

    fn no() -> ProviderError {
        ProviderError::Transport(std::fs::read_to_string("/etc/passwd").unwrap_or_default())
    }

    impl Guest for Files {
        fn info() -> ProviderInfo {
            ProviderInfo {
                id: "files".into(),
                name: std::fs::read_to_string("/etc/hostname").unwrap_or_default(),
                version: "0.1.0".into(),
                api_version: "0.2.0".into(),
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

    export!(Files);
}
