//! Fitting heads with burn's autodiff and AdamW.
//!
//! The objective of head h is the class-balanced mean binary cross-entropy
//! over its training rows plus `lambda_h / 2 * ||W_h||^2`, the same
//! objective as scikit-learn's `LogisticRegression` with `C = 1 / (lambda N)`.
//! The penalty lives in the objective (AdamW's decoupled decay is set to 0)
//! because a bank gives every head its own lambda, and one optimizer decay
//! value would apply to all of them.

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, LBFGSConfig, LineSearchFn};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::head::{HeadBank, HeadKind, HeadWeights};
use crate::normalize::NormKind;

/// The optimiser. L-BFGS (with a strong-Wolfe line search, as scikit-learn
/// uses for logistic regression) needs a deterministic full-batch objective:
/// full batches and no dropout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    AdamW,
    Lbfgs,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub head: HeadKind,
    pub optimizer: Optimizer,
    pub normalization: NormKind,
    /// Also train one sigmoid output per category ("unsafe in category k").
    pub multilabel: bool,
    pub learning_rate: f64,
    /// Maximum passes over the training data (AdamW) or iterations (L-BFGS).
    pub epochs: usize,
    /// Rows per optimiser step; at or above the training size, full batch.
    pub batch_size: usize,
    /// L2 penalty lambda (see the module docs).
    pub weight_decay: f64,
    /// When not empty, lambdas to sweep, selected on validation loss (the
    /// CLIP linear-probe protocol), then refit on train + validation.
    pub weight_decay_grid: Vec<f64>,
    /// Weight classes inversely to their frequency (scikit-learn "balanced").
    pub class_balance: bool,
    /// Evaluations without validation improvement before stopping (0: off).
    pub patience: usize,
    /// Epochs (or L-BFGS iterations) between validation evaluations.
    pub eval_every: usize,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            head: HeadKind::Linear,
            optimizer: Optimizer::Lbfgs,
            normalization: NormKind::Standardize,
            multilabel: false,
            learning_rate: 0.05,
            epochs: 100,
            batch_size: 16384,
            weight_decay: 1e-3,
            weight_decay_grid: Vec::new(),
            class_balance: true,
            patience: 5,
            eval_every: 10,
            seed: 0,
        }
    }
}

impl TrainConfig {
    /// The MLP adapter preset.
    pub fn mlp() -> Self {
        TrainConfig {
            head: HeadKind::Mlp {
                hidden: 256,
                dropout: 0.2,
            },
            optimizer: Optimizer::AdamW,
            learning_rate: 0.005,
            epochs: 300,
            ..Self::default()
        }
    }

    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.learning_rate > 0.0 && self.learning_rate.is_finite(), "learning_rate must be positive");
        anyhow::ensure!(self.epochs > 0 && self.batch_size > 0 && self.eval_every > 0, "epochs, batch_size and eval_every must be positive");
        anyhow::ensure!(
            self.weight_decay >= 0.0 && self.weight_decay_grid.iter().all(|&w| w >= 0.0 && w.is_finite()),
            "weight decay values must be non-negative"
        );
        if let HeadKind::Mlp { hidden, dropout } = self.head {
            anyhow::ensure!(hidden > 0 && (0.0..1.0).contains(&dropout), "MLP needs hidden > 0 and dropout in [0, 1)");
            anyhow::ensure!(
                self.optimizer != Optimizer::Lbfgs || dropout == 0.0,
                "L-BFGS needs a deterministic objective: use dropout = 0 or optimizer = \"adamw\""
            );
        }
        Ok(())
    }
}

/// A batch of heads to fit on (subsets of) one feature matrix.
#[derive(Debug, Clone)]
pub struct BankJob<'a> {
    /// Normalised features, row-major `[n, dim]`.
    pub x: &'a [f32],
    pub dim: usize,
    /// Targets `[n, outputs]`.
    pub targets: &'a [f32],
    pub outputs: usize,
    /// The training rows of each head.
    pub members: Vec<Vec<usize>>,
    /// The penalty of each head.
    pub lambdas: Vec<f64>,
    /// Validation features and targets for early stopping, shared by all heads.
    pub validation: Option<(&'a [f32], &'a [f32])>,
    /// Overrides `epochs` (used by refits that reuse a selected epoch count).
    pub epochs: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct BankResult {
    pub heads: Vec<HeadWeights>,
    /// Epoch whose weights were kept, per head.
    pub best_epoch: Vec<usize>,
    /// Validation loss of the kept weights, per head (NaN without validation).
    pub validation_loss: Vec<f64>,
    pub epochs_run: usize,
    /// Objective and gradient evaluations (optimiser steps for AdamW).
    pub evaluations: usize,
}

