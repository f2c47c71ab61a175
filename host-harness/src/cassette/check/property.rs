//! What a check reports: one verdict per property.

/// One property's verdict.
#[derive(Clone, Debug)]
pub struct Property {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

pub(super) fn prop(name: &'static str, passed: bool, detail: String) -> Property {
    Property {
        name,
        passed,
        detail,
    }
}
