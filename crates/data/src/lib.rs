//! Datasets, counterfactual pairs, splits and training-set mixing.
//!
//! The data side of pairguard knows nothing about models: it turns manifests
//! (JSONL, CSV, Hugging Face parquet) described by a TOML [`Descriptor`] into
//! validated [`Sample`]s, groups counterfactual [`Pair`]s, assigns seeded
//! grouped [`Split`]s and builds nested training sets with a [`Mixer`].
//! The [`synthetic`] module writes a benchmark with known ground truth in the
//! same formats, so every later stage runs without network or real images.
//! The [`shard`] module divides a job's ordered work units among machines
//! and checks that the finished shards cover it.

pub mod dataset;
pub mod descriptor;
pub mod embeddings;
pub mod error;
pub mod hash;
pub mod hub;
pub mod images;
pub mod mix;
pub mod pairs;
pub mod policy;
pub mod progress;
pub mod prompts;
mod readers;
pub mod sample;
pub mod shard;
pub mod split;
pub mod stats;
pub mod synthetic;
pub mod taxonomy;
pub mod validate;

pub use dataset::{Dataset, LoadOptions};
pub use descriptor::Descriptor;
pub use embeddings::{EmbeddingStore, EncoderId, Precision};
pub use error::{DataError, Result};
pub use mix::{Mixer, Strategy, TrainingSet};
pub use pairs::{Pair, PairIndex};
pub use policy::{Direction, Policy, PolicyCategory};
pub use progress::{Progress, Silent};
pub use sample::{ImageRef, Label, PairMember, PairRole, Sample, Source, Split};
pub use shard::{Assignment, Ledger, Shard};
pub use split::SplitConfig;
pub use taxonomy::Taxonomy;
pub use validate::{Finding, Report};
