//! A guard's robustness, measured as UnsafeBench does: draw K images the
//! guard classifies correctly, attack or corrupt them, and report the share
//! whose verdict survives (robust accuracy, with Wilson intervals) overall,
//! per category and per source.
//!
//! Work is written per (attack, batch) under `parts/` with atomic renames;
//! the run's identity (guard, encoder, data, settings) is fixed in
//! `identity.json`, so an interrupted run resumes and a changed one is
//! refused. Every random draw comes from a per-image seed, so a resumed run
//! gives the same files as an uninterrupted one.
//!
//! The batches of attacked images are also the unit of sharding: every
//! shard draws the same images (the draw is seeded), attacks and corrupts a
//! balanced, contiguous run of the batches, and leaves a marker; collecting
//! checks that the shards cover every batch and reports as a one-machine
//! run does.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use image::DynamicImage;
use pairguard_clip::ImageEncoder;
use pairguard_data::seed::derive_seed;
use pairguard_data::{Dataset, EncoderId, Sample, Source, images};
use pairguard_model::GuardModel;
use pairguard_model::robust::attack::{self, Attack};
use pairguard_model::robust::{Corruption, EpsUnit, GuardDecision, Norm};
use pairguard_run::{Assignment, Failure, Ledger, Listing, Outcome, Progress, claim, lock, sha256_file, write_atomic};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::names::file_stem;
use crate::plot::{Axes, Curve, Point, plot_curves};
use crate::stats::wilson;

pub const FORMAT: &str = "pairguard-robustness/1";

/// What to measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RobustnessConfig {
    pub attacks: Vec<Attack>,
    /// Epsilons, in `eps_unit`.
    pub eps: Vec<f64>,
    pub eps_unit: EpsUnit,
    pub corruptions: Vec<Corruption>,
    /// Images to attack (K), drawn among those classified correctly.
    pub samples: usize,
    /// Only images of this source (None: all).
    pub source: Option<Source>,
    pub seed: u64,
    /// Images per forward/backward batch.
    pub batch: usize,
}

impl Default for RobustnessConfig {
    /// UnsafeBench's protocol: all four attacks at eps 0.01 on the
    /// normalised tensor, 500 images, plus the default corruptions.
    fn default() -> Self {
        RobustnessConfig {
            attacks: ["gn", "fgsm", "pgd", "deepfool"].iter().map(|a| a.parse().expect("known attack")).collect(),
            eps: vec![0.01],
            eps_unit: EpsUnit::Normalized,
            corruptions: Corruption::defaults(),
            samples: 500,
            source: None,
            seed: 0,
            batch: 16,
        }
    }
}

impl RobustnessConfig {
    /// Rejects settings that cannot run, before any work starts.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if let Some(e) = self.eps.iter().find(|e| !(**e > 0.0 && e.is_finite())) {
            return bad(format!("--eps {e}: every epsilon must be a positive finite number"));
        }
        if self.eps.is_empty() && !self.attacks.is_empty() {
            return bad("--eps: at least one epsilon is needed for the attacks".into());
        }
        if self.samples == 0 {
            return bad("--samples 0: at least one image must be attacked".into());
        }
        if self.batch == 0 {
            return bad("--batch 0: batches need at least one image".into());
        }
        if self.attacks.is_empty() && self.corruptions.is_empty() {
            return bad("nothing to measure: no attacks and no corruptions".into());
        }
        for a in &self.attacks {
            a.check()?;
        }
        for c in &self.corruptions {
            c.check()?;
        }
        let mut names: Vec<&str> = self.attacks.iter().map(Attack::name).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return bad("--attacks names an attack twice".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default)]
pub struct RobustnessOptions {
    /// Write every adversarial image as PNG under `adversarial/`.
    pub save_adversarial: bool,
    /// Stop after this many new batches (for tests of resuming).
    pub max_batches: Option<usize>,
    /// The whole run, one shard of its batches, or collecting the shards' parts.
    pub assignment: Assignment,
}

/// The identity of a results folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Identity {
    format: String,
    guard_sha256: String,
    encoder: EncoderId,
    /// Hash of the descriptor, its manifests, and the candidate images' ids,
    /// labels and image references.
    data_sha256: String,
    config: RobustnessConfig,
}

