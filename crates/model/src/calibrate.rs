//! Post-hoc calibration on validation data: temperature scaling of the
//! "unsafe" logit, and a decision threshold chosen by a stated rule.

use serde::{Deserialize, Serialize};

pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn nll(logits: &[f64], labels: &[bool], t: f64) -> f64 {
    logits
        .iter()
        .zip(labels)
        .map(|(&z, &y)| {
            let z = z / t;
            z.max(0.0) - if y { z } else { 0.0 } + (-z.abs()).exp().ln_1p()
        })
        .sum::<f64>()
        / logits.len().max(1) as f64
}

/// The range a fitted temperature is kept in. A temperature far below 1
/// means the validation logits separate perfectly (typically because
/// validation overlaps training), and scaling by it would give scores like
/// 1e-84; one far above 1 flattens every score towards 0.5.
pub const TEMPERATURE_MIN: f64 = 0.2;
pub const TEMPERATURE_MAX: f64 = 5.0;

/// The temperature minimising validation NLL within
/// [`TEMPERATURE_MIN`, `TEMPERATURE_MAX`], by golden-section search on log T
/// (NLL is unimodal in T for a fixed logit vector), and whether it lies at
/// an edge of that range.
pub fn fit_temperature(logits: &[f64], labels: &[bool]) -> (f64, bool) {
    if logits.is_empty() || labels.iter().all(|&l| l) || labels.iter().all(|&l| !l) {
        return (1.0, false);
    }
    let f = |lt: f64| nll(logits, labels, lt.exp());
    let (lo, hi) = (TEMPERATURE_MIN.ln(), TEMPERATURE_MAX.ln());
    let (mut a, mut b) = (lo, hi);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut c, mut d) = (b - g * (b - a), a + g * (b - a));
    for _ in 0..100 {
        if f(c) < f(d) {
            b = d;
        } else {
            a = c;
        }
        c = b - g * (b - a);
        d = a + g * (b - a);
    }
    let lt = (a + b) / 2.0;
    let edge = (lt - lo).abs() < 1e-3 || (hi - lt).abs() < 1e-3;
    (lt.exp(), edge)
}

/// How the decision threshold is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ThresholdRule {
    Fixed {
        threshold: f64,
    },
    /// The lowest threshold whose validation FPR does not exceed the target.
    TargetFpr {
        fpr: f64,
    },
    /// The threshold with the best validation F1.
    #[default]
    BestF1,
}

impl ThresholdRule {
    pub fn name(&self) -> String {
        match self {
            ThresholdRule::Fixed { threshold } => threshold.to_string(),
            ThresholdRule::TargetFpr { fpr } => format!("fpr:{fpr}"),
            ThresholdRule::BestF1 => "best-f1".into(),
        }
    }
}

impl std::str::FromStr for ThresholdRule {
    type Err = crate::Error;

    /// `best-f1`, `fpr:<target>` or a fixed threshold in [0, 1].
    fn from_str(s: &str) -> crate::Result<Self> {
        let bad =
            || crate::Error::UnknownName { kind: "threshold rule", name: s.into(), known: "best-f1, fpr:<target>, or a number in [0, 1]".into() };
        let unit = |v: &str| v.parse::<f64>().ok().filter(|x| (0.0..=1.0).contains(x));
        if s == "best-f1" {
            Ok(ThresholdRule::BestF1)
        } else if let Some(f) = s.strip_prefix("fpr:") {
            unit(f).map(|fpr| ThresholdRule::TargetFpr { fpr }).ok_or_else(bad)
        } else {
            unit(s).map(|threshold| ThresholdRule::Fixed { threshold }).ok_or_else(bad)
        }
    }
}

