//! The pipeline: draw source images, ask the editor to add or remove the
//! policy's harmful feature (retrying with exponential backoff that honours
//! `Retry-After`, within a request budget), verify each edit, and write the
//! kept pairs as a SafetyPairs-format pair set.
//!
//! Every source ends as one record in `records/` (kept, rejected with its
//! reasons, or failed with its error), written atomically; a rerun skips
//! kept and rejected sources and tries the failed ones again, so an
//! interrupted run resumes to the same pair set. Every request is a line of
//! `requests.jsonl`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use image::RgbImage;
use pairguard_data::seed::derive_seed;
use pairguard_data::{Dataset, Direction, Policy, Sample, images};
use pairguard_run::{Assignment, Listing, Progress, claim, lock, run_workers, sha256_file, write_atomic};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::builtin::EditTruth;
use super::editor::{EditRequest, Editor};
use super::verify::{Check, Verdict, Verifier, VerifyConfig};
use crate::error::{Error, Result};
use crate::names::file_stem;
use crate::remote::RequestError;
use crate::remote::records::Records;
use crate::remote::retry::{AppendLog, Budget, RetryPolicy, with_retries};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateConfig {
    /// Seed of the draw of sources and of each edit's phrases and editor seed.
    pub seed: u64,
    /// Edit at most this many sources (None: all).
    pub sources: Option<usize>,
    /// Attempts per source (the first one included).
    pub attempts: usize,
    /// First wait after a failed attempt; it doubles each time, up to `max_backoff_s`.
    pub backoff_s: f64,
    pub max_backoff_s: f64,
    pub verify: VerifyConfig,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        GenerateConfig { seed: 0, sources: None, attempts: 4, backoff_s: 1.0, max_backoff_s: 60.0, verify: VerifyConfig::default() }
    }
}

/// Options that do not change results.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Most requests this run may send (None: no limit); sources left when it is spent wait for the next run.
    pub budget: Option<usize>,
}

/// How one source ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Kept,
    Rejected,
    /// The editor never answered usably; tried again by the next run.
    Failed,
}

/// `records/<source>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub category: String,
    pub direction: Direction,
    pub prompt: String,
    pub seed: u64,
    pub status: Status,
    /// Rejection reasons, or the last error.
    pub reasons: Vec<String>,
    pub attempts: usize,
    pub verdict: Option<Verdict>,
    /// The pair's images, relative to the output folder (kept pairs), or
    /// the rejected edit (under `rejected/`).
    pub images: Vec<String>,
    pub cost: Option<f64>,
    /// What the edit really did, when the editor knows (the built-in one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truth: Option<EditTruth>,
}

/// One line of `requests.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestLog {
    pub source: String,
    pub attempt: usize,
    pub editor: String,
    pub prompt: String,
    pub seed: u64,
    /// "ok" or the failure's status ("http 429", "timeout", ...).
    pub status: String,
    pub message: Option<String>,
    pub seconds: f64,
    pub cost: Option<f64>,
    /// Seconds since the Unix epoch when the request started.
    pub started: f64,
}

/// What a run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenerateReport {
    pub data: String,
    pub policy: String,
    pub editor: String,
    pub config: GenerateConfig,
    /// Sources with an image and a policy category, and those drawn.
    pub candidates: usize,
    pub drawn: usize,
    /// Samples left out: no image, or no category.
    pub ineligible: usize,
    pub kept: usize,
    pub rejected: usize,
    pub failed: usize,
    /// Drawn sources without a record (the budget ran out).
    pub pending: usize,
    /// Per category: kept, rejected and failed.
    pub by_category: BTreeMap<String, [usize; 3]>,
    /// Rejections per reason (its text up to the first colon), overall and per category.
    pub by_reason: BTreeMap<String, usize>,
    pub by_category_reason: BTreeMap<String, BTreeMap<String, usize>>,
    /// Requests sent by this run, and the cost the editor reported for them.
    pub requests: usize,
    pub cost: f64,
    /// Every drawn source is kept or rejected.
    pub complete: bool,
    /// How verification did against the truth, when the editor knows it
    /// for every judged edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationScore>,
}

