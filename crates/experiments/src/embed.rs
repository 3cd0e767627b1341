//! Computing an embedding store for a dataset. Images decode and preprocess
//! on worker threads while the encoder runs; results are written in chunks
//! of consecutive samples with atomic renames into `<store>.parts/`, so an
//! interrupted run resumes at the first unfinished chunk. Images that fail
//! to decode are reported by id and left out.
//!
//! Batches always start at multiples of `batch` in the sample order, so
//! every sample is encoded in the same company however the work is cut,
//! and the finished store is byte-identical to an uninterrupted run's.
//! Shard I of N embeds a balanced, contiguous run of those batches (its
//! chunks, of whole batches, cut at multiples of the chunk size and at its
//! own ends) into the same
//! parts folder and leaves a marker; [`collect`] assembles the store once
//! every shard has, exactly as a one-machine run does.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use pairguard_clip::ImageEncoder;
use pairguard_data::{EmbeddingStore, EncoderId, Sample, images};
use pairguard_run::{Assignment, Failure, Ledger, Listing, Outcome, Progress, WorkPool, claim, lock, remove_partials_of, sha256_bytes, write_atomic};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct EmbedOptions {
    pub batch: usize,
    /// Samples per resumable chunk, rounded up to whole batches.
    pub chunk: usize,
    pub workers: usize,
    pub max_pixels: u64,
    /// Stop after writing this many new chunks (simulates an interruption in tests).
    pub max_chunks: Option<usize>,
    /// All samples, one shard's batches (then marked finished), or
    /// collecting the shards' chunks into the store ([`collect`]).
    pub assignment: Assignment,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        EmbedOptions {
            batch: 32,
            chunk: 1024,
            workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            max_pixels: pairguard_data::descriptor::DEFAULT_MAX_PIXELS,
            max_chunks: None,
            assignment: Assignment::Whole,
        }
    }
}

#[derive(Debug, Clone)]
pub struct EmbedReport {
    /// Images embedded by this call.
    pub embedded_now: usize,
    /// The samples this call was responsible for (a shard's, or all), of `samples_total`.
    pub samples: Range<usize>,
    pub samples_total: usize,
    /// The chunks of those samples, and how many were already on disk.
    pub chunks: usize,
    pub chunks_reused: usize,
    pub outcome: Outcome<Store>,
    pub seconds: f64,
}

/// A written store: its number of vectors, and the images left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    pub embedded: usize,
    pub failures: Vec<Failure>,
}

/// What the chunks in a parts folder were computed from: shards (and
/// resumed runs) add to a folder only when all of it matches. The chunk
/// size is not part of it: chunks cut the same batches either way.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartsIdentity {
    encoder: EncoderId,
    samples: usize,
    /// Hash of the sample ids and image references, in order.
    samples_sha256: String,
    batch: usize,
}

impl PartsIdentity {
    fn of(samples: &[Sample], encoder: &ImageEncoder, opts: &EmbedOptions) -> Self {
        let mut listing = Listing::default();
        for s in samples {
            listing.line(format_args!("{}\t{:?}", s.id, s.image));
        }
        PartsIdentity { encoder: encoder.id.clone(), samples: samples.len(), samples_sha256: listing.sha256(), batch: opts.batch }
    }

    /// The same vectors would result (the encoder may be named another way).
    fn compatible(&self, other: &PartsIdentity) -> bool {
        self.encoder.same_vectors(&other.encoder)
            && (self.samples, &self.samples_sha256, self.batch) == (other.samples, &other.samples_sha256, other.batch)
    }

    fn batches(&self) -> usize {
        self.samples.div_ceil(self.batch)
    }

    /// The samples of an assignment: a shard's are its batches.
    fn samples_of(&self, assignment: Assignment) -> Range<usize> {
        match assignment {
            Assignment::Shard(s) => {
                let b = s.range(self.batches());
                b.start * self.batch..(b.end * self.batch).min(self.samples)
            }
            Assignment::Whole | Assignment::Collect => 0..self.samples,
        }
    }

