//! How heads are trained: the optimiser with its own options, early
//! stopping, and the training config with each head kind's defaults.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::head::HeadKind;
use crate::normalize::NormKind;

/// The optimiser and the options that only it takes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Optimizer {
    /// Full-batch L-BFGS with a strong-Wolfe line search, as scikit-learn
    /// fits logistic regression. Needs a deterministic objective: no dropout.
    Lbfgs {
        #[serde(default = "default_iterations")]
        iterations: usize,
    },
    /// AdamW (minibatches, dropout).
    Adamw {
        #[serde(default = "default_learning_rate")]
        learning_rate: f64,
        #[serde(default = "default_epochs")]
        epochs: usize,
        /// Rows per step; at or above the training size, full batch.
        #[serde(default = "default_batch_size")]
        batch_size: usize,
    },
}

fn default_iterations() -> usize {
    100
}
fn default_learning_rate() -> f64 {
    0.005
}
fn default_epochs() -> usize {
    300
}
fn default_batch_size() -> usize {
    16384
}

impl Optimizer {
    pub fn lbfgs() -> Self {
        Optimizer::Lbfgs { iterations: default_iterations() }
    }

    pub fn adamw() -> Self {
        Optimizer::Adamw { learning_rate: default_learning_rate(), epochs: default_epochs(), batch_size: default_batch_size() }
    }

    /// L-BFGS iterations or AdamW epochs.
    pub fn rounds(&self) -> usize {
        match *self {
            Optimizer::Lbfgs { iterations } => iterations,
            Optimizer::Adamw { epochs, .. } => epochs,
        }
    }

    pub(super) fn with_rounds(self, rounds: usize) -> Self {
        match self {
            Optimizer::Lbfgs { .. } => Optimizer::Lbfgs { iterations: rounds },
            Optimizer::Adamw { learning_rate, batch_size, .. } => Optimizer::Adamw { learning_rate, epochs: rounds, batch_size },
        }
    }
}

/// Stop when the validation loss has not improved for `patience`
/// evaluations, one every `every` epochs (or L-BFGS iterations), and keep the
/// best weights. Needs validation data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    pub patience: usize,
    #[serde(default = "default_every")]
    pub every: usize,
}

fn default_every() -> usize {
    10
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub head: HeadKind,
    pub optimizer: Optimizer,
    pub normalization: NormKind,
    /// Also train one sigmoid output per category ("unsafe in category k").
    pub multilabel: bool,
    /// L2 penalty lambda (see the module docs).
    pub weight_decay: f64,
    /// When not empty, lambdas to select from on validation loss (the CLIP
    /// linear-probe protocol); needs validation data.
    pub weight_decay_grid: Vec<f64>,
    /// Weight classes inversely to their frequency (scikit-learn "balanced").
    pub class_balance: bool,
    pub early_stopping: Option<EarlyStopping>,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self::for_head(HeadKind::Linear)
    }
}

impl TrainConfig {
    /// Sensible defaults for a head kind: L-BFGS for the (convex) linear
    /// probe, AdamW for the MLP adapter, whose dropout L-BFGS cannot take.
    pub fn for_head(head: HeadKind) -> Self {
        TrainConfig {
            head,
            optimizer: head.default_optimizer(),
            normalization: if head.needs_unit_embeddings() { NormKind::L2 } else { NormKind::Standardize },
            multilabel: false,
            weight_decay: 1e-3,
            weight_decay_grid: Vec::new(),
            class_balance: true,
            early_stopping: None,
            seed: 0,
        }
    }

    /// This config with another head, which brings its optimiser's defaults
    /// and, where it reads only one normalisation, that one; the other
    /// options stay.
    pub fn with_head(self, head: HeadKind) -> Self {
        let defaults = Self::for_head(head);
        let normalization = if head.needs_unit_embeddings() { defaults.normalization } else { self.normalization };
        TrainConfig { head, optimizer: defaults.optimizer, normalization, ..self }
    }

    /// Checks options against each other; `has_validation` says whether the
    /// caller has validation data, which some options need.
    pub fn check(&self, has_validation: bool) -> Result<()> {
        let bad = |option: &'static str, message: String| Err(Error::TrainOption { option, message });
        match self.optimizer {
            Optimizer::Lbfgs { iterations: 0 } => return bad("optimizer.iterations", "must be positive".into()),
            Optimizer::Adamw { learning_rate, epochs, batch_size } => {
                if !(learning_rate > 0.0 && learning_rate.is_finite()) {
                    return bad("optimizer.learning_rate", format!("{learning_rate} must be positive"));
                }
                if epochs == 0 || batch_size == 0 {
                    return bad("optimizer", "epochs and batch_size must be positive".into());
                }
            }
            _ => {}
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) || self.weight_decay_grid.iter().any(|&w| !(w >= 0.0 && w.is_finite())) {
            return bad("weight_decay", "values must be finite and non-negative".into());
        }
        if let Err((option, message)) = self.head.check_training(&self.optimizer, self.normalization) {
            return bad(option, message);
        }
        if let Some(es) = self.early_stopping {
            if es.patience == 0 || es.every == 0 {
                return bad("early_stopping", "patience and every must be positive".into());
            }
            if !has_validation {
                return bad("early_stopping", "needs validation data, and there is none here".into());
            }
        }
        if !self.weight_decay_grid.is_empty() && !has_validation {
            return bad(
                "weight_decay_grid",
                "selecting a weight decay needs validation data, and there is none here; set `weight_decay` instead".into(),
            );
        }
        Ok(())
    }
}
