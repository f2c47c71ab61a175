//! Ponto resources to contract records: institutions, accounts, transactions, pending ones.

use crate::bindings::Result;
use crate::bindings::types::{
    Account, Availability, Balance, Institution, InstitutionStatus, Maintenance, PendingLine,
    ProviderError, StatementLine, Warning, WarningKind,
};
use crate::config::DateField;
use crate::decimal::{Decimal, MAX_AMOUNT_DIGITS};
use crate::jsonapi::{Fields, Lite, Resource, When, date_text, timestamp};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::value::RawValue;

/// The time zone used when Ponto gives an institution none.
pub const DEFAULT_TIME_ZONE: &str = "Europe/Brussels";
/// Name shown to the user as the third party.
pub const PROVIDER_NAME: &str = "Ponto";

// BEGIN ZONES (components/build.rs reads this list: keep one quoted entry per line)
/// The time zones this provider carries. chrono-tz's full table was ~60% of the component, whose
/// size is capped (issue 6); Ponto's institutions are European, the sandbox adds New York and
/// Tokyo. An entry ending in `/*` covers an area. The component's build keeps only these in
/// chrono-tz's table (`CHRONO_TZ_TIMEZONE_FILTER`), and [`time_zone`] applies the same list in
/// every build, so the native provider behaves exactly as the component.
pub const ZONES: &[&str] = &[
    "Europe/*",
    "Atlantic/Canary",
    "Atlantic/Madeira",
    "Atlantic/Azores",
    "Atlantic/Reykjavik",
    "Atlantic/Faroe",
    "Asia/Nicosia",
    "Asia/Famagusta",
    "Africa/Ceuta",
    "UTC",
    "Etc/UTC",
    "America/New_York",
    "Asia/Tokyo",
];
// END ZONES

/// Whether `name` is in [`ZONES`].
fn carried(name: &str) -> bool {
    ZONES.iter().any(|z| match z.strip_suffix('*') {
        Some(area) => name.len() > area.len() && name.starts_with(area),
        None => name == *z,
    })
}

/// Whether `name` looks like an IANA zone name (`Area/Location`, `UTC`): what Ponto may send for
/// a zone this provider does not carry.
fn iana_shaped(name: &str) -> bool {
    let ok = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+'))
    };
    name.len() <= 64 && name.split('/').all(ok)
}

/// The zone of an institution: a carried IANA zone; an IANA name the provider does not carry
/// gives the fallback `Europe/Brussels` (the sync warns, see [`zone_warning`]); none for text
/// that is no zone name at all.
pub fn time_zone(name: &str) -> Option<Tz> {
    if carried(name) {
        // Parsing only what is carried: the native build has the full table.
        if let Ok(tz) = name.parse() {
            return Some(tz);
        }
    }
    iana_shaped(name).then_some(chrono_tz::Europe::Brussels)
}

/// The warning a sync gives when the institution's zone is not carried and dates are taken in
/// the fallback zone instead.
pub fn zone_warning(name: &str) -> Option<Warning> {
    let carried = carried(name) && name.parse::<Tz>().is_ok();
    (!carried).then(|| {
        Warning::new(
            WarningKind::Other,
            format!(
                "The institution's time zone `{name}` is not one this provider knows: booking \
                 dates are taken in {DEFAULT_TIME_ZONE} and may be one day off for lines booked \
                 near midnight. Report the zone to the provider's maintainers."
            ),
        )
    })
}

/// Ponto financial institution → institution.
pub fn institution(raw: &RawValue) -> Result<Institution> {
    const WHAT: &str = "financial institution";
    let r = Resource::parse(raw, WHAT)?;
    let id = r.require_id(WHAT)?.to_string();
    let a = &r.attributes;
    let name = a.text("name").ok_or_else(|| {
        ProviderError::malformed(WHAT, Some("name"), Some(&id), "the name is missing")
    })?;
    let status = match a.text("status").as_deref() {
        Some("beta") => InstitutionStatus::Beta,
        Some("experimental") => InstitutionStatus::Experimental,
        Some("stable") => InstitutionStatus::Stable,
        // No status is no claim either way: neither `stable` nor a warning that errors are likely.
        None => InstitutionStatus::Unknown,
        // A word Ponto added later is still a claim, one this provider cannot read: the most
        // caution (with its warning and advice) rather than `unknown`, which says nothing.
        Some(_) => InstitutionStatus::Experimental,
    };
    let time_zone = match a.text("timeZone") {
        None => DEFAULT_TIME_ZONE.to_string(),
        Some(tz) if time_zone(&tz).is_some() => tz,
        Some(tz) => {
            return Err(ProviderError::malformed(
                WHAT,
                Some("timeZone"),
                Some(&id),
                format!("`{tz}` is not an IANA time zone name"),
            ));
        }
    };
    let ts = |name: &str| a.when(name).ok().flatten().map(When::to_timestamp);
    let maintenance = a.text("maintenanceType").map(|kind| Maintenance {
        kind,
        starts_at: ts("maintenanceFrom"),
        ends_at: ts("maintenanceTo"),
    });
    Ok(Institution {
        id,
        name,
        country: a.text("country").map(|c| c.to_ascii_uppercase()),
        bic: a.text("bic"),
        status,
        deprecated: a.flag("deprecated"),
        time_zone,
        maintenance,
        provider_name: PROVIDER_NAME.to_string(),
    })
}

