//! Ponto's JSON:API envelopes, read leniently: unknown members are ignored, known optional ones of
//! an unexpected type are treated as absent, and amounts keep their exact JSON text.

use crate::bindings::Result;
use crate::bindings::types::ProviderError;
use crate::decimal::Decimal;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// A collection document: resources kept as raw JSON until each is mapped.
#[derive(Debug, Deserialize)]
pub struct Collection {
    pub data: Vec<Box<RawValue>>,
    #[serde(default)]
    pub links: Option<Links>,
}

/// A single-resource document.
#[derive(Debug, Deserialize)]
pub struct Single {
    pub data: Box<RawValue>,
}

/// Collection links.
#[derive(Debug, Default, Deserialize)]
pub struct Links {
    #[serde(default)]
    pub next: Option<String>,
}

/// One resource.
#[derive(Debug, Deserialize)]
pub struct Resource {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub attributes: Attributes,
    #[serde(default)]
    pub relationships: Option<Value>,
    #[serde(default)]
    pub meta: Option<Value>,
    #[serde(default)]
    pub links: Option<Value>,
}

impl Resource {
    /// Parses one raw resource of kind `what`.
    pub fn parse(raw: &RawValue, what: &str) -> Result<Resource> {
        serde_json::from_str(raw.get()).map_err(|e| {
            ProviderError::malformed(what, None, None, format!("not a JSON:API resource: {e}"))
        })
    }

    /// The id, required.
    pub fn require_id(&self, what: &str) -> Result<&str> {
        match self.id.as_deref() {
            Some(id) if !id.is_empty() => Ok(id),
            _ => Err(ProviderError::malformed(
                what,
                Some("id"),
                None,
                "the id is missing",
            )),
        }
    }

    /// `relationships.<name>.data.id`.
    pub fn relationship_id(&self, name: &str) -> Option<&str> {
        self.relationships
            .as_ref()?
            .get(name)?
            .get("data")?
            .get("id")?
            .as_str()
    }

    /// `meta.<name>` as text.
    pub fn meta_str(&self, name: &str) -> Option<&str> {
        self.meta.as_ref()?.get(name)?.as_str()
    }

    /// `links.<name>` as text.
    pub fn link(&self, name: &str) -> Option<&str> {
        self.links.as_ref()?.get(name)?.as_str()
    }
}

/// Resource attributes, each kept as raw JSON.
#[derive(Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct Attributes(BTreeMap<String, Box<RawValue>>);

impl Attributes {
    fn raw(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|r| r.get()).filter(|t| *t != "null")
    }

    /// Text attribute; absent, null, empty or not text gives none.
    pub fn text(&self, name: &str) -> Option<String> {
        text_of(self.raw(name)?).map(Cow::into_owned)
    }

    /// Boolean attribute; anything but `true` is false.
    pub fn flag(&self, name: &str) -> bool {
        self.raw(name) == Some("true")
    }

    /// Exact decimal attribute (JSON number or numeric string); none when absent or null.
    pub fn decimal(&self, name: &str) -> std::result::Result<Option<Decimal>, String> {
        self.raw(name).map(decimal_of).transpose()
    }

    /// Timestamp attribute; none when absent, an error when present but unreadable.
    pub fn when(&self, name: &str) -> std::result::Result<Option<When>, String> {
        self.raw(name).map(when_of).transpose()
    }
}

// The readings of one raw attribute (never `null`: callers filter it out as absent), shared by
// the generic `Attributes` and the borrowing `Fields` of transactions.

/// Text, borrowed when the JSON string has no escapes; empty, blank or not text gives none.
fn text_of(raw: &str) -> Option<Cow<'_, str>> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    let text = if inner.contains('\\') {
        Cow::Owned(serde_json::from_str::<String>(raw).ok()?)
    } else {
        // A JSON string without escapes is its own content (control characters cannot appear
        // unescaped in valid JSON, and the raw text was validated by serde_json).
        Cow::Borrowed(inner)
    };
    (!text.trim().is_empty()).then_some(text)
}

