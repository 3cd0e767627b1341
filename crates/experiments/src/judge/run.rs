//! Judging a dataset: every sample with an image is asked once (with
//! retries, backoff that honours `Retry-After`, a request budget and a line
//! per attempt in `requests.jsonl`), and ends as one record in `records/`:
//! answered, unparsable (the raw text kept, never scored) or failed (tried
//! again by the next run). Answers are cached by image, prompt, judge and
//! seed, so a rerun, or another dataset sharing images, sends no request
//! twice. The answered verdicts become `scores.jsonl`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use pairguard_data::{Dataset, Sample, images};
use pairguard_run::{Assignment, Listing, Progress, claim, lock, run_workers, sha256_bytes, sha256_file, write_atomic};
use serde::{Deserialize, Serialize};

use super::answer::{Verdict, parse};
use super::{Judge, JudgeRequest, Prompt, Reply};
use crate::error::{Error, Result};
use crate::remote::records::Records;
use crate::remote::retry::{AppendLog, Budget, RetryPolicy, with_retries};

/// Settings that change results (they are part of a run's identity).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeSettings {
    /// Sent with every request, for servers that sample reproducibly.
    pub seed: u64,
    /// Attempts per image (the first one included).
    pub attempts: usize,
    pub backoff_s: f64,
    pub max_backoff_s: f64,
}

impl Default for JudgeSettings {
    fn default() -> Self {
        JudgeSettings { seed: 0, attempts: 4, backoff_s: 1.0, max_backoff_s: 60.0 }
    }
}

/// Options that do not change results.
#[derive(Debug, Clone)]
pub struct JudgeOptions {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Most requests this run may send (None: no limit).
    pub budget: Option<usize>,
    /// The answer cache's folder.
    pub cache: PathBuf,
}

/// How one image ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JudgeStatus {
    Answered,
    /// The judge answered without a verdict that could be read.
    Unparsable,
    /// No usable answer; tried again by the next run.
    Failed,
}

/// `records/<sample>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeRecord {
    pub id: String,
    pub status: JudgeStatus,
    pub attempts: usize,
    /// The answer came from the cache.
    pub cached: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_unsafe: Option<f64>,
    /// The judge's text as it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Why it is unparsable, or the last error.
    pub reasons: Vec<String>,
    pub image_sha256: String,
}

/// One line of `requests.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestLine {
    pub sample: String,
    pub attempt: usize,
    pub judge: String,
    /// "ok" or the failure's status ("http 429", "timeout", ...).
    pub status: String,
    pub message: Option<String>,
    pub seconds: f64,
    pub cost: Option<f64>,
    pub started: f64,
}

/// What a run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JudgeReport {
    pub data: String,
    pub judge: String,
    pub settings: JudgeSettings,
    /// Samples with an image, and those without (not judged).
    pub images: usize,
    pub without_image: usize,
    pub answered: usize,
    pub unparsable: usize,
    pub failed: usize,
    /// Images without a record (the budget ran out).
    pub pending: usize,
    /// Answered images judged unsafe.
    pub unsafe_verdicts: usize,
    /// Where `scores.jsonl`'s scores come from.
    pub scores: ScoreSource,
    /// Requests this run sent, and answers it took from the cache.
    pub requests: usize,
    pub cache_hits: usize,
    /// Reported cost of every request of every run.
    pub cost: f64,
    pub complete: bool,
}

/// Where a judge's scores come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreSource {
    /// Every answer came with P(unsafe): its verdict token's
    /// log-probabilities, or a command's `p_unsafe`.
    Probabilities,
    /// The verdicts alone, scored 0 or 1.
    Verdicts,
}

impl std::fmt::Display for ScoreSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ScoreSource::Probabilities => "probabilities",
            ScoreSource::Verdicts => "verdicts",
        })
    }
}

/// What the run works with.
#[derive(Debug)]
pub struct JudgeInputs<'a> {
    pub data: &'a Dataset,
    pub judge: &'a dyn Judge,
    /// What identifies the judge's answers (its config without secrets).
    pub judge_identity: &'a str,
    pub prompt: &'a Prompt,
}

/// The identity of an output folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Identity {
    data_sha256: String,
    judge: String,
    prompt: Prompt,
    settings: JudgeSettings,
}