/// The clean pass: which images were drawn and attacked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// Images eligible (with pixels, of the chosen source).
    pub candidates: usize,
    /// Images classified to find K correct ones.
    pub examined: usize,
    pub correct: usize,
    /// The attacked images, in draw order, with their clean decision logits.
    pub selected: Vec<String>,
    pub clean_decision: Vec<f32>,
    pub failures: Vec<Failure>,
}

impl Selection {
    pub fn clean_accuracy(&self) -> f64 {
        self.correct as f64 / self.examined.max(1) as f64
    }
}

/// One attacked image at one setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    id: String,
    /// Index into the run's settings.
    setting: usize,
    success: bool,
    decision: f32,
    /// Perturbation sizes in the attacked space (attacks only).
    linf: Option<f32>,
    l2: Option<f32>,
}

/// What a setting does to the images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SettingKind {
    /// An attack through the pipeline, bounded by epsilon.
    Attack,
    /// A common corruption at a severity.
    Corruption,
}

/// The images a row of results is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Slice {
    All,
    Category(String),
    Source(String),
}

impl std::fmt::Display for Slice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Slice::All => f.write_str(ALL_IMAGES),
            Slice::Category(c) => write!(f, "category:{c}"),
            Slice::Source(s) => write!(f, "source:{s}"),
        }
    }
}

/// The slice name of the rows over every attacked image.
pub const ALL_IMAGES: &str = "all";

/// An attack at one epsilon, or a corruption at one severity.
#[derive(Debug, Clone, PartialEq)]
struct Setting {
    attack: String,
    kind: SettingKind,
    /// Epsilon in the run's unit, or the corruption's severity.
    eps: f64,
    norm: Option<Norm>,
}

/// One line of `robustness.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobustRow {
    pub attack: String,
    pub kind: SettingKind,
    /// Epsilon (attacks, in `eps_unit`) or severity (corruptions).
    pub eps: f64,
    pub eps_unit: String,
    /// "all" ([`ALL_IMAGES`]), "category:<name>" or "source:<name>".
    pub slice: String,
    pub n: usize,
    pub robust_accuracy: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub success_rate: f64,
    /// The distance perturbations are bounded in: "linf", "l2" (attacks) or "" (corruptions).
    pub norm: String,
    /// Mean and largest perturbation in that norm, in `eps_unit`.
    pub mean_norm: f64,
    pub max_norm: f64,
}

/// What a run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RobustnessReport {
    pub format: String,
    pub guard: String,
    pub data: String,
    pub encoder: EncoderId,
    pub config: RobustnessConfig,
    pub selection: Selection,
    /// K was more than the correctly classified images.
    pub fewer_than_requested: bool,
    pub rows: Vec<RobustRow>,
    /// False when the run stopped early (`max_batches`); rerun to finish.
    pub finished: bool,
}

/// Every setting of a run, in order: each attack at each epsilon (attack
/// `a`, epsilon `k` at `a * eps.len() + k`), then each corruption.
fn settings(cfg: &RobustnessConfig) -> Vec<Setting> {
    let mut s: Vec<Setting> = cfg
        .attacks
        .iter()
        .flat_map(|a| cfg.eps.iter().map(move |&eps| Setting { attack: a.name().into(), kind: SettingKind::Attack, eps, norm: Some(a.norm()) }))
        .collect();
    s.extend(cfg.corruptions.iter().map(|c| Setting { attack: c.name().into(), kind: SettingKind::Corruption, eps: c.severity(), norm: None }));
    s
}

/// The guard under test: the model, the file it was loaded from (hashed
/// into the run's identity) and its encoder.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub guard: &'a GuardModel,
    pub path: &'a Path,
    pub encoder: &'a ImageEncoder,
}

/// Hash of the descriptor, its manifests and the candidates (ids, labels, images).
fn data_sha256(ds: &Dataset, candidates: &[&Sample]) -> Result<String> {
    let mut data = Listing::default();
    for f in std::iter::once(&ds.descriptor.path).chain(&ds.manifest_files) {
        data.line(sha256_file(f)?);
    }
    for s in candidates {
        data.line(format_args!("{}\t{}\t{:?}", s.id, s.label.name(), s.image));
    }
    Ok(data.sha256())
}

