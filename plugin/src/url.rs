//! Just enough URL handling for Ponto: origins (for the same-origin rule on `links.next`), query
//! building and query parsing. The `url` crate would pull in IDNA tables for nothing.

/// `scheme://host[:port]`, lower case, for an absolute http(s) URL; none otherwise.
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let mut authority = authority.to_ascii_lowercase();
    // Default ports compare equal to no port.
    if let Some(stripped) = authority.strip_suffix(if scheme == "https" { ":443" } else { ":80" }) {
        authority = stripped.to_string();
    }
    Some(format!("{scheme}://{authority}"))
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
pub fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// An `application/x-www-form-urlencoded` body.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The decoded query parameters of a URL (fragment ignored).
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    let without_fragment = url.split('#').next().unwrap_or_default();
    match without_fragment.split_once('?') {
        Some((_, q)) => form_urlencoded::parse(q.as_bytes()).into_owned().collect(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(
            origin("https://API.ibanity.com/ponto-connect").as_deref(),
            Some("https://api.ibanity.com")
        );
        assert_eq!(
            origin("http://127.0.0.1:8080/x?y").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin("https://a.com:443/x"), origin("https://a.com/y"));
        assert_ne!(origin("https://a.com.evil.com/"), origin("https://a.com/"));
        assert_eq!(origin("https://user@a.com/"), None);
        assert_eq!(origin("ftp://a.com/"), None);
        assert_eq!(origin("/relative"), None);
    }

    #[test]
    fn queries() {
        let q = query_pairs("https://erp/cb?code=a%2Bb&state=x+y#frag");
        assert_eq!(
            q,
            vec![
                ("code".to_string(), "a+b".to_string()),
                ("state".to_string(), "x y".to_string())
            ]
        );
        assert_eq!(encode("ai offline_access"), "ai%20offline_access");
        assert_eq!(form(&[("a", "b c"), ("d", "&")]), "a=b+c&d=%26");
    }
}
