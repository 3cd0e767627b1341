//! Experiment files (`experiments/*.toml`): which data, which head, which
//! budgets, mixing strategies and seeds, and what the report targets.

use std::path::Path;

use pairguard_data::Strategy;
use pairguard_data::synthetic::SyntheticConfig;
use pairguard_model::metrics::Metric;
use pairguard_model::{CalibrationConfig, GuardConfig, TrainConfig};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub data: DataSpec,
    #[serde(default)]
    pub train: TrainConfig,
    /// How each trained head is calibrated. Without validation data, only a
    /// fixed threshold and no temperature (the default).
    #[serde(default = "uncalibrated")]
    pub calibration: CalibrationConfig,
    pub sweep: SweepSpec,
    #[serde(default)]
    pub report: ReportSpec,
    /// Guards that need no training budget, drawn as horizontal lines on
    /// the curves; the report gives the budget at which each strategy
    /// overtakes each of them.
    #[serde(default)]
    pub baselines: Vec<BaselineSpec>,
    /// Policy text in training: where prompt heads (and, asked, probes)
    /// start, and prompts as extra samples.
    #[serde(default)]
    pub text: Option<TextSpec>,
}

/// Policy text in a sweep's training. Paths are relative to the experiment
/// file; on the synthetic benchmark they default to its own policy and
/// prompt embeddings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextSpec {
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub prompts: Option<String>,
    /// Add the policy's prompt embeddings to every training set as labelled
    /// samples (on top of the budget: the budget counts images).
    #[serde(default)]
    pub as_data: bool,
    /// Start linear probes from the zero-shot guard; their weight decay
    /// then pulls toward it. Prompt heads always start there.
    #[serde(default)]
    pub zero_shot_init: bool,
}

/// A guard a sweep compares its curves with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum BaselineSpec {
    /// A policy's zero-shot guard, calibrated as the sweep's heads are.
    /// Paths are relative to the experiment file; on the synthetic
    /// benchmark they default to the policy and prompt embeddings it writes.
    ZeroShot {
        name: String,
        #[serde(default)]
        policy: Option<String>,
        /// Prompt embeddings (`pairguard embed-text`).
        #[serde(default)]
        prompts: Option<String>,
    },
    /// A saved guard model: a published fixed head (`pairguard import`) or
    /// any guard trained before.
    Guard { name: String, model: String },
    /// Another guard's outputs on one test set (a vision-language judge's,
    /// a guard run elsewhere): the JSON lines of `eval --scores`, which
    /// must score every sample of that test set.
    Scores {
        name: String,
        scores: String,
        test: String,
        /// Where its scores call a sample unsafe (default 0.5; verdicts take none).
        #[serde(default)]
        threshold: Option<f64>,
    },
}

impl BaselineSpec {
    pub fn name(&self) -> &str {
        match self {
            BaselineSpec::ZeroShot { name, .. } | BaselineSpec::Guard { name, .. } | BaselineSpec::Scores { name, .. } => name,
        }
    }
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
    /// Validation data for weight-decay selection, early stopping and
    /// calibration (`name` is informational).
    #[serde(default)]
    pub validation: Option<TestSpec>,
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

fn uncalibrated() -> CalibrationConfig {
    CalibrationConfig::fixed(0.5)
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
    /// L2 size of the embedding perturbation behind the `robust_accuracy`
    /// metric (see `pairguard_model::robust::embedding`); unset, the metric
    /// is NaN.
    #[serde(default)]
    pub embedding_eps: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// Metrics to plot and tabulate (columns of `fits.csv`).
    pub metrics: Vec<Metric>,
    /// The strategy other strategies are compared with.
    pub baseline: String,
    /// Sample-efficiency target: the budget at which each strategy's mean
    /// reaches `value` on `metric` for test set `test`.
    pub target: Option<Target>,
}

impl Default for ReportSpec {
    fn default() -> Self {
        ReportSpec { metrics: vec![Metric::Auroc, Metric::F1, Metric::PairAccuracy], baseline: "coarse".into(), target: None }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub metric: Metric,
    pub test: String,
    pub value: f64,
}

impl SweepSpec {
    /// The budgets, sorted and deduplicated.
    pub fn budgets(&self) -> Result<Vec<usize>> {
        let mut b = self.budgets.clone();
        if let Some([lo, hi, points]) = self.budget_range {
            if !(lo >= 2 && hi >= lo && points >= 2) {
                return Err(Error::Config("budget_range must be [min >= 2, max >= min, points >= 2]".into()));
            }
            let (l, h) = ((lo as f64).ln(), (hi as f64).ln());
            for i in 0..points {
                let v = (l + (h - l) * i as f64 / (points - 1) as f64).exp().round() as usize;
                b.push(v + v % 2);
            }
        }
        b.sort_unstable();
        b.dedup();
        if b.is_empty() {
            return Err(Error::Config("the sweep lists no budgets".into()));
        }
        if b[0] < 2 {
            return Err(Error::Config("budgets must be at least 2".into()));
        }
        Ok(b)
    }
}

impl Experiment {
    pub fn from_file(path: &Path) -> Result<(Self, String)> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let exp: Experiment = toml::from_str(&text).map_err(|e| Error::File { path: path.to_path_buf(), message: e.to_string() })?;
        exp.check().map_err(|e| Error::File { path: path.to_path_buf(), message: e.to_string() })?;
        Ok((exp, text))
    }

