//! Evasion attacks on a guard, as foolbox 3 defines them (the library
//! UnsafeBench used): L2 additive Gaussian noise, L-inf FGSM, L-inf PGD and
//! L-inf DeepFool. Gradients flow through the frozen encoder and the head
//! with burn's autodiff; the parameters are constants and never change.
//!
//! Every random draw (noise, PGD's random start) comes from a per-image
//! seed, and every step treats images independently, so an image's result
//! does not depend on the batch it was attacked in: a resumed or sharded run
//! gives the same numbers.

use burn::tensor::{Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};
use serde::{Deserialize, Serialize};

use super::decision::{GuardDecision, host};
use crate::error::{Error, Result};

/// An attack and its settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Attack {
    /// Gaussian noise scaled to L2 norm epsilon, then clipped to the bounds
    /// (foolbox `L2AdditiveGaussianNoiseAttack`).
    Gn,
    /// One signed-gradient step of size epsilon, no random start
    /// (foolbox `LinfFastGradientAttack`).
    Fgsm,
    /// Projected gradient descent on the cross-entropy (foolbox
    /// `LinfProjectedGradientDescentAttack`): steps of `rel_stepsize x eps`.
    Pgd { steps: usize, random_start: bool, rel_stepsize: f64 },
    /// DeepFool's linearised steps to the boundary (foolbox
    /// `LinfDeepFoolAttack`, loss "logits"); a minimisation attack, run once
    /// and then clipped to each epsilon.
    Deepfool { steps: usize, candidates: usize, overshoot: f64 },
}

/// The distance an attack is bounded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    L2,
    Linf,
}

impl Attack {
    /// The attacks a list names: attack names (see [`std::str::FromStr`]),
    /// `all` for every one, or `none`.
    pub fn list(items: &[String]) -> Result<Vec<Attack>> {
        match items {
            [none] if none == "none" => Ok(Vec::new()),
            [all] if all == "all" => ["gn", "fgsm", "pgd", "deepfool"].iter().map(|n| n.parse()).collect(),
            names => names.iter().map(|n| n.parse()).collect(),
        }
    }
}

impl std::str::FromStr for Attack {
    type Err = Error;

    /// The attack names of `--attacks`, with UnsafeBench's settings: PGD 100
    /// steps with a random start and step 0.01/0.3 x eps; DeepFool 100
    /// steps, 2 candidates, overshoot 0.02.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "gn" => Ok(Attack::Gn),
            "fgsm" => Ok(Attack::Fgsm),
            "pgd" => Ok(Attack::Pgd { steps: 100, random_start: true, rel_stepsize: 0.01 / 0.3 }),
            "deepfool" => Ok(Attack::Deepfool { steps: 100, candidates: 2, overshoot: 0.02 }),
            _ => Err(Error::UnknownName { kind: "attack", name: s.into(), known: "gn, fgsm, pgd, deepfool".into() }),
        }
    }
}

impl Attack {
    pub fn name(&self) -> &'static str {
        match self {
            Attack::Gn => "gn",
            Attack::Fgsm => "fgsm",
            Attack::Pgd { .. } => "pgd",
            Attack::Deepfool { .. } => "deepfool",
        }
    }

    pub fn norm(&self) -> Norm {
        match self {
            Attack::Gn => Norm::L2,
            _ => Norm::Linf,
        }
    }

    pub fn check(&self) -> Result<()> {
        let bad = |message: String| Err(Error::AttackOption { option: "attack", message });
        match *self {
            Attack::Pgd { steps: 0, .. } | Attack::Deepfool { steps: 0, .. } => bad(format!("{} needs at least one step", self.name())),
            Attack::Pgd { rel_stepsize, .. } if !(rel_stepsize > 0.0 && rel_stepsize.is_finite()) => {
                bad(format!("pgd step size {rel_stepsize} must be positive"))
            }
            // A binary guard has two classes: the second candidate is the other one.
            Attack::Deepfool { candidates, .. } if candidates != 2 => bad(format!("deepfool on a binary guard has 2 candidates, not {candidates}")),
            Attack::Deepfool { overshoot, .. } if !(overshoot >= 0.0 && overshoot.is_finite()) => {
                bad(format!("deepfool overshoot {overshoot} must be >= 0"))
            }
            _ => Ok(()),
        }
    }
}

