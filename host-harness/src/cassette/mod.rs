//! Cassettes: an HTTP session of a provider recorded once through the host's `http` capability,
//! then served back to any `erp:bank-sync` component instead of the network.
//!
//! - [`format`]: the versioned JSON file (documented there);
//! - [`redact`]: secrets to consistent placeholders, and the optional pseudonymisation;
//! - [`record`]: `erp --record CASSETTE <verb>`;
//! - [`replay`]: the network served from a cassette (optionally with one response mutated);
//! - [`check`]: `erp plugin check`, the conformance suite over the WIT contract only.
//!
//! Everything here is provider-agnostic: redaction and pseudonymisation follow generic rules on
//! header names, form fields, query parameters and JSON keys, never one API's layout.

pub mod check;
pub mod format;
pub mod record;
pub mod redact;
pub mod replay;
pub mod results;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::bindings::http::{HttpError, Request, Response};
use crate::capabilities::storage::StorageCapability;

/// The seam in the `http` capability: a recorder observes exchanges, a replayer answers them.
pub trait HttpTap: Send + Sync {
    /// The answer to serve instead of the network; `None` sends the request for real.
    fn replay(&self, _connection: &str, _request: &Request) -> Option<Result<Response, HttpError>> {
        None
    }
    /// An exchange that went to the network.
    fn record(
        &self,
        _connection: &str,
        _request: &Request,
        _outcome: &Result<Response, HttpError>,
        _started: SystemTime,
        _elapsed: Duration,
    ) {
    }
    /// A job of `plugin` starts for `connection`, with its settings and storage (before any guest code runs).
    fn begin_session(
        &self,
        _plugin: &str,
        _connection: &str,
        _config: &BTreeMap<String, String>,
        _storage: &mut StorageCapability,
    ) {
    }
}
