//! The layers around every route: the request id every response carries, and the injected
//! faults (see [`crate::Fault`]) applied to the Ponto Connect API's responses.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::errors::{self, ApiError, REQUEST_ID};
use crate::faults::{self, HttpFailure};
use crate::generator;
use crate::shared::Shared;

/// Every response carries `ibanity-request-id`; error bodies repeat it in `meta.requestId`.
pub async fn request_id_mw(State(sh): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let n = sh.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let h = generator::mix(sh.data.seed ^ n.rotate_left(29));
    let id = format!(
        "{:016X}{:016X}{:011X}",
        h,
        generator::mix(h),
        n & 0xfff_ffff_ffff
    );
    let mut resp = REQUEST_ID.scope(id.clone(), next.run(req)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("ibanity-request-id", v);
    }
    resp
}

pub async fn faults_mw(State(sh): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if !path.starts_with("/ponto-connect") {
        return next.run(req).await;
    }
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |p| p.as_str().to_string());
    let hit = {
        let mut w = sh.world.lock().expect("world lock");
        faults::take_matching(&mut w.faults, &path, &path_and_query)
    };
    let Some(faults::Hit {
        failure,
        first_page,
    }) = hit
    else {
        return next.run(req).await;
    };
    match failure {
        HttpFailure::RateLimited { retry_after_secs } => {
            let mut e = ApiError::json_api(
                StatusCode::TOO_MANY_REQUESTS,
                "tooManyRequests",
                "Too many requests. Slow down and retry later.",
            );
            if let ApiError::JsonApi { retry_after, .. } = &mut e {
                *retry_after = retry_after_secs;
            }
            e.into_response()
        }
        HttpFailure::ServerError { status } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let code = match status.as_u16() {
                502 => "badGateway",
                503 => "serviceUnavailable",
                504 => "gatewayTimeout",
                _ => "internalServerError",
            };
            ApiError::json_api(status, code, "An unexpected error occurred. Retry later.")
                .into_response()
        }
        HttpFailure::Slow { millis } => {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            next.run(req).await
        }
        HttpFailure::TruncatedJson => {
            let resp = next.run(req).await;
            let (parts, body) = resp.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let cut = Bytes::copy_from_slice(&bytes[..bytes.len() / 2]);
            let mut r = Response::from_parts(parts, Body::from(cut.clone()));
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(cut.len()));
            r
        }
        HttpFailure::InvalidJson => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, errors::JSON_API)],
            "{\"data\": [{\"type\": \"transaction\", \"id\": 'not json', }",
        )
            .into_response(),
        HttpFailure::HtmlErrorPage { status } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>\
             <center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>",
        )
            .into_response(),
        HttpFailure::ConnectionReset => {
            let resp = next.run(req).await;
            let (mut parts, _) = resp.into_parts();
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from_stream(ResetStream { sent: false }))
        }
        HttpFailure::JsonApiErrorWithoutDetail { status, code } => {
            let error = match code {
                Some(c) => serde_json::json!({ "code": c }),
                None => serde_json::json!({}),
            };
            (
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                [(header::CONTENT_TYPE, errors::JSON_API)],
                serde_json::json!({ "errors": [error] }).to_string(),
            )
                .into_response()
        }
        HttpFailure::UnknownEnumValue { field, value } => {
            let value = serde_json::to_vec(&value).unwrap_or_default();
            rewrite_ok(next.run(req).await, |b| {
                faults::rewrite_members(b, &field, |old| {
                    old.starts_with(b"\"").then(|| value.clone())
                })
            })
            .await
        }
        HttpFailure::MissingAttribute { field } => {
            rewrite_ok(next.run(req).await, |b| {
                faults::rewrite_members(b, &field, |_| None)
            })
            .await
        }
        HttpFailure::NullValue { field } => {
            rewrite_ok(next.run(req).await, |b| {
                faults::rewrite_members(b, &field, |_| Some(b"null".to_vec()))
            })
            .await
        }
        HttpFailure::ForeignNextLink { origin } => {
            rewrite_ok(next.run(req).await, |b| {
                faults::rewrite_next(b, |u| faults::with_origin(u, &origin))
            })
            .await
        }
        HttpFailure::LoopingNextLink => {
            let back = format!("{}{}", sh.base_url(), first_page.unwrap_or_default());
            rewrite_ok(next.run(req).await, |b| {
                faults::rewrite_next(b, |_| back.clone())
            })
            .await
        }
        HttpFailure::HugePage { bytes } => {
            rewrite_ok(next.run(req).await, |b| faults::pad(b, bytes)).await
        }
    }
}

/// A successful response with its body rewritten by `f` (errors pass unchanged).
async fn rewrite_ok(resp: Response, f: impl FnOnce(&[u8]) -> Vec<u8>) -> Response {
    if !resp.status().is_success() {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let new = f(&bytes);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(new.len()));
    Response::from_parts(parts, Body::from(new))
}

/// A body that sends a first chunk, then fails: hyper aborts the connection mid-response.
struct ResetStream {
    sent: bool,
}

impl futures_core::Stream for ResetStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.sent {
            return std::task::Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "sandbox fault: connection reset",
            ))));
        }
        self.sent = true;
        std::task::Poll::Ready(Some(Ok(Bytes::from_static(b"{\"data\":[{\"type\":"))))
    }
}
