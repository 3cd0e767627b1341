//! `pairguard predict`: JSON lines of scores and verdicts.

use std::path::PathBuf;

use pairguard_model::{GuardModel, LabeledSet};
use pairguard_run::write_atomic;

use crate::args::{DeviceArg, load};

#[derive(clap::Args, Debug)]
pub struct Args {
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

pub fn exec(a: Args) -> anyhow::Result<()> {
    let model = GuardModel::load(&a.model)?;
    let dev = a.device.select()?;
    let ds = load(&a.data, false, true)?;
    let set = LabeledSet::from_dataset(&ds, None, Some(&model.card.encoder))?;
    let mut out = String::new();
    for p in model.predict(&set.ids, &set.x, a.threshold, &dev)? {
        out.push_str(&serde_json::to_string(&p)?);
        out.push('\n');
    }
    match &a.out {
        Some(p) => write_atomic(p, out.as_bytes())?,
        None => print!("{out}"),
    }
    Ok(())
}
