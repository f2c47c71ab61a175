//! `erp plugin install`, `list`, `upgrade` and `remove`: the providers installed in this ERP,
//! each shown and granted before it is stored by digest.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;

use serde_json::json;

use super::source::fetch;
use crate::cli::args::Approval;
use crate::cli::render::{Table, clean};
use crate::erp::clock::now;
use crate::erp::errors::ErpError;
use crate::erp::installed::{self, InstalledPlugin};
use crate::erp::settings::Settings;
use crate::erp::store::Db;
use crate::plugins::artifact::{self, Inspected, Unsigned};
use crate::plugins::store;
use crate::runtime::{API_VERSION, Manifest, Runtime, RuntimeOptions};

pub fn install(
    config: Option<&Path>,
    db_path: &Path,
    reference: String,
    approval: Approval,
) -> Result<i32, ErpError> {
    let settings = Settings::load(config)?;
    let db = Db::open(db_path)?;
    let (bytes, source) = fetch(&reference)?;
    let inspected = verify(&db, &bytes, &approval)?;
    if let Some(existing) = installed::find(&db, &inspected.manifest.id)? {
        return Err(ErpError::Usage(format!(
            "provider `{}` is already installed ({} {}): use `erp plugin upgrade {}`",
            clean(&existing.id),
            clean(&existing.version),
            existing.digest,
            clean(&existing.id)
        )));
    }
    describe(&inspected);
    let granted = approve(&inspected, &approval)?;
    let plugin = put(&settings, &db, db_path, &bytes, inspected, granted, source)?;
    println!(
        "Installed provider {} {} ({}).",
        clean(&plugin.id),
        clean(&plugin.version),
        plugin.digest
    );
    Ok(0)
}

pub fn list(db_path: &Path, json: bool) -> Result<i32, ErpError> {
    let list = if db_path.exists() {
        let db = Db::open_existing(db_path)?;
        let mut rows = Vec::new();
        for p in installed::list(&db)? {
            let links = installed::links_using(&db, &p.id)?;
            rows.push((p, links));
        }
        rows
    } else {
        Vec::new()
    };
    print_list(&list, json);
    Ok(0)
}

pub fn upgrade(
    config: Option<&Path>,
    db_path: &Path,
    id: String,
    reference: Option<String>,
    approval: Approval,
) -> Result<i32, ErpError> {
    let settings = Settings::load(config)?;
    let db = Db::open_existing(db_path)?;
    let old = installed::find(&db, &id)?.ok_or_else(|| {
        ErpError::Usage(format!(
            "no provider `{}` is installed; `erp plugin list` shows those that are",
            clean(&id)
        ))
    })?;
    let (bytes, source) = fetch(reference.as_deref().unwrap_or(&old.source))?;
    let inspected = verify(&db, &bytes, &approval)?;
    if inspected.manifest.id != old.id {
        return Err(ErpError::Usage(format!(
            "{}: this artifact is provider `{}`, not `{}`; install it instead",
            inspected.digest,
            clean(&inspected.manifest.id),
            clean(&old.id)
        )));
    }
    describe(&inspected);
    let granted = approve(&inspected, &approval)?;
    let plugin = put(&settings, &db, db_path, &bytes, inspected, granted, source)?;
    let dir = installed::plugin_dir(db_path, settings.plugin_dir.as_deref());
    if old.digest != plugin.digest {
        let _ = store::remove(&dir, &old.digest);
    }
    println!(
        "Upgraded provider {} from {} to {} ({}); its links, connections and storage are kept.",
        clean(&plugin.id),
        clean(&old.version),
        clean(&plugin.version),
        plugin.digest
    );
    Ok(0)
}

