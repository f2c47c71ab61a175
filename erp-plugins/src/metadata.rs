//! The standard component metadata: the custom sections `component-name`, `version`,
//! `description`, `authors`, `licenses` (an SPDX expression), `source`, `homepage` (URLs) and
//! `revision`, as the `wasm-metadata` crate writes them and `wasm-tools metadata show` prints
//! them. They are also the OCI image annotations (`org.opencontainers.image.*`) a registry shows.
//!
//! Only the outermost component's metadata counts; nested modules keep their own.

use wasm_metadata::{AddMetadata, AddMetadataField, Payload};

/// The standard metadata of a component, every field optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PackageMetadata {
    pub name: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
    pub authors: Option<String>,
    /// An SPDX license expression (`MIT OR Apache-2.0`).
    pub licenses: Option<String>,
    /// URL of the source code.
    pub source: Option<String>,
    /// URL of the project's page.
    pub homepage: Option<String>,
    /// Source control revision (a git commit).
    pub revision: Option<String>,
}

/// Why metadata cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("cannot read the component's metadata: {0}")]
    Read(String),
    #[error("cannot write the component's metadata: {0}")]
    Write(String),
    #[error("metadata {field} `{value}` is invalid: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: String,
    },
}

/// The metadata of the outermost component (or module) in `bytes`.
pub fn read(bytes: &[u8]) -> Result<PackageMetadata, MetadataError> {
    // wasm-metadata expects a binary wasmparser accepts; check first so garbage is an error here
    // rather than anything else inside the crate.
    super::sections::top_level(bytes).map_err(MetadataError::Read)?;
    let payload =
        Payload::from_binary(bytes).map_err(|e| MetadataError::Read(super::printable(e)))?;
    let m = payload.metadata();
    fn text<T: std::fmt::Display>(v: &Option<T>) -> Option<String> {
        v.as_ref().map(ToString::to_string)
    }
    Ok(PackageMetadata {
        name: m.name.clone(),
        version: text(&m.version),
        description: text(&m.description),
        authors: text(&m.authors),
        licenses: text(&m.licenses),
        source: text(&m.source),
        homepage: text(&m.homepage),
        revision: text(&m.revision),
    })
}

/// `bytes` with the fields of `meta` that are set written into it (the others are kept).
///
/// It rewrites the binary: run it before signing.
pub fn write(bytes: &[u8], meta: &PackageMetadata) -> Result<Vec<u8>, MetadataError> {
    super::sections::top_level(bytes).map_err(MetadataError::Write)?;
    fn set<T: std::fmt::Debug + Clone>(
        field: &'static str,
        value: &Option<String>,
        make: impl Fn(&str) -> anyhow::Result<T>,
    ) -> Result<AddMetadataField<T>, MetadataError> {
        match value {
            None => Ok(AddMetadataField::Keep),
            Some(v) => make(v)
                .map(AddMetadataField::Set)
                .map_err(|e| MetadataError::Invalid {
                    field,
                    value: v.clone(),
                    reason: e.to_string(),
                }),
        }
    }
    let mut add = AddMetadata::default();
    add.name = set("name", &meta.name, |v| Ok(v.to_owned()))?;
    add.version = set("version", &meta.version, |v| {
        Ok(wasm_metadata::Version::new(v.to_owned()))
    })?;
    add.description = set("description", &meta.description, |v| {
        Ok(wasm_metadata::Description::new(v.to_owned()))
    })?;
    add.authors = set("authors", &meta.authors, |v| {
        Ok(wasm_metadata::Authors::new(v.to_owned()))
    })?;
    add.licenses = set("licenses", &meta.licenses, wasm_metadata::Licenses::new)?;
    add.source = set("source", &meta.source, wasm_metadata::Source::new)?;
    add.homepage = set("homepage", &meta.homepage, wasm_metadata::Homepage::new)?;
    add.revision = set("revision", &meta.revision, |v| {
        Ok(wasm_metadata::Revision::new(v.to_owned()))
    })?;
    add.to_wasm(bytes)
        .map_err(|e| MetadataError::Write(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_named() {
        let component = b"\0asm\x0d\0\x01\0";
        let meta = PackageMetadata {
            source: Some("not a url".into()),
            ..Default::default()
        };
        let err = write(component, &meta).unwrap_err().to_string();
        assert!(err.contains("source") && err.contains("not a url"), "{err}");
        assert!(read(b"garbage").is_err());
    }
}
