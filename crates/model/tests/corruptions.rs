//! Corruptions against Pillow's at the same settings
//! (tests/fixtures/corruptions/gen_corruption_fixtures.py), within these
//! tolerances, in 8-bit levels over all pixels and channels:
//!
//! | corruption | mean difference at most | largest at most | measured (mean, largest) |
//! |---|---|---|---|
//! | JPEG, quality 75/50/25/10 | 2.5 | 64 | 1.7-2.1, 30-56 |
//! | Gaussian blur, sigma 1/2/4 | 1.0 | 24 | 0.5-0.7, 6-20 |
//! | rescale by 0.5/0.25/0.125 and back | 0.5 | 3 | 0.2-0.35, 2 |
//!
//! and JPEG degrades the image as much as Pillow's does: the mean change
//! from the source within 5% of Pillow's (measured within 2.4%). The
//! encoders and decoders (jpeg-encoder and zune-jpeg against libjpeg, whose
//! decoder upsamples chroma differently), the blur kernels (a Gaussian
//! against Pillow's extended box approximation) and the bilinear filters
//! are different implementations: they agree on average, not pixel for
//! pixel.

use std::path::{Path, PathBuf};

use pairguard_model::robust::corruption::Corruption;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corruptions")
}

/// Mean and largest absolute difference, in levels.
fn difference(a: &image::RgbImage, b: &image::RgbImage) -> (f64, u8) {
    assert_eq!(a.dimensions(), b.dimensions());
    let d: Vec<u8> = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| x.abs_diff(*y)).collect();
    (d.iter().map(|&v| f64::from(v)).sum::<f64>() / d.len() as f64, d.iter().copied().max().unwrap_or(0))
}

#[test]
fn corruptions_agree_with_pillow_within_the_stated_tolerances() {
    let source = image::open(fixtures().join("source.png")).unwrap();
    let cases: Vec<(Corruption, String, f64, u8)> = [75u8, 50, 25, 10]
        .into_iter()
        .map(|quality| (Corruption::Jpeg { quality }, format!("jpeg-{quality}"), 2.5, 64))
        .chain([1.0f32, 2.0, 4.0].into_iter().map(|sigma| (Corruption::Blur { sigma }, format!("blur-{sigma}"), 1.0, 24)))
        .chain([0.5f32, 0.25, 0.125].into_iter().map(|factor| (Corruption::Rescale { factor }, format!("rescale-{factor}"), 0.5, 3)))
        .collect();
    for (corruption, name, mean_tol, max_tol) in cases {
        let want = image::open(fixtures().join(format!("{name}.png"))).unwrap().to_rgb8();
        let got = corruption.apply(&source, 0).unwrap();
        let (mean, max) = difference(&got, &want);
        // How far the corruption moved the image, for scale.
        let (moved, _) = difference(&want, &source.to_rgb8());
        eprintln!("{name}: mean {mean:.3} levels, largest {max} (Pillow's moved the image by {moved:.2} on average)");
        assert!(mean <= mean_tol && max <= max_tol, "{name}: mean {mean:.3} (at most {mean_tol}), largest {max} (at most {max_tol})");
        assert!(mean < moved, "{name}: closer to Pillow's corruption than the corruption is to the source");
        if let Corruption::Jpeg { .. } = corruption {
            let (ours, _) = difference(&got, &source.to_rgb8());
            assert!((ours / moved - 1.0).abs() <= 0.05, "{name}: moves the image by {ours:.2} levels, Pillow's by {moved:.2}");
        }
    }
}

#[test]
fn jpeg_refuses_what_the_format_cannot_hold() {
    let wide = image::DynamicImage::ImageRgb8(image::RgbImage::new(70_000, 1));
    let e = Corruption::Jpeg { quality: 50 }.apply(&wide, 0).unwrap_err().to_string();
    assert!(e.contains("70000x1") && e.contains("65535"), "{e}");
}
