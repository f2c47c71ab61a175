//! Talking to Ponto: retries (429 with Retry-After, 5xx with capped backoff), error translation,
//! JSON:API paging under the same-origin rule, and OAuth2 tokens with rotation by
//! compare-and-swap.

use crate::bindings::Result;
use crate::bindings::http::{Body, HttpError, Method, Request, Response};
use crate::bindings::log::Level;
use crate::bindings::types::{ProviderError, RateLimit, UpstreamError};
use crate::config::Config;
use crate::imports::Imports;
use crate::jsonapi::{ApiError, Collection, FastItem, Links, Lite, When, timestamp};
use crate::keys::{KEY_ACCESS, KEY_REFRESH};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::cell::RefCell;
use std::time::Duration;

/// Waits between 5xx retries: capped exponential backoff.
const BACKOFF_MS: [u64; 3] = [500, 1000, 2000];
/// Longest Retry-After the provider waits out itself.
const MAX_RETRY_AFTER_S: u32 = 30;
/// How many 429s are waited out before giving up.
const MAX_429_RETRIES: u32 = 2;
/// Refresh this long before the access token expires.
const REFRESH_MARGIN_S: i64 = 60;
/// Per-request timeout asked of the host.
const TIMEOUT_MS: u32 = 30_000;
/// Guard against a paging loop sent by an impostor.
const MAX_PAGES: usize = 10_000;

/// How a request authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Public endpoint.
    None,
    /// The connection's access token (refreshed as needed).
    Bearer,
    /// Client id and secret (token and revoke endpoints).
    Basic,
}

#[derive(Debug, Deserialize)]
struct StoredAccess {
    token: String,
    #[serde(rename = "expiresAt")]
    expires_at: String,
}

/// A token endpoint answer.
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<i64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// A collection page read by [`Page::parse`]: each resource's text (borrowed from the body)
/// with, when the one-pass read succeeded, its [`Lite`] reading; the checked next link; `meta`.
#[derive(Debug)]
pub struct Page<'a> {
    pub items: Vec<Item<'a>>,
    pub next: Option<String>,
    pub meta: Option<serde_json::Value>,
}

/// One resource of a [`Page`].
#[derive(Debug)]
pub struct Item<'a> {
    /// The resource's JSON text exactly as Ponto wrote it (a complete JSON value, validated).
    pub raw: &'a str,
    /// Its reading, made in the page's own pass; none when the page was read in two passes.
    pub lite: Option<Lite<'a>>,
}

/// The text of a resource read in the page's pass: from the `{` before its first key to the
/// `}` closing it after its last value (JSON allows only whitespace in between).
fn span<'a>(body: &'a str, f: &FastItem<'a>) -> Option<&'a str> {
    let b = body.as_bytes();
    let base = body.as_ptr() as usize;
    let is_ws = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r');
    let mut start = (f.first_key.as_ptr() as usize).checked_sub(base)?;
    start = start.checked_sub(1)?;
    if b.get(start) != Some(&b'"') {
        return None;
    }
    loop {
        start = start.checked_sub(1)?;
        match *b.get(start)? {
            b'{' => break,
            c if is_ws(c) => {}
            _ => return None,
        }
    }
    let mut end = (f.last.as_ptr() as usize).checked_sub(base)? + f.last.len();
    for _ in 0..=f.closers {
        while b.get(end).is_some_and(|&c| is_ws(c)) {
            end += 1;
        }
        if b.get(end) != Some(&b'}') {
            return None;
        }
        end += 1;
    }
    body.get(start..end)
}

