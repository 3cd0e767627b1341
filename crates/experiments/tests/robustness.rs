//! Robustness runs end to end on the synthetic benchmark's images with the
//! model crate's small fixture encoder: outputs, resuming, refusals.

use std::path::{Path, PathBuf};

use pairguard_clip::ImageEncoder;
use pairguard_data::synthetic::{Benchmark, Preset, SyntheticConfig};
use pairguard_data::{Dataset, LoadOptions};
use pairguard_experiments::robustness::{RobustnessConfig, RobustnessOptions, RobustnessReport, Subject};
use pairguard_model::head::{HeadKind, HeadWeights};
use pairguard_model::normalize::{FeatureNorm, NormKind};
use pairguard_model::robust::Corruption;
use pairguard_model::{Device, GuardModel};
use pairguard_run::Outcome;
use pairguard_run::{Assignment, Shard, Silent};

fn fixture_encoder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../clip/tests/fixtures/clip/hf-quickgelu/model.safetensors")
}

/// Images, the encoder, and a fixed linear guard saved beside them.
fn setup(dir: &Path) -> (Dataset, ImageEncoder, GuardModel, PathBuf) {
    let mut cfg = SyntheticConfig::preset(Preset::Tiny);
    cfg.images = 24;
    Benchmark::generate(&cfg).unwrap().write(dir).unwrap();
    let ds = Dataset::load(&dir.join("images.toml"), &LoadOptions { embeddings: false, ..Default::default() }).unwrap();
    let encoder = ImageEncoder::load(&fixture_encoder(), None, true, &Device::flex()).unwrap();
    let d = encoder.config.projection_dim;
    let w: Vec<f32> = (0..d).map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.4).collect();
    let head = HeadWeights { kind: HeadKind::Linear, input_dim: d, outputs: 1, w1: w, b1: vec![0.1], w2: None, b2: None, middle: Vec::new() };
    let norm = FeatureNorm { kind: NormKind::L2, ..FeatureNorm::identity(d) };
    let guard = GuardModel::fixed(head, norm, encoder.id.clone(), 0.5).unwrap();
    let path = dir.join("guard.safetensors");
    guard.save(&path).unwrap();
    (ds, encoder, guard, path)
}

fn config() -> RobustnessConfig {
    RobustnessConfig {
        attacks: ["fgsm", "gn", "deepfool"].iter().map(|a| a.parse().unwrap()).collect::<Vec<_>>(),
        eps: vec![0.02, 0.2],
        corruptions: vec![Corruption::Jpeg { quality: 20 }, Corruption::Noise { sigma: 16.0 }],
        samples: 10,
        batch: 3,
        ..RobustnessConfig::default()
    }
}

/// A run that is not a shard: its report.
fn run(
    subject: Subject,
    ds: &Dataset,
    cfg: &RobustnessConfig,
    out: &Path,
    opts: &RobustnessOptions,
) -> pairguard_experiments::Result<RobustnessReport> {
    pairguard_experiments::robustness::run(subject, ds, cfg, out, opts, &Silent).map(|m| match m {
        Outcome::Done(r) => *r,
        other => panic!("{other:?}"),
    })
}

fn outputs(out: &Path) -> Vec<(String, Vec<u8>)> {
    ["robustness.json", "robustness.csv", "robustness.md", "selection.json"]
        .iter()
        .map(|f| (f.to_string(), std::fs::read(out.join(f)).unwrap()))
        .collect()
}

