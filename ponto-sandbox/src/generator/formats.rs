//! Values in the formats Ponto and the banks write them: UUIDs, IBANs and Belgian references,
//! timestamps.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// Appends `v` as `width` lower-case hex digits (the hot path avoids `format!`).
pub fn push_hex(s: &mut String, v: u64, width: u32) {
    const H: &[u8; 16] = b"0123456789abcdef";
    for i in (0..width).rev() {
        s.push(H[((v >> (4 * i)) & 0xf) as usize] as char);
    }
}

/// Appends `v` as `width` zero-padded decimal digits.
pub fn push_dec(s: &mut String, v: u64, width: u32) {
    let mut buf = [b'0'; 20];
    let mut x = v;
    let mut i = 20;
    while x > 0 {
        i -= 1;
        buf[i] = b'0' + (x % 10) as u8;
        x /= 10;
    }
    let start = (20 - width as usize).min(i);
    for &b in &buf[start..] {
        s.push(b as char);
    }
}

pub(super) fn dec(v: u64, width: u32) -> String {
    let mut s = String::with_capacity(width as usize + 4);
    push_dec(&mut s, v, width);
    s
}

/// A version-4-shaped UUID from two hashes.
pub fn uuid_from(a: u64, b: u64) -> String {
    let mut s = String::with_capacity(36);
    push_hex(&mut s, a >> 32, 8);
    s.push('-');
    push_hex(&mut s, (a >> 16) & 0xffff, 4);
    s.push_str("-4");
    push_hex(&mut s, a & 0xfff, 3);
    s.push('-');
    push_hex(&mut s, 8 + ((b >> 62) & 0x3), 1);
    push_hex(&mut s, (b >> 48) & 0xfff, 3);
    s.push('-');
    push_hex(&mut s, b & 0xffff_ffff_ffff, 12);
    s
}

/// ISO 13616 check digits for `country` + `bban`.
pub fn iban(country: &str, bban: &str) -> String {
    let mut rem: u64 = 0;
    for c in bban.chars().chain(country.chars()).chain("00".chars()) {
        let v = c.to_digit(36).expect("alphanumeric bban") as u64;
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    let mut s = String::with_capacity(4 + bban.len());
    s.push_str(country);
    push_dec(&mut s, 98 - rem, 2);
    s.push_str(bban);
    s
}

/// A Belgian BBAN: 10 digits plus their national mod-97 check (97 when the remainder is 0).
pub fn be_bban(h: u64) -> String {
    let base = h % 10_000_000_000;
    let check = match base % 97 {
        0 => 97,
        r => r,
    };
    let mut s = dec(base, 10);
    push_dec(&mut s, check, 2);
    s
}

/// A Belgian structured communication (OGM/VCS): 10 digits + mod-97 check.
pub fn structured_communication(h: u64, formatted: bool) -> String {
    let digits = be_bban(h);
    if formatted {
        format!(
            "+++{}/{}/{}+++",
            &digits[0..3],
            &digits[3..7],
            &digits[7..12]
        )
    } else {
        digits
    }
}

/// A SEPA creditor identifier: CC + check + business code + national id, check over id+CC+"00".
pub fn creditor_id(country: &str, national: &str) -> String {
    let checked = iban(country, national); // same ISO 7064 mod 97-10 on national + country + 00
    format!("{}{}ZZZ{national}", country, &checked[2..4])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsStyle {
    Millis,
    Seconds,
    Micros,
}

pub fn ts(dt: DateTime<Utc>, style: TsStyle) -> String {
    // Hand-rolled: chrono's format machinery dominated the cost of generating a transaction.
    use chrono::{Datelike, Timelike};
    let mut s = String::with_capacity(27);
    let push = |s: &mut String, v: u32, width: u32| {
        let mut d = 10u32.pow(width - 1);
        while d > 0 {
            s.push((b'0' + ((v / d) % 10) as u8) as char);
            d /= 10;
        }
    };
    push(&mut s, dt.year() as u32, 4);
    s.push('-');
    push(&mut s, dt.month(), 2);
    s.push('-');
    push(&mut s, dt.day(), 2);
    s.push('T');
    push(&mut s, dt.hour(), 2);
    s.push(':');
    push(&mut s, dt.minute(), 2);
    s.push(':');
    push(&mut s, dt.second(), 2);
    let nanos = dt.nanosecond() % 1_000_000_000;
    match style {
        TsStyle::Millis => {
            s.push('.');
            push(&mut s, nanos / 1_000_000, 3);
        }
        TsStyle::Micros => {
            s.push('.');
            push(&mut s, nanos / 1_000, 6);
        }
        TsStyle::Seconds => {}
    }
    s.push('Z');
    s
}

/// Midnight of `date` in `tz`, in UTC (Brussels: 23:00Z in winter, 22:00Z in summer).
pub fn local_midnight(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    type Entry = Option<(Tz, NaiveDate, DateTime<Utc>)>;
    thread_local! {
        // Neighbouring transactions share dates and the zone lookup is the costly part: a tiny
        // direct-mapped cache keyed by the day number.
        static CACHE: std::cell::RefCell<[Entry; 64]> = const { std::cell::RefCell::new([None; 64]) };
    }
    let slot = (date.num_days_from_ce() as usize) % 64;
    if let Some(hit) =
        CACHE.with(|c| c.borrow()[slot].and_then(|(z, d, v)| (z == tz && d == date).then_some(v)))
    {
        return hit;
    }
    let naive = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    let v = tz
        .from_local_datetime(&naive)
        .earliest()
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&naive));
    CACHE.with(|c| c.borrow_mut()[slot] = Some((tz, date, v)));
    v
}
