//! `erp plugin check COMPONENT --cassette C`: a conformance suite that drives any
//! `erp:bank-sync` provider through the WIT contract only, against a cassette instead of the
//! network, and reports one result per property.
//!
//! How it drives the provider: each connection of the cassette gets a fresh storage holding the
//! snapshot recorded with it (so no consent is needed), the cassette's settings, a wall clock
//! fixed at the recording time and fixed WASI randomness. Each recorded sync run (a `sync` call
//! without cursor and the calls continuing it) is replayed with the recorded account, state,
//! customer IP, date and `max-lines`, following the cursors the provider itself returns. A batch
//! counts as committed when `sync` returns it, as the ERP commits each batch whole.
//!
//! Properties:
//! - `replay`: one instance per connection gives the batches recorded (lines, updated lines,
//!   statements, pending list, progress kind; an error where the recording had one);
//! - `resume`: a new instance for every call (a stop at each batch boundary, cursor and state
//!   carried by the host) gives the same lines, none doubled, none lost, and the same statements;
//! - `determinism`: the cassette replayed again gives identical results;
//! - `mutations`: each recorded response mutated in turn (truncated; status 401, 429, 500, 503;
//!   the `id` fields removed; the `id` fields turned into numbers; a paging loop; a foreign next
//!   link; a body padded to 8 MiB) gives a typed provider error or a recovery, never a trap, and
//!   every batch committed is one the recording has (nothing of a failed batch committed). A
//!   transient fault (the first six) is served once before the real response, so a retry
//!   recovers; a paging loop is served every time the looping URL is asked;
//! - `limits`: peak linear memory and the slowest call of the replay within the budgets;
//! - `log-secrets`: no line the plugin logs holds a secret of the cassette (a placeholder or a
//!   value under a secret key).
//!
//! Each property is a module of its own; `driver` replays the runs a cassette records and
//! `compare` says where two replays differ.

mod compare;
mod determinism;
mod driver;
mod limits;
mod log_secrets;
mod logs;
mod mutations;
mod options;
mod property;
mod replay;
mod resume;

use std::path::Path;
use std::time::Duration;

use super::format::{Cassette, SyncCall, SyncResult};
use super::replay::Replayer;
use crate::runtime::{Manifest, Runtime, RuntimeOptions};
use compare::count_lines;
use driver::{Checker, ExpectedRun, PassOutcome, RunOutcome, expected_runs, outcomes};
use logs::{LogBuffer, log_subscriber};
pub use options::CheckOptions;
pub use property::Property;

/// Run the suite. `Err` is a setup failure (unreadable cassette, plugin that does not load).
pub fn run(options: &CheckOptions) -> Result<Vec<Property>, String> {
    let cassette = Cassette::load(&options.cassette)?;
    let manifest =
        Manifest::load(&Manifest::path_for(&options.component)).map_err(|e| e.to_string())?;
    let mut runtime_options = RuntimeOptions::new(options.cache_dir.clone());
    // Nothing reaches the network in a check: what the manifest asks for is granted.
    runtime_options.granted_origins = manifest.requested_origins().unwrap_or_default();
    runtime_options.call_timeout = Duration::from_secs(20);
    runtime_options.max_memory_bytes =
        usize::try_from(options.max_memory_mib.saturating_mul(4 << 20))
            .unwrap_or(usize::MAX)
            .max(64 << 20);
    let runtime = Runtime::load(&options.component, runtime_options).map_err(|e| e.to_string())?;
    let work = std::env::temp_dir().join(format!(
        "erp-check-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let clock = chrono::DateTime::parse_from_rfc3339(&cassette.recorded_at)
        .ok()
        .map(std::time::SystemTime::from);
    let mut checker = Checker {
        runtime,
        cassette: &cassette,
        work: work.clone(),
        passes: Default::default(),
        clock,
    };
    let logs = LogBuffer::default();
    let subscriber = log_subscriber(&logs);
    if options.bless {
        let pass = checker.pass(&Replayer::exchanges(&cassette), None, false);
        let _ = std::fs::remove_dir_all(&work);
        return bless(&cassette, &pass, &options.cassette);
    }
    let properties =
        tracing::subscriber::with_default(subscriber, || properties(&mut checker, options, &logs));
    let _ = std::fs::remove_dir_all(&work);
    Ok(properties)
}

/// Rewrite the cassette's `syncs` from a replay: each run's first request, then one call per
/// batch (a continuation's `cursor` is written as `"(continued)"`: only its presence matters).
fn bless(cassette: &Cassette, pass: &PassOutcome, path: &Path) -> Result<Vec<Property>, String> {
    let runs = expected_runs(cassette);
    let mut syncs = Vec::new();
    for (i, outcome) in &pass.runs {
        let first = &runs[*i].calls[0];
        let mut request = first.request.clone();
        for batch in &outcome.batches {
            syncs.push(SyncCall {
                connection: first.connection.clone(),
                request: request.clone(),
                result: SyncResult::Ok(batch.clone()),
            });
            request.cursor = Some("(continued)".into());
        }
        if let Some(e) = &outcome.error {
            syncs.push(SyncCall {
                connection: first.connection.clone(),
                request: request.clone(),
                result: SyncResult::Error(e.clone()),
            });
        }
    }
    let mut blessed = cassette.clone();
    blessed.syncs = syncs;
    blessed
        .save(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let (lines, statements) = count_lines(&outcomes(pass));
    Ok(vec![Property {
        name: "bless",
        passed: pass.traps.is_empty(),
        detail: format!("{lines} lines and {statements} statements stored as the expected result"),
    }])
}

fn properties(c: &mut Checker, options: &CheckOptions, logs: &LogBuffer) -> Vec<Property> {
    let cassette = c.cassette;
    let runs = expected_runs(cassette);
    let expected: Vec<RunOutcome> = runs.iter().map(ExpectedRun::outcome).collect();
    let exchanges = Replayer::exchanges(cassette);
    // One replay serves `replay`, `determinism` (as the reference) and `limits`.
    let first = c.pass(&exchanges, None, false);
    let first_runs = outcomes(&first);
    let mut out = vec![
        replay::check(&expected, &first_runs, &runs),
        resume::check(c, &exchanges, &expected, &runs),
        determinism::check(c, &exchanges, &first_runs, &runs),
    ];
    if options.mutations {
        out.push(mutations::check(c, &runs, &expected, logs));
    }
    out.push(limits::check(&first, options));
    out.push(log_secrets::check(cassette, logs));
    out
}
