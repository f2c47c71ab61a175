//! The registry client: push and pull over the OCI distribution API.
//!
//! The registry HTTP API (OCI distribution spec) is spoken directly with the blocking `ureq`
//! client the host already uses. The `oci-client` + `oci-wasm` crates were measured here first:
//! with rustls they add 81 crates to the lock, among them aws-lc-sys (a C/cmake build), quinn,
//! jsonwebtoken, a second reqwest/hyper TLS stack, a second sha2, and a third copy of the
//! wasm-tools crates (wit-component 0.253) only to list a component's imports; and they need a
//! tokio runtime around every call. The subset needed (blob upload, manifest put/get, blob get)
//! is a few hundred lines and carries no TLS or runtime of its own.
//!
//! Rules: https everywhere, plain http only to a loopback registry (127.0.0.0/8, ::1,
//! localhost); optional basic credentials, sent only to the registry and its token service and
//! never written to a log or an error; every pulled blob is checked against its descriptor's
//! size and sha256 digest, and a pull larger than [`ClientOptions::max_artifact_bytes`] is
//! refused before it is read. A registry that hands out bearer tokens (a 401 with
//! `WWW-Authenticate: Bearer realm=...,service=...,scope=...`, as ghcr.io and Docker Hub do) gets
//! its token fetched from the realm, with the basic credentials if any, under the same
//! https-or-loopback rule.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use ureq::Agent;
use url::Url;

use super::layout::{
    CONFIG_MEDIA_TYPE, Descriptor, ImageManifest, LAYER_MEDIA_TYPE, MANIFEST_MEDIA_TYPE,
    WasmConfig, component_info, file_stem,
};
use crate::plugins::reference::Reference;

/// Manifests and config blobs are small; anything bigger is refused unread.
const MAX_SMALL_BLOB: u64 = 256 * 1024;

/// Registry credentials (HTTP basic). `Debug` never shows the password.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <password>)", self.username)
    }
}

/// How to talk to the registry.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Use http instead of https; refused unless the registry is on loopback.
    pub plain_http: bool,
    pub credentials: Option<Credentials>,
    /// Largest component pulled.
    pub max_artifact_bytes: u64,
    /// Longest wait for one request.
    pub timeout: Duration,
}

impl ClientOptions {
    /// Defaults for `reference`: plain http exactly when the registry is on loopback, no
    /// credentials, a 64 MiB cap, 2 minutes per request.
    pub fn for_reference(reference: &Reference) -> Self {
        Self {
            plain_http: reference.is_loopback(),
            credentials: None,
            max_artifact_bytes: 64 * 1024 * 1024,
            timeout: Duration::from_secs(120),
        }
    }
}

/// Why a push or pull failed. None carries credentials.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error(
        "refusing plain http to the registry {registry}: plain http is allowed only on loopback (127.0.0.0/8, ::1, localhost); use https"
    )]
    PlainHttpRefused { registry: String },
    #[error(
        "cannot reach the registry at {url}: {message}; check the address and that the registry runs"
    )]
    Transport { url: String, message: String },
    #[error(
        "the registry refused access to {reference} ({status}); check the registry credentials"
    )]
    Unauthorized { reference: String, status: u16 },
    #[error("{reference}: {what} not found in the registry (404); check the repository and tag")]
    NotFound { reference: String, what: String },
    #[error("the registry answered {status} to {what} for {reference}{detail}")]
    Status {
        reference: String,
        what: String,
        status: u16,
        detail: String,
    },
    #[error("the registry broke the upload protocol for {reference}: {reason}")]
    Protocol { reference: String, reason: String },
    #[error("{reference} is not a Wasm component artifact: {reason}")]
    NotWasm { reference: String, reason: String },
    #[error(
        "{digest}: the registry sent bytes whose digest is {actual}: the stored artifact is corrupt or was altered; nothing was installed"
    )]
    DigestMismatch { digest: String, actual: String },
    #[error("{digest}: {size} bytes, more than the {cap} allowed; nothing was downloaded")]
    TooLarge { digest: String, size: u64, cap: u64 },
}

/// What a push stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// The reference pushed, with the manifest digest.
    pub reference: Reference,
    /// `sha256:` of the manifest.
    pub manifest_digest: String,
    /// `sha256:` of the component: the artifact digest.
    pub layer_digest: String,
}

