//! Development tools around the ERP, kept out of the ERP crate so that it depends on no provider:
//! the demo ([`demo`]), the benchmark ([`bench`]), and the Ponto sandbox with its consent filler
//! (`ponto_sandbox`), all behind the `erp-dev` binary.

pub mod bench;
pub mod demo;
pub mod demo_env;

use std::path::{Path, PathBuf};

use host_harness::erp::settings::Settings;

/// The ERP's settings, running the Ponto component built in this repository (packaged,
/// unsigned) directly from its file, granted what its manifest asks unless the config file's
/// `[host] granted-origins` says otherwise. Development only: the `erp` binary runs installed
/// providers.
pub fn settings(config: Option<&Path>) -> anyhow::Result<Settings> {
    Ok(with_ponto(Settings::load(config)?))
}

/// `base` set to run the Ponto component built in this repository (see [`settings`]).
pub fn with_ponto(mut base: Settings) -> Settings {
    let path = PathBuf::from(erp_components::PONTO_PROVIDER);
    if base.granted_origins.is_empty() {
        let manifest = host_harness::runtime::Manifest::path_for(&path);
        base.granted_origins = host_harness::runtime::Manifest::load(&manifest)
            .and_then(|m| {
                m.requested_origins().map_err(|message| {
                    host_harness::runtime::manifest::ManifestError::Invalid {
                        path: manifest.clone(),
                        message,
                    }
                })
            })
            .unwrap_or_default();
    }
    base.plugin_path = Some(path);
    base
}