/// Runs (or resumes) judging `inputs.data` into `out`.
pub fn judge(inputs: &JudgeInputs, settings: &JudgeSettings, opts: &JudgeOptions, out: &Path, progress: &dyn Progress) -> Result<JudgeReport> {
    let retry = RetryPolicy::new(settings.attempts, settings.backoff_s, settings.max_backoff_s)?;
    if opts.concurrency == 0 {
        return Err(Error::Config("--concurrency must be at least 1".into()));
    }
    let ds = inputs.data;
    let with_image: Vec<&Sample> = ds.samples.iter().filter(|s| s.image.is_some()).collect();
    if with_image.is_empty() {
        return Err(Error::Config(format!("dataset {} has no images to judge", ds.descriptor.name)));
    }
    let mut listing = Listing::default();
    for f in std::iter::once(&ds.descriptor.path).chain(&ds.manifest_files) {
        listing.line(sha256_file(f)?);
    }
    for s in &with_image {
        listing.line(format_args!("{}\t{:?}", s.id, s.image));
    }
    let identity = Identity {
        data_sha256: listing.sha256(),
        judge: inputs.judge_identity.to_string(),
        prompt: inputs.prompt.clone(),
        settings: settings.clone(),
    };
    let _lock = lock(out, Assignment::Whole)?;
    claim(out, &identity, "verdicts of other data, another judge, prompt or settings", Identity::eq)?;
    std::fs::create_dir_all(&opts.cache).map_err(|e| Error::io(&opts.cache, e))?;
    let records = Records::open(out.join("records"))?;
    let mut todo = Vec::new();
    for s in &with_image {
        if records.read::<JudgeRecord>(&s.id)?.is_none_or(|r| r.status == JudgeStatus::Failed) {
            todo.push(*s);
        }
    }
    progress.start(todo.len() as u64, "images");
    let log = AppendLog::open(&out.join("requests.jsonl"))?;
    let budget = Budget::new(opts.budget);
    let hits = AtomicUsize::new(0);
    let ctx =
        Asking { inputs, settings, retry: &retry, log: &log, budget: &budget, hits: &hits, cache: &opts.cache, max_pixels: ds.descriptor.max_pixels };
    let done = run_workers::<Error>(todo.len(), opts.concurrency, |i| {
        let sample = todo[i];
        // None: the budget is spent, and the rest waits for the next run.
        let Some(record) = ctx.run(sample)? else { return Ok(false) };
        records.write(&sample.id, &record)?;
        progress.advance(1);
        Ok(true)
    });
    progress.finish();
    done?;

    let mut judged = Vec::new();
    for s in &with_image {
        judged.push(records.read::<JudgeRecord>(&s.id)?);
    }
    let report = summarise(inputs, settings, &judged, ds.samples.len() - with_image.len(), budget.sent(), hits.load(Ordering::SeqCst), out);
    write_atomic(&out.join("scores.jsonl"), scores(&judged, &report).as_bytes())?;
    write_atomic(&out.join("report.json"), &serde_json::to_vec_pretty(&report)?)?;
    write_atomic(&out.join("report.md"), render(&report).as_bytes())?;
    Ok(report)
}

/// One image's request, with retries.
struct Asking<'a> {
    inputs: &'a JudgeInputs<'a>,
    settings: &'a JudgeSettings,
    retry: &'a RetryPolicy,
    log: &'a AppendLog,
    budget: &'a Budget,
    hits: &'a AtomicUsize,
    cache: &'a Path,
    max_pixels: u64,
}

impl Asking<'_> {
    /// The image's record, or None when the budget ran out first.
    fn run(&self, s: &Sample) -> Result<Option<JudgeRecord>> {
        let mut record = JudgeRecord {
            id: s.id.clone(),
            status: JudgeStatus::Failed,
            attempts: 0,
            cached: false,
            verdict: None,
            p_unsafe: None,
            text: None,
            reasons: Vec::new(),
            image_sha256: String::new(),
        };
        let png = match images::decode(s.image.as_ref().expect("judged samples have an image"), self.max_pixels) {
            Ok(img) => {
                let mut out = std::io::Cursor::new(Vec::new());
                img.to_rgb8().write_to(&mut out, image::ImageFormat::Png)?;
                out.into_inner()
            }
            Err(e) => {
                // An image that does not decode cannot be judged: failed, by name.
                record.reasons.push(format!("image: {e}"));
                return Ok(Some(record));
            }
        };
        record.image_sha256 = sha256_bytes(&png);
        let key = sha256_bytes(
            serde_json::to_string(&(&record.image_sha256, self.inputs.judge_identity, self.inputs.prompt, self.settings.seed))?.as_bytes(),
        );
        let cached = self.cache.join(format!("{key}.json"));
        let reply = match std::fs::read(&cached).ok().and_then(|b| serde_json::from_slice::<Reply>(&b).ok()) {
            Some(reply) => {
                self.hits.fetch_add(1, Ordering::SeqCst);
                record.cached = true;
                reply
            }
            None => {
                let request = JudgeRequest { id: s.id.clone(), png, prompt: self.inputs.prompt.clone(), seed: self.settings.seed };
                let judge = self.inputs.judge.describe();
                let attempted = with_retries(
                    self.retry,
                    self.budget,
                    || self.inputs.judge.ask(&request),
                    |a| {
                        let (status, message, cost) = a.outcome(|r| r.cost);
                        let line = RequestLine {
                            sample: s.id.clone(),
                            attempt: a.number,
                            judge: judge.clone(),
                            status,
                            message,
                            seconds: a.seconds,
                            cost,
                            started: a.started,
                        };
                        self.log.write(&line)
                    },
                )?;
                let Some(attempted) = attempted else { return Ok(None) };
                record.attempts = attempted.attempts;
                match attempted.result {
                    Ok(reply) => {
                        write_atomic(&cached, &serde_json::to_vec(&reply)?)?;
                        reply
                    }
                    Err(e) => {
                        record.reasons = vec![e.to_string()];
                        return Ok(Some(record));
                    }
                }
            }
        };
        match parse(&reply.text) {
            Ok(v) => {
                record.status = JudgeStatus::Answered;
                record.verdict = Some(v);
                record.p_unsafe = reply.p_unsafe;
            }
            Err(why) => {
                record.status = JudgeStatus::Unparsable;
                record.reasons = vec![why];
            }
        }
        record.text = Some(reply.text);
        Ok(Some(record))
    }
}

