//! Common corruptions, applied to the decoded image before preprocessing:
//! what a guard meets when images are re-encoded, resized or noisy.

use image::imageops::{self, FilterType};
use image::{DynamicImage, RgbImage};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A corruption at one severity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Corruption {
    /// Re-encoded as JPEG at this quality (1-100), as Pillow and libjpeg
    /// do by default: the IJG quantisation tables scaled by quality, and
    /// chroma subsampled 4:2:0.
    Jpeg { quality: u8 },
    /// Gaussian blur with this standard deviation in pixels.
    Blur { sigma: f32 },
    /// Scaled down by this factor (0-1) and back up, both bilinear.
    Rescale { factor: f32 },
    /// Gaussian noise on every channel, standard deviation in 8-bit levels.
    Noise { sigma: f32 },
}

impl Corruption {
    /// The default severities: mild to severe for each kind.
    /// The corruptions a list names: `kind:severity` items (see
    /// [`std::str::FromStr`]), `default` for [`Self::defaults`], or `none`.
    pub fn list(items: &[String]) -> Result<Vec<Corruption>> {
        match items {
            [d] if d == "default" => Ok(Corruption::defaults()),
            [none] if none == "none" => Ok(Vec::new()),
            items => items.iter().map(|c| c.parse()).collect(),
        }
    }

    pub fn defaults() -> Vec<Corruption> {
        let mut all: Vec<Corruption> = [75, 50, 25, 10].into_iter().map(|quality| Corruption::Jpeg { quality }).collect();
        all.extend([1.0, 2.0, 4.0].map(|sigma| Corruption::Blur { sigma }));
        all.extend([0.5, 0.25, 0.125].map(|factor| Corruption::Rescale { factor }));
        all.extend([8.0, 16.0, 32.0].map(|sigma| Corruption::Noise { sigma }));
        all
    }

    pub fn name(&self) -> &'static str {
        match self {
            Corruption::Jpeg { .. } => "jpeg",
            Corruption::Blur { .. } => "blur",
            Corruption::Rescale { .. } => "rescale",
            Corruption::Noise { .. } => "noise",
        }
    }

    /// The severity parameter (its meaning depends on the kind).
    pub fn severity(&self) -> f64 {
        match *self {
            Corruption::Jpeg { quality } => f64::from(quality),
            Corruption::Blur { sigma } | Corruption::Noise { sigma } => f64::from(sigma),
            Corruption::Rescale { factor } => f64::from(factor),
        }
    }

    /// The corrupted image; `seed` drives the noise. JPEG refuses an image
    /// with a side over 65,535 pixels, which the format cannot hold.
    pub fn apply(&self, image: &DynamicImage, seed: u64) -> Result<RgbImage> {
        let rgb = image.to_rgb8();
        Ok(match *self {
            Corruption::Jpeg { quality } => {
                let (w, h) = rgb.dimensions();
                let too_large = || Error::AttackOption {
                    option: "corruptions",
                    message: format!("jpeg cannot hold a {w}x{h} image (at most 65535 pixels a side)"),
                };
                let (w16, h16) = (u16::try_from(w).map_err(|_| too_large())?, u16::try_from(h).map_err(|_| too_large())?);
                let mut bytes = Vec::new();
                let mut encoder = jpeg_encoder::Encoder::new(&mut bytes, quality);
                encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
                encoder.encode(rgb.as_raw(), w16, h16, jpeg_encoder::ColorType::Rgb).expect("an RGB image of a valid size encodes into memory");
                image::load_from_memory(&bytes).expect("an image just encoded decodes").to_rgb8()
            }
            Corruption::Blur { sigma } => imageops::blur(&rgb, sigma),
            Corruption::Rescale { factor } => {
                let (w, h) = rgb.dimensions();
                let small = |v: u32| ((v as f32 * factor).round() as u32).max(1);
                let down = imageops::resize(&rgb, small(w), small(h), FilterType::Triangle);
                imageops::resize(&down, w, h, FilterType::Triangle)
            }
            Corruption::Noise { sigma } => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let normal = Normal::new(0.0f32, sigma).expect("sigma was checked");
                let mut out = rgb;
                out.iter_mut().for_each(|v| *v = (f32::from(*v) + normal.sample(&mut rng)).round().clamp(0.0, 255.0) as u8);
                out
            }
        })
    }

    pub fn check(&self) -> Result<()> {
        let ok = match *self {
            Corruption::Jpeg { quality } => (1..=100).contains(&quality),
            Corruption::Blur { sigma } | Corruption::Noise { sigma } => sigma > 0.0 && sigma.is_finite(),
            Corruption::Rescale { factor } => factor > 0.0 && factor < 1.0,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::AttackOption {
                option: "corruptions",
                message: format!("{} severity {} is out of range (jpeg 1-100, blur and noise > 0, rescale in (0, 1))", self.name(), self.severity()),
            })
        }
    }
}

impl std::str::FromStr for Corruption {
    type Err = Error;

    /// `kind:severity`, e.g. `jpeg:50`, `blur:2`, `rescale:0.25`, `noise:16`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |message: String| Error::AttackOption { option: "corruptions", message };
        let (kind, value) = s.split_once(':').ok_or_else(|| bad(format!("{s:?}: expected kind:severity, e.g. jpeg:50 or blur:2")))?;
        let number = |v: &str| v.parse::<f32>().map_err(|_| bad(format!("{s:?}: severity {v:?} is not a number")));
        let c = match kind {
            "jpeg" => Corruption::Jpeg { quality: value.parse().map_err(|_| bad(format!("{s:?}: JPEG quality is a whole number 1-100")))? },
            "blur" => Corruption::Blur { sigma: number(value)? },
            "rescale" => Corruption::Rescale { factor: number(value)? },
            "noise" => Corruption::Noise { sigma: number(value)? },
            _ => return Err(Error::UnknownName { kind: "corruption", name: kind.into(), known: "jpeg, blur, rescale, noise".into() }),
        };
        c.check()?;
        Ok(c)
    }
}
