//! What a check is given: the component, the cassette, the budgets.

use std::path::PathBuf;

/// Budgets and places of a check.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    pub component: PathBuf,
    pub cassette: PathBuf,
    /// Peak linear memory allowed, in MiB.
    pub max_memory_mib: u64,
    /// Slowest `sync` call allowed, in milliseconds.
    pub max_call_ms: u64,
    /// Run the mutation property (the slowest: one replay per response and mutation).
    pub mutations: bool,
    /// Instead of checking, store what the component returns as the cassette's expected result
    /// (for a hand-written cassette; review the diff).
    pub bless: bool,
    pub cache_dir: PathBuf,
}
