//! A provider whose component imports `evil:guest/shell`, which no host grants: the host must
//! refuse to load it, naming the import.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "evil:guest/greedy", path: ["../../wit", "wit"], generate_all });

    use erp::bank_sync::types::*;
    use exports::erp::bank_sync::provider::{
        ConnectStart, Connection, Guest, ProviderInfo, SyncBatch, SyncRequest,
    };

    struct Greedy;

    fn no() -> ProviderError {
        ProviderError::Transport(evil::guest::shell::run("id"))
    }

    impl Guest for Greedy {
        fn info() -> ProviderInfo {
            ProviderInfo {
                id: "greedy".into(),
                name: evil::guest::shell::run("whoami"),
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

    export!(Greedy);
}
