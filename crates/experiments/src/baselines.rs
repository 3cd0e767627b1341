//! Guards that need no training budget, scored on a sweep's test sets: a
//! policy's zero-shot guard, saved guard models (published fixed heads),
//! and other guards' scores on one test set.

use std::path::{Path, PathBuf};

use pairguard_model::guard::probabilities_of;
use pairguard_model::metrics::Metric;
use pairguard_model::prompts::{PolicyText, PromptTable};
use pairguard_model::scores::ScoreFile;
use pairguard_model::{Device, GuardModel, evaluate_scores};
use serde::{Deserialize, Serialize};

use crate::config::{BaselineSpec, Experiment};
use crate::error::{Error, Result};
use crate::sweep::SweepData;

/// One metric of one baseline on one test set (long format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineRow {
    pub baseline: String,
    pub test: String,
    pub metric: Metric,
    pub value: f64,
}

/// A policy's prompts for the sweep's categories and their embeddings,
/// checked against the images' encoder. Paths are relative to `base`; the
/// synthetic benchmark's own files in `data_dir` stand in for absent ones.
pub(crate) fn policy_text(policy: &Option<String>, prompts: &Option<String>, data: &SweepData, base: &Path, data_dir: &Path) -> Result<PolicyText> {
    let at = |given: &Option<String>, synthetic: &str| -> PathBuf {
        match given {
            Some(p) => base.join(p),
            None => data_dir.join(synthetic),
        }
    };
    let categories = if data.coarse.is_empty() { &data.pairs.categories } else { &data.coarse.categories };
    let table = at(prompts, "prompts.safetensors");
    Ok(PolicyText::resolve(&at(policy, "policy.toml"), categories, PromptTable::File(&table), &data.encoder)?)
}

/// The guard of one baseline for the sweep's data (score files have none).
fn guard(spec: &BaselineSpec, exp: &Experiment, data: &SweepData, base: &Path, data_dir: &Path, device: &Device) -> Result<GuardModel> {
    match spec {
        BaselineSpec::Scores { .. } => unreachable!("a score file is evaluated as it is"),
        BaselineSpec::ZeroShot { policy, prompts, .. } => {
            let text = policy_text(policy, prompts, data, base, data_dir)?;
            Ok(text.zero_shot_guard(&data.encoder, data.validation.as_ref(), &exp.calibration, device)?)
        }
        BaselineSpec::Guard { model, .. } => {
            let g = GuardModel::load(&base.join(model))?;
            g.check_encoder(&data.encoder)?;
            Ok(g)
        }
    }
}

/// Every baseline of `exp` scored on every test set.
pub fn evaluate(exp: &Experiment, data: &SweepData, base: &Path, data_dir: &Path, device: &Device) -> Result<Vec<BaselineRow>> {
    let mut rows = Vec::new();
    let row = |spec: &BaselineSpec, test: &str, ev: &pairguard_model::Evaluation| -> Vec<BaselineRow> {
        Metric::ALL
            .iter()
            .map(|&metric| BaselineRow { baseline: spec.name().to_string(), test: test.to_string(), metric, value: metric.of(ev) })
            .collect()
    };
    for spec in &exp.baselines {
        if let BaselineSpec::Scores { scores, test, threshold, .. } = spec {
            let named = |e: String| Error::Config(format!("baseline {:?}: {e}", spec.name()));
            let known: Vec<&str> = data.tests.iter().map(|t| t.0.as_str()).collect();
            let set = data.tests.iter().find(|t| &t.0 == test).map(|t| &t.1);
            let set = set.ok_or_else(|| named(format!("no test set {test:?} in this sweep (it has {})", known.join(", "))))?;
            let file = ScoreFile::read(&base.join(scores)).map_err(|e| named(e.to_string()))?;
            let ext = file.evaluate(set, *threshold, false, exp.calibration.fpr_target).map_err(|e| named(e.to_string()))?;
            rows.extend(row(spec, test, &ext.evaluation));
            continue;
        }
        let g = guard(spec, exp, data, base, data_dir, device).map_err(|e| Error::Config(format!("baseline {:?}: {e}", spec.name())))?;
        for (test, set) in &data.tests {
            let p = probabilities_of(std::slice::from_ref(&g), &set.x, device)?.remove(0);
            let ev = evaluate_scores(set, &p, None, g.card.threshold, exp.calibration.fpr_target);
            rows.extend(row(spec, test, &ev));
        }
    }
    Ok(rows)
}
