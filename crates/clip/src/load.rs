//! Loading a tower's weights from safetensors through burn's store, in
//! either checkpoint layout:
//!
//! * Hugging Face (`vision_model.*` (or `vision_model.vision_model.*`) +
//!   `visual_projection.weight`,
//!   `text_model.*` + `text_projection.weight`): the keys are the module
//!   paths, except that `q_proj`, `k_proj` and `v_proj` are fused into
//!   `qkv_proj` as they load;
//! * OpenAI / open_clip (`visual.*`; the text tower at the top level:
//!   `token_embedding`, `transformer.resblocks.*`, `ln_final`, ...): one
//!   remap table per tower, and the projections, stored
//!   `[hidden, projection]` unlike a PyTorch linear, are transposed as they
//!   load.
//!
//! `PyTorchToBurnAdapter` transposes linear weights and names LayerNorm
//! parameters; f16 and bf16 checkpoints are cast to f32. The other tower's
//! keys are ignored, so a full CLIP checkpoint gives either tower; any other
//! unknown, missing or mis-shaped key is an error that lists them. Pickle
//! checkpoints are refused: loading one can run code.

use std::collections::BTreeMap;
use std::path::Path;

use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{
    ApplyError, FloatCastAdapter, KeyRemapper, ModuleAdapter, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter, SafetensorsStore, bridge,
};
use burn::tensor::{DType, Shape, TensorData};

use crate::error::{Error, Result};
use crate::text::ClipTextModelWithProjection;
use crate::vision::ClipVisionModelWithProjection;

/// How a checkpoint names the vision tower's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    HuggingFace,
    OpenAi,
}

/// Which tower a checkpoint is read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tower {
    Vision,
    Text,
}

/// OpenAI / open_clip vision key -> module path. Patterns apply in order to
/// the checkpoint key; a layer's `resblocks.N.` prefix is rewritten first,
/// then the parts inside it ([`BLOCK_REMAP`]).
const OPENAI_VISION_REMAP: [(&str, &str); 7] = [
    (r"^visual\.class_embedding$", "vision_model.embeddings.class_embedding"),
    (r"^visual\.conv1\.weight$", "vision_model.embeddings.patch_embedding.weight"),
    (r"^visual\.positional_embedding$", "vision_model.embeddings.position_embedding.weight"),
    (r"^visual\.ln_pre\.", "vision_model.pre_layrnorm."),
    (r"^visual\.ln_post\.", "vision_model.post_layernorm."),
    (r"^visual\.proj$", "visual_projection.weight"),
    (r"^visual\.transformer\.resblocks\.(\d+)\.", "vision_model.encoder.layers.$1."),
];

/// OpenAI / open_clip text key -> module path.
const OPENAI_TEXT_REMAP: [(&str, &str); 5] = [
    (r"^token_embedding\.weight$", "text_model.embeddings.token_embedding.weight"),
    (r"^positional_embedding$", "text_model.embeddings.position_embedding.weight"),
    (r"^ln_final\.", "text_model.final_layer_norm."),
    (r"^text_projection$", "text_projection.weight"),
    (r"^transformer\.resblocks\.(\d+)\.", "text_model.encoder.layers.$1."),
];

/// Inside an OpenAI / open_clip block, for both towers.
const BLOCK_REMAP: [(&str, &str); 6] = [
    (r"\.ln_1\.", ".layer_norm1."),
    (r"\.ln_2\.", ".layer_norm2."),
    (r"\.attn\.in_proj_(weight|bias)$", ".self_attn.qkv_proj.$1"),
    (r"\.attn\.out_proj\.", ".self_attn.out_proj."),
    (r"\.mlp\.c_fc\.", ".mlp.fc1."),
    (r"\.mlp\.c_proj\.", ".mlp.fc2."),
];

