//! A tiny sweep end to end: outputs, determinism, resuming, and the report
//! naming every input.

use std::path::{Path, PathBuf};

use pairguard_experiments::{RunOptions, run_experiment};
use pairguard_run::Outcome;
use pairguard_run::{Assignment, Shard};

const TINY: &str = r#"
name = "tiny"
[data.synthetic]
dim = 16
categories = 3
clusters = 4
coarse = 300
pairs = 80
test = 150
test_pairs = 40
seed = 1

[train]
optimizer = { kind = "lbfgs", iterations = 30 }

[sweep]
budgets = [16, 32, 64]
strategies = [{ kind = "coarse-only" }, { kind = "ratio", pair_fraction = 0.5 }, { kind = "ratio-unpaired", pair_fraction = 0.5 }]
seeds = [0, 1, 2]

[report]
metrics = ["auroc", "pair_accuracy"]
baseline = "coarse"
target = { metric = "auroc", test = "shifted", value = 0.6 }
"#;

fn setup(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tiny.toml");
    std::fs::write(&cfg, text).unwrap();
    (dir, cfg)
}

fn opts(max_groups: Option<usize>) -> RunOptions {
    RunOptions { device: pairguard_model::Device::flex(), hub: Default::default(), max_groups, assignment: Assignment::Whole }
}

fn run(cfg: &Path, out: &Path, max_groups: Option<usize>) -> pairguard_experiments::Result<PathBuf> {
    run_as(cfg, out, max_groups, Assignment::Whole).map(|f| match f {
        Outcome::Done(p) => p,
        other => panic!("{other:?}"),
    })
}

