//! A trained guard: normalisation + head + calibration, with a JSON model
//! card and safetensors weights on disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use pairguard_data::hash::write_atomic;
use pairguard_data::{EncoderId, Label};
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};

use crate::calibrate::{TEMPERATURE_MAX, TEMPERATURE_MIN, ThresholdRule, choose_threshold, fit_temperature, sigmoid};
use crate::error::{Error, Result};
use crate::features::LabeledSet;
use crate::head::{HeadKind, HeadWeights};
use crate::metrics::{self, BinaryMetrics, PairMetrics};
use crate::normalize::{FeatureNorm, NormKind};
use crate::train::{BankJob, TrainConfig, bank_logits, fit_bank, refit_config};

pub const CARD_FORMAT: &str = "pairguard-guard/2";

/// Calibration after training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalibrationConfig {
    /// How the decision threshold is chosen; every rule but `fixed` needs
    /// validation data.
    pub threshold: ThresholdRule,
    /// Fit a temperature to the "unsafe" logit on validation data.
    pub temperature: bool,
    /// FPR at which TPR is reported.
    pub fpr_target: f64,
}

impl Default for CalibrationConfig {
    fn default() -> Self {
        CalibrationConfig { threshold: ThresholdRule::BestF1, temperature: true, fpr_target: 0.05 }
    }
}

impl CalibrationConfig {
    /// No calibration: temperature 1 and a fixed threshold (what a guard
    /// trained without validation data can have).
    pub fn fixed(threshold: f64) -> Self {
        CalibrationConfig { threshold: ThresholdRule::Fixed { threshold }, temperature: false, fpr_target: 0.05 }
    }

