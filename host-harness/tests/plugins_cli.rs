//! The marketplace as an operator meets it, with real parts: the `erp` binary, Debian's
//! `docker-registry` on 127.0.0.1, the packaged release component, the Ponto sandbox. Keygen,
//! trust, publish, install into a fresh database, list, connect and sync, upgrade, remove; and
//! the refusals (a changed byte in the registry, unsigned, untrusted): one line, nothing
//! installed.

mod support;

use std::process::Output;

use host_harness::plugins::oci::{Client, ClientOptions};
use host_harness::plugins::reference::Reference;
use support::cli::{Cli, assert_ok, stderr, stdout};
use support::plugins::Registry;
use support::sandbox::standard_sandbox;

fn cli() -> Cli {
    Cli::bare(standard_sandbox(), 200)
}

/// One line on stderr, a non-zero exit.
fn assert_one_line_failure(out: &Output, needle: &str) {
    assert!(!out.status.success(), "must fail: {}", stdout(out));
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got:\n{err}");
    assert!(lines[0].starts_with("erp: "), "{err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
}

/// `erp plugin list --json`, parsed.
fn list(c: &Cli) -> serde_json::Value {
    let out = c.run(&["--json", "plugin", "list"]);
    assert_ok(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A publisher key pair in the test's directory: (secret key file, public key file).
fn keygen(c: &Cli, name: &str) -> (String, String) {
    let key = c.dir.path().join(name);
    assert_ok(&c.run(&["plugin", "keygen", "--out", key.to_str().unwrap()]));
    let key = key.to_str().unwrap().to_owned();
    (key.clone(), format!("{key}.pub"))
}

/// `erp plugin publish` of the packaged release component; the artifact digest it printed.
fn publish(c: &Cli, key: &str, to: &str) -> String {
    let out = c.run(&[
        "plugin",
        "publish",
        erp_components::PONTO_PROVIDER,
        "--to",
        to,
        "--key",
        key,
    ]);
    assert_ok(&out);
    let text = stdout(&out);
    text.split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .map(|w| w.trim_end_matches([',', ')']).to_owned())
        .unwrap_or_else(|| panic!("no digest in: {text}"))
}

/// The statements of every journal, with their lines, as `erp` prints them.
fn books(c: &Cli) -> String {
    let mut all = String::new();
    for journal in ["BNK1", "BNK2"] {
        let out = c.run(&["statements", "--journal", journal, "--lines"]);
        assert_ok(&out);
        all.push_str(&stdout(&out));
    }
    all
}

#[test]
fn plugin_help_lists_every_verb() {
    let c = cli();
    let out = c.run(&["plugin", "--help"]);
    assert_ok(&out);
    for verb in [
        "keygen", "trust", "publish", "install", "list", "upgrade", "remove", "inspect",
    ] {
        assert!(
            stdout(&out)
                .lines()
                .any(|l| l.trim_start().starts_with(verb)),
            "{verb} missing in:\n{}",
            stdout(&out)
        );
    }
}

#[test]
fn publish_install_sync_upgrade_remove_through_a_registry() {
    let registry = Registry::start();
    let c = cli();
    let (key, public) = keygen(&c, "publisher.key");
    let to = registry.reference("acme/ponto:0.1.0");
    let digest = publish(&c, &key, &to);

    // Nothing is trusted yet: refused, nothing installed, no database left behind.
    let out = c.run(&["plugin", "install", &to, "--yes"]);
    assert_one_line_failure(&out, "not a trusted publisher");
    assert!(stderr(&out).contains(&digest), "{}", stderr(&out));
    assert_eq!(list(&c), serde_json::json!([]), "nothing installed");

    assert_ok(&c.run(&["plugin", "trust", &public]));
    let out = c.run(&["plugin", "install", &to, "--yes"]);
    assert_ok(&out);
    for needle in [
        "Provider ponto (Ponto)",
        "network      https://api.ibanity.com",
        "client-secret (secret), environment PONTO_CLIENT_SECRET",
    ] {
        assert!(
            stdout(&out).contains(needle),
            "`{needle}` in:\n{}",
            stdout(&out)
        );
    }
    let listed = list(&c);
    let p = &listed[0];
    assert_eq!(p["id"], "ponto");
    assert_eq!(p["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(p["digest"], digest.as_str());
    assert_eq!(p["contract-version"], host_harness::runtime::API_VERSION);
    assert!(p["publisher"].as_str().unwrap().starts_with("ed25519:"));
    assert_eq!(
        p["granted-origins"],
        serde_json::json!([
            "https://api.ibanity.com",
            "http://127.0.0.1:*",
            "http://localhost:*"
        ])
    );
    // Stored by digest beside the database.
    let stored = c
        .dir
        .path()
        .join("erp.plugins")
        .join(format!("{}.wasm", digest.replace(':', "-")));
    assert!(stored.is_file(), "{}", stored.display());

    // Connect and sync with the installed plugin: the same books as the plugin run from its
    // file (today's path), against the same sandbox.
    c.connect_and_sync();
    let from_registry = books(&c);
    let reference = Cli::new(standard_sandbox(), 200);
    reference.connect();
    assert_ok(&reference.run(&["sync"]));
    assert_eq!(from_registry, books(&reference));
    assert!(
        from_registry.lines().filter(|l| l.ends_with("ok")).count() > 10,
        "statements that chain: {from_registry}"
    );

    // Upgrade (a newer tag) keeps the link, its connection and the plugin's storage.
    let storage_before: i64 = rusqlite::Connection::open(&c.db)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM plugin_storage WHERE connection != 'catalogue'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(storage_before > 0);
    let newer = registry.reference("acme/ponto:0.1.1");
    publish(&c, &key, &newer);
    let out = c.run(&["plugin", "upgrade", "ponto", &newer, "--yes"]);
    assert_ok(&out);
    let listed = list(&c);
    assert_eq!(listed[0]["links"], serde_json::json!([1]));
    assert!(
        listed[0]["source"]
            .as_str()
            .unwrap()
            .ends_with("acme/ponto:0.1.1"),
        "{listed}"
    );
    let storage_after: i64 = rusqlite::Connection::open(&c.db)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM plugin_storage WHERE connection != 'catalogue'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        storage_after, storage_before,
        "the plugin's storage is kept"
    );
    assert_ok(&c.run(&["sync", "--link", "1"]));

    // Removal is refused while link 1 uses it; --force removes it.
    let out = c.run(&["plugin", "remove", "ponto"]);
    assert_one_line_failure(&out, "used by link(s) 1");
    assert_eq!(list(&c).as_array().unwrap().len(), 1);
    assert_ok(&c.run(&["plugin", "remove", "ponto", "--force"]));
    assert_eq!(list(&c), serde_json::json!([]));
    let out = c.run(&["sync"]);
    assert_one_line_failure(&out, "no provider");
}

#[test]
fn a_changed_byte_unsigned_or_untrusted_artifact_is_refused_and_nothing_installed() {
    let registry = Registry::start();
    let c = cli();
    let (key, public) = keygen(&c, "publisher.key");
    let (other_key, _) = keygen(&c, "other.key");
    // Identical bytes share one blob in the registry: the tampered artifact gets its own key
    // (its own signature, so its own blob).
    let (tamper_key, tamper_public) = keygen(&c, "tamper.key");
    let good = registry.reference("acme/ponto:good");
    publish(&c, &key, &good);
    assert_ok(&c.run(&["plugin", "trust", &public]));
    assert_ok(&c.run(&["plugin", "trust", &tamper_public]));
    let before = list(&c);

    // One byte changed in the registry's stored blob.
    let tampered = registry.reference("acme/ponto:tampered");
    let digest = publish(&c, &tamper_key, &tampered);
    let blob = registry.blob_path(&digest);
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&blob, &bytes).unwrap();
    let out = c.run(&["plugin", "install", &tampered, "--yes"]);
    assert_one_line_failure(&out, &digest);

    // Unsigned: pushed as it is, without `erp plugin publish`.
    let unsigned = registry.reference("acme/ponto:unsigned");
    let r: Reference = unsigned.parse().unwrap();
    let raw = std::fs::read(erp_components::PONTO_PROVIDER).unwrap();
    let pushed = Client::new(&r, ClientOptions::for_reference(&r))
        .unwrap()
        .push(&r, &raw)
        .unwrap();
    let out = c.run(&["plugin", "install", &unsigned, "--yes"]);
    assert_one_line_failure(&out, "not signed");
    assert!(
        stderr(&out).contains(&pushed.layer_digest),
        "{}",
        stderr(&out)
    );

    // Signed by a key the operator does not trust.
    let untrusted = registry.reference("acme/ponto:untrusted");
    let digest = publish(&c, &other_key, &untrusted);
    let out = c.run(&["plugin", "install", &untrusted, "--yes"]);
    assert_one_line_failure(&out, "not a trusted publisher");
    assert!(stderr(&out).contains(&digest), "{}", stderr(&out));

    // Granting an origin the plugin did not ask for is refused too.
    let out = c.run(&[
        "plugin",
        "install",
        &good,
        "--grant",
        "https://evil.example",
    ]);
    assert_one_line_failure(&out, "does not ask for it");

    assert_eq!(list(&c), before, "nothing installed");
    let dir = c.dir.path().join("erp.plugins");
    assert!(
        !dir.exists() || std::fs::read_dir(&dir).unwrap().next().is_none(),
        "no artifact stored"
    );

    // Untrusting the key: even the good artifact is then refused.
    assert_ok(&c.run(&["plugin", "trust", "--untrust", &public]));
    let out = c.run(&["plugin", "install", &good, "--yes"]);
    assert_one_line_failure(&out, "not a trusted publisher");

    // --allow-unsigned says so loudly, and grants only what --grant names.
    let out = c.run(&[
        "plugin",
        "install",
        &unsigned,
        "--allow-unsigned",
        "--yes",
        "--grant",
        "http://127.0.0.1:*",
    ]);
    assert_ok(&out);
    assert!(stderr(&out).contains("UNSIGNED"), "{}", stderr(&out));
    assert_eq!(
        list(&c)[0]["granted-origins"],
        serde_json::json!(["http://127.0.0.1:*"])
    );
}

#[test]
fn a_database_from_before_plugins_keeps_syncing_once_the_provider_is_installed() {
    let c = Cli::new(standard_sandbox(), 200);
    c.connect_and_sync();
    // Back to schema 2 (before issue 12): a link on provider `ponto`, its tokens, no plugins
    // table, no plugin directory.
    {
        let db = rusqlite::Connection::open(&c.db).unwrap();
        db.execute_batch(
            "DROP TABLE plugins; DROP TABLE trusted_publishers; PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    std::fs::remove_dir_all(c.dir.path().join("erp.plugins")).unwrap();
    let out = c.run(&["sync"]);
    assert_one_line_failure(&out, "no provider");
    assert_ok(&c.run(&["status"]));

    c.install_provider();
    let version: i64 = rusqlite::Connection::open(&c.db)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 3, "migrated");
    assert_eq!(list(&c)[0]["links"], serde_json::json!([1]));
    // The link's stored tokens still work: a further sync, no new consent.
    c.sandbox
        .add_transactions(&c.sandbox.accounts()[0].id.clone(), 3);
    let out = c.run(&["sync", "--link", "1"]);
    assert_ok(&out);
}

#[test]
fn contract_versions_and_several_providers() {
    use host_harness::plugins::{artifact, manifest};
    let c = cli();
    let built = std::fs::read(erp_components::PONTO_PROVIDER).unwrap();
    let meta = host_harness::plugins::metadata::read(&built).unwrap();
    let ours = manifest::read(&built).unwrap();
    let write = |name: &str, m: &manifest::CapabilityManifest| {
        let path = c.dir.path().join(name);
        std::fs::write(&path, artifact::package(&built, &meta, m).unwrap()).unwrap();
        path.to_str().unwrap().to_owned()
    };

    // Built against another contract minor: one line naming both versions, nothing installed.
    let old = write(
        "old.wasm",
        &manifest::CapabilityManifest {
            contract_version: "0.1.0".into(),
            ..ours.clone()
        },
    );
    let out = c.run(&["plugin", "install", &old, "--allow-unsigned", "--yes"]);
    assert_one_line_failure(&out, "0.1.0");
    assert!(
        stderr(&out).contains(host_harness::runtime::API_VERSION),
        "{}",
        stderr(&out)
    );
    assert_eq!(list(&c), serde_json::json!([]));

    // Two providers: a verb without --provider names both; --provider picks one.
    c.install_provider();
    let second = write(
        "second.wasm",
        &manifest::CapabilityManifest {
            id: "ponto-copy".into(),
            name: "Ponto copy".into(),
            ..ours
        },
    );
    assert_ok(&c.run(&["plugin", "install", &second, "--allow-unsigned", "--yes"]));
    let out = c.run(&["institutions"]);
    assert_one_line_failure(&out, "several providers are installed (ponto, ponto-copy)");
    let out = c.run_env(
        &["institutions", "--provider", "ponto-copy"],
        &[("PONTO_API_URL", &c.sandbox.api_url())],
    );
    assert_ok(&out);
    assert!(
        stdout(&out).contains("Sandbox Bank Belgium"),
        "{}",
        stdout(&out)
    );
}
