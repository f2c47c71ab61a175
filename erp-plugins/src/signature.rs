//! Publisher keys and signatures: a publisher signs the component with an ed25519 key; the ERP
//! installs it only if the signature verifies against a key the operator trusts.
//!
//! # Key files
//!
//! One line of text each, `LABEL ALGORITHM BASE64 [COMMENT]`:
//!
//! ```text
//! erp-publisher-public-key-v1 ed25519 <base64 of the 32-byte public key> Example Bank Ltd
//! erp-publisher-secret-key-v1 ed25519 <base64 of the 32-byte secret seed> Example Bank Ltd
//! ```
//!
//! The comment says whose key it is (free text, shown to the operator). [`keygen`] writes the
//! secret key with mode 0600 and the public key beside it as `<file>.pub`, refusing to overwrite
//! either. A key's id is `ed25519:` and the first 16 bytes, in hex, of the SHA-256 of its 32-byte
//! public key: the fingerprint an operator compares and the signature names.
//!
//! # Signature section
//!
//! A signed component ends with exactly one custom section [`SECTION`] whose payload is JSON:
//!
//! ```json
//! {"format": 1, "algorithm": "ed25519", "key-id": "ed25519:<32 hex>",
//!  "signed-digest": "sha256:<64 hex>", "signature": "<base64 of 64 bytes>"}
//! ```
//!
//! `signed-digest` is the SHA-256 of every byte of the file before the section (the preamble, the
//! code, the metadata and the manifest: everything). The ed25519 signature is over
//! [`CONTEXT`] followed by those 32 digest bytes, so it cannot be replayed as any other kind of
//! signature. The section must be the file's last: nothing can be added after signing. A
//! component is re-signed by replacing its signature section.
//!
//! The artifact's digest, `sha256:<hex>` of the whole signed file, is the OCI layer digest and
//! names the artifact in every refusal.
//!
//! # Why not wasmsign2's format
//!
//! wasmsign2 (0.2.8 accepts the component preamble) puts its `signature` section first and lets
//! signers cover chosen ranges of sections, so that tools may append sections after signing; a
//! verifier must then decide which unsigned parts it tolerates. An installer wants the opposite,
//! one answer for the whole file, and the format above gives it with the ed25519 and SHA-256 code
//! already in the tree. It stays a custom section, so a wasmsign2 signature could be added beside
//! it later for interop without changing this one.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{OsRng, rand_core::RngCore};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::sections;

/// Name of the custom section holding the signature.
pub const SECTION: &str = "erp:bank-sync/signature";
/// Domain separation: what precedes the digest in the signed message.
pub const CONTEXT: &[u8] = b"erp:bank-sync/signature/v1\0";
/// The only algorithm.
pub const ALGORITHM: &str = "ed25519";
const PUBLIC_LABEL: &str = "erp-publisher-public-key-v1";
const SECRET_LABEL: &str = "erp-publisher-secret-key-v1";
/// Largest signature section accepted.
const MAX_SECTION: usize = 4096;

/// A publisher's secret key.
pub struct SecretKey {
    key: SigningKey,
    comment: String,
}

/// A publisher's public key, as the operator trusts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    comment: String,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.public_key().key_id())
    }
}

/// What was wrong with a key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: cannot read the key file: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot write the key file: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: already exists; keys are never overwritten, choose another file")]
    Exists { path: PathBuf },
    #[error("{path}: not an {label} file: {reason}")]
    Parse {
        path: PathBuf,
        label: &'static str,
        reason: String,
    },
}

/// Why a signed artifact is refused; each names the artifact's digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error(
        "{digest}: the plugin is not signed; ask its publisher for a signed artifact (--allow-unsigned is for development only)"
    )]
    Unsigned { digest: String },
    #[error(
        "{digest}: the bytes do not match the signature by key {key_id}: the artifact was altered after signing; do not install it"
    )]
    Tampered { digest: String, key_id: String },
    #[error(
        "{digest}: signed by key {key_id}, which is not a trusted publisher key; if you know this publisher, trust their public key (erp plugin trust FILE)"
    )]
    UntrustedKey { digest: String, key_id: String },
    #[error("{digest}: the signature is malformed ({reason}); do not install it")]
    Malformed { digest: String, reason: String },
}

