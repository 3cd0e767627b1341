//! Guards that need no training budget, scored on a sweep's test sets: a
//! policy's zero-shot guard and saved guard models (published fixed heads).

use std::path::{Path, PathBuf};

use pairguard_data::policy::Policy;
use pairguard_model::guard::probabilities_of;
use pairguard_model::prompts::{PolicyPrompts, PromptEmbeddings, zero_shot_guard};
use pairguard_model::{Device, Evaluation, GuardModel, evaluate_scores};
use serde::{Deserialize, Serialize};

use crate::config::{BaselineSpec, Experiment};
use crate::error::{Error, Result};
use crate::sweep::SweepData;

/// One metric of one baseline on one test set (long format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineRow {
    pub baseline: String,
    pub test: String,
    pub metric: String,
    pub value: f64,
}

/// The metrics of an evaluation by their `fits.csv` names; pair metrics are
/// NaN on sets without pairs, and robust accuracy is not measured here.
fn metrics(ev: &Evaluation) -> [(&'static str, f64); 12] {
    let o = &ev.overall;
    let pairs = |f: fn(&pairguard_model::metrics::PairMetrics) -> f64| ev.pairs.as_ref().map_or(f64::NAN, f);
    [
        ("auroc", o.auroc),
        ("auprc", o.auprc),
        ("f1", o.f1),
        ("accuracy", o.accuracy),
        ("balanced_accuracy", o.balanced_accuracy),
        ("ece", o.ece),
        ("tpr_at_fpr", o.tpr_at_fpr),
        ("pair_accuracy", pairs(|p| p.pair_accuracy)),
        ("ordering_accuracy", pairs(|p| p.ordering_accuracy)),
        ("flip_rate", pairs(|p| p.flip_rate)),
        ("precision", o.precision),
        ("robust_accuracy", f64::NAN),
    ]
}

/// A policy's prompts for the sweep's categories and their embeddings,
/// checked against the images' encoder. Paths are relative to `base`; the
/// synthetic benchmark's own files in `data_dir` stand in for absent ones.
pub(crate) fn policy_text(
    policy: &Option<String>,
    prompts: &Option<String>,
    data: &SweepData,
    base: &Path,
    data_dir: &Path,
) -> Result<(PolicyPrompts, PromptEmbeddings)> {
    let at = |given: &Option<String>, synthetic: &str| -> PathBuf {
        match given {
            Some(p) => base.join(p),
            None => data_dir.join(synthetic),
        }
    };
    let policy = Policy::from_file(&at(policy, "policy.toml"))?;
    let categories = if data.coarse.is_empty() { &data.pairs.categories } else { &data.coarse.categories };
    let prompts_of = PolicyPrompts::new(&policy, categories)?;
    let emb = PromptEmbeddings::load(&at(prompts, "prompts.safetensors"))?;
    emb.check_encoder(&data.encoder)?;
    Ok((prompts_of, emb))
}

/// The guard of one baseline for the sweep's data.
fn guard(spec: &BaselineSpec, exp: &Experiment, data: &SweepData, base: &Path, data_dir: &Path, device: &Device) -> Result<GuardModel> {
    match spec {
        BaselineSpec::ZeroShot { policy, prompts, .. } => {
            let (prompts_of, emb) = policy_text(policy, prompts, data, base, data_dir)?;
            Ok(zero_shot_guard(&prompts_of, &emb, &data.encoder, data.validation.as_ref(), &exp.calibration, device)?)
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
            rows.extend(metrics(&ev).into_iter().map(|(metric, value)| BaselineRow {
                baseline: spec.name().to_string(),
                test: test.clone(),
                metric: metric.to_string(),
                value,
            }));
        }
    }
    Ok(rows)
}
