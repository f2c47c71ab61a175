//! Comparing replayed runs with the recorded ones, and saying in words where they differ.

use std::collections::BTreeMap;

use serde_json::Value;

use super::driver::{ExpectedRun, RunOutcome};

/// The lines of a run, all batches together.
pub(super) fn lines(run: &RunOutcome) -> Vec<&Value> {
    run.batches
        .iter()
        .flat_map(|b| b["lines"].as_array().into_iter().flatten())
        .collect()
}

pub(super) fn statements(run: &RunOutcome) -> BTreeMap<String, &Value> {
    run.batches
        .iter()
        .flat_map(|b| b["statements"].as_array().into_iter().flatten())
        .map(|s| (s["key"].as_str().unwrap_or_default().to_owned(), s))
        .collect()
}

pub(super) fn count_lines(runs: &[RunOutcome]) -> (usize, usize) {
    let l = runs.iter().map(|r| lines(r).len()).sum();
    let s = runs.iter().map(|r| statements(r).len()).sum();
    (l, s)
}

/// Where two runs first differ, in words.
pub(super) fn difference(expected: &RunOutcome, got: &RunOutcome) -> String {
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

pub(super) fn compare_runs(
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
