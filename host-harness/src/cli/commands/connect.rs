//! `erp connect` (interactive, or headless in two steps `begin` and `finish`) and
//! `erp update-credentials`: the consent flow that makes or renews a link.

use std::path::Path;
use std::time::Duration;

use super::institutions::print_institution_choice;
use super::{amount_or_dash, load_providers};
use crate::cli::args::{CallbackArgs, ConnectCmd, ConnectStep};
use crate::cli::render::{Table, clean, count};
use crate::erp::connect::{self, CallbackMode, ConnectOutcome};
use crate::erp::errors::ErpError;
use crate::erp::settings::Settings;
use crate::erp::store::Db;

pub fn run(settings: &Settings, path: &Path, cmd: ConnectCmd) -> Result<i32, ErpError> {
    match cmd.step {
        Some(ConnectStep::Begin {
            institution,
            redirect_uri,
            link,
            provider,
        }) => {
            let provider = match (provider, link) {
                (Some(p), _) => Some(p),
                (None, Some(l)) => Some(Db::open_existing(path)?.link(l)?.provider),
                (None, None) => None,
            };
            let providers = load_providers(settings, path, provider.as_deref())?;
            let mut db = Db::open(path)?;
            let institution_id = match link {
                Some(l) => db.link(l)?.institution_id,
                None => connect::resolve_institution(&providers, &institution)?.id,
            };
            let url = connect::begin(&mut db, &providers, &institution_id, link, &redirect_uri)?;
            println!("{}", clean(&url));
            eprintln!(
                "Open the URL above, tick all the accounts you want (other banks' too), then run:"
            );
            eprintln!(
                "  erp connect finish --callback-url '<the address the browser was sent to>'"
            );
            Ok(0)
        }
        Some(ConnectStep::Finish {
            callback_url,
            allow_other_organisation,
            provider,
        }) => {
            let providers = load_providers(settings, path, provider.as_deref())?;
            let mut db = Db::open(path)?;
            let outcome =
                connect::finish(&mut db, &providers, &callback_url, allow_other_organisation)?;
            print_connected(&outcome);
            Ok(0)
        }
        None => {
            let providers = load_providers(settings, path, cmd.provider.as_deref())?;
            let query = cmd.institution.unwrap_or_default();
            let institution = connect::resolve_institution(&providers, &query)?;
            print_institution_choice(&institution);
            let mut db = Db::open(path)?;
            let outcome = connect::connect(
                &mut db,
                &providers,
                &institution.id,
                None,
                callback_mode(&cmd.callback),
                &mut print_consent_url,
            )?;
            print_connected(&outcome);
            Ok(0)
        }
    }
}

pub fn update_credentials(
    settings: &Settings,
    path: &Path,
    link: i64,
    allow_other_organisation: bool,
    callback: CallbackArgs,
) -> Result<i32, ErpError> {
    let mut db = Db::open_existing(path)?;
    let provider = db.link(link)?.provider;
    let providers = load_providers(settings, path, Some(&provider))?;
    let outcome = connect::update_credentials(
        &mut db,
        &providers,
        link,
        allow_other_organisation,
        callback_mode(&callback),
        &mut print_consent_url,
    )?;
    print_connected(&outcome);
    Ok(0)
}

fn callback_mode(c: &CallbackArgs) -> CallbackMode {
    CallbackMode::Loopback {
        port: c.redirect_port,
        timeout: Duration::from_secs(c.timeout_secs),
    }
}

fn print_consent_url(url: &str) {
    println!("Open this URL in your browser and tick ALL the accounts you want, other banks' too:");
    println!("  {}", clean(url));
}

pub fn print_connected(o: &ConnectOutcome) {
    println!(
        "Connected link {} to {} through {}{}.",
        o.link_id,
        clean(&o.institution.name),
        clean(&o.institution.provider_name),
        o.organization
            .as_deref()
            .map(|n| format!(" (organisation {})", clean(n)))
            .unwrap_or_default()
    );
    println!(
        "You authorised {} in all; the ERP keeps the {} at {}:",
        count(o.authorized_account_count, "account", "accounts"),
        o.accounts.len(),
        clean(&o.institution.name)
    );
    let mut t = Table::new(&["id", "reference", "currency", ">balance", "journal", "new"]);
    for (a, created) in &o.accounts {
        t.row(vec![
            a.id.to_string(),
            a.reference.clone(),
            a.currency.clone(),
            amount_or_dash(&a.balance, &a.currency),
            a.journal_code.clone(),
            if *created {
                "yes".into()
            } else {
                "kept".into()
            },
        ]);
    }
    print!("{}", t.render());
    println!("Next: `erp sync --link {}`.", o.link_id);
}
