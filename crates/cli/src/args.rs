//! Argument groups that several commands share, each defined once, and the
//! library objects they resolve into. The command-line tool is where the
//! environment is read (Hub options, a scheduler's shard index) and where
//! progress and results are printed.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use pairguard_clip::{Checkpoint, DEFAULT_MODEL, DEFAULT_REVISION, ImageEncoder};
use pairguard_data::hub::HubOptions;
use pairguard_data::images::ImageCheck;
use pairguard_data::{Dataset, LoadOptions, Precision};
use pairguard_model::prompts::{PolicyText, PromptTable};
use pairguard_model::{Device, DeviceChoice, GuardModel, LabeledSet};
use pairguard_run::{Assignment, Shard};
use strum::VariantNames;

#[derive(Args, Debug)]
pub struct DeviceArg {
    /// auto (a hardware GPU through wgpu if present, else CPU), cpu or wgpu.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
}

impl DeviceArg {
    /// The device chosen, said on standard error.
    pub fn select(&self) -> anyhow::Result<Device> {
        let sel = pairguard_model::device::select(self.device)?;
        eprintln!("device: {}", sel.description);
        Ok(sel.device)
    }
}

/// This process's share of a job spread over machines, or collecting the
/// shards' results.
#[derive(Args, Debug)]
pub struct ShardArgs {
    /// Do shard I of N (counted from 0) into the shared output, then leave a
    /// completion marker; the same command with `--collect` combines the shards.
    #[arg(long, value_name = "I/N", conflicts_with = "shards")]
    pub shard: Option<Shard>,
    /// Split the work into N shards, this process's index taken from
    /// SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX. Inside a Slurm job array
    /// the work is sharded even without it (SLURM_ARRAY_TASK_COUNT shards).
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// Do no new work: check that the shards covered the whole job and
    /// write the result a one-machine run writes.
    #[arg(long, conflicts_with_all = ["shard", "shards"])]
    pub collect: bool,
}

impl ShardArgs {
    /// Whole, a shard (given, or from a scheduler's environment), or collecting.
    pub fn assignment(&self) -> anyhow::Result<Assignment> {
        if self.collect {
            return Ok(Assignment::Collect);
        }
        if let Some(s) = self.shard {
            return Ok(Assignment::Shard(s));
        }
        let found = Shard::from_environment(self.shards, |k| std::env::var(k).ok())?;
        if let Some((s, from)) = found {
            eprintln!("shard {s} (index from {from})");
        }
        Ok(found.map_or(Assignment::Whole, |(s, _)| Assignment::Shard(s)))
    }

    /// Whether any option here was given (a launch file gives them itself).
    pub fn given(&self) -> bool {
        self.shard.is_some() || self.shards.is_some() || self.collect
    }
}

/// A CLIP checkpoint to embed with.
#[derive(Args, Debug)]
pub struct CheckpointArgs {
    /// A Hugging Face repo id, or a local safetensors file or folder.
    #[arg(long, alias = "model", default_value = DEFAULT_MODEL)]
    pub encoder: String,
    /// Hub revision (a commit hash pins the weights).
    #[arg(long, default_value = DEFAULT_REVISION)]
    pub revision: String,
    /// Config for a local checkpoint (default: config.json or open_clip_config.json beside it).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl CheckpointArgs {
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint { name: self.encoder.clone(), revision: self.revision.clone(), config: self.config.clone() }
    }
}

/// The encoder a guard was trained on, found again.
#[derive(Args, Debug)]
pub struct GuardEncoderArgs {
    /// A Hub repo id or a local checkpoint (default: the model card's).
    #[arg(long)]
    pub encoder: Option<String>,
    /// Hub revision of --encoder (default: the model card's).
    #[arg(long)]
    pub revision: Option<String>,
    /// Config for a local --encoder checkpoint (default: beside it).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl GuardEncoderArgs {
    /// Loads the encoder named here, or else the one on the guard's card,
    /// in the card's precision; whether it is the guard's encoder is checked
    /// by what uses it.
    pub fn load(&self, guard: &GuardModel, device: &Device) -> anyhow::Result<ImageEncoder> {
        let checkpoint = guard.encoder_checkpoint(self.encoder.as_deref(), self.revision.as_deref(), self.config.as_deref());
        guard
            .load_encoder(&checkpoint, &hub_options(), device)
            .with_context(|| format!("loading the guard's encoder {:?} (name another with --encoder)", checkpoint.name))
    }
}

/// A guard scoring the embedded samples of a dataset.
#[derive(Args, Debug)]
pub struct ScoringArgs {
    /// The guard (`.safetensors`, with its `.json` card beside it).
    #[arg(long)]
    pub model: PathBuf,
    /// Dataset descriptor with an embedding store of the guard's encoder
    /// (`predict` ignores its labels).
    #[arg(long)]
    pub data: PathBuf,
    /// Override the model's decision threshold.
    #[arg(long)]
    pub threshold: Option<f64>,
}

