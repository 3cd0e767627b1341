//! A local command as an editor (a diffusers or ComfyUI script on the
//! user's GPU): started once, fed one JSON request per line on its standard
//! input, answering one JSON line per request on its standard output.
//! Images travel as files in an exchange folder. A command that dies is
//! started again for the next attempt.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

use serde::Deserialize;

use super::editor::{EditError, EditRequest, Edited, Editor};
use crate::error::{Error, Result};

#[derive(Debug)]
struct Running {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

#[derive(Debug)]
pub struct CommandEditor {
    command: Vec<String>,
    exchange: PathBuf,
    /// One request at a time: a GPU script edits one image after another.
    running: Mutex<Option<Running>>,
}

#[derive(Debug, Deserialize)]
struct Answer {
    id: String,
    #[serde(default)]
    image: Option<PathBuf>,
    #[serde(default)]
    mask: Option<PathBuf>,
    #[serde(default)]
    cost: Option<f64>,
    #[serde(default)]
    error: Option<String>,
}

impl CommandEditor {
    pub fn new(command: Vec<String>, exchange: PathBuf) -> Result<Self> {
        if command.is_empty() {
            return Err(Error::Config("editor command is empty".into()));
        }
        std::fs::create_dir_all(&exchange).map_err(|e| Error::io(&exchange, e))?;
        Ok(CommandEditor { command, exchange, running: Mutex::new(None) })
    }

    fn start(&self) -> std::result::Result<Running, EditError> {
        let mut child = Command::new(&self.command[0])
            .args(&self.command[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| EditError::fatal("start", format!("{}: {e}", self.command[0])))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Ok(Running { child, stdin, stdout })
    }

    fn exchange(&self, running: &mut Running, r: &EditRequest) -> std::result::Result<Edited, EditError> {
        let stem = crate::names::file_stem(&r.id);
        let (input, output) = (self.exchange.join(format!("{stem}.png")), self.exchange.join(format!("{stem}-edit.png")));
        std::fs::write(&input, &r.png).map_err(|e| EditError::fatal("exchange", format!("{}: {e}", input.display())))?;
        let _ = std::fs::remove_file(&output);
        let line = serde_json::json!({
            "id": r.id, "image": input, "out": output, "prompt": r.prompt, "seed": r.seed,
            "category": r.category, "direction": r.direction.name(), "width": r.width, "height": r.height,
        });
        let died = |what: &str, e: String| EditError::retryable("command died", format!("{what}: {e}"));
        writeln!(running.stdin, "{line}").and_then(|()| running.stdin.flush()).map_err(|e| died("writing the request", e.to_string()))?;
        let mut answer = String::new();
        let n = running.stdout.read_line(&mut answer).map_err(|e| died("reading the answer", e.to_string()))?;
        if n == 0 {
            return Err(died("reading the answer", "the command closed its output".into()));
        }
        let a: Answer =
            serde_json::from_str(answer.trim()).map_err(|e| EditError::retryable("malformed response", format!("{e}: {}", answer.trim())))?;
        if a.id != r.id {
            return Err(EditError::fatal("malformed response", format!("answer for {:?} to the request for {:?}", a.id, r.id)));
        }
        if let Some(e) = a.error {
            return Err(EditError::retryable("command error", e));
        }
        let path = a.image.unwrap_or(output);
        let image = std::fs::read(&path).map_err(|e| EditError::retryable("malformed response", format!("{}: {e}", path.display())))?;
        let mask = match a.mask {
            Some(m) => {
                Some(image::open(&m).map_err(|e| EditError::retryable("malformed response", format!("mask {}: {e}", m.display())))?.to_luma8())
            }
            None => None,
        };
        Ok(Edited { image, mask, cost: a.cost })
    }
}

impl Editor for CommandEditor {
    fn describe(&self) -> String {
        format!("command {}", self.command.join(" "))
    }

    fn edit(&self, request: &EditRequest) -> std::result::Result<Edited, EditError> {
        let mut guard = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(self.start()?);
        }
        let result = self.exchange(guard.as_mut().expect("started"), request);
        if result.as_ref().is_err_and(|e| e.status == "command died")
            && let Some(mut r) = guard.take()
        {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
        result
    }
}

impl Drop for CommandEditor {
    fn drop(&mut self) {
        if let Some(mut r) = self.running.get_mut().ok().and_then(Option::take) {
            drop(r.stdin);
            let _ = r.child.wait();
        }
    }
}
