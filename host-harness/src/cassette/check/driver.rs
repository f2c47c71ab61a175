//! How the check drives a provider: the runs a cassette records, and one pass replaying them
//! through the WIT contract (fresh storage per connection, fixed clock and randomness).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bindings::storage::Host as _;
use crate::capabilities::http::HttpPolicy;
use crate::capabilities::storage::{Quota, StorageCapability};
use crate::cassette::HttpTap;
use crate::cassette::format::{Cassette, SyncCall, SyncResult};
use crate::cassette::replay::{Exchange, Replayer};
use crate::cassette::results;
use crate::runtime::types::{SyncProgress, SyncRequest};
use crate::runtime::{Runtime, Session, SessionGrants};

/// What one replayed run gave.
#[derive(Clone, Debug)]
pub(super) struct RunOutcome {
    /// Batches returned (committed), in order.
    pub(super) batches: Vec<Value>,
    /// The provider-error case that ended it, or `trap: ...`.
    pub(super) error: Option<String>,
    /// The error's text, for the report only (not compared).
    pub(super) message: String,
}

impl PartialEq for RunOutcome {
    fn eq(&self, other: &Self) -> bool {
        self.batches == other.batches && self.error == other.error
    }
}

#[derive(Default)]
pub(super) struct PassOutcome {
    /// Each replayed run with its index among the recorded runs.
    pub(super) runs: Vec<(usize, RunOutcome)>,
    pub(super) traps: Vec<String>,
    pub(super) peak_memory: usize,
    pub(super) slowest_call: Duration,
}

/// A recorded run: its first request and what each call returned.
pub(super) struct ExpectedRun<'a> {
    pub(super) connection: &'a str,
    pub(super) calls: Vec<&'a SyncCall>,
}

impl ExpectedRun<'_> {
    pub(super) fn outcome(&self) -> RunOutcome {
        let mut out = RunOutcome {
            batches: Vec::new(),
            error: None,
            message: String::new(),
        };
        for c in &self.calls {
            match &c.result {
                SyncResult::Ok(b) => out.batches.push(b.clone()),
                SyncResult::Error(e) => out.error = Some(e.clone()),
            }
        }
        out
    }
}

pub(super) fn expected_runs(cassette: &Cassette) -> Vec<ExpectedRun<'_>> {
    let mut runs: Vec<ExpectedRun> = Vec::new();
    for call in &cassette.syncs {
        let continues = call.request.cursor.is_some()
            && runs
                .iter()
                .rev()
                .find(|r| r.connection == call.connection)
                .is_some_and(|r| {
                    r.calls
                        .last()
                        .is_some_and(|l| l.request.account_id == call.request.account_id)
                });
        if continues {
            if let Some(r) = runs
                .iter_mut()
                .rev()
                .find(|r| r.connection == call.connection)
            {
                r.calls.push(call);
            }
        } else {
            runs.push(ExpectedRun {
                connection: &call.connection,
                calls: vec![call],
            });
        }
    }
    runs
}

pub(super) struct Checker<'a> {
    pub(super) runtime: Runtime,
    pub(super) cassette: &'a Cassette,
    pub(super) work: PathBuf,
    pub(super) passes: std::sync::atomic::AtomicU64,
    pub(super) clock: Option<std::time::SystemTime>,
}

