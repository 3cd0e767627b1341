//! Guard models on frozen image embeddings: heads trained with burn on wgpu
//! or the CPU, guards made from policy text and published fixed heads,
//! calibration, metrics (also of other guards' scores, [`scores`]), model
//! files, robustness and ONNX export. The CLIP
//! towers they read embeddings from are `pairguard_clip`'s.
//!
//! It decides everything about a guard (a head's defaults and checks, where
//! training starts, how a zero-shot guard is calibrated) so that commands
//! and experiments agree. It runs no jobs (no output folders, shards or
//! resuming: those are `pairguard-experiments`'), never prints and never
//! reads the environment.

pub mod calibrate;
pub mod device;
pub mod error;
pub mod features;
pub mod guard;
pub mod head;
pub mod metrics;
pub mod normalize;
mod objective;
pub use objective::probe_objective;
pub mod onnx;
pub mod prompts;
pub mod published;
pub mod robust;
pub mod scores;
pub mod train;

pub use calibrate::ThresholdRule;
pub use device::{DeviceChoice, Selected};
pub use error::{Error, Result};
pub use features::LabeledSet;
pub use guard::{CalibrationConfig, Evaluation, GuardConfig, GuardModel, ModelCard, Prediction, evaluate_scores, train_guards};
pub use head::{HeadBank, HeadKind, HeadWeights};
pub use normalize::{FeatureNorm, NormKind};
pub use train::{BankJob, BankResult, EarlyStopping, Optimizer, TrainConfig, bank_logits, fit_bank};

/// Re-exported so downstream crates name devices without depending on burn.
pub use burn::tensor::Device;
