//! Every error the `erp` user can meet, each rendered as what happened AND what to do. The
//! provider's typed errors and the runtime's call errors are turned into sentences here, in one
//! place, so every verb words them the same way.

use std::path::{Path, PathBuf};

use super::names::AccountStatus;
use crate::plugins::oci::OciError;
use crate::plugins::store::StoreError;
use crate::runtime::types::ProviderError;
use crate::runtime::{CallError, LoadError};

/// What a provider error is about, so the advice can name the right command.
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub link: Option<i64>,
    pub account: Option<i64>,
    /// The provider's display name (its manifest's), for messages; "the provider" when unknown.
    pub provider: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ErpError {
    /// A bad argument or a missing precondition; the message says what to run instead.
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error(
        "the ERP database {path} failed: {source}; check the --db path, its permissions and free disk space"
    )]
    Db {
        path: PathBuf,
        source: Box<rusqlite::Error>,
    },
    #[error(transparent)]
    Load(Box<LoadError>),
    #[error("{}", render_call(.0))]
    Call(CallError),
    #[error("{}", render_provider(.error, .context))]
    Provider {
        error: Box<ProviderError>,
        context: Context,
    },
    #[error(
        "link {link} is being synchronised by another erp process (pid {pid}, since {}); wait for it to finish and try again (a lock left by a crashed process is taken over automatically)",
        minute(.since)
    )]
    Locked { link: i64, pid: i64, since: String },
    #[error(
        "the provider returned a batch the ERP refuses ({0}); nothing of it was stored; report this to the provider's maintainers"
    )]
    BadBatch(String),
    /// A file could not be created.
    #[error("cannot create {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file or folder could not be made, read or written; `doing` names the step (may be
    /// empty).
    #[error("{}: {}", path.display(), with_step(doing, source))]
    File {
        path: PathBuf,
        doing: &'static str,
        source: std::io::Error,
    },
    /// A loopback listener (the consent callback's) failed.
    #[error("{}", with_step(doing, source))]
    Listener {
        doing: &'static str,
        source: std::io::Error,
    },
    /// A process or thread could not be started.
    #[error("{}", with_step(doing, source))]
    Process {
        doing: &'static str,
        source: std::io::Error,
    },
    /// One of the ERP's own threads stopped (it panicked): what it was doing is lost.
    #[error("{thread} stopped unexpectedly; run the sync again")]
    ThreadStopped { thread: &'static str },
    /// An installed plugin's record in the database cannot be read.
    #[error("the plugins table holds an unreadable {what} ({reason}); reinstall the plugin")]
    UnreadablePlugin { what: &'static str, reason: String },
    /// The plugin registry refused or failed a push or a pull.
    #[error(transparent)]
    Registry(Box<OciError>),
    /// The plugin directory (installed artifacts by digest) failed.
    #[error(transparent)]
    PluginStore(Box<StoreError>),
}

/// `step: error`, or the error alone when there is no step to name.
fn with_step(doing: &str, source: &std::io::Error) -> String {
    if doing.is_empty() {
        source.to_string()
    } else {
        format!("{doing}: {source}")
    }
}

// Large payloads are boxed so every `Result<_, ErpError>` stays small.
impl From<LoadError> for ErpError {
    fn from(e: LoadError) -> Self {
        Self::Load(Box::new(e))
    }
}

impl ErpError {
    pub fn db(path: &Path, source: rusqlite::Error) -> Self {
        Self::Db {
            path: path.to_owned(),
            source: Box::new(source),
        }
    }

    pub fn provider(error: ProviderError, context: Context) -> Self {
        Self::Provider {
            error: Box::new(error),
            context,
        }
    }

    /// The provider's own error, when that is what this is.
    pub fn provider_error(&self) -> Option<&ProviderError> {
        match self {
            Self::Provider { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Process exit code: 2 bad usage, 3 another sync holds the lock, 1 anything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Usage(_) | Self::Config { .. } => 2,
            Self::Locked { .. } => 3,
            _ => 1,
        }
    }

    /// The account status a failed sync leaves, for `erp status`.
    pub fn account_status(&self) -> AccountStatus {
        match self.provider_error() {
            Some(ProviderError::AuthorizationExpired(_)) => AccountStatus::ConsentExpired,
            Some(ProviderError::ReconnectRequired(_) | ProviderError::InvalidClient(_)) => {
                AccountStatus::ReconnectRequired
            }
            Some(ProviderError::RateLimited(_)) => AccountStatus::RateLimited,
            _ => AccountStatus::Error,
        }
    }

    /// Whether the error concerns the whole link (its credentials), not one account.
    pub fn is_link_wide(&self) -> bool {
        matches!(
            self.provider_error(),
            Some(ProviderError::ReconnectRequired(_) | ProviderError::InvalidClient(_))
        )
    }
}

pub fn render_call(e: &CallError) -> String {
    let what_to_do = match e {
        CallError::Timeout(_) => {
            "try again later; if it keeps happening, raise host.call-timeout-secs in the config"
        }
        CallError::MemoryLimit(_) => {
            "report it to the provider's maintainers; nothing of the failed call was stored"
        }
        CallError::Trap(_) | CallError::Poisoned => {
            "report it to the provider's maintainers with this message; nothing of the failed call was stored"
        }
        CallError::Setup(_) => "check the plugin path, the config file and the database file",
    };
    format!("{e}; {what_to_do}")
}

/// The day of an RFC 3339 timestamp (`2026-12-15T06:00:00.000Z` → `2026-12-15`): what a person
/// needs; anything else as it is.
fn day(t: &str) -> &str {
    match chrono::DateTime::parse_from_rfc3339(t) {
        Ok(_) => t.get(..10).unwrap_or(t),
        Err(_) => t,
    }
}

/// An RFC 3339 UTC timestamp to the minute (`2026-11-25T13:02:18Z` → `2026-11-25 13:02 UTC`).
fn minute(t: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(t) {
        Ok(at) => at.to_utc().format("%Y-%m-%d %H:%M UTC").to_string(),
        Err(_) => t.to_owned(),
    }
}

fn link_ref(c: &Context) -> String {
    c.link.map_or_else(|| "N".to_owned(), |l| l.to_string())
}

pub fn render_provider(e: &ProviderError, c: &Context) -> String {
    let p = c.provider.as_deref().unwrap_or("the provider");
    match e {
        ProviderError::InvalidArgument(a) => format!(
            "{p} refused `{}`: {}; fix it (config file [provider.<id>] {}, or the environment variable the provider's manifest declares for it, or the command's argument)",
            a.name, a.reason, a.name
        ),
        ProviderError::InvalidClient(m) => format!(
            "{p} refused the client id or secret ({m}); check client-id and client-secret in the config file or the environment variables the provider's manifest declares for them (`erp plugin install` lists them)"
        ),
        ProviderError::ReconnectRequired(m) => format!(
            "the link to {p} is gone ({m}); run `erp update-credentials --link {}` and tick all accounts, other banks' too",
            link_ref(c)
        ),
        ProviderError::StateMismatch(m) => format!(
            "the callback does not belong to this connection attempt ({m}); it is stale or forged: start again with `erp connect`"
        ),
        ProviderError::NoAccountsForInstitution(n) => {
            let authorised = if n.authorized_institutions.is_empty() {
                "no institution at all".to_owned()
            } else {
                n.authorized_institutions.join(", ")
            };
            format!(
                "no account appears: you authorised accounts at {authorised}, but none at {}. At {p}, select {}'s accounts (tick all accounts you want, other banks' too) and connect again",
                n.institution, n.institution
            )
        }
        ProviderError::AuthorizationExpired(x) => {
            let when = x
                .expired_at
                .as_deref()
                .map(|t| format!(" on {}", day(t)))
                .unwrap_or_default();
            let link = x.reauthorization_url.as_deref().map_or_else(
                || {
                    c.account.map_or_else(String::new, |a| {
                        format!("; `erp reauthorize --account {a}` gives the link")
                    })
                },
                |u| format!("; renew it here: {u}"),
            );
            format!(
                "the bank consent of account {} ended{when}: {p} asks to re-authorize it periodically (every 180 days under PSD2), until then this account does not synchronise{link}. {}",
                x.account_id, x.advice
            )
        }
        ProviderError::NotFound(m) => format!(
            "not found at {p}: {m}; run `erp fetch-accounts --link {}` to refresh the account list",
            link_ref(c)
        ),
        ProviderError::RateLimited(r) => match r.retry_after_seconds {
            Some(s) => format!(
                "{}; {p} asks to wait {s} s: try again after that",
                r.message
            ),
            None => format!("{}; try again in a few minutes", r.message),
        },
        ProviderError::Upstream(u) => {
            let code = u
                .code
                .as_deref()
                .map(|c| format!(" {c}"))
                .unwrap_or_default();
            let rid = u
                .request_id
                .as_deref()
                .map(|r| format!(" (request id {r}: quote it to {p}'s support)"))
                .unwrap_or_default();
            let advice = u
                .advice
                .clone()
                .unwrap_or_else(|| format!("try again later; if it persists, contact {p}"));
            format!(
                "{p} answered {}{code}: {}{rid}; {advice}",
                u.status, u.detail
            )
        }
        ProviderError::MalformedResponse(m) => {
            let field = m
                .field
                .as_deref()
                .map(|f| format!(", field `{f}`"))
                .unwrap_or_default();
            let id = m
                .resource_id
                .as_deref()
                .map(|r| format!(", id {r}"))
                .unwrap_or_default();
            format!(
                "{p} sent a {} that does not fit its documented shape{field}{id}: {}; nothing from it was stored; try again later, and report it if it persists",
                m.what, m.reason
            )
        }
        ProviderError::Transport(m) => format!(
            "could not reach {p}: {m}; check the api-url setting, the network, and that the host is granted (`erp plugin list`)"
        ),
        ProviderError::Storage(m) => format!(
            "the provider's storage failed: {m}; check the database file and free disk space"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::types::{ConsentError, NoAccountsError};

    #[test]
    fn no_accounts_names_the_authorised_institutions_and_what_to_do() {
        let e = ProviderError::NoAccountsForInstitution(NoAccountsError {
            institution: "Belfius".into(),
            authorized_institutions: vec!["KBC".into(), "ING".into()],
        });
        let text = render_provider(&e, &Context::default());
        assert!(text.contains("KBC, ING"), "{text}");
        assert!(text.contains("none at Belfius"), "{text}");
        assert!(text.contains("connect again"), "{text}");
    }

    #[test]
    fn reconnect_names_the_command_with_the_link() {
        let e = ProviderError::ReconnectRequired("refresh token used".into());
        let text = render_provider(
            &e,
            &Context {
                link: Some(7),
                account: None,
                ..Default::default()
            },
        );
        assert!(text.contains("erp update-credentials --link 7"), "{text}");
    }

    #[test]
    fn expired_consent_gives_the_link_and_the_180_days() {
        let e = ProviderError::AuthorizationExpired(ConsentError {
            account_id: "acc".into(),
            expired_at: Some("2026-11-01T00:00:00Z".into()),
            reauthorization_url: Some("https://example.test/renew".into()),
            advice: "Re-authorize at the bank.".into(),
        });
        let err = ErpError::provider(e, Context::default());
        let text = err.to_string();
        assert!(
            text.contains("https://example.test/renew") && text.contains("180 days"),
            "{text}"
        );
        assert!(
            text.contains("ended on 2026-11-01:") && !text.contains("T00:00"),
            "a date, not a timestamp: {text}"
        );
        assert_eq!(err.account_status(), AccountStatus::ConsentExpired);
        assert!(!err.is_link_wide());
    }

    #[test]
    fn failures_say_what_failed_in_the_words_they_always_had() {
        let io = || std::io::Error::other("boom");
        let cases = [
            (
                ErpError::Create {
                    path: "x.sqlite".into(),
                    source: io(),
                },
                "cannot create x.sqlite: boom",
            ),
            (
                ErpError::File {
                    path: "/tmp/d".into(),
                    doing: "cannot make a scratch folder",
                    source: io(),
                },
                "/tmp/d: cannot make a scratch folder: boom",
            ),
            (
                ErpError::File {
                    path: "/tmp/d".into(),
                    doing: "",
                    source: io(),
                },
                "/tmp/d: boom",
            ),
            (
                ErpError::Listener {
                    doing: "waiting for the callback",
                    source: io(),
                },
                "waiting for the callback: boom",
            ),
            (
                ErpError::Listener {
                    doing: "",
                    source: io(),
                },
                "boom",
            ),
            (
                ErpError::ThreadStopped {
                    thread: "a sync worker",
                },
                "a sync worker stopped unexpectedly; run the sync again",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
            assert_eq!(e.exit_code(), 1);
        }
    }
}
