//! A vision-language model as a guard, as UnsafeBench judges LLaVA,
//! InstructBLIP and GPT-4V: each image is shown to the model with the
//! policy, its answer read as a verdict (and P(unsafe) where the server
//! gives log-probabilities), and the verdicts written as a score file that
//! `eval --scores`, `compare` and sweeps' `[[baselines]]` read.

pub mod answer;
pub mod command;
pub mod config;
pub mod http;
pub mod prompt;
pub mod run;

use serde::{Deserialize, Serialize};

pub use answer::Verdict;
pub use config::JudgeConfig;
pub use prompt::Prompt;
pub use run::{JudgeInputs, JudgeOptions, JudgeRecord, JudgeReport, JudgeSettings, JudgeStatus, ScoreSource, judge};

use crate::remote::RequestError;

/// One image to judge.
#[derive(Debug, Clone)]
pub struct JudgeRequest {
    pub id: String,
    /// The image, PNG-encoded.
    pub png: Vec<u8>,
    pub prompt: Prompt,
    pub seed: u64,
}

/// What a judge answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The model's text, as it answered.
    pub text: String,
    /// P(unsafe) from the verdict token's log-probabilities, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_unsafe: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
}

pub trait Judge: Send + Sync {
    /// How the judge is described in logs and reports (never with a key).
    fn describe(&self) -> String;
    /// One attempt; retries belong to the caller.
    fn ask(&self, request: &JudgeRequest) -> Result<Reply, RequestError>;
}

impl std::fmt::Debug for dyn Judge + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}
