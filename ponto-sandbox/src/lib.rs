//! A loopback stand-in for the Ponto Connect API, pinned to Ponto's official OpenAPI v2 spec and
//! to `shared/ponto-connect/api-notes.md` — never to what a client expects, so that it can prove
//! a client wrong.
//!
//! ```no_run
//! let sb = ponto_sandbox::Sandbox::start(ponto_sandbox::SandboxConfig::default(), 0).unwrap();
//! println!("API at {}, consent page at {}", sb.api_url(), sb.auth_url());
//! ```
//!
//! Control endpoints for out-of-process tests (not part of Ponto):
//! `GET /_sandbox/accounts`, `POST /_sandbox/faults` (a [`Fault`] as JSON),
//! `DELETE /_sandbox/faults`, `POST /_sandbox/accounts/{id}/transactions` (`{"count": n}`),
//! `POST /_sandbox/accounts/{id}/synchronizations` (Ponto's own scheduled sync, see
//! [`Sandbox::background_sync`]; body `{}` or `{"subtype": "accountTransactionsWithUnsettled"}`;
//! answers `201 {"id": ...}`).

mod api;
pub mod consent;
mod control;
mod errors;
mod faults;
pub mod generator;
mod http;
mod layers;
pub mod money;
mod oauth;
mod shared;
mod state;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use chrono::NaiveDate;

pub use control::SandboxAccountInfo;
pub use faults::{Fault, HttpFailure, Scope};

use crate::generator::Generator;
use crate::shared::Shared;
use crate::state::{Settings, World};

/// How the sandbox is seeded. Build it with `..SandboxConfig::default()` so new fields keep
/// their defaults.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub seed: u64,
    /// Booked transactions on the organisation's first account (Belgian, EUR, Europe/Brussels).
    pub transactions: u64,
    pub client_id: String,
    pub client_secret: String,
    pub access_token_ttl_secs: u64,
    /// Window in which a repeat synchronization of the same subtype for the same account is
    /// refused with `accountRecentlySynchronized` (0 disables it).
    pub sync_cooldown_secs: u64,
    /// "Today" for the generated data (bookings end yesterday, consents expire relative to it).
    /// `None` = today's date in Europe/Brussels; pin it for snapshot tests.
    pub today: Option<NaiveDate>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            seed: 42,
            transactions: 120,
            client_id: "sandbox-client-id".into(),
            client_secret: "sandbox-client-secret".into(),
            access_token_ttl_secs: 1799,
            sync_cooldown_secs: 60,
            today: None,
        }
    }
}

/// See [`Sandbox::issued_secrets`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssuedSecrets {
    pub access_tokens: Vec<String>,
    pub refresh_tokens: Vec<String>,
    pub authorization_codes: Vec<String>,
    pub client_secret: String,
}

