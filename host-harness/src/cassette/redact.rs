//! Secrets out of a cassette, and optionally personal data.
//!
//! # Secrets (always)
//!
//! A value is a secret when it sits in
//! - a header named `authorization`, `proxy-authorization`, `cookie`, `set-cookie`, `signature`,
//!   `x-api-key`, `api-key` or `x-auth-token` (for `Scheme credentials` the credentials; a
//!   Basic credential is also decoded and its password learned);
//! - a form field, query parameter or JSON key that names a secret: `code`, `state`, `password`,
//!   `assertion`, anything ending in `token`, containing `secret` or `verifier`, or `api_key`
//!   (case and `-`/`_` ignored);
//! - a setting (`config`) or storage key that names a secret the same way (a storage value that
//!   is JSON is walked; otherwise the whole value is the secret).
//!
//! Each secret learned gets a placeholder `cassette-secret-N`, and every occurrence of the value
//! anywhere in the cassette (bodies, URLs, headers, storage, expected results, also
//! percent-encoded) is replaced by it, so the same token always reads the same and a replay stays
//! coherent. Values shorter than 6 characters are not learned (they would hit ordinary text).
//!
//! # Pseudonymisation (`--pseudonymise`)
//!
//! JSON string values under keys that look like personal data are replaced consistently (the same
//! original always gives the same stand-in, also inside expected results and `raw-json`):
//! - a value shaped like an IBAN (two letters, two digits, 11 to 30 letters and digits) becomes
//!   an IBAN of the same country and length with valid check digits;
//! - under keys containing `name` or `holder`: `Person N`;
//! - under keys containing `description`, `remittance`, `reference`, `message`,
//!   `communication`, `note`, `address`, `email`, `phone`, `iban` or `counterpart`: `Text N`;
//! - never under keys containing `date`, `time`, `type`, `code`, `currency`, `amount`,
//!   `balance` or `status`, or ending in `at` or `id`, and never a date or a value without a
//!   letter (a structured payment reference keeps its check digits).
//!
//! Stand-ins replace the originals as text everywhere (also JSON-escaped), so a provider that
//! copies a name into a line gives the same stand-in in the replay and in the expected result.
//! Amounts, dates, currencies, ids and every other key are left as they are, so statements still
//! balance and dates still fall on the same days.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

pub const PLACEHOLDER_PREFIX: &str = "cassette-secret-";
const MIN_SECRET_LEN: usize = 6;

const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "signature",
    "x-api-key",
    "api-key",
    "x-auth-token",
];

/// Whether a form field, query parameter or storage key names a secret (see the module doc).
pub fn is_secret_key(key: &str) -> bool {
    let k = normalise(key);
    matches!(k.as_str(), "code" | "state") || is_secret_json_key(key)
}

/// Whether a JSON key names a secret: as [`is_secret_key`] without `code` and `state`, which in
/// JSON are as often an error code or a status.
pub fn is_secret_json_key(key: &str) -> bool {
    let k = normalise(key);
    matches!(k.as_str(), "password" | "assertion" | "apikey")
        || k.ends_with("token")
        || k.contains("secret")
        || k.contains("verifier")
}

