//! Tests of the storage capability: scoping, compare-and-swap, quota, recovery of refused
//! writes, encryption at rest and the host key.

use super::*;

fn open(dir: &tempfile::TempDir, conn: &str) -> StorageCapability {
    StorageCapability::open(
        &dir.path().join("kv.sqlite"),
        "acme",
        conn,
        Quota::default(),
    )
    .unwrap()
}

#[test]
fn set_get_delete_and_list_by_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let mut kv = open(&dir, "c1");
    kv.set("oauth/refresh".into(), "r1".into()).unwrap();
    kv.set("oauth/access".into(), "a1".into()).unwrap();
    kv.set("state".into(), "{}".into()).unwrap();
    assert_eq!(
        kv.get("oauth/refresh".into()).unwrap().as_deref(),
        Some("r1")
    );
    assert_eq!(
        kv.list_keys("oauth/".into()).unwrap(),
        vec!["oauth/access", "oauth/refresh"]
    );
    kv.delete("oauth/access".into()).unwrap();
    kv.delete("never-set".into()).unwrap();
    assert_eq!(kv.get("oauth/access".into()).unwrap(), None);
    assert_eq!(kv.list_keys(String::new()).unwrap().len(), 2);
}

#[test]
fn connections_do_not_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = open(&dir, "a");
    let mut b = open(&dir, "b");
    a.set("k".into(), "from a".into()).unwrap();
    assert_eq!(b.get("k".into()).unwrap(), None);
    assert!(b.list_keys(String::new()).unwrap().is_empty());
}

/// Two workers holding `rt` = r1 race to rotate it: exactly one wins; then the winner's value is
/// deleted by compare-and-swap.
fn rotate_r1_once(a: &mut StorageCapability, b: &mut StorageCapability) {
    assert!(
        a.compare_and_swap("rt".into(), Some("r1".into()), Some("r2".into()))
            .unwrap()
    );
    assert!(
        !b.compare_and_swap("rt".into(), Some("r1".into()), Some("r3".into()))
            .unwrap()
    );
    assert_eq!(b.get("rt".into()).unwrap().as_deref(), Some("r2"));
    assert!(
        b.compare_and_swap("rt".into(), Some("r2".into()), None)
            .unwrap()
    );
    assert_eq!(a.get("rt".into()).unwrap(), None);
}

#[test]
fn compare_and_swap_rotates_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = open(&dir, "c");
    let mut b = open(&dir, "c");
    assert!(
        a.compare_and_swap("rt".into(), None, Some("r1".into()))
            .unwrap()
    );
    rotate_r1_once(&mut a, &mut b);
}

#[test]
fn writes_are_durable_for_a_new_connection() {
    let dir = tempfile::tempdir().unwrap();
    open(&dir, "c").set("k".into(), "v".into()).unwrap();
    assert_eq!(
        open(&dir, "c").get("k".into()).unwrap().as_deref(),
        Some("v")
    );
}

#[test]
fn quota_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let quota = Quota {
        max_keys: 2,
        max_value_bytes: 8,
    };
    let mut kv = StorageCapability::open(&dir.path().join("kv.sqlite"), "p", "c", quota).unwrap();
    assert!(matches!(
        kv.set("big".into(), "123456789".into()),
        Err(StorageError::QuotaExceeded(_))
    ));
    kv.set("a".into(), "1".into()).unwrap();
    kv.set("b".into(), "2".into()).unwrap();
    kv.set("a".into(), "3".into()).unwrap(); // overwriting is not a new key
    assert!(matches!(
        kv.set("c".into(), "4".into()),
        Err(StorageError::QuotaExceeded(_))
    ));
}

const KEY: [u8; 32] = [7; 32];
/// A short lock timeout and retry budget, so the tests outlast them quickly.
const SHORT: WritePolicy = WritePolicy {
    busy_timeout: Duration::from_millis(50),
    retry_for: Duration::from_millis(300),
};