/// A running sandbox (its own thread and tokio runtime); stops when dropped.
pub struct Sandbox {
    shared: Arc<Shared>,
    port: u16,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sandbox {
    /// Binds 127.0.0.1:`port` (0 = a free port) and serves in the background.
    pub fn start(config: SandboxConfig, port: u16) -> anyhow::Result<Sandbox> {
        let shared = build(&config);
        let listener = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        set_base(&shared, port);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = router(shared.clone());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("ponto-sandbox")
            .build()?;
        let thread = std::thread::Builder::new()
            .name("ponto-sandbox".into())
            .spawn(move || {
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            eprintln!("ponto-sandbox: cannot use the listener: {e}");
                            return;
                        }
                    };
                    let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                        let _ = rx.await;
                    });
                    if let Err(e) = serve.await {
                        eprintln!("ponto-sandbox: server stopped: {e}");
                    }
                });
                // Open keep-alive connections must not hold the drop up.
                rt.shutdown_timeout(Duration::from_millis(200));
            })?;
        Ok(Sandbox {
            shared,
            port,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        self.shared.base_url().to_string()
    }

    /// `http://127.0.0.1:PORT/ponto-connect`
    pub fn api_url(&self) -> String {
        format!("{}/ponto-connect", self.base_url())
    }

    /// `http://127.0.0.1:PORT/oauth2/auth`
    pub fn auth_url(&self) -> String {
        format!("{}/oauth2/auth", self.base_url())
    }

    /// Same as `POST /_sandbox/faults`.
    pub fn inject(&self, fault: Fault) {
        let mut w = self.shared.world.lock().expect("world lock");
        control::apply_fault(&mut w, fault);
    }

    pub fn accounts(&self) -> Vec<SandboxAccountInfo> {
        control::account_infos(&self.shared.data)
    }

    /// Every secret this sandbox ever issued or holds, for tests that prove none leaks: the
    /// token maps keep every entry for the sandbox's life (used and revoked ones are flagged,
    /// never removed), so this is the complete list.
    pub fn issued_secrets(&self) -> IssuedSecrets {
        let w = self.shared.world.lock().expect("world lock");
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        IssuedSecrets {
            access_tokens: sorted(w.access.keys().cloned().collect()),
            refresh_tokens: sorted(w.refresh.keys().cloned().collect()),
            authorization_codes: sorted(w.codes.keys().cloned().collect()),
            client_secret: w.settings.client_secret.clone(),
        }
    }

    /// Queues `n` new bookings (dated today) that appear after the account's next successful
    /// transactions synchronization, as a bank reports them.
    pub fn add_transactions(&self, account_id: &str, n: u32) {
        let mut w = self.shared.world.lock().expect("world lock");
        if let Some(a) = self.shared.data.account(account_id) {
            let idx = a.idx as usize;
            w.accounts[idx].queued_new += n;
        }
    }

    /// Ponto's own scheduled synchronization of the account (Ponto runs one 4×/day): a finished
    /// `accountTransactions` synchronization with `customerOnline` false that makes the queued
    /// and back-dated bookings visible now, as the account's latest synchronization. It leaves
    /// the pending list as it is (only `accountTransactionsWithUnsettled` refreshes it). Returns
    /// the synchronization id, none for an unknown account.
    pub fn background_sync(&self, account_id: &str) -> Option<String> {
        self.background(account_id, "accountTransactions")
    }

    /// Same as [`Sandbox::background_sync`] with subtype `accountTransactionsWithUnsettled`:
    /// pending transactions also settle (booked under new ids) and the pending list is renewed.
    pub fn background_sync_with_unsettled(&self, account_id: &str) -> Option<String> {
        self.background(account_id, "accountTransactionsWithUnsettled")
    }

    fn background(&self, account_id: &str, subtype: &'static str) -> Option<String> {
        let idx = self.shared.data.account(account_id)?.idx as usize;
        let mut w = self.shared.world.lock().expect("world lock");
        Some(w.background_sync(idx, subtype))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves until the process is killed; prints [`banner`].
pub fn serve_forever(config: SandboxConfig, port: u16) -> anyhow::Result<()> {
    let sb = Sandbox::start(config.clone(), port)?;
    print!("{}", banner(&sb, &config));
    use std::io::Write;
    std::io::stdout().flush()?;
    loop {
        std::thread::park();
    }
}

/// What a user needs to connect to a running sandbox: its addresses, the client credentials it
/// accepts, and the environment block `erp` (and the Ponto plugin) read, ready to paste.
pub fn banner(sb: &Sandbox, config: &SandboxConfig) -> String {
    // Single-quoted for the shell, so any value pastes as it is.
    let quote = |v: &str| format!("'{}'", v.replace('\'', "'\\''"));
    let mut out = format!("ponto sandbox listening on {}\n", sb.base_url());
    out.push_str(&format!("  API:            {}\n", sb.api_url()));
    out.push_str(&format!("  consent page:   {}\n", sb.auth_url()));
    out.push_str(&format!("  client id:      {}\n", config.client_id));
    out.push_str(&format!("  client secret:  {}\n", config.client_secret));
    out.push_str("Point erp at it (paste into the shell that runs erp):\n");
    for (var, value) in [
        ("PONTO_API_URL", sb.api_url()),
        ("PONTO_AUTH_URL", sb.auth_url()),
        ("PONTO_CLIENT_ID", config.client_id.clone()),
        ("PONTO_CLIENT_SECRET", config.client_secret.clone()),
    ] {
        out.push_str(&format!("  export {var}={}\n", quote(&value)));
    }
    out.push_str(
        "then: erp institutions, and erp connect --institution ID (`erp-dev consent URL` ticks every account of a consent page).\n",
    );
    out
}

fn build(config: &SandboxConfig) -> Arc<Shared> {
    let now = chrono::Utc::now();
    let today = config
        .today
        .unwrap_or_else(|| now.with_timezone(&chrono_tz::Europe::Brussels).date_naive());
    let data = Arc::new(Generator::new(config.seed, config.transactions, today));
    let settings = Settings {
        client_id: config.client_id.clone(),
        client_secret: config.client_secret.clone(),
        access_ttl: config.access_token_ttl_secs,
        sync_cooldown: Duration::from_secs(config.sync_cooldown_secs),
    };
    Arc::new(Shared {
        data: data.clone(),
        world: Mutex::new(World::new(data, settings, now)),
        prefetch: Mutex::new(None),
        base: OnceLock::new(),
        requests: AtomicU64::new(0),
    })
}

fn set_base(shared: &Shared, port: u16) {
    let base = format!("http://127.0.0.1:{port}");
    let _ = shared.base.set(base.clone());
    shared.world.lock().expect("world lock").base_url = base;
}

fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/", get(api::root))
        .route(
            "/financial-institutions",
            get(api::institutions::institutions),
        )
        .route(
            "/financial-institutions/{id}",
            get(api::institutions::institution),
        )
        .route("/accounts", get(api::accounts::accounts))
        .route(
            "/accounts/{id}",
            get(api::accounts::account).delete(api::accounts::delete_account),
        )
        .route(
            "/accounts/{id}/transactions",
            get(api::transactions::transactions),
        )
        .route(
            "/accounts/{id}/transactions/{tid}",
            get(api::transactions::transaction),
        )
        .route(
            "/accounts/{id}/pending-transactions",
            get(api::transactions::pending_transactions),
        )
        .route(
            "/accounts/{id}/pending-transactions/{tid}",
            get(api::transactions::pending_transaction),
        )
        .route(
            "/accounts/{id}/reauthorization-requests",
            post(api::accounts::reauthorization),
        )
        .route(
            "/synchronizations",
            post(api::synchronizations::create_sync),
        )
        .route(
            "/synchronizations/{id}",
            get(api::synchronizations::get_sync),
        )
        .route(
            "/synchronizations/{id}/updated-transactions",
            get(api::synchronizations::updated_transactions),
        )
        .route(
            "/synchronizations/{id}/updated-pending-transactions",
            get(api::synchronizations::updated_pending_transactions),
        )
        .route("/userinfo", get(api::userinfo))
        .route("/oauth2/token", post(oauth::token))
        .route("/oauth2/revoke", post(oauth::revoke))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed);
    Router::new()
        .nest("/ponto-connect", api)
        .route(
            "/oauth2/auth",
            get(oauth::consent_page).post(oauth::consent_submit),
        )
        .route(
            "/oauth2/reauthorize/{id}",
            get(oauth::reauthorize_page).post(oauth::reauthorize_submit),
        )
        .route("/_sandbox/accounts", get(control::control_accounts))
        .route(
            "/_sandbox/faults",
            post(control::control_fault).delete(control::control_clear),
        )
        .route(
            "/_sandbox/accounts/{id}/transactions",
            post(control::control_add_transactions),
        )
        .route(
            "/_sandbox/accounts/{id}/synchronizations",
            post(control::control_background_sync),
        )
        .fallback(api::not_found)
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            layers::faults_mw,
        ))
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            layers::request_id_mw,
        ))
        .with_state(shared)
}
