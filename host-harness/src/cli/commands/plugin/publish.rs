//! `erp plugin publish`: sign a packaged component and push it to an OCI registry.

use std::path::PathBuf;

use super::source::{client, parse_reference, read_file};
use crate::cli::render::clean;
use crate::erp::errors::ErpError;
use crate::plugins::artifact;
use crate::plugins::signature::SecretKey;

pub fn publish(component: PathBuf, to: String, key: PathBuf) -> Result<i32, ErpError> {
    let bytes = read_file(&component)?;
    let key = SecretKey::load(&key).map_err(|e| ErpError::Usage(e.to_string()))?;
    let signed =
        artifact::sign_for_publish(&bytes, &key).map_err(|e| ErpError::Usage(e.to_string()))?;
    let reference = parse_reference(&to)?;
    let pushed = client(&reference)?
        .push(&reference, &signed)
        .map_err(|e| ErpError::Registry(Box::new(e)))?;
    println!(
        "Published {} (artifact {}, signed by {}).",
        clean(&pushed.reference.to_string()),
        pushed.layer_digest,
        key.public_key().key_id()
    );
    Ok(0)
}
