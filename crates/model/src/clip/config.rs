//! The vision tower's configuration: a burn [`Config`] with presets for
//! OpenAI's published models, read from a Hugging Face `config.json` (a full
//! `CLIPConfig` or a `CLIPVisionConfig`) or an open_clip model config.

use std::path::Path;

use burn::config::Config;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::model::ClipVisionModelWithProjection;
use crate::error::{Error, Result};

/// The MLP activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x * sigmoid(1.702 x)`, used by OpenAI's CLIP models.
    QuickGelu,
    /// Exact (erf) GELU, used by most open_clip models trained elsewhere.
    Gelu,
}

/// A CLIP vision transformer with its projection to the joint embedding space.
#[derive(Config, Debug, PartialEq)]
pub struct VisionConfig {
    /// Width of the token embeddings.
    pub hidden_size: usize,
    /// Width of each encoder layer's MLP.
    pub intermediate_size: usize,
    /// Encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer; divides `hidden_size`.
    pub num_attention_heads: usize,
    /// Side of the square input image, in pixels.
    pub image_size: usize,
    /// Side of a square patch; divides `image_size`.
    pub patch_size: usize,
    /// Output dimension of `visual_projection`: the embedding dimension.
    pub projection_dim: usize,
    /// The MLP activation.
    #[config(default = "Activation::QuickGelu")]
    pub hidden_act: Activation,
    /// LayerNorm epsilon.
    #[config(default = 1e-5)]
    pub layer_norm_eps: f64,
}

impl VisionConfig {
    fn openai(hidden: usize, layers: usize, heads: usize, image: usize, patch: usize, projection: usize) -> Self {
        Self::new(hidden, 4 * hidden, layers, heads, image, patch, projection)
    }

    /// `openai/clip-vit-base-patch32`.
    pub fn vit_b_32() -> Self {
        Self::openai(768, 12, 12, 224, 32, 512)
    }

    /// `openai/clip-vit-base-patch16`.
    pub fn vit_b_16() -> Self {
        Self::openai(768, 12, 12, 224, 16, 512)
    }

    /// `openai/clip-vit-large-patch14`.
    pub fn vit_l_14() -> Self {
        Self::openai(1024, 24, 16, 224, 14, 768)
    }

    /// `openai/clip-vit-large-patch14-336`.
    pub fn vit_l_14_336() -> Self {
        Self::openai(1024, 24, 16, 336, 14, 768)
    }

    /// Tokens per image: the patches and the class token.
    pub fn num_positions(&self) -> usize {
        (self.image_size / self.patch_size).pow(2) + 1
    }

    /// Refuses configurations that cannot describe a model (zero sizes,
    /// sizes that do not divide).
    pub fn check(&self) -> Result<()> {
        let bad = |message: String| Err(Error::InvalidConfig(message));
        for (name, v) in [
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("image_size", self.image_size),
            ("patch_size", self.patch_size),
            ("projection_dim", self.projection_dim),
        ] {
            if v == 0 {
                return bad(format!("{name} is 0; it must be positive"));
            }
        }
        if !self.image_size.is_multiple_of(self.patch_size) {
            return bad(format!("image_size {} is not a multiple of patch_size {}", self.image_size, self.patch_size));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(format!("hidden_size {} is not a multiple of num_attention_heads {}", self.hidden_size, self.num_attention_heads));
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps.is_finite()) {
            return bad(format!("layer_norm_eps {} must be positive", self.layer_norm_eps));
        }
        Ok(())
    }

    /// A model with freshly initialised weights (load real ones with
    /// [`super::load::load_weights`]).
    pub fn init(&self, device: &Device) -> ClipVisionModelWithProjection {
        ClipVisionModelWithProjection::new(self, device)
    }

