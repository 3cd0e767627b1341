//! The benchmark's small images: drawn from each sample's generating
//! parameters, which `images-truth.json` records so that an image can be
//! drawn again with or without its harmful feature (the built-in editor).

use std::path::{Path, PathBuf};

use pairguard_run::write_atomic;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::*;
use crate::{DataError, Result};

/// How one synthetic image was drawn: enough to draw it again, with or
/// without the harmful feature (the built-in editor does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageTruth {
    pub cluster: usize,
    pub category: usize,
    /// Whether the dark cross (the harmful feature) is drawn.
    pub harmful: bool,
    pub texture: u64,
}

/// `images-truth.json`: every synthetic image's parameters, by sample id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImagesTruth {
    pub clusters: usize,
    pub categories: usize,
    /// The cross's contrast (`SyntheticConfig::cross_contrast`).
    pub contrast: f64,
    pub images: std::collections::BTreeMap<String, ImageTruth>,
}

impl ImagesTruth {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| DataError::parse(path, e))
    }

    /// The image of `t`, with the harmful feature or without it: background
    /// colour and texture from the cluster, a category-coloured disc as the
    /// topic, and the cross. Both versions share every other pixel.
    pub fn render(&self, t: &ImageTruth, harmful: bool) -> image::RgbImage {
        self.render_cross(t, if harmful { 1.0 } else { 0.0 })
    }

    /// The image of `t` with the cross at `strength` times the benchmark's
    /// contrast (0: no cross, 1: the benchmark's): an edit that draws or
    /// erases the feature only in part.
    pub fn render_cross(&self, t: &ImageTruth, strength: f64) -> image::RgbImage {
        draw(t.cluster, t.category, (strength > 0.0).then_some(self.contrast * strength), t.texture, self.clusters, self.categories)
    }

    /// The pixels the harmful feature covers (255) and the rest (0).
    pub fn feature_mask() -> image::GrayImage {
        image::GrayImage::from_fn(32, 32, |x, y| image::Luma([if on_cross(x, y) { 255 } else { 0 }]))
    }
}

fn on_cross(x: u32, y: u32) -> bool {
    (x as i32 - y as i32).abs() <= 1 || (x as i32 + y as i32 - 31).abs() <= 1
}

fn write_png(path: &Path, img: &image::RgbImage) -> Result<()> {
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).map_err(|e| DataError::parse(path, e))?;
    Ok(write_atomic(path, &png.into_inner())?)
}

