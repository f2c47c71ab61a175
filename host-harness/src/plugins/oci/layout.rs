//! The CNCF Wasm OCI artifact layout of a plugin.
//!
//! An image manifest (`application/vnd.oci.image.manifest.v1+json`) with
//! - a config blob of media type [`CONFIG_MEDIA_TYPE`] (`application/vnd.wasm.config.v0+json`):
//!   `{"created", "author", "architecture": "wasm", "os": "wasip2", "layerDigests": [...],
//!   "component": {"exports": [...], "imports": [...], "target": null}}`, the shape of the
//!   `oci-wasm` crate's `WasmConfig`, so `wkg oci pull` and other Wasm tools read it;
//! - exactly one layer of media type [`LAYER_MEDIA_TYPE`] (`application/wasm`): the signed
//!   component itself, whose digest is the artifact digest;
//! - annotations `org.opencontainers.image.{title,version,description,authors,licenses,source,
//!   url,revision,created}` copied from the component's metadata, for registry UIs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";

/// A blob's descriptor in a manifest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An OCI image manifest (the fields this layout uses).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The Wasm config blob (the CNCF layout, as `oci-wasm` writes it).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    pub created: String,
    pub author: Option<String>,
    pub architecture: String,
    pub os: String,
    pub layer_digests: Vec<String>,
    pub component: Option<ComponentInfo>,
}

/// A component's top-level imports and exports.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ComponentInfo {
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    pub target: Option<String>,
}

/// `name` reduced to a safe file name stem.
pub(super) fn file_stem(name: &str) -> String {
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    stem.trim_start_matches('.').to_owned()
}

/// The top-level import and export names of a component (`erp:bank-sync/provider@0.1.0`, ...).
pub fn component_info(component: &[u8]) -> Result<ComponentInfo, String> {
    use wasmparser::{Parser, Payload};
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(component) {
        match payload.map_err(|e| format!("not a WebAssembly component: {e}"))? {
            Payload::Version {
                encoding: wasmparser::Encoding::Module,
                ..
            } if depth == 0 => return Err("a core module, not a component".into()),
            Payload::ComponentImportSection(s) if depth == 0 => {
                for i in s {
                    imports.push(i.map_err(|e| e.to_string())?.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(s) if depth == 0 => {
                for e in s {
                    exports.push(e.map_err(|e| e.to_string())?.name.name.to_owned());
                }
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) if depth > 0 => depth -= 1,
            _ => {}
        }
    }
    Ok(ComponentInfo {
        exports,
        imports,
        target: None,
    })
}