fn decimal_of(raw: &str) -> std::result::Result<Decimal, String> {
    match text_or_string(raw)? {
        Some(text) => Decimal::parse(&text),
        None => Decimal::parse(raw),
    }
}

/// The content of a JSON string (also a blank one), none for any other JSON value.
fn text_or_string(raw: &str) -> std::result::Result<Option<Cow<'_, str>>, String> {
    if !raw.starts_with('"') {
        return Ok(None);
    }
    match raw.get(1..raw.len() - 1) {
        Some(inner) if !inner.contains('\\') => Ok(Some(Cow::Borrowed(inner))),
        _ => serde_json::from_str::<String>(raw)
            .map(|s| Some(Cow::Owned(s)))
            .map_err(|e| e.to_string()),
    }
}

fn when_of(raw: &str) -> std::result::Result<When, String> {
    match text_of(raw) {
        None => Err(format!("{raw} is not a date")),
        Some(s) => When::parse(&s).ok_or_else(|| format!("`{s}` is not a date")),
    }
}

/// A transaction or pending transaction read without building a tree: the id and attributes
/// borrow from the raw JSON, other members (`type`, `relationships`, `links`, `meta`, unknown
/// ones) are skipped. Same rules as [`Resource`]: `id` must be text or null, `attributes` an
/// object (or absent), a repeated attribute takes its last value, a repeated `id` or
/// `attributes` is refused.
#[derive(Debug, Default)]
pub struct Lite<'a> {
    pub id: Option<Cow<'a, str>>,
    pub attributes: Fields<'a>,
}

/// The attributes of a (pending) transaction the mapping reads, borrowed from the raw JSON;
/// others are skipped. Fixed slots rather than a map or list: no allocation per transaction,
/// and a lookup is a `match` on the name.
#[derive(Debug, Default)]
pub struct Fields<'a>([Option<&'a RawValue>; FIELDS.len()]);

/// The attributes [`Fields`] keeps.
const FIELDS: [&str; 16] = [
    "amount",
    "currency",
    "executionDate",
    "valueDate",
    "createdAt",
    "remittanceInformation",
    "remittanceInformationType",
    "description",
    "additionalInformation",
    "counterpartName",
    "counterpartReference",
    "endToEndId",
    "bankTransactionCode",
    "mandateId",
    "creditorId",
    "cardReference",
];

/// The slot of a kept attribute: a `match` (compiled to a length switch and one comparison)
/// rather than a scan of `FIELDS`, as it runs for every member of every transaction.
fn field_slot(name: &str) -> Option<usize> {
    Some(match name {
        "amount" => 0,
        "currency" => 1,
        "executionDate" => 2,
        "valueDate" => 3,
        "createdAt" => 4,
        "remittanceInformation" => 5,
        "remittanceInformationType" => 6,
        "description" => 7,
        "additionalInformation" => 8,
        "counterpartName" => 9,
        "counterpartReference" => 10,
        "endToEndId" => 11,
        "bankTransactionCode" => 12,
        "mandateId" => 13,
        "creditorId" => 14,
        "cardReference" => 15,
        _ => return None,
    })
}

impl<'a> Lite<'a> {
    /// Parses one raw resource of kind `what`.
    pub fn parse(raw: &'a RawValue, what: &str) -> Result<Lite<'a>> {
        Self::parse_text(raw.get(), what)
    }

    /// Parses the JSON text of one resource of kind `what`.
    pub fn parse_text(raw: &'a str, what: &str) -> Result<Lite<'a>> {
        serde_json::from_str(raw).map_err(|e| {
            ProviderError::malformed(what, None, None, format!("not a JSON:API resource: {e}"))
        })
    }

    /// The id, required.
    pub fn require_id(&self, what: &str) -> Result<&str> {
        match self.id.as_deref() {
            Some(id) if !id.is_empty() => Ok(id),
            _ => Err(ProviderError::malformed(
                what,
                Some("id"),
                None,
                "the id is missing",
            )),
        }
    }
}

impl<'a> Fields<'a> {
    fn raw(&self, name: &str) -> Option<&'a str> {
        // A name outside FIELDS reads as absent (the mapping asks only for kept ones; a unit
        // test checks each).
        self.0[field_slot(name)?]
            .map(RawValue::get)
            .filter(|t| *t != "null")
    }

    /// Text attribute; absent, null, empty or not text gives none.
    pub fn text(&self, name: &str) -> Option<Cow<'a, str>> {
        text_of(self.raw(name)?)
    }