/// An account reference in electronic form when it is an IBAN (no spaces, upper case).
pub fn normalise_reference(reference: &str, reference_type: &str) -> String {
    if reference_type.eq_ignore_ascii_case("IBAN") {
        normalise_iban(reference)
    } else {
        reference.trim().to_string()
    }
}

/// IBAN without spaces, upper case.
pub fn normalise_iban(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Whole days from `now` to `t`, rounded down (so negative as soon as `t` has passed).
pub fn days_left(now: DateTime<Utc>, t: DateTime<Utc>) -> i32 {
    let secs = (t - now).num_seconds();
    i32::try_from(secs.div_euclid(86_400)).unwrap_or(if secs < 0 { i32::MIN } else { i32::MAX })
}

/// Ponto account → account. `tz` gives the calendar date of balances.
pub fn account(r: &Resource, tz: Tz, now: DateTime<Utc>) -> Result<Account> {
    const WHAT: &str = "account";
    let id = r.require_id(WHAT)?.to_string();
    let a = &r.attributes;
    let bad = |field: &str, reason: String| {
        ProviderError::malformed(WHAT, Some(field), Some(&id), reason)
    };
    let institution_id = r
        .relationship_id("financialInstitution")
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| {
            bad(
                "relationships.financialInstitution",
                "the account names no institution".into(),
            )
        })?
        .to_string();
    let currency = a
        .text("currency")
        .ok_or_else(|| bad("currency", "the currency is missing".into()))?;
    let reference_type = a
        .text("referenceType")
        .unwrap_or_else(|| "IBAN".to_string());
    let reference = normalise_reference(&a.text("reference").unwrap_or_default(), &reference_type);
    let balance = |amount: &str, date: &str| -> Result<Option<Balance>> {
        let Some(value) = a.decimal(amount).map_err(|e| bad(amount, e))? else {
            return Ok(None);
        };
        let when = a.when(date).map_err(|e| bad(date, e))?;
        // A balance without its date cannot anchor statements: report it as absent.
        Ok(when.map(|w| Balance {
            amount: value.to_string(),
            reference_date: w.local_date(tz).to_string(),
        }))
    };
    let when = |name: &str| a.when(name).map_err(|e| bad(name, e));
    let expires = when("authorizationExpirationExpectedAt")?;
    let availability = match r.meta_str("availability") {
        Some("readonly") => Availability::Readonly,
        Some("unavailable") => Availability::Unavailable,
        _ => Availability::Available,
    };
    Ok(Account {
        institution_id,
        reference,
        reference_type,
        description: a.text("description").unwrap_or_default(),
        product: a.text("product"),
        holder_name: a.text("holderName"),
        currency,
        current_balance: balance("currentBalance", "currentBalanceReferenceDate")?,
        available_balance: balance("availableBalance", "availableBalanceReferenceDate")?,
        authorized_at: when("authorizedAt")?.map(When::to_timestamp),
        consent_expires_at: expires.map(When::to_timestamp),
        consent_days_left: expires.map(|e| days_left(now, e.instant())),
        availability,
        deprecated: a.flag("deprecated"),
        synchronized_at: r
            .meta_str("synchronizedAt")
            .and_then(When::parse)
            .map(When::to_timestamp),
        id,
    })
}

/// The 12 digits of text shaped as a Belgian structured communication (with or without
/// `+++`/`***` and slashes), whatever its check digits.
fn belgian_shaped(text: &str) -> Option<String> {
    let t = text.trim();
    let inner = ["+++", "***"]
        .iter()
        .find_map(|m| t.strip_prefix(m).and_then(|r| r.strip_suffix(m)))
        .unwrap_or(t);
    if !inner
        .chars()
        .all(|c| c.is_ascii_digit() || c == '/' || c == ' ')
    {
        return None;
    }
    let digits: String = inner.chars().filter(char::is_ascii_digit).collect();
    (digits.len() == 12).then_some(digits)
}

