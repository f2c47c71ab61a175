//! End to end: the real provider component, the real wasmtime harness and ERP database, the
//! Ponto sandbox on 127.0.0.1.

mod support;

use host_harness::erp::sync::SyncOptions;
use ponto_sandbox::Fault;
use support::e2e::{Env, SandboxConfig, sandbox_settings};
use support::sandbox::today;

#[test]
fn connect_keeps_only_the_chosen_institutions_accounts() {
    let mut env = Env::standard();
    let institution = env.main_institution();
    let all = env.sandbox.accounts();
    let outcome = env.connect(&institution).expect("connect");
    let expected: Vec<&str> = all
        .iter()
        .filter(|a| a.institution_id == institution)
        .map(|a| a.id.as_str())
        .collect();
    let kept: Vec<&str> = outcome
        .accounts
        .iter()
        .map(|(a, _)| a.provider_account_id.as_str())
        .collect();
    assert_eq!(kept, expected);
    assert!(
        all.len() > kept.len(),
        "other institutions' accounts were authorised too"
    );
    assert_eq!(outcome.authorized_account_count as usize, all.len());
    assert!(outcome.accounts.iter().all(|(_, created)| *created));
    assert_eq!(env.db.journals().unwrap().len(), kept.len());
}

#[test]
fn no_account_at_the_chosen_institution_says_what_to_do_and_stores_nothing() {
    let mut env = Env::standard();
    let with_accounts: Vec<String> = env
        .sandbox
        .accounts()
        .iter()
        .map(|a| a.institution_id.clone())
        .collect();
    let mut provider =
        host_harness::erp::provider::ProviderFactory::session(&env.host, "catalogue").unwrap();
    let institutions = provider
        .list_institutions(&host_harness::runtime::types::InstitutionFilter {
            country: None,
            name_contains: None,
        })
        .unwrap();
    let empty = institutions
        .iter()
        .find(|i| !with_accounts.contains(&i.id))
        .expect("an institution without accounts");
    let before = env.table_counts();
    let e = env.connect(&empty.id).err().expect("no accounts");
    let text = e.to_string();
    assert!(text.contains(&format!("none at {}", empty.name)), "{text}");
    assert!(
        text.contains(&env.sandbox.accounts()[0].institution_name),
        "names an authorised institution: {text}"
    );
    assert_eq!(env.table_counts(), before);
    let leftovers: i64 = env
        .db
        .conn()
        .query_row("SELECT COUNT(*) FROM plugin_storage", [], |r| r.get(0))
        .unwrap();
    assert_eq!(leftovers, 0, "a failed connect leaves no secrets behind");
}