fn t2(values: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn t3(values: Vec<f32>, shape: [usize; 3], device: &Device) -> Tensor<3> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Numerically stable BCE with logits, element-wise.
fn bce_with_logits(z: Tensor<3>, y: Tensor<3>) -> Tensor<3> {
    z.clone().clamp_min(0.0) - z.clone() * y + z.abs().neg().exp().log1p()
}

/// Per-row loss weights `[H, n, O]`: membership x class balance, divided by
/// the head's row count and the number of outputs so every head's data term
/// is a mean.
fn loss_weights(job: &BankJob, balance: bool, n: usize) -> Vec<f32> {
    let (h, o) = (job.members.len(), job.outputs);
    let mut w = vec![0f32; h * n * o];
    for (hi, rows) in job.members.iter().enumerate() {
        let m = rows.len().max(1) as f64;
        for k in 0..o {
            let pos = rows.iter().filter(|&&r| job.targets[r * o + k] > 0.5).count() as f64;
            let neg = rows.len() as f64 - pos;
            let (wp, wn) = if balance && pos > 0.0 && neg > 0.0 { (m / (2.0 * pos), m / (2.0 * neg)) } else { (1.0, 1.0) };
            for &r in rows {
                let cw = if job.targets[r * o + k] > 0.5 { wp } else { wn };
                w[(hi * n + r) * o + k] = (cw / (m * o as f64)) as f32;
            }
        }
    }
    w
}

/// Mean BCE of output 0 per head on host logits `[H, nv, O]`.
fn validation_losses(logits: &[f32], targets: &[f32], heads: usize, o: usize) -> Vec<f64> {
    let nv = targets.len() / o;
    (0..heads)
        .map(|h| {
            (0..nv)
                .map(|i| {
                    let z = f64::from(logits[(h * nv + i) * o]);
                    let y = f64::from(targets[i * o]);
                    z.max(0.0) - z * y + (-z.abs()).exp().ln_1p()
                })
                .sum::<f64>()
                / nv.max(1) as f64
        })
        .collect()
}

/// Fits every head of `job` at once.
pub fn fit_bank(job: &BankJob, cfg: &TrainConfig, device: &Device) -> anyhow::Result<BankResult> {
    cfg.check()?;
    let heads = job.members.len();
    anyhow::ensure!(heads > 0 && job.lambdas.len() == heads, "a bank needs one lambda per head");
    let (d, o) = (job.dim, job.outputs);
    let n = job.x.len() / d;
    anyhow::ensure!(job.targets.len() == n * o, "targets do not match features");
    for (i, rows) in job.members.iter().enumerate() {
        anyhow::ensure!(!rows.is_empty(), "head {i} has no training rows");
    }
    if let Some(j) = job.x.iter().position(|v| !v.is_finite()) {
        anyhow::bail!("training features contain a non-finite value at row {}, dimension {}", j / d, j % d);
    }

    // Only rows some head uses take part in the computation (a sweep's
    // union of nested sets can be much smaller than the pool).
    let mut used: Vec<usize> = job.members.iter().flatten().copied().collect();
    used.sort_unstable();
    used.dedup();
    let all_rows = used.len() == n;
    let (xs, ys, members): (Vec<f32>, Vec<f32>, Vec<Vec<usize>>) = if all_rows {
        (job.x.to_vec(), job.targets.to_vec(), job.members.clone())
    } else {
        let remap: std::collections::HashMap<usize, usize> = used.iter().enumerate().map(|(j, &r)| (r, j)).collect();
        (
            used.iter().flat_map(|&r| job.x[r * d..(r + 1) * d].iter().copied()).collect(),
            used.iter().flat_map(|&r| job.targets[r * o..(r + 1) * o].iter().copied()).collect(),
            job.members.iter().map(|rows| rows.iter().map(|r| remap[r]).collect()).collect(),
        )
    };
    let n = used.len();
    let weights = loss_weights(&BankJob { x: &[], targets: &ys, members, ..job.clone() }, cfg.class_balance, n);

    let ad = device.clone().autodiff();
    device.seed(cfg.seed);
    ad.seed(cfg.seed);
    let lambdas = t3(job.lambdas.iter().map(|&l| l as f32).collect(), [heads, 1, 1], &ad);
    let mut bank = HeadBank::init(cfg.head, heads, d, o, cfg.seed, &ad);
    let full_batch = n <= cfg.batch_size;
    let (x_all, y_all, w_all) = (t2(xs, [n, d], &ad), t3(ys, [1, n, o], &ad), t3(weights, [heads, n, o], &ad));
    let val = job.validation.map(|(vx, vy)| (t2(vx.to_vec(), [vx.len() / d, d], device), vy));

    let epochs = job.epochs.unwrap_or(cfg.epochs);
    let mut best: Vec<Option<HeadWeights>> = vec![None; heads];
    let mut best_loss = vec![f64::INFINITY; heads];
    let mut best_epoch = vec![0usize; heads];
    let mut since_improved = 0usize;
    let mut epochs_run = 0;
    let mut evaluations = 0;
    // Validation bookkeeping shared by both optimisers; true means stop.
    let mut evaluate = |bank: &HeadBank, epoch: usize| -> bool {
        let Some((vx, vy)) = &val else { return false };
        let plain = bank.valid();
        let logits = plain.forward(vx.clone(), None);
        let host = logits.into_data().convert::<f32>();
        let losses = validation_losses(host.as_slice::<f32>().expect("f32"), vy, heads, o);
        let mut improved = false;
        for h in 0..heads {
            if losses[h] < best_loss[h] - 1e-6 {
                best_loss[h] = losses[h];
                best_epoch[h] = epoch;
                best[h] = Some(plain.head_weights(h, cfg.head));
                improved = true;
            }
        }
        since_improved = if improved { 0 } else { since_improved + 1 };
        cfg.patience > 0 && since_improved >= cfg.patience
    };

    if cfg.optimizer == Optimizer::Lbfgs {
        anyhow::ensure!(full_batch, "L-BFGS needs full batches: raise batch_size above {n} or use optimizer = \"adamw\"");
        // Without validation there is nothing to look at between rounds, so
        // one call runs all iterations (each call re-evaluates its start).
        let per_call = if val.is_some() { cfg.eval_every.min(epochs) } else { epochs };
        let mut opt = LBFGSConfig::new()
            .with_line_search_fn(LineSearchFn::StrongWolfe)
            .with_history_size(20)
            .with_max_iter(per_call)
            .with_tolerance_grad(1e-7)
            .with_tolerance_change(1e-9)
            .init();
        let evals = std::cell::Cell::new(0usize);
        let mut closure = |m: HeadBank| {
            evals.set(evals.get() + 1);
            let logits = m.forward(x_all.clone(), None);
            let data = (bce_with_logits(logits, y_all.clone().expand([heads, n, o])) * w_all.clone()).sum();
            let loss = data + m.l2_penalty(lambdas.clone());
            let value = loss.clone().into_scalar::<f64>();
            (value, GradientsParams::from_grads(loss.backward(), &m))
        };
        let mut previous = f64::INFINITY;
        while epochs_run < epochs {
            let (next, loss) = opt.step(1.0, bank, &mut closure);
            bank = next;
            epochs_run = (epochs_run + per_call).min(epochs);
            let converged = (previous - loss).abs() <= 1e-9 * loss.abs().max(1.0);
            previous = loss;
            if evaluate(&bank, epochs_run) || converged {
                break;
            }
        }
        evaluations = evals.get();
    } else {
        let mut opt = AdamWConfig::new().with_weight_decay(0.0).init();
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        for epoch in 1..=epochs {
            let batches: Vec<Vec<usize>> = if full_batch {
                vec![Vec::new()]
            } else {
                order.shuffle(&mut rng);
                order.chunks(cfg.batch_size).map(<[usize]>::to_vec).collect()
            };
            for batch in batches {
                let (xb, yb, wb, frac) = if full_batch {
                    (x_all.clone(), y_all.clone(), w_all.clone(), 1.0)
                } else {
                    let idx = Tensor::<1, burn::tensor::Int>::from_data(
                        TensorData::new(batch.iter().map(|&i| i as i64).collect::<Vec<_>>(), [batch.len()]),
                        &ad,
                    );
                    let frac = batch.len() as f64 / n as f64;
                    (
                        x_all.clone().select(0, idx.clone()),
                        y_all.clone().select(1, idx.clone()),
                        w_all.clone().select(1, idx).div_scalar(frac),
                        frac,
                    )
                };
                let nb = xb.dims()[0];
                let keep = match cfg.head {
                    HeadKind::Mlp { hidden, dropout } if dropout > 0.0 => Some(
                        Tensor::<3>::random([heads, nb, hidden], Distribution::Bernoulli(1.0 - dropout), &ad)
                            .div_scalar(1.0 - dropout),
                    ),
                    _ => None,
                };
                let logits = bank.forward(xb, keep);
                let data = (bce_with_logits(logits, yb.expand([heads, nb, o])) * wb).sum().mul_scalar(frac);
                let loss = data + bank.l2_penalty(lambdas.clone()).mul_scalar(frac);
                let grads = GradientsParams::from_grads(loss.backward(), &bank);
                bank = opt.step(cfg.learning_rate, bank, grads);
                evaluations += 1;
            }
            epochs_run = epoch;
            if (epoch % cfg.eval_every == 0 || epoch == epochs) && evaluate(&bank, epoch) {
                break;
            }
        }
    }
    let plain = bank.valid();
    let heads_out = (0..heads)
        .map(|h| best[h].take().unwrap_or_else(|| plain.head_weights(h, cfg.head)))
        .collect();
    if val.is_none() {
        best_epoch = vec![epochs_run; heads];
        best_loss = vec![f64::NAN; heads];
    }
    Ok(BankResult {
        heads: heads_out,
        best_epoch,
        validation_loss: best_loss,
        epochs_run,
        evaluations,
    })
}

/// Logits `[H, n, O]` of trained heads on a device, back on the host.
pub fn bank_logits(heads: &[&HeadWeights], x: &[f32], device: &Device) -> Vec<f32> {
    let d = heads[0].input_dim;
    let bank = HeadBank::from_weights(heads, device);
    let out = bank.forward(t2(x.to_vec(), [x.len() / d, d], device), None);
    out.into_data().convert::<f32>().as_slice::<f32>().expect("f32").to_vec()
}