#[test]
fn an_interrupted_run_resumes_to_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let (ds, encoder, guard, path) = setup(dir.path());
    let subject = Subject { guard: &guard, path: &path, encoder: &encoder };
    let cfg = config();
    let whole = dir.path().join("whole");
    let report = run(subject, &ds, &cfg, &whole, &RobustnessOptions::default()).unwrap();
    assert!(report.finished);
    let sel = &report.selection;
    assert_eq!(sel.selected.len(), sel.correct.min(10));
    assert!(sel.examined >= sel.selected.len() && sel.candidates == 24);
    // Every attacked image is one the guard classified correctly, in every slice.
    let all: Vec<_> = report.rows.iter().filter(|r| r.slice == "all").collect();
    assert_eq!(all.len(), 3 * 2 + 2, "one row per attack and eps, and per corruption");
    assert!(all.iter().all(|r| r.n == sel.selected.len()));
    assert!(report.rows.iter().any(|r| r.slice.starts_with("category:")) && report.rows.iter().any(|r| r.slice.starts_with("source:")));
    for r in &all {
        assert!(r.ci_low <= r.robust_accuracy && r.robust_accuracy <= r.ci_high, "{r:?}");
        assert!((r.robust_accuracy + r.success_rate - 1.0).abs() < 1e-12);
    }
    let fgsm = all.iter().find(|r| r.attack == "fgsm" && r.eps == 0.02).unwrap();
    assert!((fgsm.max_norm - 0.02).abs() < 1e-6 && fgsm.norm == "linf", "{fgsm:?}");
    let gn = all.iter().find(|r| r.attack == "gn" && r.eps == 0.2).unwrap();
    assert!(gn.max_norm <= 0.2 + 1e-5 && gn.norm == "l2", "{gn:?}");
    // Larger budgets never help the guard against DeepFool, which is run once and clipped.
    let df: Vec<_> = all.iter().filter(|r| r.attack == "deepfool").collect();
    assert!(df[0].robust_accuracy >= df[1].robust_accuracy);
    for f in ["robustness.png", "robustness.svg"] {
        assert!(whole.join(f).is_file(), "{f}");
    }

    // Stopped after two batches, then resumed: the same files.
    let parts = dir.path().join("parts");
    let stop = RobustnessOptions { max_batches: Some(2), ..Default::default() };
    let first = run(subject, &ds, &cfg, &parts, &stop).unwrap();
    assert!(!first.finished && !parts.join("robustness.json").exists());
    assert_eq!(std::fs::read_dir(parts.join("parts")).unwrap().count(), 2);
    let resumed = run(subject, &ds, &cfg, &parts, &RobustnessOptions::default()).unwrap();
    assert!(resumed.finished);
    assert!(outputs(&whole) == outputs(&parts), "a resumed run writes what an uninterrupted one does");

    // Other settings in the same folder are refused.
    let mut changed = cfg.clone();
    changed.seed = 9;
    let err = run(subject, &ds, &changed, &parts, &RobustnessOptions::default()).unwrap_err().to_string();
    assert!(err.contains("another guard, encoder, dataset or settings"), "{err}");
}

#[test]
fn saved_adversarial_images_and_few_correct_images_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (ds, encoder, guard, path) = setup(dir.path());
    let subject = Subject { guard: &guard, path: &path, encoder: &encoder };
    let cfg = RobustnessConfig {
        attacks: vec!["fgsm".parse().unwrap()],
        eps: vec![0.1],
        corruptions: vec![],
        samples: 1000,
        batch: 8,
        ..RobustnessConfig::default()
    };
    let out = dir.path().join("r");
    let opts = RobustnessOptions { save_adversarial: true, ..Default::default() };
    let report = run(subject, &ds, &cfg, &out, &opts).unwrap();
    assert!(report.fewer_than_requested, "24 images cannot give 1000 correct ones");
    assert_eq!(report.selection.examined, 24);
    assert!(std::fs::read_to_string(out.join("robustness.md")).unwrap().contains("fewer images were classified correctly"));
    let dir = out.join("adversarial/fgsm/eps-0.1");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), report.selection.selected.len());
    // Asked for later, the images of a finished run are made then, and the results stay.
    let csv = std::fs::read(out.join("robustness.csv")).unwrap();
    std::fs::remove_dir_all(out.join("adversarial")).unwrap();
    run(subject, &ds, &cfg, &out, &RobustnessOptions::default()).unwrap();
    assert!(!dir.exists(), "without the option no images are written");
    run(subject, &ds, &cfg, &out, &opts).unwrap();
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), report.selection.selected.len());
    assert_eq!(std::fs::read(out.join("robustness.csv")).unwrap(), csv);
}

