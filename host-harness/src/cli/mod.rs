//! The `erp` command line: verbs an accountant recognises from Odoo (connect, fetch accounts,
//! update credentials, sync, statements, status), each a thin shell over [`crate::erp`].
//!
//! Output goes to stdout; every error is one line on stderr with a non-zero exit (2 bad usage
//! or config, 3 another process holds the link's sync lock, 1 anything else).

pub mod check;
pub mod plugin;
pub mod render;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{Datelike, NaiveDate};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::erp::clock::now;
use crate::erp::connect::{self, CATALOGUE_CONNECTION, CallbackMode, ConnectOutcome};
use crate::erp::errors::ErpError;
use crate::erp::names::{AccountStatus, LinkState, institution_status_name};
use crate::erp::provider::{PluginHost, ProviderHost};
use crate::erp::settings::Settings;
use crate::erp::store::{Db, OnlineAccount};
use crate::erp::sync::{self, AccountOutcome, Observer, SyncOptions, SyncReport};
use crate::runtime::types::InstitutionFilter;
use render::{Table, clean, count, opt, short_time};

#[derive(Parser, Debug)]
#[command(
    name = "erp",
    version,
    about = "A small ERP that synchronises bank statements through provider plugins",
    long_about = "A small ERP that synchronises bank statements through WebAssembly provider plugins, installed with `erp plugin install`.\n\nTry `erp-dev demo` (development tools), which runs everything against an embedded sandbox."
)]
pub struct Cli {
    /// The ERP database (SQLite). Default ./erp.sqlite (the demo: a fresh temporary file).
    #[arg(long, global = true, env = "ERP_DB")]
    pub db: Option<PathBuf>,
    /// Provider and host settings (TOML); the environment variables each provider's manifest
    /// declares override it (`erp plugin list` shows the providers).
    #[arg(long, global = true, env = "ERP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON instead of tables (read verbs).
    #[arg(long, global = true)]
    pub json: bool,
    /// Record every HTTP exchange of the plugin into this cassette (secrets replaced; see
    /// "Testing a provider with the harness" in the README).
    #[arg(long, global = true, env = "ERP_RECORD", value_name = "CASSETTE")]
    pub record: Option<PathBuf>,
    /// With --record: also replace names, IBANs and free text consistently.
    #[arg(long, global = true, requires = "record")]
    pub pseudonymise: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Search the institutions the provider can connect to.
    Institutions {
        /// The installed provider to ask (default: the only one; see `erp plugin list`).
        #[arg(long)]
        provider: Option<String>,
        /// ISO 3166 country code (BE, NL, FR ...).
        #[arg(long)]
        country: Option<String>,
        /// Part of the institution's name.
        #[arg(long)]
        search: Option<String>,
    },
    /// Add a bank account: connect to an institution through the provider's consent page.
    Connect(ConnectCmd),
    /// List the online accounts and their journals.
    Accounts,
    /// Add accounts authorised since the link was made (the guide's "Fetch Accounts").
    FetchAccounts {
        /// The link (see `erp status`).
        #[arg(long)]
        link: i64,
    },
    /// Run the consent flow again on an existing link; account history is kept.
    UpdateCredentials {
        #[arg(long)]
        link: i64,
        /// Accept a consent given by another organisation than the link's (re-link it).
        #[arg(long)]
        allow_other_organisation: bool,
        #[command(flatten)]
        callback: CallbackArgs,
    },
    /// Fetch new bank statement lines.
    Sync {
        /// Only this link.
        #[arg(long)]
        link: Option<i64>,
        /// Only this online account (ERP id or provider id).
        #[arg(long)]
        account: Option<String>,
        /// Only links whose next refresh (every 12 h by default) has passed; for cron.
        #[arg(long)]
        due: bool,
        /// Read back at least to this date (YYYY-MM-DD), to recover missing transactions.
        #[arg(long, value_parser = parse_date)]
        since: Option<NaiveDate>,
        /// The user's IP address: the provider then asks the bank for fresh data (PSD2 allows
        /// unattended reads only a few times a day).
        #[arg(long)]
        customer_ip: Option<String>,
        /// Links synchronised at once (each on its own thread, database connection and plugin
        /// instance). Default: one per CPU, at most 8. The summary keeps the links' order.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=8))]
        jobs: Option<u16>,
    },
    /// Show a journal's bank statements with their balances.
    Statements {
        /// Journal id or code (see `erp accounts`).
        #[arg(long)]
        journal: String,
        /// Also list each statement's lines.
        #[arg(long)]
        lines: bool,
    },
    /// Links, accounts, consent reminders and the last sync's warnings.
    Status,
    /// Get the link where an account's bank consent is renewed.
    Reauthorize {
        /// ERP id or provider id of the account.
        #[arg(long)]
        account: String,
        /// Where the provider sends the user back afterwards.
        #[arg(long, default_value = "http://127.0.0.1:8765/reauthorized")]
        redirect_uri: String,
    },
    /// Turn a link's scheduled synchronisation (`erp sync --due`) on or off, as Odoo's
    /// "Automatic synchronization" (off for a bank that asks for a second factor at every sync).
    AutoSync {
        #[arg(long)]
        link: i64,
        #[arg(value_enum)]
        state: OnOff,
    },
    /// Revoke a link at the provider; its journals and statements stay.
    Disconnect {
        #[arg(long)]
        link: i64,
        /// Mark the link disconnected even when the provider cannot be reached.
        #[arg(long)]
        force: bool,
    },
    /// Provider plugins: keygen, trust, publish, install, list, upgrade, remove, inspect, check.
    Plugin {
        #[command(subcommand)]
        command: plugin::PluginCmd,
    },
}

