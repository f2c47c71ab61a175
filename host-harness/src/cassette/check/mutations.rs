//! The `mutations` property: each recorded response mutated in turn gives a typed provider error
//! or a recovery, never a trap, and commits nothing the recording does not have.

use serde_json::Value;

use super::compare::difference;
use super::driver::{Checker, ExpectedRun, RunOutcome, outcomes};
use super::logs::{LogBuffer, log_subscriber};
use super::property::{Property, prop};
use crate::cassette::format::Cassette;
use crate::cassette::replay::{Exchange, Replayer, key};

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

pub(super) fn check(
    c: &Checker,
    runs: &[ExpectedRun],
    expected: &[RunOutcome],
    logs: &LogBuffer,
) -> Property {
    let cassette = c.cassette;
    let jobs: Vec<(usize, Mutation)> = (0..cassette.interactions.len())
        .flat_map(|i| MUTATIONS.iter().map(move |m| (i, *m)))
        .collect();
    // Most of the time goes to the plugin's own retry waits, not to the CPU.
    let verdicts: Vec<Verdict> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (c, jobs, runs, expected) = (c, &jobs, runs, expected);
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
    if failures.is_empty() {
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
    }
}
