//! Hostile guests against the real runtime: each misbehaviour is stopped with a typed error and
//! the host serves the next job normally.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use host_harness::capabilities::http::AllowedOrigin;
use host_harness::runtime::types::{InstitutionFilter, ProviderError};
use host_harness::runtime::{CallError, LoadError, Runtime, RuntimeOptions, SessionGrants};

const HOSTILE: &str = erp_components::HOSTILE_GUEST;
const GREEDY: &str = erp_components::GREEDY_GUEST;
const PONTO: &str = erp_components::PONTO_PROVIDER;
const V010: &str = erp_components::V010_GUEST;
const FILES: &str = erp_components::FILES_GUEST;

fn loopback() -> Vec<AllowedOrigin> {
    [
        "http://127.0.0.1:*",
        "http://localhost:*",
        "https://api.ibanity.com",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect()
}

fn options(dir: &Path) -> RuntimeOptions {
    let mut o = RuntimeOptions::new(dir.join("cache"));
    o.granted_origins = loopback();
    o.call_timeout = Duration::from_secs(2);
    o.max_memory_bytes = 64 * 1024 * 1024;
    o
}

fn grants(dir: &Path, config: &[(&str, &str)]) -> SessionGrants {
    let mut g = SessionGrants::new("conn-1", &dir.join("kv.sqlite"));
    g.config = config
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    g
}

fn misbehave(
    rt: &Runtime,
    dir: &Path,
    how: &str,
    config: &[(&str, &str)],
) -> Result<Result<Vec<host_harness::runtime::types::Institution>, ProviderError>, CallError> {
    let mut session = rt.session(grants(dir, config)).expect("a session starts");
    session.list_institutions(&InstitutionFilter {
        country: None,
        name_contains: Some(how.into()),
    })
}

/// After any misbehaviour, a new job on the same runtime works.
fn assert_next_job_is_served(rt: &Runtime, dir: &Path) {
    let ok = misbehave(rt, dir, "ok", &[]).expect("the next job runs");
    assert!(ok.expect("and answers").is_empty());
}

fn hostile(dir: &Path) -> Runtime {
    Runtime::load(Path::new(HOSTILE), options(dir)).expect("the hostile guest loads")
}

#[test]
fn an_infinite_loop_is_stopped_by_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let rt = hostile(dir.path());
    let started = Instant::now();
    let err = misbehave(&rt, dir.path(), "loop", &[]).unwrap_err();
    assert!(matches!(err, CallError::Timeout(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_next_job_is_served(&rt, dir.path());
}

#[test]
fn a_memory_bomb_is_stopped_by_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let rt = hostile(dir.path());
    let err = misbehave(&rt, dir.path(), "memory", &[]).unwrap_err();
    assert!(matches!(err, CallError::MemoryLimit(64)), "{err}");
    assert_next_job_is_served(&rt, dir.path());
}

#[test]
fn a_trapped_session_refuses_further_calls() {
    let dir = tempfile::tempdir().unwrap();
    let rt = hostile(dir.path());
    let mut session = rt.session(grants(dir.path(), &[])).unwrap();
    let filter = |how: &str| InstitutionFilter {
        country: None,
        name_contains: Some(how.into()),
    };
    assert!(session.list_institutions(&filter("memory")).is_err());
    assert!(matches!(
        session.list_institutions(&filter("ok")),
        Err(CallError::Poisoned)
    ));
}

#[test]
fn a_host_off_the_allowlist_is_denied() {
    let dir = tempfile::tempdir().unwrap();
    let rt = hostile(dir.path());
    let answer = misbehave(&rt, dir.path(), "off-allowlist", &[]).expect("no trap");
    match answer {
        Err(ProviderError::Transport(msg)) => assert!(
            msg.contains("Denied") && msg.contains("exfiltrate.example.com"),
            "{msg}"
        ),
        other => panic!("expected a denied request, got {other:?}"),
    }
    assert_next_job_is_served(&rt, dir.path());
}

/// A one-shot HTTP server on loopback that answers every request with `body_len` bytes.
fn serve_big_body(body_len: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {body_len}\r\nContent-Type: application/json\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes());
            let chunk = vec![b' '; 64 * 1024];
            let mut left = body_len;
            while left > 0 {
                let n = left.min(chunk.len());
                if stream.write_all(&chunk[..n]).is_err() {
                    break;
                }
                left -= n;
            }
        }
    });
    format!("http://{addr}/big")
}

#[test]
fn a_response_over_the_cap_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rt = hostile(dir.path());
    let url = serve_big_body(20 * 1024 * 1024);
    let answer = misbehave(&rt, dir.path(), "big-response", &[("url", &url)]).expect("no trap");
    match answer {
        Err(ProviderError::Transport(msg)) => assert!(msg.contains("TooLarge"), "{msg}"),
        other => panic!("expected a refused response, got {other:?}"),
    }
    assert_next_job_is_served(&rt, dir.path());
}

