//! A trained guard: normalisation + head + calibration, with a JSON model
//! card and safetensors weights on disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use pairguard_data::EncoderId;
use pairguard_data::hash::write_atomic;
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};

use crate::calibrate::{choose_threshold, fit_temperature, sigmoid, ThresholdRule};
use crate::features::LabeledSet;
use crate::head::{HeadKind, HeadWeights};
use crate::metrics::{self, BinaryMetrics, PairMetrics};
use crate::normalize::{FeatureNorm, NormKind};
use crate::train::{bank_logits, fit_bank, BankJob, TrainConfig};

pub const CARD_FORMAT: &str = "pairguard-guard/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardConfig {
    pub train: TrainConfig,
    pub threshold: ThresholdRule,
    /// Fit a temperature on validation data.
    pub temperature: bool,
    /// After selecting the weight decay on validation, refit on train + validation.
    pub refit: bool,
    /// FPR at which TPR is reported.
    pub fpr_target: f64,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            train: TrainConfig::default(),
            threshold: ThresholdRule::BestF1,
            temperature: true,
            refit: true,
            fpr_target: 0.05,
        }
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
    pub epochs: usize,
    pub training_samples: usize,
    pub training_data_sha256: String,
    pub validation_metrics: Option<BinaryMetrics>,
    pub config: GuardConfig,
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
    pub verdict: &'static str,
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
pub fn evaluate_scores(
    set: &LabeledSet,
    probs: &[f64],
    category_probs: Option<&[f64]>,
    threshold: f64,
    fpr_target: f64,
) -> Evaluation {
    let mut ev = Evaluation {
        overall: metrics::binary(probs, &set.labels, threshold, fpr_target),
        ..Default::default()
    };
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

fn normalized(norm: &FeatureNorm, x: &[f32]) -> Vec<f32> {
    let mut y = x.to_vec();
    norm.apply(&mut y);
    y
}

impl GuardModel {
    /// Trains a guard; see [`GuardConfig`]. Without validation data the
    /// temperature is 1 and the threshold 0.5, and the card says so.
    pub fn train(
        train: &LabeledSet,
        validation: Option<&LabeledSet>,
        encoder: EncoderId,
        cfg: &GuardConfig,
        device: &Device,
    ) -> anyhow::Result<Self> {
        let tc = &cfg.train;
        anyhow::ensure!(!train.is_empty(), "no training samples");
        anyhow::ensure!(
            train.labels.iter().any(|&l| l) && train.labels.iter().any(|&l| !l),
            "training data needs both safe and unsafe samples"
        );
        anyhow::ensure!(encoder.dim == train.dim, "encoder dimension {} != feature dimension {}", encoder.dim, train.dim);
        let norm = FeatureNorm::fit(tc.normalization, &train.x, train.dim);
        let xt = normalized(&norm, &train.x);
        let (yt, outputs) = train.targets(tc.multilabel);
        let val = validation.map(|v| (normalized(&norm, &v.x), v.targets(tc.multilabel).0, v));
        let grid = if tc.weight_decay_grid.is_empty() || val.is_none() {
            vec![tc.weight_decay]
        } else {
            tc.weight_decay_grid.clone()
        };
        let job = BankJob {
            x: &xt,
            dim: train.dim,
            targets: &yt,
            outputs,
            members: vec![(0..train.len()).collect(); grid.len()],
            lambdas: grid.clone(),
            validation: val.as_ref().map(|(x, y, _)| (x.as_slice(), y.as_slice())),
            epochs: None,
        };
        let fit = fit_bank(&job, tc, device)?;
        let best = (0..grid.len())
            .min_by(|&a, &b| fit.validation_loss[a].total_cmp(&fit.validation_loss[b]))
            .expect("non-empty grid");
        let (lambda, epochs) = (grid[best], fit.best_epoch[best]);
        let mut head = fit.heads[best].clone();
        let mut norm = norm;

        // Calibration on validation predictions of the train-only model.
        let (temperature, threshold, rule, val_metrics) = match &val {
            Some((vx, _, vset)) => {
                let logits = bank_logits(&[&head], vx, device);
                let z: Vec<f64> = (0..vset.len()).map(|i| f64::from(logits[i * outputs])).collect();
                let t = if cfg.temperature { fit_temperature(&z, &vset.labels) } else { 1.0 };
                let p: Vec<f64> = z.iter().map(|&v| sigmoid(v / t)).collect();
                let thr = choose_threshold(cfg.threshold, &p, &vset.labels);
                (t, thr, cfg.threshold, Some(metrics::binary(&p, &vset.labels, thr, cfg.fpr_target)))
            }
            None => (1.0, 0.5, ThresholdRule::Fixed { threshold: 0.5 }, None),
        };

        let mut trained_on = train.clone();
        if cfg.refit && !tc.weight_decay_grid.is_empty() && let Some((_, _, vset)) = &val {
            let all = train.concat(vset);
            norm = FeatureNorm::fit(tc.normalization, &all.x, all.dim);
            let xa = normalized(&norm, &all.x);
            let (ya, _) = all.targets(tc.multilabel);
            let refit = fit_bank(
                &BankJob {
                    x: &xa,
                    dim: all.dim,
                    targets: &ya,
                    outputs,
                    members: vec![(0..all.len()).collect()],
                    lambdas: vec![lambda],
                    validation: None,
                    epochs: Some(epochs.max(1)),
                },
                tc,
                device,
            )?;
            head = refit.heads[0].clone();
            trained_on = all;
        }

        let mut names = vec!["unsafe".to_string()];
        if tc.multilabel {
            names.extend(train.categories.iter().cloned());
        }
        Ok(GuardModel {
            card: ModelCard {
                format: CARD_FORMAT.into(),
                head: tc.head,
                input_dim: train.dim,
                outputs: names,
                normalization: tc.normalization,
                encoder,
                categories: train.categories.clone(),
                threshold,
                threshold_rule: rule,
                temperature,
                weight_decay: lambda,
                epochs,
                training_samples: trained_on.len(),
                training_data_sha256: trained_on.content_hash(),
                validation_metrics: val_metrics,
                config: cfg.clone(),
            },
            norm,
            head,
        })
    }

    /// Raw logits `[n, outputs]` for row-major embeddings.
    pub fn logits(&self, x: &[f32], device: &Device) -> anyhow::Result<Vec<f32>> {
        let d = self.card.input_dim;
        anyhow::ensure!(x.len().is_multiple_of(d), "embeddings have {} values, not a multiple of dimension {d}", x.len());
        if let Some(j) = x.iter().position(|v| !v.is_finite()) {
            anyhow::bail!("embedding row {} has a non-finite value at dimension {}", j / d, j % d);
        }
        if x.is_empty() {
            return Ok(Vec::new());
        }
        Ok(bank_logits(&[&self.head], &normalized(&self.norm, x), device))
    }

    /// Calibrated probabilities: ("unsafe" per row, categories `[n, K]` if any).
    pub fn probabilities(&self, x: &[f32], device: &Device) -> anyhow::Result<(Vec<f64>, Option<Vec<f64>>)> {
        let o = self.card.outputs.len();
        let logits = self.logits(x, device)?;
        let n = logits.len() / o;
        let p = (0..n).map(|i| sigmoid(f64::from(logits[i * o]) / self.card.temperature)).collect();
        let cats = (o > 1).then(|| {
            (0..n).flat_map(|i| (1..o).map(move |k| (i, k))).map(|(i, k)| sigmoid(f64::from(logits[i * o + k]))).collect()
        });
        Ok((p, cats))
    }

    pub fn predict(&self, ids: &[String], x: &[f32], threshold: Option<f64>, device: &Device) -> anyhow::Result<Vec<Prediction>> {
        let (p, cats) = self.probabilities(x, device)?;
        anyhow::ensure!(p.len() == ids.len(), "{} ids for {} embeddings", ids.len(), p.len());
        let thr = threshold.unwrap_or(self.card.threshold);
        let k = self.card.outputs.len() - 1;
        Ok(ids
            .iter()
            .enumerate()
            .map(|(i, id)| Prediction {
                id: id.clone(),
                score: p[i],
                verdict: if p[i] >= thr { "unsafe" } else { "safe" },
                categories: cats
                    .as_ref()
                    .map(|c| (0..k).map(|j| (self.card.outputs[1 + j].clone(), c[i * k + j])).collect())
                    .unwrap_or_default(),
            })
            .collect())
    }

    pub fn evaluate(&self, set: &LabeledSet, threshold: Option<f64>, device: &Device) -> anyhow::Result<Evaluation> {
        anyhow::ensure!(set.dim == self.card.input_dim, "embeddings have dimension {}, the model expects {}", set.dim, self.card.input_dim);
        let (p, cats) = self.probabilities(&set.x, device)?;
        Ok(evaluate_scores(set, &p, cats.as_deref(), threshold.unwrap_or(self.card.threshold), self.card.config.fpr_target))
    }

    /// Refuses embeddings from another encoder.
    pub fn check_encoder(&self, encoder: &EncoderId) -> anyhow::Result<()> {
        Ok(self.card.encoder.ensure_matches(encoder, "these embeddings (the model was trained on the first)")?)
    }

    pub fn card_path(weights: &Path) -> PathBuf {
        weights.with_extension("json")
    }

    /// Writes `<path>` (safetensors: head weights and normalisation) and
    /// `<path>.json` (the card), atomically.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let h = &self.head;
        let width = h.hidden().unwrap_or(h.outputs);
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

    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let card_path = Self::card_path(path);
        let text = std::fs::read_to_string(&card_path).map_err(|e| anyhow::anyhow!("{}: {e}", card_path.display()))?;
        let card: ModelCard = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", card_path.display()))?;
        anyhow::ensure!(card.format == CARD_FORMAT, "{}: unsupported model format {:?}", card_path.display(), card.format);
        let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let width = match card.head {
            HeadKind::Linear => card.outputs.len(),
            HeadKind::Mlp { hidden, .. } => hidden,
        };
        let d = card.input_dim;
        let o = card.outputs.len();
        let get = |name: &str, shape: &[usize]| -> anyhow::Result<Vec<f32>> {
            let t = st.tensor(name).map_err(|_| anyhow::anyhow!("{}: missing tensor {name:?}", path.display()))?;
            anyhow::ensure!(
                t.dtype() == Dtype::F32 && t.shape() == shape,
                "{}: tensor {name:?} is {:?} {:?}, the card implies F32 {shape:?}",
                path.display(),
                t.dtype(),
                t.shape()
            );
            let v: Vec<f32> = t.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
            anyhow::ensure!(v.iter().all(|x| x.is_finite()), "{}: tensor {name:?} has non-finite values", path.display());
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
        let norm = FeatureNorm {
            kind: card.normalization,
            mean: get("norm.mean", &[d])?,
            std: get("norm.std", &[d])?,
        };
        Ok(GuardModel { card, norm, head })
    }
}

fn bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