fn normalise(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

#[derive(Default)]
pub struct Redactor {
    /// Original value -> placeholder.
    secrets: HashMap<String, String>,
    pseudonymise: bool,
    /// Original value -> stand-in.
    pseudonyms: HashMap<String, String>,
    people: u32,
    texts: u32,
    ibans: u32,
}

impl Redactor {
    pub fn new(pseudonymise: bool) -> Self {
        Self {
            pseudonymise,
            ..Self::default()
        }
    }

    /// Learn a secret value; returns its placeholder (the value itself when too short).
    pub fn learn(&mut self, value: &str) -> String {
        if value.len() < MIN_SECRET_LEN || value.starts_with(PLACEHOLDER_PREFIX) {
            return value.to_owned();
        }
        if let Some(p) = self.secrets.get(value) {
            return p.clone();
        }
        let placeholder = format!("{PLACEHOLDER_PREFIX}{}", self.secrets.len() + 1);
        self.secrets.insert(value.to_owned(), placeholder.clone());
        // The same secret percent-encoded in a form body or URL.
        let encoded: String = form_encode(value);
        if encoded != value {
            self.secrets.insert(encoded, placeholder.clone());
        }
        placeholder
    }

    /// Every secret learned (the originals), for tests and the log check.
    pub fn originals(&self) -> impl Iterator<Item = &str> {
        self.secrets.keys().map(String::as_str)
    }

    /// Learn the secrets of a header value.
    pub fn learn_header(&mut self, name: &str, value: &str) {
        if !SECRET_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return;
        }
        // `Scheme credentials`: the credentials (the scheme stays readable); else the whole value.
        let Some((scheme, credentials)) = value.split_once(' ') else {
            self.learn(value);
            return;
        };
        self.learn(credentials.trim());
        if scheme.eq_ignore_ascii_case("basic")
            && let Ok(decoded) = STANDARD.decode(credentials.trim())
            && let Ok(text) = String::from_utf8(decoded)
            && let Some((_, password)) = text.split_once(':')
        {
            self.learn(&text);
            self.learn(password);
        }
        // Cookies: each `name=value`.
        for part in value.split(';') {
            if let Some((_, v)) = part.split_once('=') {
                self.learn(v.trim());
            }
        }
    }

    /// Learn the secrets of a URL's query and of a form or JSON body.
    pub fn learn_url(&mut self, url: &str) {
        if let Some((_, query)) = url.split_once('?') {
            self.learn_form(query.split('#').next().unwrap_or_default());
        }
    }

    pub fn learn_form(&mut self, text: &str) {
        for (k, v) in url::form_urlencoded::parse(text.as_bytes()) {
            if is_secret_key(&k) {
                self.learn(&v);
            }
        }
    }

    /// Learn secrets from a body: JSON walked by key, else read as a form.
    pub fn learn_body(&mut self, text: &str) {
        match serde_json::from_str::<Value>(text) {
            Ok(v) => self.learn_json(&v, false, is_secret_json_key),
            Err(_) if text.contains('=') && !text.contains(char::is_whitespace) => {
                self.learn_form(text)
            }
            Err(_) => {}
        }
    }

    /// Learn from a JSON value; `secret` says the enclosing key named a secret.
    pub fn learn_json(&mut self, v: &Value, secret: bool, rule: fn(&str) -> bool) {
        match v {
            Value::String(s) if secret => {
                self.learn(s);
            }
            Value::Array(items) => items.iter().for_each(|i| self.learn_json(i, secret, rule)),
            Value::Object(map) => {
                for (k, item) in map {
                    self.learn_json(item, secret || rule(k), rule);
                }
            }
            _ => {}
        }
    }

    /// Learn a storage or config entry: a secret key's value (JSON walked, else whole).
    pub fn learn_entry(&mut self, key: &str, value: &str) {
        let secret = key.rsplit('/').any(is_secret_key) || key.contains("token");
        match serde_json::from_str::<Value>(value) {
            // A JSON value is walked by key (an expiry beside a token is no secret).
            Ok(v @ (Value::Object(_) | Value::Array(_))) => {
                self.learn_json(&v, false, is_secret_key)
            }
            _ if secret => {
                self.learn(value);
            }
            _ => {}
        }
    }

    /// Replace every learned secret (longest first) and pseudonym in `text`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for table in [&self.secrets, &self.pseudonyms] {
            let mut pairs: Vec<_> = table.iter().collect();
            pairs.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(b.0)));
            for (original, replacement) in pairs {
                if out.contains(original.as_str()) {
                    out = out.replace(original.as_str(), replacement);
                }
            }
        }
        out
    }

    /// Scrub every string inside a JSON value.
    pub fn scrub_json(&self, v: &mut Value) {
        match v {
            Value::String(s) => *s = self.scrub(s),
            Value::Array(items) => items.iter_mut().for_each(|i| self.scrub_json(i)),
            Value::Object(map) => map.values_mut().for_each(|i| self.scrub_json(i)),
            _ => {}
        }
    }

    /// Pseudonymise a response body when it is JSON (learning the stand-ins), else leave it.
    pub fn pseudonymise_body(&mut self, text: &str) {
        if !self.pseudonymise {
            return;
        }
        if let Ok(v) = serde_json::from_str::<Value>(text) {
            self.learn_pseudonyms(&v, None);
        }
    }

    fn learn_pseudonyms(&mut self, v: &Value, key: Option<&str>) {
        match v {
            Value::String(s) => {
                if let Some(k) = key
                    && let Some(kind) = personal_kind(k)
                    && !s.trim().is_empty()
                    && !looks_technical(s)
                    && !self.pseudonyms.contains_key(s)
                {
                    let stand_in = if looks_like_iban(s) {
                        self.ibans += 1;
                        pseudo_iban(s, self.ibans)
                    } else if kind == Kind::Person {
                        self.people += 1;
                        format!("Person {}", self.people)
                    } else {
                        self.texts += 1;
                        format!("Text {}", self.texts)
                    };
                    // Also as the value is written inside JSON text (escaped), both ways.
                    for written in json_written_forms(s) {
                        self.pseudonyms.insert(written, stand_in.clone());
                    }
                    self.pseudonyms.insert(s.clone(), stand_in);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| self.learn_pseudonyms(i, key)),
            Value::Object(map) => {
                for (k, item) in map {
                    self.learn_pseudonyms(item, Some(k));
                }
            }
            _ => {}
        }
    }
}

