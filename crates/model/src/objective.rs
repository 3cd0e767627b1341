//! The full-batch objective of a bank of linear heads (logistic probes) and
//! its gradient, by hand on the host, in one pass over the features.
//!
//! Profiled on 10,000 x 512 features (bench_probe, 2-core Zen 4), burn's
//! autodiff spent 1.4 ms per evaluation of one head and 7.6 ms for a bank of
//! eight, in `[H, n, O]` element-wise graph nodes and skinny products, where
//! the arithmetic is a fraction of a millisecond; L-BFGS's own steps were
//! under 5% of a fit. The objective is the one `fit_bank` builds from burn
//! ops for every other head: class-balanced weighted BCE plus
//! `lambda_h / 2 * ||W_h - C_h||^2`, with each head's standardisation folded
//! into its weights.

use gemmkit::{MatMut, MatRef, Parallelism, gemm};
use rayon::prelude::*;

/// The objective of one linear probe on the host, in f64, for checking a
/// fit against another implementation's (scikit-learn's
/// `LogisticRegression` with `class_weight="balanced"` and
/// `C = 1 / (lambda n)` minimises the same): the class-balanced mean
/// log-loss of `x w + b` on rows `x` (`[n, d]`) with 0/1 targets `y`, plus
/// `lambda / 2 * ||w||^2`.
pub fn probe_objective(x: &[f32], y: &[f32], d: usize, w: &[f64], b: f64, lambda: f64) -> f64 {
    let n = y.len() as f64;
    let pos = y.iter().filter(|&&v| v > 0.5).count() as f64;
    let loss: f64 = x
        .chunks_exact(d)
        .zip(y)
        .map(|(row, &t)| {
            let z = row.iter().zip(w).map(|(a, b)| f64::from(*a) * b).sum::<f64>() + b;
            let cw = if t > 0.5 { n / (2.0 * pos) } else { n / (2.0 * (n - pos)) };
            cw * (z.max(0.0) - z * f64::from(t) + (-z.abs()).exp().ln_1p())
        })
        .sum();
    loss / n + lambda / 2.0 * w.iter().map(|v| v * v).sum::<f64>()
}

/// Rows per rayon task: 256 x 512 features are 512 KB, inside L2.
const ROWS: usize = 256;

/// The data of a bank's objective; see the module documentation.
#[derive(Debug)]
pub(crate) struct LinearObjective<'a> {
    /// Features `[n, d]` after the row step.
    pub x: &'a [f32],
    pub d: usize,
    /// Targets `[n, o]`.
    pub y: &'a [f32],
    pub o: usize,
    /// Loss weights `[heads, n, o]` (zero outside a head's rows).
    pub weights: &'a [f32],
    pub lambdas: &'a [f64],
    /// First layers the penalty pulls toward, `[heads, d, o]`.
    pub centre: Option<&'a [f32]>,
    /// Per-head standardisation: means and inverse deviations, `[heads, d]`.
    pub affine: Option<(&'a [f32], &'a [f32])>,
}

/// An evaluation: the loss and its gradient for `w1 [H, d, o]` and `b1 [H, 1, o]`.
#[derive(Debug)]
pub(crate) struct Evaluation {
    pub loss: f64,
    pub w1: Vec<f32>,
    pub b1: Vec<f32>,
}

