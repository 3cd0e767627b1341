//! A local command as an editor (a diffusers or ComfyUI script on the
//! user's GPU): started once, fed one JSON request per line on its standard
//! input, answering one JSON line per request on its standard output.
//! Images travel as files in an exchange folder, and an answer may name
//! files there only: the command is trusted code, but a path it answers by
//! mistake (or built from an image's id) never makes pairguard read other
//! files. An answered image is refused past the byte limit and a mask past
//! the dataset's pixel limit, as the HTTP editor's answers are. A command
//! that dies, or does not answer within its timeout, is stopped and started
//! again for the next attempt.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::editor::{EditRequest, Edited, Editor};
use crate::error::{Error, Result};
use crate::remote::RequestError;
use crate::remote::process::Process;

#[derive(Debug)]
pub struct CommandEditor {
    process: Process,
    exchange: PathBuf,
    limits: AnswerLimits,
}

/// One answer line: the request's `id`, and either the edited `image`
/// (default: the request's `out`), an optional `mask` of the pixels the
/// edit meant to change and a `cost`, or an `error`.
#[derive(Debug, Deserialize)]
pub struct Answer {
    pub id: String,
    #[serde(default)]
    pub image: Option<PathBuf>,
    #[serde(default)]
    pub mask: Option<PathBuf>,
    #[serde(default)]
    pub cost: Option<f64>,
    #[serde(default)]
    pub error: Option<String>,
}

impl Answer {
    /// The answer to the request for `id` in one line of the command's output.
    pub fn parse(line: &str, id: &str) -> std::result::Result<Answer, RequestError> {
        let a: Answer =
            serde_json::from_str(line.trim()).map_err(|e| RequestError::retryable("malformed response", format!("{e}: {}", line.trim())))?;
        if a.id != id {
            return Err(RequestError::fatal("malformed response", format!("answer for {:?} to the request for {id:?}", a.id)));
        }
        if let Some(e) = a.error {
            return Err(RequestError::retryable("command error", e));
        }
        Ok(a)
    }
}

/// The most an answer may hold: bytes of an edited image file, and pixels
/// of a mask.
#[derive(Debug, Clone, Copy)]
pub struct AnswerLimits {
    pub max_image_bytes: u64,
    pub max_pixels: u64,
}

impl CommandEditor {
    /// A command answering each request within `timeout`.
    pub fn new(command: Vec<String>, exchange: PathBuf, timeout: Duration, limits: AnswerLimits) -> Result<Self> {
        let process = Process::new(command, timeout).map_err(|_| Error::Config("editor command is empty".into()))?;
        std::fs::create_dir_all(&exchange).map_err(|e| Error::io(&exchange, e))?;
        let exchange = exchange.canonicalize().map_err(|e| Error::io(&exchange, e))?;
        Ok(CommandEditor { process, exchange, limits })
    }

    /// An answered path (relative ones are in the exchange folder), which
    /// must lie in the exchange folder.
    fn answered(&self, what: &str, path: &Path) -> std::result::Result<PathBuf, RequestError> {
        let bad = |m: String| RequestError::retryable("malformed response", format!("{what} {}: {m}", path.display()));
        let real = self.exchange.join(path).canonicalize().map_err(|e| bad(e.to_string()))?;
        if !real.starts_with(&self.exchange) {
            return Err(bad(format!("outside the exchange folder {}; answers name files there only", self.exchange.display())));
        }
        Ok(real)
    }

    fn exchange(&self, r: &EditRequest) -> std::result::Result<Edited, RequestError> {
        let stem = crate::names::file_stem(&r.id);
        let (input, output) = (self.exchange.join(format!("{stem}.png")), self.exchange.join(format!("{stem}-edit.png")));
        std::fs::write(&input, &r.png).map_err(|e| RequestError::fatal("exchange", format!("{}: {e}", input.display())))?;
        let _ = std::fs::remove_file(&output);
        let line = serde_json::json!({
            "id": r.id, "image": input, "out": output, "prompt": r.prompt, "seed": r.seed,
            "category": r.category, "direction": r.direction.name(), "width": r.width, "height": r.height,
        });
        let answer = self.process.call(&line)?;
        let a = Answer::parse(&answer, &r.id)?;
        let path = self.answered("image", &a.image.unwrap_or(output))?;
        let len =
            std::fs::metadata(&path).map_err(|e| RequestError::retryable("malformed response", format!("image {}: {e}", path.display())))?.len();
        if len > self.limits.max_image_bytes {
            let message = format!("image {} is {len} bytes, over the limit of {}", path.display(), self.limits.max_image_bytes);
            return Err(RequestError::fatal("response too large", message));
        }
        let image = std::fs::read(&path).map_err(|e| RequestError::retryable("malformed response", format!("image {}: {e}", path.display())))?;
        let mask = match a.mask {
            Some(m) => {
                let m = self.answered("mask", &m)?;
                let decoded = pairguard_data::images::decode(&pairguard_data::ImageRef::Path(m.clone()), self.limits.max_pixels);
                Some(decoded.map_err(|e| RequestError::retryable("malformed response", format!("mask: {e}")))?.to_luma8())
            }
            None => None,
        };
        Ok(Edited { image, mask, cost: a.cost, truth: None })
    }
}

