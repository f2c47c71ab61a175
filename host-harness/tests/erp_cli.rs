//! The `erp` binary against the sandbox: every verb's --help, the bad-input rules (one line on
//! stderr, non-zero exit, nothing changed), JSON read verbs. The demo's tests are the
//! development crate's (devkit/tests).

mod support;

use support::cli::{Cli, assert_ok, dump, stderr, stdout};
use support::sandbox::{connect_begin, consent, standard_sandbox};

fn cli() -> Cli {
    Cli::new(standard_sandbox(), 200)
}

#[test]
fn every_verb_has_help() {
    let c = cli();
    for verb in [
        "institutions",
        "connect",
        "accounts",
        "fetch-accounts",
        "update-credentials",
        "sync",
        "statements",
        "status",
        "reauthorize",
        "disconnect",
        "auto-sync",
        "plugin",
    ] {
        let out = c.run(&[verb, "--help"]);
        assert_ok(&out);
        assert!(
            stdout(&out).contains("Usage: erp"),
            "{verb}: {}",
            stdout(&out)
        );
    }
    for sub in [
        ["connect", "begin"],
        ["connect", "finish"],
        ["plugin", "inspect"],
    ] {
        let out = c.run(&[sub[0], sub[1], "--help"]);
        assert_ok(&out);
    }
}

