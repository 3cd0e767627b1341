//! Names derived from sample ids: file names and per-sample random streams.

use pairguard_data::hash::sha256_bytes;

/// A file name for a sample id: characters outside `[A-Za-z0-9._-]` become `_`.
pub fn file_stem(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect()
}

/// A u64 stream seed from a run seed and a name (image id, attack, eps):
/// per-sample draws that do not depend on batching or order.
pub fn stream(seed: u64, name: &str) -> u64 {
    let hex = sha256_bytes(format!("{seed}/{name}").as_bytes());
    u64::from_str_radix(&hex[..16], 16).expect("hex digits")
}
