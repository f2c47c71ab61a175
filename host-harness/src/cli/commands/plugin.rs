//! `erp plugin`: publisher keys, trusted publishers, publishing to an OCI registry, and the
//! providers installed in this ERP (install, list, upgrade, remove). The artifact format is
//! `erp-plugins`'; what is installed is recorded in the `plugins` table (erp/installed.rs).

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;

use serde_json::json;

use crate::cli::args::{Approval, PluginCmd};
use crate::cli::render::{Table, clean};
use crate::erp::db::{Db, now};
use crate::erp::errors::ErpError;
use crate::erp::installed::{self, InstalledPlugin};
use crate::erp::settings::Settings;
use crate::plugins::artifact::{self, Inspected, Unsigned};
use crate::plugins::oci::{Client, ClientOptions, Credentials};
use crate::plugins::reference::Reference;
use crate::plugins::signature::{self, PublicKey, SecretKey};
use crate::plugins::store;
use crate::runtime::{API_VERSION, Manifest, Runtime, RuntimeOptions};

pub fn run(
    command: PluginCmd,
    config: Option<&Path>,
    db_path: &Path,
    json: bool,
) -> Result<i32, ErpError> {
    match command {
        PluginCmd::Inspect { path } => {
            print!("{}", crate::runtime::inspect(&path)?);
            Ok(0)
        }
        PluginCmd::Check(args) => super::plugin_check::run(&crate::cassette::check::CheckOptions {
            component: args.component,
            cassette: args.cassette,
            max_memory_mib: args.max_memory_mib,
            max_call_ms: args.max_call_ms,
            mutations: !args.no_mutations,
            bless: args.bless,
            cache_dir: crate::runtime::default_cache_dir(),
        }),
        PluginCmd::Keygen { out, comment } => {
            let (public, public_path) =
                signature::keygen(&out, &comment).map_err(|e| ErpError::Usage(e.to_string()))?;
            println!(
                "Secret key {} (keep it private; `erp plugin publish --key` signs with it).",
                out.display()
            );
            println!(
                "Public key {} (id {}): give it to operators for `erp plugin trust`.",
                public_path.display(),
                public.key_id()
            );
            Ok(0)
        }
        PluginCmd::Trust {
            public_key,
            untrust,
        } => {
            let db = Db::open(db_path)?;
            if let Some(which) = untrust {
                let key_id = if Path::new(&which).is_file() {
                    load_public(Path::new(&which))?.key_id()
                } else {
                    which
                };
                if installed::untrust(&db, &key_id)? {
                    println!("Publisher key {} is no longer trusted.", clean(&key_id));
                } else {
                    println!("Publisher key {} was not trusted.", clean(&key_id));
                }
                return Ok(0);
            }
            let path = public_key.expect("clap requires it");
            let key = load_public(&path)?;
            installed::trust(&db, &key)?;
            println!(
                "Trusted publisher key {} ({}).",
                key.key_id(),
                clean(key.comment())
            );
            Ok(0)
        }
        PluginCmd::Publish { component, to, key } => {
            let bytes = read_file(&component)?;
            let key = SecretKey::load(&key).map_err(|e| ErpError::Usage(e.to_string()))?;
            let signed = artifact::sign_for_publish(&bytes, &key)
                .map_err(|e| ErpError::Usage(e.to_string()))?;
            let reference = parse_reference(&to)?;
            let pushed = client(&reference)?
                .push(&reference, &signed)
                .map_err(|e| ErpError::Io(e.to_string()))?;
            println!(
                "Published {} (artifact {}, signed by {}).",
                clean(&pushed.reference.to_string()),
                pushed.layer_digest,
                key.public_key().key_id()
            );
            Ok(0)
        }
        PluginCmd::Install {
            reference,
            approval,
        } => {
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
        PluginCmd::List => {
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
        PluginCmd::Upgrade {
            id,
            reference,
            approval,
        } => {
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
        PluginCmd::Remove { id, force } => {
            let settings = Settings::load(config)?;
            let db = Db::open_existing(db_path)?;
            let plugin = installed::find(&db, &id)?.ok_or_else(|| {
                ErpError::Usage(format!("no provider `{}` is installed", clean(&id)))
            })?;
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
    }
}

fn load_public(path: &Path) -> Result<PublicKey, ErpError> {
    PublicKey::load(path).map_err(|e| ErpError::Usage(e.to_string()))
}

fn read_file(path: &Path) -> Result<Vec<u8>, ErpError> {
    crate::runtime::regular_file(path)
        .and_then(|()| std::fs::read(path))
        .map_err(|e| ErpError::Usage(format!("{}: {e}", path.display())))
}

fn parse_reference(text: &str) -> Result<Reference, ErpError> {
    text.parse::<Reference>()
        .map_err(|e| ErpError::Usage(e.to_string()))
}

/// A registry client; credentials from ERP_REGISTRY_USERNAME / ERP_REGISTRY_PASSWORD, never
/// shown.
fn client(reference: &Reference) -> Result<Client, ErpError> {
    let mut options = ClientOptions::for_reference(reference);
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let (Some(username), Some(password)) =
        (var("ERP_REGISTRY_USERNAME"), var("ERP_REGISTRY_PASSWORD"))
    {
        options.credentials = Some(Credentials { username, password });
    }
    Client::new(reference, options).map_err(|e| ErpError::Usage(e.to_string()))
}

/// The artifact's bytes and where they came from: an `oci://` reference or a file.
fn fetch(reference: &str) -> Result<(Vec<u8>, String), ErpError> {
    if reference.starts_with("oci://") {
        let r = parse_reference(reference)?;
        let pulled = client(&r)?
            .pull(&r)
            .map_err(|e| ErpError::Io(e.to_string()))?;
        Ok((pulled.component, r.to_string()))
    } else {
        let path = Path::new(reference);
        let bytes = read_file(path)?;
        let source = std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_owned())
            .display()
            .to_string();
        Ok((bytes, source))
    }
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
    let (digest, path) = store::store(&dir, bytes).map_err(|e| ErpError::Io(e.to_string()))?;
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
        println!("{}", super::render::to_json(&rows));
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
