//! The Ponto Connect resource endpoints under `/ponto-connect`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use crate::Shared;
use crate::errors::{ApiError, JSON_API};
use crate::generator::{Institution, TsStyle, TxAttributes, TxRecord, ts};
use crate::http::{S, query_pairs};
use crate::money::Amount;
use crate::state::{Caller, Key, Slot, World};

type ApiResult = Result<Response, ApiError>;

pub fn jsonapi(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, JSON_API)], body).into_response()
}

fn ok_json<T: Serialize>(status: StatusCode, v: &T) -> ApiResult {
    let mut body = Vec::with_capacity(1024);
    serde_json::to_writer(&mut body, v).map_err(|e| {
        ApiError::json_api(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internalServerError",
            format!("serialisation failed: {e}"),
        )
    })?;
    Ok((status, [(header::CONTENT_TYPE, JSON_API)], body).into_response())
}

fn bearer(h: &HeaderMap) -> Option<&str> {
    h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
}

pub struct Paging {
    pub limit: usize,
    pub before: Option<String>,
    pub after: Option<String>,
    /// Query parameters other than paging (filters), kept in the links.
    pub rest: Vec<(String, String)>,
}

/// `page[limit|before|after]`, also accepting the bare `limit|before|after` of older fixtures.
pub fn parse_paging(q: &Option<String>, allowed_filters: &[&str]) -> Result<Paging, ApiError> {
    let mut p = Paging {
        limit: 10,
        before: None,
        after: None,
        rest: Vec::new(),
    };
    for (k, v) in query_pairs(q) {
        match k.as_str() {
            "page[limit]" | "limit" => {
                p.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_parameter(
                            &k,
                            format!("{k} must be an integer between 1 and 100, got {v:?}."),
                        )
                    })?
            }
            "page[before]" | "before" => p.before = Some(v),
            "page[after]" | "after" => p.after = Some(v),
            _ if allowed_filters.contains(&k.as_str()) => p.rest.push((k, v)),
            _ if k.starts_with("filter[") => {
                return Err(ApiError::bad_parameter(
                    &k,
                    format!("{k} is not a supported filter."),
                ));
            }
            _ => {} // Unknown parameters are ignored, as HTTP APIs commonly do.
        }
    }
    if p.before.is_some() && p.after.is_some() {
        return Err(ApiError::bad_parameter(
            "page[before]",
            "page[before] and page[after] cannot be combined.",
        ));
    }
    Ok(p)
}

fn link(
    url: &str,
    rest: &[(String, String)],
    cursor: Option<(&str, &str)>,
    limit: usize,
) -> String {
    let mut q = String::new();
    for (k, v) in rest {
        // Brackets stay literal, as Ponto writes them; values are percent-encoded.
        q.push_str(k);
        q.push('=');
        q.extend(form_urlencoded::byte_serialize(v.as_bytes()));
        q.push('&');
    }
    if let Some((name, id)) = cursor {
        q.push_str(&format!("page[{name}]={id}&"));
    }
    format!("{url}?{q}page[limit]={limit}")
}

fn paging_links_meta(
    url: &str,
    p: &Paging,
    first_id: Option<&str>,
    last_id: Option<&str>,
    has_prev: bool,
    has_next: bool,
) -> (Value, Value) {
    let mut links = json!({ "first": link(url, &p.rest, None, p.limit) });
    let before = if has_prev {
        first_id.or(p.after.as_deref())
    } else {
        None
    };
    let after = if has_next {
        last_id.or(p.before.as_deref())
    } else {
        None
    };
    if let Some(b) = before {
        links["prev"] = json!(link(url, &p.rest, Some(("before", b)), p.limit));
    }
    if let Some(a) = after {
        links["next"] = json!(link(url, &p.rest, Some(("after", a)), p.limit));
    }
    let paging = json!({ "limit": p.limit, "before": before, "after": after });
    (links, paging)
}

/// Cursor paging over a short in-memory list (accounts, institutions, pending, updated).
fn page_range(ids: &[&str], p: &Paging, what: &str) -> Result<(usize, usize), ApiError> {
    let find = |c: &str, name: &str| {
        ids.iter().position(|i| *i == c).ok_or_else(|| {
            ApiError::bad_parameter(
                name,
                format!("page[{name}] is not the id of a listed {what}."),
            )
        })
    };
    Ok(if let Some(a) = &p.after {
        let i = find(a, "after")? + 1;
        (i, (i + p.limit).min(ids.len()))
    } else if let Some(b) = &p.before {
        let end = find(b, "before")?;
        (end.saturating_sub(p.limit), end)
    } else {
        (0, p.limit.min(ids.len()))
    })
}

