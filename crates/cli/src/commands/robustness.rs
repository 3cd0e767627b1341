//! `pairguard robustness`: attacks and corruptions through the whole pipeline.

use std::path::PathBuf;

use pairguard_data::Source;
use pairguard_experiments::robustness::{self, RobustnessConfig, RobustnessOptions, Subject};
use pairguard_model::GuardModel;
use pairguard_model::robust::{Attack, Corruption, EpsUnit};
use pairguard_run::Outcome;

use crate::args::{DeviceArg, GuardEncoderArgs, ShardArgs, load};
use crate::progress::Bar;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The guard (`.safetensors`, with its `.json` card beside it).
    #[arg(long)]
    model: PathBuf,
    /// Labelled dataset descriptor whose samples have images.
    #[arg(long)]
    data: PathBuf,
    /// The guard's encoder.
    #[command(flatten)]
    encoder: GuardEncoderArgs,
    /// Results folder (resumed when it holds an interrupted run of the same settings).
    #[arg(long)]
    out: PathBuf,
    /// Attacks, comma-separated: gn, fgsm, pgd, deepfool (UnsafeBench's settings), all, or none.
    #[arg(long, value_delimiter = ',', default_value = "gn,fgsm,pgd,deepfool")]
    attacks: Vec<String>,
    /// Epsilons, comma-separated, in --eps-unit.
    #[arg(long, value_delimiter = ',', default_value = "0.01", allow_negative_numbers = true)]
    eps: Vec<f64>,
    /// normalized (the CLIP-normalised tensor, bounds -3..3) or pixel (8-bit levels: eps/255 on [0, 1] pixels).
    #[arg(long, default_value = "normalized")]
    eps_unit: EpsUnit,
    /// Corruptions: default (JPEG, blur, rescale and noise at several severities),
    /// none, or kind:severity items such as jpeg:50,blur:2,rescale:0.25,noise:16.
    #[arg(long, value_delimiter = ',', default_value = "default")]
    corruptions: Vec<String>,
    /// Images to attack, drawn among those the guard classifies correctly.
    #[arg(long, default_value_t = 500)]
    samples: usize,
    /// Attack only images of this source: real, ai-generated or all.
    #[arg(long, default_value = "all")]
    source: String,
    /// Seed of the draw, the noise and PGD's random start.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images per forward/backward batch.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Write every adversarial image as PNG under <out>/adversarial/.
    #[arg(long)]
    save_adversarial: bool,
    #[command(flatten)]
    shard: ShardArgs,
    #[command(flatten)]
    device: DeviceArg,
}

impl Args {
    pub fn shard(&self) -> &ShardArgs {
        &self.shard
    }

    fn config(&self) -> anyhow::Result<RobustnessConfig> {
        let source = match self.source.as_str() {
            "all" => None,
            s => Some(
                Source::parse(s)
                    .filter(|s| *s != Source::Unknown)
                    .ok_or_else(|| anyhow::anyhow!("--source {s:?}: expected real, ai-generated or all"))?,
            ),
        };
        let cfg = RobustnessConfig {
            attacks: Attack::list(&self.attacks)?,
            eps: self.eps.clone(),
            eps_unit: self.eps_unit,
            corruptions: Corruption::list(&self.corruptions)?,
            samples: self.samples,
            source,
            seed: self.seed,
            batch: self.batch,
        };
        cfg.check()?;
        Ok(cfg)
    }
}

pub fn exec(a: Args) -> anyhow::Result<()> {
    // Settings first: a bad option fails before anything loads.
    let cfg = a.config()?;
    let assignment = a.shard.assignment()?;
    let model = GuardModel::load(&a.model)?;
    let dev = a.device.select()?;
    // With its store when it has one, so that a dataset of embeddings alone
    // loads and is refused for having no images.
    let ds = load(&a.data, false, true)?;
    let encoder = a.encoder.load(&model, &dev)?;
    let opts = RobustnessOptions { save_adversarial: a.save_adversarial, max_batches: None, assignment };
    let t0 = std::time::Instant::now();
    let subject = Subject { guard: &model, path: &a.model, encoder: &encoder };
    let report = match robustness::run(subject, &ds, &cfg, &a.out, &opts, &Bar::new())? {
        Outcome::Done(r) => r,
        Outcome::Shard { shard, marker } => {
            eprintln!(
                "shard {shard} finished in {:.1}s; once every shard has, rerun this command with --collect instead of the shard options",
                t0.elapsed().as_secs_f64()
            );
            println!("{}", marker.display());
            return Ok(());
        }
        Outcome::Interrupted => anyhow::bail!("the run stopped before its last batch"),
    };
    let sel = &report.selection;
    eprintln!(
        "clean accuracy {:.4} on {} images drawn; {} attacked; finished in {:.1}s",
        sel.clean_accuracy(),
        sel.examined,
        sel.selected.len(),
        t0.elapsed().as_secs_f64()
    );
    for r in report.rows.iter().filter(|r| r.slice == robustness::ALL_IMAGES) {
        eprintln!("{:<10} {:>8} robust accuracy {:.4} [{:.4}, {:.4}] (n = {})", r.attack, r.eps, r.robust_accuracy, r.ci_low, r.ci_high, r.n);
    }
    println!("{}", a.out.join("robustness.json").display());
    Ok(())
}
