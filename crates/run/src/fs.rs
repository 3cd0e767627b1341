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
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).and_then(|()| tmp.as_file().sync_data()).map_err(|e| Error::io(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_hashes_its_lines_as_text() {
        let mut l = Listing::default();
        l.line("a\t1");
        l.line(format_args!("{}\t{}", "b", 2));
        assert_eq!(l.sha256(), sha256_bytes(b"a\t1\nb\t2\n"));
    }
}
