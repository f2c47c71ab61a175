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

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::format::{Cassette, RecordedBody, SyncCall, SyncResult};
use super::redact::{PLACEHOLDER_PREFIX, Redactor};
use super::replay::{Exchange, Replayer, key};
use super::results;
use crate::bindings::storage::Host as _;
use crate::capabilities::http::HttpPolicy;
use crate::capabilities::storage::{Quota, StorageCapability};
use crate::runtime::types::{SyncProgress, SyncRequest};
use crate::runtime::{Manifest, Runtime, RuntimeOptions, Session, SessionGrants};

/// Budgets and places of a check.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    pub component: PathBuf,
    pub cassette: PathBuf,
    /// Peak linear memory allowed, in MiB.
    pub max_memory_mib: u64,
    /// Slowest `sync` call allowed, in milliseconds.
    pub max_call_ms: u64,
    /// Run the mutation property (the slowest: one replay per response and mutation).
    pub mutations: bool,
    /// Instead of checking, store what the component returns as the cassette's expected result
    /// (for a hand-written cassette; review the diff).
    pub bless: bool,
    pub cache_dir: PathBuf,
}

/// One property's verdict.
#[derive(Clone, Debug)]
pub struct Property {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// What one replayed run gave.
#[derive(Clone, Debug)]
struct RunOutcome {
    /// Batches returned (committed), in order.
    batches: Vec<Value>,
    /// The provider-error case that ended it, or `trap: ...`.
    error: Option<String>,
    /// The error's text, for the report only (not compared).
    message: String,
}

impl PartialEq for RunOutcome {
    fn eq(&self, other: &Self) -> bool {
        self.batches == other.batches && self.error == other.error
    }
}

#[derive(Default)]
struct PassOutcome {
    /// Each replayed run with its index among the recorded runs.
    runs: Vec<(usize, RunOutcome)>,
    traps: Vec<String>,
    peak_memory: usize,
    slowest_call: Duration,
}

/// A recorded run: its first request and what each call returned.
struct ExpectedRun<'a> {
    connection: &'a str,
    calls: Vec<&'a SyncCall>,
}

impl ExpectedRun<'_> {
    fn outcome(&self) -> RunOutcome {
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

fn expected_runs(cassette: &Cassette) -> Vec<ExpectedRun<'_>> {
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

struct Checker<'a> {
    runtime: Runtime,
    cassette: &'a Cassette,
    work: PathBuf,
    passes: std::sync::atomic::AtomicU64,
    clock: Option<std::time::SystemTime>,
}

