//! Synchronizations: created (or refused), moved along `pending -> running -> success|error` as
//! time passes, and on success revealing the bank's late, settled and new bookings.

use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};

use super::World;
use super::transactions::make_extra;
use crate::errors::ApiError;
use crate::generator::{TsStyle, mix, ts};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStatus {
    Pending,
    Running,
    Success,
    Error,
}

impl SyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Pending => "pending",
            SyncStatus::Running => "running",
            SyncStatus::Success => "success",
            SyncStatus::Error => "error",
        }
    }
}

pub struct Sync {
    pub id: String,
    pub account: usize,
    pub subtype: &'static str,
    pub started: Instant,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub polls: u32,
    pub status: SyncStatus,
    /// Decided when created: `None` = success, else the error code and detail it will end with.
    pub planned_error: Option<(&'static str, &'static str)>,
    pub errors: Vec<Value>,
    pub updated: Vec<crate::generator::TxRecord>,
    pub updated_pending: Vec<crate::generator::TxRecord>,
    pub customer_online: bool,
    /// Started by Ponto itself (its scheduled sync), not through the API.
    pub background: bool,
}

impl Sync {
    /// A synchronization of account `account` started now, pending, created and updated at `at`,
    /// planned to succeed, created through the API with the customer offline.
    pub fn pending(id: String, account: usize, subtype: &'static str, at: DateTime<Utc>) -> Sync {
        Sync {
            id,
            account,
            subtype,
            started: Instant::now(),
            created_at: at,
            updated_at: at,
            polls: 0,
            status: SyncStatus::Pending,
            planned_error: None,
            errors: Vec::new(),
            updated: Vec::new(),
            updated_pending: Vec::new(),
            customer_online: false,
            background: false,
        }
    }
}

const SYNC_RUNNING_AFTER: StdDuration = StdDuration::from_millis(60);
const SYNC_DONE_AFTER: StdDuration = StdDuration::from_millis(200);

impl World {
    /// Moves synchronizations along `pending -> running -> success|error` as time passes (or as
    /// they are polled), applying their effects once when they finish.
    pub fn advance(&mut self) {
        let ids: Vec<String> = self
            .syncs
            .values()
            .filter(|s| matches!(s.status, SyncStatus::Pending | SyncStatus::Running))
            .map(|s| s.id.clone())
            .collect();
        for id in ids {
            let (elapsed, polls) = {
                let s = &self.syncs[&id];
                (s.started.elapsed(), s.polls)
            };
            if elapsed >= SYNC_DONE_AFTER || polls >= 2 {
                self.finish_sync(&id);
            } else if elapsed >= SYNC_RUNNING_AFTER || polls >= 1 {
                let s = self.syncs.get_mut(&id).expect("listed");
                s.status = SyncStatus::Running;
                s.updated_at = Utc::now();
            }
        }
    }

    fn finish_sync(&mut self, id: &str) {
        self.version += 1;
        let data = self.data.clone();
        let now = Utc::now();
        let s = self.syncs.get_mut(id).expect("known sync");
        s.updated_at = now;
        let idx = s.account;
        if let Some((code, detail)) = s.planned_error {
            s.status = SyncStatus::Error;
            let mut meta = Map::new();
            if code == "authorizationInvalid" {
                meta.insert(
                    "financialInstitutionResponse".into(),
                    json!({
                        "statusCode": 401,
                        "body": "{\"error\":\"consent_expired\"}",
                        "requestId": format!("{:032x}", mix(idx as u64 ^ 0xFEED)),
                        "timestamp": ts(now, TsStyle::Millis),
                        "requestUri": "https://bank.example.invalid/psd2/v1/accounts"
                    }),
                );
            }
            s.errors = vec![ApiError::error_object(code, detail, meta)];
            self.accounts[idx].latest_sync = id.to_string();
            return;
        }
        s.status = SyncStatus::Success;
        let subtype = s.subtype;
        // API-created syncs of any transactions subtype settle pending (the sandbox's model
        // the other tests rely on); Ponto's scheduled plain one does not (see background_sync).
        let settles = !(s.background && subtype == "accountTransactions");
        let st = &mut self.accounts[idx];
        st.latest_sync = id.to_string();
        st.synchronized_at = now;
        if subtype == "accountDetails" {
            return;
        }
        st.latest_tx_sync = id.to_string();
        let mut updated = Vec::new();
        let mut updated_pending = Vec::new();
        // 1. Back-dated bookings reported late by the bank.
        for (anchor, rec) in std::mem::take(&mut st.hidden_late) {
            updated.push(st.book(anchor, rec, now));
        }
        let top = data.accounts[idx].booked as i64 - 1;
        // 2. Pending transactions settle under new ids, then 3. new bookings of today.
        let settling = if settles {
            std::mem::take(&mut st.pending)
        } else {
            Vec::new()
        };
        let mut fresh = Vec::new();
        for p in settling.iter().rev() {
            let mut rec = make_extra(&data, idx, st, data.anchor, true);
            rec.attrs.amount = p.attrs.amount;
            rec.attrs.counterpart_name = p.attrs.counterpart_name.clone();
            rec.attrs.remittance_information = p.attrs.remittance_information.clone();
            fresh.push(rec);
        }
        for _ in 0..std::mem::take(&mut st.queued_new) {
            fresh.push(make_extra(&data, idx, st, data.anchor, true));
        }
        for rec in fresh {
            updated.push(st.book(top, rec, now));
        }
        if !updated.is_empty() {
            st.balance_changed_at = now;
        }
        if subtype == "accountTransactionsWithUnsettled" || !settling.is_empty() {
            let p = make_extra(&data, idx, st, data.anchor, false);
            st.pending.insert(0, p.clone());
            updated_pending.push(p);
        }
        updated.reverse(); // newest first
        let s = self.syncs.get_mut(id).expect("known sync");
        s.updated = updated;
        s.updated_pending = updated_pending;
    }

