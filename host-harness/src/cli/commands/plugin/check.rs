//! `erp plugin check`: prints one line per property of [`crate::cassette::check`] and a summary;
//! exit 0 when every property passed, 1 otherwise.

use crate::cassette::check::{self, CheckOptions};
use crate::erp::errors::ErpError;

pub fn run(options: &CheckOptions) -> Result<i32, ErpError> {
    println!(
        "checking {} against {}",
        options.component.display(),
        options.cassette.display()
    );
    let properties = check::run(options).map_err(ErpError::Usage)?;
    let failed = properties.iter().filter(|p| !p.passed).count();
    for p in &properties {
        println!(
            "{:<5} {:<12} {}",
            if p.passed { "ok" } else { "FAIL" },
            p.name,
            crate::cli::render::clean(&p.detail)
        );
    }
    println!(
        "{} properties: {} passed, {failed} failed",
        properties.len(),
        properties.len() - failed
    );
    Ok(if failed == 0 { 0 } else { 1 })
}
