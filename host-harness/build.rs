//! Builds the WebAssembly components this crate runs: the Ponto provider and the hostile test
//! guests, with a nested `cargo build --target wasm32-wasip2`, so that a plain `cargo build` or
//! `cargo test` from a clean clone needs no manual step.
//!
//! Traps avoided (measured, see shared/build-notes.md): the nested cargo gets its own target dir
//! (sharing ours deadlocks on the build lock), and the outer build's RUSTFLAGS, wrappers and
//! target settings are scrubbed so they neither leak into the wasm build nor override its config.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const PACKAGES: &[(&str, &str, &str)] = &[
    // (package, artifact, env var naming its path)
    (
        "ponto-provider",
        "ponto_provider.wasm",
        "PONTO_PROVIDER_WASM",
    ),
    ("hostile-guest", "hostile_guest.wasm", "HOSTILE_GUEST_WASM"),
    ("greedy-guest", "greedy_guest.wasm", "GREEDY_GUEST_WASM"),
];
// Each guest also gets a directory of its own, with its manifest beside it (`*_DIR_WASM`).

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    for dir in [
        "plugin/src",
        "plugin/Cargo.toml",
        "plugin/provider.toml",
        "guests",
        "wit",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let target_dir = root.join("target").join("wasm");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir)
        // Size matters for a plugin shipped to every ERP (target: ≤ 1.5 MiB); these settings apply
        // to this nested wasm build only, not to the host's own release build.
        .args(["--config", "profile.release.opt-level=\"s\""])
        .args(["--config", "profile.release.lto=true"])
        .args(["--config", "profile.release.codegen-units=1"])
        .args(["--config", "profile.release.strip=true"]);
    for (package, _, _) in PACKAGES {
        cmd.args(["-p", package]);
    }
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    for (key, _) in env::vars() {
        if key.starts_with("CARGO_PROFILE_")
            || key.starts_with("CARGO_CFG_")
            || key.starts_with("CARGO_FEATURE_")
        {
            cmd.env_remove(key);
        }
    }
    let log = PathBuf::from(env::var("OUT_DIR").unwrap()).join("wasm-build.log");
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo for the wasm build: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let _ = std::fs::write(&log, stderr.as_bytes());
    let out = target_dir.join("wasm32-wasip2").join("release");
    if !output.status.success() {
        if stderr.contains("wasm32-wasip2")
            && (stderr.contains("target may not be installed")
                || stderr.contains("can't find crate for `core`")
                || stderr.contains("can't find crate for `std`"))
        {
            panic!("the wasm32-wasip2 target is missing: run `rustup target add wasm32-wasip2`");
        }
        // While someone edits the plugin, keep serving the last good build rather than blocking
        // every host build; a clean clone has none, so there a broken plugin still fails loudly.
        let stale_ok = PACKAGES
            .iter()
            .all(|(_, artifact, _)| out.join(artifact).exists());
        if !stale_ok {
            panic!("building the WebAssembly components failed:\n{stderr}");
        }
        println!(
            "cargo:warning=the wasm build failed; using the previous components (log: {})",
            log.display()
        );
    }
    for (_, artifact, var) in PACKAGES {
        println!("cargo:rustc-env={var}={}", out.join(artifact).display());
    }
    // The provider ships with its manifest beside it.
    copy(
        &root.join("plugin/provider.toml"),
        &out.join("provider.toml"),
    );
    for guest in ["hostile", "greedy"] {
        let dir = out.join(format!("{guest}-guest"));
        std::fs::create_dir_all(&dir).unwrap();
        copy(
            &out.join(format!("{guest}_guest.wasm")),
            &dir.join(format!("{guest}_guest.wasm")),
        );
        copy(
            &root.join(format!("guests/{guest}/provider.toml")),
            &dir.join("provider.toml"),
        );
        println!(
            "cargo:rustc-env={}_DIR_WASM={}",
            guest.to_uppercase(),
            dir.join(format!("{guest}_guest.wasm")).display()
        );
    }
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
}
