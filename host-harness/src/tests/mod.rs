//! The ERP's tests that span its modules, with a scripted provider (no wasm): sync
//! orchestration against the store, parallel links, and the store's insert benchmark.

mod fixtures;
mod orchestration;
mod parallel;
mod store_bench;
