//! One HTTP endpoint of a service: `POST {base_url}/{path}`, with the key
//! in the `Authorization` header alone, redirects not followed, plain
//! `http://` refused off this machine unless allowed, and answers read as
//! they stream up to a byte limit, so a faulty or hostile server cannot
//! exhaust memory.

use std::time::Duration;

use super::RequestError;
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
    url: reqwest::Url,
    key: Option<Secret>,
    max_body: u64,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl Endpoint {
    /// The endpoint `path` under `base_url` of the service called `what`
    /// ("editor", "judge") in messages. Plain `http://` is refused except on
    /// a loopback address or with `allow_insecure_http`, and a URL holding
    /// credentials is refused.
    pub fn new(what: &str, base_url: &str, path: &str, key: Option<Secret>, opts: EndpointOptions) -> Result<Self> {
        let bad = |m: String| Error::Config(format!("{what} base_url {base_url:?}: {m}"));
        let base = reqwest::Url::parse(base_url.trim_end_matches('/')).map_err(|e| bad(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad("expected an http or https URL".into()));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(Error::Config(format!(
                "{what} base_url {}: credentials in the URL are refused (they would reach logs and reports); give the key through key_env",
                without_credentials(&base)
            )));
        }
        let url = reqwest::Url::parse(&format!("{}/{path}", base.as_str().trim_end_matches('/'))).map_err(|e| bad(e.to_string()))?;
        let loopback = is_loopback(&base);
        if base.scheme() == "http" && !loopback && !opts.allow_insecure_http {
            return Err(bad(format!(
                "plain http would send the API key and the images in clear text; use https, or set allow_insecure_http = true in the {what} file"
            )));
        }
        let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(opts.timeout);
        if loopback {
            builder = builder.no_proxy();
        }
        let client = builder.build().map_err(|e| bad(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("starting the HTTP {what}'s runtime: {e}")))?;
        Ok(Endpoint { url, key, max_body: opts.max_body, client, runtime })
    }

    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// Posts the request `body` builds and returns a successful answer's
    /// body. Rate limits (429), timeouts (408) and server errors are
    /// retryable, with the server's `Retry-After`; other statuses are not.
    pub fn post(&self, body: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder) -> std::result::Result<Vec<u8>, RequestError> {
        self.runtime.block_on(async {
            let mut req = body(self.client.post(self.url.clone()));
            if let Some(k) = &self.key {
                req = req.bearer_auth(k.expose());
            }
            let mut resp = req.send().await.map_err(transport)?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64);
            let max = self.max_body;
            let too_large =
                |what: String| RequestError::fatal("response too large", format!("{what}, more than the limit of {max} bytes (max_response_bytes)"));
            if let Some(n) = resp.content_length().filter(|&n| n > max) {
                return Err(too_large(format!("the answer announces {n} bytes")));
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(transport)? {
                if (body.len() + chunk.len()) as u64 > max {
                    return Err(too_large(format!("the answer ran past {} bytes", body.len() + chunk.len())));
                }
                body.extend_from_slice(&chunk);
            }
            if !status.is_success() {
                let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
                let retryable = status.as_u16() == 429 || status.as_u16() == 408 || status.is_server_error();
                return Err(RequestError { status: format!("http {}", status.as_u16()), message: text, retryable, retry_after });
            }
            Ok(body)
        })
    }
}

fn transport(e: reqwest::Error) -> RequestError {
    let status = if e.is_timeout() { "timeout" } else { "connection" };
    // The error names the URL, never the key.
    RequestError::retryable(status, e.without_url().to_string())
}

/// Whether a URL's host is this machine (127.0.0.0/8, ::1 or localhost).
fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The URL with any user name and password removed, for messages.
fn without_credentials(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}
