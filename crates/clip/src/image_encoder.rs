//! A frozen image encoder: the vision tower with its weights, its
//! preprocessing and the identity recorded with every embedding it makes;
//! and the [`Checkpoint`] it is loaded from.

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{DType, Device, Tensor, TensorData};
use pairguard_data::hub::{self, HubOptions, RepoKind};
use pairguard_data::{EncoderId, Precision};
use pairguard_run::sha256_file;

use crate::config::VisionConfig;
use crate::error::{Error, Result};
use crate::host::{HostCompute, HostWeights, Pixels, Products};
use crate::load::{Layout, load_weights};
use crate::preprocess::Preprocessor;
use crate::vision::ClipVisionModelWithProjection;

/// The default model: OpenAI's ViT-B/32 at a pinned revision.
pub const DEFAULT_MODEL: &str = "openai/clip-vit-base-patch32";
pub const DEFAULT_REVISION: &str = "3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268";

/// Weight files looked for in a model folder, in order.
const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "open_clip_model.safetensors"];
/// Config files looked for beside a weights file, in order.
const CONFIG_FILES: [&str; 2] = ["config.json", "open_clip_config.json"];

/// Where a CLIP checkpoint is, as users name one: a local safetensors file,
/// a folder holding one, or a Hub repo id at a revision; `config` overrides
/// the config file found beside local weights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub name: String,
    pub revision: String,
    pub config: Option<PathBuf>,
}

/// The vision tower as an embedding pipeline: weights, preprocessing, the
/// precision it computes in, and the identity its embeddings carry.
#[derive(Debug)]
pub struct ImageEncoder {
    pub config: VisionConfig,
    pub model: ClipVisionModelWithProjection,
    pub preprocessor: Preprocessor,
    pub id: EncoderId,
    pub layout: Layout,
    pub device: Device,
    /// The tower's weights for the bf16 and int8 CPU paths (see [`crate::host`]).
    host: Option<HostWeights>,
}

impl ImageEncoder {
    /// An encoder named as users name one: a local safetensors file, a
    /// folder holding one, or a Hub repo id (fetched at `revision` into the
    /// Hub cache, or read from it offline; see [`HubOptions`]).
    pub fn resolve(checkpoint: &Checkpoint, hub: &HubOptions, normalize: bool, device: &Device) -> Result<Self> {
        match local_weights(&checkpoint.name)? {
            Some(weights) => Self::load(&weights, checkpoint.config.as_deref(), normalize, device),
            None => Self::from_hub(&checkpoint.name, &checkpoint.revision, hub, normalize, device),
        }
    }

    /// Loads a local checkpoint. `config` is a Hugging Face `config.json` or
    /// an open_clip config; when absent, one beside the weights is used.
    pub fn load(weights: &Path, config: Option<&Path>, normalize: bool, device: &Device) -> Result<Self> {
        let cfg = VisionConfig::from_file(&config_beside(weights, config)?)?;
        Self::from_parts(cfg, weights, weights.display().to_string(), None, normalize, device)
    }

    /// Fetches `config.json` and `model.safetensors` from the Hub (or its cache).
    pub fn from_hub(repo: &str, revision: &str, opts: &HubOptions, normalize: bool, device: &Device) -> Result<Self> {
        let files = hub::fetch(repo, RepoKind::Model, revision, &["config.json".into(), "model.safetensors".into()], opts)?;
        let cfg = VisionConfig::from_file(&files[0])?;
        Self::from_parts(cfg, &files[1], repo.to_string(), Some(revision.to_string()), normalize, device)
    }

    fn from_parts(config: VisionConfig, weights: &Path, model: String, revision: Option<String>, normalize: bool, device: &Device) -> Result<Self> {
        let mut net = config.init(device);
        let layout = load_weights(&mut net, weights)?;
        let preprocessor = Preprocessor::clip(config.image_size);
        let id = EncoderId {
            model,
            revision,
            weights_sha256: sha256_file(weights)?,
            architecture: serde_json::to_string(&config)?,
            preprocess: preprocessor.version(),
            dim: config.projection_dim,
            normalized: normalize,
            precision: Precision::F32,
        };
        Ok(ImageEncoder { config, model: net, preprocessor, id, layout, device: device.clone(), host: None })
    }

    /// An encoder of a tower already built (random weights in benchmarks),
    /// in f32, with CLIP's preprocessing at its size.
    pub fn from_model(config: VisionConfig, model: ClipVisionModelWithProjection, id: EncoderId, layout: Layout, device: &Device) -> Self {
        let preprocessor = Preprocessor::clip(config.image_size);
        ImageEncoder { config, model, preprocessor, id, layout, device: device.clone(), host: None }
    }

