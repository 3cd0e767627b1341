//! QuickGELU, CLIP's MLP activation: `x * sigmoid(1.702 x)`.
//!
//! burn has no QuickGELU op, and composed from burn ops on the flex CPU
//! backend it costs 29 ms of a ViT-B/32 layer at batch 32 on a 2-core
//! machine (more than the attention block's output projection and core
//! together): flex evaluates `sigmoid` in a scalar loop on one thread, after
//! a separate pass for the scaling. Flex tensors already live in host memory,
//! and a uniquely owned one moves out of a tensor and back without a copy, so
//! on flex the activation is one pass here on every core (9 ms). Other
//! backends (wgpu), and autodiff tensors (the host pass records no graph),
//! compose it from burn ops as `x / (1 + exp(-1.702 x))`: on flex, at
//! ViT-B/32's `[8, 50, 3072]`, 5.0 ms forward and 14 ms forward + backward,
//! against 9.4 and 21 ms for `x * sigmoid(1.702 x)` (per layer, mean of 12).
//!
//! The loop calls libm's scalar `expf`. A SIMD `exp` on the baseline x86-64
//! build was measured and left out: the `wide` crate's took 8.6 ms against
//! 9.7 (two threads, 4.9 M values), and only with debug assertions off for
//! the calling crate (32 ms per thread with them on); a polynomial left to
//! the autovectoriser was slower than libm.

use burn::tensor::{DType, Device, Tensor};
use rayon::prelude::*;

/// The constant of CLIP's sigmoid approximation of GELU.
const ALPHA: f32 = 1.702;

/// Elements per rayon task: large enough to amortise scheduling, small
/// enough to balance the last tasks across cores.
const TASK: usize = 1 << 15;

/// QuickGELU on any backend; see the module documentation.
pub fn quick_gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !on_host(&x) {
        return x.clone() / x.mul_scalar(-ALPHA).exp().add_scalar(1.0);
    }
    let device = x.device();
    let mut data = x.into_data();
    let values = data.as_mut_slice::<f32>().expect("an f32 tensor's data is an f32 slice");
    quick_gelu_in_place(values);
    Tensor::from_data(data, &device)
}

/// Whether `quick_gelu` computes `x` on host memory: an f32 flex tensor
/// outside autodiff (the host pass records no graph).
fn on_host<const D: usize>(x: &Tensor<D>) -> bool {
    !x.is_autodiff() && x.device() == Device::flex() && x.dtype() == DType::F32
}

/// QuickGELU over a host slice, in place, as `x / (1 + exp(-1.702 x))`:
/// exact at both tails (`-0` far below zero, `x` far above) and NaN in, NaN out.
pub fn quick_gelu_in_place(values: &mut [f32]) {
    values.par_chunks_mut(TASK).for_each(|task| {
        for v in task {
            *v /= 1.0 + (-ALPHA * *v).exp();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    use burn::tensor::activation::sigmoid;

    /// The reference definition, in f64.
    fn reference(x: f32) -> f64 {
        let x = f64::from(x);
        x / (1.0 + (-f64::from(ALPHA) * x).exp())
    }

    #[test]
    fn matches_the_definition_across_the_range_and_at_the_edges() {
        // A dense sweep over [-60, 60] (longer than one rayon task, so the
        // slice is split) plus the tails.
        let mut xs: Vec<f32> = (0..100_003).map(|i| -60.0 + i as f32 * 1.2e-3).collect();
        xs.extend([0.0, -0.0, 1e-30, -1e-30, 88.0, -88.0, 1e4, -1e4, f32::MAX, f32::MIN]);
        let mut ys = xs.clone();
        quick_gelu_in_place(&mut ys);
        for (&x, &y) in xs.iter().zip(&ys) {
            let r = reference(x);
            let err = (f64::from(y) - r).abs();
            assert!(err <= 1e-6 * r.abs().max(1e-3), "quick_gelu({x}) = {y}, expected {r} (error {err:e})");
        }
        let mut special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
        quick_gelu_in_place(&mut special);
        assert!(special[0].is_nan());
        assert_eq!(special[1], f32::INFINITY);
        // -inf * sigmoid(-inf) is -inf * 0: NaN, as in torch.
        assert!(special[2].is_nan(), "-inf gives {}", special[2]);
    }

    #[test]
    fn host_path_equals_the_composed_burn_ops() {
        let device = Device::flex();
        let values: Vec<f32> = (0..3 * 5 * 37).map(|i| ((i * 7919 % 1013) as f32 / 101.3) - 5.0).collect();
        let x: Tensor<3> = Tensor::from_data(TensorData::new(values, [3, 5, 37]), &device);
        assert!(on_host(&x), "an f32 flex tensor takes the host path");
        let tracked = x.clone().autodiff().require_grad();
        assert!(!on_host(&tracked), "a tensor that tracks gradients keeps burn's ops");
        assert!(!on_host(&tracked.mul_scalar(2.0)), "so does one computed from it");
        assert!(!on_host(&x.clone().autodiff()), "and any autodiff tensor");
        let composed = x.clone() * sigmoid(x.clone().mul_scalar(ALPHA));
        // A permuted view takes the copying path out of the tensor.
        let permuted = quick_gelu(x.clone().swap_dims(0, 2)).swap_dims(0, 2);
        let direct = quick_gelu(x);
        for got in [direct, permuted] {
            assert_eq!(got.dims(), [3, 5, 37]);
            let diff = (got - composed.clone()).abs().max().into_scalar::<f32>();
            assert!(diff <= 1e-5, "host QuickGELU differs from burn's by {diff}");
        }
    }
}
