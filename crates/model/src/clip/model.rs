//! The CLIP vision transformer in burn. Module paths are the Hugging Face
//! checkpoint keys (`vision_model.embeddings.patch_embedding`,
//! `vision_model.encoder.layers.N.self_attn.out_proj`, ...) with one
//! exception: each layer's query, key and value projections are one fused
//! `self_attn.qkv_proj` (see [`ClipAttention`]).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Tensor};

use super::activation::quick_gelu;
use super::config::{Activation, VisionConfig};

/// CLIP's initialisation scale; weights are replaced when a checkpoint loads,
/// so it matters only for benchmarks on random weights.
const INIT: Initializer = Initializer::Normal { mean: 0.0, std: 0.02 };

fn linear(d_input: usize, d_output: usize, bias: bool, device: &Device) -> Linear {
    LinearConfig::new(d_input, d_output).with_bias(bias).with_initializer(INIT).init(device)
}

fn layer_norm(cfg: &VisionConfig, device: &Device) -> LayerNorm {
    LayerNormConfig::new(cfg.hidden_size).with_epsilon(cfg.layer_norm_eps).init(device)
}

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

    /// Token embeddings `[B, 1 + patches, hidden]` for pixels `[B, 3, S, S]`.
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<3> {
        let patches = self.patch_embedding.forward(pixels);
        let [b, h, gh, gw] = patches.dims();
        let x = patches.reshape([b, h, gh * gw]).swap_dims(1, 2);
        let cls = self.class_embedding.val().reshape([1, 1, h]).expand([b, 1, h]);
        Tensor::cat(vec![cls, x], 1) + self.position_embedding.weight.val().unsqueeze::<3>()
    }
}

/// Multi-head self-attention. The query, key and value projections are one
/// `[hidden, 3 * hidden]` linear (rows q, k, v, as OpenAI's `in_proj`): one
/// GEMM reads the tokens once instead of three times.
#[derive(Module, Debug)]
pub struct ClipAttention {
    pub qkv_proj: Linear,
    pub out_proj: Linear,
    pub num_heads: usize,
}

impl ClipAttention {
    fn new(cfg: &VisionConfig, device: &Device) -> Self {
        let h = cfg.hidden_size;
        ClipAttention { qkv_proj: linear(h, 3 * h, true, device), out_proj: linear(h, h, true, device), num_heads: cfg.num_attention_heads }
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.attend(x, None)
    }

    /// Attention of the first `queries` tokens over all tokens (`None`: all
    /// of them). Keys and values always cover the whole sequence, so the
    /// outputs for those rows are exactly what [`Self::forward`] gives.
    pub fn attend(&self, x: Tensor<3>, queries: Option<usize>) -> Tensor<3> {
        let [b, t, h] = x.dims();
        let tq = queries.unwrap_or(t).min(t);
        let heads = self.num_heads;
        let hd = h / heads;
        let qkv = self.qkv_proj.forward(x).reshape([b, t, 3, heads, hd]).permute([2, 0, 3, 1, 4]);
        let q: Tensor<4> = qkv.clone().narrow(0, 0, 1).narrow(3, 0, tq).reshape([b, heads, tq, hd]);
        let k: Tensor<4> = qkv.clone().narrow(0, 1, 1).reshape([b, heads, t, hd]);
        let v: Tensor<4> = qkv.narrow(0, 2, 1).reshape([b, heads, t, hd]);
        let scores = q.mul_scalar((hd as f64).powf(-0.5)).matmul(k.swap_dims(2, 3));
        let attn = softmax(scores, 3).matmul(v);
        self.out_proj.forward(attn.swap_dims(1, 2).reshape([b, tq, h]))
    }
}

/// The feed-forward block: fc1, the activation, fc2.
#[derive(Module, Debug)]
pub struct ClipMlp {
    pub fc1: Linear,
    pub fc2: Linear,
    #[module(skip)]
    pub activation: Activation,
}

