//! Two processes writing one output folder would interleave their files: a
//! user who launches a run twice, or two workers told the same shard index.
//! A run therefore holds an advisory lock for as long as it works: the
//! whole job and the collect step hold the folder alone; a shard shares the
//! folder with the other shards and holds its own index alone. The locks
//! are the operating system's (`flock`), so a killed process leaves none
//! behind; the empty lock files stay. A process that holds a folder alone
//! first removes the temporary files killed writers left in it.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::fs::remove_partials;
use crate::shard::{Assignment, Ledger};
use crate::{Error, Result};

/// Held while a run works on an output folder; released when dropped.
#[derive(Debug)]
pub struct FolderLock {
    _files: Vec<File>,
}

/// Locks `folder` (created if missing) for `assignment`, or says which
/// other process holds it.
pub fn lock(folder: &Path, assignment: Assignment) -> Result<FolderLock> {
    std::fs::create_dir_all(folder).map_err(|e| Error::io(folder, e))?;
    let whole = folder.join(".pairguard.lock");
    let mut files = Vec::new();
    match assignment {
        Assignment::Whole | Assignment::Collect => {
            files.push(take(&whole, false, folder, "another run, shard or collect step")?);
            remove_partials(folder)?;
        }
        Assignment::Shard(shard) => {
            files.push(take(&whole, true, folder, "a run of the whole job or its collect step")?);
            let marker = Ledger::of(folder).marker(shard);
            let own = marker.with_extension("lock");
            std::fs::create_dir_all(own.parent().expect("in the ledger")).map_err(|e| Error::io(folder, e))?;
            files.push(take(&own, false, folder, &format!("shard {shard}"))?);
        }
    }
    Ok(FolderLock { _files: files })
}

fn take(path: &Path, shared: bool, folder: &Path, holder: &str) -> Result<File> {
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(|e| Error::io(path, e))?;
    let got = if shared { file.try_lock_shared() } else { file.try_lock() };
    match got {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(Error::Busy { folder: folder.to_path_buf(), holder: holder.to_string(), lock: PathBuf::from(path) }),
        Err(TryLockError::Error(e)) => Err(Error::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Shard;

    #[test]
    fn the_whole_job_excludes_everything_and_shards_exclude_their_own_index() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let s = |i| Assignment::Shard(Shard::new(i, 2).unwrap());
        {
            let _whole = lock(d, Assignment::Whole).unwrap();
            for other in [Assignment::Whole, Assignment::Collect, s(0)] {
                let e = lock(d, other).unwrap_err().to_string();
                assert!(e.contains("is in use by another pairguard process"), "{e}");
            }
        }
        let _zero = lock(d, s(0)).unwrap();
        let _one = lock(d, s(1)).unwrap();
        let e = lock(d, s(0)).unwrap_err().to_string();
        assert!(e.contains("(shard 0/2, holding"), "{e}");
        assert!(lock(d, Assignment::Collect).is_err());
    }
}
