//! `pairguard cluster slurm|k8s`: launch files for a sharded command and
//! the step that collects its shards.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use pairguard_run::write_atomic;

use super::{Cli, Command as Top};
use crate::args::ShardArgs;
use crate::cluster::{self, Job};

#[derive(Subcommand, Debug)]
pub enum Command {
    /// An sbatch script: the shards as a Slurm job array, then the collect
    /// step as a job that depends on them. Submit it with `bash FILE`.
    Slurm {
        #[command(flatten)]
        launch: LaunchArgs,
        #[command(flatten)]
        slurm: cluster::SlurmArgs,
    },
    /// A Kubernetes Indexed Job running the shards, and beside it
    /// (<name>-merge.yaml) a Job that collects them.
    K8s {
        #[command(flatten)]
        launch: LaunchArgs,
        #[command(flatten)]
        k8s: cluster::K8sArgs,
    },
}

#[derive(clap::Args, Debug)]
pub struct LaunchArgs {
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

pub fn exec(c: Command) -> anyhow::Result<()> {
    match c {
        Command::Slurm { launch, slurm } => {
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
        Command::K8s { launch, k8s } => {
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

/// The shards' command and the collect step of a command given to `cluster`:
/// the same command with `--collect` (for embed, `merge` and the store,
/// which needs neither the dataset nor the encoder).
fn job_of(launch: &LaunchArgs) -> anyhow::Result<Job> {
    let sub = launch.command[0].as_str();
    anyhow::ensure!(matches!(sub, "embed" | "robustness" | "sweep"), "only embed, robustness and sweep run as shards, not `{sub}`");
    let argv = std::iter::once("pairguard".to_string()).chain(launch.command.iter().cloned());
    let cli = Cli::try_parse_from(argv).map_err(|e| anyhow::anyhow!("the command after `--`: {}", e.render()))?;
    let collect: Vec<String> = launch.command.iter().cloned().chain(["--collect".to_string()]).collect();
    let (shard, collect): (&ShardArgs, Vec<String>) = match &cli.command {
        Top::Embed(a) => {
            let store = a.store().context("finding the store `embed` writes (or give it --out)")?;
            (a.shard(), vec!["merge".to_string(), store.display().to_string()])
        }
        Top::Sweep(a) => (a.shard(), collect),
        Top::Robustness(a) => (a.shard(), collect),
        _ => unreachable!("checked above"),
    };
    anyhow::ensure!(
        !shard.given(),
        "leave --shard, --shards and --collect out of the command after `--`: the scheduler gives each shard its index, and the merge step is added"
    );
    Ok(Job {
        name: launch.name.clone().unwrap_or_else(|| format!("pairguard-{sub}")),
        shards: launch.shards,
        shard: launch.command.clone(),
        merge: collect,
    })
}
