//! Fault injection: what a client must survive. Inject with [`crate::Sandbox::inject`] or, from
//! another process, `POST /_sandbox/faults` with the same value as JSON, e.g.
//! `{"kind":"http","failure":{"kind":"rateLimited","retryAfterSecs":2},"scope":{"times":3}}`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Fault {
    /// Matching API requests (under `/ponto-connect`) fail this way instead of being served.
    Http {
        failure: HttpFailure,
        #[serde(default)]
        scope: Scope,
    },
    /// The account's bank consent has lapsed: `authorizationExpirationExpectedAt` moves into the
    /// past and its synchronizations end in `error` with `authorizationInvalid`, until the user
    /// completes a reauthorization request.
    ExpiredConsent { account_id: String },
    /// The account's institution is under maintenance: account `meta.availability` becomes
    /// `readonly`, data stays readable and synchronizations end in `error`.
    Maintenance { account_id: String },
    /// Every outstanding refresh token is revoked (as if the user ended the integration in Ponto).
    RevokedRefreshToken,
    /// Every outstanding refresh token counts as already used (as if a rotation was lost).
    UsedRefreshToken,
    /// Every outstanding access token expires now (401 `invalidAccessToken`).
    ExpiredAccessToken,
    /// Sets the `accountRecentlySynchronized` window (0 lets every synchronization through).
    SyncCooldown { secs: u64 },
    /// Removes every injected fault (HTTP faults, expired consents, maintenance).
    ClearAll,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum HttpFailure {
    /// 429 with a JSON:API error, with or without a `Retry-After` header (seconds).
    RateLimited { retry_after_secs: Option<u64> },
    /// A 5xx with a JSON:API error body (500, 502, 503, 504).
    ServerError { status: u16 },
    /// Served normally, after a delay.
    Slow { millis: u64 },
    /// 200 whose body is the first half of the real JSON.
    TruncatedJson,
    /// 200 whose body is not JSON at all.
    InvalidJson,
    /// An HTML error page (as a proxy or load balancer would send) with this status.
    HtmlErrorPage { status: u16 },
    /// The connection drops mid-response: the status line, headers and a first chunk of the
    /// body are sent, then the body fails and the server closes the socket (no complete answer).
    ConnectionReset,
    /// A JSON:API error document with this status whose error has no `detail` (and no `meta`):
    /// only `code` when given, `{"errors":[{}]}` otherwise.
    JsonApiErrorWithoutDetail { status: u16, code: Option<String> },
    /// Served normally, except that every string value of member `field` in the body becomes
    /// `value` (an enum value the client has never seen, e.g. `remittanceInformationType`).
    UnknownEnumValue { field: String, value: String },
    /// Served normally, except that every member `field` is removed from the body.
    MissingAttribute { field: String },
    /// Served normally, except that every member `field` is `null`.
    NullValue { field: String },
    /// Served normally, except that `links.next` (when there is one) leads to `origin`
    /// (`https://attacker.example`) with the same path and query.
    ForeignNextLink { origin: String },
    /// A paging loop: the first matching request is served normally and remembered; every later
    /// matching page's `links.next` leads back to that first page.
    LoopingNextLink,
    /// Served normally, padded with an extra top-level member to `bytes` bytes in all (a huge
    /// but valid page).
    HugePage { bytes: usize },
}

/// Which requests an HTTP fault hits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Scope {
    /// How many matching requests fail (`None`: all of them, until `ClearAll`). Default 1.
    pub times: Option<u32>,
    /// Only requests whose path contains this account id.
    pub account_id: Option<String>,
    /// Only requests whose path contains this text (e.g. `/transactions`, `/oauth2/token`).
    pub path_contains: Option<String>,
    /// Let this many matching requests through before failing (e.g. `1`: the second page
    /// fails, after the first one was served).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip: Option<u32>,
}

impl Default for Scope {
    fn default() -> Self {
        Scope {
            times: Some(1),
            account_id: None,
            path_contains: None,
            skip: None,
        }
    }
}

impl Fault {
    /// The next API request fails with `failure`; chain `.times(n)`, `.always()`, `.for_account(id)`.
    pub fn http(failure: HttpFailure) -> Fault {
        Fault::Http {
            failure,
            scope: Scope::default(),
        }
    }

