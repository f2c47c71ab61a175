//! The `replay` property: one instance per connection gives the batches recorded.

use super::compare::{compare_runs, count_lines};
use super::driver::{ExpectedRun, RunOutcome};
use super::property::{Property, prop};

pub(super) fn check(
    expected: &[RunOutcome],
    first_runs: &[RunOutcome],
    runs: &[ExpectedRun],
) -> Property {
    let (n_lines, n_statements) = count_lines(expected);
    match compare_runs(expected, first_runs, runs) {
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
    }
}
