//! What every suite running the ERP against the Ponto sandbox shares: the pinned day, the config
//! file pointing the provider at a sandbox, an `erp` command that inherits no setting of the
//! caller, the provider's install and the headless consent flow.

use std::path::Path;
use std::process::Command;

use ponto_sandbox::{Sandbox, SandboxConfig};

/// The sandbox's "today", pinned so every run sees the same history (and snapshots never move).
pub fn today() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 20).expect("a date")
}

/// The config file: provider settings for the sandbox, then `host` lines.
pub fn write_config(path: &Path, sandbox: &Sandbox, host: &str) {
    std::fs::write(
        path,
        format!(
            "[provider.ponto]\napi-url = \"{}\"\nauthorization-url = \"{}\"\nclient-id = \"sandbox-client-id\"\nclient-secret = \"sandbox-client-secret\"\nsync-poll-interval-ms = 100\n\n[host]\n{host}\n",
            sandbox.api_url(),
            sandbox.auth_url()
        ),
    )
    .expect("write the config");
}

/// `erp --db DB --config CONFIG ARGS`, without the variables that would point it elsewhere
/// (callers add the environment a test wants).
pub fn erp(db: &Path, config: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_erp"));
    c.arg("--db").arg(db).arg("--config").arg(config).args(args);
    for var in [
        "PONTO_API_URL",
        "PONTO_AUTH_URL",
        "PONTO_CLIENT_ID",
        "PONTO_CLIENT_SECRET",
        "ERP_DB",
        "ERP_CONFIG",
        "ERP_STORAGE_KEY",
        "RUST_LOG",
    ] {
        c.env_remove(var);
    }
    c
}

/// `erp plugin install` of the packaged Ponto component, as an operator would (unsigned: the
/// tests' artifact has no publisher).
pub const INSTALL_PONTO: [&str; 5] = [
    "plugin",
    "install",
    erp_components::PONTO_PROVIDER,
    "--allow-unsigned",
    "--yes",
];

/// Where the headless consent flow sends the browser back.
pub const REDIRECT_URI: &str = "http://127.0.0.1:8765/callback";

/// `erp connect begin` for `institution` (its stdout is the consent URL).
pub fn connect_begin(institution: &str) -> [&str; 6] {
    [
        "connect",
        "begin",
        "--institution",
        institution,
        "--redirect-uri",
        REDIRECT_URI,
    ]
}

/// The sandbox's consent page at the URL `connect begin` printed, filled in: the callback URL
/// for `connect finish`.
pub fn consent(begin_stdout: &[u8]) -> String {
    let url = String::from_utf8_lossy(begin_stdout).trim().to_owned();
    ponto_sandbox::consent::auto_consent(&url).expect("the consent page fills")
}

/// The names of an SQLite database's tables (SQLite's own among them), sorted.
pub fn table_names(conn: &rusqlite::Connection) -> Vec<String> {
    conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The sandbox most tests run: the pinned day, synchronisations never refused as too recent.
pub fn standard_sandbox() -> SandboxConfig {
    SandboxConfig {
        today: Some(today()),
        sync_cooldown_secs: 0,
        ..SandboxConfig::default()
    }
}
