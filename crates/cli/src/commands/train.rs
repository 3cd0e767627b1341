//! `pairguard train`: a guard head on an embedded dataset.

use std::path::PathBuf;

use anyhow::Context;
use pairguard_model::{GuardConfig, GuardModel, HeadKind, LabeledSet, ThresholdRule};

use crate::args::{DeviceArg, PromptArgs, load};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dataset descriptor with an embedding store.
    #[arg(long)]
    train: PathBuf,
    /// Validation dataset; without it, a seeded grouped split of --train is used.
    #[arg(long)]
    validation: Option<PathBuf>,
    /// Validation fraction when splitting --train.
    #[arg(long, default_value_t = 0.2)]
    validation_fraction: f64,
    /// Where to write the model (`.safetensors`, with a `.json` card beside it).
    #[arg(long)]
    out: PathBuf,
    /// A TOML file with a guard config (`[train]`, `[calibration]`, `refit`);
    /// flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// linear (an L-BFGS probe), mlp (an AdamW adapter) or prompt (started
    /// from a policy's zero-shot guard, on L2-normalised embeddings); each
    /// comes with its optimiser's defaults.
    #[arg(long)]
    head: Option<HeadKind>,
    /// Hidden width of the MLP adapter (default 256).
    #[arg(long)]
    hidden: Option<usize>,
    /// Dropout of the MLP adapter (default 0.2).
    #[arg(long)]
    dropout: Option<f64>,
    /// Also train one output per category.
    #[arg(long)]
    multilabel: bool,
    /// Weight-decay values to select from on validation, then refit.
    #[arg(long, value_delimiter = ',')]
    wd_grid: Option<Vec<f64>>,
    /// Threshold rule: best-f1, fpr:<target> or a fixed value in [0, 1].
    #[arg(long)]
    threshold: Option<ThresholdRule>,
    /// Seed of the validation split, the initialisation and minibatches.
    #[arg(long)]
    seed: Option<u64>,
    /// Drop invalid rows (each reported) instead of failing.
    #[arg(long)]
    skip_invalid: bool,
    /// Start a linear probe from the policy's zero-shot guard; its weight
    /// decay then pulls toward that start instead of toward zero.
    #[arg(long)]
    zero_shot_init: bool,
    /// Add the policy's prompt embeddings as labelled training samples.
    #[arg(long)]
    text_as_data: bool,
    /// The policy and prompt embeddings for `--head prompt`,
    /// `--zero-shot-init` and `--text-as-data`.
    #[command(flatten)]
    prompts: PromptArgs,
    #[command(flatten)]
    device: DeviceArg,
}

impl Args {
    /// The guard config: the file's, with the flags applied.
    fn config(&self) -> anyhow::Result<GuardConfig> {
        let mut cfg = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| p.display().to_string())?;
                toml::from_str::<GuardConfig>(&text).with_context(|| p.display().to_string())?
            }
            None => GuardConfig::default(),
        };
        if let Some(head) = self.head {
            cfg.train = cfg.train.with_head(head);
        }
        if self.hidden.is_some() || self.dropout.is_some() {
            cfg.train.head =
                cfg.train.head.with_mlp_shape(self.hidden, self.dropout).context("--hidden and --dropout apply to the MLP head; add --head mlp")?;
        }
        cfg.train.multilabel |= self.multilabel;
        if let Some(g) = &self.wd_grid {
            cfg.train.weight_decay_grid = g.clone();
        }
        if let Some(t) = self.threshold {
            cfg.calibration.threshold = t;
        }
        cfg.train.seed = self.seed.unwrap_or(cfg.train.seed);
        Ok(cfg)
    }
}

pub fn exec(a: Args) -> anyhow::Result<()> {
    let mut cfg = a.config()?;
    let dev = a.device.select()?;
    let ds = load(&a.train, a.skip_invalid, true)?;
    // Fails, saying which command makes it, when the dataset has no store.
    let encoder = pairguard_model::features::store_of(&ds)?.encoder.clone();
    let (mut train_set, val_set) = match &a.validation {
        Some(v) => {
            let vds = load(v, a.skip_invalid, true)?;
            (LabeledSet::from_dataset(&ds, None, None)?, LabeledSet::from_dataset(&vds, None, Some(&encoder))?)
        }
        None => LabeledSet::train_validation(&ds, a.validation_fraction, cfg.train.seed)?,
    };
    // Policy text: where a prompt head (or, asked, a probe) starts, and
    // optionally extra training samples.
    let text = if cfg.train.head.needs_policy() || a.zero_shot_init || a.text_as_data {
        Some(a.prompts.resolve(&train_set.categories, &encoder, &dev)?)
    } else if a.prompts.given() {
        anyhow::bail!("--policy and --prompts apply to --head prompt, --zero-shot-init and --text-as-data");
    } else {
        None
    };
    let start = match &text {
        Some(t) => t.start(&mut cfg.train, a.zero_shot_init)?,
        None => None,
    };
    if let (true, Some(t)) = (a.text_as_data, &text) {
        let samples = t.samples()?;
        eprintln!("adding {} prompts of policy {} as training samples", samples.len(), t.prompts.policy);
        train_set = train_set.concat(&samples);
    }
    eprintln!("training on {} samples, validating on {}", train_set.len(), val_set.len());
    let t0 = std::time::Instant::now();
    let mut model = GuardModel::train(&train_set, Some(&val_set), encoder, &cfg, start.as_ref(), &dev)
        .with_context(|| format!("training on {}", a.train.display()))?;
    model.card.prompts = text.map(|t| t.source());
    model.save(&a.out)?;
    let c = &model.card;
    for w in &c.warnings {
        eprintln!("warning: {w}");
    }
    eprintln!(
        "trained in {:.1}s: weight decay {}, {} epochs, temperature {:.3}, threshold {:.4}",
        t0.elapsed().as_secs_f64(),
        c.weight_decay,
        c.epochs,
        c.temperature,
        c.threshold
    );
    if let Some(m) = &c.validation_metrics {
        eprintln!("validation: AUROC {:.4}, F1 {:.4}, accuracy {:.4}", m.auroc, m.f1, m.accuracy);
    }
    println!("{}", a.out.display());
    Ok(())
}
