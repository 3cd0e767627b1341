//! `pairguard pairs generate`: counterfactual pairs from an image editor.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use pairguard_experiments::pairs::{self, EditorConfig, GenerateConfig, GenerateOptions, VerifyConfig};
use pairguard_model::GuardModel;

use crate::args::{DeviceArg, GuardEncoderArgs, RequestArgs, key_from_env, load};
use crate::progress::Bar;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Edit images so that only the policy's harmful feature is added or
    /// removed, verify every edit, and write the kept pairs as a
    /// SafetyPairs-format pair set (resumable).
    Generate(GenerateArgs),
}

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
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
    #[command(flatten)]
    requests: RequestArgs,
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

pub fn exec(c: Command) -> anyhow::Result<()> {
    match c {
        Command::Generate(a) => generate(a),
    }
}

fn generate(a: GenerateArgs) -> anyhow::Result<()> {
    let cfg = GenerateConfig {
        seed: a.seed,
        sources: a.sources,
        attempts: a.requests.attempts,
        backoff_s: a.requests.backoff,
        max_backoff_s: a.requests.max_backoff,
        verify: VerifyConfig { min_cosine: a.min_cosine, margin: a.margin, max_outside_change: a.max_outside_change, resize: a.resize },
    };
    cfg.verify.check()?;
    let policy = pairguard_data::Policy::from_file(&a.policy)?;
    let mut editor_cfg = match a.editor.as_str() {
        "synthetic" => {
            EditorConfig::Synthetic { truth: a.data.parent().unwrap_or(Path::new(".")).join("images-truth.json"), realism: Default::default() }
        }
        file => EditorConfig::from_file(Path::new(file))?,
    };
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    editor_cfg.override_endpoint(env("PAIRGUARD_EDITOR_URL"), env("PAIRGUARD_EDITOR_MODEL"));
    if let Some(w) = editor_cfg.insecure_warning() {
        eprintln!("warning: {w}");
    }
    let key = key_from_env(editor_cfg.key_env());
    let guard = GuardModel::load(&a.verifier)?;
    let dev = a.device.select()?;
    let ds = load(&a.data, false, false)?;
    let encoder = a.encoder.load(&guard, &dev)?;
    let verifier = pairs::Verifier::new(&guard, &encoder, cfg.verify.clone(), dev)?;
    std::fs::create_dir_all(&a.out).with_context(|| a.out.display().to_string())?;
    let editor = editor_cfg.open(&a.out, key, ds.descriptor.max_pixels)?;
    eprintln!("editor: {}", editor.describe());
    let inputs = pairs::Inputs {
        data: &ds,
        policy: &policy,
        editor: editor.as_ref(),
        editor_identity: &editor_cfg.identity(),
        verifier: &verifier,
        verifier_path: &a.verifier,
    };
    let opts = GenerateOptions { concurrency: a.requests.concurrency, budget: a.requests.budget };
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
