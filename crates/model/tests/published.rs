//! Published fixed heads against the reference formulas, on files of the
//! published layouts with random values
//! (tests/fixtures/published/gen_published_fixtures.py).

use std::path::{Path, PathBuf};

use pairguard_model::Device;
use pairguard_model::published::{q16, sd_safety_checker};
use safetensors::SafeTensors;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/published")
}

fn reference(name: &str) -> (Vec<f32>, Vec<usize>) {
    let bytes = std::fs::read(dir().join("reference.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).unwrap();
    (t.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(), t.shape().to_vec())
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn sd_safety_checker_decides_as_diffusers() {
    let dev = Device::flex();
    let (guard, encoder) = sd_safety_checker(&dir().join("sd-safety-checker/model.safetensors"), None, &dev).unwrap();
    let (pixels, shape) = reference("pixels");
    let n = shape[0];
    let emb = encoder.embed_pixels(pixels, n);
    // The checker's own vision tower (nested keys) embeds as transformers does.
    let (want, _) = reference("image_embeds");
    let unit = |v: &[f32]| -> Vec<f32> {
        v.chunks(32)
            .flat_map(|r| {
                let s = r.iter().map(|x| x * x).sum::<f32>().sqrt();
                r.iter().map(move |x| x / s)
            })
            .collect()
    };
    assert!(max_diff(&emb, &unit(&want)) <= 1e-4);
    // Highest adjusted concept score and the verdict, image by image.
    let logits = guard.logits(&emb, &dev).unwrap();
    let scores: Vec<f32> = logits.iter().map(|z| z / 100.0).collect();
    let (concept_max, _) = reference("concept_max");
    assert!(max_diff(&scores, &concept_max) <= 1e-4, "{scores:?} vs {concept_max:?}");
    let (has_nsfw, _) = reference("has_nsfw");
    let verdicts = guard.predict(&(0..n).map(|i| i.to_string()).collect::<Vec<_>>(), &emb, None, &dev).unwrap();
    for (i, p) in verdicts.iter().enumerate() {
        assert_eq!(p.verdict == pairguard_data::Label::Unsafe, has_nsfw[i] > 0.5, "image {i}: score {}", scores[i]);
    }
    // One image is flagged only through the special-care adjustment.
    let (cared, _) = reference("special_care");
    assert!((0..n).any(|i| cared[i] > 0.5 && has_nsfw[i] > 0.5 && scores[i] < 0.01));
    // The host arithmetic agrees with the device.
    let host = guard.head.logits_host(&emb);
    assert!(max_diff(&host, &logits) <= 1e-3);
    assert_eq!(guard.card.encoder, encoder.id);
}

#[test]
fn q16_prompts_from_npy_and_safetensors() {
    let dev = Device::flex();
    let (x, shape) = reference("embeds");
    let (want, _) = reference("q16_unsafe");
    let encoder = pairguard_data::EncoderId {
        model: "some-clip".into(),
        revision: None,
        weights_sha256: "00".into(),
        architecture: String::new(),
        preprocess: "clip".into(),
        dim: shape[1],
        normalized: true,
        precision: Default::default(),
    };
    // Most reference probabilities saturate at 0 or 1; the `_mid` ones lie
    // between 0.05 and 0.95, where a wrong scale or sign would show.
    let (x_mid, _) = reference("embeds_mid");
    let (want_mid, _) = reference("q16_unsafe_mid");
    assert!(want_mid.iter().all(|p| (0.05..0.95).contains(p)), "{want_mid:?}");
    for file in ["q16.npy", "q16.safetensors"] {
        let guard = q16(&dir().join(file), &encoder).unwrap();
        for (x, want) in [(&x, &want), (&x_mid, &want_mid)] {
            let (p, cats) = guard.probabilities(x, &dev).unwrap();
            assert!(cats.is_none());
            let p: Vec<f32> = p.iter().map(|&v| v as f32).collect();
            let err = max_diff(&p, want);
            eprintln!("{file}: largest difference {err:e}");
            assert!(err <= 1e-5, "{file}: {p:?} vs {want:?}");
        }
    }
    let e = q16(&dir().join("q16.p"), &encoder).unwrap_err().to_string();
    assert!(e.contains("q16.p") && e.contains("pickle"), "{e}");
    let wider = pairguard_data::EncoderId { dim: 64, ..encoder.clone() };
    let e = q16(&dir().join("q16.npy"), &wider).unwrap_err().to_string();
    assert!(e.contains("[2, 64]") && e.contains("q16.npy"), "{e}");
    let e = q16(&dir().join("reference.safetensors"), &encoder).unwrap_err().to_string();
    assert!(e.contains("tensors; a Q16 prompt file holds one"), "{e}");
    let e = sd_safety_checker(&dir().join("q16.safetensors"), None, &dev).unwrap_err().to_string();
    assert!(e.contains("q16.safetensors"), "{e}");
}
