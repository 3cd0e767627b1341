//! One JSON record per subject of a run's requests (a source image to
//! edit, an image to judge), each written atomically: a run that stops
//! resumes from the records it finds.

use std::path::PathBuf;

use pairguard_run::write_atomic;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::names::file_stem;

#[derive(Debug)]
pub struct Records {
    dir: PathBuf,
}

impl Records {
    /// The records folder `dir`, created if missing.
    pub fn open(dir: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(Records { dir })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{}.json", file_stem(id)))
    }

    /// The record of `id`, if one was written; one that does not parse is an error naming its file.
    pub fn read<R: DeserializeOwned>(&self, id: &str) -> Result<Option<R>> {
        let p = self.path(id);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| Error::File { path: p, message: e.to_string() }),
            Err(_) => Ok(None),
        }
    }

    pub fn write<R: Serialize>(&self, id: &str, record: &R) -> Result<()> {
        Ok(write_atomic(&self.path(id), &serde_json::to_vec_pretty(record)?)?)
    }
}
