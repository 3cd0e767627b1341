//! Attacks against foolbox 3's own results on the same model
//! (tests/fixtures/attacks/gen_attack_fixtures.py): a small seeded CLIP
//! vision tower and a fixed linear head on the unit-length embedding.

use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData};
use pairguard_clip::ImageEncoder;
use pairguard_model::head::{HeadKind, HeadWeights};
use pairguard_model::normalize::{FeatureNorm, NormKind};
use pairguard_model::robust::attack::{self, Attack};
use pairguard_model::robust::{EpsUnit, GuardDecision};
use pairguard_model::{Device, GuardModel};
use safetensors::SafeTensors;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

struct Fixture {
    bytes: Vec<u8>,
}

impl Fixture {
    fn load() -> Self {
        Fixture { bytes: std::fs::read(fixtures().join("attacks/attacks.safetensors")).unwrap() }
    }

    fn f32(&self, name: &str) -> (Vec<f32>, Vec<usize>) {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let t = st.tensor(name).unwrap();
        (t.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(), t.shape().to_vec())
    }

    fn labels(&self) -> Vec<bool> {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        st.tensor("labels").unwrap().data().chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) == 1).collect()
    }

    fn images(&self, name: &str, device: &Device) -> Tensor<4> {
        let (v, s) = self.f32(name);
        Tensor::from_data(TensorData::new(v, [s[0], s[1], s[2], s[3]]), device)
    }
}

/// The fixture's encoder and guard on `device`.
fn setup(fx: &Fixture, device: &Device) -> (ImageEncoder, GuardModel) {
    let encoder =
        ImageEncoder::load(&fixtures().join("../../../clip/tests/fixtures/clip/hf-quickgelu/model.safetensors"), None, false, device).unwrap();
    let (w, _) = fx.f32("w");
    let (b, _) = fx.f32("b");
    let head = HeadWeights { kind: HeadKind::Linear, input_dim: w.len(), outputs: 1, w1: w.clone(), b1: b, w2: None, b2: None, middle: Vec::new() };
    let norm = FeatureNorm { kind: NormKind::L2, ..FeatureNorm::identity(w.len()) };
    let guard = GuardModel::fixed(head, norm, encoder.id.clone(), 0.5).unwrap();
    (encoder, guard)
}

