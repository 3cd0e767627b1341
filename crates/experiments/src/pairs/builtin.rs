//! The synthetic benchmark's editor: it draws the image again from its
//! parameters in `images-truth.json`, with the dark cross added or removed.
//! By default it is an oracle (an edit changes exactly the harmful feature,
//! and it returns the cross as its mask); its [`Realism`] settings make it
//! fail the way real editors do, and each edit then carries the truth of
//! what happened ([`EditTruth`]), so verification can be scored.

use std::path::Path;

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};
use pairguard_data::Direction;
use pairguard_data::seed::derive_seed;
use pairguard_data::synthetic::ImagesTruth;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::editor::{EditRequest, Edited, Editor};
use crate::error::{Error, Result};
use crate::remote::RequestError;

/// How often the built-in editor falls short of an oracle. Each edit draws
/// at most one defect, from its request's seed, with these probabilities
/// (their sum at most 1); the rest are exact.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Realism {
    /// The edit barely touches the feature: the cross ends at 0-10% of
    /// its contrast when it was to be drawn, 90-100% when it was to be
    /// erased. Nothing else changes; only the verifier can tell.
    pub fail: f64,
    /// The feature is half-drawn or half-erased: the cross ends at 25-75%
    /// of its contrast, so the label flips only about half the time.
    pub partial: f64,
    /// The feature is edited exactly, and pixels outside it change too: a
    /// colour shift, a blur of the whole image, or a second object.
    pub outside: f64,
    /// The feature is edited exactly and the image comes back at 1.5 times
    /// the size.
    pub resize: f64,
    /// Whether the editor returns the cross as its mask. Image-edit APIs
    /// mostly return none, which leaves the outside-change check idle.
    pub mask: bool,
}

impl Default for Realism {
    fn default() -> Self {
        Realism { fail: 0.0, partial: 0.0, outside: 0.0, resize: 0.0, mask: true }
    }
}

impl Realism {
    pub fn check(&self) -> Result<()> {
        let p = [self.fail, self.partial, self.outside, self.resize];
        if p.iter().any(|p| !(0.0..=1.0).contains(p)) || p.iter().sum::<f64>() > 1.0 + 1e-9 {
            return Err(Error::Config(format!(
                "the synthetic editor's realism: fail {}, partial {}, outside {} and resize {} must be probabilities summing to at most 1",
                self.fail, self.partial, self.outside, self.resize
            )));
        }
        Ok(())
    }
}

/// What an edit of the built-in editor really did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Defect {
    Exact,
    Fail,
    Partial,
    Outside,
    Resize,
}

impl Defect {
    pub fn name(self) -> &'static str {
        match self {
            Defect::Exact => "exact",
            Defect::Fail => "fail",
            Defect::Partial => "partial",
            Defect::Outside => "outside",
            Defect::Resize => "resize",
        }
    }
}

/// The truth of one edit, known to the built-in editor alone.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditTruth {
    pub defect: Defect,
    /// The cross's contrast in the edit, as a share of the benchmark's.
    /// The image is unsafe when it is at least half.
    pub strength: f64,
    /// Whether the edit's true label is the opposite of the source's.
    pub flipped: bool,
    /// Whether every pixel outside the cross is as the source's (at the
    /// edit's own size).
    pub only_feature: bool,
}

impl EditTruth {
    /// A counterfactual pair: the label flipped and nothing else changed.
    pub fn is_pair(&self) -> bool {
        self.flipped && self.only_feature
    }
}

#[derive(Debug)]
pub struct SyntheticEditor {
    truth: ImagesTruth,
    realism: Realism,
}

impl SyntheticEditor {
    pub fn new(truth: &Path, realism: Realism) -> Result<Self> {
        realism.check()?;
        Ok(SyntheticEditor { truth: ImagesTruth::from_file(truth)?, realism })
    }

    /// The edit of `id` towards `harmful`, drawn from `seed`: the image and what it is.
    fn draw(&self, t: &pairguard_data::synthetic::ImageTruth, harmful: bool, seed: u64) -> (RgbImage, EditTruth) {
        let r = &self.realism;
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, "synthetic-editor"));
        let u: f64 = rng.random();
        let defect = [(Defect::Fail, r.fail), (Defect::Partial, r.partial), (Defect::Outside, r.outside), (Defect::Resize, r.resize)]
            .into_iter()
            .scan(0.0, |acc, (d, p)| {
                *acc += p;
                Some((d, *acc))
            })
            .find(|&(_, upto)| u < upto)
            .map_or(Defect::Exact, |(d, _)| d);
        let target = if harmful { 1.0 } else { 0.0 };
        let strength = match defect {
            Defect::Fail => (1.0 - target) + (2.0 * target - 1.0) * rng.random_range(0.0..0.1),
            Defect::Partial => rng.random_range(0.25..0.75),
            _ => target,
        };
        let mut img = self.truth.render_cross(t, strength);
        let only_feature = defect != Defect::Outside;
        match defect {
            Defect::Outside => outside_change(&mut img, &mut rng),
            Defect::Resize => img = imageops::resize(&img, img.width() * 3 / 2, img.height() * 3 / 2, FilterType::Lanczos3),
            _ => {}
        }
        let flipped = (strength >= 0.5) == harmful;
        (img, EditTruth { defect, strength, flipped, only_feature })
    }
}

