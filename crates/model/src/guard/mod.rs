//! A guard: a normalisation, a head and its calibration, trained on frozen
//! embeddings ([`train`]), used and judged ([`eval`]), described by a model
//! card ([`card`]) and stored as safetensors weights with the card beside
//! them ([`file`]); [`config`] holds how it is trained and calibrated.

mod card;
mod config;
mod eval;
mod file;
mod train;

pub use card::{CARD_FORMAT, ModelCard};
pub use config::{CalibrationConfig, GuardConfig};
pub use eval::{Evaluation, Prediction, evaluate_scores, probabilities_of};
pub(crate) use train::calibrate;
pub use train::train_guards;

use crate::head::HeadWeights;
use crate::normalize::FeatureNorm;

#[derive(Debug, Clone, PartialEq)]
pub struct GuardModel {
    pub card: ModelCard,
    pub norm: FeatureNorm,
    pub head: HeadWeights,
}
