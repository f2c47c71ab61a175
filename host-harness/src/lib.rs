//! The ERP host for `erp:bank-sync` provider components.
//!
//! - [`runtime`]: the wasmtime embedding (engine, limits, compile cache, load-time checks).
//! - [`capabilities`]: what a plugin is granted: `http`, `storage`, `log`, `config`.
//! - [`cassette`]: record, replay and check a provider against recorded HTTP sessions.

#[doc(hidden)] // The generated WIT bindings, for the development crate's native benchmark.
pub mod bindings;
pub mod capabilities;
pub mod cassette;
pub mod cli;
pub mod erp;
pub mod plugins;
pub mod runtime;

#[cfg(test)]
mod tests;
