//! Cursor paging (`page[limit|before|after]`) and the links and meta of a paged collection.

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

use super::{ApiResult, json_doc, ok_json};
use crate::errors::ApiError;
use crate::http::query_pairs;

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

pub(super) fn paging_links_meta(
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
pub(super) fn page_range(ids: &[&str], p: &Paging, what: &str) -> Result<(usize, usize), ApiError> {
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

pub(super) fn collection<T: Serialize>(
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
