//! A judge as its TOML file names it, and the two kinds: the widely served
//! chat-completions API, and a local command.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Judge, command::CommandJudge, http::ChatJudge};
use crate::error::{Error, Result};
use crate::remote::http::EndpointOptions;
use crate::secret::Secret;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum JudgeConfig {
    /// `POST {base_url}/chat/completions` with the image as a base64 data
    /// URL in the user message, temperature 0 and the run's seed.
    Http {
        /// The API's root, e.g. `https://api.example.com/v1` (or the
        /// environment's `PAIRGUARD_JUDGE_URL`, which the CLI applies).
        #[serde(default)]
        base_url: String,
        #[serde(default)]
        model: Option<String>,
        /// The environment variable holding the API key (never written anywhere).
        #[serde(default = "default_key_env")]
        key_env: String,
        #[serde(default = "default_timeout")]
        timeout_s: f64,
        /// Ask for the answer tokens' log-probabilities, for P(unsafe).
        #[serde(default = "yes")]
        logprobs: bool,
        #[serde(default = "default_max_tokens")]
        max_tokens: u32,
        /// A prompt template (TOML with `system` and `user`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt: Option<PathBuf>,
        /// Allow plain `http://` to a host other than this machine.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        allow_insecure_http: bool,
        /// The largest answer read, in bytes (default 1 MiB).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_response_bytes: Option<u64>,
    },
    /// A local program: one JSON request per line on its standard input
    /// (`id`, `image` path, `system`, `prompt`, `seed`), one JSON answer per
    /// line on its standard output (`id`, `text`, optional `p_unsafe`, or
    /// `error`).
    Command {
        command: Vec<String>,
        /// Seconds to wait for each answer; past it the command is stopped,
        /// started again, and the attempt counts as a retryable failure.
        #[serde(default = "default_command_timeout")]
        timeout_s: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt: Option<PathBuf>,
    },
}

fn default_key_env() -> String {
    "PAIRGUARD_JUDGE_KEY".into()
}

fn default_timeout() -> f64 {
    120.0
}

fn default_command_timeout() -> f64 {
    600.0
}

fn default_max_tokens() -> u32 {
    300
}

fn yes() -> bool {
    true
}

impl JudgeConfig {
    /// Reads a judge file; relative paths in it resolve against its folder.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut cfg: JudgeConfig = toml::from_str(&text).map_err(|e| Error::File { path: path.into(), message: e.to_string() })?;
        let base = path.parent().unwrap_or(Path::new("."));
        if let JudgeConfig::Http { prompt: Some(p), .. } | JudgeConfig::Command { prompt: Some(p), .. } = &mut cfg {
            *p = base.join(&*p);
        }
        Ok(cfg)
    }

    /// An HTTP judge's endpoint and model, as the environment overrides them.
    pub fn override_endpoint(&mut self, url: Option<String>, new_model: Option<String>) {
        if let JudgeConfig::Http { base_url, model, .. } = self {
            if let Some(u) = url {
                *base_url = u;
            }
            if new_model.is_some() {
                *model = new_model;
            }
        }
    }

    /// The environment variable the caller reads the API key from, if any.
    pub fn key_env(&self) -> Option<&str> {
        match self {
            JudgeConfig::Http { key_env, .. } => Some(key_env),
            JudgeConfig::Command { .. } => None,
        }
    }

    /// The prompt template file, if the judge names one.
    pub fn prompt_template(&self) -> Option<&Path> {
        match self {
            JudgeConfig::Http { prompt, .. } | JudgeConfig::Command { prompt, .. } => prompt.as_deref(),
        }
    }

    /// A warning to show once when the judge is reached over plain HTTP on another machine.
    pub fn insecure_warning(&self) -> Option<String> {
        match self {
            JudgeConfig::Http { base_url, allow_insecure_http: true, .. } if base_url.starts_with("http://") => {
                Some(format!("the judge at {base_url} is reached over plain http: its key and the images travel in clear text"))
            }
            _ => None,
        }
    }

    /// The judge, ready to take requests; `work` holds a command's exchange folder.
    pub fn open(&self, work: &Path, key: Option<Secret>) -> Result<Box<dyn Judge>> {
        let seconds = |t: f64| {
            if t.is_finite() && t > 0.0 {
                Ok(Duration::from_secs_f64(t))
            } else {
                Err(Error::Config(format!("judge timeout_s = {t}: a positive number of seconds")))
            }
        };
        Ok(match self {
            JudgeConfig::Http { base_url, .. } if base_url.is_empty() => {
                return Err(Error::Config("the HTTP judge has no base_url (in its file, or PAIRGUARD_JUDGE_URL)".into()));
            }
            JudgeConfig::Http { base_url, model, timeout_s, logprobs, max_tokens, allow_insecure_http, max_response_bytes, .. } => {
                let opts = EndpointOptions {
                    timeout: seconds(*timeout_s)?,
                    allow_insecure_http: *allow_insecure_http,
                    max_body: max_response_bytes.unwrap_or(1 << 20),
                };
                Box::new(ChatJudge::new(base_url, model.clone(), key, opts, *logprobs, *max_tokens)?)
            }
            JudgeConfig::Command { command, timeout_s, .. } => {
                Box::new(CommandJudge::new(command.clone(), work.join("exchange"), seconds(*timeout_s)?)?)
            }
        })
    }

    /// What identifies the judge's answers: everything but secrets.
    pub fn identity(&self) -> String {
        serde_json::to_string(self).expect("serialisable")
    }
}
