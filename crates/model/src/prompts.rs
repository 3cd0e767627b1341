//! Policy text as a guard: a policy's prompts per category, their
//! embeddings ([`PolicyText`]), and what they make: the zero-shot guard, the
//! start of a prompt head or probe, and labelled training samples.
//!
//! A zero-shot guard is a prompt head ([`HeadKind::Prompt`]) whose columns
//! are the policy's class embeddings: for each category the mean of its
//! unsafe prompts' text embeddings and the mean of its safe ones, each at
//! unit length (CLIP's prompt ensembling). It is calibrated, evaluated,
//! saved and exported like a trained guard, and is where a prompt head's
//! training starts.

use std::collections::BTreeSet;
use std::path::Path;

use burn::tensor::Device;
use pairguard_clip::{Checkpoint, TextEncoder};
use pairguard_data::EncoderId;
use pairguard_data::hub::HubOptions;
use pairguard_data::policy::Policy;
use pairguard_data::prompt_embeddings::PromptEmbeddings;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::features::LabeledSet;
use crate::guard::{CalibrationConfig, GuardModel, calibrate};
use crate::head::{CLIP_SCALE, HeadKind, HeadWeights};
use crate::normalize::{FeatureNorm, NormKind};
use crate::train::TrainConfig;

/// A policy's prompts for the categories of a dataset, in its order.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyPrompts {
    pub policy: String,
    pub policy_sha256: String,
    pub categories: Vec<String>,
    /// Per category: templates x unsafe phrases, then templates x safe ones.
    pub unsafe_texts: Vec<Vec<String>>,
    pub safe_texts: Vec<Vec<String>>,
}

/// Where a zero-shot guard's prompts came from, kept on its card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptSource {
    pub policy: String,
    pub policy_sha256: String,
    pub prompts: usize,
    pub text_model: String,
    pub tokenizer: String,
}

impl PolicyPrompts {
    /// Refuses a policy that misses a category of the data: its guard could
    /// not say anything about that category.
    pub fn new(policy: &Policy, categories: &[String]) -> Result<Self> {
        let missing: Vec<&str> = categories.iter().filter(|c| policy.category(c).is_none()).map(String::as_str).collect();
        if !missing.is_empty() || categories.is_empty() {
            return Err(Error::TrainingData(format!(
                "policy {} ({}) has no prompts for the data's categories [{}]",
                policy.name,
                policy.path.display(),
                missing.join(", ")
            )));
        }
        let fill =
            |phrases: &[String]| -> Vec<String> { policy.templates.iter().flat_map(|t| phrases.iter().map(move |p| t.replace("{}", p))).collect() };
        Ok(PolicyPrompts {
            policy: policy.name.clone(),
            policy_sha256: policy.sha256.clone(),
            categories: categories.to_vec(),
            unsafe_texts: categories.iter().map(|c| fill(&policy.category(c).expect("checked").unsafe_)).collect(),
            safe_texts: categories.iter().map(|c| fill(&policy.category(c).expect("checked").safe)).collect(),
        })
    }

    /// Every prompt once, in a fixed order.
    pub fn texts(&self) -> Vec<String> {
        let all: BTreeSet<&String> = self.unsafe_texts.iter().chain(&self.safe_texts).flatten().collect();
        all.into_iter().cloned().collect()
    }

    /// The zero-shot prompt head with `outputs` outputs (1, or 1 + K).
    pub fn head(&self, emb: &PromptEmbeddings, outputs: usize) -> Result<HeadWeights> {
        let (k, d) = (self.categories.len(), emb.dim);
        let class = |texts: &[String]| -> Result<Vec<f32>> {
            let mut mean = vec![0f32; d];
            for t in texts {
                let row = emb
                    .get(t)
                    .ok_or_else(|| Error::TrainingData(format!("the prompt embeddings have no row for {t:?}: embed this policy's prompts")))?;
                mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
            }
            let n = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            Ok(mean.into_iter().map(|v| v / n).collect())
        };
        let columns: Vec<Vec<f32>> = self.unsafe_texts.iter().chain(&self.safe_texts).map(|t| class(t)).collect::<Result<_>>()?;
        let w1 = (0..d).flat_map(|i| columns.iter().map(move |c| c[i])).collect();
        Ok(HeadWeights {
            kind: HeadKind::Prompt { categories: k, scale: CLIP_SCALE },
            input_dim: d,
            outputs,
            w1,
            b1: vec![0.0; 2 * k],
            w2: None,
            b2: None,
            middle: Vec::new(),
        })
    }

