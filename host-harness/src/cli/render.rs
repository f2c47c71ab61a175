//! Plain-text tables and JSON views for the CLI.
//!
//! Everything the upstream says (names, references, error details) is untrusted: it is stored as
//! received and passed through [`clean`] when printed, so it can neither drive the terminal nor
//! start a line of its own.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Value, json};

/// Characters a terminal acts on rather than shows: C0 and C1 controls, DEL, and the bidi
/// embeddings, overrides and isolates that reorder what follows them.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `s` for a terminal: every [`is_unsafe_char`] shown as its Rust escape (`\u{1b}`), the rest
/// as it is.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Pretty JSON in which the characters [`clean`] neutralises are `\uXXXX` escapes (serde_json
/// escapes only C0 controls): the same text to a JSON reader, inert on a terminal.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    struct Escaping(serde_json::ser::PrettyFormatter<'static>);
    impl serde_json::ser::Formatter for Escaping {
        fn write_string_fragment<W: ?Sized + std::io::Write>(
            &mut self,
            writer: &mut W,
            fragment: &str,
        ) -> std::io::Result<()> {
            for c in fragment.chars() {
                if is_unsafe_char(c) {
                    write!(writer, "\\u{:04x}", c as u32)?;
                } else {
                    let mut buf = [0u8; 4];
                    writer.write_all(c.encode_utf8(&mut buf).as_bytes())?;
                }
            }
            Ok(())
        }
        fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
            self.0.begin_array(w)
        }
        fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
            self.0.end_array(w)
        }
        fn begin_array_value<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            self.0.begin_array_value(w, first)
        }
        fn end_array_value<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
        ) -> std::io::Result<()> {
            self.0.end_array_value(w)
        }
        fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
            self.0.begin_object(w)
        }
        fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
            self.0.end_object(w)
        }
        fn begin_object_key<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            self.0.begin_object_key(w, first)
        }
        fn begin_object_value<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
        ) -> std::io::Result<()> {
            self.0.begin_object_value(w)
        }
        fn end_object_value<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
        ) -> std::io::Result<()> {
            self.0.end_object_value(w)
        }
    }
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Escaping(Default::default()));
    // Our own values always serialise; an empty answer would be the tell otherwise.
    let _ = value.serialize(&mut ser);
    String::from_utf8(out).unwrap_or_default()
}

use crate::erp::names::institution_status_name;
use crate::runtime::types::{Account, Institution};

/// A left/right aligned text table.
pub struct Table {
    headers: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Headers starting with `>` are right-aligned (numbers, money).
    pub fn new(headers: &[&'static str]) -> Self {
        Self {
            right: headers.iter().map(|h| h.starts_with('>')).collect(),
            headers: headers.iter().map(|h| h.trim_start_matches('>')).collect(),
            rows: Vec::new(),
        }
    }

    /// Cells are [`clean`]ed: a table shows upstream text.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.iter().map(|c| clean(c).into_owned()).collect());
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let n = self.headers.len();
        let mut width: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String]| -> String {
            let mut out = String::new();
            for (i, w) in width.iter().enumerate() {
                let c = cells.get(i).map_or("", String::as_str);
                let pad = w.saturating_sub(c.chars().count());
                if i > 0 {
                    out.push_str("  ");
                }
                if self.right[i] {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(c);
                } else {
                    out.push_str(c);
                    if i + 1 < n {
                        out.push_str(&" ".repeat(pad));
                    }
                }
            }
            out.trim_end().to_owned()
        };
        let mut out = line(
            &self
                .headers
                .iter()
                .map(|h| (*h).to_owned())
                .collect::<Vec<_>>(),
        );
        out.push('\n');
        out.push_str(&line(
            &width.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(),
        ));
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r));
            out.push('\n');
        }
        out
    }
}

