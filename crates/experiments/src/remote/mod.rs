//! What the services pairguard calls share, editors and judges alike: one
//! failed attempt's error, an HTTP endpoint that bounds its answers and
//! keeps its key in a header, a local command answering JSON lines within a
//! timeout, and the retries, request budget and request log around each
//! request.

pub mod body;
pub mod http;
pub mod process;
pub mod records;
pub mod retry;

use std::time::Duration;

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestError {
    /// Short status for the request log: "http 429", "timeout", "malformed response".
    pub status: String,
    pub message: String,
    /// Worth another attempt (rate limits, server errors, timeouts, garbled answers).
    pub retryable: bool,
    /// How long the service asked to wait (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl RequestError {
    pub fn retryable(status: impl Into<String>, message: impl Into<String>) -> Self {
        RequestError { status: status.into(), message: message.into(), retryable: true, retry_after: None }
    }

    pub fn fatal(status: impl Into<String>, message: impl Into<String>) -> Self {
        RequestError { status: status.into(), message: message.into(), retryable: false, retry_after: None }
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}
