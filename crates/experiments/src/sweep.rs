//! Running a sweep: every (strategy, seed) trains all budgets as one bank of
//! heads (the training sets are nested prefixes of one seeded order), then
//! scores each head on every test set. Each finished (strategy, seed) group
//! is written atomically to `fits/`, so an interrupted sweep resumes where
//! it stopped and gives the same files as an uninterrupted one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use pairguard_data::hash::{sha256_bytes, sha256_file, write_atomic};
use pairguard_data::split::{assign, SplitConfig};
use pairguard_data::synthetic::Benchmark;
use pairguard_data::{Dataset, EncoderId, LoadOptions, Mixer, Split, Strategy};
use pairguard_model::{bank_logits, evaluate_scores, fit_bank, BankJob, Device, FeatureNorm, LabeledSet};
use serde::{Deserialize, Serialize};

use crate::config::Experiment;

/// One trained head scored on one test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitRow {
    pub strategy: String,
    pub budget: usize,
    pub seed: u64,
    pub test: String,
    pub n_train: usize,
    pub n_coarse: usize,
    pub n_pair_pool: usize,
    pub whole_pairs: usize,
    pub epochs: usize,
    pub auroc: f64,
    pub auprc: f64,
    pub f1: f64,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub ece: f64,
    pub tpr_at_fpr: f64,
    pub pair_accuracy: f64,
    pub ordering_accuracy: f64,
    pub flip_rate: f64,
    pub precision: f64,
}

impl FitRow {
    pub fn metric(&self, name: &str) -> f64 {
        match name {
            "auroc" => self.auroc,
            "auprc" => self.auprc,
            "f1" => self.f1,
            "accuracy" => self.accuracy,
            "balanced_accuracy" => self.balanced_accuracy,
            "ece" => self.ece,
            "tpr_at_fpr" => self.tpr_at_fpr,
            "pair_accuracy" => self.pair_accuracy,
            "ordering_accuracy" => self.ordering_accuracy,
            "flip_rate" => self.flip_rate,
            "precision" => self.precision,
            _ => f64::NAN,
        }
    }
}

/// Where a sweep reads its data: pools and named test sets as labelled
/// features, plus the files they came from (for the report's hashes).
#[derive(Debug)]
pub struct SweepData {
    pub encoder: EncoderId,
    pub coarse: LabeledSet,
    pub pairs: LabeledSet,
    pub tests: Vec<(String, LabeledSet)>,
    pub files: Vec<PathBuf>,
}

/// Gives every sample a split: manifest splits are kept, the rest are
/// assigned by `cfg` (grouped, so pairs never straddle train and test).
fn split(ds: &Dataset, cfg: &SplitConfig) -> anyhow::Result<Dataset> {
    let mut ds = ds.clone();
    assign(&mut ds.samples, cfg)?;
    Ok(ds)
}

/// A pool's training samples. A dataset that a test set also draws a split
/// from, or whose manifest fixes splits, contributes only its `train` part,
/// so test samples never enter training; otherwise all of it.
fn pool(ds: &Dataset, cfg: &SplitConfig, tested_here: bool) -> anyhow::Result<LabeledSet> {
    if tested_here || ds.samples.iter().any(|s| s.split.is_some()) {
        LabeledSet::from_dataset(&split(ds, cfg)?, Some(Split::Train), None)
    } else {
        LabeledSet::from_dataset(ds, None, None)
    }
}

fn load(path: &Path, embeddings: Option<&Path>, skip_invalid: bool) -> anyhow::Result<Dataset> {
    let opts = LoadOptions {
        skip_invalid,
        image_check: pairguard_data::images::ImageCheck::None,
        hub: pairguard_data::hub::HubOptions::from_env(),
    };
    let mut ds = Dataset::load(path, &opts)?;
    for f in &ds.report.findings {
        eprintln!("warning: dropped: {f}");
    }
    if let Some(e) = embeddings {
        ds.embeddings = Some(pairguard_data::EmbeddingStore::load(e)?);
        // Absolute, so it resolves the same against the descriptor's folder.
        ds.descriptor.embeddings = Some(std::path::absolute(e)?.display().to_string());
    }
    Ok(ds)
}

