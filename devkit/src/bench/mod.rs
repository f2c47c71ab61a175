//! `erp-dev bench`: measured figures of sync speed, wasm overhead, start-up and memory (issue 6).
//!
//! The parent process starts the loopback Ponto sandboxes and runs each figure in a child
//! process of its own (`erp-dev bench --child SPEC`), so each figure's host peak RSS (VmHWM) is its
//! own and the sandboxes' memory is not counted. Every figure runs several times; the table gives
//! the median and the spread (min–max).
//!
//! 1. first sync of one account (100,000 transactions, pages of 100) into a fresh SQLite file;
//! 2. the provider's sync logic (parse + map + statement bookkeeping) natively vs in the
//!    component, over the same pages served from memory (see [`proxy`]);
//! 3. the in-process baseline: native provider, replayed pages, the ERP's own SQLite path;
//! 4. component start: compile, cached load + instantiate, size;
//! 5. incremental sync with 10 new transactions;
//! 6. 50 accounts × 200 transactions, one by one vs on all cores.

mod figures;
pub mod native;
pub mod proxy;
pub mod wasm;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use figures::{ChildSpec, SandboxRef};
use host_harness::erp::errors::ErpError;

/// `erp-dev bench` options.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct BenchArgs {
    /// Reduced sizes (10,000 transactions, 10 accounts, 3 runs): under 2 minutes in release.
    #[arg(long)]
    pub quick: bool,
    /// Runs of each figure (default 5, or 3 with --quick).
    #[arg(long)]
    pub runs: Option<u32>,
    /// Only these figures (1-6), comma separated.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<u32>,
    /// Internal: run one figure in this process as described by this file, print JSON.
    #[arg(long, hide = true)]
    pub child: Option<PathBuf>,
}

/// A bound a figure should meet.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    AtMost(f64),
    AtLeast(f64),
}

impl Target {
    pub fn met(self, v: f64) -> bool {
        match self {
            Target::AtMost(t) => v <= t,
            Target::AtLeast(t) => v >= t,
        }
    }
    fn text(self) -> String {
        match self {
            Target::AtMost(t) => format!("≤ {}", fmt_num(t)),
            Target::AtLeast(t) => format!("≥ {}", fmt_num(t)),
        }
    }
}

/// One measured quantity, all its runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Metric {
    pub figure: String,
    pub key: String,
    pub label: String,
    pub unit: String,
    pub samples: Vec<f64>,
    pub target: Option<Target>,
}

/// Median, min and max of some samples.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

pub fn summarize(samples: &[f64]) -> Option<Summary> {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Summary {
        median,
        min: v[0],
        max: v[n - 1],
    })
}

/// What a child prints.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ChildResult {
    pub metrics: Vec<Metric>,
    pub notes: Vec<String>,
    pub peak_rss_mib: f64,
    /// The figure whose host peak RSS this child's is.
    pub rss_figure: Option<String>,
}

/// This process's peak resident set (VmHWM), in MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| parse_vmhwm_kib(&s))
        .map_or(f64::NAN, |kib| kib as f64 / 1024.0)
}

fn parse_vmhwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The machine, for the report.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} CPU(s), {model}")
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub machine: String,
    pub quick: bool,
    pub runs: u32,
    pub seconds: f64,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub figure: String,
    pub key: String,
    pub label: String,
    pub unit: String,
    pub runs: usize,
    #[serde(flatten)]
    pub summary: Option<Summary>,
    pub target: Option<Target>,
    pub met: Option<bool>,
}

fn row(m: &Metric) -> Row {
    let summary = summarize(&m.samples);
    Row {
        figure: m.figure.clone(),
        key: m.key.clone(),
        label: m.label.clone(),
        unit: m.unit.clone(),
        runs: m.samples.len(),
        summary,
        target: m.target,
        met: m.target.zip(summary).map(|(t, s)| t.met(s.median)),
    }
}

struct Plan {
    runs: u32,
    transactions: u64,
    accounts: u32,
}

fn child(spec: &ChildSpec, config: Option<&Path>) -> anyhow::Result<ChildResult> {
    let file = spec.workdir.join(format!("spec-{}.json", spec.figure));
    let file_error = |path: &Path| {
        let path = path.to_owned();
        move |source| ErpError::File {
            path,
            doing: "",
            source,
        }
    };
    std::fs::create_dir_all(&spec.workdir).map_err(file_error(&spec.workdir))?;
    std::fs::write(&file, serde_json::to_vec(spec).unwrap_or_default())
        .map_err(file_error(&file))?;
    let exe = std::env::current_exe().map_err(|source| ErpError::Process {
        doing: "cannot find the erp-dev executable",
        source,
    })?;
    let mut cmd = Command::new(exe);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let output = cmd
        .arg("bench")
        .arg("--child")
        .arg(&file)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|source| ErpError::Process {
            doing: "cannot run the benchmark child",
            source,
        })?;
    let _ = std::fs::remove_file(&file);
    if !output.status.success() {
        return Err(anyhow::anyhow!(format!(
            "benchmark figure {} failed ({}); its error is above",
            spec.figure, output.status
        )));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        anyhow::anyhow!(format!(
            "benchmark figure {}: unreadable child output: {e}",
            spec.figure
        ))
    })
}

