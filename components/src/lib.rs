//! Paths of the WebAssembly components `build.rs` builds (a nested `cargo build --target
//! wasm32-wasip2`), for the development binary and the tests. The ERP itself does not depend on
//! this crate: it runs the providers an operator installed.

/// The Ponto provider, release build, packaged: its standard metadata and capability manifest
/// embedded, unsigned (sign it with `erp plugin publish` or install it with `--allow-unsigned`).
pub const PONTO_PROVIDER: &str = env!("PONTO_PROVIDER_WASM");
/// A guest that misbehaves on purpose (loops, floods, traps) to test the host's limits.
pub const HOSTILE_GUEST: &str = env!("HOSTILE_GUEST_WASM");
/// A guest that imports an interface the contract does not offer.
pub const GREEDY_GUEST: &str = env!("GREEDY_GUEST_WASM");
/// A guest built against contract 0.1.0.
pub const V010_GUEST: &str = env!("V010_GUEST_WASM");
/// A guest that imports WASI filesystem interfaces.
pub const FILES_GUEST: &str = env!("FILES_GUEST_WASM");
/// A provider that keeps memory between calls and traps on a 5xx: `erp plugin check` must fail
/// it on resume and mutations, naming them.
pub const FORGETFUL_GUEST: &str = env!("FORGETFUL_GUEST_WASM");