    /// A hash that compatible identities share: shards naming the encoder
    /// by different paths still belong to one run.
    fn hash(&self) -> Result<String> {
        let mut vectors = self.clone();
        (vectors.encoder.model, vectors.encoder.revision) = (String::new(), None);
        Ok(sha256_bytes(&serde_json::to_vec(&vectors)?))
    }
}

/// The parts folder of a store being computed.
#[derive(Debug)]
struct Parts {
    dir: PathBuf,
}

impl Parts {
    fn identity_path(&self) -> PathBuf {
        self.dir.join("identity.json")
    }

    /// The folder's identity, as written by the first call.
    fn identity(&self) -> Result<PartsIdentity> {
        let path = self.identity_path();
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::File { path: path.clone(), message: e.to_string() })
    }

    /// Fixes the folder to `identity`, or checks that it already is.
    fn claim(&self, identity: &PartsIdentity) -> Result<()> {
        claim(&self.dir, identity, "partial work of another encoder, dataset or batch size", PartsIdentity::compatible)?;
        Ok(())
    }

    fn store(&self, c: &Range<usize>) -> PathBuf {
        self.dir.join(format!("chunk-{:09}-{:09}.safetensors", c.start, c.end))
    }

    fn failures(&self, c: &Range<usize>) -> PathBuf {
        self.dir.join(format!("chunk-{:09}-{:09}.failures.json", c.start, c.end))
    }

    /// The finished chunks on disk: their ends by start.
    fn finished(&self) -> Result<BTreeMap<usize, BTreeSet<usize>>> {
        let mut found: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        for entry in entries {
            let name = entry.map_err(|e| Error::io(&self.dir, e))?.file_name().to_string_lossy().into_owned();
            let Some(range) = name.strip_prefix("chunk-").and_then(|n| n.strip_suffix(".failures.json")) else { continue };
            let Some((Ok(start), Ok(end))) = range.split_once('-').map(|(a, b)| (a.parse::<usize>(), b.parse::<usize>())) else { continue };
            // The failures are written first: the index makes the chunk whole.
            if EmbeddingStore::index_path(&self.store(&(start..end))).is_file() {
                found.entry(start).or_default().insert(end);
            }
        }
        Ok(found)
    }

    /// Finished chunks that cover `range` exactly, end to end, if there are
    /// such: shards and whole runs may have cut the samples differently.
    /// Otherwise, the furthest sample they reach from its start.
    fn tiling(finished: &BTreeMap<usize, BTreeSet<usize>>, range: Range<usize>) -> std::result::Result<Vec<Range<usize>>, usize> {
        let mut came_from: BTreeMap<usize, usize> = BTreeMap::new();
        let mut queue = VecDeque::from([range.start]);
        while let Some(at) = queue.pop_front() {
            if at == range.end {
                let mut path = Vec::new();
                let mut end = at;
                while end != range.start {
                    let start = came_from[&end];
                    path.push(start..end);
                    end = start;
                }
                path.reverse();
                return Ok(path);
            }
            for &end in finished.get(&at).into_iter().flatten().filter(|&&e| e <= range.end) {
                if end > at && !came_from.contains_key(&end) {
                    came_from.insert(end, at);
                    queue.push_back(end);
                }
            }
        }
        Err(came_from.keys().copied().max().unwrap_or(range.start))
    }

    /// Concatenates chunks covering every sample into the store at `out`,
    /// with the failures beside it, and removes the folder.
    fn assemble(&self, identity: &PartsIdentity, out: &Path) -> Result<Store> {
        let chunks = Self::tiling(&self.finished()?, 0..identity.samples).map_err(|reached| {
            Error::Embed(format!("{}: no finished chunk starts at sample {reached} of {}", self.dir.display(), identity.samples))
        })?;
        let (mut ids, mut vecs, mut failures) = (Vec::new(), Vec::new(), Vec::new());
        for c in &chunks {
            let st = EmbeddingStore::load(&self.store(c))?;
            identity.encoder.ensure_matches(&st.encoder, &format!("chunk {c:?}"))?;
            ids.extend(st.ids.iter().cloned());
            vecs.extend(st.vectors.iter().copied());
            let path = self.failures(c);
            let f: Vec<Failure> = serde_json::from_str(&std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?)?;
            failures.extend(f);
        }
        let embedded = ids.len();
        // What a writer of these files killed before its rename left beside them.
        for file in [out.to_path_buf(), EmbeddingStore::index_path(out), failures_path(out)] {
            remove_partials_of(&file)?;
        }
        EmbeddingStore::new(identity.encoder.clone(), ids, vecs)?.save(out)?;
        write_atomic(&failures_path(out), &serde_json::to_vec_pretty(&failures)?)?;
        std::fs::remove_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        Ok(Store { embedded, failures })
    }
}

