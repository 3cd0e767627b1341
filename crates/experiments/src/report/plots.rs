//! The report's plots: each reported metric against the budget, per test set.

use std::path::Path;

use super::Results;
use crate::error::{Error, Result};
use crate::plot::{Level, plot_metric};

/// Writes `plots/<test>_<metric>.{png,svg}` with the baselines as levels;
/// returns the PNGs' paths relative to `out`.
pub(super) fn write(out: &Path, r: &Results) -> Result<Vec<String>> {
    std::fs::create_dir_all(out.join("plots")).map_err(|e| Error::io(out.join("plots"), e))?;
    let mut plots = Vec::new();
    for t in &r.tests {
        for &m in &r.exp.report.metrics {
            let sel = r.summary_of(t, m);
            if sel.is_empty() {
                continue;
            }
            let stem = out.join("plots").join(format!("{t}_{m}"));
            let levels: Vec<Level> = r.baselines.iter().map(|b| Level { label: b.to_string(), value: r.level(b, t, m) }).collect();
            plot_metric(&sel, &r.strategies, &levels, &format!("{m} on the {t} test set"), m.name(), &stem)?;
            plots.push(format!("plots/{t}_{m}.png"));
        }
    }
    Ok(plots)
}