/// `n` and its noun, singular for one: "1 account", "3 accounts".
pub fn count<N: std::fmt::Display + PartialEq + From<u8>>(n: N, one: &str, many: &str) -> String {
    let noun = if n == N::from(1) { one } else { many };
    format!("{n} {noun}")
}

/// An optional upstream text for people, [`clean`]ed, `-` when absent.
pub fn opt(s: &Option<String>) -> String {
    s.as_deref()
        .map_or_else(|| "-".into(), |s| clean(s).into_owned())
}

/// `2026-11-25T13:02:18Z` → `2026-11-25 13:02`.
pub fn short_time(s: &Option<String>) -> String {
    match s {
        Some(t) if t.len() >= 16 => format!("{} {}", &t[..10], &t[11..16]),
        Some(t) => t.clone(),
        None => "-".into(),
    }
}

pub fn institution_json(i: &Institution) -> Value {
    json!({
        "id": i.id,
        "name": i.name,
        "country": i.country,
        "bic": i.bic,
        "status": institution_status_name(i.status),
        "deprecated": i.deprecated,
        "time_zone": i.time_zone,
        "maintenance": i.maintenance.as_ref().map(|m| json!({
            "kind": m.kind, "starts_at": m.starts_at, "ends_at": m.ends_at,
        })),
        "provider": i.provider_name,
    })
}

pub fn account_json(a: &Account) -> Value {
    json!({
        "id": a.id,
        "institution_id": a.institution_id,
        "reference": a.reference,
        "reference_type": a.reference_type,
        "description": a.description,
        "currency": a.currency,
        "balance": a.current_balance.as_ref().map(|b| json!({"amount": b.amount, "date": b.reference_date})),
        "consent_expires_at": a.consent_expires_at,
        "consent_days_left": a.consent_days_left,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::types::InstitutionStatus;

    #[test]
    fn counts_say_one_noun_or_many() {
        assert_eq!(count(1usize, "account", "accounts"), "1 account");
        assert_eq!(count(0u64, "new line", "new lines"), "0 new lines");
        assert_eq!(count(-1i64, "day", "days"), "-1 days");
    }

    #[test]
    fn clean_shows_controls_and_bidi_as_escapes_and_json_keeps_the_text() {
        let evil = "Bank\u{1b}[2J\u{1b}]0;x\u{7}\nerp: forged\u{9b}\u{7f}\u{202e}\u{2066}é";
        let shown = clean(evil);
        assert_eq!(
            shown,
            "Bank\\u{1b}[2J\\u{1b}]0;x\\u{7}\\u{a}erp: forged\\u{9b}\\u{7f}\\u{202e}\\u{2066}é"
        );
        assert!(!shown.chars().any(is_unsafe_char));
        assert!(matches!(clean("plain € text"), Cow::Borrowed(_)));
        let text = to_json(&json!({ "name": evil }));
        assert!(
            !text.chars().any(|c| is_unsafe_char(c) && c != '\n'),
            "{text}"
        );
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["name"], evil, "JSON readers get the exact text");
    }

    #[test]
    fn an_institution_without_status_is_shown_as_unknown() {
        // Issue 11 item 14: not `stable`, in the table and in --json alike.
        let i = Institution {
            id: "x".into(),
            name: "Bank".into(),
            country: None,
            bic: None,
            status: InstitutionStatus::Unknown,
            deprecated: false,
            time_zone: "Europe/Brussels".into(),
            maintenance: None,
            provider_name: "Acme".into(),
        };
        assert_eq!(institution_status_name(i.status), "unknown");
        assert_eq!(institution_json(&i)["status"], "unknown");
    }

    #[test]
    fn aligns_columns_and_right_aligns_amounts() {
        let mut t = Table::new(&["name", ">amount"]);
        t.row(vec!["rent".into(), "-1200.00".into()]);
        t.row(vec!["coffee".into(), "3.5".into()]);
        assert_eq!(
            t.render(),
            "name      amount\n------  --------\nrent    -1200.00\ncoffee       3.5\n"
        );
    }
}