impl ScoringArgs {
    /// The guard, the device it runs on, and the dataset's embeddings
    /// (checked against the guard's encoder).
    pub fn load(&self, device: &DeviceArg) -> anyhow::Result<(GuardModel, Device, LabeledSet)> {
        let guard = GuardModel::load(&self.model)?;
        let device = device.select()?;
        let set = LabeledSet::from_dataset(&load(&self.data, false, true)?, None, Some(&guard.card.encoder))?;
        Ok((guard, device, set))
    }
}

/// Where a policy's prompt embeddings come from.
#[derive(Args, Debug)]
pub struct PromptArgs {
    /// The policy (TOML): categories with unsafe and safe phrases, and templates.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Prompt embeddings written by `pairguard embed-text` (or the synthetic
    /// benchmark); without it the prompts are embedded with --text-model.
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// The CLIP checkpoint whose text tower embeds the prompts (default:
    /// the model that made the image embeddings).
    #[arg(long)]
    pub text_model: Option<String>,
    /// The tokenizer (tokenizer.json or bpe_simple_vocab_16e6.txt.gz);
    /// default: the one beside the checkpoint.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
}

impl PromptArgs {
    /// Whether a policy or prompt embeddings were given.
    pub fn given(&self) -> bool {
        self.policy.is_some() || self.prompts.is_some()
    }

    /// The policy's prompts for `categories` and their embeddings, checked
    /// against the images' encoder.
    pub fn resolve(&self, categories: &[String], images: &pairguard_data::EncoderId, device: &Device) -> anyhow::Result<PolicyText> {
        let Some(policy) = &self.policy else { anyhow::bail!("a prompt head needs --policy") };
        let checkpoint = Checkpoint {
            name: self.text_model.clone().unwrap_or_else(|| images.model.clone()),
            revision: images.revision.clone().unwrap_or_else(|| "main".into()),
            config: None,
        };
        let hub = hub_options();
        let table = match &self.prompts {
            Some(p) => PromptTable::File(p),
            None => PromptTable::Embed { checkpoint: &checkpoint, tokenizer: self.tokenizer.as_deref(), hub: &hub, device },
        };
        Ok(PolicyText::resolve(policy, categories, table, images)?)
    }
}

/// `--precision`: the names of [`Precision`], listed when one is wrong.
pub fn precision(s: &str) -> Result<Precision, String> {
    s.parse().map_err(|_| format!("expected one of {}", Precision::VARIANTS.join(", ")))
}

/// Hub options from the environment: `HF_HUB_OFFLINE` (1, true, yes, on)
/// resolves from the cache only; `HF_TOKEN` authorises gated repositories.
pub fn hub_options() -> HubOptions {
    let offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"));
    HubOptions { offline, cache_dir: None, token: std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty()), endpoint: None }
}

/// Loads a dataset, with its embedding store when `embeddings` is set; rows
/// dropped as invalid are said on standard error.
/// A dataset's labels, categories, sources and pairs without its vectors,
/// for scores made elsewhere. Rows need an image or a vector to be valid,
/// so the store is read where there is one (always with `store`).
pub fn labels_of(path: &Path, store: bool) -> anyhow::Result<(Dataset, LabeledSet)> {
    let store = store || pairguard_data::Descriptor::from_file(path)?.default_store_path().exists();
    let ds = load(path, false, store)?;
    let categories: Vec<String> = ds.taxonomy.names().into_iter().map(str::to_string).collect();
    let set = LabeledSet::from_samples(&ds.samples, &categories, 0, |_| Some(&[]))?;
    Ok((ds, set))
}

pub fn load(path: &Path, skip_invalid: bool, embeddings: bool) -> anyhow::Result<Dataset> {
    let opts = LoadOptions { skip_invalid, image_check: ImageCheck::Header, hub: hub_options(), embeddings };
    let ds = Dataset::load(path, &opts)?;
    for f in &ds.report.findings {
        eprintln!("dropped: {f}");
    }
    Ok(ds)
}

/// How a command that calls a service (an editor, a judge) sends its
/// requests.
#[derive(clap::Args, Debug, Clone)]
pub struct RequestArgs {
    /// Attempts per request, the first included.
    #[arg(long, default_value_t = 4)]
    pub attempts: usize,
    /// First wait after a failed attempt, in seconds; it doubles up to
    /// --max-backoff (a Retry-After from the service takes its place).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub backoff: f64,
    #[arg(long, default_value_t = 60.0, allow_negative_numbers = true)]
    pub max_backoff: f64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Most requests this run sends; what is left waits for the next run.
    #[arg(long)]
    pub budget: Option<usize>,
}

/// A service's API key from the environment variable `var` names (never
/// from a file or an argument, so it reaches no log); says when it is unset.
pub fn key_from_env(var: Option<&str>) -> Option<pairguard_experiments::secret::Secret> {
    let var = var?;
    let key = std::env::var(var).ok().filter(|v| !v.is_empty()).map(pairguard_experiments::secret::Secret::new);
    if key.is_none() {
        eprintln!("note: {var} is not set; requests go without an API key");
    }
    key
}
