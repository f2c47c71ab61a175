//! Push and pull a plugin to and from an OCI registry, in the CNCF Wasm OCI artifact layout.
//!
//! # Layout
//!
//! An image manifest (`application/vnd.oci.image.manifest.v1+json`) with
//! - a config blob of media type [`CONFIG_MEDIA_TYPE`] (`application/vnd.wasm.config.v0+json`):
//!   `{"created", "author", "architecture": "wasm", "os": "wasip2", "layerDigests": [...],
//!   "component": {"exports": [...], "imports": [...], "target": null}}`, the shape of the
//!   `oci-wasm` crate's `WasmConfig`, so `wkg oci pull` and other Wasm tools read it;
//! - exactly one layer of media type [`LAYER_MEDIA_TYPE`] (`application/wasm`): the signed
//!   component itself, whose digest is the artifact digest;
//! - annotations `org.opencontainers.image.{title,version,description,authors,licenses,source,
//!   url,revision,created}` copied from the component's metadata, for registry UIs.
//!
//! # Client
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
use serde::{Deserialize, Serialize};
use ureq::Agent;
use url::Url;

use super::reference::Reference;

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";
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

/// A blob's descriptor in a manifest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An OCI image manifest (the fields this layout uses).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The Wasm config blob (the CNCF layout, as `oci-wasm` writes it).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    pub created: String,
    pub author: Option<String>,
    pub architecture: String,
    pub os: String,
    pub layer_digests: Vec<String>,
    pub component: Option<ComponentInfo>,
}

/// A component's top-level imports and exports.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ComponentInfo {
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    pub target: Option<String>,
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
        let mut url = Url::parse(realm)
            .map_err(|_| refused(format!("bad token realm `{}`", super::printable(realm))))?;
        let loopback = url
            .host_str()
            .is_some_and(crate::capabilities::http::AllowedOrigin::is_loopback_host);
        match url.scheme() {
            "https" => {}
            "http" if loopback && self.options.plain_http => {}
            _ => {
                return Err(refused(format!(
                    "the token realm {} is not https (plain http only on loopback)",
                    super::printable(url.origin().ascii_serialization())
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
        let layer_digest = super::digest(component);
        let metadata = super::metadata::read(component).map_err(|e| not_wasm(e.to_string()))?;
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
        let config_digest = super::digest(&config_bytes);
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
        let manifest_digest = super::digest(&manifest_bytes);

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
        let actual = super::digest(&bytes);
        if actual != d.digest {
            return Err(OciError::DigestMismatch {
                digest: d.digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Pulls the component at `reference`, every blob checked against its digest. The component's
    /// signature is *not* checked here: that is [`super::signature::verify`]'s job.
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
        let manifest_digest = super::digest(&manifest_bytes);
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
                super::printable(e)
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
            if !super::is_sha256_digest(&d.digest) {
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
                super::printable(e)
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
fn bearer_challenge(header: &str) -> Option<BTreeMap<String, String>> {
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

/// `name` reduced to a safe file name stem.
fn file_stem(name: &str) -> String {
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    stem.trim_start_matches('.').to_owned()
}

/// The top-level import and export names of a component (`erp:bank-sync/provider@0.1.0`, ...).
pub fn component_info(component: &[u8]) -> Result<ComponentInfo, String> {
    use wasmparser::{Parser, Payload};
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(component) {
        match payload.map_err(|e| format!("not a WebAssembly component: {e}"))? {
            Payload::Version {
                encoding: wasmparser::Encoding::Module,
                ..
            } if depth == 0 => return Err("a core module, not a component".into()),
            Payload::ComponentImportSection(s) if depth == 0 => {
                for i in s {
                    imports.push(i.map_err(|e| e.to_string())?.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(s) if depth == 0 => {
                for e in s {
                    exports.push(e.map_err(|e| e.to_string())?.name.name.to_owned());
                }
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) if depth > 0 => depth -= 1,
            _ => {}
        }
    }
    Ok(ComponentInfo {
        exports,
        imports,
        target: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
            layer_digests: vec![super::super::digest(&component)],
            component: None,
        })
        .unwrap();
        let descriptor = |media: &str, bytes: &[u8]| Descriptor {
            media_type: media.into(),
            digest: super::super::digest(bytes),
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
        let layer = super::super::digest(&component);
        let blobs = BTreeMap::from([
            ("1".to_owned(), manifest),
            (super::super::digest(&config), config),
            (layer.clone(), component),
        ]);
        (blobs, layer)
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
        let (blobs, _) = fake_artifact();
        let (port, _) = token_registry(blobs, "127.0.0.1");
        let r: Reference = format!("oci://127.0.0.1:{port}/acme/bank:1")
            .parse()
            .unwrap();
        let err = Client::new(&r, ClientOptions::for_reference(&r))
            .unwrap()
            .pull(&r)
            .unwrap_err();
        assert!(matches!(err, OciError::Unauthorized { .. }), "{err:?}");
    }

    #[test]
    fn a_plain_http_token_realm_off_loopback_is_refused() {
        let (blobs, _) = fake_artifact();
        let (port, seen) = token_registry(blobs, "auth.example.com");
        let r: Reference = format!("oci://127.0.0.1:{port}/acme/bank:1")
            .parse()
            .unwrap();
        let err = Client::new(&r, ClientOptions::for_reference(&r))
            .unwrap()
            .pull(&r)
            .unwrap_err();
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
}
