//! Heads trained with burn on the CPU backend: they learn the synthetic
//! benchmark's signal, are deterministic, a bank equals separate fits, and
//! L-BFGS probes reach scikit-learn's optimum.

use pairguard_data::Sample;
use pairguard_data::synthetic::{Benchmark, SyntheticConfig};
use pairguard_model::{
    BankJob, Device, FeatureNorm, GuardConfig, GuardModel, HeadKind, LabeledSet, NormKind, Optimizer, TrainConfig, bank_logits, fit_bank,
    probe_objective,
};

fn set(part: &pairguard_data::synthetic::Part, cats: &[String], dim: usize) -> LabeledSet {
    let samples: Vec<&Sample> = part.samples.iter().collect();
    let ids: std::collections::HashMap<&str, usize> = part.samples.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
    LabeledSet::from_samples(samples, cats, dim, |id| ids.get(id).map(|&i| &part.vectors[i * dim..(i + 1) * dim])).unwrap()
}

fn bench() -> (Benchmark, Vec<String>) {
    let b = Benchmark::generate(&SyntheticConfig::tiny()).unwrap();
    let cats = b.taxonomy().names().into_iter().map(str::to_string).collect();
    (b, cats)
}

fn quick() -> GuardConfig {
    GuardConfig { train: TrainConfig { optimizer: Optimizer::Lbfgs { iterations: 150 }, ..TrainConfig::default() }, ..GuardConfig::default() }
}

#[test]
fn linear_probe_learns_and_is_deterministic_on_cpu() {
    let (b, cats) = bench();
    let d = b.config.dim;
    let train = set(&b.coarse, &cats, d).concat(&set(&b.pairs, &cats, d));
    let val = set(&b.test_coarse, &cats, d);
    let dev = Device::flex();
    let enc = b.config.encoder_id();
    let m1 = GuardModel::train(&train, Some(&val), enc.clone(), &quick(), None, &dev).unwrap();
    let m2 = GuardModel::train(&train, Some(&val), enc, &quick(), None, &dev).unwrap();
    assert_eq!(m1.head, m2.head, "same seed, same weights on CPU");
    let test = set(&b.test_shifted, &cats, d);
    let ev = m1.evaluate(&test, None, &dev).unwrap();
    assert!(ev.overall.auroc > 0.72, "AUROC on the shortcut-free test: {}", ev.overall.auroc);
    assert!(m1.card.temperature > 0.0 && m1.card.threshold > 0.0 && m1.card.threshold < 1.0);
    assert_eq!(ev.by_source.len(), 2);
    assert_eq!(ev.by_category.len(), cats.len());
}