fn summarise(
    inputs: &JudgeInputs,
    settings: &JudgeSettings,
    records: &[Option<JudgeRecord>],
    without_image: usize,
    requests: usize,
    cache_hits: usize,
    out: &Path,
) -> JudgeReport {
    let count = |st: JudgeStatus| records.iter().flatten().filter(|r| r.status == st).count();
    let answered: Vec<&JudgeRecord> = records.iter().flatten().filter(|r| r.status == JudgeStatus::Answered).collect();
    let with_p = answered.iter().all(|r| r.p_unsafe.is_some()) && !answered.is_empty();
    let log = std::fs::read_to_string(out.join("requests.jsonl")).unwrap_or_default();
    let cost = log.lines().filter_map(|l| serde_json::from_str::<RequestLine>(l).ok()).filter_map(|r| r.cost).fold(0.0, |a, c| a + c);
    let pending = records.iter().filter(|r| r.is_none()).count();
    let failed = count(JudgeStatus::Failed);
    JudgeReport {
        data: inputs.data.descriptor.path.display().to_string(),
        judge: inputs.judge.describe(),
        settings: settings.clone(),
        images: records.len(),
        without_image,
        answered: answered.len(),
        unparsable: count(JudgeStatus::Unparsable),
        failed,
        pending,
        unsafe_verdicts: answered.iter().filter(|r| r.verdict.as_ref().is_some_and(|v| v.unsafe_)).count(),
        scores: if with_p { ScoreSource::Probabilities } else { ScoreSource::Verdicts },
        requests,
        cache_hits,
        cost,
        complete: failed == 0 && pending == 0,
    }
}

/// `scores.jsonl`: one line per answered image, in the dataset's order,
/// with the score from log-probabilities when every answer had them.
fn scores(records: &[Option<JudgeRecord>], report: &JudgeReport) -> String {
    let mut s = String::new();
    for r in records.iter().flatten().filter(|r| r.status == JudgeStatus::Answered) {
        let verdict = if r.verdict.as_ref().is_some_and(|v| v.unsafe_) { "unsafe" } else { "safe" };
        let line = match r.p_unsafe.filter(|_| report.scores == ScoreSource::Probabilities) {
            Some(p) => serde_json::json!({"id": r.id, "score": p, "verdict": verdict}),
            None => serde_json::json!({"id": r.id, "verdict": verdict}),
        };
        let _ = writeln!(s, "{line}");
    }
    s
}

fn render(r: &JudgeReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Judged {}\n", r.data);
    let _ = writeln!(s, "- judge: {} (seed {})", r.judge, r.settings.seed);
    let _ = writeln!(s, "- {} images ({} samples without an image are not judged)", r.images, r.without_image);
    let _ = writeln!(
        s,
        "- answered {} ({} unsafe), unparsable {}, failed {}, not yet asked {}",
        r.answered, r.unsafe_verdicts, r.unparsable, r.failed, r.pending
    );
    let source = if r.scores == ScoreSource::Probabilities {
        "P(unsafe) as the judge gave it (its verdict token's log-probabilities, or the command's p_unsafe)"
    } else {
        "the verdicts alone (0 or 1): not every answer came with P(unsafe)"
    };
    let _ = writeln!(s, "- scores.jsonl: {source}");
    let _ = writeln!(s, "- {} requests this run, {} answers from the cache; reported cost of all runs {}", r.requests, r.cache_hits, r.cost);
    if r.unparsable > 0 {
        let _ = writeln!(s, "- unparsable answers are kept in records/ with their text and left out of scores.jsonl, never scored as safe");
    }
    if !r.complete {
        let _ = writeln!(s, "- incomplete: run the same command again to ask for the failed and remaining images");
    }
    let _ = writeln!(s, "\nEvery request: requests.jsonl. Every image: records/.");
    s
}

/// The default cache folder: `$XDG_CACHE_HOME/pairguard/judge`, else
/// `~/.cache/pairguard/judge`.
pub fn default_cache() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("pairguard").join("judge"))
}
