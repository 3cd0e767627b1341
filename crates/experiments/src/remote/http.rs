//! One HTTP endpoint of a service: `POST {base_url}/{path}`, with the key
//! in the `Authorization` header alone, redirects not followed, plain
//! `http://` refused off this machine unless allowed, and answers read as
//! they stream up to a byte limit, so a faulty or hostile server cannot
//! exhaust memory. Requests are blocking (ureq): a job sends one request at
//! a time per worker and waits for it.

use std::io::Read as _;
use std::time::Duration;

use url::Url;

use super::RequestError;
use super::body::Body;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// How an endpoint talks to its server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndpointOptions {
    pub timeout: Duration,
    /// Allow plain `http://` to another machine.
    pub allow_insecure_http: bool,
    /// The largest answer read, in bytes.
    pub max_body: u64,
}

#[derive(Debug)]
pub struct Endpoint {
    url: Url,
    key: Option<Secret>,
    max_body: u64,
    agent: ureq::Agent,
}

impl Endpoint {
    /// The endpoint `path` under `base_url` of the service called `what`
    /// ("editor", "judge") in messages. Plain `http://` is refused except on
    /// a loopback address or with `allow_insecure_http`, and a URL holding
    /// credentials is refused.
    pub fn new(what: &str, base_url: &str, path: &str, key: Option<Secret>, opts: EndpointOptions) -> Result<Self> {
        let bad = |m: String| Error::Config(format!("{what} base_url {base_url:?}: {m}"));
        let base = Url::parse(base_url.trim_end_matches('/')).map_err(|e| bad(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad("expected an http or https URL".into()));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(Error::Config(format!(
                "{what} base_url {}: credentials in the URL are refused (they would reach logs and reports); give the key through key_env",
                without_credentials(&base)
            )));
        }
        let url = Url::parse(&format!("{}/{path}", base.as_str().trim_end_matches('/'))).map_err(|e| bad(e.to_string()))?;
        let loopback = is_loopback(&base);
        if base.scheme() == "http" && !loopback && !opts.allow_insecure_http {
            return Err(bad(format!(
                "plain http would send the API key and the images in clear text; use https, or set allow_insecure_http = true in the {what} file"
            )));
        }
        // Proxies from the environment serve remote services; a loopback
        // service is reached directly.
        let agent = ureq::AgentBuilder::new().redirects(0).timeout(opts.timeout).try_proxy_from_env(!loopback).build();
        Ok(Endpoint { url, key, max_body: opts.max_body, agent })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Posts `body` and returns a successful answer's body. Rate limits
    /// (429), timeouts (408) and server errors are retryable, with the
    /// server's `Retry-After`; other statuses are not.
    pub fn post(&self, body: &Body) -> std::result::Result<Vec<u8>, RequestError> {
        let mut req = self.agent.request_url("POST", &self.url).set("Content-Type", &body.content_type);
        if let Some(k) = &self.key {
            req = req.set("Authorization", &format!("Bearer {}", k.expose()));
        }
        let resp = match req.send_bytes(&body.bytes) {
            Ok(resp) | Err(ureq::Error::Status(_, resp)) => resp,
            Err(ureq::Error::Transport(t)) => return Err(transport(&t)),
        };
        let status = resp.status();
        let retry_after =
            resp.header("Retry-After").and_then(|v| v.trim().parse::<f64>().ok()).filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64);
        let max = self.max_body;
        let too_large =
            |what: String| RequestError::fatal("response too large", format!("{what}, more than the limit of {max} bytes (max_response_bytes)"));
        if let Some(n) = resp.header("Content-Length").and_then(|v| v.trim().parse::<u64>().ok()).filter(|&n| n > max) {
            return Err(too_large(format!("the answer announces {n} bytes")));
        }
        let mut body = Vec::new();
        resp.into_reader().take(max + 1).read_to_end(&mut body).map_err(|e| io_error(&e))?;
        if body.len() as u64 > max {
            return Err(too_large(format!("the answer ran past {max} bytes")));
        }
        if !(200..300).contains(&status) {
            let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
            let retryable = status == 429 || status == 408 || (500..600).contains(&status);
            return Err(RequestError { status: format!("http {status}"), message: text, retryable, retry_after });
        }
        Ok(body)
    }
}

fn transport(t: &ureq::Transport) -> RequestError {
    let mut timed_out = false;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(t);
    while let Some(e) = cause {
        timed_out |= e.downcast_ref::<std::io::Error>().is_some_and(is_timeout);
        cause = e.source();
    }
    // The message names the URL, never the key (it travels in a header).
    RequestError::retryable(if timed_out { "timeout" } else { "connection" }, t.to_string())
}

fn io_error(e: &std::io::Error) -> RequestError {
    RequestError::retryable(if is_timeout(e) { "timeout" } else { "connection" }, format!("reading the answer: {e}"))
}

/// A socket read or write that ran past the endpoint's timeout.
fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock)
}

/// Whether a URL's host is this machine (127.0.0.0/8, ::1 or localhost).
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The URL with any user name and password removed, for messages.
fn without_credentials(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}
