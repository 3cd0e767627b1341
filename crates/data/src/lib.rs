//! Datasets, counterfactual pairs, splits and training-set mixing.
//!
//! The data side of pairguard knows nothing about models: it turns manifests
//! (JSONL, CSV, Hugging Face parquet) described by a TOML [`Descriptor`] into
//! validated [`Sample`]s, groups counterfactual [`Pair`]s, assigns seeded
//! grouped [`Split`]s and builds nested training sets with a [`Mixer`].
//! The [`synthetic`] module writes a benchmark with known ground truth in the
//! same formats, so every later stage runs without network or real images.
//!
//! It must not know about models or encoders beyond the identity an
//! embedding store records ([`EncoderId`]), must not print, and reads no
//! environment variable: Hub options and progress come from the caller.

pub mod dataset;
pub mod descriptor;
pub mod embeddings;
pub mod error;
pub mod hub;
pub mod images;
pub mod mix;
pub mod pairs;
pub mod policy;
pub mod prompt_embeddings;
mod readers;
pub mod sample;
pub mod seed;
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
pub use sample::{ImageRef, Label, PairMember, PairRole, Sample, Source, Split};
pub use split::SplitConfig;
pub use taxonomy::Taxonomy;
pub use validate::{Finding, Report};
