//! `erp-dev demo`: the guide's whole story against an embedded Ponto sandbox, in a fresh database.

use std::path::Path;
use std::time::Instant;

use host_harness::cli::render::{clean, count};
use host_harness::erp::connect::{self, CATALOGUE_CONNECTION, CallbackMode};
use host_harness::erp::errors::ErpError;
use host_harness::erp::provider::{ComponentFactory, ProviderFactory};
use host_harness::erp::settings::Settings;
use host_harness::erp::store::Db;
use host_harness::erp::sync::{self, SyncOptions};
use host_harness::runtime::types::InstitutionFilter;

/// Installs the packaged Ponto component the way an operator does, through `erp plugin trust`
/// and `erp plugin install`: signed with a throwaway publisher key made for this demo, which
/// only this demo database trusts.
fn install_provider(db: &Path) -> anyhow::Result<()> {
    use host_harness::plugins::{artifact, signature};
    let dir = std::env::temp_dir().join(format!("erp-demo-publisher-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|source| ErpError::File {
        path: dir.clone(),
        doing: "",
        source,
    })?;
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ErpError::File {
            path,
            doing: "",
            source,
        }
    };
    let key = dir.join("demo-publisher.key");
    let (_, public) = signature::keygen(&key, "erp-dev demo publisher (throwaway)")
        .map_err(|e| anyhow::anyhow!(e.to_string()))?;
    let secret = signature::SecretKey::load(&key).map_err(|e| anyhow::anyhow!(e.to_string()))?;
    let packaged = std::fs::read(erp_components::PONTO_PROVIDER)
        .map_err(io(Path::new(erp_components::PONTO_PROVIDER)))?;
    let signed = artifact::sign_for_publish(&packaged, &secret)
        .map_err(|e| anyhow::anyhow!(e.to_string()))?;
    let artifact = dir.join("ponto_provider.wasm");
    std::fs::write(&artifact, signed).map_err(io(&artifact))?;
    step(
        0,
        "Install the provider plugin (signed by a throwaway demo publisher key)",
    );
    let erp = |args: &[&std::ffi::OsStr]| {
        let mut argv: Vec<&std::ffi::OsStr> = vec!["erp".as_ref(), "--db".as_ref(), db.as_os_str()];
        argv.extend_from_slice(args);
        host_harness::cli::run(clap::Parser::parse_from(argv))
    };
    erp(&["plugin".as_ref(), "trust".as_ref(), public.as_os_str()])?;
    erp(&[
        "plugin".as_ref(),
        "install".as_ref(),
        artifact.as_os_str(),
        "--yes".as_ref(),
    ])?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn step(n: u32, title: &str) {
    println!();
    println!("== {n}. {title}");
}

