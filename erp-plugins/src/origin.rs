//! An HTTP origin a plugin asks for and an operator grants: the grant syntax shared by plugin
//! manifests, the ERP's settings and registry references.

/// One origin the plugin may reach: scheme, host and port (`None` = any port, loopback only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedOrigin {
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
}

impl AllowedOrigin {
    /// Whether `host` names this machine (plain http is allowed only there).
    pub fn is_loopback_host(host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Whether a URL's scheme, host and port fall under this origin.
    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
            && self.host.eq_ignore_ascii_case(host)
            && self.port.is_none_or(|p| p == port)
    }
}

impl std::fmt::Display for AllowedOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}://{}:{p}", self.scheme, self.host),
            None => write!(f, "{}://{}:*", self.scheme, self.host),
        }
    }
}

impl std::str::FromStr for AllowedOrigin {
    type Err = String;

    /// `https://host`, `https://host:8443`, or `http://127.0.0.1:*` (any port, loopback only).
    fn from_str(s: &str) -> Result<Self, String> {
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| format!("`{s}` is not an origin like https://host[:port]"))?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return Err(format!("`{s}`: only http and https origins can be granted")),
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, "*")) => (h, None),
            Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| format!("`{s}`: bad port `{p}`"))?;
                (h, Some(port))
            }
            _ => (rest, Some(default_port)),
        };
        if host.is_empty() || host.contains('/') {
            return Err(format!("`{s}`: an origin has no path"));
        }
        let loopback = Self::is_loopback_host(host);
        if scheme == "http" && !loopback {
            return Err(format!(
                "`{s}`: plain http is allowed only to loopback addresses"
            ));
        }
        if port.is_none() && !loopback {
            return Err(format!(
                "`{s}`: any-port origins are allowed only on loopback"
            ));
        }
        Ok(Self {
            scheme,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase(),
            port,
        })
    }
}