impl Tower {
    fn name(self) -> &'static str {
        match self {
            Tower::Vision => "vision",
            Tower::Text => "text",
        }
    }

    /// The module path of the projection, stored transposed by OpenAI.
    fn projection(self) -> &'static str {
        match self {
            Tower::Vision => "visual_projection.weight",
            Tower::Text => "text_projection.weight",
        }
    }

    fn detect(self, keys: &[String]) -> Option<Layout> {
        let has = |p: &str| keys.iter().any(|k| k.starts_with(p));
        match self {
            Tower::Vision if has("vision_model.") => Some(Layout::HuggingFace),
            Tower::Vision if has("visual.") => Some(Layout::OpenAi),
            Tower::Text if has("text_model.") => Some(Layout::HuggingFace),
            Tower::Text if has("token_embedding.") => Some(Layout::OpenAi),
            _ => None,
        }
    }

    fn remapper(self, layout: Layout) -> KeyRemapper {
        let table: Vec<(&str, &str)> = match (layout, self) {
            // The tower nested as `CLIPVisionModel` nests it (the Stable
            // Diffusion safety checker's file).
            (Layout::HuggingFace, Tower::Vision) => vec![(r"^vision_model\.vision_model\.", "vision_model.")],
            (Layout::HuggingFace, Tower::Text) => Vec::new(),
            (Layout::OpenAi, Tower::Vision) => OPENAI_VISION_REMAP.iter().chain(&BLOCK_REMAP).copied().collect(),
            (Layout::OpenAi, Tower::Text) => OPENAI_TEXT_REMAP.iter().chain(&BLOCK_REMAP).copied().collect(),
        };
        KeyRemapper::from_patterns(table).expect("the remap tables are valid regexes")
    }

    /// Keys of the checkpoint that belong to this tower.
    fn owns(self, layout: Layout, key: &str) -> bool {
        match (layout, self) {
            (Layout::HuggingFace, Tower::Vision) => {
                (key.starts_with("vision_model.") && !key.ends_with("position_ids")) || key == "visual_projection.weight"
            }
            (Layout::HuggingFace, Tower::Text) => {
                (key.starts_with("text_model.") && !key.ends_with("position_ids")) || key == "text_projection.weight"
            }
            (Layout::OpenAi, Tower::Vision) => key.starts_with("visual."),
            (Layout::OpenAi, Tower::Text) => {
                ["token_embedding.", "transformer.", "ln_final."].iter().any(|p| key.starts_with(p))
                    || key == "positional_embedding"
                    || key == "text_projection"
            }
        }
    }
}

/// Concatenates tensors along their first axis, lazily (as the store reads).
fn concat_rows(name: String, parts: Vec<PackTensor>) -> PackTensor {
    let dtype = parts[0].dtype;
    let mut dims: Vec<usize> = parts[0].shape.to_vec();
    dims[0] = parts.iter().map(|p| p.shape[0]).sum();
    let shape = Shape::from(dims.clone());
    bridge::deferred(name, dtype, shape, None, move || {
        let mut bytes = Vec::new();
        for p in &parts {
            bytes.extend_from_slice(bridge::to_data(p)?.as_bytes());
        }
        Ok(TensorData::from_bytes_vec(bytes, dims.clone(), dtype))
    })
}

/// Transposes a 2-D tensor, lazily.
fn transpose(t: PackTensor) -> PackTensor {
    let (rows, cols) = (t.shape[0], t.shape[1]);
    let (name, dtype) = (t.name.clone(), t.dtype);
    bridge::map_data(t, name, dtype, Shape::new([cols, rows]), move |data| {
        let size = data.dtype().size();
        let src = data.as_bytes();
        let mut out = vec![0u8; src.len()];
        for r in 0..rows {
            for c in 0..cols {
                out[(c * rows + r) * size..(c * rows + r + 1) * size].copy_from_slice(&src[(r * cols + c) * size..(r * cols + c + 1) * size]);
            }
        }
        TensorData::from_bytes_vec(out, [cols, rows], data.dtype())
    })
}

