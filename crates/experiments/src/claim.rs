//! An output folder belongs to one run: its `identity.json` (inputs and
//! settings) is written by the first call and compared by every later one,
//! so a resumed run or a shard never mixes its files with another run's.

use std::path::Path;

use pairguard_data::hash::{sha256_bytes, write_atomic};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Writes `out/identity.json`, or checks that the one there is `identity`;
/// `holds` says what another run's folder holds, for the error. Returns the
/// identity's hash, which the run's shards share.
pub fn claim<T: Serialize + DeserializeOwned + PartialEq>(out: &Path, identity: &T, holds: &str) -> Result<String> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let path = out.join("identity.json");
    let bytes = serde_json::to_vec_pretty(identity)?;
    if path.exists() {
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let old: T = serde_json::from_str(&text).map_err(|e| Error::File { path: path.clone(), message: e.to_string() })?;
        if &old != identity {
            return Err(Error::Results(format!("{} holds {holds}; choose another --out or delete it", out.display())));
        }
    } else {
        write_atomic(&path, &bytes)?;
    }
    Ok(sha256_bytes(&bytes))
}
