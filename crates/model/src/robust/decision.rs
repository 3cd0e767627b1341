//! A guard's verdict as a differentiable function of pixels.
//!
//! Attacks need one number per image whose sign is the guard's verdict:
//! the *decision logit* `z' = z / T - logit(threshold)`, where `z` is the
//! head's "unsafe" logit and `T` its temperature. `z' >= 0` exactly when the
//! calibrated probability reaches the threshold, so an attack succeeds when
//! the guard's own verdict changes, not when some uncalibrated argmax does.
//! As a two-class classifier the guard's logits are `[0, z']`.

use burn::tensor::{Device, Tensor, TensorData};
use image::DynamicImage;

use crate::error::{Error, Result};
use crate::guard::GuardModel;
use crate::head::{Affine, HeadBank};
use crate::normalize::NormKind;
use crate::train::affine;
use pairguard_clip::l2_rows;
use pairguard_clip::{ImageEncoder, Preprocessor};

/// Where an attack perturbs images, and the units of its epsilon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EpsUnit {
    /// The CLIP-normalised pixel tensor, bounded to (-3, 3), as UnsafeBench.
    #[default]
    Normalized,
    /// 8-bit levels: epsilon / 255 in [0, 1] pixel space, bounded to [0, 1].
    Pixel,
}

impl std::str::FromStr for EpsUnit {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "normalized" => Ok(EpsUnit::Normalized),
            "pixel" => Ok(EpsUnit::Pixel),
            _ => Err(Error::UnknownName { kind: "eps unit", name: s.into(), known: "normalized, pixel".into() }),
        }
    }
}

impl EpsUnit {
    pub fn name(self) -> &'static str {
        match self {
            EpsUnit::Normalized => "normalized",
            EpsUnit::Pixel => "pixel",
        }
    }

    /// The box images stay in.
    pub fn bounds(self) -> (f32, f32) {
        match self {
            EpsUnit::Normalized => (-3.0, 3.0),
            EpsUnit::Pixel => (0.0, 1.0),
        }
    }

    /// One unit of epsilon in the attacked space.
    pub fn scale(self) -> f64 {
        match self {
            EpsUnit::Normalized => 1.0,
            EpsUnit::Pixel => 1.0 / 255.0,
        }
    }

    /// One image in attack space `[3, s, s]`: normalised as the encoder
    /// takes it, or in [0, 1].
    pub fn pixels(self, pre: &Preprocessor, img: &DynamicImage) -> Vec<f32> {
        match self {
            EpsUnit::Normalized => pre.pixels(img),
            EpsUnit::Pixel => pre.unit_pixels(img),
        }
    }

    /// 8-bit RGB rows of one attack-space image `[3, s, s]`, for PNG.
    pub fn to_rgb8(self, image: &[f32], pre: &Preprocessor) -> Vec<u8> {
        let plane = pre.size * pre.size;
        (0..plane)
            .flat_map(|p| (0..3).map(move |c| (c, p)))
            .map(|(c, p)| {
                let v = image[c * plane + p];
                let unit = if self == EpsUnit::Pixel { v } else { v * pre.std[c] + pre.mean[c] };
                (unit.clamp(0.0, 1.0) * 255.0).round() as u8
            })
            .collect()
    }
}

/// A guard's head and calibration on one device, as a function of
/// embeddings.
#[derive(Debug)]
pub struct HeadDecision {
    bank: HeadBank,
    affine: Option<Affine>,
    row_l2: bool,
    temperature: f64,
    offset: f64,
}

impl HeadDecision {
    pub fn new(guard: &GuardModel, device: &Device) -> Self {
        let t = guard.card.threshold.clamp(1e-12, 1.0 - 1e-12);
        HeadDecision {
            bank: HeadBank::from_weights(&[&guard.head], device),
            affine: affine(&[&guard.norm], device),
            row_l2: guard.norm.kind != NormKind::None,
            temperature: guard.card.temperature,
            offset: (t / (1.0 - t)).ln(),
        }
    }

    /// The per-row step the head's input takes first (unit length, unless
    /// the guard uses raw embeddings): embedding-space perturbations are
    /// measured after it.
    pub fn row_step(&self, e: Tensor<2>) -> Tensor<2> {
        if self.row_l2 { l2_rows(e) } else { e }
    }

