//! `interface config`: read-only settings the operator gave the provider.

use std::collections::BTreeMap;

use crate::bindings::config::Host;

/// The provider's settings for one connection. Secrets in here (a client secret) never reach a
/// log: the capability only hands values to the guest.
#[derive(Clone, Default)]
pub struct ConfigCapability {
    values: BTreeMap<String, String>,
}

impl ConfigCapability {
    pub fn new(values: BTreeMap<String, String>) -> Self {
        Self { values }
    }
}

impl Host for ConfigCapability {
    fn get(&mut self, key: String) -> Option<String> {
        self.values.get(&key).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_only_what_was_set() {
        let mut cap = ConfigCapability::new(BTreeMap::from([("client-id".into(), "abc".into())]));
        assert_eq!(cap.get("client-id".into()).as_deref(), Some("abc"));
        assert_eq!(cap.get("client-secret".into()), None);
    }
}
