//! Plain Rust mirrors of the WIT records (types.wit, provider.wit). The wasm adapter converts them
//! field by field; native tests and snapshots use them directly.

use serde::Serialize;
use std::fmt;

/// How dependable Ponto says its connection to an institution is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstitutionStatus {
    Stable,
    Beta,
    Experimental,
    /// Ponto gave no status.
    Unknown,
}

/// A planned or ongoing maintenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Maintenance {
    pub kind: String,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
}

/// A financial institution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Institution {
    pub id: String,
    pub name: String,
    pub country: Option<String>,
    pub bic: Option<String>,
    pub status: InstitutionStatus,
    pub deprecated: bool,
    pub time_zone: String,
    pub maintenance: Option<Maintenance>,
    pub provider_name: String,
}

/// Filter for list-institutions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstitutionFilter {
    pub country: Option<String>,
    pub name_contains: Option<String>,
}

/// Whether an account can be synchronised now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Availability {
    Available,
    Readonly,
    Unavailable,
}

/// A balance at a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Balance {
    pub amount: String,
    pub reference_date: String,
}

/// An authorised account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: String,
    pub institution_id: String,
    pub reference: String,
    pub reference_type: String,
    pub description: String,
    pub product: Option<String>,
    pub holder_name: Option<String>,
    pub currency: String,
    pub current_balance: Option<Balance>,
    pub available_balance: Option<Balance>,
    pub authorized_at: Option<String>,
    pub consent_expires_at: Option<String>,
    pub consent_days_left: Option<i32>,
    pub availability: Availability,
    pub deprecated: bool,
    pub synchronized_at: Option<String>,
}

/// One booked transaction as a statement line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementLine {
    pub transaction_id: String,
    pub statement_key: String,
    pub booking_date: String,
    pub value_date: Option<String>,
    pub amount: String,
    pub currency: String,
    pub payment_reference: String,
    pub structured_reference: bool,
    pub description: Option<String>,
    pub partner_name: Option<String>,
    pub partner_account: Option<String>,
    pub end_to_end_id: Option<String>,
    pub bank_transaction_code: Option<String>,
    pub mandate_id: Option<String>,
    pub creditor_id: Option<String>,
    pub card_reference: Option<String>,
    pub raw_json: String,
}

/// A statement with derived balances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    pub key: String,
    pub name: String,
    pub date_from: String,
    pub date_to: String,
    pub balance_start: String,
    pub balance_end: String,
}

/// A transaction not booked yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingLine {
    pub transaction_id: String,
    pub date: String,
    pub amount: String,
    pub currency: String,
    pub payment_reference: String,
    pub partner_name: Option<String>,
    pub raw_json: String,
}

/// Kinds of non-fatal notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WarningKind {
    BalanceGap,
    ConsentExpiring,
    Maintenance,
    Deprecated,
    RecentlySynchronized,
    SynchronizationPending,
    BetaInstitution,
    Other,
}

/// A non-fatal notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub kind: WarningKind,
    pub message: String,
}

impl Warning {
    pub fn new(kind: WarningKind, message: impl Into<String>) -> Self {
        Warning {
            kind,
            message: message.into(),
        }
    }
}

/// Who the provider is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderInfo {
    pub id: String,
    pub name: String,
    pub version: String,
    pub api_version: String,
    pub config_keys: Vec<String>,
}

/// Where to send the user to connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectStart {
    pub authorization_url: String,
    pub state: String,
}

/// A completed connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connection {
    pub organization_id: String,
    pub organization_name: Option<String>,
    pub institution: Institution,
    pub accounts: Vec<Account>,
    pub authorized_account_count: u32,
}

/// One sync step request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncRequest {
    pub account_id: String,
    pub cursor: Option<String>,
    pub state: Option<String>,
    pub customer_ip: Option<String>,
    pub since: Option<String>,
    pub max_lines: u32,
}

/// How a sync goes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncProgress {
    More(String),
    Done(String),
}

