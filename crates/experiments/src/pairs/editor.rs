//! Image editors: what turns an image and an instruction into an edited
//! image. Three kinds share one interface: an HTTP endpoint speaking the
//! widely served image-edit API, a local command (JSON lines over its
//! standard input and output), and the synthetic benchmark's built-in
//! editor. An editor makes one attempt per call; retries, backoff and the
//! request budget belong to the caller.

use crate::secret::Secret;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pairguard_data::Direction;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::remote::RequestError;

/// One edit to make.
#[derive(Debug, Clone)]
pub struct EditRequest {
    /// The source sample's id.
    pub id: String,
    pub category: String,
    pub direction: Direction,
    pub prompt: String,
    pub seed: u64,
    /// The source image, PNG-encoded, and its size.
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// What an editor returned.
#[derive(Debug, Clone)]
pub struct Edited {
    /// The edited image, encoded (PNG, JPEG or WebP).
    pub image: Vec<u8>,
    /// The region the editor changed (non-zero), when it says.
    pub mask: Option<image::GrayImage>,
    /// The cost the editor reported for the request, if any.
    pub cost: Option<f64>,
    /// What the edit really did, when the editor knows (the built-in one
    /// does): it lets a run score its verification.
    pub truth: Option<super::builtin::EditTruth>,
}

pub trait Editor: Send + Sync {
    /// How the editor is described in logs and reports (never with a key).
    fn describe(&self) -> String;
    fn edit(&self, request: &EditRequest) -> std::result::Result<Edited, RequestError>;
}

impl std::fmt::Debug for dyn Editor + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// An editor as a TOML file (or the `--editor` shorthand `synthetic`) names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum EditorConfig {
    /// The image-edit API: `POST {base_url}/images/edits`, multipart `image`
    /// and `prompt` (plus `model`, `n`, `size`, `response_format`), answered
    /// with JSON holding base64 images.
    Http {
        /// The API's root, e.g. `https://api.example.com/v1` (or the
        /// environment's `PAIRGUARD_EDITOR_URL`, which the CLI applies).
        #[serde(default)]
        base_url: String,
        #[serde(default)]
        model: Option<String>,
        /// The environment variable holding the API key (never written anywhere).
        #[serde(default = "default_key_env")]
        key_env: String,
        #[serde(default = "default_timeout")]
        timeout_s: f64,
        /// Ask for `response_format = "b64_json"` (some servers always answer so and reject the field).
        #[serde(default = "yes")]
        response_format: bool,
        /// Send `size = "<width>x<height>"` of the source image.
        #[serde(default)]
        size: bool,
        /// Allow plain `http://` to a host other than this machine (the key
        /// and the images then travel in clear text).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        allow_insecure_http: bool,
        /// The largest answer read, in bytes (default: what a base64 answer
        /// of the largest image the dataset's pixel limit allows needs).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_response_bytes: Option<u64>,
    },
    /// A local program: one JSON request per line on its standard input
    /// (`id`, `image` and `out` paths, `prompt`, `seed`, `category`,
    /// `direction`, `width`, `height`), one JSON answer per line on its
    /// standard output (`id`, `image`, optional `mask`, `cost`, `error`).
    Command {
        command: Vec<String>,
        /// Seconds to wait for each answer; past it the command is stopped,
        /// started again, and the attempt counts as a retryable failure.
        #[serde(default = "default_command_timeout", skip_serializing_if = "is_default_command_timeout")]
        timeout_s: f64,
    },
    /// The synthetic benchmark's editor: draws or erases the dark cross
    /// from the parameters in `images-truth.json`, exactly unless its
    /// `realism` settings make it fail as real editors do.
    Synthetic {
        truth: PathBuf,
        #[serde(default, skip_serializing_if = "is_oracle")]
        realism: super::builtin::Realism,
    },
}

fn default_key_env() -> String {
    "PAIRGUARD_EDITOR_KEY".into()
}

fn default_timeout() -> f64 {
    120.0
}

/// A local GPU script may take minutes for one edit.
fn default_command_timeout() -> f64 {
    600.0
}

fn is_default_command_timeout(t: &f64) -> bool {
    *t == default_command_timeout()
}