/// `on` or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ConnectCmd {
    /// Institution id or name (see `erp institutions`).
    #[arg(long, required = true)]
    pub institution: Option<String>,
    /// The installed provider to connect through (default: the only one).
    #[arg(long)]
    pub provider: Option<String>,
    #[command(flatten)]
    pub callback: CallbackArgs,
    #[command(subcommand)]
    pub step: Option<ConnectStep>,
}

#[derive(Args, Debug)]
pub struct CallbackArgs {
    /// Port of the loopback callback listener (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub redirect_port: u16,
    /// How long to wait for the browser, in seconds (at most a day).
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout_secs: u64,
}

#[derive(Subcommand, Debug)]
pub enum ConnectStep {
    /// Headless step 1: print the consent URL for an institution.
    Begin {
        #[arg(long)]
        institution: String,
        /// Where the provider sends the browser back.
        #[arg(long)]
        redirect_uri: String,
        /// Update the credentials of this existing link instead of making a new one.
        #[arg(long)]
        link: Option<i64>,
        /// The installed provider (default: the link's, or the only one).
        #[arg(long)]
        provider: Option<String>,
    },
    /// Headless step 2: finish with the full URL the browser was sent back to.
    Finish {
        #[arg(long)]
        callback_url: String,
        /// When updating a link: accept another organisation than the link's.
        #[arg(long)]
        allow_other_organisation: bool,
        /// The installed provider the attempt was begun with (default: the only one).
        #[arg(long)]
        provider: Option<String>,
    },
}

/// A day written YYYY-MM-DD, years 0001 to 9999 (what the provider accepts: no sign, no
/// five-digit year).
fn parse_date(s: &str) -> Result<NaiveDate, String> {
    let shaped = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    shaped
        .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
        .filter(|d| d.year() >= 1)
        .ok_or_else(|| format!("`{s}` is not a date like 2026-01-31"))
}

/// Run the CLI; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version; and the help a bare `erp` or `erp plugin` gets.
        Err(e)
            if !e.use_stderr()
                || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            e.exit()
        }
        Err(e) => {
            // Bad usage is one line too, as every other error: clap's message and tips, without
            // its usage block.
            let text = e.to_string();
            let mut said = String::new();
            for l in text.lines().map(str::trim).filter(|l| {
                !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information")
            }) {
                if !said.is_empty() {
                    said.push_str(if said.ends_with(':') { " " } else { "; " });
                }
                said.push_str(l);
            }
            eprintln!(
                "erp: {}; see `erp --help`",
                render::clean(said.trim_start_matches("error: "))
            );
            return 2;
        }
    };
    init_tracing();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("erp: {}", clean(&e.to_string()));
            e.exit_code()
        }
    }
}

