//! The ERP host.
pub mod bindings;
