//! `pairguard eval`: a guard's metrics on a labelled dataset.

use std::path::PathBuf;

use pairguard_model::metrics::BinaryMetrics;
use pairguard_run::write_atomic;

use crate::args::{DeviceArg, ScoringArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    scoring: ScoringArgs,
    /// Write metrics JSON here (default: print only the table).
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

pub fn exec(a: Args) -> anyhow::Result<()> {
    let (model, dev, set) = a.scoring.load(&a.device)?;
    let ev = model.evaluate(&set, a.scoring.threshold, &dev)?;
    if let Some(p) = &a.json {
        write_atomic(p, &serde_json::to_vec_pretty(&ev)?)?;
    }
    let row = |name: &str, m: &BinaryMetrics| {
        println!(
            "{name:<28} {:>6} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4}",
            m.n, m.accuracy, m.balanced_accuracy, m.precision, m.recall, m.f1, m.auroc, m.auprc
        )
    };
    println!("{:<28} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}", "slice", "n", "acc", "bal_acc", "prec", "recall", "f1", "auroc", "auprc");
    row("overall", &ev.overall);
    for (k, m) in &ev.by_category {
        row(&format!("category: {k}"), m);
    }
    for (k, m) in &ev.by_source {
        row(&format!("source: {k}"), m);
    }
    println!("ECE {:.4}; TPR at FPR {}: {:.4}", ev.overall.ece, ev.overall.fpr_target, ev.overall.tpr_at_fpr);
    if let Some(p) = &ev.pairs {
        println!(
            "pairs: {}; pair accuracy {:.4}, ordering accuracy {:.4}, flip rate {:.4}",
            p.pairs, p.pair_accuracy, p.ordering_accuracy, p.flip_rate
        );
    }
    Ok(())
}