fn open_short(dir: &tempfile::TempDir, conn: &str) -> StorageCapability {
    StorageCapability::open_with(
        &dir.path().join("kv.sqlite"),
        "acme",
        conn,
        Quota::default(),
        SHORT,
    )
    .unwrap()
    .with_key(Some(KEY))
}

/// Another connection holding the write lock until dropped.
fn lock_database(dir: &tempfile::TempDir) -> Connection {
    let c = Connection::open(dir.path().join("kv.sqlite")).unwrap();
    c.execute_batch("BEGIN EXCLUSIVE").unwrap();
    c
}

fn recovery_files(dir: &tempfile::TempDir) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("kv.sqlite.recovery-"))
        .collect()
}

#[test]
fn the_recovery_file_is_reserved_private_and_removed_when_unused() {
    let dir = tempfile::tempdir().unwrap();
    let kv = open_short(&dir, "c");
    let path = kv.recovery_path().to_owned();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.len(), RESERVED_BYTES as u64);
    use std::os::unix::fs::MetadataExt;
    assert!(
        meta.blocks() * 512 >= RESERVED_BYTES as u64,
        "the blocks are allocated, not sparse"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    drop(kv);
    assert!(recovery_files(&dir).is_empty());
}

#[test]
fn a_rotation_the_locked_database_refuses_is_kept_and_written_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut kv = open_short(&dir, "c");
    kv.set("oauth/refresh-token".into(), "r1".into()).unwrap();
    let lock = lock_database(&dir);
    // Acme has rotated the token: the swap is kept although the database refuses it.
    assert!(
        kv.compare_and_swap(
            "oauth/refresh-token".into(),
            Some("r1".into()),
            Some(TOKEN.into())
        )
        .unwrap()
    );
    kv.set("oauth/access-token".into(), "a2".into()).unwrap();
    // The session reads what it kept; a stale expectation is refused honestly.
    assert_eq!(
        kv.get("oauth/refresh-token".into()).unwrap().as_deref(),
        Some(TOKEN)
    );
    assert!(
        !kv.compare_and_swap("oauth/refresh-token".into(), Some("r1".into()), None)
            .unwrap()
    );
    assert_eq!(
        kv.list_keys("oauth/".into()).unwrap(),
        vec!["oauth/access-token", "oauth/refresh-token"]
    );
    let file = kv.recovery_path().to_owned();
    let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
    assert!(text.contains("enc:v1:") && !text.contains(TOKEN), "{text}");
    drop(kv); // still locked: the file stays
    assert_eq!(recovery_files(&dir), vec![file.clone()]);
    drop(lock);
    // The next open writes it back before anything reads.
    let mut kv = open_short(&dir, "c");
    assert_eq!(
        kv.get("oauth/refresh-token".into()).unwrap().as_deref(),
        Some(TOKEN)
    );
    assert_eq!(
        raw_row(&dir, "c", "oauth/access-token").map(|r| r.starts_with(ENC_PREFIX)),
        Some(true)
    );
    assert!(!file.exists());
    drop(kv);
    assert!(recovery_files(&dir).is_empty());
}

#[test]
fn time_waiting_on_a_refusing_database_is_credited_to_the_call_once_and_capped() {
    let dir = tempfile::tempdir().unwrap();
    let mut kv = open_short(&dir, "c");
    kv.new_call();
    kv.set("a".into(), "1".into()).unwrap();
    assert_eq!(
        kv.deadline_credit(),
        Duration::ZERO,
        "a plain write is the plugin's time"
    );
    let lock = lock_database(&dir);
    kv.set("a".into(), "2".into()).unwrap();
    let credit = kv.deadline_credit();
    assert!(credit >= SHORT.retry_for / 2, "{credit:?}");
    assert_eq!(kv.deadline_credit(), Duration::ZERO, "credited once");
    for i in 0..20 {
        kv.set("b".into(), i.to_string()).unwrap();
    }
    let more = kv.deadline_credit();
    assert!(
        credit + more <= SHORT.retry_for * 2,
        "{credit:?} + {more:?}"
    );
    drop(lock);
    kv.new_call();
    assert_eq!(kv.deadline_credit(), Duration::ZERO);
}