impl Checker<'_> {
    /// Replay every run (of one connection, or all) against `exchanges`.
    fn pass(&self, exchanges: &[Exchange], only: Option<&str>, per_call: bool) -> PassOutcome {
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
            let replayer: Arc<dyn super::HttpTap> = Arc::new(Replayer::new(
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
        tap: &Arc<dyn super::HttpTap>,
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
        tap: &Arc<dyn super::HttpTap>,
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

fn outcomes(pass: &PassOutcome) -> Vec<RunOutcome> {
    pass.runs.iter().map(|(_, r)| r.clone()).collect()
}

/// The lines of a run, all batches together.
fn lines(run: &RunOutcome) -> Vec<&Value> {
    run.batches
        .iter()
        .flat_map(|b| b["lines"].as_array().into_iter().flatten())
        .collect()
}

fn statements(run: &RunOutcome) -> BTreeMap<String, &Value> {
    run.batches
        .iter()
        .flat_map(|b| b["statements"].as_array().into_iter().flatten())
        .map(|s| (s["key"].as_str().unwrap_or_default().to_owned(), s))
        .collect()
}

fn count_lines(runs: &[RunOutcome]) -> (usize, usize) {
    let l = runs.iter().map(|r| lines(r).len()).sum();
    let s = runs.iter().map(|r| statements(r).len()).sum();
    (l, s)
}

/// Where two runs first differ, in words.
fn difference(expected: &RunOutcome, got: &RunOutcome) -> String {
    if expected.error != got.error {
        return format!(
            "ended with {} where the recording ended with {}{}",
            got.error.as_deref().unwrap_or("done"),
            expected.error.as_deref().unwrap_or("done"),
            if got.message.is_empty() {
                String::new()
            } else {
                format!(" ({})", got.message)
            }
        );
    }
    for (i, (e, g)) in expected.batches.iter().zip(&got.batches).enumerate() {
        if e != g {
            let field = [
                "lines",
                "updated_lines",
                "statements",
                "pending",
                "progress",
            ]
            .into_iter()
            .find(|f| e[f] != g[f])
            .unwrap_or("batch");
            let n = |v: &Value| v[field].as_array().map_or(1, Vec::len);
            return format!(
                "batch {}: {field} differ ({} recorded, {} returned){}",
                i + 1,
                n(e),
                n(g),
                first_field_difference(&e[field], &g[field])
            );
        }
    }
    format!(
        "{} batches where the recording has {}",
        got.batches.len(),
        expected.batches.len()
    )
}

/// `; first in <id>: <key>` for two lists of records of the same length.
fn first_field_difference(e: &Value, g: &Value) -> String {
    let (Some(e), Some(g)) = (e.as_array(), g.as_array()) else {
        return String::new();
    };
    for (a, b) in e.iter().zip(g) {
        if let (Some(a), Some(b)) = (a.as_object(), b.as_object())
            && let Some(k) = a.keys().find(|k| a.get(*k) != b.get(*k))
        {
            let id = a
                .get("transaction_id")
                .or_else(|| a.get("key"))
                .and_then(Value::as_str)
                .unwrap_or("?");
            return format!("; first in {id}: `{k}`");
        }
    }
    String::new()
}

fn compare_runs(
    expected: &[RunOutcome],
    got: &[RunOutcome],
    runs: &[ExpectedRun],
) -> Option<String> {
    for (i, (e, g)) in expected.iter().zip(got).enumerate() {
        if e != g {
            return Some(format!(
                "sync of account {}: {}",
                runs[i].calls[0].request.account_id,
                difference(e, g)
            ));
        }
    }
    (expected.len() != got.len())
        .then(|| format!("{} runs, {} recorded", got.len(), expected.len()))
}

#[derive(Clone, Copy, Debug)]
enum Mutation {
    Truncated,
    Status(u16),
    FieldRemoved,
    TypeChanged,
    PagingLoop,
    ForeignNext,
    Huge,
}

/// Threads replaying mutated cassettes at once.
const THREADS: usize = 4;

const MUTATIONS: &[Mutation] = &[
    Mutation::Truncated,
    Mutation::Status(401),
    Mutation::Status(429),
    Mutation::Status(500),
    Mutation::Status(503),
    Mutation::FieldRemoved,
    Mutation::TypeChanged,
    Mutation::PagingLoop,
    Mutation::ForeignNext,
    Mutation::Huge,
];

impl std::fmt::Display for Mutation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mutation::Truncated => write!(f, "truncated"),
            Mutation::Status(s) => write!(f, "status {s}"),
            Mutation::FieldRemoved => write!(f, "field removed"),
            Mutation::TypeChanged => write!(f, "type changed"),
            Mutation::PagingLoop => write!(f, "paging loop"),
            Mutation::ForeignNext => write!(f, "foreign next link"),
            Mutation::Huge => write!(f, "huge body"),
        }
    }
}

/// Apply `f` to every value under key `name`; true when one was found.
fn edit_key(v: &mut Value, name: &str, f: &mut dyn FnMut(&mut Value)) -> bool {
    match v {
        Value::Object(map) => {
            let mut found = false;
            if let Some(item) = map.get_mut(name) {
                f(item);
                found = true;
            }
            for (k, item) in map.iter_mut() {
                if k != name {
                    found |= edit_key(item, name, f);
                }
            }
            found
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |found, i| edit_key(i, name, f) | found),
        _ => false,
    }
}

fn remove_key(v: &mut Value, name: &str) -> bool {
    match v {
        Value::Object(map) => {
            let mut found = map.remove(name).is_some();
            for item in map.values_mut() {
                found |= remove_key(item, name);
            }
            found
        }
        Value::Array(items) => items.iter_mut().fold(false, |f, i| remove_key(i, name) | f),
        _ => false,
    }
}

