//! `pairguard embed-text`: a policy's prompts through a CLIP text tower.

use std::path::PathBuf;

use pairguard_clip::TextEncoder;
use pairguard_data::policy::Policy;
use pairguard_model::prompts::PolicyPrompts;

use crate::args::{CheckpointArgs, DeviceArg, hub_options};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The policy whose prompts are embedded.
    #[arg(long)]
    policy: PathBuf,
    /// A full CLIP checkpoint (`--model` is an older name of this option).
    #[command(flatten)]
    checkpoint: CheckpointArgs,
    /// The tokenizer (default: the one beside the weights).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Output file (safetensors with the texts in its metadata).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArg,
}

pub fn exec(a: Args) -> anyhow::Result<()> {
    let dev = a.device.select()?;
    let policy = Policy::from_file(&a.policy)?;
    let names: Vec<String> = policy.categories.iter().map(|c| c.name.clone()).collect();
    let texts = PolicyPrompts::new(&policy, &names)?.texts();
    let enc = TextEncoder::resolve(&a.checkpoint.checkpoint(), a.tokenizer.as_deref(), &hub_options(), &dev)?;
    enc.embed(&texts)?.save(&a.out)?;
    eprintln!("embedded {} prompts of policy {} with {} -> {}", texts.len(), policy.name, enc.name, a.out.display());
    Ok(())
}
