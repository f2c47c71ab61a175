//! The capability manifest: what a provider is and what it asks the ERP for, carried inside the
//! component in the custom section [`SECTION`].
//!
//! # Format
//!
//! The section payload is UTF-8 JSON (at most [`MAX_LEN`] bytes), keys in kebab-case:
//!
//! ```json
//! {
//!   "format": 1,
//!   "id": "acme-bank",
//!   "name": "Acme Bank",
//!   "contract-version": "0.1.0",
//!   "origins": ["https://api.acme-bank.example", "http://127.0.0.1:*"],
//!   "config": [
//!     { "key": "api-url", "env": ["ACME_API_URL"] },
//!     { "key": "client-secret", "secret": true, "env": ["ACME_CLIENT_SECRET"] }
//!   ],
//!   "storage": { "max-keys": 1024, "max-value-bytes": 65536 }
//! }
//! ```
//!
//! - `format`: this layout's version; a reader refuses a format it does not know (a newer ERP is
//!   needed), and within a format unknown fields are refused too, so nothing a plugin asks for
//!   is silently ignored.
//! - `id`: the provider's stable id (letters, digits, `-`, `_`), also its storage namespace and
//!   its settings table `[provider.<id>]`; it must equal what `provider.info()` returns.
//! - `contract-version`: the `erp:bank-sync` WIT package version the component was built
//!   against; see [`check_contract`].
//! - `origins`: the HTTP origins it asks to call, in the grant syntax (`https://host[:port]`,
//!   `http://127.0.0.1:*` on loopback only). None is granted unless the operator grants it.
//! - `config`: every key it reads through the `config` capability; `secret` ones are never shown
//!   or logged; `env` lists the environment variables an operator may set it with (first wins).
//! - `storage`: the private key-value store it needs, absent when it stores nothing.
//!
//! The plugin's own version is not repeated here: it is the standard `version` metadata.

use serde::{Deserialize, Serialize};

use super::sections;
use crate::origin::AllowedOrigin;

/// Name of the custom section holding the manifest.
pub const SECTION: &str = "erp:bank-sync/manifest";
/// The manifest layout this ERP writes and reads.
pub const FORMAT: u32 = 1;
/// Largest manifest accepted: far above any real one, small enough to parse without thought.
pub const MAX_LEN: usize = 64 * 1024;

/// What a provider is and asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CapabilityManifest {
    /// Layout version, [`FORMAT`].
    pub format: u32,
    /// Stable provider id (`acme-bank`).
    pub id: String,
    /// Display name (`Acme Bank`).
    pub name: String,
    /// `erp:bank-sync` version built against (`0.1.0`).
    pub contract_version: String,
    /// Origins requested, in the grant syntax.
    #[serde(default)]
    pub origins: Vec<String>,
    /// Config keys read.
    #[serde(default)]
    pub config: Vec<ConfigKey>,
    /// Storage needed; none when the plugin stores nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageNeeds>,
}

/// One key the provider reads through `config`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ConfigKey {
    /// The key (`client-secret`).
    pub key: String,
    /// A secret is never displayed nor logged, and belongs in the environment or a protected file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
    /// Environment variables that set it, first found wins (`ACME_CLIENT_SECRET`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
}

/// The private store a provider needs, per connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct StorageNeeds {
    /// Most keys it keeps.
    pub max_keys: u32,
    /// Largest value it writes, in bytes.
    pub max_value_bytes: u32,
}

/// Why a manifest cannot be read or written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error(
        "the component carries no `{SECTION}` section: it was not packaged as an ERP provider; package it with its manifest"
    )]
    Missing,
    #[error("the component carries {0} `{SECTION}` sections; a provider has exactly one")]
    Duplicate(usize),
    #[error(
        "the plugin manifest is in format {0}, this ERP reads format {FORMAT}; upgrade the ERP"
    )]
    UnknownFormat(u32),
    #[error("the plugin manifest is invalid: {0}")]
    Invalid(String),
    #[error("not a WebAssembly component: {0}")]
    NotWasm(String),
    #[error(
        "the plugin was built against erp:bank-sync {plugin}, this ERP supports {host}; use a plugin built for {host}"
    )]
    Contract { plugin: String, host: String },
}

