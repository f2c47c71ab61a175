//! Shared helpers for the `erp` binary tests: a sandbox on 127.0.0.1, a config file pointing at
//! it, and running the binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ponto_sandbox::{Sandbox, SandboxConfig};

pub struct Cli {
    pub sandbox: Sandbox,
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    pub config: PathBuf,
}

pub fn today() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()
}

impl Cli {
    /// A sandbox, a config pointing at it, and a database with the packaged Ponto provider
    /// installed (unsigned, from its file).
    pub fn new(config: SandboxConfig, max_lines: u32) -> Self {
        let cli = Self::bare(config, max_lines);
        cli.install_provider();
        cli
    }

    /// The same with no provider installed and no database yet.
    pub fn bare(config: SandboxConfig, max_lines: u32) -> Self {
        let sandbox = Sandbox::start(config, 0).expect("sandbox");
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("erp.sqlite");
        let config = dir.path().join("erp.toml");
        std::fs::write(
            &config,
            format!(
                "[provider.ponto]\napi-url = \"{}\"\nauthorization-url = \"{}\"\nclient-id = \"sandbox-client-id\"\nclient-secret = \"sandbox-client-secret\"\nsync-poll-interval-ms = 100\n\n[host]\nmax-lines = {max_lines}\n",
                sandbox.api_url(),
                sandbox.auth_url()
            ),
        )
        .unwrap();
        Self {
            sandbox,
            dir,
            db,
            config,
        }
    }

    /// Installs the packaged Ponto component into this ERP's database, as an operator would
    /// (unsigned: the tests' artifact has no publisher).
    pub fn install_provider(&self) {
        assert_ok(&self.run(&[
            "plugin",
            "install",
            erp_components::PONTO_PROVIDER,
            "--allow-unsigned",
            "--yes",
        ]));
    }

    pub fn command(&self, args: &[&str]) -> Command {
        self.command_with_config(&self.config, args)
    }

    pub fn command_with_config(&self, config: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_erp"));
        c.arg("--db")
            .arg(&self.db)
            .arg("--config")
            .arg(config)
            .args(args);
        for var in [
            "PONTO_API_URL",
            "PONTO_AUTH_URL",
            "PONTO_CLIENT_ID",
            "PONTO_CLIENT_SECRET",
            "ERP_DB",
            "ERP_CONFIG",
            "RUST_LOG",
        ] {
            c.env_remove(var);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run erp")
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.command(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("run erp")
    }

    pub fn main_institution(&self) -> String {
        self.sandbox.accounts()[0].institution_id.clone()
    }

    pub fn connect(&self) {
        let out = self.auto_connect(&["connect", "--institution", &self.main_institution()], &[]);
        assert_ok(&out);
    }

    /// `erp connect` or `erp update-credentials` (`args`, as written for the one-step verb) with
    /// the sandbox's consent page filled in, through the headless two-step flow: `connect begin`,
    /// the sandbox's consent filler, `connect finish`. The output is begin's when it fails, else
    /// finish's (begin's stdout first).
    pub fn auto_connect(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        match self.begin_and_consent(args, env) {
            Ok((begun, callback)) => {
                let mut done = self.finish(args, &callback, env);
                let mut stdout = begun.stdout;
                stdout.append(&mut done.stdout);
                done.stdout = stdout;
                done
            }
            Err(out) => out,
        }
    }

    /// The first half of [`Self::auto_connect`]: `connect begin` (which records the attempt)
    /// and the filled consent page; the callback URL, or begin's failed output.
    pub fn begin_and_consent(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<(Output, String), Output> {
        let value = |flag: &str| {
            let i = args.iter().position(|a| *a == flag)?;
            args.get(i + 1).copied()
        };
        let institution = value("--institution")
            .map(str::to_owned)
            .unwrap_or_else(|| self.main_institution());
        let mut begin = vec![
            "connect",
            "begin",
            "--institution",
            &institution,
            "--redirect-uri",
            "http://127.0.0.1:8765/callback",
        ];
        if args[0] == "update-credentials" {
            begin.extend(["--link", value("--link").expect("--link")]);
        }
        let out = self.run_env(&begin, env);
        if !out.status.success() {
            return Err(out);
        }
        let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let callback = ponto_sandbox::consent::auto_consent(&url).expect("the consent page fills");
        Ok((out, callback))
    }

    /// The second half of [`Self::auto_connect`]: `connect finish` (with
    /// `--allow-other-organisation` when `args` has it).
    pub fn finish(&self, args: &[&str], callback: &str, env: &[(&str, &str)]) -> Output {
        let mut finish = vec!["connect", "finish", "--callback-url", callback];
        if args.contains(&"--allow-other-organisation") {
            finish.push("--allow-other-organisation");
        }
        self.run_env(&finish, env)
    }
}

pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "erp failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every ERP table's rows as text (the plugin's catalogue scratch space aside), to prove that
/// bad input changed nothing.
pub fn dump(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = String::new();
    for t in tables {
        let filter = if t == "plugin_storage" {
            " WHERE connection != 'catalogue'"
        } else {
            ""
        };
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {t}{filter} ORDER BY 1"))
            .unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                Ok((0..n)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .unwrap();
        out.push_str(&format!("## {t}\n"));
        for row in rows {
            out.push_str(&row.unwrap());
            out.push('\n');
        }
    }
    out
}

/// (transaction id, booking date, amount, currency, statement key) of every line.
pub fn line_set(db: &Path) -> Vec<(String, String, String, String, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.prepare(
        "SELECT transaction_id, booking_date, amount, currency, statement_key FROM statement_lines ORDER BY transaction_id",
    )
    .unwrap()
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// (key, start, end) of every statement.
pub fn statement_set(db: &Path) -> Vec<(String, String, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.prepare("SELECT key, balance_start, balance_end FROM statements ORDER BY journal_id, key")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