impl<'a> Page<'a> {
    /// Parses a collection body, once for a plain page: each resource is read as it is met and
    /// keeps its text as a slice of `body` (issue 6: no second pass, no copy per resource). A
    /// page the one-pass read does not take (see [`FastItem`]) is read the two-pass way. `next`
    /// is left for the caller to check against the links returned.
    pub fn parse(body: &'a str, what: &str) -> Result<(Page<'a>, Option<Links>)> {
        #[derive(Deserialize)]
        struct Fast<'a> {
            #[serde(borrow)]
            data: Vec<FastItem<'a>>,
            #[serde(default)]
            links: Option<Links>,
            #[serde(default)]
            meta: Option<serde_json::Value>,
        }
        if let Ok(doc) = serde_json::from_str::<Fast>(body) {
            let items = doc
                .data
                .into_iter()
                .map(|f| {
                    Some(Item {
                        raw: span(body, &f)?,
                        lite: Some(f.lite),
                    })
                })
                .collect::<Option<Vec<_>>>();
            if let Some(items) = items {
                let page = Page {
                    items,
                    next: None,
                    meta: doc.meta,
                };
                return Ok((page, doc.links));
            }
        }
        Self::parse_two_pass(body, what)
    }

    /// The page's resources kept as raw text, each read later by [`Lite::parse_text`].
    fn parse_two_pass(body: &'a str, what: &str) -> Result<(Page<'a>, Option<Links>)> {
        #[derive(Deserialize)]
        struct Doc<'a> {
            #[serde(borrow)]
            data: Vec<&'a RawValue>,
            #[serde(default)]
            links: Option<Links>,
            #[serde(default)]
            meta: Option<serde_json::Value>,
        }
        let doc: Doc = serde_json::from_str(body).map_err(|e| {
            page_malformed(what, Some("data"), None, format!("not a collection: {e}"))
        })?;
        let items = doc
            .data
            .into_iter()
            .map(|r| Item {
                raw: r.get(),
                lite: None,
            })
            .collect();
        let page = Page {
            items,
            next: None,
            meta: doc.meta,
        };
        Ok((page, doc.links))
    }

    /// Whether the page holds no resource.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// The Ponto client for one provider call.
pub struct Api<'h> {
    pub host: &'h dyn Imports,
    pub config: Config,
    access: RefCell<Option<String>>,
    /// Advice added to upstream errors (set once the institution is known to be beta).
    pub advice: RefCell<Option<String>>,
}

/// A host storage failure as the log names it.
pub fn storage_failure(e: crate::bindings::storage::StorageError) -> String {
    match e {
        crate::bindings::storage::StorageError::QuotaExceeded(_) => "QuotaExceeded".into(),
        crate::bindings::storage::StorageError::Unavailable(m) => format!("Unavailable({m:?})"),
    }
}

/// Maps a host storage failure.
pub fn storage_error(e: crate::bindings::storage::StorageError) -> ProviderError {
    match e {
        crate::bindings::storage::StorageError::QuotaExceeded(_) => {
            ProviderError::Storage("the connection's storage quota is used up".into())
        }
        crate::bindings::storage::StorageError::Unavailable(m) => ProviderError::Storage(m),
    }
}

/// How a failed attempt is named in the retry log line.
fn retry_reason(e: &HttpError) -> String {
    match e {
        HttpError::Timeout => "Timeout".into(),
        HttpError::Transport(m) => format!("Transport({m:?})"),
        other => format!("{other:?}"),
    }
}

/// The method as the debug log line names it.
fn method_word(m: Method) -> &'static str {
    match m {
        Method::Get => "Get",
        Method::Post => "Post",
        Method::Put => "Put",
        Method::Patch => "Patch",
        Method::Delete => "Delete",
    }
}

fn transport_error(e: HttpError) -> ProviderError {
    ProviderError::Transport(match e {
        HttpError::Denied(origin) => format!(
            "the host refused the request to {origin}: grant the Ponto provider access to that host"
        ),
        HttpError::Timeout => "Ponto did not answer in time; try again later".into(),
        HttpError::TooLarge(cap) => format!(
            "Ponto's answer was larger than the host's cap of {cap} bytes; lower `page-size`"
        ),
        HttpError::InvalidRequest(m) => format!("the request was not valid: {m}"),
        // Only the cause: the `transport` case already says the request got no answer, and the
        // ERP's rendering opens with "could not reach Ponto".
        HttpError::Transport(m) => m,
    })
}

