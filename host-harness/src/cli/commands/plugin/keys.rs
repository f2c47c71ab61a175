//! `erp plugin keygen` and `erp plugin trust`: publisher keys and the publishers this ERP trusts.

use std::path::{Path, PathBuf};

use crate::cli::render::clean;
use crate::erp::errors::ErpError;
use crate::erp::installed;
use crate::erp::store::Db;
use crate::plugins::signature::{self, PublicKey};

pub fn keygen(out: PathBuf, comment: String) -> Result<i32, ErpError> {
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

pub fn trust(
    db_path: &Path,
    public_key: Option<PathBuf>,
    untrust: Option<String>,
) -> Result<i32, ErpError> {
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

fn load_public(path: &Path) -> Result<PublicKey, ErpError> {
    PublicKey::load(path).map_err(|e| ErpError::Usage(e.to_string()))
}
