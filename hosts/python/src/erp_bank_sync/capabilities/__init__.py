"""The four `erp:bank-sync` imports, one module per WIT interface, with the same rules as the
Rust host's `host-harness/src/capabilities/`. Each function returns the ok value bare and an
error as a `Variant` (the contract's one result shape) and never raises into the guest."""