fn run_as(cfg: &Path, out: &Path, max_groups: Option<usize>, assignment: Assignment) -> pairguard_experiments::Result<Outcome<PathBuf>> {
    run_experiment(cfg, out, &RunOptions { assignment, ..opts(max_groups) }, &pairguard_run::Silent)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn tiny_sweep_writes_every_output_and_is_deterministic() {
    let (dir, cfg) = setup(TINY);
    let out1 = dir.path().join("r1");
    let report = run(&cfg, &out1, None).unwrap();
    let fits = read(&out1.join("fits.csv"));
    // 3 strategies x 3 seeds x 3 budgets x 3 test sets, plus the header.
    assert_eq!(fits.lines().count(), 1 + 3 * 3 * 3 * 3);
    assert!(fits.lines().next().unwrap().starts_with("strategy,budget,seed,test,n_train"));
    let summary = read(&out1.join("summary.csv"));
    assert!(summary.contains("shifted,coarse,64,auroc,3,"), "{summary}");
    for f in ["comparisons.csv", "manifest.json", "plots/shifted_auroc.png", "plots/shifted_auroc.svg", "plots/pairs_pair_accuracy.png"] {
        assert!(out1.join(f).is_file(), "missing {f}");
    }
    let png = image::open(out1.join("plots/shifted_auroc.png")).unwrap();
    assert_eq!((png.width(), png.height()), (900, 560));
    // The report names every input: each data file with its hash, and the config.
    let md = read(&report);
    let identity: serde_json::Value = serde_json::from_str(&read(&out1.join("identity.json"))).unwrap();
    for (file, hash) in identity["data_sha256"].as_object().unwrap() {
        assert!(md.contains(file.as_str()) && md.contains(hash.as_str().unwrap()), "report lacks {file}");
    }
    assert!(identity["data_sha256"].as_object().unwrap().len() >= 5 * 4, "descriptor, manifest, store and index per dataset");
    assert!(md.contains("## Sample efficiency") && md.contains("name = \"tiny\""));
    // Same seed, same CSV.
    let out2 = dir.path().join("r2");
    run(&cfg, &out2, None).unwrap();
    assert_eq!(fits, read(&out2.join("fits.csv")));
}

#[test]
fn an_interrupted_sweep_resumes_to_identical_results() {
    let (dir, cfg) = setup(TINY);
    let full = dir.path().join("full");
    run(&cfg, &full, None).unwrap();
    let part = dir.path().join("part");
    run(&cfg, &part, Some(2)).unwrap();
    let groups = std::fs::read_dir(part.join("fits")).unwrap().count();
    assert_eq!(groups, 2, "stopped after two (strategy, seed) groups");
    let partial_rows = read(&part.join("fits.csv")).lines().count();
    assert!(partial_rows < read(&full.join("fits.csv")).lines().count());
    // Finished groups are not redone: their files keep their modification time.
    let first = std::fs::read_dir(part.join("fits")).unwrap().next().unwrap().unwrap().path();
    let before = std::fs::metadata(&first).unwrap().modified().unwrap();
    run(&cfg, &part, None).unwrap();
    assert_eq!(std::fs::metadata(&first).unwrap().modified().unwrap(), before);
    assert_eq!(read(&full.join("fits.csv")), read(&part.join("fits.csv")));
    assert_eq!(read(&full.join("summary.csv")), read(&part.join("summary.csv")));
}

/// Shards of the (strategy, seed) groups, one interrupted and resumed,
/// collect to the results of a one-machine run.
#[test]
fn sharded_sweeps_collect_to_the_one_machine_results() {
    let (dir, cfg) = setup(TINY);
    let whole = dir.path().join("whole");
    run(&cfg, &whole, None).unwrap();
    let out = dir.path().join("sharded");
    let shard = |i| Assignment::Shard(Shard::new(i, 4).unwrap());
    // 9 groups: shards of 2, 2, 2 and 3.
    let Outcome::Interrupted = run_as(&cfg, &out, Some(1), shard(3)).unwrap() else { panic!("an interrupted shard leaves no marker") };
    for i in [3, 0, 2] {
        let Outcome::Shard { marker: m, .. } = run_as(&cfg, &out, None, shard(i)).unwrap() else { panic!("shard {i}") };
        assert!(m.ends_with(format!("shards/{i}-of-4.json")), "{}", m.display());
    }
    assert_eq!(std::fs::read_dir(out.join("fits")).unwrap().count(), 7);
    assert!(!out.join("fits.csv").exists(), "a shard writes no report");
    let e = run_as(&cfg, &out, None, Assignment::Collect).unwrap_err().to_string();
    assert!(e.contains("shards not finished: 1/4"), "{e}");
    run_as(&cfg, &out, None, shard(1)).unwrap();
    let Outcome::Done(_) = run_as(&cfg, &out, None, Assignment::Collect).unwrap() else { panic!("collect reports") };
    for f in ["fits.csv", "summary.csv", "comparisons.csv", "plots/shifted_auroc.svg", "plots/shifted_auroc.png"] {
        assert_eq!(std::fs::read(whole.join(f)).unwrap(), std::fs::read(out.join(f)).unwrap(), "{f}");
    }
    // A shard of a changed experiment is refused by the folder.
    std::fs::write(&cfg, TINY.replace("iterations = 30", "iterations = 31")).unwrap();
    assert!(run_as(&cfg, &out, None, shard(0)).unwrap_err().to_string().contains("different experiment"));
}

#[test]
fn a_results_folder_refuses_a_changed_experiment() {
    let (dir, cfg) = setup(TINY);
    let out = dir.path().join("r");
    run(&cfg, &out, Some(1)).unwrap();
    std::fs::write(&cfg, TINY.replace("iterations = 30", "iterations = 31")).unwrap();
    let e = run(&cfg, &out, None).unwrap_err().to_string();
    assert!(e.contains("different experiment"), "{e}");
}

#[test]
fn a_test_split_of_a_pool_never_enters_training_and_other_pools_are_used_whole() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = pairguard_data::synthetic::SyntheticConfig::tiny();
    pairguard_data::synthetic::Benchmark::generate(&cfg).unwrap().write(&dir.path().join("bench")).unwrap();
    let text = r#"
name = "descriptors"
[data]
coarse = "bench/coarse.toml"
pairs = "bench/pairs.toml"
tests = [{ name = "heldout-pairs", dataset = "bench/pairs.toml", split = "test" }, { name = "shifted", dataset = "bench/test-shifted.toml" }]
split = { train = 0.8, validation = 0.0, test = 0.2, seed = 3 }
[sweep]
budgets = [16]
strategies = [{ kind = "coarse-only" }]
seeds = [0]
"#;
    let path = dir.path().join("x.toml");
    std::fs::write(&path, text).unwrap();
    let (exp, _) = pairguard_experiments::Experiment::from_file(&path).unwrap();
    let data = pairguard_experiments::sweep::SweepData::load(&exp, dir.path(), &dir.path().join("unused"), &Default::default()).unwrap();
    assert_eq!(data.coarse.len(), cfg.coarse, "a pool no test set splits is used whole");
    let heldout = &data.tests[0].1;
    assert_eq!(heldout.pairs.len() * 2, heldout.len(), "the held-out split keeps whole pairs");
    assert_eq!(data.pairs.len() + heldout.len(), 2 * cfg.pairs);
    let train: std::collections::HashSet<&String> = data.pairs.ids.iter().collect();
    assert!(heldout.ids.iter().all(|id| !train.contains(id)), "held-out pairs leaked into the pool");
}

