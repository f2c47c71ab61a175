//! The ERP host for `erp:bank-sync` provider components.
//!
//! - [`runtime`]: the wasmtime embedding (engine, limits, compile cache, load-time checks).
//! - [`capabilities`]: what a plugin is granted: `http`, `storage`, `log`, `config`.

mod bindings;
pub mod bench;
pub mod capabilities;
pub mod runtime;
pub mod cli;
pub mod erp;
