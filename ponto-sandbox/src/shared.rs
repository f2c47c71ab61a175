//! The state every request handler shares: the seeded data, the world behind its lock, and the
//! transactions page being derived ahead.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};

use crate::generator::Generator;
use crate::state::World;

pub(crate) struct Shared {
    pub data: Arc<Generator>,
    pub world: Mutex<World>,
    pub prefetch: Mutex<Option<Prefetch>>,
    /// `http://127.0.0.1:PORT`, set once the port is bound.
    pub base: OnceLock<String>,
    /// Requests served so far (the request ids count them).
    pub requests: AtomicU64,
}

impl Shared {
    pub fn base_url(&self) -> &str {
        self.base.get().map(String::as_str).unwrap_or("")
    }
}

/// A transactions page being derived ahead of the request for it (see `api::transactions::transactions`).
pub struct Prefetch {
    pub account: usize,
    pub after: String,
    pub limit: usize,
    pub version: u64,
    pub body: tokio::task::JoinHandle<Option<RenderedPage>>,
}

/// A rendered transactions page: the body, the id to continue after (when a next page exists)
/// and the world version the page was read at.
pub type RenderedPage = (Vec<u8>, Option<String>, u64);
