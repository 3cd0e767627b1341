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

/// A tensor of the feed-forward reference file.
fn feedforward(name: &str) -> (Vec<f32>, Vec<usize>) {
    let bytes = std::fs::read(dir().join("feedforward-reference.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).unwrap();
    (t.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(), t.shape().to_vec())
}

fn clip_encoder(dim: usize, normalized: bool) -> pairguard_data::EncoderId {
    pairguard_data::EncoderId {
        model: "ViT-L-14".into(),
        revision: None,
        weights_sha256: "00".into(),
        architecture: String::new(),
        preprocess: "clip".into(),
        dim,
        normalized,
        precision: Default::default(),
    }
}

/// The detector's probabilities against its PyTorch port's, within 1e-4,
/// for the ViT-L/14 layout (four layers) and the ViT-B/32 one (three), on
/// the device, on the host, and after a save and a load.
#[test]
fn laion_nsfw_detector_scores_as_its_pytorch_port() {
    let dev = Device::flex();
    let (x, shape) = feedforward("unit_embeds");
    let encoder = clip_encoder(shape[1], true);
    for (file, reference, layers) in [("laion-nsfw-l14.safetensors", "laion_l14", 4), ("laion-nsfw-b32.safetensors", "laion_b32", 3)] {
        let guard = pairguard_model::published::laion_nsfw(&dir().join(file), &encoder).unwrap();
        assert!(matches!(guard.card.head, pairguard_model::HeadKind::Relu { layers: l, any: false, .. } if l == layers), "{:?}", guard.card.head);
        let (want, _) = feedforward(reference);
        assert!(want.iter().filter(|p| (0.05..0.95).contains(*p)).count() * 2 >= want.len(), "most references unsaturated");
        let (p, cats) = guard.probabilities(&x, &dev).unwrap();
        assert!(cats.is_none());
        let p: Vec<f32> = p.iter().map(|&v| v as f32).collect();
        let err = max_diff(&p, &want);
        eprintln!("{file}: largest difference {err:e}");
        assert!(err <= 1e-4, "{file}: {p:?} vs {want:?}");
        let mut normed = x.clone();
        guard.norm.apply(&mut normed);
        let host: Vec<f32> = guard.head.logits_host(&normed).iter().map(|z| 1.0 / (1.0 + (-z).exp())).collect();
        assert!(max_diff(&host, &want) <= 1e-4, "{file} on the host");
        let tmp = tempfile::tempdir().unwrap();
        guard.save(&tmp.path().join("g.safetensors")).unwrap();
        assert_eq!(pairguard_model::GuardModel::load(&tmp.path().join("g.safetensors")).unwrap(), guard);
    }
    let e = pairguard_model::published::laion_nsfw(&dir().join("laion-nsfw-l14.pth"), &encoder).unwrap_err().to_string();
    assert!(e.contains("laion-nsfw-l14.pth") && e.contains("pickle"), "{e}");
    let e = pairguard_model::published::laion_nsfw(&dir().join("laion-nsfw-l14.safetensors"), &clip_encoder(768, true)).unwrap_err().to_string();
    assert!(e.contains("normalises 768 dimensions"), "{e}");
    let e = pairguard_model::published::laion_nsfw(&dir().join("unsafe-diffusion/sexual.safetensors"), &encoder).unwrap_err().to_string();
    assert!(e.contains("no tensor \"norm.mean\""), "{e}");
}

/// Unsafe Diffusion's five heads against torch in eval mode (batch norm
/// with running statistics), within 1e-4: each category's probability, and
/// "unsafe" as the highest of them.
#[test]
fn unsafe_diffusion_heads_score_as_torch() {
    let dev = Device::flex();
    let (x, shape) = feedforward("raw_embeds");
    let (n, d) = (shape[0], shape[1]);
    let folder = dir().join("unsafe-diffusion");
    let guard = pairguard_model::published::unsafe_diffusion(&folder, &clip_encoder(d, false)).unwrap();
    assert_eq!(guard.card.outputs, ["unsafe", "sexual", "violent", "disturbing", "hateful", "political"]);
    let (want, _) = feedforward("unsafe_diffusion");
    let (p, cats) = guard.probabilities(&x, &dev).unwrap();
    let cats: Vec<f32> = cats.unwrap().iter().map(|&v| v as f32).collect();
    let err = max_diff(&cats, &want);
    eprintln!("unsafe diffusion: largest difference {err:e}");
    assert!(err <= 1e-4, "{cats:?} vs {want:?}");
    let any: Vec<f32> = want.chunks(5).map(|r| r.iter().copied().fold(0.0, f32::max)).collect();
    assert!(max_diff(&p.iter().map(|&v| v as f32).collect::<Vec<_>>(), &any) <= 1e-4);
    let flagged = any.iter().filter(|&&q| q >= 0.5).count();
    assert!(0 < flagged && flagged < n, "some images flagged, some not: {flagged} of {n}");
    let tmp = tempfile::tempdir().unwrap();
    guard.save(&tmp.path().join("g.safetensors")).unwrap();
    assert_eq!(pairguard_model::GuardModel::load(&tmp.path().join("g.safetensors")).unwrap(), guard);
    // Unit-length embeddings are not what the heads read.
    let e = pairguard_model::published::unsafe_diffusion(&folder, &clip_encoder(d, true)).unwrap_err().to_string();
    assert!(e.contains("--no-normalize"), "{e}");
    // A head that is missing, or a pickle in its place, is named.
    let partial = tempfile::tempdir().unwrap();
    for h in ["sexual", "violent"] {
        std::fs::copy(folder.join(format!("{h}.safetensors")), partial.path().join(format!("{h}.safetensors"))).unwrap();
    }
    let e = pairguard_model::published::unsafe_diffusion(partial.path(), &clip_encoder(d, false)).unwrap_err().to_string();
    assert!(e.contains("disturbing.safetensors"), "{e}");
    let e = pairguard_model::published::unsafe_diffusion(&folder, &clip_encoder(64, false)).unwrap_err().to_string();
    assert!(e.contains("sexual.safetensors") && e.contains("expected [out, 64]"), "{e}");
}

/// The README's conversion command is the one the fixtures were converted by.
#[test]
fn the_readme_converts_torch_heads_as_the_fixtures_were() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let generator = std::fs::read_to_string(dir().join("gen_feedforward_fixtures.py")).unwrap();
    let between = |text: &str, open: &str, close: &str| -> String {
        let start = text.find(open).unwrap_or_else(|| panic!("no {open:?}")) + open.len();
        text[start..start + text[start..].find(close).unwrap()].to_string()
    };
    assert_eq!(between(&readme, "convert='", "'\n"), between(&generator, "CONVERT = \"", "\"\n"));
}
