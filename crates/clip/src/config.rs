//! The towers' configurations: burn [`Config`]s with presets for OpenAI's
//! published models, read from a Hugging Face `config.json` (a full
//! `CLIPConfig`, a `CLIPVisionConfig` or a `CLIPTextConfig`) or an open_clip
//! model config.

use std::path::Path;

use burn::config::Config;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::text::{ClipTextModelWithProjection, Pooling};
use crate::vision::ClipVisionModelWithProjection;

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
    /// [`crate::load::load_weights`]).
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
        // A full CLIPConfig's projections follow its top-level projection_dim.
        let projection_dim = outer.or(v.projection_dim).ok_or("config lacks projection_dim")?;
        let hidden_act = activation(&v.hidden_act)?;
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

/// A CLIP text transformer with its projection to the joint embedding space.
#[derive(Config, Debug, PartialEq)]
pub struct TextConfig {
    /// Tokens in the vocabulary (49,408 for CLIP's BPE).
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    /// Attention heads per layer; divides `hidden_size`.
    pub num_attention_heads: usize,
    /// The context length (77 for CLIP).
    pub max_position_embeddings: usize,
    /// Output dimension of `text_projection`: the embedding dimension.
    pub projection_dim: usize,
    #[config(default = "Activation::QuickGelu")]
    pub hidden_act: Activation,
    #[config(default = 1e-5)]
    pub layer_norm_eps: f64,
    #[config(default = "Pooling::Argmax")]
    pub pooling: Pooling,
}

impl TextConfig {
    fn openai(hidden: usize, heads: usize, projection: usize) -> Self {
        Self::new(49408, hidden, 4 * hidden, 12, heads, 77, projection)
    }

    /// The text tower of `openai/clip-vit-base-patch32` (and -patch16).
    pub fn vit_b_32() -> Self {
        Self::openai(512, 8, 512)
    }

    /// The text tower of `openai/clip-vit-large-patch14` (and -336).
    pub fn vit_l_14() -> Self {
        Self::openai(768, 12, 768)
    }

    pub fn check(&self) -> Result<()> {
        let bad = |message: String| Err(Error::InvalidConfig(message));
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("max_position_embeddings", self.max_position_embeddings),
            ("projection_dim", self.projection_dim),
        ] {
            if v == 0 {
                return bad(format!("text {name} is 0; it must be positive"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(format!("text hidden_size {} is not a multiple of num_attention_heads {}", self.hidden_size, self.num_attention_heads));
        }
        if let Pooling::EndToken { id } = self.pooling
            && id as usize >= self.vocab_size
        {
            return bad(format!("eos_token_id {id} is outside the vocabulary of {}", self.vocab_size));
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps.is_finite()) {
            return bad(format!("text layer_norm_eps {} must be positive", self.layer_norm_eps));
        }
        Ok(())
    }

    pub fn init(&self, device: &Device) -> ClipTextModelWithProjection {
        ClipTextModelWithProjection::new(self, device)
    }

    /// Reads the text side of a config file (Hugging Face or open_clip).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let parse = |e: String| Error::ConfigFile { path: path.to_path_buf(), message: e };
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| parse(e.to_string()))?;
        let cfg = if value.get("model_cfg").is_some() || value.get("text_cfg").is_some() {
            OpenClipTextFile::deserialize(&value).map_err(|e| parse(e.to_string()))?.into_config()
        } else {
            HfTextFile::deserialize(&value).map_err(|e| parse(format!("no CLIP text config: {e}")))?.into_config()
        }
        .map_err(parse)?;
        cfg.check().map_err(|e| parse(e.to_string()))?;
        Ok(cfg)
    }
}

/// The text fields of a Hugging Face `CLIPTextConfig`.
#[derive(Debug, Deserialize)]
struct HfText {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    max_position_embeddings: usize,
    projection_dim: Option<usize>,
    #[serde(default = "quick_gelu_name")]
    hidden_act: String,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    /// 2 in configs written before transformers named the real end token;
    /// their models pool at the highest id.
    #[serde(default = "legacy_eos")]
    eos_token_id: u32,
}