fn collection<T: Serialize>(
    url: &str,
    p: &Paging,
    items: Vec<T>,
    ids: &[&str],
    range: (usize, usize),
    mut meta: Value,
) -> ApiResult {
    let (s, e) = range;
    let (links, paging) = paging_links_meta(
        url,
        p,
        ids.get(s).copied().filter(|_| e > s),
        ids.get(e.wrapping_sub(1)).copied().filter(|_| e > s),
        s > 0,
        e < ids.len(),
    );
    meta["paging"] = paging;
    ok_json(StatusCode::OK, &json_doc(items, links, meta))
}

#[derive(Serialize)]
struct Doc<T> {
    data: T,
    links: Value,
    meta: Value,
}

fn json_doc<T: Serialize>(data: T, links: Value, meta: Value) -> Doc<T> {
    Doc { data, links, meta }
}

#[derive(Serialize)]
struct Single<T> {
    data: T,
}

// ---------------------------------------------------------------------------------------------
// Root and institutions

pub async fn root(State(sh): S) -> ApiResult {
    let w = sh.world.lock().expect("world lock");
    let b = format!("{}/ponto-connect", w.base_url);
    let body = json!({"links": {
        "accounts": format!("{b}/accounts"),
        "account": format!("{b}/accounts/{{accountId}}"),
        "account.transactions": format!("{b}/accounts/{{accountId}}/transactions"),
        "account.pendingTransactions": format!("{b}/accounts/{{accountId}}/pending-transactions"),
        "account.reauthorizationRequests": format!("{b}/accounts/{{accountId}}/reauthorization-requests"),
        "financialInstitutions": format!("{b}/financial-institutions"),
        "financialInstitution": format!("{b}/financial-institutions/{{financialInstitutionId}}"),
        "synchronizations": format!("{b}/synchronizations"),
        "synchronization": format!("{b}/synchronizations/{{synchronizationId}}"),
        "synchronization.updatedTransactions": format!("{b}/synchronizations/{{synchronizationId}}/updated-transactions"),
        "synchronization.updatedPendingTransactions": format!("{b}/synchronizations/{{synchronizationId}}/updated-pending-transactions"),
        "oauth2": {"token": format!("{b}/oauth2/token"), "revoke": format!("{b}/oauth2/revoke")},
        "userinfo": format!("{b}/userinfo"),
    }});
    Ok(jsonapi(StatusCode::OK, body.to_string()))
}

fn institution_json(i: &Institution) -> Value {
    let products: Vec<&str> = if i.payments_enabled {
        vec!["sepaCreditTransfer"]
    } else {
        vec![]
    };
    json!({
        "type": "financialInstitution",
        "id": i.id,
        "attributes": {
            "name": i.name,
            "bic": i.bic,
            "country": i.country,
            "status": i.status,
            "deprecated": i.deprecated,
            "timeZone": i.time_zone,
            "logoUrl": format!("https://example.invalid/logos/{}.svg", i.bic.to_lowercase()),
            "primaryColor": i.primary_color,
            "secondaryColor": i.secondary_color,
            "maintenanceType": i.maintenance_type,
            "maintenanceFrom": i.maintenance_from,
            "maintenanceTo": i.maintenance_to,
            "sharedBrandName": i.shared_brand_name,
            "sharedBrandReference": i.shared_brand_reference,
            "paymentsEnabled": i.payments_enabled,
            "paymentsProductTypes": products,
            "bulkPaymentsEnabled": i.payments_enabled,
            "bulkPaymentsProductTypes": products,
            "periodicPaymentsEnabled": i.payments_enabled,
            "periodicPaymentsProductTypes": products,
            "futureDatedPaymentsAllowed": i.payments_enabled,
        }
    })
}

const FI_FILTERS: &[&str] = &[
    "filter[name][contains]",
    "filter[name][eq]",
    "filter[country][eq]",
    "filter[country][in]",
    "filter[status][eq]",
];

