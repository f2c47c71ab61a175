//! The `erp` command line's arguments: the verbs, their options and their help texts (clap).

use std::path::PathBuf;

use chrono::{Datelike, NaiveDate};
use clap::{Args, Parser, Subcommand, ValueEnum};

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
    Sync(SyncArgs),
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
        command: PluginCmd,
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

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// Only this link.
    #[arg(long)]
    pub link: Option<i64>,
    /// Only this online account (ERP id or provider id).
    #[arg(long)]
    pub account: Option<String>,
    /// Only links whose next refresh (every 12 h by default) has passed; for cron.
    #[arg(long)]
    pub due: bool,
    /// Read back at least to this date (YYYY-MM-DD), to recover missing transactions.
    #[arg(long, value_parser = parse_date)]
    pub since: Option<NaiveDate>,
    /// The user's IP address: the provider then asks the bank for fresh data (PSD2 allows
    /// unattended reads only a few times a day).
    #[arg(long)]
    pub customer_ip: Option<String>,
    /// Links synchronised at once (each on its own thread, database connection and plugin
    /// instance). Default: one per CPU, at most 8. The summary keeps the links' order.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=8))]
    pub jobs: Option<u16>,
}

#[derive(Subcommand, Debug)]
pub enum PluginCmd {
    /// Print a plugin's manifest, imports and exports, without running it.
    Inspect { path: PathBuf },
    /// Run the conformance suite on a provider component against a recorded cassette.
    Check(CheckArgs),
    /// Make a publisher key pair (ed25519): KEY (secret, 0600) and KEY.pub (for operators).
    Keygen {
        #[arg(long)]
        out: PathBuf,
        /// A comment stored in the keys (who publishes with it).
        #[arg(long, default_value = "erp plugin publisher")]
        comment: String,
    },
    /// Trust a publisher's public key (a KEY.pub file); or forget one with --untrust.
    Trust {
        #[arg(required_unless_present = "untrust", conflicts_with = "untrust")]
        public_key: Option<PathBuf>,
        /// A key id (`ed25519:...`, see `erp plugin list`) or a public key file to forget.
        #[arg(long, value_name = "KEY_ID_OR_FILE")]
        untrust: Option<String>,
    },
    /// Sign a packaged component and push it to an OCI registry.
    Publish {
        component: PathBuf,
        /// oci://HOST[:PORT]/REPO:TAG (plain http only for a loopback registry).
        #[arg(long)]
        to: String,
        /// The publisher's secret key (from `erp plugin keygen`).
        #[arg(long)]
        key: PathBuf,
    },
    /// Install a provider from an oci:// reference or a .wasm file: shows what it is and asks
    /// for, asks to grant it, verifies its signature, stores it by digest.
    Install {
        reference: String,
        #[command(flatten)]
        approval: Approval,
    },
    /// The installed providers: id, version, digest, publisher, contract, grants, links.
    List,
    /// Replace an installed provider by a newer artifact (default: from where it came);
    /// links, connections and the plugin's storage are kept.
    Upgrade {
        id: String,
        reference: Option<String>,
        #[command(flatten)]
        approval: Approval,
    },
    /// Remove an installed provider; refused while links use it, unless --force.
    Remove {
        id: String,
        #[arg(long)]
        force: bool,
    },
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The provider component (a packaged .wasm: its manifest is inside).
    pub component: PathBuf,
    /// The cassette to replay (see `erp --record`).
    #[arg(long)]
    pub cassette: PathBuf,
    /// Peak linear memory budget, in MiB.
    #[arg(long, default_value_t = 64)]
    pub max_memory_mib: u64,
    /// Budget of one `sync` call, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub max_call_ms: u64,
    /// Skip the mutated responses (the slowest property).
    #[arg(long)]
    pub no_mutations: bool,
    /// Store what the component returns as the cassette's expected result instead of checking
    /// (for a hand-written cassette; review the diff).
    #[arg(long)]
    pub bless: bool,
}

#[derive(clap::Args, Debug)]
pub struct Approval {
    /// Grant what the plugin asks without asking (for scripts).
    #[arg(long)]
    pub yes: bool,
    /// Grant only this origin (repeat for several); the plugin must have asked for it.
    #[arg(long, value_name = "ORIGIN")]
    pub grant: Vec<String>,
    /// Accept an unsigned artifact. For development only: nobody vouches for its bytes.
    #[arg(long)]
    pub allow_unsigned: bool,
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
