//! Publish and install through a real OCI registry (Debian's docker-registry on 127.0.0.1):
//! keygen → sign → push → pull → verify, and the refusals: a changed byte in the registry's
//! stored blob, an unsigned artifact, an untrusted key, plain http off loopback, an oversized pull.

mod support;

use host_harness::plugins::oci::{Client, ClientOptions, OciError};
use host_harness::plugins::reference::Reference;
use host_harness::plugins::signature::{self, PublicKey, SecretKey, SignatureError};
use host_harness::plugins::{artifact, digest, manifest, metadata, store};
use support::plugins::{Registry, packaged_ponto, ponto_manifest, ponto_metadata};

fn client(reference: &Reference) -> Client {
    Client::new(reference, ClientOptions::for_reference(reference)).unwrap()
}

/// A publisher key made with `keygen`, as the CLI would: (secret, public).
fn publisher(dir: &std::path::Path, name: &str) -> (SecretKey, PublicKey) {
    let out = dir.join(name);
    let (public, public_path) = signature::keygen(&out, name).unwrap();
    assert_eq!(PublicKey::load(&public_path).unwrap(), public);
    (SecretKey::load(&out).unwrap(), public)
}

#[test]
fn keygen_sign_push_pull_verify() {
    let registry = Registry::start();
    let (secret, public) = publisher(registry.dir.path(), "publisher.key");
    let signed = signature::sign(&packaged_ponto(), &secret).unwrap();

    let reference: Reference = registry.reference("acme/ponto:0.1.0").parse().unwrap();
    let pushed = client(&reference).push(&reference, &signed).unwrap();
    assert_eq!(pushed.layer_digest, digest(&signed));

    // By tag, then by the manifest digest the push returned.
    for r in [reference.clone(), pushed.reference.clone()] {
        let pulled = client(&r).pull(&r).unwrap();
        assert_eq!(pulled.component, signed);
        assert_eq!(pulled.layer_digest, pushed.layer_digest);
        assert_eq!(pulled.manifest_digest, pushed.manifest_digest);
        assert_eq!(pulled.config.architecture, "wasm");
        assert_eq!(pulled.config.os, "wasip2");
        assert_eq!(
            pulled.annotations["org.opencontainers.image.title"],
            "ponto-provider"
        );
        assert_eq!(
            pulled.config.layer_digests,
            vec![pushed.layer_digest.clone()]
        );
        let component = pulled.config.component.as_ref().unwrap();
        assert!(
            component
                .exports
                .iter()
                .any(|e| e.starts_with("erp:bank-sync/provider@")),
            "{component:?}"
        );
        assert_eq!(
            pulled.annotations["org.opencontainers.image.version"],
            "0.1.0"
        );

        let verified = signature::verify(&pulled.component, std::slice::from_ref(&public)).unwrap();
        assert_eq!(verified.key_id, public.key_id());
        assert_eq!(verified.digest, pushed.layer_digest);
        assert_eq!(manifest::read(&pulled.component).unwrap(), ponto_manifest());
        assert_eq!(metadata::read(&pulled.component).unwrap(), ponto_metadata());

        // What `erp plugin install` does next: inspect, then store by digest.
        let inspected = artifact::inspect(
            &pulled.component,
            std::slice::from_ref(&public),
            artifact::Unsigned::Refuse,
            "0.1.0",
        )
        .unwrap();
        assert_eq!(inspected.digest, pushed.layer_digest);
        assert_eq!(inspected.publisher, Some(public.key_id()));
        let dir = registry.dir.path().join("plugins");
        let (digest, _) = store::store(&dir, &pulled.component).unwrap();
        assert_eq!(store::load(&dir, &digest).unwrap(), signed);
    }
}