/// A probe trained on N samples is standardised with those N samples'
/// statistics, whatever else is in the pool.
#[test]
fn each_head_is_standardised_on_its_own_training_set() {
    let (dir, cfg) = setup(TINY);
    let (exp, _) = pairguard_experiments::Experiment::from_file(&cfg).unwrap();
    let data = pairguard_experiments::sweep::SweepData::load(&exp, dir.path(), &dir.path().join("data"), &Default::default()).unwrap();
    let pool = data.coarse.concat(&data.pairs);
    let rows: Vec<usize> = (0..16).collect();
    let guards = pairguard_model::train_guards(
        &pool,
        &[rows.clone(), (0..pool.len()).collect()],
        None,
        &data.encoder,
        &exp.guard(),
        None,
        &pairguard_model::Device::flex(),
    )
    .unwrap();
    let own = pairguard_model::FeatureNorm::fit_rows(pairguard_model::NormKind::Standardize, &pool.x, pool.dim, &rows);
    assert_eq!(guards[0].norm, own);
    assert_ne!(guards[0].norm, guards[1].norm);
    assert_eq!(guards[0].card.training_samples, 16);
}

#[test]
fn options_a_sweep_cannot_honour_are_errors() {
    for (option, needle) in [
        ("weight_decay_grid = [0.001, 0.01]", "weight_decay_grid"),
        ("early_stopping = { patience = 3 }", "early_stopping"),
        ("learning_rate = 0.1", "unknown field `learning_rate`"),
        ("optimizer = { kind = \"lbfgs\", learning_rate = 0.1 }", "unknown field `learning_rate`"),
    ] {
        let text = if option.starts_with("optimizer") {
            TINY.replace("optimizer = { kind = \"lbfgs\", iterations = 30 }", option)
        } else {
            TINY.replace("[train]\n", &format!("[train]\n{option}\n"))
        };
        let (_dir, cfg) = setup(&text);
        let e = pairguard_experiments::Experiment::from_file(&cfg).unwrap_err().to_string();
        assert!(e.contains(needle), "{option}: {e}");
    }
    let (_dir, cfg) = setup(&format!("{TINY}\n[calibration]\nthreshold = {{ rule = \"best-f1\" }}\n"));
    let e = pairguard_experiments::Experiment::from_file(&cfg).unwrap_err().to_string();
    assert!(e.contains("needs validation data"), "{e}");
}

/// With a validation set, a sweep selects the weight decay, fits a
/// temperature and a threshold per head, as `train` does.
#[test]
fn a_sweep_with_validation_data_selects_and_calibrates_each_head() {
    let dir = tempfile::tempdir().unwrap();
    pairguard_data::synthetic::Benchmark::generate(&pairguard_data::synthetic::SyntheticConfig::tiny())
        .unwrap()
        .write(&dir.path().join("bench"))
        .unwrap();
    let text = r#"
name = "validated"
[data]
coarse = "bench/coarse.toml"
pairs = "bench/pairs.toml"
tests = [{ name = "shifted", dataset = "bench/test-shifted.toml" }]
validation = { name = "val", dataset = "bench/test-coarse.toml" }
[train]
weight_decay_grid = [0.0001, 0.01, 1.0]
[calibration]
threshold = { rule = "best-f1" }
temperature = true
[sweep]
budgets = [32, 64]
strategies = [{ kind = "coarse-only" }, { kind = "ratio", pair_fraction = 0.5 }]
seeds = [0, 1]
"#;
    let cfg = dir.path().join("v.toml");
    std::fs::write(&cfg, text).unwrap();
    let out = dir.path().join("r");
    let report = run(&cfg, &out, None).unwrap();
    let mut r = csv::Reader::from_path(out.join("fits.csv")).unwrap();
    let rows: Vec<pairguard_experiments::FitRow> = r.deserialize().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2 * 2 * 2);
    assert!(rows.iter().all(|f| [0.0001, 0.01, 1.0].contains(&f.weight_decay)));
    assert!(rows.iter().any(|f| f.temperature != 1.0), "temperatures are fitted");
    assert!(rows.iter().any(|f| f.threshold != 0.5), "thresholds are chosen on validation");
    assert!(read(&report).contains("calibrated on 200 validation samples"), "{}", read(&report));
}