/// Runs (or resumes) the measurement, a shard of it, or the collection of
/// its shards (`opts.assignment`) into `out`. A whole run stopped early
/// (`max_batches`) is done with a report of what it measured, not written
/// (`finished` false); a shard stopped early is interrupted.
pub fn run(
    subject: Subject,
    ds: &Dataset,
    cfg: &RobustnessConfig,
    out: &Path,
    opts: &RobustnessOptions,
    progress: &dyn Progress,
) -> Result<Outcome<Box<RobustnessReport>>> {
    let Subject { guard, path: guard_path, encoder } = subject;
    cfg.check()?;
    let target = GuardDecision::new(guard, encoder, cfg.eps_unit)?;
    if !ds.samples.iter().any(|s| s.image.is_some()) {
        return Err(Error::Config(format!(
            "dataset {} ({}) has no images: robustness attacks pixels, not stored embeddings",
            ds.descriptor.name,
            ds.descriptor.path.display()
        )));
    }
    let candidates: Vec<&Sample> = ds.samples.iter().filter(|s| s.image.is_some() && cfg.source.is_none_or(|src| s.source == src)).collect();
    if candidates.is_empty() {
        let src = cfg.source.map_or("any", Source::name);
        return Err(Error::Config(format!("dataset {} has no images of source {src}", ds.descriptor.name)));
    }
    let identity = Identity {
        format: FORMAT.into(),
        guard_sha256: sha256_file(guard_path)?,
        encoder: encoder.id.clone(),
        data_sha256: data_sha256(ds, &candidates)?,
        config: cfg.clone(),
    };
    let _lock = lock(out, opts.assignment)?;
    std::fs::create_dir_all(out.join("parts")).map_err(|e| Error::io(out, e))?;
    let identity_hash = claim(out, &identity, "a robustness run of another guard, encoder, dataset or settings", Identity::eq)?;
    let ledger = Ledger::of(out);
    if opts.assignment == Assignment::Collect && !out.join("selection.json").is_file() {
        return Err(Error::Results(format!("{}: no shard has drawn the images yet; run the shards first", out.display())));
    }

    let max_pixels = ds.descriptor.max_pixels;
    let by_id: BTreeMap<&str, &Sample> = candidates.iter().map(|s| (s.id.as_str(), *s)).collect();
    let selection = select(&target, &candidates, cfg, max_pixels, out, progress)?;
    let fewer = selection.selected.len() < cfg.samples;
    if fewer {
        progress.note(&format!(
            "only {} of the {} images drawn were classified correctly; attacking all of them instead of {}",
            selection.selected.len(),
            selection.examined,
            cfg.samples
        ));
    }
    let settings = settings(cfg);
    let chosen: Vec<&Sample> = selection.selected.iter().map(|id| by_id[id.as_str()]).collect();
    let batches: Vec<&[&Sample]> = chosen.chunks(cfg.batch).collect();
    let part = |name: &str, b: usize| out.join("parts").join(format!("{name}-{b:05}.json"));
    // Work units: one per attack and batch, plus one per batch for all
    // corruptions; an attack is named by its index, which places its settings.
    let mut units: Vec<(Option<usize>, usize)> = (0..cfg.attacks.len()).flat_map(|a| (0..batches.len()).map(move |b| (Some(a), b))).collect();
    if !cfg.corruptions.is_empty() {
        units.extend((0..batches.len()).map(|b| (None, b)));
    }
    let unit_name = |a: Option<usize>| a.map_or("corruptions", |a| cfg.attacks[a].name());
    let mine = match opts.assignment {
        Assignment::Whole => 0..batches.len(),
        Assignment::Shard(shard) if ledger.finished(shard, &identity_hash, batches.len())? => 0..0,
        Assignment::Shard(shard) => shard.range(batches.len()),
        Assignment::Collect => {
            ledger.complete(&identity_hash, batches.len())?;
            0..0
        }
    };
    let to_do: Vec<(Option<usize>, usize)> = units.iter().copied().filter(|(_, b)| mine.contains(b)).collect();
    let weight = |a: Option<usize>, b: usize| (batches[b].len() * a.map_or(cfg.corruptions.len(), |_| cfg.eps.len())) as u64;
    progress.start(to_do.iter().map(|&(a, b)| weight(a, b)).sum(), "image x settings");
    let mut new_batches = 0;
    let mut finished = true;
    // A batch attacked before without --save-adversarial is attacked again
    // (to the same result) when its images are wanted now.
    let saved = |a: usize, b: usize| cfg.eps.iter().all(|e| batches[b].iter().all(|s| adversarial_path(out, &cfg.attacks[a], *e, &s.id).is_file()));
    for &(a, b) in &to_do {
        let file = part(unit_name(a), b);
        if file.is_file() && (!opts.save_adversarial || a.is_none_or(|a| saved(a, b))) {
            progress.advance(weight(a, b));
            continue;
        }
        if opts.max_batches.is_some_and(|m| new_batches >= m) {
            finished = false;
            break;
        }
        progress.stage(&format!("{} batch {}/{}", unit_name(a), b + 1, batches.len()));
        let records = match a {
            Some(a) => {
                let save = opts.save_adversarial.then_some(out);
                attack_batch(&target, &cfg.attacks[a], batches[b], a * cfg.eps.len(), cfg, max_pixels, save)?
            }
            None => corrupt_batch(&target, batches[b], cfg.attacks.len() * cfg.eps.len(), cfg, max_pixels)?,
        };
        write_atomic(&file, &serde_json::to_vec(&records)?)?;
        progress.advance(weight(a, b));
        new_batches += 1;
    }
    progress.finish();
    if let Assignment::Shard(shard) = opts.assignment {
        let done = to_do.iter().all(|&(a, b)| part(unit_name(a), b).is_file());
        if !done {
            return Ok(Outcome::Interrupted);
        }
        return Ok(Outcome::Shard { shard, marker: ledger.mark(shard, &identity_hash, batches.len())? });
    }

    let mut records = Vec::new();
    for &(a, b) in &units {
        let file = part(unit_name(a), b);
        match std::fs::read(&file) {
            Ok(bytes) => {
                let part: Vec<Record> = serde_json::from_slice(&bytes).map_err(|e| Error::File { path: file.clone(), message: e.to_string() })?;
                records.extend(part);
            }
            Err(_) if opts.assignment == Assignment::Collect => {
                return Err(Error::Results(format!("{}: missing although its shard finished", file.display())));
            }
            Err(_) => {}
        }
    }
    let rows = aggregate(&records, &settings, &by_id, cfg.eps_unit);
    let report = RobustnessReport {
        format: FORMAT.into(),
        guard: guard_path.display().to_string(),
        data: ds.descriptor.path.display().to_string(),
        encoder: encoder.id.clone(),
        config: cfg.clone(),
        selection,
        fewer_than_requested: fewer,
        rows,
        finished,
    };
    if finished {
        write_outputs(&report, out)?;
    }
    Ok(Outcome::Done(Box::new(report)))
}

