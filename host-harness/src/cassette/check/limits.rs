//! The `limits` property: peak linear memory and the slowest call of the replay within the
//! budgets.

use super::driver::PassOutcome;
use super::options::CheckOptions;
use super::property::{Property, prop};

pub(super) fn check(first: &PassOutcome, options: &CheckOptions) -> Property {
    let peak_mib = first.peak_memory as f64 / (1024.0 * 1024.0);
    let slowest = first.slowest_call.as_millis() as u64;
    let within = (first.peak_memory as u64) <= options.max_memory_mib * 1024 * 1024
        && slowest <= options.max_call_ms;
    prop(
        "limits",
        within && first.traps.is_empty(),
        format!(
            "peak memory {peak_mib:.1} MiB (budget {} MiB), slowest call {slowest} ms (budget {} ms)",
            options.max_memory_mib, options.max_call_ms
        ),
    )
}
