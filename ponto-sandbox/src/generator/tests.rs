use chrono::{Duration, NaiveDate};

use super::*;
fn g(n: u64) -> Generator {
    Generator::new(42, n, NaiveDate::from_ymd_opt(2025, 1, 15).unwrap())
}

fn iban_valid(s: &str) -> bool {
    let r = format!("{}{}", &s[4..], &s[..4]);
    r.chars()
        .map(|c| c.to_digit(36).unwrap() as u64)
        .fold(0u64, |acc, v| {
            if v >= 10 {
                (acc * 100 + v) % 97
            } else {
                (acc * 10 + v) % 97
            }
        })
        == 1
}

#[test]
fn ibans_and_communications_check() {
    let g = g(120);
    for a in &g.accounts {
        if a.reference_type == "IBAN" {
            assert!(iban_valid(&a.reference), "{}", a.reference);
        }
    }
    assert!(g.accounts[0].reference.starts_with("BE"));
    for h in 0..500u64 {
        let s = structured_communication(mix(h), false);
        let base: u64 = s[..10].parse().unwrap();
        let check: u64 = s[10..].parse().unwrap();
        assert_eq!(
            if base.is_multiple_of(97) {
                97
            } else {
                base % 97
            },
            check
        );
        assert!(iban_valid(&iban("BE", &be_bban(mix(h)))));
    }
    let ci = creditor_id("BE", "0123456789");
    assert!(iban_valid(&format!("{}{}", &ci[..4], &ci[7..])), "{ci}");
}

#[test]
fn ids_round_trip_and_reject_forgeries() {
    let g = g(1_000_000);
    let a = &g.accounts[0];
    for k in [0u64, 1, 999_999, 123_456] {
        let id = g.encode_id(a, KIND_BOOKED, k);
        assert_eq!(g.decode_id(&id), Some((0, KIND_BOOKED, k)), "{id}");
        let mut forged = id.clone().into_bytes();
        forged[35] = if forged[35] == b'0' { b'1' } else { b'0' };
        assert_eq!(g.decode_id(std::str::from_utf8(&forged).unwrap()), None);
    }
}

#[test]
fn twins_share_content_but_not_ids() {
    let g = g(120);
    let a = &g.accounts[0];
    let t1 = g.booked(a, 17);
    let t0 = g.booked(a, 16);
    assert_ne!(t0.id, t1.id);
    assert_eq!(t0.attrs.amount, t1.attrs.amount);
    assert_eq!(t0.attrs.execution_date, t1.attrs.execution_date);
    assert_eq!(t0.attrs.counterpart_name, t1.attrs.counterpart_name);
    assert_eq!(t0.attrs.digest, t1.attrs.digest);
}

#[test]
fn brussels_bookings_are_local_midnight() {
    let g = g(120);
    let winter = local_midnight(
        chrono_tz::Europe::Brussels,
        NaiveDate::from_ymd_opt(2025, 1, 2).unwrap(),
    );
    assert_eq!(ts(winter, TsStyle::Seconds), "2025-01-01T23:00:00Z");
    let summer = local_midnight(
        chrono_tz::Europe::Brussels,
        NaiveDate::from_ymd_opt(2025, 7, 2).unwrap(),
    );
    assert_eq!(ts(summer, TsStyle::Millis), "2025-07-01T22:00:00.000Z");
    let newest = g.booking_date(&g.accounts[0], 119);
    assert_eq!(newest, g.anchor - Duration::days(1));
}
