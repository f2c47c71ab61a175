//! The `erp` command line: verbs an accountant recognises from Odoo (connect, fetch accounts,
//! update credentials, sync, statements, status), each a thin shell over [`crate::erp`].
//!
//! Output goes to stdout; every error is one line on stderr with a non-zero exit (2 bad usage
//! or config, 3 another process holds the link's sync lock, 1 anything else).
//!
//! [`args`] declares the verbs and their options, [`commands`] runs them (one module per verb or
//! group of verbs), [`render`] lays out tables and neutralises text from elsewhere; this module
//! parses, dispatches and turns an error into its line and exit code.

pub mod args;
pub mod commands;
pub mod render;

use std::path::{Path, PathBuf};

use clap::Parser;

use crate::erp::errors::ErpError;
use crate::erp::settings::Settings;
use args::{Cli, Command};
use commands::{accounts, connect, institutions, links, plugin, statements, status, sync};
use render::clean;

// What `erp-dev demo` prints with, step by step.
pub use commands::accounts::print_accounts;
pub use commands::connect::print_connected;
pub use commands::institutions::{print_institution_choice, print_institutions};
pub use commands::statements::print_statements;
pub use commands::status::print_status;
pub use commands::sync::{Bars, print_sync_report};

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
    let config = cli.config.as_deref();
    // The verbs that run a provider read the settings before anything else.
    let settings = || Settings::load(config);
    match cli.command {
        Command::Plugin { command } => plugin::run(command, config, path, json),
        Command::Accounts => accounts::list(path, json),
        Command::Statements { journal, lines } => statements::run(path, &journal, lines, json),
        Command::Status => status::run(path, json),
        Command::AutoSync { link, state } => links::auto_sync(path, link, state),
        Command::Institutions {
            provider,
            country,
            search,
        } => institutions::run(&settings()?, path, provider, country, search, json),
        Command::Connect(cmd) => connect::run(&settings()?, path, cmd),
        Command::FetchAccounts { link } => accounts::fetch(&settings()?, path, link),
        Command::UpdateCredentials {
            link,
            allow_other_organisation,
            callback,
        } => connect::update_credentials(
            &settings()?,
            path,
            link,
            allow_other_organisation,
            callback,
        ),
        Command::Sync(args) => sync::run(&settings()?, path, args, json),
        Command::Reauthorize {
            account,
            redirect_uri,
        } => links::reauthorize(&settings()?, path, &account, &redirect_uri),
        Command::Disconnect { link, force } => links::disconnect(&settings()?, path, link, force),
    }
}
