//! `erp institutions`: the institutions a provider can connect to.

use std::path::Path;

use super::load_providers;
use crate::cli::render::{self, Table, clean, count, opt};
use crate::erp::connect::CATALOGUE_CONNECTION;
use crate::erp::errors::ErpError;
use crate::erp::names::institution_status_name;
use crate::erp::provider::ProviderFactory;
use crate::erp::settings::Settings;
use crate::runtime::types::InstitutionFilter;

pub fn run(
    settings: &Settings,
    path: &Path,
    provider: Option<String>,
    country: Option<String>,
    search: Option<String>,
    json: bool,
) -> Result<i32, ErpError> {
    let providers = load_providers(settings, path, provider.as_deref())?;
    let mut provider = providers.session(CATALOGUE_CONNECTION)?;
    let list = provider.list_institutions(&InstitutionFilter {
        country: country.map(|c| c.to_ascii_uppercase()),
        name_contains: search,
    })?;
    if json {
        println!(
            "{}",
            render::to_json(
                &list
                    .iter()
                    .map(render::institution_json)
                    .collect::<Vec<_>>()
            )
        );
    } else {
        print_institutions(&list);
    }
    Ok(0)
}

pub fn print_institution_choice(i: &crate::runtime::types::Institution) {
    println!(
        "Institution: {} ({}, {}) — third-party provider: {}",
        clean(&i.name),
        clean(i.country.as_deref().unwrap_or("international")),
        institution_status_name(i.status),
        clean(&i.provider_name)
    );
    use crate::runtime::types::InstitutionStatus as S;
    match i.status {
        S::Stable => {}
        S::Beta | S::Experimental => println!(
            "  Note: {} serves {} in {}: errors are expected; if you meet some, contact {} directly.",
            clean(&i.provider_name),
            clean(&i.name),
            institution_status_name(i.status),
            clean(&i.provider_name)
        ),
        // No claim either way: say so, without warning of errors nobody announced.
        S::Unknown => println!(
            "  Note: {} does not say how dependable its connection to {} is.",
            clean(&i.provider_name),
            clean(&i.name)
        ),
    }
    if let Some(m) = &i.maintenance {
        println!(
            "  Note: maintenance ({}) {} – {}: data may be stale.",
            clean(&m.kind),
            opt(&m.starts_at),
            opt(&m.ends_at)
        );
    }
}

pub fn print_institutions(list: &[crate::runtime::types::Institution]) {
    let mut t = Table::new(&["id", "name", "country", "status", "time zone", "provider"]);
    for i in list {
        let mut status = institution_status_name(i.status).to_owned();
        if i.deprecated {
            status.push_str(", deprecated");
        }
        if i.maintenance.is_some() {
            status.push_str(", maintenance");
        }
        t.row(vec![
            i.id.clone(),
            i.name.clone(),
            i.country.clone().unwrap_or_else(|| "intl".into()),
            status,
            i.time_zone.clone(),
            i.provider_name.clone(),
        ]);
    }
    print!("{}", t.render());
    println!("{}.", count(list.len(), "institution", "institutions"));
}
