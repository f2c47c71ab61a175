//! The wit-bindgen adapter: WIT imports as a [`Host`], WIT exports calling [`Provider`], and
//! record conversions. Compiled for wasm32 only (a wit-bindgen cdylib does not link natively).

use crate::host::{self, Host};
use crate::model as m;
use crate::provider::{self, Provider};
use chrono::{DateTime, Utc};
use std::time::Duration;

wit_bindgen::generate!({ world: "bank-provider", path: "../wit" });

use erp::bank_sync::{config, http, log, storage, types as t};
use exports::erp::bank_sync::provider as p;

struct Component;
export!(Component);

/// The host seen through the WIT imports and WASI.
struct WasmHost;

fn storage_err(e: storage::StorageError) -> host::StorageError {
    match e {
        storage::StorageError::QuotaExceeded(_) => host::StorageError::QuotaExceeded,
        storage::StorageError::Unavailable(s) => host::StorageError::Unavailable(s),
    }
}

impl Host for WasmHost {
    fn send(&self, r: &host::Request) -> Result<host::Response, host::HttpError> {
        let request = http::Request {
            method: match r.method {
                host::Method::Get => http::Method::Get,
                host::Method::Post => http::Method::Post,
                host::Method::Delete => http::Method::Delete,
            },
            url: r.url.clone(),
            headers: r.headers.clone(),
            // Ponto's bodies (JSON, forms) are text: they cross as one string in every host.
            body: match String::from_utf8(r.body.clone()) {
                Ok(text) => http::Body::Text(text),
                Err(e) => http::Body::Binary(e.into_bytes()),
            },
            timeout_ms: r.timeout_ms,
        };
        match http::send(&request) {
            Ok(resp) => Ok(host::Response {
                status: resp.status,
                headers: resp.headers,
                body: match resp.body {
                    http::Body::Text(text) => text.into_bytes(),
                    http::Body::Binary(bytes) => bytes,
                },
            }),
            Err(e) => Err(match e {
                http::HttpError::Denied(s) => host::HttpError::Denied(s),
                http::HttpError::Timeout => host::HttpError::Timeout,
                http::HttpError::TooLarge(n) => host::HttpError::TooLarge(n),
                http::HttpError::InvalidRequest(s) => host::HttpError::InvalidRequest(s),
                http::HttpError::Transport(s) => host::HttpError::Transport(s),
            }),
        }
    }
    fn storage_get(&self, key: &str) -> Result<Option<String>, host::StorageError> {
        storage::get(key).map_err(storage_err)
    }
    fn storage_set(&self, key: &str, value: &str) -> Result<(), host::StorageError> {
        storage::set(key, value).map_err(storage_err)
    }
    fn storage_delete(&self, key: &str) -> Result<(), host::StorageError> {
        storage::delete(key).map_err(storage_err)
    }
    fn storage_list_keys(&self, prefix: &str) -> Result<Vec<String>, host::StorageError> {
        storage::list_keys(prefix).map_err(storage_err)
    }
    fn storage_compare_and_swap(
        &self,
        key: &str,
        expected: Option<&str>,
        new: Option<&str>,
    ) -> Result<bool, host::StorageError> {
        storage::compare_and_swap(key, expected, new).map_err(storage_err)
    }
    fn config(&self, key: &str) -> Option<String> {
        config::get(key)
    }
    fn log(&self, level: host::Level, message: &str) {
        let level = match level {
            host::Level::Trace => log::Level::Trace,
            host::Level::Debug => log::Level::Debug,
            host::Level::Info => log::Level::Info,
            host::Level::Warn => log::Level::Warn,
            host::Level::Error => log::Level::Error,
        };
        log::write(level, message);
    }
    fn now(&self) -> DateTime<Utc> {
        // wasi:clocks/wall-clock; the host may fix it in tests.
        DateTime::<Utc>::from(std::time::SystemTime::now())
    }
    fn random_bytes(&self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        match getrandom::fill(&mut buf) {
            Ok(()) => buf,
            // An empty answer is refused by the caller with a typed error.
            Err(_) => Vec::new(),
        }
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

fn institution(i: m::Institution) -> t::Institution {
    t::Institution {
        id: i.id,
        name: i.name,
        country: i.country,
        bic: i.bic,
        status: match i.status {
            m::InstitutionStatus::Stable => t::InstitutionStatus::Stable,
            m::InstitutionStatus::Beta => t::InstitutionStatus::Beta,
            m::InstitutionStatus::Experimental => t::InstitutionStatus::Experimental,
            m::InstitutionStatus::Unknown => t::InstitutionStatus::Unknown,
        },
        deprecated: i.deprecated,
        time_zone: i.time_zone,
        maintenance: i.maintenance.map(|x| t::Maintenance {
            kind: x.kind,
            starts_at: x.starts_at,
            ends_at: x.ends_at,
        }),
        provider_name: i.provider_name,
    }
}

fn balance(b: m::Balance) -> t::Balance {
    t::Balance {
        amount: b.amount,
        reference_date: b.reference_date,
    }
}

fn account(a: m::Account) -> t::Account {
    t::Account {
        id: a.id,
        institution_id: a.institution_id,
        reference: a.reference,
        reference_type: a.reference_type,
        description: a.description,
        product: a.product,
        holder_name: a.holder_name,
        currency: a.currency,
        current_balance: a.current_balance.map(balance),
        available_balance: a.available_balance.map(balance),
        authorized_at: a.authorized_at,
        consent_expires_at: a.consent_expires_at,
        consent_days_left: a.consent_days_left,
        availability: match a.availability {
            m::Availability::Available => t::Availability::Available,
            m::Availability::Readonly => t::Availability::Readonly,
            m::Availability::Unavailable => t::Availability::Unavailable,
        },
        deprecated: a.deprecated,
        synchronized_at: a.synchronized_at,
    }
}

fn line(l: m::StatementLine) -> t::StatementLine {
    t::StatementLine {
        transaction_id: l.transaction_id,
        statement_key: l.statement_key,
        booking_date: l.booking_date,
        value_date: l.value_date,
        amount: l.amount,
        currency: l.currency,
        payment_reference: l.payment_reference,
        structured_reference: l.structured_reference,
        description: l.description,
        partner_name: l.partner_name,
        partner_account: l.partner_account,
        end_to_end_id: l.end_to_end_id,
        bank_transaction_code: l.bank_transaction_code,
        mandate_id: l.mandate_id,
        creditor_id: l.creditor_id,
        card_reference: l.card_reference,
        raw_json: l.raw_json,
    }
}

fn warning(w: m::Warning) -> t::Warning {
    use m::WarningKind as K;
    use t::WarningKind as W;
    t::Warning {
        kind: match w.kind {
            K::BalanceGap => W::BalanceGap,
            K::ConsentExpiring => W::ConsentExpiring,
            K::Maintenance => W::Maintenance,
            K::Deprecated => W::Deprecated,
            K::RecentlySynchronized => W::RecentlySynchronized,
            K::SynchronizationPending => W::SynchronizationPending,
            K::BetaInstitution => W::BetaInstitution,
            K::Other => W::Other,
        },
        message: w.message,
    }
}

fn error(e: m::ProviderError) -> t::ProviderError {
    use m::ProviderError as E;
    match e {
        E::InvalidArgument(a) => t::ProviderError::InvalidArgument(t::ArgumentError {
            name: a.name,
            reason: a.reason,
        }),
        E::InvalidClient(s) => t::ProviderError::InvalidClient(s),
        E::ReconnectRequired(s) => t::ProviderError::ReconnectRequired(s),
        E::StateMismatch(s) => t::ProviderError::StateMismatch(s),
        E::NoAccountsForInstitution(n) => {
            t::ProviderError::NoAccountsForInstitution(t::NoAccountsError {
                institution: n.institution,
                authorized_institutions: n.authorized_institutions,
            })
        }
        E::AuthorizationExpired(c) => t::ProviderError::AuthorizationExpired(t::ConsentError {
            account_id: c.account_id,
            expired_at: c.expired_at,
            reauthorization_url: c.reauthorization_url,
            advice: c.advice,
        }),
        E::NotFound(s) => t::ProviderError::NotFound(s),
        E::RateLimited(r) => t::ProviderError::RateLimited(t::RateLimit {
            retry_after_seconds: r.retry_after_seconds,
            message: r.message,
        }),
        E::Upstream(u) => t::ProviderError::Upstream(t::UpstreamError {
            status: u.status,
            code: u.code,
            detail: u.detail,
            request_id: u.request_id,
            advice: u.advice,
        }),
        E::MalformedResponse(x) => t::ProviderError::MalformedResponse(t::MalformedError {
            what: x.what,
            field: x.field,
            resource_id: x.resource_id,
            reason: x.reason,
        }),
        E::Transport(s) => t::ProviderError::Transport(s),
        E::Storage(s) => t::ProviderError::Storage(s),
    }
}

fn provider() -> Provider<'static> {
    Provider::new(&WasmHost)
}

impl p::Guest for Component {
    fn info() -> p::ProviderInfo {
        let i = provider::info();
        p::ProviderInfo {
            id: i.id,
            name: i.name,
            version: i.version,
            api_version: i.api_version,
            config_keys: i.config_keys,
        }
    }

