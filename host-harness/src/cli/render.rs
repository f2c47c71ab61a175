//! Plain-text tables and JSON views for the CLI.

use serde_json::{Value, json};

use crate::runtime::types::{Account, Institution, InstitutionStatus};

/// A left/right aligned text table.
pub struct Table {
    headers: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Headers starting with `>` are right-aligned (numbers, money).
    pub fn new(headers: &[&'static str]) -> Self {
        Self {
            right: headers.iter().map(|h| h.starts_with('>')).collect(),
            headers: headers.iter().map(|h| h.trim_start_matches('>')).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let n = self.headers.len();
        let mut width: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String]| -> String {
            let mut out = String::new();
            for (i, w) in width.iter().enumerate() {
                let c = cells.get(i).map_or("", String::as_str);
                let pad = w.saturating_sub(c.chars().count());
                if i > 0 {
                    out.push_str("  ");
                }
                if self.right[i] {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(c);
                } else {
                    out.push_str(c);
                    if i + 1 < n {
                        out.push_str(&" ".repeat(pad));
                    }
                }
            }
            out.trim_end().to_owned()
        };
        let mut out = line(
            &self
                .headers
                .iter()
                .map(|h| (*h).to_owned())
                .collect::<Vec<_>>(),
        );
        out.push('\n');
        out.push_str(&line(
            &width.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(),
        ));
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r));
            out.push('\n');
        }
        out
    }
}

pub fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "-".into())
}

/// `2026-11-25T13:02:18Z` → `2026-11-25 13:02`.
pub fn short_time(s: &Option<String>) -> String {
    match s {
        Some(t) if t.len() >= 16 => format!("{} {}", &t[..10], &t[11..16]),
        Some(t) => t.clone(),
        None => "-".into(),
    }
}

pub fn status_name(s: InstitutionStatus) -> &'static str {
    match s {
        InstitutionStatus::Stable => "stable",
        InstitutionStatus::Beta => "beta",
        InstitutionStatus::Experimental => "experimental",
    }
}

pub fn institution_json(i: &Institution) -> Value {
    json!({
        "id": i.id,
        "name": i.name,
        "country": i.country,
        "bic": i.bic,
        "status": status_name(i.status),
        "deprecated": i.deprecated,
        "time_zone": i.time_zone,
        "maintenance": i.maintenance.as_ref().map(|m| json!({
            "kind": m.kind, "starts_at": m.starts_at, "ends_at": m.ends_at,
        })),
        "provider": i.provider_name,
    })
}

pub fn account_json(a: &Account) -> Value {
    json!({
        "id": a.id,
        "institution_id": a.institution_id,
        "reference": a.reference,
        "reference_type": a.reference_type,
        "description": a.description,
        "currency": a.currency,
        "balance": a.current_balance.as_ref().map(|b| json!({"amount": b.amount, "date": b.reference_date})),
        "consent_expires_at": a.consent_expires_at,
        "consent_days_left": a.consent_days_left,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns_and_right_aligns_amounts() {
        let mut t = Table::new(&["name", ">amount"]);
        t.row(vec!["rent".into(), "-1200.00".into()]);
        t.row(vec!["coffee".into(), "3.5".into()]);
        assert_eq!(
            t.render(),
            "name      amount\n------  --------\nrent    -1200.00\ncoffee       3.5\n"
        );
    }
}
