//! Exact amounts: integer minor units written as JSON number text, never through `f64`.

use serde::Serialize;
use serde_json::value::RawValue;

/// An amount in minor units of a currency with `exponent` decimals (EUR 2, JPY 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    pub minor: i64,
    pub exponent: u8,
    /// Ponto emits floats, so `-100.0` and `-100` both occur; `true` keeps one decimal on whole
    /// amounts (`59.0`), `false` drops it (`1234`). Both are the same exact value.
    pub keep_point: bool,
}

impl Amount {
    pub fn new(minor: i64, exponent: u8) -> Self {
        Amount {
            minor,
            exponent,
            keep_point: false,
        }
    }

    /// The exact decimal text: trailing zeros trimmed, as a float printer would (2.76, -100.5, 1234).
    pub fn to_text(self) -> String {
        let neg = self.minor < 0;
        let abs = self.minor.unsigned_abs();
        let scale = 10u64.pow(self.exponent as u32);
        let int = abs / scale;
        let mut frac = String::new();
        if self.exponent > 0 {
            frac = format!("{:0width$}", abs % scale, width = self.exponent as usize);
            while frac.ends_with('0') {
                frac.pop();
            }
        }
        if frac.is_empty() && self.keep_point {
            frac.push('0');
        }
        let sign = if neg && abs != 0 { "-" } else { "" };
        if frac.is_empty() {
            format!("{sign}{int}")
        } else {
            format!("{sign}{int}.{frac}")
        }
    }
}

impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // RawValue keeps the digits exactly as written; the text is always a valid JSON number.
        let raw = RawValue::from_string(self.to_text()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_text() {
        assert_eq!(Amount::new(276, 2).to_text(), "2.76");
        assert_eq!(Amount::new(-10050, 2).to_text(), "-100.5");
        assert_eq!(Amount::new(123400, 2).to_text(), "1234");
        assert_eq!(Amount::new(-5, 2).to_text(), "-0.05");
        assert_eq!(Amount::new(0, 2).to_text(), "0");
        assert_eq!(Amount::new(1234, 0).to_text(), "1234");
        let kp = Amount {
            minor: -10000,
            exponent: 2,
            keep_point: true,
        };
        assert_eq!(kp.to_text(), "-100.0");
        assert_eq!(serde_json::to_string(&kp).unwrap(), "-100.0");
        assert_eq!(
            serde_json::to_string(&Amount::new(1999999999999, 2)).unwrap(),
            "19999999999.99"
        );
    }
}
