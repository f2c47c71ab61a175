//! `/financial-institutions`: the institutions a request may see, filtered and paged.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::paging::{collection, page_range, parse_paging};
use super::{ApiResult, bearer, jsonapi};
use crate::errors::ApiError;
use crate::generator::Institution;
use crate::http::S;
use crate::state::World;

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
