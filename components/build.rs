//! Builds the WebAssembly components of this repository: the Ponto provider and the hostile test
//! guests, with a nested `cargo build --target wasm32-wasip2`, so that a plain `cargo build` or
//! `cargo test` from a clean clone needs no manual step.
//!
//! Traps avoided (measured, see shared/build-notes.md): the nested cargo gets its own target dir
//! (sharing ours deadlocks on the build lock), and the outer build's RUSTFLAGS, wrappers and
//! target settings are scrubbed so they neither leak into the wasm build nor override its config.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the nested build makes, and where each component is handed over with its manifest.
struct Component {
    package: &'static str,
    artifact: &'static str,
    /// Environment variable (for the crate and its tests) naming the component's path.
    env: &'static str,
    /// Its `provider.toml`, relative to the workspace root.
    manifest: &'static str,
    /// Packaged as a provider artifact (metadata and capability manifest embedded, `provider.toml`
    /// in the manifest's source form); the test guests keep the bare file with a legacy
    /// `provider.toml` beside it.
    packaged: bool,
    /// A directory of its own under the output dir, so guests' manifests do not collide with
    /// the provider's; none leaves it where cargo put it.
    dir: Option<&'static str>,
}

const COMPONENTS: &[Component] = &[
    Component {
        package: "ponto-provider",
        artifact: "ponto_provider.wasm",
        env: "PONTO_PROVIDER_WASM",
        manifest: "plugin/provider.toml",
        dir: None,
        packaged: true,
    },
    Component {
        package: "hostile-guest",
        artifact: "hostile_guest.wasm",
        env: "HOSTILE_GUEST_WASM",
        manifest: "guests/hostile/provider.toml",
        packaged: false,
        dir: Some("hostile-guest"),
    },
    Component {
        package: "greedy-guest",
        artifact: "greedy_guest.wasm",
        env: "GREEDY_GUEST_WASM",
        manifest: "guests/greedy/provider.toml",
        packaged: false,
        dir: Some("greedy-guest"),
    },
    Component {
        package: "v010-guest",
        artifact: "v010_guest.wasm",
        env: "V010_GUEST_WASM",
        manifest: "guests/v010/provider.toml",
        packaged: false,
        dir: Some("v010-guest"),
    },
    Component {
        package: "files-guest",
        artifact: "files_guest.wasm",
        env: "FILES_GUEST_WASM",
        manifest: "guests/files/provider.toml",
        packaged: false,
        dir: Some("files-guest"),
    },
    Component {
        package: "forgetful-guest",
        artifact: "forgetful_guest.wasm",
        env: "FORGETFUL_GUEST_WASM",
        manifest: "guests/forgetful/provider.toml",
        packaged: false,
        dir: Some("forgetful-guest"),
    },
];

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
        // to this nested wasm build only, not to the host's own release build. Optimised for
        // speed: with chrono-tz cut to the carried zones (below) opt-level 3 fits the cap and
        // runs the sync logic ~20% faster than "s" (issue 6, figure 2).
        .args(["--config", "profile.release.opt-level=3"])
        .args(["--config", "profile.release.lto=true"])
        .args(["--config", "profile.release.codegen-units=1"])
        .args(["--config", "profile.release.strip=true"])
        // chrono-tz's table cut to the zones the provider carries (its size cap, issue 6).
        .env("CHRONO_TZ_TIMEZONE_FILTER", zone_filter(&root));
    for c in COMPONENTS {
        cmd.args(["-p", c.package]);
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
        let stale_ok = COMPONENTS.iter().all(|c| out.join(c.artifact).exists());
        if !stale_ok {
            panic!("building the WebAssembly components failed:\n{stderr}");
        }
        println!(
            "cargo:warning=the wasm build failed; using the previous components (log: {})",
            log.display()
        );
    }
    for c in COMPONENTS {
        let built = out.join(c.artifact);
        let dir = c.dir.map_or_else(|| out.clone(), |d| out.join(d));
        std::fs::create_dir_all(&dir).unwrap();
        let shipped = dir.join(c.artifact);
        if !c.packaged {
            if shipped != built {
                copy(&built, &shipped);
            }
            copy(&root.join(c.manifest), &dir.join("provider.toml"));
            println!("cargo:rustc-env={}={}", c.env, shipped.display());
            continue;
        }
        let manifest = read_manifest(&root.join(c.manifest));
        // Hosts that load a bare file (the Python host, `Runtime::load`) read a `provider.toml`
        // beside it: derived from the manifest, beside the bare build and the packaged one.
        let legacy = legacy_provider_toml(&manifest, &package_version(&root));
        write(&dir.join("provider.toml"), legacy.as_bytes());
        let packaged_dir = target_dir.join("packaged");
        std::fs::create_dir_all(&packaged_dir).unwrap();
        let packaged = packaged_dir.join(c.artifact);
        let bytes =
            std::fs::read(&built).unwrap_or_else(|e| panic!("reading {}: {e}", built.display()));
        let meta = package_metadata(&root, c.package);
        let artifact = erp_plugins::artifact::package(&bytes, &meta, &manifest)
            .unwrap_or_else(|e| panic!("packaging {}: {e}", c.artifact));
        write(&packaged, &artifact);
        write(&packaged_dir.join("provider.toml"), legacy.as_bytes());
        println!("cargo:rustc-env={}={}", c.env, packaged.display());
    }
}