impl LinearObjective<'_> {
    fn heads(&self) -> usize {
        self.lambdas.len()
    }

    pub fn evaluate(&self, w1: &[f32], b1: &[f32]) -> Evaluation {
        let (h, d, o) = (self.heads(), self.d, self.o);
        let n = self.x.len() / d;
        let c = h * o;
        let (mean, inv) = match self.affine {
            Some((m, i)) => (Some(m), Some(i)),
            None => (None, None),
        };
        // Folded first layers `[d, H o]`: standardising x is scaling the
        // weights and shifting the bias.
        let mut w = vec![0.0f32; d * c];
        for hi in 0..h {
            for k in 0..d {
                let s = inv.map_or(1.0, |i| i[hi * d + k]);
                for j in 0..o {
                    w[k * c + hi * o + j] = w1[(hi * d + k) * o + j] * s;
                }
            }
        }
        let mut bias: Vec<f32> = b1.to_vec();
        if let Some(m) = mean {
            for hi in 0..h {
                for j in 0..o {
                    bias[hi * o + j] -= (0..d).map(|k| m[hi * d + k] * w[k * c + hi * o + j]).sum::<f32>();
                }
            }
        }
        // One pass over the features, a block of rows per task: the block's
        // logits, their residuals `weight x (sigmoid(z) - y)`, and the block's
        // share of the gradient `x_blockᵀ residuals`, while the block is in
        // cache. Reading the features once per evaluation instead of twice
        // is what the time goes to at probe sizes. The blocks' shares are
        // summed afterwards in block order: rayon's own reduction groups them
        // as its work stealing splits, which moves the last bits from run to
        // run, and a seeded fit must give the same numbers every time.
        let blocks: Vec<(f64, Vec<f32>, Vec<f32>)> = self
            .x
            .par_chunks(ROWS * d)
            .enumerate()
            .map(|(t, x)| {
                let rows = x.len() / d;
                let mut z = vec![0.0f32; rows * c];
                gemm(
                    1.0,
                    MatRef::from_row_major(x, rows, d),
                    MatRef::from_row_major(&w, d, c),
                    0.0,
                    MatMut::from_row_major(&mut z, rows, c),
                    Parallelism::Serial,
                );
                let (mut loss, mut gb) = (0.0f64, vec![0.0f32; c]);
                for (r, row) in z.chunks_exact_mut(c).enumerate() {
                    let i = t * ROWS + r;
                    for (col, v) in row.iter_mut().enumerate() {
                        let (hi, j) = (col / o, col % o);
                        let wt = self.weights[(hi * n + i) * o + j];
                        let (zz, y) = (*v + bias[col], self.y[i * o + j]);
                        loss += f64::from(wt) * f64::from(zz.max(0.0) - zz * y + (-zz.abs()).exp().ln_1p());
                        *v = wt * (1.0 / (1.0 + (-zz).exp()) - y);
                        gb[col] += *v;
                    }
                }
                // The gradient transposed, `residualsᵀ x_block` `[c, d]`: twice
                // as fast as `x_blockᵀ residuals` for a handful of heads.
                let mut gw = vec![0.0f32; c * d];
                let rt = MatRef::new(&z, c, rows, 1, c as isize);
                gemm(1.0, rt, MatRef::from_row_major(x, rows, d), 0.0, MatMut::from_row_major(&mut gw, c, d), Parallelism::Serial);
                (loss, gw, gb)
            })
            .collect();
        let (mut data, mut gw, mut gb) = (0.0f64, vec![0.0f32; c * d], vec![0.0f32; c]);
        for (loss, block_gw, block_gb) in blocks {
            data += loss;
            gw.iter_mut().zip(&block_gw).for_each(|(a, b)| *a += b);
            gb.iter_mut().zip(&block_gb).for_each(|(a, b)| *a += b);
        }
        // Back through the fold, then the penalty.
        let mut penalty = 0.0f64;
        let mut g1 = vec![0.0f32; h * d * o];
        for hi in 0..h {
            let lambda = self.lambdas[hi] as f32;
            for k in 0..d {
                let (m, s) = (mean.map_or(0.0, |m| m[hi * d + k]), inv.map_or(1.0, |i| i[hi * d + k]));
                for j in 0..o {
                    let at = (hi * d + k) * o + j;
                    let col = hi * o + j;
                    let off = w1[at] - self.centre.map_or(0.0, |c| c[at]);
                    penalty += f64::from(lambda) * f64::from(off) * f64::from(off);
                    g1[at] = (gw[col * d + k] - m * gb[col]) * s + lambda * off;
                }
            }
        }
        Evaluation { loss: data + 0.5 * penalty, w1: g1, b1: gb }
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// The same features and weights give the same bits on every call: the
    /// blocks' sums may not depend on how rayon splits the work, or a seeded
    /// fit would not be reproducible on the CPU.
    #[test]
    fn evaluations_are_bit_for_bit_repeatable() {
        let (n, d, o, h) = (64 * ROWS + 17, 32, 1, 2);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let x: Vec<f32> = (0..n * d).map(|_| rng.random_range(-2.0..2.0)).collect();
        let y: Vec<f32> = (0..n * o).map(|_| f32::from(rng.random_bool(0.5))).collect();
        let weights: Vec<f32> = (0..h * n * o).map(|_| rng.random_range(0.0..1.0)).collect();
        let w1: Vec<f32> = (0..h * d * o).map(|_| rng.random_range(-0.5..0.5)).collect();
        let b1: Vec<f32> = (0..h * o).map(|_| rng.random_range(-0.5..0.5)).collect();
        let lambdas = [1e-3, 1e-1];
        let objective = LinearObjective { x: &x, d, y: &y, o, weights: &weights, lambdas: &lambdas, centre: None, affine: None };
        let first = objective.evaluate(&w1, &b1);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for call in 1..40 {
            let again = objective.evaluate(&w1, &b1);
            assert_eq!(again.loss.to_bits(), first.loss.to_bits(), "loss of call {call}");
            assert_eq!(bits(&again.w1), bits(&first.w1), "weight gradient of call {call}");
            assert_eq!(bits(&again.b1), bits(&first.b1), "bias gradient of call {call}");
        }
    }
}
