//! OAuth state: authorization codes, integrations and their tokens, and the caller a bearer
//! token stands for.

use std::time::{Duration as StdDuration, Instant};

use super::World;
use crate::errors::ApiError;
use crate::generator::h3;

pub struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub challenge: String,
    pub scope: String,
    pub accounts: Vec<usize>,
    pub expires: Instant,
    pub used: bool,
    /// Tokens issued from this code, revoked if the code is replayed (RFC 6749 §4.1.2).
    pub integration: Option<String>,
}

pub struct Integration {
    pub accounts: Vec<usize>,
    pub scope: String,
    pub revoked: bool,
}

pub struct AccessToken {
    pub integration: Option<String>,
    pub expires: Instant,
    pub revoked: bool,
}

pub struct RefreshToken {
    pub integration: String,
    pub used: bool,
    pub revoked: bool,
}

pub struct Reauth {
    pub account: usize,
    pub redirect_uri: String,
    pub done: bool,
}

/// Who is calling, after the bearer token was checked.
pub struct Caller {
    pub accounts: Vec<usize>,
    pub scope: String,
}

const CODE_TTL: StdDuration = StdDuration::from_secs(600);

impl World {
    /// An opaque token shaped like Ponto's: two base64url segments joined by a dot.
    pub fn new_token(&mut self) -> String {
        use base64::Engine;
        self.counter += 1;
        let mut bytes = [0u8; 40];
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&h3(self.nonce, self.counter, i as u64).to_le_bytes());
        }
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}", e.encode(&bytes[..24]), e.encode(&bytes[24..]))
    }

    /// Checks `Authorization: Bearer ...` for a user (authorization-code) token.
    pub fn caller(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let token = authorization
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(ApiError::invalid_token)?;
        let t = self.access.get(token).ok_or_else(ApiError::invalid_token)?;
        if t.revoked || Instant::now() >= t.expires {
            return Err(ApiError::invalid_token());
        }
        // A client-credentials token carries no organisation: user endpoints refuse it.
        let integ = t.integration.as_ref().ok_or_else(ApiError::invalid_token)?;
        let i = self
            .integrations
            .get(integ)
            .ok_or_else(ApiError::invalid_token)?;
        if i.revoked {
            return Err(ApiError::invalid_token());
        }
        Ok(Caller {
            accounts: i.accounts.clone(),
            scope: i.scope.clone(),
        })
    }

    pub fn issue_tokens(
        &mut self,
        integration: &str,
        with_refresh: bool,
    ) -> (String, Option<String>) {
        let access = self.new_token();
        self.access.insert(
            access.clone(),
            AccessToken {
                integration: Some(integration.to_string()),
                expires: Instant::now() + StdDuration::from_secs(self.settings.access_ttl),
                revoked: false,
            },
        );
        let refresh = with_refresh.then(|| {
            let r = self.new_token();
            self.refresh.insert(
                r.clone(),
                RefreshToken {
                    integration: integration.to_string(),
                    used: false,
                    revoked: false,
                },
            );
            r
        });
        (access, refresh)
    }

    pub fn new_code(&mut self, code: AuthCode) -> String {
        let c = self.new_token();
        self.codes.insert(c.clone(), code);
        c
    }

    pub fn code_ttl() -> StdDuration {
        CODE_TTL
    }

    /// Ends an integration: its access and refresh tokens stop working.
    pub fn revoke_integration(&mut self, integration: &str) {
        if let Some(i) = self.integrations.get_mut(integration) {
            i.revoked = true;
        }
        for t in self.access.values_mut() {
            if t.integration.as_deref() == Some(integration) {
                t.revoked = true;
            }
        }
        for r in self.refresh.values_mut() {
            if r.integration == integration {
                r.revoked = true;
            }
        }
    }
}
