//! Whether an edit makes a counterfactual pair: the image is whole and the
//! original's size, it differs from the original, its content is kept
//! (encoder cosine similarity, and no change outside the editor's mask),
//! and a verifier guard puts the two members on opposite sides of its
//! threshold with a margin. Every failed check is a reason, all of them
//! reported.

use image::{DynamicImage, RgbImage};
use pairguard_clip::ImageEncoder;
use pairguard_data::images;
use pairguard_model::{Device, GuardModel};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifyConfig {
    /// Least cosine similarity between the encoder's embeddings of the original and the edit.
    pub min_cosine: f64,
    /// Least distance of each member's score from the verifier's threshold, on its side.
    pub margin: f64,
    /// Largest mean change outside the editor's mask, in 8-bit levels.
    pub max_outside_change: f64,
    /// Resize an edit of another size to the original's (Lanczos) instead of rejecting it.
    pub resize: bool,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig { min_cosine: 0.8, margin: 0.05, max_outside_change: 2.0, resize: false }
    }
}

impl VerifyConfig {
    pub fn check(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(m.into()));
        if !(-1.0..=1.0).contains(&self.min_cosine) {
            return bad("--min-cosine must be in [-1, 1]");
        }
        if !(0.0..0.5).contains(&self.margin) {
            return bad("--margin must be in [0, 0.5)");
        }
        if self.max_outside_change.is_nan() || self.max_outside_change < 0.0 {
            return bad("--max-outside-change must be a non-negative number of levels");
        }
        Ok(())
    }
}

/// The checks' findings for one edit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Why the pair is rejected; empty when it is kept.
    pub reasons: Vec<String>,
    pub cosine: Option<f64>,
    /// The verifier's calibrated scores of the original and the edit.
    pub scores: Option<(f64, f64)>,
    /// Mean absolute change outside the mask, in 8-bit levels.
    pub outside_change: Option<f64>,
}

impl Verdict {
    /// Whether the edit decoded as an image.
    pub fn decoded(&self) -> bool {
        !self.reasons.iter().any(|r| Check::of(r) == Check::Decodes)
    }
}

/// The check a rejection reason comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Check {
    Decodes,
    Size,
    Differs,
    OutsideMask,
    Cosine,
    LabelFlip,
    /// A reason no check here writes (a record of another version).
    Other,
}

impl Check {
    /// The check behind a reason [`Verifier::judge`] wrote.
    pub fn of(reason: &str) -> Check {
        const PREFIXES: [(&str, Check); 8] = [
            ("undecodable", Check::Decodes),
            ("size", Check::Size),
            ("identical", Check::Differs),
            ("mask size", Check::OutsideMask),
            ("changed outside", Check::OutsideMask),
            ("content changed", Check::Cosine),
            ("label not flipped", Check::LabelFlip),
            ("verifier", Check::LabelFlip),
        ];
        PREFIXES.iter().find(|(p, _)| reason.starts_with(p)).map_or(Check::Other, |&(_, c)| c)
    }

    pub fn name(self) -> &'static str {
        match self {
            Check::Decodes => "decodes",
            Check::Size => "size",
            Check::Differs => "differs from the original",
            Check::OutsideMask => "nothing outside the mask",
            Check::Cosine => "encoder cosine",
            Check::LabelFlip => "label flipped (verifier)",
            Check::Other => "other",
        }
    }
}

/// A trained guard and its encoder, judging edits.
#[derive(Debug)]
pub struct Verifier<'a> {
    guard: &'a GuardModel,
    encoder: &'a ImageEncoder,
    cfg: VerifyConfig,
    device: Device,
}

impl<'a> Verifier<'a> {
    pub fn new(guard: &'a GuardModel, encoder: &'a ImageEncoder, cfg: VerifyConfig, device: Device) -> Result<Self> {
        cfg.check()?;
        guard.card.encoder.ensure_matches(&encoder.id, "the verifier guard's encoder")?;
        Ok(Verifier { guard, encoder, cfg, device })
    }

