//! Guard models on frozen image embeddings: heads trained with burn on wgpu
//! or the CPU, calibration, metrics and model files.

pub mod calibrate;
pub mod clip;
pub mod device;
pub mod embed;
pub mod features;
pub mod guard;
pub mod head;
pub mod metrics;
pub mod normalize;
pub mod onnx;
pub mod train;

pub use calibrate::ThresholdRule;
pub use device::{DeviceChoice, Selected};
pub use features::LabeledSet;
pub use guard::{evaluate_scores, Evaluation, GuardConfig, GuardModel, ModelCard, Prediction};
pub use head::{HeadBank, HeadKind, HeadWeights};
pub use normalize::{FeatureNorm, NormKind};
pub use train::{bank_logits, fit_bank, BankJob, BankResult, Optimizer, TrainConfig};

/// Re-exported so downstream crates name devices without depending on burn.
pub use burn::tensor::Device;
