//! The end-to-end tests: a seeded Ponto sandbox on 127.0.0.1, the real provider component in the
//! real runtime, and a fresh ERP database per test.

use std::collections::BTreeMap;
use std::path::PathBuf;

use host_harness::erp::connect::{self, CallbackMode, ConnectOutcome};
use host_harness::erp::errors::ErpError;
use host_harness::erp::provider::ComponentFactory;
use host_harness::erp::settings::Settings;
use host_harness::erp::store::{Db, StoredLine};
use host_harness::erp::sync::{self, Quiet, SyncOptions, SyncReport};
pub use ponto_sandbox::{Sandbox, SandboxConfig};

use super::sandbox::{standard_sandbox, write_config};

/// The packaged Ponto component run from its file against `sandbox`, configured by the config
/// file the CLI tests write (read without the environment).
pub fn sandbox_settings(sandbox: &Sandbox) -> Settings {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("erp.toml");
    write_config(&config, sandbox, "");
    let mut settings =
        Settings::load_with_env(Some(&config), &BTreeMap::new()).expect("the config loads");
    settings.plugin_path = Some(PathBuf::from(erp_components::PONTO_PROVIDER));
    settings
}

pub struct Env {
    pub sandbox: Sandbox,
    pub settings: Settings,
    pub dir: tempfile::TempDir,
    pub db_path: PathBuf,
    pub host: ComponentFactory,
    pub db: Db,
}

impl Env {
    pub fn new(config: SandboxConfig) -> Self {
        let sandbox = Sandbox::start(config, 0).expect("the sandbox starts");
        let settings = sandbox_settings(&sandbox);
        Self::with_settings(sandbox, settings)
    }

    pub fn with_settings(sandbox: Sandbox, settings: Settings) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_path = dir.path().join("erp.sqlite");
        let host =
            ComponentFactory::load(&settings, &db_path).expect("the provider component loads");
        let db = Db::open(&db_path).expect("the database opens");
        Self {
            sandbox,
            settings,
            dir,
            db_path,
            host,
            db,
        }
    }

    /// Default sandbox (seed 42), pinned date, synchronizations never refused as too recent.
    pub fn standard() -> Self {
        Self::new(standard_sandbox())
    }

    /// The institution of the sandbox's first account (Belgian, EUR).
    pub fn main_institution(&self) -> String {
        self.sandbox.accounts()[0].institution_id.clone()
    }

    pub fn connect(&mut self, institution_id: &str) -> Result<ConnectOutcome, ErpError> {
        connect::connect(
            &mut self.db,
            &self.host,
            institution_id,
            None,
            CallbackMode::Filled(ponto_sandbox::consent::auto_consent),
            &mut |_| {},
        )
    }

    pub fn update_credentials(&mut self, link: i64) -> Result<ConnectOutcome, ErpError> {
        let institution = self.db.link(link)?.institution_id;
        connect::connect(
            &mut self.db,
            &self.host,
            &institution,
            Some(link),
            CallbackMode::Filled(ponto_sandbox::consent::auto_consent),
            &mut |_| {},
        )
    }

    pub fn sync(&mut self, opts: SyncOptions) -> Result<SyncReport, ErpError> {
        let opts = SyncOptions {
            max_lines: if opts.max_lines == 0 {
                100
            } else {
                opts.max_lines
            },
            refresh_hours: 12,
            ..opts
        };
        sync::run(&mut self.db, &self.host, &opts, &mut Quiet)
    }

    /// A person-started sync (fresh data asked from the bank).
    pub fn sync_as_user(&mut self) -> Result<SyncReport, ErpError> {
        self.sync(SyncOptions {
            customer_ip: Some("127.0.0.1".into()),
            ..SyncOptions::default()
        })
    }

    /// Every stored line of every journal, sorted, for set comparisons.
    pub fn all_lines(&self) -> Vec<StoredLine> {
        let mut out = Vec::new();
        for j in self.db.journals().expect("journals") {
            out.extend(self.db.lines(j.id).expect("lines"));
        }
        out.sort_by(|a, b| a.transaction_id.cmp(&b.transaction_id));
        out
    }

    /// Row counts of the accounting tables, to prove that bad input changed nothing.
    pub fn table_counts(&self) -> Vec<(String, i64)> {
        table_counts(&self.db)
    }
}

pub fn table_counts(db: &Db) -> Vec<(String, i64)> {
    [
        "links",
        "journals",
        "online_accounts",
        "statements",
        "statement_lines",
        "pending_lines",
        "sync_runs",
        "connect_attempts",
    ]
    .iter()
    .map(|t| {
        let n: i64 = db
            .conn()
            .query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))
            .expect("count");
        ((*t).to_owned(), n)
    })
    .collect()
}
