//! The `determinism` property: the cassette replayed again gives identical results.

use super::compare::compare_runs;
use super::driver::{Checker, ExpectedRun, RunOutcome, outcomes};
use super::property::{Property, prop};
use crate::cassette::replay::Exchange;

pub(super) fn check(
    c: &Checker,
    exchanges: &[Exchange],
    first_runs: &[RunOutcome],
    runs: &[ExpectedRun],
) -> Property {
    let again = c.pass(exchanges, None, false);
    let again_runs = outcomes(&again);
    if again_runs == first_runs {
        prop(
            "determinism",
            true,
            "the same cassette twice: identical results".into(),
        )
    } else {
        prop(
            "determinism",
            false,
            compare_runs(first_runs, &again_runs, runs)
                .unwrap_or_else(|| "the two replays differ".into()),
        )
    }
}
