//! CLIP's text tower in burn: token and position embeddings, the causal
//! transformer (the vision tower's blocks with a causal mask), the final
//! LayerNorm, pooling at the end-of-text token, and the projection into the
//! joint embedding space. Module paths are the Hugging Face keys
//! (`text_model.encoder.layers.N...`, `text_projection`), with q/k/v fused
//! as in the vision tower.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::block::{BlockShape, ClipLayers, INIT};
use crate::config::TextConfig;
use crate::error::{Error, Result};
use crate::vision::Compute;

/// Which token's output becomes the text embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Pooling {
    /// The token with the highest id, first if repeated: CLIP's end-of-text
    /// token is the last of the vocabulary (open_clip, and Hugging Face
    /// configs whose `eos_token_id` is the legacy 2).
    Argmax,
    /// The first occurrence of this id (Hugging Face configs naming their
    /// `eos_token_id`).
    EndToken { id: u32 },
}

impl Pooling {
    /// The pooled position of one sequence.
    fn position(self, tokens: &[u32]) -> Option<usize> {
        match self {
            // The first maximum, as torch.argmax returns it.
            Pooling::Argmax => tokens.iter().enumerate().rev().max_by_key(|(_, t)| **t).map(|(i, _)| i),
            Pooling::EndToken { id } => tokens.iter().position(|&t| t == id),
        }
    }
}

#[derive(Module, Debug)]
pub struct ClipTextEmbeddings {
    pub token_embedding: Embedding,
    pub position_embedding: Embedding,
}

#[derive(Module, Debug)]
pub struct ClipTextTransformer {
    pub embeddings: ClipTextEmbeddings,
    pub encoder: ClipLayers,
    pub final_layer_norm: LayerNorm,
}

/// The text tower and its projection: token ids in, text embeddings out.
#[derive(Module, Debug)]
pub struct ClipTextModelWithProjection {
    pub text_model: ClipTextTransformer,
    pub text_projection: Linear,
    #[module(skip)]
    pub pooling: Pooling,
    #[module(skip)]
    pub vocab_size: usize,
}

impl From<&TextConfig> for BlockShape {
    fn from(c: &TextConfig) -> Self {
        BlockShape {
            hidden: c.hidden_size,
            intermediate: c.intermediate_size,
            heads: c.num_attention_heads,
            activation: c.hidden_act,
            eps: c.layer_norm_eps,
        }
    }
}

impl ClipTextModelWithProjection {
    pub(super) fn new(cfg: &TextConfig, device: &Device) -> Self {
        let h = cfg.hidden_size;
        ClipTextModelWithProjection {
            text_model: ClipTextTransformer {
                embeddings: ClipTextEmbeddings {
                    token_embedding: EmbeddingConfig::new(cfg.vocab_size, h).with_initializer(INIT).init(device),
                    position_embedding: EmbeddingConfig::new(cfg.max_position_embeddings, h).with_initializer(INIT).init(device),
                },
                encoder: ClipLayers::new(cfg.into(), cfg.num_hidden_layers, device),
                final_layer_norm: LayerNormConfig::new(h).with_epsilon(cfg.layer_norm_eps).init(device),
            },
            text_projection: LinearConfig::new(h, cfg.projection_dim).with_bias(false).with_initializer(INIT).init(device),
            pooling: cfg.pooling,
            vocab_size: cfg.vocab_size,
        }
    }

    /// Text embeddings `[B, projection_dim]` (not normalised) of token
    /// sequences, each with its end-of-text token (see [`Pooling`]).
    ///
    /// Only the tokens up to the last pooled position are computed: under
    /// the causal mask no token sees a later one, so padding and anything
    /// after the end token cannot change the result.
    pub fn forward(&self, sequences: &[Vec<u32>]) -> Result<Tensor<2>> {
        let context = self.text_model.embeddings.position_embedding.weight.dims()[0];
        let bad = |index: usize, message: String| Err(Error::Tokens { index, message });
        let mut pooled = Vec::with_capacity(sequences.len());
        for (i, s) in sequences.iter().enumerate() {
            if let Some(t) = s.iter().find(|&&t| t as usize >= self.vocab_size) {
                return bad(i, format!("token id {t} is outside the vocabulary of {}", self.vocab_size));
            }
            if s.len() > context {
                return bad(i, format!("{} tokens, more than the context of {context}", s.len()));
            }
            match self.pooling.position(s) {
                Some(p) => pooled.push(p),
                None => return bad(i, format!("no end-of-text token to pool at ({:?})", self.pooling)),
            }
        }
        let device = self.text_projection.weight.device();
        let (b, t) = (sequences.len(), pooled.iter().max().map_or(1, |p| p + 1));
        let ids: Vec<i64> = sequences.iter().flat_map(|s| (0..t).map(|j| s.get(j).map_or(0, |&v| i64::from(v)))).collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [b, t]), &device);
        let e = &self.text_model.embeddings;
        let mut x = e.token_embedding.forward(ids) + e.position_embedding.weight.val().narrow(0, 0, t).unsqueeze::<3>();
        let mut ops = Compute { causal: true };
        for layer in &self.text_model.encoder.layers {
            x = layer.run(&mut ops, x, None);
        }
        let x = self.text_model.final_layer_norm.forward(x);
        let w = x.dims()[2];
        let rows: Vec<i64> = pooled.iter().enumerate().map(|(i, &p)| (i * t + p) as i64).collect();
        let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [b]), &device);
        let x = x.reshape([b * t, w]).select(0, rows);
        Ok(x.matmul(self.text_projection.weight.val()))
    }
}