/// One of three changes outside the feature, chosen by `rng`.
fn outside_change(img: &mut RgbImage, rng: &mut ChaCha8Rng) {
    match rng.random_range(0..3) {
        0 => {
            let shift: [i16; 3] = std::array::from_fn(|_| rng.random_range(-24..=24));
            for p in img.pixels_mut() {
                p.0 = std::array::from_fn(|c| (i16::from(p.0[c]) + shift[c]).clamp(0, 255) as u8);
            }
        }
        1 => *img = imageops::blur(img, 1.0),
        _ => {
            let colour = Rgb(std::array::from_fn(|_| rng.random()));
            let (x0, y0) = (rng.random_range(0..img.width() - 8), rng.random_range(0..img.height() - 8));
            for y in y0..y0 + 8 {
                for x in x0..x0 + 8 {
                    img.put_pixel(x, y, colour);
                }
            }
        }
    }
}

impl Editor for SyntheticEditor {
    fn describe(&self) -> String {
        let r = &self.realism;
        if *r == Realism::default() {
            "synthetic (draws or erases the dark cross)".into()
        } else {
            format!(
                "synthetic (draws or erases the dark cross; fails {}, partial {}, outside changes {}, resized {}, {})",
                r.fail,
                r.partial,
                r.outside,
                r.resize,
                if r.mask { "returns its mask" } else { "no mask" }
            )
        }
    }

    fn edit(&self, r: &EditRequest) -> std::result::Result<Edited, RequestError> {
        let t = self
            .truth
            .images
            .get(&r.id)
            .ok_or_else(|| RequestError::fatal("unknown image", format!("{} is not a synthetic benchmark image", r.id)))?;
        let harmful = r.direction == Direction::Add;
        if t.harmful == harmful {
            let has = if t.harmful { "already has" } else { "has no" };
            return Err(RequestError::fatal("nothing to edit", format!("{} {has} the cross to {}", r.id, r.direction.name())));
        }
        let (img, truth) = self.draw(t, harmful, r.seed);
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).map_err(|e| RequestError::fatal("encode", e.to_string()))?;
        let mask = self.realism.mask.then(|| {
            let m = ImagesTruth::feature_mask();
            if img.dimensions() == m.dimensions() { m } else { imageops::resize(&m, img.width(), img.height(), FilterType::Nearest) }
        });
        Ok(Edited { image: png.into_inner(), mask, cost: None, truth: Some(truth) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn editor(dir: &Path, realism: Realism) -> SyntheticEditor {
        let truth = dir.join("images-truth.json");
        if !truth.exists() {
            use pairguard_data::synthetic::{Benchmark, SyntheticConfig};
            let cfg = SyntheticConfig { images: 20, coarse_images: 40, ..SyntheticConfig::tiny() };
            Benchmark::generate(&cfg).unwrap().write(dir).unwrap();
        }
        SyntheticEditor::new(&truth, realism).unwrap()
    }

    #[test]
    fn defects_come_at_their_rates_and_their_truth_says_what_they_did() {
        let dir = tempfile::tempdir().unwrap();
        let ed = editor(dir.path(), Realism { fail: 0.2, partial: 0.2, outside: 0.2, resize: 0.2, mask: true });
        let t = *ed.truth.images.values().find(|t| !t.harmful).unwrap();
        let mut counts = std::collections::BTreeMap::new();
        for seed in 0..2000u64 {
            let (img, truth) = ed.draw(&t, true, seed);
            *counts.entry(truth.defect).or_insert(0usize) += 1;
            match truth.defect {
                Defect::Exact => {
                    assert_eq!(img, ed.truth.render(&t, true));
                    assert!(truth.is_pair());
                }
                Defect::Fail => {
                    assert!(truth.strength < 0.1 && !truth.flipped && truth.only_feature, "{truth:?}");
                    assert_ne!(img, ed.truth.render(&t, true));
                }
                Defect::Partial => {
                    assert!((0.25..0.75).contains(&truth.strength));
                    assert_eq!(truth.flipped, truth.strength >= 0.5);
                }
                Defect::Outside => {
                    assert!(truth.flipped && !truth.only_feature);
                    let exact = ed.truth.render(&t, true);
                    let mask = ImagesTruth::feature_mask();
                    let outside = img.pixels().zip(exact.pixels()).zip(mask.pixels()).filter(|((a, b), m)| m.0[0] == 0 && a != b).count();
                    assert!(outside > 20, "{outside} pixels outside the cross changed");
                }
                Defect::Resize => {
                    assert_eq!(img.dimensions(), (48, 48));
                    assert!(truth.is_pair());
                }
            }
        }
        assert_eq!(counts.len(), 5);
        for (d, n) in &counts {
            assert!(n.abs_diff(400) < 80, "{d:?}: {n} of 2000 edits, 400 expected");
        }
        // Draws depend on the seed alone.
        assert_eq!(ed.draw(&t, true, 7).0, ed.draw(&t, true, 7).0);
    }

    #[test]
    fn the_default_editor_is_an_oracle_and_bad_rates_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ed = editor(dir.path(), Realism::default());
        for (_, t) in ed.truth.images.iter().take(10) {
            let (img, truth) = ed.draw(t, !t.harmful, 3);
            assert_eq!(img, ed.truth.render(t, !t.harmful));
            assert_eq!(truth, EditTruth { defect: Defect::Exact, strength: if t.harmful { 0.0 } else { 1.0 }, flipped: true, only_feature: true });
        }
        let truth = dir.path().join("images-truth.json");
        for bad in [Realism { fail: 0.6, partial: 0.6, ..Realism::default() }, Realism { resize: -0.1, ..Realism::default() }] {
            let e = SyntheticEditor::new(&truth, bad).unwrap_err().to_string();
            assert!(e.contains("probabilities summing to at most 1"), "{e}");
        }
    }
}