impl CapabilityManifest {
    /// Checks every field; what [`read`] and [`embed`] require.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let invalid = |m: String| Err(ManifestError::Invalid(m));
        if self.format != FORMAT {
            return Err(ManifestError::UnknownFormat(self.format));
        }
        if !is_word(&self.id, |c| {
            c.is_ascii_alphanumeric() || c == '-' || c == '_'
        }) {
            return invalid(format!(
                "id `{}` must be non-empty letters, digits, - or _",
                self.id.escape_debug()
            ));
        }
        if self.name.trim().is_empty() || self.name.chars().any(char::is_control) {
            return invalid("name must be non-empty text without control characters".into());
        }
        semver::Version::parse(&self.contract_version).map_err(|e| {
            ManifestError::Invalid(format!(
                "contract-version `{}` is not a semantic version: {e}",
                self.contract_version.escape_debug()
            ))
        })?;
        for origin in &self.origins {
            origin
                .parse::<AllowedOrigin>()
                .map_err(|e| ManifestError::Invalid(format!("origin {}", super::printable(e))))?;
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.config {
            if !is_word(&c.key, |ch| {
                ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-'
            }) {
                return invalid(format!(
                    "config key `{}` must be lowercase letters, digits or -",
                    c.key.escape_debug()
                ));
            }
            if !seen.insert(&c.key) {
                return invalid(format!("config key `{}` is listed twice", c.key));
            }
            for var in &c.env {
                let ok = is_word(var, |ch| {
                    ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_'
                }) && !var.starts_with(|ch: char| ch.is_ascii_digit());
                if !ok {
                    return invalid(format!(
                        "environment variable `{}` (config key {}) must be uppercase letters, digits or _",
                        var.escape_debug(),
                        c.key
                    ));
                }
            }
        }
        Ok(())
    }

    /// The requested origins, parsed.
    pub fn requested_origins(&self) -> Result<Vec<AllowedOrigin>, ManifestError> {
        self.origins
            .iter()
            .map(|o| o.parse().map_err(ManifestError::Invalid))
            .collect()
    }

    /// The manifest as its section payload.
    pub fn to_json(&self) -> Result<Vec<u8>, ManifestError> {
        self.validate()?;
        serde_json::to_vec_pretty(self).map_err(|e| ManifestError::Invalid(e.to_string()))
    }

    /// Parses and validates a section payload.
    pub fn from_json(data: &[u8]) -> Result<Self, ManifestError> {
        if data.len() > MAX_LEN {
            return Err(ManifestError::Invalid(format!(
                "{} bytes, more than the {MAX_LEN} allowed",
                data.len()
            )));
        }
        // The format first, so a newer layout is reported as such rather than as unknown fields.
        #[derive(Deserialize)]
        struct Format {
            format: u32,
        }
        let format: Format = serde_json::from_slice(data).map_err(|e| {
            ManifestError::Invalid(format!("not a manifest: {}", super::printable(e)))
        })?;
        if format.format != FORMAT {
            return Err(ManifestError::UnknownFormat(format.format));
        }
        let manifest: Self = serde_json::from_slice(data)
            .map_err(|e| ManifestError::Invalid(super::printable(e)))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Parses the manifest's source form: the same fields in TOML, `format` optional.
    pub fn from_toml(text: &str) -> Result<Self, ManifestError> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| ManifestError::Invalid(e.message().to_owned()))?;
        table
            .entry("format")
            .or_insert(toml::Value::Integer(FORMAT.into()));
        let manifest: Self = table
            .try_into()
            .map_err(|e: toml::de::Error| ManifestError::Invalid(e.message().to_owned()))?;
        manifest.validate()?;
        Ok(manifest)
    }
}

fn is_word(s: &str, allowed: impl Fn(char) -> bool) -> bool {
    !s.is_empty() && s.len() <= 128 && s.chars().all(allowed)
}

/// `component` with `manifest` in its [`SECTION`], replacing any manifest already there.
///
/// Must run before signing: it changes the bytes a signature covers.
pub fn embed(component: &[u8], manifest: &CapabilityManifest) -> Result<Vec<u8>, ManifestError> {
    let payload = manifest.to_json()?;
    let top = sections::top_level(component).map_err(ManifestError::NotWasm)?;
    let old: Vec<_> = sections::custom(&top, SECTION)
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    let without = sections::remove(component, &old);
    Ok(sections::append_custom(&without, SECTION, &payload))
}

/// The manifest a component carries.
pub fn read(component: &[u8]) -> Result<CapabilityManifest, ManifestError> {
    let top = sections::top_level(component).map_err(ManifestError::NotWasm)?;
    match sections::custom(&top, SECTION).as_slice() {
        [] => Err(ManifestError::Missing),
        [(_, data)] => CapabilityManifest::from_json(data),
        many => Err(ManifestError::Duplicate(many.len())),
    }
}

