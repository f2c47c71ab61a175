//! The `erp-dev` binary: its verbs' --help, the demo (one command, fresh files, never into real
//! books), the sandbox's banner, the consent filler.

use std::path::Path;
use std::process::{Command, Output};

fn erp_dev(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_erp-dev"));
    c.args(args);
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

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "erp-dev failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

/// One line on stderr, a non-zero exit.
fn assert_one_line_failure(out: &Output, needle: &str) {
    assert!(!out.status.success(), "must fail: {}", stdout(out));
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got:\n{err}");
    assert!(lines[0].starts_with("erp-dev: "), "{err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
}

#[test]
fn every_verb_has_help() {
    for verb in ["demo", "sandbox", "consent", "bench"] {
        let out = erp_dev(&[verb, "--help"]).output().unwrap();
        assert_ok(&out);
        assert!(
            stdout(&out).contains("Usage: erp-dev"),
            "{verb}: {}",
            stdout(&out)
        );
    }
}

#[test]
fn the_demo_prints_statements_and_a_consent_warning() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.sqlite");
    let out = erp_dev(&["demo", "--db"]).arg(&db).output().unwrap();
    assert_ok(&out);
    let text = stdout(&out);
    for needle in [
        "Add a Bank Account",
        "Bank statements",
        "BNK1",
        "Consent reminders",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
}

/// The bytes of every file in `dir`, by name.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_demo_refuses_a_database_that_holds_anything() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("books.sqlite");
    // Books with a link, accounts and statements in them: what the demo itself makes.
    assert_ok(
        &erp_dev(&["demo", "--transactions", "5", "--db"])
            .arg(&db)
            .output()
            .unwrap(),
    );
    let before = snapshot(dir.path());
    // --db, then ERP_DB: the same refusal, before anything starts.
    let out = erp_dev(&["demo", "--transactions", "5", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_one_line_failure(&out, "already exists");
    assert_eq!(out.status.code(), Some(2));
    let out = erp_dev(&["demo", "--transactions", "5"])
        .env("ERP_DB", &db)
        .output()
        .unwrap();
    assert_one_line_failure(&out, "already exists");
    assert!(
        snapshot(dir.path()) == before,
        "the real books are untouched, no file made or removed"
    );
}

#[test]
fn the_default_demo_runs_twice_in_fresh_files() {
    let tmp = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let out = erp_dev(&["demo", "--transactions", "10"])
            .env("TMPDIR", tmp.path())
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert_ok(&out);
        assert!(stdout(&out).contains("Bank statements"), "{}", stdout(&out));
    }
}

#[test]
fn the_sandbox_banner_gives_the_credentials_and_an_environment_block_that_works() {
    use std::io::BufRead;
    /// The sandbox serves until killed: killed however the test ends.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Killed(
        erp_dev(&["sandbox", "--port", "0"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The banner's lines through a channel: a banner that stops short (the sandbox keeps
    // serving) fails the test instead of hanging it.
    let pipe = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = String::new();
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(60)) {
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("then:") {
            break;
        }
    }
    assert!(
        banner.contains("client id:      sandbox-client-id")
            && banner.contains("client secret:  sandbox-client-secret"),
        "{banner}"
    );
    // Paste the block: `export NAME='value'`.
    let env: Vec<(String, String)> = banner
        .lines()
        .filter_map(|l| l.trim().strip_prefix("export "))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect();
    let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "PONTO_API_URL",
            "PONTO_AUTH_URL",
            "PONTO_CLIENT_ID",
            "PONTO_CLIENT_SECRET"
        ],
        "{banner}"
    );
    // The block configures the provider: its institutions are the sandbox's, and the consent
    // filler turns its consent page into a callback URL.
    use host_harness::erp::provider::{ComponentFactory, ProviderFactory};
    let env: std::collections::BTreeMap<String, String> = env.into_iter().collect();
    let settings =
        erp_devkit::with_ponto(host_harness::erp::Settings::load_with_env(None, &env).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let host = ComponentFactory::load(&settings, &dir.path().join("erp.sqlite")).unwrap();
    let mut provider = host.session("banner-test").unwrap();
    let institutions = provider
        .list_institutions(&host_harness::runtime::types::InstitutionFilter {
            country: None,
            name_contains: None,
        })
        .unwrap();
    let belgium = institutions
        .iter()
        .find(|i| i.name == "Sandbox Bank Belgium")
        .expect("the sandbox's institutions");
    let start = provider
        .begin_connect(&belgium.id, "http://127.0.0.1:8765/callback")
        .unwrap();
    let out = erp_dev(&["consent", &start.authorization_url])
        .output()
        .unwrap();
    assert_ok(&out);
    assert!(
        stdout(&out).starts_with("http://127.0.0.1:8765/callback?")
            && stdout(&out).contains("code="),
        "{}",
        stdout(&out)
    );
}
