//! `pairguard synth`: the embedded synthetic benchmark.

use std::path::PathBuf;

use pairguard_data::synthetic::{Benchmark, Preset, SyntheticConfig};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Benchmark size: default or tiny.
    #[arg(long, default_value = "default")]
    preset: Preset,
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

pub fn exec(a: Args) -> anyhow::Result<()> {
    let mut cfg = SyntheticConfig::preset(a.preset);
    cfg.seed = a.seed.unwrap_or(cfg.seed);
    cfg.images = a.images.unwrap_or(cfg.images);
    cfg.coarse_images = a.coarse_images.unwrap_or(cfg.coarse_images);
    cfg.cross_contrast = a.cross_contrast.unwrap_or(cfg.cross_contrast);
    for p in Benchmark::generate(&cfg)?.write(&a.out)? {
        println!("{}", p.display());
    }
    Ok(())
}