fn host(t: Tensor<4>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Runs every fixture comparison on one device.
pub fn matches_foolbox(device: &Device) {
    let fx = Fixture::load();
    let (encoder, guard) = setup(&fx, device);
    let labels = fx.labels();
    let seeds: Vec<u64> = (0..labels.len() as u64).collect();
    let target = GuardDecision::new(&guard, &encoder, EpsUnit::Normalized).unwrap();
    let x0 = fx.images("pixels", device);

    // The clean decisions are foolbox's logits: the guard is the same function.
    let (clean, _) = fx.f32("clean_z");
    let z = target.decisions(&x0);
    assert!(max_diff(&z, &clean) < 1e-5, "clean decision logits {z:?} vs {clean:?}");
    assert_eq!(z.iter().map(|&z| z > 0.0).collect::<Vec<_>>(), labels);

    // FGSM and PGD are foolbox's bit for bit (the README says identical).
    let fgsm = attack::run(&Attack::Fgsm, &target, &x0, &labels, &[0.05], &seeds).unwrap().remove(0);
    let (want, _) = fx.f32("fgsm");
    assert_eq!(host(fgsm.images.clone()), want, "FGSM images are foolbox's");
    assert!(fgsm.linf.iter().all(|&n| (n - 0.05).abs() < 1e-6), "FGSM moves every image by eps: {:?}", fgsm.linf);

    let pgd = Attack::Pgd { steps: 10, random_start: false, rel_stepsize: 0.01 / 0.3 };
    let out = attack::run(&pgd, &target, &x0, &labels, &[0.05], &seeds).unwrap().remove(0);
    let (want, _) = fx.f32("pgd10");
    assert_eq!(host(out.images), want, "PGD-10 images are foolbox's");

    // PGD from foolbox's own random start, with steps that reach the eps
    // boundary: the projection onto the ball is foolbox's too.
    let start = fx.images("pgd_rs_start", device);
    let out = attack::pgd_from(&target, &x0, &start, &labels, 0.01, 10, 0.25).unwrap();
    let (want, _) = fx.f32("pgd_rs");
    let got = host(out.images);
    assert_eq!(got, want, "PGD-10 from a random start is foolbox's");
    let (x0h, _) = fx.f32("pixels");
    let at_boundary = got.iter().zip(&x0h).filter(|(a, b)| ((*a - *b).abs() - 0.01).abs() < 1e-6).count();
    assert!(at_boundary * 10 > got.len() * 9, "{at_boundary} of {} coordinates on the eps boundary", got.len());
    let far = x0.clone() + Tensor::ones_like(&x0).mul_scalar(0.02);
    let err = attack::pgd_from(&target, &x0, &far, &labels, 0.01, 10, 0.25).unwrap_err().to_string();
    assert!(err.contains("within eps 0.01"), "{err}");

    // DeepFool is run once and clipped per eps: at an eps above every
    // perturbation the images are the unbounded result. Its norms agree
    // with foolbox's within 5e-7, 2 units in the last place at the images' scale
    // (the README's tolerance).
    let deepfool: Attack = "deepfool".parse().unwrap();
    let outs = attack::run(&deepfool, &target, &x0, &labels, &[1.0, 0.01], &seeds).unwrap();
    let (want_linf, _) = fx.f32("deepfool_linf");
    let err = max_diff(&outs[0].linf, &want_linf);
    eprintln!("DeepFool norms {:?} vs foolbox {want_linf:?}: largest difference {err:e}", outs[0].linf);
    assert!(err <= 5e-7, "DeepFool perturbation norms {:?} vs foolbox {want_linf:?}", outs[0].linf);
    let (raw, _) = fx.f32("deepfool");
    let err = max_diff(&host(outs[0].images.clone()), &raw);
    assert!(err <= 5e-7, "unbounded DeepFool images differ from foolbox's by {err:e}");
    assert!(outs[0].success.iter().all(|&s| s), "unbounded DeepFool flips every verdict");
    // Clipped to 0.01, both ways: an image flips exactly when foolbox's own
    // result clipped to 0.01 flips (some do, some do not).
    let (clip_z, _) = fx.f32("deepfool_clip_z");
    let flips: Vec<bool> = clip_z.iter().zip(&labels).map(|(&z, &l)| (z > 0.0) != l).collect();
    assert!(flips.contains(&true) && flips.contains(&false), "the fixture has both: {flips:?}");
    assert_eq!(outs[1].success, flips, "DeepFool clipped to 0.01 flips the images foolbox's clipped result flips");
    assert!(max_diff(&outs[1].decision, &clip_z) <= 5e-6, "{:?} vs {clip_z:?}", outs[1].decision);
    assert!(outs[1].linf.iter().all(|&n| n <= 0.01 + 1e-6));

    // Pixel units: [0, 1] images, CLIP normalisation inside the model, eps/255.
    let target = GuardDecision::new(&guard, &encoder, EpsUnit::Pixel).unwrap();
    let x01 = fx.images("pixels01", device);
    let out = attack::run(&Attack::Fgsm, &target, &x01, &labels, &[2.0 * EpsUnit::Pixel.scale()], &seeds).unwrap().remove(0);
    let (want, _) = fx.f32("fgsm_pixel");
    let got = host(out.images);
    assert_eq!(got, want, "pixel-unit FGSM images are foolbox's");
    assert!(got.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn attacks_match_foolbox_on_the_cpu() {
    matches_foolbox(&Device::flex());
}

#[test]
fn attacks_on_a_calibrated_guard_agree_with_its_predictions() {
    // A temperature and a threshold away from 0.5: an attack succeeds
    // exactly when the guard, as `predict` runs it on the attacked image,
    // gives the other verdict.
    let fx = Fixture::load();
    let device = Device::flex();
    let (encoder, mut guard) = setup(&fx, &device);
    guard.card.temperature = 0.4;
    guard.card.threshold = 0.3;
    let target = GuardDecision::new(&guard, &encoder, EpsUnit::Normalized).unwrap();
    let x0 = fx.images("pixels", &device);
    let b = x0.dims()[0];
    let verdicts = |images: &Tensor<4>| -> Vec<bool> {
        let e = encoder.embed_pixels(host(images.clone()), b);
        let (p, _) = guard.probabilities(&e, &device).unwrap();
        p.iter().map(|&p| p >= guard.card.threshold).collect()
    };
    let labels = verdicts(&x0);
    assert_eq!(target.decisions(&x0).iter().map(|&z| z >= 0.0).collect::<Vec<_>>(), labels, "clean decisions are the verdicts");
    let seeds: Vec<u64> = (0..b as u64).collect();
    let (mut flipped, mut held) = (0, 0);
    for attack in [Attack::Fgsm, Attack::Pgd { steps: 10, random_start: true, rel_stepsize: 0.1 }, "deepfool".parse().unwrap()] {
        for out in attack::run(&attack, &target, &x0, &labels, &[0.02, 0.1, 0.3], &seeds).unwrap() {
            let after = verdicts(&out.images);
            for i in 0..b {
                assert_eq!(out.success[i], after[i] != labels[i], "{}: image {i}, decision {}", attack.name(), out.decision[i]);
                if out.success[i] { flipped += 1 } else { held += 1 }
            }
        }
    }
    eprintln!("{flipped} attacked images flipped, {held} held");
    assert!(flipped > 5 && held > 5, "both outcomes occur: {flipped} flipped, {held} held");
}

#[test]
fn a_confident_guard_is_still_attacked() {
    // The fixture's head scaled 400x: |z'| reaches hundreds, where the
    // cross-entropy's derivative rounds to zero in f32 (torch's does too).
    let fx = Fixture::load();
    let device = Device::flex();
    let (encoder, mut guard) = setup(&fx, &device);
    guard.head.w1.iter_mut().chain(guard.head.b1.iter_mut()).for_each(|v| *v *= 400.0);
    let target = GuardDecision::new(&guard, &encoder, EpsUnit::Normalized).unwrap();
    let x0 = fx.images("pixels", &device);
    let z = target.decisions(&x0);
    assert!(z.iter().all(|z| z.abs() > 17.0), "saturated: {z:?}");
    let labels: Vec<bool> = z.iter().map(|&z| z >= 0.0).collect();
    let seeds = vec![0; labels.len()];
    for attack in [Attack::Fgsm, Attack::Pgd { steps: 3, random_start: false, rel_stepsize: 0.5 }] {
        let out = attack::run(&attack, &target, &x0, &labels, &[0.05], &seeds).unwrap().remove(0);
        assert!(out.linf.iter().all(|&n| (n - 0.05).abs() < 1e-6), "{}: every image moves by eps: {:?}", attack.name(), out.linf);
        // Each decision moves against its label: unsafe ones down, safe ones up.
        let against = out.decision.iter().zip(&z).all(|(after, before)| if *before >= 0.0 { after < before } else { after > before });
        assert!(against, "{}: {z:?} -> {:?}", attack.name(), out.decision);
    }
}

#[test]
fn gaussian_noise_has_norm_eps_and_no_preferred_direction() {
    let fx = Fixture::load();
    let device = Device::flex();
    let (encoder, guard) = setup(&fx, &device);
    let target = GuardDecision::new(&guard, &encoder, EpsUnit::Normalized).unwrap();
    // Mid-grey images, far from the bounds, so clipping leaves the noise whole.
    let b = 64;
    let x0: Tensor<4> = Tensor::zeros([b, 3, 32, 32], &device);
    let labels = target.decisions(&x0).iter().map(|&z| z >= 0.0).collect::<Vec<_>>();
    let seeds: Vec<u64> = (0..b as u64).collect();
    let out = attack::run(&Attack::Gn, &target, &x0, &labels, &[0.5], &seeds).unwrap().remove(0);
    assert!(out.l2.iter().all(|&n| (n - 0.5).abs() < 1e-4), "every noise vector has L2 norm eps: {:?}", &out.l2[..4]);
    let v = host(out.images.clone());
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / n - mean * mean;
    // Each coordinate is N(0, eps^2 / 3072) up to the normalisation.
    let expected_var = 0.25 / 3072.0;
    assert!(mean.abs() < 4.0 * (expected_var / n).sqrt(), "mean {mean}");
    assert!((var / expected_var - 1.0).abs() < 0.02, "variance {var} vs {expected_var}");
    // Images get different noise, and the same seeds give the same noise.
    assert!(max_diff(&v[..3072], &v[3072..6144]) > 1e-3);
    let again = attack::run(&Attack::Gn, &target, &x0.clone().narrow(0, 5, 3), &labels[5..8], &[0.5], &seeds[5..8]).unwrap().remove(0);
    assert_eq!(host(again.images), v[5 * 3072..8 * 3072].to_vec(), "an image's noise does not depend on its batch");
}

#[test]
fn bad_attack_options_are_named_errors() {
    let fx = Fixture::load();
    let device = Device::flex();
    let (encoder, guard) = setup(&fx, &device);
    let target = GuardDecision::new(&guard, &encoder, EpsUnit::Normalized).unwrap();
    let x0 = fx.images("pixels", &device);
    let labels = fx.labels();
    let seeds = vec![0; labels.len()];
    for eps in [0.0, -0.1, f64::NAN, f64::INFINITY] {
        let err = attack::run(&Attack::Fgsm, &target, &x0, &labels, &[eps], &seeds).unwrap_err().to_string();
        assert!(err.contains("eps"), "{err}");
    }
    let err = "cw".parse::<Attack>().unwrap_err().to_string();
    assert!(err.contains("unknown attack \"cw\"") && err.contains("deepfool"), "{err}");
    let zero = Attack::Pgd { steps: 0, random_start: true, rel_stepsize: 0.1 };
    assert!(attack::run(&zero, &target, &x0, &labels, &[0.1], &seeds).unwrap_err().to_string().contains("at least one step"));

    // A guard trained on another encoder is refused.
    let other = ImageEncoder::load(&fixtures().join("../../../clip/tests/fixtures/clip/hf-gelu/model.safetensors"), None, false, &device).unwrap();
    let err = GuardDecision::new(&guard, &other, EpsUnit::Normalized).unwrap_err().to_string();
    assert!(err.contains("encoder") || err.contains("weights"), "{err}");
}

#[cfg(feature = "wgpu")]
#[test]
#[ignore = "needs a wgpu adapter (a GPU, or Mesa's lavapipe); run with --ignored"]
fn attacks_match_foolbox_on_wgpu() {
    let sel = pairguard_model::device::select(pairguard_model::DeviceChoice::Wgpu).unwrap();
    matches_foolbox(&sel.device);
}
