//! On-disk cache of compiled components. Compiling a component costs ~0.3 s (release) to ~2 s
//! (debug); loading a precompiled one costs under 5 ms.
//!
//! Deserializing native code is `unsafe`: it must only ever read bytes this host wrote. Files are
//! named by the component's SHA-256 and the engine's compatibility hash, written atomically, and
//! accompanied by the SHA-256 of the compiled bytes, which is checked before every load.

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `bytes`, as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The cache file for `wasm` under `dir`.
pub fn entry_path(dir: &Path, engine: &Engine, wasm: &[u8]) -> PathBuf {
    let mut h = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    dir.join(format!("{}-{:016x}.cwasm", sha256_hex(wasm), h.finish()))
}

/// Whether the component came from the cache or was compiled now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Cache,
    Compiled,
}

/// Load `wasm` from the cache under `dir`, or compile it and store it there. A cache that
/// cannot be written (read-only disk) only costs speed.
pub fn load(engine: &Engine, dir: &Path, wasm: &[u8]) -> wasmtime::Result<(Component, Origin)> {
    let path = entry_path(dir, engine, wasm);
    let digest_path = path.with_extension("cwasm.sha256");
    if let (Ok(compiled), Ok(expected)) = (fs::read(&path), fs::read_to_string(&digest_path))
        && sha256_hex(&compiled) == expected.trim()
    {
        // SAFETY: the bytes are a file this host wrote with `Engine::precompile_component` for an
        // engine with the same compatibility hash (in the name), and their digest matches the one
        // written beside them, so they are not truncated or replaced.
        if let Ok(component) = unsafe { Component::deserialize(engine, &compiled) } {
            return Ok((component, Origin::Cache));
        }
    }
    let compiled = engine.precompile_component(wasm)?;
    // SAFETY: these bytes were produced just now by this engine.
    let component = unsafe { Component::deserialize(engine, &compiled)? };
    let _ = store(&path, &digest_path, &compiled);
    Ok((component, Origin::Compiled))
}

fn store(path: &Path, digest_path: &Path, compiled: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, compiled)?;
    fs::write(digest_path, sha256_hex(compiled))?;
    fs::rename(&tmp, path)
}
