//! Exact money: amounts travel and are stored as decimal text (`-1234.50`), and are summed with
//! `rust_decimal`, never a float.

use rust_decimal::Decimal;

/// Parse the contract's decimal form: optional `-`, digits, optional `.` and digits. Anything
/// else (exponents, `+`, spaces, commas) is refused rather than guessed.
pub fn parse(s: &str) -> Option<Decimal> {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return None;
    }
    Decimal::from_str_exact(s).ok()
}

/// The canonical text of an amount as the bank gave it (keeps its scale: `2.50` stays `2.50`,
/// `-0` becomes `0`).
pub fn normalize(s: &str) -> Option<String> {
    parse(s).map(format)
}

pub fn format(d: Decimal) -> String {
    if d.is_zero() {
        // Keep the scale but drop a negative zero's sign.
        return Decimal::new(0, d.scale()).to_string();
    }
    d.to_string()
}

/// Digits after the decimal point in a currency's minor unit (ISO 4217).
pub fn minor_digits(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

/// An amount for people: padded to the currency's minor unit (`-1245.8` EUR shows `-1245.80`),
/// never rounded (a bank amount with more digits keeps them). Unparsable text is shown as is.
pub fn display(amount: &str, currency: &str) -> String {
    match parse(amount) {
        Some(mut d) => {
            let digits = minor_digits(currency);
            if d.scale() < digits {
                d.rescale(digits);
            }
            format(d)
        }
        None => amount.to_owned(),
    }
}

/// Most digits before the point of a line's amount: |amount| < 10^15. Far above any bank line,
/// and small enough that sums of millions of lines fit rust_decimal's 28 digits (the plugin
/// refuses the same amounts).
pub const MAX_AMOUNT_DIGITS: u32 = 15;

/// Whether an amount is one the books can sum: |amount| < 10^[`MAX_AMOUNT_DIGITS`].
pub fn summable(d: Decimal) -> bool {
    d.abs() < Decimal::from(10i64.pow(MAX_AMOUNT_DIGITS))
}

/// Exact sum of decimal strings; unparsable ones are skipped (the batch check refuses them
/// before they are stored); none when the sum overflows.
pub fn sum<'a>(amounts: impl IntoIterator<Item = &'a str>) -> Option<Decimal> {
    amounts
        .into_iter()
        .filter_map(parse)
        .try_fold(Decimal::ZERO, |a, b| a.checked_add(b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn displays_to_the_currency_minor_unit_without_rounding() {
        assert_eq!(super::display("-1245.8", "EUR"), "-1245.80");
        assert_eq!(super::display("1297", "EUR"), "1297.00");
        assert_eq!(super::display("1500", "JPY"), "1500");
        assert_eq!(super::display("1.5", "KWD"), "1.500");
        assert_eq!(super::display("0.125", "EUR"), "0.125");
        assert_eq!(super::display("n/a", "EUR"), "n/a");
    }

    use super::*;

    #[test]
    fn parses_only_plain_decimals() {
        assert_eq!(parse("-1234.50").map(format).as_deref(), Some("-1234.50"));
        assert_eq!(parse("1234").map(format).as_deref(), Some("1234"));
        for bad in [
            "", "-", "1.", ".5", "+1", "1e3", "1,5", " 1", "NaN", "1.2.3",
        ] {
            assert_eq!(parse(bad), None, "{bad:?} must be refused");
        }
    }

    #[test]
    fn sums_exactly_where_floats_drift() {
        // 0.1 + 0.2 is 0.30000000000000004 in f64.
        assert_eq!(sum(["0.1", "0.2"]).map(format).as_deref(), Some("0.3"));
        let many = vec!["0.01"; 10_000];
        assert_eq!(sum(many).map(format).as_deref(), Some("100.00"));
    }

    #[test]
    fn sums_that_overflow_are_none_and_huge_amounts_are_not_summable() {
        // Issue 11 item 10: `+` panicked ("Addition overflowed") on these.
        let huge = "50000000000000000000000000000";
        assert_eq!(sum([huge, huge]), None);
        assert!(!summable(parse(huge).unwrap()));
        assert!(!summable(parse("-1000000000000000").unwrap()));
        assert!(summable(parse("-999999999999999.99").unwrap()));
        // Ten million lines at the bound still sum.
        let max = parse("999999999999999.99").unwrap();
        assert!(max.checked_mul(Decimal::from(10_000_000)).is_some());
    }

    #[test]
    fn negative_zero_loses_its_sign() {
        assert_eq!(normalize("-0.00").as_deref(), Some("0.00"));
    }
}