/// One batch of a sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncBatch {
    pub account: Option<Account>,
    pub lines: Vec<StatementLine>,
    pub updated_lines: Vec<StatementLine>,
    pub statements: Vec<Statement>,
    pub pending: Option<Vec<PendingLine>>,
    pub warnings: Vec<Warning>,
    pub transactions_read: u64,
    pub progress: SyncProgress,
}

/// A bad argument from the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgumentError {
    pub name: String,
    pub reason: String,
}

/// Accounts authorised, none at the chosen institution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoAccountsError {
    pub institution: String,
    pub authorized_institutions: Vec<String>,
}

/// Bank consent ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentError {
    pub account_id: String,
    pub expired_at: Option<String>,
    pub reauthorization_url: Option<String>,
    pub advice: String,
}

/// Slow down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    pub retry_after_seconds: Option<u32>,
    pub message: String,
}

/// An error reported by Ponto.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpstreamError {
    pub status: u16,
    pub code: Option<String>,
    pub detail: String,
    pub request_id: Option<String>,
    pub advice: Option<String>,
}

/// A response that does not fit Ponto's documented shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MalformedError {
    pub what: String,
    pub field: Option<String>,
    pub resource_id: Option<String>,
    pub reason: String,
}

/// Every way a provider call can fail (types.wit `provider-error`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderError {
    InvalidArgument(ArgumentError),
    InvalidClient(String),
    ReconnectRequired(String),
    StateMismatch(String),
    NoAccountsForInstitution(NoAccountsError),
    AuthorizationExpired(ConsentError),
    NotFound(String),
    RateLimited(RateLimit),
    Upstream(UpstreamError),
    MalformedResponse(MalformedError),
    Transport(String),
    Storage(String),
}

impl ProviderError {
    /// A bad argument or configuration value.
    pub fn argument(name: &str, reason: impl Into<String>) -> Self {
        ProviderError::InvalidArgument(ArgumentError {
            name: name.to_string(),
            reason: reason.into(),
        })
    }

    /// A response that does not fit.
    pub fn malformed(
        what: &str,
        field: Option<&str>,
        resource_id: Option<&str>,
        reason: impl Into<String>,
    ) -> Self {
        ProviderError::MalformedResponse(MalformedError {
            what: what.to_string(),
            field: field.map(str::to_string),
            resource_id: resource_id.map(str::to_string),
            reason: reason.into(),
        })
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProviderError::InvalidArgument(e) => write!(f, "invalid `{}`: {}", e.name, e.reason),
            ProviderError::InvalidClient(m) => write!(f, "client rejected: {m}"),
            ProviderError::ReconnectRequired(m) => write!(f, "reconnect required: {m}"),
            ProviderError::StateMismatch(m) => write!(f, "state mismatch: {m}"),
            ProviderError::NoAccountsForInstitution(e) => write!(
                f,
                "no authorised account at {} (authorised: {})",
                e.institution,
                e.authorized_institutions.join(", ")
            ),
            ProviderError::AuthorizationExpired(e) => {
                write!(
                    f,
                    "consent of account {} expired: {}",
                    e.account_id, e.advice
                )
            }
            ProviderError::NotFound(m) => write!(f, "not found: {m}"),
            ProviderError::RateLimited(r) => write!(f, "rate limited: {}", r.message),
            ProviderError::Upstream(u) => write!(
                f,
                "Ponto answered {} {}: {} (request id {})",
                u.status,
                u.code.as_deref().unwrap_or("-"),
                u.detail,
                u.request_id.as_deref().unwrap_or("-")
            ),
            ProviderError::MalformedResponse(m) => write!(
                f,
                "malformed {} (field {}, id {}): {}",
                m.what,
                m.field.as_deref().unwrap_or("-"),
                m.resource_id.as_deref().unwrap_or("-"),
                m.reason
            ),
            ProviderError::Transport(m) => write!(f, "transport: {m}"),
            ProviderError::Storage(m) => write!(f, "storage: {m}"),
        }
    }
}

impl std::error::Error for ProviderError {}

/// Shorthand for provider results.
pub type Result<T, E = ProviderError> = std::result::Result<T, E>;
