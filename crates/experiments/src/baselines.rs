//! Guards that need no training budget, scored on a sweep's test sets: a
//! policy's zero-shot guard and saved guard models (published fixed heads).

use std::path::{Path, PathBuf};

use pairguard_model::guard::probabilities_of;
use pairguard_model::metrics::Metric;
use pairguard_model::prompts::{PolicyText, PromptTable};
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

/// The guard of one baseline for the sweep's data.
fn guard(spec: &BaselineSpec, exp: &Experiment, data: &SweepData, base: &Path, data_dir: &Path, device: &Device) -> Result<GuardModel> {
    match spec {
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
    for spec in &exp.baselines {
        let g = guard(spec, exp, data, base, data_dir, device).map_err(|e| Error::Config(format!("baseline {:?}: {e}", spec.name())))?;
        for (test, set) in &data.tests {
            let p = probabilities_of(std::slice::from_ref(&g), &set.x, device)?.remove(0);
            let ev = evaluate_scores(set, &p, None, g.card.threshold, exp.calibration.fpr_target);
            rows.extend(Metric::ALL.iter().map(|&metric| BaselineRow {
                baseline: spec.name().to_string(),
                test: test.clone(),
                metric,
                value: metric.of(&ev),
            }));
        }
    }
    Ok(rows)
}
