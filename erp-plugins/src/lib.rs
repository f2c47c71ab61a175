//! Plugin marketplace distribution, the packaging half: a provider is one self-describing, signed `.wasm` file,
//! published to and installed from an OCI registry.
//!
//! # The artifact
//!
//! The component file *is* the artifact; nothing travels beside it. Its top-level custom
//! sections carry, in this order:
//!
//! 1. the standard metadata ([`metadata`]): `component-name`, `version`, `description`,
//!    `authors`, `licenses`, `source`, `homepage`, `revision`, as written by the `wasm-metadata`
//!    crate and shown by `wasm-tools metadata show`;
//! 2. the capability manifest ([`manifest`]), section `erp:bank-sync/manifest`: provider id,
//!    contract version, requested origins, config keys (secret or not, environment variables),
//!    storage needs;
//! 3. last, the publisher's signature ([`signature`]), section `erp:bank-sync/signature`, over
//!    the SHA-256 of every byte before it.
//!
//! Packaging therefore runs metadata → manifest → sign; any rewrite after signing breaks the
//! signature, by design.
//!
//! # Digests
//!
//! The artifact digest is `sha256:<hex>` of the whole signed file: the OCI layer digest, the
//! name an installed plugin is stored under, and what every refusal names ([`digest`]).
//!
//! # Distribution
//!
//! The ERP's `plugins::oci` pushes and pulls the artifact in the CNCF Wasm OCI layout over the
//! registry HTTP API; [`reference`] parses `oci://HOST[:PORT]/REPO(:TAG|@sha256:HEX)`.
//!
//! # Installing
//!
//! [`artifact`] packages a built component (publish side) and inspects bytes before an install
//! (signature, manifest, metadata, contract version); the ERP's `plugins::store` keeps installed
//! artifacts by digest in its plugin directory.
//!
//! This crate has no runtime (no wasmtime): build scripts package components with it.

pub mod artifact;
pub mod manifest;
pub mod metadata;
pub mod origin;
pub mod reference;
mod sections;
pub mod signature;

use sha2::{Digest as _, Sha256};

/// `sha256:<64 lowercase hex>` of `bytes`: the OCI content digest.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// `text` from upstream (an artifact, a registry) made safe to show on one line: control
/// characters are escaped, never interpreted by the terminal.
pub fn printable(text: impl std::fmt::Display) -> String {
    let mut out = String::new();
    for c in text.to_string().chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether `s` is a well-formed `sha256:<64 lowercase hex>` digest.
pub fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_the_oci_form() {
        // The SHA-256 of the empty string, a well-known value.
        assert_eq!(
            digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(is_sha256_digest(&digest(b"x")));
        assert!(!is_sha256_digest("sha256:E3B0"));
        assert!(!is_sha256_digest("md5:00"));
        assert_eq!(printable("a\x1b[2Jb\nc"), "a\\u{1b}[2Jb\\nc");
    }
}
