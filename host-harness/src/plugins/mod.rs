//! Plugin marketplace distribution: a provider is one self-describing, signed `.wasm` file,
//! published to and installed from an OCI registry.
//!
//! The artifact's format (metadata, manifest, signature) lives in the `erp-plugins` crate, which
//! build scripts use without a runtime; it is re-exported here. This module adds what needs the
//! network and the disk: [`oci`] (push and pull in the CNCF Wasm OCI layout) and [`store`]
//! (installed artifacts by digest).

pub use erp_plugins::{
    artifact, digest, hex, is_sha256_digest, manifest, metadata, printable, reference, signature,
};

pub mod oci;
pub mod store;
