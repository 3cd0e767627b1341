//! Aggregation over seeds: per (test, strategy, budget, metric) means with
//! 95% intervals, paired comparisons against the baseline, and the budget
//! each strategy needs to reach a target (sample efficiency).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::stats::{MeanCi, mean_ci};
use crate::sweep::FitRow;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRow {
    pub test: String,
    pub strategy: String,
    pub budget: usize,
    pub metric: String,
    pub n: usize,
    pub mean: f64,
    pub sd: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

pub fn summarize(rows: &[FitRow], metrics: &[&str]) -> Vec<SummaryRow> {
    let mut groups: BTreeMap<(String, String, usize), Vec<&FitRow>> = BTreeMap::new();
    for r in rows {
        groups.entry((r.test.clone(), r.strategy.clone(), r.budget)).or_default().push(r);
    }
    let mut out = Vec::new();
    for ((test, strategy, budget), rs) in groups {
        for m in metrics {
            let values: Vec<f64> = rs.iter().map(|r| r.metric(m)).collect();
            if values.iter().all(|v| v.is_nan()) {
                continue;
            }
            let MeanCi { n, mean, sd, ci_low, ci_high } = mean_ci(&values);
            out.push(SummaryRow { test: test.clone(), strategy: strategy.clone(), budget, metric: m.to_string(), n, mean, sd, ci_low, ci_high });
        }
    }
    out
}

/// Paired (same seed) difference of a strategy against the baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub test: String,
    pub strategy: String,
    pub budget: usize,
    pub metric: String,
    pub diff: MeanCi,
    /// "better", "worse" or "no clear difference" at 95%.
    pub verdict: &'static str,
}

pub fn compare(rows: &[FitRow], baseline: &str, metric: &str) -> Vec<Comparison> {
    let key = |r: &FitRow| (r.test.clone(), r.budget, r.seed);
    let base: BTreeMap<_, f64> = rows.iter().filter(|r| r.strategy == baseline).map(|r| (key(r), r.metric(metric))).collect();
    let mut diffs: BTreeMap<(String, String, usize), Vec<f64>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.strategy != baseline) {
        if let Some(b) = base.get(&key(r)) {
            diffs.entry((r.test.clone(), r.strategy.clone(), r.budget)).or_default().push(r.metric(metric) - b);
        }
    }
    diffs
        .into_iter()
        .map(|((test, strategy, budget), d)| {
            let diff = mean_ci(&d);
            let verdict = if diff.ci_low > 0.0 {
                "better"
            } else if diff.ci_high < 0.0 {
                "worse"
            } else {
                "no clear difference"
            };
            Comparison { test, strategy, budget, metric: metric.to_string(), diff, verdict }
        })
        .collect()
}

/// The budget at which a mean curve first reaches `target`, interpolated
/// linearly in log budget between the surrounding points; None if never.
pub fn budget_to_reach(curve: &[(usize, f64)], target: f64) -> Option<f64> {
    let mut prev: Option<(usize, f64)> = None;
    for &(b, m) in curve {
        if m >= target {
            return Some(match prev {
                Some((pb, pm)) if pm < target && m > pm => {
                    let (lp, lb) = ((pb as f64).ln(), (b as f64).ln());
                    (lp + (lb - lp) * (target - pm) / (m - pm)).exp()
                }
                _ => b as f64,
            });
        }
        prev = Some((b, m));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_interpolates_in_log_space() {
        let curve = [(16, 0.5), (64, 0.7), (256, 0.9)];
        assert_eq!(budget_to_reach(&curve, 0.4), Some(16.0));
        let b = budget_to_reach(&curve, 0.8).unwrap();
        assert!((b - 128.0).abs() < 1e-9, "{b}");
        assert_eq!(budget_to_reach(&curve, 0.95), None);
    }
}
