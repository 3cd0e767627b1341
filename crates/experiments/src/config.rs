//! Experiment files (`experiments/*.toml`): which data, which head, which
//! budgets, mixing strategies and seeds, and what the report targets.

use std::path::{Path, PathBuf};

use pairguard_data::synthetic::SyntheticConfig;
use pairguard_data::Strategy;
use pairguard_model::TrainConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub data: DataSpec,
    #[serde(default)]
    pub train: TrainConfig,
    pub sweep: SweepSpec,
    #[serde(default)]
    pub report: ReportSpec,
}

/// Either the embedded synthetic benchmark or dataset descriptors with
/// embedding stores (paths relative to the experiment file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    #[serde(default)]
    pub synthetic: Option<SyntheticConfig>,
    #[serde(default)]
    pub coarse: Option<String>,
    #[serde(default)]
    pub pairs: Option<String>,
    /// Embedding stores to use instead of the descriptors' own (one
    /// descriptor, several encoders).
    #[serde(default)]
    pub coarse_embeddings: Option<String>,
    #[serde(default)]
    pub pairs_embeddings: Option<String>,
    /// Test sets by name.
    #[serde(default)]
    pub tests: Vec<TestSpec>,
    /// How unsplit samples are split (grouped, stratified, seeded) when a
    /// test set draws a split of a pool's dataset (`split = "test"`): the
    /// pool then trains on the `train` part only. Default: all training.
    #[serde(default = "all_train")]
    pub split: pairguard_data::SplitConfig,
    /// Drop invalid rows (reported) instead of failing.
    #[serde(default)]
    pub skip_invalid: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSpec {
    pub name: String,
    pub dataset: String,
    #[serde(default)]
    pub embeddings: Option<String>,
    /// Use only this split of the dataset (`test`, `validation` or `train`).
    #[serde(default)]
    pub split: Option<String>,
}

fn all_train() -> pairguard_data::SplitConfig {
    pairguard_data::SplitConfig { train: 1.0, validation: 0.0, test: 0.0, seed: 0 }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Training-set sizes; see [`SweepSpec::budgets`].
    #[serde(default)]
    pub budgets: Vec<usize>,
    /// Alternatively: `budget_range = [min, max, points]`, log-spaced.
    #[serde(default)]
    pub budget_range: Option<[usize; 3]>,
    pub strategies: Vec<Strategy>,
    pub seeds: Vec<u64>,
    /// Decision threshold for thresholded metrics (heads are class-balanced,
    /// so 0.5 is the neutral choice).
    #[serde(default = "half")]
    pub threshold: f64,
    #[serde(default = "fpr")]
    pub fpr_target: f64,
}

fn half() -> f64 {
    0.5
}
fn fpr() -> f64 {
    0.05
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// Metrics to plot and tabulate (columns of `fits.csv`).
    pub metrics: Vec<String>,
    /// The strategy other strategies are compared with.
    pub baseline: String,
    /// Sample-efficiency target: the budget at which each strategy's mean
    /// reaches `value` on `metric` for test set `test`.
    pub target: Option<Target>,
}

impl Default for ReportSpec {
    fn default() -> Self {
        ReportSpec {
            metrics: vec!["auroc".into(), "f1".into(), "pair_accuracy".into()],
            baseline: "coarse".into(),
            target: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub metric: String,
    pub test: String,
    pub value: f64,
}

/// The per-fit metric columns, in `fits.csv` order.
pub const METRICS: [&str; 11] = [
    "auroc",
    "auprc",
    "f1",
    "accuracy",
    "balanced_accuracy",
    "ece",
    "tpr_at_fpr",
    "pair_accuracy",
    "ordering_accuracy",
    "flip_rate",
    "precision",
];

impl SweepSpec {
    /// The budgets, sorted and deduplicated.
    pub fn budgets(&self) -> anyhow::Result<Vec<usize>> {
        let mut b = self.budgets.clone();
        if let Some([lo, hi, points]) = self.budget_range {
            anyhow::ensure!(lo >= 2 && hi >= lo && points >= 2, "budget_range must be [min >= 2, max >= min, points >= 2]");
            let (l, h) = ((lo as f64).ln(), (hi as f64).ln());
            for i in 0..points {
                let v = (l + (h - l) * i as f64 / (points - 1) as f64).exp().round() as usize;
                b.push(v + v % 2);
            }
        }
        b.sort_unstable();
        b.dedup();
        anyhow::ensure!(!b.is_empty(), "the sweep lists no budgets");
        anyhow::ensure!(b[0] >= 2, "budgets must be at least 2");
        Ok(b)
    }
}

impl Experiment {
    pub fn from_file(path: &Path) -> anyhow::Result<(Self, String)> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let exp: Experiment = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        exp.check().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok((exp, text))
    }

    pub fn check(&self) -> anyhow::Result<()> {
        self.train.check()?;
        self.sweep.budgets()?;
        anyhow::ensure!(!self.sweep.strategies.is_empty(), "the sweep lists no strategies");
        anyhow::ensure!(!self.sweep.seeds.is_empty(), "the sweep lists no seeds");
        let mut names: Vec<String> = self.sweep.strategies.iter().map(Strategy::name).collect();
        names.sort();
        names.dedup();
        anyhow::ensure!(names.len() == self.sweep.strategies.len(), "two strategies have the same name");
        anyhow::ensure!(
            self.sweep.strategies.iter().any(|s| s.name() == self.report.baseline),
            "report.baseline {:?} is not one of the strategies ({})",
            self.report.baseline,
            names.join(", ")
        );
        for m in &self.report.metrics {
            anyhow::ensure!(METRICS.contains(&m.as_str()), "unknown metric {m:?} (known: {})", METRICS.join(", "));
        }
        match &self.data.synthetic {
            Some(s) => {
                s.check()?;
                anyhow::ensure!(
                    self.data.coarse.is_none() && self.data.pairs.is_none() && self.data.tests.is_empty(),
                    "[data] has both `synthetic` and dataset paths; use one"
                );
            }
            None => {
                anyhow::ensure!(self.data.coarse.is_some() || self.data.pairs.is_some(), "[data] needs `coarse` and/or `pairs`");
                anyhow::ensure!(!self.data.tests.is_empty(), "[data] needs at least one [[data.tests]] entry");
            }
        }
        if let Some(t) = &self.report.target {
            anyhow::ensure!(METRICS.contains(&t.metric.as_str()), "unknown target metric {:?}", t.metric);
        }
        Ok(())
    }

    /// Resolves a dataset path relative to the experiment file.
    pub fn resolve(base: &Path, rel: &str) -> PathBuf {
        base.join(rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_range_is_log_spaced_and_even() {
        let s = SweepSpec {
            budgets: vec![],
            budget_range: Some([16, 4096, 9]),
            strategies: vec![],
            seeds: vec![],
            threshold: 0.5,
            fpr_target: 0.05,
        };
        assert_eq!(s.budgets().unwrap(), vec![16, 32, 64, 128, 256, 512, 1024, 2048, 4096]);
    }
}
