//! The jobs: embedding a dataset ([`embed`]), sample-efficiency sweeps (how
//! much counterfactual pairs improve a lightweight guard at each training
//! budget), robustness runs (attacks and corruptions) and the making of
//! counterfactual pairs with an image editor, and the comparison of many
//! guards on one test set ([`compare`]), with confidence intervals, plots
//! and reports that name every input. Each job is resumable and
//! shardable through `pairguard-run`.
//!
//! It composes the data, CLIP and model crates and decides nothing they
//! decide (a guard's training, a metric's definition); it never prints
//! (progress goes through `pairguard_run::Progress`) and never reads the
//! environment.

pub mod baselines;
pub mod compare;
pub mod config;
pub mod embed;
pub mod error;
pub mod judge;
mod names;
pub mod overlay;
pub mod pairs;
pub mod plot;
pub mod remote;
pub mod report;
pub mod robustness;
pub mod secret;
pub mod stats;
pub mod summary;
pub mod sweep;

use std::path::{Path, PathBuf};

use pairguard_run::{Outcome, Progress};

pub use config::Experiment;
pub use error::{Error, Result};
pub use sweep::{FitRow, Fits, RunOptions};

/// Runs (or resumes) the experiment in `config` into `out`, or the part of
/// it that `opts.assignment` names, and writes the report (done: its path)
/// when it has the fits.
pub fn run_experiment(config: &Path, out: &Path, opts: &RunOptions, progress: &dyn Progress) -> Result<Outcome<PathBuf>> {
    let (exp, text) = Experiment::from_file(config)?;
    let base = config.parent().unwrap_or(Path::new("."));
    match sweep::run(&exp, base, out, opts, progress)? {
        Outcome::Shard { shard, marker } => Ok(Outcome::Shard { shard, marker }),
        Outcome::Interrupted => Ok(Outcome::Interrupted),
        Outcome::Done(Fits { rows, data, identity }) => {
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
            report::write(out, &inputs).map(Outcome::Done)
        }
    }
}