pub fn run(base: Settings, db: Option<&Path>, transactions: u64) -> anyhow::Result<i32> {
    let t0 = Instant::now();
    let env = crate::demo_env::start(base, db, transactions)?;
    println!(
        "Ponto sandbox on {} (embedded, seeded); database {}",
        env.sandbox.base_url(),
        env.db_path.display()
    );
    install_provider(&env.db_path)?;
    let host = ComponentFactory::installed(&env.settings, &env.db_path, None)?;
    println!(
        "Provider plugin {} {} loaded{}",
        host.runtime().manifest().name,
        host.runtime().manifest().version,
        if host.runtime().from_cache {
            " (from the compile cache)"
        } else {
            ""
        }
    );
    let mut db = Db::open(&env.db_path)?;

    step(
        1,
        "Accounting ‣ Configuration ‣ Add a Bank Account: search the institutions",
    );
    let institutions =
        host.session(CATALOGUE_CONNECTION)?
            .list_institutions(&InstitutionFilter {
                country: None,
                name_contains: None,
            })?;
    host_harness::cli::print_institutions(&institutions);

    step(
        2,
        "Connect: Ponto's consent page, ticking ALL accounts (other banks' too, as the guide says)",
    );
    let sandbox_accounts = env.sandbox.accounts();
    let (institution_id, _) = crate::demo_env::demo_institution(&sandbox_accounts)
        .ok_or_else(|| anyhow::anyhow!("the sandbox has no account"))?;
    let institution = institutions
        .iter()
        .find(|i| i.id == institution_id)
        .cloned()
        .ok_or_else(|| {
            anyhow::anyhow!(format!(
                "the sandbox's institution {institution_id} is not listed"
            ))
        })?;
    host_harness::cli::print_institution_choice(&institution);
    let outcome = connect::connect(
        &mut db,
        &host,
        &institution.id,
        None,
        CallbackMode::Filled(ponto_sandbox::consent::auto_consent),
        &mut |url| println!("Consent page: {}", clean(url)),
    )?;
    let mut others: Vec<&str> = sandbox_accounts
        .iter()
        .filter(|a| a.institution_id != institution.id)
        .map(|a| a.institution_name.as_str())
        .collect();
    others.dedup();
    println!(
        "Ticked {} at Ponto, {} of them at other institutions ({}).",
        count(sandbox_accounts.len(), "account", "accounts"),
        sandbox_accounts
            .iter()
            .filter(|a| a.institution_id != institution.id)
            .count(),
        clean(&others.join(", "))
    );

    step(
        3,
        "The accounts the ERP keeps: only the chosen institution's",
    );
    host_harness::cli::print_connected(&outcome);

    step(
        4,
        "Synchronise (as a person at the keyboard: fresh data is asked from the bank)",
    );
    let opts = SyncOptions {
        link: Some(outcome.link_id),
        customer_ip: Some("127.0.0.1".into()),
        max_lines: env.settings.max_lines,
        refresh_hours: env.settings.refresh_hours,
        ..SyncOptions::default()
    };
    let report = sync::run(&mut db, &host, &opts, &mut host_harness::cli::Bars::new())?;
    host_harness::cli::print_sync_report(&report);

    step(
        5,
        "Bank statements with their balances (the latest of each journal; lines of the first)",
    );
    let mut journals: Vec<i64> = db
        .accounts(Some(outcome.link_id))?
        .iter()
        .map(|a| a.journal_id)
        .collect();
    journals.dedup();
    for (i, journal_id) in journals.iter().enumerate() {
        let journal = db.journal(&journal_id.to_string())?;
        println!();
        println!(
            "Journal {} — {} ({} {}), {}",
            clean(&journal.code),
            clean(&journal.name),
            clean(journal.iban.as_deref().unwrap_or("-")),
            clean(&journal.currency),
            count(db.statements(*journal_id)?.len(), "statement", "statements")
        );
        host_harness::cli::print_statements(
            &db,
            *journal_id,
            i == 0,
            Some(if i == 0 { 3 } else { 5 }),
            false,
        )?;
    }

    step(
        6,
        "Status: consent reminders (15, 3 and 1 days before expiry) and warnings",
    );
    host_harness::cli::print_status(&db, false)?;
    let reminders = db
        .accounts(None)?
        .iter()
        .filter_map(|a| {
            a.consent_expires_at.as_deref().and_then(|e| {
                host_harness::erp::consent_reminder(e, host_harness::erp::clock::now())
            })
        })
        .count();
    if reminders == 0 {
        // The demo promises one consent warning: show what Ponto reports for every authorised
        // account, the other institutions' too.
        let mut provider = host.session(&db.link(outcome.link_id)?.connection_id)?;
        for a in provider.list_accounts(None)? {
            if let (Some(exp), Some(days)) = (&a.consent_expires_at, a.consent_days_left)
                && days <= 15
            {
                println!(
                    "  ! {} at another institution ({}): consent ends in {}, on {}: renew it at the Ponto website.",
                    clean(&a.reference),
                    clean(&a.institution_id),
                    count(days, "day", "days"),
                    clean(exp.get(..10).unwrap_or(exp))
                );
            }
        }
    }

    println!();
    println!(
        "Done in {:.1} s. Database: {} — try `erp --db {} status` or `erp --db {} statements --journal BNK1 --lines`.",
        t0.elapsed().as_secs_f64(),
        env.db_path.display(),
        env.db_path.display(),
        env.db_path.display()
    );
    Ok(0)
}