#[test]
fn first_sync_statements_snapshot_and_second_sync_adds_nothing() {
    let mut env = Env::standard();
    let institution = env.main_institution();
    let link = env.connect(&institution).unwrap().link_id;
    // Unattended: the data Ponto already holds (no new synchronization with the bank).
    let report = env.sync(SyncOptions::default()).unwrap();
    let first = report.new_lines();
    assert!(first > 0, "{report:?}");
    let journal = env.db.accounts(Some(link)).unwrap()[0].journal_id;
    let statements = env.db.statements(journal).unwrap();
    assert!(!statements.is_empty());
    for s in &statements {
        assert_eq!(
            s.difference
                .trim_start_matches('-')
                .trim_matches(['0', '.']),
            "",
            "{} does not chain: {s:?}",
            s.key
        );
    }
    // The latest statements in full (lines with every mapped field); the rest by count.
    let latest = &statements[statements.len().saturating_sub(8)..];
    insta::assert_json_snapshot!("main_account_latest_statements", latest);
    insta::assert_snapshot!(
        "main_account_statement_summary",
        statements
            .iter()
            .map(|s| format!(
                "{} {}..{} {} {:>4} {}",
                s.key,
                s.date_from,
                s.date_to,
                s.balance_start,
                s.lines.len(),
                s.balance_end
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );

    let again = env.sync(SyncOptions::default()).unwrap();
    assert_eq!(again.new_lines(), 0, "{again:?}");
    assert_eq!(env.db.statements(journal).unwrap().len(), statements.len());

    // A person's sync asks the bank for fresh data: late bookings and settled pending ones come
    // in as new lines, each once.
    for _ in 0..3 {
        let before = env.all_lines();
        let fresh = env.sync_as_user().unwrap();
        let after = env.all_lines();
        assert_eq!(after.len(), before.len() + fresh.new_lines() as usize);
        let new: Vec<_> = after.iter().filter(|l| !before.contains(l)).collect();
        println!(
            "user sync: {} new: {:?}",
            fresh.new_lines(),
            new.iter()
                .map(|l| (&l.transaction_id, &l.booking_date, &l.amount))
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn incremental_sync_brings_only_new_bookings() {
    let mut env = Env::standard();
    let institution = env.main_institution();
    env.connect(&institution).unwrap();
    env.sync_as_user().unwrap();
    let before = env.all_lines().len();
    let account = env.sandbox.accounts()[0].id.clone();
    env.sandbox.add_transactions(&account, 7);
    let report = env.sync_as_user().unwrap();
    let after = env.all_lines();
    assert!(report.new_lines() >= 7, "{report:?}");
    assert_eq!(after.len(), before + report.new_lines() as usize);
    let mut ids: Vec<&str> = after.iter().map(|l| l.transaction_id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), after.len(), "no transaction twice");
}

#[test]
fn expired_consent_on_one_account_lets_the_others_sync() {
    let mut env = Env::standard();
    let institution = env.main_institution();
    let outcome = env.connect(&institution).unwrap();
    assert!(
        outcome.accounts.len() >= 2,
        "the main institution has several accounts"
    );
    let victim = outcome.accounts[0].0.clone();
    env.sandbox.inject(Fault::ExpiredConsent {
        account_id: victim.provider_account_id.clone(),
    });
    let report = env.sync_as_user().unwrap();
    let v = report
        .accounts
        .iter()
        .find(|a| a.account_id == victim.id)
        .unwrap();
    assert_eq!(v.status.as_str(), "consent-expired", "{v:?}");
    assert!(v.error.as_deref().unwrap().contains("180 days"), "{v:?}");
    assert!(
        report
            .accounts
            .iter()
            .filter(|a| a.account_id != victim.id)
            .all(|a| a.error.is_none() && a.new_lines > 0),
        "{report:?}"
    );
    assert_eq!(
        env.db
            .account(&victim.id.to_string())
            .unwrap()
            .status
            .as_str(),
        "consent-expired"
    );
}

#[test]
fn update_credentials_and_fetch_accounts_keep_history() {
    let mut env = Env::standard();
    let institution = env.main_institution();
    let link = env.connect(&institution).unwrap().link_id;
    env.sync(SyncOptions::default()).unwrap();
    let lines = env.all_lines();
    let accounts = env.db.accounts(None).unwrap();
    let outcome = env.update_credentials(link).unwrap();
    assert_eq!(outcome.link_id, link);
    assert!(
        outcome.accounts.iter().all(|(_, created)| !created),
        "same accounts, same ids"
    );
    assert_eq!(env.db.accounts(None).unwrap().len(), accounts.len());
    let report = env.sync(SyncOptions::default()).unwrap();
    assert_eq!(report.new_lines(), 0);
    assert_eq!(env.all_lines(), lines);
}

#[test]
fn a_wrong_client_secret_is_one_clear_error_and_changes_nothing() {
    let sandbox = ponto_sandbox::Sandbox::start(
        SandboxConfig {
            today: Some(today()),
            ..SandboxConfig::default()
        },
        0,
    )
    .unwrap();
    let mut settings = sandbox_settings(&sandbox);
    settings
        .provider_config
        .insert("client-secret".into(), "wrong".into());
    let mut env = Env::with_settings(sandbox, settings);
    let institution = env.main_institution();
    let before = env.table_counts();
    let e = env.connect(&institution).err().expect("refused");
    let text = e.to_string();
    assert!(text.contains("client"), "{text}");
    assert!(!text.contains('\n'), "{text}");
    assert!(!text.contains("wrong"), "the secret never shows: {text}");
    assert_eq!(env.table_counts(), before);
}

#[test]
fn a_back_dated_booking_is_caught_and_pending_is_never_booked() {
    let mut env = Env::standard();
    let institution = env.main_institution();
    env.connect(&institution).unwrap();
    env.sync(SyncOptions::default()).unwrap();
    let first = env.all_lines();
    let newest = first.iter().map(|l| l.booking_date.clone()).max().unwrap();
    // A person's sync makes Ponto read the bank: bookings dated before what we hold turn up.
    env.sync_as_user().unwrap();
    let after = env.all_lines();
    let back_dated: Vec<_> = after
        .iter()
        .filter(|l| !first.contains(l) && l.booking_date < newest)
        .collect();
    assert!(
        !back_dated.is_empty(),
        "no back-dated booking among {} new lines",
        after.len() - first.len()
    );
    for account in env.db.accounts(None).unwrap() {
        for p in env.db.pending(account.id).unwrap() {
            assert!(
                after.iter().all(|l| l.transaction_id != p.transaction_id),
                "pending {} was booked as a line",
                p.transaction_id
            );
        }
    }
    let pending: usize = env
        .db
        .accounts(None)
        .unwrap()
        .iter()
        .map(|a| env.db.pending(a.id).unwrap().len())
        .sum();
    assert!(pending > 0, "the sandbox has pending transactions to show");
}

#[test]
fn rate_limits_and_server_errors_are_recovered() {
    use ponto_sandbox::HttpFailure;
    let mut env = Env::standard();
    let institution = env.main_institution();
    env.connect(&institution).unwrap();
    env.sandbox.inject(
        Fault::http(HttpFailure::RateLimited {
            retry_after_secs: Some(1),
        })
        .times(1),
    );
    env.sandbox
        .inject(Fault::http(HttpFailure::ServerError { status: 503 }).times(2));
    let report = env.sync(SyncOptions::default()).unwrap();
    assert!(!report.failed(), "{report:?}");
    let reference = {
        let mut clean = Env::standard();
        let institution = clean.main_institution();
        clean.connect(&institution).unwrap();
        clean.sync(SyncOptions::default()).unwrap();
        clean.all_lines()
    };
    assert_eq!(
        env.all_lines(),
        reference,
        "the same lines as without faults"
    );
}

#[test]
fn fetch_accounts_lists_the_institutions_accounts_and_keeps_links() {
    let mut env = Env::standard();
    let institution = env.main_institution();
    let link = env.connect(&institution).unwrap().link_id;
    let connection = env.db.link(link).unwrap().connection_id;
    let mut provider =
        host_harness::erp::provider::ProviderFactory::session(&env.host, &connection).unwrap();
    let listed = provider.list_accounts(Some(&institution)).unwrap();
    let merged = env.db.merge_accounts(link, &listed).unwrap();
    assert!(
        merged.iter().all(|(_, created)| !created),
        "nothing new, nothing doubled"
    );
    let all = provider.list_accounts(None).unwrap();
    assert_eq!(
        all.len(),
        env.sandbox.accounts().len(),
        "every authorised account, all institutions"
    );
}