/// Institutions a request may see: all of them without a token, the organisation's with one.
fn visible_institutions<'a>(w: &'a World, h: &HeaderMap) -> Result<Vec<&'a Institution>, ApiError> {
    if bearer(h).is_none() {
        return Ok(w.data.institutions.iter().collect());
    }
    w.caller(bearer(h))?;
    Ok(w.data
        .institutions
        .iter()
        .enumerate()
        .filter(|(n, _)| w.data.accounts.iter().any(|a| a.institution == *n))
        .map(|(_, i)| i)
        .collect())
}

pub async fn institutions(State(sh): S, h: HeaderMap, RawQuery(q): RawQuery) -> ApiResult {
    let p = parse_paging(&q, FI_FILTERS)?;
    let w = sh.world.lock().expect("world lock");
    let mut list = visible_institutions(&w, &h)?;
    for (k, v) in &p.rest {
        let lc = v.to_lowercase();
        list.retain(|i| match k.as_str() {
            "filter[name][contains]" => i.name.to_lowercase().contains(&lc),
            "filter[name][eq]" => i.name == v,
            "filter[country][eq]" => i.country == Some(v.as_str()),
            "filter[country][in]" => i.country.is_some_and(|c| v.split(',').any(|x| x == c)),
            "filter[status][eq]" => i.status == v,
            _ => true,
        });
    }
    let ids: Vec<&str> = list.iter().map(|i| i.id.as_str()).collect();
    let range = page_range(&ids, &p, "financial institution")?;
    let items: Vec<Value> = list[range.0..range.1]
        .iter()
        .map(|i| institution_json(i))
        .collect();
    let url = format!("{}/ponto-connect/financial-institutions", w.base_url);
    collection(&url, &p, items, &ids, range, json!({}))
}

pub async fn institution(State(sh): S, h: HeaderMap, Path(id): Path<String>) -> ApiResult {
    let w = sh.world.lock().expect("world lock");
    let list = visible_institutions(&w, &h)?;
    let i = list
        .into_iter()
        .find(|i| i.id == id)
        .ok_or_else(|| ApiError::not_found("financialInstitution"))?;
    Ok(jsonapi(
        StatusCode::OK,
        json!({ "data": institution_json(i) }).to_string(),
    ))
}

// ---------------------------------------------------------------------------------------------
// Accounts

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

fn world_for<'a>(
    sh: &'a Shared,
    h: &HeaderMap,
) -> Result<(std::sync::MutexGuard<'a, World>, Caller), ApiError> {
    let mut w = sh.world.lock().expect("world lock");
    w.advance();
    let c = w.caller(bearer(h))?;
    Ok((w, c))
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

// ---------------------------------------------------------------------------------------------
// Transactions

#[derive(Serialize)]
struct TypeId<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
}

#[derive(Serialize)]
struct Related<'a> {
    related: &'a str,
}

#[derive(Serialize)]
struct RelOne<'a> {
    data: TypeId<'a>,
    links: Related<'a>,
}

#[derive(Serialize)]
struct TxRels<'a> {
    account: RelOne<'a>,
}

#[derive(Serialize)]
struct TxResource<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    attributes: &'a TxAttributes,
    relationships: TxRels<'a>,
}

fn tx_resource<'a>(
    kind: &'static str,
    r: &'a TxRecord,
    account_id: &'a str,
    account_url: &'a str,
) -> TxResource<'a> {
    TxResource {
        kind,
        id: &r.id,
        attributes: &r.attrs,
        relationships: TxRels {
            account: RelOne {
                data: TypeId {
                    kind: "account",
                    id: account_id,
                },
                links: Related {
                    related: account_url,
                },
            },
        },
    }
}

/// A rendered transactions page: the body, the id to continue after (when a next page exists)
/// and the world version the page was read at.
pub type RenderedPage = (Vec<u8>, Option<String>, u64);