    /// Reads a config file, telling the two formats apart by their fields.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let parse = |e: String| Error::ConfigFile { path: path.to_path_buf(), message: e };
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| parse(e.to_string()))?;
        let cfg = if value.get("model_cfg").is_some() || value.get("vision_cfg").is_some() {
            OpenClipFile::deserialize(&value).map_err(|e| parse(e.to_string()))?.into_config()
        } else {
            HfFile::deserialize(&value).map_err(|e| parse(e.to_string()))?.into_config()
        }
        .map_err(parse)?;
        cfg.check().map_err(|e| parse(e.to_string()))?;
        Ok(cfg)
    }
}

/// The vision fields of a Hugging Face `CLIPVisionConfig`. Unknown fields
/// (dropout rates, initialiser ranges, ...) do not change inference.
#[derive(Debug, Deserialize)]
struct HfVision {
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    image_size: usize,
    patch_size: usize,
    projection_dim: Option<usize>,
    #[serde(default = "quick_gelu_name")]
    hidden_act: String,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
}

/// A Hugging Face `config.json`: a `CLIPConfig` (`vision_config` plus a
/// top-level `projection_dim`) or a bare `CLIPVisionConfig`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum HfFile {
    Full { vision_config: HfVision, projection_dim: Option<usize> },
    Vision(HfVision),
}

fn quick_gelu_name() -> String {
    "quick_gelu".into()
}

fn default_eps() -> f64 {
    1e-5
}

impl HfFile {
    fn into_config(self) -> std::result::Result<VisionConfig, String> {
        let (v, outer) = match self {
            HfFile::Full { vision_config, projection_dim } => (vision_config, projection_dim),
            HfFile::Vision(v) => (v, None),
        };
        let projection_dim = v.projection_dim.or(outer).ok_or("config lacks projection_dim")?;
        let hidden_act = match v.hidden_act.as_str() {
            "quick_gelu" => Activation::QuickGelu,
            "gelu" => Activation::Gelu,
            other => return Err(format!("unsupported hidden_act {other:?} (quick_gelu or gelu)")),
        };
        Ok(VisionConfig {
            hidden_size: v.hidden_size,
            intermediate_size: v.intermediate_size,
            num_hidden_layers: v.num_hidden_layers,
            num_attention_heads: v.num_attention_heads,
            image_size: v.image_size,
            patch_size: v.patch_size,
            projection_dim,
            hidden_act,
            layer_norm_eps: v.layer_norm_eps,
        })
    }
}

/// open_clip's `vision_cfg`.
#[derive(Debug, Deserialize)]
struct OpenClipVision {
    width: usize,
    layers: usize,
    image_size: usize,
    patch_size: usize,
    #[serde(default = "default_head_width")]
    head_width: usize,
    #[serde(default = "default_mlp_ratio")]
    mlp_ratio: f64,
}

fn default_head_width() -> usize {
    64
}

fn default_mlp_ratio() -> f64 {
    4.0
}

/// An open_clip model config (`embed_dim`, `vision_cfg`, `quick_gelu`).
#[derive(Debug, Deserialize)]
struct OpenClipModel {
    embed_dim: usize,
    vision_cfg: OpenClipVision,
    #[serde(default)]
    quick_gelu: bool,
}

/// `open_clip_config.json` (with `model_cfg`) or a bare model config.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OpenClipFile {
    Wrapped { model_cfg: OpenClipModel },
    Bare(OpenClipModel),
}

impl OpenClipFile {
    fn into_config(self) -> std::result::Result<VisionConfig, String> {
        let m = match self {
            OpenClipFile::Wrapped { model_cfg } => model_cfg,
            OpenClipFile::Bare(m) => m,
        };
        let v = m.vision_cfg;
        if v.head_width == 0 || !v.width.is_multiple_of(v.head_width) {
            return Err(format!("vision_cfg.head_width {} must be positive and divide width {}", v.head_width, v.width));
        }
        if !(v.mlp_ratio > 0.0 && v.mlp_ratio.is_finite()) {
            return Err(format!("vision_cfg.mlp_ratio {} must be positive", v.mlp_ratio));
        }
        Ok(VisionConfig {
            hidden_size: v.width,
            intermediate_size: (v.width as f64 * v.mlp_ratio) as usize,
            num_hidden_layers: v.layers,
            num_attention_heads: v.width / v.head_width,
            image_size: v.image_size,
            patch_size: v.patch_size,
            projection_dim: m.embed_dim,
            hidden_act: if m.quick_gelu { Activation::QuickGelu } else { Activation::Gelu },
            layer_norm_eps: 1e-5,
        })
    }
}