#[test]
fn a_kept_value_goes_in_with_the_next_write_the_database_takes() {
    let dir = tempfile::tempdir().unwrap();
    let mut kv = open_short(&dir, "c");
    let lock = lock_database(&dir);
    kv.set("a".into(), "1".into()).unwrap();
    kv.delete("gone".into()).unwrap();
    drop(lock);
    kv.set("b".into(), "2".into()).unwrap();
    let mut other = open_short(&dir, "c");
    assert_eq!(other.get("a".into()).unwrap().as_deref(), Some("1"));
    assert_eq!(other.get("b".into()).unwrap().as_deref(), Some("2"));
    drop(kv);
    drop(other);
    assert!(recovery_files(&dir).is_empty());
}

#[test]
fn a_replay_never_undoes_a_later_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut kv = open_short(&dir, "c");
    kv.set("k".into(), "v1".into()).unwrap();
    let lock = lock_database(&dir);
    kv.set("k".into(), "v2".into()).unwrap();
    drop(kv); // ends while the database is still locked: v2 stays in its file
    drop(lock);
    // Another process writes k before the kept value is written back.
    set_raw_row(&dir, "c", "k", "newer");
    let mut kv = open_short(&dir, "c");
    assert_eq!(kv.get("k".into()).unwrap().as_deref(), Some("newer"));
    assert_eq!(recovery_files(&dir), vec![kv.recovery_path().to_owned()]);
}

#[test]
fn a_session_does_not_replay_a_live_sessions_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = open_short(&dir, "c");
    let lock = lock_database(&dir);
    a.set("k".into(), "kept".into()).unwrap();
    drop(lock);
    // `a` still runs: its value is in its memory and its file, not written back by `b`.
    let mut b = open_short(&dir, "c");
    assert_eq!(raw_row(&dir, "c", "k"), None);
    assert_eq!(a.get("k".into()).unwrap().as_deref(), Some("kept"));
    drop(a); // the database is free again: written back at the end
    assert_eq!(b.get("k".into()).unwrap().as_deref(), Some("kept"));
}

const TOKEN: &str = "refresh-3f9c2a-very-secret";

fn open_keyed(dir: &tempfile::TempDir, conn: &str, key: Option<[u8; 32]>) -> StorageCapability {
    open(dir, conn).with_key(key)
}

/// The row exactly as SQLite holds it.
fn raw_row(dir: &tempfile::TempDir, conn: &str, key: &str) -> Option<String> {
    let db = Connection::open(dir.path().join("kv.sqlite")).unwrap();
    db.query_row(
        "SELECT value FROM plugin_storage WHERE plugin = 'acme' AND connection = ?1 AND key = ?2",
        params![conn, key],
        |r| r.get(0),
    )
    .optional()
    .unwrap()
}

fn set_raw_row(dir: &tempfile::TempDir, conn: &str, key: &str, value: &str) {
    let db = Connection::open(dir.path().join("kv.sqlite")).unwrap();
    db.execute(
        "INSERT INTO plugin_storage (plugin, connection, key, value) VALUES ('acme', ?1, ?2, ?3)
         ON CONFLICT (plugin, connection, key) DO UPDATE SET value = excluded.value",
        params![conn, key, value],
    )
    .unwrap();
}