/// Decodes a batch's images: the indices of those that decoded, the images,
/// and a failure for each that did not.
fn decode(samples: &[&Sample], max_pixels: u64) -> (Vec<usize>, Vec<DynamicImage>, Vec<Failure>) {
    let (mut kept, mut decoded, mut failures) = (Vec::new(), Vec::new(), Vec::new());
    for (i, s) in samples.iter().enumerate() {
        match images::decode(s.image.as_ref().expect("candidates have images"), max_pixels) {
            Ok(img) => {
                kept.push(i);
                decoded.push(img);
            }
            Err(error) => failures.push(Failure { id: s.id.clone(), error }),
        }
    }
    (kept, decoded, failures)
}

/// Decodes drawn images again: they decoded when they were drawn, so a
/// failure now (a changed file) is an error naming the sample, not a skip.
fn decode_drawn(samples: &[&Sample], max_pixels: u64) -> Result<Vec<DynamicImage>> {
    let (_, decoded, failures) = decode(samples, max_pixels);
    match failures.first() {
        Some(f) => Err(Error::Results(format!("sample {}: {} (it decoded when the images were drawn)", f.id, f.error))),
        None => Ok(decoded),
    }
}

/// Classifies images in a seeded order until K are classified correctly.
fn select(
    target: &GuardDecision,
    candidates: &[&Sample],
    cfg: &RobustnessConfig,
    max_pixels: u64,
    out: &Path,
    progress: &dyn Progress,
) -> Result<Selection> {
    let path = out.join("selection.json");
    if let Ok(bytes) = std::fs::read(&path) {
        return serde_json::from_slice(&bytes).map_err(|e| Error::File { path, message: e.to_string() });
    }
    let mut order: Vec<&Sample> = candidates.to_vec();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(cfg.seed));
    let mut sel =
        Selection { candidates: candidates.len(), examined: 0, correct: 0, selected: Vec::new(), clean_decision: Vec::new(), failures: Vec::new() };
    progress.start(cfg.samples.min(candidates.len()) as u64, "correctly classified images");
    progress.stage("drawing correctly classified images");
    for batch in order.chunks(cfg.batch) {
        if sel.selected.len() >= cfg.samples {
            break;
        }
        let (kept, decoded, failures) = decode(batch, max_pixels);
        for f in &failures {
            progress.note(&format!("skipped {}: {}", f.id, f.error));
        }
        sel.failures.extend(failures);
        if kept.is_empty() {
            continue;
        }
        let z = target.decisions(&target.images_of(&decoded));
        for (&i, &z) in kept.iter().zip(&z) {
            if sel.selected.len() >= cfg.samples {
                break;
            }
            sel.examined += 1;
            if (z >= 0.0) == batch[i].label.is_unsafe() {
                sel.correct += 1;
                sel.selected.push(batch[i].id.clone());
                sel.clean_decision.push(z);
                progress.advance(1);
            }
        }
    }
    progress.finish();
    write_atomic(&path, &serde_json::to_vec_pretty(&sel)?)?;
    Ok(sel)
}