    /// The zero-shot direction as a linear head on unit embeddings (before
    /// any standardisation): "unsafe" along the mean unsafe class vector
    /// minus the mean safe one, category k along its unsafe minus safe
    /// vector, at CLIP's scale. A probe started here begins as a linear
    /// reading of the zero-shot guard; see [`crate::train::BankJob::start`].
    pub fn linear_head(&self, emb: &PromptEmbeddings, outputs: usize) -> Result<HeadWeights> {
        let p = self.head(emb, 1)?;
        let (k, d) = (self.categories.len(), emb.dim);
        let col = |i: usize, j: usize| p.w1[i * 2 * k + j];
        let s = CLIP_SCALE as f32;
        let w1 = (0..d)
            .flat_map(|i| {
                let mean = (0..k).map(|c| col(i, c) - col(i, k + c)).sum::<f32>() / k as f32;
                std::iter::once(s * mean).chain((0..outputs - 1).map(move |c| s * (col(i, c) - col(i, k + c))))
            })
            .collect();
        Ok(HeadWeights { kind: HeadKind::Linear, input_dim: d, outputs, w1, b1: vec![0.0; outputs], w2: None, b2: None, middle: Vec::new() })
    }

    /// The prompts as labelled samples (text as training data): each unsafe
    /// prompt of category k is an unsafe sample of k, each safe prompt a
    /// safe sample of k. Ids are `prompt:` and the text; the source is
    /// unknown.
    pub fn samples(&self, emb: &PromptEmbeddings) -> Result<LabeledSet> {
        let mut set = LabeledSet {
            dim: emb.dim,
            x: Vec::new(),
            ids: Vec::new(),
            labels: Vec::new(),
            category: Vec::new(),
            categories: self.categories.clone(),
            sources: Vec::new(),
            pairs: Vec::new(),
        };
        for (k, (u, s)) in self.unsafe_texts.iter().zip(&self.safe_texts).enumerate() {
            for (texts, label) in [(u, true), (s, false)] {
                for t in texts {
                    let row = emb
                        .get(t)
                        .ok_or_else(|| Error::TrainingData(format!("the prompt embeddings have no row for {t:?}: embed this policy's prompts")))?;
                    set.x.extend_from_slice(row);
                    set.ids.push(format!("prompt:{t}"));
                    set.labels.push(label);
                    set.category.push(Some(k));
                    set.sources.push(pairguard_data::Source::Unknown);
                }
            }
        }
        Ok(set)
    }

    pub fn source(&self, emb: &PromptEmbeddings) -> PromptSource {
        PromptSource {
            policy: self.policy.clone(),
            policy_sha256: self.policy_sha256.clone(),
            prompts: self.texts().len(),
            text_model: emb.model.clone(),
            tokenizer: emb.tokenizer.clone(),
        }
    }
}

/// Where a policy's prompt embeddings come from.
#[derive(Debug, Clone, Copy)]
pub enum PromptTable<'a> {
    /// A file written by `pairguard embed-text` (or the synthetic benchmark).
    File(&'a Path),
    /// Embedded now with the text tower of a CLIP checkpoint.
    Embed { checkpoint: &'a Checkpoint, tokenizer: Option<&'a Path>, hub: &'a HubOptions, device: &'a Device },
}

/// A policy's prompts for a dataset's categories with their embeddings,
/// checked against the images' encoder: what zero-shot guards, prompt
/// heads, zero-shot starts of probes and text as training data are made of.
#[derive(Debug, Clone)]
pub struct PolicyText {
    pub prompts: PolicyPrompts,
    pub embeddings: PromptEmbeddings,
}