fn is_oracle(r: &super::builtin::Realism) -> bool {
    *r == super::builtin::Realism::default()
}

fn yes() -> bool {
    true
}

impl EditorConfig {
    /// Reads an editor file; relative paths in it resolve against its folder.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut cfg: EditorConfig = toml::from_str(&text).map_err(|e| Error::File { path: path.into(), message: e.to_string() })?;
        let base = path.parent().unwrap_or(Path::new("."));
        if let EditorConfig::Synthetic { truth, .. } = &mut cfg {
            *truth = base.join(&*truth);
        }
        Ok(cfg)
    }

    /// An HTTP editor's endpoint and model, as the environment overrides them.
    pub fn override_endpoint(&mut self, url: Option<String>, new_model: Option<String>) {
        if let EditorConfig::Http { base_url, model, .. } = self {
            if let Some(u) = url {
                *base_url = u;
            }
            if new_model.is_some() {
                *model = new_model;
            }
        }
    }

    /// A warning to show once when the editor sends its key and images over
    /// plain HTTP to another machine, as its file allowed.
    pub fn insecure_warning(&self) -> Option<String> {
        match self {
            EditorConfig::Http { base_url, allow_insecure_http: true, .. } if base_url.starts_with("http://") => {
                Some(format!("the editor at {base_url} is reached over plain http: its key and the images travel in clear text"))
            }
            _ => None,
        }
    }

    /// The environment variable the caller reads the API key from, if any.
    pub fn key_env(&self) -> Option<&str> {
        match self {
            EditorConfig::Http { key_env, .. } => Some(key_env),
            _ => None,
        }
    }

    /// The editor, ready to take requests; `key` authorises an HTTP editor,
    /// and `max_pixels` (the dataset's image limit) sizes its answers' limit.
    pub fn open(&self, work: &Path, key: Option<Secret>, max_pixels: u64) -> Result<Box<dyn Editor>> {
        Ok(match self {
            EditorConfig::Http { base_url, .. } if base_url.is_empty() => {
                return Err(Error::Config("the HTTP editor has no base_url (in its file, or PAIRGUARD_EDITOR_URL)".into()));
            }
            EditorConfig::Http { timeout_s, .. } if !(timeout_s.is_finite() && *timeout_s > 0.0) => {
                return Err(Error::Config(format!("editor timeout_s = {timeout_s}: a positive number of seconds")));
            }
            EditorConfig::Http { base_url, model, timeout_s, response_format, size, allow_insecure_http, max_response_bytes, .. } => {
                let endpoint = crate::remote::http::EndpointOptions {
                    timeout: Duration::from_secs_f64(*timeout_s),
                    allow_insecure_http: *allow_insecure_http,
                    max_body: max_response_bytes.unwrap_or(largest_image_bytes(max_pixels).saturating_mul(4) / 3 + (1 << 20)),
                };
                let opts = super::http::HttpOptions { endpoint, response_format: *response_format, size: *size };
                Box::new(super::http::HttpEditor::new(base_url, model.clone(), key, opts)?)
            }
            EditorConfig::Command { timeout_s, .. } if !(timeout_s.is_finite() && *timeout_s > 0.0) => {
                return Err(Error::Config(format!("editor timeout_s = {timeout_s}: a positive number of seconds")));
            }
            EditorConfig::Command { command, timeout_s } => {
                let limits = super::command::AnswerLimits { max_image_bytes: largest_image_bytes(max_pixels), max_pixels };
                Box::new(super::command::CommandEditor::new(command.clone(), work.join("exchange"), Duration::from_secs_f64(*timeout_s), limits)?)
            }
            EditorConfig::Synthetic { truth, realism } => Box::new(super::builtin::SyntheticEditor::new(truth, *realism)?),
        })
    }

    /// What identifies the editor's results: everything but secrets.
    pub fn identity(&self) -> String {
        serde_json::to_string(self).expect("serialisable")
    }
}

/// The bytes of the largest image an answer may carry: a PNG of
/// `max_pixels` pixels, uncompressed RGBA, and room for its chunks.
fn largest_image_bytes(max_pixels: u64) -> u64 {
    max_pixels.saturating_mul(4).saturating_add(1 << 16)
}
