//! The capabilities a provider component is granted, one module per imported WIT interface
//! (`http.rs` implements `interface http`, ...). Each capability is a plain struct implementing
//! the generated `Host` trait, so it is unit-tested without any wasm; `add_to_linker` wires each
//! one to its field of [`InstanceState`], as wasmtime's `*View` projections do.

pub mod config;
pub mod http;
pub mod http_signature;
pub mod log;
pub mod storage;

use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings;

/// What one instance's wasmtime `Store` owns: its WASI context, limits and granted capabilities.
pub struct InstanceState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: crate::runtime::limits::Limiter,
    pub(crate) http: http::HttpCapability,
    pub(crate) storage: storage::StorageCapability,
    pub(crate) log: log::LogCapability,
    pub(crate) config: config::ConfigCapability,
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

// `types` only declares records; its host trait has nothing to implement.
impl bindings::types::Host for InstanceState {}

macro_rules! projection {
    ($name:ident, $ty:ty) => {
        struct $name;
        impl HasData for $name {
            type Data<'a> = &'a mut $ty;
        }
    };
}
projection!(HttpData, http::HttpCapability);
projection!(StorageData, storage::StorageCapability);
projection!(LogData, log::LogCapability);
projection!(ConfigData, config::ConfigCapability);
projection!(TypesData, InstanceState);

/// Grant the four `erp:bank-sync` imports.
pub(crate) fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    bindings::types::add_to_linker::<InstanceState, TypesData>(linker, |s| s)?;
    bindings::http::add_to_linker::<InstanceState, HttpData>(linker, |s| &mut s.http)?;
    bindings::storage::add_to_linker::<InstanceState, StorageData>(linker, |s| &mut s.storage)?;
    bindings::log::add_to_linker::<InstanceState, LogData>(linker, |s| &mut s.log)?;
    bindings::config::add_to_linker::<InstanceState, ConfigData>(linker, |s| &mut s.config)?;
    Ok(())
}
