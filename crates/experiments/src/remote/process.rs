//! A local command as a service (a GPU script for edits, a VLM run locally
//! for verdicts): started once, fed one JSON request per line on its
//! standard input, answering one line per request on its standard output.
//! A command that dies, or does not answer within its timeout, is stopped
//! and started again for the next attempt.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use super::RequestError;
use crate::error::{Error, Result};

/// The status of a request the command did not answer in time.
pub const STOPPED: &str = "timeout";
/// The status of a request whose command exited or closed its output.
pub const DIED: &str = "command died";

#[derive(Debug)]
struct Running {
    child: Child,
    stdin: ChildStdin,
    /// The command's output lines, read by a thread of their own so that a
    /// hung command cannot block a request past its timeout.
    lines: Receiver<std::io::Result<String>>,
}

#[derive(Debug)]
pub struct Process {
    command: Vec<String>,
    timeout: Duration,
    /// One request at a time: a local model handles one after another.
    running: Mutex<Option<Running>>,
}

impl Process {
    /// A command answering each request within `timeout`; started on the first request.
    pub fn new(command: Vec<String>, timeout: Duration) -> Result<Self> {
        if command.is_empty() {
            return Err(Error::Config("the command is empty".into()));
        }
        Ok(Process { command, timeout, running: Mutex::new(None) })
    }

    pub fn describe(&self) -> String {
        format!("command {}", self.command.join(" "))
    }

    /// Sends `request` as one line and returns the command's answer line.
    pub fn call(&self, request: &serde_json::Value) -> std::result::Result<String, RequestError> {
        let mut guard = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(self.start()?);
        }
        let result = self.exchange(guard.as_mut().expect("started"), request);
        if result.as_ref().is_err_and(|e| e.status == DIED || e.status == STOPPED)
            && let Some(mut r) = guard.take()
        {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
        result
    }

    fn start(&self) -> std::result::Result<Running, RequestError> {
        let mut child = Command::new(&self.command[0])
            .args(&self.command[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| RequestError::fatal("start", format!("{}: {e}", self.command[0])))?;
        let stdin = child.stdin.take().expect("piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let (tx, lines) = std::sync::mpsc::channel();
        // Ends when the command closes its output (it exited or was killed).
        std::thread::spawn(move || {
            loop {
                let mut line = String::new();
                match stdout.read_line(&mut line) {
                    Ok(0) => break,
                    Ok(_) if tx.send(Ok(line)).is_ok() => {}
                    Ok(_) => break,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
            }
        });
        Ok(Running { child, stdin, lines })
    }

    fn exchange(&self, running: &mut Running, request: &serde_json::Value) -> std::result::Result<String, RequestError> {
        let died = |what: &str, e: String| RequestError::retryable(DIED, format!("{what}: {e}"));
        writeln!(running.stdin, "{request}").and_then(|()| running.stdin.flush()).map_err(|e| died("writing the request", e.to_string()))?;
        match running.lines.recv_timeout(self.timeout) {
            Ok(line) => line.map_err(|e| died("reading the answer", e.to_string())),
            Err(RecvTimeoutError::Disconnected) => Err(died("reading the answer", "the command closed its output".into())),
            Err(RecvTimeoutError::Timeout) => Err(RequestError::retryable(
                STOPPED,
                format!("no answer within {:.1} s; the command is stopped and started again", self.timeout.as_secs_f64()),
            )),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut r) = self.running.get_mut().ok().and_then(Option::take) {
            drop(r.stdin);
            let _ = r.child.wait();
        }
    }
}
