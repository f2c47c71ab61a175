//! Fault injection: what a client must survive. Inject with [`crate::Sandbox::inject`] or, from
//! another process, `POST /_sandbox/faults` with the same value as JSON, e.g.
//! `{"kind":"http","failure":{"kind":"rateLimited","retryAfterSecs":2},"scope":{"times":3}}`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Fault {
    /// Matching API requests (under `/ponto-connect`) fail this way instead of being served.
    Http {
        failure: HttpFailure,
        #[serde(default)]
        scope: Scope,
    },
    /// The account's bank consent has lapsed: `authorizationExpirationExpectedAt` moves into the
    /// past and its synchronizations end in `error` with `authorizationInvalid`, until the user
    /// completes a reauthorization request.
    ExpiredConsent { account_id: String },
    /// The account's institution is under maintenance: account `meta.availability` becomes
    /// `readonly`, data stays readable and synchronizations end in `error`.
    Maintenance { account_id: String },
    /// Every outstanding refresh token is revoked (as if the user ended the integration in Ponto).
    RevokedRefreshToken,
    /// Every outstanding refresh token counts as already used (as if a rotation was lost).
    UsedRefreshToken,
    /// Every outstanding access token expires now (401 `invalidAccessToken`).
    ExpiredAccessToken,
    /// Sets the `accountRecentlySynchronized` window (0 lets every synchronization through).
    SyncCooldown { secs: u64 },
    /// Removes every injected fault (HTTP faults, expired consents, maintenance).
    ClearAll,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum HttpFailure {
    /// 429 with a JSON:API error, with or without a `Retry-After` header (seconds).
    RateLimited { retry_after_secs: Option<u64> },
    /// A 5xx with a JSON:API error body (500, 502, 503, 504).
    ServerError { status: u16 },
    /// Served normally, after a delay.
    Slow { millis: u64 },
    /// 200 whose body is the first half of the real JSON.
    TruncatedJson,
    /// 200 whose body is not JSON at all.
    InvalidJson,
    /// An HTML error page (as a proxy or load balancer would send) with this status.
    HtmlErrorPage { status: u16 },
}

/// Which requests an HTTP fault hits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Scope {
    /// How many matching requests fail (`None`: all of them, until `ClearAll`). Default 1.
    pub times: Option<u32>,
    /// Only requests whose path contains this account id.
    pub account_id: Option<String>,
    /// Only requests whose path contains this text (e.g. `/transactions`, `/oauth2/token`).
    pub path_contains: Option<String>,
}

impl Default for Scope {
    fn default() -> Self {
        Scope {
            times: Some(1),
            account_id: None,
            path_contains: None,
        }
    }
}

impl Fault {
    /// The next API request fails with `failure`; chain `.times(n)`, `.always()`, `.for_account(id)`.
    pub fn http(failure: HttpFailure) -> Fault {
        Fault::Http {
            failure,
            scope: Scope::default(),
        }
    }

    pub fn times(mut self, n: u32) -> Fault {
        if let Fault::Http { scope, .. } = &mut self {
            scope.times = Some(n);
        }
        self
    }

    pub fn always(mut self) -> Fault {
        if let Fault::Http { scope, .. } = &mut self {
            scope.times = None;
        }
        self
    }

    pub fn for_account(mut self, account_id: &str) -> Fault {
        if let Fault::Http { scope, .. } = &mut self {
            scope.account_id = Some(account_id.to_string());
        }
        self
    }

    pub fn on_path(mut self, path_contains: &str) -> Fault {
        if let Fault::Http { scope, .. } = &mut self {
            scope.path_contains = Some(path_contains.to_string());
        }
        self
    }
}

/// An HTTP fault waiting for matching requests.
#[derive(Debug, Clone)]
pub struct ActiveFault {
    pub failure: HttpFailure,
    pub scope: Scope,
}

impl ActiveFault {
    pub fn matches(&self, path: &str) -> bool {
        self.scope
            .account_id
            .as_deref()
            .is_none_or(|a| path.contains(a))
            && self
                .scope
                .path_contains
                .as_deref()
                .is_none_or(|p| path.contains(p))
    }
}

/// Takes one use of the first fault matching `path`, dropping it when used up.
pub fn take_matching(faults: &mut Vec<ActiveFault>, path: &str) -> Option<HttpFailure> {
    let i = faults.iter().position(|f| f.matches(path))?;
    let failure = faults[i].failure.clone();
    match &mut faults[i].scope.times {
        Some(n) if *n <= 1 => {
            faults.remove(i);
        }
        Some(n) => *n -= 1,
        None => {}
    }
    Some(failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_round_trips() {
        let f = Fault::http(HttpFailure::RateLimited {
            retry_after_secs: Some(2),
        })
        .times(3);
        let s = serde_json::to_string(&f).unwrap();
        assert_eq!(
            s,
            r#"{"kind":"http","failure":{"kind":"rateLimited","retryAfterSecs":2},"scope":{"times":3,"accountId":null,"pathContains":null}}"#
        );
        let back: Fault = serde_json::from_str(
            r#"{"kind":"http","failure":{"kind":"rateLimited","retryAfterSecs":2},"scope":{"times":3}}"#,
        )
        .unwrap();
        assert_eq!(back, f);
        let e: Fault =
            serde_json::from_str(r#"{"kind":"expiredConsent","accountId":"x"}"#).unwrap();
        assert_eq!(
            e,
            Fault::ExpiredConsent {
                account_id: "x".into()
            }
        );
    }

    #[test]
    fn counts_down_and_filters() {
        let mut v = vec![ActiveFault {
            failure: HttpFailure::InvalidJson,
            scope: Scope {
                times: Some(2),
                account_id: Some("acc-1".into()),
                path_contains: None,
            },
        }];
        assert_eq!(take_matching(&mut v, "/ponto-connect/accounts/acc-2"), None);
        assert!(take_matching(&mut v, "/ponto-connect/accounts/acc-1").is_some());
        assert!(take_matching(&mut v, "/ponto-connect/accounts/acc-1/transactions").is_some());
        assert_eq!(take_matching(&mut v, "/ponto-connect/accounts/acc-1"), None);
    }
}
