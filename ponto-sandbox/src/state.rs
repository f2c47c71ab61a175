//! The sandbox's mutable world: tokens, consents, synchronizations and what they reveal.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};

use crate::errors::ApiError;
use crate::faults::ActiveFault;
use crate::generator::{Generator, TsStyle, h3, local_midnight, mix, ts, uuid_from};

/// Position in an account's newest-first list. Booked transaction `k` of the seeded history is
/// `(k, 0)`; a transaction added later sits just above base `anchor` with `seq >= 1`.
pub type Key = (i64, u64);

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

impl AccountState {
    /// Books `rec` now, placed just after the seeded transaction `anchor` in the newest-first
    /// order: stamped, keyed, counted in the balance and findable by id.
    fn book(
        &mut self,
        anchor: i64,
        mut rec: crate::generator::TxRecord,
        now: DateTime<Utc>,
    ) -> crate::generator::TxRecord {
        rec.attrs.created_at = ts(now, TsStyle::Millis);
        rec.attrs.updated_at = rec.attrs.created_at.clone();
        let key = (anchor, self.next_seq);
        self.next_seq += 1;
        self.extra_sum += rec.attrs.amount.minor;
        self.overlay_ids.insert(rec.id.clone(), key);
        self.overlay.insert(key, rec.clone());
        rec
    }
}

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

pub struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub challenge: String,
    pub scope: String,
    pub accounts: Vec<usize>,
    pub expires: Instant,
    pub used: bool,
    /// Tokens issued from this code, revoked if the code is replayed (RFC 6749 §4.1.2).
    pub integration: Option<String>,
}

pub struct Integration {
    pub accounts: Vec<usize>,
    pub scope: String,
    pub revoked: bool,
}

pub struct AccessToken {
    pub integration: Option<String>,
    pub expires: Instant,
    pub revoked: bool,
}

pub struct RefreshToken {
    pub integration: String,
    pub used: bool,
    pub revoked: bool,
}

pub struct Reauth {
    pub account: usize,
    pub redirect_uri: String,
    pub done: bool,
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

/// Who is calling, after the bearer token was checked.
pub struct Caller {
    pub accounts: Vec<usize>,
    pub scope: String,
}

/// One item of a page: a seeded booking (generated outside the lock) or a stored record.
pub enum Slot {
    Base(u64),
    Stored(Box<crate::generator::TxRecord>),
}

pub struct Page {
    pub slots: Vec<(String, Slot)>,
    pub has_prev: bool,
    pub has_next: bool,
}

const SYNC_RUNNING_AFTER: StdDuration = StdDuration::from_millis(60);
const SYNC_DONE_AFTER: StdDuration = StdDuration::from_millis(200);
const CODE_TTL: StdDuration = StdDuration::from_secs(600);
pub const EXTRA_BASE: u64 = 1 << 40;

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
                        id: id.clone(),
                        account: idx,
                        subtype,
                        started: Instant::now(),
                        created_at: t - Duration::milliseconds(180),
                        updated_at: t,
                        polls: 0,
                        status: SyncStatus::Success,
                        planned_error: None,
                        errors: Vec::new(),
                        updated: Vec::new(),
                        updated_pending: Vec::new(),
                        customer_online: false,
                        background: true,
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

