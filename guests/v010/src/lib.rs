//! A provider built against the frozen `erp:bank-sync@0.1.0` contract (`wit/since_v0.1.0`):
//! hosts of 0.2.0 must refuse it with one line naming both versions.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "bank-provider", path: "../../wit/since_v0.1.0" });

    guest_shell::stub_provider!(
        V010,
        info: ProviderInfo {
            id: "v010".into(),
            name: "0.1.0 guest".into(),
            version: "0.1.0".into(),
            api_version: "0.1.0".into(),
            config_keys: vec![],
        },
        error: ProviderError::Transport("a 0.1.0 guest".into()),
    );
}