/// Applies the rule to calibrated validation probabilities.
pub fn choose_threshold(rule: ThresholdRule, probs: &[f64], labels: &[bool]) -> f64 {
    let mut candidates: Vec<f64> = probs.to_vec();
    candidates.sort_by(f64::total_cmp);
    candidates.dedup();
    match rule {
        ThresholdRule::Fixed { threshold } => threshold,
        ThresholdRule::BestF1 => {
            // One pass over the distinct scores from the highest down: at
            // threshold t, everything scoring >= t is called unsafe.
            let positives = labels.iter().filter(|&&l| l).count() as f64;
            let mut order: Vec<usize> = (0..probs.len()).collect();
            order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
            let (mut tp, mut fp, mut best) = (0.0, 0.0, (f64::NEG_INFINITY, 0.5));
            for (k, &i) in order.iter().enumerate() {
                if labels[i] {
                    tp += 1.0
                } else {
                    fp += 1.0
                }
                let last_of_tie = k + 1 == order.len() || probs[order[k + 1]] != probs[i];
                let f1 = if tp > 0.0 { 2.0 * tp / (2.0 * tp + fp + (positives - tp)) } else { 0.0 };
                // Among thresholds with equal F1, the lowest.
                if last_of_tie && f1 >= best.0 {
                    best = (f1, probs[i]);
                }
            }
            // Between the chosen score and the next lower one, so scores
            // that saturate at the chosen value still count as unsafe.
            let t = best.1;
            match candidates.iter().rposition(|&c| c < t) {
                Some(j) => (candidates[j] + t) / 2.0,
                None => t,
            }
        }
        ThresholdRule::TargetFpr { fpr } => {
            let neg = labels.iter().filter(|&&l| !l).count().max(1) as f64;
            candidates
                .iter()
                .copied()
                .find(|&t| {
                    let fp = probs.iter().zip(labels).filter(|&(&p, &l)| !l && p >= t).count() as f64;
                    fp / neg <= fpr
                })
                .unwrap_or(1.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_recovers_a_known_scale() {
        // Labels drawn from sigmoid(z / 2): the fitted temperature is near 2
        // when the same logits are presented.
        let logits: Vec<f64> = (0..4000).map(|i| (i as f64 / 4000.0 - 0.5) * 16.0).collect();
        let labels: Vec<bool> = logits.iter().enumerate().map(|(i, &z)| ((i * 7919 % 1000) as f64 / 1000.0) < sigmoid(z / 2.0)).collect();
        let (t, edge) = fit_temperature(&logits, &labels);
        assert!((t - 2.0).abs() < 0.2 && !edge, "T = {t}");
        // Perfectly separated logits push T down to the bound, and say so.
        let labels: Vec<bool> = logits.iter().map(|&z| z > 0.0).collect();
        let (t, edge) = fit_temperature(&logits, &labels);
        assert!((t - TEMPERATURE_MIN).abs() < 1e-3 && edge, "T = {t}");
    }

    #[test]
    fn threshold_rules_parse_and_reject_nonsense() {
        assert_eq!("best-f1".parse::<ThresholdRule>().unwrap(), ThresholdRule::BestF1);
        assert_eq!("fpr:0.05".parse::<ThresholdRule>().unwrap(), ThresholdRule::TargetFpr { fpr: 0.05 });
        assert_eq!("0.3".parse::<ThresholdRule>().unwrap(), ThresholdRule::Fixed { threshold: 0.3 });
        for bad in ["f1", "fpr:2", "1.5", ""] {
            assert!(bad.parse::<ThresholdRule>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn target_fpr_threshold_respects_the_target() {
        let probs: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect();
        let labels: Vec<bool> = (0..100).map(|i| i >= 50).collect();
        let t = choose_threshold(ThresholdRule::TargetFpr { fpr: 0.1 }, &probs, &labels);
        let fp = probs.iter().zip(&labels).filter(|&(&p, &l)| !l && p >= t).count();
        assert!(fp <= 5, "fpr {} at threshold {t}", fp as f64 / 50.0);
        assert!(t <= 0.46, "the lowest admissible threshold is chosen, got {t}");
        // Best F1 at 0.5, placed halfway to the next lower score.
        assert!((choose_threshold(ThresholdRule::BestF1, &probs, &labels) - 0.495).abs() < 1e-12);
        // It agrees with scoring every candidate threshold.
        let noisy: Vec<f64> = (0..300).map(|i| ((i * 7919) % 1000) as f64 / 1000.0).collect();
        let truth: Vec<bool> = (0..300).map(|i| (i * 31) % 7 < 3 || noisy[i] > 0.8).collect();
        let t = choose_threshold(ThresholdRule::BestF1, &noisy, &truth);
        use crate::metrics;
        let best = noisy.iter().map(|&c| metrics::binary(&noisy, &truth, c, 0.01).f1).fold(0.0, f64::max);
        assert!((metrics::binary(&noisy, &truth, t, 0.01).f1 - best).abs() < 1e-12);
    }
}
