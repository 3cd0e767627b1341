//! `pairguard eval`: a guard's metrics on a labelled dataset, from a guard
//! file or from another guard's scores.

use std::path::PathBuf;

use pairguard_model::metrics::BinaryMetrics;
use pairguard_model::scores::{ScoreFile, ScoreKind};
use pairguard_model::{CalibrationConfig, Evaluation};
use pairguard_run::write_atomic;

use crate::args::{DeviceArg, ScoringArgs, labels_of};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The guard (`.safetensors`, with its `.json` card beside it).
    #[arg(long, required_unless_present = "scores", conflicts_with = "scores")]
    model: Option<PathBuf>,
    /// Another guard's outputs instead: one JSON line per sample with `id`,
    /// `score` (P(unsafe)) and/or `verdict` (`safe`, `unsafe`), and optional
    /// per-category scores `categories`.
    #[arg(long)]
    scores: Option<PathBuf>,
    /// The labelled dataset (with an embedding store of the guard's encoder
    /// for --model; any dataset for --scores).
    #[arg(long)]
    data: PathBuf,
    /// Decision threshold: overrides the model's; for --scores, the score
    /// at which a sample is called unsafe (default 0.5).
    #[arg(long)]
    threshold: Option<f64>,
    /// With --scores: evaluate the samples the file scores, and report the
    /// share it leaves out, instead of refusing.
    #[arg(long, requires = "scores")]
    allow_missing: bool,
    /// Write metrics JSON here (default: print only the table).
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

pub fn exec(a: Args) -> anyhow::Result<()> {
    let (ev, json) = match (&a.model, &a.scores) {
        (Some(model), _) => {
            let scoring = ScoringArgs { model: model.clone(), data: a.data.clone(), threshold: a.threshold };
            let (model, dev, set) = scoring.load(&a.device)?;
            let ev = model.evaluate(&set, a.threshold, &dev)?;
            let json = serde_json::to_vec_pretty(&ev)?;
            (ev, json)
        }
        (None, Some(scores)) => {
            let file = ScoreFile::read(scores)?;
            let (_, set) = labels_of(&a.data, false)?;
            let ext = file.evaluate(&set, a.threshold, a.allow_missing, CalibrationConfig::default().fpr_target)?;
            let what = match ext.kind {
                ScoreKind::Scores => format!("scores, unsafe at >= {}", ext.threshold),
                ScoreKind::Verdicts => "verdicts only (scored 0 or 1; no calibration)".to_string(),
            };
            println!("{}: {what}; {} of {} samples scored", scores.display(), ext.answered, ext.answered + ext.missing);
            if ext.missing > 0 {
                println!("missing: {} samples ({:.1}%), left out of every metric", ext.missing, 100.0 * ext.missing_share);
            }
            (ext.evaluation.clone(), serde_json::to_vec_pretty(&ext)?)
        }
        (None, None) => unreachable!("clap requires --model or --scores"),
    };
    if let Some(p) = &a.json {
        write_atomic(p, &json)?;
    }
    print_table(&ev);
    Ok(())
}

fn print_table(ev: &Evaluation) {
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
}
