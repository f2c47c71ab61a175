//! The ERP's plugin directory: installed artifacts stored by digest, `sha256-<hex>.wasm`, so an
//! upgrade writes a new file beside the old one and a row switches between them. A file is
//! written atomically (temporary file, sync, rename) and its digest is checked again on every
//! read, so a file altered on disk is refused rather than run.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Why the plugin directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{0}` is not a sha256:<hex> digest")]
    BadDigest(String),
    #[error(
        "{path}: the stored plugin's digest is {actual}, not {expected}: the file was altered; reinstall the plugin"
    )]
    Altered {
        path: PathBuf,
        expected: String,
        actual: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where the artifact with `digest` lives in `dir`.
pub fn path_for(dir: &Path, digest: &str) -> Result<PathBuf, StoreError> {
    if !super::is_sha256_digest(digest) {
        return Err(StoreError::BadDigest(digest.escape_debug().to_string()));
    }
    Ok(dir.join(format!("{}.wasm", digest.replace(':', "-"))))
}

/// Stores `bytes` under their digest (idempotent) and returns the digest and path.
pub fn store(dir: &Path, bytes: &[u8]) -> Result<(String, PathBuf), StoreError> {
    let digest = super::digest(bytes);
    let path = path_for(dir, &digest)?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    if load(dir, &digest).is_ok() {
        return Ok((digest, path));
    }
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        digest.replace(':', "-"),
        std::process::id()
    ));
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    // The rename is durable once the directory is synced (best effort where unsupported).
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok((digest, path))
}

/// The artifact `digest` from `dir`, its digest checked.
pub fn load(dir: &Path, digest: &str) -> Result<Vec<u8>, StoreError> {
    let path = path_for(dir, digest)?;
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    let actual = super::digest(&bytes);
    if actual != digest {
        return Err(StoreError::Altered {
            path,
            expected: digest.to_owned(),
            actual,
        });
    }
    Ok(bytes)
}

/// Deletes the artifact `digest` (no error when absent).
pub fn remove(dir: &Path, digest: &str) -> Result<(), StoreError> {
    let path = path_for(dir, digest)?;
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path)(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_by_digest_and_refuses_an_altered_file() {
        let dir = tempfile::tempdir().unwrap();
        let (digest, path) = store(dir.path(), b"component").unwrap();
        assert_eq!(digest, super::super::digest(b"component"));
        assert!(path.ends_with(format!("{}.wasm", digest.replace(':', "-"))));
        assert_eq!(store(dir.path(), b"component").unwrap().1, path);
        assert_eq!(load(dir.path(), &digest).unwrap(), b"component");
        std::fs::write(&path, b"componenT").unwrap();
        assert!(matches!(
            load(dir.path(), &digest),
            Err(StoreError::Altered { .. })
        ));
        // Storing again repairs it.
        store(dir.path(), b"component").unwrap();
        assert_eq!(load(dir.path(), &digest).unwrap(), b"component");
        remove(dir.path(), &digest).unwrap();
        remove(dir.path(), &digest).unwrap();
        assert!(matches!(
            path_for(dir.path(), "../etc/passwd"),
            Err(StoreError::BadDigest(_))
        ));
    }
}
