//! Vision-tower configuration, read from a Hugging Face `config.json`
//! (a full `CLIPConfig` or a `CLIPVisionConfig`), an open_clip config, or a
//! preset.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x * sigmoid(1.702 x)`, used by OpenAI's CLIP models.
    QuickGelu,
    /// Exact (erf) GELU.
    Gelu,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub image_size: usize,
    pub patch_size: usize,
    /// Output dimension of `visual_projection`.
    pub projection_dim: usize,
    pub hidden_act: Activation,
    pub layer_norm_eps: f64,
}

impl VisionConfig {
    fn vit(hidden: usize, layers: usize, heads: usize, image: usize, patch: usize, proj: usize) -> Self {
        VisionConfig {
            hidden_size: hidden,
            intermediate_size: 4 * hidden,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            image_size: image,
            patch_size: patch,
            projection_dim: proj,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
        }
    }
    /// openai/clip-vit-base-patch32
    pub fn vit_b_32() -> Self {
        Self::vit(768, 12, 12, 224, 32, 512)
    }
    /// openai/clip-vit-base-patch16
    pub fn vit_b_16() -> Self {
        Self::vit(768, 12, 12, 224, 16, 512)
    }
    /// openai/clip-vit-large-patch14
    pub fn vit_l_14() -> Self {
        Self::vit(1024, 24, 16, 224, 14, 768)
    }
    /// openai/clip-vit-large-patch14-336
    pub fn vit_l_14_336() -> Self {
        Self::vit(1024, 24, 16, 336, 14, 768)
    }

    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "vit-b-32" | "ViT-B-32" => Some(Self::vit_b_32()),
            "vit-b-16" | "ViT-B-16" => Some(Self::vit_b_16()),
            "vit-l-14" | "ViT-L-14" => Some(Self::vit_l_14()),
            "vit-l-14-336" | "ViT-L-14-336" => Some(Self::vit_l_14_336()),
            _ => None,
        }
    }

    pub fn num_patches(&self) -> usize {
        (self.image_size / self.patch_size).pow(2)
    }

    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.patch_size > 0 && self.image_size.is_multiple_of(self.patch_size), "image_size must be a multiple of patch_size");
        anyhow::ensure!(self.num_attention_heads > 0 && self.hidden_size.is_multiple_of(self.num_attention_heads), "hidden_size must be a multiple of num_attention_heads");
        Ok(())
    }

    /// Parses a Hugging Face `config.json`: `CLIPConfig` (with
    /// `vision_config` and a top-level `projection_dim`) or `CLIPVisionConfig`.
    pub fn from_hf_json(text: &str) -> anyhow::Result<Self> {
        let v: serde_json::Value = serde_json::from_str(text)?;
        let vision = v.get("vision_config").unwrap_or(&v);
        let get = |k: &str| -> anyhow::Result<usize> {
            vision
                .get(k)
                .and_then(|x| x.as_u64())
                .map(|x| x as usize)
                .ok_or_else(|| anyhow::anyhow!("config.json lacks vision field {k:?}"))
        };
        let projection_dim = vision
            .get("projection_dim")
            .or_else(|| v.get("projection_dim"))
            .and_then(|x| x.as_u64())
            .ok_or_else(|| anyhow::anyhow!("config.json lacks projection_dim"))? as usize;
        let act = vision.get("hidden_act").and_then(|x| x.as_str()).unwrap_or("quick_gelu");
        let hidden_act = match act {
            "quick_gelu" => Activation::QuickGelu,
            "gelu" => Activation::Gelu,
            other => anyhow::bail!("unsupported hidden_act {other:?} (quick_gelu or gelu)"),
        };
        let cfg = VisionConfig {
            hidden_size: get("hidden_size")?,
            intermediate_size: get("intermediate_size")?,
            num_hidden_layers: get("num_hidden_layers")?,
            num_attention_heads: get("num_attention_heads")?,
            image_size: get("image_size")?,
            patch_size: get("patch_size")?,
            projection_dim,
            hidden_act,
            layer_norm_eps: vision.get("layer_norm_eps").and_then(|x| x.as_f64()).unwrap_or(1e-5),
        };
        cfg.check()?;
        Ok(cfg)
    }

    /// Parses an open_clip config (`open_clip_config.json` with `model_cfg`,
    /// or a bare model config with `embed_dim` and `vision_cfg`).
    pub fn from_open_clip_json(text: &str) -> anyhow::Result<Self> {
        let v: serde_json::Value = serde_json::from_str(text)?;
        let m = v.get("model_cfg").unwrap_or(&v);
        let vc = m.get("vision_cfg").ok_or_else(|| anyhow::anyhow!("open_clip config lacks vision_cfg"))?;
        let u = |x: &serde_json::Value, k: &str| -> anyhow::Result<usize> {
            x.get(k).and_then(|y| y.as_u64()).map(|y| y as usize).ok_or_else(|| anyhow::anyhow!("open_clip config lacks {k:?}"))
        };
        let width = u(vc, "width")?;
        let head_width = vc.get("head_width").and_then(|y| y.as_u64()).unwrap_or(64) as usize;
        let mlp_ratio = vc.get("mlp_ratio").and_then(|y| y.as_f64()).unwrap_or(4.0);
        let cfg = VisionConfig {
            hidden_size: width,
            intermediate_size: (width as f64 * mlp_ratio) as usize,
            num_hidden_layers: u(vc, "layers")?,
            num_attention_heads: width / head_width,
            image_size: u(vc, "image_size")?,
            patch_size: u(vc, "patch_size")?,
            projection_dim: u(m, "embed_dim")?,
            hidden_act: if m.get("quick_gelu").and_then(|q| q.as_bool()).unwrap_or(false) {
                Activation::QuickGelu
            } else {
                Activation::Gelu
            },
            layer_norm_eps: 1e-5,
        };
        cfg.check()?;
        Ok(cfg)
    }
}