pub fn remove(
    config: Option<&Path>,
    db_path: &Path,
    id: String,
    force: bool,
) -> Result<i32, ErpError> {
    let settings = Settings::load(config)?;
    let db = Db::open_existing(db_path)?;
    let plugin = installed::find(&db, &id)?
        .ok_or_else(|| ErpError::Usage(format!("no provider `{}` is installed", clean(&id))))?;
    let links = installed::links_using(&db, &id)?;
    if !links.is_empty() && !force {
        return Err(ErpError::Usage(format!(
            "provider `{}` is used by link(s) {}: disconnect and keep them, or add --force to remove it anyway (their syncs then fail until it is installed again)",
            clean(&id),
            links
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    installed::delete(&db, &id)?;
    let dir = installed::plugin_dir(db_path, settings.plugin_dir.as_deref());
    let _ = store::remove(&dir, &plugin.digest);
    println!(
        "Removed provider {} {}.",
        clean(&plugin.id),
        clean(&plugin.version)
    );
    Ok(0)
}

/// Signature against the trusted keys, manifest, metadata, contract version: one line naming
/// the digest when anything is wrong.
fn verify(db: &Db, bytes: &[u8], approval: &Approval) -> Result<Inspected, ErpError> {
    let trusted = installed::trusted(db)?;
    let unsigned = if approval.allow_unsigned {
        Unsigned::Allow
    } else {
        Unsigned::Refuse
    };
    let inspected = artifact::inspect(bytes, &trusted, unsigned, API_VERSION)
        .map_err(|e| ErpError::Usage(clean(&e.to_string()).into_owned()))?;
    if inspected.publisher.is_none() {
        eprintln!(
            "erp: WARNING: {} is UNSIGNED and installed only because of --allow-unsigned: nobody vouches for these bytes; never do this outside development",
            inspected.digest
        );
    }
    Ok(inspected)
}

/// What the plugin is and asks for, every upstream text neutralised.
fn describe(p: &Inspected) {
    let m = &p.manifest;
    let meta = &p.metadata;
    let opt = |v: &Option<String>| clean(v.as_deref().unwrap_or("-")).into_owned();
    println!(
        "Provider {} ({}), version {}",
        clean(&m.id),
        clean(&m.name),
        opt(&meta.version)
    );
    println!("  package      {}", opt(&meta.name));
    println!("  description  {}", opt(&meta.description));
    println!("  authors      {}", opt(&meta.authors));
    println!("  licenses     {}", opt(&meta.licenses));
    println!("  source       {}", opt(&meta.source));
    println!("  revision     {}", opt(&meta.revision));
    println!("  digest       {}", p.digest);
    println!(
        "  publisher    {}",
        p.publisher.as_deref().unwrap_or("none (unsigned)")
    );
    println!(
        "  contract     erp:bank-sync@{}",
        clean(&m.contract_version)
    );
    println!("It asks for:");
    if m.origins.is_empty() {
        println!("  network      nothing");
    }
    for o in &m.origins {
        println!("  network      {}", clean(o));
    }
    for c in &m.config {
        println!(
            "  setting      {}{}{}",
            clean(&c.key),
            if c.secret { " (secret)" } else { "" },
            if c.env.is_empty() {
                String::new()
            } else {
                format!(", environment {}", clean(&c.env.join(" or ")))
            }
        );
    }
    match &m.storage {
        Some(s) => println!(
            "  storage      up to {} keys of at most {} bytes per connection",
            s.max_keys, s.max_value_bytes
        ),
        None => println!("  storage      none"),
    }
}

/// The origins the operator grants: all asked (after a yes), or `--grant`'s, each asked for.
fn approve(p: &Inspected, approval: &Approval) -> Result<Vec<String>, ErpError> {
    let asked = &p.manifest.origins;
    let granted: Vec<String> = if approval.grant.is_empty() {
        asked.clone()
    } else {
        for g in &approval.grant {
            if !asked.contains(g) {
                return Err(ErpError::Usage(format!(
                    "--grant {}: the plugin does not ask for it (it asks for {})",
                    clean(g),
                    clean(&asked.join(", "))
                )));
            }
        }
        approval.grant.clone()
    };
    if approval.yes {
        return Ok(granted);
    }
    let what = if granted.is_empty() {
        "no network access".to_owned()
    } else {
        clean(&granted.join(", ")).into_owned()
    };
    if !std::io::stdin().is_terminal() {
        return Err(ErpError::Usage(format!(
            "{}: nothing installed: grant {what} with --yes (or fewer origins with --grant ORIGIN)",
            p.digest
        )));
    }
    print!("Grant {what} and install? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(granted)
    } else {
        Err(ErpError::Usage(format!(
            "{}: not granted, nothing installed",
            p.digest
        )))
    }
}

/// Stores the artifact by digest, checks it loads with the grants, records it.
fn put(
    settings: &Settings,
    db: &Db,
    db_path: &Path,
    bytes: &[u8],
    p: Inspected,
    granted: Vec<String>,
    source: String,
) -> Result<InstalledPlugin, ErpError> {
    let dir = installed::plugin_dir(db_path, settings.plugin_dir.as_deref());
    let version = p.metadata.version.clone().unwrap_or_default();
    let fresh = store::load(&dir, &p.digest).is_err();
    let (digest, path) =
        store::store(&dir, bytes).map_err(|e| ErpError::PluginStore(Box::new(e)))?;
    // It must load as the ERP will run it (imports, exports, contract) before it is recorded.
    let manifest = Manifest::installed(&p.manifest, &version, &granted);
    let mut options = RuntimeOptions::new(settings.cache_dir.clone());
    options.granted_origins = manifest.requested_origins().unwrap_or_default();
    if let Err(e) = Runtime::load_with_manifest(&path, manifest, options) {
        if fresh {
            let _ = store::remove(&dir, &digest);
        }
        return Err(ErpError::Usage(format!(
            "{digest}: nothing installed: {}",
            clean(&e.to_string())
        )));
    }
    let plugin = InstalledPlugin {
        id: p.manifest.id.clone(),
        name: p.manifest.name.clone(),
        version,
        digest,
        publisher: p.publisher,
        contract_version: p.manifest.contract_version.clone(),
        manifest: p.manifest,
        granted_origins: granted,
        source,
        installed_at: now().to_rfc3339(),
    };
    installed::save(db, &plugin)?;
    Ok(plugin)
}

fn print_list(list: &[(InstalledPlugin, Vec<i64>)], json: bool) {
    if json {
        let rows: Vec<_> = list
            .iter()
            .map(|(p, links)| {
                json!({
                    "id": p.id,
                    "name": p.name,
                    "version": p.version,
                    "digest": p.digest,
                    "publisher": p.publisher,
                    "contract-version": p.contract_version,
                    "granted-origins": p.granted_origins,
                    "links": links,
                    "source": p.source,
                    "installed-at": p.installed_at,
                })
            })
            .collect();
        println!("{}", crate::cli::render::to_json(&rows));
        return;
    }
    if list.is_empty() {
        println!("No provider installed: `erp plugin install REF` installs one.");
        return;
    }
    let mut t = Table::new(&[
        "id",
        "version",
        "digest",
        "publisher",
        "contract",
        "granted origins",
        "links",
    ]);
    for (p, links) in list {
        t.row(vec![
            p.id.clone(),
            p.version.clone(),
            p.digest.clone(),
            p.publisher.clone().unwrap_or_else(|| "unsigned".into()),
            p.contract_version.clone(),
            p.granted_origins.join(" "),
            links
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(" "),
        ]);
    }
    print!("{}", t.render());
}