    pub fn times(mut self, n: u32) -> Fault {
        if let Fault::Http { scope, .. } = &mut self {
            scope.times = Some(n);
        }
        self
    }

    pub fn always(mut self) -> Fault {
        if let Fault::Http { scope, .. } = &mut self {
            scope.times = None;
        }
        self
    }

    pub fn for_account(mut self, account_id: &str) -> Fault {
        if let Fault::Http { scope, .. } = &mut self {
            scope.account_id = Some(account_id.to_string());
        }
        self
    }

    pub fn on_path(mut self, path_contains: &str) -> Fault {
        if let Fault::Http { scope, .. } = &mut self {
            scope.path_contains = Some(path_contains.to_string());
        }
        self
    }

    /// Serve the first `n` matching requests normally, then fail.
    pub fn after(mut self, n: u32) -> Fault {
        if let Fault::Http { scope, .. } = &mut self {
            scope.skip = Some(n);
        }
        self
    }
}

/// An HTTP fault waiting for matching requests.
#[derive(Debug, Clone)]
pub struct ActiveFault {
    pub failure: HttpFailure,
    pub scope: Scope,
    /// For `LoopingNextLink`: the path and query of the first page served.
    pub first_page: Option<String>,
}

impl ActiveFault {
    pub fn new(failure: HttpFailure, scope: Scope) -> ActiveFault {
        ActiveFault {
            failure,
            scope,
            first_page: None,
        }
    }
}

/// What the fault middleware does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub failure: HttpFailure,
    /// For `LoopingNextLink`: where the next link leads back to.
    pub first_page: Option<String>,
}

impl ActiveFault {
    pub fn matches(&self, path: &str) -> bool {
        self.scope
            .account_id
            .as_deref()
            .is_none_or(|a| path.contains(a))
            && self
                .scope
                .path_contains
                .as_deref()
                .is_none_or(|p| path.contains(p))
    }
}

/// Takes one use of the first fault matching `path`, dropping it when used up. `path_and_query`
/// is what a looping next link leads back to.
pub fn take_matching(
    faults: &mut Vec<ActiveFault>,
    path: &str,
    path_and_query: &str,
) -> Option<Hit> {
    let i = faults.iter().position(|f| f.matches(path))?;
    let f = &mut faults[i];
    if let Some(n) = f.scope.skip.as_mut().filter(|n| **n > 0) {
        *n -= 1;
        return None;
    }
    if f.failure == HttpFailure::LoopingNextLink && f.first_page.is_none() {
        // The page the loop returns to is served normally.
        f.first_page = Some(path_and_query.to_string());
        return None;
    }
    let hit = Hit {
        failure: f.failure.clone(),
        first_page: f.first_page.clone(),
    };
    match &mut f.scope.times {
        Some(n) if *n <= 1 => {
            faults.remove(i);
        }
        Some(n) => *n -= 1,
        None => {}
    }
    Some(hit)
}

// ---- body rewriting (exact: untouched bytes stay byte for byte, amounts included) --------------