    /// An opaque token shaped like Ponto's: two base64url segments joined by a dot.
    pub fn new_token(&mut self) -> String {
        use base64::Engine;
        self.counter += 1;
        let mut bytes = [0u8; 40];
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&h3(self.nonce, self.counter, i as u64).to_le_bytes());
        }
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}", e.encode(&bytes[..24]), e.encode(&bytes[24..]))
    }

    /// Checks `Authorization: Bearer ...` for a user (authorization-code) token.
    pub fn caller(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let token = authorization
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(ApiError::invalid_token)?;
        let t = self.access.get(token).ok_or_else(ApiError::invalid_token)?;
        if t.revoked || Instant::now() >= t.expires {
            return Err(ApiError::invalid_token());
        }
        // A client-credentials token carries no organisation: user endpoints refuse it.
        let integ = t.integration.as_ref().ok_or_else(ApiError::invalid_token)?;
        let i = self
            .integrations
            .get(integ)
            .ok_or_else(ApiError::invalid_token)?;
        if i.revoked {
            return Err(ApiError::invalid_token());
        }
        Ok(Caller {
            accounts: i.accounts.clone(),
            scope: i.scope.clone(),
        })
    }

    pub fn account_index(&self, caller: &Caller, id: &str) -> Result<usize, ApiError> {
        caller
            .accounts
            .iter()
            .copied()
            .find(|&i| self.data.accounts[i].id == id)
            .ok_or_else(|| ApiError::not_found("account"))
    }

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

    pub fn balance_minor(&self, idx: usize) -> (i64, i64) {
        let a = &self.data.accounts[idx];
        let st = &self.accounts[idx];
        let current = a.opening_minor + st.base_sum + st.extra_sum;
        let pending: i64 = st.pending.iter().map(|p| p.attrs.amount.minor).sum();
        (current, current + pending)
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
                id: id.clone(),
                account: idx,
                subtype,
                started: Instant::now(),
                created_at: now,
                updated_at: now,
                polls: 0,
                status: SyncStatus::Pending,
                planned_error,
                errors: Vec::new(),
                updated: Vec::new(),
                updated_pending: Vec::new(),
                customer_online,
                background: false,
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
                id: id.clone(),
                account: idx,
                subtype,
                started: Instant::now(),
                created_at: now - Duration::milliseconds(180),
                updated_at: now,
                polls: 0,
                status: SyncStatus::Pending,
                planned_error: None,
                errors: Vec::new(),
                updated: Vec::new(),
                updated_pending: Vec::new(),
                customer_online: false,
                background: true,
            },
        );
        self.finish_sync(&id);
        id
    }

    /// Position of a transaction id in the account's list, if it is listed there.
    pub fn key_of(&self, idx: usize, id: &str) -> Option<Key> {
        if let Some(k) = self.accounts[idx].overlay_ids.get(id) {
            return Some(*k);
        }
        let (a, kind, k) = self.data.decode_id(id)?;
        (a == idx && kind == crate::generator::KIND_BOOKED && k < self.data.accounts[idx].booked)
            .then_some((k as i64, 0))
    }

    /// A newest-first page of booked transactions. `after`: older than that key; `before`:
    /// newer than it. The seeded part is never materialised: only its indices are listed.
    pub fn page(&self, idx: usize, limit: usize, after: Option<Key>, before: Option<Key>) -> Page {
        let n = self.data.accounts[idx].booked as i64;
        let st = &self.accounts[idx];
        let id_of = |slot: &Slot| match slot {
            Slot::Base(k) => {
                self.data
                    .encode_id(&self.data.accounts[idx], crate::generator::KIND_BOOKED, *k)
            }
            Slot::Stored(r) => r.id.clone(),
        };
        if let Some(b) = before {
            // Walk up (ascending keys) from `b`, then flip to newest first.
            let mut base = b.0 + 1; // base keys (k, 0) above (b.0, any seq)
            let mut extra = st.overlay.range((b.0, b.1 + 1)..).peekable();
            let mut got: Vec<(Key, Slot)> = Vec::new();
            while got.len() < limit + 1 {
                let bk = (base < n).then_some((base, 0u64));
                let ek = extra.peek().map(|(k, _)| **k);
                match (bk, ek) {
                    (Some(x), Some(y)) if x < y => {
                        got.push((x, Slot::Base(x.0 as u64)));
                        base += 1;
                    }
                    (_, Some(y)) => {
                        let (_, r) = extra.next().expect("peeked");
                        got.push((y, Slot::Stored(Box::new(r.clone()))));
                    }
                    (Some(x), None) => {
                        got.push((x, Slot::Base(x.0 as u64)));
                        base += 1;
                    }
                    (None, None) => break,
                }
            }
            let has_prev = got.len() > limit;
            got.truncate(limit);
            got.reverse();
            let slots = got.into_iter().map(|(_, s)| (id_of(&s), s)).collect();
            return Page {
                slots,
                has_prev,
                has_next: true,
            };
        }
        let start: Key = after.unwrap_or((i64::MAX, 0));
        let mut base = if start.0 == i64::MAX {
            n - 1
        } else if start.1 > 0 {
            start.0
        } else {
            start.0 - 1
        };
        let mut extra = st.overlay.range(..start).rev().peekable();
        let mut got: Vec<Slot> = Vec::new();
        while got.len() < limit + 1 {
            let bk = (base >= 0).then_some((base, 0u64));
            let ek = extra.peek().map(|(k, _)| **k);
            match (bk, ek) {
                (Some(x), Some(y)) if x > y => {
                    got.push(Slot::Base(x.0 as u64));
                    base -= 1;
                }
                (_, Some(_)) => {
                    let (_, r) = extra.next().expect("peeked");
                    got.push(Slot::Stored(Box::new(r.clone())));
                }
                (Some(x), None) => {
                    got.push(Slot::Base(x.0 as u64));
                    base -= 1;
                }
                (None, None) => break,
            }
        }
        let has_next = got.len() > limit;
        got.truncate(limit);
        Page {
            slots: got.into_iter().map(|s| (id_of(&s), s)).collect(),
            has_prev: after.is_some(),
            has_next,
        }
    }

    pub fn issue_tokens(
        &mut self,
        integration: &str,
        with_refresh: bool,
    ) -> (String, Option<String>) {
        let access = self.new_token();
        self.access.insert(
            access.clone(),
            AccessToken {
                integration: Some(integration.to_string()),
                expires: Instant::now() + StdDuration::from_secs(self.settings.access_ttl),
                revoked: false,
            },
        );
        let refresh = with_refresh.then(|| {
            let r = self.new_token();
            self.refresh.insert(
                r.clone(),
                RefreshToken {
                    integration: integration.to_string(),
                    used: false,
                    revoked: false,
                },
            );
            r
        });
        (access, refresh)
    }

    pub fn new_code(&mut self, code: AuthCode) -> String {
        let c = self.new_token();
        self.codes.insert(c.clone(), code);
        c
    }

    pub fn code_ttl() -> StdDuration {
        CODE_TTL
    }

    /// Ends an integration: its access and refresh tokens stop working.
    pub fn revoke_integration(&mut self, integration: &str) {
        if let Some(i) = self.integrations.get_mut(integration) {
            i.revoked = true;
        }
        for t in self.access.values_mut() {
            if t.integration.as_deref() == Some(integration) {
                t.revoked = true;
            }
        }
        for r in self.refresh.values_mut() {
            if r.integration == integration {
                r.revoked = true;
            }
        }
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

/// The newest seeded booking dated on or before `date` (-1 when older than all of them).
fn last_k_on_or_before(data: &Generator, idx: usize, date: chrono::NaiveDate) -> i64 {
    let a = &data.accounts[idx];
    let (mut lo, mut hi) = (0i64, a.booked as i64 - 1);
    let mut best = -1;
    while lo <= hi {
        let mid = (lo + hi) / 2;
        if data.booking_date(a, mid as u64) <= date {
            best = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    best
}

/// A transaction outside the seeded history (late booking, settlement, new booking, pending).
fn make_extra(
    data: &Generator,
    idx: usize,
    st: &mut AccountState,
    date: chrono::NaiveDate,
    booked: bool,
) -> crate::generator::TxRecord {
    let a = &data.accounts[idx];
    st.made += 1;
    let c = EXTRA_BASE + st.made;
    let id = uuid_from(h3(a.salt, 0xE7, st.made), h3(a.salt, 0xE8, st.made));
    let attrs = data.attributes(a, c, date, id.as_bytes(), booked);
    crate::generator::TxRecord { id, attrs }
}
