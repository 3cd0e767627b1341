//! `pairguard predict`: JSON lines of scores and verdicts.

use std::path::PathBuf;

use pairguard_run::write_atomic;

use crate::args::{DeviceArg, ScoringArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    scoring: ScoringArgs,
    /// Output JSON-lines file (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

pub fn exec(a: Args) -> anyhow::Result<()> {
    let (model, dev, set) = a.scoring.load(&a.device)?;
    let mut out = String::new();
    for p in model.predict(&set.ids, &set.x, a.scoring.threshold, &dev)? {
        out.push_str(&serde_json::to_string(&p)?);
        out.push('\n');
    }
    match &a.out {
        Some(p) => write_atomic(p, out.as_bytes())?,
        None => print!("{out}"),
    }
    Ok(())
}