impl Benchmark {
    /// Small images with the same structure: background colour and texture
    /// from the cluster, a category-coloured disc as the topic, and, when
    /// unsafe, a dark cross (the "harmful feature"). Pairs share everything
    /// but the cross.
    pub(super) fn write_images(&self, dir: &Path, truth: &mut ImagesTruth) -> Result<PathBuf> {
        let n = self.config.images;
        let img_dir = dir.join("images");
        std::fs::create_dir_all(&img_dir).map_err(|e| DataError::io(&img_dir, e))?;
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(self.config.seed, "images"));
        let mut samples = Vec::new();
        let mut paths = Vec::new();
        for i in 0..n.div_ceil(2) {
            let c = rng.random_range(0..self.config.clusters);
            let k = rng.random_range(0..self.config.categories);
            let texture: u64 = rng.random();
            let pair_id = format!("img-p{i:04}");
            for (role, y) in [(PairRole::Original, i % 2 == 0), (PairRole::Counterfactual, i % 2 != 0)] {
                let t = ImageTruth { cluster: c, category: k, harmful: y, texture };
                let suffix = if role == PairRole::Original { "o" } else { "c" };
                let file = format!("{pair_id}-{suffix}.png");
                write_png(&img_dir.join(&file), &truth.render(&t, y))?;
                paths.push(format!("images/{file}"));
                let image = Some(ImageRef::Path(img_dir.join(&file)));
                let sample = pair_member(&pair_id, role, y, k, Source::AiGenerated, image);
                truth.images.insert(sample.id.clone(), t);
                samples.push(sample);
            }
        }
        let manifest = manifest_jsonl(&samples, None, Some(&paths));
        write_atomic(&dir.join("images.jsonl"), manifest.as_bytes())?;
        let d = self.descriptor("images", None, Some(".".into()));
        let path = dir.join("images.toml");
        write_atomic(&path, toml::to_string(&d).expect("serialisable").as_bytes())?;
        Ok(path)
    }

    /// `coarse-images` (with the scene shortcut of the coarse pool) and
    /// `test-shifted-images` (half as many, labels independent of the scene).
    pub(super) fn write_single_images(&self, dir: &Path, truth: &mut ImagesTruth) -> Result<Vec<PathBuf>> {
        let img_dir = dir.join("images");
        std::fs::create_dir_all(&img_dir).map_err(|e| DataError::io(&img_dir, e))?;
        let cfg = &self.config;
        let mut written = Vec::new();
        for (name, n, shortcut) in [("coarse-images", cfg.coarse_images, true), ("test-shifted-images", cfg.coarse_images / 2, false)] {
            let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, name));
            let (mut samples, mut paths, mut clusters) = (Vec::new(), Vec::new(), Vec::new());
            for i in 0..n {
                let c = rng.random_range(0..cfg.clusters);
                let k = rng.random_range(0..cfg.categories);
                let p = match (shortcut, c < cfg.clusters / 2) {
                    (false, _) => 0.5,
                    (true, true) => (1.0 + cfg.shortcut) / 2.0,
                    (true, false) => (1.0 - cfg.shortcut) / 2.0,
                };
                let t = ImageTruth { cluster: c, category: k, harmful: rng.random_bool(p), texture: rng.random() };
                let id = format!("{name}-{i:05}");
                let file = format!("{id}.png");
                write_png(&img_dir.join(&file), &truth.render(&t, t.harmful))?;
                paths.push(format!("images/{file}"));
                samples.push(Sample {
                    id: id.clone(),
                    image: Some(ImageRef::Path(img_dir.join(&file))),
                    label: if t.harmful { Label::Unsafe } else { Label::Safe },
                    category: Some(format!("category-{k}")),
                    pair: None,
                    group: None,
                    source: Source::Real,
                    split: None,
                });
                clusters.push(c);
                truth.images.insert(id, t);
            }
            write_atomic(&dir.join(format!("{name}.jsonl")), manifest_jsonl(&samples, Some(&clusters), Some(&paths)).as_bytes())?;
            let path = dir.join(format!("{name}.toml"));
            write_atomic(&path, toml::to_string(&self.descriptor(name, None, Some(".".into()))).expect("serialisable").as_bytes())?;
            written.push(path);
        }
        Ok(written)
    }
}

/// A 32x32 image; `cross` is the harmful feature's contrast, if it is drawn.
fn draw(c: usize, k: usize, cross: Option<f64>, texture: u64, clusters: usize, categories: usize) -> image::RgbImage {
    let hue = |i: usize, n: usize| -> [u8; 3] {
        let t = i as f64 / n as f64;
        let f = |o: f64| ((0.5 + 0.4 * (std::f64::consts::TAU * (t + o)).cos()) * 255.0) as u8;
        [f(0.0), f(1.0 / 3.0), f(2.0 / 3.0)]
    };
    let bg = hue(c, clusters);
    let fg = hue(k, categories).map(|v| 255 - v);
    let mut rng = ChaCha8Rng::seed_from_u64(texture);
    image::RgbImage::from_fn(32, 32, |x, y| {
        let jitter: i16 = rng.random_range(-12..=12);
        let (dx, dy) = (x as f64 - 16.0, y as f64 - 16.0);
        let scene = if dx * dx + dy * dy < 64.0 { fg } else { bg };
        let px = match cross {
            Some(a) if on_cross(x, y) => scene.map(|v| (f64::from(v) * (1.0 - a) + 20.0 * a).round() as u8),
            _ => scene,
        };
        image::Rgb(px.map(|v| (v as i16 + jitter).clamp(0, 255) as u8))
    })
}