    /// Whether two attributes are present with the very same JSON text.
    pub fn same(&self, a: &str, b: &str) -> bool {
        self.raw(a).is_some_and(|t| Some(t) == self.raw(b))
    }

    /// Text attribute, owned.
    pub fn string(&self, name: &str) -> Option<String> {
        self.text(name).map(Cow::into_owned)
    }

    /// Exact decimal attribute (JSON number or numeric string); none when absent or null.
    pub fn decimal(&self, name: &str) -> std::result::Result<Option<Decimal>, String> {
        self.raw(name).map(decimal_of).transpose()
    }

    /// Timestamp attribute; none when absent, an error when present but unreadable.
    pub fn when(&self, name: &str) -> std::result::Result<Option<When>, String> {
        self.raw(name).map(when_of).transpose()
    }
}

/// A JSON string, borrowed when it has no escapes.
struct CowStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(
                self,
                v: &'de str,
            ) -> std::result::Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of attributes")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut out = Fields::default();
                while let Some(CowStr(k)) = map.next_key()? {
                    match field_slot(&k) {
                        // Last wins, as in a map built in document order.
                        Some(i) => out.0[i] = Some(map.next_value::<&'de RawValue>()?),
                        None => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for Lite<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Lite<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON:API resource object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut out = Lite::default();
                // As serde's derived `Resource`: a repeated id or attributes is an error.
                let (mut id, mut attributes) = (false, false);
                while let Some(CowStr(k)) = map.next_key()? {
                    match &*k {
                        "id" if std::mem::replace(&mut id, true) => {
                            return Err(de::Error::duplicate_field("id"));
                        }
                        "attributes" if std::mem::replace(&mut attributes, true) => {
                            return Err(de::Error::duplicate_field("attributes"));
                        }
                        "id" => out.id = map.next_value::<Option<CowStr<'de>>>()?.map(|c| c.0),
                        "attributes" => out.attributes = map.next_value()?,
                        _ => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

/// One item of a collection's `data`, read by the page's own parse (one pass over the body,
/// issue 6): the [`Lite`] reading, the first key and the last value of the resource, from which
/// [`crate::client::Page`] finds the resource's text. Stricter than [`Lite`]: an escaped key,
/// an id that is not plain text or null, a non-object or empty `attributes`, an empty resource
/// or a repeated `id`/`attributes` fail, and the page is then read the two-pass way, which
/// gives every such case its usual reading or error.
#[derive(Debug)]
pub struct FastItem<'a> {
    pub lite: Lite<'a>,
    /// The first key (borrowed from the body: just after the object's `{`, whitespace and `"`).
    pub first_key: &'a str,
    /// The last value read; the resource ends `closers` + 1 `}` after it.
    pub last: &'a str,
    pub closers: u8,
}

/// The attributes read in the page's pass, with their last value.
struct FastFields<'a>(Fields<'a>, &'a str);

impl<'de: 'a, 'a> Deserialize<'de> for FastFields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = FastFields<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a non-empty object of attributes")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut out = Fields::default();
                let mut last = None;
                while let Some(k) = map.next_key::<&'a str>()? {
                    let v = map.next_value::<&'a RawValue>()?;
                    if let Some(i) = field_slot(k) {
                        out.0[i] = Some(v);
                    }
                    last = Some(v.get());
                }
                let last = last.ok_or_else(|| de::Error::custom("empty attributes"))?;
                Ok(FastFields(out, last))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for FastItem<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = FastItem<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a plain JSON:API resource object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut lite = Lite::default();
                let (mut id, mut attributes) = (false, false);
                let mut first_key = None;
                let mut last: Option<(&'a str, u8)> = None;
                while let Some(k) = map.next_key::<&'a str>()? {
                    first_key.get_or_insert(k);
                    match k {
                        "id" if std::mem::replace(&mut id, true) => {
                            return Err(de::Error::duplicate_field("id"));
                        }
                        "attributes" if std::mem::replace(&mut attributes, true) => {
                            return Err(de::Error::duplicate_field("attributes"));
                        }
                        "attributes" => {
                            let FastFields(f, end) = map.next_value()?;
                            lite.attributes = f;
                            last = Some((end, 1));
                        }
                        _ => {
                            let v = map.next_value::<&'a RawValue>()?.get();
                            if k == "id" {
                                lite.id = match v {
                                    "null" => None,
                                    _ => {
                                        match v.strip_prefix('"').and_then(|v| v.strip_suffix('"'))
                                        {
                                            Some(t) if !t.contains('\\') => Some(Cow::Borrowed(t)),
                                            _ => return Err(de::Error::custom("not a plain id")),
                                        }
                                    }
                                };
                            }
                            last = Some((v, 0));
                        }
                    }
                }
                match (first_key, last) {
                    (Some(first_key), Some((last, closers))) => Ok(FastItem {
                        lite,
                        first_key,
                        last,
                        closers,
                    }),
                    _ => Err(de::Error::custom("an empty resource")),
                }
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A point in time as Ponto writes it: an instant, or a bare calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Instant(DateTime<Utc>),
    Date(NaiveDate),
}

impl When {
    /// Parses RFC 3339 with or without fractions (ms, µs), a zone-less time (taken as UTC), or a
    /// bare date. Years outside 1–9999 are refused (RFC 3339 has four-digit years): chrono would
    /// read `+262143-12-31`, where date arithmetic overflows.
    pub fn parse(s: &str) -> Option<When> {
        let w = Self::parse_any_year(s)?;
        let year = match w {
            When::Instant(t) => t.year(),
            When::Date(d) => d.year(),
        };
        (1..=9999).contains(&year).then_some(w)
    }

    fn parse_any_year(s: &str) -> Option<When> {
        let s = s.trim();
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Some(When::Instant(t.with_timezone(&Utc)));
        }
        for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
            if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
                return Some(When::Instant(t.and_utc()));
            }
        }
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .map(When::Date)
    }

    /// The calendar date in the institution's time zone (a bare date is already one).
    pub fn local_date(self, tz: Tz) -> NaiveDate {
        match self {
            When::Instant(t) => t.with_timezone(&tz).date_naive(),
            When::Date(d) => d,
        }
    }

    /// RFC 3339 in UTC with milliseconds (a bare date is taken as midnight UTC).
    pub fn to_timestamp(self) -> String {
        timestamp(self.instant())
    }

    /// The instant (a bare date is midnight UTC).
    pub fn instant(self) -> DateTime<Utc> {
        match self {
            When::Instant(t) => t,
            When::Date(d) => d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(),
        }
    }
}

