//! An exact decimal number: an integer mantissa and a count of decimal places.
//!
//! Ponto sends amounts as JSON numbers (`-100.0`, `2.76`); they are read from the JSON text, never
//! through a float, and written back with the digits the bank gave. Sums align the scales, so
//! `-527.34 - -100.0 = -427.34` whatever the currency's minor unit (JPY 0, EUR 2, BHD 3).

use std::fmt;

/// Most decimal places accepted: far beyond any currency, small enough that sums cannot overflow.
const MAX_SCALE: u32 = 18;
/// Most significant digits accepted in one amount (before and after its exponent is applied).
const MAX_DIGITS: u32 = 30;
/// Most digits before the point of one transaction amount: |amount| < 10^15 units. Far above any
/// real bank line, and small enough that the ERP's sums (rust_decimal, 28 digits) of millions of
/// lines cannot overflow.
pub const MAX_AMOUNT_DIGITS: u32 = 15;
/// Most digits of any `i128` mantissa: what a stored cursor may hold (sums can pass 30 digits).
const STORED_DIGITS: u32 = 39;

/// An exact decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    mantissa: i128,
    scale: u32,
}

impl Decimal {
    /// Zero with no decimal places.
    pub const ZERO: Decimal = Decimal {
        mantissa: 0,
        scale: 0,
    };

    /// Parses `-12.50`, `12`, `1.5e2` (JSON number syntax, leading `+` tolerated), at most
    /// 30 significant digits, so that whatever parses prints back to text that parses again.
    pub fn parse(text: &str) -> Result<Decimal, String> {
        Self::parse_limited(text, MAX_DIGITS)
    }

    fn parse_limited(text: &str, max_digits: u32) -> Result<Decimal, String> {
        let t = text.trim();
        let (neg, rest) = match t.as_bytes().first() {
            Some(b'-') => (true, &t[1..]),
            Some(b'+') => (false, &t[1..]),
            _ => (false, t),
        };
        let (num, exp) = match rest.find(['e', 'E']) {
            Some(i) => {
                let e: i32 = rest[i + 1..]
                    .parse()
                    .map_err(|_| format!("`{text}` has a bad exponent"))?;
                (&rest[..i], e)
            }
            None => (rest, 0),
        };
        let (int_part, frac_part) = match num.split_once('.') {
            Some((i, f)) => (i, f),
            None => (num, ""),
        };
        if int_part.is_empty() && frac_part.is_empty()
            || !int_part.bytes().all(|b| b.is_ascii_digit())
            || !frac_part.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(format!("`{text}` is not a decimal number"));
        }
        // The digits of both parts without building a string (amounts are read by the
        // hundred thousand in a first sync).
        let digits = int_part.bytes().chain(frac_part.bytes());
        let significant = digits.skip_while(|b| *b == b'0');
        if significant.clone().count() > max_digits as usize {
            return Err(format!("`{text}` has too many digits"));
        }
        let too_large = || format!("`{text}` is too large");
        let mut mantissa: i128 = 0;
        for b in significant {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(i128::from(b - b'0')))
                .ok_or_else(too_large)?;
        }
        let mut scale = frac_part.len() as i64 - i64::from(exp);
        if mantissa == 0 {
            // Zero stays zero at any exponent: without this, `0e2000000000` would loop two
            // billion times below (found by the fuzz harness).
            scale = scale.max(0);
        }
        while scale < 0 {
            mantissa = mantissa.checked_mul(10).ok_or_else(too_large)?;
            scale += 1;
        }
        // `-1e38` has two digits as written and 39 as printed: the printed form must parse too
        // (found by the fuzz harness).
        if 10u128
            .checked_pow(max_digits)
            .is_some_and(|limit| mantissa.unsigned_abs() >= limit)
        {
            return Err(too_large());
        }
        if scale > i64::from(MAX_SCALE) {
            return Err(format!("`{text}` has too many decimal places"));
        }
        if neg {
            mantissa = -mantissa;
        }
        Ok(Decimal {
            mantissa,
            scale: scale as u32,
        })
    }

    fn rescale(self, scale: u32) -> Option<i128> {
        let mut m = self.mantissa;
        for _ in self.scale..scale {
            m = m.checked_mul(10)?;
        }
        Some(m)
    }

    /// `self + other`, exact; none on overflow.
    pub fn checked_add(self, other: Decimal) -> Option<Decimal> {
        let scale = self.scale.max(other.scale);
        Some(Decimal {
            mantissa: self.rescale(scale)?.checked_add(other.rescale(scale)?)?,
            scale,
        })
    }

    /// `self - other`, exact; none on overflow.
    pub fn checked_sub(self, other: Decimal) -> Option<Decimal> {
        self.checked_add(Decimal {
            mantissa: other.mantissa.checked_neg()?,
            scale: other.scale,
        })
    }

    /// Whether the value is zero.
    pub fn is_zero(self) -> bool {
        self.mantissa == 0
    }

    /// Whether |self| < 10^`digits` (whole units).
    pub fn below_pow10(self, digits: u32) -> bool {
        match 10u128.checked_pow(digits.saturating_add(self.scale)) {
            Some(limit) => self.mantissa.unsigned_abs() < limit,
            // The limit passes any i128 mantissa.
            None => true,
        }
    }

    /// The absolute value; none for the one value whose negation overflows.
    pub fn checked_abs(self) -> Option<Decimal> {
        Some(Decimal {
            mantissa: self.mantissa.checked_abs()?,
            scale: self.scale,
        })
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Written into a stack buffer from the right: no allocation per amount. 39 digits of
        // an i128, a point, up to MAX_SCALE leading zeros and a sign fit in 64 bytes.
        let mut buf = [0u8; 64];
        let mut at = buf.len();
        let mut m = self.mantissa.unsigned_abs();
        let scale = self.scale as usize;
        let mut written = 0;
        while m > 0 || written <= scale {
            if written == scale && scale > 0 {
                at -= 1;
                buf[at] = b'.';
            }
            at -= 1;
            buf[at] = b'0' + (m % 10) as u8;
            m /= 10;
            written += 1;
        }
        if self.mantissa < 0 {
            at -= 1;
            buf[at] = b'-';
        }
        // Only ASCII digits, '.' and '-' were written.
        f.write_str(std::str::from_utf8(&buf[at..]).map_err(|_| fmt::Error)?)
    }
}

