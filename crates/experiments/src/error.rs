//! The experiments crate's error type.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Data(#[from] pairguard_data::DataError),
    #[error(transparent)]
    Model(#[from] pairguard_model::Error),
    #[error(transparent)]
    Clip(#[from] pairguard_clip::Error),
    #[error(transparent)]
    Run(#[from] pairguard_run::Error),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Results(String),
    #[error("embedding options: {0}")]
    Embed(String),
    #[error("plot {path}: {message}")]
    Plot { path: PathBuf, message: String },
    #[error("CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("image: {0}")]
    Image(#[from] image::ImageError),
    #[error("formatting the report: {0}")]
    Fmt(#[from] std::fmt::Error),
}

impl Error {
    /// An I/O error naming its file (the data crate's variant, shared).
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Data(pairguard_data::DataError::io(path, source))
    }
}
