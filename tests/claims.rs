//! The project's core claims as tests, on the synthetic benchmark where the
//! ground truth is known: at a budget of 16 samples, mixing whole pairs into
//! a guard's training data beats coarse data alone and beats its unpaired
//! control (the same pair-pool images, never both members of a pair), each
//! by a 95% interval over 10 training seeds that excludes 0, on two
//! benchmark seeds; and pairs the built-in editor makes from coarse images
//! help over coarse data. These catch a silent regression in mixing,
//! training or evaluation that the plumbing tests cannot.

mod common;

use std::path::Path;

use common::{fixture_encoder, ok};
use pairguard_experiments::stats::{MeanCi, mean_ci};

/// AUROC on `test` at `budget` per training seed, for `strategy`.
fn auroc_by_seed(fits: &Path, strategy: &str, test: &str, budget: usize) -> Vec<(u64, f64)> {
    let text = std::fs::read_to_string(fits).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name} in {}", fits.display()));
    let (s, b, k, t, a) = (col("strategy"), col("budget"), col("seed"), col("test"), col("auroc"));
    let mut out: Vec<(u64, f64)> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|r| r[s] == strategy && r[t] == test && r[b] == budget.to_string())
        .map(|r| (r[k].parse().unwrap(), r[a].parse().unwrap()))
        .collect();
    out.sort_by_key(|p| p.0);
    out
}

/// The mean and 95% interval of `a - b` over the seeds both have.
fn paired_gain(fits: &Path, a: &str, b: &str, test: &str, budget: usize) -> MeanCi {
    let (xa, xb) = (auroc_by_seed(fits, a, test, budget), auroc_by_seed(fits, b, test, budget));
    assert_eq!(xa.iter().map(|p| p.0).collect::<Vec<_>>(), xb.iter().map(|p| p.0).collect::<Vec<_>>(), "{a} and {b} have other seeds");
    assert_eq!(xa.len(), 10, "{a} at {budget} on {test}: {xa:?}");
    mean_ci(&xa.iter().zip(&xb).map(|(x, y)| x.1 - y.1).collect::<Vec<_>>())
}

fn experiment(seed: u64) -> String {
    format!(
        r#"name = "claims"
[data.synthetic]
seed = {seed}

[train]
head = {{ kind = "linear" }}
optimizer = {{ kind = "lbfgs", iterations = 100 }}
normalization = "standardize"
weight_decay = 0.001

[sweep]
budgets = [16]
strategies = [{{ kind = "coarse-only" }}, {{ kind = "ratio", pair_fraction = 0.5 }}, {{ kind = "ratio-unpaired", pair_fraction = 0.5 }}]
seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]

[report]
metrics = ["auroc"]
baseline = "coarse"
"#
    )
}

#[test]
fn whole_pairs_beat_coarse_data_and_their_unpaired_control_at_16_samples() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for seed in [0, 1] {
        std::fs::write(d.join(format!("claims-{seed}.toml")), experiment(seed)).unwrap();
        let out = format!("res-{seed}");
        ok(&["sweep", &format!("claims-{seed}.toml"), "--out", &out, "--device", "cpu"], d);
        let fits = d.join(&out).join("fits.csv");
        for test in ["shifted", "pairs"] {
            let over_coarse = paired_gain(&fits, "ratio-0.5", "coarse", test, 16);
            assert!(over_coarse.ci_low > 0.0, "benchmark seed {seed}, {test}: pairs over coarse data {over_coarse:?}");
            let over_control = paired_gain(&fits, "ratio-0.5", "ratio-0.5-unpaired", test, 16);
            let show = |g: &MeanCi| format!("{:+.3} [{:+.3}, {:+.3}]", g.mean, g.ci_low, g.ci_high);
            eprintln!(
                "benchmark seed {seed}, {test}, 16 samples: over coarse {}, over the unpaired control {}",
                show(&over_coarse),
                show(&over_control)
            );
            assert!(over_control.ci_low > 0.0, "benchmark seed {seed}, {test}: whole pairs over their unpaired control {over_control:?}");
        }
    }
}

#[test]
fn pairs_the_builtin_editor_makes_help_over_coarse_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["synth", "--images", "200", "--coarse-images", "600", "--cross-contrast", "0.2", "--out", "bench"], d);
    let encoder = fixture_encoder();
    let encoder = encoder.to_str().unwrap();
    for set in ["coarse-images", "test-shifted-images"] {
        ok(&["embed", &format!("bench/{set}.toml"), "--encoder", encoder, "--device", "cpu"], d);
    }
    ok(&["train", "--train", "bench/coarse-images.toml", "--device", "cpu", "--out", "verifier.safetensors"], d);
    #[rustfmt::skip]
    ok(&["pairs", "generate", "--data", "bench/coarse-images.toml", "--policy", "bench/policy.toml", "--editor", "synthetic",
        "--verifier", "verifier.safetensors", "--sources", "200", "--device", "cpu", "--out", "pairs"], d);
    ok(&["embed", "pairs/pairs.toml", "--encoder", encoder, "--device", "cpu"], d);
    let exp = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/generated-pairs.toml"))
        .unwrap()
        .replace("../results/generated-pairs-data/", "")
        .replace("budgets = [8, 16, 32, 64, 128, 256]", "budgets = [16, 32]");
    std::fs::write(d.join("generated.toml"), exp).unwrap();
    ok(&["sweep", "generated.toml", "--out", "res", "--device", "cpu"], d);
    for budget in [16, 32] {
        let gain = paired_gain(&d.join("res/fits.csv"), "ratio-0.5", "coarse", "shifted", budget);
        eprintln!("generated pairs over coarse data at {budget}: {:+.3} [{:+.3}, {:+.3}]", gain.mean, gain.ci_low, gain.ci_high);
        assert!(gain.ci_low > 0.0, "generated pairs over coarse data at {budget}: {gain:?}");
    }
}
