//! `/synchronizations`: creating and polling them, and the transactions each one updated.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::paging::parse_paging;
use super::transactions::small_tx_list;
use super::{ApiResult, Single, ok_json, parse_body, required_str, world_for};
use crate::errors::ApiError;
use crate::http::S;
use crate::shared::Shared;
use crate::state::{Caller, World};

pub async fn create_sync(State(sh): S, h: HeaderMap, body: Bytes) -> ApiResult {
    let v = parse_body(&body)?;
    let (mut w, c) = world_for(&sh, &h)?;
    if v.pointer("/data/type").and_then(Value::as_str) != Some("synchronization") {
        return Err(ApiError::bad_attribute(
            "/data/type",
            "type",
            "data.type must be \"synchronization\".",
        ));
    }
    let resource_type = required_str(&v, "resourceType")?;
    let resource_id = required_str(&v, "resourceId")?;
    let subtype = required_str(&v, "subtype")?;
    let ip = required_str(&v, "customerIpAddress")?;
    if resource_type != "account" {
        return Err(ApiError::bad_attribute(
            "/data/attributes/resourceType",
            "resourceType",
            "resourceType must be \"account\".",
        ));
    }
    let subtype: &'static str = match subtype {
        "accountDetails" => "accountDetails",
        "accountTransactions" => "accountTransactions",
        "accountTransactionsWithUnsettled" => "accountTransactionsWithUnsettled",
        _ => {
            return Err(ApiError::bad_attribute(
                "/data/attributes/subtype",
                "subtype",
                "subtype must be one of accountDetails, accountTransactions, accountTransactionsWithUnsettled.",
            ));
        }
    };
    let idx = w.account_index(&c, resource_id)?;
    let id = w.create_sync(idx, subtype, !ip.is_empty())?;
    let s = &w.syncs[&id];
    ok_json(
        StatusCode::CREATED,
        &Single {
            data: w.sync_json(s, false),
        },
    )
}

fn sync_for<'a>(w: &'a World, c: &Caller, id: &str) -> Result<&'a crate::state::Sync, ApiError> {
    w.syncs
        .get(id)
        .filter(|s| c.accounts.contains(&s.account))
        .ok_or_else(|| ApiError::not_found("synchronization"))
}

pub async fn get_sync(State(sh): S, h: HeaderMap, Path(id): Path<String>) -> ApiResult {
    let (mut w, c) = world_for(&sh, &h)?;
    sync_for(&w, &c, &id)?;
    if let Some(s) = w.syncs.get_mut(&id) {
        s.polls += 1;
    }
    w.advance();
    let s = &w.syncs[&id];
    ok_json(
        StatusCode::OK,
        &Single {
            data: w.sync_json(s, true),
        },
    )
}

pub async fn updated_transactions(
    State(sh): S,
    h: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    updated_list(sh, h, id, q, false).await
}

pub async fn updated_pending_transactions(
    State(sh): S,
    h: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    updated_list(sh, h, id, q, true).await
}

async fn updated_list(
    sh: Arc<Shared>,
    h: HeaderMap,
    id: String,
    q: Option<String>,
    pending: bool,
) -> ApiResult {
    let p = parse_paging(&q, &[])?;
    let (w, c) = world_for(&sh, &h)?;
    let s = sync_for(&w, &c, &id)?;
    let account_id = w.data.accounts[s.account].id.clone();
    let (records, kind, path) = if pending {
        (
            &s.updated_pending,
            "pendingTransaction",
            "updated-pending-transactions",
        )
    } else {
        (&s.updated, "transaction", "updated-transactions")
    };
    let url = format!(
        "{}/ponto-connect/synchronizations/{}/{}",
        w.base_url, id, path
    );
    small_tx_list(&w, kind, records, &account_id, &url, &p, json!({}))
}