    fn list_institutions(
        filter: t::InstitutionFilter,
    ) -> Result<Vec<t::Institution>, t::ProviderError> {
        let f = m::InstitutionFilter {
            country: filter.country,
            name_contains: filter.name_contains,
        };
        provider()
            .list_institutions(&f)
            .map(|v| v.into_iter().map(institution).collect())
            .map_err(error)
    }

    fn begin_connect(
        institution_id: String,
        redirect_uri: String,
    ) -> Result<p::ConnectStart, t::ProviderError> {
        provider()
            .begin_connect(&institution_id, &redirect_uri)
            .map(|c| p::ConnectStart {
                authorization_url: c.authorization_url,
                state: c.state,
            })
            .map_err(error)
    }

    fn complete_connect(callback_url: String) -> Result<p::Connection, t::ProviderError> {
        provider()
            .complete_connect(&callback_url)
            .map(|c| p::Connection {
                organization_id: c.organization_id,
                organization_name: c.organization_name,
                institution: institution(c.institution),
                accounts: c.accounts.into_iter().map(account).collect(),
                authorized_account_count: c.authorized_account_count,
            })
            .map_err(error)
    }

    fn list_accounts(institution_id: Option<String>) -> Result<Vec<t::Account>, t::ProviderError> {
        provider()
            .list_accounts(institution_id.as_deref())
            .map(|v| v.into_iter().map(account).collect())
            .map_err(error)
    }

