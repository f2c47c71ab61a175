//! `erp sync`: fetch new statement lines, with progress bars and a summary.

use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::load_providers;
use crate::cli::args::SyncArgs;
use crate::cli::render::{self, Table, clean, count};
use crate::erp::errors::ErpError;
use crate::erp::settings::Settings;
use crate::erp::store::{Db, OnlineAccount};
use crate::erp::sync::{self, AccountOutcome, Observer, SyncOptions, SyncReport};

pub fn run(settings: &Settings, path: &Path, args: SyncArgs, json: bool) -> Result<i32, ErpError> {
    let SyncArgs {
        link,
        account,
        due,
        since,
        customer_ip,
        jobs,
    } = args;
    let mut db = Db::open_existing(path)?;
    let opts = SyncOptions {
        link,
        account,
        due,
        since,
        customer_ip,
        max_lines: settings.max_lines,
        refresh_hours: settings.refresh_hours,
    };
    // Check the arguments before loading anything.
    let plan = sync::plan(&db, &opts)?;
    if plan.is_empty() {
        println!(
            "{}",
            if due {
                "No link is due for a refresh."
            } else {
                "No link to synchronise: connect a bank with `erp connect`."
            }
        );
        return Ok(0);
    }
    let mut providers: Vec<&str> = plan.iter().map(|(l, _)| l.provider.as_str()).collect();
    providers.sort_unstable();
    providers.dedup();
    if let [one] = providers[..] {
        let providers = load_providers(settings, path, Some(one))?;
        let jobs = jobs.map_or_else(sync::default_jobs, usize::from);
        let report = sync::run_jobs(&mut db, &providers, &opts, jobs, &mut Bars::new())?;
        return finish_sync(report, json);
    }
    // Links of several providers: each link with its provider's plugin, one by one.
    let mut hosts = std::collections::BTreeMap::new();
    let mut code = 0;
    for (link, _) in &plan {
        if !hosts.contains_key(&link.provider) {
            hosts.insert(
                link.provider.clone(),
                load_providers(settings, path, Some(&link.provider))?,
            );
        }
        let one = SyncOptions {
            link: Some(link.id),
            due: false,
            ..opts.clone()
        };
        let report = sync::run(&mut db, &hosts[&link.provider], &one, &mut Bars::new())?;
        code = code.max(finish_sync(report, json)?);
    }
    Ok(code)
}

/// Prints a sync report; the exit code: any account in error or link skipped (locked) is
/// non-zero, after the summary.
fn finish_sync(report: SyncReport, json: bool) -> Result<i32, ErpError> {
    if report.accounts.is_empty()
        && report.skipped_links.len() == 1
        && let Some((link, pid, since)) = report.locked.clone()
    {
        return Err(ErpError::Locked { link, pid, since });
    }
    if json {
        println!("{}", render::to_json(&report));
    } else {
        print_sync_report(&report);
    }
    Ok(if report.locked.is_some() && report.accounts.is_empty() {
        3
    } else if report.failed() {
        1
    } else {
        0
    })
}

pub fn print_sync_report(report: &SyncReport) {
    let mut t = Table::new(&[
        "account",
        "journal",
        ">read",
        ">new lines",
        ">updated",
        ">statements",
        ">warnings",
        "status",
    ]);
    for a in &report.accounts {
        t.row(vec![
            format!("{} {}", a.account_id, a.reference),
            a.journal.clone(),
            a.transactions_read.to_string(),
            a.new_lines.to_string(),
            a.updated_lines.to_string(),
            a.statements.to_string(),
            a.warnings.len().to_string(),
            a.status.to_string(),
        ]);
    }
    if !t.is_empty() {
        print!("{}", t.render());
        println!(
            "{}, {}, {}, {}.",
            count(report.accounts.len(), "account", "accounts"),
            count(report.new_lines(), "new line", "new lines"),
            count(
                report.accounts.iter().map(|a| a.statements).sum::<u64>(),
                "statement",
                "statements"
            ),
            count(
                report
                    .accounts
                    .iter()
                    .map(|a| a.warnings.len())
                    .sum::<usize>(),
                "warning",
                "warnings"
            )
        );
    }
    for a in &report.accounts {
        for (kind, message) in &a.warnings {
            println!(
                "  warning, account {} [{}]: {}",
                a.account_id,
                clean(kind),
                clean(message)
            );
        }
    }
    for a in &report.accounts {
        if let Some(e) = &a.error {
            eprintln!(
                "erp: account {} ({}): {}",
                a.account_id,
                clean(&a.reference),
                clean(e)
            );
        }
    }
    for (link, why) in &report.skipped_links {
        eprintln!("erp: link {link} skipped: {}", clean(why));
    }
}

/// Progress bars, shown only once a sync has run for more than a second.
pub struct Bars {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Bars {
    pub fn new() -> Self {
        Self {
            bar: None,
            started: Instant::now(),
        }
    }
}

impl Default for Bars {
    fn default() -> Self {
        Self::new()
    }
}

impl Observer for Bars {
    fn account_started(&mut self, account: &OnlineAccount) {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(format!(
            "account {} {}",
            account.id,
            clean(&account.reference)
        ));
        self.bar = Some(bar);
        self.started = Instant::now();
    }

    fn batch(&mut self, _account: &OnlineAccount, transactions_read: u64, new_lines: u64) {
        if let Some(bar) = &self.bar {
            if bar.is_hidden() && self.started.elapsed() > Duration::from_secs(1) {
                bar.set_draw_target(ProgressDrawTarget::stderr());
                bar.enable_steady_tick(Duration::from_millis(120));
            }
            bar.set_message(format!(
                "{transactions_read} transactions read, {new_lines} new lines"
            ));
        }
    }

    fn account_finished(&mut self, _outcome: &AccountOutcome) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
