//! The `pairguard` command-line tool.

/// mimalloc, keeping the pages it frees (see `pairguard_alloc`).
#[global_allocator]
static ALLOCATOR: pairguard_alloc::MiMalloc = pairguard_alloc::MiMalloc;

mod cluster;
mod progress;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use pairguard_data::hub::HubOptions;
use pairguard_data::images::ImageCheck;
use pairguard_data::policy::Policy;
use pairguard_data::split::{SplitConfig, assign};
use pairguard_data::stats::Stats;
use pairguard_data::synthetic::{self, Benchmark, SyntheticConfig};
use pairguard_data::{Assignment, Dataset, LoadOptions, Precision, Shard};
use pairguard_model::clip::{DEFAULT_MODEL, DEFAULT_REVISION, Encoder, TextEncoder};
use pairguard_model::prompts::{PolicyPrompts, PromptEmbeddings, zero_shot_guard};
use pairguard_model::{CalibrationConfig, Device, DeviceChoice, GuardConfig, GuardModel, HeadKind, LabeledSet, NormKind, ThresholdRule, TrainConfig};
use strum::VariantNames;

use pairguard_experiments::Finished;
use pairguard_model::embed::Ending;
use progress::Bar;

#[derive(Parser, Debug)]
#[command(
    name = "pairguard",
    version,
    about = "Train lightweight image-safety guards on frozen CLIP embeddings, with counterfactual SafetyPairs mixed into the training data."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write the embedded synthetic benchmark (embeddings, manifests, descriptors).
    Synth(SynthArgs),
    /// Inspect and validate datasets.
    #[command(subcommand)]
    Data(DataCommand),
    /// Compute an embedding store for a dataset's images with the frozen CLIP encoder.
    Embed(EmbedArgs),
    /// Train a guard head on an embedded dataset.
    Train(TrainArgs),
    /// Evaluate a guard on a labelled dataset: metrics JSON and a table.
    Eval(EvalArgs),
    /// Score samples: JSON lines with scores, category scores and verdicts.
    Predict(PredictArgs),
    /// Export a guard to ONNX: the head alone, or the whole pipeline with the encoder.
    ExportOnnx(ExportArgs),
    /// Embed a policy's prompts with the text tower of a CLIP checkpoint.
    EmbedText(EmbedTextArgs),
    /// Make a zero-shot guard from a policy: a model file like a trained
    /// guard's, calibrated on validation data when given.
    ZeroShot(ZeroShotArgs),
    /// Turn a published fixed head into a guard model file.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Run a sample-efficiency sweep from an experiment file.
    Sweep(SweepArgs),
    /// Attack a guard through the whole pipeline (pixels, encoder, head) and
    /// corrupt its images: robust accuracy per attack, epsilon, category and source.
    Robustness(RobustnessArgs),
    /// Make counterfactual pairs with an image editor.
    #[command(subcommand)]
    Pairs(PairsCommand),
    /// Assemble an embedding store from the shards of `embed --shard` once
    /// all of them have finished (the store a one-machine run writes).
    Merge {
        /// The store the shards were embedding (their --out).
        store: PathBuf,
    },
    /// Write launch files that run embed, robustness or sweep as shards on
    /// a Slurm cluster or Kubernetes, with the step that merges them.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// List compute devices and say which one `--device auto` picks.
    Devices,
}

