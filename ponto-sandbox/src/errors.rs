//! Error bodies in Ponto's two shapes: JSON:API (`errors[]`) on the API, OAuth2 on `/oauth2/*`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

tokio::task_local! {
    /// The `ibanity-request-id` of the request being served, echoed in `errors[].meta.requestId`.
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> String {
    REQUEST_ID.try_with(|id| id.clone()).unwrap_or_default()
}

pub const JSON_API: &str = "application/vnd.api+json";

#[derive(Debug, Clone)]
pub enum ApiError {
    JsonApi {
        status: StatusCode,
        code: &'static str,
        detail: String,
        meta: Map<String, Value>,
        source: Option<Value>,
        retry_after: Option<u64>,
    },
    OAuth {
        status: StatusCode,
        error: &'static str,
        description: String,
        hint: Option<String>,
    },
}

impl ApiError {
    pub fn json_api(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::JsonApi {
            status,
            code,
            detail: detail.into(),
            meta: Map::new(),
            source: None,
            retry_after: None,
        }
    }

    pub fn invalid_token() -> Self {
        Self::json_api(
            StatusCode::UNAUTHORIZED,
            "invalidAccessToken",
            "Your access token is invalid.",
        )
    }

    pub fn not_found(resource: &str) -> Self {
        let mut e = Self::json_api(
            StatusCode::NOT_FOUND,
            "resourceNotFound",
            "The requested resource was not found.",
        );
        if let ApiError::JsonApi { meta, .. } = &mut e {
            meta.insert("resource".into(), json!(resource));
        }
        e
    }

    /// A malformed query parameter (`source.parameter` names it, as JSON:API specifies).
    pub fn bad_parameter(parameter: &str, detail: impl Into<String>) -> Self {
        let mut e = Self::json_api(StatusCode::BAD_REQUEST, "invalidParameter", detail);
        if let ApiError::JsonApi { source, .. } = &mut e {
            *source = Some(json!({ "parameter": parameter }));
        }
        e
    }

    /// An invalid request body attribute (`source.pointer` points into the document).
    pub fn bad_attribute(pointer: &str, attribute: &str, detail: impl Into<String>) -> Self {
        let mut e = Self::json_api(StatusCode::BAD_REQUEST, "validationError", detail);
        if let ApiError::JsonApi { source, meta, .. } = &mut e {
            *source = Some(json!({ "pointer": pointer }));
            meta.insert("attribute".into(), json!(attribute));
        }
        e
    }

    pub fn oauth(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        ApiError::OAuth {
            status,
            error,
            description: description.into(),
            hint: None,
        }
    }

    pub fn invalid_grant(hint: impl Into<String>) -> Self {
        ApiError::OAuth {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_grant",
            description: "The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.".into(),
            hint: Some(hint.into()),
        }
    }

    pub fn invalid_client() -> Self {
        Self::oauth(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method).",
        )
    }

    /// The JSON:API error object, as embedded in `errors[]` (also used in synchronization errors).
    pub fn error_object(code: &str, detail: &str, mut meta: Map<String, Value>) -> Value {
        meta.insert("requestId".into(), json!(current_request_id()));
        json!({ "code": code, "detail": detail, "meta": meta })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::JsonApi {
                status,
                code,
                detail,
                meta,
                source,
                retry_after,
            } => {
                let mut obj = Self::error_object(code, &detail, meta);
                if let Some(src) = source {
                    obj["source"] = src;
                }
                let mut r = (
                    status,
                    [(header::CONTENT_TYPE, JSON_API)],
                    json!({ "errors": [obj] }).to_string(),
                )
                    .into_response();
                if let Some(secs) = retry_after {
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                r
            }
            ApiError::OAuth {
                status,
                error,
                description,
                hint,
            } => {
                let mut body = json!({ "error": error, "error_description": description });
                if let Some(h) = hint {
                    body["error_hint"] = json!(h);
                }
                let mut r = (
                    status,
                    [
                        (header::CONTENT_TYPE, "application/json"),
                        (header::CACHE_CONTROL, "no-store"),
                    ],
                    body.to_string(),
                )
                    .into_response();
                if status == StatusCode::UNAUTHORIZED {
                    r.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"ponto-connect\""),
                    );
                }
                r
            }
        }
    }
}
