//! The database's versioned schema: the migrations, applied in order, and the file's marker.

use rusqlite::{Connection, TransactionBehavior};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
/// Never edit a shipped migration: add a new one.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the accounting model.
    "CREATE TABLE links (
        id INTEGER PRIMARY KEY,
        provider TEXT NOT NULL,
        connection_id TEXT NOT NULL UNIQUE,
        institution_id TEXT NOT NULL,
        institution_name TEXT NOT NULL,
        institution_status TEXT NOT NULL,
        provider_name TEXT NOT NULL,
        organization_id TEXT,
        organization_name TEXT,
        state TEXT NOT NULL CHECK (state IN ('connected', 'error', 'disconnected')),
        message TEXT,
        consent_expires_at TEXT,
        last_refresh TEXT,
        next_refresh TEXT,
        auto_sync INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL
    );
    CREATE TABLE journals (
        id INTEGER PRIMARY KEY,
        code TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        iban TEXT,
        currency TEXT NOT NULL
    );
    CREATE INDEX journals_iban ON journals (iban, currency);
    CREATE TABLE online_accounts (
        id INTEGER PRIMARY KEY,
        link_id INTEGER NOT NULL REFERENCES links (id),
        provider_account_id TEXT NOT NULL,
        institution_id TEXT NOT NULL,
        reference TEXT NOT NULL,
        reference_type TEXT NOT NULL,
        description TEXT NOT NULL,
        holder_name TEXT,
        product TEXT,
        currency TEXT NOT NULL,
        balance TEXT,
        balance_date TEXT,
        available_balance TEXT,
        authorized_at TEXT,
        consent_expires_at TEXT,
        availability TEXT NOT NULL DEFAULT 'available',
        deprecated INTEGER NOT NULL DEFAULT 0,
        synchronized_at TEXT,
        journal_id INTEGER NOT NULL REFERENCES journals (id),
        last_sync TEXT,
        status TEXT NOT NULL DEFAULT 'new',
        message TEXT,
        sync_cursor TEXT,
        sync_cursor_at TEXT,
        sync_state TEXT,
        sync_run_id INTEGER,
        UNIQUE (link_id, provider_account_id)
    );
    CREATE TABLE statements (
        id INTEGER PRIMARY KEY,
        journal_id INTEGER NOT NULL REFERENCES journals (id),
        key TEXT NOT NULL,
        name TEXT NOT NULL,
        date_from TEXT NOT NULL,
        date_to TEXT NOT NULL,
        balance_start TEXT NOT NULL,
        balance_end TEXT NOT NULL,
        UNIQUE (journal_id, key)
    );
    CREATE TABLE statement_lines (
        id INTEGER PRIMARY KEY,
        journal_id INTEGER NOT NULL REFERENCES journals (id),
        online_account_id INTEGER NOT NULL REFERENCES online_accounts (id),
        transaction_id TEXT NOT NULL,
        statement_key TEXT NOT NULL,
        booking_date TEXT NOT NULL,
        value_date TEXT,
        amount TEXT NOT NULL,
        currency TEXT NOT NULL,
        payment_reference TEXT NOT NULL,
        structured_reference INTEGER NOT NULL,
        description TEXT,
        partner_name TEXT,
        partner_account TEXT,
        end_to_end_id TEXT,
        bank_transaction_code TEXT,
        mandate_id TEXT,
        creditor_id TEXT,
        card_reference TEXT,
        raw_json TEXT NOT NULL,
        sync_run_id INTEGER,
        updated_at TEXT,
        UNIQUE (journal_id, transaction_id)
    );
    CREATE INDEX statement_lines_statement ON statement_lines (journal_id, statement_key);
    CREATE TABLE pending_lines (
        id INTEGER PRIMARY KEY,
        online_account_id INTEGER NOT NULL REFERENCES online_accounts (id),
        transaction_id TEXT NOT NULL,
        date TEXT NOT NULL,
        amount TEXT NOT NULL,
        currency TEXT NOT NULL,
        payment_reference TEXT NOT NULL,
        partner_name TEXT,
        raw_json TEXT NOT NULL
    );
    CREATE TABLE sync_runs (
        id INTEGER PRIMARY KEY,
        link_id INTEGER NOT NULL REFERENCES links (id),
        online_account_id INTEGER NOT NULL REFERENCES online_accounts (id),
        started_at TEXT NOT NULL,
        ended_at TEXT,
        status TEXT NOT NULL CHECK (status IN ('running', 'done', 'error', 'interrupted')),
        batches INTEGER NOT NULL DEFAULT 0,
        lines_new INTEGER NOT NULL DEFAULT 0,
        lines_updated INTEGER NOT NULL DEFAULT 0,
        statements INTEGER NOT NULL DEFAULT 0,
        warnings INTEGER NOT NULL DEFAULT 0,
        transactions_read INTEGER NOT NULL DEFAULT 0,
        error TEXT
    );
    CREATE TABLE sync_warnings (
        id INTEGER PRIMARY KEY,
        sync_run_id INTEGER NOT NULL REFERENCES sync_runs (id),
        online_account_id INTEGER NOT NULL REFERENCES online_accounts (id),
        kind TEXT NOT NULL,
        message TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE link_locks (
        link_id INTEGER PRIMARY KEY REFERENCES links (id),
        holder TEXT NOT NULL,
        pid INTEGER NOT NULL,
        acquired_at TEXT NOT NULL,
        heartbeat_at TEXT NOT NULL
    );
    CREATE TABLE connect_attempts (
        connection_id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        institution_id TEXT NOT NULL,
        redirect_uri TEXT NOT NULL,
        link_id INTEGER REFERENCES links (id),
        created_at TEXT NOT NULL
    );",
    // 2: consecutive failed syncs of a link (they bring its next try forward, with backoff), and
    // the file's application id, which marks it as an erp database (0x45525042, "ERPB").
    "ALTER TABLE links ADD COLUMN sync_failures INTEGER NOT NULL DEFAULT 0;
    PRAGMA application_id = 1163022402;",
    // 3: installed providers (issue 12: the artifact's digest, who signed it, what the operator
    // granted) and the publisher keys the operator trusts. Links already name their provider.
    "CREATE TABLE plugins (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        digest TEXT NOT NULL,
        publisher TEXT,
        contract_version TEXT NOT NULL,
        manifest TEXT NOT NULL,
        granted_origins TEXT NOT NULL,
        source TEXT NOT NULL,
        installed_at TEXT NOT NULL
    );
    CREATE TABLE trusted_publishers (
        key_id TEXT PRIMARY KEY,
        public_key TEXT NOT NULL,
        added_at TEXT NOT NULL
    );",
];

/// `PRAGMA application_id` of an erp database ("ERPB"), set by migration 2.
pub(super) const APPLICATION_ID: i64 = 0x4552_5042;

/// Whether the database holds table `name` (the provider's `plugin_storage` appears only once
/// its storage has been opened).
pub fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get(0),
    )
}

pub(super) fn migrate(conn: &mut Connection) -> Result<(), MigrateError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(MigrateError::TooNew(version));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the write lock.
        let now: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if now > i as i64 {
            continue;
        }
        tx.execute_batch(sql).map_err(|e| MigrateError::Step {
            recorded: version,
            reason: match e {
                // SQLite's message alone: the error's own text quotes the whole migration.
                rusqlite::Error::SqlInputError { msg, .. } => msg,
                other => other.to_string(),
            },
        })?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    super::statement_lines::add_new_columns(conn)?;
    Ok(())
}

pub(super) enum MigrateError {
    Sql(rusqlite::Error),
    TooNew(i64),
    /// A migration failed on a database whose recorded schema version is `recorded`.
    Step {
        recorded: i64,
        reason: String,
    },
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e)
    }
}
