//! The HTTP editor: `POST {base_url}/images/edits` with a multipart body
//! (`image`, `prompt`, optionally `model`, `n`, `size`, `response_format`),
//! answered with `{"data": [{"b64_json": ...}]}` and optionally a `cost`.
//! Requests go to the base URL only (redirects are not followed) and the key
//! travels in the `Authorization` header alone.

use base64::Engine as _;

use super::editor::{EditRequest, Edited, Editor};
use crate::error::Result;
use crate::remote::RequestError;
use crate::remote::body::Multipart;
use crate::remote::http::{Endpoint, EndpointOptions};
use crate::secret::Secret;

/// How an HTTP editor talks to its server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HttpOptions {
    pub endpoint: EndpointOptions,
    /// Ask for `response_format = "b64_json"`.
    pub response_format: bool,
    /// Send the source image's `size`.
    pub size: bool,
}

#[derive(Debug)]
pub struct HttpEditor {
    endpoint: Endpoint,
    model: Option<String>,
    opts: HttpOptions,
}

impl HttpEditor {
    /// Opens an editor at `base_url` (see [`Endpoint::new`] for what is refused).
    pub fn new(base_url: &str, model: Option<String>, key: Option<Secret>, opts: HttpOptions) -> Result<Self> {
        Ok(HttpEditor { endpoint: Endpoint::new("editor", base_url, "images/edits", key, opts.endpoint)?, model, opts })
    }

    fn send(&self, r: &EditRequest) -> std::result::Result<Edited, RequestError> {
        let mut form = Multipart::new().file("image", "image.png", "image/png", &r.png).text("prompt", &r.prompt).text("n", "1");
        if let Some(m) = &self.model {
            form = form.text("model", m);
        }
        if self.opts.response_format {
            form = form.text("response_format", "b64_json");
        }
        if self.opts.size {
            form = form.text("size", &format!("{}x{}", r.width, r.height));
        }
        let body = self.endpoint.post(&form.finish())?;
        parse_answer(&body)
    }
}

/// The edited image in a successful answer's body (`data[0].b64_json`) and
/// its cost where the service reports one (`cost` or `usage.cost`).
pub fn parse_answer(body: &[u8]) -> std::result::Result<Edited, RequestError> {
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| RequestError::retryable("malformed response", format!("not JSON: {e}")))?;
    let b64 =
        json["data"][0]["b64_json"].as_str().ok_or_else(|| RequestError::retryable("malformed response", "no data[0].b64_json in the answer"))?;
    let image = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| RequestError::retryable("malformed response", format!("data[0].b64_json is not base64: {e}")))?;
    let cost = json["cost"].as_f64().or_else(|| json["usage"]["cost"].as_f64());
    Ok(Edited { image, mask: None, cost, truth: None })
}

impl Editor for HttpEditor {
    fn describe(&self) -> String {
        format!("http {}{}", self.endpoint.url(), self.model.as_ref().map(|m| format!(" (model {m})")).unwrap_or_default())
    }

    fn edit(&self, request: &EditRequest) -> std::result::Result<Edited, RequestError> {
        self.send(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(allow_insecure_http: bool, max_body: u64) -> HttpOptions {
        let endpoint = EndpointOptions { timeout: std::time::Duration::from_secs(10), allow_insecure_http, max_body };
        HttpOptions { endpoint, response_format: true, size: false }
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
