//! Ponto resources to contract records: institutions, accounts, transactions, pending ones.

use crate::config::DateField;
use crate::decimal::Decimal;
use crate::jsonapi::{Attributes, Resource, When, timestamp};
use crate::model::{
    Account, Availability, Balance, Institution, InstitutionStatus, Maintenance, PendingLine,
    ProviderError, Result, StatementLine,
};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::value::RawValue;

/// The time zone used when Ponto gives an institution none.
pub const DEFAULT_TIME_ZONE: &str = "Europe/Brussels";
/// Name shown to the user as the third party.
pub const PROVIDER_NAME: &str = "Ponto";

/// Parses an IANA zone name.
pub fn time_zone(name: &str) -> Option<Tz> {
    name.parse().ok()
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
        Some("stable") => InstitutionStatus::Stable,
        Some("beta") => InstitutionStatus::Beta,
        // An unknown or missing status is shown with the most caution.
        _ => InstitutionStatus::Experimental,
    };
    let time_zone = match a.text("timeZone") {
        None => DEFAULT_TIME_ZONE.to_string(),
        Some(tz) if time_zone(&tz).is_some() => tz,
        Some(tz) => {
            return Err(ProviderError::malformed(
                WHAT,
                Some("timeZone"),
                Some(&id),
                format!("`{tz}` is not an IANA time zone"),
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
        .collect::<String>()
        .to_ascii_uppercase()
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

/// The 12 digits of a Belgian structured communication, when `text` is one (with or without
/// `+++`/`***` and slashes) and its check digits hold: first 10 digits mod 97, 0 counting as 97.
pub fn belgian_structured(text: &str) -> Option<String> {
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
    if digits.len() != 12 {
        return None;
    }
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
fn payment_reference(r: &Resource) -> (String, bool) {
    let a = &r.attributes;
    if let Some(remittance) = a.text("remittanceInformation") {
        if let Some(digits) = belgian_structured(&remittance) {
            return (format_belgian(&digits), true);
        }
        if a.text("remittanceInformationType").as_deref() == Some("structured")
            && let Some(rf) = iso_creditor_reference(&remittance)
        {
            return (rf, true);
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
}

/// The required `amount` (exact) and `currency` of a (pending) transaction.
fn amount_and_currency(
    a: &Attributes,
    bad: &dyn Fn(&str, String) -> ProviderError,
) -> Result<(Decimal, String)> {
    let amount = a
        .decimal("amount")
        .map_err(|e| bad("amount", e))?
        .ok_or_else(|| bad("amount", "the amount is missing".into()))?;
    let currency = a
        .text("currency")
        .ok_or_else(|| bad("currency", "the currency is missing".into()))?;
    Ok((amount, currency))
}

/// Ponto transaction → statement line.
pub fn transaction(raw: &RawValue, tz: Tz, date_field: DateField) -> Result<Mapped> {
    const WHAT: &str = "transaction";
    let r = Resource::parse(raw, WHAT)?;
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
    let booking = a
        .when(date_name)
        .map_err(|e| bad(date_name, e))?
        .ok_or_else(|| bad(date_name, format!("the {date_name} is missing")))?
        .local_date(tz);
    let value_date = a
        .when("valueDate")
        .map_err(|e| bad("valueDate", e))?
        .map(|w| w.local_date(tz).to_string());
    let (payment_reference, structured_reference) = payment_reference(&r);
    let line = StatementLine {
        statement_key: String::new(),
        booking_date: booking.to_string(),
        value_date,
        amount: amount.to_string(),
        currency,
        payment_reference,
        structured_reference,
        description: a.text("description"),
        partner_name: a.text("counterpartName"),
        partner_account: a.text("counterpartReference").map(|s| normalise_iban(&s)),
        end_to_end_id: a.text("endToEndId"),
        bank_transaction_code: a.text("bankTransactionCode"),
        mandate_id: a.text("mandateId"),
        creditor_id: a.text("creditorId"),
        card_reference: a.text("cardReference"),
        raw_json: raw.get().to_string(),
        transaction_id: id,
    };
    Ok(Mapped {
        line,
        booking,
        amount,
    })
}

/// Ponto pending transaction → pending line (date: execution, else value, else creation).
pub fn pending(raw: &RawValue, tz: Tz) -> Result<PendingLine> {
    const WHAT: &str = "pending transaction";
    let r = Resource::parse(raw, WHAT)?;
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
    let (payment_reference, _) = payment_reference(&r);
    Ok(PendingLine {
        date: date.to_string(),
        amount: amount.to_string(),
        currency,
        payment_reference,
        partner_name: a.text("counterpartName"),
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
        // The value date is required only when it is the chosen field.
        match transaction(&raw(base), tz, DateField::Value) {
            Err(ProviderError::MalformedResponse(m)) => {
                assert_eq!(m.field.as_deref(), Some("valueDate"))
            }
            other => panic!("{other:?}"),
        }
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
}