impl PolicyText {
    /// The prompts of the policy file `policy` for `categories`, embedded
    /// as `table` says, for images of `images` (their encoders must match).
    pub fn resolve(policy: &Path, categories: &[String], table: PromptTable, images: &EncoderId) -> Result<Self> {
        let prompts = PolicyPrompts::new(&Policy::from_file(policy)?, categories)?;
        let embeddings = match table {
            PromptTable::File(path) => PromptEmbeddings::load(path)?,
            PromptTable::Embed { checkpoint, tokenizer, hub, device } => {
                TextEncoder::resolve(checkpoint, tokenizer, hub, device)?.embed(&prompts.texts())?
            }
        };
        embeddings.check_encoder(images)?;
        Ok(PolicyText { prompts, embeddings })
    }

    /// Where training starts, decided here for `train` and sweeps alike: a
    /// prompt head starts as the policy's zero-shot guard (its categories
    /// are set in `train`); a linear probe asked to (`zero_shot_init`)
    /// starts at the zero-shot direction; other heads start at random, and
    /// asking them to start from the policy is an error.
    pub fn start(&self, train: &mut TrainConfig, zero_shot_init: bool) -> Result<Option<HeadWeights>> {
        let k = self.prompts.categories.len();
        let outputs = if train.multilabel { 1 + k } else { 1 };
        if let HeadKind::Prompt { scale, .. } = train.head {
            let mut head = self.prompts.head(&self.embeddings, outputs)?;
            head.kind = HeadKind::Prompt { categories: k, scale };
            train.head = head.kind;
            return Ok(Some(head));
        }
        if !zero_shot_init {
            return Ok(None);
        }
        if !train.head.starts_from_policy() {
            return Err(Error::TrainOption { option: "zero_shot_init", message: "a zero-shot start applies to linear and prompt heads".into() });
        }
        Ok(Some(self.prompts.linear_head(&self.embeddings, outputs)?))
    }

    /// The prompts as labelled training samples; see [`PolicyPrompts::samples`].
    pub fn samples(&self) -> Result<LabeledSet> {
        self.prompts.samples(&self.embeddings)
    }

    /// What a guard's card records of these prompts.
    pub fn source(&self) -> PromptSource {
        self.prompts.source(&self.embeddings)
    }

    /// The zero-shot guard of a policy for images of `encoder`: "unsafe" and one
    /// output per category. With validation data it is calibrated as trained
    /// guards are (temperature, threshold rule); without, only a fixed
    /// threshold is allowed.
    pub fn zero_shot_guard(
        &self,
        encoder: &EncoderId,
        validation: Option<&LabeledSet>,
        calibration: &CalibrationConfig,
        device: &Device,
    ) -> Result<GuardModel> {
        let (prompts, emb) = (&self.prompts, &self.embeddings);
        emb.check_encoder(encoder)?;
        calibration.check(validation.is_some())?;
        let k = prompts.categories.len();
        let head = prompts.head(emb, 1 + k)?;
        let norm = FeatureNorm { kind: NormKind::L2, ..FeatureNorm::identity(emb.dim) };
        let threshold = match calibration.threshold {
            crate::ThresholdRule::Fixed { threshold } => threshold,
            _ => 0.5,
        };
        let mut guard = GuardModel::untrained(head, norm, encoder.clone(), prompts.categories.clone(), threshold)?;
        guard.card.prompts = Some(prompts.source(emb));
        guard.card.threshold_rule = calibration.threshold;
        guard.card.config.calibration = calibration.clone();
        if let Some(v) = validation {
            if v.categories != prompts.categories {
                return Err(Error::TrainingData(format!(
                    "validation categories [{}] differ from the guard's [{}]",
                    v.categories.join(", "),
                    prompts.categories.join(", ")
                )));
            }
            let logits = guard.logits(&v.x, device)?;
            let z: Vec<f64> = logits.chunks(1 + k).map(|r| f64::from(r[0])).collect();
            let c = calibrate(&z, &v.labels, calibration);
            let card = &mut guard.card;
            card.temperature = c.temperature;
            card.threshold = c.threshold;
            card.validation_metrics = c.metrics;
            card.warnings = c.warnings;
        }
        Ok(guard)
    }
}
