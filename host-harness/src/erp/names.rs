//! The words the ERP stores and prints: its own states (of a link, of an online account) as
//! enums, and the words of the contract's enums. Each word is written once, here; the database
//! keeps these exact words, and a word this erp does not know is a typed error when read.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::runtime::types::{Availability, InstitutionStatus, WarningKind};

/// A stored word that names none of an enum's values (a database changed by hand, or by a newer
/// erp).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{word}`")]
pub struct UnknownWord {
    pub what: &'static str,
    pub word: String,
}

/// An enum stored and printed as one word per value: `as_str`, `Display`, `FromStr`, serde
/// (as the word) and SQLite (as TEXT) all use the words given here.
macro_rules! worded_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $word:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownWord;
            fn from_str(word: &str) -> Result<Self, UnknownWord> {
                match word {
                    $($word => Ok(Self::$variant),)+
                    _ => Err(UnknownWord {
                        what: $what,
                        word: word.to_owned(),
                    }),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.as_str().as_bytes())))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e: UnknownWord| FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

worded_enum! {
    /// The state of an online link (`links.state`).
    pub enum LinkState ("link state") {
        Connected = "connected",
        /// Its last sync failed for the whole link (its credentials); `message` says why.
        Error = "error",
        /// Disconnected by the user: no sync until connected again.
        Disconnected = "disconnected",
    }
}

worded_enum! {
    /// The status of an online account (`online_accounts.status`): how its last sync ended.
    #[derive(Default)]
    pub enum AccountStatus ("account status") {
        /// Never synchronised.
        #[default]
        New = "new",
        Ok = "ok",
        /// The last sync ended with warnings.
        Warning = "warning",
        Error = "error",
        ConsentExpired = "consent-expired",
        ReconnectRequired = "reconnect-required",
        RateLimited = "rate-limited",
    }
}

pub fn institution_status_name(s: InstitutionStatus) -> &'static str {
    match s {
        InstitutionStatus::Stable => "stable",
        InstitutionStatus::Beta => "beta",
        InstitutionStatus::Experimental => "experimental",
        InstitutionStatus::Unknown => "unknown",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_back_their_stored_words_and_refuse_others() {
        for s in [
            LinkState::Connected,
            LinkState::Error,
            LinkState::Disconnected,
        ] {
            assert_eq!(s.as_str().parse::<LinkState>(), Ok(s));
            assert_eq!(s.to_string(), s.as_str());
        }
        assert_eq!(
            "consent-expired".parse::<AccountStatus>(),
            Ok(AccountStatus::ConsentExpired)
        );
        let e = "paused".parse::<LinkState>().unwrap_err();
        assert_eq!(e.to_string(), "unknown link state `paused`");
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let read =
            |word: &str| conn.query_row("SELECT ?1", [word], |r| r.get::<_, AccountStatus>(0));
        assert_eq!(read("rate-limited").unwrap(), AccountStatus::RateLimited);
        assert!(read("sleeping").is_err());
        assert_eq!(
            serde_json::to_value(AccountStatus::ReconnectRequired).unwrap(),
            "reconnect-required"
        );
    }
}
