//! Where an artifact comes from: a file, or an OCI registry (with the operator's credentials).

use std::path::Path;

use crate::erp::errors::ErpError;
use crate::plugins::oci::{Client, ClientOptions, Credentials};
use crate::plugins::reference::Reference;

pub(super) fn read_file(path: &Path) -> Result<Vec<u8>, ErpError> {
    crate::runtime::regular_file(path)
        .and_then(|()| std::fs::read(path))
        .map_err(|e| ErpError::Usage(format!("{}: {e}", path.display())))
}

pub(super) fn parse_reference(text: &str) -> Result<Reference, ErpError> {
    text.parse::<Reference>()
        .map_err(|e| ErpError::Usage(e.to_string()))
}

/// A registry client; credentials from ERP_REGISTRY_USERNAME / ERP_REGISTRY_PASSWORD, never
/// shown.
pub(super) fn client(reference: &Reference) -> Result<Client, ErpError> {
    let mut options = ClientOptions::for_reference(reference);
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let (Some(username), Some(password)) =
        (var("ERP_REGISTRY_USERNAME"), var("ERP_REGISTRY_PASSWORD"))
    {
        options.credentials = Some(Credentials { username, password });
    }
    Client::new(reference, options).map_err(|e| ErpError::Usage(e.to_string()))
}

/// The artifact's bytes and where they came from: an `oci://` reference or a file.
pub(super) fn fetch(reference: &str) -> Result<(Vec<u8>, String), ErpError> {
    if reference.starts_with("oci://") {
        let r = parse_reference(reference)?;
        let pulled = client(&r)?
            .pull(&r)
            .map_err(|e| ErpError::Registry(Box::new(e)))?;
        Ok((pulled.component, r.to_string()))
    } else {
        let path = Path::new(reference);
        let bytes = read_file(path)?;
        let source = std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_owned())
            .display()
            .to_string();
        Ok((bytes, source))
    }
}