fn render_tx_page(sh: &Shared, idx: usize, p: &Paging) -> Result<RenderedPage, ApiError> {
    let (page, meta, url, version) = {
        let w = sh.world.lock().expect("world lock");
        let key = |cur: &Option<String>, name: &str| -> Result<Option<Key>, ApiError> {
            cur.as_deref()
                .map(|s| {
                    w.key_of(idx, s).ok_or_else(|| {
                        ApiError::bad_parameter(
                            &format!("page[{name}]"),
                            format!("page[{name}] is not the id of a transaction of this account."),
                        )
                    })
                })
                .transpose()
        };
        let after = key(&p.after, "after")?;
        let before = key(&p.before, "before")?;
        let page = w.page(idx, p.limit, after, before);
        let st = &w.accounts[idx];
        let meta = json!({
            "synchronizedAt": ts(st.synchronized_at, TsStyle::Millis),
            "latestSynchronization": w.syncs.get(&st.latest_tx_sync).map(|s| w.sync_json(s, false)),
        });
        let url = format!(
            "{}/ponto-connect/accounts/{}/transactions",
            w.base_url, w.data.accounts[idx].id
        );
        (page, meta, url, w.version)
    };
    // The world lock is released: seeded transactions are generated without it.
    let data = &sh.data;
    let a = &data.accounts[idx];
    let make = |slots: Vec<(String, Slot)>| -> Vec<TxRecord> {
        slots
            .into_iter()
            .map(|(_, s)| match s {
                Slot::Base(k) => data.booked(a, k),
                Slot::Stored(r) => *r,
            })
            .collect()
    };
    let mut slots = page.slots;
    // Big pages are derived on two threads: the machine has two cores.
    let records: Vec<TxRecord> = if slots.len() >= 40 {
        let second = slots.split_off(slots.len() / 2);
        std::thread::scope(|sc| {
            let h = sc.spawn(|| make(second));
            let mut first = make(slots);
            first.extend(h.join().unwrap_or_default());
            first
        })
    } else {
        make(slots)
    };
    let account_url = format!("{}/ponto-connect/accounts/{}", sh.base_url(), a.id);
    let items: Vec<TxResource> = records
        .iter()
        .map(|r| tx_resource("transaction", r, &a.id, &account_url))
        .collect();
    let mut meta = meta;
    let (links, paging) = paging_links_meta(
        &url,
        p,
        records.first().map(|r| r.id.as_str()),
        records.last().map(|r| r.id.as_str()),
        page.has_prev,
        page.has_next,
    );
    meta["paging"] = paging;
    let next = if page.has_next {
        records.last().map(|r| r.id.clone())
    } else {
        None
    };
    let mut body = Vec::with_capacity(1200 * items.len() + 2048);
    serde_json::to_writer(&mut body, &json_doc(items, links, meta)).map_err(|e| {
        ApiError::json_api(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internalServerError",
            format!("serialisation failed: {e}"),
        )
    })?;
    Ok((body, next, version))
}

pub async fn transactions(
    State(sh): S,
    h: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = parse_paging(&q, &[])?;
    let (idx, prefetched, now_version) = {
        let (w, c) = world_for(&sh, &h)?;
        let idx = w.account_index(&c, &id)?;
        let mut slot = sh.prefetch.lock().expect("prefetch lock");
        let hit = match (&*slot, &p.after) {
            (Some(pf), Some(after))
                if pf.account == idx
                    && pf.after == *after
                    && pf.limit == p.limit
                    && pf.version == w.version
                    && p.rest.is_empty() =>
            {
                slot.take().map(|pf| pf.body)
            }
            _ => None,
        };
        (idx, hit, w.version)
    };
    let rendered = match prefetched {
        // Derived from the same world state, or discarded.
        Some(job) => job.await.ok().flatten().filter(|r| r.2 == now_version),
        None => None,
    };
    let (body, next, version) = match rendered {
        Some(r) => r,
        None => render_tx_page(&sh, idx, &p)?,
    };
    // A client walking `links.next` asks for the following page next: derive it while this
    // one travels and is parsed (read-only work; a sync finishing in between bumps the world
    // version and the prefetched page is discarded).
    if let Some(after) = next {
        let sh2 = sh.clone();
        let limit = p.limit;
        let after2 = after.clone();
        let job = tokio::task::spawn_blocking(move || {
            let p = Paging {
                limit,
                before: None,
                after: Some(after2),
                rest: Vec::new(),
            };
            render_tx_page(&sh2, idx, &p).ok()
        });
        *sh.prefetch.lock().expect("prefetch lock") = Some(crate::Prefetch {
            account: idx,
            after,
            limit,
            version,
            body: job,
        });
    }
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, JSON_API)], body).into_response())
}

