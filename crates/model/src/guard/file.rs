//! A guard on disk: safetensors weights with the card beside them, checked
//! whole at load; and the encoder it was trained on, found again.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use pairguard_clip::{Checkpoint, ImageEncoder};
use pairguard_data::hub::HubOptions;
use pairguard_run::write_atomic;
use safetensors::tensor::{Dtype, TensorView};

use super::{CARD_FORMAT, GuardModel, ModelCard};
use crate::error::{Error, Result};
use crate::head::{Dense, HeadWeights};
use crate::normalize::FeatureNorm;

pub(super) fn bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl GuardModel {
    pub fn card_path(weights: &Path) -> PathBuf {
        weights.with_extension("json")
    }

    /// Writes `<path>` (safetensors: head weights and normalisation) and
    /// `<path>.json` (the card), atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let h = &self.head;
        let width = h.kind.width(h.outputs);
        let mut tensors: Vec<(&str, Vec<u8>, Vec<usize>)> = vec![
            ("head.w1", bytes(&h.w1), vec![h.input_dim, width]),
            ("head.b1", bytes(&h.b1), vec![width]),
            ("norm.mean", bytes(&self.norm.mean), vec![self.norm.dim()]),
            ("norm.std", bytes(&self.norm.std), vec![self.norm.dim()]),
        ];
        let names: Vec<[String; 2]> = (0..h.middle.len()).map(|i| [format!("head.middle.{i}.w"), format!("head.middle.{i}.b")]).collect();
        for (l, [w, b]) in h.middle.iter().zip(&names) {
            tensors.push((w, bytes(&l.w), vec![l.inputs, l.outputs]));
            tensors.push((b, bytes(&l.b), vec![l.outputs]));
        }
        if let (Some(w2), Some(b2)) = (&h.w2, &h.b2) {
            let last = h.kind.last_layer_outputs(h.outputs);
            tensors.push(("head.w2", bytes(w2), vec![h.middle.last().map_or(width, |l| l.outputs), last]));
            tensors.push(("head.b2", bytes(b2), vec![last]));
        }
        let views: Vec<(&str, TensorView)> = tensors
            .iter()
            .map(|(n, b, s)| Ok((*n, TensorView::new(Dtype::F32, s.clone(), b)?)))
            .collect::<Result<_, safetensors::SafeTensorError>>()?;
        let file = safetensors::serialize(views, None)?;
        write_atomic(path, &file)?;
        write_atomic(&Self::card_path(path), &serde_json::to_vec_pretty(&self.card)?)?;
        Ok(())
    }

    /// The checkpoint of the encoder this guard was trained on, as its card
    /// names it; `name`, `revision` and `config` replace the card's where given.
    pub fn encoder_checkpoint(&self, name: Option<&str>, revision: Option<&str>, config: Option<&Path>) -> Checkpoint {
        let id = &self.card.encoder;
        Checkpoint {
            name: name.unwrap_or(&id.model).to_string(),
            revision: revision.or(id.revision.as_deref()).unwrap_or("main").to_string(),
            config: config.map(Path::to_path_buf),
        }
    }

    /// Loads `checkpoint` as this guard's encoder, with the card's
    /// normalisation and precision. Whether the weights are the guard's is
    /// checked by what uses them, against the card's identity.
    pub fn load_encoder(&self, checkpoint: &Checkpoint, hub: &HubOptions, device: &Device) -> Result<ImageEncoder> {
        let id = &self.card.encoder;
        Ok(ImageEncoder::resolve(checkpoint, hub, id.normalized, device)?.with_precision(id.precision)?)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let card_path = Self::card_path(path);
        let card_error = |message: String| Error::ModelFile { path: card_path.clone(), message };
        let text = std::fs::read_to_string(&card_path).map_err(|e| Error::io(&card_path, e))?;
        let card: ModelCard = serde_json::from_str(&text).map_err(|e| card_error(e.to_string()))?;
        if card.format != CARD_FORMAT {
            return Err(card_error(format!("unsupported model format {:?} (this build reads {CARD_FORMAT})", card.format)));
        }
        if card.outputs.is_empty() || card.outputs[0] != "unsafe" {
            return Err(card_error(format!("`outputs` must start with \"unsafe\", found {:?}", card.outputs)));
        }
        if card.input_dim == 0 {
            return Err(card_error("`input_dim`, the MLP's `hidden` and the prompt head's `categories` must be positive".into()));
        }
        card.head.check_saved(card.outputs.len()).map_err(card_error)?;
        if !(card.temperature > 0.0 && card.temperature.is_finite() && (0.0..=1.0).contains(&card.threshold)) {
            return Err(card_error(format!("temperature {} must be positive and threshold {} in [0, 1]", card.temperature, card.threshold)));
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let weights_error = |message: String| Error::ModelFile { path: path.to_path_buf(), message };
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| weights_error(e.to_string()))?;
        let width = card.head.width(card.outputs.len());
        let d = card.input_dim;
        let o = card.outputs.len();
        let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let t = st.tensor(name).map_err(|_| weights_error(format!("missing tensor {name:?}")))?;
            if t.dtype() != Dtype::F32 || t.shape() != shape {
                return Err(weights_error(format!("tensor {name:?} is {:?} {:?}, the card implies F32 {shape:?}", t.dtype(), t.shape())));
            }
            let v: Vec<f32> = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            if v.iter().any(|x| !x.is_finite()) {
                return Err(weights_error(format!("tensor {name:?} has non-finite values")));
            }
            Ok(v)
        };
        // A ReLU network's middle widths are its weights' own: each layer
        // must take what the one before it gives.
        let mut middle = Vec::new();
        let mut inputs = width;
        for i in 0..card.head.middle_layers() {
            let name = format!("head.middle.{i}.w");
            let outputs = match st.tensor(&name).map(|t| t.shape().to_vec()) {
                Ok(shape) if shape.len() == 2 && shape[1] > 0 => shape[1],
                Ok(shape) => return Err(weights_error(format!("tensor {name:?} has shape {shape:?}, expected [{inputs}, width]"))),
                Err(_) => return Err(weights_error(format!("missing tensor {name:?} (the card names {} layers)", card.head.middle_layers() + 2))),
            };
            middle.push(Dense { inputs, outputs, w: get(&name, &[inputs, outputs])?, b: get(&format!("head.middle.{i}.b"), &[outputs])? });
            inputs = outputs;
        }
        let last = card.head.last_layer_outputs(o);
        let deep = card.head.hidden().is_some();
        let head = HeadWeights {
            kind: card.head,
            input_dim: d,
            outputs: o,
            w1: get("head.w1", &[d, width])?,
            b1: get("head.b1", &[width])?,
            w2: if deep { Some(get("head.w2", &[inputs, last])?) } else { None },
            b2: if deep { Some(get("head.b2", &[last])?) } else { None },
            middle,
        };
        let norm = FeatureNorm { kind: card.normalization, mean: get("norm.mean", &[d])?, std: get("norm.std", &[d])? };
        // Standardisation divides by these: a zero would turn every score into NaN.
        if let Some(j) = norm.std.iter().position(|&s| s <= 0.0) {
            return Err(weights_error(format!("tensor \"norm.std\" has {} at dimension {j}; deviations must be positive", norm.std[j])));
        }
        Ok(GuardModel { card, norm, head })
    }
}
