//! Classification metrics with "unsafe" as the positive class. Definitions
//! follow scikit-learn (checked against it by a committed fixture):
//! AUROC is the trapezoidal area under the ROC curve with tied scores
//! grouped, AUPRC is average precision (step-wise, no interpolation).

use serde::{Deserialize, Serialize};

use crate::guard::Evaluation;

/// A metric a guard is judged by, named as in result files (`fits.csv`
/// columns, experiment files): the one list of them.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Metric {
    Auroc,
    Auprc,
    F1,
    Accuracy,
    BalancedAccuracy,
    Ece,
    TprAtFpr,
    PairAccuracy,
    OrderingAccuracy,
    FlipRate,
    Precision,
    /// Share classified correctly and unchanged by every perturbation of a
    /// given size; measured by the experiments, not by an [`Evaluation`].
    RobustAccuracy,
}

impl Metric {
    /// Every metric, in `fits.csv` order.
    pub const ALL: &'static [Metric] = <Metric as strum::VariantArray>::VARIANTS;

    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The metric of an evaluation: pair metrics are NaN on sets without
    /// pairs, and robust accuracy (not measured there) is NaN.
    pub fn of(self, ev: &Evaluation) -> f64 {
        let o = &ev.overall;
        let pairs = |f: fn(&PairMetrics) -> f64| ev.pairs.as_ref().map_or(f64::NAN, f);
        match self {
            Metric::Auroc => o.auroc,
            Metric::Auprc => o.auprc,
            Metric::F1 => o.f1,
            Metric::Accuracy => o.accuracy,
            Metric::BalancedAccuracy => o.balanced_accuracy,
            Metric::Ece => o.ece,
            Metric::TprAtFpr => o.tpr_at_fpr,
            Metric::PairAccuracy => pairs(|p| p.pair_accuracy),
            Metric::OrderingAccuracy => pairs(|p| p.ordering_accuracy),
            Metric::FlipRate => pairs(|p| p.flip_rate),
            Metric::Precision => o.precision,
            Metric::RobustAccuracy => f64::NAN,
        }
    }
}

/// Threshold-free and thresholded metrics for one set of scores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BinaryMetrics {
    pub n: usize,
    pub positives: usize,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// NaN when only one class is present.
    pub auroc: f64,
    pub auprc: f64,
    /// Expected calibration error over 10 equal-width probability bins.
    pub ece: f64,
    /// Highest TPR at an FPR no greater than `fpr_target` (ROC step).
    pub tpr_at_fpr: f64,
    pub fpr_target: f64,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// ROC points (fpr, tpr) at each distinct score threshold, from the highest
/// score down, starting at (0, 0).
pub fn roc_curve(scores: &[f64], labels: &[bool]) -> Vec<(f64, f64)> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let p = labels.iter().filter(|&&l| l).count();
    let n = labels.len() - p;
    let mut pts = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0usize, 0usize);
    for (k, &i) in order.iter().enumerate() {
        if labels[i] {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_tie = k + 1 == order.len() || scores[order[k + 1]] != scores[i];
        if last_of_tie {
            pts.push((ratio(fp, n), ratio(tp, p)));
        }
    }
    pts
}

pub fn auroc(scores: &[f64], labels: &[bool]) -> f64 {
    let p = labels.iter().filter(|&&l| l).count();
    if p == 0 || p == labels.len() {
        return f64::NAN;
    }
    roc_curve(scores, labels).windows(2).map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0).sum()
}

/// Average precision: sum over thresholds of (R_k - R_{k-1}) * P_k.
pub fn auprc(scores: &[f64], labels: &[bool]) -> f64 {
    let p = labels.iter().filter(|&&l| l).count();
    if p == 0 {
        return f64::NAN;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp, mut prev_recall, mut ap) = (0usize, 0usize, 0.0, 0.0);
    for (k, &i) in order.iter().enumerate() {
        if labels[i] {
            tp += 1;
        } else {
            fp += 1;
        }
        if k + 1 == order.len() || scores[order[k + 1]] != scores[i] {
            let recall = ratio(tp, p);
            ap += (recall - prev_recall) * ratio(tp, tp + fp);
            prev_recall = recall;
        }
    }
    ap
}

pub fn tpr_at_fpr(scores: &[f64], labels: &[bool], target: f64) -> f64 {
    roc_curve(scores, labels).into_iter().filter(|&(fpr, _)| fpr <= target + 1e-12).map(|(_, tpr)| tpr).fold(0.0, f64::max)
}

