//! `erp accounts` and `erp fetch-accounts`: the online accounts and their journals.

use std::path::Path;

use super::{amount_or_dash, load_providers};
use crate::cli::render::{self, Table, clean, count, opt, short_time};
use crate::erp::errors::ErpError;
use crate::erp::provider::ProviderFactory;
use crate::erp::settings::Settings;
use crate::erp::store::{Db, OnlineAccount};

pub fn list(path: &Path, json: bool) -> Result<i32, ErpError> {
    let db = Db::open_existing(path)?;
    print_accounts(&db, json)?;
    Ok(0)
}

pub fn fetch(settings: &Settings, path: &Path, link: i64) -> Result<i32, ErpError> {
    let mut db = Db::open_existing(path)?;
    let link = db.link(link)?;
    let providers = load_providers(settings, path, Some(&link.provider))?;
    let mut provider = providers.session(&link.connection_id)?;
    provider.set_context(crate::erp::errors::Context {
        link: Some(link.id),
        account: None,
        ..Default::default()
    });
    let accounts = provider.list_accounts(Some(&link.institution_id))?;
    let merged = db.merge_accounts(link.id, &accounts)?;
    let added = merged.iter().filter(|(_, created)| *created).count();
    println!(
        "Link {} ({}): {} authorised at the institution, {added} new.",
        link.id,
        clean(&link.institution_name),
        count(accounts.len(), "account", "accounts")
    );
    print_accounts_of(&db, Some(link.id))?;
    println!(
        "An account missing here was not authorised: run `erp update-credentials --link {}` and tick all accounts, other banks' too.",
        link.id
    );
    Ok(0)
}

fn accounts_table(accounts: &[OnlineAccount], db: &Db) -> Result<Table, ErpError> {
    let links = db.links()?;
    let mut t = Table::new(&[
        "id",
        "link",
        "institution",
        "reference",
        "currency",
        ">balance",
        "at",
        "journal",
        "last sync",
        "status",
    ]);
    for a in accounts {
        let inst = links
            .iter()
            .find(|l| l.id == a.link_id)
            .map_or_else(|| a.institution_id.clone(), |l| l.institution_name.clone());
        t.row(vec![
            a.id.to_string(),
            a.link_id.to_string(),
            inst,
            a.reference.clone(),
            a.currency.clone(),
            amount_or_dash(&a.balance, &a.currency),
            opt(&a.balance_date),
            a.journal_code.clone(),
            short_time(&a.last_sync),
            a.status.to_string(),
        ]);
    }
    Ok(t)
}

fn print_accounts_of(db: &Db, link: Option<i64>) -> Result<(), ErpError> {
    let accounts = db.accounts(link)?;
    print!("{}", accounts_table(&accounts, db)?.render());
    Ok(())
}

pub fn print_accounts(db: &Db, json: bool) -> Result<(), ErpError> {
    let accounts = db.accounts(None)?;
    if json {
        println!("{}", render::to_json(&accounts));
        return Ok(());
    }
    if accounts.is_empty() {
        println!("No online account yet: connect a bank with `erp connect --institution NAME`.");
        return Ok(());
    }
    print!("{}", accounts_table(&accounts, db)?.render());
    Ok(())
}