    /// Creates a synchronization, or refuses a too-soon repeat.
    pub fn create_sync(
        &mut self,
        idx: usize,
        subtype: &'static str,
        customer_online: bool,
    ) -> Result<String, ApiError> {
        let cooldown = self.settings.sync_cooldown;
        let st = &self.accounts[idx];
        if let Some(t) = st.last_created.get(subtype)
            && t.elapsed() < cooldown
        {
            return Err(ApiError::json_api(
                axum::http::StatusCode::BAD_REQUEST,
                "accountRecentlySynchronized",
                "This type of synchronization was already created recently for the account. Try again later or on the Dashboard.",
            ));
        }
        let planned_error = if st.readonly {
            Some((
                "financialInstitutionUnavailable",
                "The financial institution is under maintenance; the account's data is available read-only. Try again later.",
            ))
        } else if st.consent_fault || st.consent_expires <= Utc::now() {
            Some((
                "authorizationInvalid",
                "The authorization for this account is no longer valid. Ask the customer to reauthorize the account.",
            ))
        } else {
            None
        };
        let id = self.new_uuid();
        let now = Utc::now();
        self.accounts[idx]
            .last_created
            .insert(subtype, Instant::now());
        self.syncs.insert(
            id.clone(),
            Sync {
                planned_error,
                customer_online,
                ..Sync::pending(id.clone(), idx, subtype, now)
            },
        );
        Ok(id)
    }

    /// Ponto's own scheduled synchronization (customerOnline false), finished at once: the
    /// bank's late and queued bookings become visible as at any transactions synchronization.
    /// A plain `accountTransactions` one leaves the pending list alone (Ponto refreshes it only at
    /// `accountTransactionsWithUnsettled` syncs, api-notes §2.6), so nothing settles; the
    /// `accountTransactionsWithUnsettled` one settles and renews pending as API-created syncs do.
    /// It does not start the cooldown of API-created synchronizations.
    pub fn background_sync(&mut self, idx: usize, subtype: &'static str) -> String {
        let id = self.new_uuid();
        let now = Utc::now();
        self.syncs.insert(
            id.clone(),
            Sync {
                created_at: now - Duration::milliseconds(180),
                background: true,
                ..Sync::pending(id.clone(), idx, subtype, now)
            },
        );
        self.finish_sync(&id);
        id
    }

    pub fn sync_json(&self, s: &Sync, with_relationships: bool) -> Value {
        let mut v = json!({
            "type": "synchronization",
            "id": s.id,
            "attributes": {
                "resourceType": "account",
                "resourceId": self.data.accounts[s.account].id,
                "subtype": s.subtype,
                "status": s.status.as_str(),
                "errors": s.errors,
                "customerOnline": s.customer_online,
                "createdAt": ts(s.created_at, TsStyle::Millis),
                "updatedAt": ts(s.updated_at, TsStyle::Millis),
            }
        });
        if with_relationships && s.subtype != "accountDetails" {
            let base = format!("{}/ponto-connect/synchronizations/{}", self.base_url, s.id);
            v["relationships"] = json!({
                "updatedTransactions": {"links": {"related": format!("{base}/updated-transactions"), "meta": {"type": "transaction"}}},
                "updatedPendingTransactions": {"links": {"related": format!("{base}/updated-pending-transactions"), "meta": {"type": "pendingTransaction"}}}
            });
        }
        v
    }
}
