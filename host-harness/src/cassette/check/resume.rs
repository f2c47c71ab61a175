//! The `resume` property: a new instance for every call (a stop at each batch boundary, cursor
//! and state carried by the host) gives the same lines, none doubled, none lost.

use std::collections::HashSet;

use super::compare::{difference, lines, statements};
use super::driver::{Checker, ExpectedRun, RunOutcome, outcomes};
use super::property::{Property, prop};
use crate::cassette::replay::Exchange;

pub(super) fn check(
    c: &Checker,
    exchanges: &[Exchange],
    expected: &[RunOutcome],
    runs: &[ExpectedRun],
) -> Property {
    let resumed = c.pass(exchanges, None, true);
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
    match problem {
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
    }
}
