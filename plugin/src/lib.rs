//! The Ponto bank-sync provider: Ponto Connect behind the `erp:bank-sync` WIT contract.
//!
//! The Ponto logic is plain Rust over the [`imports::Imports`] trait and the contract's types
//! generated from the WIT ([`bindings`], for every target), so it compiles and tests natively;
//! the wit-bindgen adapter (`component`, wasm32 only) implements `Imports` with the WIT imports
//! and exports the provider.
//!
//! # Configuration keys (read through `config.get`)
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `api-url` | `https://api.ibanity.com/ponto-connect` | Ponto Connect API base; every API URL is built from it, and `links.next` is followed only on its origin |
//! | `authorization-url` | `https://authorization.myponto.com/oauth2/auth` | the browser authorization page |
//! | `client-id`, `client-secret` | none | the Ponto Connect application; required to connect and for token calls |
//! | `date-field` | `execution` | `execution` or `value`: which Ponto date is the booking date |
//! | `statement-grouping` | `day` | `day`, `week` (ISO), `month` or `sync` |
//! | `overlap-days` | `7` | how far back an incremental sync re-reads when it walks the overlap: to the previous watermark minus this many days |
//! | `overlap-walk-hours` | `24` | an incremental sync normally ends at the previous sync's newest transaction when the balance adds up; it walks the whole overlap (and re-reads the institution and pending list) once the last such walk is this many hours old; `0` walks it on every sync |
//! | `page-size` | `100` | Ponto page size (1–100; also capped by the host's max-lines) |
//! | `sync-poll-attempts` | `10` | how often a bank refresh is polled before reading what is there |
//! | `sync-poll-interval-ms` | `1000` | wait between polls |
//!
//! # Storage keys (scoped by the host to the connection; all in [`keys`])
//!
//! `oauth/refresh-token` (rotated by compare-and-swap), `oauth/access-token` (token + expiry),
//! `connect/pending` (PKCE verifier, state, institution, redirect URI), `connection/institution`,
//! `connection/organization`, `connection/redirect-uri`, `consent/reauthorization/{account id}`
//! (an open reauthorization request). Sync progress is never stored: it lives in the host's
//! cursor and state.

pub mod bindings;
pub mod client;
pub mod config;
pub mod connection;
pub mod decimal;
pub mod imports;
pub mod jsonapi;
pub mod keys;
pub mod mapping;
pub mod provider;
pub mod sync;
pub mod url;

#[cfg(target_arch = "wasm32")]
mod component;

#[cfg(test)]
mod tests;
