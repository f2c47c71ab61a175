//! The `erp` binary tests: a sandbox on 127.0.0.1, a config file pointing at it, and running the
//! binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ponto_sandbox::{Sandbox, SandboxConfig};

use super::sandbox::{INSTALL_PONTO, connect_begin, consent, erp, table_names, write_config};

pub struct Cli {
    pub sandbox: Sandbox,
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    pub config: PathBuf,
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
        write_config(&config, &sandbox, &format!("max-lines = {max_lines}"));
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
        assert_ok(&self.run(&INSTALL_PONTO));
    }

    pub fn command(&self, args: &[&str]) -> Command {
        self.command_with_config(&self.config, args)
    }

    pub fn command_with_config(&self, config: &Path, args: &[&str]) -> Command {
        erp(&self.db, config, args)
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

    /// A link to the main institution, synchronised once.
    pub fn connect_and_sync(&self) {
        self.connect();
        assert_ok(&self.run(&["sync"]));
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
        let mut begin = connect_begin(&institution).to_vec();
        if args[0] == "update-credentials" {
            begin.extend(["--link", value("--link").expect("--link")]);
        }
        let out = self.run_env(&begin, env);
        if !out.status.success() {
            return Err(out);
        }
        let callback = consent(&out.stdout);
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
    let mut out = String::new();
    for t in table_names(&conn)
        .into_iter()
        .filter(|t| !t.starts_with("sqlite_"))
    {
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
