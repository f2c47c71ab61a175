//! `erp statements`: a journal's bank statements with their balances.

use std::path::Path;

use crate::cli::render::{self, Table, opt};
use crate::erp::errors::ErpError;
use crate::erp::store::Db;

pub fn run(path: &Path, journal: &str, lines: bool, json: bool) -> Result<i32, ErpError> {
    let db = Db::open_existing(path)?;
    let journal = db.journal(journal)?;
    print_statements(&db, journal.id, lines, None, json)?;
    Ok(0)
}

/// Print a journal's statements; `last` keeps only the most recent ones.
pub fn print_statements(
    db: &Db,
    journal_id: i64,
    lines: bool,
    last: Option<usize>,
    json: bool,
) -> Result<(), ErpError> {
    let mut statements = db.statements(journal_id)?;
    if let Some(n) = last {
        let skip = statements.len().saturating_sub(n);
        statements.drain(..skip);
    }
    if json {
        println!("{}", render::to_json(&statements));
        return Ok(());
    }
    if statements.is_empty() {
        println!("No statement in this journal yet: run `erp sync`.");
        return Ok(());
    }
    let mut t = Table::new(&[
        "statement",
        "from",
        "to",
        ">start",
        ">lines",
        ">total",
        ">end",
        "check",
    ]);
    // One journal holds one currency; its lines say which.
    let currency = statements
        .iter()
        .find_map(|s| s.lines.first().map(|l| l.currency.clone()))
        .unwrap_or_default();
    let money = |amount: &str| crate::erp::money::display(amount, &currency);
    for s in &statements {
        t.row(vec![
            s.name.clone(),
            s.date_from.clone(),
            s.date_to.clone(),
            money(&s.balance_start),
            s.lines.len().to_string(),
            money(&s.lines_total),
            money(&s.balance_end),
            if crate::erp::money::parse(&s.difference).is_some_and(|d| d.is_zero()) {
                "ok".into()
            } else {
                format!("gap {}", s.difference)
            },
        ]);
    }
    print!("{}", t.render());
    if lines {
        for s in &statements {
            println!();
            println!(
                "{}  ({} → {}, start {}, end {})",
                s.name,
                s.date_from,
                s.date_to,
                money(&s.balance_start),
                money(&s.balance_end)
            );
            let mut t = Table::new(&["date", ">amount", "cur", "partner", "reference"]);
            for l in &s.lines {
                t.row(vec![
                    l.booking_date.clone(),
                    crate::erp::money::display(&l.amount, &l.currency),
                    l.currency.clone(),
                    opt(&l.partner_name),
                    l.payment_reference.chars().take(48).collect(),
                ]);
            }
            print!("{}", t.render());
        }
    }
    Ok(())
}
