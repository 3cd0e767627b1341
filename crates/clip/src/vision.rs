//! The CLIP vision transformer in burn: patch embedding, the blocks of
//! [`crate::block`], and the projection. Module paths are the Hugging Face
//! checkpoint keys (`vision_model.embeddings.patch_embedding`,
//! `vision_model.encoder.layers.N...`).
//!
//! The forward pass is written once, against [`VisionOps`]: [`Compute`]
//! runs it on burn tensors, and the ONNX exporter runs the same code to
//! emit graph nodes, so the exported encoder cannot drift from this one.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, Linear};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Tensor, TensorData};

use crate::activation::quick_gelu;
use crate::block::{ClipLayers, INIT, layer_norm, linear};
use crate::config::{Activation, VisionConfig};

/// Patch embedding (a stride-`patch` convolution without bias), the class
/// token, and learned position embeddings.
#[derive(Module, Debug)]
pub struct ClipVisionEmbeddings {
    pub class_embedding: Param<Tensor<1>>,
    pub patch_embedding: Conv2d,
    pub position_embedding: Embedding,
}

impl ClipVisionEmbeddings {
    fn new(cfg: &VisionConfig, device: &Device) -> Self {
        let (h, p) = (cfg.hidden_size, cfg.patch_size);
        ClipVisionEmbeddings {
            class_embedding: INIT.init([h], device),
            patch_embedding: Conv2dConfig::new([3, h], [p, p]).with_stride([p, p]).with_bias(false).with_initializer(INIT).init(device),
            position_embedding: EmbeddingConfig::new(cfg.num_positions(), h).with_initializer(INIT).init(device),
        }
    }
}

#[derive(Module, Debug)]
pub struct ClipVisionTransformer {
    pub embeddings: ClipVisionEmbeddings,
    /// Spelled as in the Hugging Face checkpoints.
    pub pre_layrnorm: LayerNorm,
    pub encoder: ClipLayers,
    pub post_layernorm: LayerNorm,
}

/// The vision tower and its projection: pixels in, image embeddings out.
#[derive(Module, Debug)]
pub struct ClipVisionModelWithProjection {
    pub vision_model: ClipVisionTransformer,
    pub visual_projection: Linear,
}

impl ClipVisionModelWithProjection {
    pub(super) fn new(cfg: &VisionConfig, device: &Device) -> Self {
        let (h, eps) = (cfg.hidden_size, cfg.layer_norm_eps);
        ClipVisionModelWithProjection {
            vision_model: ClipVisionTransformer {
                embeddings: ClipVisionEmbeddings::new(cfg, device),
                pre_layrnorm: layer_norm(h, eps, device),
                encoder: ClipLayers::new(cfg.into(), cfg.num_hidden_layers, device),
                post_layernorm: layer_norm(h, eps, device),
            },
            visual_projection: linear(cfg.hidden_size, cfg.projection_dim, false, device),
        }
    }

    /// The forward pass on any [`VisionOps`]: CLIP-normalised pixels
    /// `[B, 3, image_size, image_size]` to image embeddings
    /// `[B, projection_dim]` (not normalised).
    pub fn run<O: VisionOps>(&self, o: &mut O, pixels: O::Pixels) -> O::Embeddings {
        let vm = &self.vision_model;
        let x = o.embed(pixels, &vm.embeddings);
        let mut x = o.layer_norm(x, &vm.pre_layrnorm);
        if let Some((last, rest)) = vm.encoder.layers.split_last() {
            for layer in rest {
                x = layer.run(o, x, None);
            }
            x = last.run(o, x, Some(1));
        }
        let x = o.first_tokens(x, Some(1));
        let x = o.layer_norm(x, &vm.post_layernorm);
        let x = o.projection(x, &self.visual_projection);
        o.class_token(x)
    }

    /// Image embeddings on burn tensors; see [`Self::run`].
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<2> {
        self.run(&mut Compute::default(), pixels)
    }
}