/// The exchanges with interaction `index` mutated, or none when the mutation does not apply.
fn mutate(cassette: &Cassette, index: usize, m: Mutation) -> Option<Vec<Exchange>> {
    let mut exchanges = Replayer::exchanges(cassette);
    let interaction = &cassette.interactions[index];
    let response = interaction.response.as_ref()?;
    let text = match response.body.to_body() {
        crate::bindings::http::Body::Text(t) => t,
        crate::bindings::http::Body::Binary(_) => return None,
    };
    let json: Option<Value> = serde_json::from_str(&text).ok();
    let mut changed = response.to_response();
    let mut transient = true;
    let mut repeat = false;
    let set_json = |r: &mut crate::bindings::http::Response, v: &Value| {
        r.body = crate::bindings::http::Body::Text(v.to_string());
    };
    match m {
        Mutation::Truncated => {
            if text.len() < 2 {
                return None;
            }
            let mut cut = text.len() / 2;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            changed.body = crate::bindings::http::Body::Text(text[..cut].to_owned());
        }
        Mutation::Status(s) => {
            changed.status = s;
            if s == 429 {
                changed.headers.push(("retry-after".into(), "1".into()));
            }
        }
        Mutation::FieldRemoved => {
            let mut v = json?;
            if !remove_key(&mut v, "id") {
                let first = v.as_object()?.keys().next()?.clone();
                v.as_object_mut()?.remove(&first);
            }
            set_json(&mut changed, &v);
        }
        Mutation::TypeChanged => {
            let mut v = json?;
            if !edit_key(&mut v, "id", &mut |x| *x = Value::from(12345)) {
                let first = v.as_object()?.keys().next()?.clone();
                v.as_object_mut()?.insert(first, Value::Array(Vec::new()));
            }
            set_json(&mut changed, &v);
        }
        Mutation::PagingLoop | Mutation::ForeignNext => {
            let original = json?;
            let mut v = original.clone();
            let own = interaction.request.url.clone();
            let found = edit_key(&mut v, "next", &mut |x| {
                if let Some(next) = x.as_str().filter(|n| !n.is_empty()) {
                    *x = Value::from(match m {
                        Mutation::PagingLoop => own.clone(),
                        _ => foreign(next),
                    });
                }
            });
            if !found || v == original {
                return None;
            }
            set_json(&mut changed, &v);
            transient = false;
            repeat = matches!(m, Mutation::PagingLoop);
        }
        Mutation::Huge => {
            let mut padded = text.clone();
            padded.push_str(&" ".repeat(8 * 1024 * 1024));
            changed.body = crate::bindings::http::Body::Text(padded);
            transient = false;
        }
    }
    let mut mutated = exchanges[index].clone();
    mutated.outcome = Ok(changed);
    mutated.repeat = repeat;
    mutated.transient = transient;
    if transient {
        exchanges.insert(index, mutated);
    } else {
        exchanges[index] = mutated;
    }
    Some(exchanges)
}

/// The same path and query on an origin no plugin is granted.
fn foreign(next: &str) -> String {
    match url::Url::parse(next) {
        Ok(u) => {
            let mut s = format!("https://foreign.invalid{}", u.path());
            if let Some(q) = u.query() {
                s.push('?');
                s.push_str(q);
            }
            s
        }
        Err(_) => format!("https://foreign.invalid/{}", next.trim_start_matches('/')),
    }
}

/// The secrets a log line must not hold: placeholders, and every value the redaction rules find
/// in the cassette (a hand-written cassette may hold stand-in values rather than placeholders).
fn secret_finder(cassette: &Cassette) -> Redactor {
    let mut r = Redactor::new(false);
    for (k, v) in &cassette.config {
        r.learn_entry(k, v);
    }
    for c in &cassette.connections {
        for (k, v) in &c.storage {
            r.learn_entry(k, v);
        }
    }
    let text = |b: &RecordedBody| match b.to_body() {
        crate::bindings::http::Body::Text(t) => t,
        crate::bindings::http::Body::Binary(_) => String::new(),
    };
    for i in &cassette.interactions {
        r.learn_url(&i.request.url);
        for (n, v) in &i.request.headers {
            r.learn_header(n, v);
        }
        r.learn_body(&text(&i.request.body));
        if let Some(resp) = &i.response {
            for (n, v) in &resp.headers {
                r.learn_header(n, v);
            }
            r.learn_body(&text(&resp.body));
        }
    }
    r
}