#[test]
fn a_bank_trains_each_head_as_if_alone() {
    let (b, cats) = bench();
    let d = b.config.dim;
    let data = set(&b.coarse, &cats, d);
    let (y, o) = data.targets(false);
    let cfg = TrainConfig { optimizer: Optimizer::Adamw { learning_rate: 0.005, epochs: 40, batch_size: 16384 }, ..TrainConfig::default() };
    let a: Vec<usize> = (0..100).collect();
    let bb: Vec<usize> = (50..300).collect();
    let norm = |rows: &[usize]| FeatureNorm::fit_rows(NormKind::Standardize, &data.x, d, rows);
    let job = |members: Vec<Vec<usize>>, lambdas: Vec<f64>| BankJob {
        x: &data.x,
        dim: d,
        targets: &y,
        outputs: o,
        norms: members.iter().map(|m| norm(m)).collect(),
        members,
        lambdas,
        validation: None,
        start: None,
    };
    let dev = Device::flex();
    let bank = fit_bank(&job(vec![a.clone(), bb.clone()], vec![1e-3, 1e-1]), &cfg, &dev).unwrap();
    let alone_a = fit_bank(&job(vec![a.clone()], vec![1e-3]), &cfg, &dev).unwrap();
    let alone_b = fit_bank(&job(vec![bb.clone()], vec![1e-1]), &cfg, &dev).unwrap();
    for (x, y) in bank.heads[0].w1.iter().zip(&alone_a.heads[0].w1).chain(bank.heads[1].w1.iter().zip(&alone_b.heads[0].w1)) {
        assert!((x - y).abs() < 1e-5, "{x} vs {y}");
    }
    // Each head is standardised with its own rows' statistics: training on
    // host-standardised features gives the same head.
    let mut xa = data.x.clone();
    norm(&a).apply(&mut xa);
    let on_host = fit_bank(&BankJob { x: &xa, norms: vec![FeatureNorm::identity(d)], ..job(vec![a.clone()], vec![1e-3]) }, &cfg, &dev).unwrap();
    for (x, y) in alone_a.heads[0].w1.iter().zip(&on_host.heads[0].w1) {
        assert!((x - y).abs() < 1e-4, "in-bank standardisation {x} vs on the host {y}");
    }
    // The stronger penalty gives smaller weights.
    let norm2 = |w: &[f32]| w.iter().map(|v| v * v).sum::<f32>();
    assert!(norm2(&bank.heads[1].w1) < norm2(&bank.heads[0].w1));
    // Device logits agree with plain host arithmetic on host-normalised rows.
    let na = norm(&a);
    let logits = bank_logits(&[&bank.heads[0]], &[&na], &data.x[..10 * d], &dev);
    let mut xs = data.x[..10 * d].to_vec();
    na.apply(&mut xs);
    let host = bank.heads[0].logits_host(&xs);
    for (a, b) in logits.iter().zip(&host) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
}

#[test]
fn an_lbfgs_bank_matches_scikit_learn_fits() {
    // Two heads of different rows and penalties in one bank, against
    // scikit-learn fitted to tol 1e-12 (tests/fixtures/probe): coefficients
    // within 2e-4 of the largest one (f32 weights, L-BFGS's stopping point),
    // the objective no more than 2e-9 above scikit-learn's optimum.
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/probe/probe.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let f32s =
        |name: &str| -> Vec<f32> { st.tensor(name).unwrap().data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect() };
    let f64s =
        |name: &str| -> Vec<f64> { st.tensor(name).unwrap().data().chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect() };
    let (x, y) = (f32s("x"), f32s("y"));
    let d = 16;
    let heads: Vec<(usize, usize, f64)> =
        ["a", "b"].iter().map(|h| f64s(&format!("{h}_range"))).map(|r| (r[0] as usize, r[1] as usize, r[2])).collect();
    let job = BankJob {
        x: &x,
        dim: d,
        targets: &y,
        outputs: 1,
        members: heads.iter().map(|&(lo, hi, _)| (lo..hi).collect()).collect(),
        lambdas: heads.iter().map(|h| h.2).collect(),
        norms: vec![FeatureNorm::identity(d); 2],
        validation: None,
        start: None,
    };
    let cfg = TrainConfig { optimizer: Optimizer::Lbfgs { iterations: 500 }, ..TrainConfig::default() };
    let bank = fit_bank(&job, &cfg, &Device::flex()).unwrap();
    for (i, (name, &(lo, hi, lambda))) in ["a", "b"].iter().zip(&heads).enumerate() {
        let want_w = f64s(&format!("{name}_coef"));
        let want_b = f64s(&format!("{name}_intercept"))[0];
        let head = &bank.heads[i];
        let got_w: Vec<f64> = head.w1.iter().map(|&v| f64::from(v)).collect();
        let got_b = f64::from(head.b1[0]);
        let worst = got_w.iter().zip(&want_w).chain([(&got_b, &want_b)]).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        let scale = want_w.iter().map(|v| v.abs()).fold(0.0, f64::max);
        let ours = probe_objective(&x[lo * d..hi * d], &y[lo..hi], d, &got_w, got_b, lambda);
        let theirs = f64s(&format!("{name}_objective"))[0];
        eprintln!(
            "head {name}: largest coefficient difference {worst:.2e} (largest coefficient {scale:.3}); objective {ours:.12} against {theirs:.12}"
        );
        assert!(worst <= 2e-4 * scale, "head {name}: coefficients {got_w:?} + {got_b} against scikit-learn's {want_w:?} + {want_b}");
        assert!(ours <= theirs + 2e-9, "head {name}: objective {ours} above scikit-learn's {theirs}");
    }
}

