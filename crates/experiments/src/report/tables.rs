//! The report's CSV tables, for notebooks.

use std::path::Path;

use pairguard_model::metrics::Metric;
use pairguard_run::write_atomic;

use super::Results;
use crate::error::Result;
use crate::sweep::to_csv;

/// One row of `comparisons.csv`: a strategy minus the baseline at one
/// budget, paired by seed.
#[derive(Debug, serde::Serialize)]
struct ComparisonRow<'a> {
    test: &'a str,
    strategy: &'a str,
    baseline: &'a str,
    budget: usize,
    metric: Metric,
    n: usize,
    mean_diff: f64,
    ci_low: f64,
    ci_high: f64,
    verdict: &'a str,
}

/// Writes fits.csv, summary.csv, comparisons.csv and (with baselines) baselines.csv.
pub(super) fn write(out: &Path, r: &Results) -> Result<()> {
    write_atomic(&out.join("fits.csv"), &to_csv(&r.rows)?)?;
    write_atomic(&out.join("summary.csv"), &to_csv(&r.summary)?)?;
    let flat: Vec<ComparisonRow> = r
        .comparisons
        .iter()
        .map(|c| ComparisonRow {
            test: &c.test,
            strategy: &c.strategy,
            baseline: &r.exp.report.baseline,
            budget: c.budget,
            metric: c.metric,
            n: c.diff.n,
            mean_diff: c.diff.mean,
            ci_low: c.diff.ci_low,
            ci_high: c.diff.ci_high,
            verdict: c.verdict,
        })
        .collect();
    write_atomic(&out.join("comparisons.csv"), &to_csv(&flat)?)?;
    if !r.inp.baselines.is_empty() {
        write_atomic(&out.join("baselines.csv"), &to_csv(r.inp.baselines)?)?;
    }
    Ok(())
}