    /// The guard configuration every head of the sweep trains with.
    pub fn guard(&self) -> GuardConfig {
        GuardConfig { train: self.train.clone(), calibration: self.calibration.clone(), refit: true }
    }

    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        self.guard().check(self.data.validation.is_some())?;
        self.sweep.budgets()?;
        if self.sweep.strategies.is_empty() {
            return bad("the sweep lists no strategies".into());
        }
        if self.sweep.seeds.is_empty() {
            return bad("the sweep lists no seeds".into());
        }
        let mut names: Vec<String> = self.sweep.strategies.iter().map(Strategy::name).collect();
        names.sort();
        names.dedup();
        if names.len() != self.sweep.strategies.len() {
            return bad("two strategies have the same name".into());
        }
        if !self.sweep.strategies.iter().any(|s| s.name() == self.report.baseline) {
            return bad(format!("report.baseline {:?} is not one of the strategies ({})", self.report.baseline, names.join(", ")));
        }
        match &self.data.synthetic {
            Some(s) => {
                s.check()?;
                if self.data.coarse.is_some() || self.data.pairs.is_some() || !self.data.tests.is_empty() || self.data.validation.is_some() {
                    return bad("[data] has both `synthetic` and dataset paths; use one".into());
                }
            }
            None => {
                if self.data.coarse.is_none() && self.data.pairs.is_none() {
                    return bad("[data] needs `coarse` and/or `pairs`".into());
                }
                if self.data.tests.is_empty() {
                    return bad("[data] needs at least one entry in `tests`".into());
                }
            }
        }
        let mut seen: Vec<&str> = Vec::new();
        for b in &self.baselines {
            if seen.contains(&b.name()) || names.iter().any(|s| s == b.name()) {
                return bad(format!("baseline name {:?} is used twice (by a strategy or another baseline)", b.name()));
            }
            seen.push(b.name());
            if let BaselineSpec::ZeroShot { policy, prompts, .. } = b
                && self.data.synthetic.is_none()
                && (policy.is_none() || prompts.is_none())
            {
                return bad(format!("baseline {:?} needs `policy` and `prompts` (from `pairguard embed-text`)", b.name()));
            }
        }
        match &self.text {
            None if self.train.head.needs_policy() => return bad("a prompt head needs [text] (the policy it starts from)".into()),
            Some(t) if t.zero_shot_init && !self.train.head.starts_from_policy() => {
                return bad("text.zero_shot_init applies to linear and prompt heads".into());
            }
            Some(t) if self.data.synthetic.is_none() && (t.policy.is_none() || t.prompts.is_none()) => {
                return bad("[text] needs `policy` and `prompts` (from `pairguard embed-text`)".into());
            }
            _ => {}
        }
        match self.sweep.embedding_eps {
            Some(e) if !(e >= 0.0 && e.is_finite()) => return bad(format!("sweep.embedding_eps {e} is not a finite number >= 0")),
            None if self.report.metrics.iter().chain(self.report.target.iter().map(|t| &t.metric)).any(|&m| m == Metric::RobustAccuracy) => {
                return bad("the robust_accuracy metric needs sweep.embedding_eps (the L2 size of the embedding perturbation)".into());
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_shot_baselines_on_real_data_name_their_prompts() {
        let text = r#"
name = "x"
[data]
coarse = "c.toml"
tests = [{ name = "t", dataset = "t.toml" }]
[sweep]
budgets = [16]
strategies = [{ kind = "coarse-only" }]
seeds = [0]
[[baselines]]
kind = "zero-shot"
name = "policy"
policy = "policies/unsafebench.toml"
"#;
        let exp: Experiment = toml::from_str(text).unwrap();
        let e = exp.check().unwrap_err().to_string();
        assert!(e.contains("\"policy\" needs `policy` and `prompts`"), "{e}");
        let exp: Experiment = toml::from_str(&format!("{text}prompts = \"p.safetensors\"\n")).unwrap();
        exp.check().unwrap();
    }

    #[test]
    fn budget_range_is_log_spaced_and_even() {
        let s = SweepSpec { budgets: vec![], budget_range: Some([16, 4096, 9]), strategies: vec![], seeds: vec![], embedding_eps: None };
        assert_eq!(s.budgets().unwrap(), vec![16, 32, 64, 128, 256, 512, 1024, 2048, 4096]);
    }
}
