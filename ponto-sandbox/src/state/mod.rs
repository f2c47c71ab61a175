//! The sandbox's mutable world: tokens, consents, synchronizations and what they reveal.

mod auth;
mod synchronizations;
mod transactions;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};

use crate::errors::ApiError;
use crate::faults::ActiveFault;
use crate::generator::{Generator, h3, local_midnight, mix, uuid_from};

pub use auth::{AccessToken, AuthCode, Caller, Integration, Reauth, RefreshToken};
pub use synchronizations::{Sync, SyncStatus};
pub use transactions::{Key, Slot};
use transactions::{last_k_on_or_before, make_extra};

pub struct AccountState {
    pub overlay: BTreeMap<Key, crate::generator::TxRecord>,
    pub overlay_ids: HashMap<String, Key>,
    pub next_seq: u64,
    pub base_sum: i64,
    pub extra_sum: i64,
    pub pending: Vec<crate::generator::TxRecord>,
    /// Back-dated bookings the bank reports only at the next transactions synchronization.
    pub hidden_late: Vec<(i64, crate::generator::TxRecord)>,
    pub queued_new: u32,
    pub made: u64,
    pub authorized_at: DateTime<Utc>,
    pub consent_expires: DateTime<Utc>,
    pub consent_fault: bool,
    pub readonly: bool,
    pub latest_sync: String,
    pub latest_tx_sync: String,
    pub synchronized_at: DateTime<Utc>,
    pub balance_changed_at: DateTime<Utc>,
    pub last_created: HashMap<&'static str, Instant>,
}

pub struct Settings {
    pub client_id: String,
    pub client_secret: String,
    pub access_ttl: u64,
    pub sync_cooldown: StdDuration,
}

pub struct World {
    pub data: Arc<Generator>,
    pub base_url: String,
    pub settings: Settings,
    pub accounts: Vec<AccountState>,
    pub codes: HashMap<String, AuthCode>,
    pub integrations: HashMap<String, Integration>,
    pub access: HashMap<String, AccessToken>,
    pub refresh: HashMap<String, RefreshToken>,
    pub syncs: HashMap<String, Sync>,
    pub reauths: HashMap<String, Reauth>,
    pub faults: Vec<ActiveFault>,
    /// Bumped whenever a synchronization finishes (what transaction pages show may change).
    pub version: u64,
    counter: u64,
    nonce: u64,
}

impl World {
    pub fn new(data: Arc<Generator>, settings: Settings, now: DateTime<Utc>) -> World {
        let nonce = mix(now.timestamp_nanos_opt().unwrap_or(0) as u64 ^ data.seed);
        let mut w = World {
            data: data.clone(),
            base_url: String::new(),
            settings,
            accounts: Vec::new(),
            codes: HashMap::new(),
            integrations: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            syncs: HashMap::new(),
            reauths: HashMap::new(),
            faults: Vec::new(),
            version: 0,
            counter: 0,
            nonce,
        };
        let anchor_noon =
            local_midnight(chrono_tz::Europe::Brussels, data.anchor) + Duration::hours(7);
        for a in &data.accounts {
            let base_sum: i64 = (0..a.booked)
                .map(|k| data.amount_minor(a, Generator::content_index(k)))
                .sum();
            let consent_expires = anchor_noon + Duration::days(a.consent_days);
            let inst = &data.institutions[a.institution];
            let mut st = AccountState {
                overlay: BTreeMap::new(),
                overlay_ids: HashMap::new(),
                next_seq: 1,
                base_sum,
                extra_sum: 0,
                pending: Vec::new(),
                hidden_late: Vec::new(),
                queued_new: 0,
                made: 0,
                authorized_at: consent_expires - Duration::days(90),
                consent_expires,
                consent_fault: false,
                readonly: inst.maintenance_type == Some("financialInstitution"),
                latest_sync: String::new(),
                latest_tx_sync: String::new(),
                synchronized_at: anchor_noon - Duration::hours(1),
                balance_changed_at: anchor_noon - Duration::hours(1),
                last_created: HashMap::new(),
            };
            let idx = a.idx as usize;
            // Back-dated bookings: the bank reports them late, at the next transactions sync.
            let lates = if idx == 0 { 2 } else { 1 };
            for n in 0..lates {
                let date = data.anchor - Duration::days(3 + 3 * n as i64);
                let anchor = last_k_on_or_before(&data, idx, date);
                let rec = make_extra(&data, idx, &mut st, date, true);
                st.hidden_late.push((anchor, rec));
            }
            if a.booked > 0 {
                for _ in 0..2 {
                    let rec = make_extra(&data, idx, &mut st, data.anchor, false);
                    st.pending.insert(0, rec);
                }
            }
            w.accounts.push(st);
            // Every account starts with a successful details and transactions synchronization.
            for subtype in ["accountDetails", "accountTransactions"] {
                let id = w.new_uuid();
                let t = anchor_noon - Duration::hours(1);
                w.syncs.insert(
                    id.clone(),
                    Sync {
                        created_at: t - Duration::milliseconds(180),
                        status: SyncStatus::Success,
                        background: true,
                        ..Sync::pending(id.clone(), idx, subtype, t)
                    },
                );
                w.accounts[idx].latest_sync = id.clone();
                if subtype == "accountTransactions" {
                    w.accounts[idx].latest_tx_sync = id;
                }
            }
        }
        w
    }

    pub fn new_uuid(&mut self) -> String {
        self.counter += 1;
        uuid_from(
            h3(self.nonce, 0x11, self.counter),
            h3(self.nonce, 0x22, self.counter),
        )
    }

    pub fn account_index(&self, caller: &Caller, id: &str) -> Result<usize, ApiError> {
        caller
            .accounts
            .iter()
            .copied()
            .find(|&i| self.data.accounts[i].id == id)
            .ok_or_else(|| ApiError::not_found("account"))
    }

    pub fn balance_minor(&self, idx: usize) -> (i64, i64) {
        let a = &self.data.accounts[idx];
        let st = &self.accounts[idx];
        let current = a.opening_minor + st.base_sum + st.extra_sum;
        let pending: i64 = st.pending.iter().map(|p| p.attrs.amount.minor).sum();
        (current, current + pending)
    }
}
