//! The results folder of a sweep: CSV tables ([`tables`]), plots
//! ([`plots`]), a markdown report ([`markdown`]) and a manifest naming every
//! input (config, code version, data hashes, encoder).

mod markdown;
mod plots;
mod tables;

use std::path::{Path, PathBuf};

use pairguard_model::metrics::Metric;
use pairguard_run::write_atomic;

use crate::baselines::BaselineRow;
use crate::config::Experiment;
use crate::error::Result;
use crate::summary::{Comparison, SummaryRow, compare, summarize};
use crate::sweep::{FitRow, RunIdentity, SweepData};

/// The code that produced a result: the crate version and the commit the
/// binary was built from (`-dirty` when the work tree had changes), as the
/// build script found them.
pub const CODE_VERSION: &str = concat!("pairguard ", env!("CARGO_PKG_VERSION"), " (", env!("PAIRGUARD_COMMIT"), ")");

#[derive(Debug)]
pub struct ReportInputs<'a> {
    pub exp: &'a Experiment,
    pub config_text: &'a str,
    pub config_path: &'a Path,
    pub rows: &'a [FitRow],
    pub data: &'a SweepData,
    pub identity: &'a RunIdentity,
    /// Baseline guards' metrics (see [`crate::baselines`]).
    pub baselines: &'a [BaselineRow],
}

/// What the tables, plots and markdown are made from, computed once.
#[derive(Debug)]
struct Results<'a> {
    inp: &'a ReportInputs<'a>,
    exp: &'a Experiment,
    /// The fits in (test, strategy, budget, seed) order.
    rows: Vec<FitRow>,
    /// Every metric's mean and interval per (test, strategy, budget).
    summary: Vec<SummaryRow>,
    /// Each reported metric's paired difference from the baseline strategy.
    comparisons: Vec<Comparison>,
    strategies: Vec<String>,
    tests: Vec<String>,
    baselines: Vec<&'a str>,
}

impl<'a> Results<'a> {
    fn new(inp: &'a ReportInputs<'a>) -> Self {
        let exp = inp.exp;
        let mut rows = inp.rows.to_vec();
        rows.sort_by(|a, b| (&a.test, &a.strategy, a.budget, a.seed).cmp(&(&b.test, &b.strategy, b.budget, b.seed)));
        let summary = summarize(&rows, Metric::ALL);
        let comparisons = exp.report.metrics.iter().flat_map(|&m| compare(&rows, &exp.report.baseline, m)).collect();
        Results {
            inp,
            exp,
            summary,
            comparisons,
            strategies: exp.sweep.strategies.iter().map(|s| s.name()).collect(),
            tests: inp.data.tests.iter().map(|(n, _)| n.clone()).collect(),
            baselines: exp.baselines.iter().map(|b| b.name()).collect(),
            rows,
        }
    }

    /// A baseline guard's `metric` on `test` (NaN when not measured).
    fn level(&self, baseline: &str, test: &str, metric: Metric) -> f64 {
        self.inp.baselines.iter().find(|r| r.baseline == baseline && r.test == test && r.metric == metric).map_or(f64::NAN, |r| r.value)
    }

    /// The summary rows of one (test, metric), in summary order.
    fn summary_of(&self, test: &str, metric: Metric) -> Vec<&SummaryRow> {
        self.summary.iter().filter(|r| r.test == test && r.metric == metric).collect()
    }
}

/// Writes fits.csv, summary.csv, comparisons.csv, baselines.csv (with
/// baselines), plots/, report.md and manifest.json into `out`. Returns the
/// report's path.
pub fn write(out: &Path, inp: &ReportInputs) -> Result<PathBuf> {
    let results = Results::new(inp);
    tables::write(out, &results)?;
    let plots = plots::write(out, &results)?;
    let report = out.join("report.md");
    write_atomic(&report, markdown::render(&results, &plots)?.as_bytes())?;
    let manifest = serde_json::json!({
        "experiment": inp.exp,
        "config_path": inp.config_path,
        "config_text": inp.config_text,
        "code_version": CODE_VERSION,
        "encoder": inp.data.encoder,
        "identity": inp.identity,
        "outputs": ["fits.csv", "summary.csv", "comparisons.csv", "baselines.csv", "report.md", "plots/"],
    });
    write_atomic(&out.join("manifest.json"), &serde_json::to_vec_pretty(&manifest)?)?;
    Ok(report)
}
