//! Host-side bindings generated from `wit/`. Raw: the rest of the
//! harness uses the re-exports in `runtime` and the capability modules.

wasmtime::component::bindgen!({
    world: "bank-provider",
    path: "../wit",
    // Host functions return plain WIT values: a capability never traps the guest on purpose.
    // Serde forms of the records: the cassettes' expected results are written from them, and a
    // provider built natively (its own wit-bindgen types, from the same WIT) converts through them.
    additional_derives: [serde::Serialize, serde::Deserialize],
});

pub use erp::bank_sync::{config, http, log, storage, types};
pub use exports::erp::bank_sync::provider;
