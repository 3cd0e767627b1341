//! How a guard is trained and calibrated: the settings a model card records.

use serde::{Deserialize, Serialize};

use crate::calibrate::ThresholdRule;
use crate::error::{Error, Result};
use crate::train::TrainConfig;

/// Calibration after training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalibrationConfig {
    /// How the decision threshold is chosen; every rule but `fixed` needs
    /// validation data.
    pub threshold: ThresholdRule,
    /// Fit a temperature to the "unsafe" logit on validation data.
    pub temperature: bool,
    /// FPR at which TPR is reported.
    pub fpr_target: f64,
}

impl Default for CalibrationConfig {
    fn default() -> Self {
        CalibrationConfig { threshold: ThresholdRule::BestF1, temperature: true, fpr_target: 0.05 }
    }
}

impl CalibrationConfig {
    /// No calibration: temperature 1 and a fixed threshold (what a guard
    /// trained without validation data can have).
    pub fn fixed(threshold: f64) -> Self {
        CalibrationConfig { threshold: ThresholdRule::Fixed { threshold }, temperature: false, fpr_target: 0.05 }
    }

    /// The calibration of a zero-shot guard: `rule` (by default best-F1
    /// with validation data, a fixed 0.5 without); every rule but a fixed
    /// threshold needs validation data.
    pub fn zero_shot(rule: Option<ThresholdRule>, has_validation: bool) -> Result<Self> {
        match (rule, has_validation) {
            (Some(ThresholdRule::Fixed { threshold }), false) => Ok(CalibrationConfig::fixed(threshold)),
            (Some(rule), true) => Ok(CalibrationConfig { threshold: rule, ..CalibrationConfig::default() }),
            (None, true) => Ok(CalibrationConfig::default()),
            (None, false) => Ok(CalibrationConfig::fixed(0.5)),
            (Some(rule), false) => {
                Err(Error::TrainOption { option: "threshold", message: format!("threshold rule {} needs --validation", rule.name()) })
            }
        }
    }

    pub fn check(&self, has_validation: bool) -> Result<()> {
        let bad = |option: &'static str, message: String| Err(Error::TrainOption { option, message });
        if !(0.0..=1.0).contains(&self.fpr_target) {
            return bad("fpr_target", format!("{} is not in [0, 1]", self.fpr_target));
        }
        match self.threshold {
            ThresholdRule::Fixed { threshold } if !(0.0..=1.0).contains(&threshold) => {
                return bad("threshold", format!("{threshold} is not in [0, 1]"));
            }
            ThresholdRule::TargetFpr { fpr } if !(0.0..=1.0).contains(&fpr) => return bad("threshold", format!("fpr {fpr} is not in [0, 1]")),
            ThresholdRule::Fixed { .. } => {}
            rule if !has_validation => {
                return bad(
                    "threshold",
                    format!("rule {} needs validation data, and there is none here; use {{ rule = \"fixed\", threshold = 0.5 }}", rule.name()),
                );
            }
            _ => {}
        }
        if self.temperature && !has_validation {
            return bad("temperature", "fitting a temperature needs validation data, and there is none here; set temperature = false".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardConfig {
    pub train: TrainConfig,
    pub calibration: CalibrationConfig,
    /// After selecting the weight decay on validation, refit on train + validation.
    pub refit: bool,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig { train: TrainConfig::default(), calibration: CalibrationConfig::default(), refit: true }
    }
}

impl GuardConfig {
    pub fn check(&self, has_validation: bool) -> Result<()> {
        self.train.check(has_validation)?;
        self.calibration.check(has_validation)
    }
}