/// `range` cut at multiples of `every`.
fn cut(range: Range<usize>, every: usize) -> Vec<Range<usize>> {
    let mut pieces = Vec::new();
    let mut start = range.start;
    while start < range.end {
        let end = ((start / every + 1) * every).min(range.end);
        pieces.push(start..end);
        start = end;
    }
    pieces
}

pub fn parts_dir(out: &Path) -> PathBuf {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    out.with_file_name(format!("{name}.parts"))
}

pub fn failures_path(out: &Path) -> PathBuf {
    out.with_extension("failures.json")
}

/// A decoded batch on its way from the workers to the encoder.
struct Batch {
    chunk: usize,
    index: usize,
    ids: Vec<String>,
    pixels: Vec<f32>,
    failures: Vec<Failure>,
}

/// An encoded batch waiting for the rest of its chunk: ids, vectors, failures.
type Encoded = (Vec<String>, Vec<f32>, Vec<Failure>);

/// Embeds every sample with an image into the store at `out` (a shard's
/// samples only, as `opts.assignment` says; collecting reads no samples and
/// is [`collect`]).
pub fn embed_samples(samples: &[Sample], encoder: &ImageEncoder, out: &Path, opts: &EmbedOptions, progress: &dyn Progress) -> Result<EmbedReport> {
    if opts.batch == 0 || opts.chunk == 0 || opts.workers == 0 {
        return Err(Error::Embed("batch, chunk and workers must be positive".into()));
    }
    if opts.assignment == Assignment::Collect {
        return Err(Error::Embed("collecting a store's shards reads no samples: call `collect`".into()));
    }
    let t0 = std::time::Instant::now();
    let parts = Parts { dir: parts_dir(out) };
    let identity = PartsIdentity::of(samples, encoder, opts);
    let _lock = lock(&parts.dir, opts.assignment)?;
    parts.claim(&identity)?;
    let identity_hash = identity.hash()?;
    let (units, mine) = (identity.batches(), identity.samples_of(opts.assignment));
    // Chunks hold whole batches, so that no batch is cut short by one.
    let chunks = cut(mine.clone(), opts.chunk.div_ceil(opts.batch) * opts.batch);
    let ledger = Ledger::of(&parts.dir);
    let report = |embedded_now, chunks_reused, outcome| EmbedReport {
        embedded_now,
        samples: mine.clone(),
        samples_total: samples.len(),
        chunks: chunks.len(),
        chunks_reused,
        outcome,
        seconds: t0.elapsed().as_secs_f64(),
    };
    if let Assignment::Shard(shard) = opts.assignment
        && ledger.finished(shard, &identity_hash, units)?
    {
        return Ok(report(0, chunks.len(), Outcome::Shard { shard, marker: ledger.marker(shard) }));
    }
    let finished = parts.finished()?;
    let pending: Vec<Range<usize>> = chunks.iter().filter(|c| Parts::tiling(&finished, (*c).clone()).is_err()).cloned().collect();
    let chunks_reused = chunks.len() - pending.len();
    let to_run: Vec<Range<usize>> = pending.into_iter().take(opts.max_chunks.unwrap_or(usize::MAX)).collect();

    // Work items: (chunk, batch index within chunk, sample range), batches
    // starting at multiples of `batch`.
    let mut work = Vec::new();
    for (c, chunk) in to_run.iter().enumerate() {
        for (k, b) in cut(chunk.clone(), opts.batch).into_iter().enumerate() {
            work.push((c, k, b.start, b.end));
        }
    }
    progress.start(to_run.iter().map(ExactSizeIterator::len).sum::<usize>() as u64, "images");

    let pool = WorkPool::new(work.len());
    let embedded_now = std::cell::Cell::new(0);
    let pre = &encoder.preprocessor;
    let s = encoder.config.image_size;
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = mpsc::sync_channel::<Batch>(2 * opts.workers);
        for _ in 0..opts.workers {
            let tx = tx.clone();
            let (work, pool) = (&work, &pool);
            scope.spawn(move || {
                while let Some(i) = pool.take() {
                    let (chunk, index, lo, hi) = work[i];
                    let mut b = Batch { chunk, index, ids: Vec::new(), pixels: Vec::with_capacity((hi - lo) * 3 * s * s), failures: Vec::new() };
                    for sample in &samples[lo..hi] {
                        let result = match &sample.image {
                            Some(img) => images::decode(img, opts.max_pixels).map(|d| pre.pixels(&d)),
                            None => Err("sample has no image".to_string()),
                        };
                        match result {
                            Ok(px) => {
                                b.ids.push(sample.id.clone());
                                b.pixels.extend(px);
                            }
                            Err(e) => b.failures.push(Failure { id: sample.id.clone(), error: e }),
                        }
                    }
                    if tx.send(b).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // Batches arrive in any order; a chunk is written once all of its
        // batches are in, assembled in batch order.
        let expected: Vec<usize> = to_run.iter().map(|c| cut(c.clone(), opts.batch).len()).collect();
        // Encoded batches per chunk, by batch index, until the chunk is complete.
        let mut got: BTreeMap<usize, BTreeMap<usize, Encoded>> = BTreeMap::new();
        for b in rx {
            let n = b.ids.len();
            let vectors = if n > 0 { encoder.embed_pixels(b.pixels, n) } else { Vec::new() };
            progress.advance((n + b.failures.len()) as u64);
            for f in &b.failures {
                progress.note(&format!("skipped {}: {}", f.id, f.error));
            }
            let entry = got.entry(b.chunk).or_default();
            entry.insert(b.index, (b.ids, vectors, b.failures));
            if entry.len() == expected[b.chunk] {
                let parts_of = got.remove(&b.chunk).expect("present");
                let (mut ids, mut vecs, mut fails) = (Vec::new(), Vec::new(), Vec::new());
                for (_, (i, v, f)) in parts_of {
                    ids.extend(i);
                    vecs.extend(v);
                    fails.extend(f);
                }
                embedded_now.set(embedded_now.get() + ids.len());
                let chunk = &to_run[b.chunk];
                write_atomic(&parts.failures(chunk), &serde_json::to_vec(&fails)?)?;
                EmbeddingStore::new(encoder.id.clone(), ids, vecs)?.save(&parts.store(chunk))?;
            }
        }
        Ok(())
    })?;
    progress.finish();

    let embedded_now = embedded_now.into_inner();
    if Parts::tiling(&parts.finished()?, mine.clone()).is_err() {
        return Ok(report(embedded_now, chunks_reused, Outcome::Interrupted));
    }
    let outcome = match opts.assignment {
        Assignment::Shard(shard) => Outcome::Shard { shard, marker: ledger.mark(shard, &identity_hash, units)? },
        Assignment::Whole | Assignment::Collect => Outcome::Done(parts.assemble(&identity, out)?),
    };
    Ok(report(embedded_now, chunks_reused, outcome))
}

/// Assembles the store at `out` from the shards that embedded it into its
/// parts folder, once they all have; the store is the one a one-machine run
/// writes. The error names the shards still missing.
pub fn collect(out: &Path) -> Result<Store> {
    let parts = Parts { dir: parts_dir(out) };
    if !parts.identity_path().is_file() {
        return Err(Error::Embed(format!(
            "{}: no shard of this store has started (run `pairguard embed ... --out {} --shard I/N` first)",
            parts.dir.display(),
            out.display()
        )));
    }
    let _lock = lock(&parts.dir, Assignment::Collect)?;
    let identity = parts.identity()?;
    Ledger::of(&parts.dir).complete(&identity.hash()?, identity.batches())?;
    parts.assemble(&identity, out)
}