#[test]
fn weight_decay_sweep_selects_on_validation_and_mlp_multilabel_trains() {
    let (b, cats) = bench();
    let d = b.config.dim;
    let train = set(&b.coarse, &cats, d);
    let val = set(&b.test_coarse, &cats, d);
    let mut cfg = quick();
    cfg.train.weight_decay_grid = vec![1e-4, 1e-2, 1.0, 100.0];
    let dev = Device::flex();
    let m = GuardModel::train(&train, Some(&val), b.config.encoder_id(), &cfg, None, &dev).unwrap();
    assert!(cfg.train.weight_decay_grid.contains(&m.card.weight_decay));
    assert_ne!(m.card.weight_decay, 100.0, "an absurd penalty must lose on validation");
    assert_eq!(m.card.training_samples, train.len() + val.len(), "refit on train + validation");

    let mut cfg = quick();
    cfg.train = TrainConfig { multilabel: true, ..TrainConfig::for_head(HeadKind::Mlp { hidden: 32, dropout: 0.1 }) };
    cfg.train.optimizer = Optimizer::Adamw { learning_rate: 0.005, epochs: 120, batch_size: 16384 };
    let m = GuardModel::train(&train, Some(&val), b.config.encoder_id(), &cfg, None, &dev).unwrap();
    let ev = m.evaluate(&set(&b.test_coarse, &cats, d), None, &dev).unwrap();
    assert!(ev.overall.auroc > 0.8, "{}", ev.overall.auroc);
    assert_eq!(ev.category_outputs_auroc.len(), cats.len());
    assert!(ev.category_outputs_auroc.values().all(|&a| a > 0.6), "{:?}", ev.category_outputs_auroc);
}

#[test]
fn model_files_round_trip_and_refuse_other_encoders() {
    let (b, cats) = bench();
    let d = b.config.dim;
    let train = set(&b.coarse, &cats, d);
    let dev = Device::flex();
    let uncalibrated = GuardConfig { calibration: pairguard_model::CalibrationConfig::fixed(0.5), ..quick() };
    let e = GuardModel::train(&train, None, b.config.encoder_id(), &quick(), None, &dev).unwrap_err().to_string();
    assert!(e.contains("needs validation data"), "calibration without validation data is refused: {e}");
    let m = GuardModel::train(&train, None, b.config.encoder_id(), &uncalibrated, None, &dev).unwrap();
    assert_eq!((m.card.threshold, m.card.temperature), (0.5, 1.0), "without validation: fixed threshold, temperature 1");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("guard.safetensors");
    m.save(&path).unwrap();
    let back = GuardModel::load(&path).unwrap();
    assert_eq!(back, m);
    let p1 = m.probabilities(&train.x[..5 * d], &dev).unwrap();
    let p2 = back.probabilities(&train.x[..5 * d], &dev).unwrap();
    assert_eq!(p1, p2);
    let other = pairguard_data::synthetic::SyntheticConfig { seed: 9, ..b.config.clone() }.encoder_id();
    let e = back.check_encoder(&other).unwrap_err().to_string();
    assert!(e.contains("encoder mismatch"), "{e}");
    let mut bad = vec![0.0f32; d];
    bad[3] = f32::NAN;
    let e = back.probabilities(&bad, &dev).unwrap_err().to_string();
    assert!(e.contains("non-finite") && e.contains("dimension 3"), "{e}");
    // A card with no outputs is refused, not indexed.
    let card = std::fs::read_to_string(GuardModel::card_path(&path)).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&card).unwrap();
    v["outputs"] = serde_json::json!([]);
    std::fs::write(GuardModel::card_path(&path), v.to_string()).unwrap();
    let e = GuardModel::load(&path).unwrap_err().to_string();
    assert!(e.contains("guard.json") && e.contains("outputs"), "{e}");
    std::fs::write(GuardModel::card_path(&path), card).unwrap();
    std::fs::write(&path, b"garbage").unwrap();
    assert!(GuardModel::load(&path).unwrap_err().to_string().contains("guard.safetensors"));
}

