//! An output folder belongs to one run: its `identity.json` (inputs and
//! settings) is written by the first call and compared by every later one,
//! so a resumed run or a shard never mixes its files with another run's.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::fs::{sha256_bytes, write_atomic};
use crate::{Error, Result};

/// Writes `folder/identity.json`, or checks that the one there is `same`
/// as `identity` (equality, or a looser test where two spellings of the
/// same inputs give the same results); `holds` says what another run's
/// folder holds, for the error. Returns the hash of the identity as given.
pub fn claim<T: Serialize + DeserializeOwned>(folder: &Path, identity: &T, holds: &str, same: impl Fn(&T, &T) -> bool) -> Result<String> {
    std::fs::create_dir_all(folder).map_err(|e| Error::io(folder, e))?;
    let path = folder.join("identity.json");
    let bytes = serde_json::to_vec_pretty(identity).map_err(|e| Error::parse(&path, e))?;
    if path.exists() {
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let old: T = serde_json::from_str(&text).map_err(|e| Error::parse(&path, e))?;
        if !same(&old, identity) {
            return Err(Error::Claimed { folder: folder.to_path_buf(), holds: holds.to_string() });
        }
    } else {
        write_atomic(&path, &bytes)?;
    }
    Ok(sha256_bytes(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_is_refused_to_another_run() {
        let dir = tempfile::tempdir().unwrap();
        let a = claim(dir.path(), &1u32, "another run", |a, b| a == b).unwrap();
        assert_eq!(claim(dir.path(), &1u32, "another run", |a, b| a == b).unwrap(), a);
        let e = claim(dir.path(), &2u32, "another run", |a, b| a == b).unwrap_err().to_string();
        assert!(e.ends_with("holds another run; choose another --out or delete it"), "{e}");
        claim(dir.path(), &2u32, "another run", |_, _| true).unwrap();
    }
}
