//! Tests of the registry client against fake registries.

use std::collections::BTreeMap;

use base64::Engine as _;

use super::client::bearer_challenge;
use super::*;
use crate::plugins::reference::Reference;

#[test]
fn plain_http_off_loopback_is_refused_in_one_line() {
    let r: Reference = "oci://registry.example.com:5000/acme/bank:1"
        .parse()
        .unwrap();
    let mut options = ClientOptions::for_reference(&r);
    assert!(!options.plain_http, "https by default off loopback");
    options.plain_http = true;
    let err = Client::new(&r, options).err().unwrap().to_string();
    assert!(err.contains("registry.example.com:5000") && err.contains("loopback"));
    assert!(!err.contains('\n'));
}

#[test]
fn parses_bearer_challenges() {
    let c = bearer_challenge(
        r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:acme/bank:pull,push""#,
    )
    .unwrap();
    assert_eq!(c["realm"], "https://auth.example.com/token");
    assert_eq!(c["service"], "registry.example.com");
    assert_eq!(c["scope"], "repository:acme/bank:pull,push");
    assert!(bearer_challenge(r#"Basic realm="test""#).is_none());
    assert!(bearer_challenge("Bearer").is_none());
}

/// A fake registry behind a token service: every `/v2/` request needs `Bearer tok-1`, which
/// `/token` issues only for the basic credentials `me:pw`. Serves one pull of `blobs`.
fn token_registry(
    blobs: BTreeMap<String, Vec<u8>>,
    realm_host: &'static str,
) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push(line.trim_end().to_owned());
            }
            let path = head
                .first()
                .and_then(|l| l.split(' ').nth(1))
                .unwrap_or("")
                .to_owned();
            let auth = head
                .iter()
                .find_map(|h| {
                    h.strip_prefix("authorization: ")
                        .or(h.strip_prefix("Authorization: "))
                })
                .unwrap_or("")
                .to_owned();
            log.lock().unwrap().push(format!("{path} {auth}"));
            let basic = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("me:pw")
            );
            let (status, extra, body): (&str, String, Vec<u8>) = if path.starts_with("/token") {
                if auth == basic {
                    ("200 OK", String::new(), br#"{"token":"tok-1"}"#.to_vec())
                } else {
                    ("401 Unauthorized", String::new(), Vec::new())
                }
            } else if auth != "Bearer tok-1" {
                (
                    "401 Unauthorized",
                    format!(
                        "WWW-Authenticate: Bearer realm=\"http://{realm_host}:{port}/token\",service=\"fake\",scope=\"repository:acme/bank:pull\"\r\n"
                    ),
                    Vec::new(),
                )
            } else {
                let key = path.rsplit('/').next().unwrap_or("").to_owned();
                match blobs.get(&key) {
                    Some(b) => ("200 OK", String::new(), b.clone()),
                    None => ("404 Not Found", String::new(), Vec::new()),
                }
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    (port, seen)
}

fn fake_artifact() -> (BTreeMap<String, Vec<u8>>, String) {
    let component = b"\0asm\x0d\0\x01\0".to_vec();
    let config = serde_json::to_vec(&WasmConfig {
        created: "2026-01-01T00:00:00Z".into(),
        author: None,
        architecture: "wasm".into(),
        os: "wasip2".into(),
        layer_digests: vec![crate::plugins::digest(&component)],
        component: None,
    })
    .unwrap();
    let descriptor = |media: &str, bytes: &[u8]| Descriptor {
        media_type: media.into(),
        digest: crate::plugins::digest(bytes),
        size: bytes.len() as u64,
        annotations: BTreeMap::new(),
    };
    let manifest = serde_json::to_vec(&ImageManifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.into()),
        config: descriptor(CONFIG_MEDIA_TYPE, &config),
        layers: vec![descriptor(LAYER_MEDIA_TYPE, &component)],
        annotations: BTreeMap::new(),
    })
    .unwrap();
    let layer = crate::plugins::digest(&component);
    let blobs = BTreeMap::from([
        ("1".to_owned(), manifest),
        (crate::plugins::digest(&config), config),
        (layer.clone(), component),
    ]);
    (blobs, layer)
}

/// A pull without credentials from a [`token_registry`] whose token service is at `realm_host`:
/// the error, and the requests the registry saw.
fn pull_without_credentials(
    realm_host: &'static str,
) -> (OciError, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let (blobs, _) = fake_artifact();
    let (port, seen) = token_registry(blobs, realm_host);
    let r: Reference = format!("oci://127.0.0.1:{port}/acme/bank:1")
        .parse()
        .unwrap();
    let err = Client::new(&r, ClientOptions::for_reference(&r))
        .unwrap()
        .pull(&r)
        .unwrap_err();
    (err, seen)
}

#[test]
fn a_bearer_challenge_is_answered_with_a_token_from_the_realm() {
    let (blobs, layer) = fake_artifact();
    let (port, seen) = token_registry(blobs, "127.0.0.1");
    let r: Reference = format!("oci://127.0.0.1:{port}/acme/bank:1")
        .parse()
        .unwrap();
    let mut options = ClientOptions::for_reference(&r);
    options.credentials = Some(Credentials {
        username: "me".into(),
        password: "pw".into(),
    });
    let pulled = Client::new(&r, options).unwrap().pull(&r).unwrap();
    assert_eq!(pulled.layer_digest, layer);
    let seen = seen.lock().unwrap().clone();
    // The token service got the basic credentials; once it answered, every registry
    // request carried the token.
    let tokens: Vec<_> = seen.iter().filter(|l| l.starts_with("/token")).collect();
    assert_eq!(tokens.len(), 1, "{seen:?}");
    assert!(tokens[0].contains("scope=repository%3Aacme%2Fbank%3Apull"));
    assert!(tokens[0].ends_with(" Basic bWU6cHc="), "{seen:?}");
    let after = seen.iter().skip_while(|l| !l.starts_with("/token")).skip(1);
    assert!(after.clone().count() >= 3, "{seen:?}");
    assert!(
        after.clone().all(|l| l.ends_with(" Bearer tok-1")),
        "{seen:?}"
    );

    // Without credentials the token service refuses: one typed line.
    let (err, _) = pull_without_credentials("127.0.0.1");
    assert!(matches!(err, OciError::Unauthorized { .. }), "{err:?}");
}

#[test]
fn a_plain_http_token_realm_off_loopback_is_refused() {
    let (err, seen) = pull_without_credentials("auth.example.com");
    assert!(
        matches!(&err, OciError::Protocol { reason, .. } if reason.contains("auth.example.com")),
        "{err:?}"
    );
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|l| !l.starts_with("/token"))
    );
}

#[test]
fn credentials_never_show_in_debug() {
    let c = Credentials {
        username: "me".into(),
        password: "hunter2".into(),
    };
    assert!(!format!("{c:?}").contains("hunter2"));
    let r: Reference = "oci://127.0.0.1:1/x:1".parse().unwrap();
    let mut options = ClientOptions::for_reference(&r);
    options.credentials = Some(c);
    assert!(!format!("{options:?}").contains("hunter2"));
}
