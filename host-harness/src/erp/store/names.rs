//! The words the store keeps for the contract's enums.

use crate::runtime::types::{Availability, WarningKind};

pub fn status_name(s: crate::runtime::types::InstitutionStatus) -> &'static str {
    use crate::runtime::types::InstitutionStatus as S;
    match s {
        S::Stable => "stable",
        S::Beta => "beta",
        S::Experimental => "experimental",
        S::Unknown => "unknown",
    }
}

pub fn availability_name(a: Availability) -> &'static str {
    match a {
        Availability::Available => "available",
        Availability::Readonly => "readonly",
        Availability::Unavailable => "unavailable",
    }
}

pub fn warning_kind_name(k: WarningKind) -> &'static str {
    match k {
        WarningKind::BalanceGap => "balance-gap",
        WarningKind::ConsentExpiring => "consent-expiring",
        WarningKind::Maintenance => "maintenance",
        WarningKind::Deprecated => "deprecated",
        WarningKind::RecentlySynchronized => "recently-synchronized",
        WarningKind::SynchronizationPending => "synchronization-pending",
        WarningKind::BetaInstitution => "beta-institution",
        WarningKind::Other => "other",
    }
}