    /// The encoder computing in `precision`, which its identity records.
    /// bf16 and int8 are the CPU's (flex) own arithmetic and have no wgpu path;
    /// f16 stores weights and activations as burn f16 tensors on any device
    /// (on the CPU its products widen to f32, so it is for GPUs).
    pub fn with_precision(mut self, precision: Precision) -> Result<Self> {
        if precision == self.id.precision {
            return Ok(self);
        }
        if self.id.precision != Precision::F32 {
            return Err(Error::Device(format!("the encoder already computes in {}; load it again for {precision}", self.id.precision)));
        }
        match precision {
            Precision::F32 => {}
            Precision::Bf16 if self.device == Device::flex() => self.host = Some(HostWeights::of(&self.model, &self.config, Products::Bf16)),
            Precision::Int8 if self.device == Device::flex() => self.host = Some(HostWeights::of(&self.model, &self.config, Products::Int8)),
            Precision::Bf16 | Precision::Int8 => {
                return Err(Error::Device(format!("{precision} runs on the CPU backend (--device cpu); on a GPU use --precision f16")));
            }
            Precision::F16 => self.model = self.model.map(&mut CastFloats(DType::F16)),
        }
        self.id.precision = precision;
        Ok(self)
    }

    /// Embeddings `[b, dim]` (row-major) for preprocessed pixels `[b, 3, s, s]`.
    pub fn embed_pixels(&self, pixels: Vec<f32>, batch: usize) -> Vec<f32> {
        if let Some(weights) = &self.host {
            let mut y = self.model.run(&mut HostCompute { weights }, Pixels { values: &pixels, batch });
            if self.id.normalized {
                l2_rows_host(&mut y, self.id.dim);
            }
            return y;
        }
        let s = self.config.image_size;
        let x: Tensor<4> = Tensor::from_data(TensorData::new(pixels, [batch, 3, s, s]), &self.device);
        self.embed(x).into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 after convert")
    }

    /// Embeddings `[b, dim]` for CLIP-normalised pixels `[b, 3, s, s]`, as
    /// the store records them (unit length when the identity says so). On
    /// autodiff tensors gradients flow to the pixels; the weights stay
    /// constants. The bf16 and int8 CPU paths compute on the host without a graph:
    /// it answers here without gradients.
    pub fn embed(&self, pixels: Tensor<4>) -> Tensor<2> {
        if self.host.is_some() {
            let batch = pixels.dims()[0];
            let values = pixels.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 after convert");
            let y = self.embed_pixels(values, batch);
            return Tensor::from_data(TensorData::new(y, [batch, self.id.dim]), &self.device);
        }
        let reduced = self.id.precision == Precision::F16;
        let pixels = if reduced { pixels.cast(DType::F16) } else { pixels };
        let y = self.model.forward(pixels);
        let y = if reduced { y.cast(DType::F32) } else { y };
        if self.id.normalized { l2_rows(y) } else { y }
    }

    /// Whether [`Self::embed`] computes gradients to the pixels on autodiff
    /// tensors (all precisions but the CPU's bf16 and int8).
    pub fn differentiable(&self) -> bool {
        self.host.is_none()
    }
}

/// Casts every float parameter of a module.
struct CastFloats(DType);

impl ModuleMapper for CastFloats {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| t.cast(self.0))
    }
}

/// The weights file a model name means when it is local (a file, or a
/// folder holding one); None for a Hub repo id.
pub(crate) fn local_weights(model: &str) -> Result<Option<PathBuf>> {
    let local = Path::new(model);
    if local.exists() {
        if local.is_dir() {
            WEIGHT_FILES.iter().map(|f| local.join(f)).find(|p| p.is_file()).map(Some).ok_or_else(|| Error::NoWeights(local.to_path_buf()))
        } else {
            Ok(Some(local.to_path_buf()))
        }
    } else if model.starts_with(['.', '/', '~']) || model.matches('/').count() != 1 || model.ends_with(".safetensors") {
        // Not `owner/name`: a local path that is not there.
        Err(Error::io(local, std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder, and not a Hub repo id (owner/name)")))
    } else {
        Ok(None)
    }
}

/// `config` when given, else the first config file beside `weights`.
pub(crate) fn config_beside(weights: &Path, config: Option<&Path>) -> Result<PathBuf> {
    let dir = weights.parent().unwrap_or(Path::new("."));
    let candidates: Vec<PathBuf> = match config {
        Some(c) => vec![c.to_path_buf()],
        None => CONFIG_FILES.iter().map(|f| dir.join(f)).collect(),
    };
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| Error::NoConfig {
        weights: weights.to_path_buf(),
        looked: candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
    })
}

/// Rows of a row-major `[n, d]` matrix scaled to unit length in place (a
/// zero row stays zero).
pub fn l2_rows_host(x: &mut [f32], d: usize) {
    for row in x.chunks_mut(d) {
        let n = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|v| *v /= n);
    }
}

/// Rows scaled to unit length (a zero row stays zero), as [`l2_rows_host`] does.
pub fn l2_rows(y: Tensor<2>) -> Tensor<2> {
    let norm = y.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    y / norm
}
