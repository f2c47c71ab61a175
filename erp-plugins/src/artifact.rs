//! The artifact as a whole, for the publish and install verbs: packaging a built component into a
//! self-describing one, and inspecting bytes about to be installed (signature, manifest,
//! metadata, contract version), with one typed refusal naming the digest.

use super::manifest::{self, CapabilityManifest, ManifestError};
use super::metadata::{self, MetadataError, PackageMetadata};
use super::signature::{self, PublicKey, SecretKey, SignatureError};

/// Why an artifact cannot be packaged, published or installed.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("{digest}: {source}")]
    Manifest {
        digest: String,
        source: ManifestError,
    },
    #[error("{digest}: {source}")]
    Metadata {
        digest: String,
        source: MetadataError,
    },
    #[error("{digest}: the component's metadata has no {field}; package it with a {field}")]
    MissingMetadata { digest: String, field: &'static str },
}

/// A built component with its standard metadata and capability manifest written in, unsigned.
/// Sign the result ([`signature::sign`]) as the last step.
pub fn package(
    component: &[u8],
    meta: &PackageMetadata,
    manifest: &CapabilityManifest,
) -> Result<Vec<u8>, ArtifactError> {
    let digest = super::digest(component);
    let with_meta = metadata::write(component, meta).map_err(|source| ArtifactError::Metadata {
        digest: digest.clone(),
        source,
    })?;
    manifest::embed(&with_meta, manifest)
        .map_err(|source| ArtifactError::Manifest { digest, source })
}

/// A packaged component signed for publishing: it must carry a valid manifest and a name and
/// version, so what reaches a registry can be installed.
pub fn sign_for_publish(component: &[u8], key: &SecretKey) -> Result<Vec<u8>, ArtifactError> {
    describe(component)?;
    Ok(signature::sign(component, key)?)
}

/// What an artifact says about itself, after its signature was checked.
#[derive(Clone, Debug)]
pub struct Inspected {
    /// `sha256:<hex>` of the whole file: where it is stored, what the `plugins` table records.
    pub digest: String,
    /// The verified publisher key id; none only for an unsigned artifact allowed in development.
    pub publisher: Option<String>,
    pub manifest: CapabilityManifest,
    pub metadata: PackageMetadata,
}

/// How much signature an install demands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsigned {
    /// Refused (the default).
    Refuse,
    /// Accepted (`--allow-unsigned`, development only). A *signed* artifact is still verified:
    /// a bad or untrusted signature is refused either way.
    Allow,
}

fn describe(bytes: &[u8]) -> Result<(CapabilityManifest, PackageMetadata), ArtifactError> {
    let digest = super::digest(bytes);
    let manifest = manifest::read(bytes).map_err(|source| ArtifactError::Manifest {
        digest: digest.clone(),
        source,
    })?;
    let metadata = metadata::read(bytes).map_err(|source| ArtifactError::Metadata {
        digest: digest.clone(),
        source,
    })?;
    for (field, value) in [("name", &metadata.name), ("version", &metadata.version)] {
        if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
            return Err(ArtifactError::MissingMetadata {
                digest: digest.clone(),
                field,
            });
        }
    }
    Ok((manifest, metadata))
}

/// Checks `bytes` before an install or upgrade: the signature against `trusted` (see
/// [`Unsigned`]), then the manifest, the name and version, and that this host's contract
/// version `host_contract` runs it. Nothing is written.
pub fn inspect(
    bytes: &[u8],
    trusted: &[PublicKey],
    unsigned: Unsigned,
    host_contract: &str,
) -> Result<Inspected, ArtifactError> {
    let digest = super::digest(bytes);
    let publisher = match signature::verify(bytes, trusted) {
        Ok(v) => Some(v.key_id),
        Err(SignatureError::Unsigned { .. }) if unsigned == Unsigned::Allow => None,
        Err(e) => return Err(e.into()),
    };
    let (manifest, metadata) = describe(bytes)?;
    manifest::check_contract(host_contract, &manifest.contract_version).map_err(|source| {
        ArtifactError::Manifest {
            digest: digest.clone(),
            source,
        }
    })?;
    Ok(Inspected {
        digest,
        publisher,
        manifest,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    fn meta() -> PackageMetadata {
        PackageMetadata {
            name: Some("p".into()),
            version: Some("1.0.0".into()),
            ..Default::default()
        }
    }

    #[test]
    fn package_sign_inspect() {
        let key = SecretKey::generate("k");
        let packaged = package(EMPTY_COMPONENT, &meta(), &manifest::tests::example()).unwrap();
        let signed = sign_for_publish(&packaged, &key).unwrap();
        let got = inspect(&signed, &[key.public_key()], Unsigned::Refuse, "0.1.0").unwrap();
        assert_eq!(got.publisher, Some(key.public_key().key_id()));
        assert_eq!(got.digest, super::super::digest(&signed));
        assert_eq!(got.manifest.id, "acme-bank");
        assert_eq!(got.metadata.version.as_deref(), Some("1.0.0"));
    }

    #[test]
    fn refusals_name_the_digest() {
        let key = SecretKey::generate("k");
        let packaged = package(EMPTY_COMPONENT, &meta(), &manifest::tests::example()).unwrap();
        let digest = super::super::digest(&packaged);
        // Unsigned: refused unless allowed.
        let err = inspect(&packaged, &[], Unsigned::Refuse, "0.1.0").unwrap_err();
        assert!(err.to_string().starts_with(&digest), "{err}");
        let allowed = inspect(&packaged, &[], Unsigned::Allow, "0.1.0").unwrap();
        assert_eq!(allowed.publisher, None);
        // Signed by an unknown key: refused even when unsigned ones are allowed.
        let signed = signature::sign(&packaged, &key).unwrap();
        assert!(matches!(
            inspect(&signed, &[], Unsigned::Allow, "0.1.0"),
            Err(ArtifactError::Signature(
                SignatureError::UntrustedKey { .. }
            ))
        ));
        // A contract this host does not speak.
        let err = inspect(&signed, &[key.public_key()], Unsigned::Refuse, "0.2.0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("0.1.0") && err.contains("0.2.0"), "{err}");
        // No manifest or no version: not publishable.
        assert!(sign_for_publish(EMPTY_COMPONENT, &key).is_err());
        let nameless = package(
            EMPTY_COMPONENT,
            &PackageMetadata::default(),
            &manifest::tests::example(),
        )
        .unwrap();
        assert!(matches!(
            sign_for_publish(&nameless, &key),
            Err(ArtifactError::MissingMetadata { field: "name", .. })
        ));
    }
}