impl ClipMlp {
    fn new(cfg: &VisionConfig, device: &Device) -> Self {
        ClipMlp {
            fc1: linear(cfg.hidden_size, cfg.intermediate_size, true, device),
            fc2: linear(cfg.intermediate_size, cfg.hidden_size, true, device),
            activation: cfg.hidden_act,
        }
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.fc1.forward(x);
        let h = match self.activation {
            Activation::QuickGelu => quick_gelu(h),
            Activation::Gelu => gelu(h),
        };
        self.fc2.forward(h)
    }
}

/// A pre-norm transformer block.
#[derive(Module, Debug)]
pub struct ClipEncoderLayer {
    pub layer_norm1: LayerNorm,
    pub self_attn: ClipAttention,
    pub layer_norm2: LayerNorm,
    pub mlp: ClipMlp,
}

impl ClipEncoderLayer {
    fn new(cfg: &VisionConfig, device: &Device) -> Self {
        ClipEncoderLayer {
            layer_norm1: layer_norm(cfg, device),
            self_attn: ClipAttention::new(cfg, device),
            layer_norm2: layer_norm(cfg, device),
            mlp: ClipMlp::new(cfg, device),
        }
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = x.clone() + self.self_attn.forward(self.layer_norm1.forward(x));
        x.clone() + self.mlp.forward(self.layer_norm2.forward(x))
    }

    /// The layer's output for the class token only, `[B, 1, hidden]`.
    ///
    /// The image embedding reads nothing but the class token after the last
    /// layer, and in a pre-norm block a token's output depends on the other
    /// tokens only through attention's keys and values. So the last layer
    /// runs attention, the output projection and the MLP for one token; only
    /// the fused q/k/v projection still covers every token (queries
    /// included, as splitting the fused weight would cost a copy). That saves
    /// about 6% of a ViT-B/32 forward pass, with the same result.
    pub fn forward_class_token(&self, x: Tensor<3>) -> Tensor<3> {
        let attn = self.self_attn.attend(self.layer_norm1.forward(x.clone()), Some(1));
        let x = x.narrow(1, 0, 1) + attn;
        x.clone() + self.mlp.forward(self.layer_norm2.forward(x))
    }
}

#[derive(Module, Debug)]
pub struct ClipEncoder {
    pub layers: Vec<ClipEncoderLayer>,
}

#[derive(Module, Debug)]
pub struct ClipVisionTransformer {
    pub embeddings: ClipVisionEmbeddings,
    /// Spelled as in the Hugging Face checkpoints.
    pub pre_layrnorm: LayerNorm,
    pub encoder: ClipEncoder,
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
        ClipVisionModelWithProjection {
            vision_model: ClipVisionTransformer {
                embeddings: ClipVisionEmbeddings::new(cfg, device),
                pre_layrnorm: layer_norm(cfg, device),
                encoder: ClipEncoder { layers: (0..cfg.num_hidden_layers).map(|_| ClipEncoderLayer::new(cfg, device)).collect() },
                post_layernorm: layer_norm(cfg, device),
            },
            visual_projection: linear(cfg.hidden_size, cfg.projection_dim, false, device),
        }
    }

    /// Image embeddings `[B, projection_dim]` (not normalised) for
    /// CLIP-normalised pixels `[B, 3, image_size, image_size]`.
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<2> {
        let vm = &self.vision_model;
        let mut x = vm.pre_layrnorm.forward(vm.embeddings.forward(pixels));
        if let Some((last, rest)) = vm.encoder.layers.split_last() {
            for layer in rest {
                x = layer.forward(x);
            }
            x = last.forward_class_token(x);
        }
        let [b, _, h] = x.dims();
        let cls: Tensor<2> = x.narrow(1, 0, 1).reshape([b, h]);
        self.visual_projection.forward(vm.post_layernorm.forward(cls))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

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
            let full = layer.forward(x.clone()).narrow(1, 0, 1).into_data().try_to_vec::<f32>().expect("f32");
            let cls = layer.forward_class_token(x).into_data().try_to_vec::<f32>().expect("f32");
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
