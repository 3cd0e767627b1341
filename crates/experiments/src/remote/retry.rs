//! Attempts around one request: exponential backoff that honours the
//! service's `Retry-After`, a request budget shared by a run's workers, and
//! a log with a line per attempt.

use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::RequestError;
use crate::error::{Error, Result};

/// How often, and how patiently, a request is tried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per request, the first one included.
    pub attempts: usize,
    /// First wait after a failed attempt; it doubles each time, up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// From seconds, checked.
    pub fn new(attempts: usize, backoff_s: f64, max_backoff_s: f64) -> Result<Self> {
        if attempts == 0 {
            return Err(Error::Config("--attempts must be at least 1".into()));
        }
        if !(backoff_s.is_finite() && max_backoff_s.is_finite()) || backoff_s < 0.0 || max_backoff_s < backoff_s {
            return Err(Error::Config("--backoff must be a non-negative number of seconds, at most --max-backoff".into()));
        }
        Ok(RetryPolicy { attempts, backoff: Duration::from_secs_f64(backoff_s), max_backoff: Duration::from_secs_f64(max_backoff_s) })
    }
}

/// The requests a run may still send, shared by its workers.
#[derive(Debug)]
pub struct Budget {
    left: AtomicUsize,
    sent: AtomicUsize,
}

impl Budget {
    /// At most `limit` requests (None: no limit).
    pub fn new(limit: Option<usize>) -> Self {
        Budget { left: AtomicUsize::new(limit.unwrap_or(usize::MAX)), sent: AtomicUsize::new(0) }
    }

    /// Takes one request from the budget; false when it is spent.
    fn take(&self) -> bool {
        let ok = self.left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1)).is_ok();
        if ok {
            self.sent.fetch_add(1, Ordering::SeqCst);
        }
        ok
    }

    /// Requests sent so far.
    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }
}

/// One attempt, as the log is told of it.
#[derive(Debug)]
pub struct Attempt<'a, T> {
    /// Counted from 1.
    pub number: usize,
    pub result: &'a std::result::Result<T, RequestError>,
    pub seconds: f64,
    /// Seconds since the Unix epoch when it started.
    pub started: f64,
}

impl<T> Attempt<'_, T> {
    /// The attempt as a request log states it: "ok" or the failure's
    /// status, the failure's message, and the cost `cost` reads from a
    /// success.
    pub fn outcome(&self, cost: impl Fn(&T) -> Option<f64>) -> (String, Option<String>, Option<f64>) {
        match self.result {
            Ok(r) => ("ok".into(), None, cost(r)),
            Err(e) => (e.status.clone(), Some(e.message.clone()), None),
        }
    }
}

/// How a request ended: its last attempt's result and how many were made.
#[derive(Debug)]
pub struct Attempted<T> {
    pub result: std::result::Result<T, RequestError>,
    pub attempts: usize,
}

/// Calls `call` until it succeeds, fails for good (an error that is not
/// retryable, or the last attempt), telling `log` of every attempt and
/// waiting between them. None when the budget ran out first: the request
/// waits for the next run.
pub fn with_retries<T>(
    policy: &RetryPolicy,
    budget: &Budget,
    mut call: impl FnMut() -> std::result::Result<T, RequestError>,
    mut log: impl FnMut(Attempt<'_, T>) -> Result<()>,
) -> Result<Option<Attempted<T>>> {
    let mut wait = policy.backoff;
    for number in 1..=policy.attempts {
        if !budget.take() {
            return Ok(None);
        }
        let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let t0 = Instant::now();
        let result = call();
        log(Attempt { number, result: &result, seconds: t0.elapsed().as_secs_f64(), started })?;
        match &result {
            Err(e) if e.retryable && number < policy.attempts => {
                std::thread::sleep(e.retry_after.unwrap_or(wait).min(policy.max_backoff));
                wait = (wait * 2).min(policy.max_backoff);
            }
            _ => return Ok(Some(Attempted { result, attempts: number })),
        }
    }
    unreachable!("the last attempt returns")
}

/// A JSON-lines log that runs append to.
#[derive(Debug)]
pub struct AppendLog {
    file: Mutex<std::fs::File>,
    name: String,
}

impl AppendLog {
    /// Opens `path` for appending, first cutting it after its last whole
    /// line: a run killed while it appended leaves part of a line, which the
    /// next line would make invalid.
    pub fn open(path: &Path) -> Result<Self> {
        if let Ok(bytes) = std::fs::read(path)
            && !bytes.is_empty()
            && !bytes.ends_with(b"\n")
        {
            let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let f = std::fs::OpenOptions::new().write(true).open(path).map_err(|e| Error::io(path, e))?;
            f.set_len(keep as u64).map_err(|e| Error::io(path, e))?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| Error::io(path, e))?;
        Ok(AppendLog { file: Mutex::new(file), name: path.display().to_string() })
    }

    pub fn write(&self, entry: &impl Serialize) -> Result<()> {
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(&line).map_err(|e| Error::io(&self.name, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_stop_at_success_at_a_fatal_error_at_the_last_attempt_and_when_the_budget_is_spent() {
        let policy = RetryPolicy::new(3, 0.0, 0.0).unwrap();
        let run = |budget: &Budget, answers: Vec<std::result::Result<u8, RequestError>>| {
            let mut answers = answers.into_iter();
            let mut logged = Vec::new();
            let out = with_retries(
                &policy,
                budget,
                || answers.next().unwrap(),
                |a| {
                    logged.push((a.number, a.result.is_ok()));
                    Ok(())
                },
            )
            .unwrap();
            (out.map(|a| (a.result.map_err(|e| e.status), a.attempts)), logged)
        };
        let busy = || RequestError::retryable("http 429", "slow down");
        let budget = Budget::new(None);
        assert_eq!(run(&budget, vec![Err(busy()), Ok(7)]), (Some((Ok(7), 2)), vec![(1, false), (2, true)]));
        assert_eq!(run(&budget, vec![Err(RequestError::fatal("http 400", "no"))]).0, Some((Err("http 400".into()), 1)));
        assert_eq!(run(&budget, vec![Err(busy()), Err(busy()), Err(busy())]).0, Some((Err("http 429".into()), 3)));
        assert_eq!(budget.sent(), 6);
        let two = Budget::new(Some(2));
        assert_eq!(run(&two, vec![Err(busy()), Err(busy()), Ok(1)]), (None, vec![(1, false), (2, false)]));
        assert_eq!(two.sent(), 2);
        assert!(RetryPolicy::new(0, 1.0, 2.0).is_err() && RetryPolicy::new(2, 3.0, 1.0).is_err() && RetryPolicy::new(2, f64::NAN, 1.0).is_err());
    }

    #[test]
    fn the_log_drops_a_cut_line_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requests.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"a\":").unwrap();
        AppendLog::open(&path).unwrap().write(&serde_json::json!({"a": 2})).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"a\":2}\n");
    }
}
