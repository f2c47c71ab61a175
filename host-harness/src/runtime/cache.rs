//! On-disk cache of compiled components. Compiling a component costs ~0.3 s (release) to ~2 s
//! (debug); loading a precompiled one costs ~3 ms, most of it hashing.
//!
//! Deserializing native code is `unsafe`: it must only ever read bytes this host wrote. Files are
//! named by the component's BLAKE3 hash and the engine's compatibility hash, written atomically,
//! and accompanied by the BLAKE3 hash of the compiled bytes, which is checked before every load.
//! (BLAKE3 rather than SHA-256: the load path hashes ~4 MB, and this keeps it under a millisecond.)
//! A verified entry is memory-mapped, not read: wasmtime then maps its code and the plugin's
//! initial memory image from the page cache instead of copying them (measured: deserialize
//! 3 ms → 0.4 ms, and the first instantiation 0.7 ms → 0.3 ms).
//!
//! A component is fully validated only when it is compiled: a cache hit is, by construction, a
//! component that validated before.

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// Content hash of `bytes` (BLAKE3), as lower-case hex.
pub fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// The cache file for `wasm` under `dir`.
pub fn entry_path(dir: &Path, engine: &Engine, wasm: &[u8]) -> PathBuf {
    let mut h = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    dir.join(format!("{}-{:016x}.cwasm", content_hash(wasm), h.finish()))
}

/// Whether the component came from the cache or was compiled now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Cache,
    Compiled,
}

/// Why a component could not be loaded.
#[derive(Debug)]
pub enum Failure {
    /// The bytes are not a valid component.
    Invalid(String),
    /// wasmtime could not compile it.
    Compile(wasmtime::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Invalid(reason) => write!(f, "invalid: {reason}"),
            Failure::Compile(e) => write!(f, "{e:#}"),
        }
    }
}

/// Load `wasm` from the cache under `dir`, or validate, compile and store it there. A cache that
/// cannot be written (read-only disk) only costs speed.
pub fn load(engine: &Engine, dir: &Path, wasm: &[u8]) -> Result<(Component, Origin), Failure> {
    let path = entry_path(dir, engine, wasm);
    let digest_path = path.with_extension("cwasm.blake3");
    if let (Ok(actual), Ok(expected)) = (file_hash(&path), fs::read_to_string(&digest_path))
        && actual == expected.trim()
    {
        // SAFETY: the file is one this host wrote with `Engine::precompile_component` for an
        // engine with the same compatibility hash (in the name), and its digest matches the one
        // written beside it, so it is not truncated or replaced. Mapping the file (rather than
        // reading it) lets wasmtime map code and the memory image straight from the page cache.
        if let Ok(component) = unsafe { Component::deserialize_file(engine, &path) } {
            return Ok((component, Origin::Cache));
        }
    }
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(wasm)
        .map_err(|e| Failure::Invalid(e.message().to_owned()))?;
    let compiled = engine
        .precompile_component(wasm)
        .map_err(Failure::Compile)?;
    // SAFETY: these bytes were produced just now by this engine.
    let component = unsafe { Component::deserialize(engine, &compiled).map_err(Failure::Compile)? };
    let _ = store(&path, &digest_path, &compiled);
    Ok((component, Origin::Compiled))
}

/// BLAKE3 of a file, streamed in small chunks that stay in the CPU cache.
fn file_hash(path: &Path) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(fs::File::open(path)?)?;
    Ok(hasher.finalize().to_hex().to_string())
}

fn store(path: &Path, digest_path: &Path, compiled: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, compiled)?;
    fs::write(digest_path, content_hash(compiled))?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        prune(dir, KEEP);
    }
    Ok(())
}

/// Compiled entries kept per cache directory: each plugin upgrade (or wasmtime upgrade) writes a
/// new ~3 MB entry, and nothing else would ever remove the old ones.
const KEEP: usize = 8;

/// Removes all but the `keep` most recently written entries (and their digests). An entry removed
/// while another process still uses it costs that process nothing (it is mapped) and the next
/// load one recompile.
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut compiled: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|p| Some((fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    compiled.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (_, old) in compiled.into_iter().skip(keep) {
        let _ = fs::remove_file(old.with_extension("cwasm.blake3"));
        let _ = fs::remove_file(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_newest_entries_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for i in 0..5u64 {
            let p = dir.path().join(format!("{i}.cwasm"));
            fs::write(&p, b"x").unwrap();
            fs::write(p.with_extension("cwasm.blake3"), b"d").unwrap();
            let f = fs::File::options().write(true).open(&p).unwrap();
            f.set_modified(t0 + std::time::Duration::from_secs(i * 60))
                .unwrap();
        }
        fs::write(dir.path().join("unrelated.txt"), b"kept").unwrap();
        prune(dir.path(), 2);
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "3.cwasm",
                "3.cwasm.blake3",
                "4.cwasm",
                "4.cwasm.blake3",
                "unrelated.txt"
            ]
        );
    }
}
