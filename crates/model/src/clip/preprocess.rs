//! CLIP's reference preprocessing: convert to RGB, resize the shorter side
//! to the target with Pillow's antialiased bicubic (reimplemented here in
//! its exact fixed-point form, since general-purpose resizers differ from it
//! by several 8-bit levels), centre
//! crop with torchvision's rounding of the offset, scale to [0, 1] and
//! normalise with CLIP's mean and standard deviation.

use image::{DynamicImage, RgbImage};

// CLIP's published constants, digit for digit, though f32 cannot hold them all.
#[allow(clippy::excessive_precision)]
pub const CLIP_MEAN: [f32; 3] = [0.48145466, 0.4578275, 0.40821073];
#[allow(clippy::excessive_precision)]
pub const CLIP_STD: [f32; 3] = [0.26862954, 0.26130258, 0.27577711];

#[derive(Debug, Clone, PartialEq)]
pub struct Preprocessor {
    pub size: usize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

/// Python's round(): halves go to the even neighbour.
fn round_half_even(x: f64) -> i64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && (r as i64) % 2 != 0 { (r - x.signum()) as i64 } else { r as i64 }
}

impl Preprocessor {
    pub fn clip(size: usize) -> Self {
        Preprocessor { size, mean: CLIP_MEAN, std: CLIP_STD }
    }

    /// Recorded in embedding stores: changing the pipeline changes this.
    pub fn version(&self) -> String {
        format!("clip-bicubic-v1-{}", self.size)
    }

    /// The resized and cropped 8-bit image, before normalisation.
    pub fn resize_crop(&self, img: &DynamicImage) -> RgbImage {
        let rgb = img.to_rgb8();
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        let s = self.size;
        // torchvision Resize(int): the short side becomes `s`, the long side
        // int(s * long / short), truncated.
        let (nw, nh) = if w <= h { (s, (s as f64 * h as f64 / w as f64) as usize) } else { ((s as f64 * w as f64 / h as f64) as usize, s) };
        let resized = if (nw, nh) == (w, h) {
            rgb
        } else {
            pil_bicubic(&rgb, nw, nh)
        };
        let top = round_half_even((nh as f64 - s as f64) / 2.0).max(0) as u32;
        let left = round_half_even((nw as f64 - s as f64) / 2.0).max(0) as u32;
        image::imageops::crop_imm(&resized, left, top, s as u32, s as u32).to_image()
    }

    /// Normalised CHW floats `[3, size, size]`.
    pub fn pixels(&self, img: &DynamicImage) -> Vec<f32> {
        let crop = self.resize_crop(img);
        let s = self.size;
        let mut out = vec![0f32; 3 * s * s];
        for (i, p) in crop.pixels().enumerate() {
            for c in 0..3 {
                out[c * s * s + i] = (f32::from(p.0[c]) / 255.0 - self.mean[c]) / self.std[c];
            }
        }
        out
    }
}

/// PIL's bicubic kernel (a = -0.5), support 2.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Fixed-point precision of PIL's 8-bit resampling.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Per output position: first input index and integer weights, computed as
/// PIL's `precompute_coeffs` + `normalize_coeffs_8bpc` do. Downscaling
/// widens the kernel by the scale factor (antialiasing).
fn coefficients(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            // C casts truncate toward zero.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let w: Vec<f64> = (xmin..xmax).map(|x| bicubic((x as f64 - center + 0.5) * ss)).collect();
            let total: f64 = w.iter().sum();
            let k = w
                .iter()
                .map(|&v| {
                    let v = if total != 0.0 { v / total } else { v };
                    let scaled = v * f64::from(1u32 << PRECISION_BITS);
                    (if scaled < 0.0 { scaled - 0.5 } else { scaled + 0.5 }) as i32
                })
                .collect();
            (xmin, k)
        })
        .collect()
}

fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// PIL's `Image.resize(..., BICUBIC)` on RGB8: a horizontal pass into an
/// 8-bit intermediate, then a vertical pass, each skipped when that axis
/// keeps its size. Bit-exact with Pillow's 8-bit path by construction.
pub fn pil_bicubic(src: &RgbImage, out_w: usize, out_h: usize) -> RgbImage {
    let (w, h) = (src.width() as usize, src.height() as usize);
    let data = src.as_raw();
    let horizontal = if out_w != w {
        let kx = coefficients(w, out_w);
        let mut out = vec![0u8; out_w * h * 3];
        for y in 0..h {
            let row = &data[y * w * 3..(y + 1) * w * 3];
            for (xx, (xmin, k)) in kx.iter().enumerate() {
                for c in 0..3 {
                    let mut acc: i64 = 1 << (PRECISION_BITS - 1);
                    for (j, &kv) in k.iter().enumerate() {
                        acc += i64::from(row[(xmin + j) * 3 + c]) * i64::from(kv);
                    }
                    out[(y * out_w + xx) * 3 + c] = clip8(acc);
                }
            }
        }
        out
    } else {
        data.clone()
    };
    let vertical = if out_h != h {
        let ky = coefficients(h, out_h);
        let mut out = vec![0u8; out_w * out_h * 3];
        for (yy, (ymin, k)) in ky.iter().enumerate() {
            for x in 0..out_w * 3 {
                let mut acc: i64 = 1 << (PRECISION_BITS - 1);
                for (j, &kv) in k.iter().enumerate() {
                    acc += i64::from(horizontal[(ymin + j) * out_w * 3 + x]) * i64::from(kv);
                }
                out[yy * out_w * 3 + x] = clip8(acc);
            }
        }
        out
    } else {
        horizontal
    };
    RgbImage::from_raw(out_w as u32, out_h as u32, vertical).expect("buffer matches size")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_rounding() {
        assert_eq!(round_half_even(0.5), 0);
        assert_eq!(round_half_even(1.5), 2);
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(round_half_even(2.4), 2);
        assert_eq!(round_half_even(80.0), 80);
    }
}