fn dataset_files(ds: &Dataset) -> Vec<PathBuf> {
    let mut files = vec![ds.descriptor.path.clone()];
    files.extend(ds.manifest_files.iter().cloned());
    if let Some(e) = &ds.descriptor.embeddings {
        let p = ds.descriptor.base_dir().join(e);
        files.push(pairguard_data::EmbeddingStore::index_path(&p));
        files.push(p);
    }
    files
}

impl SweepData {
    /// Loads (or, for the synthetic benchmark, generates into `data_dir`)
    /// every dataset and checks that all embeddings share one encoder.
    pub fn load(exp: &Experiment, base: &Path, data_dir: &Path) -> anyhow::Result<Self> {
        let mut files = Vec::new();
        type Src = (PathBuf, Option<PathBuf>);
        let (coarse_ds, pairs_ds, tests): (Option<Src>, Option<Src>, Vec<(String, Src)>) = if let Some(cfg) = &exp.data.synthetic {
            Benchmark::generate(cfg)?.write(data_dir)?;
            let tests = vec![
                ("coarse".to_string(), (data_dir.join("test-coarse.toml"), None)),
                ("shifted".to_string(), (data_dir.join("test-shifted.toml"), None)),
                ("pairs".to_string(), (data_dir.join("test-pairs.toml"), None)),
            ];
            (Some((data_dir.join("coarse.toml"), None)), Some((data_dir.join("pairs.toml"), None)), tests)
        } else {
            let r = |p: &String| base.join(p);
            let d = &exp.data;
            (
                d.coarse.as_ref().map(|c| (r(c), d.coarse_embeddings.as_ref().map(r))),
                d.pairs.as_ref().map(|c| (r(c), d.pairs_embeddings.as_ref().map(r))),
                d.tests.iter().map(|t| (t.name.clone(), (r(&t.dataset), t.embeddings.as_ref().map(r)))).collect(),
            )
        };
        let mut encoder: Option<EncoderId> = None;
        let mut check = |ds: &Dataset| -> anyhow::Result<()> {
            let store = ds.embeddings.as_ref().ok_or_else(|| {
                anyhow::anyhow!("dataset {} has no embedding store (run `pairguard embed` first)", ds.descriptor.name)
            })?;
            match &encoder {
                None => encoder = Some(store.encoder.clone()),
                Some(e) => e.ensure_matches(&store.encoder, &format!("dataset {}", ds.descriptor.name))?,
            }
            Ok(())
        };
        let mut sets = Vec::new();
        for src in [&coarse_ds, &pairs_ds] {
            match src {
                Some((p, e)) => {
                    let ds = load(p, e.as_deref(), exp.data.skip_invalid)?;
                    check(&ds)?;
                    files.extend(dataset_files(&ds));
                    let tested_here = exp.data.tests.iter().any(|t| t.split.is_some() && base.join(&t.dataset) == *p);
                    sets.push(Some(pool(&ds, &exp.data.split, tested_here)?));
                }
                None => sets.push(None),
            }
        }
        let mut test_sets = Vec::new();
        for (name, (p, e)) in tests {
            let ds = load(&p, e.as_deref(), exp.data.skip_invalid)?;
            check(&ds)?;
            files.extend(dataset_files(&ds));
            let wanted = exp.data.tests.iter().find(|t| t.name == name).and_then(|t| t.split.as_deref());
            let set = match wanted {
                None => LabeledSet::from_dataset(&ds, None, None)?,
                Some(w) => {
                    let which = Split::parse(w).ok_or_else(|| anyhow::anyhow!("test set {name}: unknown split {w:?}"))?;
                    LabeledSet::from_dataset(&split(&ds, &exp.data.split)?, Some(which), None)?
                }
            };
            anyhow::ensure!(!set.is_empty(), "test set {name} is empty");
            test_sets.push((name, set));
        }
        let encoder = encoder.expect("at least one dataset");
        let empty = |like: &LabeledSet| like.subset(&[]);
        let pairs = sets.pop().flatten();
        let coarse = sets.pop().flatten();
        let (coarse, pairs) = match (coarse, pairs) {
            (Some(c), Some(p)) => (c, p),
            (Some(c), None) => (c.clone(), empty(&c)),
            (None, Some(p)) => (empty(&p), p),
            (None, None) => unreachable!("checked by Experiment::check"),
        };
        anyhow::ensure!(
            !exp.train.multilabel || coarse.categories == pairs.categories || coarse.is_empty() || pairs.is_empty(),
            "multi-label training needs the coarse and pair pools to share a taxonomy"
        );
        Ok(SweepData { encoder, coarse, pairs, tests: test_sets, files })
    }
}