/// The 12 digits of a Belgian structured communication, when `text` is one (with or without
/// `+++`/`***` and slashes) and its check digits hold: first 10 digits mod 97, 0 counting as 97.
pub fn belgian_structured(text: &str) -> Option<String> {
    let digits = belgian_shaped(text)?;
    let base: u64 = digits.get(..10)?.parse().ok()?;
    let check: u64 = digits.get(10..)?.parse().ok()?;
    let expected = match base % 97 {
        0 => 97,
        r => r,
    };
    (check == expected).then_some(digits)
}

/// `+++ddd/dddd/ddddd+++` for 12 digits.
pub fn format_belgian(digits: &str) -> String {
    let part = |r: std::ops::Range<usize>| digits.get(r).unwrap_or_default();
    format!("+++{}/{}/{}+++", part(0..3), part(3..7), part(7..12))
}

/// An ISO 11649 creditor reference (`RF18 5390 0754 7034`) in electronic form, when its check
/// digits hold (ISO 7064 mod 97-10).
pub fn iso_creditor_reference(text: &str) -> Option<String> {
    let s = normalise_iban(text);
    if !(5..=25).contains(&s.len())
        || !s.starts_with("RF")
        || !s.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return None;
    }
    let (head, tail) = s.split_at(4);
    let mut rem: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let v = c.to_digit(36)?;
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    (rem == 1).then_some(s)
}

/// Payment reference and whether it is a valid structured communication.
fn payment_reference(a: &Fields<'_>) -> (String, bool) {
    if let Some(remittance) = a.text("remittanceInformation") {
        if let Some(digits) = belgian_structured(&remittance) {
            return (format_belgian(&digits), true);
        }
        if a.text("remittanceInformationType").as_deref() == Some("structured") {
            if let Some(rf) = iso_creditor_reference(&remittance) {
                return (rf, true);
            }
            // A Belgian or ISO 11649 shape whose check digits fail is no valid communication.
            // Any other reference the bank types structured (a Dutch betalingskenmerk ...) is
            // one whose format the provider cannot check: the bank's type is kept, the text as
            // the bank wrote it.
            let failed = belgian_shaped(&remittance).is_some()
                || normalise_iban(&remittance).starts_with("RF");
            return (remittance.trim().to_string(), !failed);
        }
        return (remittance.trim().to_string(), false);
    }
    let fallback = ["description", "additionalInformation", "counterpartName"]
        .iter()
        .find_map(|k| a.text(k))
        .unwrap_or_default();
    (fallback.trim().to_string(), false)
}

/// A mapped transaction: the line (statement key still empty) and what sync needs to group it.
#[derive(Debug, Clone)]
pub struct Mapped {
    pub line: StatementLine,
    pub booking: NaiveDate,
    pub amount: Decimal,
    /// What the mapping had to assume (a booking date taken from another field).
    pub notes: Vec<Warning>,
}

/// The required `amount` (exact) and `currency` of a (pending) transaction.
fn amount_and_currency(
    a: &Fields<'_>,
    bad: &dyn Fn(&str, String) -> ProviderError,
) -> Result<(Decimal, String)> {
    let amount = a
        .decimal("amount")
        .map_err(|e| bad("amount", e))?
        .ok_or_else(|| bad("amount", "the amount is missing".into()))?;
    if !amount.below_pow10(MAX_AMOUNT_DIGITS) {
        return Err(bad(
            "amount",
            format!(
                "{amount} is beyond what the books can sum (at most {MAX_AMOUNT_DIGITS} digits \
                 before the point); ask Ponto's support to check this transaction"
            ),
        ));
    }
    let currency = a
        .string("currency")
        .ok_or_else(|| bad("currency", "the currency is missing".into()))?;
    Ok((amount, currency))
}

/// Ponto transaction → statement line.
pub fn transaction(raw: &RawValue, tz: Tz, date_field: DateField) -> Result<Mapped> {
    transaction_text(raw.get(), tz, date_field)
}

/// Ponto transaction → statement line, from the JSON text of one resource (a complete JSON value
/// as serde_json validated it, e.g. an item of [`crate::client::Page`]).
pub fn transaction_text(raw: &str, tz: Tz, date_field: DateField) -> Result<Mapped> {
    transaction_item(raw, None, tz, date_field)
}

