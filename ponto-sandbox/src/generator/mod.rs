//! The seeded, deterministic data generator.
//!
//! Nothing here holds a transaction history: booked transaction `k` of an account (0 = oldest) is
//! derived from `(seed, account, k)` on demand, and its id encodes `k`, so a cursor
//! `page[after]=<id>` is decoded in O(1) and a 1,000,000-transaction account costs no memory.

mod formats;
mod hash;
mod organization;
mod transactions;

pub use formats::{
    TsStyle, be_bban, creditor_id, iban, local_midnight, push_dec, push_hex,
    structured_communication, ts, uuid_from,
};
pub use hash::{h3, mix};
pub use organization::{AccountSeed, Generator, Institution};
pub use transactions::{KIND_BOOKED, TxAttributes, TxRecord};

#[cfg(test)]
mod tests;
