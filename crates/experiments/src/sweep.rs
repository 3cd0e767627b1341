//! Running a sweep: every (strategy, seed) trains all budgets as one bank of
//! heads (the training sets are nested prefixes of one seeded order), then
//! scores each head on every test set. Each finished (strategy, seed) group
//! is written atomically to `fits/`, so an interrupted sweep resumes where
//! it stopped and gives the same files as an uninterrupted one.
//!
//! The groups are also the unit of sharding: shard I of N trains a balanced,
//! contiguous run of them into the shared results folder and leaves a
//! marker; collecting checks that the shards cover every group and reads
//! their fits, so the report is the one a one-machine run writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pairguard_data::hub::HubOptions;
use pairguard_data::split::{SplitConfig, assign};
use pairguard_data::synthetic::Benchmark;
use pairguard_data::{Dataset, EncoderId, LoadOptions, Mixer, Split, Strategy};
use pairguard_model::guard::probabilities_of;
use pairguard_model::metrics::Metric;
use pairguard_model::robust::embedding::robust_correct;
use pairguard_model::{Device, GuardModel, HeadWeights, LabeledSet, evaluate_scores, train_guards};
use serde::{Deserialize, Serialize};

use crate::config::{BaselineSpec, Experiment, TestSpec};
use crate::error::{Error, Result};
use pairguard_run::{Assignment, Ledger, Outcome, Progress, claim, lock, sha256_bytes, sha256_file, write_atomic};

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
    /// The head's weight decay, temperature and decision threshold.
    pub weight_decay: f64,
    pub temperature: f64,
    pub threshold: f64,
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
    /// Share of the test set classified correctly and unchanged by every L2
    /// perturbation of size `sweep.embedding_eps` of its embedding.
    pub robust_accuracy: f64,
}