/// The operations the vision tower is made of, at the granularity of its
/// modules. `Tokens` is a `[B, T, width]` sequence.
pub trait VisionOps {
    type Pixels;
    type Tokens: Clone;
    type Embeddings;
    /// Patch embedding, class token and position embeddings.
    fn embed(&mut self, pixels: Self::Pixels, e: &ClipVisionEmbeddings) -> Self::Tokens;
    fn layer_norm(&mut self, x: Self::Tokens, n: &LayerNorm) -> Self::Tokens;
    fn linear(&mut self, x: Self::Tokens, l: &Linear) -> Self::Tokens;
    /// The last product, which writes the embedding: a [`Self::linear`]
    /// that a reduced-precision backend may keep in a finer precision than
    /// the transformer's products.
    fn projection(&mut self, x: Self::Tokens, l: &Linear) -> Self::Tokens {
        self.linear(x, l)
    }
    fn activation(&mut self, x: Self::Tokens, a: Activation) -> Self::Tokens;
    fn add(&mut self, a: Self::Tokens, b: Self::Tokens) -> Self::Tokens;
    /// Scaled dot-product attention of fused `[B, T, 3 * width]` q/k/v
    /// (rows q, k, v; `heads` heads), for the first `queries` tokens (None:
    /// all), with the heads merged back: `[B, queries, width]`.
    fn attention(&mut self, qkv: Self::Tokens, heads: usize, queries: Option<usize>) -> Self::Tokens;
    /// The first `n` tokens (None: all of them).
    fn first_tokens(&mut self, x: Self::Tokens, n: Option<usize>) -> Self::Tokens;
    /// `[B, 1, width]` to `[B, width]`.
    fn class_token(&mut self, x: Self::Tokens) -> Self::Embeddings;
}

/// [`VisionOps`] on burn tensors: the encoders' computation. `causal`
/// masks attention to earlier tokens, as the text tower's blocks need.
#[derive(Debug, Clone, Copy, Default)]
pub struct Compute {
    pub causal: bool,
}

impl VisionOps for Compute {
    type Pixels = Tensor<4>;
    type Tokens = Tensor<3>;
    type Embeddings = Tensor<2>;

    fn embed(&mut self, pixels: Tensor<4>, e: &ClipVisionEmbeddings) -> Tensor<3> {
        // The stride-P convolution as patchify + matmul with its kernel:
        // 54 ms against nn::Conv2d's 79 ms for ViT-B/32 at batch 32 on flex
        // (bench_encoder_ops); the result is the same.
        let [h, c, p, _] = e.patch_embedding.weight.dims();
        let [b, _, s, _] = pixels.dims();
        let n = s / p;
        let patches = pixels.reshape([b, c, n, p, n, p]).permute([0, 2, 4, 1, 3, 5]).reshape([b * n * n, c * p * p]);
        let kernel = e.patch_embedding.weight.val().reshape([h, c * p * p]).transpose();
        let x = patches.matmul(kernel).reshape([b, n * n, h]);
        let cls = e.class_embedding.val().reshape([1, 1, h]).expand([b, 1, h]);
        Tensor::cat(vec![cls, x], 1) + e.position_embedding.weight.val().unsqueeze::<3>()
    }

    fn layer_norm(&mut self, x: Tensor<3>, n: &LayerNorm) -> Tensor<3> {
        n.forward(x)
    }

    fn linear(&mut self, x: Tensor<3>, l: &Linear) -> Tensor<3> {
        // As one 2-D product over all tokens: the same as `Linear::forward`
        // (which broadcasts the weight over the batch) and as fast forward,
        // but its backward is one GEMM too: 41 against 46 ms for ViT-B/32's
        // q/k/v projection at batch 16 under autodiff (flex).
        let [b, t, c] = x.dims();
        let w = l.weight.val();
        let out = w.dims()[1];
        let y = x.reshape([b * t, c]).matmul(w);
        let y = match &l.bias {
            Some(bias) => y + bias.val().unsqueeze::<2>(),
            None => y,
        };
        y.reshape([b, t, out])
    }

    fn activation(&mut self, x: Tensor<3>, a: Activation) -> Tensor<3> {
        match a {
            Activation::QuickGelu => quick_gelu(x),
            Activation::Gelu => gelu(x),
        }
    }

