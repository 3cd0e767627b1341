//! Aggregation over seeds: per (test, strategy, budget, metric) means with
//! 95% intervals, paired comparisons against the baseline, and the budget
//! each strategy needs to reach a target (sample efficiency).

use std::collections::BTreeMap;

use pairguard_model::metrics::Metric;
use serde::{Deserialize, Serialize};

use crate::stats::{MeanCi, mean_ci};
use crate::sweep::FitRow;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub test: String,
    pub strategy: String,
    pub budget: usize,
    pub metric: Metric,
    pub n: usize,
    pub mean: f64,
    pub sd: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

pub fn summarize(rows: &[FitRow], metrics: &[Metric]) -> Vec<SummaryRow> {
    let mut groups: BTreeMap<(String, String, usize), Vec<&FitRow>> = BTreeMap::new();
    for r in rows {
        groups.entry((r.test.clone(), r.strategy.clone(), r.budget)).or_default().push(r);
    }
    let mut out = Vec::new();
    for ((test, strategy, budget), rs) in groups {
        for &m in metrics {
            let values: Vec<f64> = rs.iter().map(|r| r.metric(m)).collect();
            if values.iter().all(|v| v.is_nan()) {
                continue;
            }
            let MeanCi { n, mean, sd, ci_low, ci_high } = mean_ci(&values);
            out.push(SummaryRow { test: test.clone(), strategy: strategy.clone(), budget, metric: m, n, mean, sd, ci_low, ci_high });
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
    pub metric: Metric,
    pub diff: MeanCi,
    /// "better", "worse" or "no clear difference" at 95%.
    pub verdict: &'static str,
}

pub fn compare(rows: &[FitRow], baseline: &str, metric: Metric) -> Vec<Comparison> {
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
            Comparison { test, strategy, budget, metric, diff, verdict }
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

/// When a strategy's mean curve overtakes a fixed level (a baseline guard's
/// score).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Overtake {
    /// Budget at which the mean over seeds first reaches the level
    /// (log-interpolated); None if it never does within the sweep.
    pub budget: Option<f64>,
    /// 95% percentile-bootstrap interval over seeds (resampled with
    /// replacement); infinite where resampled curves do not reach the level.
    pub ci_low: f64,
    pub ci_high: f64,
    /// Seeds whose own curve reaches the level.
    pub seeds_reaching: usize,
    pub seeds: usize,
}

/// Resamples of the seed bootstrap behind [`Overtake`]'s interval.
const BOOTSTRAP: usize = 2000;

/// The budget at which `strategy`'s mean `metric` on `test` reaches `level`.
pub fn overtake(rows: &[FitRow], strategy: &str, test: &str, metric: Metric, level: f64) -> Overtake {
    use rand::{Rng, SeedableRng};
    let mut by_seed: BTreeMap<u64, BTreeMap<usize, f64>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.strategy == strategy && r.test == test) {
        by_seed.entry(r.seed).or_default().insert(r.budget, r.metric(metric));
    }
    let curves: Vec<&BTreeMap<usize, f64>> = by_seed.values().collect();
    let mean_curve = |pick: &[usize]| -> Vec<(usize, f64)> {
        let budgets: Vec<usize> = curves.first().map(|c| c.keys().copied().collect()).unwrap_or_default();
        budgets
            .into_iter()
            .filter_map(|b| {
                let v: Vec<f64> = pick.iter().filter_map(|&i| curves[i].get(&b).copied()).filter(|v| v.is_finite()).collect();
                (!v.is_empty()).then(|| (b, v.iter().sum::<f64>() / v.len() as f64))
            })
            .collect()
    };
    let n = curves.len();
    let all: Vec<usize> = (0..n).collect();
    let budget = budget_to_reach(&mean_curve(&all), level);
    let seeds_reaching = all.iter().filter(|&&i| budget_to_reach(&mean_curve(&[i]), level).is_some()).count();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut draws: Vec<f64> = (0..if n > 1 { BOOTSTRAP } else { 0 })
        .map(|_| {
            let pick: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
            budget_to_reach(&mean_curve(&pick), level).unwrap_or(f64::INFINITY)
        })
        .collect();
    draws.sort_by(f64::total_cmp);
    let q = |p: f64| draws.get(((draws.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN);
    Overtake { budget, ci_low: q(0.025), ci_high: q(0.975), seeds_reaching, seeds: n }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seed: u64, budget: usize, auroc: f64) -> FitRow {
        FitRow {
            strategy: "s".into(),
            budget,
            seed,
            test: "t".into(),
            n_train: budget,
            n_coarse: budget,
            n_pair_pool: 0,
            whole_pairs: 0,
            epochs: 1,
            weight_decay: 0.0,
            temperature: 1.0,
            threshold: 0.5,
            auroc,
            auprc: 0.0,
            f1: 0.0,
            accuracy: 0.0,
            balanced_accuracy: 0.0,
            ece: 0.0,
            tpr_at_fpr: 0.0,
            pair_accuracy: f64::NAN,
            ordering_accuracy: f64::NAN,
            flip_rate: f64::NAN,
            precision: 0.0,
            robust_accuracy: f64::NAN,
        }
    }

    #[test]
    fn overtaking_a_level_with_a_seed_interval() {
        // Seeds cross 0.8 at budgets 32, 64 and never.
        let rows: Vec<FitRow> = [(0, [0.7, 0.8, 0.9, 0.95]), (1, [0.6, 0.7, 0.8, 0.9]), (2, [0.5, 0.6, 0.7, 0.75])]
            .iter()
            .flat_map(|(s, v)| [16, 32, 64, 128].iter().zip(v).map(move |(&b, &a)| row(*s, b, a)))
            .collect();
        let o = overtake(&rows, "s", "t", Metric::Auroc, 0.8);
        // Mean curve 0.6, 0.7, 0.8, 0.867: reaches 0.8 at 64.
        assert!((o.budget.unwrap() - 64.0).abs() < 1e-9, "{o:?}");
        assert_eq!((o.seeds_reaching, o.seeds), (2, 3));
        assert!(o.ci_low <= 64.0 && o.ci_high >= 64.0 && o.ci_low >= 16.0, "{o:?}");
        // Resamples of only the third seed never reach it.
        assert!(o.ci_high.is_infinite(), "{o:?}");
        assert_eq!(overtake(&rows, "s", "t", Metric::Auroc, 0.99).budget, None);
    }

    #[test]
    fn budget_interpolates_in_log_space() {
        let curve = [(16, 0.5), (64, 0.7), (256, 0.9)];
        assert_eq!(budget_to_reach(&curve, 0.4), Some(16.0));
        let b = budget_to_reach(&curve, 0.8).unwrap();
        assert!((b - 128.0).abs() < 1e-9, "{b}");
        assert_eq!(budget_to_reach(&curve, 0.95), None);
    }
}
