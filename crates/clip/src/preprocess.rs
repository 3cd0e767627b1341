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

/// What [`Preprocessor::version`] starts with.
const VERSION_PREFIX: &str = "clip-bicubic-v1-";

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
        format!("{VERSION_PREFIX}{}", self.size)
    }

    /// The preprocessing a [`Self::version`] names; None for another pipeline.
    pub fn from_version(version: &str) -> Option<Self> {
        version.strip_prefix(VERSION_PREFIX).and_then(|s| s.parse().ok()).map(Self::clip)
    }

    /// The resize and crop, in words, for those who reimplement it.
    pub fn resize_rule(&self) -> String {
        format!("RGB; shorter side to {0} with Pillow's antialiased bicubic; centre crop {0}x{0}", self.size)
    }

    /// The resized and cropped 8-bit image, before normalisation.
    ///
    /// Only the crop window of the resized image is computed: each output
    /// pixel of PIL's resize depends on its own position alone, so this is
    /// exactly a full resize followed by the crop, without allocating the
    /// resized image (a 100000 x 2 panorama would resize to 11.2 million x
    /// 224 pixels).
    pub fn resize_crop(&self, img: &DynamicImage) -> RgbImage {
        let rgb = img.to_rgb8();
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        let s = self.size;
        // torchvision Resize(int): the short side becomes `s`, the long side
        // int(s * long / short), truncated.
        let (nw, nh) = if w <= h { (s, (s as f64 * h as f64 / w as f64) as usize) } else { ((s as f64 * w as f64 / h as f64) as usize, s) };
        let top = round_half_even((nh as f64 - s as f64) / 2.0).max(0) as usize;
        let left = round_half_even((nw as f64 - s as f64) / 2.0).max(0) as usize;
        pil_bicubic_window(&rgb, (nw, nh), (left, top), (s.min(nw), s.min(nh)))
    }

    /// Normalised CHW floats `[3, size, size]`.
    pub fn pixels(&self, img: &DynamicImage) -> Vec<f32> {
        let mut out = self.unit_pixels(img);
        let plane = self.size * self.size;
        for (i, v) in out.iter_mut().enumerate() {
            let c = i / plane;
            *v = (*v - self.mean[c]) / self.std[c];
        }
        out
    }

    /// CHW floats `[3, size, size]` in [0, 1], before normalisation (where
    /// attacks in 8-bit units perturb images).
    pub fn unit_pixels(&self, img: &DynamicImage) -> Vec<f32> {
        let crop = self.resize_crop(img);
        let s = self.size;
        let mut out = vec![0f32; 3 * s * s];
        for (i, p) in crop.pixels().enumerate() {
            for c in 0..3 {
                out[c * s * s + i] = f32::from(p.0[c]) / 255.0;
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

/// First input index and integer weights of output positions `window` of a
/// resize from `in_size` to `out_size`, computed as PIL's `precompute_coeffs`
/// and `normalize_coeffs_8bpc` do. Downscaling widens the kernel by the
/// scale factor (antialiasing).
fn coefficients(in_size: usize, out_size: usize, window: std::ops::Range<usize>) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    window
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

/// The window at `origin` of size `window` of PIL's `Image.resize(size,
/// BICUBIC)` on RGB8: a horizontal pass into an 8-bit intermediate, then a
/// vertical pass, each skipped when that axis keeps its size. Bit-exact with
/// Pillow's 8-bit path by construction.
pub fn pil_bicubic_window(src: &RgbImage, size: (usize, usize), origin: (usize, usize), window: (usize, usize)) -> RgbImage {
    let (w, h) = (src.width() as usize, src.height() as usize);
    let ((out_w, out_h), (left, top), (ww, wh)) = (size, origin, window);
    let data = src.as_raw();
    // The vertical pass's taps for the window's rows, and the input rows they read.
    let ky = (out_h != h).then(|| coefficients(h, out_h, top..top + wh));
    let rows: std::ops::Range<usize> = match &ky {
        Some(ky) => {
            let lo = ky.iter().map(|(m, _)| *m).min().unwrap_or(0);
            let hi = ky.iter().map(|(m, k)| m + k.len()).max().unwrap_or(0);
            lo..hi
        }
        None => top..top + wh,
    };
    // Horizontal pass over those rows only: [rows, ww, 3].
    let horizontal: Vec<u8> = if out_w != w {
        let kx = coefficients(w, out_w, left..left + ww);
        let mut out = vec![0u8; rows.len() * ww * 3];
        for (yi, y) in rows.clone().enumerate() {
            let row = &data[y * w * 3..(y + 1) * w * 3];
            for (xx, (xmin, k)) in kx.iter().enumerate() {
                for c in 0..3 {
                    let mut acc: i64 = 1 << (PRECISION_BITS - 1);
                    for (j, &kv) in k.iter().enumerate() {
                        acc += i64::from(row[(xmin + j) * 3 + c]) * i64::from(kv);
                    }
                    out[(yi * ww + xx) * 3 + c] = clip8(acc);
                }
            }
        }
        out
    } else {
        rows.clone().flat_map(|y| data[(y * w + left) * 3..(y * w + left + ww) * 3].iter().copied()).collect()
    };
    let vertical = match ky {
        Some(ky) => {
            let mut out = vec![0u8; ww * wh * 3];
            for (yy, (ymin, k)) in ky.iter().enumerate() {
                for x in 0..ww * 3 {
                    let mut acc: i64 = 1 << (PRECISION_BITS - 1);
                    for (j, &kv) in k.iter().enumerate() {
                        acc += i64::from(horizontal[(ymin + j - rows.start) * ww * 3 + x]) * i64::from(kv);
                    }
                    out[yy * ww * 3 + x] = clip8(acc);
                }
            }
            out
        }
        None => horizontal,
    };
    RgbImage::from_raw(ww as u32, wh as u32, vertical).expect("buffer matches size")
}

/// PIL's `Image.resize((out_w, out_h), BICUBIC)` on RGB8, whole.
pub fn pil_bicubic(src: &RgbImage, out_w: usize, out_h: usize) -> RgbImage {
    pil_bicubic_window(src, (out_w, out_h), (0, 0), (out_w, out_h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_the_preprocessing_and_back() {
        let p = Preprocessor::clip(224);
        assert_eq!(Preprocessor::from_version(&p.version()), Some(p));
        assert_eq!(Preprocessor::from_version("clip-bicubic-v1-x"), None);
        assert_eq!(Preprocessor::from_version("none"), None);
    }

    #[test]
    fn python_rounding() {
        assert_eq!(round_half_even(0.5), 0);
        assert_eq!(round_half_even(1.5), 2);
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(round_half_even(2.4), 2);
        assert_eq!(round_half_even(80.0), 80);
    }

    fn test_image(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([x.wrapping_mul(7).wrapping_add(y * 3) as u8, x.wrapping_mul(y) as u8, 255u32.wrapping_sub(x * 5).wrapping_add(y) as u8])
        })
    }

    #[test]
    fn a_window_equals_the_same_part_of_the_whole_resize() {
        for (w, h, nw, nh) in [(97, 61, 301, 224), (400, 300, 224, 168), (50, 500, 224, 2240)] {
            let src = test_image(w, h);
            let whole = pil_bicubic(&src, nw, nh);
            let (left, top, ww, wh) = (nw / 3, nh / 4, nw / 2, nh / 2);
            let part = pil_bicubic_window(&src, (nw, nh), (left, top), (ww, wh));
            let want = image::imageops::crop_imm(&whole, left as u32, top as u32, ww as u32, wh as u32).to_image();
            assert_eq!(part, want, "{w}x{h} -> {nw}x{nh}");
        }
    }

    #[test]
    fn extreme_aspect_ratios_preprocess_without_the_full_resize() {
        // 100000 x 2 would resize to 11.2 million x 224 pixels (7.5 GB); only
        // the 224 x 224 crop is computed.
        let pre = Preprocessor::clip(224);
        let crop = pre.resize_crop(&DynamicImage::ImageRgb8(test_image(100_000, 2)));
        assert_eq!(crop.dimensions(), (224, 224));
        let crop = pre.resize_crop(&DynamicImage::ImageRgb8(test_image(2, 100_000)));
        assert_eq!(crop.dimensions(), (224, 224));
    }
}