/// Seconds from a Retry-After header (delta-seconds form; an HTTP date gives none).
fn retry_after(resp: &Response) -> Option<u32> {
    resp.header("retry-after")?.trim().parse().ok()
}

impl<'h> Api<'h> {
    /// A client for one call.
    pub fn new(host: &'h dyn Imports, config: Config) -> Self {
        Api {
            host,
            config,
            access: RefCell::new(None),
            advice: RefCell::new(None),
        }
    }

    /// An API URL from a path under `api-url`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.config.api_url, path)
    }

    /// Writes a log line.
    pub fn log(&self, level: Level, message: &str) {
        self.host.log(level, message);
    }

    /// A `links.next` to follow, only on the API's own origin.
    pub fn check_next(&self, next: &str, what: &str) -> Result<String> {
        let api_origin = crate::url::origin(&self.config.api_url).unwrap_or_default();
        if next.starts_with('/') && !next.starts_with("//") {
            return Ok(format!("{api_origin}{next}"));
        }
        match crate::url::origin(next) {
            Some(o) if o == api_origin => Ok(next.to_string()),
            other => Err(page_malformed(
                what,
                Some("links.next"),
                None,
                format!(
                    "the next-page link leads to {} instead of {api_origin}",
                    other.unwrap_or_else(|| "an unreadable address".into())
                ),
            )),
        }
    }

    fn basic(&self) -> Result<String> {
        let (id, secret) = self.config.credentials()?;
        Ok(format!(
            "Basic {}",
            STANDARD.encode(format!("{id}:{secret}"))
        ))
    }

    /// Sends with the retry policy; returns any final response.
    fn send_with_retries(&self, request: &Request, retry_5xx: bool) -> Result<Response> {
        let (mut n429, mut n5xx) = (0u32, 0usize);
        let path = request.url.split('?').next().unwrap_or_default();
        loop {
            let result = self.host.send(request);
            let resp = match result {
                Ok(r) => r,
                Err(e @ (HttpError::Timeout | HttpError::Transport(_)))
                    if retry_5xx && request.method == Method::Get && n5xx < BACKOFF_MS.len() =>
                {
                    self.log(
                        Level::Warn,
                        &format!("{path}: {}, retrying", retry_reason(&e)),
                    );
                    self.host.sleep(Duration::from_millis(BACKOFF_MS[n5xx]));
                    n5xx += 1;
                    continue;
                }
                Err(e) => return Err(transport_error(e)),
            };
            if resp.status == 429 {
                let after = retry_after(&resp);
                if n429 < MAX_429_RETRIES && after.is_none_or(|s| s <= MAX_RETRY_AFTER_S) {
                    let wait = after.unwrap_or(1).max(1);
                    self.log(Level::Info, &format!("{path}: 429, waiting {wait} s"));
                    self.host.sleep(Duration::from_secs(u64::from(wait)));
                    n429 += 1;
                    continue;
                }
                return Err(ProviderError::RateLimited(RateLimit {
                    retry_after_seconds: after,
                    message: match after {
                        Some(s) => {
                            format!("Ponto asks to wait {s} seconds before the next request")
                        }
                        None => "Ponto keeps asking to slow down; try again later".into(),
                    },
                }));
            }
            if resp.status >= 500 && retry_5xx && n5xx < BACKOFF_MS.len() {
                self.log(
                    Level::Warn,
                    &format!("{path}: HTTP {}, retrying", resp.status),
                );
                self.host.sleep(Duration::from_millis(BACKOFF_MS[n5xx]));
                n5xx += 1;
                continue;
            }
            self.log(
                Level::Debug,
                &format!("{} {path}: {}", method_word(request.method), resp.status),
            );
            return Ok(resp);
        }
    }

    fn build(
        &self,
        method: Method,
        url: &str,
        auth_header: Option<String>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Request {
        let mut headers = vec![("accept".to_string(), "application/vnd.api+json".to_string())];
        if let Some(h) = auth_header {
            headers.push(("authorization".into(), h));
        }
        let mut bytes = Vec::new();
        if let Some((content_type, b)) = body {
            headers.push(("content-type".into(), content_type.into()));
            bytes = b;
        }
        if method == Method::Post {
            // Lets Ponto drop a POST that a retry sends twice.
            let key = URL_SAFE_NO_PAD.encode(self.host.random_bytes(16));
            headers.push(("ibanity-idempotency-key".into(), key));
        }
        Request {
            method,
            url: url.to_string(),
            headers,
            body: Body::from_bytes(bytes),
            timeout_ms: Some(TIMEOUT_MS),
        }
    }

    /// Sends a request and returns the final response whatever its status (after retries and,
    /// for bearer calls, one refresh on 401).
    pub fn send(
        &self,
        method: Method,
        url: &str,
        auth: Auth,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Response> {
        match auth {
            Auth::None => self.send_with_retries(&self.build(method, url, None, body), true),
            Auth::Basic => {
                let req = self.build(method, url, Some(self.basic()?), body);
                // Token calls are not repeated on 5xx: a refresh the server did apply would
                // burn the single-use refresh token.
                self.send_with_retries(&req, false)
            }
            Auth::Bearer => {
                let token = self.access_token()?;
                let req = self.build(method, url, Some(format!("Bearer {token}")), body.clone());
                let resp = self.send_with_retries(&req, true)?;
                if resp.status != 401 {
                    return Ok(resp);
                }
                self.log(Level::Info, "access token refused, refreshing once");
                let fresh = self.refresh(Some(&token))?;
                let req = self.build(method, url, Some(format!("Bearer {fresh}")), body);
                let resp = self.send_with_retries(&req, true)?;
                if resp.status == 401 {
                    return Err(ProviderError::ReconnectRequired(
                        "Ponto refuses this connection's access even after a token refresh: \
                         connect the Ponto account again"
                            .into(),
                    ));
                }
                Ok(resp)
            }
        }
    }

    /// Translates a non-success response into a provider error. `what` names the resource.
    pub fn error_from(&self, resp: &Response, what: &str) -> ProviderError {
        let info = ApiError::parse(resp.body.as_bytes());
        let request_id = resp
            .header("ibanity-request-id")
            .map(str::to_string)
            .or(info.request_id.clone());
        let detail = info
            .detail
            .clone()
            .unwrap_or_else(|| format!("HTTP status {}", resp.status));
        match (resp.status, info.code.as_deref()) {
            (_, Some("invalid_client")) | (401, _) if what == "token" || what == "revoke" => {
                ProviderError::InvalidClient(format!(
                    "Ponto rejected the client id or secret ({detail}); check `client-id` and \
                     `client-secret`"
                ))
            }
            (_, Some("invalid_grant")) => ProviderError::ReconnectRequired(format!(
                "Ponto refused the authorisation ({detail}); connect the Ponto account again"
            )),
            (404, _) => ProviderError::NotFound(format!("{what}: {detail}")),
            (status, code) => {
                let advice = self.advice.borrow().clone().or_else(|| {
                    (status >= 500).then(|| {
                        "Ponto is having trouble; try again later, and quote the request id to \
                         Ponto if it persists"
                            .to_string()
                    })
                });
                ProviderError::Upstream(UpstreamError {
                    status,
                    code: code.map(str::to_string),
                    detail,
                    request_id,
                    advice,
                })
            }
        }
    }

    /// A 2xx response's body, or the translated error.
    pub fn expect_ok(&self, resp: Response, what: &str) -> Result<Vec<u8>> {
        if (200..300).contains(&resp.status) {
            Ok(resp.body.into_bytes())
        } else {
            Err(self.error_from(&resp, what))
        }
    }

    /// GET a document and return its body.
    pub fn get(&self, url: &str, auth: Auth, what: &str) -> Result<Vec<u8>> {
        let resp = self.send(Method::Get, url, auth, None)?;
        self.expect_ok(resp, what)
    }

    /// Reads one collection page: its resources and the checked next link.
    pub fn page(
        &self,
        url: &str,
        auth: Auth,
        what: &str,
    ) -> Result<(Vec<Box<RawValue>>, Option<String>)> {
        let body = self.get(url, auth, what)?;
        let doc: Collection = serde_json::from_slice(&body).map_err(|e| {
            page_malformed(what, Some("data"), None, format!("not a collection: {e}"))
        })?;
        let next = self.next_of(doc.links, url, what)?;
        Ok((doc.data, next))
    }

    /// GETs a collection page as text (checked as UTF-8 once, without a copy), for
    /// [`Api::parse_page`].
    pub fn page_text(&self, url: &str, auth: Auth, what: &str) -> Result<String> {
        let body = self.get(url, auth, what)?;
        String::from_utf8(body).map_err(|e| {
            page_malformed(
                what,
                Some("data"),
                None,
                format!("not a collection: {}", e.utf8_error()),
            )
        })
    }

    /// Parses a collection body read from `url` by [`Api::page_text`], with its next link
    /// checked.
    pub fn parse_page<'b>(&self, body: &'b str, url: &str, what: &str) -> Result<Page<'b>> {
        let (mut page, links) = Page::parse(body, what)?;
        page.next = self.next_of(links, url, what)?;
        Ok(page)
    }

    /// The checked `links.next` of a page read from `url`.
    fn next_of(&self, links: Option<Links>, url: &str, what: &str) -> Result<Option<String>> {
        Ok(match links.and_then(|l| l.next) {
            Some(n) if !n.is_empty() => {
                let n = self.check_next(&n, what)?;
                if n == url {
                    return Err(page_malformed(
                        what,
                        Some("links.next"),
                        None,
                        "the next-page link points to the same page",
                    ));
                }
                Some(n)
            }
            _ => None,
        })
    }

    /// Walks every page of a collection, handing each resource to `each`.
    pub fn all_pages(
        &self,
        first_url: &str,
        auth: Auth,
        what: &str,
        mut each: impl FnMut(&RawValue) -> Result<()>,
    ) -> Result<()> {
        let mut url = Some(first_url.to_string());
        let mut pages = 0;
        // A next link back to any page already read is a loop (an impostor's, or a bug).
        let mut visited = std::collections::HashSet::new();
        while let Some(u) = url {
            if !visited.insert(u.clone()) {
                return Err(page_malformed(
                    what,
                    Some("links.next"),
                    None,
                    "the next-page link leads back to a page already read (a paging loop)",
                ));
            }
            pages += 1;
            if pages > MAX_PAGES {
                return Err(page_malformed(
                    what,
                    Some("links.next"),
                    None,
                    format!("more than {MAX_PAGES} pages"),
                ));
            }
            let (data, next) = self.page(&u, auth, what)?;
            for raw in &data {
                each(raw)?;
            }
            url = next;
        }
        Ok(())
    }

    // ---- tokens -------------------------------------------------------------------------------

    fn get_key(&self, key: &str) -> Result<Option<String>> {
        self.host.storage().get(key).map_err(storage_error)
    }

    fn stored_access(&self) -> Result<Option<StoredAccess>> {
        Ok(self
            .get_key(KEY_ACCESS)?
            .and_then(|v| serde_json::from_str::<StoredAccess>(&v).ok()))
    }

    fn still_valid(&self, a: &StoredAccess) -> bool {
        match When::parse(&a.expires_at) {
            Some(w) => (w.instant() - self.host.now()).num_seconds() > REFRESH_MARGIN_S,
            None => false,
        }
    }

    /// The access token to use, refreshed ahead of expiry.
    pub fn access_token(&self) -> Result<String> {
        if let Some(t) = self.access.borrow().clone() {
            return Ok(t);
        }
        if let Some(a) = self.stored_access()?
            && self.still_valid(&a)
        {
            *self.access.borrow_mut() = Some(a.token.clone());
            return Ok(a.token);
        }
        self.refresh(None)
    }

    /// Stores an access token and remembers it for this call.
    pub fn store_access(&self, token: &TokenResponse) -> Result<()> {
        let expires = self.host.now()
            + chrono::Duration::seconds(token.expires_in.unwrap_or(300).clamp(0, 86_400));
        let value =
            serde_json::json!({"token": token.access_token, "expiresAt": timestamp(expires)});
        self.host
            .storage()
            .set(KEY_ACCESS, &value.to_string())
            .map_err(storage_error)?;
        *self.access.borrow_mut() = Some(token.access_token.clone());
        Ok(())
    }

    /// Rotates the refresh token. `refused` is an access token Ponto just refused: when the
    /// stored one differs, another process already refreshed and its token is used.
    pub fn refresh(&self, refused: Option<&str>) -> Result<String> {
        *self.access.borrow_mut() = None;
        if let Some(refused) = refused
            && let Some(a) = self.stored_access()?
            && a.token != refused
            && self.still_valid(&a)
        {
            *self.access.borrow_mut() = Some(a.token.clone());
            return Ok(a.token);
        }
        let old = self.get_key(KEY_REFRESH)?.ok_or_else(|| {
            ProviderError::ReconnectRequired(
                "this connection holds no Ponto authorisation (never completed or \
                 disconnected): connect the Ponto account"
                    .into(),
            )
        })?;
        let (client_id, _) = self.config.credentials()?;
        let form = crate::url::form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &old),
            ("client_id", client_id),
        ]);
        match self.token_request(&form) {
            Ok(tok) => {
                if let Some(new) = tok.refresh_token.as_deref() {
                    // Persist the rotated token before the new access token is used: losing
                    // it would force the user to connect again.
                    let swapped = self
                        .host
                        .storage()
                        .compare_and_swap(KEY_REFRESH, Some(&old), Some(new))
                        .map_err(storage_error)?;
                    if !swapped {
                        self.log(
                            Level::Warn,
                            "refresh token rotated concurrently; using the stored access token",
                        );
                        if let Some(a) = self.stored_access()?
                            && self.still_valid(&a)
                        {
                            *self.access.borrow_mut() = Some(a.token.clone());
                            return Ok(a.token);
                        }
                        // Ours is valid too, only not stored: use it for this call.
                        *self.access.borrow_mut() = Some(tok.access_token.clone());
                        return Ok(tok.access_token);
                    }
                }
                self.store_access(&tok)?;
                Ok(tok.access_token)
            }
            Err(ProviderError::ReconnectRequired(m)) => {
                // Another process may have rotated the token between our read and our call.
                if self.get_key(KEY_REFRESH)?.as_deref() != Some(old.as_str())
                    && let Some(a) = self.stored_access()?
                    && self.still_valid(&a)
                {
                    *self.access.borrow_mut() = Some(a.token.clone());
                    return Ok(a.token);
                }
                Err(ProviderError::ReconnectRequired(m))
            }
            Err(e) => Err(e),
        }
    }

    /// POST to the token endpoint with a form body.
    pub fn token_request(&self, form: &str) -> Result<TokenResponse> {
        let resp = self.send(
            Method::Post,
            &self.url("/oauth2/token"),
            Auth::Basic,
            Some((
                "application/x-www-form-urlencoded",
                form.as_bytes().to_vec(),
            )),
        )?;
        let body = self.expect_ok(resp, "token")?;
        serde_json::from_slice(&body).map_err(|e| {
            ProviderError::malformed(
                "token response",
                Some("access_token"),
                None,
                format!("not a token response: {e}"),
            )
        })
    }
}

