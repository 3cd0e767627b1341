//! The CLIP crate's error type. Each variant names what a user has to fix:
//! the file, the option, or the token sequence.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Data(#[from] pairguard_data::DataError),
    #[error(transparent)]
    Run(#[from] pairguard_run::Error),
    #[error("{path}: {message}")]
    ConfigFile { path: PathBuf, message: String },
    #[error("invalid encoder config: {0}")]
    InvalidConfig(String),
    #[error("token sequence {index}: {message}")]
    Tokens { index: usize, message: String },
    #[error("no config for {weights}: looked for {looked}; pass --config")]
    NoConfig { weights: PathBuf, looked: String },
    #[error("{0}: no model.safetensors or open_clip_model.safetensors in this folder")]
    NoWeights(PathBuf),
    #[error(
        "{0}: pickle checkpoints are not loaded because unpickling can execute code; convert it to safetensors (e.g. with the `safetensors` Python package)"
    )]
    PickleRefused(PathBuf),
    #[error("{path}: checkpoint does not match the config: {message}")]
    Weights { path: PathBuf, message: String },
    #[error("unknown {kind} {name:?} (known: {known})")]
    UnknownName { kind: &'static str, name: String, known: String },
    #[error("{path}: {message}")]
    ModelFile { path: PathBuf, message: String },
    /// A precision the encoder's device cannot compute in.
    #[error("{0}")]
    Device(String),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// An I/O error naming its file (the data crate's variant, shared).
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Data(pairguard_data::DataError::io(path, source))
    }
}