/// Plugin log lines, captured while the check runs on this thread.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

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

enum Verdict {
    Error,
    Recovery,
    Failure(String),
}

/// Replay with interaction `index` mutated by `m`; none when the mutation does not apply.
fn judge(
    c: &Checker,
    index: usize,
    m: Mutation,
    runs: &[ExpectedRun],
    expected: &[RunOutcome],
) -> Option<Verdict> {
    let interaction = &c.cassette.interactions[index];
    let mutated = mutate(c.cassette, index, m)?;
    let pass = c.pass(&mutated, Some(&interaction.connection), false);
    let what = format!(
        "{m} on {}",
        key(&interaction.request.method, &interaction.request.url)
    );
    if let Some(t) = pass.traps.first() {
        return Some(Verdict::Failure(format!("{what}: {t}")));
    }
    let wanted = runs
        .iter()
        .zip(expected)
        .filter(|(r, _)| r.connection == interaction.connection)
        .map(|(_, e)| e);
    let mut failed_typed = false;
    for (e, g) in wanted.zip(outcomes(&pass).iter()) {
        let prefix = g.batches.len() <= e.batches.len()
            && g.batches.iter().zip(&e.batches).all(|(a, b)| a == b);
        if !prefix || (g.error.is_none() && g.batches.len() != e.batches.len()) {
            return Some(Verdict::Failure(format!(
                "{what}: committed what the recording does not have: {}",
                difference(e, g)
            )));
        }
        if g.error.is_some() && g.error != e.error {
            failed_typed = true;
        }
    }
    Some(if failed_typed {
        Verdict::Error
    } else {
        Verdict::Recovery
    })
}

fn log_subscriber(logs: &LogBuffer) -> impl tracing::Subscriber + Send + Sync + use<> {
    let logs = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("plugin=trace"))
        .with_ansi(false)
        .with_writer(move || logs.clone())
        .finish()
}

