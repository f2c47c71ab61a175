//! Support for the reliability suite: `erp` runs against a loopback sandbox whose every output is
//! kept (to be searched for secrets at the end), SQLite readers, and the secret scanner.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use ponto_sandbox::{IssuedSecrets, Sandbox, SandboxConfig};

use super::sandbox::{INSTALL_PONTO, connect_begin, consent, erp, table_names, write_config};

/// Log level of every `erp` run: the HTTP audit and the plugin's own lines are on, so the secret
/// scan reads what an operator debugging a problem would see.
pub const LOG_LEVEL: &str = "debug";

/// What the whole suite saw, for the secret scan and the figures.
#[derive(Default)]
pub struct Suite {
    /// (label, stdout and stderr) of every `erp` run.
    pub outputs: Mutex<Vec<(String, String)>>,
    /// Every sandbox's issued secrets, taken when its phase ended.
    pub secrets: Mutex<Vec<IssuedSecrets>>,
    /// Every ERP database written (their directories stay until the suite ends).
    pub databases: Mutex<Vec<PathBuf>>,
    pub dirs: Mutex<Vec<tempfile::TempDir>>,
}

impl Suite {
    pub fn record(&self, label: &str, stdout: &[u8], stderr: &[u8]) {
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(stdout),
            String::from_utf8_lossy(stderr)
        );
        self.outputs.lock().unwrap().push((label.to_owned(), text));
    }
}

/// One ERP (database, config) against one sandbox.
pub struct Erp {
    pub suite: Arc<Suite>,
    pub dir: PathBuf,
    pub db: PathBuf,
    pub config: PathBuf,
    pub api_url: String,
    /// Extra environment for every run (e.g. ERP_STORAGE_KEY).
    pub env: Vec<(String, String)>,
}

pub fn start_sandbox(config: SandboxConfig) -> Sandbox {
    Sandbox::start(config, 0).expect("the sandbox starts")
}

impl Erp {
    /// A fresh ERP in a new temporary directory (kept until the suite ends).
    pub fn new(suite: &Arc<Suite>, sandbox: &Sandbox, host: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_owned();
        suite.dirs.lock().unwrap().push(dir);
        let db = path.join("erp.sqlite");
        let config = path.join("erp.toml");
        write_config(&config, sandbox, host);
        suite.databases.lock().unwrap().push(db.clone());
        let erp = Self {
            suite: suite.clone(),
            dir: path,
            db,
            config,
            api_url: sandbox.api_url(),
            env: Vec::new(),
        };
        erp.install_provider();
        erp
    }

    /// Installs the packaged Ponto component into this ERP, as an operator would (unsigned:
    /// the tests' artifact has no publisher).
    pub fn install_provider(&self) {
        let out = self
            .command(&INSTALL_PONTO)
            .output()
            .expect("run erp plugin install");
        assert_ok(&out);
    }