/// Rewrites every member `"name":value` of a compact or pretty JSON text: `f` gets the value's
/// text and returns its replacement, or `None` to remove the member. A body that is not JSON is
/// returned unchanged. Occurrences inside string values cannot match: there the quotes are
/// escaped.
pub fn rewrite_members(
    body: &[u8],
    name: &str,
    mut f: impl FnMut(&[u8]) -> Option<Vec<u8>>,
) -> Vec<u8> {
    let key = format!("\"{name}\"");
    let key = key.as_bytes();
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let Some(at) = find(&body[i..], key).map(|p| p + i) else {
            break;
        };
        // The key must be followed by optional spaces and a colon to be a member name.
        let mut colon = at + key.len();
        while colon < body.len() && body[colon].is_ascii_whitespace() {
            colon += 1;
        }
        if body.get(colon) != Some(&b':') {
            out.extend_from_slice(&body[i..at + key.len()]);
            i = at + key.len();
            continue;
        }
        let mut start = colon + 1;
        while start < body.len() && body[start].is_ascii_whitespace() {
            start += 1;
        }
        let mut values = serde_json::Deserializer::from_slice(&body[start..])
            .into_iter::<serde::de::IgnoredAny>();
        if !matches!(values.next(), Some(Ok(_))) {
            out.extend_from_slice(&body[i..]);
            return out;
        }
        let end = start + values.byte_offset();
        match f(&body[start..end]) {
            Some(new) => {
                out.extend_from_slice(&body[i..start]);
                out.extend_from_slice(&new);
                i = end;
            }
            None => {
                // Drop the member and one comma next to it.
                let mut after = end;
                while after < body.len() && body[after].is_ascii_whitespace() {
                    after += 1;
                }
                if body.get(after) == Some(&b',') {
                    out.extend_from_slice(&body[i..at]);
                    i = after + 1;
                } else {
                    out.extend_from_slice(&body[i..at]);
                    while out.last().is_some_and(u8::is_ascii_whitespace) {
                        out.pop();
                    }
                    if out.last() == Some(&b',') {
                        out.pop();
                    }
                    i = end;
                }
            }
        }
    }
    out.extend_from_slice(&body[i.min(body.len())..]);
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `links.next` replaced by `to(old)` when it is a string.
pub fn rewrite_next(body: &[u8], to: impl Fn(&str) -> String) -> Vec<u8> {
    rewrite_links(body, |links| {
        rewrite_members(links, "next", |v| {
            let old: String = serde_json::from_slice(v).ok()?;
            Some(serde_json::to_vec(&to(&old)).unwrap_or_else(|_| v.to_vec()))
        })
    })
}

/// Applies `f` to the value of the top-level `links` member only.
fn rewrite_links(body: &[u8], f: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
    rewrite_members(body, "links", |v| {
        // Resource-level `links` (`related`) have no `next`; rewriting them is harmless.
        Some(f(v))
    })
}

/// The same URL on another origin: `https://attacker.example` + path and query.
pub fn with_origin(url: &str, origin: &str) -> String {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r.find('/').map_or("", |p| &r[p..]))
        .unwrap_or(url);
    format!("{}{rest}", origin.trim_end_matches('/'))
}

