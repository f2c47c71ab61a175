//! `erp plugin`: publisher keys, trusted publishers, publishing to an OCI registry, and the
//! providers installed in this ERP (install, list, upgrade, remove). The artifact format is
//! `erp-plugins`'; what is installed is recorded in the `plugins` table (erp/installed.rs).

mod check;
mod install;
mod keys;
mod publish;
mod source;

use std::path::Path;

use crate::cli::args::PluginCmd;
use crate::erp::errors::ErpError;

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
        PluginCmd::Check(args) => check::run(&crate::cassette::check::CheckOptions {
            component: args.component,
            cassette: args.cassette,
            max_memory_mib: args.max_memory_mib,
            max_call_ms: args.max_call_ms,
            mutations: !args.no_mutations,
            bless: args.bless,
            cache_dir: crate::runtime::default_cache_dir(),
        }),
        PluginCmd::Keygen { out, comment } => keys::keygen(out, comment),
        PluginCmd::Trust {
            public_key,
            untrust,
        } => keys::trust(db_path, public_key, untrust),
        PluginCmd::Publish { component, to, key } => publish::publish(component, to, key),
        PluginCmd::Install {
            reference,
            approval,
        } => install::install(config, db_path, reference, approval),
        PluginCmd::List => install::list(db_path, json),
        PluginCmd::Upgrade {
            id,
            reference,
            approval,
        } => install::upgrade(config, db_path, id, reference, approval),
        PluginCmd::Remove { id, force } => install::remove(config, db_path, id, force),
    }
}
