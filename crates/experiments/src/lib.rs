//! Experiments on guards: sample-efficiency sweeps (how much counterfactual
//! pairs improve a lightweight guard at each training budget), robustness
//! runs (attacks and corruptions) and the making of counterfactual pairs
//! with an image editor, with confidence intervals, plots and reports that
//! name every input.

pub mod baselines;
mod claim;
pub mod config;
pub mod error;
mod names;
pub mod pairs;
pub mod plot;
pub mod report;
pub mod robustness;
pub mod stats;
pub mod summary;
pub mod sweep;

use std::path::{Path, PathBuf};

pub use config::Experiment;
pub use error::{Error, Result};
pub use sweep::{FitRow, Ran, RunOptions};

/// How a call of [`run_experiment`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// The report is written, at this path.
    Report(PathBuf),
    /// A shard's groups are written; its marker, once all of them are.
    Shard { shard: pairguard_data::Shard, marker: Option<PathBuf> },
}

/// Runs (or resumes) the experiment in `config` into `out`, or the part of
/// it that `opts.assignment` names, and writes the report when it has every
/// fit.
pub fn run_experiment(config: &Path, out: &Path, opts: &RunOptions, progress: &dyn pairguard_data::Progress) -> Result<Finished> {
    let (exp, text) = Experiment::from_file(config)?;
    let base = config.parent().unwrap_or(Path::new("."));
    match sweep::run(&exp, base, out, opts, progress)? {
        Ran::Shard { shard, marker } => Ok(Finished::Shard { shard, marker }),
        Ran::Fits { rows, data, identity } => {
            let baselines = baselines::evaluate(&exp, &data, base, &out.join("data"), &opts.device)?;
            let inputs = report::ReportInputs {
                exp: &exp,
                config_text: &text,
                config_path: config,
                rows: &rows,
                data: &data,
                identity: &identity,
                baselines: &baselines,
            };
            report::write(out, &inputs).map(Finished::Report)
        }
    }
}
