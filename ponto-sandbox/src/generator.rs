//! The seeded, deterministic data generator.
//!
//! Nothing here holds a transaction history: booked transaction `k` of an account (0 = oldest) is
//! derived from `(seed, account, k)` on demand, and its id encodes `k`, so a cursor
//! `page[after]=<id>` is decoded in O(1) and a 1,000,000-transaction account costs no memory.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::money::Amount;

/// SplitMix64: a tiny, well-distributed mixer; enough for fake data, never for secrets.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub fn h3(seed: u64, a: u64, b: u64) -> u64 {
    mix(mix(mix(seed) ^ a) ^ b)
}

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

fn dec(v: u64, width: u32) -> String {
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

#[derive(Debug, Clone)]
pub struct Institution {
    pub id: String,
    pub name: &'static str,
    pub bic: &'static str,
    pub country: Option<&'static str>,
    pub status: &'static str,
    pub deprecated: bool,
    pub time_zone: Option<&'static str>,
    pub maintenance_type: Option<&'static str>,
    pub maintenance_from: Option<String>,
    pub maintenance_to: Option<String>,
    pub primary_color: &'static str,
    pub secondary_color: &'static str,
    pub shared_brand_name: Option<&'static str>,
    pub shared_brand_reference: Option<&'static str>,
    pub payments_enabled: bool,
}

impl Institution {
    pub fn tz(&self) -> Tz {
        // Multi-country institutions have no zone; Ponto's home zone is the sensible fallback.
        self.time_zone
            .and_then(|z| z.parse().ok())
            .unwrap_or(chrono_tz::Europe::Brussels)
    }
}

#[derive(Debug, Clone)]
pub struct AccountSeed {
    pub idx: u16,
    pub id: String,
    pub institution: usize,
    pub reference: String,
    pub reference_type: &'static str,
    pub description: &'static str,
    pub product: Option<&'static str>,
    pub holder_name: Option<&'static str>,
    pub subtype: &'static str,
    pub currency: &'static str,
    pub exponent: u8,
    /// Number of booked transactions in the seeded history.
    pub booked: u64,
    pub opening_minor: i64,
    /// Days from the anchor date to the expected end of bank consent (negative = already passed).
    pub consent_days: i64,
    pub tz: Tz,
    /// History span in days (newest booking is yesterday).
    pub span_days: u64,
    pub salt: u64,
}

/// Everything derived from the seed once at start.
#[derive(Debug, Clone)]
pub struct Generator {
    pub seed: u64,
    pub anchor: NaiveDate,
    pub organization_id: String,
    pub organization_name: &'static str,
    pub institutions: Vec<Institution>,
    pub accounts: Vec<AccountSeed>,
}

const COUNTERPARTS: &[&str] = &[
    "Bestmarket NV",
    "Rice Ltd",
    "Brasserie De Koninck",
    "Café Brûlé SPRL",
    "Smith & Sons \"Trading\" Ltd",
    "Jan Peeters",
    "Électricité de Wallonie",
    "Proximus SA",
    "Fluvius Net",
    "Åsa Lindqvist",
    "Müller GmbH",
    "株式会社サンドボックス",
    "Acme Logistics BV",
    "Delhaize Le Lion",
    "Colruyt Group",
    "Sofie Janssens",
];

const MERCHANTS: &[&str] = &[
    "bestmarket.com",
    "Delhaize Gent",
    "SNCB/NMBS",
    "Q8 Antwerpen",
    "Fnac Bruxelles",
    "Amazon EU SARL",
    "Total Energies",
    "Bol.com",
];

impl Generator {
    pub fn new(seed: u64, first_account_transactions: u64, anchor: NaiveDate) -> Self {
        let uid = |label: u64| uuid_from(h3(seed, 0xA11, label), h3(seed, 0xB22, label));
        let hour = |d: i64| {
            ts(
                local_midnight(chrono_tz::Europe::Brussels, anchor + Duration::days(d))
                    + Duration::hours(6),
                TsStyle::Millis,
            )
        };
        let mk = |n: u64,
                  name: &'static str,
                  bic: &'static str,
                  country: Option<&'static str>,
                  status: &'static str,
                  tz: Option<&'static str>| Institution {
            id: uid(100 + n),
            name,
            bic,
            country,
            status,
            deprecated: false,
            time_zone: tz,
            maintenance_type: None,
            maintenance_from: None,
            maintenance_to: None,
            primary_color: "#7d39ff",
            secondary_color: "#3DF2C2",
            shared_brand_name: None,
            shared_brand_reference: None,
            payments_enabled: true,
        };
        let mut institutions = vec![
            mk(
                0,
                "Sandbox Bank Belgium",
                "SBXBBEBB",
                Some("BE"),
                "stable",
                Some("Europe/Brussels"),
            ),
            mk(
                1,
                "Banque Fictive de France",
                "BFDFFRPP",
                Some("FR"),
                "beta",
                Some("Europe/Paris"),
            ),
            mk(
                2,
                "Liberty Sandbox Trust",
                "LSTCUS33",
                Some("US"),
                "experimental",
                Some("America/New_York"),
            ),
            mk(
                3,
                "Sakura Sandbox Bank",
                "SKRAJPJT",
                Some("JP"),
                "stable",
                Some("Asia/Tokyo"),
            ),
            mk(4, "Global Sandbox Payments", "GSPYLULL", None, "beta", None),
            mk(
                5,
                "Nordic Sandbox Pankki",
                "NSPKFIHH",
                Some("FI"),
                "stable",
                Some("Europe/Helsinki"),
            ),
            mk(
                6,
                "Oude Spaarbank",
                "OUSBBE22",
                Some("BE"),
                "stable",
                Some("Europe/Brussels"),
            ),
            mk(
                7,
                "Experimentele Bank Nederland",
                "EXBNNL2A",
                Some("NL"),
                "experimental",
                Some("Europe/Amsterdam"),
            ),
        ];
        // Japan: bank unreachable, data read-only (its account shows availability readonly).
        institutions[3].maintenance_type = Some("financialInstitution");
        institutions[3].maintenance_from = Some(hour(-1));
        institutions[3].maintenance_to = Some(hour(2));
        // Finland: scheduled internal maintenance (no data access) — public list only.
        institutions[5].maintenance_type = Some("internal");
        institutions[5].maintenance_from = Some(hour(3));
        institutions[5].maintenance_to = Some(hour(4));
        institutions[6].deprecated = true;
        institutions[6].shared_brand_name = Some("Spaar Groep");
        institutions[6].shared_brand_reference = Some("spaar-groep-be");
        institutions[7].payments_enabled = false;

        let acct_uid = |n: u64| uid(200 + n);
        let brussels = chrono_tz::Europe::Brussels;
        let be = |n: u64| iban("BE", &be_bban(h3(seed, 0xBE, n)));
        let fr_bban = {
            let h = h3(seed, 0xF4, 1);
            let bank = 10000 + h % 89999;
            let branch = 10000 + (h >> 20) % 89999;
            let account = (h >> 8) % 100_000_000_000;
            let key = 97 - ((89 * bank + 15 * branch + 3 * account) % 97);
            format!("{bank:05}{branch:05}{account:011}{key:02}")
        };
        let lu_bban = format!(
            "{:03}{:013}",
            1 + h3(seed, 0x10, 1) % 998,
            h3(seed, 0x10, 2) % 10u64.pow(13)
        );
        let mut accounts = vec![
            AccountSeed {
                idx: 0,
                id: acct_uid(0),
                institution: 0,
                reference: be(0),
                reference_type: "IBAN",
                description: "Zichtrekening",
                product: Some("Business account"),
                holder_name: Some("Acme BV"),
                subtype: "checking",
                currency: "EUR",
                exponent: 2,
                booked: first_account_transactions,
                opening_minor: 1_250_000,
                consent_days: 80,
                tz: brussels,
                span_days: 0,
                salt: 0,
            },
            AccountSeed {
                idx: 1,
                id: acct_uid(1),
                institution: 0,
                reference: be(1),
                reference_type: "IBAN",
                description: "Spaarrekening",
                product: Some("Savings account"),
                holder_name: Some("Acme BV"),
                subtype: "savings",
                currency: "EUR",
                exponent: 2,
                booked: 24,
                opening_minor: 5_000_000,
                consent_days: 14,
                tz: brussels,
                span_days: 0,
                salt: 0,
            },
            AccountSeed {
                idx: 2,
                id: acct_uid(2),
                institution: 1,
                reference: iban("FR", &fr_bban),
                reference_type: "IBAN",
                description: "Compte courant",
                product: None,
                holder_name: None,
                subtype: "checking",
                currency: "EUR",
                exponent: 2,
                booked: 45,
                opening_minor: 320_055,
                consent_days: 9,
                tz: chrono_tz::Europe::Paris,
                span_days: 0,
                salt: 0,
            },
            AccountSeed {
                idx: 3,
                id: acct_uid(3),
                institution: 2,
                reference: format!("{:012}", h3(seed, 0x05, 3) % 1_000_000_000_000),
                reference_type: "BBAN",
                description: "Business Checking",
                product: Some("Business Checking"),
                holder_name: Some("Acme Inc."),
                subtype: "checking",
                currency: "USD",
                exponent: 2,
                booked: 30,
                opening_minor: 1_000_000,
                consent_days: 60,
                tz: chrono_tz::America::New_York,
                span_days: 0,
                salt: 0,
            },
            AccountSeed {
                idx: 4,
                id: acct_uid(4),
                institution: 3,
                reference: format!("{:07}", h3(seed, 0x17, 4) % 10_000_000),
                reference_type: "BBAN",
                description: "普通預金",
                product: Some("Futsu Yokin"),
                holder_name: Some("Acme KK"),
                subtype: "checking",
                currency: "JPY",
                exponent: 0,
                booked: 28,
                opening_minor: 2_500_000,
                consent_days: 120,
                tz: chrono_tz::Asia::Tokyo,
                span_days: 0,
                salt: 0,
            },
            AccountSeed {
                idx: 5,
                id: acct_uid(5),
                institution: 4,
                reference: iban("LU", &lu_bban),
                reference_type: "IBAN",
                description: "Merchant balance",
                product: Some("PSP wallet"),
                holder_name: Some("Acme BV"),
                subtype: "psp",
                currency: "EUR",
                exponent: 2,
                booked: 18,
                opening_minor: 0,
                // Consent already expired: syncs end with authorizationInvalid.
                consent_days: -3,
                tz: brussels,
                span_days: 0,
                salt: 0,
            },
        ];
        for a in &mut accounts {
            a.tz = institutions[a.institution].tz();
            // Dense histories span two years; small ones spread one booking every ~2 days.
            a.span_days = (a.booked * 2).clamp(1, 730);
            a.salt = h3(seed, 0x5A17, a.idx as u64);
        }
        Generator {
            seed,
            anchor,
            organization_id: uid(1),
            organization_name: "Acme BV",
            institutions,
            accounts,
        }
    }

    pub fn account(&self, id: &str) -> Option<&AccountSeed> {
        self.accounts.iter().find(|a| a.id == id)
    }

    pub fn institution(&self, id: &str) -> Option<&Institution> {
        self.institutions.iter().find(|i| i.id == id)
    }

    /// Which generated record booked transaction `k` copies: identical same-day twins repeat the
    /// content of their older neighbour (same amount, date, counterpart, digest; new id).
    pub fn content_index(k: u64) -> u64 {
        if k > 0 && k % 41 == 17 { k - 1 } else { k }
    }

    /// The amount of content record `c` — cheap, so balances can sum a million of them at start.
    pub fn amount_minor(&self, a: &AccountSeed, c: u64) -> i64 {
        let h = h3(a.salt, 0xA3, c);
        let kind = Kind::of(h);
        let r = mix(h) % 1_000_000;
        let minor = match kind {
            Kind::Card => 100 + (r % 25_000) as i64,
            Kind::StructuredIn => 1_000 + (r % 500_000) as i64,
            Kind::DirectDebit => 2_000 + (r % 40_000) as i64,
            Kind::TransferOut => 1_000 + (r % 300_000) as i64,
            Kind::TransferIn => 500 + (r % 200_000) as i64,
            Kind::Fee => 50 + (r % 1_500) as i64,
        };
        // Round some to whole units / tenths so that 1234 and -100.5 both appear.
        let minor = match (r >> 12) % 5 {
            0 => minor - minor % 100,
            1 => minor - minor % 10,
            _ => minor,
        };
        // JPY has no decimals: amounts are whole yen (same order of magnitude as cents look).
        let minor = if a.exponent == 0 { minor.max(1) } else { minor };
        if kind.is_credit() { minor } else { -minor }
    }

    /// Booking date of booked transaction `k` (0 = oldest, newest = yesterday).
    pub fn booking_date(&self, a: &AccountSeed, k: u64) -> NaiveDate {
        let from_top = a.booked.saturating_sub(1).saturating_sub(k);
        let back = (from_top as u128 * a.span_days as u128 / a.booked.max(1) as u128) as i64;
        self.anchor - Duration::days(1 + back)
    }

    /// Encodes (account, kind, k) into a UUID whose first group is a keyed check, so forged or
    /// mistyped ids are rejected rather than decoded.
    pub fn encode_id(&self, a: &AccountSeed, kind: u16, k: u64) -> String {
        let masked = k ^ (mix(a.salt ^ 0x1D) & 0x0fff_ffff_ffff_ffff);
        let check = h3(a.salt, kind as u64, k) >> 32;
        let mut s = String::with_capacity(36);
        push_hex(&mut s, check, 8);
        s.push('-');
        push_hex(&mut s, a.idx as u64, 4);
        s.push_str("-4");
        push_hex(&mut s, (kind & 0xfff) as u64, 3);
        s.push('-');
        push_hex(&mut s, 8 + ((k >> 60) & 0x3), 1);
        push_hex(&mut s, (masked >> 48) & 0xfff, 3);
        s.push('-');
        push_hex(&mut s, masked & 0xffff_ffff_ffff, 12);
        s
    }

    /// Inverse of `encode_id`: Some((account index, kind, k)) when the id is one of ours.
    pub fn decode_id(&self, id: &str) -> Option<(usize, u16, u64)> {
        let b = id.as_bytes();
        if b.len() != 36 || b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
            return None;
        }
        let hex = |s: &str| u64::from_str_radix(s, 16).ok();
        let check = hex(&id[0..8])?;
        let idx = hex(&id[9..13])? as usize;
        if &id[14..15] != "4" {
            return None;
        }
        let kind = hex(&id[15..18])? as u16;
        let hi = hex(&id[19..20])?.checked_sub(8)?;
        let masked = (hex(&id[20..23])? << 48) | hex(&id[24..36])?;
        let a = self.accounts.get(idx)?;
        let k = (masked ^ (mix(a.salt ^ 0x1D) & 0x0fff_ffff_ffff_ffff)) | (hi << 60);
        ((h3(a.salt, kind as u64, k) >> 32) == check).then_some((idx, kind, k))
    }

    /// Booked transaction `k` of the seeded history.
    pub fn booked(&self, a: &AccountSeed, k: u64) -> TxRecord {
        let c = Self::content_index(k);
        let date = self.booking_date(a, c);
        let id = self.encode_id(a, KIND_BOOKED, k);
        let attrs = self.attributes(a, c, date, id.as_bytes(), true);
        TxRecord { id, attrs }
    }

    /// Builds the attributes of content record `c` booked on `date`; `id_salt` varies the parts
    /// that differ between twins (internal reference), `booked` false yields a pending item.
    pub fn attributes(
        &self,
        a: &AccountSeed,
        c: u64,
        date: NaiveDate,
        id_salt: &[u8],
        booked: bool,
    ) -> TxAttributes {
        let h = h3(a.salt, 0xA3, c);
        let kind = Kind::of(h);
        let r1 = mix(h ^ 1);
        let r2 = mix(h ^ 2);
        let r3 = mix(h ^ 3);
        let minor = self.amount_minor(a, c);
        let amount = Amount {
            minor,
            exponent: a.exponent,
            keep_point: r1.is_multiple_of(3),
        };
        let midnight = local_midnight(a.tz, date);
        let style = |x: u64| {
            if x.is_multiple_of(4) {
                TsStyle::Seconds
            } else {
                TsStyle::Millis
            }
        };
        let exec = if kind == Kind::Card && r2.is_multiple_of(2) {
            // Card payments sometimes carry the time of day of the purchase (local 08:00–20:00).
            midnight + Duration::seconds(8 * 3600 + (r2 % (12 * 3600)) as i64)
        } else {
            midnight
        };
        let value = match (kind, r3 % 4) {
            (Kind::TransferIn | Kind::StructuredIn, 0) => {
                local_midnight(a.tz, date - Duration::days(1))
            }
            (Kind::TransferOut | Kind::DirectDebit, 0) => {
                local_midnight(a.tz, date - Duration::days(2))
            }
            (_, 1) if kind != Kind::Card => local_midnight(a.tz, date + Duration::days(1)),
            _ => midnight,
        };
        let counterpart = COUNTERPARTS[(r1 >> 8) as usize % COUNTERPARTS.len()];
        let cp_iban = iban("BE", &be_bban(r2 >> 4));
        let mut e2e = String::with_capacity(32);
        push_hex(&mut e2e, mix(r3), 16);
        push_hex(&mut e2e, mix(r3 ^ 7), 16);
        let created =
            midnight + Duration::hours(24 + 6) + Duration::milliseconds((r3 % 3_600_000) as i64);
        let updated = created + Duration::seconds((r2 % 90_000) as i64);
        let created_style = match r3 % 7 {
            0 => TsStyle::Seconds,
            1 => TsStyle::Micros,
            _ => TsStyle::Millis,
        };
        let mut t = TxAttributes {
            amount,
            currency: a.currency,
            value_date: ts(value, style(r1 >> 20)),
            execution_date: Some(ts(exec, style(r1 >> 24))),
            description: String::new(),
            remittance_information: None,
            remittance_information_type: Some("unstructured"),
            counterpart_name: Some(counterpart.to_string()),
            counterpart_reference: Some(cp_iban),
            bank_transaction_code: None,
            proprietary_bank_transaction_code: Some(dec(r2 % 100_000, 5)),
            end_to_end_id: Some(e2e),
            purpose_code: None,
            mandate_id: None,
            creditor_id: None,
            additional_information: None,
            internal_reference: String::new(),
            digest: String::new(),
            fee: None,
            card_reference: None,
            card_reference_type: None,
            created_at: ts(created, created_style),
            updated_at: ts(updated, created_style),
        };
        match kind {
            Kind::Card => {
                let merchant = MERCHANTS[(r2 >> 16) as usize % MERCHANTS.len()];
                t.description = "Card payment".into();
                t.remittance_information = Some(format!(
                    "Purchase {merchant} {:02}/{:02}",
                    date.day(),
                    date.month()
                ));
                t.counterpart_name = Some(merchant.to_string());
                t.counterpart_reference = None;
                t.bank_transaction_code = Some("PMNT-CCRD-POSD");
                t.end_to_end_id = Some("NOTPROVIDED".into());
                t.additional_information = Some(format!("Online payment on {merchant}"));
                t.card_reference = Some(dec(r3 % 10_000, 4));
                t.card_reference_type = Some(if r3.is_multiple_of(5) {
                    "PAN"
                } else {
                    "MASKEDPAN"
                });
                if a.currency != "EUR" && r3.is_multiple_of(3) {
                    t.fee = Some(Amount::new(25 + (r3 % 200) as i64, 2).at(a.exponent));
                }
            }
            Kind::StructuredIn => {
                t.description = "Wire transfer".into();
                t.remittance_information = Some(structured_communication(r3, r3.is_multiple_of(2)));
                t.remittance_information_type = Some("structured");
                t.bank_transaction_code = Some("PMNT-RCDT-ESCT");
                t.purpose_code = if r1.is_multiple_of(2) {
                    Some("CASH")
                } else {
                    None
                };
            }
            Kind::DirectDebit => {
                t.description = "SEPA direct debit".into();
                t.remittance_information = Some(format!(
                    "Invoice {} contract {}",
                    2000 + r3 % 9000,
                    r2 % 100_000
                ));
                t.bank_transaction_code = Some("PMNT-RDDT-ESDD");
                t.mandate_id = Some(format!("MND-{:08}", r2 % 100_000_000));
                t.creditor_id = Some(creditor_id("BE", &dec(r3 % 10_000_000_000, 10)));
                t.purpose_code = Some(["ELEC", "INSU", "PHON", "RENT"][(r1 % 4) as usize]);
            }
            Kind::TransferOut => {
                t.description = "Wire transfer".into();
                t.remittance_information =
                    Some(format!("Invoice {}-{:04}", 2020 + r3 % 6, r2 % 10_000));
                t.bank_transaction_code = Some("PMNT-ICDT-ESCT");
                t.purpose_code = Some("SUPP");
            }
            Kind::TransferIn => {
                t.description = "Instant transfer".into();
                t.remittance_information = if r3.is_multiple_of(5) {
                    None
                } else {
                    Some(format!("Payment ref {}", r2 % 1_000_000))
                };
                t.remittance_information_type =
                    t.remittance_information.as_ref().map(|_| "unstructured");
                t.bank_transaction_code = Some("PMNT-RCDT-ESCT");
                if r3.is_multiple_of(7) {
                    t.counterpart_name = None;
                }
            }
            Kind::Fee => {
                t.description = "Bank fees".into();
                t.remittance_information = Some("Monthly account fees".into());
                t.counterpart_name = None;
                t.counterpart_reference = None;
                t.end_to_end_id = None;
                t.bank_transaction_code = Some("ACMT-MDOP-CHRG");
                t.proprietary_bank_transaction_code = None;
            }
        }
        if !booked {
            t.execution_date = if r1.is_multiple_of(2) {
                None
            } else {
                t.execution_date.take()
            };
            t.description = format!("{} (pending)", t.description);
        }
        // The digest hashes the bank's payload, so twins (same content) collide, as in Ponto.
        // (A keyed mix, not SHA-256: there is no bank payload to hash, only its shape matters.)
        let dh = h3(
            a.salt,
            0xD16E57,
            c ^ ((date.num_days_from_ce() as u64) << 40),
        );
        let mut digest = String::with_capacity(64);
        for x in [dh, mix(dh), mix(dh ^ 1), mix(dh ^ 2)] {
            push_hex(&mut digest, x, 16);
        }
        t.digest = digest;
        let ih = mix(a.salt ^ fnv(id_salt));
        t.internal_reference = uuid_from(ih, mix(ih));
        t
    }
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| {
        (h ^ *x as u64).wrapping_mul(0x100_0000_01b3)
    })
}