/// A verified artifact: who signed it and its digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The publisher key's id.
    pub key_id: String,
    /// `sha256:<hex>` of the whole signed file.
    pub digest: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct SignatureSection {
    format: u32,
    algorithm: String,
    key_id: String,
    signed_digest: String,
    signature: String,
}

fn key_id(key: &VerifyingKey) -> String {
    let hash = Sha256::digest(key.as_bytes());
    format!("{ALGORITHM}:{}", super::hex(&hash[..16]))
}

/// Parses `LABEL ed25519 BASE64 [COMMENT]` into the 32 key bytes and the comment.
fn parse_line(text: &str, label: &'static str) -> Result<([u8; 32], String), String> {
    let line = text.trim();
    if line.contains('\n') {
        return Err("a key file holds one line".into());
    }
    let mut parts = line.splitn(4, ' ');
    if parts.next() != Some(label) {
        return Err(format!("it does not start with `{label}`"));
    }
    match parts.next() {
        Some(ALGORITHM) => {}
        other => {
            return Err(format!(
                "algorithm `{}` is not {ALGORITHM}",
                other.unwrap_or("").escape_debug()
            ));
        }
    }
    let bytes = BASE64
        .decode(parts.next().unwrap_or(""))
        .map_err(|e| format!("the key is not base64: {e}"))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("the key is {} bytes, not 32", b.len()))?;
    let comment = parts.next().unwrap_or("").trim();
    if comment.chars().any(char::is_control) {
        return Err("the comment holds control characters".into());
    }
    Ok((bytes, comment.to_owned()))
}

fn read_file(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Creates `path` (never overwriting) with `text`, readable by its owner only when `private`.
fn write_new(path: &Path, text: &str, private: bool) -> Result<(), KeyError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists {
                path: path.to_owned(),
            }
        } else {
            KeyError::Write {
                path: path.to_owned(),
                source,
            }
        }
    })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| KeyError::Write {
            path: path.to_owned(),
            source,
        })
}

impl SecretKey {
    /// A new random key (OS randomness).
    pub fn generate(comment: &str) -> Self {
        let mut seed = [0u8; 32];
        OsRng.fill_bytes(&mut seed);
        let key = SigningKey::from_bytes(&seed);
        seed.fill(0);
        Self {
            key,
            comment: one_line(comment),
        }
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            key: self.key.verifying_key(),
            comment: self.comment.clone(),
        }
    }

    /// The key file's text.
    pub fn to_text(&self) -> String {
        key_text(SECRET_LABEL, self.key.as_bytes(), &self.comment)
    }

    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let (seed, comment) = parse_line(text, SECRET_LABEL).map_err(|reason| KeyError::Parse {
            path: PathBuf::new(),
            label: SECRET_LABEL,
            reason,
        })?;
        Ok(Self {
            key: SigningKey::from_bytes(&seed),
            comment,
        })
    }

    pub fn load(path: &Path) -> Result<Self, KeyError> {
        Self::parse(&read_file(path)?).map_err(|e| with_path(e, path))
    }
}

impl PublicKey {
    /// `ed25519:<32 hex>`, the fingerprint.
    pub fn key_id(&self) -> String {
        key_id(&self.key)
    }

    /// Whose key it is, as its file says.
    pub fn comment(&self) -> &str {
        &self.comment
    }

    /// The key file's text.
    pub fn to_text(&self) -> String {
        key_text(PUBLIC_LABEL, self.key.as_bytes(), &self.comment)
    }

    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let parse_error = |reason| KeyError::Parse {
            path: PathBuf::new(),
            label: PUBLIC_LABEL,
            reason,
        };
        let (bytes, comment) = parse_line(text, PUBLIC_LABEL).map_err(parse_error)?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| parse_error("not a valid ed25519 public key".into()))?;
        Ok(Self { key, comment })
    }

    pub fn load(path: &Path) -> Result<Self, KeyError> {
        Self::parse(&read_file(path)?).map_err(|e| with_path(e, path))
    }
}

