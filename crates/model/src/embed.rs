//! Computing an embedding store for a dataset. Images decode and preprocess
//! on worker threads while the encoder runs; results are written in chunks
//! of consecutive samples with atomic renames, so an interrupted run resumes
//! at the first unfinished chunk and the finished store is byte-identical to
//! an uninterrupted run (chunk and batch boundaries depend only on sample
//! order). Images that fail to decode are reported by id and left out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use pairguard_data::hash::write_atomic;
use pairguard_data::{EmbeddingStore, Progress, Sample, images};
use serde::{Deserialize, Serialize};

use crate::clip::Encoder;
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct EmbedOptions {
    pub batch: usize,
    /// Samples per resumable chunk (a multiple of `batch` works best).
    pub chunk: usize,
    pub workers: usize,
    pub max_pixels: u64,
    /// Stop after writing this many new chunks (simulates an interruption in tests).
    pub max_chunks: Option<usize>,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        EmbedOptions {
            batch: 32,
            chunk: 1024,
            workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            max_pixels: pairguard_data::descriptor::DEFAULT_MAX_PIXELS,
            max_chunks: None,
        }
    }
}

/// A sample that could not be embedded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub id: String,
    pub error: String,
}

#[derive(Debug, Clone)]
pub struct EmbedReport {
    pub embedded: usize,
    pub failures: Vec<Failure>,
    pub chunks_reused: usize,
    pub finished: bool,
    pub seconds: f64,
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

/// Embeds every sample with an image into the store at `out`.
pub fn embed_samples(samples: &[Sample], encoder: &Encoder, out: &Path, opts: &EmbedOptions, progress: &dyn Progress) -> Result<EmbedReport> {
    if opts.batch == 0 || opts.chunk == 0 || opts.workers == 0 {
        return Err(Error::EmbedOption("batch, chunk and workers must be positive".into()));
    }
    let t0 = std::time::Instant::now();
    let parts = parts_dir(out);
    std::fs::create_dir_all(&parts).map_err(|e| Error::io(&parts, e))?;
    // The parts folder belongs to one encoder: work of another is refused.
    let id_file = parts.join("encoder.json");
    match std::fs::read_to_string(&id_file) {
        Ok(prev) => {
            let prev: pairguard_data::EncoderId = serde_json::from_str(&prev)?;
            if !prev.same_vectors(&encoder.id) {
                return Err(Error::ForeignParts { path: parts });
            }
        }
        Err(_) => write_atomic(&id_file, &serde_json::to_vec(&encoder.id)?)?,
    }
    let n_chunks = samples.len().div_ceil(opts.chunk);
    let chunk_store = |c: usize| parts.join(format!("chunk-{c:06}.safetensors"));
    let chunk_fail = |c: usize| parts.join(format!("chunk-{c:06}.failures.json"));
    let done = |c: usize| EmbeddingStore::index_path(&chunk_store(c)).is_file() && chunk_fail(c).is_file();
    let pending: Vec<usize> = (0..n_chunks).filter(|&c| !done(c)).collect();
    let chunks_reused = n_chunks - pending.len();
    let to_run: Vec<usize> = match opts.max_chunks {
        Some(m) => pending.iter().copied().take(m).collect(),
        None => pending.clone(),
    };

    // Work items: (chunk, batch index within chunk, sample range).
    let mut work = Vec::new();
    for &c in &to_run {
        let (lo, hi) = (c * opts.chunk, ((c + 1) * opts.chunk).min(samples.len()));
        for (k, start) in (lo..hi).step_by(opts.batch).enumerate() {
            work.push((c, k, start, (start + opts.batch).min(hi)));
        }
    }
    let total: usize = to_run.iter().map(|&c| ((c + 1) * opts.chunk).min(samples.len()) - c * opts.chunk).sum();
    progress.start(total as u64, "images");

    let next = AtomicUsize::new(0);
    let pre = &encoder.preprocessor;
    let s = encoder.config.image_size;
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = mpsc::sync_channel::<Batch>(2 * opts.workers);
        for _ in 0..opts.workers {
            let tx = tx.clone();
            let (work, next) = (&work, &next);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&(chunk, index, lo, hi)) = work.get(i) else { break };
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
        let expected: BTreeMap<usize, usize> = to_run
            .iter()
            .map(|&c| {
                let len = ((c + 1) * opts.chunk).min(samples.len()) - c * opts.chunk;
                (c, len.div_ceil(opts.batch))
            })
            .collect();
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
            if entry.len() == expected[&b.chunk] {
                let parts_of = got.remove(&b.chunk).expect("present");
                let (mut ids, mut vecs, mut fails) = (Vec::new(), Vec::new(), Vec::new());
                for (_, (i, v, f)) in parts_of {
                    ids.extend(i);
                    vecs.extend(v);
                    fails.extend(f);
                }
                write_atomic(&chunk_fail(b.chunk), &serde_json::to_vec(&fails)?)?;
                EmbeddingStore::new(encoder.id.clone(), ids, vecs)?.save(&chunk_store(b.chunk))?;
            }
        }
        Ok(())
    })?;
    progress.finish();

    let finished = (0..n_chunks).all(done);
    let mut failures = Vec::new();
    let mut embedded = 0;
    if finished {
        let (mut ids, mut vecs) = (Vec::new(), Vec::new());
        for c in 0..n_chunks {
            let st = EmbeddingStore::load(&chunk_store(c))?;
            encoder.id.ensure_matches(&st.encoder, &format!("chunk {c}"))?;
            ids.extend(st.ids.iter().cloned());
            vecs.extend(st.vectors.iter().copied());
            let path = chunk_fail(c);
            let f: Vec<Failure> = serde_json::from_str(&std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?)?;
            failures.extend(f);
        }
        embedded = ids.len();
        EmbeddingStore::new(encoder.id.clone(), ids, vecs)?.save(out)?;
        write_atomic(&failures_path(out), &serde_json::to_vec_pretty(&failures)?)?;
        std::fs::remove_dir_all(&parts).map_err(|e| Error::io(&parts, e))?;
    }
    Ok(EmbedReport { embedded, failures, chunks_reused, finished, seconds: t0.elapsed().as_secs_f64() })
}