/// A collection page that does not fit: `what` names its resources in the plural
/// (`financial institutions`), so the document is "a page of financial institutions".
pub fn page_malformed(
    what: &str,
    field: Option<&str>,
    resource_id: Option<&str>,
    reason: impl Into<String>,
) -> ProviderError {
    ProviderError::malformed(&format!("page of {what}"), field, resource_id, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DateField;
    use crate::mapping::transaction_item;

    fn both(body: &str) -> (Page<'_>, Page<'_>) {
        let (fast, _) = Page::parse(body, "transactions").unwrap();
        let (slow, _) = Page::parse_two_pass(body, "transactions").unwrap();
        (fast, slow)
    }

    /// The one-pass read gives each resource the very text and reading of the two-pass read.
    fn assert_same(body: &str, one_pass: bool) {
        let (fast, slow) = both(body);
        assert_eq!(fast.items.len(), slow.items.len());
        assert_eq!(fast.meta, slow.meta);
        for (f, s) in fast.items.into_iter().zip(slow.items) {
            assert_eq!(f.raw, s.raw, "{body}");
            assert_eq!(f.lite.is_some(), one_pass, "{body}");
            let tz = chrono_tz::Europe::Brussels;
            let a = transaction_item(f.raw, f.lite, tz, DateField::Execution);
            let b = transaction_item(s.raw, None, tz, DateField::Execution);
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{body}");
        }
    }

    #[test]
    fn one_pass_page_matches_two_pass_on_recorded_pages() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz-corpus");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.starts_with("transactions-") && !name.starts_with("pending") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            if Page::parse_two_pass(&text, "x").is_err() {
                continue;
            }
            assert_same(&text, true);
            n += 1;
        }
        assert!(n > 0, "no recorded transaction page");
    }

    #[test]
    fn one_pass_page_spans_and_fallbacks() {
        let a = r#""attributes":{"amount":-1.5,"currency":"EUR","executionDate":"2026-01-02"}"#;
        // Whitespace everywhere, the attributes first or last, ids and members in any order.
        assert_same(
            &format!(
                "{{ \"data\" : [ {{ \"id\" : \"x\" , {a} }} ,\n\t{{\r{a} , \"id\":\"y\" }},\
                 {{\"type\":\"t\",{a},\"id\":\"z\",\"meta\":{{\"k\":[1,{{}}]}} }} ] ,\
                 \"meta\":{{\"paging\":{{}}}} }}"
            ),
            true,
        );
        assert_same(r#"{"data":[]}"#, true);
        // What the one-pass read does not take: the page is read in two passes, alike.
        for odd in [
            format!(r#"{{"data":[{{"i\u0064":"x",{a}}}]}}"#),
            format!(r#"{{"data":[{{"id":"x\u0079",{a}}}]}}"#),
            r#"{"data":[{"id":"x","attributes":{"amo\u0075nt":1,"currency":"EUR","executionDate":"2026-01-02"}}]}"#
                .to_string(),
            r#"{"data":[{"id":"x","attributes":{}}]}"#.to_string(),
            r#"{"data":[{}]}"#.to_string(),
            r#"{"data":[{"id":5}]}"#.to_string(),
            r#"{"data":[{"id":"a","attributes":null}]}"#.to_string(),
            format!(r#"{{"data":[{{"id":"x",{a}}},{{"id":"x","id":"y"}}]}}"#),
            format!(r#"{{"data":[{{"id":"x",{a}}},7]}}"#),
        ] {
            assert_same(&odd, false);
        }
        // Not a collection: the same error either way.
        for bad in [
            r#"{"data":[{"id":"x"}"#,
            r#"{"links":{}}"#,
            r#"{"data":{}}"#,
            "[]",
        ] {
            let e = Page::parse(bad, "transactions").unwrap_err();
            assert!(
                format!("{e:?}").contains("not a collection"),
                "{bad}: {e:?}"
            );
        }
    }
}
