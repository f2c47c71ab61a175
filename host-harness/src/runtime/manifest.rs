//! The plugin manifest, `provider.toml`, shipped beside the `.wasm`: who the plugin is, which WIT
//! version it was built for and which hosts it wants to reach. The operator's grants are checked
//! against it before anything runs.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::capabilities::http::AllowedOrigin;

/// File name of the manifest, in the directory of the component.
pub const FILE_NAME: &str = "provider.toml";

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Manifest {
    /// Stable id (`ponto`); also the storage namespace.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// Version of `erp:bank-sync` it was built against.
    pub api_version: String,
    /// Capabilities requested.
    #[serde(default)]
    pub capabilities: Capabilities,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Capabilities {
    /// Origins the plugin may call: `https://api.ibanity.com`, `http://127.0.0.1:*`.
    #[serde(default)]
    pub http: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: cannot read the plugin manifest: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: the plugin manifest does not parse: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Manifest {
    /// An installed plugin's manifest for the runtime: the one its artifact carries, with the
    /// origins the operator granted at install (a subset of those it asks for).
    pub fn installed(
        manifest: &crate::plugins::manifest::CapabilityManifest,
        version: &str,
        granted: &[String],
    ) -> Self {
        Self {
            id: manifest.id.clone(),
            name: manifest.name.clone(),
            version: version.to_owned(),
            api_version: manifest.contract_version.clone(),
            capabilities: Capabilities {
                http: granted.to_vec(),
            },
        }
    }

    /// The manifest beside `wasm`.
    pub fn path_for(wasm: &Path) -> PathBuf {
        wasm.with_file_name(FILE_NAME)
    }

    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = super::regular_file(path)
            .and_then(|()| std::fs::read_to_string(path))
            .map_err(|source| ManifestError::Read {
                path: path.to_owned(),
                source,
            })?;
        Self::parse(&text).map_err(|e| match e {
            ManifestError::Parse { message, .. } => ManifestError::Parse {
                path: path.to_owned(),
                message,
            },
            ManifestError::Invalid { message, .. } => ManifestError::Invalid {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| ManifestError::Parse {
            path: PathBuf::new(),
            message: e.message().to_owned(),
        })?;
        let invalid = |message: String| ManifestError::Invalid {
            path: PathBuf::new(),
            message,
        };
        if manifest.id.is_empty()
            || !manifest
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(format!(
                "id `{}` must be non-empty letters, digits, - or _",
                manifest.id
            )));
        }
        if !manifest.api_version.starts_with(super::API_VERSION_PREFIX) {
            return Err(invalid(format!(
                "api-version {} is not supported by this host (it loads erp:bank-sync@{} only): \
                 rebuild the plugin against {}",
                manifest.api_version,
                super::API_VERSION,
                super::API_VERSION
            )));
        }
        manifest.requested_origins().map_err(invalid)?;
        Ok(manifest)
    }

    /// The requested origins, parsed.
    pub fn requested_origins(&self) -> Result<Vec<AllowedOrigin>, String> {
        self.capabilities.http.iter().map(|s| s.parse()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        id = "acme"
        name = "Acme"
        version = "0.1.0"
        api-version = "0.2.0"
        [capabilities]
        http = ["https://api.ibanity.com", "http://127.0.0.1:*"]
    "#;

    #[test]
    fn parses_a_manifest() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.id, "acme");
        assert_eq!(m.requested_origins().unwrap().len(), 2);
    }

    #[test]
    fn rejects_bad_manifests_with_a_reason() {
        let cases = [
            ("id = 1", "does not parse"),
            (
                &GOOD.replace("0.2.0\"\n        [cap", "0.1.0\"\n        [cap"),
                "api-version 0.1.0 is not supported by this host (it loads erp:bank-sync@0.2.0 only)",
            ),
            (&GOOD.replace("https://api.ibanity.com", "ftp://x"), "ftp"),
            (&format!("{GOOD}\nextra = 1"), "unknown field"),
        ];
        for (text, needle) in cases {
            let err = Manifest::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
        }
    }
}