#[test]
fn a_changed_byte_in_the_stored_blob_is_refused_naming_the_digest() {
    let registry = Registry::start();
    let (secret, _) = publisher(registry.dir.path(), "publisher.key");
    let signed = signature::sign(&packaged_ponto(), &secret).unwrap();
    let reference: Reference = registry.reference("acme/ponto:0.1.0").parse().unwrap();
    let pushed = client(&reference).push(&reference, &signed).unwrap();

    let blob = registry.blob_path(&pushed.layer_digest);
    let mut bytes = std::fs::read(&blob).expect("the layer blob in the registry's storage");
    assert_eq!(bytes, signed);
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&blob, &bytes).unwrap();

    let err = client(&reference).pull(&reference).unwrap_err();
    match &err {
        OciError::DigestMismatch { digest, actual } => {
            assert_eq!(digest, &pushed.layer_digest);
            assert_eq!(actual, &host_harness::plugins::digest(&bytes));
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    let line = err.to_string();
    assert!(
        line.contains(&pushed.layer_digest) && !line.contains('\n'),
        "{line}"
    );

    // Had the bytes arrived anyway (a registry that does not check), the signature refuses them.
    let refused = signature::verify(&bytes, &[secret.public_key()]).unwrap_err();
    assert!(
        matches!(&refused, SignatureError::Tampered { digest, .. } if *digest == host_harness::plugins::digest(&bytes)),
        "{refused:?}"
    );
}

#[test]
fn an_unsigned_artifact_is_refused() {
    let registry = Registry::start();
    let (secret, _) = publisher(registry.dir.path(), "publisher.key");
    let unsigned = packaged_ponto();
    let reference: Reference = registry.reference("acme/ponto:unsigned").parse().unwrap();
    let pushed = client(&reference).push(&reference, &unsigned).unwrap();
    let pulled = client(&reference).pull(&reference).unwrap();
    let err = signature::verify(&pulled.component, &[secret.public_key()]).unwrap_err();
    assert_eq!(
        err,
        SignatureError::Unsigned {
            digest: pushed.layer_digest.clone()
        }
    );
    assert!(err.to_string().starts_with(&pushed.layer_digest));
}

#[test]
fn an_artifact_signed_by_an_untrusted_key_is_refused() {
    let registry = Registry::start();
    let (trusted, trusted_public) = publisher(registry.dir.path(), "trusted.key");
    let (stranger, stranger_public) = publisher(registry.dir.path(), "stranger.key");
    let _ = trusted;
    let signed = signature::sign(&packaged_ponto(), &stranger).unwrap();
    let reference: Reference = registry.reference("acme/ponto:0.1.0").parse().unwrap();
    let pushed = client(&reference).push(&reference, &signed).unwrap();
    let pulled = client(&reference).pull(&reference).unwrap();
    let err = signature::verify(&pulled.component, &[trusted_public]).unwrap_err();
    assert_eq!(
        err,
        SignatureError::UntrustedKey {
            digest: pushed.layer_digest.clone(),
            key_id: stranger_public.key_id(),
        }
    );
    let line = err.to_string();
    assert!(line.contains(&pushed.layer_digest) && line.contains(&stranger_public.key_id()));
}

#[test]
fn plain_http_to_a_non_loopback_registry_is_refused() {
    for r in [
        "oci://registry.example.com:5000/acme/ponto:0.1.0",
        "oci://10.0.0.7:5000/acme/ponto:0.1.0",
        "oci://[2001:db8::1]:5000/acme/ponto:0.1.0",
    ] {
        let reference: Reference = r.parse().unwrap();
        let mut options = ClientOptions::for_reference(&reference);
        assert!(!options.plain_http);
        options.plain_http = true;
        let err = Client::new(&reference, options).err().expect("refused");
        assert!(matches!(err, OciError::PlainHttpRefused { .. }), "{err:?}");
        assert!(err.to_string().contains("loopback"));
    }
}

#[test]
fn a_pull_larger_than_the_cap_or_not_matching_its_digest_is_refused() {
    let registry = Registry::start();
    let (secret, _) = publisher(registry.dir.path(), "publisher.key");
    let signed = signature::sign(&packaged_ponto(), &secret).unwrap();
    let reference: Reference = registry.reference("acme/ponto:0.1.0").parse().unwrap();
    let pushed = client(&reference).push(&reference, &signed).unwrap();

    let mut options = ClientOptions::for_reference(&reference);
    options.max_artifact_bytes = 1024;
    let err = Client::new(&reference, options)
        .unwrap()
        .pull(&reference)
        .unwrap_err();
    assert!(
        matches!(&err, OciError::TooLarge { digest, .. } if *digest == pushed.layer_digest),
        "{err:?}"
    );

    // A digest reference the registry's manifest does not match.
    let mut wrong = reference.clone();
    wrong.digest = Some(format!("sha256:{}", "0".repeat(64)));
    assert!(client(&wrong).pull(&wrong).is_err());
}

#[test]
fn registry_credentials_are_sent_and_never_shown() {
    use host_harness::plugins::oci::Credentials;
    const USER: &str = "publisher";
    const PASSWORD: &str = "registry-pw-7f3a";
    // bcrypt of PASSWORD (cost 5), the only hash docker-registry's htpasswd accepts.
    const HASH: &str = "$2b$05$erpbanksyncpluginstes.dAePa/kqIkJ6renh6arDe4VHpUN/R.6";
    let registry = Registry::start_with_basic_auth(USER, HASH);
    let signed = signature::sign(&packaged_ponto(), &SecretKey::generate("p")).unwrap();
    let reference: Reference = registry.reference("acme/ponto:0.1.0").parse().unwrap();
    let with = |password: Option<&str>| {
        let mut options = ClientOptions::for_reference(&reference);
        options.credentials = password.map(|p| Credentials {
            username: USER.into(),
            password: p.into(),
        });
        Client::new(&reference, options).unwrap()
    };

    for password in [None, Some("wrong-password-91c2")] {
        let err = with(password).push(&reference, &signed).unwrap_err();
        assert!(matches!(err, OciError::Unauthorized { .. }), "{err:?}");
        let line = format!("{err} {err:?}");
        assert!(!line.contains("wrong-password-91c2") && !line.contains(PASSWORD));
    }
    let pushed = with(Some(PASSWORD)).push(&reference, &signed).unwrap();
    assert!(matches!(
        with(None).pull(&reference).unwrap_err(),
        OciError::Unauthorized { .. }
    ));
    let pulled = with(Some(PASSWORD)).pull(&reference).unwrap();
    assert_eq!(pulled.layer_digest, pushed.layer_digest);
}