/// One line on stderr, a non-zero exit.
fn assert_one_line_failure(out: &std::process::Output, needle: &str) {
    assert!(!out.status.success(), "must fail: {}", stdout(out));
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got:\n{err}");
    assert!(lines[0].starts_with("erp: "), "{err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
}

#[test]
fn bad_input_is_one_clear_line_and_changes_nothing() {
    let c = cli();
    c.connect_and_sync();
    let before = dump(&c.db);

    let bad = c.dir.path().join("bad.toml");
    std::fs::write(&bad, "[provider\napi-url = ").unwrap();
    let out = c.command_with_config(&bad, &["status"]).output().unwrap();
    // status reads no config: it must still work.
    assert_ok(&out);
    let out = c
        .command_with_config(&bad, &["institutions"])
        .output()
        .unwrap();
    assert_one_line_failure(&out, "bad.toml");
    assert_eq!(out.status.code(), Some(2));

    let out = c.auto_connect(&["connect", "--institution", "No Such Bank Anywhere"], &[]);
    assert_one_line_failure(&out, "no institution matches");

    let institution = c.main_institution();
    // The headless flow's begin records an attempt (a legitimate change); the wrong secret,
    // met when finish exchanges the code, must change nothing more.
    let args = ["connect", "--institution", &institution];
    let secret = [("PONTO_CLIENT_SECRET", "not-the-secret")];
    let (_, callback) = c.begin_and_consent(&args, &secret).expect("begin");
    let out = c.finish(&args, &callback, &secret);
    assert_one_line_failure(&out, "client");
    assert!(
        !stderr(&out).contains("not-the-secret"),
        "the secret never shows"
    );

    let out = c.run_env(
        &["institutions"],
        &[("PONTO_API_URL", "http://127.0.0.1:1/ponto-connect")],
    );
    assert!(!out.status.success());
    assert_one_line_failure(&out, "");

    let out = c.run(&["sync", "--since", "2999-01-01"]);
    assert_one_line_failure(&out, "in the future");
    assert_eq!(out.status.code(), Some(2));

    let out = c.run(&["sync", "--since", "yesterday"]);
    assert!(!out.status.success());

    let out = c.run(&[
        "connect",
        "finish",
        "--callback-url",
        "http://127.0.0.1:9/callback?code=abc&state=forged",
    ]);
    assert_one_line_failure(&out, "state");

    let out = c.run(&["sync", "--link", "42"]);
    assert_one_line_failure(&out, "no link 42");

    // The headless flow's `connect begin` recorded its attempt: the one legitimate change.
    assert_eq!(
        without_attempts(&dump(&c.db)),
        without_attempts(&before),
        "nothing changed in the database"
    );
}

/// A database dump without its `connect_attempts` table (what `connect begin` records).
fn without_attempts(dump: &str) -> String {
    let mut skipping = false;
    dump.lines()
        .filter(|l| {
            if l.starts_with("## ") {
                skipping = *l == "## connect_attempts";
            }
            !skipping
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn two_step_connect_then_json_read_verbs() {
    let c = cli();
    let institution = c.main_institution();
    let out = c.run(&connect_begin(&institution));
    assert_ok(&out);
    let callback = consent(&out.stdout);
    let out = c.run(&["connect", "finish", "--callback-url", &callback]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("Connected link 1"),
        "{}",
        stdout(&out)
    );
    // The same callback twice is refused: the attempt is used up.
    let again = c.run(&["connect", "finish", "--callback-url", &callback]);
    assert!(!again.status.success());

    let out = c.run(&["sync", "--customer-ip", "127.0.0.1"]);
    assert_ok(&out);
    assert!(stdout(&out).contains(" new lines, "), "{}", stdout(&out));

    let accounts: serde_json::Value =
        serde_json::from_slice(&c.run(&["--json", "accounts"]).stdout).unwrap();
    assert!(accounts.as_array().is_some_and(|a| !a.is_empty()));
    let status: serde_json::Value =
        serde_json::from_slice(&c.run(&["--json", "status"]).stdout).unwrap();
    assert_eq!(status["links"][0]["state"], "connected");
    let statements: serde_json::Value =
        serde_json::from_slice(&c.run(&["--json", "statements", "--journal", "BNK1"]).stdout)
            .unwrap();
    assert!(statements.as_array().is_some_and(|s| !s.is_empty()));
    assert!(
        statements[0]["balance_end"].is_string(),
        "money is text, never a float"
    );

    let out = c.run(&["fetch-accounts", "--link", "1"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("0 new"), "{}", stdout(&out));

    // Automatic synchronisation off and on again, as Odoo's toggle.
    let auto = |c: &support::cli::Cli| -> serde_json::Value {
        let status: serde_json::Value =
            serde_json::from_slice(&c.run(&["--json", "status"]).stdout).unwrap();
        status["links"][0]["auto_sync"].clone()
    };
    assert_eq!(auto(&c), true);
    assert_ok(&c.run(&["auto-sync", "--link", "1", "off"]));
    assert_eq!(auto(&c), false);
    assert_ok(&c.run(&["auto-sync", "--link", "1", "on"]));
    assert_eq!(auto(&c), true);

    let out = c.run(&["disconnect", "--link", "1"]);
    assert_ok(&out);
    let out = c.run(&["sync", "--link", "1"]);
    assert_one_line_failure(&out, "disconnected");
    let out = c.run(&["auto-sync", "--link", "1", "on"]);
    assert_one_line_failure(&out, "disconnected");
    assert_eq!(auto(&c), false, "a disconnected link stays off");
    // History stays.
    let statements: serde_json::Value =
        serde_json::from_slice(&c.run(&["--json", "statements", "--journal", "BNK1"]).stdout)
            .unwrap();
    assert!(statements.as_array().is_some_and(|s| !s.is_empty()));
}

/// Names of the files in `dir`, sorted.
fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_database_and_key_are_private_and_a_failed_command_creates_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let c = cli();
    let before = files_in(c.dir.path());
    for (args, env) in [
        (
            &["connect", "--institution", "No Such Bank Anywhere"][..],
            ("PONTO_CLIENT_SECRET", "not-the-secret"),
        ),
        (
            &["institutions"][..],
            ("PONTO_API_URL", "http://127.0.0.1:1/ponto-connect"),
        ),
    ] {
        let out = c.run_env(args, &[env]);
        assert!(!out.status.success(), "{args:?}: {}", stdout(&out));
        // SQLite's own -wal and -shm files of the existing database aside.
        let sqlite_own = |names: Vec<String>| -> Vec<String> {
            names
                .into_iter()
                .filter(|n| !n.ends_with("-wal") && !n.ends_with("-shm"))
                .collect()
        };
        assert_eq!(
            sqlite_own(files_in(c.dir.path())),
            before,
            "{args:?} failed and must leave no database, key or recovery file: {}",
            stderr(&out)
        );
    }
    c.connect_and_sync();
    // A reader keeps the WAL files in place while the modes are read.
    let reader = rusqlite::Connection::open(&c.db).unwrap();
    reader
        .query_row("SELECT COUNT(*) FROM links", [], |r| r.get::<_, i64>(0))
        .unwrap();
    for name in ["erp.sqlite", "erp.key", "erp.sqlite-wal", "erp.sqlite-shm"] {
        let path = c.dir.path().join(name);
        assert!(
            path.exists(),
            "{name} missing: {:?}",
            files_in(c.dir.path())
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name} is {mode:o}");
    }
}

#[test]
fn an_sqlite_uri_as_db_is_refused_and_creates_nothing() {
    let c = cli();
    let before = files_in(c.dir.path());
    for args in [&["status"][..], &["institutions"][..], &["sync"][..]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_erp"))
            .current_dir(c.dir.path())
            .args(["--db", "file:x.sqlite", "--config"])
            .arg(&c.config)
            .args(args)
            .env_remove("ERP_DB")
            .output()
            .unwrap();
        assert_one_line_failure(&out, "not an SQLite URI");
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(files_in(c.dir.path()), before, "{args:?}");
    }
}

#[test]
fn another_applications_database_is_refused_unchanged() {
    let c = cli();
    let foreign = c.dir.path().join("crm.sqlite");
    {
        let db = rusqlite::Connection::open(&foreign).unwrap();
        db.execute_batch(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);
             INSERT INTO customers (name) VALUES ('Acme'), ('Globex');",
        )
        .unwrap();
    }
    let bytes = std::fs::read(&foreign).unwrap();
    let before = files_in(c.dir.path());
    for args in [&["status"][..], &["institutions"][..], &["accounts"][..]] {
        let out = c.command(args).arg("--db").arg(&foreign).output().unwrap();
        assert_one_line_failure(&out, "not an erp database");
        assert_eq!(std::fs::read(&foreign).unwrap(), bytes, "{args:?}");
        assert_eq!(files_in(c.dir.path()), before, "{args:?}");
    }
    let db = rusqlite::Connection::open(&foreign).unwrap();
    let mode: String = db
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete", "still not in WAL mode");
}

#[test]
fn a_forced_disconnect_removes_the_links_stored_tokens() {
    let c = cli();
    c.connect();
    let stored = |c: &support::cli::Cli| -> i64 {
        rusqlite::Connection::open(&c.db)
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM plugin_storage
                 WHERE connection = (SELECT connection_id FROM links WHERE id = 1)",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert!(stored(&c) > 0, "the link holds tokens");
    // Ponto cannot be reached: the plugin cannot revoke; --force disconnects anyway.
    let out = c.run_env(
        &["disconnect", "--link", "1", "--force"],
        &[("PONTO_API_URL", "http://127.0.0.1:1/ponto-connect")],
    );
    assert_ok(&out);
    assert_eq!(stored(&c), 0, "no live token left behind");
}

#[test]
fn a_fifo_as_plugin_or_manifest_is_refused_without_hanging() {
    let c = cli();
    let real = std::path::PathBuf::from(erp_components::PONTO_PROVIDER);
    let fifo = |path: &std::path::Path| {
        let ok = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(ok.success());
    };
    // The plugin is a FIFO (its manifest is real), then the manifest is one.
    let plugin_fifo = c.dir.path().join("a");
    std::fs::create_dir(&plugin_fifo).unwrap();
    std::fs::copy(
        real.with_file_name("provider.toml"),
        plugin_fifo.join("provider.toml"),
    )
    .unwrap();
    fifo(&plugin_fifo.join("plugin.wasm"));
    let manifest_fifo = c.dir.path().join("b");
    std::fs::create_dir(&manifest_fifo).unwrap();
    std::fs::copy(&real, manifest_fifo.join("plugin.wasm")).unwrap();
    fifo(&manifest_fifo.join("provider.toml"));
    let inspect = |dir: &std::path::Path| {
        let plugin = dir.join("plugin.wasm");
        c.command(&["plugin", "inspect", plugin.to_str().unwrap()])
    };
    let install = {
        let plugin = plugin_fifo.join("plugin.wasm");
        c.command(&[
            "plugin",
            "install",
            plugin.to_str().unwrap(),
            "--allow-unsigned",
            "--yes",
        ])
    };
    for mut cmd in [inspect(&plugin_fifo), inspect(&manifest_fifo), install] {
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("erp hangs on a FIFO: {cmd:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        assert_one_line_failure(&out, "not a regular file");
    }
}

#[test]
fn a_failed_scheduled_sync_is_retried_sooner_and_status_says_so() {
    let c = cli();
    c.connect();
    let at = |t: &'static str| ("ERP_NOW", t);
    // Ponto cannot be reached: every account fails, nothing is stored.
    let out = c.run_env(
        &["sync", "--due"],
        &[
            at("2026-11-20T10:00:00Z"),
            ("PONTO_API_URL", "http://127.0.0.1:1/ponto-connect"),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let status = c.run_env(&["status"], &[at("2026-11-20T10:01:00Z")]);
    assert_ok(&status);
    assert!(
        stdout(&status).contains("1 failed sync(s) in a row; retried sooner"),
        "{}",
        stdout(&status)
    );
    // 20 minutes later the scheduled sync takes the link again (not 12 hours later).
    let out = c.run_env(&["sync", "--due"], &[at("2026-11-20T10:20:00Z")]);
    assert_ok(&out);
    assert!(!stdout(&out).contains("No link is due"), "{}", stdout(&out));
    let status: serde_json::Value = serde_json::from_slice(
        &c.run_env(&["--json", "status"], &[at("2026-11-20T10:21:00Z")])
            .stdout,
    )
    .unwrap();
    assert_eq!(
        status["links"][0]["sync_failures"], 0,
        "a clean sync resets it"
    );
}

/// ANSI and OSC sequences, a bell, a CR-LF and a forged `erp:` line, an 8-bit CSI, DEL and a
/// right-to-left override: what a hostile upstream could put in any text it sends.
const EVIL: &str =
    "Evil\u{1b}[2J\u{1b}]0;pwned\u{7}\r\nerp: forged line\u{9b}31m\u{7f}\u{202e}kcaB";

/// No character a terminal would act on, but the newlines between lines.
fn assert_inert(what: &str, out: &std::process::Output) {
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    for text in [stdout(out), stderr(out)] {
        let bad: Vec<char> = text.chars().filter(|c| unsafe_char(*c)).collect();
        assert!(bad.is_empty(), "{what}: raw {bad:?} in:\n{text}");
        assert!(
            !text.lines().any(|l| l.starts_with("erp: forged")),
            "{what}: a forged line:\n{text}"
        );
    }
}

#[test]
fn upstream_control_characters_are_neutralised_on_display_and_stored_exactly() {
    use ponto_sandbox::{Fault, HttpFailure};
    let c = cli();
    let rewrite = |field: &str| HttpFailure::UnknownEnumValue {
        field: field.into(),
        value: EVIL.into(),
    };
    c.sandbox.inject(
        Fault::http(rewrite("name"))
            .always()
            .on_path("/financial-institutions"),
    );
    c.sandbox.inject(
        Fault::http(rewrite("counterpartName"))
            .always()
            .on_path("/transactions"),
    );
    let institution = c.main_institution();
    let out = c.auto_connect(&["connect", "--institution", &institution], &[]);
    assert_ok(&out);
    assert_inert("connect", &out);
    assert!(stdout(&out).contains("Evil\\u{1b}[2J"), "{}", stdout(&out));
    let out = c.run(&["institutions"]);
    assert_ok(&out);
    assert_inert("institutions", &out);
    let out = c.run(&["--json", "institutions"]);
    assert_inert("institutions --json", &out);
    let out = c.run(&["sync"]);
    assert_ok(&out);
    assert_inert("sync", &out);

    // An error whose detail comes from the upstream.
    c.sandbox.inject(Fault::ClearAll);
    c.sandbox.inject(
        Fault::http(HttpFailure::JsonApiErrorWithoutDetail {
            status: 400,
            code: Some(EVIL.into()),
        })
        .on_path("/transactions"),
    );
    let out = c.run(&["sync"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert_inert("failed sync", &out);
    assert!(
        stderr(&out).lines().all(|l| l.starts_with("erp: ")),
        "{}",
        stderr(&out)
    );

    for args in [
        &["status"][..],
        &["accounts"],
        &["statements", "--journal", "BNK1", "--lines"],
    ] {
        let out = c.run(args);
        assert_ok(&out);
        assert_inert(&args.join(" "), &out);
    }
    let out = c.run(&["--json", "status"]);
    assert_inert("status --json", &out);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        status["links"][0]["institution_name"], EVIL,
        "JSON keeps the text"
    );

    // Stored exactly as the upstream sent it.
    let conn = rusqlite::Connection::open(&c.db).unwrap();
    let name: String = conn
        .query_row("SELECT institution_name FROM links", [], |r| r.get(0))
        .unwrap();
    assert_eq!(name, EVIL);
    let partners: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM statement_lines WHERE partner_name = ?1",
            [EVIL],
            |r| r.get(0),
        )
        .unwrap();
    assert!(partners > 0, "partner names stored as sent");
}

#[test]
fn update_credentials_refuses_another_organisation_unless_told() {
    let c = cli();
    c.connect_and_sync();
    // The link belongs to another organisation than the one the sandbox's consent comes from.
    let conn = rusqlite::Connection::open(&c.db).unwrap();
    conn.execute(
        "UPDATE links SET organization_id = 'org-elsewhere', organization_name = 'Other Org BV'",
        [],
    )
    .unwrap();
    let args = ["update-credentials", "--link", "1"];
    let (_, callback) = c.begin_and_consent(&args, &[]).expect("begin");
    // What begin recorded (its attempt, the plugin's pending state) is the reference: the
    // refused finish must change nothing more.
    let before = dump(&c.db);
    let out = c.finish(&args, &callback, &[]);
    assert_one_line_failure(&out, "Other Org BV");
    assert!(stderr(&out).contains("Acme BV"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--allow-other-organisation"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        dump(&c.db),
        before,
        "nothing changed, the plugin's tokens neither"
    );
    assert_ok(&c.run(&["sync", "--link", "1"]));

    let out = c.auto_connect(
        &[
            "update-credentials",
            "--link",
            "1",
            "--allow-other-organisation",
        ],
        &[],
    );
    assert_ok(&out);
    let name: String = conn
        .query_row(
            "SELECT organization_name FROM links WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(name, "Acme BV", "re-linked to the consent's organisation");
    assert_ok(&c.run(&["sync", "--link", "1"]));
}

#[test]
fn huge_values_and_bad_dates_are_one_line_before_anything_changes() {
    let c = cli();
    let institution = c.main_institution();
    let fresh = c.dir.path().join("fresh.sqlite");
    let out = c
        .command(&[
            "connect",
            "--institution",
            &institution,
            "--timeout-secs",
            "18446744073709551615",
        ])
        .arg("--db")
        .arg(&fresh)
        .output()
        .unwrap();
    assert_one_line_failure(&out, "--timeout-secs");
    assert_eq!(out.status.code(), Some(2));
    assert!(!fresh.exists(), "no database made by a refused command");

    c.connect_and_sync();
    let before = dump(&c.db);
    for since in [
        "--since=-0001-01-01",
        "--since=+2026-01-01",
        "--since=12026-01-01",
    ] {
        let out = c.run(&["sync", since]);
        assert_one_line_failure(&out, "not a date");
        assert_eq!(out.status.code(), Some(2), "{since}");
    }
    for (setting, needle) in [
        ("[host]\nrefresh-hours = 4294967295\n", "refresh-hours"),
        ("[host]\ncall-timeout-secs = 0\n", "call-timeout-secs"),
        (
            "[host]\nhttp-timeout-ms = 18446744073709551615\n",
            "http-timeout-ms",
        ),
    ] {
        let config = c.dir.path().join("huge.toml");
        let base = std::fs::read_to_string(&c.config).unwrap();
        let base = base.replace("[host]\n", "[host_base]\n");
        // The base file's [host] table holds max-lines only; the new one replaces it.
        let text = format!(
            "{}\n{setting}",
            base.split("[host_base]").next().unwrap_or_default()
        );
        std::fs::write(&config, text).unwrap();
        let out = c.command_with_config(&config, &["sync"]).output().unwrap();
        assert_one_line_failure(&out, needle);
        assert_eq!(out.status.code(), Some(2), "{setting}");
    }
    assert_eq!(dump(&c.db), before, "nothing changed in the database");

    // An unknown [provider.ponto] key is named in a warning; the command still runs.
    let config = c.dir.path().join("typo.toml");
    let text = std::fs::read_to_string(&c.config)
        .unwrap()
        .replace("[provider.ponto]\n", "[provider.ponto]\noverlap-dayz = 3\n");
    std::fs::write(&config, text).unwrap();
    let out = c
        .command_with_config(&config, &["institutions"])
        .output()
        .unwrap();
    assert_ok(&out);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("erp: warning:") && err.contains("`overlap-dayz`"),
        "{err}"
    );
    let out = c.run(&["institutions"]);
    assert_eq!(stderr(&out), "", "the known keys raise nothing");
}

#[test]
fn a_database_with_a_reset_schema_version_is_one_line() {
    let c = cli();
    c.connect();
    rusqlite::Connection::open(&c.db)
        .unwrap()
        .pragma_update(None, "user_version", 0)
        .unwrap();
    let out = c.run(&["status"]);
    assert_one_line_failure(&out, "schema version 0");
    assert!(!stderr(&out).contains("CREATE TABLE"), "{}", stderr(&out));
}

#[test]
fn printing_into_a_closed_pipe_ends_quietly() {
    // `erp statements --json | head` used to panic ("failed printing to stdout: Broken pipe").
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_erp"))
        .args(["plugin", "--help"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    use std::os::unix::process::ExitStatusExt;
    const SIGPIPE: i32 = 13; // Linux
    assert_eq!(out.status.signal(), Some(SIGPIPE), "{:?}", out.status);
}

#[test]
fn a_command_leaves_no_file_in_the_working_directory() {
    // The settings check ran a throwaway plugin instance on storage named `:memory:`, which
    // left a file of that name in whatever directory `erp` was started from.
    let c = cli();
    let cwd = tempfile::tempdir().unwrap();
    let out = c
        .command(&["institutions"])
        .current_dir(cwd.path())
        .output()
        .unwrap();
    assert_ok(&out);
    let left: Vec<_> = std::fs::read_dir(cwd.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