impl Amount {
    /// Rescales a fee written in cents into an account's exponent (yen have none).
    fn at(self, exponent: u8) -> Amount {
        let mut m = self.minor;
        let mut e = self.exponent;
        while e > exponent {
            m /= 10;
            e -= 1;
        }
        Amount::new(m.max(1), exponent)
    }
}

pub const KIND_BOOKED: u16 = 0x001;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Card,
    StructuredIn,
    DirectDebit,
    TransferOut,
    TransferIn,
    Fee,
}

impl Kind {
    fn of(h: u64) -> Kind {
        match h % 100 {
            0..=34 => Kind::Card,
            35..=54 => Kind::StructuredIn,
            55..=69 => Kind::DirectDebit,
            70..=84 => Kind::TransferOut,
            85..=94 => Kind::TransferIn,
            _ => Kind::Fee,
        }
    }
    fn is_credit(self) -> bool {
        matches!(self, Kind::StructuredIn | Kind::TransferIn)
    }
}

/// Transaction attributes in Ponto's order and spelling; `None` serialises as `null`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TxAttributes {
    pub amount: Amount,
    pub currency: &'static str,
    pub value_date: String,
    pub execution_date: Option<String>,
    pub description: String,
    pub remittance_information: Option<String>,
    pub remittance_information_type: Option<&'static str>,
    pub counterpart_name: Option<String>,
    pub counterpart_reference: Option<String>,
    pub bank_transaction_code: Option<&'static str>,
    pub proprietary_bank_transaction_code: Option<String>,
    pub end_to_end_id: Option<String>,
    pub purpose_code: Option<&'static str>,
    pub mandate_id: Option<String>,
    pub creditor_id: Option<String>,
    pub additional_information: Option<String>,
    pub internal_reference: String,
    pub digest: String,
    pub fee: Option<Amount>,
    pub card_reference: Option<String>,
    pub card_reference_type: Option<&'static str>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone)]
pub struct TxRecord {
    pub id: String,
    pub attrs: TxAttributes,
}

#[cfg(test)]
mod tests {
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
}