/// What a pull fetched, every blob checked against its digest.
#[derive(Clone, Debug)]
pub struct Pulled {
    pub component: Vec<u8>,
    /// `sha256:` of the component: the artifact digest.
    pub layer_digest: String,
    pub manifest_digest: String,
    pub config: WasmConfig,
    pub annotations: BTreeMap<String, String>,
}

/// A registry client for one reference's registry.
pub struct Client {
    agent: Agent,
    base: String,
    registry: String,
    host: String,
    options: ClientOptions,
    /// The last bearer token the registry's token service issued (never logged).
    token: std::sync::Mutex<Option<String>>,
}

#[derive(Clone, Copy)]
enum Method {
    Head,
    Get,
    Post,
    Put,
}

impl Client {
    /// A client for `reference`'s registry; refuses plain http off loopback.
    pub fn new(reference: &Reference, options: ClientOptions) -> Result<Self, OciError> {
        if options.plain_http && !reference.is_loopback() {
            return Err(OciError::PlainHttpRefused {
                registry: reference.registry(),
            });
        }
        let scheme = if options.plain_http { "http" } else { "https" };
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            // Blob GETs may be redirected to storage; a redirect never downgrades to http off
            // loopback, and never carries our Authorization header (ureq's default).
            .https_only(!options.plain_http)
            .max_redirects(if options.plain_http { 0 } else { 5 })
            .proxy(None)
            .timeout_global(Some(options.timeout))
            .user_agent(concat!("erp-host/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(Self {
            agent,
            base: format!("{scheme}://{}", reference.registry()),
            registry: reference.registry(),
            host: reference.host.clone(),
            options,
            token: std::sync::Mutex::new(None),
        })
    }

    fn basic(&self) -> Option<String> {
        self.options.credentials.as_ref().map(|c| {
            let pair = format!("{}:{}", c.username, c.password);
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        })
    }

    /// One request, with `auth` as its Authorization header.
    fn send_once(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        auth: Option<&str>,
    ) -> Result<ureq::http::Response<ureq::Body>, OciError> {
        macro_rules! with_headers {
            ($rb:expr) => {{
                let mut rb = $rb;
                for (k, v) in headers {
                    rb = rb.header(*k, *v);
                }
                if let Some(a) = auth {
                    rb = rb.header("Authorization", a);
                }
                rb
            }};
        }
        match method {
            Method::Head => with_headers!(self.agent.head(url)).call(),
            Method::Get => with_headers!(self.agent.get(url)).call(),
            Method::Post => with_headers!(self.agent.post(url)).send(body),
            Method::Put => with_headers!(self.agent.put(url)).send(body),
        }
        .map_err(|e| self.transport(url, e))
    }

