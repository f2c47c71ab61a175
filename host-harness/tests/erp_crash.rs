//! Crash safety of `erp sync`: killed (SIGKILL) at random points, at least 20 times, then rerun,
//! it ends with exactly the lines and statements of an uninterrupted run. And two syncs of one
//! link at once: one runs, the other reports the lock and exits non-zero.

mod erp_support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use erp_support::{Cli, assert_ok, line_set, statement_set, stderr, today};
use ponto_sandbox::{Fault, HttpFailure, SandboxConfig};

fn config() -> SandboxConfig {
    SandboxConfig {
        today: Some(today()),
        transactions: 8_000,
        sync_cooldown_secs: 0,
        ..SandboxConfig::default()
    }
}

/// A small deterministic generator (xorshift64*), so a failing run can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn killed_at_random_points_and_rerun_equals_an_uninterrupted_run() {
    // Reference: the same seeded data in its own sandbox, synced without interruption.
    let reference = Cli::new(config(), 100);
    reference.connect();
    let t = Instant::now();
    assert_ok(&reference.run(&["institutions"]));
    let startup = t.elapsed();
    let t = Instant::now();
    assert_ok(&reference.run(&["sync"]));
    let full = t.elapsed();
    let expected_lines = line_set(&reference.db);
    let expected_statements = statement_set(&reference.db);
    let total = expected_lines.len();
    assert!(total >= 8_000, "{total} lines");

    let victim = Cli::new(config(), 100);
    victim.connect();
    let seed = std::env::var("ERP_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_u64);
    let mut rng = Rng(seed);
    // Kill anywhere from late start-up to an eighth of the whole sync's work later, so one sync
    // is cut many times at many points (start-up, mid-batch, mid-commit) from start to end.
    let low = startup.as_millis() as u64 * 3 / 4;
    let span = startup.as_millis() as u64 / 2 + full.as_millis() as u64 / 8 + 1;
    let (mut kills, mut finished, mut attempts) = (0, 0, 0);
    let mut partials = Vec::new();
    while kills < 30 && attempts < 150 {
        attempts += 1;
        // SIGKILL the process (no destructor, no cleanup runs).
        let mut child = victim
            .command(&["sync"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn erp sync");
        std::thread::sleep(Duration::from_millis(low + rng.next() % span));
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "an uninterrupted sync must succeed");
                finished += 1;
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
                partials.push(line_set(&victim.db).len());
            }
        }
    }
    let mid_sync = partials.iter().filter(|&&n| n > 0 && n < total).count();
    assert!(
        kills >= 20,
        "only {kills} kills landed in {attempts} attempts (seed {seed})"
    );
    assert!(
        mid_sync >= 10,
        "only {mid_sync} kills cut the first sync: {partials:?} (seed {seed})"
    );
    assert_ok(&victim.run(&["sync"]));
    assert_ok(&victim.run(&["sync"]));
    let lines = line_set(&victim.db);
    assert_eq!(
        lines.len(),
        expected_lines.len(),
        "seed {seed}, partial counts {partials:?}"
    );
    assert_eq!(lines, expected_lines, "seed {seed}");
    assert_eq!(
        statement_set(&victim.db),
        expected_statements,
        "seed {seed}"
    );
    println!(
        "crash test: {kills} kills ({mid_sync} inside the first sync), {finished} syncs finished between kills, {} lines, start-up {startup:?}, uninterrupted sync {full:?}, line counts after each kill {partials:?}",
        lines.len()
    );
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