/// Verification scored against the editor's truth. A judged edit is a
/// true pair when its label flipped and nothing else changed; a check is
/// right to reject an edit that is not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationScore {
    /// Edits the editor returned and verification judged.
    pub edits: usize,
    /// Of those, true pairs.
    pub pairs: usize,
    pub kept: usize,
    pub kept_pairs: usize,
    /// Share of the kept edits that are true pairs (without verification:
    /// `pairs / edits`).
    pub precision: f64,
    /// Share of the true pairs kept.
    pub recall: f64,
    /// Per check: the edits it rejected, and the share of those that are
    /// not pairs (precision) and of all non-pairs it rejected (recall).
    pub checks: BTreeMap<String, CheckScore>,
    /// Per defect of the editor: edits, and how many verification kept.
    pub defects: BTreeMap<String, [usize; 2]>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckScore {
    pub rejected: usize,
    pub rejected_non_pairs: usize,
    pub precision: f64,
    pub recall: f64,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { f64::NAN } else { a as f64 / b as f64 }
}

impl VerificationScore {
    /// The score of `records`' judged edits; None when one lacks its truth.
    fn of<'a>(records: impl Iterator<Item = &'a Record>) -> Option<Self> {
        let judged: Vec<(&Record, EditTruth, &Verdict)> =
            records.filter_map(|r| r.verdict.as_ref().map(|v| (r, v))).map(|(r, v)| r.truth.map(|t| (r, t, v))).collect::<Option<_>>()?;
        if judged.is_empty() {
            return None;
        }
        let non_pairs = judged.iter().filter(|(_, t, _)| !t.is_pair()).count();
        let mut checks: BTreeMap<String, CheckScore> = BTreeMap::new();
        let mut defects: BTreeMap<String, [usize; 2]> = BTreeMap::new();
        let (mut pairs, mut kept, mut kept_pairs) = (0, 0, 0);
        for (r, t, v) in &judged {
            let is_kept = r.status == Status::Kept;
            pairs += usize::from(t.is_pair());
            kept += usize::from(is_kept);
            kept_pairs += usize::from(is_kept && t.is_pair());
            let d = defects.entry(t.defect.name().into()).or_default();
            d[0] += 1;
            d[1] += usize::from(is_kept);
            let failed: std::collections::BTreeSet<Check> = v.reasons.iter().map(|r| Check::of(r)).collect();
            for c in failed {
                let e = checks.entry(c.name().into()).or_insert(CheckScore { rejected: 0, rejected_non_pairs: 0, precision: 0.0, recall: 0.0 });
                e.rejected += 1;
                e.rejected_non_pairs += usize::from(!t.is_pair());
            }
        }
        for c in checks.values_mut() {
            c.precision = ratio(c.rejected_non_pairs, c.rejected);
            c.recall = ratio(c.rejected_non_pairs, non_pairs);
        }
        Some(VerificationScore {
            edits: judged.len(),
            pairs,
            kept,
            kept_pairs,
            precision: ratio(kept_pairs, kept),
            recall: ratio(kept_pairs, pairs),
            checks,
            defects,
        })
    }
}

/// The identity of an output folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Identity {
    data_sha256: String,
    policy_sha256: String,
    editor: String,
    verifier_sha256: String,
    config: GenerateConfig,
}

/// What the pipeline works with.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub data: &'a Dataset,
    pub policy: &'a Policy,
    pub editor: &'a dyn Editor,
    /// What identifies the editor's results (its config without secrets).
    pub editor_identity: &'a str,
    pub verifier: &'a Verifier<'a>,
    /// The verifier guard's file, hashed into the run's identity.
    pub verifier_path: &'a Path,
}

fn png(img: &RgbImage) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

