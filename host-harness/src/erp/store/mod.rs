//! The ERP's accounting database on SQLite: versioned schema, online links and accounts,
//! journals, statements, lines, pending lines, sync runs and the per-link sync lock.
//!
//! Every write that belongs to one sync batch happens in one IMMEDIATE transaction together with
//! the batch's cursor, so a crash at any instant leaves either the whole batch or none of it.
//!
//! One file per role; `db` holds the handle the others add their methods to.

mod accounts;
mod checkpoint;
mod connect_attempts;
mod connection;
mod db;
mod ledger;
mod links;
mod locks;
mod new_files;
mod schema;
mod statement_lines;
mod sync_runs;
mod validation;

pub use accounts::{Journal, OnlineAccount};
pub use connect_attempts::ConnectAttempt;
pub use connection::{check_database, check_path};
pub use db::Db;
pub use ledger::{StoredPending, StoredStatement, StoredWarning};
pub use links::Link;
pub use locks::process_identity;
pub use new_files::NewFiles;
pub use schema::has_table;
pub use statement_lines::StoredLine;
pub use sync_runs::{BatchOutcome, Resume};
pub use validation::validate_batch;