fn unavailable_text(r: Result<Option<String>, StorageError>) -> String {
    match r {
        Err(StorageError::Unavailable(m)) => m,
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[test]
fn encrypted_round_trip_and_the_row_holds_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let mut kv = open_keyed(&dir, "c", Some(KEY));
    kv.set("oauth/refresh-token".into(), TOKEN.into()).unwrap();
    assert_eq!(
        kv.get("oauth/refresh-token".into()).unwrap().as_deref(),
        Some(TOKEN)
    );
    let row = raw_row(&dir, "c", "oauth/refresh-token").unwrap();
    assert!(row.starts_with(ENC_PREFIX), "{row}");
    assert!(!row.contains(TOKEN) && !row.contains("secret"), "{row}");
    // A fresh nonce per write: the same value never gives the same row twice.
    kv.set("oauth/refresh-token".into(), TOKEN.into()).unwrap();
    assert_ne!(raw_row(&dir, "c", "oauth/refresh-token").unwrap(), row);
    // Durable and readable by another handle holding the same key.
    assert_eq!(
        open_keyed(&dir, "c", Some(KEY))
            .get("oauth/refresh-token".into())
            .unwrap()
            .as_deref(),
        Some(TOKEN)
    );
    assert_eq!(
        kv.list_keys("oauth/".into()).unwrap(),
        vec!["oauth/refresh-token"]
    );
    // Empty values encrypt too.
    kv.set("empty".into(), String::new()).unwrap();
    assert_eq!(kv.get("empty".into()).unwrap().as_deref(), Some(""));
}

#[test]
fn a_tampered_row_fails_authentication_without_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut kv = open_keyed(&dir, "c", Some(KEY));
    kv.set("k".into(), TOKEN.into()).unwrap();
    let row = raw_row(&dir, "c", "k").unwrap();
    let body = row.strip_prefix(ENC_PREFIX).unwrap();
    let mut bytes = STANDARD.decode(body).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let mut flipped_ct = bytes.clone();
    flipped_ct[NONCE_LEN] ^= 0x80;
    bytes[last] ^= 1;
    let mut flipped_nonce = bytes.clone();
    flipped_nonce[0] ^= 1;
    let tampered = [
        format!("{ENC_PREFIX}{}", STANDARD.encode(&flipped_ct)),
        format!("{ENC_PREFIX}{}", STANDARD.encode(&flipped_nonce)),
        format!("{ENC_PREFIX}{}", STANDARD.encode(&bytes[..bytes.len() - 1])),
        format!("{ENC_PREFIX}{}", STANDARD.encode(&bytes[..5])),
        format!("{ENC_PREFIX}not base64!"),
        ENC_PREFIX.to_string(),
    ];
    for t in tampered {
        set_raw_row(&dir, "c", "k", &t);
        let m = unavailable_text(kv.get("k".into()));
        assert!(
            m.contains("failed authentication") && m.contains("`k`"),
            "{m}"
        );
        // A compare-and-swap against an unreadable value changes nothing.
        assert!(
            kv.compare_and_swap("k".into(), Some(TOKEN.into()), Some("x".into()))
                .is_err()
        );
        assert_eq!(raw_row(&dir, "c", "k").as_deref(), Some(t.as_str()));
    }
}

#[test]
fn a_value_moved_to_another_key_or_connection_does_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = open_keyed(&dir, "a", Some(KEY));
    a.set("oauth/refresh-token".into(), TOKEN.into()).unwrap();
    let row = raw_row(&dir, "a", "oauth/refresh-token").unwrap();
    set_raw_row(&dir, "a", "oauth/access-token", &row);
    set_raw_row(&dir, "b", "oauth/refresh-token", &row);
    let m = unavailable_text(a.get("oauth/access-token".into()));
    assert!(m.contains("failed authentication"), "{m}");
    let mut b = open_keyed(&dir, "b", Some(KEY));
    assert!(
        unavailable_text(b.get("oauth/refresh-token".into())).contains("failed authentication")
    );
    // The original still reads.
    assert_eq!(
        a.get("oauth/refresh-token".into()).unwrap().as_deref(),
        Some(TOKEN)
    );
}

