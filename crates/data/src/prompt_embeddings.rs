//! Text embeddings of prompts on disk, tied to the CLIP checkpoint whose
//! text tower made them: they pair only with image embeddings of that
//! checkpoint (see [`EncoderId::weights_sha256`]).

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};

use crate::{DataError, EncoderId, Result};
use pairguard_run::write_atomic;

pub const PROMPTS_FORMAT: &str = "pairguard-prompts/1";

/// The safetensors metadata key holding the [`Header`].
const METADATA_KEY: &str = "pairguard-prompts";

/// What the file says besides the vectors.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Header {
    format: String,
    texts: Vec<String>,
    model: String,
    checkpoint_sha256: String,
    tokenizer: String,
}

/// Unit-length text embeddings of prompts, and the checkpoint whose text
/// tower made them: they pair only with image embeddings of that checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptEmbeddings {
    pub texts: Vec<String>,
    pub dim: usize,
    /// Row-major `[texts, dim]`.
    pub x: Vec<f32>,
    /// The model as named (Hub id, path, or `synthetic`).
    pub model: String,
    /// SHA-256 of the checkpoint: the image encoder's `weights_sha256`.
    pub checkpoint_sha256: String,
    /// The tokenizer's file, or how the embeddings were made.
    pub tokenizer: String,
}

impl PromptEmbeddings {
    /// Rows scaled to unit length; refuses non-finite or zero rows.
    pub fn new(texts: Vec<String>, dim: usize, mut x: Vec<f32>, model: String, checkpoint_sha256: String, tokenizer: String) -> Result<Self> {
        if dim == 0 || x.len() != texts.len() * dim {
            return Err(DataError::Store(format!("{} prompt texts and {} values do not form [texts, {dim}]", texts.len(), x.len())));
        }
        for (i, row) in x.chunks_mut(dim).enumerate() {
            let n = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            if !(n.is_finite() && n > 0.0) {
                return Err(DataError::Store(format!("prompt {:?}: embedding has norm {n}", texts[i])));
            }
            row.iter_mut().for_each(|v| *v /= n);
        }
        Ok(PromptEmbeddings { texts, dim, x, model, checkpoint_sha256, tokenizer })
    }

    pub fn get(&self, text: &str) -> Option<&[f32]> {
        self.texts.iter().position(|t| t == text).map(|i| &self.x[i * self.dim..(i + 1) * self.dim])
    }

    /// Refuses image embeddings of another checkpoint or dimension.
    pub fn check_encoder(&self, images: &EncoderId) -> Result<()> {
        if images.weights_sha256 != self.checkpoint_sha256 || images.dim != self.dim {
            return Err(DataError::EncoderMismatch(format!(
                "the prompt embeddings come from {} (checkpoint {}, dim {}) and the image embeddings from {} (checkpoint {}, dim {}): text and images must come from one CLIP checkpoint",
                self.model,
                short(&self.checkpoint_sha256),
                self.dim,
                images.model,
                short(&images.weights_sha256),
                images.dim
            )));
        }
        Ok(())
    }

    /// One safetensors file: `embeddings` `[n, dim]` and the texts and
    /// provenance in its metadata. Written atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes: Vec<u8> = self.x.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = TensorView::new(Dtype::F32, vec![self.texts.len(), self.dim], &bytes).map_err(|e| DataError::Store(e.to_string()))?;
        // One metadata entry: a map of several would be written in hash order.
        let header = Header {
            format: PROMPTS_FORMAT.into(),
            texts: self.texts.clone(),
            model: self.model.clone(),
            checkpoint_sha256: self.checkpoint_sha256.clone(),
            tokenizer: self.tokenizer.clone(),
        };
        let meta = HashMap::from([(METADATA_KEY.to_string(), serde_json::to_string(&header).expect("strings serialise"))]);
        write_atomic(path, &safetensors::serialize([("embeddings", view)], Some(meta)).map_err(|e| DataError::Store(e.to_string()))?)?;
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Self> {
        let bad = |m: String| DataError::parse(path, m);
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let text = meta.get(METADATA_KEY).ok_or_else(|| bad(format!("no `{METADATA_KEY}` in the metadata: not a prompt embeddings file")))?;
        let h: Header = serde_json::from_str(text).map_err(|e| bad(format!("`{METADATA_KEY}`: {e}")))?;
        if h.format != PROMPTS_FORMAT {
            return Err(bad(format!("format {:?}; this build reads {PROMPTS_FORMAT}", h.format)));
        }
        let texts = h.texts;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
        let t = st.tensor("embeddings").map_err(|_| bad("no tensor `embeddings`".into()))?;
        if t.dtype() != Dtype::F32 || t.shape().len() != 2 || t.shape()[0] != texts.len() {
            return Err(bad(format!("`embeddings` is {:?} {:?}; expected F32 [{}, dim]", t.dtype(), t.shape(), texts.len())));
        }
        let x = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        Self::new(texts, t.shape()[1], x, h.model, h.checkpoint_sha256, h.tokenizer).map_err(|e| bad(e.to_string()))
    }
}

fn short(h: &str) -> &str {
    &h[..h.len().min(12)]
}
