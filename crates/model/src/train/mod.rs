//! Fitting a bank of heads: with burn's autodiff, and for linear heads under
//! L-BFGS with the gradient written out (see `objective`), which is where
//! weight-decay grids and sweeps spend their time.
//!
//! The objective of head h is the class-balanced mean binary cross-entropy
//! over its training rows plus `lambda_h / 2 * ||W_h||^2`, the same
//! objective as scikit-learn's `LogisticRegression` with `C = 1 / (lambda N)`.
//! The penalty lives in the objective (AdamW's decoupled decay is set to 0)
//! because a bank gives every head its own lambda.
//!
//! Every head also has its own feature standardisation, fitted on its own
//! training rows: the bank evaluates `((x - mean_h) / std_h) W_h + b_h` as
//! `x (W_h / std_h) + (b_h - (mean_h / std_h) W_h)`, so heads of different
//! training sets still share one matrix product over the features.

use std::borrow::Cow;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, LBFGSConfig, LineSearchFn};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::head::{Affine, HeadBank, HeadKind, HeadWeights};
use crate::normalize::{FeatureNorm, NormKind};
use crate::objective::LinearObjective;

mod config;

pub use config::{EarlyStopping, Optimizer, TrainConfig};

/// A bank of heads to fit on (subsets of) one feature matrix.
#[derive(Debug, Clone)]
pub struct BankJob<'a> {
    /// Raw features, row-major `[n, dim]`.
    pub x: &'a [f32],
    pub dim: usize,
    /// Targets `[n, outputs]`.
    pub targets: &'a [f32],
    pub outputs: usize,
    /// The training rows of each head.
    pub members: Vec<Vec<usize>>,
    /// The penalty of each head.
    pub lambdas: Vec<f64>,
    /// The normalisation of each head (all of one kind).
    pub norms: Vec<FeatureNorm>,
    /// Raw validation features and targets for early stopping, shared by all heads.
    pub validation: Option<(&'a [f32], &'a [f32])>,
    /// Where each head starts (a zero-shot guard's weights); the L2 penalty
    /// then pulls toward the start instead of toward zero. Prompt heads
    /// need one.
    pub start: Option<Vec<HeadWeights>>,
}

