//! `erp status`: links, accounts, consent reminders and the last sync's warnings.

use std::path::Path;

use serde_json::json;

use super::amount_or_dash;
use crate::cli::render::{self, Table, clean, opt, short_time};
use crate::erp::clock::now;
use crate::erp::errors::ErpError;
use crate::erp::names::{AccountStatus, LinkState};
use crate::erp::store::Db;

pub fn run(path: &Path, json: bool) -> Result<i32, ErpError> {
    let db = Db::open_existing(path)?;
    print_status(&db, json)?;
    Ok(0)
}

pub fn print_status(db: &Db, json: bool) -> Result<(), ErpError> {
    let links = db.links()?;
    let accounts = db.accounts(None)?;
    let warnings = db.latest_warnings()?;
    let at = now();
    let mut reminders = Vec::new();
    for a in &accounts {
        if let Some(exp) = &a.consent_expires_at
            && let Some(r) = crate::erp::consent_reminder(exp, at)
        {
            reminders.push((a, r));
        }
    }
    if json {
        let out = json!({
            "links": links,
            "accounts": accounts.iter().map(|a| json!({
                "account": a,
                "pending": db.pending(a.id).map(|p| p.len()).unwrap_or(0),
            })).collect::<Vec<_>>(),
            "reminders": reminders.iter().map(|(a, r)| json!({
                "account_id": a.id, "days_left": r.days_left, "stage": r.stage, "expires_at": r.expires_at,
                "message": r.message(&a.reference),
            })).collect::<Vec<_>>(),
            "warnings": warnings,
        });
        println!("{}", render::to_json(&out));
        return Ok(());
    }
    if links.is_empty() {
        println!(
            "No link yet: connect a bank with `erp connect --institution NAME` (or try `erp-dev demo`)."
        );
        return Ok(());
    }
    let mut t = Table::new(&[
        "link",
        "institution",
        "provider",
        "state",
        "consent until",
        "last refresh",
        "next refresh",
        "auto",
    ]);
    for l in &links {
        t.row(vec![
            l.id.to_string(),
            format!("{} ({})", l.institution_name, l.institution_status),
            l.provider_name.clone(),
            l.state.to_string(),
            l.consent_expires_at
                .as_deref()
                .map_or("-".into(), |s| s.chars().take(10).collect()),
            short_time(&l.last_refresh),
            short_time(&l.next_refresh),
            if l.auto_sync {
                "on".into()
            } else {
                "off".into()
            },
        ]);
    }
    println!("Links");
    print!("{}", t.render());
    for l in links.iter().filter(|l| l.message.is_some()) {
        println!("  link {}: {}", l.id, opt(&l.message));
    }
    for l in links
        .iter()
        .filter(|l| l.sync_failures > 0 && l.state != LinkState::Disconnected)
    {
        println!(
            "  link {}: {} failed sync(s) in a row; retried sooner, next try {} (15 min, doubling up to the normal interval)",
            l.id,
            l.sync_failures,
            short_time(&l.next_refresh)
        );
    }
    println!();
    println!("Accounts");
    let mut t = Table::new(&[
        "id",
        "link",
        "reference",
        "journal",
        ">balance",
        "consent until",
        ">pending",
        "last sync",
        "status",
    ]);
    for a in &accounts {
        t.row(vec![
            a.id.to_string(),
            a.link_id.to_string(),
            a.reference.clone(),
            a.journal_code.clone(),
            amount_or_dash(&a.balance, &a.currency),
            a.consent_expires_at
                .as_deref()
                .map_or("-".into(), |s| s.chars().take(10).collect()),
            db.pending(a.id)?.len().to_string(),
            short_time(&a.last_sync),
            a.status.to_string(),
        ]);
    }
    print!("{}", t.render());
    for a in accounts
        .iter()
        .filter(|a| a.status != AccountStatus::Ok && a.message.is_some())
    {
        println!("  account {}: {}", a.id, opt(&a.message));
    }
    if !reminders.is_empty() {
        println!();
        println!("Consent reminders");
        for (a, r) in &reminders {
            println!(
                "  ! account {}: {}",
                a.id,
                clean(
                    &r.message(&a.reference)
                        .replace("--account ...", &format!("--account {}", a.id))
                )
            );
        }
    }
    if !warnings.is_empty() {
        println!();
        println!("Warnings of the last sync");
        for w in &warnings {
            println!(
                "  account {} [{}]: {}",
                w.online_account_id,
                clean(&w.kind),
                clean(&w.message)
            );
        }
    }
    Ok(())
}