    /// Judges `edited` (encoded bytes) as the counterfactual of `original`,
    /// labelled `original_unsafe`. Returns the edit as decoded (and resized)
    /// when it decodes.
    pub fn judge(
        &self,
        original: &RgbImage,
        original_unsafe: bool,
        edited: &[u8],
        mask: Option<&image::GrayImage>,
        max_pixels: u64,
    ) -> (Verdict, Option<RgbImage>) {
        let mut v = Verdict { reasons: Vec::new(), cosine: None, scores: None, outside_change: None };
        let img = match images::decode(&pairguard_data::ImageRef::Bytes { bytes: edited.into(), name: None }, max_pixels) {
            Ok(i) => i.to_rgb8(),
            Err(e) => {
                v.reasons.push(format!("undecodable: {e}"));
                return (v, None);
            }
        };
        let (w, h) = original.dimensions();
        let img = if img.dimensions() == (w, h) {
            img
        } else if self.cfg.resize {
            image::imageops::resize(&img, w, h, image::imageops::FilterType::Lanczos3)
        } else {
            v.reasons.push(format!("size {}x{}, the original is {w}x{h}", img.width(), img.height()));
            return (v, Some(img));
        };
        if img == *original {
            v.reasons.push("identical to the original".into());
            return (v, Some(img));
        }
        if let Some(m) = mask {
            if m.dimensions() != (w, h) {
                v.reasons.push(format!("mask size {}x{}, the image is {w}x{h}", m.width(), m.height()));
            } else {
                let (mut sum, mut n) = (0u64, 0u64);
                for ((a, b), m) in original.pixels().zip(img.pixels()).zip(m.pixels()) {
                    if m.0[0] == 0 {
                        sum += a.0.iter().zip(b.0).map(|(x, y)| u64::from(x.abs_diff(y))).sum::<u64>();
                        n += 3;
                    }
                }
                let change = if n == 0 { 0.0 } else { sum as f64 / n as f64 };
                v.outside_change = Some(change);
                if change > self.cfg.max_outside_change {
                    v.reasons.push(format!("changed outside the editor's mask: mean {change:.2} levels > {}", self.cfg.max_outside_change));
                }
            }
        }
        let pre = &self.encoder.preprocessor;
        let mut pixels = pre.pixels(&DynamicImage::ImageRgb8(original.clone()));
        pixels.extend(pre.pixels(&DynamicImage::ImageRgb8(img.clone())));
        let x = self.encoder.embed_pixels(pixels, 2);
        let d = x.len() / 2;
        let (a, b) = x.split_at(d);
        let dot: f64 = a.iter().zip(b).map(|(p, q)| f64::from(*p) * f64::from(*q)).sum();
        let norm = |u: &[f32]| u.iter().map(|p| f64::from(*p).powi(2)).sum::<f64>().sqrt().max(1e-12);
        let cosine = dot / (norm(a) * norm(b));
        v.cosine = Some(cosine);
        if cosine < self.cfg.min_cosine {
            v.reasons.push(format!("content changed: encoder cosine {cosine:.4} < {}", self.cfg.min_cosine));
        }
        match self.guard.probabilities(&x, &self.device) {
            Ok((p, _)) => {
                let (thr, m) = (self.guard.card.threshold, self.cfg.margin);
                v.scores = Some((p[0], p[1]));
                let (unsafe_score, safe_score) = if original_unsafe { (p[0], p[1]) } else { (p[1], p[0]) };
                if unsafe_score < thr + m || safe_score > thr - m {
                    v.reasons.push(format!(
                        "label not flipped: the verifier scores the unsafe member {unsafe_score:.4} and the safe one {safe_score:.4} (threshold {thr:.4}, margin {m})"
                    ));
                }
            }
            Err(e) => v.reasons.push(format!("verifier: {e}")),
        }
        (v, Some(img))
    }
}