pub fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // Plugin logs and HTTP audit lines go to stderr, only when asked for (RUST_LOG=info).
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "error".into());
    // Never ureq's trace level, whatever RUST_LOG says: it prints Location headers in full (an
    // authorization code) and raw request bytes (bearer tokens, client credentials).
    let no_wire_dumps = tracing_subscriber::filter::filter_fn(|m| {
        !(*m.level() == tracing::Level::TRACE && m.target().starts_with("ureq"))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .finish()
        .with(no_wire_dumps)
        .try_init();
}

pub fn db_path(cli_db: &Option<PathBuf>) -> PathBuf {
    cli_db
        .clone()
        .unwrap_or_else(|| PathBuf::from("erp.sqlite"))
}

/// The installed provider `provider` (or the only one), with a warning for each setting it does
/// not read and for a deprecated settings form.
fn load_host(
    settings: &Settings,
    db: &Path,
    provider: Option<&str>,
) -> Result<PluginHost, ErpError> {
    let host = PluginHost::installed(settings, db, provider)?;
    if let Some(note) = &host.settings_note {
        eprintln!("erp: note: {}", render::clean(note));
    }
    let id = host.provider_id();
    for key in host.unknown_config_keys()? {
        eprintln!(
            "erp: warning: {} reads no setting `{}`: check its spelling in [provider.{}] of the config file",
            render::clean(host.provider_name()),
            render::clean(&key),
            render::clean(&id)
        );
    }
    Ok(host)
}

pub fn run(cli: Cli) -> Result<i32, ErpError> {
    let path = db_path(&cli.db);
    // A command that fails leaves no database or key file it created behind.
    let created = crate::erp::store::NewFiles::note(&path);
    if let Some(cassette) = &cli.record {
        crate::cassette::record::start(cassette, cli.pseudonymise);
    }
    let result = run_command(cli, &path);
    // The cassette is written whatever happened: a failed session is worth replaying too.
    if let Err(e) = crate::cassette::record::finish() {
        eprintln!("erp: cannot write the cassette: {e}");
    }
    if result.is_err() {
        created.remove_unused();
    }
    result
}

fn run_command(cli: Cli, path: &Path) -> Result<i32, ErpError> {
    let json = cli.json;
    let path = path.to_owned();
    match cli.command {
        Command::Plugin { command } => plugin::run(command, cli.config.as_deref(), &path, json),
        Command::Accounts => {
            let db = Db::open_existing(&path)?;
            print_accounts(&db, json)?;
            Ok(0)
        }
        Command::Statements { journal, lines } => {
            let db = Db::open_existing(&path)?;
            let journal = db.journal(&journal)?;
            print_statements(&db, journal.id, lines, None, json)?;
            Ok(0)
        }
        Command::Status => {
            let db = Db::open_existing(&path)?;
            print_status(&db, json)?;
            Ok(0)
        }
        Command::AutoSync { link, state } => {
            let mut db = Db::open_existing(&path)?;
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
        command => {
            let settings = Settings::load(cli.config.as_deref())?;
            run_with_plugin(command, &settings, &path, json)
        }
    }
}

fn run_with_plugin(
    command: Command,
    settings: &Settings,
    path: &Path,
    json: bool,
) -> Result<i32, ErpError> {
    match command {
        Command::Institutions {
            provider,
            country,
            search,
        } => {
            let host = load_host(settings, path, provider.as_deref())?;
            let mut provider = host.session(CATALOGUE_CONNECTION)?;
            let list = provider.list_institutions(&InstitutionFilter {
                country: country.map(|c| c.to_ascii_uppercase()),
                name_contains: search,
            })?;
            if json {
                println!(
                    "{}",
                    render::to_json(
                        &list
                            .iter()
                            .map(render::institution_json)
                            .collect::<Vec<_>>()
                    )
                );
            } else {
                print_institutions(&list);
            }
            Ok(0)
        }
        Command::Connect(cmd) => match cmd.step {
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
                let host = load_host(settings, path, provider.as_deref())?;
                let mut db = Db::open(path)?;
                let institution_id = match link {
                    Some(l) => db.link(l)?.institution_id,
                    None => connect::resolve_institution(&host, &institution)?.id,
                };
                let url = connect::begin(&mut db, &host, &institution_id, link, &redirect_uri)?;
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
                let host = load_host(settings, path, provider.as_deref())?;
                let mut db = Db::open(path)?;
                let outcome =
                    connect::finish(&mut db, &host, &callback_url, allow_other_organisation)?;
                print_connected(&outcome);
                Ok(0)
            }
            None => {
                let host = load_host(settings, path, cmd.provider.as_deref())?;
                let query = cmd.institution.unwrap_or_default();
                let institution = connect::resolve_institution(&host, &query)?;
                print_institution_choice(&institution);
                let mut db = Db::open(path)?;
                let outcome = connect::connect(
                    &mut db,
                    &host,
                    &institution.id,
                    None,
                    callback_mode(&cmd.callback),
                    &mut print_consent_url,
                )?;
                print_connected(&outcome);
                Ok(0)
            }
        },
        Command::FetchAccounts { link } => {
            let mut db = Db::open_existing(path)?;
            let link = db.link(link)?;
            let host = load_host(settings, path, Some(&link.provider))?;
            let mut provider = host.session(&link.connection_id)?;
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
        Command::UpdateCredentials {
            link,
            allow_other_organisation,
            callback,
        } => {
            let mut db = Db::open_existing(path)?;
            let provider = db.link(link)?.provider;
            let host = load_host(settings, path, Some(&provider))?;
            let outcome = connect::update_credentials(
                &mut db,
                &host,
                link,
                allow_other_organisation,
                callback_mode(&callback),
                &mut print_consent_url,
            )?;
            print_connected(&outcome);
            Ok(0)
        }
        Command::Sync {
            link,
            account,
            due,
            since,
            customer_ip,
            jobs,
        } => {
            let mut db = Db::open_existing(path)?;
            let opts = SyncOptions {
                link,
                account,
                due,
                since,
                customer_ip,
                max_lines: settings.max_lines,
                refresh_hours: settings.refresh_hours,
            };
            // Check the arguments before loading anything.
            let plan = sync::plan(&db, &opts)?;
            if plan.is_empty() {
                println!(
                    "{}",
                    if due {
                        "No link is due for a refresh."
                    } else {
                        "No link to synchronise: connect a bank with `erp connect`."
                    }
                );
                return Ok(0);
            }
            let mut providers: Vec<&str> = plan.iter().map(|(l, _)| l.provider.as_str()).collect();
            providers.sort_unstable();
            providers.dedup();
            if let [one] = providers[..] {
                let host = load_host(settings, path, Some(one))?;
                let jobs = jobs.map_or_else(sync::default_jobs, usize::from);
                let report = sync::run_jobs(&mut db, &host, &opts, jobs, &mut Bars::new())?;
                return finish_sync(report, json);
            }
            // Links of several providers: each link with its provider's plugin, one by one.
            let mut hosts = std::collections::BTreeMap::new();
            let mut code = 0;
            for (link, _) in &plan {
                if !hosts.contains_key(&link.provider) {
                    hosts.insert(
                        link.provider.clone(),
                        load_host(settings, path, Some(&link.provider))?,
                    );
                }
                let one = SyncOptions {
                    link: Some(link.id),
                    due: false,
                    ..opts.clone()
                };
                let report = sync::run(&mut db, &hosts[&link.provider], &one, &mut Bars::new())?;
                code = code.max(finish_sync(report, json)?);
            }
            Ok(code)
        }
        Command::Reauthorize {
            account,
            redirect_uri,
        } => {
            let db = Db::open_existing(path)?;
            let account = db.account(&account)?;
            let link = db.link(account.link_id)?;
            let host = load_host(settings, path, Some(&link.provider))?;
            let mut provider = host.session(&link.connection_id)?;
            provider.set_context(crate::erp::errors::Context {
                link: Some(link.id),
                account: Some(account.id),
                ..Default::default()
            });
            let url =
                provider.request_reauthorization(&account.provider_account_id, &redirect_uri)?;
            println!("{}", clean(&url));
            eprintln!(
                "Open this link to renew the bank consent of {} ({}) at {}; then run `erp sync --account {}`.",
                clean(&account.reference),
                clean(host.provider_name()),
                clean(&link.institution_name),
                account.id
            );
            Ok(0)
        }
        Command::Disconnect { link, force } => {
            let mut db = Db::open_existing(path)?;
            let l = db.link(link)?;
            if l.state == LinkState::Disconnected {
                println!("Link {link} is already disconnected.");
                return Ok(0);
            }
            let host = load_host(settings, path, Some(&l.provider))?;
            let mut provider = host.session(&l.connection_id)?;
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
            db.disconnect_link(link, &host.provider_id())?;
            println!(
                "Link {link} ({}) is disconnected; its journals and statements stay.",
                clean(&l.institution_name)
            );
            Ok(0)
        }
        _ => unreachable!("handled in run()"),
    }
}

/// Prints a sync report; the exit code: any account in error or link skipped (locked) is
/// non-zero, after the summary.
fn finish_sync(report: SyncReport, json: bool) -> Result<i32, ErpError> {
    if report.accounts.is_empty()
        && report.skipped_links.len() == 1
        && let Some((link, pid, since)) = report.locked.clone()
    {
        return Err(ErpError::Locked { link, pid, since });
    }
    if json {
        println!("{}", render::to_json(&report));
    } else {
        print_sync_report(&report);
    }
    Ok(if report.locked.is_some() && report.accounts.is_empty() {
        3
    } else if report.failed() {
        1
    } else {
        0
    })
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

pub fn print_institution_choice(i: &crate::runtime::types::Institution) {
    println!(
        "Institution: {} ({}, {}) — third-party provider: {}",
        clean(&i.name),
        clean(i.country.as_deref().unwrap_or("international")),
        institution_status_name(i.status),
        clean(&i.provider_name)
    );
    use crate::runtime::types::InstitutionStatus as S;
    match i.status {
        S::Stable => {}
        S::Beta | S::Experimental => println!(
            "  Note: {} serves {} in {}: errors are expected; if you meet some, contact {} directly.",
            clean(&i.provider_name),
            clean(&i.name),
            institution_status_name(i.status),
            clean(&i.provider_name)
        ),
        // No claim either way: say so, without warning of errors nobody announced.
        S::Unknown => println!(
            "  Note: {} does not say how dependable its connection to {} is.",
            clean(&i.provider_name),
            clean(&i.name)
        ),
    }
    if let Some(m) = &i.maintenance {
        println!(
            "  Note: maintenance ({}) {} – {}: data may be stale.",
            clean(&m.kind),
            opt(&m.starts_at),
            opt(&m.ends_at)
        );
    }
}

pub fn print_institutions(list: &[crate::runtime::types::Institution]) {
    let mut t = Table::new(&["id", "name", "country", "status", "time zone", "provider"]);
    for i in list {
        let mut status = institution_status_name(i.status).to_owned();
        if i.deprecated {
            status.push_str(", deprecated");
        }
        if i.maintenance.is_some() {
            status.push_str(", maintenance");
        }
        t.row(vec![
            i.id.clone(),
            i.name.clone(),
            i.country.clone().unwrap_or_else(|| "intl".into()),
            status,
            i.time_zone.clone(),
            i.provider_name.clone(),
        ]);
    }
    print!("{}", t.render());
    println!("{}.", count(list.len(), "institution", "institutions"));
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

/// Print a journal's statements; `last` keeps only the most recent ones.
pub fn print_statements(
    db: &Db,
    journal_id: i64,
    lines: bool,
    last: Option<usize>,
    json: bool,
) -> Result<(), ErpError> {
    let mut statements = db.statements(journal_id)?;
    if let Some(n) = last {
        let skip = statements.len().saturating_sub(n);
        statements.drain(..skip);
    }
    if json {
        println!("{}", render::to_json(&statements));
        return Ok(());
    }
    if statements.is_empty() {
        println!("No statement in this journal yet: run `erp sync`.");
        return Ok(());
    }
    let mut t = Table::new(&[
        "statement",
        "from",
        "to",
        ">start",
        ">lines",
        ">total",
        ">end",
        "check",
    ]);
    // One journal holds one currency; its lines say which.
    let currency = statements
        .iter()
        .find_map(|s| s.lines.first().map(|l| l.currency.clone()))
        .unwrap_or_default();
    let money = |amount: &str| crate::erp::money::display(amount, &currency);
    for s in &statements {
        t.row(vec![
            s.name.clone(),
            s.date_from.clone(),
            s.date_to.clone(),
            money(&s.balance_start),
            s.lines.len().to_string(),
            money(&s.lines_total),
            money(&s.balance_end),
            if crate::erp::money::parse(&s.difference).is_some_and(|d| d.is_zero()) {
                "ok".into()
            } else {
                format!("gap {}", s.difference)
            },
        ]);
    }
    print!("{}", t.render());
    if lines {
        for s in &statements {
            println!();
            println!(
                "{}  ({} → {}, start {}, end {})",
                s.name,
                s.date_from,
                s.date_to,
                money(&s.balance_start),
                money(&s.balance_end)
            );
            let mut t = Table::new(&["date", ">amount", "cur", "partner", "reference"]);
            for l in &s.lines {
                t.row(vec![
                    l.booking_date.clone(),
                    crate::erp::money::display(&l.amount, &l.currency),
                    l.currency.clone(),
                    opt(&l.partner_name),
                    l.payment_reference.chars().take(48).collect(),
                ]);
            }
            print!("{}", t.render());
        }
    }
    Ok(())
}

/// An optional amount for people, `-` when absent.
fn amount_or_dash(amount: &Option<String>, currency: &str) -> String {
    amount
        .as_deref()
        .map_or_else(|| "-".into(), |a| crate::erp::money::display(a, currency))
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

pub fn print_sync_report(report: &SyncReport) {
    let mut t = Table::new(&[
        "account",
        "journal",
        ">read",
        ">new lines",
        ">updated",
        ">statements",
        ">warnings",
        "status",
    ]);
    for a in &report.accounts {
        t.row(vec![
            format!("{} {}", a.account_id, a.reference),
            a.journal.clone(),
            a.transactions_read.to_string(),
            a.new_lines.to_string(),
            a.updated_lines.to_string(),
            a.statements.to_string(),
            a.warnings.len().to_string(),
            a.status.to_string(),
        ]);
    }
    if !t.is_empty() {
        print!("{}", t.render());
        println!(
            "{}, {}, {}, {}.",
            count(report.accounts.len(), "account", "accounts"),
            count(report.new_lines(), "new line", "new lines"),
            count(
                report.accounts.iter().map(|a| a.statements).sum::<u64>(),
                "statement",
                "statements"
            ),
            count(
                report
                    .accounts
                    .iter()
                    .map(|a| a.warnings.len())
                    .sum::<usize>(),
                "warning",
                "warnings"
            )
        );
    }
    for a in &report.accounts {
        for (kind, message) in &a.warnings {
            println!(
                "  warning, account {} [{}]: {}",
                a.account_id,
                clean(kind),
                clean(message)
            );
        }
    }
    for a in &report.accounts {
        if let Some(e) = &a.error {
            eprintln!(
                "erp: account {} ({}): {}",
                a.account_id,
                clean(&a.reference),
                clean(e)
            );
        }
    }
    for (link, why) in &report.skipped_links {
        eprintln!("erp: link {link} skipped: {}", clean(why));
    }
}

/// Progress bars, shown only once a sync has run for more than a second.
pub struct Bars {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Bars {
    pub fn new() -> Self {
        Self {
            bar: None,
            started: Instant::now(),
        }
    }
}

impl Default for Bars {
    fn default() -> Self {
        Self::new()
    }
}

impl Observer for Bars {
    fn account_started(&mut self, account: &OnlineAccount) {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(format!(
            "account {} {}",
            account.id,
            clean(&account.reference)
        ));
        self.bar = Some(bar);
        self.started = Instant::now();
    }

    fn batch(&mut self, _account: &OnlineAccount, transactions_read: u64, new_lines: u64) {
        if let Some(bar) = &self.bar {
            if bar.is_hidden() && self.started.elapsed() > Duration::from_secs(1) {
                bar.set_draw_target(ProgressDrawTarget::stderr());
                bar.enable_steady_tick(Duration::from_millis(120));
            }
            bar.set_message(format!(
                "{transactions_read} transactions read, {new_lines} new lines"
            ));
        }
    }

    fn account_finished(&mut self, _outcome: &AccountOutcome) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