#[test]
fn wrong_key_and_missing_key_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    open_keyed(&dir, "c", Some(KEY))
        .set("k".into(), TOKEN.into())
        .unwrap();
    let mut wrong = open_keyed(&dir, "c", Some([8; 32]));
    assert!(unavailable_text(wrong.get("k".into())).contains("failed authentication"));
    let mut none = open_keyed(&dir, "c", None);
    let m = unavailable_text(none.get("k".into()));
    assert!(m.contains("no storage key") && m.contains(KEY_ENV), "{m}");
    assert!(!m.contains(TOKEN));
}

#[test]
fn legacy_plaintext_reads_and_is_encrypted_at_its_next_write() {
    let dir = tempfile::tempdir().unwrap();
    open_keyed(&dir, "c", None)
        .set("k".into(), TOKEN.into())
        .unwrap();
    assert_eq!(raw_row(&dir, "c", "k").as_deref(), Some(TOKEN));
    let mut kv = open_keyed(&dir, "c", Some(KEY));
    assert_eq!(kv.get("k".into()).unwrap().as_deref(), Some(TOKEN));
    // Rotation by compare-and-swap from the legacy plaintext.
    assert!(
        kv.compare_and_swap("k".into(), Some(TOKEN.into()), Some("r2".into()))
            .unwrap()
    );
    let row = raw_row(&dir, "c", "k").unwrap();
    assert!(row.starts_with(ENC_PREFIX) && !row.contains("r2"), "{row}");
    assert_eq!(kv.get("k".into()).unwrap().as_deref(), Some("r2"));
}

#[test]
fn compare_and_swap_compares_plaintexts_of_encrypted_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = open_keyed(&dir, "c", Some(KEY));
    let mut b = open_keyed(&dir, "c", Some(KEY));
    assert!(
        a.compare_and_swap("rt".into(), None, Some("r1".into()))
            .unwrap()
    );
    assert!(
        !a.compare_and_swap("rt".into(), None, Some("r1".into()))
            .unwrap()
    );
    // The stored text is a ciphertext; the plugin's expected value is the plaintext.
    let row = raw_row(&dir, "c", "rt").unwrap();
    assert!(
        !a.compare_and_swap("rt".into(), Some(row.clone()), Some("x".into()))
            .unwrap()
    );
    rotate_r1_once(&mut a, &mut b);
    assert_eq!(raw_row(&dir, "c", "rt"), None);
}

#[test]
fn quota_counts_the_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let quota = Quota {
        max_keys: 4,
        max_value_bytes: 8,
    };
    let mut kv = StorageCapability::open(&dir.path().join("kv.sqlite"), "acme", "c", quota)
        .unwrap()
        .with_key(Some(KEY));
    kv.set("a".into(), "12345678".into()).unwrap();
    assert!(matches!(
        kv.set("b".into(), "123456789".into()),
        Err(StorageError::QuotaExceeded(_))
    ));
}

#[test]
fn key_text_forms() {
    let hex = "07".repeat(32);
    assert_eq!(parse_key(&format!(" {hex}\n")).unwrap(), KEY);
    assert_eq!(parse_key(&STANDARD.encode(KEY)).unwrap(), KEY);
    for bad in [
        "",
        "abc",
        &"0".repeat(63),
        &"zz".repeat(32),
        &STANDARD.encode([1u8; 31]),
    ] {
        assert_eq!(
            parse_key(bad).unwrap_err().kind(),
            io::ErrorKind::InvalidData,
            "{bad}"
        );
    }
}

#[test]
fn key_file_is_created_once_private_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("storage.key");
    let k1 = load_or_create_key(&path).unwrap();
    let k2 = load_or_create_key(&path).unwrap();
    assert_eq!(k1, k2);
    assert_ne!(k1, [0; 32]);
    assert_eq!(
        parse_key(&std::fs::read_to_string(&path).unwrap()).unwrap(),
        k1
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create_key(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }
    // Another database's key is another key.
    assert_ne!(
        load_or_create_key(&dir.path().join("other.key")).unwrap(),
        k1
    );
}