impl serde::Serialize for Decimal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Decimal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        // Sums written to a cursor may pass the 30 digits of one amount.
        Decimal::parse_limited(&s, STORED_DIGITS).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    #[test]
    fn keeps_the_digits_given() {
        for s in [
            "-100.0",
            "2.76",
            "0",
            "-0.05",
            "1234567890123.123456",
            "12",
            "0.000",
        ] {
            assert_eq!(d(s).to_string(), s);
        }
    }

    #[test]
    fn exponents_and_signs() {
        assert_eq!(d("1.5e2").to_string(), "150");
        assert_eq!(d("1.5E-2").to_string(), "0.015");
        assert_eq!(d("+3").to_string(), "3");
        assert_eq!(d("-.5").to_string(), "-0.5");
    }

    #[test]
    fn rejects_non_numbers() {
        for s in [
            "", "-", "abc", "1.2.3", "1e", "NaN", "1,5", "0x10", "1e40000",
        ] {
            assert!(Decimal::parse(s).is_err(), "{s} accepted");
        }
        assert!(Decimal::parse("1234567890123456789012345678901").is_err());
        assert!(Decimal::parse("1e-19").is_err());
    }

    #[test]
    fn amount_bound_counts_whole_units() {
        assert!(d("999999999999999.99").below_pow10(MAX_AMOUNT_DIGITS));
        assert!(d("-999999999999999").below_pow10(MAX_AMOUNT_DIGITS));
        assert!(!d("1000000000000000").below_pow10(MAX_AMOUNT_DIGITS));
        assert!(!d("-5e28").below_pow10(MAX_AMOUNT_DIGITS));
        assert!(!d("1e15").below_pow10(MAX_AMOUNT_DIGITS));
    }

    #[test]
    fn exact_sums_across_scales() {
        // 0.1 + 0.2 is the classic float trap.
        assert_eq!(d("0.1").checked_add(d("0.2")).unwrap().to_string(), "0.3");
        assert_eq!(
            d("-527.34").checked_sub(d("-100.0")).unwrap().to_string(),
            "-427.34"
        );
        assert_eq!(
            d("1000").checked_sub(d("0.001")).unwrap().to_string(),
            "999.999"
        );
        assert!(d("5.00").checked_sub(d("5")).unwrap().is_zero());
    }
}