fn properties(c: &mut Checker, options: &CheckOptions, logs: &LogBuffer) -> Vec<Property> {
    let cassette = c.cassette;
    let runs = expected_runs(cassette);
    let expected: Vec<RunOutcome> = runs.iter().map(ExpectedRun::outcome).collect();
    let exchanges = Replayer::exchanges(cassette);
    let mut out = Vec::new();
    let prop = |name, passed, detail: String| Property {
        name,
        passed,
        detail,
    };

    // replay
    let first = c.pass(&exchanges, None, false);
    let first_runs = outcomes(&first);
    let (n_lines, n_statements) = count_lines(&expected);
    out.push(match compare_runs(&expected, &first_runs, &runs) {
        None if expected.is_empty() => prop("replay", false, "the cassette records no sync".into()),
        None => prop(
            "replay",
            true,
            format!(
                "{} syncs: {n_lines} lines, {n_statements} statements as recorded",
                runs.len()
            ),
        ),
        Some(d) => prop("replay", false, d),
    });

    // resume
    let resumed = c.pass(&exchanges, None, true);
    let resumed_runs = outcomes(&resumed);
    let boundaries: usize = resumed_runs
        .iter()
        .map(|r| r.batches.len().saturating_sub(1))
        .sum();
    let mut problem = None;
    let (mut doubled, mut lost) = (0usize, 0usize);
    for (i, (e, g)) in expected.iter().zip(&resumed_runs).enumerate() {
        let ids = |r: &RunOutcome| -> Vec<String> {
            lines(r)
                .iter()
                .map(|l| l["transaction_id"].as_str().unwrap_or_default().to_owned())
                .collect()
        };
        let (want, got) = (ids(e), ids(g));
        let mut seen = HashSet::new();
        doubled += got.iter().filter(|id| !seen.insert(id.as_str())).count();
        let got_set: HashSet<_> = got.iter().collect();
        lost += want.iter().filter(|id| !got_set.contains(id)).count();
        if problem.is_none()
            && (lines(e) != lines(g) || statements(e) != statements(g) || e.error != g.error)
        {
            problem = Some(format!(
                "sync of account {}: {}",
                runs[i].calls[0].request.account_id,
                if e.error != g.error {
                    difference(e, g)
                } else {
                    format!(
                        "{} lines recorded, {} after resuming",
                        lines(e).len(),
                        lines(g).len()
                    )
                }
            ));
        }
    }
    if resumed_runs.len() != expected.len() && problem.is_none() {
        problem = Some("a run went missing".into());
    }
    out.push(match problem {
        None => prop(
            "resume",
            true,
            format!(
                "a new instance at each of {boundaries} batch boundaries: identical lines, none doubled, none lost"
            ),
        ),
        Some(p) => prop(
            "resume",
            false,
            format!("{p} ({doubled} doubled, {lost} lost)"),
        ),
    });

    // determinism
    let again = c.pass(&exchanges, None, false);
    let again_runs = outcomes(&again);
    out.push(if again_runs == first_runs {
        prop(
            "determinism",
            true,
            "the same cassette twice: identical results".into(),
        )
    } else {
        prop(
            "determinism",
            false,
            compare_runs(&first_runs, &again_runs, &runs)
                .unwrap_or_else(|| "the two replays differ".into()),
        )
    });

    // mutations
    if options.mutations {
        let jobs: Vec<(usize, Mutation)> = (0..cassette.interactions.len())
            .flat_map(|i| MUTATIONS.iter().map(move |m| (i, *m)))
            .collect();
        // Most of the time goes to the plugin's own retry waits, not to the CPU.
        let verdicts: Vec<Verdict> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (c, jobs, runs, expected) = (&*c, &jobs, &runs, &expected);
                    scope.spawn(move || {
                        tracing::subscriber::with_default(log_subscriber(logs), || {
                            jobs.iter()
                                .skip(t)
                                .step_by(THREADS)
                                .filter_map(|&(i, m)| judge(c, i, m, runs, expected))
                                .collect::<Vec<_>>()
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        let tried = verdicts.len();
        let errors = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Error))
            .count();
        let recoveries = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Recovery))
            .count();
        let failures: Vec<&String> = verdicts
            .iter()
            .filter_map(|v| match v {
                Verdict::Failure(f) => Some(f),
                _ => None,
            })
            .collect();
        out.push(if failures.is_empty() {
            prop(
                "mutations",
                true,
                format!(
                    "{tried} mutated responses: {errors} typed provider errors, {recoveries} recoveries; no trap, nothing of a failed batch committed"
                ),
            )
        } else {
            prop(
                "mutations",
                false,
                format!(
                    "{} of {tried} mutated responses: {}",
                    failures.len(),
                    failures[0]
                ),
            )
        });
    }

    // limits
    let peak_mib = first.peak_memory as f64 / (1024.0 * 1024.0);
    let slowest = first.slowest_call.as_millis() as u64;
    let within = (first.peak_memory as u64) <= options.max_memory_mib * 1024 * 1024
        && slowest <= options.max_call_ms;
    out.push(prop(
        "limits",
        within && first.traps.is_empty(),
        format!(
            "peak memory {peak_mib:.1} MiB (budget {} MiB), slowest call {slowest} ms (budget {} ms)",
            options.max_memory_mib, options.max_call_ms
        ),
    ));

    // log-secrets
    let finder = secret_finder(cassette);
    let text =
        String::from_utf8_lossy(&logs.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    let n = text.lines().count();
    let leak = text
        .lines()
        .find(|l| l.contains(PLACEHOLDER_PREFIX) || finder.scrub(l) != *l);
    out.push(match leak {
        None => prop(
            "log-secrets",
            true,
            format!("{n} plugin log lines, none holds a secret of the cassette"),
        ),
        Some(l) => prop(
            "log-secrets",
            false,
            format!(
                "a plugin log line holds a secret: {}",
                finder.scrub(l).replace(PLACEHOLDER_PREFIX, "SECRET-")
            ),
        ),
    });
    out
}
