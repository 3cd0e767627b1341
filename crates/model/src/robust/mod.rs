//! Robustness of a guard: evasion attacks through the whole pipeline
//! (pixels, frozen encoder, head, calibration), common image corruptions,
//! and robustness in embedding space.

pub mod attack;
pub mod corruption;
pub mod decision;
pub mod embedding;

pub use attack::{Attack, Norm, Outcome};
pub use corruption::Corruption;
pub use decision::{EpsUnit, GuardDecision};
