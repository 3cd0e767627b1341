//! The model crate's error type. Each variant names what a user has to fix:
//! the file, the option, or the sample.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Data(#[from] pairguard_data::DataError),
    #[error(transparent)]
    Clip(#[from] pairguard_clip::Error),
    #[error(transparent)]
    Run(#[from] pairguard_run::Error),
    #[error(
        "{0}: pickle checkpoints are not loaded because unpickling can execute code; convert it to safetensors (e.g. with the `safetensors` Python package)"
    )]
    PickleRefused(PathBuf),
    #[error("unknown {kind} {name:?} (known: {known})")]
    UnknownName { kind: &'static str, name: String, known: String },
    #[error("invalid training option `{option}`: {message}")]
    TrainOption { option: &'static str, message: String },
    #[error("invalid training data: {0}")]
    TrainingData(String),
    #[error(
        "dataset {dataset} has no embedding store: run `pairguard embed {descriptor}` (it writes {default_store}, where the descriptor finds it)"
    )]
    NoStore { dataset: String, descriptor: PathBuf, default_store: PathBuf },
    #[error("sample {id:?}: {message}")]
    Sample { id: String, message: String },
    #[error("{what} has a non-finite value at row {row}, dimension {dim}")]
    NonFinite { what: &'static str, row: usize, dim: usize },
    #[error("{what}: dimension {found}, expected {expected}")]
    Dimension { what: String, found: usize, expected: usize },
    #[error("{path}: {message}")]
    ModelFile { path: PathBuf, message: String },
    /// A file of another guard's scores that cannot be read or matched.
    #[error("{path}: {message}")]
    ScoreFile { path: PathBuf, message: String },
    #[error("{0}")]
    Device(String),
    #[error("invalid attack option `{option}`: {message}")]
    AttackOption { option: &'static str, message: String },
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("safetensors: {0}")]
    Safetensors(#[from] safetensors::SafeTensorError),
}

impl Error {
    /// An I/O error naming its file (the data crate's variant, shared).
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Data(pairguard_data::DataError::io(path, source))
    }
}
