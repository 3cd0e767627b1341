//! The run crate's error type: the folder or file at fault, and why.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The I/O error is part of the message, not a separate source, so
    /// that error chains name it once.
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    /// A file this crate wrote that no longer reads back.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A shard that is not one, or shards that do not make up their job.
    #[error("{0}")]
    Shard(String),
    /// An output folder that belongs to another run.
    #[error("{folder} holds {holds}; choose another --out or delete it")]
    Claimed { folder: PathBuf, holds: String },
    /// An output folder another process is writing.
    #[error("{folder} is in use by another pairguard process ({holder}, holding {lock}); wait for it to end or choose another --out")]
    Busy { folder: PathBuf, holder: String, lock: PathBuf },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), error: source }
    }

    pub fn parse(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::Parse { path: path.into(), message: message.to_string() }
    }
}