/// Runs (or resumes) pair generation into `out`.
pub fn generate(inputs: &Inputs, cfg: &GenerateConfig, opts: &GenerateOptions, out: &Path, progress: &dyn Progress) -> Result<GenerateReport> {
    cfg.verify.check()?;
    let retry = RetryPolicy::new(cfg.attempts, cfg.backoff_s, cfg.max_backoff_s)?;
    if opts.concurrency == 0 {
        return Err(Error::Config("--concurrency must be at least 1".into()));
    }
    let ds = inputs.data;
    // A category the policy lacks has no edit instruction: a policy that
    // covers part of the data is refused rather than silently narrowed.
    let mut lacking: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &ds.samples {
        if let Some(c) = s.category.as_deref().filter(|c| s.image.is_some() && inputs.policy.category(c).is_none()) {
            *lacking.entry(c).or_default() += 1;
        }
    }
    if !lacking.is_empty() {
        let list: Vec<String> = lacking.iter().map(|(c, n)| format!("{c} ({n} images)")).collect();
        return Err(Error::Config(format!(
            "policy {} has no category {} of dataset {}; add them to the policy, or leave their rows out of the data",
            inputs.policy.path.display(),
            list.join(", "),
            ds.descriptor.name
        )));
    }
    let eligible = |s: &&Sample| s.image.is_some() && s.category.as_deref().is_some_and(|c| inputs.policy.category(c).is_some());
    let candidates: Vec<&Sample> = ds.samples.iter().filter(eligible).collect();
    if candidates.is_empty() {
        return Err(Error::Config(format!(
            "dataset {} has no images in a category of policy {} ({})",
            ds.descriptor.name,
            inputs.policy.name,
            inputs.policy.categories.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    let mut drawn = candidates.clone();
    drawn.shuffle(&mut ChaCha8Rng::seed_from_u64(cfg.seed));
    drawn.truncate(cfg.sources.unwrap_or(usize::MAX));

    let mut listing = Listing::default();
    for f in std::iter::once(&ds.descriptor.path).chain(&ds.manifest_files) {
        listing.line(sha256_file(f)?);
    }
    for s in &drawn {
        listing.line(format_args!("{}\t{}\t{:?}\t{:?}", s.id, s.label.name(), s.category, s.image));
    }
    let identity = Identity {
        data_sha256: listing.sha256(),
        policy_sha256: sha256_file(&inputs.policy.path)?,
        editor: inputs.editor_identity.to_string(),
        verifier_sha256: sha256_file(inputs.verifier_path)?,
        config: cfg.clone(),
    };
    let _lock = lock(out, Assignment::Whole)?;
    claim(out, &identity, "pairs made from other data, policy, editor, verifier or settings", Identity::eq)?;
    for d in ["images", "rejected"] {
        std::fs::create_dir_all(out.join(d)).map_err(|e| Error::io(out.join(d), e))?;
    }
    let records = Records::open(out.join("records"))?;
    let mut todo = Vec::new();
    for s in &drawn {
        if records.read::<Record>(&s.id)?.is_none_or(|r| r.status == Status::Failed) {
            todo.push(*s);
        }
    }
    progress.start(todo.len() as u64, "sources");
    let log = AppendLog::open(&out.join("requests.jsonl"))?;
    let budget = Budget::new(opts.budget);
    let ctx = Attempt { inputs, retry: &retry, cfg, out, log: &log, budget: &budget, max_pixels: ds.descriptor.max_pixels };
    let done = run_workers::<Error>(todo.len(), opts.concurrency, |i| {
        let source = todo[i];
        // None: the budget is spent, and the rest waits for the next run.
        let Some(record) = ctx.run(source)? else { return Ok(false) };
        records.write(&source.id, &record)?;
        progress.advance(1);
        Ok(true)
    });
    progress.finish();
    done?;

    let mut drawn_records = Vec::new();
    for s in &drawn {
        drawn_records.push((s, records.read::<Record>(&s.id)?));
    }
    let report = summarise(inputs, cfg, &drawn_records, candidates.len(), ds.samples.len() - candidates.len(), budget.sent(), out)?;
    write_pair_sets(ds, &drawn_records, out)?;
    write_atomic(&out.join("report.json"), &serde_json::to_vec_pretty(&report)?)?;
    write_atomic(&out.join("report.md"), render(&report).as_bytes())?;
    Ok(report)
}

/// One source's edit, with retries.
struct Attempt<'a> {
    inputs: &'a Inputs<'a>,
    cfg: &'a GenerateConfig,
    out: &'a Path,
    retry: &'a RetryPolicy,
    log: &'a AppendLog,
    budget: &'a Budget,
    max_pixels: u64,
}

impl Attempt<'_> {
    /// The source's record, or None when the budget ran out first.
    fn run(&self, s: &Sample) -> Result<Option<Record>> {
        let category = s.category.clone().expect("eligible sources have a category");
        let pc = self.inputs.policy.category(&category).expect("eligible sources are in the policy");
        let direction = Direction::flipping(s.label.is_unsafe());
        let seed = derive_seed(self.cfg.seed, &s.id);
        let prompt = self.inputs.policy.instruction(pc, direction, seed);
        let mut record = Record {
            id: s.id.clone(),
            category,
            direction,
            prompt: prompt.clone(),
            seed,
            status: Status::Failed,
            reasons: Vec::new(),
            attempts: 0,
            verdict: None,
            images: Vec::new(),
            cost: None,
            truth: None,
        };
        let original = match images::decode(s.image.as_ref().expect("eligible"), self.max_pixels) {
            Ok(i) => i.to_rgb8(),
            Err(e) => {
                record.status = Status::Rejected;
                record.reasons.push(format!("source image: {e}"));
                return Ok(Some(record));
            }
        };
        let request = EditRequest {
            id: s.id.clone(),
            category: record.category.clone(),
            direction,
            prompt,
            seed,
            png: png(&original)?,
            width: original.width(),
            height: original.height(),
        };
        let editor = self.inputs.editor.describe();
        let attempted = with_retries(
            self.retry,
            self.budget,
            || self.inputs.editor.edit(&request),
            |a| {
                let (status, message, cost) = a.outcome(|r| r.cost);
                let entry = RequestLog {
                    source: s.id.clone(),
                    attempt: a.number,
                    editor: editor.clone(),
                    prompt: request.prompt.clone(),
                    seed,
                    status,
                    message,
                    seconds: a.seconds,
                    cost,
                    started: a.started,
                };
                self.log.write(&entry)
            },
        )?;
        let Some(attempted) = attempted else { return Ok(None) };
        record.attempts = attempted.attempts;
        match attempted.result {
            Ok(edited) => {
                record.cost = edited.cost;
                record.truth = edited.truth;
                let (verdict, image) =
                    self.inputs.verifier.judge(&original, s.label.is_unsafe(), &edited.image, edited.mask.as_ref(), self.max_pixels);
                let name = file_stem(&s.id);
                // The original of every edit that decodes: the unverified pair set uses it.
                let o = format!("images/{name}-o.png");
                if image.is_some() {
                    write_atomic(&self.out.join(&o), &png(&original)?)?;
                }
                if verdict.reasons.is_empty() {
                    let image = image.expect("a kept edit decoded");
                    let c = format!("images/{name}-c.png");
                    write_atomic(&self.out.join(&c), &png(&image)?)?;
                    record.status = Status::Kept;
                    record.images = vec![o, c];
                } else {
                    let r = format!("rejected/{name}-edit.bin");
                    write_atomic(&self.out.join(&r), &edited.image)?;
                    record.status = Status::Rejected;
                    record.reasons = verdict.reasons.clone();
                    record.images = vec![r];
                }
                record.verdict = Some(verdict);
            }
            Err(RequestError { status, message, .. }) => record.reasons = vec![format!("{status}: {message}")],
        }
        Ok(Some(record))
    }
}

fn summarise(
    inputs: &Inputs,
    cfg: &GenerateConfig,
    records: &[(&&Sample, Option<Record>)],
    candidates: usize,
    ineligible: usize,
    requests: usize,
    out: &Path,
) -> Result<GenerateReport> {
    let mut by_category: BTreeMap<String, [usize; 3]> = BTreeMap::new();
    let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_category_reason: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let (mut kept, mut rejected, mut failed, mut pending) = (0, 0, 0, 0);
    for (_, r) in records {
        let Some(r) = r else {
            pending += 1;
            continue;
        };
        let slot = by_category.entry(r.category.clone()).or_default();
        match r.status {
            Status::Kept => {
                kept += 1;
                slot[0] += 1;
            }
            Status::Rejected => {
                rejected += 1;
                slot[1] += 1;
                for reason in &r.reasons {
                    let key = reason.split(':').next().unwrap_or(reason).to_string();
                    *by_category_reason.entry(r.category.clone()).or_default().entry(key.clone()).or_default() += 1;
                    *by_reason.entry(key).or_default() += 1;
                }
            }
            Status::Failed => {
                failed += 1;
                slot[2] += 1;
            }
        }
    }
    // The cost of every request of every run, from the log.
    let log = std::fs::read_to_string(out.join("requests.jsonl")).unwrap_or_default();
    let cost = log.lines().filter_map(|l| serde_json::from_str::<RequestLog>(l).ok()).filter_map(|r| r.cost).fold(0.0, |a, c| a + c);
    Ok(GenerateReport {
        data: inputs.data.descriptor.path.display().to_string(),
        policy: inputs.policy.path.display().to_string(),
        editor: inputs.editor.describe(),
        config: cfg.clone(),
        candidates,
        drawn: records.len(),
        ineligible,
        kept,
        rejected,
        failed,
        pending,
        by_category,
        by_reason,
        by_category_reason,
        requests,
        cost,
        complete: failed == 0 && pending == 0,
        verification: VerificationScore::of(records.iter().filter_map(|(_, r)| r.as_ref())),
    })
}

/// The kept pairs as a SafetyPairs-format set: `manifest.jsonl` (two rows
/// per pair, in draw order) and `pairs.toml`; and every edit that decoded,
/// verified or not, as `manifest-unverified.jsonl` and
/// `pairs-unverified.toml`, to measure what verification is worth.
fn write_pair_sets(ds: &Dataset, records: &[(&&Sample, Option<Record>)], out: &Path) -> Result<PathBuf> {
    let kept = records.iter().filter_map(|(s, r)| {
        let r = r.as_ref().filter(|r| r.status == Status::Kept)?;
        Some((**s, r.images[0].clone(), r.images[1].clone(), &r.category))
    });
    let path = write_pair_set(ds, kept, out, "manifest.jsonl", "pairs.toml", "")?;
    let decoded = records.iter().filter_map(|(s, r)| {
        let r = r.as_ref()?;
        match r.status {
            Status::Kept => Some((**s, r.images[0].clone(), r.images[1].clone(), &r.category)),
            Status::Rejected if r.verdict.as_ref().is_some_and(Verdict::decoded) => {
                Some((**s, format!("images/{}-o.png", file_stem(&s.id)), r.images[0].clone(), &r.category))
            }
            _ => None,
        }
    });
    write_pair_set(ds, decoded, out, "manifest-unverified.jsonl", "pairs-unverified.toml", "-unverified")?;
    Ok(path)
}

/// One pair set: a manifest of `(source, original image, edit, category)`
/// and its descriptor.
fn write_pair_set<'a>(
    ds: &Dataset,
    pairs: impl Iterator<Item = (&'a Sample, String, String, &'a String)>,
    out: &Path,
    manifest_name: &str,
    descriptor_name: &str,
    suffix: &str,
) -> Result<PathBuf> {
    let mut manifest = String::new();
    for (s, original, edit, category) in pairs {
        let pair_id = format!("pair-{}", file_stem(&s.id));
        let group = s.group.clone().unwrap_or_else(|| s.id.clone());
        let edit_label = if s.label.is_unsafe() { "safe" } else { "unsafe" };
        for (role, image, label, source) in
            [("original", &original, s.label.name(), s.source.name()), ("counterfactual", &edit, edit_label, "ai-generated")]
        {
            let row = serde_json::json!({
                "id": format!("{pair_id}-{}", &role[..1]), "image": image, "label": label, "category": category,
                "pair_id": pair_id, "pair_role": role, "group": group, "source": source,
            });
            let _ = writeln!(manifest, "{row}");
        }
    }
    write_atomic(&out.join(manifest_name), manifest.as_bytes())?;
    let mut d = ds.descriptor.clone();
    d.name = format!("{}-generated-pairs{suffix}", ds.descriptor.name);
    d.format = pairguard_data::descriptor::Format::Jsonl;
    d.manifest = vec![manifest_name.into()];
    d.root = Some(".".into());
    d.embeddings = None;
    d.taxonomy = pairguard_data::descriptor::TaxonomySpec::Inline(ds.descriptor.taxonomy()?);
    d.columns = Default::default();
    d.labels = Default::default();
    d.sources = Default::default();
    d.categories = Default::default();
    d.hub = None;
    let path = out.join(descriptor_name);
    let what = if suffix.is_empty() { "Counterfactual pairs" } else { "Every edit that decoded, verified or not," };
    let text = format!(
        "# {what} made by `pairguard pairs generate` from {} (see report.md).\n{}",
        ds.descriptor.path.display(),
        toml::to_string(&d).map_err(|e| Error::Results(format!("writing {}: {e}", path.display())))?
    );
    write_atomic(&path, text.as_bytes())?;
    Ok(path)
}

/// A share to three places, or "-" when there is nothing to divide.
fn share(v: f64) -> String {
    if v.is_nan() { "-".into() } else { format!("{v:.3}") }
}

fn render(r: &GenerateReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Counterfactual pairs from {}\n", r.data);
    let _ = writeln!(s, "- policy: {}; editor: {}", r.policy, r.editor);
    let _ = writeln!(
        s,
        "- {} eligible images ({} samples without an image or a policy category), {} drawn (seed {})",
        r.candidates, r.ineligible, r.drawn, r.config.seed
    );
    let _ = writeln!(s, "- kept {}, rejected {}, failed {}, not yet tried {}", r.kept, r.rejected, r.failed, r.pending);
    let _ = writeln!(s, "- {} requests this run; reported cost of all runs {}", r.requests, r.cost);
    if !r.complete {
        let _ = writeln!(s, "- incomplete: run the same command again to try the failed and remaining sources");
    }
    let _ = writeln!(s, "\n| category | kept | rejected | failed |\n|---|---|---|---|");
    for (c, [k, rj, f]) in &r.by_category {
        let _ = writeln!(s, "| {c} | {k} | {rj} | {f} |");
    }
    if !r.by_reason.is_empty() {
        let _ = writeln!(s, "\n| rejection reason | category | pairs |\n|---|---|---|");
        for (reason, n) in &r.by_reason {
            let _ = writeln!(s, "| {reason} | all | {n} |");
            for (c, reasons) in &r.by_category_reason {
                if let Some(k) = reasons.get(reason) {
                    let _ = writeln!(s, "| {reason} | {c} | {k} |");
                }
            }
        }
    }
    if let Some(v) = &r.verification {
        let _ = writeln!(
            s,
            "\nVerification against the editor's truth: {} of {} judged edits are true pairs (label flipped, nothing else changed); \
             it kept {}, of which {} are pairs (precision {}, recall {}).\n",
            v.pairs,
            v.edits,
            v.kept,
            v.kept_pairs,
            share(v.precision),
            share(v.recall)
        );
        let _ = writeln!(s, "| check | rejected | of them not pairs | precision | recall |\n|---|---|---|---|---|");
        for (c, k) in &v.checks {
            let _ = writeln!(s, "| {c} | {} | {} | {} | {} |", k.rejected, k.rejected_non_pairs, share(k.precision), share(k.recall));
        }
        let _ = writeln!(s, "\n| the editor's defect | edits | kept |\n|---|---|---|");
        for (d, [n, k]) in &v.defects {
            let _ = writeln!(s, "| {d} | {n} | {k} |");
        }
    }
    let _ = writeln!(
        s,
        "\nThe pair set: pairs.toml (manifest.jsonl, images/); every edit that decoded, unverified: pairs-unverified.toml. \
         Every request: requests.jsonl. Every source: records/."
    );
    s
}
