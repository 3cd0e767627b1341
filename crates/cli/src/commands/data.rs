//! `pairguard data validate` and `pairguard data stats`.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use pairguard_data::images::ImageCheck;
use pairguard_data::split::{SplitConfig, assign};
use pairguard_data::stats::Stats;
use pairguard_data::{Dataset, LoadOptions};

use crate::args::{hub_options, load};

#[derive(Subcommand, Debug)]
pub enum Command {
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

pub fn exec(c: Command) -> anyhow::Result<()> {
    match c {
        Command::Validate { descriptor, decode, json } => validate(&descriptor, decode, json),
        Command::Stats { descriptor, split, seed, skip_invalid, json } => stats(&descriptor, split, seed, skip_invalid, json),
    }
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