pub async fn transaction(
    State(sh): S,
    h: HeaderMap,
    Path((id, tid)): Path<(String, String)>,
) -> ApiResult {
    let rec = {
        let (w, c) = world_for(&sh, &h)?;
        let idx = w.account_index(&c, &id)?;
        match w.key_of(idx, &tid) {
            Some((k, 0)) => sh.data.booked(&sh.data.accounts[idx], k as u64),
            Some(key) => w.accounts[idx].overlay[&key].clone(),
            None => return Err(ApiError::not_found("transaction")),
        }
    };
    let account_url = format!("{}/ponto-connect/accounts/{}", sh.base_url(), id);
    ok_json(
        StatusCode::OK,
        &Single {
            data: tx_resource("transaction", &rec, &id, &account_url),
        },
    )
}

fn small_tx_list(
    w: &World,
    kind: &'static str,
    records: &[TxRecord],
    account_id: &str,
    url: &str,
    p: &Paging,
    meta: Value,
) -> ApiResult {
    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    let range = page_range(&ids, p, kind)?;
    let account_url = format!("{}/ponto-connect/accounts/{}", w.base_url, account_id);
    let items: Vec<TxResource> = records[range.0..range.1]
        .iter()
        .map(|r| tx_resource(kind, r, account_id, &account_url))
        .collect();
    collection(url, p, items, &ids, range, meta)
}

pub async fn pending_transactions(
    State(sh): S,
    h: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = parse_paging(&q, &[])?;
    let (w, c) = world_for(&sh, &h)?;
    let idx = w.account_index(&c, &id)?;
    let st = &w.accounts[idx];
    let meta = json!({
        "synchronizedAt": ts(st.synchronized_at, TsStyle::Millis),
        "latestSynchronization": w.syncs.get(&st.latest_tx_sync).map(|s| w.sync_json(s, false)),
    });
    let url = format!(
        "{}/ponto-connect/accounts/{}/pending-transactions",
        w.base_url, id
    );
    small_tx_list(&w, "pendingTransaction", &st.pending, &id, &url, &p, meta)
}

pub async fn pending_transaction(
    State(sh): S,
    h: HeaderMap,
    Path((id, tid)): Path<(String, String)>,
) -> ApiResult {
    let (w, c) = world_for(&sh, &h)?;
    let idx = w.account_index(&c, &id)?;
    let rec = w.accounts[idx]
        .pending
        .iter()
        .find(|r| r.id == tid)
        .ok_or_else(|| ApiError::not_found("pendingTransaction"))?;
    let account_url = format!("{}/ponto-connect/accounts/{}", w.base_url, id);
    ok_json(
        StatusCode::OK,
        &Single {
            data: tx_resource("pendingTransaction", rec, &id, &account_url),
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Synchronizations

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice::<Value>(body).map_err(|e| {
        let mut err = ApiError::json_api(
            StatusCode::BAD_REQUEST,
            "invalidRequestBody",
            format!("The request body is not valid JSON: {e}."),
        );
        if let ApiError::JsonApi { source, .. } = &mut err {
            *source = Some(json!({"pointer": ""}));
        }
        err
    })
}

fn required_str<'a>(v: &'a Value, attr: &str) -> Result<&'a str, ApiError> {
    v.pointer(&format!("/data/attributes/{attr}"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::bad_attribute(
                &format!("/data/attributes/{attr}"),
                attr,
                format!("{attr} is required and must be a non-empty string."),
            )
        })
}

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

// ---------------------------------------------------------------------------------------------
// Reauthorization and userinfo

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

pub async fn userinfo(State(sh): S, h: HeaderMap) -> ApiResult {
    let (w, c) = world_for(&sh, &h)?;
    // Flat JSON, not JSON:API (api-notes §1.4; the spec's example agrees).
    let mut body = json!({
        "sub": w.data.organization_id,
        "onboardingComplete": true,
        "paymentsActivated": false,
        "paymentsActivationRequested": false,
        "paymentRequestsActivated": false,
        "paymentRequestsActivationRequested": false,
        "representativeOrganizationId": null,
        "representativeOrganizationName": null,
    });
    if c.scope.split(' ').any(|s| s == "name") {
        body["name"] = json!(w.data.organization_name);
    }
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response())
}

pub async fn not_found() -> ApiError {
    ApiError::json_api(
        StatusCode::NOT_FOUND,
        "routeNotFound",
        "No API endpoint matches this path. Check the URL against the API root links.",
    )
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::json_api(
        StatusCode::METHOD_NOT_ALLOWED,
        "methodNotAllowed",
        "This endpoint does not support this HTTP method.",
    )
}
