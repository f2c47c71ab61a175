//! Plugin references: `oci://HOST[:PORT]/REPOSITORY[:TAG][@sha256:HEX]`.
//!
//! - `HOST` is a DNS name, an IPv4 address or a bracketed IPv6 address (`[::1]`).
//! - `REPOSITORY` is one or more `/`-separated lowercase components (`acme/bank-provider`).
//! - `TAG` defaults to `latest` when neither a tag nor a digest is given. With a digest, the
//!   pulled manifest must have exactly that digest, whatever the tag says.

use std::fmt;
use std::str::FromStr;

use crate::origin::AllowedOrigin;

/// A parsed `oci://` reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// Registry host, without brackets for IPv6.
    pub host: String,
    pub port: Option<u16>,
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<hex>` of the manifest.
    pub digest: Option<String>,
}

/// Why a reference does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{reference}` is not a plugin reference like oci://HOST:PORT/REPO:TAG: {reason}")]
pub struct ReferenceError {
    pub reference: String,
    pub reason: String,
}

impl Reference {
    /// `HOST[:PORT]` as it appears in URLs (IPv6 bracketed).
    pub fn registry(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }

    /// Whether the registry is on this machine (127.0.0.0/8, ::1, localhost).
    pub fn is_loopback(&self) -> bool {
        AllowedOrigin::is_loopback_host(&self.host)
    }

    /// What goes after `/manifests/`: the digest if any, else the tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci://{}/{}", self.registry(), self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn is_repository(s: &str) -> bool {
    // The OCI distribution grammar: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*, joined by `/`.
    !s.is_empty()
        && s.len() <= 255
        && s.split('/').all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
                && part.as_bytes()[0].is_ascii_alphanumeric()
                && part.as_bytes()[part.len() - 1].is_ascii_alphanumeric()
        })
}

fn is_tag(s: &str) -> bool {
    // [A-Za-z0-9_][A-Za-z0-9._-]{0,127}
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with(['.', '-'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn is_host(s: &str) -> bool {
    s.parse::<std::net::Ipv6Addr>().is_ok()
        || (!s.is_empty()
            && s.len() <= 253
            && s.split('.').all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }))
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason: &str| ReferenceError {
            reference: s.escape_debug().to_string(),
            reason: reason.to_owned(),
        };
        let rest = s
            .strip_prefix("oci://")
            .ok_or_else(|| fail("it must start with oci://"))?;
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| fail("no repository after the registry"))?;
        let (host, port) = if let Some(v6) = registry.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| fail("unclosed [ in the host"))?;
            match after {
                "" => (h, None),
                p => (
                    h,
                    Some(p.strip_prefix(':').ok_or_else(|| fail("bad port"))?),
                ),
            }
        } else {
            match registry.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (registry, None),
            }
        };
        if !is_host(host) {
            return Err(fail("bad registry host"));
        }
        let port = port
            .map(|p| p.parse::<u16>().map_err(|_| fail("bad port")))
            .transpose()?;
        let (path, digest) = match path.split_once('@') {
            Some((p, d)) => {
                if !super::is_sha256_digest(d) {
                    return Err(fail("the digest must be sha256:<64 lowercase hex>"));
                }
                (p, Some(d.to_owned()))
            }
            None => (path, None),
        };
        // A tag follows the last `:` of the last path component.
        let last = path.rsplit('/').next().unwrap_or("");
        let (repository, tag) = match last.rsplit_once(':') {
            Some((_, t)) => (&path[..path.len() - t.len() - 1], Some(t.to_owned())),
            None => (path, None),
        };
        if !is_repository(repository) {
            return Err(fail(
                "the repository must be lowercase letters, digits, . _ - and /",
            ));
        }
        if let Some(t) = &tag
            && !is_tag(t)
        {
            return Err(fail("the tag must be letters, digits, . _ - (at most 128)"));
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_owned())
        } else {
            tag
        };
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port,
            repository: repository.to_owned(),
            tag,
            digest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tags_digests_and_ipv6() {
        let r: Reference = "oci://127.0.0.1:5000/acme/bank:0.1.0".parse().unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository, "acme/bank");
        assert_eq!(r.manifest_reference(), "0.1.0");
        assert!(r.is_loopback());
        assert_eq!(r.to_string(), "oci://127.0.0.1:5000/acme/bank:0.1.0");

        let d = format!("sha256:{}", "a".repeat(64));
        let r: Reference = format!("oci://[::1]:5000/bank@{d}").parse().unwrap();
        assert_eq!(r.host, "::1");
        assert_eq!(r.registry(), "[::1]:5000");
        assert_eq!(r.manifest_reference(), d);
        assert!(r.is_loopback());

        let r: Reference = "oci://ghcr.io/acme/bank".parse().unwrap();
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert!(!r.is_loopback());
    }

    #[test]
    fn refuses_bad_references_with_a_reason() {
        for (bad, needle) in [
            ("https://x/y:1", "oci://"),
            ("oci://host", "repository"),
            ("oci://host:99999/r:1", "port"),
            ("oci://host/Upper:1", "lowercase"),
            ("oci://host/r:.bad", "tag"),
            ("oci://host/r@sha256:xyz", "digest"),
            ("oci://ho st/r", "host"),
        ] {
            let err = bad.parse::<Reference>().unwrap_err().to_string();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }
}