/// Expected calibration error of probabilities `probs` for the positive
/// class: `bins` equal-width bins, each holding the probabilities in
/// (lo, hi] (the first also 0), as scikit-learn's `calibration_curve` and
/// Guo et al. (2017) bin them; each bin's |fraction positive - mean
/// probability| weighted by its share of the samples.
pub fn ece(probs: &[f64], labels: &[bool], bins: usize) -> f64 {
    let mut count = vec![0usize; bins];
    let mut conf = vec![0.0; bins];
    let mut acc = vec![0.0; bins];
    // The edges as numpy's linspace computes them (i * step), so that a
    // probability on an edge falls where it does there.
    let step = 1.0 / bins as f64;
    for (&p, &l) in probs.iter().zip(labels) {
        let b = (1..bins).take_while(|&i| i as f64 * step < p).count();
        count[b] += 1;
        conf[b] += p;
        acc[b] += f64::from(u8::from(l));
    }
    let n = probs.len().max(1) as f64;
    (0..bins).filter(|&b| count[b] > 0).map(|b| (count[b] as f64 / n) * ((acc[b] - conf[b]) / count[b] as f64).abs()).sum()
}

/// All metrics for probabilities `probs` (of "unsafe") with `threshold`.
pub fn binary(probs: &[f64], labels: &[bool], threshold: f64, fpr_target: f64) -> BinaryMetrics {
    let (mut tp, mut fp, mut tn, mut fn_) = (0usize, 0usize, 0usize, 0usize);
    for (&p, &l) in probs.iter().zip(labels) {
        match (p >= threshold, l) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, false) => tn += 1,
            (false, true) => fn_ += 1,
        }
    }
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fn_);
    let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
    let specificity = ratio(tn, tn + fp);
    let has_both = tp + fn_ > 0 && tn + fp > 0;
    BinaryMetrics {
        n: probs.len(),
        positives: tp + fn_,
        accuracy: ratio(tp + tn, probs.len()),
        balanced_accuracy: if has_both { (recall + specificity) / 2.0 } else { f64::NAN },
        precision,
        recall,
        f1,
        auroc: auroc(probs, labels),
        auprc: auprc(probs, labels),
        ece: ece(probs, labels, 10),
        tpr_at_fpr: if has_both { tpr_at_fpr(probs, labels, fpr_target) } else { f64::NAN },
        fpr_target,
    }
}

/// Metrics over counterfactual pairs, each given as (unsafe member's score,
/// safe member's score).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PairMetrics {
    pub pairs: usize,
    /// Both members classified correctly at the threshold.
    pub pair_accuracy: f64,
    /// The unsafe member scores strictly higher than the safe one.
    pub ordering_accuracy: f64,
    /// The verdict flips between the members (in either direction).
    pub flip_rate: f64,
}

pub fn pairs(scores: &[(f64, f64)], threshold: f64) -> PairMetrics {
    let n = scores.len();
    let both = scores.iter().filter(|(u, s)| *u >= threshold && *s < threshold).count();
    let ordered = scores.iter().filter(|(u, s)| u > s).count();
    let flipped = scores.iter().filter(|(u, s)| (*u >= threshold) != (*s >= threshold)).count();
    PairMetrics { pairs: n, pair_accuracy: ratio(both, n), ordering_accuracy: ratio(ordered, n), flip_rate: ratio(flipped, n) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_of_perfect_inverse_and_tied_scores() {
        let l = [false, false, true, true];
        assert_eq!(auroc(&[0.1, 0.2, 0.8, 0.9], &l), 1.0);
        assert_eq!(auroc(&[0.9, 0.8, 0.2, 0.1], &l), 0.0);
        assert_eq!(auroc(&[0.5; 4], &l), 0.5);
        assert!(auroc(&[0.1, 0.2], &[true, true]).is_nan());
    }

    #[test]
    fn pair_metrics_count_correctly() {
        let m = pairs(&[(0.9, 0.1), (0.6, 0.7), (0.4, 0.3)], 0.5);
        assert_eq!(m.pairs, 3);
        assert!((m.pair_accuracy - 1.0 / 3.0).abs() < 1e-12);
        assert!((m.ordering_accuracy - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.flip_rate - 1.0 / 3.0).abs() < 1e-12);
    }
}