/// Options that do not change results.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub device: Device,
    pub progress: bool,
    /// Stop after this many (strategy, seed) groups (for tests of resuming).
    pub max_groups: Option<usize>,
}

/// Identity of a results folder: the experiment (parsed, canonical) and the
/// exact data. A folder made by another config is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunIdentity {
    pub experiment_sha256: String,
    pub data_sha256: BTreeMap<String, String>,
}

fn group_file(out: &Path, strategy: &Strategy, seed: u64) -> PathBuf {
    out.join("fits").join(format!("{}__seed{seed}.csv", strategy.name()))
}

/// Runs (or resumes) the sweep into `out`; returns every fit row.
pub fn run(exp: &Experiment, base: &Path, out: &Path, opts: &RunOptions) -> anyhow::Result<(Vec<FitRow>, SweepData, RunIdentity)> {
    std::fs::create_dir_all(out.join("fits"))?;
    let data = SweepData::load(exp, base, &out.join("data"))?;
    let mut data_sha256 = BTreeMap::new();
    for f in &data.files {
        data_sha256.insert(f.display().to_string(), sha256_file(f)?);
    }
    let identity = RunIdentity {
        experiment_sha256: sha256_bytes(serde_json::to_string(exp)?.as_bytes()),
        data_sha256,
    };
    let id_path = out.join("identity.json");
    if id_path.exists() {
        let old: RunIdentity = serde_json::from_str(&std::fs::read_to_string(&id_path)?)?;
        anyhow::ensure!(
            old == identity,
            "{} holds results of a different experiment or different data; choose another --out or delete it",
            out.display()
        );
    } else {
        write_atomic(&id_path, &serde_json::to_vec_pretty(&identity)?)?;
    }

    let budgets = exp.sweep.budgets()?;
    let norm = FeatureNorm::fit(exp.train.normalization, &data.coarse.concat(&data.pairs).x, data.coarse.dim);
    let pool = data.coarse.concat(&data.pairs);
    let mut x = pool.x.clone();
    norm.apply(&mut x);
    let (targets, outputs) = pool.targets(exp.train.multilabel);
    let tests: Vec<(String, LabeledSet, Vec<f32>)> = data
        .tests
        .iter()
        .map(|(n, s)| {
            let mut tx = s.x.clone();
            norm.apply(&mut tx);
            (n.clone(), s.clone(), tx)
        })
        .collect();
    let coarse_rows: Vec<usize> = (0..data.coarse.len()).collect();
    let nc = data.coarse.len();

    let groups: Vec<(Strategy, u64)> =
        exp.sweep.strategies.iter().flat_map(|s| exp.sweep.seeds.iter().map(move |&k| (*s, k))).collect();
    let bar = if opts.progress { ProgressBar::new((groups.len() * budgets.len()) as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} fits  {per_sec}  ETA {eta}  {msg}")
            .expect("valid template"),
    );
    let mut done_now = 0;
    for (strategy, seed) in &groups {
        let file = group_file(out, strategy, *seed);
        if file.exists() {
            bar.inc(budgets.len() as u64);
            continue;
        }
        if opts.max_groups.is_some_and(|m| done_now >= m) {
            break;
        }
        bar.set_message(format!("{} seed {seed}", strategy.name()));
        let mixer = Mixer::from_members(&coarse_rows, &data.pairs.pairs, *seed);
        let mut sets = Vec::new();
        for &b in &budgets {
            match mixer.build(strategy, b) {
                Ok(set) => sets.push(set),
                // A budget a strategy cannot fill is left out of the curve, and said so.
                Err(e) => bar.println(format!("skipping {} at budget {b}: {e}", strategy.name())),
            }
        }
        let mut rows = Vec::new();
        if !sets.is_empty() {
            let members: Vec<Vec<usize>> = sets
                .iter()
                .map(|s| s.coarse.iter().copied().chain(s.pair_pool.iter().map(|&i| nc + i)).collect())
                .collect();
            let tc = pairguard_model::TrainConfig { seed: *seed, ..exp.train.clone() };
            let fit = fit_bank(
                &BankJob {
                    x: &x,
                    dim: pool.dim,
                    targets: &targets,
                    outputs,
                    members,
                    lambdas: vec![exp.train.weight_decay; sets.len()],
                    validation: None,
                    epochs: None,
                },
                &tc,
                &opts.device,
            )?;
            let heads: Vec<&pairguard_model::HeadWeights> = fit.heads.iter().collect();
            for (name, set, tx) in &tests {
                let logits = bank_logits(&heads, tx, &opts.device);
                let n = set.len();
                for (h, ts) in sets.iter().enumerate() {
                    let probs: Vec<f64> = (0..n)
                        .map(|i| pairguard_model::calibrate::sigmoid(f64::from(logits[(h * n + i) * outputs])))
                        .collect();
                    let ev = evaluate_scores(set, &probs, None, exp.sweep.threshold, exp.sweep.fpr_target);
                    let p = ev.pairs.clone().unwrap_or_default();
                    let nan_if_no_pairs = |v: f64| if ev.pairs.is_some() { v } else { f64::NAN };
                    rows.push(FitRow {
                        strategy: strategy.name(),
                        budget: ts.budget,
                        seed: *seed,
                        test: name.clone(),
                        n_train: ts.len(),
                        n_coarse: ts.coarse.len(),
                        n_pair_pool: ts.pair_pool.len(),
                        whole_pairs: ts.whole_pairs,
                        epochs: fit.epochs_run,
                        auroc: ev.overall.auroc,
                        auprc: ev.overall.auprc,
                        f1: ev.overall.f1,
                        accuracy: ev.overall.accuracy,
                        balanced_accuracy: ev.overall.balanced_accuracy,
                        ece: ev.overall.ece,
                        tpr_at_fpr: ev.overall.tpr_at_fpr,
                        pair_accuracy: nan_if_no_pairs(p.pair_accuracy),
                        ordering_accuracy: nan_if_no_pairs(p.ordering_accuracy),
                        flip_rate: nan_if_no_pairs(p.flip_rate),
                        precision: ev.overall.precision,
                    });
                }
            }
        }
        write_atomic(&file, &to_csv(&rows)?)?;
        bar.inc(budgets.len() as u64);
        done_now += 1;
    }
    bar.finish_and_clear();

    let mut all = Vec::new();
    for (strategy, seed) in &groups {
        let file = group_file(out, strategy, *seed);
        if !file.exists() {
            continue;
        }
        let mut r = csv::Reader::from_path(&file)?;
        for row in r.deserialize() {
            all.push(row.map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?);
        }
    }
    Ok((all, data, identity))
}

pub fn to_csv<T: Serialize>(rows: &[T]) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    Ok(w.into_inner()?)
}
