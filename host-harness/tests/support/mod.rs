//! Support shared by the ERP's integration and end-to-end tests, one module per kind of suite;
//! each test file declares `mod support;` and takes what it needs.
//!
//! - [`sandbox`]: what every suite running the ERP against the Ponto sandbox shares;
//! - [`cli`]: the `erp` binary against a sandbox (the CLI, cassette and lock tests);
//! - [`e2e`]: the ERP's library with the real provider component (the end-to-end tests);
//! - [`reliability`]: recorded `erp` runs, faults and the secret scan (the reliability suite);
//! - [`plugins`]: the packaged provider artifact and a real OCI registry.

// Each test file uses part of it.
#![allow(dead_code)]

pub mod cli;
pub mod e2e;
pub mod plugins;
pub mod reliability;
pub mod sandbox;
