//! `pairguard sweep`: a sample-efficiency sweep from an experiment file.

use std::path::PathBuf;

use pairguard_experiments::{Experiment, RunOptions, run_experiment};
use pairguard_run::Outcome;

use crate::args::{DeviceArg, ShardArgs, hub_options};
use crate::progress::Bar;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Experiment file, e.g. experiments/demo.toml.
    experiment: PathBuf,
    /// Results folder (default: results/<experiment name>).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    shard: ShardArgs,
    #[command(flatten)]
    device: DeviceArg,
}

impl Args {
    pub fn shard(&self) -> &ShardArgs {
        &self.shard
    }
}

pub fn exec(a: Args) -> anyhow::Result<()> {
    let (exp, _) = Experiment::from_file(&a.experiment)?;
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from("results").join(&exp.name));
    let assignment = a.shard.assignment()?;
    let dev = a.device.select()?;
    let opts = RunOptions { device: dev, hub: hub_options(), max_groups: None, assignment };
    let t0 = std::time::Instant::now();
    match run_experiment(&a.experiment, &out, &opts, &Bar::new())? {
        Outcome::Done(report) => {
            eprintln!("sweep finished in {:.1}s", t0.elapsed().as_secs_f64());
            println!("{}", report.display());
        }
        Outcome::Shard { shard, marker } => {
            eprintln!(
                "shard {shard} finished in {:.1}s; once every shard has: pairguard sweep {} --out {} --collect",
                t0.elapsed().as_secs_f64(),
                a.experiment.display(),
                out.display()
            );
            println!("{}", marker.display());
        }
        Outcome::Interrupted => anyhow::bail!("the sweep stopped before its last group"),
    }
    Ok(())
}
