//! One error type for the data crate. Every variant carries the location a
//! user needs to fix the input: the file, and where relevant the row and field.

use std::path::PathBuf;

pub type Result<T, E = DataError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The I/O error is part of the message, not a separate source, so
    /// that error chains name it once.
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: row {row}, field `{field}`: {message}")]
    Field { path: PathBuf, row: usize, field: String, message: String },
    #[error("{path}: invalid descriptor: {message}")]
    Descriptor { path: PathBuf, message: String },
    #[error(
        "{count} invalid row(s) in {dataset}; first: {first} (rerun `pairguard data validate` for all, or pass --skip-invalid to drop them with a report)"
    )]
    Invalid { dataset: String, count: usize, first: String },
    #[error("{descriptor}: the embedding store {store} does not exist yet; run `pairguard embed {descriptor}` to make it")]
    MissingStore { store: PathBuf, descriptor: PathBuf },
    #[error("Hugging Face Hub: {0}")]
    Hub(String),
    #[error("{0}")]
    EncoderMismatch(String),
    #[error("embedding store: {0}")]
    Store(String),
    #[error("{0}")]
    Mix(String),
    #[error("{0}")]
    Split(String),
    #[error(transparent)]
    Run(#[from] pairguard_run::Error),
    #[error("synthetic config: {0}")]
    SyntheticConfig(String),
}

impl DataError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), error: source }
    }

    pub fn parse(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Self::Parse { path: path.into(), message: message.to_string() }
    }

    pub fn field(path: impl Into<PathBuf>, row: usize, field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self::Field { path: path.into(), row, field: field.into(), message: message.to_string() }
    }
}
