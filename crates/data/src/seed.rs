//! Seeds of independent random streams: one per stratum, per strategy, per
//! fit, derived from one user seed.

use sha2::{Digest, Sha256};

/// A 64-bit seed derived from a base seed and a label, so independent random
/// streams (one per stratum, per strategy, per fit) never share state.
pub fn derive_seed(seed: u64, label: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(seed.to_le_bytes());
    hasher.update(label.as_bytes());
    let digest = hasher.finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("sha256 has 32 bytes"))
}
