//! `pairguard embed` (and `pairguard merge`, its `--collect` under the name
//! it had first).

use std::path::{Path, PathBuf};

use pairguard_clip::ImageEncoder;
use pairguard_data::Precision;
use pairguard_experiments::embed::{self, EmbedOptions, Store};
use pairguard_run::{Assignment, Outcome};

use crate::args::{CheckpointArgs, DeviceArg, ShardArgs, hub_options, load, precision};
use crate::progress::Bar;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dataset descriptor whose samples have images.
    dataset: PathBuf,
    /// The CLIP checkpoint (`--model` is an older name of this option).
    #[command(flatten)]
    checkpoint: CheckpointArgs,
    /// Output store (default: the descriptor's `embeddings`, else
    /// <name>.embeddings.safetensors beside the descriptor, where `train` finds it).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Samples per resumable chunk (rounded up to whole batches).
    #[arg(long, default_value_t = 1024)]
    chunk: usize,
    /// Decode/preprocess threads (default: all cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Keep raw projections instead of L2-normalised embeddings.
    #[arg(long)]
    no_normalize: bool,
    /// Drop invalid rows (each reported) instead of failing.
    #[arg(long)]
    skip_invalid: bool,
    /// The encoder's arithmetic, recorded in the store's identity: f32;
    /// bf16 (the CPU only: bf16 products with f32 accumulation, the CPU's
    /// own bf16 dot products where it has AVX-512 BF16); int8 (the CPU
    /// only: int8 weights per column and inputs per token, i32
    /// accumulation, the CPU's int8 dot products where it has AVX-512
    /// VNNI); f16 (for GPUs).
    #[arg(long, default_value = "f32", value_parser = precision)]
    precision: Precision,
    #[command(flatten)]
    shard: ShardArgs,
    #[command(flatten)]
    device: DeviceArg,
}

impl Args {
    /// The store this command writes.
    pub fn store(&self) -> anyhow::Result<PathBuf> {
        match &self.out {
            Some(o) => Ok(o.clone()),
            None => Ok(pairguard_data::Descriptor::from_file(&self.dataset)?.default_store_path()),
        }
    }

    pub fn shard(&self) -> &ShardArgs {
        &self.shard
    }
}

#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// The store the shards were embedding (their --out).
    store: PathBuf,
}

pub fn exec(a: Args) -> anyhow::Result<()> {
    let assignment = a.shard.assignment()?;
    if assignment == Assignment::Collect {
        return collect(&a.store()?);
    }
    let dev = a.device.select()?;
    // The store is what this command makes, so it is not loaded.
    let ds = load(&a.dataset, a.skip_invalid, false)?;
    let encoder = ImageEncoder::resolve(&a.checkpoint.checkpoint(), &hub_options(), !a.no_normalize, &dev)?.with_precision(a.precision)?;
    eprintln!(
        "encoder: {} ({:?} layout, {} layers, dim {}, {}, weights sha256 {})",
        encoder.id.model,
        encoder.layout,
        encoder.config.num_hidden_layers,
        encoder.id.dim,
        encoder.id.precision,
        &encoder.id.weights_sha256[..12]
    );
    let out = a.out.clone().unwrap_or_else(|| ds.descriptor.default_store_path());
    let opts = EmbedOptions {
        batch: a.batch,
        chunk: a.chunk,
        workers: a.workers.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)),
        max_pixels: ds.descriptor.max_pixels,
        max_chunks: None,
        assignment,
    };
    let r = embed::embed_samples(&ds.samples, &encoder, &out, &opts, &Bar::new())?;
    if r.embedded_now > 0 {
        let rate = r.embedded_now as f64 / r.seconds.max(1e-9);
        eprintln!("embedded {} images in {:.1}s ({rate:.2} images/s)", r.embedded_now, r.seconds);
    } else {
        eprintln!("nothing left to embed: every chunk was already done");
    }
    match r.outcome {
        Outcome::Shard { shard, marker } => {
            eprintln!(
                "shard {shard}: samples [{}, {}) of {} done in {} chunks ({} reused); once every shard has finished: pairguard embed {} --out {} --collect",
                r.samples.start,
                r.samples.end,
                r.samples_total,
                r.chunks,
                r.chunks_reused,
                a.dataset.display(),
                out.display()
            );
            println!("{}", marker.display());
            return Ok(());
        }
        Outcome::Done(store) => report(&out, &store),
        Outcome::Interrupted => anyhow::bail!("embedding stopped before its last chunk"),
    }
    if out != ds.descriptor.default_store_path() {
        eprintln!(
            "note: {} is not where {} looks for its store; pass it to `sweep` as an embeddings override or set `embeddings` in the descriptor",
            out.display(),
            a.dataset.display()
        );
    }
    println!("{}", out.display());
    Ok(())
}

pub fn merge(a: MergeArgs) -> anyhow::Result<()> {
    collect(&a.store)
}

/// Assembles the store from its shards' chunks.
fn collect(store: &Path) -> anyhow::Result<()> {
    report(store, &embed::collect(store)?);
    println!("{}", store.display());
    Ok(())
}

fn report(out: &Path, store: &Store) {
    for f in &store.failures {
        eprintln!("not embedded: {} ({})", f.id, f.error);
    }
    eprintln!(
        "{}: {} vectors; {} images failed (listed in {})",
        out.display(),
        store.embedded,
        store.failures.len(),
        embed::failures_path(out).display()
    );
}
