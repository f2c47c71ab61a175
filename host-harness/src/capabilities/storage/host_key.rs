//! The host key that encrypts stored values: from [`KEY_ENV`], or a private key file beside the
//! database (see "The key" in the storage module).

use std::io;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{OsRng, rand_core::RngCore};

/// Environment variable holding the host storage key (64 hex digits or base64 of 32 bytes).
pub const KEY_ENV: &str = "ERP_STORAGE_KEY";

/// Parses a storage key: 64 hex digits or standard base64 of 32 bytes (surrounding blanks ignored).
pub fn parse_key(text: &str) -> io::Result<[u8; 32]> {
    let t = text.trim();
    let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
    } else {
        STANDARD.decode(t).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "the storage key is neither 64 hex digits nor base64 of 32 bytes",
            )
        })?
    };
    bytes.try_into().map_err(|b: Vec<u8>| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the storage key has {} bytes, 32 are needed", b.len()),
        )
    })
}

/// Reads the key file at `path` (64 hex digits), creating it with a fresh random key and mode
/// 0600 when it does not exist. A key file that group or others may read is refused (Unix): the
/// key would no longer protect the tokens. Creation is atomic (written aside, then linked into
/// place), so two processes starting together agree on one key.
pub fn load_or_create_key(path: &Path) -> io::Result<[u8; 32]> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            check_private(path)?;
            return parse_key(&text)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut key = [0u8; 32];
    OsRng.fill_bytes(&mut key);
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        f.write_all(format!("{hex}\n").as_bytes())?;
        f.sync_all()?;
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => load_or_create_key(path),
        Err(e) => Err(e),
    }
}

/// The host key: [`KEY_ENV`] when set, else the key file at `key_file` ([`load_or_create_key`]).
pub fn host_key(key_file: &Path) -> io::Result<[u8; 32]> {
    match std::env::var(KEY_ENV) {
        Ok(text) if !text.trim().is_empty() => {
            parse_key(&text).map_err(|e| io::Error::new(e.kind(), format!("{KEY_ENV}: {e}")))
        }
        _ => load_or_create_key(key_file),
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the storage key file {} can be read by other users (mode {:o}): run `chmod 600` on it",
                path.display(),
                mode & 0o777
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> io::Result<()> {
    Ok(())
}
