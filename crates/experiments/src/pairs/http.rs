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

#[derive(Debug)]
pub struct HttpEditor {
    url: reqwest::Url,
    model: Option<String>,
    key: Option<Secret>,
    response_format: bool,
    size: bool,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl HttpEditor {
    /// Opens an editor at `base_url`. Plain `http://` is refused except on a
    /// loopback address or with `allow_insecure_http`, and a URL holding
    /// credentials is refused.
    pub fn new(
        base_url: &str,
        model: Option<String>,
        key: Option<Secret>,
        timeout: Duration,
        response_format: bool,
        size: bool,
        allow_insecure_http: bool,
    ) -> Result<Self> {
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
        if base.scheme() == "http" && !loopback && !allow_insecure_http {
            return Err(bad(
                "plain http would send the API key and the images in clear text; use https, or set allow_insecure_http = true in the editor file"
                    .into(),
            ));
        }
        let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(timeout);
        if loopback {
            builder = builder.no_proxy();
        }
        let client = builder.build().map_err(|e| bad(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("starting the HTTP editor's runtime: {e}")))?;
        Ok(HttpEditor { url, model, key, response_format, size, client, runtime })
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
        if self.response_format {
            form = form.text("response_format", "b64_json");
        }
        if self.size {
            form = form.text("size", format!("{}x{}", r.width, r.height));
        }
        let mut req = self.client.post(self.url.clone()).multipart(form);
        if let Some(k) = &self.key {
            req = req.bearer_auth(k.expose());
        }
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        let body = resp.bytes().await.map_err(transport)?;
        if !status.is_success() {
            let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
            let retryable = status.as_u16() == 429 || status.as_u16() == 408 || status.is_server_error();
            return Err(EditError { status: format!("http {}", status.as_u16()), message: text, retryable, retry_after });
        }
        let json: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| EditError::retryable("malformed response", format!("not JSON: {e}")))?;
        let b64 =
            json["data"][0]["b64_json"].as_str().ok_or_else(|| EditError::retryable("malformed response", "no data[0].b64_json in the answer"))?;
        let image = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| EditError::retryable("malformed response", format!("data[0].b64_json is not base64: {e}")))?;
        let cost = json["cost"].as_f64().or_else(|| json["usage"]["cost"].as_f64());
        Ok(Edited { image, mask: None, cost })
    }
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

    fn open(url: &str, insecure: bool) -> Result<HttpEditor> {
        HttpEditor::new(url, None, Some(Secret::new("sk-hidden".into())), Duration::from_secs(1), true, false, insecure)
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