impl Checker<'_> {
    /// Replay every run (of one connection, or all) against `exchanges`.
    pub(super) fn pass(
        &self,
        exchanges: &[Exchange],
        only: Option<&str>,
        per_call: bool,
    ) -> PassOutcome {
        let n = self
            .passes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let storage_path = self.work.join(format!("pass-{n}.sqlite"));
        let mut out = PassOutcome::default();
        let runs = expected_runs(self.cassette);
        let connections: Vec<&str> = {
            let mut seen = Vec::new();
            for r in &runs {
                if !seen.contains(&r.connection) && only.is_none_or(|o| o == r.connection) {
                    seen.push(r.connection);
                }
            }
            seen
        };
        for connection in connections {
            if let Err(e) = self.restore(&storage_path, connection) {
                out.traps.push(format!("cannot prepare the storage: {e}"));
                continue;
            }
            let replayer: Arc<dyn HttpTap> = Arc::new(Replayer::new(
                exchanges.to_vec(),
                HttpPolicy::default().max_response_bytes,
            ));
            let mut session: Option<Session> = None;
            for (i, run) in runs
                .iter()
                .enumerate()
                .filter(|(_, r)| r.connection == connection)
            {
                let outcome = self.run(
                    run,
                    &storage_path,
                    &replayer,
                    &mut session,
                    per_call,
                    &mut out,
                );
                out.runs.push((i, outcome));
            }
        }
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", storage_path.display()));
        }
        // In the recording's order (connections were replayed one after the other).
        out.runs.sort_by_key(|(i, _)| *i);
        out
    }

    fn restore(&self, path: &Path, connection: &str) -> Result<(), String> {
        let snapshot = self
            .cassette
            .connections
            .iter()
            .find(|c| c.connection == connection);
        let mut storage = StorageCapability::open(
            path,
            &self.runtime.manifest().id,
            connection,
            Quota::default(),
        )
        .map_err(|e| format!("{e:#}"))?;
        for (k, v) in snapshot.map(|s| &s.storage).into_iter().flatten() {
            storage
                .set(k.clone(), v.clone())
                .map_err(|e| format!("{e:?}"))?;
        }
        Ok(())
    }

    fn session(
        &self,
        path: &Path,
        connection: &str,
        tap: &Arc<dyn HttpTap>,
    ) -> Result<Session, String> {
        let mut grants = SessionGrants::new(connection, path);
        grants.config = self.cassette.config.clone();
        grants.wall_clock = self.clock;
        grants.deterministic = true;
        grants.http_tap = Some(tap.clone());
        self.runtime.session(grants).map_err(|e| e.to_string())
    }

    fn run(
        &self,
        run: &ExpectedRun,
        path: &Path,
        tap: &Arc<dyn HttpTap>,
        session: &mut Option<Session>,
        per_call: bool,
        pass: &mut PassOutcome,
    ) -> RunOutcome {
        let first = &run.calls[0].request;
        let mut request = SyncRequest {
            account_id: first.account_id.clone(),
            cursor: None,
            state: first.state.clone(),
            customer_ip: first.customer_ip.clone(),
            since: first.since.clone(),
            max_lines: first.max_lines,
        };
        let mut out = RunOutcome {
            batches: Vec::new(),
            error: None,
            message: String::new(),
        };
        // A provider that never says `done` is stopped well past the recording's length.
        let most = run.calls.len() * 4 + 8;
        for _ in 0..most {
            if per_call {
                *session = None;
            }
            if session.is_none() {
                match self.session(path, run.connection, tap) {
                    Ok(s) => *session = Some(s),
                    Err(e) => {
                        out.error = Some(format!("trap: {e}"));
                        pass.traps.push(e);
                        return out;
                    }
                }
            }
            let s = session.as_mut().expect("set above");
            let started = Instant::now();
            let result = s.sync(&request);
            pass.slowest_call = pass.slowest_call.max(started.elapsed());
            pass.peak_memory = pass.peak_memory.max(s.peak_memory());
            match result {
                Ok(Ok(batch)) => {
                    out.batches.push(results::batch(&batch));
                    match batch.progress {
                        SyncProgress::More(cursor) => request.cursor = Some(cursor),
                        SyncProgress::Done(_) => return out,
                    }
                }
                Ok(Err(e)) => {
                    out.error = Some(results::error_case(&e).to_owned());
                    out.message = format!("{e:?}");
                    return out;
                }
                Err(e) => {
                    *session = None;
                    let e = short(&e.to_string());
                    out.error = Some(format!("trap: {e}"));
                    pass.traps.push(e);
                    return out;
                }
            }
        }
        out.error = Some(format!("trap: no `done` after {most} batches"));
        pass.traps.push(format!(
            "account {}: no `done` after {most} batches",
            run.calls[0].request.account_id
        ));
        out
    }
}

/// A runtime failure in one line: what the plugin said (its panic message) rather than the wasm
/// backtrace.
fn short(e: &str) -> String {
    match e.split_once("plugin said: ") {
        Some((head, said)) => {
            let head = head.split(':').next().unwrap_or(head);
            let said: Vec<&str> = said.lines().filter(|l| !l.starts_with("note:")).collect();
            format!("{head}: {}", said.join(" "))
        }
        None => e.lines().next().unwrap_or(e).to_owned(),
    }
}

pub(super) fn outcomes(pass: &PassOutcome) -> Vec<RunOutcome> {
    pass.runs.iter().map(|(_, r)| r.clone()).collect()
}
