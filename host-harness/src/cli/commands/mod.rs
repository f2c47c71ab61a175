//! The verbs of the `erp` command line, one module per verb or group of verbs: each runs over
//! [`crate::erp`] and prints what came of it.

pub mod accounts;
pub mod connect;
pub mod institutions;
pub mod links;
pub mod plugin;
pub mod statements;
pub mod status;
pub mod sync;

use std::path::Path;

use crate::cli::render;
use crate::erp::errors::ErpError;
use crate::erp::provider::{ComponentFactory, ProviderFactory};
use crate::erp::settings::Settings;

/// The installed provider `provider` (or the only one), with a warning for each setting it does
/// not read and for a deprecated settings form.
fn load_providers(
    settings: &Settings,
    db: &Path,
    provider: Option<&str>,
) -> Result<ComponentFactory, ErpError> {
    let providers = ComponentFactory::installed(settings, db, provider)?;
    if let Some(note) = &providers.settings_note {
        eprintln!("erp: note: {}", render::clean(note));
    }
    let id = providers.provider_id();
    for key in providers.unknown_config_keys()? {
        eprintln!(
            "erp: warning: {} reads no setting `{}`: check its spelling in [provider.{}] of the config file",
            render::clean(providers.provider_name()),
            render::clean(&key),
            render::clean(&id)
        );
    }
    Ok(providers)
}

/// An optional amount for people, `-` when absent.
fn amount_or_dash(amount: &Option<String>, currency: &str) -> String {
    amount
        .as_deref()
        .map_or_else(|| "-".into(), |a| crate::erp::money::display(a, currency))
}