    fn sync(request: p::SyncRequest) -> Result<p::SyncBatch, t::ProviderError> {
        let r = m::SyncRequest {
            account_id: request.account_id,
            cursor: request.cursor,
            state: request.state,
            customer_ip: request.customer_ip,
            since: request.since,
            max_lines: request.max_lines,
        };
        let b = provider().sync(&r).map_err(error)?;
        Ok(p::SyncBatch {
            account: b.account.map(account),
            lines: b.lines.into_iter().map(line).collect(),
            updated_lines: b.updated_lines.into_iter().map(line).collect(),
            statements: b
                .statements
                .into_iter()
                .map(|s| t::Statement {
                    key: s.key,
                    name: s.name,
                    date_from: s.date_from,
                    date_to: s.date_to,
                    balance_start: s.balance_start,
                    balance_end: s.balance_end,
                })
                .collect(),
            pending: b.pending.map(|v| {
                v.into_iter()
                    .map(|x| t::PendingLine {
                        transaction_id: x.transaction_id,
                        date: x.date,
                        amount: x.amount,
                        currency: x.currency,
                        payment_reference: x.payment_reference,
                        partner_name: x.partner_name,
                        raw_json: x.raw_json,
                    })
                    .collect()
            }),
            warnings: b.warnings.into_iter().map(warning).collect(),
            transactions_read: b.transactions_read,
            progress: match b.progress {
                m::SyncProgress::More(c) => p::SyncProgress::More(c),
                m::SyncProgress::Done(s) => p::SyncProgress::Done(s),
            },
        })
    }

    fn request_reauthorization(
        account_id: String,
        redirect_uri: String,
    ) -> Result<String, t::ProviderError> {
        provider()
            .request_reauthorization(&account_id, &redirect_uri)
            .map_err(error)
    }

    fn disconnect() -> Result<(), t::ProviderError> {
        provider().disconnect().map_err(error)
    }
}