/// `YYYY-MM-DD`, as `NaiveDate`'s `Display` writes it, without going through the formatter
/// (two dates per line of a first sync of 100,000).
pub fn date_text(d: NaiveDate) -> String {
    let (y, m, day) = (d.year(), d.month(), d.day());
    if !(0..=9999).contains(&y) {
        // chrono writes a sign and more digits out there; keep its form.
        return d.to_string();
    }
    let digits = [
        y / 1000,
        y / 100 % 10,
        y / 10 % 10,
        y % 10,
        -1,
        (m / 10) as i32,
        (m % 10) as i32,
        -1,
        (day / 10) as i32,
        (day % 10) as i32,
    ];
    // Pushed into a string of the right size: no char iterator, one allocation.
    let mut out = String::with_capacity(digits.len());
    for n in digits {
        out.push(if n < 0 {
            '-'
        } else {
            char::from(b'0' + n as u8)
        });
    }
    out
}

/// RFC 3339 UTC with milliseconds, the contract's timestamp form.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// An error document from Ponto: JSON:API `errors[]` or an OAuth2 error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiError {
    pub code: Option<String>,
    pub detail: Option<String>,
    pub request_id: Option<String>,
    pub resource: Option<String>,
}

impl ApiError {
    /// Reads whatever error information the body carries.
    pub fn parse(body: &[u8]) -> ApiError {
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return ApiError::default();
        };
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        if let Some(first) = v
            .get("errors")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            let meta = first.get("meta");
            return ApiError {
                code: s(first.get("code")),
                detail: s(first.get("detail")).or_else(|| s(first.get("title"))),
                request_id: s(meta.and_then(|m| m.get("requestId"))),
                resource: s(meta.and_then(|m| m.get("resource"))),
            };
        }
        ApiError {
            code: s(v.get("error")),
            detail: s(v.get("error_description")),
            request_id: None,
            resource: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_with_and_without_fractions() {
        let want = Utc.with_ymd_and_hms(2020, 5, 22, 0, 0, 0).unwrap();
        for s in [
            "2020-05-22T00:00:00Z",
            "2020-05-22T00:00:00.000Z",
            "2020-05-22T00:00:00.000000Z",
            "2020-05-22T02:00:00+02:00",
            "2020-05-22T00:00:00",
        ] {
            assert_eq!(When::parse(s), Some(When::Instant(want)), "{s}");
        }
        let micro = When::parse("2023-02-28T14:36:10.319029Z").unwrap();
        assert_eq!(micro.to_timestamp(), "2023-02-28T14:36:10.319Z");
        assert_eq!(
            When::parse("2022-09-23"),
            Some(When::Date(NaiveDate::from_ymd_opt(2022, 9, 23).unwrap()))
        );
        assert_eq!(When::parse("23/09/2022"), None);
        assert_eq!(When::parse(""), None);
    }

    #[test]
    fn local_midnight_in_utc_becomes_the_local_day() {
        // A 2 January booking written as Brussels midnight in UTC.
        let w = When::parse("2019-01-01T23:00:00.000Z").unwrap();
        assert_eq!(
            w.local_date(chrono_tz::Europe::Brussels).to_string(),
            "2019-01-02"
        );
        assert_eq!(w.local_date(chrono_tz::UTC).to_string(), "2019-01-01");
        // Summer time: UTC+2.
        let s = When::parse("2022-06-30T22:30:00Z").unwrap();
        assert_eq!(
            s.local_date(chrono_tz::Europe::Brussels).to_string(),
            "2022-07-01"
        );
        assert_eq!(
            s.local_date(chrono_tz::America::New_York).to_string(),
            "2022-06-30"
        );
    }

    #[test]
    fn date_text_is_chronos_form() {
        for (y, m, d) in [
            (1, 1, 1),
            (999, 12, 31),
            (2026, 11, 25),
            (9999, 12, 31),
            (2000, 2, 29),
        ] {
            let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(date_text(date), date.to_string());
        }
        // A 9999-12-31 evening in UTC is year 10000 in Brussels: chrono's own form.
        let far = NaiveDate::from_ymd_opt(10000, 1, 1).unwrap();
        assert_eq!(date_text(far), far.to_string());
    }

    #[test]
    fn field_slots_follow_fields() {
        for (i, name) in FIELDS.iter().enumerate() {
            assert_eq!(field_slot(name), Some(i), "{name}");
        }
        assert_eq!(field_slot("amounts"), None);
        assert_eq!(field_slot(""), None);
    }

    #[test]
    fn lite_reads_like_resource() {
        let raw = RawValue::from_string(
            r#"{"type":"t","id":"a\u0062","attributes":{"description":"x","counterpartName":"  ","mandateId":null,"creditorId":{"a":[1]},"currency":"12.5","amount":-1.50,"endToEndId":"tab\there","valueDate":"2026-01-01","cardReference":1,"description":"last","unknown":[{"deep":[[]]}]},"relationships":{"x":[[[]]]},"meta":7}"#
                .to_string(),
        )
        .unwrap();
        let r = Lite::parse(&raw, "x").unwrap();
        assert_eq!(r.require_id("x").unwrap(), "ab");
        let a = &r.attributes;
        assert_eq!(
            a.text("description").as_deref(),
            Some("last"),
            "the last of a repeated member"
        );
        assert_eq!(a.text("counterpartName"), None, "blank");
        assert_eq!(a.text("mandateId"), None, "null");
        assert_eq!(a.text("creditorId"), None, "an object");
        assert_eq!(a.text("cardReference"), None, "a number");
        assert_eq!(a.string("endToEndId").as_deref(), Some("tab\there"));
        assert_eq!(a.decimal("amount").unwrap().unwrap().to_string(), "-1.50");
        assert_eq!(a.decimal("currency").unwrap().unwrap().to_string(), "12.5");
        assert_eq!(a.decimal("mandateId").unwrap(), None);
        assert!(a.decimal("description").is_err());
        assert_eq!(a.when("valueDate").unwrap(), When::parse("2026-01-01"));
        assert!(a.when("cardReference").is_err());
        assert_eq!(a.when("executionDate").unwrap(), None);
        assert_eq!(a.text("unknown"), None, "not kept");
        // Shapes `Resource` refuses are refused too.
        for bad in [
            r#"{"id":5}"#,
            r#"{"id":"a","attributes":null}"#,
            r#"{"id":"a","attributes":[]}"#,
            r#"{"id":"a","id":"b"}"#,
            r#"{"attributes":{},"attributes":{}}"#,
        ] {
            let raw = RawValue::from_string(bad.to_string()).unwrap();
            assert!(Lite::parse(&raw, "x").is_err(), "{bad}");
            assert!(Resource::parse(&raw, "x").is_err(), "{bad}");
        }
        let raw = RawValue::from_string(r#"{"id":null}"#.to_string()).unwrap();
        assert!(Lite::parse(&raw, "x").unwrap().require_id("x").is_err());
    }

    #[test]
    fn attributes_are_lenient_where_optional() {
        let a: Attributes = serde_json::from_str(
            r#"{"amount":-100.10,"s":"x","n":null,"o":{"a":1},"e":"  ","b":true,"q":"12.5"}"#,
        )
        .unwrap();
        assert_eq!(a.decimal("amount").unwrap().unwrap().to_string(), "-100.10");
        assert_eq!(a.decimal("q").unwrap().unwrap().to_string(), "12.5");
        assert_eq!(a.decimal("n").unwrap(), None);
        assert!(a.decimal("s").is_err());
        assert_eq!(a.text("s").as_deref(), Some("x"));
        assert_eq!(a.text("o"), None);
        assert_eq!(a.text("e"), None);
        assert!(a.flag("b"));
        assert!(!a.flag("s"));
        assert!(a.when("b").is_err());
        assert_eq!(a.when("missing").unwrap(), None);
    }

    #[test]
    fn error_documents() {
        let e = ApiError::parse(
            br#"{"errors":[{"code":"resourceNotFound","detail":"Nope.","meta":{"requestId":"R1","resource":"account"}}]}"#,
        );
        assert_eq!(e.code.as_deref(), Some("resourceNotFound"));
        assert_eq!(e.request_id.as_deref(), Some("R1"));
        assert_eq!(e.resource.as_deref(), Some("account"));
        let o = ApiError::parse(br#"{"error":"invalid_grant","error_description":"used"}"#);
        assert_eq!(o.code.as_deref(), Some("invalid_grant"));
        assert_eq!(o.detail.as_deref(), Some("used"));
        assert_eq!(ApiError::parse(b"<html>"), ApiError::default());
    }
}