    fn add(&mut self, a: Tensor<3>, b: Tensor<3>) -> Tensor<3> {
        a + b
    }

    fn attention(&mut self, qkv: Tensor<3>, heads: usize, queries: Option<usize>) -> Tensor<3> {
        let [b, t, h3] = qkv.dims();
        let (h, tq) = (h3 / 3, queries.unwrap_or(t).min(t));
        let hd = h / heads;
        let qkv = qkv.reshape([b, t, 3, heads, hd]).permute([2, 0, 3, 1, 4]);
        let q: Tensor<4> = qkv.clone().narrow(0, 0, 1).narrow(3, 0, tq).reshape([b, heads, tq, hd]);
        let k: Tensor<4> = qkv.clone().narrow(0, 1, 1).reshape([b, heads, t, hd]);
        let v: Tensor<4> = qkv.narrow(0, 2, 1).reshape([b, heads, t, hd]);
        let mut scores = q.mul_scalar((hd as f64).powf(-0.5)).matmul(k.swap_dims(2, 3));
        if self.causal {
            // -inf above the diagonal: token i attends to tokens 0..=i.
            let mask: Vec<f32> = (0..tq * t).map(|i| if i % t > i / t { f32::NEG_INFINITY } else { 0.0 }).collect();
            let mask = Tensor::<2>::from_data(TensorData::new(mask, [tq, t]), &scores.device());
            scores = scores + mask.unsqueeze::<4>();
        }
        softmax(scores, 3).matmul(v).swap_dims(1, 2).reshape([b, tq, h])
    }

    fn first_tokens(&mut self, x: Tensor<3>, n: Option<usize>) -> Tensor<3> {
        match n {
            Some(n) if n < x.dims()[1] => x.narrow(1, 0, n),
            _ => x,
        }
    }

    fn class_token(&mut self, x: Tensor<3>) -> Tensor<2> {
        let [b, _, w] = x.dims();
        x.narrow(1, 0, 1).reshape([b, w])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_token_shortcut_matches_the_full_layer() {
        let cfg = VisionConfig::new(64, 256, 1, 4, 32, 8, 16);
        let device = Device::flex();
        let model = cfg.init(&device);
        let layer = &model.vision_model.encoder.layers[0];
        let (b, t, h) = (3, cfg.num_positions(), cfg.hidden_size);
        let x: Vec<f32> = (0..b * t * h).map(|i| ((i * 7919 % 1013) as f32 / 1013.0) - 0.5).collect();
        let mut shifted = x.clone();
        // The last patch token of image 0, changed in a way LayerNorm does not remove.
        shifted[h * (t - 1)..h * t].iter_mut().enumerate().for_each(|(j, v)| *v += (j % 7) as f32 * 0.3);
        let run = |x: Vec<f32>| {
            let x: Tensor<3> = Tensor::from_data(TensorData::new(x, [b, t, h]), &device);
            let full = layer.run(&mut Compute::default(), x.clone(), None).narrow(1, 0, 1).into_data().try_to_vec::<f32>().expect("f32");
            let cls = layer.run(&mut Compute::default(), x, Some(1)).into_data().try_to_vec::<f32>().expect("f32");
            (full, cls)
        };
        let max_diff = |a: &[f32], c: &[f32]| a.iter().zip(c).map(|(a, c)| (a - c).abs()).fold(0.0f32, f32::max);
        let (full, cls) = run(x);
        assert_eq!(full.len(), b * h);
        assert_eq!(cls.len(), full.len());
        let diff = max_diff(&full, &cls);
        assert!(diff < 1e-5, "class-token output differs from the full layer by {diff}");
        // The class token still attends to the patch tokens: changing one
        // patch changes image 0's output, and only image 0's.
        let (_, cls_shifted) = run(shifted);
        assert!(max_diff(&cls[..h], &cls_shifted[..h]) > 1e-4);
        assert_eq!(max_diff(&cls[h..], &cls_shifted[h..]), 0.0);
    }
}