#[derive(Args, Debug)]
struct SynthArgs {
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Benchmark size: default or tiny.
    #[arg(long, default_value = "default")]
    preset: synthetic::Preset,
    /// Seed of the generator (default: the preset's).
    #[arg(long)]
    seed: Option<u64>,
    /// Also write this many small images (pairs) for pixel-level tests.
    #[arg(long)]
    images: Option<usize>,
    /// Also write this many single images with the scene shortcut
    /// (`coarse-images`), and half as many without it (`test-shifted-images`),
    /// to make counterfactual pairs from.
    #[arg(long)]
    coarse_images: Option<usize>,
    /// How dark the images' cross (the harmful feature) is, in (0, 1]:
    /// smaller values make it subtler (default 1).
    #[arg(long)]
    cross_contrast: Option<f64>,
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// Check every row: files, images, labels, categories, pairs, ids, embeddings.
    Validate {
        descriptor: PathBuf,
        /// Decode every image fully (default: headers only).
        #[arg(long)]
        decode: bool,
        /// Print findings as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Counts per label, category, source and split, and pair counts.
    Stats {
        descriptor: PathBuf,
        /// Assign seeded grouped splits to unsplit samples first (train,validation,test fractions).
        #[arg(long, value_delimiter = ',')]
        split: Option<Vec<f64>>,
        /// Seed of those splits.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Drop invalid rows (each reported) instead of failing.
        #[arg(long)]
        skip_invalid: bool,
        /// Print the counts as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
struct DeviceArg {
    /// auto (a hardware GPU through wgpu if present, else CPU), cpu or wgpu.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
}

/// This process's share of a job spread over machines.
#[derive(Args, Debug)]
struct ShardArgs {
    /// Do shard I of N (counted from 0) into the shared output, then leave a
    /// completion marker; `pairguard merge` (embed) or `--collect` (sweep,
    /// robustness) combines the shards.
    #[arg(long, value_name = "I/N", conflicts_with = "shards")]
    shard: Option<Shard>,
    /// Split the work into N shards, this process's index taken from
    /// SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX. Inside a Slurm job array
    /// the work is sharded even without it (SLURM_ARRAY_TASK_COUNT shards).
    #[arg(long, value_name = "N")]
    shards: Option<usize>,
}

impl ShardArgs {
    /// The shard this process does, if it is one of several.
    fn resolve(&self) -> anyhow::Result<Option<Shard>> {
        if let Some(s) = self.shard {
            return Ok(Some(s));
        }
        let found = Shard::from_environment(self.shards, |k| std::env::var(k).ok())?;
        if let Some((s, from)) = found {
            eprintln!("shard {s} (index from {from})");
        }
        Ok(found.map(|(s, _)| s))
    }

    fn given(&self) -> bool {
        self.shard.is_some() || self.shards.is_some()
    }

    /// Whole, a shard, or (with `collect`) collecting the shards.
    fn assignment(&self, collect: bool) -> anyhow::Result<Assignment> {
        if collect {
            return Ok(Assignment::Collect);
        }
        Ok(self.resolve()?.map_or(Assignment::Whole, Assignment::Shard))
    }
}

#[derive(Subcommand, Debug)]
enum PairsCommand {
    /// Edit images so that only the policy's harmful feature is added or
    /// removed, verify every edit, and write the kept pairs as a
    /// SafetyPairs-format pair set (resumable).
    Generate(GenerateArgs),
}

#[derive(Args, Debug)]
struct GenerateArgs {
    /// Labelled dataset descriptor whose images are the sources.
    #[arg(long)]
    data: PathBuf,
    /// Policy file naming each category's feature (e.g. policies/safetypairs.toml).
    #[arg(long)]
    policy: PathBuf,
    /// Editor: a TOML file (kind = "http", "command" or "synthetic"), or
    /// `synthetic` for the synthetic benchmark's images-truth.json beside --data.
    /// PAIRGUARD_EDITOR_URL and PAIRGUARD_EDITOR_MODEL override an HTTP
    /// editor's base_url and model; its key comes from its key_env variable.
    #[arg(long)]
    editor: String,
    /// The guard that checks each edit flipped the label (its encoder checks the content is kept).
    #[arg(long)]
    verifier: PathBuf,
    /// The verifier's encoder.
    #[command(flatten)]
    encoder: GuardEncoderArgs,
    /// Output folder: the pair set, records, request log and report.
    #[arg(long)]
    out: PathBuf,
    /// Edit at most this many sources, drawn in a seeded order (default: all).
    #[arg(long)]
    sources: Option<usize>,
    /// Seed of the draw, of each edit's phrases and of the editor's seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Attempts per source, the first included.
    #[arg(long, default_value_t = 4)]
    attempts: usize,
    /// First wait after a failed attempt, in seconds; it doubles up to --max-backoff
    /// (a Retry-After from the editor takes its place).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    backoff: f64,
    #[arg(long, default_value_t = 60.0, allow_negative_numbers = true)]
    max_backoff: f64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Most requests this run sends; what is left waits for the next run.
    #[arg(long)]
    budget: Option<usize>,
    /// Least encoder cosine similarity between original and edit.
    #[arg(long, default_value_t = 0.8, allow_negative_numbers = true)]
    min_cosine: f64,
    /// Least distance of each member's verifier score from its threshold.
    #[arg(long, default_value_t = 0.05, allow_negative_numbers = true)]
    margin: f64,
    /// Largest mean change outside the editor's mask, in 8-bit levels.
    #[arg(long, default_value_t = 2.0, allow_negative_numbers = true)]
    max_outside_change: f64,
    /// Resize edits of another size to the original's instead of rejecting them.
    #[arg(long)]
    resize: bool,
    #[command(flatten)]
    device: DeviceArg,
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// An sbatch script: the shards as a Slurm job array, then the merge as
    /// a job that depends on them. Submit it with `bash FILE`.
    Slurm {
        #[command(flatten)]
        launch: LaunchArgs,
        #[command(flatten)]
        slurm: cluster::SlurmArgs,
    },
    /// A Kubernetes Indexed Job running the shards, and beside it
    /// (<name>-merge.yaml) a Job that merges them.
    K8s {
        #[command(flatten)]
        launch: LaunchArgs,
        #[command(flatten)]
        k8s: cluster::K8sArgs,
    },
}

#[derive(Args, Debug)]
struct LaunchArgs {
    /// Number of shards.
    #[arg(long)]
    shards: usize,
    /// Job name (default: pairguard-<command>).
    #[arg(long)]
    name: Option<String>,
    /// Where to write the launch file (k8s also writes the merge Job beside it, as <stem>-merge.<ext>).
    #[arg(long)]
    out: PathBuf,
    /// After `--`: the command to shard (embed, robustness or sweep) with its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Args, Debug)]
struct EmbedArgs {
    /// Dataset descriptor whose samples have images.
    dataset: PathBuf,
    /// A Hugging Face repo id, or a local safetensors file or folder.
    #[arg(long, default_value = DEFAULT_MODEL)]
    model: String,
    /// Hub revision (a commit hash pins the weights).
    #[arg(long, default_value = DEFAULT_REVISION)]
    revision: String,
    /// Config for a local checkpoint (default: config.json or open_clip_config.json beside it).
    #[arg(long)]
    config: Option<PathBuf>,
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
    /// own bf16 dot products where it has AVX-512 BF16); f16 (for GPUs).
    #[arg(long, default_value = "f32", value_parser = precision)]
    precision: Precision,
    #[command(flatten)]
    shard: ShardArgs,
    #[command(flatten)]
    device: DeviceArg,
}

fn precision(s: &str) -> Result<Precision, String> {
    s.parse().map_err(|_| format!("expected one of {}", Precision::VARIANTS.join(", ")))
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// Dataset descriptor with an embedding store.
    #[arg(long)]
    train: PathBuf,
    /// Validation dataset; without it, a seeded grouped split of --train is used.
    #[arg(long)]
    validation: Option<PathBuf>,
    /// Validation fraction when splitting --train.
    #[arg(long, default_value_t = 0.2)]
    validation_fraction: f64,
    /// Where to write the model (`.safetensors`, with a `.json` card beside it).
    #[arg(long)]
    out: PathBuf,
    /// A TOML file with a guard config (`[train]`, `[calibration]`, `refit`);
    /// flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// linear (an L-BFGS probe) or mlp (an AdamW adapter); each comes with
    /// its optimiser's defaults.
    #[arg(long)]
    head: Option<HeadKind>,
    /// Hidden width of the MLP adapter (default 256).
    #[arg(long)]
    hidden: Option<usize>,
    /// Dropout of the MLP adapter (default 0.2).
    #[arg(long)]
    dropout: Option<f64>,
    /// Also train one output per category.
    #[arg(long)]
    multilabel: bool,
    /// Weight-decay values to select from on validation, then refit.
    #[arg(long, value_delimiter = ',')]
    wd_grid: Option<Vec<f64>>,
    /// Threshold rule: best-f1, fpr:<target> or a fixed value in [0, 1].
    #[arg(long)]
    threshold: Option<ThresholdRule>,
    /// Seed of the validation split, the initialisation and minibatches.
    #[arg(long)]
    seed: Option<u64>,
    /// Drop invalid rows (each reported) instead of failing.
    #[arg(long)]
    skip_invalid: bool,
    /// Start a linear probe from the policy's zero-shot guard; its weight
    /// decay then pulls toward that start instead of toward zero.
    #[arg(long)]
    zero_shot_init: bool,
    /// Add the policy's prompt embeddings as labelled training samples.
    #[arg(long)]
    text_as_data: bool,
    /// The policy and prompt embeddings for `--head prompt`,
    /// `--zero-shot-init` and `--text-as-data`.
    #[command(flatten)]
    prompts: PromptArgs,
    #[command(flatten)]
    device: DeviceArg,
}

#[derive(Subcommand, Debug)]
enum ImportCommand {
    /// The Stable Diffusion safety checker: its safetensors (a CLIP vision
    /// tower and the concept embeddings) and config.json. The guard reads
    /// embeddings of the checker's own tower: embed with `--model` set to it.
    SdSafetyChecker {
        /// The checker's model.safetensors, or the folder holding it.
        #[arg(long)]
        weights: PathBuf,
        /// Its config.json (default: the one beside the weights).
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Q16's prompt matrix [2, dim] (.npy or safetensors; pickles are
    /// refused) for the CLIP embeddings of a dataset.
    Q16 {
        #[arg(long)]
        prompts: PathBuf,
        /// A dataset embedded with the CLIP model the prompts were learned on.
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

/// Where a policy's prompt embeddings come from.
#[derive(Args, Debug)]
struct PromptArgs {
    /// The policy (TOML): categories with unsafe and safe phrases, and templates.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Prompt embeddings written by `pairguard embed-text` (or the synthetic
    /// benchmark); without it the prompts are embedded with --text-model.
    #[arg(long)]
    prompts: Option<PathBuf>,
    /// The CLIP checkpoint whose text tower embeds the prompts (default:
    /// the model that made the image embeddings).
    #[arg(long)]
    text_model: Option<String>,
    /// The tokenizer (tokenizer.json or bpe_simple_vocab_16e6.txt.gz);
    /// default: the one beside the checkpoint.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
}

impl PromptArgs {
    /// The policy's prompts for `categories` and their embeddings, checked
    /// against the images' encoder.
    fn resolve(&self, categories: &[String], images: &pairguard_data::EncoderId, dev: &Device) -> anyhow::Result<(PolicyPrompts, PromptEmbeddings)> {
        let Some(policy) = &self.policy else { anyhow::bail!("a prompt head needs --policy") };
        let prompts = PolicyPrompts::new(&Policy::from_file(policy)?, categories)?;
        let emb = match &self.prompts {
            Some(p) => PromptEmbeddings::load(p)?,
            None => {
                let name = self.text_model.clone().unwrap_or_else(|| images.model.clone());
                let revision = images.revision.clone().unwrap_or_else(|| "main".into());
                let enc = TextEncoder::resolve(&name, &revision, None, self.tokenizer.as_deref(), &hub_options(), dev)?;
                enc.embed(&prompts.texts())?
            }
        };
        emb.check_encoder(images)?;
        Ok((prompts, emb))
    }
}

#[derive(Args, Debug)]
struct EmbedTextArgs {
    /// The policy whose prompts are embedded.
    #[arg(long)]
    policy: PathBuf,
    /// A full CLIP checkpoint: a safetensors file, a folder holding one, or a Hub repo id.
    #[arg(long, default_value = DEFAULT_MODEL)]
    model: String,
    /// Hub revision.
    #[arg(long, default_value = DEFAULT_REVISION)]
    revision: String,
    /// Config file (default: the one beside the weights).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The tokenizer (default: the one beside the weights).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Output file (safetensors with the texts in its metadata).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArg,
}

#[derive(Args, Debug)]
struct ZeroShotArgs {
    /// Dataset descriptor with an embedding store: its encoder and categories.
    #[arg(long)]
    data: PathBuf,
    /// Validation dataset to calibrate on (temperature and threshold rule).
    #[arg(long)]
    validation: Option<PathBuf>,
    #[command(flatten)]
    prompts: PromptArgs,
    /// Threshold rule: best-f1, fpr:<target> or a fixed value in [0, 1]
    /// (default: best-f1 with validation data, 0.5 without).
    #[arg(long)]
    threshold: Option<ThresholdRule>,
    /// Where to write the guard (`.safetensors`, with a `.json` card beside it).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArg,
}

#[derive(Args, Debug)]
struct EvalArgs {
    /// The guard (`.safetensors`, with its `.json` card beside it).
    #[arg(long)]
    model: PathBuf,
    /// Labelled dataset descriptor with an embedding store of the guard's encoder.
    #[arg(long)]
    data: PathBuf,
    /// Override the model's decision threshold.
    #[arg(long)]
    threshold: Option<f64>,
    /// Write metrics JSON here (default: print only the table).
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

#[derive(Args, Debug)]
struct PredictArgs {
    /// The guard (`.safetensors`, with its `.json` card beside it).
    #[arg(long)]
    model: PathBuf,
    /// Dataset descriptor with an embedding store (labels are ignored).
    #[arg(long)]
    data: PathBuf,
    /// Override the model's decision threshold.
    #[arg(long)]
    threshold: Option<f64>,
    /// Output JSON-lines file (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

#[derive(Args, Debug)]
struct ExportArgs {
    /// The guard (`.safetensors`, with its `.json` card beside it).
    #[arg(long)]
    model: PathBuf,
    /// Output .onnx file.
    #[arg(long)]
    out: PathBuf,
    /// Include the CLIP encoder: pixels in, probabilities out. The encoder
    /// must be the one the guard was trained on (checked).
    #[arg(long)]
    pipeline: bool,
    /// The encoder's arithmetic in a --pipeline graph: f32, or f16 (float16
    /// weights and products, half the file; LayerNorm and the head stay f32).
    #[arg(long, default_value = "f32", value_parser = precision, requires = "pipeline")]
    precision: Precision,
    /// The encoder for --pipeline.
    #[command(flatten)]
    encoder: GuardEncoderArgs,
}

/// The encoder a guard was trained on, found again.
#[derive(Args, Debug)]
struct GuardEncoderArgs {
    /// A Hub repo id or a local checkpoint (default: the model card's).
    #[arg(long)]
    encoder: Option<String>,
    /// Hub revision of --encoder (default: the model card's).
    #[arg(long)]
    revision: Option<String>,
    /// Config for a local --encoder checkpoint (default: beside it).
    #[arg(long)]
    config: Option<PathBuf>,
}

impl GuardEncoderArgs {
    /// Loads the encoder named here, or else the one on the guard's card,
    /// in the card's precision; whether it is the guard's encoder is checked
    /// by what uses it.
    fn resolve(&self, guard: &GuardModel, device: &pairguard_model::Device) -> anyhow::Result<Encoder> {
        let id = &guard.card.encoder;
        let name = self.encoder.clone().unwrap_or_else(|| id.model.clone());
        let revision = self.revision.clone().or_else(|| id.revision.clone()).unwrap_or_else(|| "main".into());
        Encoder::resolve(&name, &revision, self.config.as_deref(), &hub_options(), id.normalized, device)
            .and_then(|e| e.with_precision(id.precision))
            .with_context(|| format!("loading the guard's encoder {name:?} (name another with --encoder)"))
    }
}

#[derive(Args, Debug)]
struct SweepArgs {
    /// Experiment file, e.g. experiments/demo.toml.
    experiment: PathBuf,
    /// Results folder (default: results/<experiment name>).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    shard: ShardArgs,
    /// Train nothing: check that the shards covered every (strategy, seed)
    /// group and write the report from their fits.
    #[arg(long, conflicts_with_all = ["shard", "shards"])]
    collect: bool,
    #[command(flatten)]
    device: DeviceArg,
}

#[derive(Args, Debug)]
struct RobustnessArgs {
    /// The guard (`.safetensors`, with its `.json` card beside it).
    #[arg(long)]
    model: PathBuf,
    /// Labelled dataset descriptor whose samples have images.
    #[arg(long)]
    data: PathBuf,
    /// The guard's encoder.
    #[command(flatten)]
    encoder: GuardEncoderArgs,
    /// Results folder (resumed when it holds an interrupted run of the same settings).
    #[arg(long)]
    out: PathBuf,
    /// Attacks, comma-separated: gn, fgsm, pgd, deepfool (UnsafeBench's settings), or none.
    #[arg(long, value_delimiter = ',', default_value = "gn,fgsm,pgd,deepfool")]
    attacks: Vec<String>,
    /// Epsilons, comma-separated, in --eps-unit.
    #[arg(long, value_delimiter = ',', default_value = "0.01", allow_negative_numbers = true)]
    eps: Vec<f64>,
    /// normalized (the CLIP-normalised tensor, bounds -3..3) or pixel (8-bit levels: eps/255 on [0, 1] pixels).
    #[arg(long, default_value = "normalized")]
    eps_unit: pairguard_model::robust::EpsUnit,
    /// Corruptions: default (JPEG, blur, rescale and noise at several severities),
    /// none, or kind:severity items such as jpeg:50,blur:2,rescale:0.25,noise:16.
    #[arg(long, value_delimiter = ',', default_value = "default")]
    corruptions: Vec<String>,
    /// Images to attack, drawn among those the guard classifies correctly.
    #[arg(long, default_value_t = 500)]
    samples: usize,
    /// Attack only images of this source: real, ai-generated or all.
    #[arg(long, default_value = "all")]
    source: String,
    /// Seed of the draw, the noise and PGD's random start.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images per forward/backward batch.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Write every adversarial image as PNG under <out>/adversarial/.
    #[arg(long)]
    save_adversarial: bool,
    #[command(flatten)]
    shard: ShardArgs,
    /// Attack nothing: check that the shards covered every batch of images
    /// and write the report from their parts.
    #[arg(long, conflicts_with_all = ["shard", "shards"])]
    collect: bool,
    #[command(flatten)]
    device: DeviceArg,
}

fn device(choice: DeviceChoice) -> anyhow::Result<pairguard_model::Device> {
    let sel = pairguard_model::device::select(choice)?;
    eprintln!("device: {}", sel.description);
    Ok(sel.device)
}

/// Hub options from the environment: `HF_HUB_OFFLINE` (1, true, yes, on)
/// resolves from the cache only; `HF_TOKEN` authorises gated repositories.
fn embed_text(a: EmbedTextArgs) -> anyhow::Result<()> {
    let dev = device(a.device.device)?;
    let policy = Policy::from_file(&a.policy)?;
    let names: Vec<String> = policy.categories.iter().map(|c| c.name.clone()).collect();
    let texts = PolicyPrompts::new(&policy, &names)?.texts();
    let enc = TextEncoder::resolve(&a.model, &a.revision, a.config.as_deref(), a.tokenizer.as_deref(), &hub_options(), &dev)?;
    let emb = enc.embed(&texts)?;
    emb.save(&a.out)?;
    eprintln!("embedded {} prompts of policy {} with {} -> {}", texts.len(), policy.name, enc.name, a.out.display());
    Ok(())
}

fn zero_shot(a: ZeroShotArgs) -> anyhow::Result<()> {
    let dev = device(a.device.device)?;
    let ds = load(&a.data, false, true)?;
    let encoder = pairguard_model::features::store_of(&ds)?.encoder.clone();
    let categories = ds.taxonomy.names().iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let validation = match &a.validation {
        Some(v) => Some(LabeledSet::from_dataset(&load(v, false, true)?, None, Some(&encoder))?),
        None => None,
    };
    let calibration = match (a.threshold, &validation) {
        (Some(ThresholdRule::Fixed { threshold }), None) => CalibrationConfig::fixed(threshold),
        (Some(rule), Some(_)) => CalibrationConfig { threshold: rule, ..CalibrationConfig::default() },
        (None, Some(_)) => CalibrationConfig::default(),
        (None, None) => CalibrationConfig::fixed(0.5),
        (Some(rule), None) => anyhow::bail!("threshold rule {} needs --validation", rule.name()),
    };
    let (prompts, emb) = a.prompts.resolve(&categories, &encoder, &dev)?;
    let guard = zero_shot_guard(&prompts, &emb, &encoder, validation.as_ref(), &calibration, &dev)?;
    guard.save(&a.out)?;
    let c = &guard.card;
    for w in &c.warnings {
        eprintln!("warning: {w}");
    }
    eprintln!(
        "zero-shot guard of policy {} ({} prompts, {} categories): threshold {:.3}, temperature {:.3} -> {}",
        prompts.policy,
        prompts.texts().len(),
        prompts.categories.len(),
        c.threshold,
        c.temperature,
        a.out.display()
    );
    if let Some(m) = &c.validation_metrics {
        eprintln!("validation: AUROC {:.4}, F1 {:.4}", m.auroc, m.f1);
    }
    Ok(())
}

fn import(c: ImportCommand) -> anyhow::Result<()> {
    match c {
        ImportCommand::SdSafetyChecker { weights, config, out } => {
            let file = if weights.is_dir() { weights.join("model.safetensors") } else { weights.clone() };
            let (guard, encoder) = pairguard_model::published::sd_safety_checker(&file, config.as_deref(), &Device::flex())?;
            guard.save(&out)?;
            let HeadKind::Concepts { concepts, special, .. } = guard.card.head else { unreachable!("the checker is a concept filter") };
            eprintln!(
                "imported the safety checker ({concepts} concepts, {special} special-care) -> {}; embed data for it with --model {}",
                out.display(),
                encoder.id.model
            );
        }
        ImportCommand::Q16 { prompts, data, out } => {
            let ds = load(&data, false, true)?;
            let encoder = pairguard_model::features::store_of(&ds)?.encoder.clone();
            let guard = pairguard_model::published::q16(&prompts, &encoder)?;
            guard.save(&out)?;
            eprintln!("imported Q16 prompts for {} embeddings -> {}", encoder.model, out.display());
        }
    }
    Ok(())
}

fn hub_options() -> HubOptions {
    let offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"));
    HubOptions { offline, cache_dir: None, token: std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty()) }
}

fn main() {
    pairguard_alloc::keep_freed_pages();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Synth(a) => synth(a),
        Command::Data(DataCommand::Validate { descriptor, decode, json }) => validate(&descriptor, decode, json),
        Command::Data(DataCommand::Stats { descriptor, split, seed, skip_invalid, json }) => stats(&descriptor, split, seed, skip_invalid, json),
        Command::Embed(a) => embed(a),
        Command::Train(a) => train(a),
        Command::EmbedText(a) => embed_text(a),
        Command::ZeroShot(a) => zero_shot(a),
        Command::Import(c) => import(c),
        Command::Eval(a) => eval(a),
        Command::Predict(a) => predict(a),
        Command::ExportOnnx(a) => export_onnx(a),
        Command::Sweep(a) => sweep(a),
        Command::Robustness(a) => robustness(a),
        Command::Pairs(PairsCommand::Generate(a)) => generate_pairs(a),
        Command::Merge { store } => merge(&store),
        Command::Cluster(c) => launch(c),
        Command::Devices => {
            let adapters = pairguard_model::device::wgpu_adapters();
            if adapters.is_empty() {
                println!("wgpu adapters: none");
            }
            for (name, kind, backend) in adapters {
                println!("wgpu adapter: {name} ({kind}, {backend})");
            }
            let sel = pairguard_model::device::select(DeviceChoice::Auto)?;
            println!("auto picks: {}", sel.description);
            Ok(())
        }
    }
}

fn synth(a: SynthArgs) -> anyhow::Result<()> {
    let mut cfg = SyntheticConfig::preset(a.preset);
    if let Some(s) = a.seed {
        cfg.seed = s;
    }
    if let Some(n) = a.images {
        cfg.images = n;
    }
    if let Some(n) = a.coarse_images {
        cfg.coarse_images = n;
    }
    if let Some(c) = a.cross_contrast {
        cfg.cross_contrast = c;
    }
    let paths = Benchmark::generate(&cfg)?.write(&a.out)?;
    for p in paths {
        println!("{}", p.display());
    }
    Ok(())
}

fn validate(descriptor: &Path, decode: bool, json: bool) -> anyhow::Result<()> {
    let opts = LoadOptions { image_check: if decode { ImageCheck::Decode } else { ImageCheck::Header }, hub: hub_options(), ..Default::default() };
    let ds = Dataset::load_with_report(descriptor, &opts)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&ds.report)?);
    } else {
        for f in &ds.report.findings {
            println!("{f}");
        }
    }
    let n = ds.report.findings.len();
    if n > 0 {
        anyhow::bail!("{}: {n} problem(s) found; {} valid samples", descriptor.display(), ds.samples.len());
    }
    eprintln!("{}: ok, {} samples", descriptor.display(), ds.samples.len());
    Ok(())
}

/// Loads a dataset, with its embedding store when `embeddings` is set.
fn load(path: &Path, skip_invalid: bool, embeddings: bool) -> anyhow::Result<Dataset> {
    let opts = LoadOptions { skip_invalid, image_check: ImageCheck::Header, hub: hub_options(), embeddings };
    let ds = Dataset::load(path, &opts)?;
    for f in &ds.report.findings {
        eprintln!("dropped: {f}");
    }
    Ok(ds)
}

fn stats(descriptor: &Path, split: Option<Vec<f64>>, seed: u64, skip_invalid: bool, json: bool) -> anyhow::Result<()> {
    let mut ds = load(descriptor, skip_invalid, true)?;
    if let Some(f) = split {
        anyhow::ensure!(f.len() == 3, "--split takes three fractions: train,validation,test");
        assign(&mut ds.samples, &SplitConfig { train: f[0], validation: f[1], test: f[2], seed })?;
    }
    let st = Stats::of(&ds.samples);
    if json {
        println!("{}", serde_json::to_string_pretty(&st)?);
    } else {
        println!("dataset: {} ({})", ds.descriptor.name, descriptor.display());
        print!("{}", st.render());
    }
    Ok(())
}

fn export_onnx(a: ExportArgs) -> anyhow::Result<()> {
    let model = GuardModel::load(&a.model)?;
    let bytes = if a.pipeline {
        let enc = a.encoder.resolve(&model, &pairguard_model::Device::flex())?;
        pairguard_model::onnx::export_pipeline(&enc, &model, a.precision)?
    } else {
        pairguard_model::onnx::export_head(&model)
    };
    pairguard_data::hash::write_atomic(&a.out, &bytes)?;
    eprintln!("wrote {} ({} bytes, opset {})", a.out.display(), bytes.len(), pairguard_model::onnx::OPSET);
    println!("{}", a.out.display());
    Ok(())
}

fn embed(a: EmbedArgs) -> anyhow::Result<()> {
    let shard = a.shard.resolve()?;
    let dev = device(a.device.device)?;
    // The store is what this command makes, so it is not loaded.
    let ds = load(&a.dataset, a.skip_invalid, false)?;
    let encoder = Encoder::resolve(&a.model, &a.revision, a.config.as_deref(), &hub_options(), !a.no_normalize, &dev)?.with_precision(a.precision)?;
    eprintln!(
        "encoder: {} ({:?} layout, {} layers, dim {}, {}, weights sha256 {})",
        encoder.id.model,
        encoder.layout,
        encoder.config.num_hidden_layers,
        encoder.id.dim,
        encoder.id.precision,
        &encoder.id.weights_sha256[..12]
    );
    let out = a.out.unwrap_or_else(|| ds.descriptor.default_store_path());
    let opts = pairguard_model::embed::EmbedOptions {
        batch: a.batch,
        chunk: a.chunk,
        workers: a.workers.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)),
        max_pixels: ds.descriptor.max_pixels,
        max_chunks: None,
        shard,
    };
    let r = pairguard_model::embed::embed_samples(&ds.samples, &encoder, &out, &opts, &Bar::new())?;
    if r.embedded_now > 0 {
        let rate = r.embedded_now as f64 / r.seconds.max(1e-9);
        eprintln!("embedded {} images in {:.1}s ({rate:.2} images/s)", r.embedded_now, r.seconds);
    } else {
        eprintln!("nothing left to embed: every chunk was already done");
    }
    match r.ending {
        Ending::Shard { shard, marker } => {
            eprintln!(
                "shard {shard}: samples [{}, {}) of {} done in {} chunks ({} reused); once every shard has finished: pairguard merge {}",
                r.samples.start,
                r.samples.end,
                r.samples_total,
                r.chunks,
                r.chunks_reused,
                out.display()
            );
            println!("{}", marker.display());
            return Ok(());
        }
        Ending::Store { embedded, failures } => report_store(&out, embedded, &failures),
        Ending::Interrupted => anyhow::bail!("embedding stopped before its last chunk"),
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

fn generate_pairs(a: GenerateArgs) -> anyhow::Result<()> {
    use pairguard_experiments::pairs::{self, EditorConfig, GenerateConfig, GenerateOptions, VerifyConfig};
    let cfg = GenerateConfig {
        seed: a.seed,
        sources: a.sources,
        attempts: a.attempts,
        backoff_s: a.backoff,
        max_backoff_s: a.max_backoff,
        verify: VerifyConfig { min_cosine: a.min_cosine, margin: a.margin, max_outside_change: a.max_outside_change, resize: a.resize },
    };
    cfg.verify.check()?;
    let policy = pairguard_data::Policy::from_file(&a.policy)?;
    let mut editor_cfg = match a.editor.as_str() {
        "synthetic" => EditorConfig::Synthetic { truth: a.data.parent().unwrap_or(Path::new(".")).join("images-truth.json") },
        file => EditorConfig::from_file(Path::new(file))?,
    };
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    editor_cfg.override_endpoint(env("PAIRGUARD_EDITOR_URL"), env("PAIRGUARD_EDITOR_MODEL"));
    let key = match editor_cfg.key_env() {
        Some(var) => {
            let key = std::env::var(var).ok().filter(|k| !k.is_empty());
            if key.is_none() {
                eprintln!("note: {var} is not set; requests go without an API key");
            }
            key
        }
        None => None,
    };
    let guard = GuardModel::load(&a.verifier)?;
    let dev = device(a.device.device)?;
    let ds = load(&a.data, false, false)?;
    let encoder = a.encoder.resolve(&guard, &dev)?;
    let verifier = pairs::Verifier::new(&guard, &encoder, cfg.verify.clone(), dev)?;
    std::fs::create_dir_all(&a.out).with_context(|| a.out.display().to_string())?;
    let editor = editor_cfg.open(&a.out, key)?;
    eprintln!("editor: {}", editor.describe());
    let inputs = pairs::Inputs {
        data: &ds,
        policy: &policy,
        editor: editor.as_ref(),
        editor_identity: &editor_cfg.identity(),
        verifier: &verifier,
        verifier_path: &a.verifier,
    };
    let opts = GenerateOptions { concurrency: a.concurrency, budget: a.budget };
    let t0 = std::time::Instant::now();
    let r = pairs::generate(&inputs, &cfg, &opts, &a.out, &Bar::new())?;
    eprintln!(
        "{} drawn: kept {}, rejected {}, failed {}, not yet tried {}; {} requests in {:.1}s",
        r.drawn,
        r.kept,
        r.rejected,
        r.failed,
        r.pending,
        r.requests,
        t0.elapsed().as_secs_f64()
    );
    for (reason, n) in &r.by_reason {
        eprintln!("rejected for {reason}: {n}");
    }
    if !r.complete {
        eprintln!("incomplete: run the same command again to try the failed and remaining sources");
    }
    println!("{}", a.out.join("pairs.toml").display());
    Ok(())
}

fn report_store(out: &Path, embedded: usize, failures: &[pairguard_model::embed::Failure]) {
    for f in failures {
        eprintln!("not embedded: {} ({})", f.id, f.error);
    }
    eprintln!(
        "{}: {embedded} vectors; {} images failed (listed in {})",
        out.display(),
        failures.len(),
        pairguard_model::embed::failures_path(out).display()
    );
}

fn merge(store: &Path) -> anyhow::Result<()> {
    match pairguard_model::embed::merge(store)? {
        Ending::Store { embedded, failures } => report_store(store, embedded, &failures),
        other => anyhow::bail!("merge ended without a store: {other:?}"),
    }
    println!("{}", store.display());
    Ok(())
}

/// The shards' command and the merge step of a command given to `cluster`.
fn job_of(launch: &LaunchArgs) -> anyhow::Result<cluster::Job> {
    let sub = launch.command[0].as_str();
    anyhow::ensure!(matches!(sub, "embed" | "robustness" | "sweep"), "only embed, robustness and sweep run as shards, not `{sub}`");
    let argv = std::iter::once("pairguard".to_string()).chain(launch.command.iter().cloned());
    let cli = Cli::try_parse_from(argv).map_err(|e| anyhow::anyhow!("the command after `--`: {}", e.render()))?;
    let refuse_shards = |shard: &ShardArgs, collect: bool| {
        anyhow::ensure!(
            !shard.given() && !collect,
            "leave --shard, --shards and --collect out of the command after `--`: the scheduler gives each shard its index, and the merge step is added"
        );
        Ok(())
    };
    let (sub, merge) = match &cli.command {
        Command::Embed(a) => {
            refuse_shards(&a.shard, false)?;
            let store = match &a.out {
                Some(o) => o.clone(),
                None => pairguard_data::Descriptor::from_file(&a.dataset)
                    .with_context(|| "finding the store `embed` writes (or give it --out)")?
                    .default_store_path(),
            };
            ("embed", vec!["merge".to_string(), store.display().to_string()])
        }
        Command::Sweep(a) => {
            refuse_shards(&a.shard, a.collect)?;
            ("sweep", launch.command.iter().cloned().chain(["--collect".to_string()]).collect())
        }
        Command::Robustness(a) => {
            refuse_shards(&a.shard, a.collect)?;
            ("robustness", launch.command.iter().cloned().chain(["--collect".to_string()]).collect())
        }
        _ => unreachable!("checked above"),
    };
    Ok(cluster::Job {
        name: launch.name.clone().unwrap_or_else(|| format!("pairguard-{sub}")),
        shards: launch.shards,
        shard: launch.command.clone(),
        merge,
    })
}

fn launch(c: ClusterCommand) -> anyhow::Result<()> {
    use pairguard_data::hash::write_atomic;
    match c {
        ClusterCommand::Slurm { launch, slurm } => {
            let script = cluster::slurm(&job_of(&launch)?, &slurm, &launch.out)?;
            write_atomic(&launch.out, script.as_bytes())?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&launch.out, std::fs::Permissions::from_mode(0o755)).with_context(|| launch.out.display().to_string())?;
            }
            eprintln!("submit with: bash {}", launch.out.display());
            println!("{}", launch.out.display());
        }
        ClusterCommand::K8s { launch, k8s } => {
            let (shards, merge) = cluster::k8s(&job_of(&launch)?, &k8s, &launch.out)?;
            let merge_path = cluster::merge_manifest_path(&launch.out);
            write_atomic(&launch.out, shards.as_bytes())?;
            write_atomic(&merge_path, merge.as_bytes())?;
            eprintln!("run with: kubectl apply -f {}; once it completes: kubectl apply -f {}", launch.out.display(), merge_path.display());
            println!("{}\n{}", launch.out.display(), merge_path.display());
        }
    }
    Ok(())
}

fn train(a: TrainArgs) -> anyhow::Result<()> {
    let mut cfg = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| p.display().to_string())?;
            toml::from_str::<GuardConfig>(&text).with_context(|| p.display().to_string())?
        }
        None => GuardConfig::default(),
    };
    if let Some(head) = a.head {
        // A head kind brings its optimiser's defaults; the other options stay.
        let defaults = TrainConfig::for_head(head);
        cfg.train.head = head;
        cfg.train.optimizer = defaults.optimizer;
    }
    if a.hidden.is_some() || a.dropout.is_some() {
        let HeadKind::Mlp { hidden, dropout } = &mut cfg.train.head else {
            anyhow::bail!("--hidden and --dropout apply to the MLP head; add --head mlp");
        };
        *hidden = a.hidden.unwrap_or(*hidden);
        *dropout = a.dropout.unwrap_or(*dropout);
    }
    if a.multilabel {
        cfg.train.multilabel = true;
    }
    if let Some(g) = a.wd_grid {
        cfg.train.weight_decay_grid = g;
    }
    if let Some(t) = a.threshold {
        cfg.calibration.threshold = t;
    }
    if let Some(s) = a.seed {
        cfg.train.seed = s;
    }
    let dev = device(a.device.device)?;
    let ds = load(&a.train, a.skip_invalid, true)?;
    // Fails, saying which command makes it, when the dataset has no store.
    let encoder = pairguard_model::features::store_of(&ds)?.encoder.clone();
    let (mut train_set, val_set) = match &a.validation {
        Some(v) => {
            let vds = load(v, a.skip_invalid, true)?;
            (LabeledSet::from_dataset(&ds, None, None)?, LabeledSet::from_dataset(&vds, None, Some(&encoder))?)
        }
        None => LabeledSet::train_validation(&ds, a.validation_fraction, cfg.train.seed)?,
    };
    // Policy text: where a prompt head (or, asked, a probe) starts, and
    // optionally extra training samples.
    let is_prompt = matches!(cfg.train.head, HeadKind::Prompt { .. });
    let text = if is_prompt || a.zero_shot_init || a.text_as_data {
        Some(a.prompts.resolve(&train_set.categories, &encoder, &dev)?)
    } else if a.prompts.policy.is_some() || a.prompts.prompts.is_some() {
        anyhow::bail!("--policy and --prompts apply to --head prompt, --zero-shot-init and --text-as-data");
    } else {
        None
    };
    let outputs = if cfg.train.multilabel { 1 + train_set.categories.len() } else { 1 };
    let start = match (&text, cfg.train.head) {
        (Some((prompts, emb)), HeadKind::Prompt { scale, .. }) => {
            let mut head = prompts.head(emb, outputs)?;
            head.kind = HeadKind::Prompt { categories: prompts.categories.len(), scale };
            cfg.train.head = head.kind;
            cfg.train.normalization = NormKind::L2;
            Some(head)
        }
        (Some((prompts, emb)), HeadKind::Linear) if a.zero_shot_init => Some(prompts.linear_head(emb, outputs)?),
        (_, HeadKind::Mlp { .. }) if a.zero_shot_init => anyhow::bail!("--zero-shot-init applies to linear and prompt heads"),
        _ => None,
    };
    if let (true, Some((prompts, emb))) = (a.text_as_data, &text) {
        let samples = prompts.samples(emb)?;
        eprintln!("adding {} prompts of policy {} as training samples", samples.len(), prompts.policy);
        train_set = train_set.concat(&samples);
    }
    eprintln!("training on {} samples, validating on {}", train_set.len(), val_set.len());
    let t0 = std::time::Instant::now();
    let mut model = GuardModel::train(&train_set, Some(&val_set), encoder, &cfg, start.as_ref(), &dev)?;
    model.card.prompts = text.map(|(prompts, emb)| prompts.source(&emb));
    model.save(&a.out)?;
    let c = &model.card;
    for w in &c.warnings {
        eprintln!("warning: {w}");
    }
    eprintln!(
        "trained in {:.1}s: weight decay {}, {} epochs, temperature {:.3}, threshold {:.4}",
        t0.elapsed().as_secs_f64(),
        c.weight_decay,
        c.epochs,
        c.temperature,
        c.threshold
    );
    if let Some(m) = &c.validation_metrics {
        eprintln!("validation: AUROC {:.4}, F1 {:.4}, accuracy {:.4}", m.auroc, m.f1, m.accuracy);
    }
    println!("{}", a.out.display());
    Ok(())
}

