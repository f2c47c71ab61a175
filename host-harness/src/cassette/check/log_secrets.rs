//! The `log-secrets` property: no line the plugin logs holds a secret of the cassette (a
//! placeholder or a value under a secret key).

use super::logs::LogBuffer;
use super::property::{Property, prop};
use crate::cassette::format::{Cassette, RecordedBody};
use crate::cassette::redact::{PLACEHOLDER_PREFIX, Redactor};

pub(super) fn check(cassette: &Cassette, logs: &LogBuffer) -> Property {
    let finder = secret_finder(cassette);
    let text = logs.text();
    let n = text.lines().count();
    let leak = text
        .lines()
        .find(|l| l.contains(PLACEHOLDER_PREFIX) || finder.scrub(l) != *l);
    match leak {
        None => prop(
            "log-secrets",
            true,
            format!("{n} plugin log lines, none holds a secret of the cassette"),
        ),
        Some(l) => prop(
            "log-secrets",
            false,
            format!(
                "a plugin log line holds a secret: {}",
                finder.scrub(l).replace(PLACEHOLDER_PREFIX, "SECRET-")
            ),
        ),
    }
}

/// The secrets a log line must not hold: placeholders, and every value the redaction rules find
/// in the cassette (a hand-written cassette may hold stand-in values rather than placeholders).
fn secret_finder(cassette: &Cassette) -> Redactor {
    let mut r = Redactor::new(false);
    for (k, v) in &cassette.config {
        r.learn_entry(k, v);
    }
    for c in &cassette.connections {
        for (k, v) in &c.storage {
            r.learn_entry(k, v);
        }
    }
    let text = |b: &RecordedBody| match b.to_body() {
        crate::bindings::http::Body::Text(t) => t,
        crate::bindings::http::Body::Binary(_) => String::new(),
    };
    for i in &cassette.interactions {
        r.learn_url(&i.request.url);
        for (n, v) in &i.request.headers {
            r.learn_header(n, v);
        }
        r.learn_body(&text(&i.request.body));
        if let Some(resp) = &i.response {
            for (n, v) in &resp.headers {
                r.learn_header(n, v);
            }
            r.learn_body(&text(&resp.body));
        }
    }
    r
}