fn legacy_eos() -> u32 {
    2
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum HfTextFile {
    Full { text_config: HfText, projection_dim: Option<usize> },
    Text(HfText),
}

impl HfTextFile {
    fn into_config(self) -> std::result::Result<TextConfig, String> {
        let (t, outer) = match self {
            HfTextFile::Full { text_config, projection_dim } => (text_config, projection_dim),
            HfTextFile::Text(t) => (t, None),
        };
        Ok(TextConfig {
            vocab_size: t.vocab_size,
            hidden_size: t.hidden_size,
            intermediate_size: t.intermediate_size,
            num_hidden_layers: t.num_hidden_layers,
            num_attention_heads: t.num_attention_heads,
            max_position_embeddings: t.max_position_embeddings,
            projection_dim: outer.or(t.projection_dim).ok_or("config lacks projection_dim")?,
            hidden_act: activation(&t.hidden_act)?,
            layer_norm_eps: t.layer_norm_eps,
            pooling: if t.eos_token_id == 2 { Pooling::Argmax } else { Pooling::EndToken { id: t.eos_token_id } },
        })
    }
}

/// open_clip's `text_cfg`. Settings that change the function away from
/// CLIP's text transformer are read so they can be refused.
#[derive(Debug, Deserialize)]
struct OpenClipText {
    #[serde(default = "default_context")]
    context_length: usize,
    #[serde(default = "default_vocab")]
    vocab_size: usize,
    #[serde(default = "default_text_width")]
    width: usize,
    #[serde(default = "default_text_heads")]
    heads: usize,
    #[serde(default = "default_text_layers")]
    layers: usize,
    #[serde(default = "default_mlp_ratio")]
    mlp_ratio: f64,
    hf_model_name: Option<String>,
    #[serde(default = "argmax_name")]
    pool_type: String,
    #[serde(default)]
    proj_bias: bool,
    #[serde(default)]
    embed_cls: bool,
    #[serde(default)]
    no_causal_mask: bool,
    #[serde(default)]
    final_ln_after_pool: bool,
}

fn default_context() -> usize {
    77
}
fn default_vocab() -> usize {
    49408
}
fn default_text_width() -> usize {
    512
}
fn default_text_heads() -> usize {
    8
}
fn default_text_layers() -> usize {
    12
}
fn argmax_name() -> String {
    "argmax".into()
}

#[derive(Debug, Deserialize)]
struct OpenClipTextModel {
    embed_dim: usize,
    text_cfg: OpenClipText,
    #[serde(default)]
    quick_gelu: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OpenClipTextFile {
    Wrapped { model_cfg: OpenClipTextModel },
    Bare(OpenClipTextModel),
}

impl OpenClipTextFile {
    fn into_config(self) -> std::result::Result<TextConfig, String> {
        let m = match self {
            OpenClipTextFile::Wrapped { model_cfg } => model_cfg,
            OpenClipTextFile::Bare(m) => m,
        };
        let t = m.text_cfg;
        if let Some(name) = t.hf_model_name {
            return Err(format!("text_cfg.hf_model_name {name:?}: a Hugging Face text model, not CLIP's text transformer"));
        }
        for (set, what) in [
            (t.pool_type != "argmax", "text_cfg.pool_type other than argmax"),
            (t.proj_bias, "text_cfg.proj_bias"),
            (t.embed_cls, "text_cfg.embed_cls"),
            (t.no_causal_mask, "text_cfg.no_causal_mask"),
            (t.final_ln_after_pool, "text_cfg.final_ln_after_pool"),
        ] {
            if set {
                return Err(format!("{what} is not supported (CLIP's text transformer has none of these)"));
            }
        }
        if !(t.mlp_ratio > 0.0 && t.mlp_ratio.is_finite()) {
            return Err(format!("text_cfg.mlp_ratio {} must be positive", t.mlp_ratio));
        }
        Ok(TextConfig {
            vocab_size: t.vocab_size,
            hidden_size: t.width,
            intermediate_size: (t.width as f64 * t.mlp_ratio) as usize,
            num_hidden_layers: t.layers,
            num_attention_heads: t.heads,
            max_position_embeddings: t.context_length,
            projection_dim: m.embed_dim,
            hidden_act: if m.quick_gelu { Activation::QuickGelu } else { Activation::Gelu },
            layer_norm_eps: 1e-5,
            pooling: Pooling::Argmax,
        })
    }
}

fn activation(name: &str) -> std::result::Result<Activation, String> {
    match name {
        "quick_gelu" => Ok(Activation::QuickGelu),
        "gelu" => Ok(Activation::Gelu),
        other => Err(format!("unsupported hidden_act {other:?} (quick_gelu or gelu)")),
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

    pub fn text_config(self) -> TextConfig {
        match self {
            Preset::VitB32 | Preset::VitB16 => TextConfig::vit_b_32(),
            Preset::VitL14 | Preset::VitL14_336 => TextConfig::vit_l_14(),
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
    fn text_configs_from_both_formats() {
        let full = r#"{"projection_dim": 512, "vision_config": {}, "text_config": {"vocab_size": 49408, "hidden_size": 512,
            "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 8, "max_position_embeddings": 77,
            "eos_token_id": 2}}"#;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(&p, full).unwrap();
        assert_eq!(TextConfig::from_file(&p).unwrap(), TextConfig::vit_b_32());
        std::fs::write(&p, full.replace("\"eos_token_id\": 2", "\"eos_token_id\": 49407")).unwrap();
        assert_eq!(TextConfig::from_file(&p).unwrap().pooling, Pooling::EndToken { id: 49407 });
        std::fs::write(&p, r#"{"model_cfg": {"embed_dim": 768, "quick_gelu": true, "text_cfg": {"width": 768, "heads": 12}, "vision_cfg": {}}}"#)
            .unwrap();
        assert_eq!(TextConfig::from_file(&p).unwrap(), TextConfig::vit_l_14());
        std::fs::write(&p, r#"{"embed_dim": 512, "text_cfg": {"hf_model_name": "xlm-roberta-base"}}"#).unwrap();
        let e = TextConfig::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("hf_model_name") && e.contains("config.json"), "{e}");
        std::fs::write(&p, r#"{"embed_dim": 512, "text_cfg": {"pool_type": "last"}}"#).unwrap();
        assert!(TextConfig::from_file(&p).unwrap_err().to_string().contains("pool_type"));
        std::fs::write(
            &p,
            r#"{"hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
            "image_size": 32, "patch_size": 8, "projection_dim": 32}"#,
        )
        .unwrap();
        assert!(TextConfig::from_file(&p).unwrap_err().to_string().contains("no CLIP text config"));
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
