//! The organisation derived from the seed once at start: its institutions and accounts.

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;

use super::formats::{TsStyle, be_bban, iban, local_midnight, ts, uuid_from};
use super::hash::h3;

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
}
