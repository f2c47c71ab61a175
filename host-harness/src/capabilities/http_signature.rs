//! Ibanity's HTTP request signature (`Digest` + `Signature` headers), applied by the host to the
//! requests a plugin sends to one host. Live Ponto applications may have to sign their requests
//! (api-notes §1.7: at least every POST); the signing key is the operator's, so the host holds it
//! and the plugin never sees it — as with the mutual-TLS client certificate.
//!
//! Signing string, as Ibanity's SDKs build it: one `name: value` line each for
//! `(request-target)` (`post /path?query`), `host`, `digest` (`SHA-512=` + base64 of the body's
//! SHA-512), `(created)` (unix seconds), `authorization` when the request carries one, and every
//! `ibanity-*` header; signed with RSA-PSS (SHA-256, MGF1-SHA-256, 32-byte salt).

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PSS_SHA256, RsaKeyPair};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

/// The operator's signature settings for one host.
#[derive(Clone)]
pub struct RequestSigning {
    pub host: String,
    /// The signature certificate's id (Ibanity Developer Portal), sent as `keyId`.
    pub key_id: String,
    /// The certificate's private key: RSA, PKCS#8 PEM, unencrypted.
    pub key_pem: Vec<u8>,
    /// Sign GETs too; by default only the requests that change something (POST, PUT, PATCH,
    /// DELETE) are signed, which is what Ponto asks of live applications.
    pub all_methods: bool,
}

impl std::fmt::Debug for RequestSigning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("RequestSigning")
            .field("host", &self.host)
            .field("key_id", &self.key_id)
            .field("all_methods", &self.all_methods)
            .finish_non_exhaustive()
    }
}

