//! Development tools around the ERP, kept out of the ERP crate so that it depends on no provider:
//! the demo ([`demo`]), the benchmark ([`bench`]), and the Ponto sandbox with its consent filler
//! (`ponto_sandbox`), all behind the `erp-dev` binary.

pub mod bench;
pub mod demo;
pub mod demo_env;

use std::path::{Path, PathBuf};

use host_harness::erp::errors::ErpError;
use host_harness::erp::settings::Settings;

/// The ERP's settings, running the Ponto component built in this repository unless the config
/// file or `ERP_PLUGIN_FILE` names another.
pub fn settings(config: Option<&Path>) -> Result<Settings, ErpError> {
    let mut s = Settings::load(config)?;
    s.plugin_path
        .get_or_insert_with(|| PathBuf::from(erp_components::PONTO_PROVIDER));
    Ok(s)
}
