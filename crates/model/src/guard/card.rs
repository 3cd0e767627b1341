//! The model card: everything needed to use and audit a guard, stored as
//! JSON beside its weights.

use pairguard_data::EncoderId;
use serde::{Deserialize, Serialize};

use super::GuardConfig;
use crate::calibrate::ThresholdRule;
use crate::head::HeadKind;
use crate::metrics::BinaryMetrics;
use crate::normalize::NormKind;

pub const CARD_FORMAT: &str = "pairguard-guard/2";

/// Everything needed to use and audit a model, stored as JSON beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub format: String,
    pub head: HeadKind,
    pub input_dim: usize,
    /// Output names: "unsafe", then one per category for multi-label heads.
    pub outputs: Vec<String>,
    pub normalization: NormKind,
    pub encoder: EncoderId,
    pub categories: Vec<String>,
    pub threshold: f64,
    pub threshold_rule: ThresholdRule,
    pub temperature: f64,
    pub weight_decay: f64,
    /// L-BFGS iterations or AdamW epochs of the kept weights.
    pub epochs: usize,
    pub training_samples: usize,
    pub training_data_sha256: String,
    pub validation_metrics: Option<BinaryMetrics>,
    /// What a user should know about how this guard was trained (overlapping
    /// validation data, a temperature at the edge of its range).
    #[serde(default)]
    pub warnings: Vec<String>,
    pub config: GuardConfig,
    /// The policy and text embeddings a prompt head was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompts: Option<crate::prompts::PromptSource>,
}
