//! Loading vision weights from safetensors through burn's store, in either
//! checkpoint layout:
//!
//! * Hugging Face (`vision_model.*`, `visual_projection.weight`): the keys
//!   are the module paths, except that `q_proj`, `k_proj` and `v_proj` are
//!   fused into `qkv_proj` as they load;
//! * OpenAI / open_clip (`visual.*`): one remap table, and `proj`, stored
//!   `[hidden, projection]` unlike a PyTorch linear, is transposed as it loads.
//!
//! `PyTorchToBurnAdapter` transposes linear weights and names LayerNorm
//! parameters; f16 and bf16 checkpoints are cast to f32. Text-tower keys are
//! ignored; any other unknown, missing or mis-shaped key is an error that
//! lists them. Pickle checkpoints are refused: loading one can run code.

use std::collections::BTreeMap;
use std::path::Path;

use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{
    ApplyError, FloatCastAdapter, KeyRemapper, ModuleAdapter, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter, SafetensorsStore, bridge,
};
use burn::tensor::{DType, Shape, TensorData};

use super::model::ClipVisionModelWithProjection;
use crate::error::{Error, Result};

/// How a checkpoint names the vision tower's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    HuggingFace,
    OpenAi,
}

/// OpenAI / open_clip key -> module path. Patterns apply in order to the
/// checkpoint key; a layer's `visual.transformer.resblocks.N.` prefix is
/// rewritten first, then the parts inside it.
const OPENAI_REMAP: [(&str, &str); 13] = [
    (r"^visual\.class_embedding$", "vision_model.embeddings.class_embedding"),
    (r"^visual\.conv1\.weight$", "vision_model.embeddings.patch_embedding.weight"),
    (r"^visual\.positional_embedding$", "vision_model.embeddings.position_embedding.weight"),
    (r"^visual\.ln_pre\.", "vision_model.pre_layrnorm."),
    (r"^visual\.ln_post\.", "vision_model.post_layernorm."),
    (r"^visual\.proj$", "visual_projection.weight"),
    (r"^visual\.transformer\.resblocks\.(\d+)\.", "vision_model.encoder.layers.$1."),
    (r"\.ln_1\.", ".layer_norm1."),
    (r"\.ln_2\.", ".layer_norm2."),
    (r"\.attn\.in_proj_(weight|bias)$", ".self_attn.qkv_proj.$1"),
    (r"\.attn\.out_proj\.", ".self_attn.out_proj."),
    (r"\.mlp\.c_fc\.", ".mlp.fc1."),
    (r"\.mlp\.c_proj\.", ".mlp.fc2."),
];

impl Layout {
    fn detect(keys: &[String]) -> Option<Layout> {
        if keys.iter().any(|k| k.starts_with("vision_model.")) {
            Some(Layout::HuggingFace)
        } else if keys.iter().any(|k| k.starts_with("visual.")) {
            Some(Layout::OpenAi)
        } else {
            None
        }
    }

    fn remapper(self) -> KeyRemapper {
        let table: Vec<(&str, &str)> = match self {
            Layout::HuggingFace => Vec::new(),
            Layout::OpenAi => OPENAI_REMAP.to_vec(),
        };
        KeyRemapper::from_patterns(table).expect("the remap tables are valid regexes")
    }

    /// Keys of the checkpoint that belong to the vision tower.
    fn is_vision_key(self, key: &str) -> bool {
        match self {
            Layout::HuggingFace => (key.starts_with("vision_model.") && !key.ends_with("position_ids")) || key == "visual_projection.weight",
            Layout::OpenAi => key.starts_with("visual."),
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
fn reshape_step(layout: Layout, tensors: BTreeMap<String, PackTensor>) -> Vec<PackTensor> {
    match layout {
        Layout::OpenAi => {
            tensors.into_values().map(|t| if t.name == "visual_projection.weight" && t.shape.len() == 2 { transpose(t) } else { t }).collect()
        }
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
    let layout = Layout::detect(&keys).ok_or_else(|| weights_error("no CLIP vision weights (no `vision_model.*` or `visual.*` keys)".into()))?;
    let vision: Vec<PackTensor> = all.values().filter(|t| layout.is_vision_key(&t.name)).cloned().collect();
    let (renamed, names) = layout.remapper().remap(vision);
    let checkpoint_key: BTreeMap<String, String> = names.into_iter().collect();
    let tensors = reshape_step(layout, renamed.into_iter().map(|t| (t.name.clone(), t)).collect());

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
        return Err(weights_error(problems.join("; ")));
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