/// A parsed signing key, ready to sign.
pub struct Signer {
    key_id: String,
    key: RsaKeyPair,
    all_methods: bool,
    rng: SystemRandom,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Signer")
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl Signer {
    /// Fails, naming the host, on a key that is not an unencrypted RSA PKCS#8 PEM.
    pub fn new(s: &RequestSigning) -> anyhow::Result<Self> {
        if s.key_id.trim().is_empty() {
            bail!("request signing for `{}`: the key id is empty", s.host);
        }
        let der = PrivateKeyDer::from_pem_slice(&s.key_pem).with_context(|| {
            format!(
                "request signing for `{}`: the key is not a PEM private key (an encrypted key must \
                 be decrypted first: `openssl pkey -in private_key.pem -out signing_key.pem`)",
                s.host
            )
        })?;
        let PrivateKeyDer::Pkcs8(pkcs8) = der else {
            bail!(
                "request signing for `{}`: the key must be PKCS#8 (`-----BEGIN PRIVATE KEY-----`); \
                 convert it with `openssl pkcs8 -topk8 -nocrypt`",
                s.host
            );
        };
        let key = RsaKeyPair::from_pkcs8(pkcs8.secret_pkcs8_der()).map_err(|e| {
            anyhow::anyhow!(
                "request signing for `{}`: not a usable RSA key ({e})",
                s.host
            )
        })?;
        Ok(Self {
            key_id: s.key_id.trim().to_owned(),
            key,
            all_methods: s.all_methods,
            rng: SystemRandom::new(),
        })
    }

    /// Whether a request with this method is signed.
    pub fn applies_to(&self, method: &str) -> bool {
        self.all_methods || !method.eq_ignore_ascii_case("get")
    }

    /// The `Digest` and `Signature` headers for one request. `host` is the `Host` header as sent
    /// (with the port when it is not the scheme's default); `headers` are the plugin's.
    pub fn headers(
        &self,
        method: &str,
        target: &str,
        host: &str,
        body: &[u8],
        headers: &[(String, String)],
        created: u64,
    ) -> anyhow::Result<[(String, String); 2]> {
        let digest = format!(
            "SHA-512={}",
            STANDARD.encode(ring::digest::digest(&ring::digest::SHA512, body))
        );
        let mut names = vec!["(request-target)", "host", "digest", "(created)"];
        let mut lines = vec![
            format!("(request-target): {} {target}", method.to_ascii_lowercase()),
            format!("host: {host}"),
            format!("digest: {digest}"),
            format!("(created): {created}"),
        ];
        let mut extra: Vec<(String, &str)> = headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.as_str()))
            .filter(|(n, _)| n == "authorization" || n.starts_with("ibanity-"))
            .collect();
        // Authorization first, then the ibanity-* headers in a stable order.
        extra.sort_by(|a, b| (a.0 != "authorization", &a.0).cmp(&(b.0 != "authorization", &b.0)));
        for (name, value) in &extra {
            lines.push(format!("{name}: {value}"));
        }
        names.extend(extra.iter().map(|(n, _)| n.as_str()));
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PSS_SHA256,
                &self.rng,
                lines.join("\n").as_bytes(),
                &mut signature,
            )
            .map_err(|_| anyhow::anyhow!("the request could not be signed"))?;
        let header = format!(
            "keyId=\"{}\",created=\"{created}\",algorithm=\"hs2019\",headers=\"{}\",signature=\"{}\"",
            self.key_id,
            names.join(" "),
            STANDARD.encode(signature)
        );
        Ok([
            ("Digest".to_owned(), digest),
            ("Signature".to_owned(), header),
        ])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ring::signature::{RSA_PSS_2048_8192_SHA256, UnparsedPublicKey};

    /// A throw-away 2048-bit RSA key made for these tests only (never used anywhere else).
    pub(crate) const TEST_KEY_PEM: &str = include_str!("../../tests/fixtures/signing-test-key.pem");

    pub(crate) fn signing(host: &str, all_methods: bool) -> RequestSigning {
        RequestSigning {
            host: host.into(),
            key_id: "75b5d796-de5c-400a-81ce-e72371b01cbc".into(),
            key_pem: TEST_KEY_PEM.as_bytes().to_vec(),
            all_methods,
        }
    }

    /// Checks a `Signature` header against the signing string rebuilt from its parts.
    pub(crate) fn verify(signer_key_pem: &str, signature_header: &str, lines: &[String]) -> bool {
        let der = PrivateKeyDer::from_pem_slice(signer_key_pem.as_bytes()).unwrap();
        let PrivateKeyDer::Pkcs8(p) = der else {
            panic!("pkcs8")
        };
        let pair = RsaKeyPair::from_pkcs8(p.secret_pkcs8_der()).unwrap();
        let sig = signature_header
            .split("signature=\"")
            .nth(1)
            .and_then(|s| s.strip_suffix('"'))
            .unwrap();
        let sig = STANDARD.decode(sig).unwrap();
        UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, pair.public().as_ref())
            .verify(lines.join("\n").as_bytes(), &sig)
            .is_ok()
    }

    #[test]
    fn a_post_is_signed_over_target_host_digest_created_and_authorization() {
        let signer = Signer::new(&signing("api.ibanity.com", false)).unwrap();
        let headers = vec![
            ("Authorization".to_owned(), "Bearer t0k3n".to_owned()),
            ("Ibanity-Idempotency-Key".to_owned(), "k1".to_owned()),
            ("Content-Type".to_owned(), "application/json".to_owned()),
        ];
        let body = br#"{"data":{"type":"synchronization"}}"#;
        let [(dn, digest), (sn, sig)] = signer
            .headers(
                "POST",
                "/acme-connect/synchronizations?x=1",
                "api.ibanity.com",
                body,
                &headers,
                1_700_000_000,
            )
            .unwrap();
        assert_eq!((dn.as_str(), sn.as_str()), ("Digest", "Signature"));
        assert_eq!(
            digest,
            format!(
                "SHA-512={}",
                STANDARD.encode(ring::digest::digest(&ring::digest::SHA512, body))
            )
        );
        assert!(sig.starts_with(
            "keyId=\"75b5d796-de5c-400a-81ce-e72371b01cbc\",created=\"1700000000\",\
             algorithm=\"hs2019\",headers=\"(request-target) host digest (created) \
             authorization ibanity-idempotency-key\",signature=\""
        ));
        let lines = vec![
            "(request-target): post /acme-connect/synchronizations?x=1".to_owned(),
            "host: api.ibanity.com".to_owned(),
            format!("digest: {digest}"),
            "(created): 1700000000".to_owned(),
            "authorization: Bearer t0k3n".to_owned(),
            "ibanity-idempotency-key: k1".to_owned(),
        ];
        assert!(verify(TEST_KEY_PEM, &sig, &lines));
        // Any other signing string fails: the check above can fail.
        let mut tampered = lines.clone();
        tampered[4] = "authorization: Bearer other".into();
        assert!(!verify(TEST_KEY_PEM, &sig, &tampered));
    }

    #[test]
    fn gets_are_signed_only_when_asked() {
        let posts = Signer::new(&signing("h", false)).unwrap();
        assert!(posts.applies_to("POST") && posts.applies_to("DELETE"));
        assert!(!posts.applies_to("GET"));
        assert!(Signer::new(&signing("h", true)).unwrap().applies_to("GET"));
    }

    #[test]
    fn unusable_keys_are_refused_naming_the_host_and_never_printed() {
        let mut s = signing("api.ibanity.com", false);
        s.key_pem = b"not a key".to_vec();
        let e = Signer::new(&s).unwrap_err().to_string();
        assert!(
            e.contains("api.ibanity.com") && e.contains("openssl"),
            "{e}"
        );
        let mut s = signing("api.ibanity.com", false);
        s.key_id = " ".into();
        assert!(Signer::new(&s).unwrap_err().to_string().contains("key id"));
        let settings = signing("api.ibanity.com", false);
        let signer = Signer::new(&settings).unwrap();
        assert!(!format!("{signer:?}{settings:?}").contains("PRIVATE"));
    }
}
