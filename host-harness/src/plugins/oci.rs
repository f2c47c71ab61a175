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
//! localhost); optional basic credentials, sent only to the registry's own host and never
//! written to a log or an error; every pulled blob is checked against its descriptor's size and
//! sha256 digest, and a pull larger than [`ClientOptions::max_artifact_bytes`] is refused before
//! it is read. Registries that require bearer tokens (the `WWW-Authenticate: Bearer` challenge)
//! are not supported yet.

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
        })
    }

    fn auth(&self) -> Option<String> {
        self.options.credentials.as_ref().map(|c| {
            let pair = format!("{}:{}", c.username, c.password);
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        })
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
        let mut head = self.agent.head(&head_url);
        if let Some(a) = self.auth() {
            head = head.header("Authorization", a);
        }
        let response = head.call().map_err(|e| self.transport(&head_url, e))?;
        if response.status().is_success() {
            return Ok(());
        }
        let start_url = format!("{}/v2/{repo}/blobs/uploads/", self.base);
        let mut post = self.agent.post(&start_url);
        if let Some(a) = self.auth() {
            post = post.header("Authorization", a);
        }
        let mut response = post
            .send_empty()
            .map_err(|e| self.transport(&start_url, e))?;
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
        let mut put = self
            .agent
            .put(url.as_str())
            .header("Content-Type", "application/octet-stream");
        if let Some(a) = self.auth() {
            put = put.header("Authorization", a);
        }
        let mut response = put
            .send(data)
            .map_err(|e| self.transport(url.as_str(), e))?;
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
        let mut put = self
            .agent
            .put(&url)
            .header("Content-Type", MANIFEST_MEDIA_TYPE);
        if let Some(a) = self.auth() {
            put = put.header("Authorization", a);
        }
        let mut response = put
            .send(&manifest_bytes[..])
            .map_err(|e| self.transport(&url, e))?;
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
        let mut get = self.agent.get(url);
        if let Some(a) = accept {
            get = get.header("Accept", a);
        }
        if let Some(a) = self.auth() {
            get = get.header("Authorization", a);
        }
        let mut response = get.call().map_err(|e| self.transport(url, e))?;
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