fn eval(a: EvalArgs) -> anyhow::Result<()> {
    let model = GuardModel::load(&a.model)?;
    let dev = device(a.device.device)?;
    let ds = load(&a.data, false, true)?;
    let set = LabeledSet::from_dataset(&ds, None, Some(&model.card.encoder))?;
    let ev = model.evaluate(&set, a.threshold, &dev)?;
    if let Some(p) = &a.json {
        pairguard_data::hash::write_atomic(p, &serde_json::to_vec_pretty(&ev)?)?;
    }
    let row = |name: &str, m: &pairguard_model::metrics::BinaryMetrics| {
        println!(
            "{name:<28} {:>6} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4}",
            m.n, m.accuracy, m.balanced_accuracy, m.precision, m.recall, m.f1, m.auroc, m.auprc
        )
    };
    println!("{:<28} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}", "slice", "n", "acc", "bal_acc", "prec", "recall", "f1", "auroc", "auprc");
    row("overall", &ev.overall);
    for (k, m) in &ev.by_category {
        row(&format!("category: {k}"), m);
    }
    for (k, m) in &ev.by_source {
        row(&format!("source: {k}"), m);
    }
    println!("ECE {:.4}; TPR at FPR {}: {:.4}", ev.overall.ece, ev.overall.fpr_target, ev.overall.tpr_at_fpr);
    if let Some(p) = &ev.pairs {
        println!(
            "pairs: {}; pair accuracy {:.4}, ordering accuracy {:.4}, flip rate {:.4}",
            p.pairs, p.pair_accuracy, p.ordering_accuracy, p.flip_rate
        );
    }
    Ok(())
}

