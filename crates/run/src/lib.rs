//! The machinery every long pairguard job shares, so that embedding, sweeps,
//! robustness runs and pair generation resume, shard and finish alike:
//!
//! - [`claim`]: an output folder belongs to one run (its `identity.json`),
//!   and [`lock`]: to one process at a time (or one per shard);
//! - [`Assignment`] and [`Shard`]: the whole job, one machine's contiguous
//!   share of its ordered units, or collecting the shards; the [`Ledger`]
//!   of completion markers that a collect step checks;
//! - [`Outcome`]: how a call ended (done, a shard finished, interrupted);
//! - [`WorkPool`]: units handed to worker threads in order;
//! - [`fs`]: atomic writes and content hashes; [`Listing`]: the hash of a
//!   job's ordered inputs;
//! - [`Progress`]: how library work reports progress without printing.
//!
//! It knows nothing of datasets, models or images, never prints, and never
//! reads the environment (the shard index from a scheduler is read through
//! a function the caller passes).

mod claim;
pub mod error;
pub mod fs;
mod lock;
mod outcome;
mod pool;
mod progress;
pub mod shard;

pub use claim::claim;
pub use error::{Error, Result};
pub use fs::{Listing, remove_partials_of, sha256_bytes, sha256_file, write_atomic};
pub use lock::{FolderLock, lock};
pub use outcome::{Failure, Outcome};
pub use pool::{WorkPool, run_workers};
pub use progress::{Progress, Silent};
pub use shard::{Assignment, Ledger, Marker, Shard};
