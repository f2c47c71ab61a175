//! A provider whose component imports `wasi:filesystem` (it reads a file through std), which
//! no host grants: hosts must refuse to load it, naming the interface.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "bank-provider", path: "../../wit" });

    guest_shell::stub_provider!(
        Files,
        info: ProviderInfo {
            id: "files".into(),
            name: std::fs::read_to_string("/etc/hostname").unwrap_or_default(),
            version: "0.1.0".into(),
            api_version: "0.2.0".into(),
            config_keys: vec![],
        },
        error: ProviderError::Transport(std::fs::read_to_string("/etc/passwd").unwrap_or_default()),
    );
}