fn attack_batch(
    target: &GuardDecision,
    attack: &Attack,
    batch: &[&Sample],
    first_setting: usize,
    cfg: &RobustnessConfig,
    max_pixels: u64,
    save: Option<&Path>,
) -> Result<Vec<Record>> {
    let x0 = target.images_of(&decode_drawn(batch, max_pixels)?);
    let labels: Vec<bool> = batch.iter().map(|s| s.label.is_unsafe()).collect();
    let eps: Vec<f64> = cfg.eps.iter().map(|e| e * cfg.eps_unit.scale()).collect();
    // DeepFool runs once and is clipped to every epsilon; the others run per
    // epsilon, each drawing its noise from its own stream.
    let calls: Vec<Vec<usize>> = match attack {
        Attack::Deepfool { .. } => vec![(0..eps.len()).collect()],
        _ => (0..eps.len()).map(|k| vec![k]).collect(),
    };
    let mut records = Vec::new();
    for ks in calls {
        let seeds: Vec<u64> = batch.iter().map(|s| derive_seed(cfg.seed, &format!("{}/{}/{}", s.id, attack.name(), ks[0]))).collect();
        let call_eps: Vec<f64> = ks.iter().map(|&k| eps[k]).collect();
        for (&k, outcome) in ks.iter().zip(attack::run(attack, target, &x0, &labels, &call_eps, &seeds)?) {
            let setting = first_setting + k;
            for (i, s) in batch.iter().enumerate() {
                records.push(Record {
                    id: s.id.clone(),
                    setting,
                    success: outcome.success[i],
                    decision: outcome.decision[i],
                    linf: Some(outcome.linf[i]),
                    l2: Some(outcome.l2[i]),
                });
            }
            if let Some(out) = save {
                save_images(out, attack, cfg.eps[k], batch, &outcome, target)?;
            }
        }
    }
    Ok(records)
}