fn read_manifest(path: &Path) -> erp_plugins::manifest::CapabilityManifest {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    erp_plugins::manifest::CapabilityManifest::from_toml(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The workspace version (every crate inherits it).
fn package_version(root: &Path) -> String {
    let workspace = read_toml(&root.join("Cargo.toml"));
    workspace["workspace"]["package"]["version"]
        .as_str()
        .expect("workspace.package.version")
        .to_owned()
}

/// The component's standard metadata: its crate's name, version, description, authors,
/// license, repository and homepage, and the git commit it was built from.
fn package_metadata(root: &Path, package: &str) -> erp_plugins::metadata::PackageMetadata {
    let workspace = read_toml(&root.join("Cargo.toml"));
    let manifest = read_toml(&root.join("plugin/Cargo.toml"));
    let pkg = &manifest["package"];
    assert_eq!(
        pkg["name"].as_str(),
        Some(package),
        "plugin/Cargo.toml names {package}"
    );
    // A field of [package], or the workspace's when the crate inherits it.
    let field = |key: &str| match pkg.get(key) {
        Some(toml::Value::Table(t)) if t.get("workspace").is_some() => {
            workspace["workspace"]["package"]
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        }
        Some(v) => v.as_str().map(str::to_owned),
        None => None,
    };
    let authors = pkg.get("authors").and_then(|a| a.as_array()).map(|a| {
        a.iter()
            .filter_map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    });
    let revision = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|r| !r.is_empty());
    erp_plugins::metadata::PackageMetadata {
        name: Some(package.to_owned()),
        version: Some(package_version(root)),
        description: field("description"),
        authors,
        licenses: field("license"),
        source: field("repository"),
        homepage: field("homepage"),
        revision,
    }
}

/// `provider.toml` in the form hosts loading a bare file read: id, name, version, api-version
/// and the requested origins.
fn legacy_provider_toml(m: &erp_plugins::manifest::CapabilityManifest, version: &str) -> String {
    let origins: Vec<String> = m.origins.iter().map(|o| format!("{o:?}")).collect();
    format!(
        "# Derived from the capability manifest by components/build.rs; for hosts that load a bare\n\
         # .wasm file. The packaged component carries the full manifest.\n\
         id = {:?}\nname = {:?}\nversion = {version:?}\napi-version = {:?}\n\n[capabilities]\nhttp = [{}]\n",
        m.id,
        m.name,
        m.contract_version,
        origins.join(", ")
    )
}

fn read_toml(path: &Path) -> toml::Table {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// A regex of the provider's carried zones, from the list between the `BEGIN ZONES` and
/// `END ZONES` markers of plugin/src/mapping.rs (one source of truth: the provider applies the
/// same list at run time, so a zone the component lacks is one its native build refuses too).
fn zone_filter(root: &Path) -> String {
    let path = root.join("plugin/src/mapping.rs");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let list = text
        .split_once("// BEGIN ZONES")
        .and_then(|(_, rest)| rest.split_once("// END ZONES"))
        .map(|(list, _)| list)
        .unwrap_or_else(|| panic!("no ZONES list between markers in {}", path.display()));
    let zones: Vec<String> = list
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"')?.strip_suffix("\","))
        .map(|z| match z.strip_suffix('*') {
            Some(area) => format!("{}.+", escape(area)),
            None => escape(z),
        })
        .collect();
    assert!(
        !zones.is_empty(),
        "the ZONES list in {} is empty",
        path.display()
    );
    format!("^({})$", zones.join("|"))
}

fn escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
}
