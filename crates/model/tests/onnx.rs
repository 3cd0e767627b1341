//! Exported ONNX graphs run in tract (pure Rust) and match burn's outputs to
//! 1e-5; where Python with onnxruntime is available (PAIRGUARD_PYTHON), it
//! is checked too.

use std::path::Path;

use pairguard_clip::ImageEncoder;
use pairguard_data::Precision;
use pairguard_data::synthetic::{Benchmark, SyntheticConfig};
use pairguard_model::CalibrationConfig;
use pairguard_model::onnx::{export_head, export_pipeline};
use pairguard_model::prompts::{PolicyPrompts, PolicyText};
use pairguard_model::{Device, GuardConfig, GuardModel, HeadKind, LabeledSet, Optimizer, TrainConfig};
use tract_onnx::prelude::*;

fn run_tract(bytes: &[u8], input: Vec<f32>, shape: &[usize]) -> Vec<f32> {
    let model = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(bytes))
        .unwrap()
        .with_input_fact(0, f32::fact(shape).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let t = tract_ndarray::ArrayD::from_shape_vec(shape.to_vec(), input).unwrap();
    let out = model.run(tvec!(tract_onnx::prelude::Tensor::from(t).into())).unwrap();
    out[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect()
}

/// What onnxruntime gave: the probabilities, the verdicts and the metadata.
struct Ort {
    probabilities: Vec<f32>,
    verdict: Vec<bool>,
    metadata: serde_json::Map<String, serde_json::Value>,
}

/// Runs the model in onnxruntime through Python when available; returns
/// None (and says so) when it is not, unless `PAIRGUARD_REQUIRE_ONNXRUNTIME=1`
/// (as in CI), where a missing or broken Python fails the test.
fn run_onnxruntime(bytes: &[u8], input: &[f32], shape: &[usize]) -> Option<Ort> {
    let required = std::env::var("PAIRGUARD_REQUIRE_ONNXRUNTIME").as_deref() == Ok("1");
    let Ok(python) = std::env::var("PAIRGUARD_PYTHON") else {
        assert!(!required, "onnxruntime check required, but PAIRGUARD_PYTHON is not set");
        eprintln!("onnxruntime check not run: set PAIRGUARD_PYTHON to a Python with onnxruntime and numpy");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let (m, x, y) = (dir.path().join("m.onnx"), dir.path().join("x.bin"), dir.path().join("y"));
    std::fs::write(&m, bytes).unwrap();
    std::fs::write(&x, input.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let script = format!(
        "import json, numpy as np, onnxruntime as ort\ns = ort.InferenceSession({m:?}, providers=['CPUExecutionProvider'])\nx = np.fromfile({x:?}, dtype='<f4').reshape({shape:?})\nassert [o.name for o in s.get_outputs()] == ['probabilities', 'verdict']\np, v = s.run(None, {{s.get_inputs()[0].name: x}})\np.astype('<f4').tofile({y:?} + '.p')\nv.astype('u1').tofile({y:?} + '.v')\njson.dump(s.get_modelmeta().custom_metadata_map, open({y:?} + '.json', 'w'))",
        m = m.display().to_string(),
        x = x.display().to_string(),
        y = y.display().to_string(),
        shape = shape
    );
    let out = match std::process::Command::new(&python).args(["-c", &script]).output() {
        Ok(out) => out,
        Err(e) => {
            assert!(!required, "onnxruntime check required, but {python} cannot start: {e}");
            eprintln!("onnxruntime check not run: {python}: {e}");
            return None;
        }
    };
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        assert!(!required, "onnxruntime check failed: {msg}");
        eprintln!("onnxruntime check not run: {}", msg.lines().last().unwrap_or(""));
        return None;
    }
    let read = |ext: &str| std::fs::read(dir.path().join(format!("y.{ext}"))).unwrap();
    Some(Ort {
        probabilities: read("p").chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
        verdict: read("v").iter().map(|&b| b != 0).collect(),
        metadata: serde_json::from_slice(&read("json")).unwrap(),
    })
}

/// The verdicts and metadata a deployer reads, against the card.
fn check_deployable(ort: &Ort, m: &GuardModel, what: &str) {
    let o = m.head.outputs;
    let want: Vec<bool> = ort.probabilities.chunks(o).map(|p| f64::from(p[0]) >= m.card.threshold).collect();
    assert_eq!(ort.verdict, want, "{what}: verdict is P(unsafe) at or above the threshold");
    let meta = |k: &str| ort.metadata.get(&format!("pairguard.{k}")).and_then(|v| v.as_str()).unwrap_or_else(|| panic!("{what}: no {k}")).to_string();
    assert_eq!(meta("format_version"), pairguard_model::onnx::FORMAT_VERSION);
    assert_eq!(meta("threshold").parse::<f64>().unwrap(), m.card.threshold, "{what}");
    assert_eq!(meta("temperature").parse::<f64>().unwrap(), m.card.temperature, "{what}");
    assert_eq!(serde_json::from_str::<Vec<String>>(&meta("outputs")).unwrap(), m.card.outputs, "{what}");
    assert_eq!(serde_json::from_str::<Vec<String>>(&meta("categories")).unwrap(), m.card.categories, "{what}");
    let encoder: pairguard_data::EncoderId = serde_json::from_str(&meta("encoder")).unwrap();
    assert_eq!(encoder, m.card.encoder, "{what}");
    let rule: pairguard_model::ThresholdRule = serde_json::from_str(&meta("threshold_rule")).unwrap();
    assert_eq!(rule, m.card.threshold_rule, "{what}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&meta("head")).unwrap(), serde_json::to_value(m.card.head).unwrap(), "{what}");
    assert_eq!(meta("verdict"), "verdict = probabilities[:, 0] >= threshold", "{what}");
    assert_eq!(meta("preprocess"), m.card.encoder.preprocess, "{what}");
    assert!(["f32", "f16", "int8"].contains(&meta("graph_precision").as_str()), "{what}: {}", meta("graph_precision"));
}

fn close(a: &[f32], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    let worst = a.iter().zip(b).map(|(x, y)| (f64::from(*x) - y).abs()).fold(0.0, f64::max);
    assert!(worst <= tol, "{what}: max abs difference {worst}");
}

fn train(cfg: TrainConfig, set: &LabeledSet, encoder: pairguard_data::EncoderId) -> GuardModel {
    let gc = GuardConfig { train: cfg, ..GuardConfig::default() };
    GuardModel::train(set, Some(set), encoder, &gc, None, &Device::flex()).unwrap()
}

fn burn_probs(m: &GuardModel, x: &[f32]) -> Vec<f64> {
    let (p, cats) = m.probabilities(x, &Device::flex()).unwrap();
    let k = m.card.outputs.len() - 1;
    (0..p.len()).flat_map(|i| std::iter::once(p[i]).chain(cats.as_ref().map(|c| c[i * k..(i + 1) * k].to_vec()).unwrap_or_default())).collect()
}

#[test]
fn exported_heads_match_burn_in_tract_and_onnxruntime() {
    let b = Benchmark::generate(&SyntheticConfig::tiny()).unwrap();
    let cats: Vec<String> = b.taxonomy().names().into_iter().map(str::to_string).collect();
    let d = b.config.dim;
    let ids: std::collections::HashMap<&str, usize> = b.coarse.samples.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
    let set = LabeledSet::from_samples(b.coarse.samples.iter(), &cats, d, |id| ids.get(id).map(|&i| &b.coarse.vectors[i * d..(i + 1) * d])).unwrap();
    let linear = train(TrainConfig { optimizer: Optimizer::Lbfgs { iterations: 60 }, ..TrainConfig::default() }, &set, b.config.encoder_id());
    let mlp = train(
        TrainConfig {
            multilabel: true,
            optimizer: Optimizer::Adamw { learning_rate: 0.005, epochs: 60, batch_size: 16384 },
            ..TrainConfig::for_head(HeadKind::Mlp { hidden: 24, dropout: 0.1 })
        },
        &set,
        b.config.encoder_id(),
    );
    // The policy's zero-shot guard, and a prompt head trained from it
    // (multi-label, so the class biases and category outputs are exercised).
    let policy = b.policy();
    let prompts = PolicyPrompts::new(&policy, &cats).unwrap();
    let emb = b.prompts().unwrap();
    let text = PolicyText { prompts, embeddings: emb };
    let zero_shot = text.zero_shot_guard(&b.config.encoder_id(), Some(&set), &CalibrationConfig::default(), &Device::flex()).unwrap();
    let start = text.prompts.head(&text.embeddings, 1 + cats.len()).unwrap();
    let gc = GuardConfig { train: TrainConfig { multilabel: true, ..TrainConfig::for_head(start.kind) }, ..GuardConfig::default() };
    let prompt = GuardModel::train(&set, Some(&set), b.config.encoder_id(), &gc, Some(&start), &Device::flex()).unwrap();
    assert!(prompt.head.b1.iter().any(|&v| v != 0.0) && prompt.head.w1 != start.w1, "training moved the prompts and biases");
    let n = 9;
    let x = set.x[..n * d].to_vec();
    for m in [&zero_shot, &prompt] {
        // The bank's forward pass against the host arithmetic.
        let mut normed = x.clone();
        m.norm.apply(&mut normed);
        let host = m.head.logits_host(&normed);
        let device = m.logits(&x, &Device::flex()).unwrap();
        close(&device, &host.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(), 1e-3, "prompt head on the device vs the host");
    }
    for (name, m) in [("linear", &linear), ("mlp", &mlp), ("zero-shot", &zero_shot), ("prompt", &prompt)] {
        assert_ne!(m.card.temperature, 1.0, "a fitted temperature exercises the scaling");
        let bytes = export_head(m);
        let want = burn_probs(m, &x);
        close(&run_tract(&bytes, x.clone(), &[n, d]), &want, 1e-5, &format!("{name} head in tract"));
        if let Some(got) = run_onnxruntime(&bytes, &x, &[n, d]) {
            close(&got.probabilities, &want, 1e-5, &format!("{name} head in onnxruntime"));
            check_deployable(&got, m, name);
        }
    }
}

#[test]
fn exported_published_heads_match_burn() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/published");
    let dev = Device::flex();
    let (checker, encoder) = pairguard_model::published::sd_safety_checker(&dir.join("sd-safety-checker/model.safetensors"), None, &dev).unwrap();
    let q16 = pairguard_model::published::q16(&dir.join("q16.npy"), &encoder.id).unwrap();
    let bytes = std::fs::read(dir.join("reference.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor("pixels").unwrap();
    let n = t.shape()[0];
    let x = encoder.embed_pixels(t.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(), n);
    let d = encoder.config.projection_dim;
    let laion = pairguard_model::published::laion_nsfw(&dir.join("laion-nsfw-l14.safetensors"), &encoder.id).unwrap();
    let raw = pairguard_data::EncoderId { normalized: false, ..encoder.id.clone() };
    let unsafe_diffusion = pairguard_model::published::unsafe_diffusion(&dir.join("unsafe-diffusion"), &raw).unwrap();
    for (name, m) in [("safety checker", &checker), ("q16", &q16), ("laion nsfw", &laion), ("unsafe diffusion", &unsafe_diffusion)] {
        let bytes = export_head(m);
        let want = burn_probs(m, &x);
        close(&run_tract(&bytes, x.clone(), &[n, d]), &want, 1e-5, &format!("{name} in tract"));
        if let Some(got) = run_onnxruntime(&bytes, &x, &[n, d]) {
            close(&got.probabilities, &want, 1e-5, &format!("{name} in onnxruntime"));
            check_deployable(&got, m, name);
        }
    }
}

#[test]
fn exported_pipeline_matches_encoder_plus_head() {
    let w = Path::new(env!("CARGO_MANIFEST_DIR")).join("../clip/tests/fixtures/clip/hf-quickgelu/model.safetensors");
    let dev = Device::flex();
    let enc = ImageEncoder::load(&w, None, true, &dev).unwrap();
    // Pixels of the fixture photos, embedded by the encoder, labelled by a rule.
    let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../clip/tests/fixtures/clip/reference.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor("pixels").unwrap();
    let pixels: Vec<f32> = t.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    let n = t.shape()[0];
    let emb = enc.embed_pixels(pixels.clone(), n);
    let dim = enc.config.projection_dim;
    // A training set around these embeddings: jittered copies, labelled by one coordinate.
    let mut xs = Vec::new();
    for r in 0..40 {
        for i in 0..n {
            xs.extend(emb[i * dim..(i + 1) * dim].iter().enumerate().map(|(j, v)| v + 0.05 * (((r * 31 + i * 7 + j) % 17) as f32 / 17.0 - 0.5)));
        }
    }
    let samples: Vec<pairguard_data::Sample> = (0..40 * n)
        .map(|i| pairguard_data::Sample {
            id: format!("s{i}"),
            image: None,
            label: if xs[i * dim] > emb[0] { pairguard_data::Label::Unsafe } else { pairguard_data::Label::Safe },
            category: None,
            pair: None,
            group: None,
            source: pairguard_data::Source::Unknown,
            split: None,
        })
        .collect();
    let set = LabeledSet::from_samples(samples.iter(), &[], dim, |id| {
        let i: usize = id[1..].parse().ok()?;
        Some(&xs[i * dim..(i + 1) * dim])
    })
    .unwrap();
    let m = train(TrainConfig { optimizer: Optimizer::Lbfgs { iterations: 40 }, ..TrainConfig::default() }, &set, enc.id.clone());
    let bytes = export_pipeline(&enc, &m, Precision::F32).unwrap();
    let want = burn_probs(&m, &emb);
    let s = enc.config.image_size;
    close(&run_tract(&bytes, pixels.clone(), &[n, 3, s, s]), &want, 1e-5, "pipeline in tract");
    if let Some(got) = run_onnxruntime(&bytes, &pixels, &[n, 3, s, s]) {
        close(&got.probabilities, &want, 1e-5, "pipeline in onnxruntime");
        check_deployable(&got, &m, "pipeline");
        assert_eq!(got.metadata["pairguard.preprocess.size"], s.to_string());
        assert_eq!(got.metadata["pairguard.preprocess.mean"], serde_json::to_string(&enc.preprocessor.mean).unwrap());
        assert_eq!(got.metadata["pairguard.preprocess.std"], serde_json::to_string(&enc.preprocessor.std).unwrap());
        assert_eq!(got.metadata["pairguard.graph_precision"], "f32");
    }
    // The float16 graph: about half the bytes, and compared on logits where
    // probabilities are not saturated: the head scaled so that every
    // calibrated logit lies in [-2, 2], the logits recovered from the
    // probabilities, within 5e-3 of burn's f32 logits (the stated tolerance
    // of an f16 export).
    let half = export_pipeline(&enc, &m, Precision::F16).unwrap();
    assert!(half.len() * 10 < bytes.len() * 6, "{} bytes in f16 against {} in f32", half.len(), bytes.len());
    let mut mid = m.clone();
    let z = mid.logits(&emb, &Device::flex()).unwrap();
    let scale = 2.0 * mid.card.temperature as f32 / z.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    mid.head.w1.iter_mut().chain(mid.head.b1.iter_mut()).for_each(|v| *v *= scale);
    let want_z: Vec<f64> = mid.logits(&emb, &Device::flex()).unwrap().iter().map(|&v| f64::from(v) / mid.card.temperature).collect();
    assert!(want_z.iter().all(|z| z.abs() <= 2.0 + 1e-5) && want_z.iter().any(|z| z.abs() > 0.5), "{want_z:?}");
    let half = export_pipeline(&enc, &mid, Precision::F16).unwrap();
    if let Some(got) = run_onnxruntime(&half, &pixels, &[n, 3, s, s]) {
        let got_z: Vec<f32> = got.probabilities.iter().map(|&p| (f64::from(p) / (1.0 - f64::from(p))).ln() as f32).collect();
        let worst = got_z.iter().zip(&want_z).map(|(a, b)| (f64::from(*a) - b).abs()).fold(0.0, f64::max);
        let top = want_z.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        eprintln!(
            "f16 pipeline in onnxruntime: largest logit difference to burn f32 {worst:.2e}, largest logit {top:.3} (temperature {})",
            mid.card.temperature
        );
        close(&got_z, &want_z, 5e-3, "f16 pipeline in onnxruntime, logits");
        check_deployable(&got, &mid, "f16 pipeline");
        assert_eq!(got.metadata["pairguard.graph_precision"], "f16");
    }
    let e = export_pipeline(&enc, &m, Precision::Bf16).unwrap_err().to_string();
    assert!(e.contains("f32, f16 or int8"), "{e}");
    // The int8 graph against pairguard's int8 path and f32, on a head that
    // reads the embedding as it is: a linear head on unit embeddings along
    // the difference of two photographs, scaled so that the logits span
    // [-2, 2]. The graph quantises its products' inputs per tensor where the
    // int8 path quantises them per token (and its patch embedding, which
    // the int8 path keeps bf16), so the two are about as far apart as each
    // is from f32 (0.02 to 0.03 here), and both are held within 0.1 of the
    // other and of f32.
    let enc8 = ImageEncoder::load(&w, None, true, &dev).unwrap().with_precision(Precision::Int8).unwrap();
    let emb8 = enc8.embed_pixels(pixels.clone(), n);
    let dir: Vec<f32> = (0..dim).map(|j| emb[j] - emb[dim + j]).collect();
    let raw: Vec<f32> = emb.chunks(dim).map(|e| e.iter().zip(&dir).map(|(a, b)| a * b).sum::<f32>()).collect();
    let centre = (raw[0] + raw[1]) / 2.0;
    let scale = 2.0 / raw.iter().map(|r| (r - centre).abs()).fold(0.0f32, f32::max);
    let head = pairguard_model::HeadWeights {
        kind: pairguard_model::HeadKind::Linear,
        input_dim: dim,
        outputs: 1,
        w1: dir.iter().map(|v| v * scale).collect(),
        b1: vec![-centre * scale],
        w2: None,
        b2: None,
        middle: Vec::new(),
    };
    let unit = pairguard_model::FeatureNorm { kind: pairguard_model::NormKind::L2, ..pairguard_model::FeatureNorm::identity(dim) };
    let m8 = GuardModel::fixed(head.clone(), unit.clone(), enc8.id.clone(), 0.5).unwrap();
    let m32 = GuardModel::fixed(head, unit, enc.id.clone(), 0.5).unwrap();
    let z = |m: &GuardModel, e: &[f32]| -> Vec<f64> { m.logits(e, &dev).unwrap().iter().map(|&v| f64::from(v)).collect() };
    let (native_z, f32_z) = (z(&m8, &emb8), z(&m32, &emb));
    assert!(f32_z.iter().any(|v| v.abs() > 1.5) && f32_z.iter().all(|v| v.abs() <= 2.0 + 1e-4), "{f32_z:?}");
    let int8 = export_pipeline(&enc8, &m8, Precision::Int8).unwrap();
    let f32_graph = export_pipeline(&enc, &m32, Precision::F32).unwrap();
    assert!(int8.len() * 2 < f32_graph.len(), "{} bytes in int8 against {} in f32", int8.len(), f32_graph.len());
    let logits = |p: &[f32]| -> Vec<f32> { p.iter().map(|&p| (f64::from(p) / (1.0 - f64::from(p))).ln() as f32).collect() };
    let worst = |a: &[f32], b: &[f64]| a.iter().zip(b).map(|(a, b)| (f64::from(*a) - b).abs()).fold(0.0, f64::max);
    let tract_z = logits(&run_tract(&int8, pixels.clone(), &[n, 3, s, s]));
    let native_vs_f32 = worst(&native_z.iter().map(|&v| v as f32).collect::<Vec<_>>(), &f32_z);
    eprintln!(
        "int8 pipeline in tract: largest logit difference {:.2e} to pairguard's int8 path, {:.2e} to f32; the int8 path's own to f32 {native_vs_f32:.2e}",
        worst(&tract_z, &native_z),
        worst(&tract_z, &f32_z)
    );
    assert!(native_vs_f32 <= 0.1, "the int8 path's logits {native_z:?} against f32 {f32_z:?}");
    close(&tract_z, &native_z, 0.1, "int8 pipeline in tract against the int8 path, logits");
    close(&tract_z, &f32_z, 0.1, "int8 pipeline in tract against f32, logits");
    if let Some(got) = run_onnxruntime(&int8, &pixels, &[n, 3, s, s]) {
        let got_z = logits(&got.probabilities);
        eprintln!(
            "int8 pipeline in onnxruntime: largest logit difference {:.2e} to pairguard's int8 path, {:.2e} to f32",
            worst(&got_z, &native_z),
            worst(&got_z, &f32_z)
        );
        close(&got_z, &native_z, 0.1, "int8 pipeline in onnxruntime against the int8 path, logits");
        close(&got_z, &f32_z, 0.1, "int8 pipeline in onnxruntime against f32, logits");
        close(&got_z, &tract_z.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(), 1e-4, "int8 pipeline in onnxruntime against tract, logits");
        check_deployable(&got, &m8, "int8 pipeline");
        assert_eq!(got.metadata["pairguard.graph_precision"], "int8");
    }
    // A model trained on another encoder's embeddings is refused.
    let other_weights = pairguard_data::EncoderId { weights_sha256: "0".repeat(64), ..enc.id.clone() };
    let other = train(TrainConfig { optimizer: Optimizer::Lbfgs { iterations: 5 }, ..TrainConfig::default() }, &set, other_weights);
    assert!(export_pipeline(&enc, &other, Precision::F32).unwrap_err().to_string().contains("encoder mismatch"));
}
