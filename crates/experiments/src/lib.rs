//! Experiments on guards: sample-efficiency sweeps (how much counterfactual
//! pairs improve a lightweight guard at each training budget) and
//! robustness runs (attacks and corruptions), with confidence intervals,
//! plots and reports that name every input.

pub mod config;
pub mod error;
pub mod plot;
pub mod report;
pub mod robustness;
pub mod stats;
pub mod summary;
pub mod sweep;

use std::path::{Path, PathBuf};

pub use config::Experiment;
pub use error::{Error, Result};
pub use sweep::{FitRow, RunOptions};

/// Runs (or resumes) the experiment in `config` into `out` and writes the
/// report; returns the report's path.
pub fn run_experiment(config: &Path, out: &Path, opts: &RunOptions, progress: &dyn pairguard_data::Progress) -> Result<PathBuf> {
    let (exp, text) = Experiment::from_file(config)?;
    let base = config.parent().unwrap_or(Path::new("."));
    let (rows, data, identity) = sweep::run(&exp, base, out, opts, progress)?;
    report::write(out, &report::ReportInputs { exp: &exp, config_text: &text, config_path: config, rows: &rows, data: &data, identity: &identity })
}