    /// A request to the registry. Registries that hand out bearer tokens answer 401 with a
    /// `WWW-Authenticate: Bearer realm=...,service=...,scope=...` challenge: the token is fetched
    /// from the realm (with the basic credentials, if any) and the request is sent once more.
    fn call(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<ureq::http::Response<ureq::Body>, OciError> {
        let token = self.token.lock().map(|t| t.clone()).unwrap_or(None);
        let auth = token
            .map(|t| format!("Bearer {t}"))
            .or_else(|| self.basic());
        let response = self.send_once(method, url, headers, body, auth.as_deref())?;
        if response.status().as_u16() != 401 {
            return Ok(response);
        }
        let Some(challenge) = response
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(bearer_challenge)
        else {
            return Ok(response);
        };
        let token = self.fetch_token(&challenge)?;
        let auth = format!("Bearer {token}");
        if let Ok(mut slot) = self.token.lock() {
            *slot = Some(token);
        }
        self.send_once(method, url, headers, body, Some(&auth))
    }

    /// A token from the challenge's realm: https, or http on loopback only, like the registry.
    fn fetch_token(&self, challenge: &BTreeMap<String, String>) -> Result<String, OciError> {
        let refused = |reason: String| OciError::Protocol {
            reference: self.registry.clone(),
            reason,
        };
        let realm = challenge.get("realm").map(String::as_str).unwrap_or("");
        let mut url = Url::parse(realm).map_err(|_| {
            refused(format!(
                "bad token realm `{}`",
                crate::plugins::printable(realm)
            ))
        })?;
        let loopback = url
            .host_str()
            .is_some_and(crate::capabilities::http::AllowedOrigin::is_loopback_host);
        match url.scheme() {
            "https" => {}
            "http" if loopback && self.options.plain_http => {}
            _ => {
                return Err(refused(format!(
                    "the token realm {} is not https (plain http only on loopback)",
                    crate::plugins::printable(url.origin().ascii_serialization())
                )));
            }
        }
        for key in ["service", "scope"] {
            if let Some(v) = challenge.get(key) {
                url.query_pairs_mut().append_pair(key, v);
            }
        }
        let mut response =
            self.send_once(Method::Get, url.as_str(), &[], &[], self.basic().as_deref())?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            return Err(OciError::Unauthorized {
                reference: self.registry.clone(),
                status,
            });
        }
        #[derive(Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_SMALL_BLOB)
            .read_to_vec()
            .map_err(|e| self.transport(url.as_str(), e))?;
        let token: Token = serde_json::from_slice(&body)
            .map_err(|_| refused("the token service's answer is not JSON".into()))?;
        token
            .token
            .or(token.access_token)
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| refused("the token service sent no usable token".into()))
    }

    fn transport(&self, url: &str, e: ureq::Error) -> OciError {
        OciError::Transport {
            url: url.to_owned(),
            message: e.to_string(),
        }
    }

    /// Maps a non-success status to a typed error; the registry's error code, sanitised, is kept.
    fn status_error(
        &self,
        reference: &Reference,
        what: &str,
        response: &mut ureq::http::Response<ureq::Body>,
    ) -> OciError {
        let status = response.status().as_u16();
        let reference = reference.to_string();
        match status {
            401 | 403 => OciError::Unauthorized { reference, status },
            404 => OciError::NotFound {
                reference,
                what: what.to_owned(),
            },
            _ => {
                let body = response
                    .body_mut()
                    .with_config()
                    .limit(4096)
                    .read_to_vec()
                    .unwrap_or_default();
                let detail: String = String::from_utf8_lossy(&body)
                    .chars()
                    .take(200)
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                OciError::Status {
                    reference,
                    what: what.to_owned(),
                    status,
                    detail: if detail.trim().is_empty() {
                        String::new()
                    } else {
                        format!(": {}", detail.trim())
                    },
                }
            }
        }
    }

    /// Resolves a `Location` header against the registry, refusing another host (credentials
    /// and uploads stay with the registry named in the reference).
    fn resolve(&self, reference: &Reference, location: &str) -> Result<Url, OciError> {
        let base = Url::parse(&self.base).map_err(|e| OciError::Transport {
            url: self.base.clone(),
            message: e.to_string(),
        })?;
        let url = base.join(location).map_err(|e| OciError::Protocol {
            reference: reference.to_string(),
            reason: format!("unusable upload Location: {e}"),
        })?;
        let same_host = url
            .host_str()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .is_some_and(|h| h.eq_ignore_ascii_case(&self.host));
        if !same_host || url.scheme() != base.scheme() {
            return Err(OciError::Protocol {
                reference: reference.to_string(),
                reason: format!(
                    "the upload was sent to another server ({})",
                    url.origin().ascii_serialization()
                ),
            });
        }
        Ok(url)
    }

    fn upload_blob(
        &self,
        reference: &Reference,
        digest: &str,
        data: &[u8],
    ) -> Result<(), OciError> {
        let repo = &reference.repository;
        let head_url = format!("{}/v2/{repo}/blobs/{digest}", self.base);
        let response = self.call(Method::Head, &head_url, &[], &[])?;
        if response.status().is_success() {
            return Ok(());
        }
        let start_url = format!("{}/v2/{repo}/blobs/uploads/", self.base);
        let mut response = self.call(Method::Post, &start_url, &[], &[])?;
        if !response.status().is_success() {
            return Err(self.status_error(reference, "blob upload", &mut response));
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| OciError::Protocol {
                reference: reference.to_string(),
                reason: "no Location header for the upload".into(),
            })?
            .to_owned();
        let mut url = self.resolve(reference, &location)?;
        url.query_pairs_mut().append_pair("digest", digest);
        let mut response = self.call(
            Method::Put,
            url.as_str(),
            &[("Content-Type", "application/octet-stream")],
            data,
        )?;
        if !response.status().is_success() {
            return Err(self.status_error(reference, "blob upload", &mut response));
        }
        Ok(())
    }

    /// Pushes a signed component to `reference` (which must name a tag).
    pub fn push(&self, reference: &Reference, component: &[u8]) -> Result<Pushed, OciError> {
        let not_wasm = |reason: String| OciError::NotWasm {
            reference: reference.to_string(),
            reason,
        };
        let tag = match (&reference.tag, &reference.digest) {
            (Some(t), None) => t.clone(),
            _ => return Err(not_wasm("a push needs a tag and no digest".into())),
        };
        let layer_digest = crate::plugins::digest(component);
        let metadata =
            crate::plugins::metadata::read(component).map_err(|e| not_wasm(e.to_string()))?;
        let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let config = WasmConfig {
            created: created.clone(),
            author: metadata.authors.clone(),
            architecture: "wasm".into(),
            os: "wasip2".into(),
            layer_digests: vec![layer_digest.clone()],
            component: Some(component_info(component).map_err(not_wasm)?),
        };
        let config_bytes = serde_json::to_vec(&config).map_err(|e| not_wasm(e.to_string()))?;
        let config_digest = crate::plugins::digest(&config_bytes);
        let mut annotations =
            BTreeMap::from([("org.opencontainers.image.created".to_owned(), created)]);
        for (key, value) in [
            ("title", &metadata.name),
            ("version", &metadata.version),
            ("description", &metadata.description),
            ("authors", &metadata.authors),
            ("licenses", &metadata.licenses),
            ("source", &metadata.source),
            ("url", &metadata.homepage),
            ("revision", &metadata.revision),
        ] {
            if let Some(v) = value {
                annotations.insert(format!("org.opencontainers.image.{key}"), v.clone());
            }
        }
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.into()),
            config: Descriptor {
                media_type: CONFIG_MEDIA_TYPE.into(),
                digest: config_digest.clone(),
                size: config_bytes.len() as u64,
                annotations: BTreeMap::new(),
            },
            layers: vec![Descriptor {
                media_type: LAYER_MEDIA_TYPE.into(),
                digest: layer_digest.clone(),
                size: component.len() as u64,
                // The file name OCI tools (oras, wkg) give the layer when they save it.
                annotations: BTreeMap::from([(
                    "org.opencontainers.image.title".to_owned(),
                    format!(
                        "{}.wasm",
                        file_stem(metadata.name.as_deref().unwrap_or("component"))
                    ),
                )]),
            }],
            annotations,
        };
        let manifest_bytes = serde_json::to_vec(&manifest).map_err(|e| not_wasm(e.to_string()))?;
        let manifest_digest = crate::plugins::digest(&manifest_bytes);

        self.upload_blob(reference, &layer_digest, component)?;
        self.upload_blob(reference, &config_digest, &config_bytes)?;
        let url = format!("{}/v2/{}/manifests/{tag}", self.base, reference.repository);
        let mut response = self.call(
            Method::Put,
            &url,
            &[("Content-Type", MANIFEST_MEDIA_TYPE)],
            &manifest_bytes,
        )?;
        if !response.status().is_success() {
            return Err(self.status_error(reference, "manifest upload", &mut response));
        }
        let mut pushed = reference.clone();
        pushed.digest = Some(manifest_digest.clone());
        Ok(Pushed {
            reference: pushed,
            manifest_digest,
            layer_digest,
        })
    }

    /// GETs `url` and returns at most `cap` bytes, refusing a declared or actual size above it.
    fn get(
        &self,
        reference: &Reference,
        what: &str,
        url: &str,
        accept: Option<&str>,
        digest_for_errors: &str,
        cap: u64,
    ) -> Result<Vec<u8>, OciError> {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        let mut response = self.call(Method::Get, url, &headers, &[])?;
        if !response.status().is_success() {
            return Err(self.status_error(reference, what, &mut response));
        }
        let too_large = |size| OciError::TooLarge {
            digest: digest_for_errors.to_owned(),
            size,
            cap,
        };
        let body = response.into_body();
        if let Some(len) = body.content_length().filter(|&l| l > cap) {
            return Err(too_large(len));
        }
        let mut bytes = Vec::new();
        body.into_reader()
            .take(cap.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| self.transport(url, ureq::Error::from(e)))?;
        if bytes.len() as u64 > cap {
            return Err(too_large(bytes.len() as u64));
        }
        Ok(bytes)
    }

    /// Fetches the blob `d` and checks its size and digest.
    fn blob(&self, reference: &Reference, d: &Descriptor, cap: u64) -> Result<Vec<u8>, OciError> {
        if d.size > cap {
            return Err(OciError::TooLarge {
                digest: d.digest.clone(),
                size: d.size,
                cap,
            });
        }
        let url = format!(
            "{}/v2/{}/blobs/{}",
            self.base, reference.repository, d.digest
        );
        let bytes = self.get(reference, "blob", &url, None, &d.digest, d.size)?;
        let actual = crate::plugins::digest(&bytes);
        if actual != d.digest {
            return Err(OciError::DigestMismatch {
                digest: d.digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Pulls the component at `reference`, every blob checked against its digest. The component's
    /// signature is *not* checked here: that is [`crate::plugins::signature::verify`]'s job.
    pub fn pull(&self, reference: &Reference) -> Result<Pulled, OciError> {
        let not_wasm = |reason: String| OciError::NotWasm {
            reference: reference.to_string(),
            reason,
        };
        let url = format!(
            "{}/v2/{}/manifests/{}",
            self.base,
            reference.repository,
            reference.manifest_reference()
        );
        let manifest_bytes = self.get(
            reference,
            "manifest",
            &url,
            Some(MANIFEST_MEDIA_TYPE),
            reference.manifest_reference(),
            MAX_SMALL_BLOB,
        )?;
        let manifest_digest = crate::plugins::digest(&manifest_bytes);
        if let Some(expected) = &reference.digest
            && *expected != manifest_digest
        {
            return Err(OciError::DigestMismatch {
                digest: expected.clone(),
                actual: manifest_digest,
            });
        }
        let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes).map_err(|e| {
            not_wasm(format!(
                "its manifest does not parse: {}",
                crate::plugins::printable(e)
            ))
        })?;
        if manifest.config.media_type != CONFIG_MEDIA_TYPE {
            return Err(not_wasm(format!(
                "its config media type is `{}`, not {CONFIG_MEDIA_TYPE}",
                manifest.config.media_type.escape_debug()
            )));
        }
        let layer = match manifest.layers.as_slice() {
            [one] if one.media_type == LAYER_MEDIA_TYPE => one.clone(),
            _ => {
                return Err(not_wasm(format!(
                    "it must have exactly one {LAYER_MEDIA_TYPE} layer"
                )));
            }
        };
        for d in [&manifest.config, &layer] {
            if !crate::plugins::is_sha256_digest(&d.digest) {
                return Err(not_wasm(format!(
                    "digest `{}` is not sha256:<hex>",
                    d.digest.escape_debug()
                )));
            }
        }
        let config_bytes = self.blob(reference, &manifest.config, MAX_SMALL_BLOB)?;
        let config: WasmConfig = serde_json::from_slice(&config_bytes).map_err(|e| {
            not_wasm(format!(
                "its config does not parse: {}",
                crate::plugins::printable(e)
            ))
        })?;
        let component = self.blob(reference, &layer, self.options.max_artifact_bytes)?;
        Ok(Pulled {
            component,
            layer_digest: layer.digest,
            manifest_digest,
            config,
            annotations: manifest.annotations,
        })
    }

    /// The registry's `HOST[:PORT]`.
    pub fn registry(&self) -> &str {
        &self.registry
    }
}

/// The parameters of a `Bearer` challenge (`realm`, `service`, `scope`), quoted values unquoted.
pub(super) fn bearer_challenge(header: &str) -> Option<BTreeMap<String, String>> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied().filter(|c| *c != ',') {
                value.push(c);
                chars.next();
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), value);
    }
    params.contains_key("realm").then_some(params)
}