    pub fn check(&self, has_validation: bool) -> Result<()> {
        let bad = |option: &'static str, message: String| Err(Error::TrainOption { option, message });
        if !(0.0..=1.0).contains(&self.fpr_target) {
            return bad("fpr_target", format!("{} is not in [0, 1]", self.fpr_target));
        }
        match self.threshold {
            ThresholdRule::Fixed { threshold } if !(0.0..=1.0).contains(&threshold) => {
                return bad("threshold", format!("{threshold} is not in [0, 1]"));
            }
            ThresholdRule::TargetFpr { fpr } if !(0.0..=1.0).contains(&fpr) => return bad("threshold", format!("fpr {fpr} is not in [0, 1]")),
            ThresholdRule::Fixed { .. } => {}
            rule if !has_validation => {
                return bad(
                    "threshold",
                    format!("rule {} needs validation data, and there is none here; use {{ rule = \"fixed\", threshold = 0.5 }}", rule.name()),
                );
            }
            _ => {}
        }
        if self.temperature && !has_validation {
            return bad("temperature", "fitting a temperature needs validation data, and there is none here; set temperature = false".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardConfig {
    pub train: TrainConfig,
    pub calibration: CalibrationConfig,
    /// After selecting the weight decay on validation, refit on train + validation.
    pub refit: bool,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig { train: TrainConfig::default(), calibration: CalibrationConfig::default(), refit: true }
    }
}

impl GuardConfig {
    pub fn check(&self, has_validation: bool) -> Result<()> {
        self.train.check(has_validation)?;
        self.calibration.check(has_validation)
    }
}

/// Everything needed to use and audit a model, stored as JSON beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub format: String,
    pub head: HeadKind,
    pub input_dim: usize,
    /// Output names: "unsafe", then one per category for multi-label heads.
    pub outputs: Vec<String>,
    pub normalization: NormKind,
    pub encoder: EncoderId,
    pub categories: Vec<String>,
    pub threshold: f64,
    pub threshold_rule: ThresholdRule,
    pub temperature: f64,
    pub weight_decay: f64,
    /// L-BFGS iterations or AdamW epochs of the kept weights.
    pub epochs: usize,
    pub training_samples: usize,
    pub training_data_sha256: String,
    pub validation_metrics: Option<BinaryMetrics>,
    /// What a user should know about how this guard was trained (overlapping
    /// validation data, a temperature at the edge of its range).
    #[serde(default)]
    pub warnings: Vec<String>,
    pub config: GuardConfig,
    /// The policy and text embeddings a prompt head was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompts: Option<crate::prompts::PromptSource>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GuardModel {
    pub card: ModelCard,
    pub norm: FeatureNorm,
    pub head: HeadWeights,
}

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

/// What calibration on validation data gave one guard.
#[derive(Debug)]
pub(crate) struct Calibration {
    pub temperature: f64,
    pub threshold: f64,
    pub metrics: Option<BinaryMetrics>,
    pub warnings: Vec<String>,
    /// Iterations or epochs of the kept weights.
    pub epochs: usize,
}

/// Temperature, threshold and metrics from validation "unsafe" logits.
pub(crate) fn calibrate(z: &[f64], labels: &[bool], cfg: &CalibrationConfig) -> Calibration {
    let (t, at_edge) = if cfg.temperature { fit_temperature(z, labels) } else { (1.0, false) };
    let p: Vec<f64> = z.iter().map(|&x| sigmoid(x / t)).collect();
    let threshold = choose_threshold(cfg.threshold, &p, labels);
    let mut warnings = Vec::new();
    if at_edge {
        warnings.push(format!(
            "the fitted temperature {t:.3} is at the edge of its range [{TEMPERATURE_MIN}, {TEMPERATURE_MAX}]: validation data may overlap training or be too small"
        ));
    }
    let metrics = metrics::binary(&p, labels, threshold, cfg.fpr_target);
    Calibration { temperature: t, threshold, metrics: Some(metrics), warnings, epochs: 0 }
}

/// Checks raw embeddings for a guard of input dimension `d`.
fn check_embeddings(x: &[f32], d: usize) -> Result<()> {
    if !x.len().is_multiple_of(d) {
        return Err(Error::Dimension { what: format!("embeddings ({} values)", x.len()), found: x.len() % d, expected: d });
    }
    match x.iter().position(|v| !v.is_finite()) {
        Some(j) => Err(Error::NonFinite { what: "embeddings", row: j / d, dim: j % d }),
        None => Ok(()),
    }
}

/// A linear head on unit embeddings as the same function after `norm`'s
/// standardisation: `x W + b = x_std (std * W) + (b + mean W)`. Other heads
/// and normalisations take their start as it is.
fn in_norm_space(w: &HeadWeights, norm: &FeatureNorm) -> HeadWeights {
    if w.kind != HeadKind::Linear || norm.kind != NormKind::Standardize {
        return w.clone();
    }
    let (d, o) = (w.input_dim, w.outputs);
    let mut out = w.clone();
    for i in 0..d {
        for j in 0..o {
            out.w1[i * o + j] = w.w1[i * o + j] * norm.std[i];
            out.b1[j] += norm.mean[i] * w.w1[i * o + j];
        }
    }
    out
}

/// Ids of validation samples that are also training samples, by id or by
/// an identical embedding.
fn overlap(train: &LabeledSet, rows: &[usize], validation: &LabeledSet) -> usize {
    use std::collections::HashSet;
    let ids: HashSet<&str> = rows.iter().map(|&r| train.ids[r].as_str()).collect();
    let bits = |row: &[f32]| row.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
    let vectors: HashSet<Vec<u32>> = rows.iter().map(|&r| bits(train.row(r))).collect();
    (0..validation.len()).filter(|&i| ids.contains(validation.ids[i].as_str()) || vectors.contains(&bits(validation.row(i)))).count()
}

/// Trains one guard per training set (`sets` holds row indices into
/// `data`) as one bank computation. Each guard is standardised with the
/// statistics of its own rows. With validation data each selects its weight
/// decay from the grid, early-stops, is calibrated on validation and, with
/// `refit`, refitted on its rows plus the validation set; without, options
/// that need validation are refused (see [`GuardConfig::check`]). Every
/// guard starts from `start` when given (a zero-shot guard's head; see
/// [`crate::train::BankJob::start`]); a linear start is given on unit
/// embeddings and carried into each guard's standardisation.
pub fn train_guards(
    data: &LabeledSet,
    sets: &[Vec<usize>],
    validation: Option<&LabeledSet>,
    encoder: &EncoderId,
    cfg: &GuardConfig,
    start: Option<&HeadWeights>,
    device: &Device,
) -> Result<Vec<GuardModel>> {
    cfg.check(validation.is_some())?;
    let tc = &cfg.train;
    if encoder.dim != data.dim {
        return Err(Error::Dimension { what: "training embeddings".into(), found: data.dim, expected: encoder.dim });
    }
    if let Some(v) = validation {
        if v.dim != data.dim {
            return Err(Error::Dimension { what: "validation embeddings".into(), found: v.dim, expected: data.dim });
        }
        if v.is_empty() {
            return Err(Error::TrainingData("the validation set is empty".into()));
        }
    }
    let (targets, outputs) = data.targets(tc.multilabel);
    let grid = if tc.weight_decay_grid.is_empty() { vec![tc.weight_decay] } else { tc.weight_decay_grid.clone() };
    let g = grid.len();
    // Head s * g + j: training set s with the j-th weight decay.
    let members: Vec<Vec<usize>> = sets.iter().flat_map(|rows| std::iter::repeat_n(rows.clone(), g)).collect();
    let norms: Vec<FeatureNorm> = members.iter().map(|rows| FeatureNorm::fit_rows(tc.normalization, &data.x, data.dim, rows)).collect();
    let start_heads: Option<Vec<HeadWeights>> = start.map(|w| norms.iter().map(|n| in_norm_space(w, n)).collect());
    let val_targets = validation.map(|v| v.targets(tc.multilabel).0);
    let job = BankJob {
        x: &data.x,
        dim: data.dim,
        targets: &targets,
        outputs,
        members,
        lambdas: sets.iter().flat_map(|_| grid.iter().copied()).collect(),
        norms,
        validation: validation.zip(val_targets.as_deref()).map(|(v, y)| (v.x.as_slice(), y)),
        start: start_heads,
    };
    let fit = fit_bank(&job, tc, device)?;
    let chosen: Vec<usize> = (0..sets.len())
        .map(|s| (s * g..(s + 1) * g).min_by(|&a, &b| fit.validation_loss[a].total_cmp(&fit.validation_loss[b])).expect("non-empty grid"))
        .collect();

    // Calibration on validation predictions of the train-only heads.
    let mut calibration: Vec<Calibration> = Vec::with_capacity(sets.len());
    match validation {
        Some(v) => {
            let heads: Vec<&HeadWeights> = chosen.iter().map(|&h| &fit.heads[h]).collect();
            let norms: Vec<&FeatureNorm> = chosen.iter().map(|&h| &job.norms[h]).collect();
            let logits = bank_logits(&heads, &norms, &v.x, device);
            let nv = v.len();
            for (s, &h) in chosen.iter().enumerate() {
                let z: Vec<f64> = (0..nv).map(|i| f64::from(logits[(s * nv + i) * outputs])).collect();
                let mut c = calibrate(&z, &v.labels, &cfg.calibration);
                let shared = overlap(data, &sets[s], v);
                if shared > 0 {
                    c.warnings.insert(0, format!("{shared} of {nv} validation samples are also training samples (same id or identical embedding): calibration and selection on them are optimistic"));
                }
                c.epochs = fit.best_epoch[h];
                calibration.push(c);
            }
        }
        None => {
            let ThresholdRule::Fixed { threshold } = cfg.calibration.threshold else { unreachable!("checked by GuardConfig::check") };
            for &h in &chosen {
                calibration.push(Calibration { temperature: 1.0, threshold, metrics: None, warnings: Vec::new(), epochs: fit.best_epoch[h] });
            }
        }
    }

    // Refit on train + validation with the selected weight decay and epochs.
    let mut final_heads: Vec<HeadWeights> = chosen.iter().map(|&h| fit.heads[h].clone()).collect();
    let mut final_norms: Vec<FeatureNorm> = chosen.iter().map(|&h| job.norms[h].clone()).collect();
    let mut trained_on: Vec<LabeledSet> = sets.iter().map(|rows| data.subset(rows)).collect();
    if let (true, false, Some(v)) = (cfg.refit, tc.weight_decay_grid.is_empty(), validation) {
        let all = data.concat(v);
        let (ya, _) = all.targets(tc.multilabel);
        let offset = data.len();
        let rows: Vec<Vec<usize>> = sets.iter().map(|r| r.iter().copied().chain(offset..offset + v.len()).collect()).collect();
        let norms: Vec<FeatureNorm> = rows.iter().map(|r| FeatureNorm::fit_rows(tc.normalization, &all.x, all.dim, r)).collect();
        let rounds = chosen.iter().map(|&h| fit.best_epoch[h]).max().unwrap_or(1);
        let refit = fit_bank(
            &BankJob {
                x: &all.x,
                dim: all.dim,
                targets: &ya,
                outputs,
                members: rows.clone(),
                lambdas: chosen.iter().map(|&h| job.lambdas[h]).collect(),
                norms: norms.clone(),
                validation: None,
                start: start.map(|w| norms.iter().map(|n| in_norm_space(w, n)).collect()),
            },
            &refit_config(tc, rounds),
            device,
        )?;
        final_heads = refit.heads;
        final_norms = norms;
        trained_on = rows.iter().map(|r| all.subset(r)).collect();
    }

    let mut names = vec!["unsafe".to_string()];
    if tc.multilabel {
        names.extend(data.categories.iter().cloned());
    }
    Ok(final_heads
        .into_iter()
        .zip(final_norms)
        .zip(calibration)
        .zip(trained_on)
        .zip(&chosen)
        .map(|((((head, norm), c), set), &h)| GuardModel {
            card: ModelCard {
                format: CARD_FORMAT.into(),
                head: tc.head,
                input_dim: data.dim,
                outputs: names.clone(),
                normalization: tc.normalization,
                encoder: encoder.clone(),
                categories: data.categories.clone(),
                threshold: c.threshold,
                threshold_rule: cfg.calibration.threshold,
                temperature: c.temperature,
                weight_decay: job.lambdas[h],
                epochs: c.epochs,
                training_samples: set.len(),
                training_data_sha256: set.content_hash(),
                validation_metrics: c.metrics,
                warnings: c.warnings,
                config: cfg.clone(),
                prompts: None,
            },
            norm,
            head,
        })
        .collect())
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
    /// A guard from given head weights (not trained here): one "unsafe"
    /// output, temperature 1 and a fixed threshold.
    pub fn fixed(head: HeadWeights, norm: FeatureNorm, encoder: EncoderId, threshold: f64) -> Result<Self> {
        Self::untrained(head, norm, encoder, Vec::new(), threshold)
    }

    /// A guard from given head weights with "unsafe" and one output per
    /// category of `categories` (none, or all of them), temperature 1 and a
    /// fixed threshold.
    pub fn untrained(head: HeadWeights, norm: FeatureNorm, encoder: EncoderId, categories: Vec<String>, threshold: f64) -> Result<Self> {
        if norm.dim() != head.input_dim || encoder.dim != head.input_dim {
            return Err(Error::Dimension {
                what: "a given guard's head, normalisation and encoder".into(),
                found: norm.dim(),
                expected: head.input_dim,
            });
        }
        if ![1, 1 + categories.len()].contains(&head.outputs) {
            return Err(Error::TrainingData(format!("a head of {} outputs for {} categories", head.outputs, categories.len())));
        }
        let mut outputs = vec!["unsafe".to_string()];
        if head.outputs > 1 {
            outputs.extend(categories.iter().cloned());
        }
        let card = ModelCard {
            format: CARD_FORMAT.into(),
            head: head.kind,
            input_dim: head.input_dim,
            outputs,
            normalization: norm.kind,
            encoder,
            categories,
            threshold,
            threshold_rule: ThresholdRule::Fixed { threshold },
            temperature: 1.0,
            weight_decay: 0.0,
            epochs: 0,
            training_samples: 0,
            training_data_sha256: String::new(),
            validation_metrics: None,
            warnings: Vec::new(),
            config: GuardConfig { train: TrainConfig::for_head(head.kind), calibration: CalibrationConfig::fixed(threshold), refit: false },
            prompts: None,
        };
        Ok(GuardModel { card, norm, head })
    }

    /// Trains one guard on all of `train`; see [`train_guards`].
    pub fn train(
        train: &LabeledSet,
        validation: Option<&LabeledSet>,
        encoder: EncoderId,
        cfg: &GuardConfig,
        start: Option<&HeadWeights>,
        device: &Device,
    ) -> Result<Self> {
        if train.is_empty() {
            return Err(Error::TrainingData("no training samples".into()));
        }
        if !(train.labels.iter().any(|&l| l) && train.labels.iter().any(|&l| !l)) {
            return Err(Error::TrainingData("training data needs both safe and unsafe samples".into()));
        }
        let all: Vec<usize> = (0..train.len()).collect();
        Ok(train_guards(train, &[all], validation, &encoder, cfg, start, device)?.remove(0))
    }

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

    pub fn card_path(weights: &Path) -> PathBuf {
        weights.with_extension("json")
    }

    /// Writes `<path>` (safetensors: head weights and normalisation) and
    /// `<path>.json` (the card), atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let h = &self.head;
        let width = h.kind.width(h.outputs);
        let mut tensors: Vec<(&str, Vec<u8>, Vec<usize>)> = vec![
            ("head.w1", bytes(&h.w1), vec![h.input_dim, width]),
            ("head.b1", bytes(&h.b1), vec![width]),
            ("norm.mean", bytes(&self.norm.mean), vec![self.norm.dim()]),
            ("norm.std", bytes(&self.norm.std), vec![self.norm.dim()]),
        ];
        if let (Some(w2), Some(b2)) = (&h.w2, &h.b2) {
            tensors.push(("head.w2", bytes(w2), vec![width, h.outputs]));
            tensors.push(("head.b2", bytes(b2), vec![h.outputs]));
        }
        let views: Vec<(&str, TensorView)> = tensors
            .iter()
            .map(|(n, b, s)| Ok((*n, TensorView::new(Dtype::F32, s.clone(), b)?)))
            .collect::<Result<_, safetensors::SafeTensorError>>()?;
        let file = safetensors::serialize(views, None)?;
        write_atomic(path, &file)?;
        write_atomic(&Self::card_path(path), &serde_json::to_vec_pretty(&self.card)?)?;
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Self> {
        let card_path = Self::card_path(path);
        let card_error = |message: String| Error::ModelFile { path: card_path.clone(), message };
        let text = std::fs::read_to_string(&card_path).map_err(|e| Error::io(&card_path, e))?;
        let card: ModelCard = serde_json::from_str(&text).map_err(|e| card_error(e.to_string()))?;
        if card.format != CARD_FORMAT {
            return Err(card_error(format!("unsupported model format {:?} (this build reads {CARD_FORMAT})", card.format)));
        }
        if card.outputs.is_empty() || card.outputs[0] != "unsafe" {
            return Err(card_error(format!("`outputs` must start with \"unsafe\", found {:?}", card.outputs)));
        }
        if card.input_dim == 0 || matches!(card.head, HeadKind::Mlp { hidden: 0, .. } | HeadKind::Prompt { categories: 0, .. }) {
            return Err(card_error("`input_dim`, the MLP's `hidden` and the prompt head's `categories` must be positive".into()));
        }
        if let HeadKind::Concepts { concepts, adjustment, scale, .. } = card.head
            && (concepts == 0 || card.outputs.len() != 1 || !(scale > 0.0 && scale.is_finite() && adjustment.is_finite()))
        {
            return Err(card_error("a concept filter has concepts, one output, a positive scale and a finite adjustment".into()));
        }
        if let HeadKind::Prompt { categories, scale } = card.head
            && !(scale > 0.0 && scale.is_finite() && [1, 1 + categories].contains(&card.outputs.len()))
        {
            return Err(card_error(format!("a prompt head of {categories} categories has 1 or {} outputs and a positive scale", 1 + categories)));
        }
        if !(card.temperature > 0.0 && card.temperature.is_finite() && (0.0..=1.0).contains(&card.threshold)) {
            return Err(card_error(format!("temperature {} must be positive and threshold {} in [0, 1]", card.temperature, card.threshold)));
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let weights_error = |message: String| Error::ModelFile { path: path.to_path_buf(), message };
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| weights_error(e.to_string()))?;
        let width = card.head.width(card.outputs.len());
        let d = card.input_dim;
        let o = card.outputs.len();
        let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let t = st.tensor(name).map_err(|_| weights_error(format!("missing tensor {name:?}")))?;
            if t.dtype() != Dtype::F32 || t.shape() != shape {
                return Err(weights_error(format!("tensor {name:?} is {:?} {:?}, the card implies F32 {shape:?}", t.dtype(), t.shape())));
            }
            let v: Vec<f32> = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            if v.iter().any(|x| !x.is_finite()) {
                return Err(weights_error(format!("tensor {name:?} has non-finite values")));
            }
            Ok(v)
        };
        let mlp = matches!(card.head, HeadKind::Mlp { .. });
        let head = HeadWeights {
            kind: card.head,
            input_dim: d,
            outputs: o,
            w1: get("head.w1", &[d, width])?,
            b1: get("head.b1", &[width])?,
            w2: if mlp { Some(get("head.w2", &[width, o])?) } else { None },
            b2: if mlp { Some(get("head.b2", &[o])?) } else { None },
        };
        let norm = FeatureNorm { kind: card.normalization, mean: get("norm.mean", &[d])?, std: get("norm.std", &[d])? };
        Ok(GuardModel { card, norm, head })
    }
}

fn bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_linear_start_keeps_its_function_through_standardisation() {
        let (d, o, n) = (5, 2, 7);
        let val = |i: usize| ((i * 7919 % 101) as f32 / 101.0) - 0.5;
        let x: Vec<f32> = (0..n * d).map(|i| val(i + 3)).collect();
        let w = HeadWeights {
            kind: HeadKind::Linear,
            input_dim: d,
            outputs: o,
            w1: (0..d * o).map(val).collect(),
            b1: vec![0.3, -0.1],
            w2: None,
            b2: None,
        };
        let norm = FeatureNorm::fit(NormKind::Standardize, &x, d);
        let mut unit = x.clone();
        FeatureNorm::row_step(NormKind::Standardize, &mut unit, d);
        let mut standardised = x.clone();
        norm.apply(&mut standardised);
        let (want, got) = (w.logits_host(&unit), in_norm_space(&w, &norm).logits_host(&standardised));
        let worst = want.iter().zip(&got).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "{worst}");
        assert!(norm.std.iter().any(|&s| (s - 1.0).abs() > 0.1), "the test needs a real standardisation");
    }
}
