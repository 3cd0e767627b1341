//! The HTTP editor: `POST {base_url}/images/edits` with a multipart body
//! (`image`, `prompt`, optionally `model`, `n`, `size`, `response_format`),
//! answered with `{"data": [{"b64_json": ...}]}` and optionally a `cost`.
//! Requests go to the base URL only (redirects are not followed) and the key
//! travels in the `Authorization` header alone.

use std::time::Duration;

use base64::Engine as _;

use super::editor::{EditError, EditRequest, Edited, Editor};
use crate::error::{Error, Result};
use crate::secret::Secret;

/// How an HTTP editor talks to its server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HttpOptions {
    pub timeout: Duration,
    /// Ask for `response_format = "b64_json"`.
    pub response_format: bool,
    /// Send the source image's `size`.
    pub size: bool,
    /// Allow plain `http://` to another machine.
    pub allow_insecure_http: bool,
    /// The largest answer read, in bytes: a longer one is refused as it
    /// streams, so a faulty or hostile server cannot exhaust memory.
    pub max_body: u64,
}

#[derive(Debug)]
pub struct HttpEditor {
    url: reqwest::Url,
    model: Option<String>,
    key: Option<Secret>,
    opts: HttpOptions,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl HttpEditor {
    /// Opens an editor at `base_url`. Plain `http://` is refused except on a
    /// loopback address or with `allow_insecure_http`, and a URL holding
    /// credentials is refused.
    pub fn new(base_url: &str, model: Option<String>, key: Option<Secret>, opts: HttpOptions) -> Result<Self> {
        let bad = |m: String| Error::Config(format!("editor base_url {base_url:?}: {m}"));
        let base = reqwest::Url::parse(base_url.trim_end_matches('/')).map_err(|e| bad(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad("expected an http or https URL".into()));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(Error::Config(format!(
                "editor base_url {}: credentials in the URL are refused (they would reach logs and reports); give the key through key_env",
                without_credentials(&base)
            )));
        }
        let url = reqwest::Url::parse(&format!("{}/images/edits", base.as_str().trim_end_matches('/'))).map_err(|e| bad(e.to_string()))?;
        let loopback = is_loopback(&base);
        if base.scheme() == "http" && !loopback && !opts.allow_insecure_http {
            return Err(bad(
                "plain http would send the API key and the images in clear text; use https, or set allow_insecure_http = true in the editor file"
                    .into(),
            ));
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
            .map_err(|e| Error::Config(format!("starting the HTTP editor's runtime: {e}")))?;
        Ok(HttpEditor { url, model, key, opts, client, runtime })
    }

    async fn send(&self, r: &EditRequest) -> std::result::Result<Edited, EditError> {
        let part = reqwest::multipart::Part::bytes(r.png.clone())
            .file_name("image.png")
            .mime_str("image/png")
            .map_err(|e| EditError::fatal("request", e.to_string()))?;
        let mut form = reqwest::multipart::Form::new().part("image", part).text("prompt", r.prompt.clone()).text("n", "1");
        if let Some(m) = &self.model {
            form = form.text("model", m.clone());
        }
        if self.opts.response_format {
            form = form.text("response_format", "b64_json");
        }
        if self.opts.size {
            form = form.text("size", format!("{}x{}", r.width, r.height));
        }
        let mut req = self.client.post(self.url.clone()).multipart(form);
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
        let max = self.opts.max_body;
        let too_large =
            |what: String| EditError::fatal("response too large", format!("{what}, more than the limit of {max} bytes (max_response_bytes)"));
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
            return Err(EditError { status: format!("http {}", status.as_u16()), message: text, retryable, retry_after });
        }
        parse_answer(&body)
    }
}

/// The edited image in a successful answer's body (`data[0].b64_json`) and
/// its cost where the service reports one (`cost` or `usage.cost`).
pub fn parse_answer(body: &[u8]) -> std::result::Result<Edited, EditError> {
    let json: serde_json::Value = serde_json::from_slice(body).map_err(|e| EditError::retryable("malformed response", format!("not JSON: {e}")))?;
    let b64 = json["data"][0]["b64_json"].as_str().ok_or_else(|| EditError::retryable("malformed response", "no data[0].b64_json in the answer"))?;
    let image = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| EditError::retryable("malformed response", format!("data[0].b64_json is not base64: {e}")))?;
    let cost = json["cost"].as_f64().or_else(|| json["usage"]["cost"].as_f64());
    Ok(Edited { image, mask: None, cost, truth: None })
}