/// The layout-specific step the remap table cannot express.
fn reshape_step(layout: Layout, tower: Tower, tensors: BTreeMap<String, PackTensor>) -> Vec<PackTensor> {
    match layout {
        Layout::OpenAi => tensors.into_values().map(|t| if t.name == tower.projection() && t.shape.len() == 2 { transpose(t) } else { t }).collect(),
        Layout::HuggingFace => {
            let mut out = Vec::with_capacity(tensors.len());
            let mut tensors = tensors;
            let q_keys: Vec<String> = tensors.keys().filter(|k| k.contains(".self_attn.q_proj.")).cloned().collect();
            for q in q_keys {
                let (k, v) = (q.replace(".q_proj.", ".k_proj."), q.replace(".q_proj.", ".v_proj."));
                // Fused only when the three are stackable; anything else stays
                // as it is and is reported as unexpected keys.
                let stackable = [&q, &k, &v].iter().all(|n| {
                    tensors.get(*n).is_some_and(|t| !t.shape.is_empty() && t.shape[1..] == tensors[&q].shape[1..] && t.dtype == tensors[&q].dtype)
                });
                if stackable {
                    let parts: Vec<PackTensor> = [&q, &k, &v].iter().map(|n| tensors.remove(*n).expect("checked")).collect();
                    out.push(concat_rows(q.replace(".q_proj.", ".qkv_proj."), parts));
                }
            }
            out.extend(tensors.into_values());
            out
        }
    }
}

/// Loads the vision weights of a safetensors checkpoint into `model`;
/// returns the layout found.
pub fn load_weights(model: &mut ClipVisionModelWithProjection, path: &Path) -> Result<Layout> {
    load_tower(model, path, Tower::Vision)
}

/// Loads the text weights of a full CLIP safetensors checkpoint into
/// `model`; returns the layout found.
pub fn load_text_weights(model: &mut ClipTextModelWithProjection, path: &Path) -> Result<Layout> {
    load_tower(model, path, Tower::Text)
}

fn load_tower<M: ModuleSnapshot>(model: &mut M, path: &Path, tower: Tower) -> Result<Layout> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if matches!(ext.as_str(), "bin" | "pt" | "pth" | "ckpt" | "pkl" | "pickle") {
        return Err(Error::PickleRefused(path.to_path_buf()));
    }
    if !path.is_file() {
        return Err(Error::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")));
    }
    let weights_error = |message: String| Error::Weights { path: path.to_path_buf(), message };
    let mut store = SafetensorsStore::from_file(path);
    let all = store.get_all_tensors().map_err(|e| weights_error(format!("not a safetensors file: {e}")))?;
    let keys: Vec<String> = all.keys().cloned().collect();
    let layout = tower.detect(&keys).ok_or_else(|| {
        weights_error(match tower {
            Tower::Vision => "no CLIP vision weights (no `vision_model.*` or `visual.*` keys)".into(),
            Tower::Text => "no CLIP text weights (no `text_model.*` or `token_embedding.*` keys)".into(),
        })
    })?;
    let owned: Vec<PackTensor> = all.values().filter(|t| tower.owns(layout, &t.name)).cloned().collect();
    let (renamed, names) = tower.remapper(layout).remap(owned);
    let checkpoint_key: BTreeMap<String, String> = names.into_iter().collect();
    let tensors = reshape_step(layout, tower, renamed.into_iter().map(|t| (t.name.clone(), t)).collect());

    let adapter: Box<dyn ModuleAdapter> = Box::new(PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32)));
    let result = model.apply(tensors, None, Some(adapter), false);
    let mut problems = Vec::new();
    if !result.missing.is_empty() {
        let missing: Vec<&str> = result.missing.iter().map(|(p, _)| p.as_str()).collect();
        problems.push(format!("missing keys [{}]", missing.join(", ")));
    }
    if !result.unused.is_empty() {
        let unknown: Vec<&str> = result.unused.iter().map(|p| checkpoint_key.get(p).map_or(p.as_str(), String::as_str)).collect();
        problems.push(format!("unexpected keys [{}]", unknown.join(", ")));
    }
    for e in &result.errors {
        problems.push(match e {
            ApplyError::ShapeMismatch { path, expected, found } => format!("{path}: {:?}, expected {:?}", found.to_vec(), expected.to_vec()),
            other => other.to_string(),
        });
    }
    if !problems.is_empty() {
        return Err(weights_error(format!("{} tower: {}", tower.name(), problems.join("; "))));
    }
    for t in model.collect(None, None, false) {
        let data = bridge::into_data(t.clone()).map_err(|e| weights_error(format!("{}: {e}", t.name)))?;
        let values = data.as_slice::<f32>().map_err(|e| weights_error(format!("{}: {e:?}", t.name)))?;
        if let Some(j) = values.iter().position(|v| !v.is_finite()) {
            return Err(weights_error(format!("{}: non-finite value at index {j}", t.name)));
        }
    }
    Ok(layout)
}
