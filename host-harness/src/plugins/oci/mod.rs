//! Push and pull a plugin to and from an OCI registry, in the CNCF Wasm OCI artifact layout:
//! [`layout`] describes what is stored (manifest, config, the one component layer), [`client`]
//! speaks the registry HTTP API.

pub mod client;
pub mod layout;
#[cfg(test)]
mod tests;

pub use client::{Client, ClientOptions, Credentials, OciError, Pulled, Pushed};
pub use layout::{
    CONFIG_MEDIA_TYPE, ComponentInfo, Descriptor, ImageManifest, LAYER_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE, WasmConfig, component_info,
};