/// Writes a batch's adversarial images as 8-bit PNG.
fn save_images(out: &Path, attack: &Attack, eps: f64, batch: &[&Sample], outcome: &attack::Outcome, target: &GuardDecision) -> Result<()> {
    let size = target.image_size();
    let host = outcome.host_images();
    for (s, image) in batch.iter().zip(host.chunks(3 * size * size)) {
        let rgb = target.unit().to_rgb8(image, &target.encoder().preprocessor);
        let img = image::RgbImage::from_raw(size as u32, size as u32, rgb).expect("size matches");
        let mut bytes = std::io::Cursor::new(Vec::new());
        img.write_to(&mut bytes, image::ImageFormat::Png)?;
        let path = adversarial_path(out, attack, eps, &s.id);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|err| Error::io(dir, err))?;
        }
        write_atomic(&path, &bytes.into_inner())?;
    }
    Ok(())
}

/// Where `--save-adversarial` writes one image.
fn adversarial_path(out: &Path, attack: &Attack, eps: f64, id: &str) -> PathBuf {
    out.join("adversarial").join(attack.name()).join(format!("eps-{eps}")).join(format!("{}.png", file_stem(id)))
}

fn corrupt_batch(target: &GuardDecision, batch: &[&Sample], first_setting: usize, cfg: &RobustnessConfig, max_pixels: u64) -> Result<Vec<Record>> {
    let decoded = decode_drawn(batch, max_pixels)?;
    let mut records = Vec::new();
    for (k, c) in cfg.corruptions.iter().enumerate() {
        let corrupted = batch
            .iter()
            .zip(&decoded)
            .map(|(s, img)| {
                let seed = derive_seed(cfg.seed, &format!("{}/{}/{}", s.id, c.name(), c.severity()));
                c.apply(img, seed).map(DynamicImage::ImageRgb8).map_err(|e| Error::Results(format!("{}: {e}", s.id)))
            })
            .collect::<Result<Vec<_>>>()?;
        let z = target.decisions(&target.images_of(&corrupted));
        for (s, &z) in batch.iter().zip(&z) {
            let success = (z >= 0.0) != s.label.is_unsafe();
            records.push(Record { id: s.id.clone(), setting: first_setting + k, success, decision: z, linf: None, l2: None });
        }
    }
    Ok(records)
}

fn aggregate(records: &[Record], settings: &[Setting], by_id: &BTreeMap<&str, &Sample>, unit: EpsUnit) -> Vec<RobustRow> {
    let mut rows = Vec::new();
    for (k, setting) in settings.iter().enumerate() {
        let mine: Vec<&Record> = records.iter().filter(|r| r.setting == k).collect();
        let mut slices: BTreeMap<Slice, Vec<&Record>> = BTreeMap::new();
        for r in &mine {
            let s = by_id[r.id.as_str()];
            slices.entry(Slice::All).or_default().push(r);
            slices.entry(Slice::Category(s.category.as_deref().unwrap_or("none").into())).or_default().push(r);
            slices.entry(Slice::Source(s.source.name().into())).or_default().push(r);
        }
        for (slice, rs) in slices {
            let n = rs.len();
            let survived = rs.iter().filter(|r| !r.success).count();
            let (ci_low, ci_high) = wilson(survived, n);
            let norms: Vec<f64> = match setting.norm {
                Some(Norm::Linf) => rs.iter().filter_map(|r| r.linf).map(|v| f64::from(v) / unit.scale()).collect(),
                Some(Norm::L2) => rs.iter().filter_map(|r| r.l2).map(|v| f64::from(v) / unit.scale()).collect(),
                None => Vec::new(),
            };
            let (mean_norm, max_norm) = if norms.is_empty() {
                (f64::NAN, f64::NAN)
            } else {
                (norms.iter().sum::<f64>() / norms.len() as f64, norms.iter().copied().fold(0.0, f64::max))
            };
            rows.push(RobustRow {
                attack: setting.attack.clone(),
                kind: setting.kind,
                eps: setting.eps,
                eps_unit: if setting.kind == SettingKind::Attack { unit.name().into() } else { String::new() },
                slice: slice.to_string(),
                n,
                robust_accuracy: survived as f64 / n as f64,
                ci_low,
                ci_high,
                success_rate: 1.0 - survived as f64 / n as f64,
                norm: match setting.norm {
                    Some(Norm::Linf) => "linf".into(),
                    Some(Norm::L2) => "l2".into(),
                    None => String::new(),
                },
                mean_norm,
                max_norm,
            });
        }
    }
    rows
}

