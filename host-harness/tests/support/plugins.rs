//! Shared by the plugin distribution tests: the release Ponto component packaged as a provider
//! artifact, and a real OCI registry (Debian's `docker-registry`, distribution 2.8.2) on
//! 127.0.0.1 with its storage in a temporary directory.

#![allow(dead_code)]

use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use host_harness::plugins::{artifact, manifest, metadata};

/// The release component the build script made.
pub const PONTO: &str = erp_components::PONTO_PROVIDER;
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// The metadata the tests publish with.
pub fn ponto_metadata() -> metadata::PackageMetadata {
    metadata::PackageMetadata {
        name: Some("ponto-provider".into()),
        version: Some("0.1.0".into()),
        description: Some("Ponto bank-sync provider for erp:bank-sync".into()),
        authors: Some("ERP bank-sync authors".into()),
        licenses: Some("MIT OR Apache-2.0".into()),
        source: Some("https://example.com/erp/bank-sync".into()),
        homepage: Some("https://example.com/erp".into()),
        revision: Some("0123456789abcdef".into()),
    }
}

/// A capability manifest for Ponto written out in code: the artifact tests' own fixture (they
/// name its contract version as the host's); the one the build embeds is plugin/provider.toml.
pub fn ponto_manifest() -> manifest::CapabilityManifest {
    let key = |key: &str, secret: bool, env: &[&str]| manifest::ConfigKey {
        key: key.to_owned(),
        secret,
        env: env.iter().map(|s| (*s).to_owned()).collect(),
    };
    manifest::CapabilityManifest {
        format: manifest::FORMAT,
        id: "ponto".into(),
        name: "Ponto".into(),
        contract_version: "0.1.0".into(),
        origins: vec![
            "https://api.ibanity.com".into(),
            "http://127.0.0.1:*".into(),
            "http://localhost:*".into(),
        ],
        config: vec![
            key("api-url", false, &["PONTO_API_URL"]),
            key("authorization-url", false, &["PONTO_AUTH_URL"]),
            key("client-id", false, &["PONTO_CLIENT_ID"]),
            key("client-secret", true, &["PONTO_CLIENT_SECRET"]),
            key("date-field", false, &[]),
            key("statement-grouping", false, &[]),
            key("overlap-days", false, &[]),
            key("overlap-walk-hours", false, &[]),
            key("page-size", false, &[]),
            key("sync-poll-attempts", false, &[]),
            key("sync-poll-interval-ms", false, &[]),
        ],
        storage: Some(manifest::StorageNeeds {
            max_keys: 1024,
            max_value_bytes: 64 * 1024,
        }),
    }
}

/// The release component with its metadata and capability manifest, unsigned.
pub fn packaged_ponto() -> Vec<u8> {
    let raw = std::fs::read(PONTO).expect("the release Ponto component (built by build.rs)");
    artifact::package(&raw, &ponto_metadata(), &ponto_manifest()).unwrap()
}

/// A `docker-registry` process serving 127.0.0.1:`port`, killed on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry without authentication.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Starts a registry that requires HTTP basic authentication of `(user, bcrypt hash)`.
    pub fn start_with_basic_auth(user: &str, bcrypt_hash: &str) -> Self {
        Self::start_with(Some((user, bcrypt_hash)))
    }

    /// Starts a registry; fails the test (never skips it) when the binary is missing.
    fn start_with(auth: Option<(&str, &str)>) -> Self {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: install Debian's docker-registry package \
             (apt-get install docker-registry); the plugin distribution tests need a real registry"
        );
        let dir = tempfile::tempdir().unwrap();
        // A free port: bind port 0, note it, release it for the registry.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("config.yml");
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("storage").display()
        );
        if let Some((user, hash)) = auth {
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        std::fs::write(&config, yaml).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let mut registry = Self { child, port, dir };
        registry.wait_ready();
        registry
    }

    /// Waits until `/v2/` answers (a readiness wait, not a timed assertion).
    fn wait_ready(&mut self) {
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "docker-registry exited ({status}): {}",
                    std::fs::read_to_string(self.dir.path().join("registry.log"))
                        .unwrap_or_default()
                );
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::Write as _;
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                // 200, or 401 when it requires authentication: either way it serves.
                if ["200", "401"].iter().any(|code| {
                    answer.starts_with(&format!("HTTP/1.1 {code}"))
                        || answer.starts_with(&format!("HTTP/1.0 {code}"))
                }) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("docker-registry did not answer on 127.0.0.1:{}", self.port);
    }

    /// `oci://127.0.0.1:PORT/<path>`.
    pub fn reference(&self, path: &str) -> String {
        format!("oci://127.0.0.1:{}/{path}", self.port)
    }

    /// Where the registry stores the blob `sha256:<hex>` on disk.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