/// What one attack at one epsilon did to a batch.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The adversarial images, within epsilon of the originals.
    pub images: Tensor<4>,
    /// Decision logits of the adversarial images.
    pub decision: Vec<f32>,
    /// The guard's verdict changed.
    pub success: Vec<bool>,
    /// Size of each perturbation, in the attacked space's units.
    pub linf: Vec<f32>,
    pub l2: Vec<f32>,
}

impl Outcome {
    /// The adversarial images on the host, row-major `[b, 3, s, s]`.
    pub fn host_images(&self) -> Vec<f32> {
        host(self.images.clone())
    }
}

/// Attacks images `x0` (`[b, 3, s, s]`, attack space, inside the bounds)
/// whose true verdicts are `labels` (true = unsafe), at each epsilon
/// (attack-space units; see [`super::EpsUnit::scale`]), one outcome per
/// epsilon in order. `seeds` gives each image its random stream.
pub fn run(attack: &Attack, target: &GuardDecision, x0: &Tensor<4>, labels: &[bool], eps: &[f64], seeds: &[u64]) -> Result<Vec<Outcome>> {
    attack.check()?;
    let b = x0.dims()[0];
    if labels.len() != b || seeds.len() != b {
        return Err(Error::AttackOption { option: "labels", message: format!("{b} images, {} labels and {} seeds", labels.len(), seeds.len()) });
    }
    if let Some(e) = eps.iter().find(|e| !(**e > 0.0 && e.is_finite())) {
        return Err(Error::AttackOption { option: "eps", message: format!("{e} is not a positive finite number") });
    }
    let x0 = x0.clone().without_autodiff();
    let finish = |x: Tensor<4>| outcome(target, &x0, x, labels);
    match *attack {
        Attack::Gn => eps.iter().map(|&e| finish(gaussian_noise(target, &x0, e, seeds))).collect(),
        Attack::Fgsm => eps.iter().map(|&e| finish(gradient_descent(target, &x0, labels, e, 1, 1.0, x0.clone()))).collect(),
        Attack::Pgd { steps, random_start, rel_stepsize } => eps
            .iter()
            .map(|&e| {
                let start = if random_start {
                    let u = Uniform::new(-e as f32, e as f32).expect("eps is positive");
                    clip(target, x0.clone() + per_image_random(&x0, seeds, |rng| u.sample(rng)))
                } else {
                    x0.clone()
                };
                finish(gradient_descent(target, &x0, labels, e, steps, rel_stepsize, start))
            })
            .collect(),
        Attack::Deepfool { steps, overshoot, .. } => {
            let raw = deepfool(target, &x0, labels, steps, overshoot);
            eps.iter().map(|&e| finish(project_linf(&x0, raw.clone(), e))).collect()
        }
    }
}

/// PGD (`steps` steps of `rel_stepsize * eps`) from given images instead of
/// a start drawn here: to continue an attack, or to start where another
/// implementation's random start did. `start` must lie within `eps` of `x0`
/// and inside the bounds.
pub fn pgd_from(
    target: &GuardDecision,
    x0: &Tensor<4>,
    start: &Tensor<4>,
    labels: &[bool],
    eps: f64,
    steps: usize,
    rel_stepsize: f64,
) -> Result<Outcome> {
    Attack::Pgd { steps, random_start: true, rel_stepsize }.check()?;
    if start.dims() != x0.dims() || labels.len() != x0.dims()[0] {
        return Err(Error::AttackOption {
            option: "start",
            message: format!("start {:?}, images {:?}, {} labels", start.dims(), x0.dims(), labels.len()),
        });
    }
    let x0 = x0.clone().without_autodiff();
    let start = start.clone().without_autodiff();
    let (lo, hi) = target.unit().bounds();
    let away = host(start.clone() - x0.clone()).into_iter().fold(0.0, |m: f32, d| m.max(d.abs()));
    let outside = host(start.clone()).into_iter().any(|v| !(lo..=hi).contains(&v));
    if !(eps > 0.0 && eps.is_finite()) || f64::from(away) > eps * (1.0 + 1e-6) || outside {
        return Err(Error::AttackOption {
            option: "start",
            message: format!("the start is {away} from the images and must be within eps {eps} and the bounds"),
        });
    }
    let x = gradient_descent(target, &x0, labels, eps, steps, rel_stepsize, start);
    outcome(target, &x0, x, labels)
}