/// Whether a host speaking contract `host` runs a plugin built against `plugin`: semver
/// compatibility, that is the same major for 1.0 and later, the same minor for 0.x (0.1.5 runs on
/// a 0.1.2 host; an import the host lacks is still caught when linking). Refused with both
/// versions named.
pub fn check_contract(host: &str, plugin: &str) -> Result<(), ManifestError> {
    let refused = || ManifestError::Contract {
        plugin: plugin.to_owned(),
        host: host.to_owned(),
    };
    let h = semver::Version::parse(host).map_err(|_| refused())?;
    let p = semver::Version::parse(plugin).map_err(|_| refused())?;
    let compatible = if h.major == 0 {
        p.major == 0 && p.minor == h.minor
    } else {
        p.major == h.major
    };
    if compatible { Ok(()) } else { Err(refused()) }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A provider's manifest with every kind of field, for the unit tests.
    pub(crate) fn example() -> CapabilityManifest {
        let key = |key: &str, secret: bool, env: &[&str]| ConfigKey {
            key: key.to_owned(),
            secret,
            env: env.iter().map(|s| (*s).to_owned()).collect(),
        };
        CapabilityManifest {
            format: FORMAT,
            id: "acme-bank".into(),
            name: "Acme Bank".into(),
            contract_version: "0.1.0".into(),
            origins: vec![
                "https://api.acme-bank.example".into(),
                "http://127.0.0.1:*".into(),
            ],
            config: vec![
                key("api-url", false, &["ACME_API_URL"]),
                key(
                    "client-secret",
                    true,
                    &["ACME_CLIENT_SECRET", "ACME_SECRET"],
                ),
                key("page-size", false, &[]),
            ],
            storage: Some(StorageNeeds {
                max_keys: 1024,
                max_value_bytes: 64 * 1024,
            }),
        }
    }

    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn round_trips_through_the_section_and_replaces_an_old_one() {
        let m = example();
        let once = embed(EMPTY_COMPONENT, &m).unwrap();
        assert_eq!(read(&once).unwrap(), m);
        let mut other = m.clone();
        other.name = "Acme Bank (test)".into();
        let twice = embed(&once, &other).unwrap();
        assert_eq!(read(&twice).unwrap(), other);
    }

    #[test]
    fn missing_duplicate_and_newer_formats_are_typed() {
        assert_eq!(read(EMPTY_COMPONENT), Err(ManifestError::Missing));
        let payload = example().to_json().unwrap();
        let one = sections::append_custom(EMPTY_COMPONENT, SECTION, &payload);
        let two = sections::append_custom(&one, SECTION, &payload);
        assert_eq!(read(&two), Err(ManifestError::Duplicate(2)));
        let newer = sections::append_custom(
            EMPTY_COMPONENT,
            SECTION,
            br#"{"format": 2, "anything": "new"}"#,
        );
        assert_eq!(read(&newer), Err(ManifestError::UnknownFormat(2)));
        assert!(matches!(read(b"junk"), Err(ManifestError::NotWasm(_))));
    }

    #[test]
    fn rejects_bad_fields_with_a_reason() {
        type Break = fn(&mut CapabilityManifest);
        let cases: [(&str, Break); 6] = [
            ("id", |m| m.id = "pon to".into()),
            ("contract-version", |m| m.contract_version = "one".into()),
            ("loopback", |m| m.origins.push("http://example.com".into())),
            ("listed twice", |m| m.config.push(m.config[0].clone())),
            ("environment variable", |m| {
                m.config[0].env.push("lower".into())
            }),
            ("config key", |m| m.config[0].key = "Api_Url".into()),
        ];
        for (needle, break_it) in cases {
            let mut m = example();
            break_it(&mut m);
            let err = m.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
        }
        let unknown = br#"{"format":1,"id":"x","name":"X","contract-version":"0.1.0","extra":1}"#;
        assert!(
            CapabilityManifest::from_json(unknown)
                .unwrap_err()
                .to_string()
                .contains("unknown field")
        );
    }

    #[test]
    fn upstream_text_in_errors_is_escaped() {
        let hostile = b"{\"format\":1,\"id\":\"x\",\"name\":\"X\",\"contract-version\":\"0.1.0\",\"\\u001b[2J\":1}";
        let err = CapabilityManifest::from_json(hostile)
            .unwrap_err()
            .to_string();
        assert!(!err.contains('\x1b') && err.contains("\\u{1b}[2J"), "{err}");
    }

    #[test]
    fn toml_source_form() {
        let m = CapabilityManifest::from_toml(
            r#"
            id = "acme-bank"
            name = "Acme Bank"
            contract-version = "0.1.0"
            origins = ["https://api.acme-bank.example"]
            [[config]]
            key = "client-secret"
            secret = true
            env = ["ACME_CLIENT_SECRET"]
            [storage]
            max-keys = 10
            max-value-bytes = 100
            "#,
        )
        .unwrap();
        assert_eq!(m.format, FORMAT);
        assert!(m.config[0].secret);
        assert_eq!(m.storage.unwrap().max_keys, 10);
    }

    #[test]
    fn contract_versions_follow_semver() {
        assert!(check_contract("0.1.0", "0.1.7").is_ok());
        assert!(check_contract("0.1.3", "0.1.0").is_ok());
        assert!(check_contract("1.2.0", "1.0.0").is_ok());
        let err = check_contract("0.1.0", "0.2.0").unwrap_err().to_string();
        assert!(err.contains("0.2.0") && err.contains("0.1.0"), "{err}");
        assert!(check_contract("1.0.0", "2.0.0").is_err());
        assert!(check_contract("0.1.0", "1.1.0").is_err());
        assert!(check_contract("0.1.0", "garbage").is_err());
    }
}