    /// Decision logits `[n]` of embeddings `[n, dim]` as the store holds them.
    pub fn on_embeddings(&self, e: Tensor<2>) -> Tensor<1> {
        self.after_row_step(self.row_step(e))
    }

    /// Decision logits of embeddings that already took [`Self::row_step`].
    pub fn after_row_step(&self, e: Tensor<2>) -> Tensor<1> {
        let n = e.dims()[0];
        let z = self.bank.forward(e, self.affine.as_ref(), None).narrow(2, 0, 1).reshape([n]);
        z.div_scalar(self.temperature).sub_scalar(self.offset)
    }

    /// For a linear head: the L2 norm of the decision logit's gradient with
    /// respect to the row-stepped embedding (`|w / std| / T`), which makes
    /// `|z'| / norm` the exact distance to the decision boundary.
    pub fn linear_gradient_norm(&self) -> Option<f64> {
        if self.bank.w2.is_some() || self.bank.readout != crate::head::Readout::Direct {
            return None;
        }
        let w = self.bank.w1.val().narrow(2, 0, 1);
        let w = match &self.affine {
            Some(a) => w * a.inv_std.clone(),
            None => w,
        };
        let norm = host(w.square().sum()).first().map_or(0.0, |v| f64::from(*v).sqrt());
        Some(norm / self.temperature)
    }
}

/// A guard with its encoder, on the encoder's device, as a function of
/// attack-space images.
#[derive(Debug)]
pub struct GuardDecision<'a> {
    encoder: &'a ImageEncoder,
    head: HeadDecision,
    unit: EpsUnit,
    mean: Tensor<4>,
    std: Tensor<4>,
}

impl<'a> GuardDecision<'a> {
    /// Fails when the encoder is not the one the guard was trained on, or
    /// cannot carry gradients to the images (the bf16 CPU path).
    pub fn new(guard: &GuardModel, encoder: &'a ImageEncoder, unit: EpsUnit) -> Result<Self> {
        guard.card.encoder.ensure_matches(&encoder.id, "this encoder (the guard was trained on the first)")?;
        if !encoder.differentiable() {
            return Err(Error::Device(format!(
                "attacks need gradients through the encoder, and its {} CPU path computes none: attack a guard trained on f32 or f16 embeddings",
                encoder.id.precision
            )));
        }
        let device = &encoder.device;
        let channel = |v: [f32; 3]| Tensor::<4>::from_data(TensorData::new(v.to_vec(), [1, 3, 1, 1]), device);
        let pre = &encoder.preprocessor;
        Ok(GuardDecision { encoder, head: HeadDecision::new(guard, device), unit, mean: channel(pre.mean), std: channel(pre.std) })
    }

    pub fn unit(&self) -> EpsUnit {
        self.unit
    }

    pub fn encoder(&self) -> &'a ImageEncoder {
        self.encoder
    }

    pub fn device(&self) -> &Device {
        &self.encoder.device
    }

    /// Decoded images in attack space `[n, 3, s, s]` on the device.
    pub fn images_of(&self, decoded: &[DynamicImage]) -> Tensor<4> {
        let pre = &self.encoder.preprocessor;
        self.images(decoded.iter().flat_map(|img| self.unit.pixels(pre, img)).collect(), decoded.len())
    }

    /// Attack-space images `[n, 3, s, s]` on the device, from host rows.
    pub fn images(&self, pixels: Vec<f32>, n: usize) -> Tensor<4> {
        let s = self.image_size();
        Tensor::from_data(TensorData::new(pixels, [n, 3, s, s]), self.device())
    }

    pub fn image_size(&self) -> usize {
        self.encoder.config.image_size
    }

    /// Decision logits `[b]` of attack-space images `[b, 3, s, s]`; on
    /// autodiff tensors, differentiable with respect to the images.
    pub fn decision(&self, images: Tensor<4>) -> Tensor<1> {
        let pixels = match self.unit {
            EpsUnit::Normalized => images,
            EpsUnit::Pixel => (images - self.mean.clone()) / self.std.clone(),
        };
        self.head.on_embeddings(self.encoder.embed(pixels))
    }

    /// Decision logits of images on the host, without a graph.
    pub fn decisions(&self, images: &Tensor<4>) -> Vec<f32> {
        host(self.decision(images.clone().without_autodiff()))
    }
}

/// A tensor's values on the host.
pub(crate) fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 after convert")
}