impl Editor for CommandEditor {
    fn describe(&self) -> String {
        self.process.describe()
    }

    fn edit(&self, request: &EditRequest) -> std::result::Result<Edited, RequestError> {
        self.exchange(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: &str) -> EditRequest {
        EditRequest {
            id: id.into(),
            category: "c".into(),
            direction: pairguard_data::Direction::Add,
            prompt: "p".into(),
            seed: 0,
            png: b"not really a png".to_vec(),
            width: 4,
            height: 4,
        }
    }

    /// A shell editor that counts its starts in `starts`, then runs `body`
    /// for each request line `$l` (with `$out` its output path).
    fn editor(dir: &std::path::Path, body: &str, timeout: Duration) -> CommandEditor {
        let starts = dir.join("starts");
        let script = format!(
            "starts='{}'; echo start >> \"$starts\"; while read -r l; do out=$(printf '%s' \"$l\" | sed 's/.*\"out\":\"\\([^\"]*\\)\".*/\\1/'); {body}; done",
            starts.display()
        );
        let limits = AnswerLimits { max_image_bytes: 1 << 20, max_pixels: 1 << 20 };
        CommandEditor::new(vec!["sh".into(), "-c".into(), script], dir.join("exchange"), timeout, limits).unwrap()
    }

    fn starts(dir: &std::path::Path) -> usize {
        std::fs::read_to_string(dir.join("starts")).map_or(0, |s| s.lines().count())
    }

    #[test]
    fn a_hung_command_times_out_and_is_started_again() {
        let dir = tempfile::tempdir().unwrap();
        let hung = editor(dir.path(), "sleep 20", Duration::from_millis(500));
        for attempt in 1..=2 {
            let t0 = std::time::Instant::now();
            let e = hung.edit(&request("a")).unwrap_err();
            assert!(e.status == "timeout" && e.retryable, "{e}");
            assert!(t0.elapsed() < Duration::from_secs(5), "waited {:?}", t0.elapsed());
            assert_eq!(starts(dir.path()), attempt, "stopped and started again");
        }
    }

    #[test]
    fn a_command_that_dies_is_started_again_and_then_answers() {
        let dir = tempfile::tempdir().unwrap();
        // The first start dies on its first request; the next one edits.
        let body = "if [ $(wc -l < \"$starts\") -eq 1 ]; then exit 3; fi; printf edited > \"$out\"; echo '{\"id\":\"a\"}'";
        let flaky = editor(dir.path(), body, Duration::from_secs(20));
        let e = flaky.edit(&request("a")).unwrap_err();
        assert!(e.status == "command died" && e.retryable, "{e}");
        let edited = flaky.edit(&request("a")).unwrap();
        assert_eq!(edited.image, b"edited");
        assert_eq!(starts(dir.path()), 2);
    }

    #[test]
    fn answers_name_files_in_the_exchange_folder_within_the_limits() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("secret"), "outside").unwrap();
        image::GrayImage::new(2000, 1000).save(d.join("exchange-big.png")).unwrap();
        for (answer, status, needle) in [
            (format!(r#"{{"id":"a","image":"{}"}}"#, d.join("secret").display()), "malformed response", "outside the exchange folder"),
            (r#"{"id":"a","image":"../secret"}"#.to_string(), "malformed response", "outside the exchange folder"),
            (r#"{"id":"a","image":"missing.png"}"#.to_string(), "malformed response", "missing.png"),
            (r#"{"id":"a","mask":"big.png"}"#.to_string(), "malformed response", "over the limit of 1048576"),
        ] {
            let big = d.join("exchange-big.png");
            let body = format!("printf x > \"$out\"; cp '{}' \"$(dirname \"$out\")/big.png\"; echo '{answer}'", big.display());
            let e = editor(d, &body, Duration::from_secs(20)).edit(&request("a")).unwrap_err();
            assert!(e.status == status && e.message.contains(needle), "{answer}: {e}");
        }
        let big = "head -c 1048577 /dev/zero > \"$out\"; echo '{\"id\":\"a\"}'";
        let e = editor(d, big, Duration::from_secs(20)).edit(&request("a")).unwrap_err();
        assert!(e.status == "response too large" && e.message.contains("1048577 bytes, over the limit of 1048576"), "{e}");
    }
}
