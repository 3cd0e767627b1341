//! One strategy's curve from each of several sweeps, on one figure. A sweep
//! mixes one pair pool; comparing pools (given pairs, verified and
//! unverified generated ones) takes a sweep each, and this puts their
//! curves side by side from each sweep's `summary.csv`.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use pairguard_model::metrics::Metric;
use pairguard_run::write_atomic;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::plot::{Axes, Curve, Point, plot_curves};
use crate::summary::SummaryRow;

/// `LABEL=RESULTS:STRATEGY`: the curve of `STRATEGY` in the sweep results
/// folder `RESULTS`, labelled `LABEL`.
#[derive(Debug, Clone, PartialEq)]
pub struct CurveSpec {
    pub label: String,
    pub results: PathBuf,
    pub strategy: String,
}

impl FromStr for CurveSpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let usage = || format!("{s:?}: a curve is LABEL=RESULTS_FOLDER:STRATEGY");
        let (label, rest) = s.split_once('=').ok_or_else(usage)?;
        let (results, strategy) = rest.rsplit_once(':').ok_or_else(usage)?;
        if label.is_empty() || results.is_empty() || strategy.is_empty() {
            return Err(usage());
        }
        Ok(CurveSpec { label: label.into(), results: results.into(), strategy: strategy.into() })
    }
}

/// One row of `overlay.csv`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverlayRow {
    pub curve: String,
    pub strategy: String,
    pub budget: usize,
    pub n: usize,
    pub mean: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// Reads every curve's points for `test` and `metric`; an unknown strategy
/// or test names the folder and what it has.
pub fn read(curves: &[CurveSpec], test: &str, metric: Metric) -> Result<Vec<OverlayRow>> {
    let mut rows = Vec::new();
    for c in curves {
        let path = c.results.join("summary.csv");
        let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        let mut found = Vec::new();
        let mut strategies = std::collections::BTreeSet::new();
        for r in csv::Reader::from_reader(file).into_deserialize::<SummaryRow>() {
            let r = r.map_err(|e| Error::File { path: path.clone(), message: e.to_string() })?;
            if r.test == test && r.metric == metric {
                strategies.insert(r.strategy.clone());
                if r.strategy == c.strategy {
                    found.push(r);
                }
            }
        }
        if found.is_empty() {
            return Err(Error::File {
                path,
                message: format!(
                    "no {metric} rows of strategy {:?} on test {test:?} (it has: {})",
                    c.strategy,
                    strategies.into_iter().collect::<Vec<_>>().join(", ")
                ),
            });
        }
        found.sort_by_key(|r| r.budget);
        rows.extend(found.into_iter().map(|r| OverlayRow {
            curve: c.label.clone(),
            strategy: r.strategy,
            budget: r.budget,
            n: r.n,
            mean: r.mean,
            ci_low: r.ci_low,
            ci_high: r.ci_high,
        }));
    }
    Ok(rows)
}

/// Writes `overlay.csv` and `overlay.png`/`.svg` into `out`; returns the CSV's path.
pub fn overlay(curves: &[CurveSpec], test: &str, metric: Metric, title: &str, out: &Path) -> Result<PathBuf> {
    let rows = read(curves, test, metric)?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in &rows {
        w.serialize(r)?;
    }
    let csv_path = out.join("overlay.csv");
    write_atomic(&csv_path, &w.into_inner().map_err(|e| Error::Results(e.to_string()))?)?;
    let figure: Vec<Curve> = curves
        .iter()
        .map(|c| Curve {
            label: c.label.clone(),
            points: rows
                .iter()
                .filter(|r| r.curve == c.label)
                .map(|r| Point { x: r.budget as f64, mean: r.mean, ci_low: r.ci_low, ci_high: r.ci_high })
                .collect(),
        })
        .collect();
    let y = format!("{metric} on {test}");
    plot_curves(&figure, &[], Axes { title, x: "training budget (samples, log scale)", y: &y }, &out.join("overlay"))?;
    Ok(csv_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_specs_parse_and_bad_ones_say_the_form() {
        let c: CurveSpec = "verified pairs=results/a:b:ratio-0.5".parse().unwrap();
        assert_eq!(c, CurveSpec { label: "verified pairs".into(), results: "results/a:b".into(), strategy: "ratio-0.5".into() });
        for bad in ["results/a:ratio", "x=results", "=r:s", "x=:s", "x=r:"] {
            assert!(bad.parse::<CurveSpec>().unwrap_err().contains("LABEL=RESULTS_FOLDER:STRATEGY"), "{bad}");
        }
    }
}