impl FitRow {
    pub fn metric(&self, metric: Metric) -> f64 {
        match metric {
            Metric::Auroc => self.auroc,
            Metric::Auprc => self.auprc,
            Metric::F1 => self.f1,
            Metric::Accuracy => self.accuracy,
            Metric::BalancedAccuracy => self.balanced_accuracy,
            Metric::Ece => self.ece,
            Metric::TprAtFpr => self.tpr_at_fpr,
            Metric::PairAccuracy => self.pair_accuracy,
            Metric::OrderingAccuracy => self.ordering_accuracy,
            Metric::FlipRate => self.flip_rate,
            Metric::Precision => self.precision,
            Metric::RobustAccuracy => self.robust_accuracy,
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
    pub validation: Option<LabeledSet>,
    pub files: Vec<PathBuf>,
    /// Rows dropped as invalid (with `skip_invalid`), one line each.
    pub dropped: Vec<String>,
}

/// Gives every sample a split: manifest splits are kept, the rest are
/// assigned by `cfg` (grouped, so pairs never straddle train and test).
fn split(ds: &Dataset, cfg: &SplitConfig) -> Result<Dataset> {
    let mut ds = ds.clone();
    assign(&mut ds.samples, cfg)?;
    Ok(ds)
}

/// A pool's training samples. A dataset that a test set also draws a split
/// from, or whose manifest fixes splits, contributes only its `train` part,
/// so test samples never enter training; otherwise all of it.
fn pool(ds: &Dataset, cfg: &SplitConfig, tested_here: bool) -> Result<LabeledSet> {
    Ok(if tested_here || ds.samples.iter().any(|s| s.split.is_some()) {
        LabeledSet::from_dataset(&split(ds, cfg)?, Some(Split::Train), None)?
    } else {
        LabeledSet::from_dataset(ds, None, None)?
    })
}

fn load(path: &Path, embeddings: Option<&Path>, skip_invalid: bool, hub: &HubOptions, dropped: &mut Vec<String>) -> Result<Dataset> {
    let opts =
        LoadOptions { skip_invalid, image_check: pairguard_data::images::ImageCheck::None, hub: hub.clone(), embeddings: embeddings.is_none() };
    let mut ds = Dataset::load(path, &opts)?;
    dropped.extend(ds.report.findings.iter().map(ToString::to_string));
    if let Some(e) = embeddings {
        ds.embeddings = Some(pairguard_data::EmbeddingStore::load(e)?);
        // Absolute, so it resolves the same against the descriptor's folder.
        ds.descriptor.embeddings = Some(std::path::absolute(e).map_err(|err| Error::io(e, err))?.display().to_string());
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

/// A test or validation set: a dataset, or one split of it.
fn held_out(spec_split: Option<&str>, name: &str, ds: &Dataset, cfg: &SplitConfig) -> Result<LabeledSet> {
    let set = match spec_split {
        None => LabeledSet::from_dataset(ds, None, None)?,
        Some(w) => {
            let which = Split::parse(w).ok_or_else(|| Error::Config(format!("{name}: unknown split {w:?} (train, validation or test)")))?;
            LabeledSet::from_dataset(&split(ds, cfg)?, Some(which), None)?
        }
    };
    if set.is_empty() {
        return Err(Error::Config(format!("{name} is empty")));
    }
    Ok(set)
}

impl SweepData {
    /// Loads (or, for the synthetic benchmark, generates into `data_dir`)
    /// every dataset and checks that all embeddings share one encoder.
    pub fn load(exp: &Experiment, base: &Path, data_dir: &Path, hub: &HubOptions) -> Result<Self> {
        let mut files = Vec::new();
        let mut dropped = Vec::new();
        type Src = (PathBuf, Option<PathBuf>);
        let r = |p: &String| base.join(p);
        let (coarse_ds, pairs_ds, tests): (Option<Src>, Option<Src>, Vec<(TestSpec, Src)>) = if let Some(cfg) = &exp.data.synthetic {
            Benchmark::generate(cfg)?.write(data_dir)?;
            let tests = ["coarse", "shifted", "pairs"]
                .iter()
                .map(|t| {
                    let spec = TestSpec { name: t.to_string(), dataset: format!("test-{t}.toml"), embeddings: None, split: None };
                    (spec, (data_dir.join(format!("test-{t}.toml")), None))
                })
                .collect();
            (Some((data_dir.join("coarse.toml"), None)), Some((data_dir.join("pairs.toml"), None)), tests)
        } else {
            let d = &exp.data;
            (
                d.coarse.as_ref().map(|c| (r(c), d.coarse_embeddings.as_ref().map(r))),
                d.pairs.as_ref().map(|c| (r(c), d.pairs_embeddings.as_ref().map(r))),
                d.tests.iter().map(|t| (t.clone(), (r(&t.dataset), t.embeddings.as_ref().map(r)))).collect(),
            )
        };
        let mut encoder: Option<EncoderId> = None;
        let mut check = |ds: &Dataset| -> Result<()> {
            let store = pairguard_model::features::store_of(ds)?;
            match &encoder {
                None => encoder = Some(store.encoder.clone()),
                Some(e) => e.ensure_matches(&store.encoder, &format!("dataset {}", ds.descriptor.name))?,
            }
            Ok(())
        };
        // A pool that a held-out set splits trains on its `train` part only.
        let held_out_specs: Vec<&TestSpec> = exp.data.tests.iter().chain(&exp.data.validation).collect();
        let mut sets = Vec::new();
        for src in [&coarse_ds, &pairs_ds] {
            match src {
                Some((p, e)) => {
                    let ds = load(p, e.as_deref(), exp.data.skip_invalid, hub, &mut dropped)?;
                    check(&ds)?;
                    files.extend(dataset_files(&ds));
                    let tested_here = held_out_specs.iter().any(|t| t.split.is_some() && base.join(&t.dataset) == *p);
                    sets.push(Some(pool(&ds, &exp.data.split, tested_here)?));
                }
                None => sets.push(None),
            }
        }
        let mut test_sets = Vec::new();
        for (spec, (p, e)) in tests {
            let ds = load(&p, e.as_deref(), exp.data.skip_invalid, hub, &mut dropped)?;
            check(&ds)?;
            files.extend(dataset_files(&ds));
            let name = format!("test set {}", spec.name);
            test_sets.push((spec.name.clone(), held_out(spec.split.as_deref(), &name, &ds, &exp.data.split)?));
        }
        let validation = match &exp.data.validation {
            Some(spec) => {
                let ds = load(&r(&spec.dataset), spec.embeddings.as_ref().map(r).as_deref(), exp.data.skip_invalid, hub, &mut dropped)?;
                check(&ds)?;
                files.extend(dataset_files(&ds));
                Some(held_out(spec.split.as_deref(), &format!("validation set {}", spec.name), &ds, &exp.data.split)?)
            }
            None => None,
        };
        // The baselines' files are inputs too: a changed score file or guard
        // is another result, and the report names it with its hash.
        for b in &exp.baselines {
            match b {
                BaselineSpec::Scores { scores, .. } => files.push(r(scores)),
                BaselineSpec::Guard { model, .. } => files.extend([r(model), GuardModel::card_path(&r(model))]),
                BaselineSpec::ZeroShot { policy, prompts, .. } => files.extend(policy.iter().chain(prompts).map(r)),
            }
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
        if exp.train.multilabel && coarse.categories != pairs.categories && !coarse.is_empty() && !pairs.is_empty() {
            return Err(Error::Config("multi-label training needs the coarse and pair pools to share a taxonomy".into()));
        }
        Ok(SweepData { encoder, coarse, pairs, tests: test_sets, validation, files, dropped })
    }
}

/// Options that do not change results.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub device: Device,
    pub hub: HubOptions,
    /// Stop after this many (strategy, seed) groups (for tests of resuming).
    pub max_groups: Option<usize>,
    /// The whole sweep, one shard of its groups, or collecting the shards' fits.
    pub assignment: Assignment,
}

/// Every group's fits (fewer when stopped early by `max_groups`), with the
/// data and identity the report names.
#[derive(Debug)]
pub struct Fits {
    pub rows: Vec<FitRow>,
    pub data: Box<SweepData>,
    pub identity: RunIdentity,
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

/// Runs (or resumes) the sweep, a shard of it, or the collection of its
/// shards (`opts.assignment`) into `out`. A whole sweep stopped early
/// (`max_groups`) is done with the fits it has; a shard stopped early is
/// interrupted.
pub fn run(exp: &Experiment, base: &Path, out: &Path, opts: &RunOptions, progress: &dyn Progress) -> Result<Outcome<Fits>> {
    let _lock = lock(out, opts.assignment)?;
    let fits = out.join("fits");
    std::fs::create_dir_all(&fits).map_err(|e| Error::io(&fits, e))?;
    let data = SweepData::load(exp, base, &out.join("data"), &opts.hub)?;
    check_budgets(exp, &data)?;
    let mut data_sha256 = BTreeMap::new();
    for f in &data.files {
        data_sha256.insert(f.display().to_string(), sha256_file(f)?);
    }
    let identity = RunIdentity { experiment_sha256: sha256_bytes(serde_json::to_string(exp)?.as_bytes()), data_sha256 };
    let identity_hash = claim(out, &identity, "results of a different experiment or different data", RunIdentity::eq)?;

    let groups: Vec<(Strategy, u64)> = exp.sweep.strategies.iter().flat_map(|s| exp.sweep.seeds.iter().map(move |&k| (*s, k))).collect();
    let ledger = Ledger::of(out);
    match opts.assignment {
        Assignment::Whole => train_groups(exp, base, &data, &groups, out, opts, progress)?,
        Assignment::Shard(shard) => {
            let mine = &groups[shard.range(groups.len())];
            if !ledger.finished(shard, &identity_hash, groups.len())? {
                train_groups(exp, base, &data, mine, out, opts, progress)?;
            }
            if !mine.iter().all(|(s, k)| group_file(out, s, *k).is_file()) {
                return Ok(Outcome::Interrupted);
            }
            return Ok(Outcome::Shard { shard, marker: ledger.mark(shard, &identity_hash, groups.len())? });
        }
        Assignment::Collect => {
            ledger.complete(&identity_hash, groups.len())?;
            if let Some((s, k)) = groups.iter().find(|(s, k)| !group_file(out, s, *k).is_file()) {
                let file = group_file(out, s, *k);
                return Err(Error::Results(format!("{}: missing although its shard finished", file.display())));
            }
        }
    }

    let mut rows = Vec::new();
    for (strategy, seed) in &groups {
        let file = group_file(out, strategy, *seed);
        if !file.exists() {
            continue;
        }
        let mut r = csv::Reader::from_path(&file)?;
        for row in r.deserialize() {
            rows.push(row.map_err(|e| Error::File { path: file.clone(), message: e.to_string() })?);
        }
    }
    Ok(Outcome::Done(Fits { rows, data: Box::new(data), identity }))
}

/// What `[text]` brings to training: the heads' start (a prompt head's
/// zero-shot prompts, or a probe's zero-shot direction) and the prompts as
/// extra samples. Sets the prompt head's categories in `guard`.
fn text_in_training(
    exp: &Experiment,
    data: &SweepData,
    base: &Path,
    data_dir: &Path,
    guard: &mut pairguard_model::GuardConfig,
) -> Result<(Option<HeadWeights>, Option<LabeledSet>)> {
    let Some(t) = &exp.text else { return Ok((None, None)) };
    let text = crate::baselines::policy_text(&t.policy, &t.prompts, data, base, data_dir)?;
    let start = text.start(&mut guard.train, t.zero_shot_init)?;
    let extra = if t.as_data { Some(text.samples()?) } else { None };
    Ok((start, extra))
}

/// Trains and scores the (strategy, seed) groups whose fits are not in
/// `out/fits` yet.
/// A budget some strategies cannot fill is left out of their curves (and
/// said so); one that no strategy can fill is a mistake in the experiment.
fn check_budgets(exp: &Experiment, data: &SweepData) -> Result<()> {
    let coarse_rows: Vec<usize> = (0..data.coarse.len()).collect();
    let mixer = Mixer::from_members(&coarse_rows, &data.pairs.pairs, 0);
    for b in exp.sweep.budgets()? {
        let why: Vec<String> = exp.sweep.strategies.iter().filter_map(|s| mixer.build(s, b).err().map(|e| e.to_string())).collect();
        if why.len() == exp.sweep.strategies.len() {
            return Err(Error::Config(format!("no strategy can fill budget {b}: {}; lower the budgets or add data", why.join("; "))));
        }
    }
    Ok(())
}

fn train_groups(
    exp: &Experiment,
    base: &Path,
    data: &SweepData,
    groups: &[(Strategy, u64)],
    out: &Path,
    opts: &RunOptions,
    progress: &dyn Progress,
) -> Result<()> {
    let budgets = exp.sweep.budgets()?;
    let mut guard = exp.guard();
    let (start, extra) = text_in_training(exp, data, base, &out.join("data"), &mut guard)?;
    let mut pool = data.coarse.concat(&data.pairs);
    let extra_rows: Vec<usize> = match &extra {
        Some(samples) => {
            let first = pool.len();
            pool = pool.concat(samples);
            (first..pool.len()).collect()
        }
        None => Vec::new(),
    };
    let coarse_rows: Vec<usize> = (0..data.coarse.len()).collect();
    let nc = data.coarse.len();
    progress.start((groups.len() * budgets.len()) as u64, "fits");
    let mut done_now = 0;
    for (strategy, seed) in groups {
        let file = group_file(out, strategy, *seed);
        if file.exists() {
            progress.advance(budgets.len() as u64);
            continue;
        }
        if opts.max_groups.is_some_and(|m| done_now >= m) {
            break;
        }
        progress.stage(&format!("{} seed {seed}", strategy.name()));
        let mixer = Mixer::from_members(&coarse_rows, &data.pairs.pairs, *seed);
        let mut sets = Vec::new();
        for &b in &budgets {
            match mixer.build(strategy, b) {
                Ok(set) => sets.push(set),
                // A budget a strategy cannot fill is left out of the curve, and said so.
                Err(e) => progress.note(&format!("skipping {} at budget {b}: {e}", strategy.name())),
            }
        }
        let mut rows = Vec::new();
        if !sets.is_empty() {
            let members: Vec<Vec<usize>> = sets
                .iter()
                .map(|s| s.coarse.iter().copied().chain(s.pair_pool.iter().map(|&i| nc + i)).chain(extra_rows.iter().copied()).collect())
                .collect();
            guard.train.seed = *seed;
            let guards = train_guards(&pool, &members, data.validation.as_ref(), &data.encoder, &guard, start.as_ref(), &opts.device)?;
            for (name, set) in &data.tests {
                let probs = probabilities_of(&guards, &set.x, &opts.device)?;
                for ((ts, g), p) in sets.iter().zip(&guards).zip(&probs) {
                    let ev = evaluate_scores(set, p, None, g.card.threshold, exp.calibration.fpr_target);
                    let robust_accuracy = match exp.sweep.embedding_eps {
                        Some(eps) => {
                            let kept = robust_correct(g, &set.x, &set.labels, eps, &opts.device)?;
                            kept.iter().filter(|&&k| k).count() as f64 / kept.len().max(1) as f64
                        }
                        None => f64::NAN,
                    };
                    let pm = ev.pairs.clone().unwrap_or_default();
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
                        epochs: g.card.epochs,
                        weight_decay: g.card.weight_decay,
                        temperature: g.card.temperature,
                        threshold: g.card.threshold,
                        auroc: ev.overall.auroc,
                        auprc: ev.overall.auprc,
                        f1: ev.overall.f1,
                        accuracy: ev.overall.accuracy,
                        balanced_accuracy: ev.overall.balanced_accuracy,
                        ece: ev.overall.ece,
                        tpr_at_fpr: ev.overall.tpr_at_fpr,
                        pair_accuracy: nan_if_no_pairs(pm.pair_accuracy),
                        ordering_accuracy: nan_if_no_pairs(pm.ordering_accuracy),
                        flip_rate: nan_if_no_pairs(pm.flip_rate),
                        precision: ev.overall.precision,
                        robust_accuracy,
                    });
                }
            }
        }
        write_atomic(&file, &to_csv(&rows)?)?;
        progress.advance(budgets.len() as u64);
        done_now += 1;
    }
    progress.finish();
    Ok(())
}

pub fn to_csv<T: Serialize>(rows: &[T]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    w.into_inner().map_err(|e| Error::Results(format!("writing CSV: {e}")))
}
