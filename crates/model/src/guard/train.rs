//! Training guards: one bank computation for many training sets, each
//! guard standardised on its own rows, selected and calibrated on
//! validation data.

use burn::tensor::Device;
use pairguard_data::EncoderId;

use super::{CARD_FORMAT, CalibrationConfig, GuardConfig, GuardModel, ModelCard};
use crate::calibrate::{TEMPERATURE_MAX, TEMPERATURE_MIN, ThresholdRule, choose_threshold, fit_temperature, sigmoid};
use crate::error::{Error, Result};
use crate::features::LabeledSet;
use crate::head::{HeadKind, HeadWeights};
use crate::metrics::{self, BinaryMetrics};
use crate::normalize::{FeatureNorm, NormKind};
use crate::train::{BankJob, TrainConfig, bank_logits, fit_bank, refit_config};

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
pub(super) fn check_embeddings(x: &[f32], d: usize) -> Result<()> {
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
pub(super) fn in_norm_space(w: &HeadWeights, norm: &FeatureNorm) -> HeadWeights {
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
pub(super) fn overlap(train: &LabeledSet, rows: &[usize], validation: &LabeledSet) -> usize {
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
            middle: Vec::new(),
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