#[test]
fn embedding_robust_accuracy_is_a_sweep_metric() {
    let text = TINY
        .replace("seeds = [0, 1, 2]", "seeds = [0, 1, 2]\nembedding_eps = 0.05")
        .replace("metrics = [\"auroc\", \"pair_accuracy\"]", "metrics = [\"auroc\", \"pair_accuracy\", \"robust_accuracy\"]");
    let (dir, cfg) = setup(&text);
    let out = dir.path().join("r");
    let report = run(&cfg, &out, None).unwrap();
    let mut reader = csv::Reader::from_path(out.join("fits.csv")).unwrap();
    let rows: Vec<pairguard_experiments::FitRow> = reader.deserialize().map(Result::unwrap).collect();
    assert!(rows.iter().all(|r| r.robust_accuracy.is_finite() && r.robust_accuracy <= r.accuracy + 1e-12), "robust accuracy never exceeds accuracy");
    assert!(rows.iter().any(|r| r.robust_accuracy < r.accuracy), "eps 0.05 flips some verdicts");
    assert!(read(&report).contains("### robust_accuracy") && out.join("plots/shifted_robust_accuracy.png").is_file());

    // Asking for the metric without saying the perturbation size is refused.
    let (dir, cfg) = setup(&text.replace("embedding_eps = 0.05", ""));
    let e = run(&cfg, &dir.path().join("r"), None).unwrap_err().to_string();
    assert!(e.contains("sweep.embedding_eps"), "{e}");
}

/// Every experiment file in `experiments/` parses and names valid settings.
#[test]
fn shipped_experiment_files_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            pairguard_experiments::Experiment::from_file(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            n += 1;
        }
    }
    assert!(n >= 5, "{n} experiment files");
}

#[test]
fn baselines_are_scored_drawn_and_overtaken() {
    let (dir, cfg) = setup(TINY);
    let out = dir.path().join("plain");
    run(&cfg, &out, None).unwrap();
    // A saved guard of the same encoder, trained once from the pools.
    let data = pairguard_experiments::sweep::SweepData::load(
        &pairguard_experiments::Experiment::from_file(&cfg).unwrap().0,
        dir.path(),
        &out.join("data"),
        &Default::default(),
    )
    .unwrap();
    let guard = pairguard_model::GuardModel::train(
        &data.coarse,
        None,
        data.encoder.clone(),
        &pairguard_model::GuardConfig { calibration: pairguard_model::CalibrationConfig::fixed(0.5), ..Default::default() },
        None,
        &pairguard_model::Device::flex(),
    )
    .unwrap();
    guard.save(&dir.path().join("full.safetensors")).unwrap();
    let text = format!(
        "{TINY}\n[[baselines]]\nkind = \"zero-shot\"\nname = \"policy\"\n\n[[baselines]]\nkind = \"guard\"\nname = \"all-coarse\"\nmodel = \"full.safetensors\"\n"
    );
    std::fs::write(&cfg, &text).unwrap();
    let out = dir.path().join("with");
    let report = read(&run(&cfg, &out, None).unwrap());
    assert!(report.contains("## Baselines") && report.contains("| policy | shifted |") && report.contains("| all-coarse | shifted |"), "{report}");
    assert!(report.contains("overtakes each baseline"), "{report}");
    let csv = read(&out.join("baselines.csv"));
    assert_eq!(csv.lines().next().unwrap(), "baseline,test,metric,value");
    assert_eq!(csv.lines().count(), 1 + 2 * 3 * 12);
    let auroc = |b: &str, t: &str| -> f64 {
        let line = csv.lines().find(|l| l.starts_with(&format!("{b},{t},auroc,"))).unwrap();
        line.rsplit(',').next().unwrap().parse().unwrap()
    };
    assert!(auroc("policy", "shifted") > 0.5 && auroc("all-coarse", "coarse") > 0.5);
    // The plots have the baselines' lines: the same plot differs from the run without them.
    assert_ne!(std::fs::read(out.join("plots/shifted_auroc.svg")).unwrap(), std::fs::read(dir.path().join("plain/plots/shifted_auroc.svg")).unwrap());
    assert!(read(&out.join("plots/shifted_auroc.svg")).contains("all-coarse"));

    // Names must be unique, and a guard of another encoder is refused.
    std::fs::write(&cfg, format!("{TINY}\n[[baselines]]\nkind = \"guard\"\nname = \"coarse\"\nmodel = \"full.safetensors\"\n")).unwrap();
    let e = run(&cfg, &dir.path().join("x"), None).unwrap_err().to_string();
    assert!(e.contains("\"coarse\" is used twice"), "{e}");
    let other = pairguard_data::EncoderId { weights_sha256: "other".into(), ..data.encoder.clone() };
    let foreign = pairguard_model::GuardModel { card: pairguard_model::ModelCard { encoder: other, ..guard.card.clone() }, ..guard.clone() };
    foreign.save(&dir.path().join("foreign.safetensors")).unwrap();
    std::fs::write(&cfg, format!("{TINY}\n[[baselines]]\nkind = \"guard\"\nname = \"foreign\"\nmodel = \"foreign.safetensors\"\n")).unwrap();
    let e = run(&cfg, &dir.path().join("y"), None).unwrap_err().to_string();
    assert!(e.contains("baseline \"foreign\"") && e.contains("encoder mismatch"), "{e}");
}

