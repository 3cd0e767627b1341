//! `pairguard zero-shot`: a guard made from a policy's text.

use std::path::PathBuf;

use pairguard_model::{CalibrationConfig, LabeledSet, ThresholdRule};

use crate::args::{DeviceArg, PromptArgs, load};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dataset descriptor with an embedding store: its encoder and categories.
    #[arg(long)]
    data: PathBuf,
    /// Validation dataset to calibrate on (temperature and threshold rule).
    #[arg(long)]
    validation: Option<PathBuf>,
    #[command(flatten)]
    prompts: PromptArgs,
    /// Threshold rule: best-f1, fpr:<target> or a fixed value in [0, 1]
    /// (default: best-f1 with validation data, 0.5 without).
    #[arg(long)]
    threshold: Option<ThresholdRule>,
    /// Where to write the guard (`.safetensors`, with a `.json` card beside it).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArg,
}

pub fn exec(a: Args) -> anyhow::Result<()> {
    let dev = a.device.select()?;
    let ds = load(&a.data, false, true)?;
    let encoder = pairguard_model::features::store_of(&ds)?.encoder.clone();
    let categories = ds.taxonomy.names().iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let validation = match &a.validation {
        Some(v) => Some(LabeledSet::from_dataset(&load(v, false, true)?, None, Some(&encoder))?),
        None => None,
    };
    let calibration = CalibrationConfig::zero_shot(a.threshold, validation.is_some())?;
    let text = a.prompts.resolve(&categories, &encoder, &dev)?;
    let guard = text.zero_shot_guard(&encoder, validation.as_ref(), &calibration, &dev)?;
    guard.save(&a.out)?;
    let c = &guard.card;
    for w in &c.warnings {
        eprintln!("warning: {w}");
    }
    eprintln!(
        "zero-shot guard of policy {} ({} prompts, {} categories): threshold {:.3}, temperature {:.3} -> {}",
        text.prompts.policy,
        text.prompts.texts().len(),
        text.prompts.categories.len(),
        c.threshold,
        c.temperature,
        a.out.display()
    );
    if let Some(m) = &c.validation_metrics {
        eprintln!("validation: AUROC {:.4}, F1 {:.4}", m.auroc, m.f1);
    }
    Ok(())
}