impl BankJob<'_> {
    /// Head `h` alone.
    fn head(&self, h: usize) -> Self {
        BankJob {
            x: self.x,
            dim: self.dim,
            targets: self.targets,
            outputs: self.outputs,
            members: vec![self.members[h].clone()],
            lambdas: vec![self.lambdas[h]],
            norms: vec![self.norms[h].clone()],
            validation: self.validation,
            start: self.start.as_ref().map(|s| vec![s[h].clone()]),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BankResult {
    pub heads: Vec<HeadWeights>,
    /// Epoch (or iteration) whose weights were kept, per head.
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
fn loss_weights(targets: &[f32], members: &[Vec<usize>], outputs: usize, balance: bool, n: usize) -> Vec<f32> {
    let (h, o) = (members.len(), outputs);
    let mut w = vec![0f32; h * n * o];
    for (hi, rows) in members.iter().enumerate() {
        let m = rows.len().max(1) as f64;
        for k in 0..o {
            let pos = rows.iter().filter(|&&r| targets[r * o + k] > 0.5).count() as f64;
            let neg = rows.len() as f64 - pos;
            let (wp, wn) = if balance && pos > 0.0 && neg > 0.0 { (m / (2.0 * pos), m / (2.0 * neg)) } else { (1.0, 1.0) };
            for &r in rows {
                let cw = if targets[r * o + k] > 0.5 { wp } else { wn };
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

/// The per-head standardisation as bank tensors (None when no head standardises).
pub(crate) fn affine(norms: &[&FeatureNorm], device: &Device) -> Option<Affine> {
    let (h, d) = (norms.len(), norms[0].dim());
    let (mean, inv) = host_affine(norms)?;
    Some(Affine { mean: t3(mean, [h, 1, d], device), inv_std: t3(inv, [h, d, 1], device) })
}

/// The per-head standardisation on the host: means and inverse deviations,
/// `[heads, d]` each (None when no head standardises).
fn host_affine(norms: &[&FeatureNorm]) -> Option<(Vec<f32>, Vec<f32>)> {
    if norms.iter().all(|n| n.kind != NormKind::Standardize) {
        return None;
    }
    let mean = norms.iter().flat_map(|n| n.mean.iter().copied()).collect();
    let inv = norms.iter().flat_map(|n| n.std.iter().map(|s| 1.0 / s)).collect();
    Some((mean, inv))
}

/// Raw features after the row step shared by all heads of one kind.
fn row_stepped(kind: NormKind, x: Cow<[f32]>, d: usize) -> Cow<[f32]> {
    if kind == NormKind::None {
        return x;
    }
    let mut y = x.into_owned();
    FeatureNorm::row_step(kind, &mut y, d);
    Cow::Owned(y)
}

/// Fits every head of `job`.
pub fn fit_bank(job: &BankJob, cfg: &TrainConfig, device: &Device) -> Result<BankResult> {
    check_job(job, cfg)?;
    // Linear heads under L-BFGS evaluate the objective by hand (see
    // `objective`) and are fitted one at a time, each reading only its own
    // rows: independent problems converge in fewer evaluations apart than
    // together (a bank of 8 weight decays took 107 joint evaluations where
    // one head takes about 30). Every other head trains through autodiff,
    // all heads of a bank in one computation.
    let heads = job.members.len();
    if by_hand(cfg) && heads > 1 {
        let fits = (0..heads).map(|h| fit_checked(&job.head(h), cfg, device)).collect::<Result<Vec<_>>>()?;
        return Ok(BankResult {
            epochs_run: fits.iter().map(|f| f.epochs_run).max().unwrap_or(0),
            evaluations: fits.iter().map(|f| f.evaluations).sum(),
            heads: fits.iter().flat_map(|f| f.heads.iter().cloned()).collect(),
            best_epoch: fits.iter().flat_map(|f| f.best_epoch.iter().copied()).collect(),
            validation_loss: fits.iter().flat_map(|f| f.validation_loss.iter().copied()).collect(),
        });
    }
    fit_checked(job, cfg, device)
}

/// Whether the objective is evaluated by hand: linear heads under L-BFGS.
fn by_hand(cfg: &TrainConfig) -> bool {
    cfg.head == HeadKind::Linear && matches!(cfg.optimizer, Optimizer::Lbfgs { .. })
}

/// The job's shapes, rows, start heads and features, before any fitting.
fn check_job(job: &BankJob, cfg: &TrainConfig) -> Result<()> {
    cfg.check(job.validation.is_some())?;
    let heads = job.members.len();
    let (d, o) = (job.dim, job.outputs);
    if heads == 0 || job.lambdas.len() != heads || job.norms.len() != heads {
        return Err(Error::TrainingData(format!(
            "a bank needs one lambda and one normalisation per head ({heads} heads, {} lambdas, {} norms)",
            job.lambdas.len(),
            job.norms.len()
        )));
    }
    let n = job.x.len() / d.max(1);
    if d == 0 || job.x.len() != n * d || job.targets.len() != n * o {
        return Err(Error::TrainingData(format!(
            "{} feature values and {} targets do not form [n, {d}] and [n, {o}]",
            job.x.len(),
            job.targets.len()
        )));
    }
    for (i, rows) in job.members.iter().enumerate() {
        if rows.is_empty() {
            return Err(Error::TrainingData(format!("head {i} has no training rows")));
        }
    }
    match &job.start {
        Some(start) => {
            let width = cfg.head.width(o);
            if start.len() != heads || start.iter().any(|w| w.kind != cfg.head || w.input_dim != d || w.outputs != o || w.w1.len() != d * width) {
                return Err(Error::TrainingData(format!(
                    "{} start heads for {heads} heads of kind {}, input {d}, outputs {o}",
                    start.len(),
                    cfg.head.name()
                )));
            }
        }
        None if cfg.head.needs_policy() => {
            return Err(Error::TrainingData("a prompt head starts from the policy's text embeddings, and none were given".into()));
        }
        None => {}
    }
    if let Some(j) = job.x.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite { what: "training features", row: j / d, dim: j % d });
    }
    Ok(())
}

/// The rows some head of a job uses, with their targets and each head's
/// rows renumbered into them (a sweep's union of nested sets can be much
/// smaller than the pool). Borrowed when every row takes part: a copy of
/// 10,000 x 512 features costs more than a probe's fit (its pages fault in
/// afresh).
fn rows_taking_part<'a>(job: &BankJob<'a>) -> (Cow<'a, [f32]>, Vec<f32>, Vec<Vec<usize>>) {
    let (d, o) = (job.dim, job.outputs);
    let mut used: Vec<usize> = job.members.iter().flatten().copied().collect();
    used.sort_unstable();
    used.dedup();
    if used.len() == job.x.len() / d {
        return (Cow::Borrowed(job.x), job.targets.to_vec(), job.members.clone());
    }
    let remap: std::collections::HashMap<usize, usize> = used.iter().enumerate().map(|(j, &r)| (r, j)).collect();
    (
        Cow::Owned(used.iter().flat_map(|&r| job.x[r * d..(r + 1) * d].iter().copied()).collect()),
        used.iter().flat_map(|&r| job.targets[r * o..(r + 1) * o].iter().copied()).collect(),
        job.members.iter().map(|rows| rows.iter().map(|r| remap[r]).collect()).collect(),
    )
}

/// Each head's best weights on validation so far, and when to stop.
struct Selection<'a> {
    /// Validation features (row-stepped) and targets.
    validation: Option<(Tensor<2>, &'a [f32])>,
    affine: Option<Affine>,
    kind: HeadKind,
    outputs: usize,
    best: Vec<Option<HeadWeights>>,
    best_loss: Vec<f64>,
    best_epoch: Vec<usize>,
    since_improved: usize,
    patience: Option<usize>,
}

impl Selection<'_> {
    /// Scores `bank` on validation after `epoch`, keeping each head's best;
    /// true when patience has run out.
    fn observe(&mut self, bank: &HeadBank, epoch: usize) -> bool {
        let Some((vx, vy)) = &self.validation else { return false };
        let heads = self.best.len();
        let plain = bank.valid();
        let logits = plain.forward(vx.clone(), self.affine.as_ref(), None);
        let host = logits.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 after convert");
        let losses = validation_losses(&host, vy, heads, self.outputs);
        let mut improved = false;
        for (h, &loss) in losses.iter().enumerate() {
            if loss < self.best_loss[h] - 1e-6 {
                self.best_loss[h] = loss;
                self.best_epoch[h] = epoch;
                self.best[h] = Some(plain.head_weights(h, self.kind));
                improved = true;
            }
        }
        self.since_improved = if improved { 0 } else { self.since_improved + 1 };
        self.patience.is_some_and(|p| self.since_improved >= p)
    }
}

/// The data term and penalty of a bank on autodiff tensors: features
/// `[n, d]`, targets `[1, n, o]` and loss weights `[heads, n, o]`, the
/// standardisation, the per-head decays and the penalty centre.
struct AutodiffObjective {
    x: Tensor<2>,
    y: Tensor<3>,
    weights: Tensor<3>,
    affine: Option<Affine>,
    lambdas: Tensor<3>,
    centre: Option<Tensor<3>>,
}

/// Fits every head of a checked job in one computation.
fn fit_checked(job: &BankJob, cfg: &TrainConfig, device: &Device) -> Result<BankResult> {
    let heads = job.members.len();
    let (d, o) = (job.dim, job.outputs);
    let kind = job.norms[0].kind;
    let (xs, ys, members) = rows_taking_part(job);
    let n = xs.len() / d;
    let xs = row_stepped(kind, xs, d);
    let weights = loss_weights(&ys, &members, o, cfg.class_balance, n);

    let ad = device.clone().autodiff();
    device.seed(cfg.seed);
    ad.seed(cfg.seed);
    let norms: Vec<&FeatureNorm> = job.norms.iter().collect();
    // The first layers the penalty pulls toward, `[heads, d, width]`.
    let centre_values: Option<Vec<f32>> = job.start.as_ref().map(|s| s.iter().flat_map(|w| w.w1.iter().copied()).collect());
    let mut bank = match &job.start {
        Some(start) => HeadBank::from_weights(&start.iter().collect::<Vec<_>>(), &ad),
        None => HeadBank::init(cfg.head, heads, d, o, cfg.seed, &ad),
    };
    // The standardisation and the penalty centre in the one form the fit
    // reads: host slices for the written-out objective, tensors for autodiff.
    let hand = by_hand(cfg);
    let affine_host = hand.then(|| host_affine(&norms)).flatten();
    // The data go, without a copy, into the one form the fit reads.
    let (host, tensors) = if hand {
        (Some((xs, ys, weights)), None)
    } else {
        let tensors = AutodiffObjective {
            x: t2(xs.into_owned(), [n, d], &ad),
            y: t3(ys, [1, n, o], &ad),
            weights: t3(weights, [heads, n, o], &ad),
            affine: affine(&norms, &ad),
            lambdas: t3(job.lambdas.iter().map(|&l| l as f32).collect(), [heads, 1, 1], &ad),
            centre: centre_values.clone().map(|c| t3(c, [heads, d, cfg.head.width(o)], &ad)),
        };
        (None, Some(tensors))
    };
    let objective = host.as_ref().map(|(x, y, w)| LinearObjective {
        x,
        d,
        y,
        o,
        weights: w,
        lambdas: &job.lambdas,
        centre: centre_values.as_deref(),
        affine: affine_host.as_ref().map(|(m, i)| (m.as_slice(), i.as_slice())),
    });
    let mut selection = Selection {
        validation: job.validation.map(|(vx, vy)| (t2(row_stepped(kind, Cow::Borrowed(vx), d).into_owned(), [vx.len() / d, d], device), vy)),
        affine: affine(&norms, device),
        kind: cfg.head,
        outputs: o,
        best: vec![None; heads],
        best_loss: vec![f64::INFINITY; heads],
        best_epoch: vec![0usize; heads],
        since_improved: 0,
        patience: cfg.early_stopping.map(|e| e.patience),
    };

    let rounds = cfg.optimizer.rounds();
    let every = cfg.early_stopping.map_or(rounds, |e| e.every);
    let (epochs_run, evaluations) = match cfg.optimizer {
        Optimizer::Lbfgs { .. } => {
            // Without validation there is nothing to look at between rounds, so
            // one call runs all iterations (each call re-evaluates its start).
            let per_call = if selection.validation.is_some() { every.min(rounds) } else { rounds };
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
                if let Some(objective) = &objective {
                    let host = |t: Tensor<3>| t.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 after convert");
                    let e = objective.evaluate(&host(m.w1.val()), &host(m.b1.val()));
                    let mut grads = GradientsParams::new();
                    grads.register(m.w1.id, t3(e.w1, [heads, d, o], device));
                    grads.register(m.b1.id, t3(e.b1, [heads, 1, o], device));
                    return (e.loss, grads);
                }
                let t = tensors.as_ref().expect("autodiff tensors unless by hand");
                let logits = m.forward(t.x.clone(), t.affine.as_ref(), None);
                let data = (bce_with_logits(logits, t.y.clone().expand([heads, n, o])) * t.weights.clone()).sum();
                let loss = data + m.l2_penalty(t.lambdas.clone(), t.centre.as_ref());
                let value = loss.clone().into_scalar::<f64>();
                (value, GradientsParams::from_grads(loss.backward(), &m))
            };
            let mut previous = f64::INFINITY;
            let mut epochs_run = 0;
            while epochs_run < rounds {
                let (next, loss) = opt.step(1.0, bank, &mut closure);
                bank = next;
                epochs_run = (epochs_run + per_call).min(rounds);
                let converged = (previous - loss).abs() <= 1e-9 * loss.abs().max(1.0);
                previous = loss;
                if selection.observe(&bank, epochs_run) || converged {
                    break;
                }
            }
            (epochs_run, evals.get())
        }
        Optimizer::Adamw { learning_rate, batch_size, .. } => {
            let t = tensors.as_ref().expect("autodiff tensors for AdamW");
            let (trained, epochs_run, steps) = adamw_epochs(bank, t, cfg, learning_rate, batch_size, every, &mut selection, &ad);
            bank = trained;
            (epochs_run, steps)
        }
    };
    let plain = bank.valid();
    let Selection { mut best, mut best_loss, mut best_epoch, validation, .. } = selection;
    let heads_out = (0..heads).map(|h| best[h].take().unwrap_or_else(|| plain.head_weights(h, cfg.head))).collect();
    if validation.is_none() {
        best_epoch = vec![epochs_run; heads];
        best_loss = vec![f64::NAN; heads];
    }
    Ok(BankResult { heads: heads_out, best_epoch, validation_loss: best_loss, epochs_run, evaluations })
}

/// AdamW epochs over seeded minibatches (one full batch when the rows fit
/// in one), with validation every `every` epochs; returns the epochs run
/// and the bank with the epochs run and the steps taken.
#[allow(clippy::too_many_arguments)]
fn adamw_epochs(
    mut bank: HeadBank,
    t: &AutodiffObjective,
    cfg: &TrainConfig,
    learning_rate: f64,
    batch_size: usize,
    every: usize,
    selection: &mut Selection,
    ad: &Device,
) -> (HeadBank, usize, usize) {
    let [heads, n, o] = t.weights.dims();
    let rounds = cfg.optimizer.rounds();
    let full_batch = n <= batch_size;
    let mut opt = AdamWConfig::new().with_weight_decay(0.0).init();
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let (mut epochs_run, mut steps) = (0, 0);
    for epoch in 1..=rounds {
        let batches: Vec<Vec<usize>> = if full_batch {
            vec![Vec::new()]
        } else {
            order.shuffle(&mut rng);
            order.chunks(batch_size).map(<[usize]>::to_vec).collect()
        };
        for batch in batches {
            let (xb, yb, wb, frac) = if full_batch {
                (t.x.clone(), t.y.clone(), t.weights.clone(), 1.0)
            } else {
                let idx = Tensor::<1, Int>::from_data(TensorData::new(batch.iter().map(|&i| i as i64).collect::<Vec<_>>(), [batch.len()]), ad);
                let frac = batch.len() as f64 / n as f64;
                (t.x.clone().select(0, idx.clone()), t.y.clone().select(1, idx.clone()), t.weights.clone().select(1, idx).div_scalar(frac), frac)
            };
            let nb = xb.dims()[0];
            let dropout = cfg.head.dropout();
            let keep = (dropout > 0.0)
                .then(|| Tensor::<3>::random([heads, nb, cfg.head.width(o)], Distribution::Bernoulli(1.0 - dropout), ad).div_scalar(1.0 - dropout));
            let logits = bank.forward(xb, t.affine.as_ref(), keep);
            let data = (bce_with_logits(logits, yb.expand([heads, nb, o])) * wb).sum().mul_scalar(frac);
            let loss = data + bank.l2_penalty(t.lambdas.clone(), t.centre.as_ref()).mul_scalar(frac);
            let grads = GradientsParams::from_grads(loss.backward(), &bank);
            bank = opt.step(learning_rate, bank, grads);
            steps += 1;
        }
        epochs_run = epoch;
        if (epoch % every == 0 || epoch == rounds) && selection.observe(&bank, epoch) {
            break;
        }
    }
    (bank, epochs_run, steps)
}

/// A copy of `cfg` that runs exactly `rounds` iterations or epochs without
/// early stopping: refits reuse the count selected on validation.
pub fn refit_config(cfg: &TrainConfig, rounds: usize) -> TrainConfig {
    TrainConfig { optimizer: cfg.optimizer.with_rounds(rounds.max(1)), early_stopping: None, weight_decay_grid: Vec::new(), ..cfg.clone() }
}

/// Logits `[H, n, O]` of trained heads, each with its normalisation, for raw
/// features `x`, computed on `device` and returned to the host.
pub fn bank_logits(heads: &[&HeadWeights], norms: &[&FeatureNorm], x: &[f32], device: &Device) -> Vec<f32> {
    let d = heads[0].input_dim;
    let bank = HeadBank::from_weights(heads, device);
    let xs = row_stepped(norms[0].kind, Cow::Borrowed(x), d).into_owned();
    let out = bank.forward(t2(xs, [x.len() / d, d], device), affine(norms, device).as_ref(), None);
    out.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 after convert")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written objective of linear heads against the same
    /// objective through burn's autodiff: value and gradients, with
    /// standardisation, class balance, a penalty centre and two outputs.
    #[test]
    fn linear_objective_by_hand_equals_autodiff() {
        let (heads, n, d, o) = (3, 300, 7, 2);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut uniform = |lo: f32, hi: f32| lo + (hi - lo) * rand::Rng::random::<f32>(&mut rng);
        let x: Vec<f32> = (0..n * d).map(|_| uniform(-2.0, 3.0)).collect();
        let y: Vec<f32> = (0..n * o).map(|_| f32::from(uniform(0.0, 1.0) > 0.6)).collect();
        let members: Vec<Vec<usize>> = (0..heads).map(|h| (0..n).filter(|i| (i + h) % (h + 2) != 0).collect()).collect();
        let norms: Vec<FeatureNorm> = members.iter().map(|r| FeatureNorm::fit_rows(NormKind::Standardize, &x, d, r)).collect();
        let weights = loss_weights(&y, &members, o, true, n);
        let lambdas = vec![1e-3, 0.1, 2.0];
        let w1: Vec<f32> = (0..heads * d * o).map(|_| uniform(-0.5, 0.5)).collect();
        let b1: Vec<f32> = (0..heads * o).map(|_| uniform(-0.5, 0.5)).collect();
        let centre: Vec<f32> = (0..heads * d * o).map(|_| uniform(-0.2, 0.2)).collect();
        let norm_refs: Vec<&FeatureNorm> = norms.iter().collect();
        let (mean, inv) = host_affine(&norm_refs).expect("standardised");
        let objective =
            LinearObjective { x: &x, d, y: &y, o, weights: &weights, lambdas: &lambdas, centre: Some(&centre), affine: Some((&mean, &inv)) };
        let by_hand = objective.evaluate(&w1, &b1);

        let ad = Device::flex().autodiff();
        let start: Vec<HeadWeights> = (0..heads)
            .map(|h| HeadWeights {
                kind: HeadKind::Linear,
                input_dim: d,
                outputs: o,
                w1: w1[h * d * o..(h + 1) * d * o].to_vec(),
                b1: b1[h * o..(h + 1) * o].to_vec(),
                w2: None,
                b2: None,
                middle: Vec::new(),
            })
            .collect();
        let bank = HeadBank::from_weights(&start.iter().collect::<Vec<_>>(), &ad);
        let logits = bank.forward(t2(x.clone(), [n, d], &ad), affine(&norm_refs, &ad).as_ref(), None);
        let data = (bce_with_logits(logits, t3(y.clone(), [1, n, o], &ad).expand([heads, n, o])) * t3(weights.clone(), [heads, n, o], &ad)).sum();
        let lambda_t = t3(lambdas.iter().map(|&l| l as f32).collect(), [heads, 1, 1], &ad);
        let loss = data + bank.l2_penalty(lambda_t, Some(&t3(centre.clone(), [heads, d, o], &ad)));
        let value = loss.clone().into_scalar::<f64>();
        let grads = GradientsParams::from_grads(loss.backward(), &bank);
        let host = |id| grads.get::<3>(id).expect("a gradient").into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        let (gw, gb) = (host(bank.w1.id), host(bank.b1.id));

        assert!((by_hand.loss - value).abs() <= 1e-5 * value.abs(), "loss {} against autodiff's {value}", by_hand.loss);
        for (name, got, want) in [("w1", &by_hand.w1, &gw), ("b1", &by_hand.b1, &gb)] {
            assert_eq!(got.len(), want.len());
            let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let err = got.iter().zip(want).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(err <= 1e-4 * scale, "{name}: gradients differ by {err} (largest {scale})");
        }
    }

    /// A bank's start heads are checked before its heads are fitted one by one.
    #[test]
    fn start_heads_of_another_count_are_refused_not_indexed() {
        let (n, d) = (20, 3);
        let x: Vec<f32> = (0..n * d).map(|i| (i % 7) as f32).collect();
        let y: Vec<f32> = (0..n).map(|i| f32::from(i % 2 == 0)).collect();
        let start =
            HeadWeights { kind: HeadKind::Linear, input_dim: d, outputs: 1, w1: vec![0.0; d], b1: vec![0.0], w2: None, b2: None, middle: Vec::new() };
        let job = BankJob {
            x: &x,
            dim: d,
            targets: &y,
            outputs: 1,
            members: vec![(0..n).collect(); 2],
            lambdas: vec![1e-3; 2],
            norms: vec![FeatureNorm::identity(d); 2],
            validation: None,
            start: Some(vec![start]),
        };
        let e = fit_bank(&job, &TrainConfig::default(), &Device::flex()).unwrap_err().to_string();
        assert!(e.contains("1 start heads for 2 heads"), "{e}");
    }
}