#[test]
fn a_log_flood_is_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let rt = hostile(dir.path());
    let mut session = rt.session(grants(dir.path(), &[])).unwrap();
    let answer = session
        .list_institutions(&InstitutionFilter {
            country: None,
            name_contains: Some("log-flood".into()),
        })
        .expect("no trap");
    assert!(answer.is_ok());
    let (written, dropped) = session.log_counts();
    assert!(written <= 1_000, "{written} lines got through");
    assert_eq!(written + dropped, 100_000);
}

#[test]
fn an_import_the_host_does_not_grant_is_rejected_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let err = Runtime::load(Path::new(GREEDY), options(dir.path()))
        .err()
        .expect("refused");
    assert!(matches!(err, LoadError::ImportNotGranted { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("evil:guest/shell") && msg.contains("greedy_guest.wasm"),
        "{msg}"
    );
}

#[test]
fn a_component_importing_a_filesystem_is_rejected_at_load_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let err = Runtime::load(Path::new(FILES), options(dir.path()))
        .err()
        .expect("refused");
    assert!(matches!(err, LoadError::ImportNotGranted { .. }), "{err}");
    assert!(err.to_string().contains("wasi:filesystem/"), "{err}");
}

#[test]
fn a_0_1_0_component_is_refused_in_one_line_naming_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    // Its own manifest says 0.1.0: refused by the manifest check.
    let err = Runtime::load(Path::new(V010), options(dir.path()))
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("api-version 0.1.0")
            && err.contains("erp:bank-sync@0.2.0")
            && !err.contains('\n'),
        "{err}"
    );
    // A manifest claiming 0.2.0 does not hide what the component was built for.
    let plugin = dir.path().join("plugin");
    std::fs::create_dir_all(&plugin).unwrap();
    let wasm = plugin.join("v010_guest.wasm");
    std::fs::copy(V010, &wasm).unwrap();
    std::fs::write(
        plugin.join("provider.toml"),
        "id = \"v010\"\nname = \"V\"\nversion = \"1\"\napi-version = \"0.2.0\"\n",
    )
    .unwrap();
    let err = Runtime::load(&wasm, options(dir.path()))
        .err()
        .expect("refused");
    assert!(matches!(err, LoadError::ApiVersion { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("built for erp:bank-sync@0.1.0")
            && msg.contains("loads erp:bank-sync@0.2.0 only")
            && !msg.contains('\n'),
        "{msg}"
    );
}

/// Copy the Ponto provider into a scratch dir, to spoil it or its manifest.
fn scratch_plugin(dir: &Path) -> PathBuf {
    let src = Path::new(PONTO);
    let plugin_dir = dir.join("plugin");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    let wasm = plugin_dir.join("ponto_provider.wasm");
    std::fs::copy(src, &wasm).unwrap();
    std::fs::copy(
        src.with_file_name("provider.toml"),
        plugin_dir.join("provider.toml"),
    )
    .unwrap();
    wasm
}

#[test]
fn bad_plugin_files_get_one_clear_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = scratch_plugin(dir.path());
    let load = || {
        Runtime::load(&wasm, options(dir.path()))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let bytes = std::fs::read(&wasm).unwrap();

    std::fs::write(&wasm, &bytes[..bytes.len() / 2]).unwrap();
    let msg = load();
    assert!(
        msg.contains("ponto_provider.wasm") && msg.contains("not a WebAssembly component"),
        "{msg}"
    );

    std::fs::write(&wasm, b"").unwrap();
    assert!(load().contains("empty"));

    // A core module (wasm version 1) is not a component.
    std::fs::write(&wasm, b"\0asm\x01\0\0\0").unwrap();
    assert!(load().contains("core module"));

    std::fs::remove_file(&wasm).unwrap();
    assert!(load().contains("cannot read the plugin"));
    std::fs::write(&wasm, &bytes).unwrap();

    let manifest = wasm.with_file_name("provider.toml");
    std::fs::write(&manifest, "id = [").unwrap();
    let msg = load();
    assert!(
        msg.contains("provider.toml") && msg.contains("does not parse"),
        "{msg}"
    );

    std::fs::write(
        &manifest,
        "id = \"ponto\"\nname = \"P\"\nversion = \"1\"\napi-version = \"0.2.0\"\n[capabilities]\nhttp = [\"https://evil.example.com\"]\n",
    )
    .unwrap();
    let msg = load();
    assert!(
        msg.contains("https://evil.example.com") && msg.contains("not granted"),
        "{msg}"
    );
    // Nothing was cached for the refused files.
    assert!(
        !dir.path().join("cache").exists()
            || std::fs::read_dir(dir.path().join("cache")).unwrap().count() <= 2
    );
}

#[test]
fn the_compiled_component_is_cached_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let first = hostile(dir.path());
    assert!(!first.from_cache);
    let second = hostile(dir.path());
    assert!(second.from_cache);
    // A tampered cache entry is not loaded: it is recompiled.
    for entry in std::fs::read_dir(dir.path().join("cache")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "cwasm") {
            let mut bytes = std::fs::read(&path).unwrap();
            let n = bytes.len();
            bytes[n / 2] ^= 0xff;
            std::fs::write(&path, bytes).unwrap();
        }
    }
    let third = hostile(dir.path());
    assert!(!third.from_cache);
    assert_next_job_is_served(&third, dir.path());
}
