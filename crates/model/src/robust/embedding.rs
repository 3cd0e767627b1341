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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::{HeadKind, HeadWeights};
    use crate::normalize::{FeatureNorm, NormKind};
    use pairguard_data::EncoderId;

    fn encoder(dim: usize) -> EncoderId {
        EncoderId {
            model: "test".into(),
            revision: None,
            weights_sha256: "0".into(),
            architecture: "test".into(),
            preprocess: "test".into(),
            dim,
            normalized: true,
            precision: Default::default(),
        }
    }

    /// A standardised linear guard on 6-D embeddings and 200 rows around it.
    fn linear_case() -> (GuardModel, Vec<f32>, Vec<bool>) {
        let d = 6;
        let x: Vec<f32> = (0..200 * d).map(|i| (((i * 7919) % 1009) as f32 / 1009.0) - 0.5).collect();
        let norm = FeatureNorm::fit(NormKind::Standardize, &x, d);
        let head = HeadWeights {
            kind: HeadKind::Linear,
            input_dim: d,
            outputs: 1,
            w1: vec![0.8, -0.5, 0.3, 0.0, 0.2, -0.1],
            b1: vec![0.05],
            w2: None,
            b2: None,
            middle: Vec::new(),
        };
        let mut guard = GuardModel::fixed(head, norm, encoder(d), 0.4).unwrap();
        guard.card.temperature = 1.7;
        let labels = (0..200).map(|i| i % 3 != 0).collect();
        (guard, x, labels)
    }

    #[test]
    fn linear_margins_agree_with_pgd_and_shrink_with_eps() {
        let (guard, x, labels) = linear_case();
        let device = Device::flex();
        let head = HeadDecision::new(&guard, &device);
        let n = labels.len();
        let e = head.row_step(Tensor::<2>::from_data(TensorData::new(x.clone(), [n, 6]), &device));
        let g = head.linear_gradient_norm().unwrap();
        let z = host(head.after_row_step(e.clone()));
        let mut previous = usize::MAX;
        for eps in [0.0, 0.05, 0.2, 0.5] {
            let exact = robust_correct(&guard, &x, &labels, eps, &device).unwrap();
            let kept = exact.iter().filter(|&&k| k).count();
            assert!(kept <= previous, "robust accuracy never grows with eps");
            previous = kept;
            if eps == 0.0 {
                let correct = z.iter().zip(&labels).filter(|(z, l)| (**z >= 0.0) == **l).count();
                assert_eq!(kept, correct, "at eps 0 robust accuracy is accuracy");
                continue;
            }
            // PGD finds the linear head's worst case wherever the margin is not within 2% of eps.
            let attacked = host(head.after_row_step(pgd_l2(&head, e.clone(), &labels, eps)));
            for i in 0..n {
                let margin = f64::from(z[i].abs()) / g;
                if (margin - eps).abs() > 0.02 * eps {
                    let by_pgd = (z[i] >= 0.0) == labels[i] && (attacked[i] >= 0.0) == labels[i];
                    assert_eq!(exact[i], by_pgd, "row {i} at eps {eps}: margin {margin}");
                }
            }
        }
        assert!(previous < 200 && previous > 0, "eps 0.5 leaves some rows and flips others: {previous}");
    }

    #[test]
    fn an_mlp_is_attacked_by_pgd_and_bad_eps_is_refused() {
        let d = 4;
        let x: Vec<f32> = (0..100 * d).map(|i| (((i * 104_729) % 997) as f32 / 997.0) - 0.5).collect();
        let hidden = 8;
        let w1: Vec<f32> = (0..d * hidden).map(|i| ((i * 31 % 17) as f32 / 17.0) - 0.5).collect();
        let w2: Vec<f32> = (0..hidden).map(|i| if i % 2 == 0 { 1.0 } else { -0.7 }).collect();
        let head = HeadWeights {
            kind: HeadKind::Mlp { hidden, dropout: 0.0 },
            input_dim: d,
            outputs: 1,
            w1,
            b1: vec![0.0; hidden],
            w2: Some(w2),
            b2: Some(vec![0.02]),
            middle: Vec::new(),
        };
        let guard = GuardModel::fixed(head, FeatureNorm { kind: NormKind::L2, ..FeatureNorm::identity(d) }, encoder(d), 0.5).unwrap();
        let device = Device::flex();
        let labels: Vec<bool> = (0..100).map(|i| i % 2 == 0).collect();
        let at = |eps: f64| robust_correct(&guard, &x, &labels, eps, &device).unwrap().iter().filter(|&&k| k).count();
        let (clean, small, large) = (at(0.0), at(0.05), at(1.0));
        assert!(clean >= small && small >= large, "{clean} >= {small} >= {large}");
        assert!(large < clean, "a perturbation of size 1 on the unit sphere flips some verdicts");
        for bad in [-0.1, f64::NAN] {
            assert!(robust_correct(&guard, &x, &labels, bad, &device).unwrap_err().to_string().contains("embedding_eps"));
        }
    }
}