fn write_outputs(report: &RobustnessReport, out: &Path) -> Result<()> {
    write_atomic(&out.join("robustness.json"), &serde_json::to_vec_pretty(report)?)?;
    write_atomic(&out.join("robustness.csv"), &crate::sweep::to_csv(&report.rows)?)?;
    let overall: Vec<&RobustRow> = report.rows.iter().filter(|r| r.slice == ALL_IMAGES && r.kind == SettingKind::Attack).collect();
    let mut attacks: Vec<String> = overall.iter().map(|r| r.attack.clone()).collect();
    attacks.dedup();
    if !attacks.is_empty() {
        let curves: Vec<Curve> = attacks
            .iter()
            .map(|a| Curve {
                label: a.clone(),
                points: overall
                    .iter()
                    .filter(|r| &r.attack == a)
                    .map(|r| Point { x: r.eps, mean: r.robust_accuracy, ci_low: r.ci_low, ci_high: r.ci_high })
                    .collect(),
            })
            .collect();
        let x = format!("epsilon ({}, log scale)", report.config.eps_unit.name());
        plot_curves(&curves, &[], Axes { title: "Robust accuracy under attack", x: &x, y: "robust accuracy" }, &out.join("robustness"))?;
    }
    write_atomic(&out.join("robustness.md"), summary(report).as_bytes())?;
    Ok(())
}

/// The markdown summary.
pub fn summary(r: &RobustnessReport) -> String {
    let mut s = String::new();
    let sel = &r.selection;
    let _ = writeln!(s, "# Robustness of {}\n", r.guard);
    let _ = writeln!(
        s,
        "- data: {} ({} candidate images{})",
        r.data,
        sel.candidates,
        r.config.source.map(|x| format!(", source {}", x.name())).unwrap_or_default()
    );
    let _ = writeln!(s, "- encoder: {} (weights sha256 {})", r.encoder.model, &r.encoder.weights_sha256[..12.min(r.encoder.weights_sha256.len())]);
    let _ = writeln!(
        s,
        "- clean accuracy on the {} images drawn: {:.4}; {} correctly classified images attacked (seed {})",
        sel.examined,
        sel.clean_accuracy(),
        sel.selected.len(),
        r.config.seed
    );
    if r.fewer_than_requested {
        let _ = writeln!(s, "- fewer images were classified correctly than the {} requested: all of them were attacked", r.config.samples);
    }
    if !sel.failures.is_empty() {
        let _ = writeln!(s, "- {} images could not be decoded and were left out (listed in robustness.json)", sel.failures.len());
    }
    let _ = writeln!(s, "\nRobust accuracy is the share of attacked images whose verdict survives, with a 95% Wilson interval.\n");
    let table = |s: &mut String, kind: SettingKind, head: &str| {
        let rows: Vec<&RobustRow> = r.rows.iter().filter(|x| x.slice == ALL_IMAGES && x.kind == kind).collect();
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(s, "| {head} | n | robust accuracy | 95% CI | success rate | mean norm | max norm |");
        let _ = writeln!(s, "|---|---|---|---|---|---|---|");
        for x in rows {
            let norm = |v: f64| if v.is_finite() { format!("{v:.4} ({})", x.norm) } else { "-".into() };
            let _ = writeln!(
                s,
                "| {} {} | {} | {:.4} | [{:.4}, {:.4}] | {:.4} | {} | {} |",
                x.attack,
                x.eps,
                x.n,
                x.robust_accuracy,
                x.ci_low,
                x.ci_high,
                x.success_rate,
                norm(x.mean_norm),
                norm(x.max_norm)
            );
        }
        s.push('\n');
    };
    let _ = writeln!(s, "## Attacks (eps in {} units)\n", r.config.eps_unit.name());
    table(&mut s, SettingKind::Attack, "attack, eps");
    let _ = writeln!(s, "## Corruptions\n");
    table(&mut s, SettingKind::Corruption, "corruption, severity");
    let _ = writeln!(s, "Per category and per source: robustness.csv. Plot: robustness.png.");
    s
}
