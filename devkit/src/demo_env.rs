//! The demo's environment: an embedded Ponto sandbox on a free loopback port, settings pointing
//! the provider at it, and a fresh database. The steps themselves are printed by `cli::demo`.

use std::path::{Path, PathBuf};

use ponto_sandbox::{Sandbox, SandboxAccountInfo, SandboxConfig};

use host_harness::erp::errors::ErpError;
use host_harness::erp::settings::Settings;

pub struct DemoEnv {
    pub sandbox: Sandbox,
    pub settings: Settings,
    pub db_path: PathBuf,
}

/// Provider settings that point at a sandbox (its default client credentials).
pub fn sandbox_settings(base: Settings, sandbox: &Sandbox) -> Settings {
    let mut settings = base;
    let config = &mut settings.provider_config;
    config.insert("api-url".into(), sandbox.api_url());
    config.insert("authorization-url".into(), sandbox.auth_url());
    config.insert("client-id".into(), "sandbox-client-id".into());
    config.insert("client-secret".into(), "sandbox-client-secret".into());
    // Synchronizations finish within a second in the sandbox: poll briskly.
    config
        .entry("sync-poll-interval-ms".into())
        .or_insert_with(|| "200".into());
    settings
}

/// Start the sandbox and choose the database: `db` if given (it must hold nothing yet), else a
/// fresh file in the temp dir.
pub fn start(base: Settings, db: Option<&Path>, transactions: u64) -> anyhow::Result<DemoEnv> {
    if let Some(p) = db {
        refuse_used_database(p)?;
    }
    let sandbox = Sandbox::start(
        SandboxConfig {
            transactions,
            ..SandboxConfig::default()
        },
        0,
    )
    .map_err(|e| anyhow::anyhow!(format!("cannot start the embedded Ponto sandbox: {e:#}")))?;
    let db_path = match db {
        Some(p) => p.to_owned(),
        None => {
            let p = std::env::temp_dir().join(format!("erp-demo-{}.sqlite", std::process::id()));
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
            }
            p
        }
    };
    let settings = sandbox_settings(base, &sandbox);
    Ok(DemoEnv {
        sandbox,
        settings,
        db_path,
    })
}

/// The demo's fake link, journals and lines must never land in real books: a database given to
/// the demo must not exist yet or be empty (its WAL too).
pub fn refuse_used_database(path: &Path) -> anyhow::Result<()> {
    let holds_data = |p: &Path| std::fs::metadata(p).is_ok_and(|m| !m.is_file() || m.len() > 0);
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    if holds_data(path) || holds_data(&wal) {
        return Err(ErpError::Usage(format!(
            "the demo needs a new database and {} already exists: give a path that does not exist yet (--db or ERP_DB), or neither for a fresh temporary file",
            path.display()
        )).into());
    }
    Ok(())
}

/// The institution the demo connects to: the one of the sandbox's first account (a Belgian bank).
pub fn demo_institution(accounts: &[SandboxAccountInfo]) -> Option<(String, String)> {
    accounts
        .first()
        .map(|a| (a.institution_id.clone(), a.institution_name.clone()))
}
