//! Host-side bindings generated from `wit/`. Raw: the rest of the
//! harness uses the re-exports in `runtime` and the capability modules.

wasmtime::component::bindgen!({
    world: "bank-provider",
    path: "../wit",
    // Host functions return plain WIT values: a capability never traps the guest on purpose.
});

pub use erp::bank_sync::{config, http, log, storage, types};
pub use exports::erp::bank_sync::provider;
