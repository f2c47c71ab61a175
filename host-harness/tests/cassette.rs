//! Cassettes (issue 14): a sandbox session recorded with `erp --record` holds no secret the
//! sandbox issued and replays through `erp plugin check`; the release component passes every
//! property on the shipped cassettes; the forgetful guest fails, and the output names what.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use support::cli::{Cli, assert_ok, stdout};
use support::sandbox::standard_sandbox;

const PONTO: &str = erp_components::PONTO_PROVIDER;
const FORGETFUL: &str = erp_components::FORGETFUL_GUEST;

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cassettes")
        .join(name)
}

fn check(component: &str, cassette: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_erp"))
        .args(["plugin", "check", component, "--cassette"])
        .arg(cassette)
        .args(extra)
        .output()
        .expect("run erp plugin check")
}

fn assert_all_passed(out: &Output, properties: usize) {
    assert_ok(out);
    let text = stdout(out);
    let verdicts: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(verdicts.len(), properties + 1, "{text}");
    assert!(
        verdicts[..properties].iter().all(|l| l.starts_with("ok ")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{properties} properties: {properties} passed, 0 failed"
        )),
        "{text}"
    );
}

#[test]
fn the_release_component_passes_every_property_on_the_shipped_cassettes() {
    for cassette in ["sandbox-four-banks.json", "ibanity-layout.json"] {
        let out = check(PONTO, &shipped(cassette), &[]);
        assert_all_passed(&out, 6);
        for property in [
            "replay",
            "resume",
            "determinism",
            "mutations",
            "limits",
            "log-secrets",
        ] {
            assert!(
                stdout(&out).contains(&format!("ok    {property}")),
                "{cassette}"
            );
        }
    }
}

#[test]
fn the_forgetful_guest_fails_resume_and_mutations_by_name() {
    let out = check(FORGETFUL, &shipped("forgetful-ledger.json"), &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    // It replays fine in one instance: the suite fails exactly where the contract is broken.
    assert!(text.contains("ok    replay"), "{text}");
    assert!(
        text.contains("FAIL  resume") && text.contains("3 doubled, 0 lost"),
        "{text}"
    );
    assert!(
        text.contains("FAIL  mutations") && text.contains("the ledger answered 50"),
        "{text}"
    );
    assert!(text.contains("6 properties: 4 passed, 2 failed"), "{text}");
}

fn sandbox_cli() -> Cli {
    Cli::new(standard_sandbox(), 40)
}

#[test]
fn a_recorded_sandbox_session_holds_no_secret_the_sandbox_issued_and_replays() {
    let c = sandbox_cli();
    let connect = c.dir.path().join("connect.json");
    let sync = c.dir.path().join("sync.json");
    // The consent is a person's; what follows it (the code exchanged for tokens) is recorded.
    let (begun, callback) = c
        .begin_and_consent(&["connect"], &[])
        .unwrap_or_else(|out| panic!("connect begin: {out:?}"));
    assert_ok(&begun);
    let out = c.run(&[
        "--record",
        connect.to_str().unwrap(),
        "connect",
        "finish",
        "--callback-url",
        &callback,
    ]);
    assert_ok(&out);
    // Twice: the second sync refreshes the access token (a rotation inside the recording).
    assert_ok(&c.run(&["sync", "--customer-ip", "127.0.0.1"]));
    let out = c.run(&[
        "--record",
        sync.to_str().unwrap(),
        "sync",
        "--customer-ip",
        "127.0.0.1",
    ]);
    assert_ok(&out);

    let secrets = c.sandbox.issued_secrets();
    assert!(!secrets.access_tokens.is_empty() && !secrets.refresh_tokens.is_empty());
    assert!(!secrets.authorization_codes.is_empty());
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("sandbox-client-id:{}", secrets.client_secret));
    let mut all: Vec<&String> = secrets
        .access_tokens
        .iter()
        .chain(&secrets.refresh_tokens)
        .chain(&secrets.authorization_codes)
        .collect();
    all.push(&secrets.client_secret);
    all.push(&basic);
    for file in [&connect, &sync] {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.contains("cassette-secret-"), "placeholders are there");
        for secret in &all {
            assert!(
                !text.contains(secret.as_str()),
                "{} holds a secret the sandbox issued",
                file.display()
            );
        }
    }
    let cassette: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sync).unwrap()).unwrap();
    assert!(cassette["interactions"].as_array().unwrap().len() > 3);
    assert!(
        !cassette["connections"][0]["storage"]
            .as_object()
            .unwrap()
            .is_empty()
    );

    // The sync's cassette replays: no consent needed, same lines.
    let out = check(PONTO, &sync, &["--no-mutations"]);
    assert_all_passed(&out, 5);
}

#[test]
fn a_pseudonymised_recording_hides_ibans_and_names_and_still_replays() {
    let c = sandbox_cli();
    c.connect();
    let sync = c.dir.path().join("sync.json");
    let out = c.run(&[
        "--record",
        sync.to_str().unwrap(),
        "--pseudonymise",
        "sync",
        "--customer-ip",
        "127.0.0.1",
    ]);
    assert_ok(&out);
    let text = std::fs::read_to_string(&sync).unwrap();
    for account in c.sandbox.accounts() {
        assert!(
            !text.contains(&account.reference),
            "the account reference {} is still there",
            account.reference
        );
    }
    assert!(text.contains("Person 1"), "names replaced");
    let out = check(PONTO, &sync, &["--no-mutations"]);
    assert_all_passed(&out, 5);
}
