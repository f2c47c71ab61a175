//! Two syncs of one link at once: one runs, the other reports the lock and exits non-zero.
//!
//! Kills at random points (SIGKILL, 50 of them, with reruns ending on exactly the lines of an
//! uninterrupted run) are in `reliability.rs`, which drives them by committed batches rather than
//! by wall-clock guesses, so they stay meaningful on a loaded machine.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use ponto_sandbox::{Fault, HttpFailure, SandboxConfig};
use support::cli::{Cli, line_set, stderr};
use support::sandbox::today;

fn config() -> SandboxConfig {
    SandboxConfig {
        today: Some(today()),
        transactions: 1_000,
        sync_cooldown_secs: 0,
        ..SandboxConfig::default()
    }
}

#[test]
fn a_second_sync_of_the_same_link_reports_the_lock() {
    let c = Cli::new(config(), 40);
    c.connect();
    // Slow every API answer, so the first sync is still running when the second starts.
    c.sandbox
        .inject(Fault::http(HttpFailure::Slow { millis: 150 }).always());
    let mut first = c.command(&["sync"]).stdout(Stdio::null()).spawn().unwrap();
    let conn = rusqlite::Connection::open(&c.db).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let locked: i64 = conn
            .query_row("SELECT COUNT(*) FROM link_locks", [], |r| r.get(0))
            .unwrap_or(0);
        if locked > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first sync never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = c.run(&["sync"]);
    assert_eq!(second.status.code(), Some(3), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("being synchronised"),
        "{}",
        stderr(&second)
    );
    c.sandbox.inject(Fault::ClearAll);
    assert!(first.wait().unwrap().success());
    let lines = line_set(&c.db);
    let mut ids: Vec<&String> = lines.iter().map(|l| &l.0).collect();
    ids.dedup();
    assert_eq!(ids.len(), lines.len());
}
