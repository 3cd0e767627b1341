//! A guard at work: logits, calibrated probabilities, predictions, and
//! metrics on labelled sets.

use std::collections::BTreeMap;

use burn::tensor::Device;
use pairguard_data::{EncoderId, Label};
use serde::{Deserialize, Serialize};

use super::GuardModel;
use super::train::check_embeddings;
use crate::calibrate::sigmoid;
use crate::error::{Error, Result};
use crate::features::LabeledSet;
use crate::head::HeadWeights;
use crate::metrics::{self, BinaryMetrics, PairMetrics};
use crate::normalize::FeatureNorm;
use crate::train::bank_logits;

/// One prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    pub id: String,
    /// Calibrated probability of "unsafe".
    pub score: f64,
    pub verdict: Label,
    /// Per-category probabilities (multi-label heads only).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub categories: BTreeMap<String, f64>,
}

/// Metrics of a model on a labelled set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub overall: BinaryMetrics,
    pub by_category: BTreeMap<String, BinaryMetrics>,
    pub by_source: BTreeMap<String, BinaryMetrics>,
    pub pairs: Option<PairMetrics>,
    /// AUROC of each category output against "unsafe in this category".
    pub category_outputs_auroc: BTreeMap<String, f64>,
}

/// Scores a set: overall, per category, per source and, where the set has
/// pairs, pair metrics. `category_probs` is `[n, K]` when available.
pub fn evaluate_scores(set: &LabeledSet, probs: &[f64], category_probs: Option<&[f64]>, threshold: f64, fpr_target: f64) -> Evaluation {
    let mut ev = Evaluation { overall: metrics::binary(probs, &set.labels, threshold, fpr_target), ..Default::default() };
    let slice = |keep: &dyn Fn(usize) -> bool| {
        let rows: Vec<usize> = (0..set.len()).filter(|&i| keep(i)).collect();
        let p: Vec<f64> = rows.iter().map(|&i| probs[i]).collect();
        let l: Vec<bool> = rows.iter().map(|&i| set.labels[i]).collect();
        (rows.len(), metrics::binary(&p, &l, threshold, fpr_target))
    };
    for (k, name) in set.categories.iter().enumerate() {
        let (n, m) = slice(&|i| set.category[i] == Some(k));
        if n > 0 {
            ev.by_category.insert(name.clone(), m);
        }
    }
    let mut sources: Vec<_> = set.sources.clone();
    sources.sort();
    sources.dedup();
    for src in sources {
        let (_, m) = slice(&|i| set.sources[i] == src);
        ev.by_source.insert(src.name().to_string(), m);
    }
    if !set.pairs.is_empty() {
        let scores: Vec<(f64, f64)> = set.pairs.iter().map(|&(u, s)| (probs[u], probs[s])).collect();
        ev.pairs = Some(metrics::pairs(&scores, threshold));
    }
    if let Some(cp) = category_probs {
        let k = set.categories.len();
        for (c, name) in set.categories.iter().enumerate() {
            let scores: Vec<f64> = (0..set.len()).map(|i| cp[i * k + c]).collect();
            let labels: Vec<bool> = (0..set.len()).map(|i| set.labels[i] && set.category[i] == Some(c)).collect();
            ev.category_outputs_auroc.insert(name.clone(), metrics::auroc(&scores, &labels));
        }
    }
    ev
}

/// Calibrated "unsafe" probabilities of several guards of one shape (as
/// [`train_guards`] makes them) for raw embeddings `x`, in one bank
/// computation: one vector per guard.
pub fn probabilities_of(guards: &[GuardModel], x: &[f32], device: &Device) -> Result<Vec<Vec<f64>>> {
    let Some(first) = guards.first() else { return Ok(Vec::new()) };
    let d = first.card.input_dim;
    if guards.iter().any(|g| g.card.head != first.card.head || g.card.input_dim != d || g.card.outputs.len() != first.card.outputs.len()) {
        return Err(Error::TrainingData("guards scored together must share head kind, input dimension and outputs".into()));
    }
    check_embeddings(x, d)?;
    let (n, o) = (x.len() / d, first.card.outputs.len());
    let heads: Vec<&HeadWeights> = guards.iter().map(|g| &g.head).collect();
    let norms: Vec<&FeatureNorm> = guards.iter().map(|g| &g.norm).collect();
    let logits = bank_logits(&heads, &norms, x, device);
    Ok(guards.iter().enumerate().map(|(h, g)| (0..n).map(|i| sigmoid(f64::from(logits[(h * n + i) * o]) / g.card.temperature)).collect()).collect())
}

impl GuardModel {
    /// Raw logits `[n, outputs]` for row-major embeddings.
    pub fn logits(&self, x: &[f32], device: &Device) -> Result<Vec<f32>> {
        check_embeddings(x, self.card.input_dim)?;
        if x.is_empty() {
            return Ok(Vec::new());
        }
        Ok(bank_logits(&[&self.head], &[&self.norm], x, device))
    }

    /// Calibrated probabilities: ("unsafe" per row, categories `[n, K]` if any).
    pub fn probabilities(&self, x: &[f32], device: &Device) -> Result<(Vec<f64>, Option<Vec<f64>>)> {
        let o = self.card.outputs.len();
        let logits = self.logits(x, device)?;
        let n = logits.len() / o;
        let p = (0..n).map(|i| sigmoid(f64::from(logits[i * o]) / self.card.temperature)).collect();
        let cats = (o > 1).then(|| (0..n).flat_map(|i| (1..o).map(move |k| (i, k))).map(|(i, k)| sigmoid(f64::from(logits[i * o + k]))).collect());
        Ok((p, cats))
    }

    pub fn predict(&self, ids: &[String], x: &[f32], threshold: Option<f64>, device: &Device) -> Result<Vec<Prediction>> {
        let (p, cats) = self.probabilities(x, device)?;
        if p.len() != ids.len() {
            return Err(Error::TrainingData(format!("{} ids for {} embeddings", ids.len(), p.len())));
        }
        let thr = threshold.unwrap_or(self.card.threshold);
        let k = self.card.outputs.len() - 1;
        Ok(ids
            .iter()
            .enumerate()
            .map(|(i, id)| Prediction {
                id: id.clone(),
                score: p[i],
                verdict: if p[i] >= thr { Label::Unsafe } else { Label::Safe },
                categories: cats.as_ref().map(|c| (0..k).map(|j| (self.card.outputs[1 + j].clone(), c[i * k + j])).collect()).unwrap_or_default(),
            })
            .collect())
    }

    pub fn evaluate(&self, set: &LabeledSet, threshold: Option<f64>, device: &Device) -> Result<Evaluation> {
        if set.dim != self.card.input_dim {
            return Err(Error::Dimension { what: "embeddings".into(), found: set.dim, expected: self.card.input_dim });
        }
        let (p, cats) = self.probabilities(&set.x, device)?;
        Ok(evaluate_scores(set, &p, cats.as_deref(), threshold.unwrap_or(self.card.threshold), self.card.config.calibration.fpr_target))
    }

    /// Refuses embeddings from another encoder.
    pub fn check_encoder(&self, encoder: &EncoderId) -> Result<()> {
        Ok(self.card.encoder.ensure_matches(encoder, "these embeddings (the model was trained on the first)")?)
    }
}
