//! Transactions derived on demand: booked transaction `k` of an account from `(seed, account,
//! k)`, its id encoding `k`.

use chrono::{Datelike, Duration, NaiveDate};
use serde::Serialize;

use super::formats::{
    TsStyle, be_bban, creditor_id, dec, iban, local_midnight, push_hex, structured_communication,
    ts, uuid_from,
};
use super::hash::{fnv, h3, mix};
use super::organization::{AccountSeed, Generator};
use crate::money::Amount;

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