fn transport(e: reqwest::Error) -> EditError {
    let status = if e.is_timeout() { "timeout" } else { "connection" };
    // The error names the URL, never the key.
    EditError::retryable(status, e.without_url().to_string())
}

impl Editor for HttpEditor {
    fn describe(&self) -> String {
        format!("http {}{}", self.url, self.model.as_ref().map(|m| format!(" (model {m})")).unwrap_or_default())
    }

    fn edit(&self, request: &EditRequest) -> std::result::Result<Edited, EditError> {
        self.runtime.block_on(self.send(request))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn options(allow_insecure_http: bool, max_body: u64) -> HttpOptions {
        HttpOptions { timeout: Duration::from_secs(10), response_format: true, size: false, allow_insecure_http, max_body }
    }

    fn open(url: &str, insecure: bool) -> Result<HttpEditor> {
        HttpEditor::new(url, None, Some(Secret::new("sk-hidden".into())), options(insecure, 1 << 20))
    }

    /// A server on the loopback interface that answers one request with
    /// `head` and then, while the client reads, up to 64 MiB of body.
    fn serve_once(head: &'static str, body: bool) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.write_all(head.as_bytes());
            if body {
                let chunk = format!("{:x}\r\n{}\r\n", 65536, "a".repeat(65536));
                for _ in 0..1024 {
                    if s.write_all(chunk.as_bytes()).is_err() {
                        return;
                    }
                }
            }
        });
        url
    }

    fn request() -> EditRequest {
        EditRequest {
            id: "x".into(),
            category: "c".into(),
            direction: pairguard_data::Direction::Add,
            prompt: "p".into(),
            seed: 0,
            png: vec![0; 16],
            width: 4,
            height: 4,
        }
    }

    #[test]
    fn an_answer_past_the_limit_is_refused_as_it_streams() {
        let endless = serve_once("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", true);
        let e = open(&endless, false).unwrap().edit(&request()).unwrap_err();
        assert!(e.status == "response too large" && !e.retryable && e.message.contains("ran past"), "{e}");
        let announced = serve_once("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n", false);
        let e = open(&announced, false).unwrap().edit(&request()).unwrap_err();
        assert!(e.status == "response too large" && e.message.contains("announces 10000000000 bytes"), "{e}");
    }

    #[test]
    fn plain_http_is_refused_off_this_machine_and_credentials_never_pass() {
        for url in ["http://127.0.0.1:9/v1", "http://127.3.4.5/v1", "http://localhost:8080/v1", "http://[::1]:8080/v1", "https://api.example.com/v1"]
        {
            assert!(open(url, false).is_ok(), "{url}");
        }
        let e = open("http://198.51.100.7/v1", false).unwrap_err().to_string();
        assert!(e.contains("clear text") && e.contains("allow_insecure_http"), "{e}");
        assert!(open("http://198.51.100.7/v1", true).is_ok());
        let e = open("https://user:pa55word@api.example.com/v1", false).unwrap_err().to_string();
        assert!(e.contains("credentials") && !e.contains("pa55word") && !e.contains("user:"), "{e}");
        let editor = open("https://api.example.com/v1", false).unwrap();
        let shown = format!("{editor:?}");
        assert!(!shown.contains("sk-hidden") && shown.contains("***"), "{shown}");
    }
}
