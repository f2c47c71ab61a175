//! `/accounts`: the organisation's accounts, their removal from an integration, and
//! reauthorization requests.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};

use super::paging::{collection, page_range, parse_paging};
use super::{ApiResult, Single, bearer, jsonapi, ok_json, parse_body, required_str, world_for};
use crate::errors::ApiError;
use crate::generator::{TsStyle, ts};
use crate::http::S;
use crate::money::Amount;
use crate::state::World;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AccountAttributes<'a> {
    reference: &'a str,
    reference_type: &'a str,
    description: &'a str,
    product: Option<&'a str>,
    holder_name: Option<&'a str>,
    subtype: &'a str,
    currency: &'a str,
    current_balance: Amount,
    current_balance_changed_at: String,
    current_balance_reference_date: String,
    current_balance_variation_observed_at: String,
    available_balance: Amount,
    available_balance_changed_at: String,
    available_balance_reference_date: String,
    available_balance_variation_observed_at: String,
    authorized_at: String,
    authorization_expiration_expected_at: String,
    deprecated: bool,
    internal_reference: String,
}

#[derive(Serialize)]
struct AccountResource<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    attributes: AccountAttributes<'a>,
    meta: Value,
    relationships: Value,
}

fn account_resource(w: &World, idx: usize) -> AccountResource<'_> {
    let a = &w.data.accounts[idx];
    let st = &w.accounts[idx];
    let inst = &w.data.institutions[a.institution];
    let (current, available) = w.balance_minor(idx);
    let changed = ts(st.balance_changed_at, TsStyle::Millis);
    let observed = ts(
        st.balance_changed_at + chrono::Duration::milliseconds(18),
        TsStyle::Millis,
    );
    let refdate = ts(
        crate::generator::local_midnight(a.tz, w.data.anchor),
        TsStyle::Millis,
    );
    let base = format!("{}/ponto-connect", w.base_url);
    let latest = w.syncs.get(&st.latest_sync).map(|s| w.sync_json(s, false));
    AccountResource {
        kind: "account",
        id: &a.id,
        attributes: AccountAttributes {
            reference: &a.reference,
            reference_type: a.reference_type,
            description: a.description,
            product: a.product,
            holder_name: a.holder_name,
            subtype: a.subtype,
            currency: a.currency,
            current_balance: Amount {
                keep_point: current % 7 == 0,
                ..Amount::new(current, a.exponent)
            },
            current_balance_changed_at: changed.clone(),
            current_balance_reference_date: refdate.clone(),
            current_balance_variation_observed_at: observed.clone(),
            available_balance: Amount::new(available, a.exponent),
            available_balance_changed_at: changed,
            available_balance_reference_date: refdate,
            available_balance_variation_observed_at: observed,
            authorized_at: ts(st.authorized_at, TsStyle::Millis),
            authorization_expiration_expected_at: ts(st.consent_expires, TsStyle::Millis),
            deprecated: inst.deprecated,
            internal_reference: crate::generator::uuid_from(a.salt, a.salt.rotate_left(17)),
        },
        meta: json!({
            "availability": if st.readonly { "readonly" } else { "available" },
            "synchronizedAt": ts(st.synchronized_at, TsStyle::Millis),
            "latestSynchronization": latest,
        }),
        relationships: json!({
            "financialInstitution": {
                "data": {"type": "financialInstitution", "id": inst.id},
                "links": {"related": format!("{base}/financial-institutions/{}", inst.id)}
            },
            "transactions": {
                "links": {"related": format!("{base}/accounts/{}/transactions", a.id), "meta": {"type": "transaction"}}
            },
            "pendingTransactions": {
                "links": {"related": format!("{base}/accounts/{}/pending-transactions", a.id), "meta": {"type": "pendingTransaction"}}
            }
        }),
    }
}

pub async fn accounts(State(sh): S, h: HeaderMap, RawQuery(q): RawQuery) -> ApiResult {
    let p = parse_paging(&q, &[])?;
    let (w, c) = world_for(&sh, &h)?;
    let ids: Vec<&str> = c
        .accounts
        .iter()
        .map(|&i| w.data.accounts[i].id.as_str())
        .collect();
    let range = page_range(&ids, &p, "account")?;
    let items: Vec<AccountResource> = c.accounts[range.0..range.1]
        .iter()
        .map(|&i| account_resource(&w, i))
        .collect();
    let url = format!("{}/ponto-connect/accounts", w.base_url);
    collection(&url, &p, items, &ids, range, json!({}))
}

pub async fn account(State(sh): S, h: HeaderMap, Path(id): Path<String>) -> ApiResult {
    let (w, c) = world_for(&sh, &h)?;
    let idx = w.account_index(&c, &id)?;
    ok_json(
        StatusCode::OK,
        &Single {
            data: account_resource(&w, idx),
        },
    )
}

pub async fn delete_account(State(sh): S, h: HeaderMap, Path(id): Path<String>) -> ApiResult {
    let (mut w, c) = world_for(&sh, &h)?;
    let idx = w.account_index(&c, &id)?;
    // Removes the account from this integration only (it stays in Ponto).
    let token = bearer(&h)
        .unwrap_or_default()
        .trim_start_matches("Bearer ")
        .trim()
        .to_string();
    if let Some(integ) = w.access.get(&token).and_then(|t| t.integration.clone())
        && let Some(i) = w.integrations.get_mut(&integ)
    {
        i.accounts.retain(|&a| a != idx);
    }
    Ok(jsonapi(
        StatusCode::OK,
        json!({"data": {"type": "account", "id": id}}).to_string(),
    ))
}

pub async fn reauthorization(
    State(sh): S,
    h: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let v = parse_body(&body)?;
    let (mut w, c) = world_for(&sh, &h)?;
    let idx = w.account_index(&c, &id)?;
    if v.pointer("/data/type").and_then(Value::as_str) != Some("reauthorizationRequest") {
        return Err(ApiError::bad_attribute(
            "/data/type",
            "type",
            "data.type must be \"reauthorizationRequest\".",
        ));
    }
    let redirect = required_str(&v, "redirectUri")?.to_string();
    if !crate::oauth::redirect_allowed(&redirect) {
        return Err(ApiError::bad_attribute(
            "/data/attributes/redirectUri",
            "redirectUri",
            "redirectUri must be an https URL or an http URL on 127.0.0.1 or localhost.",
        ));
    }
    let rid = w.new_uuid();
    w.reauths.insert(
        rid.clone(),
        crate::state::Reauth {
            account: idx,
            redirect_uri: redirect,
            done: false,
        },
    );
    let body = json!({"data": {
        "type": "reauthorizationRequest",
        "id": rid,
        "attributes": {},
        "links": {"redirect": format!("{}/oauth2/reauthorize/{}", w.base_url, rid)}
    }});
    Ok(jsonapi(StatusCode::CREATED, body.to_string()))
}