/// foolbox's `restrict_to_epsilon` for L-inf: `x0 + clip(x - x0, -eps, eps)`.
fn project_linf(x0: &Tensor<4>, x: Tensor<4>, eps: f64) -> Tensor<4> {
    x0.clone() + (x - x0.clone()).clamp(-eps, eps)
}

fn clip(target: &GuardDecision, x: Tensor<4>) -> Tensor<4> {
    let (lo, hi) = target.unit().bounds();
    x.clamp(lo, hi)
}

/// One value per image as a `[b, 1, 1, 1]` tensor.
fn per_image(values: Vec<f32>, like: &Tensor<4>) -> Tensor<4> {
    let b = values.len();
    Tensor::from_data(TensorData::new(values, [b, 1, 1, 1]), &like.device())
}

/// Per-image random tensors with `x`'s shape, drawn from each image's seed.
fn per_image_random(x: &Tensor<4>, seeds: &[u64], draw: impl Fn(&mut ChaCha8Rng) -> f32) -> Tensor<4> {
    let dims = x.dims();
    let per = dims[1] * dims[2] * dims[3];
    let values: Vec<f32> = seeds
        .iter()
        .flat_map(|&s| {
            let mut rng = ChaCha8Rng::seed_from_u64(s);
            (0..per).map(|_| draw(&mut rng)).collect::<Vec<_>>()
        })
        .collect();
    Tensor::from_data(TensorData::new(values, dims), &x.device())
}

fn gaussian_noise(target: &GuardDecision, x0: &Tensor<4>, eps: f64, seeds: &[u64]) -> Tensor<4> {
    let noise = per_image_random(x0, seeds, |rng| StandardNormal.sample(rng));
    let b = x0.dims()[0];
    let norms = noise.clone().square().reshape([b as i32, -1]).sum_dim(1).sqrt().clamp_min(1e-12);
    let scale = norms.recip().mul_scalar(eps).reshape([b, 1, 1, 1]);
    clip(target, x0.clone() + noise * scale)
}

/// FGSM (one step of size eps from the images) and PGD (from `start`):
/// foolbox's `LinfBaseGradientDescent.run`.
fn gradient_descent(
    target: &GuardDecision,
    x0: &Tensor<4>,
    labels: &[bool],
    eps: f64,
    steps: usize,
    rel_stepsize: f64,
    start: Tensor<4>,
) -> Tensor<4> {
    let y: Vec<f32> = labels.iter().map(|&l| if l { 1.0 } else { 0.0 }).collect();
    let y = Tensor::<1>::from_data(TensorData::new(y, [labels.len()]), &x0.device());
    let stepsize = rel_stepsize * eps;
    let mut x = start;
    for _ in 0..steps {
        let g = cross_entropy_gradient(target, &x, &y);
        x = x + g.sign().mul_scalar(stepsize);
        x = clip(target, project_linf(x0, x, eps));
    }
    x
}