/// Ponto transaction → statement line, from an item of a page: its text and, when the page's
/// own pass read it, its reading (the same [`Lite::parse_text`] would make).
pub fn transaction_item(
    raw: &str,
    lite: Option<Lite<'_>>,
    tz: Tz,
    date_field: DateField,
) -> Result<Mapped> {
    const WHAT: &str = "transaction";
    let r = match lite {
        Some(r) => r,
        None => Lite::parse_text(raw, WHAT)?,
    };
    let id = r.require_id(WHAT)?.to_string();
    let a = &r.attributes;
    let bad = |field: &str, reason: String| {
        ProviderError::malformed(WHAT, Some(field), Some(&id), reason)
    };
    let (amount, currency) = amount_and_currency(a, &bad)?;
    let date_name = match date_field {
        DateField::Execution => "executionDate",
        DateField::Value => "valueDate",
    };
    let mut notes = Vec::new();
    let booking = match a.when(date_name).map_err(|e| bad(date_name, e))? {
        Some(w) => w.local_date(tz),
        None => {
            // The spec requires no attribute: a booked line without its date is still booked.
            // Take the other date, then the creation date, as pending lines do.
            let other = match date_field {
                DateField::Execution => "valueDate",
                DateField::Value => "executionDate",
            };
            let mut found = None;
            for name in [other, "createdAt"] {
                if let Some(w) = a.when(name).map_err(|e| bad(name, e))? {
                    found = Some((name, w.local_date(tz)));
                    break;
                }
            }
            let (used, d) = found.ok_or_else(|| {
                bad(
                    date_name,
                    format!("the {date_name} is missing, and so are {other} and createdAt"),
                )
            })?;
            notes.push(Warning::new(
                WarningKind::Other,
                format!(
                    "Transaction {id} has no {date_name}: it is booked on {d}, its {used}. Check \
                     the date against the bank's statement."
                ),
            ));
            d
        }
    };
    // The value date is often written exactly as the booking date's field (and is that field
    // when it is the chosen one): the same text is the same local date, read once.
    let value_date =
        if notes.is_empty() && (date_name == "valueDate" || a.same("valueDate", date_name)) {
            Some(booking)
        } else {
            a.when("valueDate")
                .map_err(|e| bad("valueDate", e))?
                .map(|w| w.local_date(tz))
        };
    let value_date = value_date.map(date_text);
    let (payment_reference, structured_reference) = payment_reference(a);
    let line = StatementLine {
        statement_key: String::new(),
        booking_date: date_text(booking),
        value_date,
        amount: amount.to_string(),
        currency,
        payment_reference,
        structured_reference,
        description: a.string("description"),
        partner_name: a.string("counterpartName"),
        partner_account: a.text("counterpartReference").map(|s| normalise_iban(&s)),
        end_to_end_id: a.string("endToEndId"),
        bank_transaction_code: a.string("bankTransactionCode"),
        mandate_id: a.string("mandateId"),
        creditor_id: a.string("creditorId"),
        card_reference: a.string("cardReference"),
        raw_json: raw.to_string(),
        transaction_id: id,
    };
    Ok(Mapped {
        line,
        booking,
        amount,
        notes,
    })
}

/// Ponto pending transaction → pending line (date: execution, else value, else creation).
pub fn pending(raw: &RawValue, tz: Tz) -> Result<PendingLine> {
    const WHAT: &str = "pending transaction";
    let r = Lite::parse(raw, WHAT)?;
    let id = r.require_id(WHAT)?.to_string();
    let a = &r.attributes;
    let bad = |field: &str, reason: String| {
        ProviderError::malformed(WHAT, Some(field), Some(&id), reason)
    };
    let (amount, currency) = amount_and_currency(a, &bad)?;
    let mut date = None;
    for name in ["executionDate", "valueDate", "createdAt"] {
        if let Some(w) = a.when(name).map_err(|e| bad(name, e))? {
            date = Some(w.local_date(tz));
            break;
        }
    }
    let date = date.ok_or_else(|| bad("executionDate", "no date at all".into()))?;
    let (payment_reference, _) = payment_reference(a);
    Ok(PendingLine {
        date: date_text(date),
        amount: amount.to_string(),
        currency,
        payment_reference,
        partner_name: a.string("counterpartName"),
        raw_json: raw.get().to_string(),
        transaction_id: id,
    })
}

