//! Robustness in embedding space: does a guard's verdict on a sample
//! survive every perturbation of L2 size eps of its embedding?
//!
//! Perturbations are measured on the head's input after its row step (unit
//! length for `l2` and `standardize` guards), where eps has the same meaning
//! for every guard of one encoder. For a linear probe the answer is exact:
//! the distance to the boundary is `|z'| / |grad z'|`. For an MLP adapter it
//! is an upper bound found by L2 PGD on the cross-entropy.

use burn::tensor::activation::softplus;
use burn::tensor::{Device, Tensor, TensorData};

use super::decision::{HeadDecision, host};
use crate::error::{Error, Result};
use crate::guard::GuardModel;

/// PGD steps for heads without a closed form.
pub const PGD_STEPS: usize = 20;

/// For each row of `x` (`[n, dim]`, as the store holds them): the guard
/// classifies it as `labels` says and no L2 perturbation of size `eps`
/// changes that.
pub fn robust_correct(guard: &GuardModel, x: &[f32], labels: &[bool], eps: f64, device: &Device) -> Result<Vec<bool>> {
    let d = guard.card.input_dim;
    if x.len() != labels.len() * d {
        return Err(Error::Dimension { what: "embeddings".into(), found: x.len() / labels.len().max(1), expected: d });
    }
    if !(eps >= 0.0 && eps.is_finite()) {
        return Err(Error::AttackOption { option: "embedding_eps", message: format!("{eps} is not a finite number >= 0") });
    }
    if labels.is_empty() {
        return Ok(Vec::new());
    }
    let head = HeadDecision::new(guard, device);
    let n = labels.len();
    let e = head.row_step(Tensor::<2>::from_data(TensorData::new(x.to_vec(), [n, d]), device));
    let z = host(head.after_row_step(e.clone()));
    let correct = z.iter().zip(labels).map(|(&z, &l)| (z >= 0.0) == l);
    if let Some(g) = head.linear_gradient_norm() {
        return Ok(correct.zip(&z).map(|(c, &z)| c && f64::from(z.abs()) > eps * g).collect());
    }
    let attacked = host(head.after_row_step(pgd_l2(&head, e, labels, eps)));
    Ok(correct.zip(attacked).zip(labels).map(|((c, z), &l)| c && (z >= 0.0) == l).collect())
}

/// L2 PGD from the embedding itself, steps of 2.5 eps / steps (Madry et al.'s
/// rule), each projected back onto the ball.
fn pgd_l2(head: &HeadDecision, e0: Tensor<2>, labels: &[bool], eps: f64) -> Tensor<2> {
    let n = labels.len();
    let y = Tensor::<1>::from_data(TensorData::new(labels.iter().map(|&l| f32::from(u8::from(l))).collect::<Vec<_>>(), [n]), &e0.device());
    let step = 2.5 * eps / PGD_STEPS as f64;
    let unit = |t: Tensor<2>| {
        let norm = t.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
        (t / norm.clone(), norm)
    };
    let mut e = e0.clone();
    for _ in 0..PGD_STEPS {
        let eg = e.clone().autodiff().require_grad();
        let z = head.after_row_step(eg.clone());
        let loss = (softplus(z.clone(), 1.0) - z * y.clone().autodiff()).sum();
        let g = eg.grad(&loss.backward()).expect("the embeddings require a gradient");
        e = e + unit(g).0.mul_scalar(step);
        let (dir, norm) = unit(e.clone() - e0.clone());
        e = e0.clone() + dir * norm.clamp_max(eps);
    }
    e
}