/// How a string may be written inside JSON text when that differs from the string itself:
/// serde's escaping (quotes, backslashes, control characters) and the ASCII-only one.
fn json_written_forms(s: &str) -> Vec<String> {
    let serde = serde_json::to_string(s).unwrap_or_default();
    let serde = serde[1..serde.len().saturating_sub(1).max(1)].to_owned();
    let mut ascii = String::new();
    for c in serde.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                ascii.push_str(&format!("\\u{:04x}", u));
            }
        }
    }
    let upper = ascii.replace("\\u", "\u{1}");
    let upper = upper
        .split('\u{1}')
        .enumerate()
        .map(|(i, part)| {
            if i == 0 || part.len() < 4 {
                part.to_owned()
            } else {
                format!("\\u{}{}", part[..4].to_ascii_uppercase(), &part[4..])
            }
        })
        .collect::<String>();
    let mut forms: Vec<String> = [serde, ascii, upper]
        .into_iter()
        .filter(|w| w != s)
        .collect();
    forms.dedup();
    forms
}

fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[derive(PartialEq)]
enum Kind {
    Person,
    Text,
}

fn personal_kind(key: &str) -> Option<Kind> {
    let k: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    // Dates, times, amounts, codes and ids are never personal, whatever else the key says
    // (`currentBalanceReferenceDate`, `remittanceInformationType`).
    let technical = [
        "date", "time", "type", "code", "currency", "amount", "balance", "status",
    ];
    if technical.iter().any(|t| k.contains(t)) || k.ends_with("at") || k.ends_with("id") {
        return None;
    }
    if k.contains("name") || k.contains("holder") {
        return Some(Kind::Person);
    }
    let text = [
        "description",
        "remittance",
        "reference",
        "message",
        "communication",
        "note",
        "address",
        "email",
        "phone",
        "iban",
        "counterpart",
    ];
    text.iter().any(|t| k.contains(t)).then_some(Kind::Text)
}

/// A date, a time, a number or any value without a letter (a structured payment reference such
/// as `+++090/9337/55493+++`: no one's name, and its check digits must stay valid).
fn looks_technical(s: &str) -> bool {
    let b = s.as_bytes();
    let date = b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-';
    date || !s.chars().any(char::is_alphabetic)
}

pub fn looks_like_iban(s: &str) -> bool {
    let b = s.as_bytes();
    (15..=34).contains(&b.len())
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..4].iter().all(u8::is_ascii_digit)
        && b[4..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// An IBAN of `like`'s country and length, numbered `n`, with valid ISO 7064 check digits.
pub fn pseudo_iban(like: &str, n: u32) -> String {
    let country = &like[..2];
    let bban_len = like.len() - 4;
    let digits = format!("{n:0>width$}", width = bban_len);
    let bban = &digits[digits.len() - bban_len..];
    let check = 98 - mod97(&format!("{bban}{country}00"));
    format!("{country}{check:02}{bban}")
}

fn mod97(s: &str) -> u32 {
    let mut r = 0u32;
    for c in s.chars() {
        let v = c.to_digit(36).unwrap_or(0);
        let (base, val) = if v >= 10 { (100, v) } else { (10, v) };
        r = (r * base + val) % 97;
    }
    r
}

pub fn iban_is_valid(s: &str) -> bool {
    looks_like_iban(s) && mod97(&format!("{}{}", &s[4..], &s[..4])) == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_secret_gets_the_same_placeholder_everywhere() {
        let mut r = Redactor::new(false);
        r.learn_body(
            r#"{"access_token":"tok-abcdef","refresh_token":"ref-123456","expires_in":1800}"#,
        );
        r.learn_form("grant_type=refresh_token&refresh_token=ref-123456");
        r.learn_header("Authorization", "Bearer tok-abcdef");
        r.learn_url("https://x.test/cb?code=code-987654&state=st-765432");
        let scrubbed =
            r.scrub("Bearer tok-abcdef refresh_token=ref-123456 tok-abcdef code-987654 st-765432");
        assert!(!scrubbed.contains("tok-abcdef") && !scrubbed.contains("ref-123456"));
        assert!(!scrubbed.contains("code-987654") && !scrubbed.contains("st-765432"));
        assert_eq!(
            scrubbed.matches("cassette-secret-1").count(),
            2,
            "{scrubbed}"
        );
    }

    #[test]
    fn a_basic_credential_teaches_its_password() {
        let mut r = Redactor::new(false);
        let basic = STANDARD.encode("client-id:the-client-secret");
        r.learn_header("authorization", &format!("Basic {basic}"));
        assert!(
            !r.scrub("secret=the-client-secret")
                .contains("the-client-secret")
        );
        assert!(!r.scrub(&basic).contains(&basic));
    }

    #[test]
    fn pseudonymised_ibans_stay_valid_and_amounts_stay() {
        let mut r = Redactor::new(true);
        let body = r#"{"counterpartName":"Jan Peeters","counterpartReference":"BE68539007547034","amount":-12.5,"remittanceInformation":"invoice 12","valueDate":"2026-11-02"}"#;
        r.pseudonymise_body(body);
        let out = r.scrub(body);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["counterpartName"], "Person 1");
        let iban = v["counterpartReference"].as_str().unwrap();
        assert!(
            iban_is_valid(iban) && iban.starts_with("BE") && iban != "BE68539007547034",
            "{iban}"
        );
        assert_eq!(v["amount"], -12.5);
        assert_eq!(v["valueDate"], "2026-11-02");
        assert!(iban_is_valid("BE68539007547034"));
    }
}