fn predict(a: PredictArgs) -> anyhow::Result<()> {
    let model = GuardModel::load(&a.model)?;
    let dev = device(a.device.device)?;
    let ds = load(&a.data, false, true)?;
    let set = LabeledSet::from_dataset(&ds, None, Some(&model.card.encoder))?;
    let preds = model.predict(&set.ids, &set.x, a.threshold, &dev)?;
    let mut out = String::new();
    for p in preds {
        out.push_str(&serde_json::to_string(&p)?);
        out.push('\n');
    }
    match &a.out {
        Some(p) => pairguard_data::hash::write_atomic(p, out.as_bytes())?,
        None => print!("{out}"),
    }
    Ok(())
}

fn sweep(a: SweepArgs) -> anyhow::Result<()> {
    let (exp, _) = pairguard_experiments::Experiment::from_file(&a.experiment)?;
    let out = a.out.unwrap_or_else(|| PathBuf::from("results").join(&exp.name));
    let assignment = a.shard.assignment(a.collect)?;
    let dev = device(a.device.device)?;
    let opts = pairguard_experiments::RunOptions { device: dev, hub: hub_options(), max_groups: None, assignment };
    let t0 = std::time::Instant::now();
    match pairguard_experiments::run_experiment(&a.experiment, &out, &opts, &Bar::new())? {
        Finished::Report(report) => {
            eprintln!("sweep finished in {:.1}s", t0.elapsed().as_secs_f64());
            println!("{}", report.display());
        }
        Finished::Shard { shard, marker } => {
            let marker = marker.ok_or_else(|| anyhow::anyhow!("shard {shard} stopped before its last group"))?;
            eprintln!(
                "shard {shard} finished in {:.1}s; once every shard has: pairguard sweep {} --out {} --collect",
                t0.elapsed().as_secs_f64(),
                a.experiment.display(),
                out.display()
            );
            println!("{}", marker.display());
        }
    }
    Ok(())
}