#[test]
fn bad_settings_and_data_fail_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let (ds, encoder, guard, path) = setup(dir.path());
    let subject = Subject { guard: &guard, path: &path, encoder: &encoder };
    for (cfg, needle) in [
        (RobustnessConfig { eps: vec![0.0], ..config() }, "--eps 0"),
        (RobustnessConfig { eps: vec![f64::NAN], ..config() }, "--eps NaN"),
        (RobustnessConfig { samples: 0, ..config() }, "--samples 0"),
        (RobustnessConfig { attacks: vec![], corruptions: vec![], ..config() }, "nothing to measure"),
    ] {
        let out = dir.path().join("never");
        let err = run(subject, &ds, &cfg, &out, &RobustnessOptions::default()).unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
        assert!(!out.exists(), "nothing is written for a refused run");
    }
    // A dataset of embeddings only has nothing to attack.
    let coarse = Dataset::load(&dir.path().join("coarse.toml"), &LoadOptions::default()).unwrap();
    let err = run(subject, &coarse, &config(), &dir.path().join("x"), &RobustnessOptions::default()).unwrap_err().to_string();
    assert!(err.contains("has no images"), "{err}");
    // Only AI-generated images exist here.
    let real = RobustnessConfig { source: Some(pairguard_data::Source::Real), ..config() };
    let err = run(subject, &ds, &real, &dir.path().join("y"), &RobustnessOptions::default()).unwrap_err().to_string();
    assert!(err.contains("no images of source real"), "{err}");
}

/// Shards of the attacked batches, one interrupted and resumed, collect to
/// the files of a one-machine run.
#[test]
fn sharded_runs_collect_to_the_one_machine_files() {
    let dir = tempfile::tempdir().unwrap();
    let (ds, encoder, guard, path) = setup(dir.path());
    let subject = Subject { guard: &guard, path: &path, encoder: &encoder };
    let cfg = config();
    let whole = dir.path().join("whole");
    run(subject, &ds, &cfg, &whole, &RobustnessOptions::default()).unwrap();
    let out = dir.path().join("sharded");
    let as_ = |assignment, max_batches| {
        let opts = RobustnessOptions { assignment, max_batches, ..Default::default() };
        pairguard_experiments::robustness::run(subject, &ds, &cfg, &out, &opts, &Silent)
    };
    let shard = |i| Assignment::Shard(Shard::new(i, 3).unwrap());
    let e = as_(Assignment::Collect, None).unwrap_err().to_string();
    assert!(e.contains("no shard has drawn the images"), "{e}");
    // Up to 10 images in batches of 3: 4 batches, shards of 1, 1 and 2.
    let Outcome::Interrupted = as_(shard(2), Some(1)).unwrap() else { panic!("an interrupted shard leaves no marker") };
    for i in [2, 0] {
        let Outcome::Shard { .. } = as_(shard(i), None).unwrap() else { panic!("shard {i}") };
    }
    assert!(!out.join("robustness.json").exists(), "a shard writes no report");
    let e = as_(Assignment::Collect, None).unwrap_err().to_string();
    assert!(e.contains("shards not finished: 1/3"), "{e}");
    as_(shard(1), None).unwrap();
    let Outcome::Done(r) = as_(Assignment::Collect, None).unwrap() else { panic!("collect reports") };
    assert!(r.finished);
    assert!(outputs(&whole) == outputs(&out), "collected shards write what a one-machine run does");
    assert_eq!(std::fs::read(whole.join("robustness.svg")).unwrap(), std::fs::read(out.join("robustness.svg")).unwrap());
}
