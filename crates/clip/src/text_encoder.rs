//! A frozen text encoder: the text tower of a full CLIP checkpoint with its
//! tokenizer, making the prompt embeddings zero-shot and prompt heads use.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use pairguard_data::hub::{self, HubOptions, RepoKind};
use pairguard_run::sha256_file;

use crate::config::TextConfig;
use crate::error::{Error, Result};
use crate::image_encoder::{config_beside, local_weights};
use crate::load::load_text_weights;
use crate::text::ClipTextModelWithProjection;
use crate::tokenizer::Tokenizer;
use pairguard_data::prompt_embeddings::PromptEmbeddings;

use crate::image_encoder::Checkpoint;

/// Tokenizer files looked for beside the weights, in order.
const TOKENIZER_FILES: [&str; 2] = ["tokenizer.json", "bpe_simple_vocab_16e6.txt.gz"];

/// Texts per forward pass.
const BATCH: usize = 64;

#[derive(Debug)]
pub struct TextEncoder {
    pub config: TextConfig,
    pub model: ClipTextModelWithProjection,
    pub tokenizer: Tokenizer,
    /// The model as named.
    pub name: String,
    /// SHA-256 of the checkpoint, as the image encoder records it.
    pub checkpoint_sha256: String,
}

impl TextEncoder {
    /// A text encoder named as [`crate::ImageEncoder::resolve`] names one; the
    /// tokenizer is `tokenizer`, else a tokenizer file beside the weights
    /// (for Hub repos, `tokenizer.json`).
    pub fn resolve(checkpoint: &Checkpoint, tokenizer: Option<&Path>, hub: &HubOptions, device: &Device) -> Result<Self> {
        let (model, revision, config) = (checkpoint.name.as_str(), checkpoint.revision.as_str(), checkpoint.config.as_deref());
        let (weights, cfg, tok) = match local_weights(model)? {
            Some(weights) => {
                let cfg = config_beside(&weights, config)?;
                let dir = weights.parent().unwrap_or(Path::new(".")).to_path_buf();
                let tok = match tokenizer {
                    Some(t) => t.to_path_buf(),
                    None => TOKENIZER_FILES.iter().map(|f| dir.join(f)).find(|p| p.is_file()).ok_or_else(|| Error::ModelFile {
                        path: dir.clone(),
                        message: format!("no tokenizer ({}) beside the weights; pass --tokenizer", TOKENIZER_FILES.join(", ")),
                    })?,
                };
                (weights, cfg, tok)
            }
            None => {
                let files =
                    hub::fetch(model, RepoKind::Model, revision, &["config.json".into(), "model.safetensors".into(), "tokenizer.json".into()], hub)?;
                let tok = tokenizer.map(Path::to_path_buf).unwrap_or_else(|| files[2].clone());
                (files[1].clone(), config.map(Path::to_path_buf).unwrap_or_else(|| files[0].clone()), tok)
            }
        };
        Self::load(model, &weights, &cfg, &tok, device)
    }

    pub fn load(name: &str, weights: &Path, config: &Path, tokenizer: &Path, device: &Device) -> Result<Self> {
        let config_ = TextConfig::from_file(config)?;
        let tokenizer = Tokenizer::from_file(tokenizer)?;
        if tokenizer.vocab_size() != config_.vocab_size {
            return Err(Error::ModelFile {
                path: tokenizer.source.clone(),
                message: format!("{} tokens, but the text tower of {} has {}", tokenizer.vocab_size(), config.display(), config_.vocab_size),
            });
        }
        let mut model = config_.init(device);
        load_text_weights(&mut model, weights)?;
        Ok(TextEncoder { config: config_, model, tokenizer, name: name.to_string(), checkpoint_sha256: sha256_file(weights)? })
    }

    /// Unit-length embeddings of `texts`, truncated to the context length.
    pub fn embed(&self, texts: &[String]) -> Result<PromptEmbeddings> {
        let context = self.config.max_position_embeddings;
        let mut x = Vec::with_capacity(texts.len() * self.config.projection_dim);
        for batch in texts.chunks(BATCH) {
            let ids: Vec<Vec<u32>> = batch.iter().map(|t| self.tokenizer.tokenize(t, context)).collect();
            let y = self.model.forward(&ids)?;
            x.extend(y.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 after convert"));
        }
        let tokenizer: PathBuf = self.tokenizer.source.clone();
        Ok(PromptEmbeddings::new(
            texts.to_vec(),
            self.config.projection_dim,
            x,
            self.name.clone(),
            self.checkpoint_sha256.clone(),
            tokenizer.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        )?)
    }
}
