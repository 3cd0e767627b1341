//! `pairguard import`: published fixed heads as guard files.

use std::path::PathBuf;

use clap::Subcommand;
use pairguard_model::{Device, HeadKind};

use crate::args::load;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The Stable Diffusion safety checker: its safetensors (a CLIP vision
    /// tower and the concept embeddings) and config.json. The guard reads
    /// embeddings of the checker's own tower: embed with `--encoder` set to it.
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
    /// The LAION CLIP-based NSFW detector (an MLP on unit-length CLIP
    /// embeddings; ViT-L/14 or ViT-B/32) from its PyTorch head converted to
    /// safetensors (the README gives the one-line conversion).
    LaionNsfw {
        #[arg(long)]
        weights: PathBuf,
        /// A dataset embedded with the CLIP model the detector was trained on.
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Unsafe Diffusion's multi-headed classifier: a folder holding
    /// sexual, violent, disturbing, hateful and political `.safetensors`
    /// (converted from its `.pt` heads; the README gives the command).
    UnsafeDiffusion {
        #[arg(long)]
        weights: PathBuf,
        /// A dataset embedded, without normalisation (`embed --no-normalize`),
        /// with the CLIP model the heads were trained on.
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn exec(c: Command) -> anyhow::Result<()> {
    match c {
        Command::SdSafetyChecker { weights, config, out } => {
            let file = if weights.is_dir() { weights.join("model.safetensors") } else { weights.clone() };
            let (guard, encoder) = pairguard_model::published::sd_safety_checker(&file, config.as_deref(), &Device::flex())?;
            guard.save(&out)?;
            let HeadKind::Concepts { concepts, special, .. } = guard.card.head else { unreachable!("the checker is a concept filter") };
            eprintln!(
                "imported the safety checker ({concepts} concepts, {special} special-care) -> {}; embed data for it with --encoder {}",
                out.display(),
                encoder.id.model
            );
        }
        Command::Q16 { prompts, data, out } => {
            let encoder = encoder_of(&data)?;
            let guard = pairguard_model::published::q16(&prompts, &encoder)?;
            guard.save(&out)?;
            eprintln!("imported Q16 prompts for {} embeddings -> {}", encoder.model, out.display());
        }
        Command::LaionNsfw { weights, data, out } => {
            let encoder = encoder_of(&data)?;
            let guard = pairguard_model::published::laion_nsfw(&weights, &encoder)?;
            guard.save(&out)?;
            eprintln!("imported the LAION NSFW detector ({}) for {} embeddings -> {}", guard.card.head.name(), encoder.model, out.display());
        }
        Command::UnsafeDiffusion { weights, data, out } => {
            let encoder = encoder_of(&data)?;
            let guard = pairguard_model::published::unsafe_diffusion(&weights, &encoder)?;
            guard.save(&out)?;
            eprintln!(
                "imported Unsafe Diffusion's heads ({}) for {} embeddings -> {}",
                guard.card.outputs[1..].join(", "),
                encoder.model,
                out.display()
            );
        }
    }
    Ok(())
}

/// The encoder whose embeddings a dataset holds.
fn encoder_of(data: &std::path::Path) -> anyhow::Result<pairguard_data::EncoderId> {
    let ds = load(data, false, true)?;
    Ok(pairguard_model::features::store_of(&ds)?.encoder.clone())
}
