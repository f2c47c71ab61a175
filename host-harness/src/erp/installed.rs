//! The providers installed in an ERP database (the `plugins` table), the publisher keys its
//! operator trusts (`trusted_publishers`), and the plugin directory where the artifacts are kept
//! by digest (default `<database>.plugins/` beside the database).

use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::clock::now;
use super::errors::ErpError;
use super::store::Db;
use crate::plugins::manifest::CapabilityManifest;
use crate::plugins::signature::PublicKey;

/// One installed provider.
#[derive(Clone, Debug, Serialize)]
pub struct InstalledPlugin {
    pub id: String,
    pub name: String,
    pub version: String,
    /// `sha256:<hex>` of the artifact: its file name in the plugin directory.
    pub digest: String,
    /// Key id of the verified publisher; none when installed with `--allow-unsigned`.
    pub publisher: Option<String>,
    pub contract_version: String,
    #[serde(skip)]
    pub manifest: CapabilityManifest,
    /// What the operator granted at install, a subset of what the manifest asks.
    pub granted_origins: Vec<String>,
    /// Where it was installed from (an `oci://` reference or a file).
    pub source: String,
    pub installed_at: String,
}

/// The plugin directory of the database at `db_path`: `[host] plugin-dir`, else
/// `<database stem>.plugins/` beside it.
pub fn plugin_dir(db_path: &Path, configured: Option<&Path>) -> PathBuf {
    configured.map(Path::to_owned).unwrap_or_else(|| {
        let stem = db_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "erp".into());
        db_path.with_file_name(format!("{stem}.plugins"))
    })
}

fn sql(db: &Db) -> impl Fn(rusqlite::Error) -> ErpError + '_ {
    move |e| ErpError::db(db.path(), e)
}

fn corrupt(what: &'static str, e: impl std::fmt::Display) -> ErpError {
    ErpError::UnreadablePlugin {
        what,
        reason: e.to_string(),
    }
}

pub fn list(db: &Db) -> Result<Vec<InstalledPlugin>, ErpError> {
    let mut stmt = db
        .conn()
        .prepare(
            "SELECT id, name, version, digest, publisher, contract_version, manifest,
                    granted_origins, source, installed_at FROM plugins ORDER BY id",
        )
        .map_err(sql(db))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                [r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?],
                r.get::<_, Option<String>>(4)?,
                [
                    r.get::<_, String>(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                ],
            ))
        })
        .map_err(sql(db))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql(db))?;
    rows.into_iter()
        .map(
            |(
                [id, name, version, digest],
                publisher,
                [contract, manifest, granted, source, at],
            )| {
                Ok(InstalledPlugin {
                    manifest: CapabilityManifest::from_json(manifest.as_bytes())
                        .map_err(|e| corrupt("manifest", e))?,
                    granted_origins: serde_json::from_str(&granted)
                        .map_err(|e| corrupt("grant list", e))?,
                    id,
                    name,
                    version,
                    digest,
                    publisher,
                    contract_version: contract,
                    source,
                    installed_at: at,
                })
            },
        )
        .collect()
}

/// The provider to use: `wanted`, or the only one installed.
pub fn choose(db: &Db, wanted: Option<&str>) -> Result<InstalledPlugin, ErpError> {
    let all = list(db)?;
    match wanted {
        Some(id) => all.into_iter().find(|p| p.id == id).ok_or_else(|| {
            ErpError::Usage(format!(
                "no provider `{id}` is installed; `erp plugin list` shows those that are"
            ))
        }),
        None => match all.len() {
            0 => Err(ErpError::Usage(
                "no provider is installed: install one with `erp plugin install REF` (an oci:// reference or a .wasm file)".into(),
            )),
            1 => Ok(all.into_iter().next().expect("one")),
            _ => Err(ErpError::Usage(format!(
                "several providers are installed ({}): choose one with --provider ID",
                all.iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(", ")
            ))),
        },
    }
}

/// Records (or replaces) an installed provider.
pub fn save(db: &Db, p: &InstalledPlugin) -> Result<(), ErpError> {
    let manifest = p
        .manifest
        .to_json()
        .map_err(|e| ErpError::Usage(e.to_string()))?;
    db.conn()
        .execute(
            "INSERT OR REPLACE INTO plugins (id, name, version, digest, publisher, contract_version,
                 manifest, granted_origins, source, installed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                p.id,
                p.name,
                p.version,
                p.digest,
                p.publisher,
                p.contract_version,
                String::from_utf8_lossy(&manifest),
                serde_json::to_string(&p.granted_origins).unwrap_or_default(),
                p.source,
                p.installed_at,
            ],
        )
        .map_err(sql(db))?;
    Ok(())
}

pub fn delete(db: &Db, id: &str) -> Result<(), ErpError> {
    db.conn()
        .execute("DELETE FROM plugins WHERE id = ?1", params![id])
        .map_err(sql(db))?;
    Ok(())
}

/// Ids of the links (any state) that use provider `id`.
pub fn links_using(db: &Db, id: &str) -> Result<Vec<i64>, ErpError> {
    Ok(db
        .links()?
        .into_iter()
        .filter(|l| l.provider == id)
        .map(|l| l.id)
        .collect())
}

pub fn trusted(db: &Db) -> Result<Vec<PublicKey>, ErpError> {
    let mut stmt = db
        .conn()
        .prepare("SELECT public_key FROM trusted_publishers ORDER BY key_id")
        .map_err(sql(db))?;
    let texts = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(sql(db))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql(db))?;
    texts
        .iter()
        .map(|t| PublicKey::parse(t).map_err(|e| corrupt("trusted key", e)))
        .collect()
}

pub fn trust(db: &Db, key: &PublicKey) -> Result<(), ErpError> {
    db.conn()
        .execute(
            "INSERT OR REPLACE INTO trusted_publishers (key_id, public_key, added_at) VALUES (?1, ?2, ?3)",
            params![key.key_id(), key.to_text(), now().to_rfc3339()],
        )
        .map_err(sql(db))?;
    Ok(())
}

/// Forgets the key `key_id`; whether it was trusted.
pub fn untrust(db: &Db, key_id: &str) -> Result<bool, ErpError> {
    let n = db
        .conn()
        .execute(
            "DELETE FROM trusted_publishers WHERE key_id = ?1",
            params![key_id],
        )
        .map_err(sql(db))?;
    Ok(n > 0)
}

/// The installed provider `id`, if any.
pub fn find(db: &Db, id: &str) -> Result<Option<InstalledPlugin>, ErpError> {
    let found: Option<String> = db
        .conn()
        .query_row("SELECT id FROM plugins WHERE id = ?1", params![id], |r| {
            r.get(0)
        })
        .optional()
        .map_err(sql(db))?;
    Ok(match found {
        Some(_) => list(db)?.into_iter().find(|p| p.id == id),
        None => None,
    })
}
