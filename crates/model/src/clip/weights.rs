//! Loading CLIP vision weights from safetensors in either layout:
//! Hugging Face (`vision_model.*`, separate q/k/v, `visual_projection.weight`
//! stored `[proj, hidden]`) or OpenAI/open_clip (`visual.*`, fused
//! `attn.in_proj_weight`, `proj` stored `[hidden, proj]`). Keys of the text
//! tower are ignored; any other unknown or missing key is an error that
//! lists them. Pickle checkpoints are refused: loading them can run code.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use pairguard_data::hash::sha256_file;
use pairguard_data::hub::{self, HubOptions, RepoKind};
use pairguard_data::EncoderId;
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;

use super::config::VisionConfig;
use super::model::{expected_keys, ClipVisionModelWithProjection, HostWeights};
use super::preprocess::Preprocessor;

/// The default model: OpenAI's ViT-B/32 at a pinned revision.
pub const DEFAULT_MODEL: &str = "openai/clip-vit-base-patch32";
pub const DEFAULT_REVISION: &str = "3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    HuggingFace,
    OpenAi,
}

type Raw = (Vec<f32>, Vec<usize>);

fn to_f32(name: &str, dtype: Dtype, bytes: &[u8]) -> anyhow::Result<Vec<f32>> {
    Ok(match dtype {
        Dtype::F32 => bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))
            .collect(),
        Dtype::F16 => bytes.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect(),
        other => anyhow::bail!("tensor {name:?} has dtype {other:?}; expected F32, F16 or BF16"),
    })
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: renormalise.
            let mut e = 127 - 15 + 1;
            let mut f = f;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((f & 0x3ff) << 13)
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}

