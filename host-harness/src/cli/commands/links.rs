//! The verbs on an existing link: `erp auto-sync`, `erp reauthorize` (renew an account's
//! consent) and `erp disconnect`.

use std::path::Path;

use super::load_providers;
use crate::cli::args::OnOff;
use crate::cli::render::clean;
use crate::erp::errors::ErpError;
use crate::erp::names::LinkState;
use crate::erp::provider::ProviderFactory;
use crate::erp::settings::Settings;
use crate::erp::store::Db;

pub fn auto_sync(path: &Path, link: i64, state: OnOff) -> Result<i32, ErpError> {
    let mut db = Db::open_existing(path)?;
    let l = db.link(link)?;
    let on = state == OnOff::On;
    if on && l.state == LinkState::Disconnected {
        return Err(ErpError::Usage(format!(
            "link {link} is disconnected: reconnect it with `erp update-credentials --link {link}` first"
        )));
    }
    db.set_auto_sync(link, on)?;
    println!(
        "Link {link} ({}): automatic synchronisation {}.",
        clean(&l.institution_name),
        if on {
            "on (`erp sync --due` includes it)"
        } else {
            "off (only `erp sync --link` reaches it)"
        }
    );
    Ok(0)
}

pub fn reauthorize(
    settings: &Settings,
    path: &Path,
    account: &str,
    redirect_uri: &str,
) -> Result<i32, ErpError> {
    let db = Db::open_existing(path)?;
    let account = db.account(account)?;
    let link = db.link(account.link_id)?;
    let providers = load_providers(settings, path, Some(&link.provider))?;
    let mut provider = providers.session(&link.connection_id)?;
    provider.set_context(crate::erp::errors::Context {
        link: Some(link.id),
        account: Some(account.id),
        ..Default::default()
    });
    let url = provider.request_reauthorization(&account.provider_account_id, redirect_uri)?;
    println!("{}", clean(&url));
    eprintln!(
        "Open this link to renew the bank consent of {} ({}) at {}; then run `erp sync --account {}`.",
        clean(&account.reference),
        clean(providers.provider_name()),
        clean(&link.institution_name),
        account.id
    );
    Ok(0)
}

pub fn disconnect(
    settings: &Settings,
    path: &Path,
    link: i64,
    force: bool,
) -> Result<i32, ErpError> {
    let mut db = Db::open_existing(path)?;
    let l = db.link(link)?;
    if l.state == LinkState::Disconnected {
        println!("Link {link} is already disconnected.");
        return Ok(0);
    }
    let providers = load_providers(settings, path, Some(&l.provider))?;
    let mut provider = providers.session(&l.connection_id)?;
    provider.set_context(crate::erp::errors::Context {
        link: Some(link),
        account: None,
        ..Default::default()
    });
    match provider.disconnect() {
        Ok(()) => {}
        Err(e) if force => {
            eprintln!(
                "erp: warning: {}; marked disconnected anyway (--force)",
                clean(&e.to_string())
            )
        }
        Err(e) => return Err(e),
    }
    // The plugin's session ends first; then its stored tokens go with the link.
    drop(provider);
    db.disconnect_link(link, &providers.provider_id())?;
    println!(
        "Link {link} ({}) is disconnected; its journals and statements stay.",
        clean(&l.institution_name)
    );
    Ok(0)
}