/// The direction of the cross-entropy's gradient for logits `[0, z']`.
///
/// L-inf steps use only the gradient's sign. The cross-entropy's derivative
/// with respect to `z'` is `sigmoid(z') - y`: `-sigmoid(-z')` for an unsafe
/// label and `sigmoid(z')` for a safe one, a positive factor times
/// `-(2y - 1)`. So the sign is that of `-(2y - 1) dz'/dx`, computed here
/// without the factor. Computed with it, as torch's cross-entropy does, the
/// factor rounds to zero in f32 once the guard is confident (|z'| > 17), the
/// gradient vanishes and FGSM and PGD leave such images untouched: gradient
/// masking by saturation, not robustness. Where the factor does not vanish
/// the steps are foolbox's exactly.
fn cross_entropy_gradient(target: &GuardDecision, x: &Tensor<4>, y: &Tensor<1>) -> Tensor<4> {
    let xg = x.clone().autodiff().require_grad();
    let z = target.decision(xg.clone());
    let ascent = y.clone().mul_scalar(-2.0).add_scalar(1.0).autodiff();
    let grads = (z * ascent).sum().backward();
    xg.grad(&grads).expect("the images require a gradient")
}

/// Decision logits and their gradient with respect to the images.
fn decision_gradient(target: &GuardDecision, x: &Tensor<4>) -> (Vec<f32>, Tensor<4>) {
    let xg = x.clone().autodiff().require_grad();
    let z = target.decision(xg.clone());
    let values = host(z.clone().without_autodiff());
    let grads = z.sum().backward();
    (values, xg.grad(&grads).expect("the images require a gradient"))
}

/// foolbox's `DeepFoolAttack.run` with the L-inf distance, for logits
/// `[0, z']`: the class ranked first on the clean images is `i0`, the other
/// is the only candidate, and the loss is `logit[other] - logit[i0]`.
fn deepfool(target: &GuardDecision, x0: &Tensor<4>, labels: &[bool], steps: usize, overshoot: f64) -> Tensor<4> {
    let b = x0.dims()[0];
    // torch's argsort is stable in practice for two values: ties rank class 0 first.
    let i0_unsafe: Vec<bool> = target.decisions(x0).iter().map(|&z| z > 0.0).collect();
    // d loss / d z' is -1 when i0 is "unsafe" and +1 otherwise.
    let sign: Vec<f32> = i0_unsafe.iter().map(|&u| if u { -1.0 } else { 1.0 }).collect();
    let sign_t = per_image(sign.clone(), x0);
    let mut x = x0.clone();
    let mut p_total = x0.zeros_like();
    for _ in 0..steps {
        let (z, dz) = decision_gradient(target, &x);
        // foolbox's Misclassification on argmax([0, z']): unsafe iff z' > 0.
        let is_adv: Vec<bool> = z.iter().zip(labels).map(|(&z, &l)| (z > 0.0) != l).collect();
        if is_adv.iter().all(|&a| a) {
            break;
        }
        let grad = dz * sign_t.clone();
        let losses: Vec<f32> = z.iter().zip(&sign).map(|(z, s)| z * s).collect();
        let l1 = host(grad.clone().abs().reshape([b as i32, -1]).sum_dim(1));
        let distances: Vec<f32> = losses.iter().zip(&l1).map(|(l, n)| l.abs() / (n + 1e-8) + 1e-4).collect();
        p_total = p_total + grad.sign() * per_image(distances, x0);
        let moved = x0.clone() + p_total.clone().mul_scalar(1.0 + overshoot);
        let keep = per_image(is_adv.iter().map(|&a| if a { 1.0 } else { 0.0 }).collect(), x0);
        x = clip(target, x.clone() * keep.clone() + moved * (keep.neg().add_scalar(1.0)));
    }
    x
}

fn outcome(target: &GuardDecision, x0: &Tensor<4>, x: Tensor<4>, labels: &[bool]) -> Result<Outcome> {
    let b = x0.dims()[0];
    let decision = target.decisions(&x);
    if let Some(i) = decision.iter().position(|z| !z.is_finite()) {
        return Err(Error::AttackOption { option: "images", message: format!("the guard's decision for attacked image {i} is {}", decision[i]) });
    }
    let delta = (x.clone() - x0.clone()).reshape([b as i32, -1]);
    let linf = host(delta.clone().abs().max_dim(1));
    let l2 = host(delta.square().sum_dim(1).sqrt());
    let success = decision.iter().zip(labels).map(|(&z, &l)| (z >= 0.0) != l).collect();
    Ok(Outcome { images: x, decision, success, linf, l2 })
}