/// Timestamp text for now (used in messages).
pub fn now_text(now: DateTime<Utc>) -> String {
    timestamp(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    #[test]
    fn zones_outside_the_carried_list_fall_back_with_a_warning() {
        use chrono_tz::{Asia, Europe};
        for (name, tz) in [
            ("Europe/Brussels", Europe::Brussels),
            ("Europe/Helsinki", Europe::Helsinki),
            ("Atlantic/Canary", chrono_tz::Atlantic::Canary),
            ("Asia/Nicosia", Asia::Nicosia),
            ("UTC", chrono_tz::UTC),
            ("America/New_York", chrono_tz::America::New_York),
        ] {
            assert_eq!(time_zone(name), Some(tz), "{name}");
            assert_eq!(zone_warning(name), None, "{name}");
        }
        // A real zone the provider does not carry (the native build knows it, the component
        // does not: both take the fallback and say so, naming the zone).
        for name in ["America/Chicago", "Australia/Sydney", "Europe/Atlantis"] {
            assert_eq!(time_zone(name), Some(Europe::Brussels), "{name}");
            let w = zone_warning(name).unwrap();
            assert_eq!(w.kind, WarningKind::Other);
            assert!(w.message.contains(name) && w.message.contains(DEFAULT_TIME_ZONE));
        }
        // Text that is no zone name is still malformed.
        assert_eq!(time_zone("not a zone"), None);
        assert_eq!(time_zone(""), None);
        assert_eq!(time_zone("Europe/"), None);
        let inst = |tz: &str| {
            raw(&format!(
                r#"{{"id":"i","attributes":{{"name":"Bank","timeZone":"{tz}"}}}}"#
            ))
        };
        assert_eq!(
            institution(&inst("America/Chicago")).unwrap().time_zone,
            "America/Chicago",
            "the institution keeps Ponto's zone; the sync warns"
        );
        assert!(institution(&inst("no zone")).is_err());
    }

    #[test]
    fn structured_communication_check_digits() {
        // 0909337554 mod 97 = 93.
        assert_eq!(
            belgian_structured("+++090/9337/55493+++").as_deref(),
            Some("090933755493")
        );
        assert_eq!(
            belgian_structured("***090/9337/55493***").as_deref(),
            Some("090933755493")
        );
        assert_eq!(
            belgian_structured("090933755493").as_deref(),
            Some("090933755493")
        );
        assert_eq!(belgian_structured("+++090/9337/55494+++"), None);
        assert_eq!(belgian_structured("09093375549"), None);
        assert_eq!(belgian_structured("Invoice 090933755493"), None);
        // Remainder 0 is written 97: 0000000097 mod 97 = 0.
        assert_eq!(
            belgian_structured("000000009797").as_deref(),
            Some("000000009797")
        );
        assert_eq!(belgian_structured("000000009700"), None);
        assert_eq!(format_belgian("090933755493"), "+++090/9337/55493+++");
    }

    #[test]
    fn creditor_references() {
        assert_eq!(
            iso_creditor_reference("RF18 5390 0754 7034").as_deref(),
            Some("RF18539007547034")
        );
        assert_eq!(iso_creditor_reference("RF19539007547034"), None);
        assert_eq!(iso_creditor_reference("XX18539007547034"), None);
    }

    #[test]
    fn iban_and_days_left() {
        assert_eq!(normalise_iban(" be07 6265 5061 6261 "), "BE07626550616261");
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        assert_eq!(days_left(now, now + chrono::Duration::hours(49)), 2);
        assert_eq!(days_left(now, now - chrono::Duration::hours(1)), -1);
        assert_eq!(days_left(now, now), 0);
    }

    #[test]
    fn transaction_needs_id_amount_currency_and_date() {
        let tz = chrono_tz::Europe::Brussels;
        let base = r#"{"type":"transaction","id":"t1","attributes":{"amount":1.5,"currency":"EUR","executionDate":"2026-11-24T23:30:00Z"}}"#;
        let ok = transaction(&raw(base), tz, DateField::Execution).unwrap();
        assert_eq!(ok.line.booking_date, "2026-11-25");
        assert_eq!(ok.line.raw_json, base);
        let cases = [
            (base.replace(r#""id":"t1","#, ""), "id"),
            (base.replace(r#""amount":1.5,"#, ""), "amount"),
            (base.replace("1.5", r#""one""#), "amount"),
            (base.replace(r#""currency":"EUR","#, ""), "currency"),
            (
                base.replace("2026-11-24T23:30:00Z", "yesterday"),
                "executionDate",
            ),
        ];
        for (json, field) in cases {
            match transaction(&raw(&json), tz, DateField::Execution) {
                Err(ProviderError::MalformedResponse(m)) => {
                    assert_eq!(m.field.as_deref(), Some(field), "{json}");
                    if field != "id" {
                        assert_eq!(m.resource_id.as_deref(), Some("t1"));
                    }
                }
                other => panic!("{json}: {other:?}"),
            }
        }
        // The chosen date field missing falls back to the other date (with a note, issue 11
        // item 9); with no date at all the chosen field is named.
        let v = transaction(&raw(base), tz, DateField::Value).unwrap();
        assert_eq!(v.line.booking_date, "2026-11-25");
        assert!(v.notes[0].message.contains("no valueDate"), "{:?}", v.notes);
        let dateless = base.replace(r#","executionDate":"2026-11-24T23:30:00Z""#, "");
        for (field, name) in [
            (DateField::Value, "valueDate"),
            (DateField::Execution, "executionDate"),
        ] {
            match transaction(&raw(&dateless), tz, field) {
                Err(ProviderError::MalformedResponse(m)) => {
                    assert_eq!(m.field.as_deref(), Some(name))
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn booked_line_without_its_date_falls_back_with_a_note() {
        // Issue 11 item 9: an absent or null executionDate rejected the whole page.
        let tz = chrono_tz::Europe::Brussels;
        let with = |dates: &str| {
            raw(&format!(
                r#"{{"id":"t1","attributes":{{"amount":1,"currency":"EUR",{dates}}}}}"#
            ))
        };
        for dates in [
            r#""valueDate":"2026-11-23T23:00:00Z","createdAt":"2026-11-25T08:00:00Z""#,
            r#""executionDate":null,"valueDate":"2026-11-23T23:00:00Z""#,
        ] {
            let m = transaction(&with(dates), tz, DateField::Execution).unwrap();
            assert_eq!(m.line.booking_date, "2026-11-24", "{dates}");
            assert_eq!(m.line.value_date.as_deref(), Some("2026-11-24"));
            assert_eq!(m.notes.len(), 1);
            let note = &m.notes[0].message;
            assert!(
                note.contains("t1")
                    && note.contains("no executionDate")
                    && note.contains("valueDate"),
                "{note}"
            );
        }
        let m = transaction(
            &with(r#""executionDate":null,"createdAt":"2026-11-25T08:00:00Z""#),
            tz,
            DateField::Execution,
        )
        .unwrap();
        assert_eq!(m.line.booking_date, "2026-11-25");
        assert_eq!(m.line.value_date, None);
        assert!(m.notes[0].message.contains("createdAt"));
        // The date present: no note.
        let m = transaction(
            &with(r#""executionDate":"2026-11-23T23:00:00Z""#),
            tz,
            DateField::Execution,
        )
        .unwrap();
        assert!(m.notes.is_empty());
    }

    #[test]
    fn amounts_past_the_books_bound_are_refused_naming_the_transaction() {
        // Issue 11 item 10: ±5e28 passed the plugin and the ERP, then `erp statements` panicked.
        let tz = chrono_tz::UTC;
        for amount in ["5e28", "-5e28", "1000000000000000", "-1e15"] {
            let json = format!(
                r#"{{"id":"t1","attributes":{{"amount":{amount},"currency":"EUR","executionDate":"2026-01-01T00:00:00Z"}}}}"#
            );
            match transaction(&raw(&json), tz, DateField::Execution) {
                Err(ProviderError::MalformedResponse(m)) => {
                    assert_eq!(m.field.as_deref(), Some("amount"));
                    assert_eq!(m.resource_id.as_deref(), Some("t1"));
                    assert!(m.reason.contains("15 digits"), "{}", m.reason);
                }
                other => panic!("{amount}: {other:?}"),
            }
        }
        let json = r#"{"id":"t1","attributes":{"amount":-999999999999999.99,"currency":"EUR","executionDate":"2026-01-01T00:00:00Z"}}"#;
        assert!(transaction(&raw(json), tz, DateField::Execution).is_ok());
    }

    #[test]
    fn every_transaction_attribute_is_read() {
        let json = r#"{"id":"x","attributes":{"amount":"-1.5","currency":"EUR","executionDate":"2026-01-02T23:00:00Z","valueDate":"2026-01-01T23:00:00Z","remittanceInformation":"Order 1","remittanceInformationType":"unstructured","description":"Desc","additionalInformation":"Add","counterpartName":"Rice Ltd","counterpartReference":"be07 6265","endToEndId":"E2E","bankTransactionCode":"PMNT","mandateId":"M1","creditorId":"C1","cardReference":"6300"}}"#;
        let l = transaction(
            &raw(json),
            chrono_tz::Europe::Brussels,
            DateField::Execution,
        )
        .unwrap()
        .line;
        assert_eq!(
            (
                l.amount.as_str(),
                l.currency.as_str(),
                l.booking_date.as_str()
            ),
            ("-1.5", "EUR", "2026-01-03")
        );
        assert_eq!(l.value_date.as_deref(), Some("2026-01-02"));
        let same = json.replace("2026-01-01T23:00:00Z", "2026-01-02T23:00:00Z");
        for field in [DateField::Execution, DateField::Value] {
            let s = transaction(&raw(&same), chrono_tz::Europe::Brussels, field).unwrap();
            assert_eq!(s.line.value_date.as_deref(), Some("2026-01-03"));
            assert_eq!(s.line.booking_date, "2026-01-03");
        }
        let v = transaction(&raw(json), chrono_tz::Europe::Brussels, DateField::Value).unwrap();
        assert_eq!(
            (v.line.booking_date.as_str(), v.line.value_date.as_deref()),
            ("2026-01-02", Some("2026-01-02"))
        );
        assert_eq!(l.payment_reference, "Order 1");
        assert_eq!(l.description.as_deref(), Some("Desc"));
        assert_eq!(l.partner_name.as_deref(), Some("Rice Ltd"));
        assert_eq!(l.partner_account.as_deref(), Some("BE076265"));
        assert_eq!(l.end_to_end_id.as_deref(), Some("E2E"));
        assert_eq!(l.bank_transaction_code.as_deref(), Some("PMNT"));
        assert_eq!(l.mandate_id.as_deref(), Some("M1"));
        assert_eq!(l.creditor_id.as_deref(), Some("C1"));
        assert_eq!(l.card_reference.as_deref(), Some("6300"));
        let p = pending(
            &raw(&json.replace(
                r#""executionDate":"2026-01-02T23:00:00Z","valueDate":"2026-01-01T23:00:00Z","#,
                r#""createdAt":"2026-01-04T23:00:00Z","#,
            )),
            chrono_tz::Europe::Brussels,
        )
        .unwrap();
        assert_eq!(p.date, "2026-01-05", "createdAt when no other date");
        // The last fallback of the payment reference.
        let t = transaction(
            &raw(&json
                .replace(r#""remittanceInformation":"Order 1","#, "")
                .replace(r#""description":"Desc","#, "")),
            chrono_tz::UTC,
            DateField::Execution,
        )
        .unwrap();
        assert_eq!(t.line.payment_reference, "Add");
    }

    #[test]
    fn reference_fallbacks() {
        let tz = chrono_tz::UTC;
        let t = |attrs: &str| {
            let json = format!(
                r#"{{"id":"x","attributes":{{"amount":1,"currency":"EUR","executionDate":"2026-01-01T00:00:00Z",{attrs}}}}}"#
            );
            let m = transaction(&raw(&json), tz, DateField::Execution).unwrap();
            (m.line.payment_reference, m.line.structured_reference)
        };
        assert_eq!(
            t(r#""remittanceInformation":"090933755493","remittanceInformationType":"structured""#),
            ("+++090/9337/55493+++".into(), true)
        );
        assert_eq!(
            t(
                r#""remittanceInformation":"+++090/9337/55494+++","remittanceInformationType":"structured""#
            ),
            ("+++090/9337/55494+++".into(), false)
        );
        assert_eq!(
            t(r#""remittanceInformation":null,"description":"Wire transfer""#),
            ("Wire transfer".into(), false)
        );
        assert_eq!(
            t(r#""counterpartName":"Rice Ltd""#),
            ("Rice Ltd".into(), false)
        );
        assert_eq!(
            t(r#""remittanceInformation":" Order 4711 ""#),
            ("Order 4711".into(), false)
        );
    }

    #[test]
    fn structured_type_is_kept_and_only_a_valid_ogm_is_reformatted() {
        // Issue 11 item 14: a Dutch betalingskenmerk typed structured was stored as unstructured.
        let tz = chrono_tz::UTC;
        let t = |attrs: &str| {
            let json = format!(
                r#"{{"id":"x","attributes":{{"amount":1,"currency":"EUR","executionDate":"2026-01-01T00:00:00Z",{attrs}}}}}"#
            );
            let m = transaction(&raw(&json), tz, DateField::Execution).unwrap();
            (m.line.payment_reference, m.line.structured_reference)
        };
        assert_eq!(
            t(
                r#""remittanceInformation":"7003 4567 8901 2345","remittanceInformationType":"structured""#
            ),
            ("7003 4567 8901 2345".into(), true)
        );
        // The same text typed unstructured stays unstructured.
        assert_eq!(
            t(
                r#""remittanceInformation":"7003 4567 8901 2345","remittanceInformationType":"unstructured""#
            ),
            ("7003 4567 8901 2345".into(), false)
        );
        // A valid OGM is reformatted whatever its type; a failing RF stays unstructured.
        assert_eq!(
            t(r#""remittanceInformation":"***090/9337/55493***""#),
            ("+++090/9337/55493+++".into(), true)
        );
        assert_eq!(
            t(
                r#""remittanceInformation":"RF19 5390 0754 7034","remittanceInformationType":"structured""#
            ),
            ("RF19 5390 0754 7034".into(), false)
        );
    }

    #[test]
    fn a_missing_institution_status_is_not_experimental() {
        // Issue 11 item 14: no status is neither experimental nor stable, but unknown.
        let inst = |status: &str| {
            raw(&format!(
                r#"{{"id":"i","attributes":{{"name":"Bank"{status}}}}}"#
            ))
        };
        let status = |s: &str| institution(&inst(s)).unwrap().status;
        assert_eq!(status(""), InstitutionStatus::Unknown);
        assert_eq!(status(r#","status":null"#), InstitutionStatus::Unknown);
        assert_eq!(status(r#","status":"stable""#), InstitutionStatus::Stable);
        assert_eq!(status(r#","status":"beta""#), InstitutionStatus::Beta);
        assert_eq!(
            status(r#","status":"experimental""#),
            InstitutionStatus::Experimental
        );
        assert_eq!(
            status(r#","status":"alpha""#),
            InstitutionStatus::Experimental
        );
    }
}

/// A repeatable measure of parsing and mapping (issue 6, figure 2): `cargo test --release -p
/// ponto-provider bench_map_pages -- --ignored --nocapture`, under `valgrind --tool=callgrind`
/// for instruction counts.
#[cfg(test)]
mod bench {
    use super::*;
    use crate::jsonapi::Collection;

    /// One page of 100 transactions made of the recorded sandbox pages, ids made unique.
    pub fn page_of_100() -> String {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz-corpus");
        let mut raws = Vec::new();
        for n in 0..4 {
            for p in 1..=2 {
                let Ok(text) =
                    std::fs::read_to_string(format!("{dir}/transactions-{n}-page{p}.json"))
                else {
                    continue;
                };
                let doc: Collection = serde_json::from_str(&text).unwrap();
                raws.extend(doc.data.into_iter().map(|r| r.get().to_string()));
            }
        }
        assert!(!raws.is_empty());
        let items: Vec<String> = (0..100)
            .map(|i| {
                let r = &raws[i % raws.len()];
                let id_at = r.find(r#""id":""#).unwrap() + 6;
                format!("{}{i:08}-{}", &r[..id_at], &r[id_at + 9..])
            })
            .collect();
        format!(
            r#"{{"data":[{}],"links":{{"next":"http://127.0.0.1:1/ponto-connect/accounts/a/transactions?page[limit]=100&page[after]=x"}}}}"#,
            items.join(",")
        )
    }

    #[test]
    #[ignore = "a benchmark: run it in release, alone"]
    fn bench_map_pages() {
        let page = page_of_100();
        let tz = time_zone("Europe/Brussels").unwrap();
        let pages = 200;
        let t = std::time::Instant::now();
        let mut n = 0usize;
        for _ in 0..pages {
            // As the sync reads a page: one parse of the body, items borrowed from it.
            let body = String::from_utf8(std::hint::black_box(&page).as_bytes().to_vec());
            let body = body.unwrap();
            let (doc, _) = crate::client::Page::parse(&body, "transactions").unwrap();
            for item in doc.items {
                let m = transaction_item(item.raw, item.lite, tz, DateField::Execution).unwrap();
                n += m.line.raw_json.len();
                std::hint::black_box(m);
            }
        }
        let per_page = t.elapsed().as_secs_f64() * 1000.0 / f64::from(pages);
        println!("parse + map: {per_page:.3} ms per page of 100 ({n} raw bytes)");
    }
}
