//! A provider that breaks the `erp:bank-sync` contract on purpose, so the tests can prove that
//! `erp plugin check` fails where it must and names the property:
//! - it keeps state in memory between calls (the WIT forbids it): the ids it already returned,
//!   to drop the one line its API repeats at the top of each page. In one instance that works;
//!   in a new instance resuming from a cursor it returns the repeated line again (`resume`);
//! - it panics (a trap) on an HTTP 5xx instead of returning a typed error (`mutations`).
//!
//! Its upstream is a made-up ledger API: `GET {api-url}/lines?limit=N[&from=ID]` answers
//! `{"lines": [{"id", "date", "amount", "text"}], "next": ID | null}`, where a page asked `from`
//! an id starts with that id's line again.

#[cfg(target_arch = "wasm32")]
mod component {
    use std::cell::RefCell;
    use std::collections::HashSet;

    wit_bindgen::generate!({ world: "bank-provider", path: "../../wit" });

    use erp::bank_sync::{config, http, log, types::*};
    use exports::erp::bank_sync::provider::{
        ConnectStart, Connection, Guest, ProviderInfo, SyncBatch, SyncProgress, SyncRequest,
    };

    thread_local! {
        /// The bug: memory that outlives a call.
        static SEEN: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
    }

    struct Forgetful;

    fn unsupported() -> ProviderError {
        ProviderError::InvalidArgument(ArgumentError {
            name: "call".into(),
            reason: "not supported by the forgetful guest".into(),
        })
    }

    fn malformed(reason: &str) -> ProviderError {
        ProviderError::MalformedResponse(MalformedError {
            what: "ledger page".into(),
            field: None,
            resource_id: None,
            reason: reason.into(),
        })
    }

    fn text(v: &serde_json::Value, key: &str) -> Result<String, ProviderError> {
        v[key]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| malformed(&format!("`{key}` is not text")))
    }

    impl Guest for Forgetful {
        fn info() -> ProviderInfo {
            ProviderInfo {
                id: "forgetful".into(),
                name: "Forgetful".into(),
                version: "0.1.0".into(),
                api_version: "0.2.0".into(),
                config_keys: vec!["api-url".into(), "api-token".into()],
            }
        }

        fn list_institutions(_: InstitutionFilter) -> Result<Vec<Institution>, ProviderError> {
            Err(unsupported())
        }

        fn begin_connect(_: String, _: String) -> Result<ConnectStart, ProviderError> {
            Err(unsupported())
        }

        fn complete_connect(_: String) -> Result<Connection, ProviderError> {
            Err(unsupported())
        }

        fn list_accounts(_: Option<String>) -> Result<Vec<Account>, ProviderError> {
            Err(unsupported())
        }

        fn sync(request: SyncRequest) -> Result<SyncBatch, ProviderError> {
            let base = config::get("api-url").unwrap_or_default();
            let token = config::get("api-token").unwrap_or_default();
            let mut url = format!("{base}/lines?limit={}", request.max_lines);
            if let Some(from) = &request.cursor {
                url.push_str(&format!("&from={from}"));
            }
            log::write(
                log::Level::Info,
                &format!("reading a page of account {}", request.account_id),
            );
            let response = http::send(&http::Request {
                method: http::Method::Get,
                url,
                headers: vec![("authorization".into(), format!("Bearer {token}"))],
                body: http::Body::Text(String::new()),
                timeout_ms: None,
            })
            .map_err(|e| ProviderError::Transport(format!("{e:?}")))?;
            // The second bug: a server error is not a reason to crash.
            assert!(
                response.status < 500,
                "the ledger answered {}",
                response.status
            );
            if response.status != 200 {
                return Err(ProviderError::Upstream(UpstreamError {
                    status: response.status,
                    code: None,
                    detail: "the ledger refused the request".into(),
                    request_id: None,
                    advice: None,
                }));
            }
            let body = match &response.body {
                http::Body::Text(t) => t.as_str(),
                http::Body::Binary(_) => return Err(malformed("binary body")),
            };
            let page: serde_json::Value =
                serde_json::from_str(body).map_err(|e| malformed(&e.to_string()))?;
            let items = page["lines"]
                .as_array()
                .ok_or_else(|| malformed("no `lines`"))?;
            let mut lines = Vec::new();
            for item in items {
                let id = text(item, "id")?;
                if !SEEN.with(|s| s.borrow_mut().insert(id.clone())) {
                    continue;
                }
                let date = text(item, "date")?;
                lines.push(StatementLine {
                    transaction_id: id,
                    statement_key: date.clone(),
                    booking_date: date,
                    value_date: None,
                    amount: text(item, "amount")?,
                    currency: "EUR".into(),
                    payment_reference: text(item, "text")?,
                    structured_reference: false,
                    description: None,
                    partner_name: None,
                    partner_account: None,
                    end_to_end_id: None,
                    bank_transaction_code: None,
                    mandate_id: None,
                    creditor_id: None,
                    card_reference: None,
                    raw_json: String::new(),
                });
            }
            let progress = match page["next"].as_str() {
                Some(next) => SyncProgress::More(next.to_owned()),
                None => SyncProgress::Done(String::new()),
            };
            Ok(SyncBatch {
                account: None,
                transactions_read: lines.len() as u64,
                lines,
                updated_lines: Vec::new(),
                statements: Vec::new(),
                pending: None,
                warnings: Vec::new(),
                progress,
            })
        }

        fn request_reauthorization(_: String, _: String) -> Result<String, ProviderError> {
            Err(unsupported())
        }

        fn disconnect() -> Result<(), ProviderError> {
            Ok(())
        }
    }

    export!(Forgetful);
}