fn start_sandbox(
    seed: u64,
    transactions: u64,
    cooldown: u64,
) -> anyhow::Result<(ponto_sandbox::Sandbox, SandboxRef)> {
    let sb = ponto_sandbox::Sandbox::start(
        ponto_sandbox::SandboxConfig {
            seed,
            transactions,
            sync_cooldown_secs: cooldown,
            ..Default::default()
        },
        0,
    )
    .map_err(|e| anyhow::anyhow!(format!("cannot start the Ponto sandbox: {e:#}")))?;
    let first = sb
        .accounts()
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("the sandbox has no account"))?;
    let r = SandboxRef {
        base_url: sb.base_url(),
        account_id: first.id,
        institution_id: first.institution_id,
    };
    Ok((sb, r))
}

/// `erp-dev bench`.
pub fn run(args: BenchArgs, config: Option<&Path>, json: bool) -> anyhow::Result<i32> {
    if let Some(spec_file) = &args.child {
        let text = std::fs::read(spec_file).map_err(|source| ErpError::File {
            path: spec_file.clone(),
            doing: "",
            source,
        })?;
        let spec: ChildSpec = serde_json::from_slice(&text)
            .map_err(|e| ErpError::Usage(format!("bad --child spec: {e}")))?;
        let result = figures::run(&spec)?;
        println!("{}", serde_json::to_string(&result).unwrap_or_default());
        return Ok(0);
    }
    if let Some(bad) = args.only.iter().find(|f| !(1..=6).contains(*f)) {
        return Err(ErpError::Usage(format!("--only {bad}: the figures are 1 to 6")).into());
    }
    if args.runs == Some(0) {
        return Err(ErpError::Usage("--runs must be at least 1".into()).into());
    }
    let plan = if args.quick {
        Plan {
            runs: args.runs.unwrap_or(3),
            transactions: 10_000,
            accounts: 10,
        }
    } else {
        Plan {
            runs: args.runs.unwrap_or(5),
            transactions: 100_000,
            accounts: 50,
        }
    };
    let wanted = |f: u32| args.only.is_empty() || args.only.contains(&f);
    let workdir = std::env::temp_dir().join(format!("erp-bench-{}", std::process::id()));
    let t0 = Instant::now();
    let mut results: Vec<ChildResult> = Vec::new();
    let spec = |figure: &str, sandboxes: Vec<SandboxRef>, runs: u32| ChildSpec {
        figure: figure.into(),
        runs,
        transactions: plan.transactions,
        sandboxes,
        workdir: workdir.clone(),
        config: config.map(Path::to_owned),
    };
    let progress = |what: &str| {
        if !json {
            eprintln!(
                "erp-dev bench: {what} ({:.0} s so far)",
                t0.elapsed().as_secs_f64()
            );
        }
    };
    let outcome = (|| -> anyhow::Result<()> {
        if wanted(4) {
            progress("figure 4, component start");
            results.push(child(&spec("4", vec![], plan.runs), config)?);
        }
        if wanted(1) {
            progress(&format!(
                "figure 1, first sync of {} transactions",
                plan.transactions
            ));
            let (_sb, r) = start_sandbox(42, plan.transactions, 60)?;
            results.push(child(&spec("1", vec![r], plan.runs), config)?);
        }
        if wanted(2) || wanted(3) {
            progress("figures 2 and 3, native vs component and the in-process baseline");
            let (_sb, r) = start_sandbox(42, plan.transactions, 60)?;
            results.push(child(&spec("23", vec![r], plan.runs), config)?);
        }
        if wanted(5) {
            progress("figure 5, incremental sync");
            let (_sb, r) = start_sandbox(42, plan.transactions, 0)?;
            results.push(child(&spec("5", vec![r], plan.runs), config)?);
        }
        if wanted(6) {
            progress(&format!(
                "figure 6, {} accounts × 200 transactions",
                plan.accounts
            ));
            let mut sandboxes = Vec::new();
            let mut refs = Vec::new();
            for i in 0..plan.accounts {
                let (sb, r) = start_sandbox(1000 + u64::from(i), 200, 60)?;
                sandboxes.push(sb);
                refs.push(r);
            }
            // Figure 6 connects 2 × accounts links per run: fewer runs keep it short.
            results.push(child(&spec("6", refs, plan.runs.min(3)), config)?);
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&workdir);
    outcome?;
    let report = build_report(&results, plan.runs, args.quick, t0.elapsed().as_secs_f64());
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", render(&report));
    }
    Ok(0)
}

fn build_report(results: &[ChildResult], runs: u32, quick: bool, seconds: f64) -> Report {
    let mut rows: Vec<Row> = results
        .iter()
        .flat_map(|r| r.metrics.iter().map(row))
        .collect();
    let mut notes: Vec<String> = results
        .iter()
        .flat_map(|r| r.notes.iter().cloned())
        .collect();
    for r in results {
        if let Some(f) = &r.rss_figure {
            rows.push(Row {
                figure: f.clone(),
                key: "host_peak_rss".into(),
                label: "host peak RSS (VmHWM of the figure's process)".into(),
                unit: "MiB".into(),
                runs: 1,
                summary: summarize(&[r.peak_rss_mib]),
                target: None,
                met: None,
            });
        }
    }
    // Figure 1 against the baseline of figure 3, median against median.
    let median = |f: &str, k: &str| {
        rows.iter()
            .find(|r| r.figure == f && r.key == k)
            .and_then(|r| r.summary)
            .map(|s| s.median)
    };
    if let (Some(a), Some(b)) = (median("1", "seconds"), median("3", "seconds")) {
        let target = Some(Target::AtMost(2.0));
        rows.push(Row {
            figure: "3".into(),
            key: "ratio".into(),
            label: "figure 1 time / baseline time (medians)".into(),
            unit: "×".into(),
            runs: 1,
            summary: summarize(&[a / b]),
            target,
            met: target.map(|t| t.met(a / b)),
        });
    }
    rows.sort_by(|a, b| a.figure.cmp(&b.figure));
    notes.sort();
    notes.dedup();
    Report {
        machine: machine(),
        quick,
        runs,
        seconds,
        rows,
        notes,
    }
}

fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// The report as a Markdown table (pasted as is into docs/performance.md).
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "erp-dev bench{}: {} run(s) per figure, {:.0} s, on {}\n\n",
        if report.quick { " --quick" } else { "" },
        report.runs,
        report.seconds,
        report.machine
    ));
    out.push_str(
        "| fig | measure | median | min – max | unit | target |\n|---|---|---:|---:|---|---|\n",
    );
    for r in &report.rows {
        let (median, spread) = match r.summary {
            Some(s) if r.runs > 1 => (
                fmt_num(s.median),
                format!("{} – {}", fmt_num(s.min), fmt_num(s.max)),
            ),
            Some(s) => (fmt_num(s.median), String::new()),
            None => ("-".into(), String::new()),
        };
        let target = match (r.target, r.met) {
            (Some(t), Some(true)) => format!("{} ✓", t.text()),
            (Some(t), Some(false)) => format!("{} **missed**", t.text()),
            (Some(t), None) => t.text(),
            (None, _) => String::new(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.figure, r.label, median, spread, r.unit, target
        ));
    }
    for n in &report.notes {
        out.push_str(&format!("\n- {n}"));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_spread() {
        let s = summarize(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (3.0, 1.0, 5.0));
        assert_eq!(summarize(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert_eq!(summarize(&[f64::NAN]), None);
        assert_eq!(summarize(&[]), None);
    }

    #[test]
    fn targets_are_checked_on_the_median() {
        let m = Metric {
            figure: "1".into(),
            key: "tx_per_s".into(),
            label: "rate".into(),
            unit: "tx/s".into(),
            samples: vec![40_000.0, 60_000.0, 55_000.0],
            target: Some(Target::AtLeast(50_000.0)),
        };
        assert_eq!(row(&m).met, Some(true));
        let m = Metric {
            samples: vec![2.0, 1.0, 1.2],
            target: Some(Target::AtMost(1.0)),
            ..m
        };
        assert_eq!(row(&m).met, Some(false));
    }

    #[test]
    fn vmhwm_is_read_in_kib() {
        let status = "Name:\terp\nVmPeak:\t  100 kB\nVmHWM:\t   20480 kB\nVmRSS:\t 1 kB\n";
        assert_eq!(parse_vmhwm_kib(status), Some(20480));
        assert_eq!(parse_vmhwm_kib("Name: x\n"), None);
    }

    #[test]
    fn ratio_of_figure_1_to_the_baseline_is_added() {
        let metric = |figure: &str, samples: Vec<f64>| Metric {
            figure: figure.into(),
            key: "seconds".into(),
            label: String::new(),
            unit: "s".into(),
            samples,
            target: None,
        };
        let results = vec![
            ChildResult {
                metrics: vec![metric("1", vec![3.0, 3.0, 9.0])],
                ..Default::default()
            },
            ChildResult {
                metrics: vec![metric("3", vec![1.0, 1.0, 1.0])],
                ..Default::default()
            },
        ];
        let report = build_report(&results, 3, true, 1.0);
        let ratio = report.rows.iter().find(|r| r.key == "ratio").unwrap();
        assert_eq!(ratio.summary.unwrap().median, 3.0);
        assert_eq!(ratio.met, Some(false));
        assert!(render(&report).contains("**missed**"));
    }
}
