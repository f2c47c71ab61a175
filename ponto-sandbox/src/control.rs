//! The sandbox's own control endpoints under `/_sandbox` (not part of Ponto): seeded accounts,
//! fault injection, queued bookings and Ponto's scheduled synchronizations; and the seeded
//! accounts as they report them.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::faults::{ActiveFault, Fault};
use crate::generator::Generator;
use crate::shared::Shared;
use crate::state::World;

/// What a test needs to know about a seeded account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxAccountInfo {
    pub id: String,
    pub institution_id: String,
    pub institution_name: String,
    /// The IBAN for IBAN accounts, `None` for BBAN ones (US, JP).
    pub iban: Option<String>,
    pub reference: String,
    pub reference_type: String,
    pub currency: String,
    pub subtype: String,
    /// Time zone of the institution (its bookings are stamped at local midnight in it).
    pub time_zone: String,
    /// Booked transactions in the seeded history (late bookings and settlements come on top).
    pub seeded_transactions: u64,
}

pub fn account_infos(data: &Generator) -> Vec<SandboxAccountInfo> {
    data.accounts
        .iter()
        .map(|a| {
            let inst = &data.institutions[a.institution];
            SandboxAccountInfo {
                id: a.id.clone(),
                institution_id: inst.id.clone(),
                institution_name: inst.name.to_string(),
                iban: (a.reference_type == "IBAN").then(|| a.reference.clone()),
                reference: a.reference.clone(),
                reference_type: a.reference_type.to_string(),
                currency: a.currency.to_string(),
                subtype: a.subtype.to_string(),
                time_zone: a.tz.name().to_string(),
                seeded_transactions: a.booked,
            }
        })
        .collect()
}

pub fn apply_fault(w: &mut World, fault: Fault) {
    let idx_of = |w: &World, id: &str| w.data.account(id).map(|a| a.idx as usize);
    match fault {
        Fault::Http { failure, scope } => w.faults.push(ActiveFault::new(failure, scope)),
        Fault::ExpiredConsent { account_id } => {
            if let Some(i) = idx_of(w, &account_id) {
                let st = &mut w.accounts[i];
                st.consent_fault = true;
                st.consent_expires = chrono::Utc::now() - chrono::Duration::days(1);
            }
        }
        Fault::Maintenance { account_id } => {
            if let Some(i) = idx_of(w, &account_id) {
                w.accounts[i].readonly = true;
            }
        }
        Fault::RevokedRefreshToken => w.refresh.values_mut().for_each(|r| r.revoked = true),
        Fault::UsedRefreshToken => w.refresh.values_mut().for_each(|r| r.used = true),
        Fault::ExpiredAccessToken => {
            let now = std::time::Instant::now();
            w.access.values_mut().for_each(|t| t.expires = now);
        }
        Fault::SyncCooldown { secs } => w.settings.sync_cooldown = Duration::from_secs(secs),
        Fault::ClearAll => {
            w.faults.clear();
            let data = w.data.clone();
            for (i, st) in w.accounts.iter_mut().enumerate() {
                if st.consent_fault {
                    st.consent_fault = false;
                    st.consent_expires = chrono::Utc::now() + chrono::Duration::days(90);
                }
                let inst = &data.institutions[data.accounts[i].institution];
                st.readonly = inst.maintenance_type == Some("financialInstitution");
            }
        }
    }
}

pub async fn control_accounts(State(sh): State<Arc<Shared>>) -> Response {
    axum::Json(account_infos(&sh.data)).into_response()
}

pub async fn control_fault(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Fault>(&body) {
        Ok(f) => {
            let mut w = sh.world.lock().expect("world lock");
            apply_fault(&mut w, f);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("not a fault: {e}. Example: {{\"kind\":\"http\",\"failure\":{{\"kind\":\"serverError\",\"status\":503}},\"scope\":{{\"times\":2}}}}\n"),
        )
            .into_response(),
    }
}

pub async fn control_clear(State(sh): State<Arc<Shared>>) -> Response {
    let mut w = sh.world.lock().expect("world lock");
    apply_fault(&mut w, Fault::ClearAll);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct AddTransactions {
    count: u32,
}

pub async fn control_add_transactions(
    State(sh): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(req) = serde_json::from_slice::<AddTransactions>(&body) else {
        return (StatusCode::BAD_REQUEST, "expected {\"count\": n}\n").into_response();
    };
    let Some(a) = sh.data.account(&id) else {
        return (StatusCode::NOT_FOUND, "unknown account id\n").into_response();
    };
    let idx = a.idx as usize;
    sh.world.lock().expect("world lock").accounts[idx].queued_new += req.count;
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct BackgroundSync {
    #[serde(default)]
    subtype: Option<String>,
}

pub async fn control_background_sync(
    State(sh): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let req = if body.iter().all(u8::is_ascii_whitespace) {
        BackgroundSync { subtype: None }
    } else {
        match serde_json::from_slice::<BackgroundSync>(&body) {
            Ok(r) => r,
            Err(_) => {
                return (
                    StatusCode::BAD_REQUEST,
                    "expected {} or {\"subtype\": \"accountTransactions\" | \"accountTransactionsWithUnsettled\"}\n",
                )
                    .into_response();
            }
        }
    };
    let subtype: &'static str = match req.subtype.as_deref() {
        None | Some("accountTransactions") => "accountTransactions",
        Some("accountTransactionsWithUnsettled") => "accountTransactionsWithUnsettled",
        Some(_) => {
            return (
                StatusCode::BAD_REQUEST,
                "subtype must be accountTransactions or accountTransactionsWithUnsettled\n",
            )
                .into_response();
        }
    };
    let Some(a) = sh.data.account(&id) else {
        return (StatusCode::NOT_FOUND, "unknown account id\n").into_response();
    };
    let idx = a.idx as usize;
    let sync_id = sh
        .world
        .lock()
        .expect("world lock")
        .background_sync(idx, subtype);
    (
        StatusCode::CREATED,
        axum::Json(serde_json::json!({ "id": sync_id })),
    )
        .into_response()
}