/// The published models with presets, by the names `--preset` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    VitB32,
    VitB16,
    VitL14,
    VitL14_336,
}

impl Preset {
    pub const ALL: [Preset; 4] = [Preset::VitB32, Preset::VitB16, Preset::VitL14, Preset::VitL14_336];

    pub fn name(self) -> &'static str {
        match self {
            Preset::VitB32 => "vit-b-32",
            Preset::VitB16 => "vit-b-16",
            Preset::VitL14 => "vit-l-14",
            Preset::VitL14_336 => "vit-l-14-336",
        }
    }

    pub fn config(self) -> VisionConfig {
        match self {
            Preset::VitB32 => VisionConfig::vit_b_32(),
            Preset::VitB16 => VisionConfig::vit_b_16(),
            Preset::VitL14 => VisionConfig::vit_l_14(),
            Preset::VitL14_336 => VisionConfig::vit_l_14_336(),
        }
    }
}

impl std::str::FromStr for Preset {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Preset::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(s)).ok_or_else(|| Error::UnknownName {
            kind: "encoder preset",
            name: s.to_string(),
            known: Preset::ALL.map(Preset::name).join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<VisionConfig> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(&p, text).unwrap();
        VisionConfig::from_file(&p)
    }

    #[test]
    fn hugging_face_full_and_vision_configs() {
        let full = r#"{"projection_dim": 512, "text_config": {}, "vision_config": {"hidden_size": 768, "intermediate_size": 3072,
            "num_hidden_layers": 12, "num_attention_heads": 12, "image_size": 224, "patch_size": 32, "dropout": 0.0}}"#;
        assert_eq!(parse(full).unwrap(), VisionConfig::vit_b_32());
        let vision = r#"{"hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
            "image_size": 32, "patch_size": 8, "projection_dim": 32, "hidden_act": "gelu", "layer_norm_eps": 1e-6}"#;
        let c = parse(vision).unwrap();
        assert_eq!((c.hidden_act, c.layer_norm_eps, c.num_positions()), (Activation::Gelu, 1e-6, 17));
    }

    #[test]
    fn open_clip_configs() {
        let wrapped = r#"{"model_cfg": {"embed_dim": 768, "quick_gelu": true, "vision_cfg": {"image_size": 224, "layers": 24,
            "width": 1024, "patch_size": 14}}, "preprocess_cfg": {}}"#;
        assert_eq!(parse(wrapped).unwrap(), VisionConfig::vit_l_14());
        let bare = r#"{"embed_dim": 512, "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 16}}"#;
        assert_eq!(parse(bare).unwrap(), VisionConfig::vit_b_16().with_hidden_act(Activation::Gelu));
    }

    #[test]
    fn impossible_configs_are_named_errors() {
        let e = parse(r#"{"embed_dim": 512, "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 16, "head_width": 0}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("config.json") && e.contains("head_width 0"), "{e}");
        let e = parse(
            r#"{"hidden_size": 0, "intermediate_size": 4, "num_hidden_layers": 1, "num_attention_heads": 1,
            "image_size": 32, "patch_size": 8, "projection_dim": 4}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("hidden_size is 0"), "{e}");
        let e = parse(r#"{"hidden_size": 64}"#).unwrap_err().to_string();
        assert!(e.contains("config.json"), "{e}");
        assert!(VisionConfig { patch_size: 9, ..VisionConfig::vit_b_32() }.check().is_err());
    }
}
