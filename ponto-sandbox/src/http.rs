//! Request plumbing shared by the API and the OAuth endpoints: the state every handler extracts
//! and the raw query parser (Ponto's repeated and bracketed keys).

use std::sync::Arc;

use axum::extract::State;

use crate::shared::Shared;

pub type S = State<Arc<Shared>>;

pub fn query_pairs(q: &Option<String>) -> Vec<(String, String)> {
    q.as_deref()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}
