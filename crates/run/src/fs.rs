//! Files a job writes and the hashes that tie its results to their inputs.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// SHA-256 of a file, streamed (weights files can be gigabytes).
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// SHA-256 of bytes.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The hash of a job's ordered inputs, one line per input, so that a resumed
/// run or a shard is refused when the inputs changed.
#[derive(Debug, Default)]
pub struct Listing {
    hasher: Sha256,
}

impl Listing {
    /// Adds one input's line (a newline is appended).
    pub fn line(&mut self, line: impl std::fmt::Display) {
        self.hasher.update(line.to_string().as_bytes());
        self.hasher.update(b"\n");
    }

    pub fn sha256(self) -> String {
        hex::encode(self.hasher.finalize())
    }
}

/// Writes a file atomically: to a temporary file beside the target, then
/// renamed over it, so an interrupted run never leaves a half-written file.
/// A failed write (a full disk) removes the temporary file and names the
/// target, which keeps its earlier content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut tmp = tempfile::Builder::new().prefix(&format!(".{name}{PARTIAL}")).tempfile_in(dir).map_err(|e| Error::io(path, e))?;
    tmp.write_all(bytes).and_then(|()| tmp.as_file().sync_data()).map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// What a temporary file's name holds after its target's name: a process
/// killed between writing and renaming leaves `.{target}.partial-XXXXXX`.
const PARTIAL: &str = ".partial-";

fn is_partial(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(|n| n.starts_with('.') && n.contains(PARTIAL))
}

/// Removes the temporary files killed writers left anywhere under `folder`;
/// only for a folder this process holds alone (see [`crate::lock`]).
/// Returns how many there were.
pub fn remove_partials(folder: &Path) -> Result<usize> {
    let mut removed = 0;
    let Ok(entries) = std::fs::read_dir(folder) else { return Ok(0) };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(folder, e))?;
        let (path, kind) = (entry.path(), entry.file_type().map_err(|e| Error::io(entry.path(), e))?);
        if kind.is_dir() {
            removed += remove_partials(&path)?;
        } else if kind.is_file() && is_partial(&entry.file_name()) {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes the temporary files killed writers of `file` left beside it.
pub fn remove_partials_of(file: &Path) -> Result<usize> {
    let dir = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let prefix = format!(".{}{PARTIAL}", file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    let mut removed = 0;
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(0) };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if entry.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)) {
            std::fs::remove_file(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_killed_writer_left_is_found_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_atomic(&d.join("sub/a.json"), b"1").unwrap();
        for left in ["sub/.a.json.partial-x1", ".b.json.partial-y2", ".c.json.partial-z3"] {
            std::fs::write(d.join(left), b"half").unwrap();
        }
        std::fs::write(d.join(".hidden"), b"mine").unwrap();
        assert_eq!(remove_partials_of(&d.join("b.json")).unwrap(), 1);
        assert_eq!(remove_partials(d).unwrap(), 2);
        let mut left: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect();
        left.sort();
        assert_eq!(left, [".hidden", "sub"]);
        assert_eq!(std::fs::read_dir(d.join("sub")).unwrap().count(), 1);
    }

    #[test]
    fn a_listing_hashes_its_lines_as_text() {
        let mut l = Listing::default();
        l.line("a\t1");
        l.line(format_args!("{}\t{}", "b", 2));
        assert_eq!(l.sha256(), sha256_bytes(b"a\t1\nb\t2\n"));
    }
}