/// Reads, renames and reshapes a checkpoint into the model's own layout.
pub fn load_host(path: &Path, cfg: &VisionConfig) -> anyhow::Result<(HostWeights, Layout)> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if matches!(ext.as_str(), "bin" | "pt" | "pth" | "ckpt" | "pkl" | "pickle") {
        anyhow::bail!(
            "{}: pickle checkpoints are not loaded because unpickling can execute code; convert it to safetensors (e.g. with the `safetensors` Python package)",
            path.display()
        );
    }
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| anyhow::anyhow!("{}: not a safetensors file: {e}", path.display()))?;
    let names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    let layout = if names.iter().any(|n| n.starts_with("vision_model.")) {
        Layout::HuggingFace
    } else if names.iter().any(|n| n.starts_with("visual.")) {
        Layout::OpenAi
    } else {
        anyhow::bail!("{}: no CLIP vision weights (no `vision_model.*` or `visual.*` keys)", path.display());
    };
    let vision_prefix = match layout {
        Layout::HuggingFace => "vision_model.",
        Layout::OpenAi => "visual.",
    };
    let mut raw: HashMap<String, Raw> = HashMap::new();
    for n in &names {
        let relevant = n.starts_with(vision_prefix) || n == "visual_projection.weight";
        if !relevant || n.ends_with("position_ids") {
            continue;
        }
        let t = st.tensor(n)?;
        raw.insert(n.clone(), (to_f32(n, t.dtype(), t.data())?, t.shape().to_vec()));
    }
    let (h, p) = (cfg.hidden_size, cfg.patch_size);
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut missing: Vec<String> = Vec::new();
    let mut out = HostWeights::default();
    let take = |key: &str, used: &mut BTreeSet<String>, missing: &mut Vec<String>| -> Option<Raw> {
        match raw.get(key) {
            Some(v) => {
                used.insert(key.to_string());
                Some(v.clone())
            }
            None => {
                missing.push(key.to_string());
                None
            }
        }
    };
    // (internal name, source keys, transform)
    let lin = |v: Raw| -> Raw {
        let (o, i) = (v.1[0], v.1[1]);
        (transpose(&v.0, o, i), vec![i, o])
    };
    let same = |v: Raw| v;
    let patch = |v: Raw| -> Raw {
        let o = v.1[0];
        let i = v.0.len() / o.max(1);
        (transpose(&v.0, o, i), vec![i, o])
    };
    let mut put = |name: String, v: Option<Raw>| {
        if let Some(v) = v {
            out.tensors.insert(name, v);
        }
    };
    match layout {
        Layout::HuggingFace => {
            let vm = "vision_model.";
            put("embeddings.class_embedding".into(), take(&format!("{vm}embeddings.class_embedding"), &mut used, &mut missing).map(same));
            put("embeddings.patch_embedding".into(), take(&format!("{vm}embeddings.patch_embedding.weight"), &mut used, &mut missing).map(patch));
            put("embeddings.position_embedding".into(), take(&format!("{vm}embeddings.position_embedding.weight"), &mut used, &mut missing).map(same));
            for (ours, theirs) in [("pre_layrnorm", "pre_layrnorm"), ("post_layernorm", "post_layernorm")] {
                for s in ["weight", "bias"] {
                    put(format!("{ours}.{s}"), take(&format!("{vm}{theirs}.{s}"), &mut used, &mut missing));
                }
            }
            put("visual_projection.weight".into(), take("visual_projection.weight", &mut used, &mut missing).map(lin));
            for i in 0..cfg.num_hidden_layers {
                let src = format!("{vm}encoder.layers.{i}.");
                let dst = format!("layers.{i}.");
                for ln in ["layer_norm1", "layer_norm2"] {
                    for s in ["weight", "bias"] {
                        put(format!("{dst}{ln}.{s}"), take(&format!("{src}{ln}.{s}"), &mut used, &mut missing));
                    }
                }
                let qkv: Vec<Option<Raw>> =
                    ["q", "k", "v"].iter().map(|x| take(&format!("{src}self_attn.{x}_proj.weight"), &mut used, &mut missing)).collect();
                let qkv_b: Vec<Option<Raw>> =
                    ["q", "k", "v"].iter().map(|x| take(&format!("{src}self_attn.{x}_proj.bias"), &mut used, &mut missing)).collect();
                if qkv.iter().all(Option::is_some) {
                    // Stack [3h, h] (rows q, k, v), then transpose to [h, 3h].
                    let stacked: Vec<f32> = qkv.into_iter().flat_map(|v| v.unwrap().0).collect();
                    let rows = stacked.len() / h;
                    put(format!("{dst}self_attn.qkv_proj.weight"), Some((transpose(&stacked, rows, h), vec![h, rows])));
                }
                if qkv_b.iter().all(Option::is_some) {
                    let b: Vec<f32> = qkv_b.into_iter().flat_map(|v| v.unwrap().0).collect();
                    let n = b.len();
                    put(format!("{dst}self_attn.qkv_proj.bias"), Some((b, vec![n])));
                }
                for (ours, theirs) in [("self_attn.out_proj", "self_attn.out_proj"), ("mlp.fc1", "mlp.fc1"), ("mlp.fc2", "mlp.fc2")] {
                    put(format!("{dst}{ours}.weight"), take(&format!("{src}{theirs}.weight"), &mut used, &mut missing).map(lin));
                    put(format!("{dst}{ours}.bias"), take(&format!("{src}{theirs}.bias"), &mut used, &mut missing));
                }
            }
        }
        Layout::OpenAi => {
            let v = "visual.";
            put("embeddings.class_embedding".into(), take(&format!("{v}class_embedding"), &mut used, &mut missing));
            put("embeddings.patch_embedding".into(), take(&format!("{v}conv1.weight"), &mut used, &mut missing).map(patch));
            put("embeddings.position_embedding".into(), take(&format!("{v}positional_embedding"), &mut used, &mut missing));
            for (ours, theirs) in [("pre_layrnorm", "ln_pre"), ("post_layernorm", "ln_post")] {
                for s in ["weight", "bias"] {
                    put(format!("{ours}.{s}"), take(&format!("{v}{theirs}.{s}"), &mut used, &mut missing));
                }
            }
            put("visual_projection.weight".into(), take(&format!("{v}proj"), &mut used, &mut missing));
            for i in 0..cfg.num_hidden_layers {
                let src = format!("{v}transformer.resblocks.{i}.");
                let dst = format!("layers.{i}.");
                for (ours, theirs) in [("layer_norm1", "ln_1"), ("layer_norm2", "ln_2")] {
                    for s in ["weight", "bias"] {
                        put(format!("{dst}{ours}.{s}"), take(&format!("{src}{theirs}.{s}"), &mut used, &mut missing));
                    }
                }
                put(format!("{dst}self_attn.qkv_proj.weight"), take(&format!("{src}attn.in_proj_weight"), &mut used, &mut missing).map(lin));
                put(format!("{dst}self_attn.qkv_proj.bias"), take(&format!("{src}attn.in_proj_bias"), &mut used, &mut missing));
                for (ours, theirs) in [("self_attn.out_proj", "attn.out_proj"), ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")] {
                    put(format!("{dst}{ours}.weight"), take(&format!("{src}{theirs}.weight"), &mut used, &mut missing).map(lin));
                    put(format!("{dst}{ours}.bias"), take(&format!("{src}{theirs}.bias"), &mut used, &mut missing));
                }
            }
        }
    }
    let unknown: Vec<&String> = raw.keys().filter(|k| !used.contains(*k)).collect::<BTreeSet<_>>().into_iter().collect();
    if !missing.is_empty() || !unknown.is_empty() {
        anyhow::bail!(
            "{}: checkpoint does not match the config ({} layers, hidden {}): missing keys [{}]; unexpected keys [{}]",
            path.display(),
            cfg.num_hidden_layers,
            h,
            missing.join(", "),
            unknown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    let mut wrong = Vec::new();
    for (name, shape) in expected_keys(cfg) {
        match out.tensors.get(&name) {
            Some((v, s)) if *s == shape && v.len() == shape.iter().product::<usize>() => {}
            Some((_, s)) => wrong.push(format!("{name}: {s:?}, expected {shape:?}")),
            None => wrong.push(format!("{name}: absent")),
        }
        if let Some((v, _)) = out.tensors.get(&name)
            && let Some(j) = v.iter().position(|x| !x.is_finite())
        {
            wrong.push(format!("{name}: non-finite value at index {j}"));
        }
    }
    anyhow::ensure!(wrong.is_empty(), "{}: wrong tensor shapes for the config (patch {p}): {}", path.display(), wrong.join("; "));
    Ok((out, layout))
}

/// A frozen image encoder with its preprocessing and identity.
#[derive(Debug)]
pub struct Encoder {
    pub config: VisionConfig,
    pub model: ClipVisionModelWithProjection,
    pub preprocessor: Preprocessor,
    pub id: EncoderId,
    pub layout: Layout,
    pub device: Device,
    /// The checkpoint the model was loaded from (for exports).
    pub weights_path: PathBuf,
}

impl Encoder {
    /// Loads a local checkpoint. `config` is a Hugging Face `config.json` or
    /// an open_clip config; when absent, one beside the weights is used.
    pub fn load(weights: &Path, config: Option<&Path>, normalize: bool, device: &Device) -> anyhow::Result<Self> {
        let dir = weights.parent().unwrap_or(Path::new("."));
        let candidates: Vec<PathBuf> = match config {
            Some(c) => vec![c.to_path_buf()],
            None => vec![dir.join("config.json"), dir.join("open_clip_config.json")],
        };
        let cfg_path = candidates.iter().find(|p| p.is_file()).ok_or_else(|| {
            anyhow::anyhow!("no config for {}: looked for {}", weights.display(), candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))
        })?;
        let text = std::fs::read_to_string(cfg_path).map_err(|e| anyhow::anyhow!("{}: {e}", cfg_path.display()))?;
        let cfg = if text.contains("vision_cfg") {
            VisionConfig::from_open_clip_json(&text)
        } else {
            VisionConfig::from_hf_json(&text)
        }
        .map_err(|e| anyhow::anyhow!("{}: {e}", cfg_path.display()))?;
        Self::from_parts(cfg, weights, weights.display().to_string(), None, normalize, device)
    }

    /// Fetches `config.json` and `model.safetensors` from the Hub (or its
    /// cache; see [`HubOptions`]).
    pub fn from_hub(repo: &str, revision: &str, opts: &HubOptions, normalize: bool, device: &Device) -> anyhow::Result<Self> {
        let files = hub::fetch(repo, RepoKind::Model, revision, &["config.json".into(), "model.safetensors".into()], opts)?;
        let text = std::fs::read_to_string(&files[0])?;
        let cfg = VisionConfig::from_hf_json(&text).map_err(|e| anyhow::anyhow!("{repo}/config.json: {e}"))?;
        Self::from_parts(cfg, &files[1], repo.to_string(), Some(revision.to_string()), normalize, device)
    }

    fn from_parts(cfg: VisionConfig, weights: &Path, model: String, revision: Option<String>, normalize: bool, device: &Device) -> anyhow::Result<Self> {
        let (host, layout) = load_host(weights, &cfg)?;
        let preprocessor = Preprocessor::clip(cfg.image_size);
        let id = EncoderId {
            model,
            revision,
            weights_sha256: sha256_file(weights)?,
            preprocess: preprocessor.version(),
            dim: cfg.projection_dim,
            normalized: normalize,
        };
        Ok(Encoder {
            model: ClipVisionModelWithProjection::from_host(&cfg, host, device),
            config: cfg,
            preprocessor,
            id,
            layout,
            device: device.clone(),
            weights_path: weights.to_path_buf(),
        })
    }

    /// The weights again, on the host, in the model's own layout.
    pub fn host_weights(&self) -> anyhow::Result<HostWeights> {
        Ok(load_host(&self.weights_path, &self.config)?.0)
    }

    /// Embeddings `[b, dim]` (row-major) for preprocessed pixels `[b, 3, s, s]`.
    pub fn embed_pixels(&self, pixels: Vec<f32>, batch: usize) -> Vec<f32> {
        let s = self.config.image_size;
        let x: Tensor<4> = Tensor::from_data(TensorData::new(pixels, [batch, 3, s, s]), &self.device);
        let mut y = self.model.forward(x);
        if self.id.normalized {
            let norm = y.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
            y = y / norm;
        }
        y.into_data().convert::<f32>().as_slice::<f32>().expect("f32").to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::f16_to_f32;

    #[test]
    fn half_precision_conversion() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
    }
}
