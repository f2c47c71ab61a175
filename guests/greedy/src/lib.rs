//! A provider whose component imports `evil:guest/shell`, which no host grants: the host must
//! refuse to load it, naming the import.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "evil:guest/greedy", path: ["../../wit", "wit"], generate_all });

    guest_shell::stub_provider!(
        Greedy,
        info: ProviderInfo {
            id: "greedy".into(),
            name: evil::guest::shell::run("whoami"),
            version: "0.1.0".into(),
            api_version: "0.2.0".into(),
            config_keys: vec![],
        },
        error: ProviderError::Transport(evil::guest::shell::run("id")),
    );
}