/// The body padded to `bytes` bytes with a leading `"padding"` member (bodies that are not an
/// object, or already that large, are returned unchanged).
pub fn pad(body: &[u8], bytes: usize) -> Vec<u8> {
    const HEAD: &[u8] = b"{\"padding\":\"";
    let empty = body[1.min(body.len())..]
        .iter()
        .find(|c| !c.is_ascii_whitespace())
        == Some(&b'}');
    let tail: &[u8] = if empty { b"\"" } else { b"\"," };
    // The body's own `{` is replaced by HEAD's.
    let fixed = HEAD.len() + tail.len() + body.len().saturating_sub(1);
    if body.first() != Some(&b'{') || fixed >= bytes {
        return body.to_vec();
    }
    let fill = bytes - fixed;
    let mut out = Vec::with_capacity(bytes);
    out.extend_from_slice(HEAD);
    out.resize(HEAD.len() + fill, b'x');
    out.extend_from_slice(tail);
    out.extend_from_slice(&body[1..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_round_trips() {
        let f = Fault::http(HttpFailure::RateLimited {
            retry_after_secs: Some(2),
        })
        .times(3);
        let s = serde_json::to_string(&f).unwrap();
        assert_eq!(
            s,
            r#"{"kind":"http","failure":{"kind":"rateLimited","retryAfterSecs":2},"scope":{"times":3,"accountId":null,"pathContains":null}}"#
        );
        let back: Fault = serde_json::from_str(
            r#"{"kind":"http","failure":{"kind":"rateLimited","retryAfterSecs":2},"scope":{"times":3}}"#,
        )
        .unwrap();
        assert_eq!(back, f);
        let e: Fault =
            serde_json::from_str(r#"{"kind":"expiredConsent","accountId":"x"}"#).unwrap();
        assert_eq!(
            e,
            Fault::ExpiredConsent {
                account_id: "x".into()
            }
        );
    }

    #[test]
    fn counts_down_and_filters() {
        let mut v = vec![ActiveFault::new(
            HttpFailure::InvalidJson,
            Scope {
                times: Some(2),
                account_id: Some("acc-1".into()),
                path_contains: None,
                skip: None,
            },
        )];
        let take = |v: &mut Vec<ActiveFault>, p: &str| take_matching(v, p, p);
        assert_eq!(take(&mut v, "/ponto-connect/accounts/acc-2"), None);
        assert!(take(&mut v, "/ponto-connect/accounts/acc-1").is_some());
        assert!(take(&mut v, "/ponto-connect/accounts/acc-1/transactions").is_some());
        assert_eq!(take(&mut v, "/ponto-connect/accounts/acc-1"), None);
    }

    #[test]
    fn skip_lets_the_first_requests_through() {
        let Fault::Http { failure, scope } = Fault::http(HttpFailure::InvalidJson).after(2) else {
            unreachable!()
        };
        let mut v = vec![ActiveFault::new(failure, scope)];
        assert_eq!(take_matching(&mut v, "/a", "/a"), None);
        assert_eq!(take_matching(&mut v, "/a", "/a"), None);
        assert!(take_matching(&mut v, "/a", "/a").is_some());
        assert!(v.is_empty(), "used up");
        // `skip` is left out of the JSON when unset, so older clients' shapes still round-trip.
        let s = serde_json::to_string(&Fault::http(HttpFailure::ConnectionReset).after(1)).unwrap();
        assert!(s.contains(r#""skip":1"#), "{s}");
    }

    #[test]
    fn a_looping_link_remembers_the_first_page() {
        let mut v = vec![ActiveFault::new(
            HttpFailure::LoopingNextLink,
            Scope {
                times: None,
                ..Scope::default()
            },
        )];
        assert_eq!(take_matching(&mut v, "/t", "/t?page[limit]=2"), None);
        let hit = take_matching(&mut v, "/t", "/t?page[after]=x&page[limit]=2").unwrap();
        assert_eq!(hit.first_page.as_deref(), Some("/t?page[limit]=2"));
    }

    #[test]
    fn members_are_rewritten_exactly() {
        let body = br#"{"data":[{"id":"a","attributes":{"amount":-0.10,"currency":"EUR","note":"say \"amount\": 1"}},{"id":"b","attributes":{"currency":"USD","amount":12345678901234567.89}}],"links":{"next":"http://127.0.0.1:9/p?page[after]=b"}}"#;
        let removed = rewrite_members(body, "amount", |_| None);
        assert_eq!(
            String::from_utf8(removed).unwrap(),
            r#"{"data":[{"id":"a","attributes":{"currency":"EUR","note":"say \"amount\": 1"}},{"id":"b","attributes":{"currency":"USD"}}],"links":{"next":"http://127.0.0.1:9/p?page[after]=b"}}"#
        );
        let nulled = rewrite_members(body, "currency", |_| Some(b"null".to_vec()));
        let text = String::from_utf8(nulled).unwrap();
        assert!(text.contains(r#""amount":-0.10,"currency":null"#), "{text}");
        assert!(
            text.contains("12345678901234567.89"),
            "amounts keep their digits: {text}"
        );
        let foreign = rewrite_next(body, |u| with_origin(u, "https://attacker.example"));
        assert!(
            String::from_utf8(foreign)
                .unwrap()
                .ends_with(r#""next":"https://attacker.example/p?page[after]=b"}}"#)
        );
        // Not JSON after the name: left as it is.
        assert_eq!(
            rewrite_members(br#"{"amount":"#, "amount", |_| None),
            br#"{"amount":"#
        );
    }

    #[test]
    fn padding_reaches_the_size_and_stays_json() {
        let body = br#"{"data":[]}"#;
        let padded = pad(body, 4096);
        assert_eq!(padded.len(), 4096);
        let v: serde_json::Value = serde_json::from_slice(&padded).unwrap();
        assert_eq!(v["data"], serde_json::json!([]));
        let empty = pad(b"{ }", 100);
        assert_eq!(empty.len(), 100);
        assert!(serde_json::from_slice::<serde_json::Value>(&empty).is_ok());
    }
}