fn key_text(label: &str, bytes: &[u8], comment: &str) -> String {
    let mut line = format!("{label} {ALGORITHM} {}", BASE64.encode(bytes));
    if !comment.is_empty() {
        line.push(' ');
        line.push_str(comment);
    }
    line.push('\n');
    line
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

fn with_path(e: KeyError, path: &Path) -> KeyError {
    match e {
        KeyError::Parse { label, reason, .. } => KeyError::Parse {
            path: path.to_owned(),
            label,
            reason,
        },
        other => other,
    }
}

/// Makes a key pair: the secret key in `out` (mode 0600), the public key in `out.pub`. Refuses
/// to overwrite either file. Returns the public key and its file.
pub fn keygen(out: &Path, comment: &str) -> Result<(PublicKey, PathBuf), KeyError> {
    let mut public_path = out.as_os_str().to_owned();
    public_path.push(".pub");
    let public_path = PathBuf::from(public_path);
    if public_path.exists() {
        return Err(KeyError::Exists { path: public_path });
    }
    let key = SecretKey::generate(comment);
    write_new(out, &key.to_text(), true)?;
    let public = key.public_key();
    write_new(&public_path, &public.to_text(), false)?;
    Ok((public, public_path))
}

fn signed_message(prefix: &[u8]) -> ([u8; 32], Vec<u8>) {
    let digest: [u8; 32] = Sha256::digest(prefix).into();
    let mut message = CONTEXT.to_vec();
    message.extend_from_slice(&digest);
    (digest, message)
}

/// `component` signed with `key`: its bytes (without any previous signature) followed by the
/// [`SECTION`]. Run it last: anything changed afterwards breaks the signature.
pub fn sign(component: &[u8], key: &SecretKey) -> Result<Vec<u8>, SignatureError> {
    let digest = super::digest(component);
    let top = sections::top_level(component).map_err(|reason| SignatureError::Malformed {
        digest: digest.clone(),
        reason,
    })?;
    let unsigned = match sections::custom(&top, SECTION).as_slice() {
        [] => component.to_vec(),
        [(range, _)] if range.end == component.len() => component[..range.start].to_vec(),
        _ => {
            return Err(SignatureError::Malformed {
                digest,
                reason: "signature sections in the middle of the file".into(),
            });
        }
    };
    let (hash, message) = signed_message(&unsigned);
    let signature: Signature = key.key.sign(&message);
    let section = SignatureSection {
        format: 1,
        algorithm: ALGORITHM.into(),
        key_id: key.public_key().key_id(),
        signed_digest: format!("sha256:{}", super::hex(&hash)),
        signature: BASE64.encode(signature.to_bytes()),
    };
    let payload = serde_json::to_vec(&section).map_err(|e| SignatureError::Malformed {
        digest,
        reason: e.to_string(),
    })?;
    Ok(sections::append_custom(&unsigned, SECTION, &payload))
}

/// The key id a signed artifact claims, without checking anything: for display before trust.
pub fn signer(bytes: &[u8]) -> Result<Option<String>, SignatureError> {
    match parse_signature(bytes) {
        Ok((section, _)) => Ok(Some(section.key_id)),
        Err(SignatureError::Unsigned { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The signature section and the length of what it covers.
fn parse_signature(bytes: &[u8]) -> Result<(SignatureSection, usize), SignatureError> {
    let digest = super::digest(bytes);
    let malformed = |reason: String| SignatureError::Malformed {
        digest: digest.clone(),
        reason,
    };
    let top = sections::top_level(bytes).map_err(malformed)?;
    let (range, data) = match sections::custom(&top, SECTION).as_slice() {
        [] => return Err(SignatureError::Unsigned { digest }),
        [(range, data)] if range.end == bytes.len() => (range.clone(), *data),
        [_] => return Err(malformed("bytes follow the signature section".into())),
        many => return Err(malformed(format!("{} signature sections", many.len()))),
    };
    if data.len() > MAX_SECTION {
        return Err(malformed(format!(
            "a {}-byte signature section",
            data.len()
        )));
    }
    let section: SignatureSection =
        serde_json::from_slice(data).map_err(|e| malformed(super::printable(e)))?;
    if section.format != 1 {
        return Err(malformed(format!(
            "signature format {} is unknown to this ERP",
            section.format
        )));
    }
    if section.algorithm != ALGORITHM {
        return Err(malformed(format!(
            "algorithm `{}` is not {ALGORITHM}",
            section.algorithm.escape_debug()
        )));
    }
    // Checked before it is ever displayed: it comes from the artifact.
    let well_formed = section.key_id.strip_prefix("ed25519:").is_some_and(|h| {
        h.len() == 32
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if !well_formed {
        return Err(malformed("the key id is not ed25519:<32 hex>".into()));
    }
    Ok((section, range.start))
}

/// Checks that `bytes` carry a valid signature by one of `trusted`.
pub fn verify(bytes: &[u8], trusted: &[PublicKey]) -> Result<Verified, SignatureError> {
    let digest = super::digest(bytes);
    let (section, signed_len) = parse_signature(bytes)?;
    let key_id = section.key_id.clone();
    let Some(key) = trusted.iter().find(|k| k.key_id() == key_id) else {
        return Err(SignatureError::UntrustedKey { digest, key_id });
    };
    let tampered = || SignatureError::Tampered {
        digest: digest.clone(),
        key_id: key_id.clone(),
    };
    let (hash, message) = signed_message(&bytes[..signed_len]);
    if section.signed_digest != format!("sha256:{}", super::hex(&hash)) {
        return Err(tampered());
    }
    let signature = BASE64
        .decode(&section.signature)
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or_else(|| SignatureError::Malformed {
            digest: digest.clone(),
            reason: "the signature is not 64 bytes of base64".into(),
        })?;
    key.key
        .verify_strict(&message, &signature)
        .map_err(|_| tampered())?;
    Ok(Verified { key_id, digest })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn key_files_round_trip() {
        let secret = SecretKey::generate("Example Bank\nLtd");
        let again = SecretKey::parse(&secret.to_text()).unwrap();
        assert_eq!(again.public_key(), secret.public_key());
        assert_eq!(again.public_key().comment(), "Example Bank Ltd");
        let public = PublicKey::parse(&secret.public_key().to_text()).unwrap();
        assert_eq!(public.key_id(), secret.public_key().key_id());
        assert!(public.key_id().starts_with("ed25519:") && public.key_id().len() == 40);
        assert!(!format!("{secret:?}").contains(&BASE64.encode(secret.key.as_bytes())));
        // A secret key is not a public key and the other way round.
        assert!(PublicKey::parse(&secret.to_text()).is_err());
        assert!(SecretKey::parse(&public.to_text()).is_err());
    }

    #[test]
    fn sign_then_verify_and_resign() {
        let a = SecretKey::generate("a");
        let b = SecretKey::generate("b");
        let signed = sign(EMPTY_COMPONENT, &a).unwrap();
        let ok = verify(&signed, &[b.public_key(), a.public_key()]).unwrap();
        assert_eq!(ok.key_id, a.public_key().key_id());
        assert_eq!(ok.digest, super::super::digest(&signed));
        assert_eq!(signer(&signed).unwrap(), Some(ok.key_id.clone()));
        // Re-signing replaces the signature.
        let resigned = sign(&signed, &b).unwrap();
        assert_eq!(
            verify(&resigned, &[b.public_key()]).unwrap().key_id,
            b.public_key().key_id()
        );
        assert_eq!(resigned.len(), signed.len());
    }

    #[test]
    fn refusals_are_typed() {
        let a = SecretKey::generate("a");
        let b = SecretKey::generate("b");
        assert!(matches!(
            verify(EMPTY_COMPONENT, &[a.public_key()]),
            Err(SignatureError::Unsigned { .. })
        ));
        let signed = sign(EMPTY_COMPONENT, &a).unwrap();
        assert!(matches!(
            verify(&signed, &[b.public_key()]),
            Err(SignatureError::UntrustedKey { .. })
        ));
        // One byte of the signed part changed.
        let inner = sections::append_custom(EMPTY_COMPONENT, "data", b"hello");
        let mut bad = sign(&inner, &a).unwrap();
        let at = inner.len() - 1;
        bad[at] ^= 1;
        let err = verify(&bad, &[a.public_key()]).unwrap_err();
        assert!(matches!(err, SignatureError::Tampered { .. }), "{err}");
        assert!(err.to_string().starts_with(&super::super::digest(&bad)));
        // Anything appended after the signature is refused.
        let extended = sections::append_custom(&signed, "later", b"x");
        assert!(matches!(
            verify(&extended, &[a.public_key()]),
            Err(SignatureError::Malformed { .. })
        ));
    }

    #[test]
    fn keygen_writes_private_0600_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("publisher.key");
        let (public, public_path) = keygen(&out, "Example").unwrap();
        assert_eq!(PublicKey::load(&public_path).unwrap(), public);
        assert_eq!(SecretKey::load(&out).unwrap().public_key(), public);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&out).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            keygen(&out, "again"),
            Err(KeyError::Exists { .. })
        ));
    }
}
