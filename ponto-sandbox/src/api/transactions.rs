//! `/accounts/{id}/transactions` and `/pending-transactions`: booked transactions (derived from
//! the seed outside the world lock, the next page prefetched) and pending ones.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use serde_json::{Value, json};

use super::paging::{Paging, collection, page_range, paging_links_meta, parse_paging};
use super::{ApiResult, Single, json_doc, ok_json, to_body, world_for};
use crate::errors::{ApiError, JSON_API};
use crate::generator::{TsStyle, TxAttributes, TxRecord, ts};
use crate::http::S;
use crate::shared::{Prefetch, RenderedPage, Shared};
use crate::state::{Key, Slot, World};

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

/// The meta of an account's transaction lists: when it was synchronized, and by which sync.
fn tx_list_meta(w: &World, idx: usize) -> Value {
    let st = &w.accounts[idx];
    json!({
        "synchronizedAt": ts(st.synchronized_at, TsStyle::Millis),
        "latestSynchronization": w.syncs.get(&st.latest_tx_sync).map(|s| w.sync_json(s, false)),
    })
}

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
        let meta = tx_list_meta(&w, idx);
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
    let capacity = 1200 * items.len() + 2048;
    let body = to_body(&json_doc(items, links, meta), capacity)?;
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
        *sh.prefetch.lock().expect("prefetch lock") = Some(Prefetch {
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

pub(super) fn small_tx_list(
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
    let meta = tx_list_meta(&w, idx);
    let url = format!(
        "{}/ponto-connect/accounts/{}/pending-transactions",
        w.base_url, id
    );
    let pending = &w.accounts[idx].pending;
    small_tx_list(&w, "pendingTransaction", pending, &id, &url, &p, meta)
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
