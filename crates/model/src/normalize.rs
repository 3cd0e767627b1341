//! Feature normalisation applied before a head. Stored with the model and
//! exported into ONNX graphs, so every runtime sees the same inputs.

use pairguard_clip::l2_rows_host;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NormKind {
    None,
    /// Scale each embedding to unit length (CLIP's own convention).
    L2,
    /// L2, then subtract the training mean and divide by the training
    /// standard deviation per dimension (the linear-probe convention).
    #[default]
    Standardize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureNorm {
    pub kind: NormKind,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl FeatureNorm {
    pub fn identity(d: usize) -> Self {
        FeatureNorm { kind: NormKind::None, mean: vec![0.0; d], std: vec![1.0; d] }
    }

    /// Fits on row-major `[n, d]` training features.
    pub fn fit(kind: NormKind, x: &[f32], d: usize) -> Self {
        let n = x.len() / d.max(1);
        Self::fit_rows(kind, x, d, &(0..n).collect::<Vec<_>>())
    }

    /// Fits on the given rows of row-major `[n, d]` features: a probe
    /// trained on N samples is standardised with those N samples' statistics.
    pub fn fit_rows(kind: NormKind, x: &[f32], d: usize, rows: &[usize]) -> Self {
        let mut norm = Self::identity(d);
        norm.kind = kind;
        if kind == NormKind::Standardize {
            let n = rows.len().max(1) as f64;
            let row = |r: usize| {
                let mut v = x[r * d..(r + 1) * d].to_vec();
                l2_rows_host(&mut v, d);
                v
            };
            let mut mean = vec![0f64; d];
            for &r in rows {
                row(r).iter().zip(&mut mean).for_each(|(v, m)| *m += f64::from(*v));
            }
            mean.iter_mut().for_each(|m| *m /= n);
            let mut var = vec![0f64; d];
            for &r in rows {
                row(r).iter().zip(&mean).zip(&mut var).for_each(|((v, m), s)| *s += (f64::from(*v) - m).powi(2));
            }
            norm.mean = mean.iter().map(|&m| m as f32).collect();
            // A constant dimension keeps scale 1 rather than dividing by zero.
            norm.std = var.iter().map(|&s| ((s / n).sqrt() as f32).max(1e-6)).collect();
        }
        norm
    }

    /// The per-row step shared by every fit of a kind: L2 for `l2` and
    /// `standardize` (whose per-dimension affine part is [`Self::mean`] and
    /// [`Self::std`]).
    pub fn row_step(kind: NormKind, x: &mut [f32], d: usize) {
        if kind != NormKind::None {
            l2_rows_host(x, d);
        }
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Applies in place to row-major `[n, d]` features.
    pub fn apply(&self, x: &mut [f32]) {
        let d = self.dim();
        match self.kind {
            NormKind::None => {}
            NormKind::L2 => l2_rows_host(x, d),
            NormKind::Standardize => {
                l2_rows_host(x, d);
                for row in x.chunks_mut(d) {
                    for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                        *v = (*v - m) / s;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardized_training_features_have_zero_mean_unit_std() {
        let x: Vec<f32> = (0..300).map(|i| ((i * 37 % 101) as f32) / 10.0 + (i % 3) as f32).collect();
        let norm = FeatureNorm::fit(NormKind::Standardize, &x, 3);
        let mut y = x.clone();
        norm.apply(&mut y);
        for j in 0..3 {
            let col: Vec<f32> = y.iter().skip(j).step_by(3).copied().collect();
            let mean = col.iter().sum::<f32>() / col.len() as f32;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / col.len() as f32;
            assert!(mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-3, "dim {j}: {mean} {var}");
        }
    }
}