fn robustness_config(a: &RobustnessArgs) -> anyhow::Result<pairguard_experiments::robustness::RobustnessConfig> {
    use pairguard_model::robust::{Attack, Corruption};
    let attacks: Vec<Attack> = match a.attacks.as_slice() {
        [none] if none == "none" => Vec::new(),
        names => names.iter().map(|n| n.parse()).collect::<Result<_, _>>()?,
    };
    let corruptions: Vec<Corruption> = match a.corruptions.as_slice() {
        [d] if d == "default" => Corruption::defaults(),
        [none] if none == "none" => Vec::new(),
        items => items.iter().map(|c| c.parse()).collect::<Result<_, _>>()?,
    };
    let source = match a.source.as_str() {
        "all" => None,
        s => Some(
            pairguard_data::Source::parse(s)
                .filter(|s| *s != pairguard_data::Source::Unknown)
                .ok_or_else(|| anyhow::anyhow!("--source {s:?}: expected real, ai-generated or all"))?,
        ),
    };
    let cfg = pairguard_experiments::robustness::RobustnessConfig {
        attacks,
        eps: a.eps.clone(),
        eps_unit: a.eps_unit,
        corruptions,
        samples: a.samples,
        source,
        seed: a.seed,
        batch: a.batch,
    };
    cfg.check()?;
    Ok(cfg)
}