    /// A copy of this ERP (database, storage key, config) in a new directory: the same link,
    /// without running the consent flow again.
    pub fn copy(&self) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_owned();
        self.suite.dirs.lock().unwrap().push(dir);
        for entry in std::fs::read_dir(&self.dir).unwrap() {
            let from = entry.unwrap().path();
            if from.is_file() {
                // std::fs::copy keeps the permissions: the key file stays 0600.
                std::fs::copy(&from, path.join(from.file_name().unwrap())).unwrap();
            } else if from.is_dir() {
                // The plugin directory (installed artifacts by digest).
                let to = path.join(from.file_name().unwrap());
                std::fs::create_dir_all(&to).unwrap();
                for f in std::fs::read_dir(&from).unwrap() {
                    let f = f.unwrap().path();
                    std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
                }
            }
        }
        let db = path.join("erp.sqlite");
        self.suite.databases.lock().unwrap().push(db.clone());
        Self {
            suite: self.suite.clone(),
            dir: path.clone(),
            db,
            config: path.join("erp.toml"),
            api_url: self.api_url.clone(),
            env: self.env.clone(),
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = erp(&self.db, &self.config, args);
        c.env("RUST_LOG", LOG_LEVEL).env("NO_COLOR", "1");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs `erp ARGS` to the end; its output is recorded.
    pub fn run(&self, label: &str, args: &[&str]) -> Output {
        let out = self.command(args).output().expect("run erp");
        self.suite.record(label, &out.stdout, &out.stderr);
        out
    }

    /// Starts `erp ARGS` with its output going to files (read back by [`Running::finish`]).
    pub fn spawn(&self, label: &str, args: &[&str]) -> Running {
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out = self.dir.join(format!("run-{n}.out"));
        let err = out.with_extension("err");
        let child = self
            .command(args)
            .stdout(Stdio::from(File::create(&out).unwrap()))
            .stderr(Stdio::from(File::create(&err).unwrap()))
            .spawn()
            .expect("spawn erp");
        Running {
            child,
            label: label.to_owned(),
            out,
            err,
            suite: self.suite.clone(),
        }
    }

    pub fn connect(&self, sandbox: &Sandbox) {
        let institution = sandbox.accounts()[0].institution_id.clone();
        // The headless two-step flow, the sandbox's consent page filled in between.
        let out = self.run("connect", &connect_begin(&institution));
        assert_ok(&out);
        let callback = consent(&out.stdout);
        let out = self.run(
            "connect",
            &["connect", "finish", "--callback-url", &callback],
        );
        assert_ok(&out);
    }

    pub fn open(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open_with_flags(
            &self.db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open the ERP database");
        c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        c
    }

    /// The ERP id of the online account with this provider id.
    pub fn account_id(&self, provider_account_id: &str) -> i64 {
        self.open()
            .query_row(
                "SELECT id FROM online_accounts WHERE provider_account_id = ?1",
                [provider_account_id],
                |r| r.get(0),
            )
            .expect("the account is in the ERP")
    }

    /// (provider account id, status, message, cursor) of every online account.
    pub fn account_states(&self) -> Vec<AccountState> {
        let c = self.open();
        let mut s = c
            .prepare(
                "SELECT provider_account_id, status, message, sync_cursor FROM online_accounts ORDER BY id",
            )
            .unwrap();
        s.query_map([], |r| {
            Ok(AccountState {
                provider_id: r.get(0)?,
                status: r.get(1)?,
                message: r.get(2)?,
                cursor: r.get(3)?,
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    pub fn state_of(&self, provider_account_id: &str) -> AccountState {
        self.account_states()
            .into_iter()
            .find(|a| a.provider_id == provider_account_id)
            .expect("the account is in the ERP")
    }

    /// Every line as (provider account id, transaction id, booking date, amount, currency,
    /// statement key), sorted.
    pub fn lines(&self) -> Vec<Line> {
        let c = self.open();
        let mut s = c
            .prepare(
                "SELECT a.provider_account_id, l.transaction_id, l.booking_date, l.amount, l.currency, l.statement_key
                 FROM statement_lines l JOIN online_accounts a ON a.id = l.online_account_id
                 ORDER BY a.provider_account_id, l.transaction_id",
            )
            .unwrap();
        s.query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    /// (journal, key, start balance, end balance) of every statement.
    pub fn statements(&self) -> Vec<(i64, String, String, String)> {
        let c = self.open();
        let mut s = c
            .prepare("SELECT journal_id, key, balance_start, balance_end FROM statements ORDER BY journal_id, key")
            .unwrap();
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// The plugin's stored value of `key` as stored (a ciphertext when encrypted).
    pub fn stored_raw(&self, conn: &rusqlite::Connection, key: &str) -> Option<String> {
        conn.query_row(
            "SELECT value FROM plugin_storage WHERE key = ?1 AND connection != 'catalogue'",
            [key],
            |r| r.get(0),
        )
        .ok()
    }
}

/// A small tmpfs mounted for one test (root only), unmounted when dropped.
pub struct Tmpfs {
    pub dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts `size` (e.g. `16m`) at a new directory; `Err` says why not (not root, no mount).
    pub fn mount(size: &str) -> Result<Self, String> {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| e.to_string())?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Err("not running as root".into());
        }
        let parent = tempfile::tempdir().map_err(|e| e.to_string())?;
        let dir = parent.path().join("tmpfs");
        std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Self {
            dir,
            _parent: parent,
        })
    }

    /// Fills the file system with `file` until it refuses more (ENOSPC); returns the bytes written.
    pub fn fill(&self, file: &Path) -> u64 {
        use std::io::Write;
        let mut f = File::create(file).expect("create the filler");
        let mut written = 0u64;
        for chunk in [1 << 20, 4096, 512] {
            let buf = vec![0xA5u8; chunk];
            while f.write_all(&buf).is_ok() {
                written += chunk as u64;
            }
        }
        let _ = f.sync_all();
        written
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Another program holding the database's write lock (`BEGIN EXCLUSIVE`) until dropped.
pub struct DbLock(rusqlite::Connection);

impl DbLock {
    pub fn take(db: &Path) -> Self {
        let c = rusqlite::Connection::open(db).expect("open the ERP database");
        c.busy_timeout(std::time::Duration::from_secs(30)).unwrap();
        c.execute_batch("BEGIN EXCLUSIVE")
            .expect("take the write lock");
        Self(c)
    }
}

impl Drop for DbLock {
    fn drop(&mut self) {
        let _ = self.0.execute_batch("ROLLBACK");
    }
}

/// The ERP's recovery files beside `db` (values its storage kept aside).
pub fn recovery_files(db: &Path) -> Vec<PathBuf> {
    let prefix = format!("{}.recovery-", db.file_name().unwrap().to_string_lossy());
    std::fs::read_dir(db.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&prefix)
        })
        .collect()
}

/// The newest line's row id (grows with every committed batch that adds lines).
pub fn max_line_id(conn: &rusqlite::Connection) -> i64 {
    conn.query_row(
        "SELECT COALESCE(MAX(id), 0) FROM statement_lines",
        [],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

pub type Line = (String, String, String, String, String, String);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountState {
    pub provider_id: String,
    pub status: String,
    pub message: Option<String>,
    pub cursor: Option<String>,
}

/// A running `erp` whose output goes to files.
pub struct Running {
    pub child: Child,
    label: String,
    out: PathBuf,
    err: PathBuf,
    suite: Arc<Suite>,
}

impl Running {
    /// Whether it has exited (and how).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("wait on erp")
    }

    /// SIGKILL now: no destructor, no cleanup. Returns whether the process was still running.
    pub fn kill(&mut self) -> bool {
        let alive = self.exited().is_none();
        let _ = self.child.kill();
        alive
    }

    /// Waits for the end and records the output; returns the exit status and the output text.
    pub fn finish(mut self) -> (std::process::ExitStatus, String, String) {
        let status = self.child.wait().expect("wait on erp");
        let out = std::fs::read(&self.out).unwrap_or_default();
        let err = std::fs::read(&self.err).unwrap_or_default();
        self.suite.record(&self.label, &out, &err);
        let _ = std::fs::remove_file(&self.out);
        let _ = std::fs::remove_file(&self.err);
        (
            status,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr (tail):\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        tail(&String::from_utf8_lossy(&out.stderr), 40)
    )
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

pub fn assert_ok(out: &Output) {
    assert!(out.status.success(), "erp failed: {}", text(out));
}

/// A small deterministic generator (xorshift64*), so a failing run can be replayed by its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

// ---- the secret scan ---------------------------------------------------------------------------

/// One secret to look for: what it is (never the value itself in a report) and its text.
pub struct Secret {
    pub kind: &'static str,
    pub value: String,
}

/// Every secret of every sandbox, and the forms they travel in (a Basic credential).
pub fn secrets_of(all: &[IssuedSecrets]) -> Vec<Secret> {
    use base64::Engine;
    let mut out = Vec::new();
    for s in all {
        let mut add = |kind, value: &String| {
            if !out.iter().any(|x: &Secret| &x.value == value) {
                out.push(Secret {
                    kind,
                    value: value.clone(),
                });
            }
        };
        for t in &s.access_tokens {
            add("access token", t);
        }
        for t in &s.refresh_tokens {
            add("refresh token", t);
        }
        for t in &s.authorization_codes {
            add("authorization code", t);
        }
        add("client secret", &s.client_secret);
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("sandbox-client-id:{}", s.client_secret));
        add("client secret (Basic credential)", &basic);
    }
    out
}

/// Where a secret was found: (kind, place). The value itself is never reported.
pub fn scan(text: &str, place: &str, secrets: &[Secret]) -> Vec<(String, String)> {
    secrets
        .iter()
        .filter(|s| text.contains(&s.value))
        .map(|s| (s.kind.to_owned(), place.to_owned()))
        .collect()
}

/// Every table of an ERP database except `plugin_storage`, as text, one entry per table.
pub fn tables_text(db: &Path, skip: &[&str]) -> Vec<(String, String)> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the ERP database");
    let mut out = Vec::new();
    for t in table_names(&conn) {
        if skip.contains(&t.as_str()) {
            continue;
        }
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = stmt.column_count();
        let mut text = String::new();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..n {
                match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                        text.push_str(&String::from_utf8_lossy(b))
                    }
                    other => text.push_str(&format!("{other:?}")),
                }
                text.push('|');
            }
            text.push('\n');
        }
        out.push((t, text));
    }
    out
}
