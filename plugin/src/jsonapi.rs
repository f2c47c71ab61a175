//! Ponto's JSON:API envelopes, read leniently: unknown members are ignored, known optional ones of
//! an unexpected type are treated as absent, and amounts keep their exact JSON text.

use crate::decimal::Decimal;
use crate::model::{ProviderError, Result};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

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
        let raw = self.raw(name)?;
        match serde_json::from_str::<Value>(raw).ok()? {
            Value::String(s) if !s.trim().is_empty() => Some(s),
            _ => None,
        }
    }

    /// Boolean attribute; anything but `true` is false.
    pub fn flag(&self, name: &str) -> bool {
        self.raw(name) == Some("true")
    }

    /// Exact decimal attribute (JSON number or numeric string); none when absent or null.
    pub fn decimal(&self, name: &str) -> std::result::Result<Option<Decimal>, String> {
        let Some(raw) = self.raw(name) else {
            return Ok(None);
        };
        let text = if raw.starts_with('"') {
            serde_json::from_str::<String>(raw).map_err(|e| e.to_string())?
        } else {
            raw.to_string()
        };
        Decimal::parse(&text).map(Some)
    }

    /// Timestamp attribute; none when absent, an error when present but unreadable.
    pub fn when(&self, name: &str) -> std::result::Result<Option<When>, String> {
        match self.text(name) {
            None => match self.raw(name) {
                None => Ok(None),
                Some(other) => Err(format!("{other} is not a date")),
            },
            Some(s) => When::parse(&s)
                .map(Some)
                .ok_or_else(|| format!("`{s}` is not a date")),
        }
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
