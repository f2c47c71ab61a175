//! Provider and host settings: a TOML file (`--config`), then the environment variables each
//! installed provider's manifest declares for its keys (Ponto's: PONTO_API_URL, PONTO_AUTH_URL,
//! PONTO_CLIENT_ID, PONTO_CLIENT_SECRET), so one binary points at a sandbox, a compatible server,
//! or the live API. The ERP itself knows no provider's variables.
//!
//! ```toml
//! [provider.ponto]                          # one table per installed provider id
//! api-url = "https://api.ibanity.com/ponto-connect"
//! authorization-url = "https://authorization.myponto.com/oauth2/auth"
//! client-id = "..."
//! client-secret = "..."
//! date-field = "execution"                  # or "value"
//! statement-grouping = "day"                # day | week | month | sync
//! overlap-days = 7
//! overlap-walk-hours = 24                   # re-read the overlap at least this often (0: every sync)
//! page-size = 100
//!
//! [host]
//! granted-origins = ["https://api.ibanity.com"]  # optional cap on what installs granted
//! refresh-hours = 12
//! max-lines = 1000
//! call-timeout-secs = 60
//! http-timeout-ms = 30000                   # per HTTP answer
//! cache-dir = "/var/cache/erp"
//! plugin-dir = "/var/lib/erp/plugins"       # default: <database>.plugins/ beside the database
//!
//! [[host.client-certificates]]               # Ponto's mutual TLS
//! host = "api.ibanity.com"
//! certificate = "certificate.pem"
//! key = "private_key.pem"
//!
//! [[host.request-signing]]                    # Ibanity's HTTP signature (live applications)
//! host = "api.ibanity.com"
//! key-id = "75b5d796-de5c-400a-81ce-e72371b01cbc"  # the signature certificate's id
//! key = "signing_key.pem"                    # unencrypted PKCS#8 RSA key
//! all-methods = false                        # true: sign GETs too
//! ```
//!
//! A flat `[provider]` table (the keys directly under it) still configures the only installed
//! provider, with a one-line deprecation note.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::errors::ErpError;
use crate::capabilities::http::{AllowedOrigin, ClientCertificate, HttpPolicy, RequestSigning};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    #[serde(default)]
    provider: BTreeMap<String, toml::Value>,
    #[serde(default)]
    host: HostFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct HostFile {
    granted_origins: Option<Vec<String>>,
    refresh_hours: Option<u32>,
    max_lines: Option<u32>,
    call_timeout_secs: Option<u64>,
    http_timeout_ms: Option<u64>,
    cache_dir: Option<PathBuf>,
    plugin_dir: Option<PathBuf>,
    #[serde(default)]
    client_certificates: Vec<CertFile>,
    #[serde(default)]
    request_signing: Vec<SigningFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct SigningFile {
    host: String,
    key_id: String,
    key: PathBuf,
    #[serde(default)]
    all_methods: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CertFile {
    host: String,
    certificate: PathBuf,
    key: PathBuf,
}

#[derive(Clone, Debug)]
pub struct Settings {
    /// A provider component file to run instead of an installed one: development tools and
    /// tests only (set in code, never from the file or the environment).
    pub plugin_path: Option<PathBuf>,
    /// Provider settings set in code (the demo's sandbox), over the file and the environment.
    pub provider_config: BTreeMap<String, String>,
    /// `[provider.<id>]` tables, by provider id.
    pub provider_tables: BTreeMap<String, BTreeMap<String, String>>,
    /// The keys of a flat `[provider]` table (deprecated): the only installed provider's.
    pub provider_flat: BTreeMap<String, String>,
    /// The environment, for the variables a provider's manifest declares.
    pub env: BTreeMap<String, String>,
    /// `[host] granted-origins`: a cap on the origins installs granted; none means no cap. A
    /// plugin file run in development gets these, or what its manifest asks when none.
    pub granted_origins: Vec<AllowedOrigin>,
    /// Where installed plugins are stored (`[host] plugin-dir`); default beside the database.
    pub plugin_dir: Option<PathBuf>,
    pub refresh_hours: u32,
    pub max_lines: u32,
    pub call_timeout: Duration,
    /// Longest wait for one HTTP answer (the plugin may ask for less, never more).
    pub http_timeout: Duration,
    pub cache_dir: PathBuf,
    pub client_certificates: Vec<ClientCertificate>,
    pub request_signing: Vec<RequestSigning>,
}

impl Settings {
    /// Defaults, then the file (if given), then the environment.
    pub fn load(config: Option<&Path>) -> Result<Self, ErpError> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        Self::load_with_env(config, &env)
    }

    pub fn load_with_env(
        config: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, ErpError> {
        let (file, base) = match config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ErpError::Config {
                    path: path.to_owned(),
                    reason: format!("cannot read the config file: {e}"),
                })?;
                let file: FileSettings = toml::from_str(&text).map_err(|e| {
                    // The message and line only: toml's snippet of the line could show a secret.
                    let line = e
                        .span()
                        .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
                    ErpError::Config {
                        path: path.to_owned(),
                        reason: format!(
                            "not a valid config file{}: {}",
                            line.map(|l| format!(" (line {l})")).unwrap_or_default(),
                            one_line(e.message())
                        ),
                    }
                })?;
                (file, path.parent().map(Path::to_owned).unwrap_or_default())
            }
            None => (FileSettings::default(), PathBuf::new()),
        };
        let config_path = config
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("(environment)"));
        let bad = |reason: String| ErpError::Config {
            path: config_path.clone(),
            reason,
        };
        // Keys directly under [provider] (deprecated flat form) or tables [provider.<id>].
        let text_of = |key: &str, value: &toml::Value| match value {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Boolean(b) => Ok(b.to_string()),
            other => Err(bad(format!(
                "[provider] {key} must be a string or a whole number, not {}",
                other.type_str()
            ))),
        };
        let mut provider_flat = BTreeMap::new();
        let mut provider_tables = BTreeMap::new();
        for (key, value) in &file.provider {
            if let toml::Value::Table(table) = value {
                let mut keys = BTreeMap::new();
                for (k, v) in table {
                    keys.insert(k.clone(), text_of(&format!("{key}.{k}"), v)?);
                }
                provider_tables.insert(key.clone(), keys);
            } else {
                provider_flat.insert(key.clone(), text_of(key, value)?);
            }
        }
        let granted_origins = file
            .host
            .granted_origins
            .iter()
            .flatten()
            .map(|o| {
                o.parse::<AllowedOrigin>()
                    .map_err(|e| bad(format!("[host] granted-origins: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Ranges checked here, once, so a huge value is one line now rather than an overflow
        // after a sync has committed its batches.
        let within = |key: &str, value: u64, max: u64| {
            if (1..=max).contains(&value) {
                Ok(value)
            } else {
                Err(bad(format!(
                    "[host] {key} = {value} is out of range: give a whole number from 1 to {max}"
                )))
            }
        };
        let host = &file.host;
        let refresh_hours = within(
            "refresh-hours",
            host.refresh_hours.unwrap_or(12).into(),
            8760,
        )?;
        let max_lines = within(
            "max-lines",
            host.max_lines.unwrap_or(1000).into(),
            1_000_000,
        )?;
        let call_timeout = within(
            "call-timeout-secs",
            host.call_timeout_secs.unwrap_or(60),
            3600,
        )?;
        let http_timeout = match host.http_timeout_ms {
            Some(ms) => Duration::from_millis(within("http-timeout-ms", ms, 600_000)?),
            None => HttpPolicy::default().timeout,
        };
        let mut client_certificates = Vec::new();
        for c in &file.host.client_certificates {
            let read = |p: &Path| {
                std::fs::read(base.join(p)).map_err(|e| {
                    bad(format!(
                        "client certificate for {}: {}: {e}",
                        c.host,
                        p.display()
                    ))
                })
            };
            client_certificates.push(ClientCertificate {
                host: c.host.clone(),
                cert_pem: read(&c.certificate)?,
                key_pem: read(&c.key)?,
            });
        }
        let mut request_signing = Vec::new();
        for s in &file.host.request_signing {
            let key_pem = std::fs::read(base.join(&s.key)).map_err(|e| {
                bad(format!(
                    "request-signing key for {}: {}: {e}",
                    s.host,
                    s.key.display()
                ))
            })?;
            request_signing.push(RequestSigning {
                host: s.host.clone(),
                key_id: s.key_id.clone(),
                key_pem,
                all_methods: s.all_methods,
            });
        }
        Ok(Self {
            plugin_path: None,
            provider_config: BTreeMap::new(),
            provider_tables,
            provider_flat,
            env: env.clone(),
            granted_origins,
            plugin_dir: file.host.plugin_dir.map(|d| base.join(d)),
            refresh_hours: refresh_hours as u32,
            max_lines: max_lines as u32,
            call_timeout: Duration::from_secs(call_timeout),
            http_timeout,
            cache_dir: file
                .host
                .cache_dir
                .map(|d| base.join(d))
                .unwrap_or_else(crate::runtime::default_cache_dir),
            client_certificates,
            request_signing,
        })
    }

    /// What provider `id` reads through `config.get`: its `[provider.<id>]` table (or the flat
    /// `[provider]` keys when `flat_ok`: it is the only installed provider), then the environment
    /// variables its manifest declares (first set wins), then the settings made in code. The
    /// second value is the deprecation note when the flat form was used.
    pub fn provider_config_for(
        &self,
        id: &str,
        declared: &[crate::plugins::manifest::ConfigKey],
        flat_ok: bool,
    ) -> (BTreeMap<String, String>, Option<String>) {
        let mut config = BTreeMap::new();
        let mut note = None;
        if let Some(table) = self.provider_tables.get(id) {
            config.extend(table.clone());
        } else if flat_ok && !self.provider_flat.is_empty() {
            config.extend(self.provider_flat.clone());
            note = Some(format!(
                "keys directly under [provider] are deprecated: move them to [provider.{id}]"
            ));
        }
        for key in declared {
            if let Some(v) = key
                .env
                .iter()
                .find_map(|var| self.env.get(var).filter(|v| !v.is_empty()))
            {
                config.insert(key.key.clone(), v.clone());
            }
        }
        config.extend(self.provider_config.clone());
        (config, note)
    }

    pub fn http_policy(&self) -> HttpPolicy {
        HttpPolicy {
            client_certificates: self.client_certificates.clone(),
            request_signing: self.request_signing.clone(),
            timeout: self.http_timeout,
            ..HttpPolicy::default()
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let p = dir.path().join("erp.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// The keys a manifest declares, with their environment variables (an acme provider: the
    /// ERP knows no provider's variables).
    fn declared() -> Vec<crate::plugins::manifest::ConfigKey> {
        ["api-url", "client-id", "overlap-days"]
            .iter()
            .map(|k| crate::plugins::manifest::ConfigKey {
                key: (*k).to_owned(),
                secret: false,
                env: vec![format!("ACME_{}", k.to_uppercase().replace('-', "_"))],
            })
            .collect()
    }

    #[test]
    fn file_then_the_environment_the_manifest_declares() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "[provider.acme]\napi-url = \"http://127.0.0.1:9/acme\"\nclient-id = \"file-id\"\noverlap-days = 3\n[provider.other]\nclient-id = \"other\"\n[host]\nrefresh-hours = 6\n",
        );
        let env = BTreeMap::from([
            ("ACME_CLIENT_ID".to_owned(), "env-id".to_owned()),
            ("OTHER_API_URL".to_owned(), "not-declared".to_owned()),
        ]);
        let s = Settings::load_with_env(Some(&p), &env).unwrap();
        let (config, note) = s.provider_config_for("acme", &declared(), false);
        assert_eq!(config["client-id"], "env-id");
        assert_eq!(config["api-url"], "http://127.0.0.1:9/acme");
        assert_eq!(config["overlap-days"], "3");
        assert_eq!(note, None);
        assert_eq!(s.refresh_hours, 6);
        assert!(s.granted_origins.is_empty(), "nothing granted by default");
        assert_eq!(s.http_policy().timeout, Duration::from_secs(30), "default");
        let p = write(&dir, "[host]\nhttp-timeout-ms = 250\n");
        let s = Settings::load_with_env(Some(&p), &BTreeMap::new()).unwrap();
        assert_eq!(s.http_policy().timeout, Duration::from_millis(250));
    }

    #[test]
    fn a_flat_provider_table_configures_the_only_provider_with_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "[provider]\nclient-id = \"flat\"\n");
        let s = Settings::load_with_env(Some(&p), &BTreeMap::new()).unwrap();
        let (config, note) = s.provider_config_for("acme", &declared(), true);
        assert_eq!(config["client-id"], "flat");
        assert!(note.unwrap().contains("[provider.acme]"));
        let (config, _) = s.provider_config_for("acme", &declared(), false);
        assert!(
            config.is_empty(),
            "not when several providers are installed"
        );
    }

    #[test]
    fn request_signing_keys_are_read_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k.pem"), b"KEY").unwrap();
        let p = write(
            &dir,
            "[[host.request-signing]]\nhost = \"api.ibanity.com\"\nkey-id = \"sig-1\"\nkey = \"k.pem\"\n",
        );
        let s = Settings::load_with_env(Some(&p), &BTreeMap::new()).unwrap();
        let policy = s.http_policy();
        let [r] = policy.request_signing.as_slice() else {
            panic!(
                "one signing entry expected: {:?}",
                policy.request_signing.len()
            )
        };
        assert_eq!(
            (r.host.as_str(), r.key_id.as_str()),
            ("api.ibanity.com", "sig-1")
        );
        assert_eq!((r.key_pem.as_slice(), r.all_methods), (&b"KEY"[..], false));
        let p = write(
            &dir,
            "[[host.request-signing]]\nhost = \"h\"\nkey-id = \"x\"\nkey = \"missing.pem\"\n",
        );
        let e = Settings::load_with_env(Some(&p), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("request-signing key for h") && e.contains("missing.pem"),
            "{e}"
        );
    }

    #[test]
    fn malformed_toml_is_one_line_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "[provider\napi-url = 3");
        let e = Settings::load_with_env(Some(&p), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("erp.toml") && e.contains("not a valid config file"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
        let p = write(&dir, "[provider]\nclient-secret = \"s3cr3t-value\n");
        let e = Settings::load_with_env(Some(&p), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && !e.contains("s3cr3t"),
            "the secret never shows: {e}"
        );
    }

    #[test]
    fn host_numbers_out_of_range_are_one_line_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "[host]\nrefresh-hours = 8760\ncall-timeout-secs = 3600\n",
        );
        let s = Settings::load_with_env(Some(&p), &BTreeMap::new()).unwrap();
        assert_eq!((s.refresh_hours, s.call_timeout.as_secs()), (8760, 3600));
        for (text, key) in [
            ("refresh-hours = 4294967295", "refresh-hours"),
            ("call-timeout-secs = 0", "call-timeout-secs"),
            (
                "call-timeout-secs = 18446744073709551615",
                "call-timeout-secs",
            ),
            ("http-timeout-ms = 0", "http-timeout-ms"),
            ("max-lines = 0", "max-lines"),
        ] {
            let p = write(&dir, &format!("[host]\n{text}\n"));
            let e = Settings::load_with_env(Some(&p), &BTreeMap::new())
                .unwrap_err()
                .to_string();
            assert!(e.contains(key) && e.contains("out of range"), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn unknown_sections_and_plain_http_origins_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "[hots]\nx = 1\n");
        assert!(Settings::load_with_env(Some(&p), &BTreeMap::new()).is_err());
        let p = write(&dir, "[host]\ngranted-origins = [\"http://example.com\"]\n");
        let e = Settings::load_with_env(Some(&p), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("loopback"), "{e}");
    }
}
