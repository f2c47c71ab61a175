//! The Ponto Connect resource endpoints under `/ponto-connect`, one file per resource; this
//! module holds the JSON:API response and request plumbing they share, the API root and userinfo.

pub mod accounts;
pub mod institutions;
pub mod paging;
pub mod synchronizations;
pub mod transactions;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use crate::errors::{ApiError, JSON_API};
use crate::http::S;
use crate::shared::Shared;
use crate::state::{Caller, World};

type ApiResult = Result<Response, ApiError>;

pub fn jsonapi(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, JSON_API)], body).into_response()
}

/// A document as JSON bytes, in a buffer of `capacity` to start with.
fn to_body<T: Serialize>(v: &T, capacity: usize) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut body, v).map_err(|e| {
        ApiError::json_api(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internalServerError",
            format!("serialisation failed: {e}"),
        )
    })?;
    Ok(body)
}

fn ok_json<T: Serialize>(status: StatusCode, v: &T) -> ApiResult {
    let body = to_body(v, 1024)?;
    Ok((status, [(header::CONTENT_TYPE, JSON_API)], body).into_response())
}

fn bearer(h: &HeaderMap) -> Option<&str> {
    h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
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

fn world_for<'a>(
    sh: &'a Shared,
    h: &HeaderMap,
) -> Result<(std::sync::MutexGuard<'a, World>, Caller), ApiError> {
    let mut w = sh.world.lock().expect("world lock");
    w.advance();
    let c = w.caller(bearer(h))?;
    Ok((w, c))
}

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
