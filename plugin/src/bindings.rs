//! The contract's types, generated from `wit/` by wit-bindgen for every target: the provider's
//! logic builds and returns them directly, so each WIT record has this one Rust definition on
//! the provider's side. Off wasm32 the import functions are stubs that are never called (native
//! tests and the bench reach the host through the `Imports` trait); `export!` is in
//! `component` (wasm32 only).

wit_bindgen::generate!({
    world: "bank-provider",
    path: "../wit",
    // Serialize for snapshots and for the bench's conversion into the ERP's own generated types
    // (both sides come from the same WIT, so their serde forms agree); PartialEq for tests.
    additional_derives: [serde::Serialize, serde::Deserialize, PartialEq, Clone],
});

pub use erp::bank_sync::{config, http, log, storage, types};
pub use exports::erp::bank_sync::provider;

use std::fmt;
use types::{ArgumentError, MalformedError, ProviderError, Warning, WarningKind};

/// Shorthand for provider results.
pub type Result<T, E = ProviderError> = std::result::Result<T, E>;

impl ProviderError {
    /// A bad argument or configuration value.
    pub fn argument(name: &str, reason: impl Into<String>) -> Self {
        ProviderError::InvalidArgument(ArgumentError {
            name: name.to_string(),
            reason: reason.into(),
        })
    }

    /// A response that does not fit.
    pub fn malformed(
        what: &str,
        field: Option<&str>,
        resource_id: Option<&str>,
        reason: impl Into<String>,
    ) -> Self {
        ProviderError::MalformedResponse(MalformedError {
            what: what.to_string(),
            field: field.map(str::to_string),
            resource_id: resource_id.map(str::to_string),
            reason: reason.into(),
        })
    }

    /// The error in one line for a person (the generated `Display` prints the `Debug` form).
    pub fn describe(&self) -> Described<'_> {
        Described(self)
    }
}

/// A [`ProviderError`] written for a person, see [`ProviderError::describe`].
pub struct Described<'a>(&'a ProviderError);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ProviderError::InvalidArgument(e) => write!(f, "invalid `{}`: {}", e.name, e.reason),
            ProviderError::InvalidClient(m) => write!(f, "client rejected: {m}"),
            ProviderError::ReconnectRequired(m) => write!(f, "reconnect required: {m}"),
            ProviderError::StateMismatch(m) => write!(f, "state mismatch: {m}"),
            ProviderError::NoAccountsForInstitution(e) => write!(
                f,
                "no authorised account at {} (authorised: {})",
                e.institution,
                e.authorized_institutions.join(", ")
            ),
            ProviderError::AuthorizationExpired(e) => {
                write!(
                    f,
                    "consent of account {} expired: {}",
                    e.account_id, e.advice
                )
            }
            ProviderError::NotFound(m) => write!(f, "not found: {m}"),
            ProviderError::RateLimited(r) => write!(f, "rate limited: {}", r.message),
            ProviderError::Upstream(u) => write!(
                f,
                "Ponto answered {} {}: {} (request id {})",
                u.status,
                u.code.as_deref().unwrap_or("-"),
                u.detail,
                u.request_id.as_deref().unwrap_or("-")
            ),
            ProviderError::MalformedResponse(m) => write!(
                f,
                "malformed {} (field {}, id {}): {}",
                m.what,
                m.field.as_deref().unwrap_or("-"),
                m.resource_id.as_deref().unwrap_or("-"),
                m.reason
            ),
            ProviderError::Transport(m) => write!(f, "transport: {m}"),
            ProviderError::Storage(m) => write!(f, "storage: {m}"),
        }
    }
}

impl Warning {
    pub fn new(kind: WarningKind, message: impl Into<String>) -> Self {
        Warning {
            kind,
            message: message.into(),
        }
    }
}