fn robustness(a: RobustnessArgs) -> anyhow::Result<()> {
    use pairguard_experiments::robustness;
    // Settings first: a bad option fails before anything loads.
    let cfg = robustness_config(&a)?;
    let assignment = a.shard.assignment(a.collect)?;
    let model = GuardModel::load(&a.model)?;
    let dev = device(a.device.device)?;
    // With its store when it has one, so that a dataset of embeddings alone
    // loads and is refused for having no images.
    let ds = load(&a.data, false, true)?;
    let encoder = a.encoder.resolve(&model, &dev)?;
    let opts = robustness::RobustnessOptions { save_adversarial: a.save_adversarial, max_batches: None, assignment };
    let t0 = std::time::Instant::now();
    let subject = robustness::Subject { guard: &model, path: &a.model, encoder: &encoder };
    let report = match robustness::run(subject, &ds, &cfg, &a.out, &opts, &Bar::new())? {
        robustness::Measured::Report(r) => r,
        robustness::Measured::Shard { shard, marker } => {
            let marker = marker.ok_or_else(|| anyhow::anyhow!("shard {shard} stopped before its last batch"))?;
            eprintln!(
                "shard {shard} finished in {:.1}s; once every shard has, rerun this command with --collect instead of the shard options",
                t0.elapsed().as_secs_f64()
            );
            println!("{}", marker.display());
            return Ok(());
        }
    };
    let sel = &report.selection;
    eprintln!(
        "clean accuracy {:.4} on {} images drawn; {} attacked; finished in {:.1}s",
        sel.clean_accuracy(),
        sel.examined,
        sel.selected.len(),
        t0.elapsed().as_secs_f64()
    );
    for r in report.rows.iter().filter(|r| r.slice == "all") {
        eprintln!("{:<10} {:>8} robust accuracy {:.4} [{:.4}, {:.4}] (n = {})", r.attack, r.eps, r.robust_accuracy, r.ci_low, r.ci_high, r.n);
    }
    println!("{}", a.out.join("robustness.json").display());
    Ok(())
}