#[test]
fn overlapping_validation_is_flagged_and_the_temperature_stays_sane() {
    let (b, cats) = bench();
    let d = b.config.dim;
    let train = set(&b.coarse, &cats, d);
    let m = GuardModel::train(&train, Some(&train), b.config.encoder_id(), &quick(), None, &Device::flex()).unwrap();
    assert!(m.card.warnings.iter().any(|w| w.contains("also training samples")), "{:?}", m.card.warnings);
    assert!(m.card.temperature >= pairguard_model::calibrate::TEMPERATURE_MIN, "T = {}", m.card.temperature);
    let (p, _) = m.probabilities(&train.x, &Device::flex()).unwrap();
    assert!(p.iter().all(|&v| v > 1e-12 && v < 1.0 - 1e-12), "no absurd scores");
}

#[test]
fn the_mlp_head_trains_with_its_own_defaults() {
    let (b, cats) = bench();
    let d = b.config.dim;
    let train = set(&b.coarse, &cats, d);
    let val = set(&b.test_coarse, &cats, d);
    let cfg = GuardConfig { train: TrainConfig::for_head("mlp".parse().unwrap()), ..GuardConfig::default() };
    assert!(matches!(cfg.train.optimizer, Optimizer::Adamw { .. }));
    let m = GuardModel::train(&train, Some(&val), b.config.encoder_id(), &cfg, None, &Device::flex()).unwrap();
    assert_eq!(m.card.head, HeadKind::Mlp { hidden: 256, dropout: 0.2 });
    // L-BFGS refuses dropout, by name.
    let bad = GuardConfig { train: TrainConfig { optimizer: Optimizer::lbfgs(), ..cfg.train.clone() }, ..cfg };
    let e = GuardModel::train(&train, Some(&val), b.config.encoder_id(), &bad, None, &Device::flex()).unwrap_err().to_string();
    assert!(e.contains("L-BFGS") && e.contains("dropout"), "{e}");
}

/// A guard file whose standardisation divides by zero is refused at load,
/// naming the tensor and the dimension, instead of scoring NaN later.
#[test]
fn a_zero_deviation_in_a_guard_file_is_refused_at_load() {
    let (b, cats) = bench();
    let d = b.config.dim;
    let train = set(&b.coarse, &cats, d);
    let uncalibrated = GuardConfig { calibration: pairguard_model::CalibrationConfig::fixed(0.5), ..quick() };
    let mut m = GuardModel::train(&train, None, b.config.encoder_id(), &uncalibrated, None, &Device::flex()).unwrap();
    assert_eq!(m.norm.kind, NormKind::Standardize);
    m.norm.std[2] = 0.0;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zero.safetensors");
    m.save(&path).unwrap();
    let e = GuardModel::load(&path).unwrap_err().to_string();
    assert!(e.contains("zero.safetensors") && e.contains("norm.std") && e.contains("dimension 2"), "{e}");
    // Any non-finite value in the weights, too.
    m.norm.std[2] = 1.0;
    m.head.w1[3] = f32::INFINITY;
    m.save(&path).unwrap();
    let e = GuardModel::load(&path).unwrap_err().to_string();
    assert!(e.contains("zero.safetensors") && e.contains("\"head.w1\" has non-finite values"), "{e}");
}