#[test]
fn policy_text_trains_prompt_heads_and_joins_training_sets() {
    let prompt = TINY.replace("[train]\n", "[text]\n\n[train]\nhead = { kind = \"prompt\" }\nnormalization = \"l2\"\n");
    let (dir, cfg) = setup(&prompt);
    let out = dir.path().join("prompt");
    run(&cfg, &out, None).unwrap();
    let fits = read(&out.join("fits.csv"));
    assert!(fits.lines().count() > 1);
    let manifest: serde_json::Value = serde_json::from_str(&read(&out.join("manifest.json"))).unwrap();
    assert_eq!(manifest["experiment"]["train"]["head"]["kind"], "prompt");
    // Prompts as data: 6 prompts (3 categories x unsafe, safe) join every training set.
    let as_data = TINY.replace("[train]\n", "[text]\nas_data = true\n\n[train]\n");
    std::fs::write(&cfg, &as_data).unwrap();
    let out = dir.path().join("as-data");
    run(&cfg, &out, None).unwrap();
    let fits = read(&out.join("fits.csv"));
    let header: Vec<&str> = fits.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    for line in fits.lines().skip(1) {
        let v: Vec<&str> = line.split(',').collect();
        let (budget, n_train): (usize, usize) = (v[col("budget")].parse().unwrap(), v[col("n_train")].parse().unwrap());
        assert_eq!(n_train, budget, "the budget counts images; {line}");
    }
    std::fs::write(&cfg, TINY).unwrap();
    run(&cfg, &dir.path().join("plain"), None).unwrap();
    assert_ne!(fits, read(&dir.path().join("plain/fits.csv")), "the prompts changed the probes");
    // A prompt head without [text], and zero-shot initialisation of an MLP, are refused.
    std::fs::write(&cfg, TINY.replace("[train]\n", "[train]\nhead = { kind = \"prompt\" }\nnormalization = \"l2\"\n")).unwrap();
    let e = run(&cfg, &dir.path().join("x"), None).unwrap_err().to_string();
    assert!(e.contains("needs [text]"), "{e}");
    std::fs::write(
        &cfg,
        TINY.replace("[train]\n", "[text]\nzero_shot_init = true\n\n[train]\nhead = { kind = \"mlp\", hidden = 8, dropout = 0.0 }\n"),
    )
    .unwrap();
    let e = run(&cfg, &dir.path().join("y"), None).unwrap_err().to_string();
    assert!(e.contains("zero_shot_init applies to linear and prompt heads"), "{e}");
}
