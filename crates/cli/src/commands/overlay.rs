//! `pairguard overlay`: one strategy's curve from each of several sweeps, on one figure.

use std::path::PathBuf;

use pairguard_experiments::overlay::{self, CurveSpec};
use pairguard_model::metrics::Metric;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A curve as LABEL=RESULTS_FOLDER:STRATEGY (a sweep's results folder
    /// and one of its strategies, e.g. ratio-0.5). Repeat for more.
    #[arg(long = "curve", value_name = "LABEL=RESULTS:STRATEGY", required = true)]
    curves: Vec<CurveSpec>,
    /// The sweeps' test set to plot.
    #[arg(long)]
    test: String,
    #[arg(long, default_value = "auroc")]
    metric: Metric,
    #[arg(long, default_value = "")]
    title: String,
    /// Folder for overlay.csv and overlay.png/svg.
    #[arg(long)]
    out: PathBuf,
}

pub fn exec(a: Args) -> anyhow::Result<()> {
    let csv = overlay::overlay(&a.curves, &a.test, a.metric, &a.title, &a.out)?;
    println!("{}", csv.display());
    Ok(())
}
