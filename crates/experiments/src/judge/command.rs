//! A judge run locally (a VLM under transformers or vLLM's offline API):
//! a command speaking JSON lines, the image handed over as a PNG file in an
//! exchange folder.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{Judge, JudgeRequest, Reply};
use crate::error::{Error, Result};
use crate::remote::RequestError;
use crate::remote::process::Process;

#[derive(Debug)]
pub struct CommandJudge {
    process: Process,
    exchange: PathBuf,
}

/// One answer line: the request's `id`, and the model's `text` (with its
/// `p_unsafe` when the program computes one), or an `error`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub id: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub p_unsafe: Option<f64>,
    #[serde(default)]
    pub error: Option<String>,
}

impl Answer {
    /// The reply to the request for `id` in one line of the command's output.
    pub fn parse(line: &str, id: &str) -> std::result::Result<Reply, RequestError> {
        let malformed = |m: String| RequestError::retryable("malformed response", m);
        let a: Answer = serde_json::from_str(line.trim()).map_err(|e| malformed(format!("{e}: {}", line.trim())))?;
        if a.id != id {
            return Err(RequestError::fatal("malformed response", format!("answer for {:?} to the request for {id:?}", a.id)));
        }
        if let Some(e) = a.error {
            return Err(RequestError::retryable("command error", e));
        }
        if let Some(p) = a.p_unsafe.filter(|p| !(0.0..=1.0).contains(p)) {
            return Err(malformed(format!("p_unsafe {p} is outside [0, 1]")));
        }
        let text = a.text.ok_or_else(|| malformed(format!("no text in the answer for {id:?}")))?;
        Ok(Reply { text, p_unsafe: a.p_unsafe, cost: None })
    }
}

impl CommandJudge {
    pub fn new(command: Vec<String>, exchange: PathBuf, timeout: Duration) -> Result<Self> {
        let process = Process::new(command, timeout).map_err(|_| Error::Config("judge command is empty".into()))?;
        std::fs::create_dir_all(&exchange).map_err(|e| Error::io(&exchange, e))?;
        Ok(CommandJudge { process, exchange })
    }
}

impl Judge for CommandJudge {
    fn describe(&self) -> String {
        self.process.describe()
    }

    fn ask(&self, r: &JudgeRequest) -> std::result::Result<Reply, RequestError> {
        let image = self.exchange.join(format!("{}.png", crate::names::file_stem(&r.id)));
        std::fs::write(&image, &r.png).map_err(|e| RequestError::fatal("exchange", format!("{}: {e}", image.display())))?;
        let line = serde_json::json!({"id": r.id, "image": image, "system": r.prompt.system, "prompt": r.prompt.user, "seed": r.seed});
        Answer::parse(&self.process.call(&line)?, &r.id)
    }
}
